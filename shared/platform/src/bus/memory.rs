//! The bus of the one-process stack: the broker's routing, retry and dead-letter rules, with no
//! durability across restarts (use RabbitMQ for that).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    BusError, DeadLetter, Delivery, Handler, OutgoingMessage, Settle, Subscription, topic_matches,
};

/// Dead letters the in-process bus keeps (oldest dropped first), so a long outage cannot exhaust
/// memory with queued frames.
const MAX_DEAD_LETTERS: usize = 1000;

#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    queues: Mutex<Vec<Queue>>,
    dead: Mutex<VecDeque<Dead>>,
}

/// A dead letter, and when it expires (its subscription's `message_ttl`).
struct Dead {
    letter: DeadLetter,
    expires: Option<tokio::time::Instant>,
}

/// The dead letters still unexpired: expired ones are dropped whenever the list is touched.
fn live(m: &Mutex<VecDeque<Dead>>) -> MutexGuard<'_, VecDeque<Dead>> {
    let mut dead = lock(m);
    let now = tokio::time::Instant::now();
    dead.retain(|d| d.expires.is_none_or(|t| t > now));
    dead
}

struct Queue {
    name: String,
    bindings: Vec<String>,
    tx: mpsc::UnboundedSender<Delivery>,
}

/// A poisoned lock only means a handler panicked while holding it; the data is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn first_attempt(
    routing_key: String,
    message_id: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
) -> Delivery {
    Delivery {
        routing_key,
        message_id,
        payload,
        attempt: 1,
        redelivered: false,
        traceparent,
    }
}

impl MemoryBus {
    pub(super) fn dead_letters(&self, queue: &str, limit: usize) -> Vec<DeadLetter> {
        live(&self.inner.dead)
            .iter()
            .filter(|d| d.letter.queue == queue)
            .take(limit)
            .map(|d| d.letter.clone())
            .collect()
    }

    #[cfg(test)]
    pub(super) fn dead_letters_total(&self) -> usize {
        live(&self.inner.dead).len()
    }

    pub(super) fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        let queues = lock(&self.inner.queues);
        let target =
            queues
                .iter()
                .find(|q| q.name == queue)
                .ok_or_else(|| BusError::NoConsumer {
                    queue: queue.to_string(),
                })?;
        let mut dead = live(&self.inner.dead);
        let mut replayed = 0;
        let mut kept = VecDeque::with_capacity(dead.len());
        for d in dead.drain(..) {
            if d.letter.queue == queue && replayed < limit {
                let d = d.letter;
                let _ = target
                    .tx
                    .send(first_attempt(d.routing_key, d.message_id, d.payload, None));
                replayed += 1;
            } else {
                kept.push_back(d);
            }
        }
        *dead = kept;
        Ok(replayed)
    }

    pub(super) fn publish(&self, m: &OutgoingMessage) {
        let queues = lock(&self.inner.queues);
        for q in queues
            .iter()
            .filter(|q| q.bindings.iter().any(|b| topic_matches(b, &m.routing_key)))
        {
            let _ = q.tx.send(first_attempt(
                m.routing_key.clone(),
                m.message_id.clone(),
                m.payload.clone(),
                m.traceparent.clone(),
            ));
        }
    }

    fn dead_letter(&self, sub: &Subscription, delivery: Delivery, reason: String) {
        let mut dead = live(&self.inner.dead);
        if dead.len() >= MAX_DEAD_LETTERS {
            dead.pop_front();
        }
        dead.push_back(Dead {
            letter: DeadLetter {
                queue: sub.queue.clone(),
                routing_key: delivery.routing_key,
                message_id: delivery.message_id,
                reason,
                attempts: delivery.attempt,
                payload: delivery.payload,
            },
            expires: sub.message_ttl.map(|ttl| tokio::time::Instant::now() + ttl),
        });
    }

    /// Registers the queue (so it receives what is published from now on) and consumes it.
    pub(super) fn consume(
        &self,
        sub: Subscription,
        handler: Handler,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.inner.queues).push(Queue {
            name: sub.queue.clone(),
            bindings: sub.bindings.clone(),
            tx: tx.clone(),
        });
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    _ = cancel.cancelled() => break,
                    d = rx.recv() => match d { Some(d) => d, None => break },
                };
                match super::run_handler(&handler, &sub, delivery.clone()).await {
                    Settle::Ack => {}
                    Settle::Retry {
                        next_attempt,
                        delay,
                        ..
                    } => {
                        let (tx, cancel) = (tx.clone(), cancel.clone());
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = tokio::time::sleep(delay) => {
                                    let _ = tx.send(Delivery { attempt: next_attempt, ..delivery });
                                }
                            }
                        });
                    }
                    Settle::DeadLetter { reason } => bus.dead_letter(&sub, delivery, reason),
                    Settle::Drop { .. } => {}
                }
            }
            // A per-instance queue goes with its consumer, as RabbitMQ's auto-delete does.
            if sub.kind == super::QueueKind::PerInstance {
                lock(&bus.inner.queues).retain(|q| q.name != sub.queue);
            }
        })
    }
}
