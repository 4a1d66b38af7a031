//! The scoring service: explainable scores for answers and whole interviews, and the recruiter's
//! report (JSON or PDF), over gRPC (`scoring.ScoringService`) and REST (`/api/v1/scores/*`) on one
//! port.
//!
//! # Layout
//! - [`text`]: words, sentences, stop words, stemming, fillers.
//! - [`meaning`]: the sentence model (all-MiniLM-L6-v2 in candle) that compares meanings.
//! - [`answer`]: one answer's relevance, clarity and depth, with the evidence for each point.
//! - [`overall`]: the interview's technical, communication and engagement components and the
//!   documented overall weighting.
//! - [`report`]: the report and its PDF rendering.
//! - [`app`]: the use cases ([`app::ScoringApp`]); [`grpc`] and [`routes`] are thin front ends over it.
//! - [`store`]: durable scores and reports.
//! - [`error`]: the crate's error enum and its mapping to HTTP and gRPC.

pub mod answer;
pub mod app;
pub mod error;
pub mod grpc;
pub mod meaning;
pub mod overall;
pub mod report;
pub mod routes;
pub mod store;
pub mod text;

use anyhow::Context;
use axum::Router;
use iv_contracts::scoring::scoring_service_server::ScoringServiceServer;
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::ServiceSpec;
use iv_platform::health::Health;
use iv_platform::server::{Server, ServerConfig};
use iv_platform::{CancellationToken, db, http};

/// Configuration, from the environment (see README for every variable).
#[derive(Debug, Clone)]
pub struct Config {
    /// Port 8083 by default (`SCORING_PORT`).
    pub server: ServerConfig,
    pub database_url: String,
    /// The sentence model's folder (`SENTENCE_MODEL_DIR`, default where the fetch script puts it).
    pub sentence_model_dir: std::path::PathBuf,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        Ok(Self {
            server: ServerConfig::from_env(&env, "SCORING_PORT", 8083)?,
            database_url: db::url_from_env(&env),
            sentence_model_dir: env
                .string(
                    "SENTENCE_MODEL_DIR",
                    &meaning::default_model_dir().display().to_string(),
                )
                .into(),
        })
    }
}

/// How the service appears in Consul; its gRPC check asks `grpc.health.v1` about its service.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "scoring-service",
    tags: &["scoring", "grpc", "http"],
    grpc: Some("scoring.ScoringService"),
};

/// Opens storage and binds the port: a scoring service ready to run.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let health = Health::new("scoring-service");
    let pool = db::open(
        &config.database_url,
        &[
            store::SCHEMA,
            iv_platform::erasure::SCHEMA,
            iv_platform::audit::SCHEMA,
        ],
    )
    .await
    .context("opening the database")?;
    db::add_missing_columns(&pool, store::ADDED_COLUMNS)
        .await
        .context("upgrading the database")?;
    health.set("database", true, "connected");
    let scoring = app::ScoringApp::new(store::ScoreStore::new(pool), load_encoder(&config)?);

    let router = service_router(scoring, health).await?;
    let router = config
        .server
        .auth
        .guard(router, SERVICE.name)
        .context("loading the service credential")?;
    Server::bind(&config.server, &SERVICE, router, CancellationToken::new())
        .await
        .context("binding the scoring port")
}

/// Loads the sentence model once, at start. A missing or corrupt file stops the service with what
/// failed and how to fetch it.
pub fn load_encoder(config: &Config) -> anyhow::Result<std::sync::Arc<meaning::SentenceEncoder>> {
    let dir = &config.sentence_model_dir;
    let encoder = meaning::SentenceEncoder::load(dir).map_err(|e| {
        anyhow::anyhow!(
            "{}\nthe sentence model is fetched by scripts/fetch-assets.sh (SENTENCE_MODEL_DIR={})",
            iv_platform::errors::Chain(&e),
            dir.display()
        )
    })?;
    tracing::info!(model = %dir.display(), "sentence model loaded");
    Ok(std::sync::Arc::new(encoder))
}

/// The service's whole surface on one port: gRPC (with health and reflection), REST, health and
/// metrics, with the common layers and the JSON 404.
pub async fn service_router(scoring: app::ScoringApp, health: Health) -> anyhow::Result<Router> {
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
    http::rest_and_grpc(rest, grpc, SERVICE.name).context("building gRPC reflection")
}
