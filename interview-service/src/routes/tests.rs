//! The router without sockets (`oneshot`): routes exist where clients expect them, and every
//! failure comes back as the documented status and JSON code.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use iv_platform::CancellationToken;
use iv_platform::health::Health;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{AppState, router};
use crate::testing::Fixture;

async fn call(f: &Fixture, request: Request<Body>) -> (StatusCode, Value) {
    let app = router(
        AppState {
            app: f.app.clone(),
            shutdown: CancellationToken::new(),
        },
        &Health::new("interview-service"),
    );
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn post_json(uri: &str, body: Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn starting_an_interview_answers_201_with_the_session() {
    let f = Fixture::new().await;
    let (status, body) = call(
        &f,
        post_json(
            "/api/v1/interviews/start",
            json!({"user_id": "c1", "consent": true, "policy": "engagement"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["policy"], "engagement");
    assert_eq!(body["current_question"]["id"], "intro-1");
}

#[tokio::test]
async fn bad_input_gets_its_status_and_code() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let cases = [
        (
            post_json(
                "/api/v1/interviews/start",
                json!({"user_id": "c", "policy": "telepathy"}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_json("/api/v1/interviews/start", json!({"consent": true})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            Request::post("/api/v1/interviews/start")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            Request::post(format!("/api/v1/interviews/{id}/frames"))
                .header("content-type", "text/plain")
                .body(Body::from("hello"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post_json(
                &format!("/api/v1/interviews/{id}/frames"),
                json!({"image": "%%%"}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_FRAME",
        ),
        (
            post_json(
                &format!("/api/v1/interviews/{id}/answers"),
                json!({"question_id": "tech-9", "transcript": "x"}),
            ),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_QUESTION",
        ),
        (
            Request::get("/api/v1/interviews/no-such-session")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
        ),
    ];
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = call(&f, request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let f = Fixture::new().await;
    let (status, body) = call(
        &f,
        Request::get("/api/v2/nothing").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "not found", "code": "NOT_FOUND"}));
}

#[tokio::test]
async fn the_status_route_reports_live_feedback_from_the_session_state() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let uri = format!("/api/v1/interviews/{id}/status");
    let (_, body) = call(&f, Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(body["live_feedback"], "active");
    f.emotion(crate::testing::Answer::Down);
    f.frame(&id).await.unwrap();
    let (status, body) = call(&f, Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["live_feedback"], "paused", "{body}");
}
