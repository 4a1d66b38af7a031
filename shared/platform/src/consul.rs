//! Registering a service instance in Consul (with consulrs) when `CONSUL_HTTP_ADDR` is set, and
//! deregistering it on graceful shutdown.
//!
//! Each instance registers under a unique id (`<name>-<address>-<port>`: stable across restarts
//! on the same address, so a restarted instance replaces its own stale entry instead of leaving a
//! twin), with an HTTP check on `/health/ready` and, for gRPC services, a gRPC check on
//! `grpc.health.v1`. An agent that is down at start does not stop the service: registration is
//! retried in the background with backoff. On shutdown the instance deregisters *before* it
//! drains, so discovery stops sending it new work while it finishes what it has.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use consulrs::api::check::common::AgentServiceCheckBuilder;
use consulrs::api::service::requests::{RegisterServiceRequest, RegisterServiceRequestBuilder};
use consulrs::client::{ConsulClient, ConsulClientSettingsBuilder};
use tokio::task::JoinHandle;

use crate::config::{ConfigError, Env};
use crate::discovery::ConsulAgent;

/// How a service registers; read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationConfig {
    pub agent: ConsulAgent,
    /// The address other machines reach this instance at (`SERVICE_ADDRESS`). Defaults to the
    /// bound address, or to `HOSTNAME` when bound to every interface (containers).
    pub address: Option<String>,
    /// Extra tags (`SERVICE_TAGS`, comma-separated), e.g. a zone or a version.
    pub tags: Vec<String>,
    /// Check interval and timeout, and how long an instance may stay critical before the agent
    /// removes it (`CONSUL_CHECK_INTERVAL`, `CONSUL_CHECK_TIMEOUT`, `CONSUL_DEREGISTER_AFTER`,
    /// Go duration strings as Consul takes them).
    pub check_interval: String,
    pub check_timeout: String,
    pub deregister_after: String,
    /// Fallback host for an instance bound to every interface.
    hostname: Option<String>,
}

impl RegistrationConfig {
    /// `None` when `CONSUL_HTTP_ADDR` is unset: the service runs without registering.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(agent) = ConsulAgent::from_env(env)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            agent,
            address: env.optional("SERVICE_ADDRESS"),
            tags: env.list("SERVICE_TAGS"),
            // 10 s / 2 s as the design's definitions; 1 m before a dead instance is forgotten.
            check_interval: env.string("CONSUL_CHECK_INTERVAL", "10s"),
            check_timeout: env.string("CONSUL_CHECK_TIMEOUT", "2s"),
            deregister_after: env.string("CONSUL_DEREGISTER_AFTER", "1m"),
            hostname: env.optional("HOSTNAME"),
        }))
    }

    fn advertised_host(&self, bound: SocketAddr) -> String {
        if let Some(address) = &self.address {
            return address.clone();
        }
        if bound.ip().is_unspecified() {
            return self
                .hostname
                .clone()
                .unwrap_or_else(|| "127.0.0.1".to_string());
        }
        bound.ip().to_string()
    }
}

/// What a service says about itself when it registers.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// The Consul service name others discover it by (`interview-service`, ...).
    pub name: &'static str,
    pub tags: &'static [&'static str],
    /// The gRPC service whose `grpc.health.v1` status Consul checks (`emotion.EmotionService`),
    /// for services that serve gRPC on their port. Naming it, rather than the server as a whole,
    /// lets an instance that cannot serve it (models missing) read as critical.
    pub grpc: Option<&'static str>,
}

/// The registration request an instance sends; a pure function so tests can read it.
pub fn registration(
    config: &RegistrationConfig,
    spec: &ServiceSpec,
    bound: SocketAddr,
) -> RegisterServiceRequest {
    registration_builder(config, spec, bound)
        .name(spec.name)
        .build()
        .expect("every field of the registration is set")
}

/// `<name>-<address>-<port>`: unique per instance, and the same when it restarts on its address.
fn instance_id(config: &RegistrationConfig, spec: &ServiceSpec, bound: SocketAddr) -> String {
    let host = config.advertised_host(bound).replace([':', '[', ']'], "_");
    format!("{}-{host}-{}", spec.name, bound.port())
}

/// consulrs' `register` takes the request as a builder.
fn registration_builder(
    config: &RegistrationConfig,
    spec: &ServiceSpec,
    bound: SocketAddr,
) -> RegisterServiceRequestBuilder {
    let host = config.advertised_host(bound);
    let port = bound.port();
    let id = instance_id(config, spec, bound);
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut checks = vec![
        AgentServiceCheckBuilder::default()
            .check_id(format!("{id}-ready"))
            .name(format!("{} ready", spec.name))
            .http(format!("http://{authority}/health/ready"))
            .method("GET")
            .interval(config.check_interval.clone())
            .timeout(config.check_timeout.clone())
            .deregister_critical_service_after(config.deregister_after.clone())
            .build()
            .expect("every field of the check is set"),
    ];
    if let Some(grpc_service) = spec.grpc {
        checks.push(
            AgentServiceCheckBuilder::default()
                .check_id(format!("{id}-grpc"))
                .name(format!("{} gRPC health", spec.name))
                .grpc(format!("{authority}/{grpc_service}"))
                .grpc_use_tls(false)
                .interval(config.check_interval.clone())
                .timeout(config.check_timeout.clone())
                .deregister_critical_service_after(config.deregister_after.clone())
                .build()
                .expect("every field of the check is set"),
        );
    }
    let mut tags: Vec<String> = spec.tags.iter().map(|t| t.to_string()).collect();
    tags.extend(config.tags.iter().cloned());
    let mut builder = RegisterServiceRequest::builder();
    builder
        .id(id)
        .address(host)
        .port(u64::from(port))
        .tags(tags)
        .meta(HashMap::from([(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]))
        .checks(checks);
    builder
}

fn client(agent: &ConsulAgent) -> anyhow::Result<ConsulClient> {
    let mut settings = ConsulClientSettingsBuilder::default();
    settings.address(agent.addr.clone()).verify(true);
    if let Some(token) = &agent.token {
        settings.token(token.clone());
    }
    Ok(ConsulClient::new(settings.build()?)?)
}

/// A registration in progress or done; [`Registration::until_shutdown`] deregisters it.
pub struct Registration {
    inner: Option<Registered>,
}

struct Registered {
    client: std::sync::Arc<ConsulClient>,
    id: String,
    name: &'static str,
    task: JoinHandle<()>,
}

impl Registration {
    /// Starts registering `spec` at `bound` in the background; nothing when Consul is not
    /// configured.
    pub fn start(
        config: Option<&RegistrationConfig>,
        spec: &ServiceSpec,
        bound: SocketAddr,
    ) -> Self {
        let Some(config) = config else {
            return Self { inner: None };
        };
        let client = match client(&config.agent) {
            Ok(c) => std::sync::Arc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the Consul client; not registering");
                return Self { inner: None };
            }
        };
        let request = registration_builder(config, spec, bound);
        let id = instance_id(config, spec, bound);
        let name = spec.name;
        let task = {
            let client = client.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let register = || {
                    let client = client.clone();
                    let mut builder = request.clone();
                    async move {
                        consulrs::service::register(&*client, name, Some(&mut builder))
                            .await
                            .map(|_| ())
                    }
                };
                // Forever, with backoff up to 30 s: the agent may start after the service.
                let policy = ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(30))
                    .with_jitter()
                    .without_max_times();
                let outcome = register
                    .retry(policy)
                    .sleep(tokio::time::sleep)
                    .notify(|e, after| {
                        tracing::warn!(error = %e, ?after, "registering in Consul failed; retrying");
                    })
                    .await;
                match outcome {
                    Ok(()) => tracing::info!(service = name, id, "registered in Consul"),
                    Err(e) => tracing::error!(error = %e, "registering in Consul failed"),
                }
            })
        };
        Self {
            inner: Some(Registered {
                client,
                id,
                name,
                task,
            }),
        }
    }

    /// Waits for `shutdown`, then deregisters (at most 3 s; the agent's own
    /// `deregister_critical_service_after` removes it if this fails).
    pub async fn until_shutdown(self, shutdown: impl Future<Output = ()> + Send) {
        shutdown.await;
        let Some(r) = self.inner else { return };
        r.task.abort();
        let result = tokio::time::timeout(
            Duration::from_secs(3),
            consulrs::service::deregister(&*r.client, &r.id, None),
        )
        .await;
        match result {
            Ok(Ok(_)) => {
                tracing::info!(service = r.name, id = r.id, "deregistered from Consul")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, id = r.id, "deregistering from Consul failed")
            }
            Err(_) => {
                tracing::warn!(id = r.id, "Consul did not answer the deregistration in 3 s")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> RegistrationConfig {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RegistrationConfig::from_env(&Env::new(&map))
            .unwrap()
            .expect("configured")
    }

    const SCORING: ServiceSpec = ServiceSpec {
        name: "scoring-service",
        tags: &["scoring", "grpc"],
        grpc: Some("scoring.ScoringService"),
    };

    #[test]
    fn nothing_registers_without_an_agent() {
        let map: HashMap<String, String> = HashMap::new();
        assert_eq!(RegistrationConfig::from_env(&Env::new(&map)).unwrap(), None);
    }

    #[test]
    fn a_grpc_service_declares_an_http_and_a_grpc_check_on_its_own_address() {
        let c = config(&[
            ("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
            ("SERVICE_TAGS", "zone-a"),
        ]);
        let r = registration(&c, &SCORING, "10.1.2.3:8083".parse().unwrap());
        assert_eq!(r.id.as_deref(), Some("scoring-service-10.1.2.3-8083"));
        assert_eq!(r.address.as_deref(), Some("10.1.2.3"));
        assert_eq!(r.port, Some(8083));
        assert_eq!(
            r.tags.as_deref(),
            Some(&["scoring".to_string(), "grpc".into(), "zone-a".into()][..])
        );
        let checks = r.checks.unwrap();
        assert_eq!(
            checks[0].http.as_deref(),
            Some("http://10.1.2.3:8083/health/ready")
        );
        assert_eq!(checks[0].interval.as_deref(), Some("10s"));
        assert_eq!(
            checks[1].grpc.as_deref(),
            Some("10.1.2.3:8083/scoring.ScoringService")
        );
        assert_eq!(checks[1].grpc_use_tls, Some(false));
        assert_eq!(
            checks[1].deregister_critical_service_after.as_deref(),
            Some("1m")
        );
    }

    #[test]
    fn an_instance_bound_to_every_interface_advertises_its_host_name() {
        let c = config(&[
            ("CONSUL_HTTP_ADDR", "consul:8500"),
            ("HOSTNAME", "scoring-7f9c"),
        ]);
        let r = registration(&c, &SCORING, "0.0.0.0:8083".parse().unwrap());
        assert_eq!(r.address.as_deref(), Some("scoring-7f9c"));
        let c = config(&[
            ("CONSUL_HTTP_ADDR", "consul:8500"),
            ("SERVICE_ADDRESS", "10.0.0.9"),
        ]);
        let r = registration(&c, &SCORING, "0.0.0.0:8083".parse().unwrap());
        assert_eq!(r.address.as_deref(), Some("10.0.0.9"));
    }

    #[test]
    fn an_http_only_service_declares_one_check() {
        let c = config(&[("CONSUL_HTTP_ADDR", "127.0.0.1:8500")]);
        let spec = ServiceSpec {
            name: "gateway",
            tags: &["edge"],
            grpc: None,
        };
        let r = registration(&c, &spec, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(r.checks.unwrap().len(), 1);
    }
}
