//! A small HTTP double of the Consul agent endpoints this project uses, behaving as Consul does:
//!
//! - `PUT /v1/agent/service/register`: stores the service (a registration with a known `ID`
//!   replaces it) and starts running its checks. Checks start `critical`, as Consul's do, and
//!   become `passing` once they succeed: HTTP checks pass on 2xx (429 is `warning`), gRPC checks
//!   ask `grpc.health.v1` (`host:port/service`) and pass on `SERVING`. A check critical for longer
//!   than its `DeregisterCriticalServiceAfter` removes the service.
//! - `PUT /v1/agent/service/deregister/:id`: removes it (404 for an unknown id).
//! - `GET /v1/health/service/:name[?passing]`: node, service and checks per instance (with the
//!   node's `serfHealth`); `passing` keeps only instances whose every check passes.
//! - `GET /v1/agent/services`, `GET /v1/agent/checks`: what the agent holds.
//!
//! With a token, every request needs `X-Consul-Token` (403 `ACL not found` otherwise).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use iv_platform::CancellationToken;
use iv_platform::client::HttpClient;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub struct ConsulDouble {
    pub addr: SocketAddr,
    state: Arc<Agent>,
    stop: CancellationToken,
}

struct Agent {
    token: Mutex<Option<String>>,
    services: Mutex<BTreeMap<String, Registered>>,
    /// Requests refused for a missing or wrong token.
    refused: std::sync::atomic::AtomicUsize,
}

struct Registered {
    service: Value,
    checks: Vec<Arc<Mutex<Check>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone)]
struct Check {
    id: String,
    name: String,
    service_id: String,
    service_name: String,
    kind: CheckKind,
    status: &'static str,
    output: String,
    critical_since: Option<Instant>,
    interval: Duration,
    timeout: Duration,
    deregister_after: Option<Duration>,
}

#[derive(Clone)]
enum CheckKind {
    Http(String),
    Grpc(String),
}

impl ConsulDouble {
    /// Starts on a free loopback port; `token` turns on ACLs.
    pub async fn start(token: Option<&str>) -> Self {
        let state = Arc::new(Agent {
            token: Mutex::new(token.map(String::from)),
            services: Mutex::default(),
            refused: Default::default(),
        });
        let app = Router::new()
            .route("/v1/agent/service/register", put(register))
            .route("/v1/agent/service/deregister/{id}", put(deregister))
            .route("/v1/health/service/{name}", get(health))
            .route("/v1/agent/services", get(services))
            .route("/v1/agent/checks", get(checks))
            .layer(middleware::from_fn_with_state(state.clone(), acl))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        Self { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on the agent takes `token` (an operator creating it).
    pub fn accept_token(&self, token: &str) {
        *self.state.token.lock().unwrap() = Some(token.to_string());
    }

    /// How many requests were refused for their token.
    pub fn refused(&self) -> usize {
        self.state.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Registered services by id (`/v1/agent/services`).
    pub fn services(&self) -> BTreeMap<String, Value> {
        let services = self.state.services.lock().unwrap();
        services
            .iter()
            .map(|(id, r)| (id.clone(), r.service.clone()))
            .collect()
    }

    /// The status of every check of a service id.
    pub fn check_statuses(&self, service_id: &str) -> Vec<(String, &'static str)> {
        let services = self.state.services.lock().unwrap();
        services
            .get(service_id)
            .map(|r| {
                r.checks
                    .iter()
                    .map(|c| {
                        let c = c.lock().unwrap();
                        (c.id.clone(), c.status)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for ConsulDouble {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.services.lock().unwrap().clear();
    }
}

async fn acl(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let token = agent.token.lock().unwrap().clone();
    if let Some(token) = token {
        let given = req
            .headers()
            .get("x-consul-token")
            .and_then(|v| v.to_str().ok());
        if given != Some(token.as_str()) {
            agent
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return (StatusCode::FORBIDDEN, "ACL not found").into_response();
        }
    }
    next.run(req).await
}

/// A Go duration as Consul takes them: `500ms`, `10s`, `1m`, `1m30s`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| digits + i);
        let scale = match &rest[digits..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_end..];
    }
    Some(total)
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, message.into()).into_response()
}

/// A field of a registration; consulrs sends absent fields as `null`.
fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn str_field(body: &Value, key: &str) -> Option<String> {
    field(body, key).and_then(Value::as_str).map(String::from)
}

/// Consul decodes the body whatever its content type (consulrs sends none).
async fn register(State(agent): State<Arc<Agent>>, body: axum::body::Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("Request decode failed: {e}")),
    };
    let Some(name) = str_field(&body, "Name") else {
        return bad_request("Missing service name");
    };
    let id = str_field(&body, "ID").unwrap_or_else(|| name.clone());
    let port = field(&body, "Port").and_then(Value::as_u64).unwrap_or(0);
    let service = json!({
        "ID": id,
        "Service": name,
        "Tags": field(&body, "Tags").cloned().unwrap_or(json!([])),
        "Meta": field(&body, "Meta").cloned().unwrap_or(json!({})),
        "Address": str_field(&body, "Address").unwrap_or_default(),
        "Port": port,
    });
    let mut definitions: Vec<Value> = field(&body, "Checks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(check) = field(&body, "Check") {
        definitions.push(check.clone());
    }
    let mut checks = Vec::new();
    for (i, def) in definitions.iter().enumerate() {
        let kind = match (str_field(def, "HTTP"), str_field(def, "GRPC")) {
            (Some(url), None) => CheckKind::Http(url),
            (None, Some(target)) => CheckKind::Grpc(target),
            _ => return bad_request("this double runs exactly one of HTTP or GRPC per check"),
        };
        let Some(interval) = str_field(def, "Interval").as_deref().and_then(go_duration) else {
            return bad_request("Interval must be a duration such as 10s");
        };
        let timeout = str_field(def, "Timeout")
            .as_deref()
            .and_then(go_duration)
            .unwrap_or(Duration::from_secs(10));
        let deregister_after = str_field(def, "DeregisterCriticalServiceAfter")
            .as_deref()
            .and_then(go_duration);
        let check_id = str_field(def, "CheckID").unwrap_or_else(|| {
            format!(
                "service:{id}{}",
                if i > 0 {
                    format!(":{}", i + 1)
                } else {
                    String::new()
                }
            )
        });
        checks.push(Arc::new(Mutex::new(Check {
            name: str_field(def, "Name").unwrap_or_else(|| format!("Service '{name}' check")),
            id: check_id,
            service_id: id.clone(),
            service_name: name.clone(),
            kind,
            status: "critical",
            output: String::new(),
            critical_since: Some(Instant::now()),
            interval,
            timeout,
            deregister_after,
        })));
    }
    let tasks = checks
        .iter()
        .map(|c| tokio::spawn(run_check(agent.clone(), c.clone())))
        .collect();
    let registered = Registered {
        service,
        checks,
        tasks,
    };
    agent.services.lock().unwrap().insert(id, registered);
    StatusCode::OK.into_response()
}

async fn deregister(State(agent): State<Arc<Agent>>, Path(id): Path<String>) -> Response {
    match agent.services.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::OK.into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."),
        )
            .into_response(),
    }
}

async fn run_check(agent: Arc<Agent>, check: Arc<Mutex<Check>>) {
    let http = HttpClient::new();
    loop {
        let (kind, timeout, interval) = {
            let c = check.lock().unwrap();
            (c.kind.clone(), c.timeout, c.interval)
        };
        let (status, output) = match tokio::time::timeout(timeout, probe(&http, &kind)).await {
            Ok(result) => result,
            Err(_) => ("critical", format!("timed out after {timeout:?}")),
        };
        let expired = {
            let mut c = check.lock().unwrap();
            c.status = status;
            c.output = output;
            if status == "critical" {
                let since = *c.critical_since.get_or_insert_with(Instant::now);
                c.deregister_after
                    .is_some_and(|after| since.elapsed() > after)
            } else {
                c.critical_since = None;
                false
            }
            .then(|| c.service_id.clone())
        };
        if let Some(id) = expired {
            // As Consul's reaper: the whole service goes, this task with it.
            let removed = agent.services.lock().unwrap().remove(&id);
            drop(removed);
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

async fn probe(http: &HttpClient, kind: &CheckKind) -> (&'static str, String) {
    match kind {
        CheckKind::Http(url) => match http.get(url).await {
            Ok(r) if r.status.is_success() => ("passing", format!("HTTP GET {url}: {}", r.status)),
            Ok(r) if r.status == StatusCode::TOO_MANY_REQUESTS => {
                ("warning", format!("HTTP GET {url}: {}", r.status))
            }
            Ok(r) => ("critical", format!("HTTP GET {url}: {}", r.status)),
            Err(e) => ("critical", format!("HTTP GET {url}: {e}")),
        },
        CheckKind::Grpc(target) => {
            let (authority, service) = target.split_once('/').unwrap_or((target, ""));
            let result = async {
                let channel =
                    tonic::transport::Endpoint::from_shared(format!("http://{authority}"))?
                        .connect()
                        .await?;
                let reply = tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: service.to_string(),
                    })
                    .await?;
                anyhow::Ok(reply.into_inner().status)
            }
            .await;
            match result {
                Ok(s)
                    if s == tonic_health::pb::health_check_response::ServingStatus::Serving
                        as i32 =>
                {
                    ("passing", format!("gRPC check {target}: success"))
                }
                Ok(s) => ("critical", format!("gRPC check {target}: status {s}")),
                Err(e) => ("critical", format!("gRPC check {target}: {e}")),
            }
        }
    }
}

fn check_json(c: &Check) -> Value {
    json!({
        "Node": "double",
        "CheckID": c.id,
        "Name": c.name,
        "Status": c.status,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "Type": match c.kind { CheckKind::Http(_) => "http", CheckKind::Grpc(_) => "grpc" },
    })
}

async fn health(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let only_passing = query
        .get("passing")
        .is_some_and(|v| v != "false" && v != "0");
    let services = agent.services.lock().unwrap();
    let entries: Vec<Value> = services
        .values()
        .filter(|r| r.service["Service"] == name.as_str())
        .filter_map(|r| {
            let checks: Vec<Check> = r.checks.iter().map(|c| c.lock().unwrap().clone()).collect();
            if only_passing && checks.iter().any(|c| c.status != "passing") {
                return None;
            }
            let mut all = vec![json!({
                "Node": "double", "CheckID": "serfHealth", "Name": "Serf Health Status",
                "Status": "passing", "Output": "Agent alive and reachable",
                "ServiceID": "", "ServiceName": "", "Type": "",
            })];
            all.extend(checks.iter().map(check_json));
            Some(json!({
                "Node": {"ID": "double", "Node": "double", "Address": "127.0.0.1", "Datacenter": "dc1"},
                "Service": r.service,
                "Checks": all,
            }))
        })
        .collect();
    ([("x-consul-index", "1")], Json(entries)).into_response()
}

async fn services(State(agent): State<Arc<Agent>>) -> Json<BTreeMap<String, Value>> {
    let services = agent.services.lock().unwrap();
    Json(
        services
            .iter()
            .map(|(id, r)| (id.clone(), r.service.clone()))
            .collect(),
    )
}

async fn checks(State(agent): State<Arc<Agent>>) -> Json<BTreeMap<String, Value>> {
    let services = agent.services.lock().unwrap();
    Json(
        services
            .values()
            .flat_map(|r| r.checks.iter())
            .map(|c| {
                let c = c.lock().unwrap();
                (c.id.clone(), check_json(&c))
            })
            .collect(),
    )
}

#[test]
fn go_durations_parse_as_consul_takes_them() {
    assert_eq!(go_duration("200ms"), Some(Duration::from_millis(200)));
    assert_eq!(go_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(go_duration("ten"), None);
}
