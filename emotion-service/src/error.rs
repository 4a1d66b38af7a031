//! The emotion service's errors and their one mapping to what clients see.

use axum::response::{IntoResponse, Response};
use iv_platform::errors::{ApiError, ErrorClass};

use crate::pool::PoolError;
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
    ModelsUnavailable(String),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("analysis failed: {0}")]
    AnalysisFailed(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<EmotionError> for ApiError {
    fn from(err: EmotionError) -> Self {
        let message = err.to_string();
        match &err {
            EmotionError::InvalidInput(_) => {
                ApiError::new(ErrorClass::InvalidInput, "INVALID_ARGUMENT", message)
            }
            EmotionError::Frame(f) => match f {
                FrameError::TooLarge { .. } => {
                    ApiError::new(ErrorClass::TooLarge, "FRAME_TOO_LARGE", message)
                }
                FrameError::Empty
                | FrameError::UnsupportedFormat
                | FrameError::FormatMismatch { .. }
                | FrameError::BadDimensions { .. }
                | FrameError::Corrupt(_) => {
                    ApiError::new(ErrorClass::InvalidInput, "INVALID_FRAME", message)
                }
            },
            EmotionError::AnalysisOff(_) => {
                ApiError::new(ErrorClass::Conflict, "ANALYSIS_OFF", message)
            }
            EmotionError::ModelsUnavailable(_) => {
                ApiError::new(ErrorClass::Unavailable, "MODELS_UNAVAILABLE", message)
            }
            EmotionError::Pool(PoolError::Overloaded(_)) => {
                ApiError::new(ErrorClass::Overloaded, "OVERLOADED", message)
            }
            EmotionError::Pool(PoolError::Crashed(e)) => {
                ApiError::internal("inference task crashed", e)
            }
            EmotionError::AnalysisFailed(e) => ApiError::internal("analysis failed", e),
            EmotionError::Database(e) => ApiError::internal("emotion database error", e),
        }
    }
}

impl From<EmotionError> for tonic::Status {
    fn from(err: EmotionError) -> Self {
        ApiError::from(err).into()
    }
}

impl IntoResponse for EmotionError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
