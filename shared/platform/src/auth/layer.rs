//! The services' side of identity: every request (REST, WebSocket upgrade or gRPC, on the one
//! port) must carry an identity asserted with the service credential, or it is refused before
//! any handler runs. Probes and gRPC reflection stay open: they hold no one's data.

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::internal::{Asserted, IDENTITY_HEADER, ServiceCredential};
use super::principal::Principal;
use crate::errors::{ApiError, ErrorClass, code};

/// Paths any caller may reach: health and metrics for load balancers, Consul and Prometheus;
/// gRPC health and reflection for the same probes and for listing the API.
fn is_open(path: &str) -> bool {
    path.starts_with("/health")
        || path == "/metrics"
        || path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.")
}

/// Wraps `router` so that only callers with an asserted identity reach it.
pub fn require_identity(router: Router, credential: ServiceCredential) -> Router {
    router.layer(axum::middleware::from_fn_with_state(credential, check))
}

async fn check(
    State(credential): State<ServiceCredential>,
    mut req: Request,
    next: Next,
) -> Response {
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let asserted = req
        .headers()
        .get(IDENTITY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|token| credential.verify(token));
    match asserted {
        Some(Ok(asserted)) => {
            req.extensions_mut().insert(asserted);
            next.run(req).await
        }
        refused => {
            metrics::counter!("auth_refused_total", "reason" => "no identity").increment(1);
            if let Some(Err(e)) = &refused {
                tracing::debug!(error = %e, "refused an identity assertion");
            }
            let err = ApiError::new(
                ErrorClass::Unauthenticated,
                code::UNAUTHENTICATED,
                "this service is reached through the gateway or by the backend's own services",
            );
            if is_grpc(&req) {
                tonic::Status::from(err).into_http()
            } else {
                err.into_response()
            }
        }
    }
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The verified caller of a REST handler.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Asserted>()
            .map(|a| Caller(a.principal.clone()))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorClass::Unauthenticated,
                    code::UNAUTHENTICATED,
                    "no verified identity",
                )
            })
    }
}

/// The caller of an internal endpoint (one the backend's services use, like recomputing a
/// score or analysing a frame outside an interview): a service or an admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Privileged(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Privileged {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if principal.is_privileged() {
            Ok(Privileged(principal))
        } else {
            Err(ApiError::new(
                ErrorClass::Forbidden,
                super::codes::FORBIDDEN,
                "an internal endpoint: for the backend's services and admins only",
            ))
        }
    }
}

/// The verified caller of a gRPC handler.
pub fn grpc_caller<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    request
        .extensions()
        .get::<Asserted>()
        .map(|a| a.principal.clone())
        .ok_or_else(|| tonic::Status::unauthenticated("no verified identity"))
}

/// The verified caller of a gRPC method for services and admins only (the internal ones, like
/// their REST twins behind [`Privileged`]).
pub fn grpc_privileged<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    let caller = grpc_caller(request)?;
    if caller.is_privileged() {
        Ok(caller)
    } else {
        Err(tonic::Status::permission_denied(
            "this method is for the backend's services and admins",
        ))
    }
}

/// A gRPC channel whose every call asserts one identity: for tools and tests that call a service
/// directly for a few minutes (an assertion lasts five); services call through `downstream`,
/// which asserts afresh on every call.
pub type AssertingChannel =
    tower_http::set_header::SetRequestHeader<tonic::transport::Channel, axum::http::HeaderValue>;

pub fn asserting_channel(
    channel: tonic::transport::Channel,
    credential: &ServiceCredential,
) -> AssertingChannel {
    let value = credential
        .assert_self()
        .parse()
        .expect("an assertion is a JWT, which is ASCII");
    tower_http::set_header::SetRequestHeader::overriding(
        channel,
        axum::http::HeaderName::from_static(IDENTITY_HEADER),
        value,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::get;
    use http_body_util::BodyExt;

    async fn call(
        router: &Router,
        request: axum::http::Request<axum::body::Body>,
    ) -> (StatusCode, serde_json::Value) {
        let response = tower::ServiceExt::oneshot(router.clone(), request)
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn credential() -> ServiceCredential {
        ServiceCredential::new("gateway", &[7u8; 32]).unwrap()
    }

    fn router() -> Router {
        let routes = Router::new()
            .route(
                "/api/who",
                get(|Caller(p): Caller| async move { p.subject }),
            )
            .route("/health/live", get(|| async { "ok" }));
        require_identity(routes, credential())
    }

    fn request(path: &str, identity: Option<String>) -> axum::http::Request<axum::body::Body> {
        let mut b = axum::http::Request::builder().uri(path);
        if let Some(v) = identity {
            b = b.header(IDENTITY_HEADER, v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn only_asserted_callers_pass_and_probes_stay_open() {
        let router = router();
        let (status, body) = call(&router, request("/api/who", None)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
        );
        let forged = ServiceCredential::new("gateway", &[8u8; 32]).unwrap();
        let p = Principal::service("someone");
        let (status, _) = call(&router, request("/api/who", Some(forged.assert(&p)))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&router, request("/api/who", Some(credential().assert(&p)))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(&router, request("/health/live", None)).await;
        assert_eq!(status, StatusCode::OK);
    }
}
