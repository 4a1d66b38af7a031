//! The event bus: RabbitMQ through lapin, or an in-process bus on embedded defaults.
//!
//! Both give the same contract, so services and tests do not care which one runs:
//! - publishing returns only once the broker has confirmed the message (publisher confirms,
//!   persistent delivery mode, durable topic exchange `interview.events`);
//! - [`EventBus::subscribe`] returns once its queue exists, so nothing published afterwards is
//!   lost for want of a queue;
//! - a consumer acks a message only after its handler succeeded or the message was moved on;
//! - what happens after a handler ran is decided in one place, [`Settle::decide`]: a transient
//!   failure is retried after a delay up to `max_attempts`; a permanent failure or the last attempt
//!   is dead-lettered with the reason attached, so nothing is acked and dropped.
//!
//! # Layout
//! - [`settle`]: the ack / retry-later / dead-letter decision both backends carry out.
//! - [`topic`]: AMQP topic matching (the in-process bus routes like the broker).
//! - [`amqp`]: the RabbitMQ backend, and [`headers`] the message headers it writes.
//! - [`memory`]: the in-process backend.

mod amqp;
pub mod headers;
mod memory;
mod settle;
mod topic;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use iv_contracts::events::Event;

pub use amqp::RabbitBus;
pub use memory::MemoryBus;
pub use settle::Settle;
pub use topic::topic_matches;

/// The topic exchange every event is published to.
pub const EXCHANGE: &str = "interview.events";

/// One message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub routing_key: String,
    /// Unique per event; consumers deduplicate on it.
    pub message_id: String,
    pub payload: Vec<u8>,
    /// 1 for the first try.
    pub attempt: u32,
    /// The broker may have delivered it before (a consumer died before acking).
    pub redelivered: bool,
    /// The trace of whatever published it (W3C `traceparent`), when traces are exported.
    pub traceparent: Option<String>,
}

impl Delivery {
    /// Decodes the payload; an undecodable message is permanent garbage, not worth retrying.
    pub fn decode<E: Event>(&self) -> Result<E, HandlerError> {
        E::decode_from(&self.payload).map_err(|source| {
            HandlerError::permanent(Undecodable {
                routing_key: self.routing_key.clone(),
                source,
            })
        })
    }
}

/// A payload that is not the event its routing key names.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {routing_key}")]
pub struct Undecodable {
    pub routing_key: String,
    #[source]
    pub source: prost::DecodeError,
}

/// Any cause a handler reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a handler failed, which decides between retrying and dead-lettering.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (a downstream is down): retried after a delay.
    #[error("transient failure")]
    Transient(#[source] BoxError),
    /// Will never succeed (malformed): dead-lettered at once.
    #[error("permanent failure")]
    Permanent(#[source] BoxError),
}

impl HandlerError {
    pub fn transient(cause: impl Into<BoxError>) -> Self {
        Self::Transient(cause.into())
    }

    pub fn permanent(cause: impl Into<BoxError>) -> Self {
        Self::Permanent(cause.into())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// A message handler.
pub type Handler = Arc<dyn Fn(Delivery) -> BoxFuture + Send + Sync>;

/// Wraps an async function as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(move |d| Box::pin(f(d)))
}

/// Who a subscription's queue serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// Durable work shared by every instance: each message is handled once, by one of them, with
    /// retries and a dead-letter queue.
    Shared,
    /// Notifications this instance needs for what it alone holds (its open sockets): a queue of
    /// its own, exclusive and deleted with its connection, so every instance hears every message.
    /// A failed handler drops the message: nothing durable depends on it.
    PerInstance,
}

/// A queue bound to routing-key patterns, and its retry policy.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub queue: String,
    pub kind: QueueKind,
    /// Topic patterns (`*` one word, `#` any number of words).
    pub bindings: Vec<String>,
    pub max_attempts: u32,
    /// Delay before the second attempt; later attempts wait proportionally longer.
    pub retry_delay: Duration,
    /// Unacked messages in flight per consumer.
    pub prefetch: u16,
    /// How long a message may wait in the queue or among its dead letters before it is
    /// discarded; `None` keeps it until handled or replayed. For what must not outlive its use.
    /// (RabbitMQ fixes a queue's arguments when it is declared: changing this for a queue that
    /// exists means deleting the queue first.)
    pub message_ttl: Option<Duration>,
}

impl Subscription {
    /// A durable queue shared by every instance that subscribes to it.
    pub fn new(queue: &str, bindings: &[&str]) -> Self {
        Self {
            queue: queue.to_string(),
            kind: QueueKind::Shared,
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            max_attempts: 5,
            retry_delay: Duration::from_secs(2),
            prefetch: 16,
            message_ttl: None,
        }
    }

    /// A queue of this instance's own, named `<prefix>.<unique id>`.
    pub fn per_instance(prefix: &str, bindings: &[&str]) -> Self {
        Self {
            queue: format!("{prefix}.{}", uuid::Uuid::new_v4().simple()),
            kind: QueueKind::PerInstance,
            max_attempts: 1,
            ..Self::new(prefix, bindings)
        }
    }
}

/// A message that failed for good, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub queue: String,
    pub routing_key: String,
    pub message_id: String,
    pub reason: String,
    pub attempts: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("message broker unreachable")]
    Broker(#[from] lapin::Error),
    #[error("reading the CA file {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the broker confirmed nothing within {0:?}")]
    NoConfirm(Duration),
    #[error("the broker refused (nacked) a message for {routing_key}")]
    Nacked { routing_key: String },
    #[error("the broker ended the consumer's stream")]
    ConsumerEnded,
    #[error("no consumer of {queue} in this process")]
    NoConsumer { queue: String },
}

/// A message ready to publish (the outbox relay's unit).
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub routing_key: String,
    pub message_id: String,
    pub payload: Vec<u8>,
    /// The trace the consumer continues (W3C `traceparent`), sent as a message header.
    pub traceparent: Option<String>,
}

/// RabbitMQ or the in-process bus.
#[derive(Clone)]
pub enum EventBus {
    Rabbit(RabbitBus),
    Memory(MemoryBus),
}

impl EventBus {
    /// RabbitMQ when a URL is given (connected eagerly, so a wrong URL fails at start-up),
    /// otherwise the in-process bus.
    ///
    /// `namespace` prefixes the exchange and queue names, so several stacks (parallel test runs)
    /// can share one broker; namespaced queues expire after five idle minutes.
    pub async fn connect(amqp_url: Option<&str>, namespace: &str) -> Result<Self, BusError> {
        Self::connect_tls(amqp_url, namespace, None).await
    }

    /// [`Self::connect`], checking an `amqps://` broker against the CA `ca` (PEM).
    pub async fn connect_tls(
        amqp_url: Option<&str>,
        namespace: &str,
        ca: Option<&str>,
    ) -> Result<Self, BusError> {
        match amqp_url {
            Some(url) => Ok(Self::Rabbit(RabbitBus::connect(url, namespace, ca).await?)),
            None => Ok(Self::Memory(MemoryBus::default())),
        }
    }

    /// From `AMQP_URL` (RabbitMQ; the in-process bus when unset; `amqps://` for TLS, checked
    /// against `TLS_CA_FILE`) and `AMQP_NAMESPACE`.
    pub async fn from_env(env: &crate::config::Env<'_>) -> Result<Self, BusError> {
        let ca = match env.optional("TLS_CA_FILE") {
            Some(path) => {
                Some(
                    std::fs::read_to_string(&path).map_err(|source| BusError::CaFile {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Self::connect_tls(
            env.optional("AMQP_URL").as_deref(),
            &env.string("AMQP_NAMESPACE", ""),
            ca.as_deref(),
        )
        .await
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rabbit(_) => "rabbitmq",
            Self::Memory(_) => "in-process",
        }
    }

    /// Publishes an event and waits for the broker's confirm. Returns the event's message id.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<String, BusError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.publish_raw(E::ROUTING_KEY, &id, &event.encode_to_bytes())
            .await?;
        Ok(id)
    }

    pub async fn publish_raw(
        &self,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<(), BusError> {
        // The consumer's span is a child of this one.
        let span = tracing::info_span!("publish", routing_key);
        let message = OutgoingMessage {
            routing_key: routing_key.to_string(),
            message_id: message_id.to_string(),
            payload: payload.to_vec(),
            traceparent: crate::telemetry::context::traceparent_of(&span),
        };
        let result = match self {
            Self::Rabbit(b) => b.publish(message).instrument(span).await,
            Self::Memory(b) => {
                b.publish(&message);
                Ok(())
            }
        };
        record_published(routing_key, result.is_ok());
        result
    }

    /// Publishes several messages in order and waits for all their confirms at once (one round of
    /// broker fsyncs instead of one per message). Returns how many, from the first, were confirmed.
    /// Each message carries the trace its `traceparent` names (the outbox relay makes one
    /// `publish` span per message).
    pub async fn publish_many(&self, messages: &[OutgoingMessage]) -> (usize, Option<BusError>) {
        let (confirmed, error) = match self {
            Self::Rabbit(b) => b.publish_many(messages).await,
            Self::Memory(b) => {
                for m in messages {
                    b.publish(m);
                }
                (messages.len(), None)
            }
        };
        for (i, m) in messages.iter().enumerate() {
            record_published(&m.routing_key, i < confirmed);
        }
        (confirmed, error)
    }

    /// Declares the subscription's queue, then consumes it until `cancel` fires, reconnecting when
    /// the broker goes away. Returns once the queue exists and is bound.
    pub async fn subscribe(
        &self,
        sub: Subscription,
        handler: Handler,
        cancel: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError> {
        match self {
            Self::Rabbit(b) => b.consume(sub, handler, cancel).await,
            Self::Memory(b) => Ok(b.consume(sub, handler, cancel)),
        }
    }

    /// Up to `limit` dead letters of `queue`, oldest first, left where they are.
    pub async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        match self {
            Self::Rabbit(b) => b.dead_letters(queue, limit).await,
            Self::Memory(b) => Ok(b.dead_letters(queue, limit)),
        }
    }

    /// Moves up to `limit` dead letters of `queue` back into it as first attempts (after the
    /// cause is fixed). Returns how many were replayed.
    pub async fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        let replayed = match self {
            Self::Rabbit(b) => b.replay_dead_letters(queue, limit).await?,
            Self::Memory(b) => b.replay_dead_letters(queue, limit)?,
        };
        metrics::counter!("dead_letters_replayed_total", "queue" => queue.to_string())
            .increment(replayed as u64);
        tracing::info!(queue, replayed, "dead letters replayed");
        Ok(replayed)
    }
}

fn record_published(routing_key: &str, confirmed: bool) {
    let outcome = if confirmed { "confirmed" } else { "failed" };
    metrics::counter!("events_published_total", "routing_key" => routing_key.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Runs one handler call and decides what becomes of the message; a panic counts as a permanent
/// failure rather than killing the consumer.
///
/// The handler runs in a `consume` span that continues the publisher's trace.
async fn run_handler(handler: &Handler, sub: &Subscription, delivery: Delivery) -> Settle {
    let attempt = delivery.attempt;
    let message_id = delivery.message_id.clone();
    let span = tracing::info_span!(
        "consume",
        queue = %sub.queue,
        routing_key = %delivery.routing_key,
        attempt,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::context::continue_from_traceparent(&span, delivery.traceparent.as_deref());
    let outcome = match tokio::spawn(handler(delivery).instrument(span)).await {
        Ok(result) => result,
        Err(panicked) => Err(HandlerError::permanent(panicked)),
    };
    let settle = Settle::decide(outcome, attempt, sub);
    settle.record(&sub.queue, &message_id, attempt);
    settle
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn the_memory_bus_retries_transient_failures_then_dead_letters() {
        let bus = EventBus::Memory(MemoryBus::default());
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let mut sub = Subscription::new("q", &["a.*"]);
        sub.max_attempts = 3;
        sub.retry_delay = Duration::from_secs(5);
        let cancel = CancellationToken::new();
        bus.subscribe(
            sub,
            handler(move |_d| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Err(HandlerError::transient("down"))
                }
            }),
            cancel.clone(),
        )
        .await
        .unwrap();
        bus.publish_raw("a.b", "m1", b"x").await.unwrap();
        bus.publish_raw("z.b", "m2", b"unrouted").await.unwrap();

        // First try at once, then after 5 s and 10 s more (the delay grows with the attempt).
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(bus.dead_letters("q", 10).await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let dead = bus.dead_letters("q", 10).await.unwrap();
        assert_eq!(dead.len(), 1, "only the routed message: {dead:?}");
        assert_eq!(dead[0].message_id, "m1");
        assert_eq!(dead[0].attempts, 3);
        assert_eq!(dead[0].reason, "transient failure: down");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "no attempt after the last");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn dead_letters_with_a_ttl_are_discarded_when_it_passes_and_others_stay() {
        let bus = EventBus::Memory(MemoryBus::default());
        let cancel = CancellationToken::new();
        for (queue, ttl) in [("frames", Some(Duration::from_secs(60))), ("kept", None)] {
            let mut sub = Subscription::new(queue, &[&format!("{queue}.*")]);
            sub.message_ttl = ttl;
            bus.subscribe(
                sub,
                handler(|_| async { Err(HandlerError::permanent("refused")) }),
                cancel.clone(),
            )
            .await
            .unwrap();
        }
        bus.publish_raw("frames.x", "f1", b"pixels").await.unwrap();
        bus.publish_raw("kept.x", "k1", b"event").await.unwrap();
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(bus.dead_letters("frames", 10).await.unwrap().len(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(bus.dead_letters("frames", 10).await.unwrap().is_empty());
        assert_eq!(bus.dead_letters("kept", 10).await.unwrap().len(), 1);
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn every_per_instance_queue_hears_every_message_and_a_failure_is_dropped() {
        let bus = EventBus::Memory(MemoryBus::default());
        let cancel = CancellationToken::new();
        let mut heard = Vec::new();
        for fails in [false, true] {
            let count = Arc::new(AtomicU32::new(0));
            let c = count.clone();
            let sub = Subscription::per_instance("notify", &["a.*"]);
            bus.subscribe(
                sub,
                handler(move |_d| {
                    let c = c.clone();
                    async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        match fails {
                            true => Err(HandlerError::transient("socket gone")),
                            false => Ok(()),
                        }
                    }
                }),
                cancel.clone(),
            )
            .await
            .unwrap();
            heard.push(count);
        }
        bus.publish_raw("a.b", "m1", b"x").await.unwrap();
        bus.publish_raw("a.c", "m2", b"x").await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let counts: Vec<u32> = heard.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [2, 2], "each instance hears both, once");
        let notify_dead: usize = match &bus {
            EventBus::Memory(m) => m.dead_letters_total(),
            EventBus::Rabbit(_) => unreachable!(),
        };
        assert_eq!(notify_dead, 0, "a failed notification is dropped, not kept");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn memory_dead_letters_are_replayed_oldest_first_and_the_rest_stay() {
        let bus = EventBus::Memory(MemoryBus::default());
        let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (f, s) = (fixed.clone(), seen.clone());
        let cancel = CancellationToken::new();
        bus.subscribe(
            Subscription::new("q", &["a.#"]),
            handler(move |d| {
                let (f, s) = (f.clone(), s.clone());
                async move {
                    if !f.load(Ordering::SeqCst) {
                        return Err(HandlerError::permanent("broken"));
                    }
                    s.lock().unwrap().push(d.message_id);
                    Ok(())
                }
            }),
            cancel.clone(),
        )
        .await
        .unwrap();
        for id in ["m1", "m2", "m3"] {
            bus.publish_raw("a.b", id, b"x").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(bus.dead_letters("q", 10).await.unwrap().len(), 3);
        assert!(matches!(
            bus.replay_dead_letters("elsewhere", 10).await,
            Err(BusError::NoConsumer { .. })
        ));

        fixed.store(true, Ordering::SeqCst);
        assert_eq!(bus.replay_dead_letters("q", 2).await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(*seen.lock().unwrap(), ["m1", "m2"]);
        let left = bus.dead_letters("q", 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].message_id, "m3");
        cancel.cancel();
    }
}
