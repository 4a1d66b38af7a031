//! Structured logs and distributed traces for every service.
//!
//! Logs go to standard output (`LOG_FORMAT=json|pretty`, filtered by `RUST_LOG`). Traces are
//! exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: with it unset no
//! OpenTelemetry layer is installed and no trace context is read or written, so nothing is sent
//! and nothing slows down.
//!
//! # Layout
//! - [`context`]: the W3C `traceparent` carried in HTTP headers, gRPC metadata and event headers,
//!   and the trace id written into log lines.
//! - `export`: the OTLP exporter, given a Tokio runtime of its own.

pub mod context;
mod export;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};

use crate::config::{Env, EnvSource, ProcessEnv};

/// Where traces go, read once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The OTLP/gRPC collector (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); `None` exports nothing.
    pub endpoint: Option<String>,
    /// The `service.name` of every span (`OTEL_SERVICE_NAME` overrides the caller's).
    pub service: String,
}

impl TraceExport {
    pub fn from_env(source: &dyn EnvSource, service: &str) -> Self {
        let env = Env::new(source);
        let endpoint = env
            .optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env.optional("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .filter(|e| !e.trim().is_empty());
        Self {
            endpoint,
            service: env.string("OTEL_SERVICE_NAME", service),
        }
    }
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] (or dropping it) sends what is still
/// buffered.
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes buffered spans and stops the exporter (blocking, on a thread of its own, up to the
    /// exporter's timeout).
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber once, for `service`; later calls (several services in one
/// process) are no-ops and export nothing of their own.
///
/// `LOG_FORMAT=json` gives one JSON object per line for log shippers; anything else is human text.
/// `RUST_LOG` filters the logs and defaults to `info`; spans are exported at `info` and above
/// whatever `RUST_LOG` says, so quieting the logs does not break traces.
pub fn init(service: &str) -> Telemetry {
    init_with(&TraceExport::from_env(&ProcessEnv, service), "info")
}

/// [`init`] with the trace settings given rather than read, and the log filter used when
/// `RUST_LOG` is unset (benchmarks export to a collector of their own and log nothing).
pub fn init_with(settings: &TraceExport, default_logs: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_logs));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer().compact().with_filter(filter).boxed()
    };
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![logs];
    let provider = match &settings.endpoint {
        Some(endpoint) => match export::provider(endpoint, &settings.service) {
            Ok(provider) => {
                let tracer = provider.tracer("ai-interview");
                layers.push(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(LevelFilter::INFO)
                        .boxed(),
                );
                Some(provider)
            }
            Err(e) => {
                eprintln!("traces are not exported: the OTLP exporter for {endpoint} failed: {e}");
                None
            }
        },
        None => None,
    };
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_err()
    {
        // Another service of this process installed it first; its exporter serves us all.
        return Telemetry { provider: None };
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        context::start_propagating();
        tracing::info!(endpoint = ?settings.endpoint, service = %settings.service, "exporting traces over OTLP");
    }
    Telemetry { provider }
}

/// For tests: logs only when `TEST_LOG` is set, so test output stays readable.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        std::mem::forget(init("test"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env_map as env;

    #[test]
    fn nothing_is_exported_unless_an_endpoint_is_set() {
        assert_eq!(TraceExport::from_env(&env(&[]), "gateway").endpoint, None);
        assert_eq!(
            TraceExport::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), "gateway")
                .endpoint,
            None
        );
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_general_one_and_the_service_name_can_be_renamed() {
        let settings = TraceExport::from_env(
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
                ("OTEL_SERVICE_NAME", "edge"),
            ]),
            "gateway",
        );
        assert_eq!(settings.endpoint.as_deref(), Some("http://traces:4317"));
        assert_eq!(settings.service, "edge");
        assert_eq!(
            TraceExport::from_env(&env(&[]), "gateway").service,
            "gateway"
        );
    }
}
