//! The worker turns events into results: it analyses frames that were queued while the emotion
//! service was unavailable, and scores completed interviews (CalculateScore, GenerateReport),
//! announcing each score as ScoreCalculated. It serves only health and metrics over HTTP.
//!
//! Every handler is idempotent, because RabbitMQ delivers at least once: a frame analysed twice is
//! stored once (the emotion service keys frames by number), and an interview scored twice
//! overwrites its score with the same result.
//!
//! # Layout
//! - [`jobs`]: the two handlers and how their failures are classified (retry or dead-letter).
//! - [`ops`]: listing and replaying dead letters.

pub mod error;
pub mod jobs;
pub mod ops;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use iv_contracts::events::{Event, FrameCaptured, InterviewCompleted};
use iv_platform::bus::{EventBus, Subscription, handler};
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::{Registration, RegistrationConfig, ServiceSpec};
use iv_platform::discovery::Source;
use iv_platform::downstream::{self, EmotionClient, ScoringClient};
use iv_platform::health::Health;
use iv_platform::resilience::PolicyConfig;
use iv_platform::{CancellationToken, http};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 8084 by default (health and metrics); 0 picks a free port (tests).
    pub port: u16,
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
    /// Delay before a failed job is tried again (later attempts wait proportionally longer).
    pub retry_delay: Duration,
    pub max_attempts: u32,
    pub grace: Duration,
    /// Bearer token for `/ops/*`; open when unset (the worker's port stays inside the cluster).
    pub ops_token: Option<String>,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        Ok(Self {
            host: env.string("BIND_HOST", "127.0.0.1"),
            port: env.parse("WORKER_PORT", 8084)?,
            emotion: downstream::emotion_source(&env)?,
            scoring: downstream::scoring_source(&env)?,
            consul: RegistrationConfig::from_env(&env)?,
            emotion_policy: PolicyConfig::emotion().from_env(&env)?,
            emotion_queries_policy: PolicyConfig::emotion_queries().from_env(&env)?,
            scoring_policy: PolicyConfig::scoring().from_env(&env)?,
            retry_delay: env.millis("WORKER_RETRY_DELAY_MS", 2_000)?,
            max_attempts: env.parse("WORKER_MAX_ATTEMPTS", 6)?,
            grace: env.millis("SHUTDOWN_GRACE_MS", 10_000)?,
            ops_token: env.optional("OPS_TOKEN"),
        })
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    cancel: CancellationToken,
    consul: Option<RegistrationConfig>,
}

/// How the worker appears in Consul.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "worker-service",
    tags: &["worker", "events"],
    grpc: None,
};

impl Application {
    pub async fn build(config: Config, bus: EventBus) -> anyhow::Result<Self> {
        let health = Health::new("worker-service");
        health.set("broker", true, bus.kind());
        let emotion = EmotionClient::new(
            &config.emotion,
            config.emotion_policy.clone(),
            config.emotion_queries_policy.clone(),
        );
        let scoring = ScoringClient::new(&config.scoring, config.scoring_policy.clone());
        let jobs = jobs::Jobs {
            emotion,
            scoring,
            bus: bus.clone(),
        };
        let cancel = CancellationToken::new();

        let mut completed = Subscription::new(ops::QUEUES[0], &[InterviewCompleted::ROUTING_KEY]);
        completed.retry_delay = config.retry_delay;
        completed.max_attempts = config.max_attempts;
        completed.prefetch = 4;
        let j = jobs.clone();
        let last_attempt = config.max_attempts;
        bus.subscribe(
            completed,
            handler(move |d| {
                let j = j.clone();
                async move {
                    Ok(j.score_interview(d.decode()?, d.attempt >= last_attempt)
                        .await?)
                }
            }),
            cancel.clone(),
        )
        .await
        .context("subscribing to completed interviews")?;

        let mut frames = Subscription::new(ops::QUEUES[1], &[FrameCaptured::ROUTING_KEY]);
        frames.retry_delay = config.retry_delay;
        frames.max_attempts = config.max_attempts;
        let j = jobs;
        bus.subscribe(
            frames,
            handler(move |d| {
                let j = j.clone();
                async move { Ok(j.analyze_deferred_frame(d.decode()?).await?) }
            }),
            cancel.clone(),
        )
        .await
        .context("subscribing to deferred frames")?;

        let ops = ops::router(ops::Ops {
            bus: bus.clone(),
            token: config.ops_token.clone(),
        });
        let router = http::observe(
            health.router().merge(ops).fallback(http::not_found),
            "worker-service",
        );
        let listener = http::bind(&config.host, config.port)
            .await
            .context("binding the worker port")?;
        Ok(Self {
            listener,
            router,
            grace: config.grace,
            cancel,
            consul: config.consul,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "worker-service listening (health and metrics)");
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
