//! The worker's router without sockets (`oneshot`), on the in-process bus: the ops endpoints'
//! codes, the bearer token, and the JSON 404.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use iv_platform::bus::EventBus;
use iv_platform::health::Health;
use iv_platform::testing::{expect_codes, get};
use serde_json::Value;

async fn app(token: Option<&str>) -> axum::Router {
    let bus = EventBus::connect(None, "").await.unwrap();
    crate::service_router(
        crate::ops::Ops {
            bus,
            token: token.map(String::from),
        },
        &Health::new("worker-service"),
    )
}

async fn call(token: Option<&str>, request: Request<Body>) -> (StatusCode, Value) {
    iv_platform::testing::call(&app(token).await, request).await
}

#[tokio::test]
async fn ops_requests_get_their_status_and_code() {
    let cases = vec![
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
    expect_codes(&app(None).await, cases).await;
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
