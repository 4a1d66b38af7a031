//! The five services, each as its own process (the `stack` binary with `STACK_SERVICES=<one>`),
//! so that each one's CPU and memory can be read. Processes cannot share the in-process event
//! bus, so they meet on RabbitMQ (`AMQP_URL`, by default the local broker) under a namespace of
//! their own, and share one SQLite file in a fresh directory.

use std::collections::HashMap;

use anyhow::Context;
use iv_test_support::ServiceProcess;

/// In dependency order: each learns where the ones before it are. With the variables that point
/// the later ones at it (REST and gRPC share one port).
const ORDER: [(&str, &[&str]); 5] = [
    ("scoring", &["SCORING_GRPC_URL", "SCORING_URL"]),
    ("emotion", &["EMOTION_GRPC_URL", "EMOTION_URL"]),
    ("interview", &["INTERVIEW_URL"]),
    ("worker", &["WORKER_URL"]),
    ("gateway", &[]),
];

pub struct Processes {
    running: Vec<ServiceProcess>,
    dir: std::path::PathBuf,
    env: HashMap<String, String>,
}

impl Processes {
    pub async fn start() -> anyhow::Result<Self> {
        let amqp = std::env::var("AMQP_URL").unwrap_or_else(|_| iv_test_support::amqp_url());
        let namespace = format!("loadgen-{}.", uuid::Uuid::new_v4().simple());
        iv_platform::bus::EventBus::connect(Some(&amqp), &namespace)
            .await
            .with_context(|| {
                format!("the services run as separate processes and meet on RabbitMQ at {amqp} (set AMQP_URL)")
            })?;
        let dir = std::env::temp_dir().join(format!("loadgen-{}", uuid::Uuid::new_v4().simple()));
        let mut env: HashMap<String, String> =
            iv_stack::test_env(&dir, &[("AMQP_URL", &amqp), ("AMQP_NAMESPACE", &namespace)]);
        let mut running = Vec::new();
        for (name, keys) in ORDER {
            println!("starting {name}...");
            let process = ServiceProcess::start(name, env.clone()).await;
            for key in keys {
                env.insert(key.to_string(), process.url());
            }
            running.push(process);
        }
        Ok(Self { running, dir, env })
    }

    fn url_of(&self, index: usize) -> String {
        self.running[index].url()
    }

    /// The gateway, with a token of the processes' own signing key.
    pub fn gateway(&self) -> anyhow::Result<crate::candidate::Gateway> {
        Ok(crate::candidate::Gateway {
            url: self.url_of(4),
            token: iv_stack::tokens::mint(
                &self.env,
                &iv_stack::tokens::first_admin(),
                std::time::Duration::from_secs(4 * 3600),
            )?,
        })
    }

    /// Where the interview service's breaker figures are.
    pub fn interview_metrics_url(&self) -> String {
        format!("{}/metrics", self.url_of(2))
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        ORDER
            .iter()
            .zip(&self.running)
            .filter_map(|((name, _), p)| Some((name.to_string(), p.pid()?)))
            .collect()
    }

    pub async fn stop(mut self) {
        for process in self.running.iter_mut().rev() {
            process.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
