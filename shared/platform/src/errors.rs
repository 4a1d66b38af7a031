//! One table from failure class to HTTP status and gRPC code, so a failure means the same thing to
//! a browser, a gateway and a gRPC client.
//!
//! Each crate keeps its own error enum and maps every variant (no wildcard arm) to an [`ApiError`]
//! with a stable `code`; this module turns that into an HTTP response or a `tonic::Status`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// What kind of failure it is, whatever the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller sent something malformed or out of range.
    InvalidInput,
    /// The payload is larger than the limit.
    TooLarge,
    NotFound,
    /// The request is valid but not in the current state (a completed session, say).
    Conflict,
    Unauthenticated,
    /// Authenticated, but the role does not allow it.
    Forbidden,
    /// Too many requests: rate limit or load shedding.
    Overloaded,
    /// A dependency is down or the breaker is open.
    Unavailable,
    /// A proxied upstream could not be reached (the gateway's 502).
    BadGateway,
    Timeout,
    Internal,
}

impl ErrorClass {
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidInput => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidInput | Self::TooLarge => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::Conflict => tonic::Code::FailedPrecondition,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::Forbidden => tonic::Code::PermissionDenied,
            Self::Overloaded => tonic::Code::ResourceExhausted,
            Self::Unavailable | Self::BadGateway => tonic::Code::Unavailable,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The class of a gRPC status received from a downstream.
    pub fn from_grpc(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Self::InvalidInput,
            tonic::Code::NotFound => Self::NotFound,
            tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists | tonic::Code::Aborted => {
                Self::Conflict
            }
            tonic::Code::Unauthenticated => Self::Unauthenticated,
            tonic::Code::PermissionDenied => Self::Forbidden,
            tonic::Code::ResourceExhausted => Self::Overloaded,
            tonic::Code::Unavailable => Self::Unavailable,
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Self::Timeout,
            _ => Self::Internal,
        }
    }
}

/// The stable codes that mean the same thing in every service, whatever the protocol. Services add
/// codes for failures only they have (`SESSION_NOT_FOUND`, `ANALYSIS_OFF`, ...).
///
/// | code | class | when |
/// |---|---|---|
/// | `INVALID_ARGUMENT` | invalid input | a field is missing, out of range, or names something unknown (a policy, a limit) |
/// | `INVALID_JSON` | invalid input | a REST body that is not JSON at all |
/// | `UNSUPPORTED_MEDIA_TYPE` | invalid input | a REST body of a content type the route does not take |
/// | `INVALID_MESSAGE` | invalid input | a WebSocket message that is not one of the protocol's messages |
/// | `INVALID_FRAME` | invalid input | a frame that is not one whole JPEG or PNG of sane size, or not base64 |
/// | `FRAME_TOO_LARGE`, `PAYLOAD_TOO_LARGE` | too large | over the frame or body limit |
/// | `NOT_FOUND` | not found | no such route |
/// | `UNAUTHENTICATED` | unauthenticated | missing or wrong credentials |
/// | `FORBIDDEN` | forbidden | valid credentials whose role may not do this |
/// | `RATE_LIMITED`, `OVERLOADED` | overloaded | a client over its rate, or a service shedding load |
/// | `REQUEST_TIMEOUT` | timeout | a REST handler did not answer within the server's request timeout |
/// | `IDLE_TIMEOUT` | (WebSocket only) | a socket silent past its idle timeout, pings unanswered; it is closed |
/// | `BROKER_UNAVAILABLE`, `DOWNSTREAM_UNAVAILABLE`, `MODELS_UNAVAILABLE` | unavailable | a dependency is down |
/// | `INTERNAL` | internal | anything else; details stay in the service's log |
pub mod code {
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    pub const INVALID_JSON: &str = "INVALID_JSON";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    pub const INVALID_FRAME: &str = "INVALID_FRAME";
    pub const FRAME_TOO_LARGE: &str = "FRAME_TOO_LARGE";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const OVERLOADED: &str = "OVERLOADED";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const IDLE_TIMEOUT: &str = "IDLE_TIMEOUT";
    pub const BROKER_UNAVAILABLE: &str = "BROKER_UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// The interview was erased: its late work is refused, and callers drop it.
    pub const SESSION_ERASED: &str = "SESSION_ERASED";
    /// No consent in force for the analysis asked: refused by the interview service and, for
    /// a frame without a valid consent proof, by the emotion service.
    pub const CONSENT_REQUIRED: &str = "CONSENT_REQUIRED";
}

/// The stable code a service put on a gRPC error (see `From<ApiError> for Status`).
pub fn status_code(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
}

/// The error every client sees: a class, a stable machine-readable code and a human message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub class: ErrorClass,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(class: ErrorClass, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            code,
            message: message.into(),
        }
    }

    /// For failures whose details must not reach clients: logged here, generic outside.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            ErrorClass::Internal,
            code::INTERNAL,
            "internal error; see the service logs",
        )
    }

    /// A refused frame, the same in every service that takes frames.
    pub fn frame(err: &iv_frames::FrameError) -> Self {
        let (class, code) = if err.is_too_large() {
            (ErrorClass::TooLarge, code::FRAME_TOO_LARGE)
        } else {
            (ErrorClass::InvalidInput, code::INVALID_FRAME)
        };
        Self::new(class, code, Chain(err).to_string())
    }
}

/// The JSON body of every HTTP error: `{"error": "...", "code": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: Some(self.code.to_string()),
        };
        (self.class.http_status(), Json(body)).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let mut status = tonic::Status::new(err.class.grpc_code(), err.message);
        if let Ok(v) = err.code.parse() {
            status.metadata_mut().insert("x-error-code", v);
        }
        status
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (class, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (ErrorClass::InvalidInput, code::UNSUPPORTED_MEDIA_TYPE)
            }
            JsonRejection::BytesRejection(_) => (ErrorClass::TooLarge, code::PAYLOAD_TOO_LARGE),
            // JSON, but a field is missing, of the wrong type or an unknown value: the same
            // failure as a field a service checks itself.
            JsonRejection::JsonDataError(_) => (ErrorClass::InvalidInput, code::INVALID_ARGUMENT),
            _ => (ErrorClass::InvalidInput, code::INVALID_JSON),
        };
        Self::new(class, code, rejection.body_text())
    }
}

/// A query string that does not parse is bad input like any field a service checks itself.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            ErrorClass::InvalidInput,
            code::INVALID_ARGUMENT,
            rejection.body_text(),
        )
    }
}

/// A query-string extractor whose rejection is the service's own error format (400
/// `INVALID_ARGUMENT`), not axum's plain text.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// A JSON extractor whose rejection is the service's own error format, not axum's plain text.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Makes a crate's error enum answer HTTP (`IntoResponse`) and gRPC (`From<E> for Status`)
/// through its one mapping to [`ApiError`], so each crate writes only that mapping.
#[macro_export]
macro_rules! answers_with_api_error {
    ($error:ty) => {
        impl ::axum::response::IntoResponse for $error {
            fn into_response(self) -> ::axum::response::Response {
                ::axum::response::IntoResponse::into_response($crate::errors::ApiError::from(self))
            }
        }

        impl ::core::convert::From<$error> for ::tonic::Status {
            fn from(err: $error) -> Self {
                $crate::errors::ApiError::from(err).into()
            }
        }
    };
}

/// Shows an error with its causes, `outer: inner: root`, for logs and stored reasons. Error types
/// here keep their causes as sources, so a plain `{}` shows only the outermost message.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_maps_consistently_to_grpc_and_back() {
        for class in [
            ErrorClass::InvalidInput,
            ErrorClass::NotFound,
            ErrorClass::Conflict,
            ErrorClass::Unauthenticated,
            ErrorClass::Overloaded,
            ErrorClass::Unavailable,
            ErrorClass::Timeout,
            ErrorClass::Internal,
        ] {
            assert_eq!(ErrorClass::from_grpc(class.grpc_code()), class);
        }
    }

    #[test]
    fn a_chain_shows_every_cause_outermost_first() {
        #[derive(Debug, thiserror::Error)]
        #[error("publishing failed")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("connection reset"));
        assert_eq!(
            Chain(&err).to_string(),
            "publishing failed: connection reset"
        );
    }

    #[test]
    fn overload_is_429_and_resource_exhausted() {
        assert_eq!(
            ErrorClass::Overloaded.http_status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            ErrorClass::Overloaded.grpc_code(),
            tonic::Code::ResourceExhausted
        );
    }
}
