//! The scoring service: explainable scores for answers and whole interviews, and the recruiter's
//! report (JSON or PDF), over gRPC (`scoring.ScoringService`) and REST (`/api/v1/scores/*`) on one
//! port.
//!
//! # Layout
//! - [`text`]: words, sentences, stop words, stemming, fillers.
//! - [`answer`]: one answer's relevance, clarity and depth.
//! - [`interview`]: the interview's technical, communication and engagement components and the
//!   documented overall weighting.
//! - [`report`]: the report and its PDF rendering.
//! - [`service`]: the use cases; [`grpc`] and [`routes`] are thin front ends over it.
//! - [`store`]: durable scores and reports.
//! - [`error`]: the crate's error enum and its mapping to HTTP and gRPC.

pub mod answer;
pub mod error;
pub mod grpc;
pub mod interview;
pub mod report;
pub mod routes;
pub mod service;
pub mod store;
pub mod text;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use iv_contracts::scoring::scoring_service_server::ScoringServiceServer;
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::{Registration, RegistrationConfig, ServiceSpec};
use iv_platform::health::Health;
use iv_platform::{CancellationToken, db, http};
use tokio::net::TcpListener;

/// Configuration, from the environment (see README for every variable).
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 8083 by default; 0 picks a free port (tests).
    pub port: u16,
    pub database_url: String,
    /// How long open requests may finish after a shutdown signal.
    pub grace: Duration,
    /// Consul registration, when `CONSUL_HTTP_ADDR` is set.
    pub consul: Option<RegistrationConfig>,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        let data_dir = env.string("DATA_DIR", "data");
        Ok(Self {
            host: env.string("BIND_HOST", "127.0.0.1"),
            port: env.parse("SCORING_PORT", 8083)?,
            database_url: env.string("DATABASE_URL", &db::sqlite_url(&data_dir, "interview")),
            grace: env.millis("SHUTDOWN_GRACE_MS", 10_000)?,
            consul: RegistrationConfig::from_env(&env)?,
        })
    }
}

/// How the service appears in Consul; its gRPC check asks `grpc.health.v1` about its service.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "scoring-service",
    tags: &["scoring", "grpc", "http"],
    grpc: Some("scoring.ScoringService"),
};

/// A bound, ready-to-run scoring service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    consul: Option<RegistrationConfig>,
    health: Health,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let health = Health::new("scoring-service");
        let pool = db::connect(&config.database_url)
            .await
            .context("connecting to the database")?;
        db::apply_schema(&pool, store::SCHEMA)
            .await
            .context("creating the scoring tables")?;
        health.set("database", true, "connected");
        let scoring = service::Scoring::new(store::ScoreStore::new(pool));

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<ScoringServiceServer<grpc::GrpcScoring>>()
            .await;
        let grpc = tonic::service::Routes::new(ScoringServiceServer::new(grpc::GrpcScoring {
            scoring: scoring.clone(),
        }))
        .add_service(health_service);
        let rest = routes::router(routes::RestState {
            scoring,
            health: health.clone(),
        })
        .merge(health.router());
        let router = http::rest_and_grpc(rest, grpc, "scoring-service")
            .context("building gRPC reflection")?;
        let listener = http::bind(&config.host, config.port)
            .await
            .context("binding the scoring port")?;
        Ok(Self {
            listener,
            router,
            grace: config.grace,
            consul: config.consul,
            health,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Serves until `shutdown` resolves, then drains within the grace period.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "scoring-service listening (REST and gRPC)");
        let registration = Registration::start(self.consul.as_ref(), &SERVICE, self.local_addr());
        http::run_server(
            self.listener,
            self.router,
            registration.until_shutdown(shutdown),
            CancellationToken::new(),
            self.grace,
        )
        .await
    }
}
