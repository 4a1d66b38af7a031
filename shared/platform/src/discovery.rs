//! Where a downstream's instances are, and which one takes the next call.
//!
//! A [`Source`] is either a static list (the service's URL variable, which may name several
//! instances separated by commas) or Consul: the healthy instances of a service as the agent's
//! `/v1/health/service/:name?passing` reports them, polled every [`ConsulAgent::poll`]. Consul
//! wins when `CONSUL_HTTP_ADDR` is set.
//!
//! [`Instances`] picks round-robin, or by key ([`Instances::pick_for`]) where an instance keeps
//! state per key (the emotion service tracks each session's face and blinks in memory). An
//! instance whose connection just failed is set aside for
//! [`EJECT_FOR`] so the caller's next attempt goes elsewhere; Consul's own checks take longer
//! (an interval or two) to drop a dead instance, and a static list has no checks at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::watch;

use crate::client::HttpClient;
use crate::config::{ConfigError, Env};

/// How long an instance that refused a connection is skipped: long enough for the caller's
/// retries to go elsewhere, short enough that a restarted instance gets traffic again soon even
/// without Consul.
pub const EJECT_FOR: Duration = Duration::from_secs(5);

/// A Consul agent's HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsulAgent {
    /// `http://host:port`, no trailing slash (`CONSUL_HTTP_ADDR`; a bare `host:port` is accepted
    /// as the consul CLI does).
    pub addr: String,
    /// ACL token sent as `X-Consul-Token` (`CONSUL_HTTP_TOKEN`).
    pub token: Option<String>,
    /// How often healthy instances are re-read (`CONSUL_POLL_MS`, default 1 s): a failed instance
    /// leaves the rotation within one check interval plus this.
    pub poll: Duration,
}

impl ConsulAgent {
    /// The agent named by `CONSUL_HTTP_ADDR`, or `None` when Consul is not configured.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(addr) = env.optional("CONSUL_HTTP_ADDR") else {
            return Ok(None);
        };
        let addr = addr.trim().trim_end_matches('/');
        let addr = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        if addr.parse::<http::Uri>().is_err() {
            return Err(ConfigError::invalid(
                "CONSUL_HTTP_ADDR",
                &addr,
                "not an address such as http://127.0.0.1:8500",
            ));
        }
        Ok(Some(Self {
            addr,
            token: env.optional("CONSUL_HTTP_TOKEN"),
            poll: env.millis("CONSUL_POLL_MS", 1000)?,
        }))
    }
}

/// Where the instances of one downstream come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Fixed base URLs (`http://host:port`).
    Static(Vec<String>),
    /// The passing instances of `service` in Consul.
    Consul { agent: ConsulAgent, service: String },
}

impl Source {
    /// Consul when `CONSUL_HTTP_ADDR` is set, else the comma-separated URLs of `url_key`
    /// (`default` when unset).
    pub fn from_env(
        env: &Env,
        service: &str,
        url_key: &str,
        default: &str,
    ) -> Result<Self, ConfigError> {
        if let Some(agent) = ConsulAgent::from_env(env)? {
            return Ok(Self::Consul {
                agent,
                service: service.to_string(),
            });
        }
        Self::list(url_key, &env.string(url_key, default))
    }

    /// A static list from comma-separated base URLs; `key` names the variable in errors.
    pub fn list(key: &str, urls: &str) -> Result<Self, ConfigError> {
        let urls: Vec<String> = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let invalid = |value: &str, reason: &str| ConfigError::invalid(key, value, reason);
        if urls.is_empty() {
            return Err(invalid("", "needs at least one URL"));
        }
        for url in &urls {
            let uri: http::Uri = url
                .parse()
                .map_err(|_| invalid(url, "not a URL such as http://127.0.0.1:8082"))?;
            if uri.scheme().is_none() || uri.authority().is_none() {
                return Err(invalid(
                    url,
                    "needs a scheme and host, e.g. http://host:port",
                ));
            }
        }
        Ok(Self::Static(urls))
    }

    /// One fixed URL (tests, tools).
    pub fn url(url: &str) -> Self {
        Self::Static(vec![url.trim_end_matches('/').to_string()])
    }

    /// Starts following the source. For Consul this spawns a poller on the current runtime, which
    /// ends when the last clone of the returned [`Instances`] is dropped.
    pub fn start(&self, name: &'static str) -> Instances {
        match self {
            Self::Static(urls) => Instances::new(name, urls.clone()).0,
            Self::Consul { agent, service } => {
                let (instances, publisher) = Instances::new(name, Vec::new());
                tokio::spawn(follow_consul(agent.clone(), service.clone(), publisher));
                instances
            }
        }
    }
}

/// The current instances of one downstream and a round-robin cursor over them. Clones share both.
#[derive(Clone)]
pub struct Instances {
    name: &'static str,
    current: watch::Receiver<Arc<Vec<String>>>,
    next: Arc<AtomicUsize>,
    ejected: Ejected,
}

/// Instances set aside, until when. An instance that leaves the list is forgotten here, so when
/// it comes back (restarted, passing its checks again) it is taken at once.
type Ejected = Arc<Mutex<HashMap<String, Instant>>>;

/// Publishes a new instance list.
struct Publisher {
    tx: watch::Sender<Arc<Vec<String>>>,
    ejected: Ejected,
}

impl Publisher {
    fn publish(&self, service: &str, urls: Vec<String>) {
        self.tx.send_if_modified(|current| {
            if **current == urls {
                return false;
            }
            tracing::info!(service, instances = ?urls, "healthy instances changed");
            self.ejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|u, _| urls.contains(u));
            *current = Arc::new(urls);
            true
        });
    }
}

impl Instances {
    fn new(name: &'static str, urls: Vec<String>) -> (Self, Publisher) {
        let (tx, rx) = watch::channel(Arc::new(urls));
        let ejected = Ejected::default();
        let instances = Self {
            name,
            current: rx,
            next: Arc::default(),
            ejected: ejected.clone(),
        };
        (instances, Publisher { tx, ejected })
    }

    /// The downstream's name (for logs and errors).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Every instance known now, healthy or set aside.
    pub fn all(&self) -> Arc<Vec<String>> {
        self.current.borrow().clone()
    }

    /// Waits until the instance list differs from what was last seen (tests, tools).
    pub async fn changed(&mut self) -> bool {
        self.current.changed().await.is_ok()
    }

    /// The next instance in turn.
    pub fn pick(&self) -> Option<String> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.choose(|candidates| candidates.get(turn % candidates.len()).copied())
    }

    /// The instance for `key`, by rendezvous hashing: the same one for as long as it is listed and
    /// not set aside, so state kept per key stays on one instance; when it goes, its keys spread
    /// over the others (each to its next-ranked instance) and the rest stay where they are.
    pub fn pick_for(&self, key: &str) -> Option<String> {
        self.choose(|candidates| {
            candidates
                .iter()
                .copied()
                .max_by_key(|url| rendezvous_score(key, url))
        })
    }

    /// `choose` over the instances not set aside or, when every one is set aside, over all of
    /// them (trying is better than refusing). `None` when there are none at all.
    fn choose(
        &self,
        choose: impl for<'a> FnOnce(&[&'a String]) -> Option<&'a String>,
    ) -> Option<String> {
        let all = self.all();
        if all.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut ejected = self.ejected.lock().unwrap_or_else(|e| e.into_inner());
        ejected.retain(|_, until| *until > now);
        let usable: Vec<&String> = all.iter().filter(|u| !ejected.contains_key(*u)).collect();
        let candidates = if usable.is_empty() {
            all.iter().collect()
        } else {
            usable
        };
        choose(&candidates).cloned()
    }

    /// How many instances are known now (the most attempts worth making for one call).
    pub fn len(&self) -> usize {
        self.current.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `url` aside for [`EJECT_FOR`] after its connection failed.
    pub fn eject(&self, url: &str) {
        let mut ejected = self.ejected.lock().unwrap_or_else(|e| e.into_inner());
        if ejected
            .insert(url.to_string(), Instant::now() + EJECT_FOR)
            .is_none()
        {
            tracing::warn!(
                downstream = self.name,
                instance = url,
                "instance unreachable; skipping it for {EJECT_FOR:?}"
            );
            metrics::counter!("downstream_instance_ejections_total", "downstream" => self.name)
                .increment(1);
        }
    }
}

/// FNV-1a over key and instance: stable across processes and builds, so the interview service and
/// the worker send a session's frames to the same instance.
fn rendezvous_score(key: &str, url: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain([0xff]).chain(url.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly for similar inputs; finish with a multiply-xorshift.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// One entry of `/v1/health/service/:name`; only what discovery needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthEntry {
    node: HealthNode,
    service: HealthService,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthNode {
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthService {
    #[serde(default)]
    address: String,
    port: u16,
}

/// The base URLs of the passing instances of `service`. A service registered without an address
/// is at its node's address, as Consul's own DNS interface answers.
pub async fn passing_instances(
    http: &HttpClient,
    agent: &ConsulAgent,
    service: &str,
) -> anyhow::Result<Vec<String>> {
    let url = format!("{}/v1/health/service/{service}?passing=true", agent.addr);
    let headers: Vec<(&str, &str)> = agent
        .token
        .as_deref()
        .map(|t| ("x-consul-token", t))
        .into_iter()
        .collect();
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        http.send(http::Method::GET, &url, None, bytes::Bytes::new(), &headers),
    )
    .await
    .map_err(|_| anyhow::anyhow!("Consul did not answer within 5 s"))??;
    if !resp.status.is_success() {
        anyhow::bail!(
            "Consul answered {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    let entries: Vec<HealthEntry> = serde_json::from_slice(&resp.body)?;
    let mut urls: Vec<String> = entries
        .into_iter()
        .map(|e| {
            let host = if e.service.address.is_empty() {
                e.node.address
            } else {
                e.service.address
            };
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            };
            format!("http://{host}:{}", e.service.port)
        })
        .collect();
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// Polls Consul and publishes each change. When Consul cannot be reached the last known list is
/// kept: a blip of the agent must not take every downstream away.
async fn follow_consul(agent: ConsulAgent, service: String, publisher: Publisher) {
    let http = HttpClient::new();
    let mut failing = false;
    loop {
        match passing_instances(&http, &agent, &service).await {
            Ok(urls) => {
                if failing {
                    tracing::info!(service, "Consul reachable again");
                    failing = false;
                }
                publisher.publish(&service, urls);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(service, error = %e, "cannot read healthy instances from Consul; keeping the last known");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = publisher.tx.closed() => return,
            _ = tokio::time::sleep(agent.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env_map as env;

    #[test]
    fn a_url_variable_may_name_several_instances() {
        let map = env(&[("SCORING_GRPC_URL", "http://a:1, http://b:2/")]);
        let source =
            Source::from_env(&Env::new(&map), "scoring-service", "SCORING_GRPC_URL", "x").unwrap();
        assert_eq!(
            source,
            Source::Static(vec!["http://a:1".into(), "http://b:2".into()])
        );
    }

    #[test]
    fn consul_wins_when_configured_and_a_bare_address_gets_a_scheme() {
        let map = env(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8500"),
            ("SCORING_GRPC_URL", "http://a:1"),
        ]);
        let source =
            Source::from_env(&Env::new(&map), "scoring-service", "SCORING_GRPC_URL", "x").unwrap();
        let Source::Consul { agent, service } = source else {
            panic!("expected Consul, got {source:?}");
        };
        assert_eq!(agent.addr, "http://127.0.0.1:8500");
        assert_eq!(service, "scoring-service");
    }

    #[test]
    fn a_url_without_a_host_is_refused_naming_the_variable() {
        let err = Source::list("EMOTION_GRPC_URL", "http://a:1,not a url").unwrap_err();
        assert_eq!(err.key, "EMOTION_GRPC_URL");
        assert_eq!(err.value, "not a url");
    }

    #[test]
    fn picks_take_turns_and_skip_an_ejected_instance() {
        let (instances, _tx) = Instances::new("t", vec!["a".into(), "b".into(), "c".into()]);
        let picks: Vec<String> = (0..6).map(|_| instances.pick().unwrap()).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
        instances.eject("b");
        let picks: Vec<String> = (0..4).map(|_| instances.pick().unwrap()).collect();
        assert!(picks.iter().all(|p| p != "b"), "{picks:?}");
        assert!(picks.contains(&"a".to_string()) && picks.contains(&"c".to_string()));
    }

    #[test]
    fn a_key_stays_on_its_instance_and_moves_only_when_that_one_goes() {
        let urls: Vec<String> = (1..=3).map(|i| format!("http://10.0.0.{i}:8082")).collect();
        let (instances, publisher) = Instances::new("t", urls.clone());
        let sessions: Vec<String> = (0..300).map(|i| format!("session-{i}")).collect();
        let home: Vec<String> = sessions
            .iter()
            .map(|s| instances.pick_for(s).unwrap())
            .collect();
        for (s, h) in sessions.iter().zip(&home) {
            assert_eq!(instances.pick_for(s).as_ref(), Some(h), "stable");
        }
        for url in &urls {
            let share = home.iter().filter(|h| *h == url).count();
            assert!((60..=140).contains(&share), "{url} has {share} of 300");
        }
        // One instance leaves: only its sessions move.
        publisher.publish("t", urls[1..].to_vec());
        for (s, h) in sessions.iter().zip(&home) {
            let now = instances.pick_for(s).unwrap();
            if h != &urls[0] {
                assert_eq!(&now, h, "{s} stayed");
            } else {
                assert_ne!(now, urls[0]);
            }
        }
        // Set aside: its sessions go to their next-ranked instance meanwhile.
        instances.eject(&urls[1]);
        assert!(
            sessions
                .iter()
                .all(|s| instances.pick_for(s).as_deref() == Some(urls[2].as_str()))
        );
    }

    #[test]
    fn when_every_instance_is_ejected_one_is_still_tried() {
        let (instances, _tx) = Instances::new("t", vec!["a".into()]);
        instances.eject("a");
        assert_eq!(instances.pick().as_deref(), Some("a"));
        let (none, _tx) = Instances::new("t", Vec::new());
        assert_eq!(none.pick(), None);
    }

    #[test]
    fn an_instance_that_leaves_and_comes_back_is_taken_again_at_once() {
        let (instances, publisher) = Instances::new("t", vec!["a".into(), "b".into()]);
        instances.eject("a");
        publisher.publish("t", vec!["b".into()]);
        publisher.publish("t", vec!["a".into(), "b".into()]);
        let picks: Vec<String> = (0..2).map(|_| instances.pick().unwrap()).collect();
        assert!(picks.contains(&"a".to_string()), "{picks:?}");
    }

    #[test]
    fn an_ejected_instance_still_listed_stays_aside() {
        let (instances, publisher) = Instances::new("t", vec!["a".into(), "b".into()]);
        instances.eject("a");
        publisher.publish("t", vec!["a".into(), "b".into(), "c".into()]);
        let picks: Vec<String> = (0..4).map(|_| instances.pick().unwrap()).collect();
        assert!(!picks.contains(&"a".to_string()), "{picks:?}");
    }

    #[tokio::test]
    async fn a_new_list_replaces_the_old_one() {
        let (mut instances, publisher) = Instances::new("t", vec!["a".into()]);
        publisher.publish("t", vec!["b".into()]);
        assert!(instances.changed().await);
        assert_eq!(instances.pick().as_deref(), Some("b"));
    }
}
