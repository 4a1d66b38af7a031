//! The event bus: RabbitMQ through lapin, or an in-process bus on embedded defaults.
//!
//! Both give the same contract, so services and tests do not care which one runs:
//! - publishing returns only once the broker has confirmed the message (publisher confirms,
//!   persistent delivery mode, durable topic exchange `interview.events`);
//! - a consumer acks a message only after its handler succeeded or the message was moved on;
//! - a transient failure is retried after a delay (`<queue>.retry`, a TTL queue that dead-letters
//!   back into the queue) up to `max_attempts`; a permanent failure or the last attempt goes to
//!   `<queue>.dlq` with the reason attached, so nothing is acked and dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use iv_contracts::events::Event;

/// The topic exchange every event is published to.
pub const EXCHANGE: &str = "interview.events";

/// The longest a publish (or a batch of them) waits for the broker's confirms.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

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
}

impl Delivery {
    /// Decodes the payload; an undecodable message is permanent garbage, not worth retrying.
    pub fn decode<E: Event>(&self) -> Result<E, HandlerError> {
        E::decode_from(&self.payload)
            .map_err(|e| HandlerError::Permanent(format!("undecodable {}: {e}", self.routing_key)))
    }
}

/// How a handler failed, which decides between retrying and dead-lettering.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (a downstream is down): retried after a delay.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (malformed): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
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

/// A durable queue bound to routing-key patterns, and its retry policy.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub queue: String,
    /// Topic patterns (`*` one word, `#` any number of words).
    pub bindings: Vec<String>,
    pub max_attempts: u32,
    /// Delay before the second attempt; later attempts wait proportionally longer.
    pub retry_delay: Duration,
    /// Unacked messages in flight per consumer.
    pub prefetch: u16,
}

impl Subscription {
    pub fn new(queue: &str, bindings: &[&str]) -> Self {
        Self {
            queue: queue.to_string(),
            bindings: bindings.iter().map(|b| b.to_string()).collect(),
            max_attempts: 5,
            retry_delay: Duration::from_secs(2),
            prefetch: 16,
        }
    }

    fn delay_for(&self, attempt: u32) -> Duration {
        self.retry_delay.saturating_mul(attempt.max(1))
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("message broker unreachable: {0}")]
    Broker(String),
    #[error("broker did not confirm the message: {0}")]
    NotConfirmed(String),
}

impl From<lapin::Error> for BusError {
    fn from(e: lapin::Error) -> Self {
        Self::Broker(e.to_string())
    }
}

/// A message ready to publish (the outbox relay's unit).
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub routing_key: String,
    pub message_id: String,
    pub payload: Vec<u8>,
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
        match amqp_url {
            Some(url) => {
                let bus = RabbitBus::new(url, namespace);
                bus.channel().await?;
                Ok(Self::Rabbit(bus))
            }
            None => Ok(Self::Memory(MemoryBus::default())),
        }
    }

    /// From `AMQP_URL` (RabbitMQ; the in-process bus when unset) and `AMQP_NAMESPACE`.
    pub async fn from_env(env: &crate::config::Env<'_>) -> Result<Self, BusError> {
        Self::connect(
            env.optional("AMQP_URL").as_deref(),
            &env.string("AMQP_NAMESPACE", ""),
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
        let result = match self {
            Self::Rabbit(b) => b.publish(routing_key, message_id, payload).await,
            Self::Memory(b) => {
                b.publish(routing_key, message_id, payload);
                Ok(())
            }
        };
        let outcome = if result.is_ok() {
            "confirmed"
        } else {
            "failed"
        };
        metrics::counter!("events_published_total", "routing_key" => routing_key.to_string(), "outcome" => outcome)
            .increment(1);
        result
    }

    /// Publishes several messages in order and waits for all their confirms at once (one round of
    /// broker fsyncs instead of one per message). Returns how many, from the first, were confirmed.
    pub async fn publish_many(&self, messages: &[OutgoingMessage]) -> (usize, Option<BusError>) {
        let (confirmed, error) = match self {
            Self::Rabbit(b) => b.publish_many(messages).await,
            Self::Memory(b) => {
                for m in messages {
                    b.publish(&m.routing_key, &m.message_id, &m.payload);
                }
                (messages.len(), None)
            }
        };
        for (i, m) in messages.iter().enumerate() {
            let outcome = if i < confirmed { "confirmed" } else { "failed" };
            metrics::counter!("events_published_total", "routing_key" => m.routing_key.clone(), "outcome" => outcome)
                .increment(1);
        }
        (confirmed, error)
    }

    /// Consumes a subscription until `cancel` fires, reconnecting when the broker goes away.
    pub fn subscribe(
        &self,
        sub: Subscription,
        handler: Handler,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        match self {
            Self::Rabbit(b) => tokio::spawn(b.clone().consume(sub, handler, cancel)),
            Self::Memory(b) => b.consume(sub, handler, cancel),
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

    /// Dead letters held by the in-process bus (RabbitMQ keeps them in `<queue>.dlq`).
    pub fn memory_dead_letters(&self) -> Vec<DeadLetter> {
        match self {
            Self::Rabbit(_) => Vec::new(),
            Self::Memory(b) => b
                .inner
                .dead
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Runs one handler call; a panic counts as a permanent failure rather than killing the consumer.
async fn run_handler(handler: &Handler, delivery: Delivery) -> Result<(), HandlerError> {
    match tokio::spawn(handler(delivery)).await {
        Ok(result) => result,
        Err(e) => Err(HandlerError::Permanent(format!("handler panicked: {e}"))),
    }
}

fn record_outcome(queue: &str, outcome: &'static str) {
    metrics::counter!("events_consumed_total", "queue" => queue.to_string(), "outcome" => outcome)
        .increment(1);
}

/// AMQP topic matching: words split on `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

/// A RabbitMQ connection for publishing, re-established on demand after a failure.
#[derive(Clone)]
pub struct RabbitBus {
    url: Arc<str>,
    namespace: Arc<str>,
    publisher: Arc<tokio::sync::Mutex<Option<(Connection, Channel)>>>,
}

impl RabbitBus {
    pub fn new(url: &str, namespace: &str) -> Self {
        Self {
            url: url.into(),
            namespace: namespace.into(),
            publisher: Arc::default(),
        }
    }

    fn exchange(&self) -> String {
        format!("{}{EXCHANGE}", self.namespace)
    }

    /// The broker-side name of a queue.
    pub fn queue_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.namespace)
    }

    /// Arguments every queue of this bus gets: namespaced (test) queues expire when idle.
    fn queue_args(&self) -> FieldTable {
        if self.namespace.is_empty() {
            FieldTable::default()
        } else {
            headers(&[("x-expires", AMQPValue::LongUInt(300_000))])
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), BusError> {
        let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    auto_delete: !self.namespace.is_empty(),
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((conn, channel))
    }

    async fn channel(&self) -> Result<Channel, BusError> {
        let mut slot = self.publisher.lock().await;
        if let Some((conn, ch)) = slot.as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let (conn, ch) = self.open().await?;
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    async fn forget_channel(&self) {
        *self.publisher.lock().await = None;
    }

    async fn publish(
        &self,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<(), BusError> {
        // Three tries, reconnecting in between: rides out a dropped connection, not a dead broker.
        // One message is a batch of one, under the same deadline.
        let message = [OutgoingMessage {
            routing_key: routing_key.to_string(),
            message_id: message_id.to_string(),
            payload: payload.to_vec(),
        }];
        let mut last = BusError::Broker("not attempted".into());
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            match self.publish_many(&message).await {
                (1, _) => return Ok(()),
                (_, error) => {
                    let e = error.unwrap_or_else(|| BusError::NotConfirmed(routing_key.into()));
                    tracing::warn!(error = %e, routing_key, "publish failed; reconnecting");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn publish_many(&self, messages: &[OutgoingMessage]) -> (usize, Option<BusError>) {
        // A connection that died without lapin noticing would hold a publish or a confirm
        // forever; everything in the batch must be done by one deadline.
        let deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
        let late =
            || BusError::Broker(format!("no confirm within {} s", PUBLISH_TIMEOUT.as_secs()));
        let channel = match tokio::time::timeout_at(deadline, self.channel()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return (0, Some(e)),
            Err(_) => {
                self.forget_channel().await;
                return (0, Some(late()));
            }
        };
        let exchange = self.exchange();
        let mut pending = Vec::with_capacity(messages.len());
        let mut error = None;
        for m in messages {
            let props = persistent(&m.routing_key, &m.message_id);
            let publish = channel.basic_publish(
                exchange.as_str().into(),
                m.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &m.payload,
                props,
            );
            match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(confirm)) => pending.push(confirm),
                Ok(Err(e)) => {
                    error = Some(BusError::from(e));
                    break;
                }
                Err(_) => {
                    error = Some(late());
                    break;
                }
            }
        }
        let mut confirmed = 0;
        for confirm in pending {
            if error.is_some() {
                break;
            }
            match tokio::time::timeout_at(deadline, confirm).await {
                Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => confirmed += 1,
                Ok(Ok(Confirmation::Nack(_))) => {
                    error = Some(BusError::NotConfirmed("nack from the broker".into()))
                }
                Ok(Err(e)) => error = Some(BusError::from(e)),
                Err(_) => error = Some(late()),
            }
        }
        if error.is_some() {
            self.forget_channel().await;
        }
        (confirmed, error)
    }

    async fn consume(self, sub: Subscription, handler: Handler, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !cancel.is_cancelled() {
            match self.consume_once(&sub, &handler, &cancel).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(queue = %sub.queue, error = %e, ?backoff, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn consume_once(
        &self,
        sub: &Subscription,
        handler: &Handler,
        cancel: &CancellationToken,
    ) -> Result<(), BusError> {
        let (conn, ch) = self.open().await?;
        let queue = self.queue_name(&sub.queue);
        self.declare_queues(&ch, &queue, &sub.bindings).await?;
        ch.basic_qos(sub.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = ch
            .basic_consume(
                queue.as_str().into(),
                ShortString::from(format!("{queue}-{}", uuid::Uuid::new_v4())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = %sub.queue, "consuming from RabbitMQ");
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = conn.close(200, "shutdown".into()).await;
                    return Ok(());
                }
                next = consumer.next() => next,
            };
            let delivery = match next {
                None => return Err(BusError::Broker("consumer stream ended".into())),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(d)) => d,
            };
            let attempt = header_u32(&delivery.properties, "x-attempt").unwrap_or(1);
            let message_id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let routing_key = header_str(&delivery.properties, "x-routing-key")
                .unwrap_or_else(|| delivery.routing_key.to_string());
            let d = Delivery {
                routing_key: routing_key.clone(),
                message_id: message_id.clone(),
                payload: delivery.data.clone(),
                attempt,
                redelivered: delivery.redelivered,
            };
            match run_handler(handler, d).await {
                Ok(()) => record_outcome(&sub.queue, "ok"),
                Err(HandlerError::Transient(reason)) if attempt < sub.max_attempts => {
                    let delay = sub.delay_for(attempt);
                    tracing::warn!(queue = %sub.queue, %message_id, attempt, %reason, ?delay, "handler failed; retrying later");
                    let props = persistent(&routing_key, &message_id)
                        .with_expiration(delay.as_millis().to_string().into())
                        .with_headers(headers(&[
                            ("x-attempt", AMQPValue::LongUInt(attempt + 1)),
                            ("x-routing-key", long_string(&routing_key)),
                            ("x-last-error", long_string(&reason)),
                        ]));
                    publish_confirmed(&ch, "", &format!("{queue}.retry"), &delivery.data, props)
                        .await?;
                    record_outcome(&sub.queue, "retried");
                }
                Err(err) => {
                    let reason = err.to_string();
                    tracing::error!(queue = %sub.queue, %message_id, attempt, %reason, "dead-lettering message");
                    let props = persistent(&routing_key, &message_id).with_headers(headers(&[
                        ("x-attempt", AMQPValue::LongUInt(attempt)),
                        ("x-routing-key", long_string(&routing_key)),
                        ("x-death-reason", long_string(&reason)),
                    ]));
                    publish_confirmed(&ch, "", &format!("{queue}.dlq"), &delivery.data, props)
                        .await?;
                    record_outcome(&sub.queue, "dead_lettered");
                }
            }
            delivery.acker.ack(BasicAckOptions::default()).await?;
        }
    }

    /// Messages waiting in `<queue>.dlq`.
    pub async fn dead_letter_count(&self, queue: &str) -> Result<u32, BusError> {
        let ch = self.channel().await?;
        let q = ch
            .queue_declare(
                format!("{}.dlq", self.queue_name(queue)).into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                self.queue_args(),
            )
            .await?;
        Ok(q.message_count())
    }

    /// A channel of its own with `<queue>.dlq` declared; closing it hands back unacked messages.
    async fn open_dead_letters(
        &self,
        queue: &str,
    ) -> Result<(Connection, Channel, String), BusError> {
        let (conn, ch) = self.open().await?;
        let dlq = format!("{}.dlq", self.queue_name(queue));
        ch.queue_declare(
            dlq.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            self.queue_args(),
        )
        .await?;
        Ok((conn, ch, dlq))
    }

    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let (conn, ch, dlq) = self.open_dead_letters(queue).await?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(m) = ch
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            out.push(dead_letter(queue, &m.delivery));
        }
        // Not acknowledged: closing the connection puts them back, in order.
        let _ = conn.close(200, "listed".into()).await;
        Ok(out)
    }

    async fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        let (conn, ch, dlq) = self.open_dead_letters(queue).await?;
        let main = self.queue_name(queue);
        let mut replayed = 0;
        while replayed < limit {
            let Some(m) = ch
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            let d = dead_letter(queue, &m.delivery);
            let props = persistent(&d.routing_key, &d.message_id).with_headers(headers(&[
                ("x-attempt", AMQPValue::LongUInt(1)),
                ("x-routing-key", long_string(&d.routing_key)),
                ("x-replayed-after", long_string(&d.reason)),
            ]));
            publish_confirmed(&ch, "", &main, &m.delivery.data, props).await?;
            m.delivery.acker.ack(BasicAckOptions::default()).await?;
            replayed += 1;
        }
        let _ = conn.close(200, "replayed".into()).await;
        Ok(replayed)
    }

    /// The main queue, its retry queue (TTL, dead-letters back into the main queue) and its DLQ.
    async fn declare_queues(
        &self,
        ch: &Channel,
        queue: &str,
        bindings: &[String],
    ) -> Result<(), BusError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(queue.into(), durable, self.queue_args())
            .await?;
        let mut retry_args = self.queue_args();
        retry_args.insert("x-dead-letter-exchange".into(), long_string(""));
        retry_args.insert("x-dead-letter-routing-key".into(), long_string(queue));
        ch.queue_declare(format!("{queue}.retry").into(), durable, retry_args)
            .await?;
        ch.queue_declare(format!("{queue}.dlq").into(), durable, self.queue_args())
            .await?;
        for binding in bindings {
            ch.queue_bind(
                queue.into(),
                self.exchange().into(),
                binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }
}

fn persistent(routing_key: &str, message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/protobuf".into())
        .with_type(routing_key.into())
        .with_message_id(message_id.into())
}

async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    props: BasicProperties,
) -> Result<(), BusError> {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            payload,
            props,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        Confirmation::Nack(_) => Err(BusError::NotConfirmed(format!("nack for {routing_key}"))),
    }
}

/// A dead letter as stored in `<queue>.dlq` by the consumer.
fn dead_letter(queue: &str, d: &lapin::message::Delivery) -> DeadLetter {
    DeadLetter {
        queue: queue.to_string(),
        routing_key: header_str(&d.properties, "x-routing-key")
            .unwrap_or_else(|| d.routing_key.to_string()),
        message_id: d
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        reason: header_str(&d.properties, "x-death-reason").unwrap_or_default(),
        attempts: header_u32(&d.properties, "x-attempt").unwrap_or(1),
        payload: d.data.clone(),
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn headers(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), v.clone());
    }
    table
}

fn header(props: &BasicProperties, key: &str) -> Option<AMQPValue> {
    props
        .headers()
        .as_ref()?
        .inner()
        .get(&ShortString::from(key))
        .cloned()
}

fn header_u32(props: &BasicProperties, key: &str) -> Option<u32> {
    match header(props, key)? {
        AMQPValue::LongUInt(v) => Some(v),
        AMQPValue::LongInt(v) => u32::try_from(v).ok(),
        AMQPValue::LongLongInt(v) => u32::try_from(v).ok(),
        _ => None,
    }
}

fn header_str(props: &BasicProperties, key: &str) -> Option<String> {
    match header(props, key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// In-process bus

/// Dead letters the in-process bus keeps (oldest dropped first), so a long outage cannot exhaust
/// memory with queued frames.
const MEMORY_DEAD_LETTERS: usize = 1000;

/// The bus of the one-process stack: same routing, retry and dead-letter rules, no durability
/// across restarts (use RabbitMQ for that).
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    queues: Mutex<Vec<MemoryQueue>>,
    dead: Mutex<Vec<DeadLetter>>,
}

struct MemoryQueue {
    name: String,
    bindings: Vec<String>,
    tx: mpsc::UnboundedSender<Delivery>,
}

impl MemoryBus {
    fn dead_letters(&self, queue: &str, limit: usize) -> Vec<DeadLetter> {
        let dead = self.inner.dead.lock().unwrap_or_else(|e| e.into_inner());
        dead.iter()
            .filter(|d| d.queue == queue)
            .take(limit)
            .cloned()
            .collect()
    }

    fn replay_dead_letters(&self, queue: &str, limit: usize) -> Result<usize, BusError> {
        let queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        let target = queues
            .iter()
            .find(|q| q.name == queue)
            .ok_or_else(|| BusError::Broker(format!("no consumer of {queue} in this process")))?;
        let mut dead = self.inner.dead.lock().unwrap_or_else(|e| e.into_inner());
        let mut replayed = 0;
        let mut kept = Vec::with_capacity(dead.len());
        for d in dead.drain(..) {
            if d.queue == queue && replayed < limit {
                let _ = target.tx.send(Delivery {
                    routing_key: d.routing_key,
                    message_id: d.message_id,
                    payload: d.payload,
                    attempt: 1,
                    redelivered: false,
                });
                replayed += 1;
            } else {
                kept.push(d);
            }
        }
        *dead = kept;
        Ok(replayed)
    }

    fn publish(&self, routing_key: &str, message_id: &str, payload: &[u8]) {
        let queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        for q in queues
            .iter()
            .filter(|q| q.bindings.iter().any(|b| topic_matches(b, routing_key)))
        {
            let _ = q.tx.send(Delivery {
                routing_key: routing_key.to_string(),
                message_id: message_id.to_string(),
                payload: payload.to_vec(),
                attempt: 1,
                redelivered: false,
            });
        }
    }

    fn consume(
        &self,
        sub: Subscription,
        handler: Handler,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.inner
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(MemoryQueue {
                name: sub.queue.clone(),
                bindings: sub.bindings.clone(),
                tx: tx.clone(),
            });
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    _ = cancel.cancelled() => break,
                    d = rx.recv() => match d { Some(d) => d, None => break },
                };
                let attempt = delivery.attempt;
                match run_handler(&handler, delivery.clone()).await {
                    Ok(()) => record_outcome(&sub.queue, "ok"),
                    Err(HandlerError::Transient(reason)) if attempt < sub.max_attempts => {
                        tracing::warn!(queue = %sub.queue, attempt, %reason, "handler failed; retrying later");
                        let tx = tx.clone();
                        let delay = sub.delay_for(attempt);
                        let cancel = cancel.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = tokio::time::sleep(delay) => {
                                    let _ = tx.send(Delivery { attempt: attempt + 1, ..delivery });
                                }
                            }
                        });
                        record_outcome(&sub.queue, "retried");
                    }
                    Err(err) => {
                        tracing::error!(queue = %sub.queue, attempt, reason = %err, "dead-lettering message");
                        let mut dead = inner.dead.lock().unwrap_or_else(|e| e.into_inner());
                        if dead.len() >= MEMORY_DEAD_LETTERS {
                            dead.remove(0);
                        }
                        dead.push(DeadLetter {
                            queue: sub.queue.clone(),
                            routing_key: delivery.routing_key,
                            message_id: delivery.message_id,
                            reason: err.to_string(),
                            attempts: attempt,
                            payload: delivery.payload,
                        });
                        record_outcome(&sub.queue, "dead_lettered");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn topic_patterns_match_like_amqp() {
        assert!(topic_matches(
            "interview.completed.v1",
            "interview.completed.v1"
        ));
        assert!(topic_matches("interview.*.v1", "interview.completed.v1"));
        assert!(!topic_matches(
            "interview.*.v1",
            "interview.frame.captured.v1"
        ));
        assert!(topic_matches("interview.#", "interview.frame.captured.v1"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("interview.#.v1", "interview.v1"));
        assert!(!topic_matches(
            "interview.completed.v1",
            "interview.completed.v2"
        ));
    }

    #[tokio::test]
    async fn the_memory_bus_retries_transient_failures_then_dead_letters() {
        let bus = EventBus::Memory(MemoryBus::default());
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let mut sub = Subscription::new("q", &["a.*"]);
        sub.max_attempts = 3;
        sub.retry_delay = Duration::from_millis(5);
        let cancel = CancellationToken::new();
        bus.subscribe(
            sub,
            handler(move |_d| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Err(HandlerError::Transient("down".into()))
                }
            }),
            cancel.clone(),
        );
        bus.publish_raw("a.b", "m1", b"x").await.unwrap();
        bus.publish_raw("z.b", "m2", b"unrouted").await.unwrap();
        for _ in 0..100 {
            if !bus.memory_dead_letters().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let dead = bus.memory_dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].message_id, "m1");
        assert_eq!(dead[0].attempts, 3);
        assert!(dead[0].reason.contains("down"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        cancel.cancel();
    }
}
