//! The RabbitMQ backend. Each subscription is three durable queues: the queue itself, bound to
//! the topic exchange; `<queue>.retry`, whose messages wait out their delay (per-message TTL) and
//! then dead-letter back into the queue; and `<queue>.dlq`, where failed messages stay with their
//! reason until an operator replays them.

use std::sync::Arc;
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
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::headers::{
    ATTEMPT, DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY, DEATH_REASON, LAST_ERROR, MESSAGE_TTL,
    QUEUE_EXPIRES, REPLAYED_AFTER, ROUTING_KEY, TRACEPARENT,
};
use super::{
    BusError, DeadLetter, Delivery, EXCHANGE, Handler, OutgoingMessage, QueueKind, Settle,
    Subscription,
};

/// The longest a publish (or a batch of them) waits for the broker's confirms.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle namespaced (test) queue lives: long enough for any one test run.
const TEST_QUEUE_TTL_MS: u32 = 300_000;

/// A RabbitMQ connection for publishing, re-established on demand after a failure.
#[derive(Clone)]
pub struct RabbitBus {
    url: Arc<str>,
    namespace: Arc<str>,
    /// The CA (PEM) an `amqps://` broker's certificate is checked against.
    ca: Option<Arc<str>>,
    publisher: Arc<tokio::sync::Mutex<Option<(Connection, Channel)>>>,
}

impl RabbitBus {
    /// Connects at once, so a wrong URL fails at start-up rather than at the first event.
    pub(super) async fn connect(
        url: &str,
        namespace: &str,
        ca: Option<&str>,
    ) -> Result<Self, BusError> {
        let bus = Self {
            url: url.into(),
            namespace: namespace.into(),
            ca: ca.map(Into::into),
            publisher: Arc::default(),
        };
        bus.channel().await?;
        Ok(bus)
    }

    fn exchange(&self) -> String {
        format!("{}{EXCHANGE}", self.namespace)
    }

    /// The broker-side name of a queue.
    fn queue_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.namespace)
    }

    /// Arguments every queue of this bus gets: namespaced (test) queues expire when idle.
    fn queue_args(&self) -> FieldTable {
        if self.namespace.is_empty() {
            FieldTable::default()
        } else {
            table(&[(QUEUE_EXPIRES, AMQPValue::LongUInt(TEST_QUEUE_TTL_MS))])
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), BusError> {
        let tls = lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca.as_deref().map(str::to_string),
        };
        let conn = Connection::connect_with_config(
            &self.url,
            ConnectionProperties::default(),
            tls,
            lapin::runtime::default_runtime()?,
        )
        .await?;
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

    pub(super) async fn publish(&self, message: OutgoingMessage) -> Result<(), BusError> {
        // Three tries, reconnecting in between: rides out a dropped connection, not a dead broker.
        // One message is a batch of one, under the same deadline.
        let routing_key = message.routing_key.clone();
        let message = [message];
        let mut attempt = 0u32;
        loop {
            let error = match self.publish_many(&message).await {
                (1, _) => return Ok(()),
                (_, error) => error.unwrap_or_else(|| BusError::Nacked {
                    routing_key: routing_key.clone(),
                }),
            };
            attempt += 1;
            if attempt == 3 {
                return Err(error);
            }
            tracing::warn!(error = %crate::errors::Chain(&error), %routing_key, "publish failed; reconnecting");
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
    }

    pub(super) async fn publish_many(
        &self,
        messages: &[OutgoingMessage],
    ) -> (usize, Option<BusError>) {
        // A connection that died without lapin noticing would hold a publish or a confirm
        // forever; everything in the batch must be done by one deadline.
        let deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
        let late = || BusError::NoConfirm(PUBLISH_TIMEOUT);
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
            let mut props = persistent(&m.routing_key, &m.message_id);
            if let Some(tp) = &m.traceparent {
                props = props.with_headers(table(&[(TRACEPARENT, long_string(tp))]));
            }
            let publish = channel.basic_publish(
                exchange.as_str().into(),
                m.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &m.payload,
                props,
            );
            match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(confirm)) => pending.push((m, confirm)),
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
        for (m, confirm) in pending {
            if error.is_some() {
                break;
            }
            match tokio::time::timeout_at(deadline, confirm).await {
                Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => confirmed += 1,
                Ok(Ok(Confirmation::Nack(_))) => {
                    error = Some(BusError::Nacked {
                        routing_key: m.routing_key.clone(),
                    })
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

    /// Declares the queues once (an error here is the caller's), then consumes in the background,
    /// reconnecting with backoff whenever the broker goes away.
    pub(super) async fn consume(
        &self,
        sub: Subscription,
        handler: Handler,
        cancel: CancellationToken,
    ) -> Result<JoinHandle<()>, BusError> {
        let first = self.open_consumer(&sub).await?;
        let bus = self.clone();
        Ok(tokio::spawn(async move {
            let mut ready = Some(first);
            let mut backoff = Duration::from_millis(200);
            while !cancel.is_cancelled() {
                let opened = match ready.take() {
                    Some(opened) => Ok(opened),
                    None => bus.open_consumer(&sub).await,
                };
                let result = match opened {
                    Ok((conn, ch)) => {
                        backoff = Duration::from_millis(200);
                        bus.consume_on(conn, ch, &sub, &handler, &cancel).await
                    }
                    Err(e) => Err(e),
                };
                let Err(e) = result else { break };
                tracing::warn!(queue = %sub.queue, error = %crate::errors::Chain(&e), ?backoff, "consumer lost the broker; reconnecting");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }))
    }

    /// A connection of the consumer's own, with its queues declared and bound.
    async fn open_consumer(&self, sub: &Subscription) -> Result<(Connection, Channel), BusError> {
        let (conn, ch) = self.open().await?;
        self.declare_queues(&ch, sub).await?;
        ch.basic_qos(sub.prefetch, BasicQosOptions::default())
            .await?;
        Ok((conn, ch))
    }

    /// Consumes until cancelled (`Ok`) or until the connection fails (`Err`).
    async fn consume_on(
        &self,
        conn: Connection,
        ch: Channel,
        sub: &Subscription,
        handler: &Handler,
        cancel: &CancellationToken,
    ) -> Result<(), BusError> {
        let queue = self.queue_name(&sub.queue);
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
            let message = match next {
                None => return Err(BusError::ConsumerEnded),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => m,
            };
            let delivery = Delivery {
                routing_key: routing_key_of(&message),
                message_id: message_id_of(&message),
                payload: message.data.clone(),
                attempt: header_u32(&message.properties, ATTEMPT).unwrap_or(1),
                redelivered: message.redelivered,
                traceparent: header_str(&message.properties, TRACEPARENT),
            };
            // A retried message keeps its trace.
            let trace = delivery
                .traceparent
                .as_deref()
                .map(|tp| (TRACEPARENT, long_string(tp)));
            let (routing_key, message_id, attempt) = (
                delivery.routing_key.clone(),
                delivery.message_id.clone(),
                delivery.attempt,
            );
            let props = persistent(&routing_key, &message_id);
            match super::run_handler(handler, sub, delivery).await {
                Settle::Ack => {}
                Settle::Retry {
                    next_attempt,
                    delay,
                    reason,
                } => {
                    let props = props
                        .with_expiration(delay.as_millis().to_string().into())
                        .with_headers(table(
                            &[
                                (ATTEMPT, AMQPValue::LongUInt(next_attempt)),
                                (ROUTING_KEY, long_string(&routing_key)),
                                (LAST_ERROR, long_string(&reason)),
                            ]
                            .into_iter()
                            .chain(trace)
                            .collect::<Vec<_>>(),
                        ));
                    let retry = format!("{queue}.retry");
                    publish_confirmed(&ch, &retry, &message.data, props).await?;
                }
                Settle::DeadLetter { reason } => {
                    let props = props.with_headers(table(&[
                        (ATTEMPT, AMQPValue::LongUInt(attempt)),
                        (ROUTING_KEY, long_string(&routing_key)),
                        (DEATH_REASON, long_string(&reason)),
                    ]));
                    let dlq = format!("{queue}.dlq");
                    publish_confirmed(&ch, &dlq, &message.data, props).await?;
                }
                Settle::Drop { .. } => {}
            }
            message.acker.ack(BasicAckOptions::default()).await?;
        }
    }

    /// A connection of its own with `<queue>.dlq` declared; closing it hands back unacked
    /// messages, in order.
    async fn open_dead_letters(
        &self,
        queue: &str,
    ) -> Result<(Connection, Channel, String), BusError> {
        let (conn, ch) = self.open().await?;
        let dlq = format!("{}.dlq", self.queue_name(queue));
        // The queue keeps the arguments its consumer declared (a TTL): look, do not redeclare.
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable()
        };
        if ch
            .queue_declare(dlq.as_str().into(), passive, FieldTable::default())
            .await
            .is_ok()
        {
            return Ok((conn, ch, dlq));
        }
        // Not declared yet (no consumer ever ran): an empty one, as the consumer would make it.
        // The failed look closed the channel.
        let _ = conn.close(200, "reopening".into()).await;
        let (conn, ch) = self.open().await?;
        ch.queue_declare(dlq.as_str().into(), durable(), self.queue_args())
            .await?;
        Ok((conn, ch, dlq))
    }

    pub(super) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
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

    pub(super) async fn replay_dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<usize, BusError> {
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
            let props = persistent(&d.routing_key, &d.message_id).with_headers(table(&[
                (ATTEMPT, AMQPValue::LongUInt(1)),
                (ROUTING_KEY, long_string(&d.routing_key)),
                (REPLAYED_AFTER, long_string(&d.reason)),
            ]));
            publish_confirmed(&ch, &main, &m.delivery.data, props).await?;
            m.delivery.acker.ack(BasicAckOptions::default()).await?;
            replayed += 1;
        }
        let _ = conn.close(200, "replayed".into()).await;
        Ok(replayed)
    }

    /// A shared queue with its retry queue (TTL, dead-letters back into the main queue) and its
    /// DLQ; or a per-instance queue alone, exclusive to this connection and deleted with it.
    async fn declare_queues(&self, ch: &Channel, sub: &Subscription) -> Result<(), BusError> {
        let queue = self.queue_name(&sub.queue);
        if sub.kind == QueueKind::PerInstance {
            let own = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            ch.queue_declare(queue.as_str().into(), own, FieldTable::default())
                .await?;
            return self.bind(ch, &queue, sub).await;
        }
        // Messages that must not outlive their use (frames) expire in the queue and in its
        // dead letters alike. A retry's own delay is far shorter, so its queue needs none.
        let mut args = self.queue_args();
        if let Some(ttl) = sub.message_ttl {
            let ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
            args.insert(MESSAGE_TTL.into(), AMQPValue::LongUInt(ms));
        }
        ch.queue_declare(queue.as_str().into(), durable(), args.clone())
            .await?;
        let mut retry_args = self.queue_args();
        retry_args.insert(DEAD_LETTER_EXCHANGE.into(), long_string(""));
        retry_args.insert(DEAD_LETTER_ROUTING_KEY.into(), long_string(&queue));
        ch.queue_declare(format!("{queue}.retry").into(), durable(), retry_args)
            .await?;
        ch.queue_declare(format!("{queue}.dlq").into(), durable(), args)
            .await?;
        self.bind(ch, &queue, sub).await
    }

    async fn bind(&self, ch: &Channel, queue: &str, sub: &Subscription) -> Result<(), BusError> {
        for binding in &sub.bindings {
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

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn persistent(routing_key: &str, message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/protobuf".into())
        .with_type(routing_key.into())
        .with_message_id(message_id.into())
}

/// Publishes straight to a queue (the default exchange) and waits for the confirm.
async fn publish_confirmed(
    ch: &Channel,
    queue: &str,
    payload: &[u8],
    props: BasicProperties,
) -> Result<(), BusError> {
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            payload,
            props,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        Confirmation::Nack(_) => Err(BusError::Nacked {
            routing_key: queue.to_string(),
        }),
    }
}

/// The event's own routing key: the header when the message was moved between queues.
fn routing_key_of(d: &lapin::message::Delivery) -> String {
    header_str(&d.properties, ROUTING_KEY).unwrap_or_else(|| d.routing_key.to_string())
}

fn message_id_of(d: &lapin::message::Delivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// A dead letter as stored in `<queue>.dlq` by the consumer.
fn dead_letter(queue: &str, d: &lapin::message::Delivery) -> DeadLetter {
    DeadLetter {
        queue: queue.to_string(),
        routing_key: routing_key_of(d),
        message_id: message_id_of(d),
        reason: header_str(&d.properties, DEATH_REASON).unwrap_or_default(),
        attempts: header_u32(&d.properties, ATTEMPT).unwrap_or(1),
        payload: d.data.clone(),
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
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
