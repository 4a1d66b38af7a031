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

/// Every this many frames (10 s at 5 frames per second, and on a session's first frame) the
/// detection also runs the far pass, which counts people a few metres away. It costs about
/// four times a whole tracked frame, so not on every re-detection; between far passes the
/// people it counted stay counted.
pub const FAR_EVERY: u32 = 50;

impl Scan {
    /// How the service scans the `index`-th frame of a steady stream whose previous frame found
    /// the face at `last` (benchmarks and tests play clips this way).
    pub fn for_frame(index: usize, last: Option<FaceBox>) -> Self {
        match last {
            _ if index.is_multiple_of(FAR_EVERY as usize) => Self::Everyone,
            Some(face) if !index.is_multiple_of(REDETECT_EVERY as usize) => Self::Track(face),
            _ => Self::Near,
        }
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
