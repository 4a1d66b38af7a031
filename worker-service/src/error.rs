//! The worker's one error enum, and its two mappings in one place: a job's failure to the bus's
//! retry-or-dead-letter choice, and an ops request's failure to the HTTP status and code.

use iv_platform::bus::{BusError, HandlerError};
use iv_platform::errors::{ApiError, Chain, ErrorClass, code};
use iv_platform::resilience::CallError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A downstream call of a job failed; `step` says which.
    #[error("{step}")]
    Call {
        step: &'static str,
        #[source]
        source: CallError,
    },
    /// An event a job announces could not be published.
    #[error("publishing {routing_key}")]
    Publish {
        routing_key: &'static str,
        #[source]
        source: BusError,
    },
    #[error("queue must be one of {known}")]
    UnknownQueue { known: String },
    #[error("limit must be 1 to {max}")]
    InvalidLimit { max: usize },
    /// The broker could not list or replay dead letters.
    #[error("the message broker is unavailable")]
    Broker(#[source] BusError),
    #[error("no instance of {0} to ask")]
    NoInstance(&'static str),
    /// The interview service could not be reached, or its answer read.
    #[error("asking the interview service")]
    Interview(#[source] anyhow::Error),
    #[error("the interview service refused: {status} {body}")]
    InterviewRefused { status: u16, body: String },
}

impl WorkerError {
    pub fn call(step: &'static str) -> impl FnOnce(CallError) -> Self {
        move |source| Self::Call { step, source }
    }
}

/// A failure that may pass (a service down, the broker away) is retried later; one that never will
/// (a rejected request) is dead-lettered.
impl From<WorkerError> for HandlerError {
    fn from(err: WorkerError) -> Self {
        let transient = match &err {
            WorkerError::Call { source, .. } => source.is_unavailable() || source.is_busy(),
            WorkerError::Publish { .. }
            | WorkerError::Broker(_)
            | WorkerError::NoInstance(_)
            | WorkerError::Interview(_) => true,
            WorkerError::InterviewRefused { .. } => false,
            WorkerError::UnknownQueue { .. } | WorkerError::InvalidLimit { .. } => false,
        };
        if transient {
            HandlerError::transient(err)
        } else {
            HandlerError::permanent(err)
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(err: WorkerError) -> Self {
        let (class, code) = match &err {
            WorkerError::UnknownQueue { .. } | WorkerError::InvalidLimit { .. } => {
                (ErrorClass::InvalidInput, code::INVALID_ARGUMENT)
            }
            WorkerError::Broker(_) | WorkerError::Publish { .. } => {
                (ErrorClass::Unavailable, code::BROKER_UNAVAILABLE)
            }
            // Without its audit entry, a replay does not happen: the trail must be whole.
            WorkerError::NoInstance(_)
            | WorkerError::Interview(_)
            | WorkerError::InterviewRefused { .. } => {
                (ErrorClass::Unavailable, "AUDIT_UNAVAILABLE")
            }
            WorkerError::Call { .. } => {
                return ApiError::internal("worker call", &Chain(&err));
            }
        };
        ApiError::new(class, code, Chain(&err).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Status;

    fn failed(status: Status) -> WorkerError {
        WorkerError::Call {
            step: "x",
            source: CallError::Failed {
                downstream: "emotion",
                status,
            },
        }
    }

    #[test]
    fn a_down_service_is_retried_and_a_rejected_request_is_dead_lettered() {
        let open = WorkerError::Call {
            step: "x",
            source: CallError::Open("emotion"),
        };
        assert!(matches!(
            HandlerError::from(open),
            HandlerError::Transient(_)
        ));
        assert!(matches!(
            HandlerError::from(failed(Status::unavailable("down"))),
            HandlerError::Transient(_)
        ));
        let bad = HandlerError::from(failed(Status::invalid_argument("corrupt frame")));
        assert!(matches!(bad, HandlerError::Permanent(_)));
        assert!(
            Chain(&bad).to_string().contains("corrupt frame"),
            "the cause is kept: {}",
            Chain(&bad)
        );
    }
}
