//! The whole interview backend in one process, on embedded defaults (SQLite file, in-process
//! event bus) or on RabbitMQ/PostgreSQL when `AMQP_URL`/`DATABASE_URL` are set; and the candidate
//! simulator that plays an interview through the gateway.
//!
//! # Layout
//! - [`Stack`]: starts the five services in dependency order and wires their addresses.
//! - [`sim`]: the candidate simulator (used by the `candidate-sim` binary and the end-to-end tests).
//! - [`media`]: where the fetched test media live.
//! - [`tokens`]: tokens of the backend's own issuer (the first admin's sign-in link, `mint-token`).

pub mod media;
pub mod sim;
pub mod tokens;

pub use tokens::ws_request;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use emotion_service::analysis::FrameAnalyzer;
use iv_platform::CancellationToken;
use iv_platform::bus::EventBus;
use iv_platform::server::Server;
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
    /// Where each service is: started here, or given by its URL variable (or its default).
    pub addresses: Addresses,
    /// The services started in this process.
    pub services: Vec<Service>,
    pub bus: EventBus,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Scoring,
    Emotion,
    Interview,
    Worker,
    Gateway,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Self::Scoring,
        Self::Emotion,
        Self::Interview,
        Self::Worker,
        Self::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Scoring => "scoring",
            Self::Emotion => "emotion",
            Self::Interview => "interview",
            Self::Worker => "worker",
            Self::Gateway => "gateway",
        }
    }

    /// The variable that tells the other services where this one is, when it runs elsewhere.
    fn url_key(self) -> &'static str {
        match self {
            Self::Scoring => "SCORING_GRPC_URL",
            Self::Emotion => "EMOTION_GRPC_URL",
            Self::Interview => "INTERVIEW_URL",
            Self::Worker => "WORKER_URL",
            Self::Gateway => "GATEWAY_URL",
        }
    }

    /// The `service.name` of this process's traces: the service's own name when it runs alone
    /// (as it would in its own container), `interview-backend` for several in one process.
    pub fn trace_name(selected: &[Service]) -> &'static str {
        match selected {
            [Service::Scoring] => scoring_service::SERVICE.name,
            [Service::Emotion] => emotion_service::SERVICE.name,
            [Service::Interview] => interview_service::SERVICE.name,
            [Service::Worker] => worker_service::SERVICE.name,
            [Service::Gateway] => gateway::SERVICE.name,
            _ => "interview-backend",
        }
    }

    /// `STACK_SERVICES` (comma-separated names; all five when unset).
    pub fn selected(env: &HashMap<String, String>) -> anyhow::Result<Vec<Service>> {
        let Some(list) = env.get("STACK_SERVICES").filter(|s| !s.trim().is_empty()) else {
            return Ok(Self::ALL.to_vec());
        };
        list.split(',')
            .map(|name| {
                let name = name.trim();
                Self::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .with_context(|| {
                        format!("STACK_SERVICES: unknown service {name:?} (scoring, emotion, interview, worker, gateway)")
                    })
            })
            .collect()
    }
}

/// The address of a service run elsewhere: its URL variable (the first instance, when it lists
/// several), or the service's default address (which is also what the other services assume when
/// the variable is unset).
fn external(env: &HashMap<String, String>, service: Service) -> anyhow::Result<SocketAddr> {
    let key = service.url_key();
    let Some(url) = env.get(key) else {
        let port = match service {
            Service::Gateway => 8080,
            Service::Interview => 8081,
            Service::Emotion => 8082,
            Service::Scoring => 8083,
            Service::Worker => 8084,
        };
        return Ok(([127, 0, 0, 1], port).into());
    };
    let first = url.split(',').next().unwrap_or(url).trim();
    let authority = first
        .split("://")
        .nth(1)
        .unwrap_or(first)
        .trim_end_matches('/');
    authority
        .parse()
        .with_context(|| format!("{key}={url} is not http://<ip>:<port>"))
}

/// Tells the services started later where `service` is: every variable naming it is set when it
/// runs here, and filled in when unset otherwise (REST and gRPC share one port, so the REST
/// variable follows the gRPC one).
fn point_at(env: &mut HashMap<String, String>, service: Service, addr: SocketAddr, here: bool) {
    let keys: &[&str] = match service {
        Service::Scoring => &["SCORING_GRPC_URL", "SCORING_URL"],
        Service::Emotion => &["EMOTION_GRPC_URL", "EMOTION_URL"],
        Service::Interview => &["INTERVIEW_URL"],
        Service::Worker | Service::Gateway => &[],
    };
    // A service given a certificate serves TLS, and is reached as https.
    let prefix = match service {
        Service::Scoring => "SCORING",
        Service::Emotion => "EMOTION",
        Service::Interview => "INTERVIEW",
        Service::Worker => "WORKER",
        Service::Gateway => "GATEWAY",
    };
    let scheme = if env.contains_key(&format!("{prefix}_TLS_CERT_FILE")) {
        "https"
    } else {
        "http"
    };
    for key in keys {
        let url = format!("{scheme}://{addr}");
        if here {
            env.insert(key.to_string(), url);
        } else {
            env.entry(key.to_string()).or_insert(url);
        }
    }
}

impl Stack {
    /// Starts the services named by `STACK_SERVICES` (all five by default) from `env`, the same
    /// variables the services read alone; the others must be given by their URL variables.
    /// `analyzer` replaces the emotion service's own model loading when given.
    ///
    /// One function on purpose (about 85 lines): the five services start in dependency order,
    /// each learning the addresses of those before it, and that order reads best top to bottom.
    pub async fn start(
        mut env: HashMap<String, String>,
        analyzer: Option<Arc<dyn FrameAnalyzer>>,
    ) -> anyhow::Result<Self> {
        let selected = Service::selected(&env)?;
        let runs = |s: Service| selected.contains(&s);
        let bus = EventBus::from_env(&iv_platform::config::Env::new(&env))
            .await
            .context("connecting to the message broker")?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut launch = |server: Server| {
            let addr = server.local_addr();
            let token = shutdown.clone();
            tasks.push(tokio::spawn(
                server.run_until(async move { token.cancelled().await }),
            ));
            addr
        };

        // In dependency order: each service learns where the ones before it are.
        let scoring_addr = if runs(Service::Scoring) {
            launch(scoring_service::build(scoring_service::Config::from_env(&env)?).await?)
        } else {
            external(&env, Service::Scoring)?
        };
        point_at(
            &mut env,
            Service::Scoring,
            scoring_addr,
            runs(Service::Scoring),
        );
        let emotion_addr = if runs(Service::Emotion) {
            let config = emotion_service::Config::from_env(&env)?;
            launch(match analyzer {
                Some(a) => emotion_service::build_with(config, a).await?,
                None => emotion_service::build(config).await?,
            })
        } else {
            external(&env, Service::Emotion)?
        };
        point_at(
            &mut env,
            Service::Emotion,
            emotion_addr,
            runs(Service::Emotion),
        );
        let interview_addr = if runs(Service::Interview) {
            let config = interview_service::Config::from_env(&env)?;
            launch(interview_service::build(config, bus.clone()).await?)
        } else {
            external(&env, Service::Interview)?
        };
        point_at(
            &mut env,
            Service::Interview,
            interview_addr,
            runs(Service::Interview),
        );
        let worker_addr = if runs(Service::Worker) {
            let config = worker_service::Config::from_env(&env)?;
            launch(worker_service::build(config, bus.clone()).await?)
        } else {
            external(&env, Service::Worker)?
        };
        let gateway_addr = if runs(Service::Gateway) {
            launch(gateway::build(gateway::Config::from_env(&env)?).await?)
        } else {
            external(&env, Service::Gateway)?
        };

        Ok(Self {
            addresses: Addresses {
                gateway: gateway_addr,
                interview: interview_addr,
                emotion: emotion_addr,
                scoring: scoring_addr,
                worker: worker_addr,
            },
            services: selected,
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
        // One credential for every process of a test, whatever its data directory.
        ("SERVICE_SECRET", "test-service-secret-of-at-least-32-bytes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATA_DIR".into(), data_dir.display().to_string());
    // The pages, from this checkout.
    env.insert(
        "GATEWAY_WEB_DIR".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
    );
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_elsewhere_is_at_its_url_or_its_first_listed_instance() {
        let env: HashMap<String, String> = [(
            "SCORING_GRPC_URL".to_string(),
            "http://127.0.0.1:9001/, http://127.0.0.1:9002".to_string(),
        )]
        .into();
        assert_eq!(
            external(&env, Service::Scoring).unwrap(),
            "127.0.0.1:9001".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            external(&env, Service::Emotion).unwrap(),
            "127.0.0.1:8082".parse::<SocketAddr>().unwrap()
        );
    }
}
