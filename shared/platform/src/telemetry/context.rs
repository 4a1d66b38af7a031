//! The W3C trace context (`traceparent`) across process boundaries: read from HTTP headers and
//! gRPC metadata (the same HTTP/2 headers) by every server's HTTP layer, written by the gateway's
//! proxy and the gRPC clients, and carried with events through the outbox and the broker.
//!
//! All of it is a no-op unless traces are exported ([`super::init`] with an endpoint), so the
//! hot paths pay nothing when tracing is off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and AMQP message header) that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

static PROPAGATING: AtomicBool = AtomicBool::new(false);

pub(super) fn start_propagating() {
    PROPAGATING.store(true, Ordering::Relaxed);
}

fn propagating() -> bool {
    PROPAGATING.load(Ordering::Relaxed)
}

struct ReadHeaders<'a>(&'a HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct WriteHeaders<'a>(&'a mut HeaderMap);

impl Injector for WriteHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct WriteMetadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for WriteMetadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Makes `span` continue the trace its caller's headers carry (when they carry one), and writes
/// the trace id into the span's `trace_id` field so every log line inside it shows it.
pub fn continue_from_headers(span: &Span, headers: &HeaderMap) {
    if !propagating() {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&ReadHeaders(headers)));
    adopt(span, parent);
}

/// Writes the current span's context into outgoing HTTP headers, replacing any the client sent
/// (the current span already continues that one).
pub fn inject_into_headers(headers: &mut HeaderMap) {
    if !propagating() {
        return;
    }
    let cx = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut WriteHeaders(headers))
    });
}

/// Writes the current span's context into an outgoing gRPC request's metadata.
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    if !propagating() {
        return;
    }
    let cx = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut WriteMetadata(metadata))
    });
}

/// The current span's context as a `traceparent` value, to travel with an event (stored in the
/// outbox, then sent as a message header).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&Span::current())
}

/// `span`'s context as a `traceparent` value.
pub fn traceparent_of(span: &Span) -> Option<String> {
    if !propagating() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// Makes `span` continue the trace of an event's `traceparent`, when it has one.
pub fn continue_from_traceparent(span: &Span, traceparent: Option<&str>) {
    if !propagating() {
        return;
    }
    let Some(value) = traceparent else {
        record_trace_id(span);
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_string(), value.to_string())]);
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    adopt(span, parent);
}

fn adopt(span: &Span, parent: opentelemetry::Context) {
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// Writes the span's trace id into its `trace_id` field (declared empty where the span is made).
pub fn record_trace_id(span: &Span) {
    if !propagating() {
        return;
    }
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing_subscriber::prelude::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn trace_of(traceparent: &str) -> &str {
        traceparent.split('-').nth(1).expect("a traceparent")
    }

    /// Runs `f` under an OpenTelemetry layer (no exporter) with propagation on.
    fn traced(f: impl FnOnce()) {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        start_propagating();
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn a_callers_trace_is_continued_and_handed_on_in_headers_metadata_and_events() {
        traced(|| {
            let mut incoming = HeaderMap::new();
            incoming.insert(TRACEPARENT, CALLER.parse().unwrap());
            let server = tracing::info_span!("http", trace_id = tracing::field::Empty);
            continue_from_headers(&server, &incoming);
            let _inside = server.enter();

            let mut outgoing = HeaderMap::new();
            inject_into_headers(&mut outgoing);
            let forwarded = outgoing[TRACEPARENT].to_str().unwrap();
            assert_eq!(trace_of(forwarded), TRACE);
            assert!(
                !forwarded.contains("00f067aa0ba902b7"),
                "the upstream's parent is this span, not the caller's: {forwarded}"
            );

            let mut metadata = tonic::metadata::MetadataMap::new();
            inject_into_metadata(&mut metadata);
            let sent = metadata.get(TRACEPARENT).unwrap().to_str().unwrap();
            assert_eq!(sent, forwarded, "gRPC metadata carry the same context");

            let event = current_traceparent().expect("an event carries the trace");
            let consumer =
                tracing::info_span!(parent: None, "consume", trace_id = tracing::field::Empty);
            continue_from_traceparent(&consumer, Some(&event));
            let consumed = traceparent_of(&consumer).unwrap();
            assert_eq!(trace_of(&consumed), TRACE, "the consumer continues it");
        });
    }

    #[test]
    fn a_request_without_a_trace_starts_one_and_garbage_is_ignored() {
        traced(|| {
            let mut incoming = HeaderMap::new();
            incoming.insert(TRACEPARENT, "not-a-trace".parse().unwrap());
            let server = tracing::info_span!("http", trace_id = tracing::field::Empty);
            continue_from_headers(&server, &incoming);
            let own = traceparent_of(&server).expect("a trace of its own");
            assert_ne!(trace_of(&own), TRACE);
            assert_eq!(trace_of(&own).len(), 32);
        });
    }
}
