//! A small OTLP trace receiver (the collector's gRPC `TraceService`), so tests can check the
//! traces the services export: which spans, from which service, and whether they connect.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio_util::sync::CancellationToken;

/// One span as received, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    /// Hex, as in a `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root.
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
}

/// Every span of one trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub spans: Vec<ReceivedSpan>,
}

impl Trace {
    /// The services that took part.
    pub fn services(&self) -> BTreeSet<&str> {
        self.spans.iter().map(|s| s.service.as_str()).collect()
    }

    /// The span names, sorted and deduplicated.
    pub fn names(&self) -> BTreeSet<&str> {
        self.spans.iter().map(|s| s.name.as_str()).collect()
    }

    /// Spans without a parent, and spans whose parent is not in the trace: a connected trace has
    /// exactly one of the first and none of the second.
    pub fn roots_and_orphans(&self) -> (Vec<&ReceivedSpan>, Vec<&ReceivedSpan>) {
        let ids: BTreeSet<&str> = self.spans.iter().map(|s| s.span_id.as_str()).collect();
        let roots = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id.is_empty())
            .collect();
        let orphans = self
            .spans
            .iter()
            .filter(|s| !s.parent_span_id.is_empty() && !ids.contains(s.parent_span_id.as_str()))
            .collect();
        (roots, orphans)
    }

    /// One root, every other span's parent present.
    pub fn is_connected(&self) -> bool {
        let (roots, orphans) = self.roots_and_orphans();
        roots.len() == 1 && orphans.is_empty()
    }

    /// A readable outline, for assertion messages.
    pub fn outline(&self) -> String {
        self.spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} <- {}",
                    s.service, s.name, s.span_id, s.parent_span_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The receiver, listening on a free port of 127.0.0.1 until dropped.
pub struct TraceReceiver {
    /// What to set `OTEL_EXPORTER_OTLP_ENDPOINT` to.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    stop: CancellationToken,
}

#[derive(Clone)]
struct Collect(Arc<Mutex<Vec<ReceivedSpan>>>);

#[tonic::async_trait]
impl TraceService for Collect {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .filter_map(|kv| {
                            Some((kv.key.clone(), text(kv.value.as_ref()?.value.as_ref()?)?))
                        })
                        .collect(),
                });
            }
        }
        self.0.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TraceReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
        let stop = CancellationToken::new();
        let service = TraceServiceServer::new(Collect(spans.clone()));
        let until = stop.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    until.cancelled_owned(),
                )
                .await
                .expect("the receiver serves");
        });
        Self {
            endpoint,
            spans,
            stop,
        }
    }

    /// Everything received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Trace {
        Trace {
            spans: self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect(),
        }
    }

    /// The trace a span named `name` from `service` belongs to, the first one found that
    /// `matches`.
    pub fn trace_of(
        &self,
        service: &str,
        name: &str,
        matches: impl Fn(&ReceivedSpan) -> bool,
    ) -> Option<Trace> {
        let id = self
            .spans()
            .into_iter()
            .find(|s| s.service == service && s.name == name && matches(s))?
            .trace_id;
        Some(self.trace(&id))
    }
}

impl Drop for TraceReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
