//! The interview service drives interview sessions: REST (`/api/v1/interviews/*`) and the
//! candidate's WebSocket (`/ws/interviews/{id}`). It asks the emotion service about frames and the
//! scoring service about answers (each behind its resilience policy), and announces frames and
//! completions as events.
//!
//! # Layout
//! - [`questions`]: the default question set and custom sets.
//! - [`store`]: sessions and answers, durable; completion writes its event to the outbox.
//! - [`app`]: the use cases ([`app::InterviewApp`]: start, frame, answer, complete, score
//!   arrived), and [`downstream`] what they ask of the emotion and scoring services.
//! - [`messages`], [`ws`]: the WebSocket protocol and the per-socket loop; [`sampling`]: how a
//!   socket samples frames past capacity, and when it tells the candidate.
//! - [`decisions`]: recruiters' hiring decisions, kept with who and why.
//! - [`consent`]: organisations' notices per policy, and candidates' consent to them.
//! - [`erasure`]: erasing an interview here and the receipt of its erasure everywhere;
//!   [`retention`]: how long each organisation keeps interviews, and which are due.
//! - [`members`]: organisations and their admins and recruiters (added on first sign-in,
//!   revoked by an admin); the first start creates the default organisation and admin.
//! - [`hub`]: fan-out to a session's sockets. [`routes`]: REST and the socket endpoint.
//! - [`error`]: the crate's errors and their mapping to HTTP status and stable codes.

pub mod app;
pub mod consent;
pub mod decisions;
pub mod downstream;
pub mod erasure;
pub mod error;
pub mod hub;
pub mod listing;
pub mod members;
pub mod messages;
pub mod questions;
pub mod retention;
pub mod routes;
pub mod sampling;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod ws;

use std::time::Duration;

use anyhow::Context;
use iv_contracts::events::{ErasureReported, Event, ScoreCalculated};
use iv_platform::bus::{EventBus, HandlerError, Subscription, handler};
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::ServiceSpec;
use iv_platform::discovery::Source;
use iv_platform::downstream::{EmotionClient, ScoringClient, emotion_source, scoring_source};
use iv_platform::health::Health;
use iv_platform::outbox::{self, Relay};
use iv_platform::resilience::PolicyConfig;
use iv_platform::server::{Server, ServerConfig};
use iv_platform::{CancellationToken, db};

#[derive(Debug, Clone)]
pub struct Config {
    /// Port 8081 by default (`INTERVIEW_PORT`).
    pub server: ServerConfig,
    pub database_url: String,
    /// Where the emotion and scoring services are: Consul's healthy instances when
    /// `CONSUL_HTTP_ADDR` is set, else `EMOTION_GRPC_URL` / `SCORING_GRPC_URL` (comma-separated
    /// for several instances).
    pub emotion: Source,
    pub scoring: Source,
    pub emotion_policy: PolicyConfig,
    pub emotion_queries_policy: PolicyConfig,
    pub scoring_policy: PolicyConfig,
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Candidates' sockets: idle timeout and frame rate.
    pub socket_limits: ws::SocketLimits,
    /// How long a frame deferred to the worker may wait before it is discarded unanalysed.
    pub frame_ttl: Duration,
    /// Days an organisation that set none keeps its interviews after they end.
    pub retention_days: u32,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        Ok(Self {
            server: ServerConfig::from_env(&env, "INTERVIEW_PORT", 8081)?,
            database_url: db::url_from_env(&env),
            emotion: emotion_source(&env)?,
            scoring: scoring_source(&env)?,
            emotion_policy: PolicyConfig::emotion().from_env(&env)?,
            emotion_queries_policy: PolicyConfig::emotion_queries().from_env(&env)?,
            scoring_policy: PolicyConfig::scoring().from_env(&env)?,
            max_frame_bytes: env.parse("FRAME_MAX_BYTES", 2 * 1024 * 1024)?,
            socket_limits: ws::SocketLimits::from_env(&env)?,
            frame_ttl: env.millis(
                "FRAME_TTL_MS",
                iv_contracts::events::FRAME_TTL.as_millis() as u64,
            )?,
            retention_days: env.parse("RETENTION_DAYS", retention::DEFAULT_DAYS)?,
        })
    }
}

/// Every table the service keeps.
pub const SCHEMAS: &[&[&str]] = &[
    store::SCHEMA,
    outbox::SCHEMA,
    members::SCHEMA,
    erasure::SCHEMA,
    decisions::SCHEMA,
    consent::SCHEMA,
    iv_platform::erasure::SCHEMA,
    iv_platform::audit::SCHEMA,
];

/// Columns added since a table was first made, added to a database that lacks them.
pub const ADDED_COLUMNS: &[&[db::AddedColumn]] = &[
    store::ADDED_COLUMNS,
    outbox::ADDED_COLUMNS,
    retention::ADDED_COLUMNS,
    consent::ADDED_COLUMNS,
];

/// How the interview service appears in Consul.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "interview-service",
    tags: &["api", "v1", "http", "websocket"],
    grpc: None,
};

/// Connects storage and clients, starts the outbox relay and the score consumer, binds.
pub async fn build(config: Config, bus: EventBus) -> anyhow::Result<Server> {
    let health = Health::new("interview-service");
    let pool = db::open(&config.database_url, SCHEMAS)
        .await
        .context("opening the database")?;
    for added in ADDED_COLUMNS {
        db::add_missing_columns(&pool, added)
            .await
            .context("upgrading the database")?;
    }
    health.set("database", true, "connected");
    let members = members::Members::new(pool.clone());
    let retention = retention::Retention::new(pool.clone(), config.retention_days);
    members
        .ensure_first()
        .await
        .context("creating the first organisation")?;
    health.set("broker", true, bus.kind());

    let cancel = CancellationToken::new();
    let relay = Relay::new(pool.clone(), bus.clone());
    relay
        .clone()
        .spawn(Duration::from_millis(500), cancel.clone());

    let credential = config
        .server
        .auth
        .credential(SERVICE.name)
        .context("loading the service credential")?;
    let tls = config
        .server
        .tls
        .client()
        .context("loading the CA peers are trusted with")?;
    let emotion = EmotionClient::new(
        &config.emotion,
        config.emotion_policy.clone(),
        config.emotion_queries_policy.clone(),
    )
    .with_credential(credential.clone())
    .with_tls(tls.clone());
    let scoring = ScoringClient::new(&config.scoring, config.scoring_policy.clone())
        .with_credential(credential.clone())
        .with_tls(tls);
    let app = app::InterviewApp::new(
        store::InterviewStore::new(pool),
        std::sync::Arc::new(emotion),
        std::sync::Arc::new(scoring),
        relay,
        config.max_frame_bytes,
    )
    .with_frame_ttl(config.frame_ttl)
    .with_retention_days(config.retention_days);

    let scores = app.clone();
    bus.subscribe(
        Subscription::new("interview-service.scores", &[ScoreCalculated::ROUTING_KEY]),
        handler(move |delivery| {
            let app = scores.clone();
            async move {
                let event: ScoreCalculated = delivery.decode()?;
                app.record_score(&event)
                    .await
                    .map_err(HandlerError::transient)
            }
        }),
        cancel.clone(),
    )
    .await
    .context("subscribing to scores")?;
    let erasures = app.clone();
    bus.subscribe(
        Subscription::new(
            "interview-service.erasures",
            &[ErasureReported::ROUTING_KEY],
        ),
        handler(move |delivery| {
            let app = erasures.clone();
            async move {
                let event: ErasureReported = delivery.decode()?;
                app.erasure_reported(&event)
                    .await
                    .map_err(HandlerError::transient)
            }
        }),
        cancel.clone(),
    )
    .await
    .context("subscribing to erasure reports")?;
    let notices = app.clone();
    bus.subscribe(
        Subscription::per_instance("interview-service.notify", &[ScoreCalculated::ROUTING_KEY]),
        handler(move |delivery| {
            let app = notices.clone();
            async move {
                let event: ScoreCalculated = delivery.decode()?;
                app.notify_score(&event)
                    .await
                    .map_err(HandlerError::transient)
            }
        }),
        cancel.clone(),
    )
    .await
    .context("subscribing to score notifications")?;

    let router = routes::router(
        routes::AppState {
            app: app.clone(),
            retention,
            members,
            invitations: std::sync::Arc::new(
                config
                    .server
                    .auth
                    .signing_key()
                    .context("loading the signing key for invitations")?,
            ),
            shutdown: cancel.clone(),
            socket_limits: config.socket_limits,
        },
        &health,
    );
    let router = iv_platform::auth::require_identity(router, credential);
    Server::bind(&config.server, &SERVICE, router, cancel)
        .await
        .context("binding the interview port")
}
