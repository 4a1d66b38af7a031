//! The API gateway: one entry point that routes groups of paths to the services (gin-style route
//! groups), passes WebSockets through, and applies what every request needs at the edge: request
//! ids, access logs, bearer-token authentication (the backend's own tokens and organisations'
//! identity providers) and per-identity rate limits. Unknown paths get
//! `{"error":"not found"}`.
//!
//! # Layout
//! - [`proxy`]: HTTP forwarding and the WebSocket bridge.
//! - [`edge`]: authentication, the identity passed on to the services, and rate limits.
//! - [`pages`]: the candidate's page and the recruiter's dashboard, as static files.
//! - [`openapi`]: the public API's OpenAPI document, the services' parts merged.

pub mod edge;
pub mod openapi;
pub mod pages;
pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware;
use axum::response::Response;
use axum::routing::any;
use iv_platform::config::{ConfigError, Env, EnvSource};
use iv_platform::consul::ServiceSpec;
use iv_platform::discovery::Source;
use iv_platform::health::Health;
use iv_platform::server::{Server, ServerConfig};
use iv_platform::{CancellationToken, http};

use crate::proxy::Upstream;

#[derive(Debug, Clone)]
pub struct Config {
    /// Port 8080 by default (`GATEWAY_PORT`).
    pub server: ServerConfig,
    /// Where each route group goes: Consul's healthy instances when `CONSUL_HTTP_ADDR` is set,
    /// else `INTERVIEW_URL`, `EMOTION_URL`, `SCORING_URL` (comma-separated for several).
    pub interview: Source,
    pub emotion: Source,
    pub scoring: Source,
    /// Requests per minute per client (verified identity, or IP address before one is known); 0
    /// turns limits off.
    pub rate_per_minute: u32,
    pub rate_burst: u32,
    pub upstream_timeout: Duration,
    /// Largest request body, and WebSocket message, forwarded (bodies are buffered so a refused
    /// connection can be retried on another instance). 4 MiB: one frame at the interview
    /// service's default 2 MiB limit, in base64 inside JSON, is 2.7 MiB; raise both together.
    pub max_body: usize,
    /// `GATEWAY_WS_IDLE_TIMEOUT_MS`: a client socket silent this long (pings included) is
    /// closed. 60 s, the interview service's own idle timeout.
    pub ws_idle: Duration,
    /// `GATEWAY_WEB_DIR`: the pages (`app/`) and their installed chart library
    /// (`node_modules/`), `web` in the working directory by default (the repository's, where
    /// the run command starts).
    pub web_dir: PathBuf,
}

/// How the gateway appears in Consul.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "gateway",
    tags: &["edge", "http", "websocket"],
    grpc: None,
};

impl Config {
    pub fn from_env(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        Ok(Self {
            server: ServerConfig::from_env(&env, "GATEWAY_PORT", 8080)?,
            interview: Source::from_env(
                &env,
                "interview-service",
                "INTERVIEW_URL",
                "http://127.0.0.1:8081",
            )?,
            emotion: Source::from_env(
                &env,
                "emotion-service",
                "EMOTION_URL",
                "http://127.0.0.1:8082",
            )?,
            scoring: Source::from_env(
                &env,
                "scoring-service",
                "SCORING_URL",
                "http://127.0.0.1:8083",
            )?,
            rate_per_minute: env.parse("GATEWAY_RATE_PER_MINUTE", 3000)?,
            rate_burst: env.parse("GATEWAY_RATE_BURST", 200)?,
            upstream_timeout: env.millis("GATEWAY_UPSTREAM_TIMEOUT_MS", 30_000)?,
            max_body: env.parse("GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
            ws_idle: env.millis("GATEWAY_WS_IDLE_TIMEOUT_MS", 60_000)?,
            web_dir: PathBuf::from(env.string("GATEWAY_WEB_DIR", "web")),
        })
    }
}

#[derive(Clone)]
struct Group {
    upstream: Arc<Upstream>,
}

/// The WebSocket route's state: its upstream, and how long a client may stay silent.
#[derive(Clone)]
struct Sockets {
    upstream: Arc<Upstream>,
    idle: Duration,
}

/// The route groups of each service: every public path the services describe falls under one.
pub const INTERVIEW_GROUPS: [&str; 3] = [
    "/api/v1/organisation",
    "/api/v1/audit",
    "/api/v1/interviews",
];
pub const EMOTION_GROUPS: [&str; 1] = ["/api/v1/emotions"];
pub const SCORING_GROUPS: [&str; 1] = ["/api/v1/scores"];

/// A route group: every path under `prefix` goes to `upstream`.
fn group(prefix: &str, upstream: Upstream) -> Router {
    let state = Group {
        upstream: Arc::new(upstream),
    };
    Router::new()
        .route(prefix, any(forward))
        .route(&format!("{prefix}/{{*rest}}"), any(forward))
        .with_state(state)
}

async fn forward(
    State(g): State<Group>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    g.upstream.forward(req, client).await
}

async fn websocket(State(g): State<Sockets>, ws: WebSocketUpgrade, req: Request<Body>) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // The identity the edge verified goes to the interview service with the upgrade.
    let identity = req
        .headers()
        .get(iv_platform::auth::IDENTITY_HEADER)
        .cloned();
    let (upstream, idle) = (g.upstream.clone(), g.idle);
    let largest = upstream.max_body;
    ws.protocols([edge::SUBPROTOCOL])
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(
            move |socket| async move { upstream.bridge(socket, path, identity, idle).await },
        )
}

/// The gateway's router. Starts following each upstream's instances (Consul pollers run on the
/// current runtime). Fails when the keys it trusts cannot be read or created.
pub fn app(config: &Config) -> anyhow::Result<Router> {
    // Whom the gateway trusts: the backend's own key and organisations' providers.
    let verifier = config
        .server
        .auth
        .verifier()
        .context("loading the keys the gateway trusts")?;
    let credential = config
        .server
        .auth
        .credential(SERVICE.name)
        .context("loading the service credential")?;
    let tls = config
        .server
        .tls
        .rustls_client()
        .context("loading the CA upstreams are trusted with")?;
    let upstream = |source: &Source, name| {
        Upstream::new(
            source.start(name),
            config.upstream_timeout,
            config.max_body,
            tls.clone(),
        )
    };
    let interview = upstream(&config.interview, "interview-service");
    let ws = Router::new()
        .route("/ws/interviews/{*rest}", any(websocket))
        .with_state(Sockets {
            upstream: Arc::new(interview.clone()),
            idle: config.ws_idle,
        });
    let mut api = ws;
    for (groups, upstream) in [
        (&INTERVIEW_GROUPS[..], interview),
        (
            &EMOTION_GROUPS[..],
            upstream(&config.emotion, "emotion-service"),
        ),
        (
            &SCORING_GROUPS[..],
            upstream(&config.scoring, "scoring-service"),
        ),
    ] {
        for prefix in groups {
            api = api.merge(group(prefix, upstream.clone()));
        }
    }
    let edge = edge::Edge::new(
        verifier,
        credential,
        config.rate_per_minute,
        config.rate_burst,
    );
    edge.spawn_pruning();
    // Auth and rate limits guard the proxied routes only: health and metrics stay reachable for
    // load balancers and Prometheus, and the API's description for whoever reads it.
    let guarded = api.layer(middleware::from_fn_with_state(edge, edge::guard));
    let health = Health::new("gateway");
    Ok(http::observe(
        guarded
            .merge(health.router())
            .merge(pages::router(&config.web_dir))
            .merge(openapi::router().context("describing the public API")?)
            .fallback(http::not_found),
        "gateway",
    ))
}

/// Binds the port: a gateway ready to run.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    Server::bind(
        &config.server,
        &SERVICE,
        app(&config)?,
        CancellationToken::new(),
    )
    .await
    .context("binding the gateway port")
}

#[cfg(test)]
mod tests;
