//! What the analysis of one frame yields, and the analyzer interface the vision pipeline implements.

use image::RgbImage;
use iv_contracts::policy::AnalysisPolicy;
use serde::{Deserialize, Serialize};

/// A face's box in frame pixels, with the detector's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DetectedFace)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub confidence: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// The seven expression classes, in the order the expression model emits them.
pub const EXPRESSIONS: [&str; 7] = [
    "neutral",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
];

/// The label of an expression the model is not sure of: said rather than a confident wrong class.
pub const UNCERTAIN: &str = iv_contracts::UNCERTAIN_EXPRESSION;

/// Below this probability of its top class an expression is [`UNCERTAIN`]. Set on the labelled
/// stills (`emotion-service/tests/pipeline.rs` checks it still sits between them): the model's
/// right readings there have 0.90 (surprise) and 0.999 (happiness), its wrong ones 0.58 (anger
/// read as sad) and 0.46 (disgust read as sad). Placed nearer the wrong ones, since on the webcam
/// clip real expressions read at 0.72 and up, and only the frame between neutral and a smile
/// (0.54) falls under it. Four labelled stills are few: a provisional threshold.
pub const MIN_EXPRESSION_CONFIDENCE: f32 = 0.7;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expression {
    /// The most probable class of [`EXPRESSIONS`], or [`UNCERTAIN`] when its probability is under
    /// [`MIN_EXPRESSION_CONFIDENCE`].
    pub label: String,
    /// The probability of the most probable class (also when the label is [`UNCERTAIN`]).
    pub confidence: f32,
    /// Probability per class of [`EXPRESSIONS`].
    pub probabilities: Vec<(String, f32)>,
}

/// Degrees: yaw positive with the face turned towards the image's right, pitch positive with the
/// head bowed, roll positive with the face tilted clockwise in the image.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeadPose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

/// Everything one frame says about the candidate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrameAnalysis {
    /// Faces in the frame; when the detector was skipped (tracking), 1 for the tracked face.
    pub face_count: u32,
    /// Whether the detector ran on this frame (it is skipped while a face is tracked).
    pub detector_ran: bool,
    /// The main (largest) face.
    pub face: Option<FaceBox>,
    /// iBUG 68-point landmarks of the main face, in frame pixels.
    pub landmarks: Vec<Point>,
    /// `None` without a face or when the policy forbids emotion inference.
    pub expression: Option<Expression>,
    /// Eye aspect ratio of the left and right eye.
    pub eye_openness: Option<(f32, f32)>,
    pub pose: Option<HeadPose>,
    /// Where the irises sit between the eye corners, averaged over both eyes: 0 at the corner
    /// on the image's left, 1 at the one on its right, ~0.5 looking straight ahead.
    pub gaze: Option<f32>,
    pub eye_contact: bool,
    /// 0..1, combining presence, pose, gaze and eye closure.
    pub attention: f32,
}

impl FrameAnalysis {
    /// The eyes' openness the blink tracker follows: both eyes' aspect ratios averaged, since
    /// a blink closes both; `None` without a face.
    pub fn openness(&self) -> Option<f32> {
        self.eye_openness.map(|(l, r)| (l + r) / 2.0)
    }
}

/// Why an instance cannot analyse frames at all (its models are not installed). The reason is
/// what operators read: which file is missing and how to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The models ran and failed (a shape or arithmetic error in the graph).
    #[error("analysis failed")]
    Failed(#[source] crate::vision::graph::GraphError),
}

/// How far a frame's analysis looks for faces: the caller chooses, since what a frame needs
/// depends on the frames before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scan {
    /// Refit the face where it was in the previous frame of the session (its box), skipping the
    /// detector while it holds; detect near faces only when it is lost.
    Track(FaceBox),
    /// Detect near faces: the candidate, and anyone else close to the camera.
    Near,
    /// Detect near and far faces: everyone in view is counted, people a few metres behind the
    /// candidate included, and a candidate sitting back is found. Costs several detector passes.
    Everyone,
}

/// While a face is tracked, the detector still runs every this many frames, so a second face
/// (an integrity signal) is not missed for long.
pub const REDETECT_EVERY: u32 = 10;

/// Every this many frames (10 s at 5 frames per second) the detection also runs the far pass,
/// which counts people a few metres away. It costs about four times a whole tracked frame, so not
/// on every re-detection; between far passes the people it counted stay counted.
pub const FAR_EVERY: u32 = 50;

/// A session's first far pass comes within this many frames of its start (4 s at 5 frames per
/// second), at a frame of its own (see [`Scanner::for_session`]): long enough to spread the far
/// passes of sessions that start together, short enough that a second person is counted within
/// seconds. With every session's far pass on its first frame, 20 candidates starting at once had
/// their first second's p95 at ~120 ms with frames sampled out; spread, ~87 ms with none sampled
/// out in five of six runs (`loadgen`, medians of 6).
pub const FIRST_FAR_WITHIN: u32 = 20;

/// The order in which a session's frames look for faces, and the face count that carries over
/// between them: the service keeps one per session, and the benchmarks, tests and evaluation
/// play clips through one so that they scan exactly as the service does.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The frame of the session's first far pass (see [`Scanner::for_session`]); 0 runs it on
    /// the first frame.
    phase: u32,
    /// Frames scanned so far.
    frames: u32,
    last_face: Option<FaceBox>,
    frames_since_detection: u32,
    /// `None` before the first far pass.
    frames_since_far: Option<u32>,
    face_count: u32,
    /// Faces the last far pass counted.
    far_count: u32,
}

impl Scanner {
    /// A session's scanner, whose far passes and re-detections come at a phase of its own, taken
    /// from the session id: its first frame runs the near detector only, and the first far pass
    /// comes within [`FIRST_FAR_WITHIN`] frames (at once if the near detector found no one: a
    /// candidate sitting back), then every [`FAR_EVERY`]. Sessions that start together (a
    /// scheduled round of interviews, or the load generator's candidates) would otherwise all run
    /// the far pass on the same frames. Measured with `loadgen` (20 candidates x 5 frames/s
    /// started at once): in the second where all twenty ran the far pass, p95 rose from 40-50 ms
    /// to ~200 ms and a fifth of the frames were sampled out.
    pub fn for_session(session_id: &str) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(session_id, &mut hasher);
        Self {
            phase: (std::hash::Hasher::finish(&hasher) % u64::from(FIRST_FAR_WITHIN)) as u32,
            ..Self::default()
        }
    }

    /// How the next frame looks for faces.
    pub fn next(&self) -> Scan {
        if self.far_due() {
            Scan::Everyone
        } else {
            self.near_or_track()
        }
    }

    /// How the next frame looks for faces where the far pass can run apart from the frame (the
    /// service, on a thread of its own), and whether it is due: a candidate already in view is
    /// answered as if it were not, and the far pass counts the people behind them meanwhile
    /// ([`Self::far_started`], [`Self::far_counted`]). A candidate not in view still waits
    /// for it, since the far pass is also what finds a candidate sitting back.
    pub fn next_apart(&self) -> (Scan, bool) {
        match (self.far_due(), self.last_face) {
            (true, Some(_)) => (self.near_or_track(), true),
            (true, None) => (Scan::Everyone, false),
            (false, _) => (self.near_or_track(), false),
        }
    }

    /// Whether the next frame is the far pass's.
    fn far_due(&self) -> bool {
        match self.frames_since_far {
            // Counted since the last far pass: this frame is the n + 1-th after it.
            Some(n) => n + 1 >= FAR_EVERY,
            None => self.frames >= self.phase || (self.frames > 0 && self.last_face.is_none()),
        }
    }

    /// The next frame's scan without the far pass: tracking the face, or the near detector when
    /// it is lost or its re-detection is due.
    fn near_or_track(&self) -> Scan {
        match self.last_face {
            Some(face) if self.frames_since_detection + 1 < REDETECT_EVERY => Scan::Track(face),
            _ => Scan::Near,
        }
    }

    /// The far pass [`Self::next_apart`] called for was started on the last frame scanned: the
    /// next one is due [`FAR_EVERY`] frames later. Not called when it could not be started (its
    /// queue full), so the next frame asks again.
    pub fn far_started(&mut self) {
        self.frames_since_far = Some(0);
    }

    /// A far pass run apart counted `count` people: they stay counted, as after a frame scanned
    /// [`Scan::Everyone`], from the next frame on.
    pub fn far_counted(&mut self, count: u32) {
        self.far_count = count;
        if self.face_count > 0 {
            self.face_count = self.face_count.max(count);
        }
    }

    /// Keeps what the next frame needs from this one's analysis (scanned as `scan`): where the
    /// face was and when each pass last ran. A tracked frame (no detector) keeps the face count
    /// the detector last saw, and people the far pass counted stay counted until the next one.
    pub fn saw(&mut self, scan: Scan, analysis: &mut FrameAnalysis) {
        self.frames_since_far = match scan {
            Scan::Everyone => Some(0),
            _ => self.frames_since_far.map(|n| n + 1),
        };
        if scan == Scan::Everyone {
            self.far_count = analysis.face_count;
        }
        if analysis.detector_ran {
            // The near re-detections keep the session's phase from its first frame on.
            self.frames_since_detection = match self.frames {
                0 => (REDETECT_EVERY - self.phase % REDETECT_EVERY) % REDETECT_EVERY,
                _ => 0,
            };
            if analysis.face_count > 0 {
                analysis.face_count = analysis.face_count.max(self.far_count);
            }
            self.face_count = analysis.face_count;
        } else {
            self.frames_since_detection += 1;
            analysis.face_count = self.face_count.max(1);
        }
        self.frames = self.frames.saturating_add(1);
        self.last_face = analysis.face;
    }
}

/// A face-analysis pipeline. Runs on a blocking worker thread, never on the async runtime.
pub trait FrameAnalyzer: Send + Sync + 'static {
    /// Analyses one decoded frame, looking for faces as `scan` says.
    fn analyze(
        &self,
        frame: &RgbImage,
        policy: AnalysisPolicy,
        scan: Scan,
    ) -> Result<FrameAnalysis, AnalyzerError>;

    /// How many people are in view, near and far: the count of a frame scanned
    /// [`Scan::Everyone`], for a far pass run apart from the frame (see [`Scanner::next_apart`]).
    fn count_everyone(&self, frame: &RgbImage) -> Result<u32, AnalyzerError> {
        Ok(self
            .analyze(frame, AnalysisPolicy::Engagement, Scan::Everyone)?
            .face_count)
    }

    /// `Err` with the reason when this analyzer cannot serve at all.
    fn availability(&self) -> Result<(), Unavailable> {
        Ok(())
    }
}

/// The analyzer of an instance without model files: every analysis is refused with the reason,
/// which callers see as gRPC UNAVAILABLE and which the interview service turns into degraded mode.
pub struct ModelsMissing(pub Unavailable);

impl FrameAnalyzer for ModelsMissing {
    fn analyze(
        &self,
        _: &RgbImage,
        _: AnalysisPolicy,
        _: Scan,
    ) -> Result<FrameAnalysis, AnalyzerError> {
        Err(AnalyzerError::Unavailable(self.0.clone()))
    }

    fn availability(&self) -> Result<(), Unavailable> {
        Err(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the pipeline would say on a frame scanned as `scan`: a face, and how many people.
    fn seen(scan: Scan, count: u32) -> FrameAnalysis {
        FrameAnalysis {
            face_count: count,
            detector_ran: scan != Scan::Track(face()),
            face: Some(face()),
            ..Default::default()
        }
    }

    fn face() -> FaceBox {
        FaceBox {
            x: 100.0,
            y: 50.0,
            width: 120.0,
            height: 120.0,
            confidence: 0.9,
        }
    }

    #[test]
    fn a_session_counts_everyone_first_then_tracks_redetects_and_counts_everyone_again() {
        let mut scanner = Scanner::default();
        let mut scans = Vec::new();
        let mut counts = Vec::new();
        for i in 0..=FAR_EVERY {
            let scan = scanner.next();
            // Three people at the start (two far away), only the candidate near the camera.
            let count = if scan == Scan::Everyone { 3 } else { 1 };
            let mut analysis = seen(scan, count);
            scanner.saw(scan, &mut analysis);
            scans.push((i, scan));
            counts.push(analysis.face_count);
        }
        assert_eq!(scans[0].1, Scan::Everyone);
        assert_eq!(scans[1].1, Scan::Track(face()));
        assert_eq!(scans[REDETECT_EVERY as usize].1, Scan::Near);
        assert_eq!(scans[FAR_EVERY as usize].1, Scan::Everyone);
        let everyone = scans.iter().filter(|(_, s)| *s == Scan::Everyone).count();
        assert_eq!(everyone, 2, "{scans:?}");
        // The far pass's people stay counted through tracking and near re-detections.
        assert!(counts.iter().all(|c| *c == 3), "{counts:?}");
    }

    /// The frames on which a scanner runs the far pass and the near detector (`near_sees`:
    /// whether the near detector finds the candidate, or only the far pass does).
    fn passes(mut scanner: Scanner, frames: u32, near_sees: bool) -> (Vec<u32>, Vec<u32>) {
        let (mut far, mut near) = (Vec::new(), Vec::new());
        for i in 0..frames {
            let scan = scanner.next();
            match scan {
                Scan::Everyone => far.push(i),
                Scan::Near => near.push(i),
                Scan::Track(_) => {}
            }
            let mut analysis = seen(scan, 1);
            if scan == Scan::Near && !near_sees {
                analysis.face = None;
                analysis.face_count = 0;
            }
            scanner.saw(scan, &mut analysis);
        }
        (far, near)
    }

    #[test]
    fn sessions_that_start_together_run_their_far_passes_and_redetections_on_different_frames() {
        let sessions: Vec<(Vec<u32>, Vec<u32>)> = (0..20)
            .map(|i| {
                passes(
                    Scanner::for_session(&format!("session-{i}")),
                    3 * FAR_EVERY,
                    true,
                )
            })
            .collect();
        for (far, near) in &sessions {
            // The first frame runs the near detector unless the session's phase is 0; the first
            // far pass within FIRST_FAR_WITHIN frames, then every FAR_EVERY; the near detector
            // every REDETECT_EVERY frames at the same phase.
            let phase = far[0];
            assert!(phase < FIRST_FAR_WITHIN, "{far:?}");
            assert_eq!(far.len(), 3, "{far:?}");
            assert!(far.windows(2).all(|w| w[1] - w[0] == FAR_EVERY), "{far:?}");
            assert!(phase == 0 || near[0] == 0, "{near:?}");
            assert!(
                near[1..]
                    .iter()
                    .all(|n| n % REDETECT_EVERY == phase % REDETECT_EVERY),
                "{phase}: {near:?}"
            );
            assert!(
                near.len() as u32 >= 3 * FAR_EVERY / REDETECT_EVERY - 4,
                "{near:?}"
            );
        }
        let mut firsts: Vec<u32> = sessions.iter().map(|(far, _)| far[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert!(
            firsts.len() >= 8,
            "twenty sessions share their far passes: {firsts:?}"
        );
        // One session keeps its phase: the same id, the same frames.
        assert_eq!(
            passes(Scanner::for_session("session-0"), 2 * FAR_EVERY, true),
            passes(Scanner::for_session("session-0"), 2 * FAR_EVERY, true)
        );
    }

    #[test]
    fn a_far_pass_run_apart_is_asked_for_only_with_the_candidate_in_view_and_counts_from_its_result()
     {
        let mut scanner = Scanner::default();
        // No one seen yet: the frame itself looks far (a candidate may be sitting back).
        assert_eq!(scanner.next_apart(), (Scan::Everyone, false));
        let mut analysis = seen(Scan::Everyone, 1);
        scanner.saw(Scan::Everyone, &mut analysis);
        let mut asked = Vec::new();
        for i in 1..=2 * FAR_EVERY + 5 {
            let (scan, far) = scanner.next_apart();
            assert_ne!(scan, Scan::Everyone, "frame {i}");
            let mut analysis = seen(scan, 1);
            scanner.saw(scan, &mut analysis);
            if far {
                asked.push(i);
                // The first one is refused (its queue full): the next frame asks again.
                if asked.len() > 1 {
                    scanner.far_started();
                }
            }
            if asked.len() == 3 {
                scanner.far_counted(3);
            }
            let want = if asked.len() >= 3 { 3 } else { 1 };
            if asked.len() == 3 && far {
                // Counted after this frame was answered.
                assert_eq!(analysis.face_count, 1, "frame {i}");
            } else {
                assert_eq!(analysis.face_count, want, "frame {i}");
            }
        }
        assert_eq!(asked, vec![FAR_EVERY, FAR_EVERY + 1, 2 * FAR_EVERY + 1]);
        // The candidate gone: the frame waits for the far pass again.
        let mut gone = seen(Scan::Near, 0);
        gone.face = None;
        scanner.saw(Scan::Near, &mut gone);
        for _ in 0..FAR_EVERY {
            let (scan, far) = scanner.next_apart();
            assert!(!far);
            if scan == Scan::Everyone {
                return;
            }
            let mut none = seen(scan, 0);
            none.face = None;
            scanner.saw(scan, &mut none);
        }
        panic!("no far pass looked for the candidate");
    }

    #[test]
    fn a_candidate_the_near_detector_misses_on_the_first_frame_is_looked_for_far_on_the_next() {
        let late = (0..100)
            .map(|i| Scanner::for_session(&format!("session-{i}")))
            .find(|s| s.phase > 2)
            .expect("a session whose far pass is not due at once");
        let (far, near) = passes(late, 2, false);
        assert_eq!((far, near), (vec![1], vec![0]));
    }
}
