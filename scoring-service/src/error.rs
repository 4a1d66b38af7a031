//! The scoring service's errors and their one mapping to what clients see.

use axum::response::{IntoResponse, Response};
use iv_platform::errors::{ApiError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("no score for session {0} yet")]
    ScoreNotFound(String),
    #[error("raw video is never stored, so it cannot be part of a report")]
    VideoNotStored,
    #[error("unsupported report format {0:?}; use json or pdf")]
    UnsupportedFormat(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record for session {session} is unreadable: {reason}")]
    Corrupt { session: String, reason: String },
}

impl From<ScoringError> for ApiError {
    fn from(err: ScoringError) -> Self {
        match &err {
            ScoringError::InvalidInput(m) => {
                ApiError::new(ErrorClass::InvalidInput, "INVALID_ARGUMENT", m.clone())
            }
            ScoringError::ScoreNotFound(_) => {
                ApiError::new(ErrorClass::NotFound, "SCORE_NOT_FOUND", err.to_string())
            }
            ScoringError::VideoNotStored => ApiError::new(
                ErrorClass::InvalidInput,
                "VIDEO_NOT_STORED",
                err.to_string(),
            ),
            ScoringError::UnsupportedFormat(_) => ApiError::new(
                ErrorClass::InvalidInput,
                "UNSUPPORTED_FORMAT",
                err.to_string(),
            ),
            ScoringError::Database(e) => ApiError::internal("scoring database error", e),
            ScoringError::Corrupt { .. } => ApiError::internal("corrupt stored score", &err),
        }
    }
}

impl From<ScoringError> for tonic::Status {
    fn from(err: ScoringError) -> Self {
        ApiError::from(err).into()
    }
}

impl IntoResponse for ScoringError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
