//! The interview service's errors and their one mapping to HTTP, gRPC and WebSocket codes.

use axum::response::{IntoResponse, Response};
use iv_frames::FrameError;
use iv_platform::bus::BusError;
use iv_platform::errors::{ApiError, ErrorClass};
use iv_platform::resilience::CallError;

#[derive(Debug, thiserror::Error)]
pub enum InterviewError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("interview session {0} not found")]
    SessionNotFound(String),
    #[error("interview session {0} is already completed")]
    SessionCompleted(String),
    #[error("question {0:?} is not part of this interview")]
    UnknownQuestion(String),
    #[error("question {0:?} was already answered")]
    AlreadyAnswered(String),
    #[error("the current question is {current:?}, not {given:?}")]
    NotCurrentQuestion { current: String, given: String },
    #[error("every question has been answered; complete the interview")]
    NoOpenQuestion,
    #[error("the candidate has not consented to frame analysis for this interview")]
    ConsentRequired,
    #[error("frame analysis is switched off for this interview")]
    AnalysisOff,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the frame could not be analysed now or queued for later: {0}")]
    FrameNotQueued(String),
    #[error("the emotion service rejected the frame: {0}")]
    FrameRejected(String),
    #[error(transparent)]
    Downstream(#[from] CallError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

impl From<InterviewError> for ApiError {
    fn from(err: InterviewError) -> Self {
        use ErrorClass::*;
        let message = err.to_string();
        let (class, code) = match &err {
            InterviewError::InvalidInput(_) => (InvalidInput, "INVALID_MESSAGE"),
            InterviewError::SessionNotFound(_) => (NotFound, "SESSION_NOT_FOUND"),
            InterviewError::SessionCompleted(_) => (Conflict, "SESSION_COMPLETED"),
            InterviewError::UnknownQuestion(_) => (InvalidInput, "UNKNOWN_QUESTION"),
            InterviewError::AlreadyAnswered(_) => (Conflict, "QUESTION_ALREADY_ANSWERED"),
            InterviewError::NotCurrentQuestion { .. } => (Conflict, "NOT_CURRENT_QUESTION"),
            InterviewError::NoOpenQuestion => (Conflict, "NO_OPEN_QUESTION"),
            InterviewError::ConsentRequired => (Conflict, "CONSENT_REQUIRED"),
            InterviewError::AnalysisOff => (Conflict, "ANALYSIS_OFF"),
            InterviewError::Frame(FrameError::TooLarge { .. }) => (TooLarge, "FRAME_TOO_LARGE"),
            InterviewError::Frame(
                FrameError::Empty
                | FrameError::UnsupportedFormat
                | FrameError::FormatMismatch { .. }
                | FrameError::BadDimensions { .. }
                | FrameError::Corrupt(_),
            ) => (InvalidInput, "INVALID_FRAME"),
            InterviewError::FrameRejected(_) => (InvalidInput, "INVALID_FRAME"),
            InterviewError::FrameNotQueued(_) => (Unavailable, "FRAME_NOT_QUEUED"),
            InterviewError::Downstream(e) if e.is_unavailable() => {
                (Unavailable, "DOWNSTREAM_UNAVAILABLE")
            }
            InterviewError::Downstream(e) => {
                (ErrorClass::from_grpc(e.status().code()), "DOWNSTREAM_ERROR")
            }
            InterviewError::Bus(_) => (Unavailable, "BROKER_UNAVAILABLE"),
            InterviewError::Database(e) => {
                return ApiError::internal("interview database error", e);
            }
            InterviewError::Corrupt(e) => return ApiError::internal("corrupt interview record", e),
        };
        ApiError::new(class, code, message)
    }
}

impl IntoResponse for InterviewError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
