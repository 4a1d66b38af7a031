//! The interview service's errors and their one mapping to HTTP, gRPC and WebSocket codes.

use iv_contracts::policy::UnknownPolicy;
use iv_frames::FrameError;
use iv_platform::bus::BusError;
use iv_platform::errors::{ApiError, Chain, ErrorClass, code};
use iv_platform::resilience::CallError;

#[derive(Debug, thiserror::Error)]
pub enum InterviewError {
    /// A field is missing or out of range.
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Policy(#[from] UnknownPolicy),
    /// A WebSocket message that is not one of the protocol's messages.
    #[error("{0}")]
    InvalidMessage(String),
    /// A REST frame upload of a content type the route does not take.
    #[error(
        "send a frame as application/json {{image, timestamp}} or as an image/jpeg or image/png body"
    )]
    UnsupportedMediaType,

    /// A valid caller whose role may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The organisation revoked this member; their token no longer opens its interviews.
    #[error("your membership of this organisation was revoked")]
    MembershipRevoked,
    #[error("{0} is already a member")]
    MemberExists(String),
    #[error("no member {0}")]
    MemberNotFound(String),
    #[error("an organisation keeps at least one admin")]
    LastAdmin,
    #[error("the invitation could not be signed")]
    Invitation(#[source] iv_platform::auth::AuthError),
    #[error("interview session {0} not found")]
    SessionNotFound(String),
    #[error("interview {0} was erased")]
    SessionErased(String),
    #[error("interview {0} has not been erased")]
    NotErased(String),
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
    #[error(
        "the candidate has not consented to this interview's notice; read GET .../notice and consent with POST .../consent"
    )]
    ConsentRequired,
    #[error("the candidate withdrew consent: nothing more is analysed in this interview")]
    ConsentWithdrawn,
    /// The candidate consented to a notice that is no longer the current one.
    #[error("the notice changed (now version {version}, sha256 {sha256}); read it again")]
    NoticeChanged { version: i64, sha256: String },
    #[error("frame analysis is switched off for this interview")]
    AnalysisOff,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the frame could not be analysed now or queued for later")]
    FrameNotQueued(#[source] tokio::task::JoinError),
    /// The task analysing a socket's frame ended without an outcome (it panicked).
    #[error("the frame's analysis failed")]
    AnalysisTask(#[source] tokio::task::JoinError),
    #[error("the emotion service rejected the frame: {}", .0.status().message())]
    FrameRejected(#[source] CallError),
    #[error(transparent)]
    Downstream(#[from] CallError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Erasure(#[from] iv_platform::erasure::ErasureError),
    #[error("stored {what} is unreadable")]
    Corrupt {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("stored session state {0:?} is unknown")]
    UnknownState(String),
}

impl From<InterviewError> for ApiError {
    fn from(err: InterviewError) -> Self {
        use ErrorClass::*;
        let message = err.to_string();
        let (class, code) = match &err {
            InterviewError::InvalidArgument(_) | InterviewError::Policy(_) => {
                (InvalidInput, code::INVALID_ARGUMENT)
            }
            InterviewError::InvalidMessage(_) => (InvalidInput, code::INVALID_MESSAGE),
            InterviewError::UnsupportedMediaType => (InvalidInput, code::UNSUPPORTED_MEDIA_TYPE),
            InterviewError::Forbidden(_) => (Forbidden, iv_platform::auth::codes::FORBIDDEN),
            InterviewError::MembershipRevoked => (Forbidden, "MEMBERSHIP_REVOKED"),
            InterviewError::MemberExists(_) => (Conflict, "MEMBER_EXISTS"),
            InterviewError::MemberNotFound(_) => (NotFound, "MEMBER_NOT_FOUND"),
            InterviewError::LastAdmin => (Conflict, "LAST_ADMIN"),
            InterviewError::SessionNotFound(_) => (NotFound, "SESSION_NOT_FOUND"),
            InterviewError::SessionCompleted(_) => (Conflict, "SESSION_COMPLETED"),
            InterviewError::SessionErased(_) => (NotFound, code::SESSION_ERASED),
            InterviewError::NotErased(_) => (NotFound, "NOT_ERASED"),
            InterviewError::UnknownQuestion(_) => (InvalidInput, "UNKNOWN_QUESTION"),
            InterviewError::AlreadyAnswered(_) => (Conflict, "QUESTION_ALREADY_ANSWERED"),
            InterviewError::NotCurrentQuestion { .. } => (Conflict, "NOT_CURRENT_QUESTION"),
            InterviewError::NoOpenQuestion => (Conflict, "NO_OPEN_QUESTION"),
            InterviewError::ConsentRequired => (Conflict, code::CONSENT_REQUIRED),
            InterviewError::ConsentWithdrawn => (Conflict, "CONSENT_WITHDRAWN"),
            InterviewError::NoticeChanged { .. } => (Conflict, "NOTICE_CHANGED"),
            InterviewError::AnalysisOff => (Conflict, "ANALYSIS_OFF"),
            InterviewError::Frame(f) => return ApiError::frame(f),
            InterviewError::FrameRejected(_) => (InvalidInput, code::INVALID_FRAME),
            InterviewError::FrameNotQueued(_) => (Unavailable, "FRAME_NOT_QUEUED"),
            InterviewError::Downstream(e) if e.is_busy() => (Overloaded, "ANALYSIS_BUSY"),
            InterviewError::Downstream(e) if e.is_unavailable() => {
                (Unavailable, "DOWNSTREAM_UNAVAILABLE")
            }
            InterviewError::Downstream(e) => {
                (ErrorClass::from_grpc(e.status().code()), "DOWNSTREAM_ERROR")
            }
            InterviewError::Bus(_) => (Unavailable, code::BROKER_UNAVAILABLE),
            InterviewError::Database(_)
            | InterviewError::Erasure(_)
            | InterviewError::Invitation(_)
            | InterviewError::AnalysisTask(_)
            | InterviewError::Corrupt { .. }
            | InterviewError::UnknownState(_) => {
                return ApiError::internal("interview storage", &Chain(&err));
            }
        };
        ApiError::new(class, code, message)
    }
}

iv_platform::answers_with_api_error!(InterviewError);
