//! The worker's router without sockets (`oneshot`), on the in-process bus: the ops endpoints'
//! codes, who may call them, and the JSON 404.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use iv_platform::bus::EventBus;
use iv_platform::health::Health;
use iv_platform::testing::{expect_codes, get};
use serde_json::Value;

async fn app() -> axum::Router {
    let bus = EventBus::connect(None, "").await.unwrap();
    crate::service_router(
        crate::ops::Ops { bus, audit: None },
        &Health::new("worker-service"),
    )
}

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    iv_platform::testing::call(&app().await, request).await
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
    expect_codes(&app().await, cases).await;
}

#[tokio::test]
async fn an_empty_dead_letter_queue_lists_nothing() {
    let (status, body) = call(get("/ops/dead-letters?queue=worker.frames")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"], "worker.frames");
    assert_eq!(body["dead_letters"], Value::Array(vec![]));
}

#[tokio::test]
async fn ops_are_for_admins_and_services_only() {
    use iv_platform::auth::{OrgId, Principal, Role};
    use iv_platform::testing::as_caller;
    let list = || get("/ops/dead-letters?queue=worker.frames");
    let org = || OrgId("default".into());
    for (who, status) in [
        (Principal::service("ops"), StatusCode::OK),
        (Principal::member("a", Role::Admin, org()), StatusCode::OK),
        (
            Principal::member("r", Role::Recruiter, org()),
            StatusCode::FORBIDDEN,
        ),
        (
            Principal::candidate("c", org(), "i-1"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let role = who.role;
        assert_eq!(call(as_caller(list(), who)).await.0, status, "{role}");
    }
}
