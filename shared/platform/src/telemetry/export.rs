//! The OTLP/gRPC span exporter with a Tokio runtime of its own.
//!
//! The SDK's batch processor exports from a plain thread of its own, but tonic's channel needs a
//! Tokio reactor: without one every export panics ("no reactor running") and spans are dropped.
//! So the exporter is built inside, and every export is driven on, a one-thread runtime that
//! lives as long as the exporter.

use std::time::Duration;

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Why no exporter could be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("starting the exporter's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("building the OTLP exporter")]
    Build(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// A tracer provider that batches spans and sends them to `endpoint` as `service`.
pub fn provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, ExportError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .map_err(ExportError::Runtime)?;
    let inner = {
        let _inside = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
    };
    let inner = match inner {
        Ok(inner) => inner,
        Err(e) => {
            // Dropping a runtime inside an async context panics; this one may be.
            runtime.shutdown_background();
            return Err(ExportError::Build(e));
        }
    };
    let exporter = OnItsRuntime {
        inner,
        runtime: Some(runtime),
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

#[derive(Debug)]
struct OnItsRuntime {
    inner: opentelemetry_otlp::SpanExporter,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OnItsRuntime {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("present until dropped")
    }
}

impl SpanExporter for OnItsRuntime {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        // Called from the batch processor's own thread, never from a Tokio worker, so blocking
        // on the runtime here is allowed.
        let result = self.runtime().block_on(self.inner.export(batch));
        std::future::ready(result)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _inside = self.runtime().enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _inside = self.runtime().enter();
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl Drop for OnItsRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
