//! The worker turns events into results: it analyses frames that were queued while the emotion
//! service was unavailable, scores completed interviews (CalculateScore, GenerateReport),
//! announcing each score as ScoreCalculated, and has the emotion and scoring services erase an
//! erased interview's data, announcing each as ErasureReported. It serves only health, metrics
//! and its dead-letter operations over HTTP.
//!
//! Every handler is idempotent, because RabbitMQ delivers at least once: a frame analysed twice is
//! stored once (the emotion service keys frames by number), and an interview scored twice
//! overwrites its score with the same result.
//!
//! # Layout
//! - [`jobs`]: the handlers (scoring, deferred frames, erasures) and how their failures are
//!   classified (retry or dead-letter).
//! - [`ops`]: listing and replaying dead letters.
//! - [`interview`]: the interview service's internal endpoints, as the worker calls them.
//! - [`sweeper`]: erasing, now and then, the interviews whose retention ran out.

pub mod error;
pub mod interview;
pub mod jobs;
pub mod ops;
pub mod sweeper;

use std::time::Duration;

use anyhow::Context;
use iv_contracts::events::{
    ConsentWithdrawn, Event, FrameCaptured, InterviewCompleted, InterviewErased,
};
use iv_platform::bus::{EventBus, Subscription, handler};
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::ServiceSpec;
use iv_platform::discovery::Source;
use iv_platform::downstream::{self, EmotionClient, ScoringClient};
use iv_platform::health::Health;
use iv_platform::resilience::PolicyConfig;
use iv_platform::server::{Server, ServerConfig};
use iv_platform::{CancellationToken, http};

#[derive(Debug, Clone)]
pub struct Config {
    /// Port 8084 by default (`WORKER_PORT`): health, metrics and the ops endpoints.
    pub server: ServerConfig,
    /// Where the emotion and scoring services are: Consul's healthy instances when
    /// `CONSUL_HTTP_ADDR` is set, else `EMOTION_GRPC_URL` / `SCORING_GRPC_URL` (comma-separated
    /// for several instances).
    pub emotion: Source,
    pub scoring: Source,
    /// Where the interview service is (`INTERVIEW_URL` or Consul), for the retention sweeper.
    pub interview: Source,
    /// How often the sweeper erases interviews whose retention ran out
    /// (`RETENTION_SWEEP_INTERVAL_MS`, hourly).
    pub retention_sweep_every: Duration,
    pub emotion_policy: PolicyConfig,
    pub emotion_queries_policy: PolicyConfig,
    pub scoring_policy: PolicyConfig,
    /// Delay before a failed job is tried again (later attempts wait proportionally longer).
    pub retry_delay: Duration,
    pub max_attempts: u32,
    /// Attempts at an erasure before it is dead-lettered: many more than other jobs, since an
    /// erasure must happen however long a service is away. The delay grows with each attempt,
    /// so the default 200 keeps trying for about eleven hours at the default 2 s, the last
    /// attempts some minutes apart; after that a dead letter waits for replay.
    pub erasure_max_attempts: u32,
    /// How long a deferred frame may wait in the frame queue or its dead letters
    /// (`FRAME_TTL_MS`, as the interview service's): the broker discards it after that.
    pub frame_ttl: Duration,
}

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        Ok(Self {
            server: ServerConfig::from_env(&env, "WORKER_PORT", 8084)?,
            emotion: downstream::emotion_source(&env)?,
            scoring: downstream::scoring_source(&env)?,
            interview: Source::from_env(
                &env,
                "interview-service",
                "INTERVIEW_URL",
                "http://127.0.0.1:8081",
            )?,
            retention_sweep_every: env.millis("RETENTION_SWEEP_INTERVAL_MS", 3_600_000)?,
            emotion_policy: PolicyConfig::emotion().from_env(&env)?,
            emotion_queries_policy: PolicyConfig::emotion_queries().from_env(&env)?,
            scoring_policy: PolicyConfig::scoring().from_env(&env)?,
            retry_delay: env.millis("WORKER_RETRY_DELAY_MS", 2_000)?,
            max_attempts: env.parse("WORKER_MAX_ATTEMPTS", 6)?,
            erasure_max_attempts: env.parse("WORKER_ERASURE_MAX_ATTEMPTS", 200)?,
            frame_ttl: env.millis(
                "FRAME_TTL_MS",
                iv_contracts::events::FRAME_TTL.as_millis() as u64,
            )?,
        })
    }
}

/// How the worker appears in Consul.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "worker-service",
    tags: &["worker", "events"],
    grpc: None,
};

/// Subscribes the jobs and binds the port: a worker ready to run.
pub async fn build(config: Config, bus: EventBus) -> anyhow::Result<Server> {
    let health = Health::new("worker-service");
    health.set("broker", true, bus.kind());
    // The worker acts for no one in particular: it proves it is one of the backend's services.
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
    frames.message_ttl = Some(config.frame_ttl);
    let j = jobs.clone();
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

    for (queue, holder) in [
        (ops::QUEUES[2], jobs::Holder::Emotion),
        (ops::QUEUES[3], jobs::Holder::Scoring),
    ] {
        let mut erasures = Subscription::new(queue, &[InterviewErased::ROUTING_KEY]);
        erasures.retry_delay = config.retry_delay;
        erasures.max_attempts = config.erasure_max_attempts;
        let j = jobs.clone();
        bus.subscribe(
            erasures,
            handler(move |d| {
                let j = j.clone();
                async move { Ok(j.erase(&d.decode()?, holder).await?) }
            }),
            cancel.clone(),
        )
        .await
        .context("subscribing to erasures")?;
    }

    let mut withdrawals = Subscription::new(ops::QUEUES[4], &[ConsentWithdrawn::ROUTING_KEY]);
    withdrawals.retry_delay = config.retry_delay;
    withdrawals.max_attempts = config.erasure_max_attempts;
    let j = jobs.clone();
    bus.subscribe(
        withdrawals,
        handler(move |d| {
            let j = j.clone();
            async move { Ok(j.consent_withdrawn(&d.decode()?).await?) }
        }),
        cancel.clone(),
    )
    .await
    .context("subscribing to consent withdrawals")?;

    let interview = interview::InterviewClient {
        instances: config.interview.start("interview-service"),
        credential,
        http: iv_platform::client::HttpClient::new(),
    };
    sweeper::Sweeper {
        interview: interview.clone(),
        every: config.retention_sweep_every,
    }
    .spawn(cancel.clone());

    let router = service_router(
        ops::Ops {
            bus: bus.clone(),
            audit: Some(interview),
        },
        &health,
    );
    // Health and metrics stay open; the ops endpoints need an asserted identity.
    let router = config
        .server
        .auth
        .guard(router, SERVICE.name)
        .context("loading the service credential")?;
    Server::bind(&config.server, &SERVICE, router, cancel)
        .await
        .context("binding the worker port")
}

/// The worker's HTTP surface: health, metrics and the ops endpoints, with the common layers and
/// the JSON 404.
pub fn service_router(ops: ops::Ops, health: &Health) -> axum::Router {
    http::observe(
        health
            .router()
            .merge(ops::router(ops))
            .fallback(http::not_found),
        SERVICE.name,
    )
}

#[cfg(test)]
mod tests;
