//! The emotion service's errors and their one mapping to what clients see.

use iv_platform::errors::{ApiError, Chain, ErrorClass, code};

use crate::analysis::{AnalyzerError, Unavailable};
use crate::inference::PoolError;
use crate::vision::graph::GraphError;
use iv_contracts::policy::UnknownPolicy;
use iv_frames::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum EmotionError {
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("frame analysis is switched off for session {0}")]
    AnalysisOff(String),
    #[error("face analysis unavailable: {0}")]
    ModelsUnavailable(#[from] Unavailable),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("analysis failed")]
    AnalysisFailed(#[source] GraphError),
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// The frame's row was not committed: the database's error, or none when the writer
    /// stopped.
    #[error("frame not stored")]
    FramesNotWritten(#[source] Option<std::sync::Arc<sqlx::Error>>),
    #[error(transparent)]
    Policy(#[from] UnknownPolicy),
    /// Unknown, or another organisation's: the same answer either way.
    #[error("no session {0}")]
    SessionNotFound(String),
    #[error("{0}")]
    Forbidden(&'static str),
    /// Erased on request or at the end of its retention: nothing is analysed or stored for it.
    #[error("session {0} was erased")]
    SessionErased(String),
    /// No consent came with the frame, or it allows less than the frame asks for.
    #[error(transparent)]
    Consent(#[from] iv_contracts::consent::ConsentRefusal),
    #[error("erasure")]
    Erasure(#[from] iv_platform::erasure::ErasureError),
}

impl From<AnalyzerError> for EmotionError {
    fn from(err: AnalyzerError) -> Self {
        match err {
            AnalyzerError::Unavailable(u) => Self::ModelsUnavailable(u),
            AnalyzerError::Failed(e) => Self::AnalysisFailed(e),
        }
    }
}

impl From<EmotionError> for ApiError {
    fn from(err: EmotionError) -> Self {
        let message = err.to_string();
        match &err {
            EmotionError::InvalidInput(_) | EmotionError::Policy(_) => {
                ApiError::new(ErrorClass::InvalidInput, code::INVALID_ARGUMENT, message)
            }
            EmotionError::Frame(f) => ApiError::frame(f),
            EmotionError::SessionNotFound(_) => {
                ApiError::new(ErrorClass::NotFound, "SESSION_NOT_FOUND", message)
            }
            EmotionError::Forbidden(_) => ApiError::new(
                ErrorClass::Forbidden,
                iv_platform::auth::codes::FORBIDDEN,
                message,
            ),
            EmotionError::AnalysisOff(_) => {
                ApiError::new(ErrorClass::Conflict, "ANALYSIS_OFF", message)
            }
            EmotionError::Consent(_) => {
                ApiError::new(ErrorClass::Conflict, code::CONSENT_REQUIRED, message)
            }
            EmotionError::SessionErased(_) => {
                ApiError::new(ErrorClass::Conflict, code::SESSION_ERASED, message)
            }
            EmotionError::ModelsUnavailable(_) => {
                ApiError::new(ErrorClass::Unavailable, "MODELS_UNAVAILABLE", message)
            }
            EmotionError::Pool(
                PoolError::Overloaded(_) | PoolError::PastDeadline(_) | PoolError::LiveFirst,
            ) => ApiError::new(ErrorClass::Overloaded, "OVERLOADED", message),
            EmotionError::Pool(PoolError::Closed(_) | PoolError::Crashed(_))
            | EmotionError::AnalysisFailed(_)
            | EmotionError::Database(_)
            | EmotionError::FramesNotWritten(_)
            | EmotionError::Erasure(_) => ApiError::internal("frame analysis", &Chain(&err)),
        }
    }
}

iv_platform::answers_with_api_error!(EmotionError);
