//! The worker's router without sockets (`oneshot`), on the in-process bus: the ops endpoints'
//! codes, the bearer token, and the JSON 404.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use iv_platform::bus::EventBus;
use iv_platform::health::Health;
use serde_json::Value;
use tower::ServiceExt;

async fn call(token: Option<&str>, request: Request<Body>) -> (StatusCode, Value) {
    let bus = EventBus::connect(None, "").await.unwrap();
    let router = crate::service_router(
        crate::ops::Ops {
            bus,
            token: token.map(String::from),
        },
        &Health::new("worker-service"),
    );
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn ops_requests_get_their_status_and_code() {
    let cases = [
        (
            get("/ops/dead-letters?queue=nope"),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            get("/ops/dead-letters?queue=worker.frames&limit=0"),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (get("/nothing/here"), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    for (request, status, code) in cases {
        let what = request.uri().to_string();
        let (got, body) = call(None, request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn an_empty_dead_letter_queue_lists_nothing() {
    let (status, body) = call(None, get("/ops/dead-letters?queue=worker.frames")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"], "worker.frames");
    assert_eq!(body["dead_letters"], Value::Array(vec![]));
}

#[tokio::test]
async fn with_a_token_set_ops_need_it_and_health_does_not() {
    let (status, body) = call(Some("s3cret"), get("/ops/dead-letters?queue=worker.frames")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
    );
    let mut with_token = get("/ops/dead-letters?queue=worker.frames");
    with_token
        .headers_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    assert_eq!(call(Some("s3cret"), with_token).await.0, StatusCode::OK);
    assert_eq!(
        call(Some("s3cret"), get("/health/live")).await.0,
        StatusCode::OK
    );
}
