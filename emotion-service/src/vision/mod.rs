//! The vision pipeline: pretrained face models run with candle, plain functions over tensors.
//!
//! Per frame: detect faces (BlazeFace), fit the 468-point mesh to the main face (68 iBUG points
//! are read off it), fit the iris model to each eye (eyelids give the eye aspect ratio, the iris
//! gives gaze), classify the expression (mini-Xception, only when the policy allows), estimate head
//! pose against a generic 3-D face, and combine presence, pose, gaze and eye closure into
//! attention. With a face position from the previous frame ([`Scan::Track`]) the detector is
//! skipped while the mesh still confirms a face, as trackers do; [`Scan::Everyone`] adds the far
//! pass, which counts people a few metres away.
//!
//! - [`graph`]: the model executor. [`crop`]: regions to input tensors.
//! - [`detect`]: anchors and NMS. [`geometry`]: landmarks, eye openness, pose, gaze.

pub mod crop;
pub mod detect;
pub mod geometry;
pub mod graph;

use std::path::Path;

use candle_core::Tensor;
use image::RgbImage;
use iv_contracts::policy::AnalysisPolicy;

use crate::analysis::{
    AnalyzerError, EXPRESSIONS, Expression, FaceBox, FrameAnalysis, FrameAnalyzer, HeadPose,
    MIN_EXPRESSION_CONFIDENCE, Point, Scan, UNCERTAIN,
};
use crop::{Range, Region, Sampling, sample};
use graph::{Graph, GraphError};

/// The model files, as written by scripts/fetch-assets.sh.
pub const MODEL_FILES: [&str; 5] = [
    "face_detection_short_range",
    "face_landmark",
    "iris_landmark",
    "fer_emotion",
    "face_detection_back",
];

/// The expression model's classes, in its output order, in our names.
const FER_LABELS: [&str; 7] = [
    "angry",
    "disgusted",
    "fearful",
    "happy",
    "sad",
    "surprised",
    "neutral",
];

/// Mesh vertices at the eye corners: (outer, inner) of the eye on the image's left, then right.
pub const EYE_CORNERS: [(usize, usize); 2] = [(33, 133), (362, 263)];

/// Below this the mesh says there is no face in its crop.
const FACE_FLAG_MIN: f32 = 0.5;

/// Detector confidence at which a face not confirmed by the mesh still counts (other people in
/// the frame are an integrity signal; only the main face is meshed).
const SURE_FACE: f32 = 0.6;

/// Two boxes covering this much of the smaller one are the same face (sighted by two passes or
/// two tiles, whose boxes differ in size).
const SAME_FACE: f32 = 0.3;

/// Head turned further than this (degrees) no longer counts as looking at the camera.
const EYE_CONTACT_YAW: f32 = 15.0;
const EYE_CONTACT_PITCH: f32 = 15.0;

/// The loaded models.
pub struct Pipeline {
    detector: Graph,
    mesh: Graph,
    iris: Graph,
    expression: Graph,
    /// BlazeFace's back-camera model: the same anchors at twice the input size.
    far_detector: Graph,
    anchors: Vec<(f32, f32)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

/// What the detector found, in frame pixels.
#[derive(Debug, Clone)]
pub struct Found {
    pub faces: Vec<FaceBox>,
}

/// One eye's measurements.
#[derive(Debug, Clone, Copy)]
pub struct Eye {
    pub openness: f32,
    pub iris_position: f32,
}

impl Pipeline {
    /// Loads every model from `dir`; the error names the file that is missing or broken.
    pub fn load(dir: &Path) -> Result<Self, GraphError> {
        Ok(Self {
            detector: Graph::load(dir, MODEL_FILES[0])?,
            mesh: Graph::load(dir, MODEL_FILES[1])?,
            iris: Graph::load(dir, MODEL_FILES[2])?,
            expression: Graph::load(dir, MODEL_FILES[3])?,
            far_detector: Graph::load(dir, MODEL_FILES[4])?,
            anchors: detect::anchors(),
        })
    }

    /// Faces in the frame, largest first. The frame is letterboxed into the detector's square.
    #[tracing::instrument(name = "model.detect", skip_all)]
    pub fn detect(&self, frame: &RgbImage) -> Result<Found, GraphError> {
        let faces = run_detector(&self.detector, 128, &self.anchors, frame, whole(frame))?;
        Ok(Found {
            faces: largest_first(faces),
        })
    }

    /// Faces further away: the back-camera model (256x256, made for faces further from the
    /// lens) on squares of the frame's shorter side spanning the longer one. On the group photos
    /// at webcam size it finds faces down to ~27 px high that the short-range pass, which sees
    /// the whole frame at 128 px, misses.
    #[tracing::instrument(name = "model.detect_far", skip_all)]
    pub fn detect_far(&self, frame: &RgbImage) -> Result<Found, GraphError> {
        let mut faces = Vec::new();
        for region in tiles(frame) {
            faces.extend(run_detector(
                &self.far_detector,
                256,
                &self.anchors,
                frame,
                region,
            )?);
        }
        Ok(Found {
            faces: largest_first(distinct(Vec::new(), faces)),
        })
    }

    /// The mesh around `face`: 468 points in frame pixels and the face-presence probability.
    #[tracing::instrument(name = "model.mesh", skip_all)]
    pub fn mesh(&self, frame: &RgbImage, face: &FaceBox) -> Result<Mesh, GraphError> {
        let side = face.width.max(face.height) * 1.5;
        let roi = Region::square(face.x + face.width / 2.0, face.y + face.height / 2.0, side);
        let input = sample(
            frame,
            roi,
            192,
            false,
            false,
            Sampling::Bilinear,
            Range::UNIT,
        )?;
        let out = self.mesh.run(&input)?;
        let raw = out[0].flatten_all()?.to_vec1::<f32>()?;
        let flag = out[1]
            .flatten_all()?
            .to_vec1::<f32>()?
            .last()
            .copied()
            .unwrap_or(-10.0);
        let points = raw
            .chunks_exact(3)
            .map(|p| Point {
                x: roi.x + p[0] / 192.0 * side,
                y: roi.y + p[1] / 192.0 * side,
            })
            .collect();
        let depth = raw.chunks_exact(3).map(|p| p[2] / 192.0 * side).collect();
        Ok(Mesh {
            points,
            depth,
            presence: 1.0 / (1.0 + (-flag).exp()),
        })
    }

    /// Eye openness and iris position of both eyes, each between its two mesh corners
    /// ([`EYE_CORNERS`]), in one batch of two through the iris model (one pass costs less than
    /// two: the model's small late layers are mostly per-pass overhead). The eye on the image's
    /// right is mirrored, as the iris model expects.
    #[tracing::instrument(name = "model.iris", skip_all)]
    pub fn eyes(&self, frame: &RgbImage, mesh: &[Point]) -> Result<[Eye; 2], GraphError> {
        let crops = [(EYE_CORNERS[0], false), (EYE_CORNERS[1], true)].map(|(corners, mirror)| {
            let (a, b) = (mesh[corners.0], mesh[corners.1]);
            let (cx, cy) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
            let side = ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt() * 2.3;
            let roi = Region::square(cx, cy, side);
            sample(
                frame,
                roi,
                64,
                mirror,
                false,
                Sampling::Bilinear,
                Range::UNIT,
            )
        });
        let [left, right] = crops;
        let out = self.iris.run(&Tensor::cat(&[left?, right?], 0)?)?;
        let points = |t: &Tensor, eye: usize, mirror: bool| -> Result<Vec<Point>, GraphError> {
            Ok(t.get(eye)?
                .flatten_all()?
                .to_vec1::<f32>()?
                .chunks_exact(3)
                .map(|p| Point {
                    x: if mirror { 64.0 - p[0] } else { p[0] },
                    y: p[1],
                })
                .collect())
        };
        let eye = |index: usize, mirror: bool| -> Result<Eye, GraphError> {
            let contour = points(&out[0], index, mirror)?;
            let iris = points(&out[1], index, mirror)?;
            Ok(Eye {
                openness: geometry::eye_aspect_ratio(&contour),
                iris_position: geometry::iris_position(&contour, iris[0]),
            })
        };
        Ok([eye(0, false)?, eye(1, true)?])
    }

    #[tracing::instrument(name = "model.expression", skip_all)]
    pub fn expression(&self, frame: &RgbImage, face: &FaceBox) -> Result<Expression, GraphError> {
        let side = face.width.max(face.height);
        let roi = Region::square(face.x + face.width / 2.0, face.y + face.height / 2.0, side);
        let input = sample(
            frame,
            roi,
            64,
            false,
            true,
            Sampling::Bilinear,
            Range::SIGNED,
        )?;
        let probs = self.expression.run(&input)?[0]
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut probabilities: Vec<(String, f32)> = EXPRESSIONS
            .iter()
            .map(|name| {
                let i = FER_LABELS.iter().position(|l| l == name).unwrap_or(0);
                (name.to_string(), probs[i])
            })
            .collect();
        probabilities.sort_by(|a, b| {
            EXPRESSIONS
                .iter()
                .position(|e| *e == a.0)
                .cmp(&EXPRESSIONS.iter().position(|e| *e == b.0))
        });
        let (label, confidence) = probabilities
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .cloned()
            .unwrap_or(("neutral".into(), 0.0));
        let label = if confidence < MIN_EXPRESSION_CONFIDENCE {
            UNCERTAIN.to_string()
        } else {
            label
        };
        Ok(Expression {
            label,
            confidence,
            probabilities,
        })
    }

    fn run(
        &self,
        frame: &RgbImage,
        policy: AnalysisPolicy,
        scan: Scan,
    ) -> Result<FrameAnalysis, GraphError> {
        let Some(Located {
            mut analysis,
            face,
            mesh,
        }) = self.locate(frame, scan)?
        else {
            return Ok(FrameAnalysis {
                detector_ran: true,
                ..Default::default()
            });
        };

        // The mesh's own bounding box is the steadier face box, and the next frame's hint.
        let face_box = mesh_box(&mesh.points, face.confidence.max(mesh.presence));
        analysis.face = Some(face_box);
        analysis.landmarks = geometry::MESH_TO_68
            .iter()
            .map(|&i| mesh.points[i])
            .collect();

        let [left, right] = self.eyes(frame, &mesh.points)?;
        analysis.eye_openness = Some((left.openness, right.openness));
        let pose = geometry::head_pose(&mesh);
        analysis.pose = pose;
        let gaze = (left.iris_position + right.iris_position) / 2.0;
        analysis.gaze = Some(gaze);
        let facing = pose
            .is_some_and(|p| p.yaw.abs() <= EYE_CONTACT_YAW && p.pitch.abs() <= EYE_CONTACT_PITCH);
        analysis.eye_contact = facing && (0.3..=0.7).contains(&gaze);
        analysis.attention = attention(pose, gaze, (left.openness + right.openness) / 2.0);
        if policy.allows_emotion() {
            analysis.expression = Some(self.expression(frame, &face_box)?);
        }
        Ok(analysis)
    }
}

/// Attention of a visible face, 0..1: head pose 40% (full when facing the camera, none past 45°
/// yaw or 35° pitch), gaze 35% (iris centred between the eye corners), open eyes 25% (an eye
/// aspect ratio of 0.2 or more counts as open). A frame without a face has attention 0.
pub fn attention(pose: Option<HeadPose>, gaze: f32, openness: f32) -> f32 {
    let pose_term = pose.map_or(0.5, |p| {
        (1.0 - (p.yaw.abs() / 45.0).max(p.pitch.abs() / 35.0)).clamp(0.0, 1.0)
    });
    let gaze_term = (1.0 - 2.0 * (gaze - 0.5).abs()).clamp(0.0, 1.0);
    let eyes_term = (openness / 0.2).clamp(0.0, 1.0);
    0.4 * pose_term + 0.35 * gaze_term + 0.25 * eyes_term
}

/// The face mesh fitted to one face.
pub struct Mesh {
    /// The 468 vertices in frame pixels.
    pub points: Vec<Point>,
    /// Each vertex's depth, in frame pixels relative to the face's centre, growing away from the
    /// camera: the model predicts it, and the head pose is read off it.
    pub depth: Vec<f32>,
    /// The probability that the crop holds a face.
    pub presence: f32,
}

/// The face a frame is analysed for, and how it was found.
struct Located {
    /// Face count and whether the detector ran; the rest is filled in by the caller.
    analysis: FrameAnalysis,
    face: FaceBox,
    mesh: Mesh,
}

impl Pipeline {
    /// Tracks the face (refitting the mesh where it was) or detects, as `scan` says. `None` when
    /// no face is found.
    fn locate(&self, frame: &RgbImage, scan: Scan) -> Result<Option<Located>, GraphError> {
        if let Scan::Track(h) = scan {
            let mesh = self.mesh(frame, &h)?;
            if mesh.presence >= FACE_FLAG_MIN {
                return Ok(Some(Located {
                    analysis: FrameAnalysis {
                        face_count: 1,
                        detector_ran: false,
                        ..Default::default()
                    },
                    face: h,
                    mesh,
                }));
            }
        }
        // A face needs both stages to agree: the largest detection the mesh confirms is the
        // candidate, from the short-range pass or, when it finds none, the far pass (a candidate
        // sitting back from the camera); the others count only when a detector is sure of them.
        let near = self.detect(frame)?.faces;
        let far = if scan == Scan::Everyone {
            self.detect_far(frame)?.faces
        } else {
            Vec::new()
        };
        for face in near.iter().take(3).chain(far.iter().take(3)) {
            let mesh = self.mesh(frame, face)?;
            if mesh.presence < FACE_FLAG_MIN {
                continue;
            }
            let sure = near
                .iter()
                .chain(&far)
                .filter(|f| f.confidence >= SURE_FACE)
                .copied();
            let everyone = distinct(vec![*face], sure.collect());
            return Ok(Some(Located {
                analysis: FrameAnalysis {
                    face_count: everyone.len() as u32,
                    detector_ran: true,
                    ..Default::default()
                },
                face: *face,
                mesh,
            }));
        }
        Ok(None)
    }
}

/// `photo` scaled to `width` pixels wide, as a webcam of that width would see the scene (for
/// evaluating on photos larger than any camera sends).
pub fn scaled(photo: &RgbImage, width: u32) -> RgbImage {
    let height = (photo.height() * width / photo.width()).max(1);
    image::imageops::resize(photo, width, height, image::imageops::FilterType::Triangle)
}

/// The whole frame, letterboxed into a square.
fn whole(frame: &RgbImage) -> Region {
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let side = w.max(h);
    Region {
        x: (w - side) / 2.0,
        y: (h - side) / 2.0,
        width: side,
        height: side,
    }
}

/// Squares of the frame's shorter side spanning its longer side, spread evenly: two for 4:3 and
/// 16:9 frames (overlapping by 320 and 80 px at 640 wide, more than the faces this pass is for,
/// so a face on a seam is whole in one of them). Each pass costs as much as the next, so no more
/// than the frame needs.
fn tiles(frame: &RgbImage) -> Vec<Region> {
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let side = w.min(h);
    let long = w.max(h);
    let count = ((long - side) / side).ceil() as usize + 1;
    (0..count)
        .map(|i| {
            let offset = if count == 1 {
                0.0
            } else {
                (long - side) * i as f32 / (count - 1) as f32
            };
            let (x, y) = if w >= h { (offset, 0.0) } else { (0.0, offset) };
            Region {
                x,
                y,
                width: side,
                height: side,
            }
        })
        .collect()
}

/// One detector pass over `region` of the frame, scaled to the model's `input` square; the
/// faces in frame pixels.
fn run_detector(
    graph: &Graph,
    input: usize,
    anchors: &[(f32, f32)],
    frame: &RgbImage,
    region: Region,
) -> Result<Vec<FaceBox>, GraphError> {
    let tensor = sample(
        frame,
        region,
        input,
        false,
        false,
        Sampling::Bilinear,
        Range::SIGNED,
    )?;
    let out = graph.run(&tensor)?;
    let regressors = out[0].flatten_all()?.to_vec1::<f32>()?;
    let scores = out[1].flatten_all()?.to_vec1::<f32>()?;
    Ok(detect::decode(&regressors, &scores, anchors, input as f32)
        .into_iter()
        .map(|d| FaceBox {
            x: region.x + d.xmin * region.width,
            y: region.y + d.ymin * region.height,
            width: (d.xmax - d.xmin) * region.width,
            height: (d.ymax - d.ymin) * region.height,
            confidence: d.score,
        })
        .collect())
}

fn largest_first(mut faces: Vec<FaceBox>) -> Vec<FaceBox> {
    faces.sort_by(|a, b| (b.width * b.height).total_cmp(&(a.width * a.height)));
    faces
}

/// `faces` added to `kept`, the most confident first, except those already there: one face seen
/// by several tiles or passes is kept once.
fn distinct(mut kept: Vec<FaceBox>, mut faces: Vec<FaceBox>) -> Vec<FaceBox> {
    faces.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    for f in faces {
        if kept.iter().all(|k| overlap(k, &f) < SAME_FACE) {
            kept.push(f);
        }
    }
    kept
}

/// Intersection over the smaller box: a face cut by a tile's edge still matches its whole self.
fn overlap(a: &FaceBox, b: &FaceBox) -> f32 {
    let w = ((a.x + a.width).min(b.x + b.width) - a.x.max(b.x)).max(0.0);
    let h = ((a.y + a.height).min(b.y + b.height) - a.y.max(b.y)).max(0.0);
    let smaller = (a.width * a.height).min(b.width * b.height);
    if smaller > 0.0 { w * h / smaller } else { 0.0 }
}

/// The bounding box of the mesh's points.
fn mesh_box(mesh: &[Point], confidence: f32) -> FaceBox {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in mesh {
        (x0, y0, x1, y1) = (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y));
    }
    FaceBox {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
        confidence,
    }
}

impl FrameAnalyzer for Pipeline {
    fn analyze(
        &self,
        frame: &RgbImage,
        policy: AnalysisPolicy,
        scan: Scan,
    ) -> Result<FrameAnalysis, AnalyzerError> {
        self.run(frame, policy, scan).map_err(AnalyzerError::Failed)
    }

    /// Finding the faces is all a count needs: no iris, pose or expression.
    #[tracing::instrument(name = "model.count_everyone", skip_all)]
    fn count_everyone(&self, frame: &RgbImage) -> Result<u32, AnalyzerError> {
        let located = self
            .locate(frame, Scan::Everyone)
            .map_err(AnalyzerError::Failed)?;
        Ok(located.map_or(0, |l| l.analysis.face_count))
    }
}
