//! The emotion service: face analysis of webcam frames over gRPC (`emotion.EmotionService`) and
//! REST (`/api/v1/emotions/*`) on one port, with per-session aggregates for recruiters.
//!
//! # Layout
//! - `iv_frames`: frame intake (format, size, dimensions, decoding with limits), shared.
//! - [`analysis`]: what a frame yields and the [`analysis::FrameAnalyzer`] the vision pipeline
//!   implements.
//! - [`inference`]: the bounded inference pool that sheds load instead of queueing without bound.
//! - [`far_pass`]: the far pass, run apart from the frames on idle time.
//! - [`app`]: the use cases ([`app::EmotionApp`]: analyse, summarise), policy enforcement and session memory.
//! - [`store`]: per-frame aggregates and session policies (never pixels).
//! - [`grpc`], [`routes`]: thin front ends; [`error`]: the crate's errors and their mapping.

pub mod analysis;
pub mod blink;
pub mod error;

pub mod app;
pub mod far_pass;
pub mod grpc;
pub mod inference;
pub mod routes;
pub mod store;
pub mod vision;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use iv_contracts::emotion::emotion_service_server::EmotionServiceServer;
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::ServiceSpec;
use iv_platform::health::Health;
use iv_platform::server::{Server, ServerConfig};
use iv_platform::{CancellationToken, db, http};

use crate::analysis::{FrameAnalyzer, ModelsMissing, Unavailable};

#[derive(Debug, Clone)]
pub struct Config {
    /// Port 8082 by default (`EMOTION_PORT`).
    pub server: ServerConfig,
    pub database_url: String,
    /// Where the converted model files live (see scripts/fetch-models.sh).
    pub models_dir: String,
    /// Frames analysed at once; defaults to the number of cores.
    pub workers: usize,
    /// Frames that may wait for a worker before new ones are refused.
    pub queue: usize,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let workers = env.parse("INFERENCE_WORKERS", cores)?;
        Ok(Self {
            server: ServerConfig::from_env(&env, "EMOTION_PORT", 8082)?,
            database_url: db::url_from_env(&env),
            models_dir: env.string("MODELS_DIR", &default_models_dir()),
            workers,
            queue: env.parse("INFERENCE_QUEUE", workers * 4)?,
        })
    }
}

/// Sets the process up for the face models. Call first thing in `main`, before any other thread
/// exists.
///
/// - Candle runs each matrix product on the calling thread. It splits every product over all
///   cores by default; the service already analyses one frame per core on its bounded pool, so
///   the nested splitting only adds overhead. Measured with `cargo bench -p emotion-service
///   --bench pipeline` on 2 cores: one stream 16 -> 25 frames/s, two streams 20 -> 45 frames/s.
///   An explicit `RAYON_NUM_THREADS` is left as it is.
#[allow(unsafe_code)]
pub fn prepare_for_models() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called at the top of `main` before the async runtime starts, so no other thread
        // can be reading or writing the environment at the same time.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// Where the fetch script puts the converted weights (see `iv_platform::assets`).
pub fn default_models_dir() -> String {
    iv_platform::assets::models_dir().display().to_string()
}

/// Loads the vision pipeline once, at start. A missing or corrupt model file is an error that
/// names the file and how to fetch it: the service does not start without its models.
pub fn load_analyzer(config: &Config) -> anyhow::Result<Arc<dyn FrameAnalyzer>> {
    let dir = std::path::Path::new(&config.models_dir);
    let pipeline = vision::Pipeline::load(dir).map_err(|e| {
        anyhow::anyhow!("{}\nthe face models are fetched and converted by scripts/fetch-assets.sh (MODELS_DIR={})", iv_platform::errors::Chain(&e), config.models_dir)
    })?;
    tracing::info!(models = %config.models_dir, "face models loaded");
    Ok(Arc::new(pipeline))
}

/// The analyzer of an instance that must run without models (tests of degraded mode).
pub fn models_missing(reason: &str) -> Arc<dyn FrameAnalyzer> {
    Arc::new(ModelsMissing(Unavailable {
        reason: reason.to_string(),
    }))
}

/// How the service appears in Consul; its gRPC check asks `grpc.health.v1` about its service.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "emotion-service",
    tags: &["ml", "grpc", "http"],
    grpc: Some("emotion.EmotionService"),
};

/// Loads the models, opens storage and binds the port: an emotion service ready to run.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let analyzer = load_analyzer(&config)?;
    build_with(config, analyzer).await
}

/// Builds around a given analyzer (the real pipeline, or whatever a test needs).
pub async fn build_with(
    config: Config,
    analyzer: Arc<dyn FrameAnalyzer>,
) -> anyhow::Result<Server> {
    let health = Health::new("emotion-service");
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
    let app = app::EmotionApp::new(
        analyzer,
        inference::InferencePool::new(config.workers, config.queue),
        store::EmotionStore::new(pool),
        far_pass::FarPasses::start().context("starting the far-pass thread")?,
    );

    let router = service_router(app, health).await?;
    let router = config
        .server
        .auth
        .guard(router, SERVICE.name)
        .context("loading the service credential")?;
    Server::bind(&config.server, &SERVICE, router, CancellationToken::new())
        .await
        .context("binding the emotion port")
}

/// The service's whole surface on one port: gRPC (with health, which says NOT_SERVING without
/// models, and reflection), REST, health and metrics, with the common layers and the JSON 404.
pub async fn service_router(app: app::EmotionApp, health: Health) -> anyhow::Result<Router> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    match app.availability() {
        Ok(()) => {
            health.set("models", true, "loaded");
            health_reporter
                .set_serving::<EmotionServiceServer<grpc::GrpcEmotion>>()
                .await;
        }
        Err(reason) => {
            tracing::warn!(%reason, "frames cannot be analysed on this instance");
            health.set("models", false, reason.reason);
            health_reporter
                .set_not_serving::<EmotionServiceServer<grpc::GrpcEmotion>>()
                .await;
        }
    }
    let emotion = EmotionServiceServer::new(grpc::GrpcEmotion { app: app.clone() })
        .max_decoding_message_size(iv_platform::downstream::MAX_MESSAGE_BYTES);
    let grpc = tonic::service::Routes::new(emotion).add_service(health_service);
    let rest = routes::router(routes::RestState {
        app,
        health: health.clone(),
    })
    .merge(health.router());
    http::rest_and_grpc(rest, grpc, SERVICE.name).context("building gRPC reflection")
}
