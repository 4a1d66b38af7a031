//! Health and metrics endpoints shared by every service.
//!
//! `/health/live` says the process runs; `/health/ready` says it can take traffic (its dependencies
//! answer), which is what Consul, nginx and Kubernetes should route on; `/health` is the summary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// The process-wide Prometheus recorder; several services in one process share it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours still renders what it saw.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Readiness of a service: each named component reports whether it is usable.
#[derive(Clone)]
pub struct Health {
    service: &'static str,
    components: Arc<Mutex<BTreeMap<&'static str, Component>>>,
}

#[derive(Clone, Debug)]
struct Component {
    ready: bool,
    detail: String,
}

impl Health {
    /// Also installs the process's metrics recorder, which must exist before the service does
    /// anything worth counting: a consumer that starts at once (a redelivered event) would
    /// otherwise count into nothing.
    pub fn new(service: &'static str) -> Self {
        let _ = prometheus();
        Self {
            service,
            components: Arc::default(),
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Records the state of one component (`database`, `broker`, ...).
    pub fn set(&self, component: &'static str, ready: bool, detail: impl Into<String>) {
        let detail = detail.into();
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let changed = map.get(component).is_none_or(|c| c.ready != ready);
        if changed {
            if ready {
                tracing::info!(service = self.service, component, "component ready");
            } else {
                tracing::warn!(service = self.service, component, %detail, "component not ready");
            }
        }
        map.insert(component, Component { ready, detail });
    }

    pub fn is_ready(&self) -> bool {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|c| c.ready)
    }

    /// The summary served at `/health`.
    pub fn report(&self) -> serde_json::Value {
        let map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let components: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(k, c)| (k.to_string(), json!({"ready": c.ready, "detail": c.detail})))
            .collect();
        json!({
            "service": self.service,
            "status": if map.values().all(|c| c.ready) { "ok" } else { "degraded" },
            "components": components,
        })
    }

    /// `/health`, `/health/ready`, `/health/live` and `/metrics`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/health", get(summary))
            .route("/health/ready", get(ready))
            .route("/health/live", get(live))
            .route("/metrics", get(render_metrics))
            .with_state(self.clone())
    }
}

async fn summary(State(h): State<Health>) -> impl IntoResponse {
    Json(h.report())
}

async fn ready(State(h): State<Health>) -> impl IntoResponse {
    let status = if h.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(h.report()))
}

async fn live(State(h): State<Health>) -> impl IntoResponse {
    Json(json!({"service": h.service, "status": "alive"}))
}

async fn render_metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        prometheus().render(),
    )
}
