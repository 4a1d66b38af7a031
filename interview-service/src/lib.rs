//! The interview service drives interview sessions: REST (`/api/v1/interviews/*`) and the
//! candidate's WebSocket (`/ws/interviews/{id}`). It asks the emotion service about frames and the
//! scoring service about answers (each behind its resilience policy), and announces frames and
//! completions as events.
//!
//! # Layout
//! - [`questions`]: the default question set and custom sets.
//! - [`store`]: sessions and answers, durable; completion writes its event to the outbox.
//! - [`service`]: the use cases (start, frame, answer, complete, score arrived).
//! - [`messages`], [`ws`]: the WebSocket protocol and the per-socket loop.
//! - [`hub`]: fan-out to a session's sockets. [`routes`]: REST and the socket endpoint.
//! - [`error`]: the crate's errors and their mapping to HTTP status and stable codes.

pub mod error;
pub mod hub;
pub mod messages;
pub mod questions;
pub mod routes;
pub mod service;
pub mod store;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use iv_contracts::events::ScoreCalculated;
use iv_platform::bus::{EventBus, HandlerError, Subscription, handler};
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::{Registration, RegistrationConfig, ServiceSpec};
use iv_platform::discovery::Source;
use iv_platform::downstream::{self, EmotionClient, ScoringClient};
use iv_platform::health::Health;
use iv_platform::outbox::{self, Relay};
use iv_platform::resilience::PolicyConfig;
use iv_platform::{CancellationToken, db, http};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 8081 by default; 0 picks a free port (tests).
    pub port: u16,
    pub database_url: String,
    /// Where the emotion and scoring services are: Consul's healthy instances when
    /// `CONSUL_HTTP_ADDR` is set, else `EMOTION_GRPC_URL` / `SCORING_GRPC_URL` (comma-separated
    /// for several instances).
    pub emotion: Source,
    pub scoring: Source,
    /// Consul registration, when `CONSUL_HTTP_ADDR` is set.
    pub consul: Option<RegistrationConfig>,
    pub emotion_policy: PolicyConfig,
    pub emotion_queries_policy: PolicyConfig,
    pub scoring_policy: PolicyConfig,
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    pub grace: Duration,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        let data_dir = env.string("DATA_DIR", "data");
        Ok(Self {
            host: env.string("BIND_HOST", "127.0.0.1"),
            port: env.parse("INTERVIEW_PORT", 8081)?,
            database_url: env.string("DATABASE_URL", &db::sqlite_url(&data_dir, "interview")),
            emotion: downstream::emotion_source(&env)?,
            scoring: downstream::scoring_source(&env)?,
            consul: RegistrationConfig::from_env(&env)?,
            emotion_policy: PolicyConfig::emotion().from_env(&env)?,
            emotion_queries_policy: PolicyConfig::emotion_queries().from_env(&env)?,
            scoring_policy: PolicyConfig::scoring().from_env(&env)?,
            max_frame_bytes: env.parse("FRAME_MAX_BYTES", 2 * 1024 * 1024)?,
            grace: env.millis("SHUTDOWN_GRACE_MS", 10_000)?,
        })
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    cancel: CancellationToken,
    app: service::InterviewApp,
    consul: Option<RegistrationConfig>,
}

/// How the interview service appears in Consul.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "interview-service",
    tags: &["api", "v1", "http", "websocket"],
    grpc: None,
};

impl Application {
    /// Connects storage and clients, starts the outbox relay and the score consumer, binds.
    pub async fn build(config: Config, bus: EventBus) -> anyhow::Result<Self> {
        let health = Health::new("interview-service");
        let pool = db::connect(&config.database_url)
            .await
            .context("connecting to the database")?;
        db::apply_schema(&pool, store::SCHEMA)
            .await
            .context("creating the interview tables")?;
        db::apply_schema(&pool, outbox::SCHEMA)
            .await
            .context("creating the outbox")?;
        health.set("database", true, "connected");
        health.set("broker", true, bus.kind());

        let cancel = CancellationToken::new();
        let relay = Relay::new(pool.clone(), bus.clone());
        relay
            .clone()
            .spawn(Duration::from_millis(500), cancel.clone());

        let emotion = EmotionClient::new(
            &config.emotion,
            config.emotion_policy.clone(),
            config.emotion_queries_policy.clone(),
        );
        let scoring = ScoringClient::new(&config.scoring, config.scoring_policy.clone());
        let app = service::InterviewApp::new(
            store::InterviewStore::new(pool),
            emotion,
            scoring,
            relay,
            config.max_frame_bytes,
        );

        let on_score = app.clone();
        bus.subscribe(
            Subscription::new(
                "interview-service.scores",
                &[<ScoreCalculated as iv_contracts::events::Event>::ROUTING_KEY],
            ),
            handler(move |delivery| {
                let app = on_score.clone();
                async move {
                    let event: ScoreCalculated = delivery.decode()?;
                    app.on_score(&event).await.map_err(HandlerError::transient)
                }
            }),
            cancel.clone(),
        )
        .await
        .context("subscribing to scores")?;

        let routes = routes::router(routes::AppState {
            app: app.clone(),
            shutdown: cancel.clone(),
        });
        let router = http::observe(
            routes.merge(health.router()).fallback(http::not_found),
            "interview-service",
        );
        let listener = http::bind(&config.host, config.port)
            .await
            .context("binding the interview port")?;
        Ok(Self {
            listener,
            router,
            grace: config.grace,
            cancel,
            app,
            consul: config.consul,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn app(&self) -> service::InterviewApp {
        self.app.clone()
    }

    /// Serves until `shutdown`, then closes sockets, stops the consumer and relay, and drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "interview-service listening");
        let registration = Registration::start(self.consul.as_ref(), &SERVICE, self.local_addr());
        http::run_server(
            self.listener,
            self.router,
            registration.until_shutdown(shutdown),
            self.cancel,
            self.grace,
        )
        .await
    }
}
