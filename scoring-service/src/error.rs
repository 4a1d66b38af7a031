//! The scoring service's errors and their one mapping to what clients see.

use iv_platform::errors::{ApiError, Chain, ErrorClass, code};

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Policy(#[from] iv_contracts::policy::UnknownPolicy),
    #[error("no score for session {0} yet")]
    ScoreNotFound(String),
    #[error("raw video is never stored, so it cannot be part of a report")]
    VideoNotStored,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("unsupported report format {0:?}; use json or pdf")]
    UnsupportedFormat(String),
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("a record could not be written as JSON")]
    Serialize(#[source] serde_json::Error),
    #[error("the sentence model failed")]
    Model(#[from] crate::meaning::ModelError),
    #[error("the scoring worker stopped before answering")]
    WorkerGone(#[source] tokio::task::JoinError),
    /// Erased on request or at the end of its retention: it is never scored again.
    #[error("session {0} was erased")]
    SessionErased(String),
    #[error("erasure")]
    Erasure(#[from] iv_platform::erasure::ErasureError),
    #[error("stored record for session {session} is unreadable")]
    Corrupt {
        session: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<ScoringError> for ApiError {
    fn from(err: ScoringError) -> Self {
        match &err {
            ScoringError::InvalidInput(_) | ScoringError::Policy(_) => ApiError::new(
                ErrorClass::InvalidInput,
                code::INVALID_ARGUMENT,
                err.to_string(),
            ),
            ScoringError::ScoreNotFound(_) => {
                ApiError::new(ErrorClass::NotFound, "SCORE_NOT_FOUND", err.to_string())
            }
            ScoringError::Forbidden(_) => ApiError::new(
                ErrorClass::Forbidden,
                iv_platform::auth::codes::FORBIDDEN,
                err.to_string(),
            ),
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
            ScoringError::SessionErased(_) => {
                ApiError::new(ErrorClass::Conflict, code::SESSION_ERASED, err.to_string())
            }
            ScoringError::Database(_)
            | ScoringError::Erasure(_)
            | ScoringError::Serialize(_)
            | ScoringError::Corrupt { .. } => ApiError::internal("scoring storage", &Chain(&err)),
            ScoringError::Model(_) | ScoringError::WorkerGone(_) => {
                ApiError::internal("answer scoring", &Chain(&err))
            }
        }
    }
}

iv_platform::answers_with_api_error!(ScoringError);
