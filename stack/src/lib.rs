//! The whole interview backend in one process, on embedded defaults (SQLite file, in-process
//! event bus) or on RabbitMQ/PostgreSQL when `AMQP_URL`/`DATABASE_URL` are set; and the candidate
//! simulator that plays an interview through the gateway.
//!
//! # Layout
//! - [`Stack`]: starts the five services in dependency order and wires their addresses.
//! - [`sim`]: the candidate simulator (used by the `candidate-sim` binary and the end-to-end tests).
//! - [`media`]: where the fetched test media live.

pub mod media;
pub mod sim;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use emotion_service::analysis::FrameAnalyzer;
use iv_platform::CancellationToken;
use iv_platform::bus::EventBus;
use tokio::task::JoinHandle;

/// The addresses of a running stack.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub gateway: SocketAddr,
    pub interview: SocketAddr,
    pub emotion: SocketAddr,
    pub scoring: SocketAddr,
    pub worker: SocketAddr,
}

pub struct Stack {
    pub addresses: Addresses,
    pub bus: EventBus,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Stack {
    /// Starts every service from `env` (the same variables the services read alone).
    /// `analyzer` replaces the emotion service's own model loading when given.
    pub async fn start(
        mut env: HashMap<String, String>,
        analyzer: Option<Arc<dyn FrameAnalyzer>>,
    ) -> anyhow::Result<Self> {
        let bus = EventBus::from_env(&iv_platform::config::Env::new(&env))
            .await
            .context("connecting to the message broker")?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        let scoring =
            scoring_service::Application::build(scoring_service::Config::from_env(&env)?).await?;
        let scoring_addr = scoring.local_addr();
        let emotion_config = emotion_service::Config::from_env(&env)?;
        let emotion = match analyzer {
            Some(a) => emotion_service::Application::build_with(emotion_config, a).await?,
            None => emotion_service::Application::build(emotion_config).await?,
        };
        let emotion_addr = emotion.local_addr();
        for (key, addr) in [
            ("EMOTION_GRPC_URL", emotion_addr),
            ("SCORING_GRPC_URL", scoring_addr),
            ("EMOTION_URL", emotion_addr),
            ("SCORING_URL", scoring_addr),
        ] {
            env.insert(key.into(), format!("http://{addr}"));
        }
        let interview = interview_service::Application::build(
            interview_service::Config::from_env(&env)?,
            bus.clone(),
        )
        .await?;
        let interview_addr = interview.local_addr();
        env.insert("INTERVIEW_URL".into(), format!("http://{interview_addr}"));
        let worker = worker_service::Application::build(
            worker_service::Config::from_env(&env)?,
            bus.clone(),
        )
        .await?;
        let worker_addr = worker.local_addr();
        let gateway = gateway::Application::build(gateway::Config::from_env(&env)?).await?;
        let gateway_addr = gateway.local_addr();

        let stop = || {
            let token = shutdown.clone();
            async move { token.cancelled().await }
        };
        tasks.push(tokio::spawn(scoring.run_until(stop())));
        tasks.push(tokio::spawn(emotion.run_until(stop())));
        tasks.push(tokio::spawn(interview.run_until(stop())));
        tasks.push(tokio::spawn(worker.run_until(stop())));
        tasks.push(tokio::spawn(gateway.run_until(stop())));

        Ok(Self {
            addresses: Addresses {
                gateway: gateway_addr,
                interview: interview_addr,
                emotion: emotion_addr,
                scoring: scoring_addr,
                worker: worker_addr,
            },
            bus,
            shutdown,
            tasks,
        })
    }

    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.addresses.gateway)
    }

    /// Stops every service and waits for them to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The environment of a test stack: free ports, a fresh SQLite file (unless `DATABASE_URL` is
/// given in `extra`), fast retries.
pub fn test_env(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("BIND_HOST", "127.0.0.1"),
        ("GATEWAY_PORT", "0"),
        ("INTERVIEW_PORT", "0"),
        ("EMOTION_PORT", "0"),
        ("SCORING_PORT", "0"),
        ("WORKER_PORT", "0"),
        ("WORKER_RETRY_DELAY_MS", "200"),
        ("SHUTDOWN_GRACE_MS", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATA_DIR".into(), data_dir.display().to_string());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}
