//! The transactional outbox: an event is stored in the same transaction as the state change it
//! announces, and a relay publishes it (with publisher confirms) and deletes it only once the
//! broker has confirmed. A broker outage delays events; it never loses them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::{BusError, EventBus, OutgoingMessage};
use crate::db::{AddedColumn, Pool};
use iv_contracts::events::Event;

pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    routing_key TEXT NOT NULL,
    session_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    traceparent TEXT,
    expires_at BIGINT
)"];

/// Columns added since the first schema, for databases made before them.
pub const ADDED_COLUMNS: &[AddedColumn] = &[
    AddedColumn {
        table: "outbox",
        column: "traceparent",
        definition: "TEXT",
    },
    AddedColumn {
        table: "outbox",
        column: "expires_at",
        definition: "BIGINT",
    },
];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A sequence that orders events written by this process (microseconds, then a counter).
fn next_seq() -> i64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    micros * 1000 + (COUNTER.fetch_add(1, Ordering::Relaxed) % 1000) as i64
}

/// Stores `event` inside the caller's transaction. Returns its message id.
pub async fn enqueue<E: Event>(conn: &mut AnyConnection, event: &E) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let payload = base64::engine::general_purpose::STANDARD.encode(event.encode_to_bytes());
    sqlx::query(
        "INSERT INTO outbox (id, seq, routing_key, session_id, payload, created_at, attempts, traceparent, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
    )
    .bind(&id)
    .bind(next_seq())
    .bind(E::ROUTING_KEY)
    .bind(event.session_id())
    .bind(payload)
    .bind(iv_contracts::now_millis())
    // The relay publishes later, elsewhere: the trace that wrote the event travels with it.
    .bind(crate::telemetry::context::current_traceparent())
    .bind(event.expires_at())
    .execute(conn)
    .await?;
    Ok(id)
}

/// Why the relay could not hand the stored events over.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading or updating the outbox")]
    Database(#[from] sqlx::Error),
    #[error("a stored payload is not base64")]
    Payload(#[from] base64::DecodeError),
    #[error("publishing the stored events")]
    Publish(#[from] BusError),
}

/// Publishes stored events in order and removes them once confirmed.
#[derive(Clone)]
pub struct Relay {
    pool: Pool,
    bus: EventBus,
    wake: Arc<Notify>,
    /// When the expired events were last deleted (milliseconds since the epoch).
    swept_at: Arc<AtomicI64>,
}

/// Events read and published at a time.
const BATCH: usize = 100;

/// Expired events are deleted at most this often. The relay drains after every commit that
/// stores an event (a live frame's, several a second per candidate), and the sweep was a write
/// statement of its own each time; expired events are never read meanwhile (the read skips
/// them), so how soon they are deleted only decides how long they take space.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Relay {
    pub fn new(pool: Pool, bus: EventBus) -> Self {
        Self {
            pool,
            bus,
            wake: Arc::new(Notify::new()),
            swept_at: Arc::default(),
        }
    }

    /// Asks the relay to look now (after a commit) instead of at its next poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Events still waiting for the broker.
    pub async fn pending(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
    }

    /// Runs until cancelled: wakes on [`Relay::notify`] or every `poll`, and backs off while the
    /// broker is unreachable.
    pub fn spawn(self, poll: Duration, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = poll;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                match self.drain().await {
                    Ok(_) => backoff = poll,
                    Err(e) => {
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        tracing::warn!(error = %crate::errors::Chain(&e), ?backoff, "outbox relay could not publish; will retry");
                    }
                }
            }
        })
    }

    /// Publishes everything pending, oldest first, a batch at a time; stops at the first
    /// unconfirmed message so order holds (what follows it is sent again: at least once).
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let now = iv_contracts::now_millis();
        if now - self.swept_at.load(Ordering::Relaxed) >= SWEEP_EVERY.as_millis() as i64 {
            self.swept_at.store(now, Ordering::Relaxed);
            let expired =
                sqlx::query("DELETE FROM outbox WHERE expires_at IS NOT NULL AND expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            if expired > 0 {
                metrics::counter!("outbox_expired_total").increment(expired);
                tracing::info!(expired, "expired events discarded from the outbox");
            }
        }
        let mut sent = 0;
        loop {
            // What expired while the broker was away (frames with their pixels) is never sent.
            let rows = sqlx::query(
                "SELECT id, routing_key, payload, traceparent FROM outbox
                 WHERE expires_at IS NULL OR expires_at > $1 ORDER BY seq LIMIT $2",
            )
            .bind(iv_contracts::now_millis())
            .bind(BATCH as i64)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(sent);
            }
            // A short batch was all there was: an event stored since comes with its own
            // `notify`, so the relay looks again then rather than reading an empty table now.
            let last = rows.len() < BATCH;
            let mut batch = Vec::with_capacity(rows.len());
            let mut spans = Vec::new();
            for row in rows {
                let payload: String = row.try_get("payload")?;
                let routing_key: String = row.try_get("routing_key")?;
                let stored: Option<String> = row.try_get("traceparent")?;
                // A `publish` span in the trace that wrote the event, parent of its consumer's.
                let traceparent = stored.and_then(|stored| {
                    let span = tracing::info_span!(parent: None, "publish", routing_key = %routing_key, trace_id = tracing::field::Empty);
                    crate::telemetry::context::continue_from_traceparent(&span, Some(&stored));
                    let traceparent = crate::telemetry::context::traceparent_of(&span);
                    spans.push(span);
                    traceparent
                });
                batch.push(OutgoingMessage {
                    message_id: row.try_get("id")?,
                    routing_key,
                    payload: base64::engine::general_purpose::STANDARD.decode(payload)?,
                    traceparent,
                });
            }
            let (confirmed, error) = self.bus.publish_many(&batch).await;
            drop(spans);
            let mut tx = crate::db::begin_write(&self.pool).await?;
            for m in &batch[..confirmed] {
                sqlx::query("DELETE FROM outbox WHERE id = $1")
                    .bind(&m.message_id)
                    .execute(&mut *tx)
                    .await?;
                metrics::counter!("outbox_relayed_total", "routing_key" => m.routing_key.clone())
                    .increment(1);
            }
            if let Some(m) = batch.get(confirmed) {
                sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1")
                    .bind(&m.message_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            sent += confirmed;
            if let Some(e) = error {
                return Err(e.into());
            }
            if last {
                return Ok(sent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iv_contracts::events::{FrameCaptured, InterviewCompleted};

    /// A frame whose expiry passed while the broker was away is discarded, never sent; the
    /// events that do not expire go out.
    #[tokio::test]
    async fn an_expired_frame_is_discarded_from_the_outbox_and_the_rest_is_sent() {
        let pool = crate::testing::fresh_sqlite(&[SCHEMA]).await;
        let bus = EventBus::connect(None, "").await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        bus.subscribe(
            crate::bus::Subscription::new("all", &["#"]),
            crate::bus::handler(move |d| {
                s.lock().unwrap().push(d.routing_key.clone());
                async { Ok(()) }
            }),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let now = iv_contracts::now_millis();
        let mut tx = pool.begin().await.unwrap();
        for expires_at in [now - 1, now + 60_000] {
            let frame = FrameCaptured {
                session_id: "s-1".into(),
                image_data: vec![1, 2, 3],
                deferred: true,
                expires_at,
                ..Default::default()
            };
            enqueue(&mut tx, &frame).await.unwrap();
        }
        let completed = InterviewCompleted {
            session_id: "s-1".into(),
            ..Default::default()
        };
        enqueue(&mut tx, &completed).await.unwrap();
        tx.commit().await.unwrap();

        let relay = Relay::new(pool.clone(), bus);
        assert_eq!(relay.drain().await.unwrap(), 2);
        assert_eq!(relay.pending().await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            *seen.lock().unwrap(),
            [FrameCaptured::ROUTING_KEY, InterviewCompleted::ROUTING_KEY]
        );

        // Between sweeps an expired frame stays stored a while, and is still never sent.
        let stale = FrameCaptured {
            session_id: "s-1".into(),
            deferred: true,
            expires_at: iv_contracts::now_millis() - 1,
            ..Default::default()
        };
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut tx, &stale).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(relay.drain().await.unwrap(), 0);
        assert_eq!(relay.pending().await.unwrap(), 1);
        tokio::time::sleep(SWEEP_EVERY).await;
        assert_eq!(relay.drain().await.unwrap(), 0);
        assert_eq!(relay.pending().await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(seen.lock().unwrap().len(), 2, "the expired frame was sent");
    }
}
