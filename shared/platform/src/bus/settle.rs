//! What becomes of a message once its handler ran. Both backends carry out this one decision, so
//! they cannot drift apart in when they retry and when they give up.

use std::time::Duration;

use super::{HandlerError, QueueKind, Subscription};
use crate::errors::Chain;

/// The fate of a handled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Handled: acknowledge it.
    Ack,
    /// Failed for now: deliver it again as `next_attempt` after `delay`.
    Retry {
        next_attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// Failed for good (or for the last time): keep it with the reason, out of the way.
    DeadLetter { reason: String },
    /// Failed, on a per-instance queue: dropped, as nothing durable depends on it.
    Drop { reason: String },
}

impl Settle {
    /// Decides from the handler's outcome and the attempt that just ran (1 for the first).
    ///
    /// A transient failure is retried while attempts remain, each retry waiting the subscription's
    /// delay times the attempt number, so a downstream that stays down is asked less and less
    /// often. A permanent failure, or a transient one on the last attempt, is dead-lettered.
    pub fn decide(outcome: Result<(), HandlerError>, attempt: u32, sub: &Subscription) -> Self {
        let err = match outcome {
            Ok(()) => return Self::Ack,
            Err(err) => err,
        };
        let reason = Chain(&err).to_string();
        if sub.kind == QueueKind::PerInstance {
            return Self::Drop { reason };
        }
        match err {
            HandlerError::Transient(_) if attempt < sub.max_attempts => Self::Retry {
                next_attempt: attempt + 1,
                delay: sub.retry_delay.saturating_mul(attempt.max(1)),
                reason,
            },
            HandlerError::Transient(_) | HandlerError::Permanent(_) => Self::DeadLetter { reason },
        }
    }

    /// The label of `events_consumed_total`'s `outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Ack => "ok",
            Self::Retry { .. } => "retried",
            Self::DeadLetter { .. } => "dead_lettered",
            Self::Drop { .. } => "dropped",
        }
    }

    /// Logs the decision and counts it.
    pub(super) fn record(&self, queue: &str, message_id: &str, attempt: u32) {
        match self {
            Self::Ack => {}
            Self::Retry { delay, reason, .. } => {
                tracing::warn!(queue, message_id, attempt, %reason, ?delay, "handler failed; retrying later");
            }
            Self::DeadLetter { reason } => {
                tracing::error!(queue, message_id, attempt, %reason, "dead-lettering message");
            }
            Self::Drop { reason } => {
                tracing::warn!(queue, message_id, %reason, "notification not handled; dropped");
            }
        }
        metrics::counter!("events_consumed_total", "queue" => queue.to_string(), "outcome" => self.outcome())
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Subscription {
        let mut sub = Subscription::new("q", &["#"]);
        sub.max_attempts = 3;
        sub.retry_delay = Duration::from_secs(2);
        sub
    }

    #[test]
    fn success_is_acked_on_any_attempt() {
        assert_eq!(Settle::decide(Ok(()), 1, &sub()), Settle::Ack);
        assert_eq!(Settle::decide(Ok(()), 3, &sub()), Settle::Ack);
    }

    #[test]
    fn a_transient_failure_is_retried_later_each_time() {
        let first = Settle::decide(Err(HandlerError::transient("down")), 1, &sub());
        assert_eq!(
            first,
            Settle::Retry {
                next_attempt: 2,
                delay: Duration::from_secs(2),
                reason: "transient failure: down".into()
            }
        );
        let second = Settle::decide(Err(HandlerError::transient("down")), 2, &sub());
        assert!(
            matches!(second, Settle::Retry { next_attempt: 3, delay, .. } if delay == Duration::from_secs(4)),
            "{second:?}"
        );
    }

    #[test]
    fn a_transient_failure_on_the_last_attempt_is_dead_lettered() {
        assert_eq!(
            Settle::decide(Err(HandlerError::transient("still down")), 3, &sub()),
            Settle::DeadLetter {
                reason: "transient failure: still down".into()
            }
        );
    }

    #[test]
    fn a_permanent_failure_is_dead_lettered_at_once() {
        assert_eq!(
            Settle::decide(Err(HandlerError::permanent("malformed")), 1, &sub()),
            Settle::DeadLetter {
                reason: "permanent failure: malformed".into()
            }
        );
    }

    #[test]
    fn a_subscription_of_one_attempt_never_retries() {
        let mut once = sub();
        once.max_attempts = 1;
        assert!(matches!(
            Settle::decide(Err(HandlerError::transient("down")), 1, &once),
            Settle::DeadLetter { .. }
        ));
    }

    #[test]
    fn the_reason_keeps_every_cause() {
        use iv_contracts::events::{Event, InterviewCompleted};
        let cause = crate::bus::Undecodable {
            routing_key: "interview.completed.v1".into(),
            source: InterviewCompleted::decode_from(b"\xff\xff\xff").unwrap_err(),
        };
        let Settle::DeadLetter { reason } =
            Settle::decide(Err(HandlerError::permanent(cause)), 1, &sub())
        else {
            panic!("dead letter expected")
        };
        assert!(
            reason.starts_with("permanent failure: undecodable interview.completed.v1: "),
            "{reason}"
        );
        assert!(reason.len() > "permanent failure: undecodable interview.completed.v1: ".len());
    }
}
