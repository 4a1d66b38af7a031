//! The HTTP layers every service's router wears, the JSON 404, and one port for REST and gRPC.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::errors::{ApiError, ErrorClass};

/// Adds request ids, access logs (in a span that continues the caller's trace) and request
/// metrics to a router.
///
/// Order matters: the request id is set first so the access-log span and the response carry it;
/// metrics sit innermost so they time only the handler and see the matched route.
pub fn observe(router: Router, service: &'static str) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(move |req: &Request| {
                        let path = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map(|m| m.as_str().to_owned())
                            .unwrap_or_else(|| req.uri().path().to_owned());
                        let request_id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned();
                        if is_probe(&path) {
                            // Health checks and scrapes every few seconds: not worth a trace.
                            return tracing::debug_span!("probe", service, path, request_id);
                        }
                        let span = tracing::info_span!(
                            "http",
                            service,
                            method = %req.method(),
                            path,
                            request_id,
                            trace_id = tracing::field::Empty,
                        );
                        // gRPC metadata are HTTP/2 headers: one place continues callers' traces
                        // for REST and gRPC alike.
                        crate::telemetry::context::continue_from_headers(&span, req.headers());
                        span
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn(move |req, next| {
                record_metrics(service, req, next)
            })),
    )
}

/// Bounds how long a REST handler may take to answer; gRPC calls carry their own deadline
/// (`grpc-timeout`), which the caller chose, and a streaming batch may rightly run longer.
pub fn time_limit(router: Router, limit: std::time::Duration) -> Router {
    router.layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            if is_grpc(req.headers()) {
                return next.run(req).await;
            }
            match tokio::time::timeout(limit, next.run(req)).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("http_request_timeouts_total").increment(1);
                    ApiError::new(
                        ErrorClass::Timeout,
                        crate::errors::code::REQUEST_TIMEOUT,
                        format!("the request took longer than {} ms", limit.as_millis()),
                    )
                    .into_response()
                }
            }
        },
    ))
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Consul's and Kubernetes' checks (HTTP and `grpc.health.v1`) and Prometheus scrapes.
fn is_probe(path: &str) -> bool {
    path.starts_with("/health") || path == "/metrics" || path.starts_with("/grpc.health.v1.")
}

async fn record_metrics(service: &'static str, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    metrics::histogram!(
        "http_request_duration_seconds",
        "service" => service,
        "method" => method,
        "path" => path,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}

/// The JSON 404 of every service; a gRPC request for an unknown method gets UNIMPLEMENTED instead,
/// so services that serve REST and gRPC on one port answer each protocol in its own terms.
pub async fn not_found(headers: HeaderMap) -> Response {
    if is_grpc(&headers) {
        return tonic::Status::unimplemented("unknown gRPC method").into_http::<axum::body::Body>();
    }
    ApiError::new(
        ErrorClass::NotFound,
        crate::errors::code::NOT_FOUND,
        "not found",
    )
    .into_response()
}

/// One port for REST and gRPC: the service's gRPC routes (its own service and grpc.health.v1)
/// get reflection (`grpc.reflection.v1` and `v1alpha`) added, are merged with its REST routes, and the whole wears the common layers
/// with the JSON/UNIMPLEMENTED fallback. The request's content type tells the protocols apart.
pub fn rest_and_grpc(
    rest: Router,
    grpc: tonic::service::Routes,
    service: &'static str,
) -> Result<Router, tonic_reflection::server::Error> {
    // Both versions: grpcurl and current clients ask v1; Python's grpcio-reflection, Postman and
    // older grpcurl builds ask only v1alpha and would otherwise get UNIMPLEMENTED.
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(iv_contracts::FILE_DESCRIPTOR_SET)
    };
    let grpc = grpc
        .add_service(builder().build_v1()?)
        .add_service(builder().build_v1alpha()?)
        .prepare()
        .into_axum_router();
    Ok(observe(rest.merge(grpc).fallback(not_found), service))
}
