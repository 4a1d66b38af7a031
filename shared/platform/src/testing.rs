//! What the services' own tests share (the `testing` feature, on only for tests): a fresh SQLite
//! database, and requests sent straight into a router (`oneshot`, no socket) with the answer read
//! back as status and JSON.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{Asserted, OrgId, Principal, Role};
use crate::db::{self, Pool};

/// A new SQLite database in a fresh temporary directory, with `schemas` applied.
pub async fn fresh_sqlite(schemas: &[&[&'static str]]) -> Pool {
    let dir = std::env::temp_dir().join(format!("iv-test-{}", uuid::Uuid::new_v4().simple()));
    db::open(
        &db::sqlite_url(dir.to_str().expect("a UTF-8 path"), "t"),
        schemas,
    )
    .await
    .expect("a SQLite file in the temporary directory, with its tables")
}

/// A JSON POST request.
pub fn post_json(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request")
}

/// A POST with a raw body of any content type.
pub fn post_raw(uri: &str, content_type: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a valid request")
}

/// A GET request.
pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .body(Body::empty())
        .expect("a valid request")
}

/// The caller a test request is from unless it says otherwise: the first admin of the
/// `default` organisation, as the gateway would assert it.
pub fn default_caller() -> Principal {
    Principal::member("admin", Role::Admin, OrgId("default".into()))
}

/// `request`, from `principal` (as verified by the gateway; routers under test do not wear the
/// identity layer, whose own tests are in `auth::layer`).
pub fn as_caller(mut request: Request<Body>, principal: Principal) -> Request<Body> {
    request.extensions_mut().insert(Asserted {
        by: "gateway".into(),
        principal,
    });
    request
}

/// Sends `request` into `router` (from [`default_caller`] unless it names another); the status
/// and the body as JSON (`Null` when it is not JSON).
pub async fn call(router: &Router, mut request: Request<Body>) -> (StatusCode, Value) {
    if request.extensions().get::<Asserted>().is_none() {
        request = as_caller(request, default_caller());
    }
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a readable body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Sends each request and checks its status and JSON `code`, naming the request on failure.
pub async fn expect_codes(router: &Router, cases: Vec<(Request<Body>, StatusCode, &str)>) {
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = call(router, request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
}

/// The `grpc-status` a router answers for a gRPC call of `path`.
pub async fn grpc_status(router: &Router, path: &str) -> Option<String> {
    let request = Request::post(path)
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .expect("a valid request");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
