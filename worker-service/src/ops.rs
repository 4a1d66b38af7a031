//! Operations on the worker's dead letters: list them, and replay them once the cause is fixed.
//!
//! - `GET  /ops/dead-letters?queue=<q>&limit=<n>`: the oldest `n` (default 50) dead letters of a
//!   queue, with the reason and attempts; left in place.
//! - `POST /ops/dead-letters/replay?queue=<q>&limit=<n>`: moves up to `n` back into the queue as
//!   first attempts. Consumers are idempotent, so replaying something already done is harmless.
//!
//! Both are for admins and services: the caller's identity is asserted with the service
//! credential (`x-iv-identity`, as `stack mint-token --service ops` prints one), like every
//! request to a service behind the gateway. The worker's port is meant to stay inside the
//! cluster; the gateway does not route `/ops`.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use iv_platform::auth::Privileged;
use iv_platform::bus::EventBus;
use iv_platform::errors::ApiError;
use serde::{Deserialize, Serialize};

use crate::error::WorkerError;

/// The queues this worker consumes; only these can be listed or replayed.
pub const QUEUES: [&str; 5] = [
    "worker.interview-completed",
    "worker.frames",
    "worker.erasures.emotion",
    "worker.erasures.scoring",
    "worker.consent-withdrawals",
];

const MAX_LIMIT: usize = 1000;

#[derive(Clone)]
pub struct Ops {
    pub bus: EventBus,
    /// Where replays are put on the audit trail before they happen; `None` only in tests of
    /// the listing alone.
    pub audit: Option<crate::interview::InterviewClient>,
}

#[derive(Debug, Deserialize)]
pub struct Params {
    queue: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterView {
    pub message_id: String,
    pub routing_key: String,
    pub reason: String,
    pub attempts: u32,
    pub size_bytes: usize,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub queue: String,
    pub dead_letters: Vec<DeadLetterView>,
}

#[derive(Debug, Serialize)]
pub struct Replayed {
    pub queue: String,
    pub replayed: usize,
}

pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/ops/dead-letters", get(list))
        .route("/ops/dead-letters/replay", post(replay))
        .with_state(ops)
}

fn checked(p: &Params) -> Result<(&'static str, usize), WorkerError> {
    let queue = p.queue.as_deref().unwrap_or_default();
    let queue =
        QUEUES
            .into_iter()
            .find(|q| *q == queue)
            .ok_or_else(|| WorkerError::UnknownQueue {
                known: QUEUES.join(", "),
            })?;
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(WorkerError::InvalidLimit { max: MAX_LIMIT });
    }
    Ok((queue, limit))
}

async fn list(
    State(ops): State<Ops>,
    _: Privileged,
    Query(p): Query<Params>,
) -> Result<Json<Listing>, ApiError> {
    let (queue, limit) = checked(&p)?;
    let letters = ops
        .bus
        .dead_letters(queue, limit)
        .await
        .map_err(WorkerError::Broker)?;
    Ok(Json(Listing {
        queue: queue.into(),
        dead_letters: letters
            .into_iter()
            .map(|d| DeadLetterView {
                message_id: d.message_id,
                routing_key: d.routing_key,
                reason: d.reason,
                attempts: d.attempts,
                size_bytes: d.payload.len(),
            })
            .collect(),
    }))
}

async fn replay(
    State(ops): State<Ops>,
    Privileged(caller): Privileged,
    Query(p): Query<Params>,
) -> Result<Json<Replayed>, ApiError> {
    let (queue, limit) = checked(&p)?;
    // On the trail first: a replay the trail cannot record does not happen.
    if let Some(audit) = &ops.audit {
        let entry = serde_json::json!({
            "action": "dead_letters_replayed",
            "detail": format!("queue={queue} limit={limit}"),
        });
        audit.post("/internal/v1/audit", &caller, &entry).await?;
    }
    let replayed = ops
        .bus
        .replay_dead_letters(queue, limit)
        .await
        .map_err(WorkerError::Broker)?;
    tracing::info!(queue, replayed, by = %caller.subject, role = %caller.role, "dead letters replayed");
    Ok(Json(Replayed {
        queue: queue.into(),
        replayed,
    }))
}
