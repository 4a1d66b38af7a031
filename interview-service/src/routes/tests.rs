//! The router without sockets (`oneshot`): routes exist where clients expect them, and every
//! failure comes back as the documented status and JSON code.

use axum::http::StatusCode;
use iv_platform::CancellationToken;
use iv_platform::health::Health;
use iv_platform::testing::{call, expect_codes, get, post_json, post_raw};
use serde_json::json;

use super::{AppState, router};
use crate::testing::{Answer, Fixture};

pub(super) fn app(f: &Fixture) -> axum::Router {
    router(
        AppState {
            app: f.app.clone(),
            invitations: std::sync::Arc::new(
                iv_platform::auth::SigningKey::generate(
                    "ai-interview",
                    iv_platform::auth::AUDIENCE,
                )
                .unwrap(),
            ),
            shutdown: CancellationToken::new(),
            socket_limits: Default::default(),
        },
        &Health::new("interview-service"),
    )
}

#[tokio::test]
async fn starting_an_interview_answers_201_with_the_session() {
    let f = Fixture::new().await;
    let body = json!({"user_id": "c1", "consent": true, "policy": "engagement"});
    let (status, body) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["policy"], "engagement");
    assert_eq!(body["current_question"]["id"], "intro-1");
}

#[tokio::test]
async fn bad_input_gets_its_status_and_code() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let (frames, answers) = (
        format!("/api/v1/interviews/{id}/frames"),
        format!("/api/v1/interviews/{id}/answers"),
    );
    let start = "/api/v1/interviews/start";
    let cases = vec![
        (
            post_json(start, &json!({"user_id": "c", "policy": "telepathy"})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_json(start, &json!({"consent": true})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_raw(start, "application/json", "{not json"),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            post_raw(&frames, "text/plain", "hello"),
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post_json(&frames, &json!({"image": "%%%"})),
            StatusCode::BAD_REQUEST,
            "INVALID_FRAME",
        ),
        (
            post_json(
                &answers,
                &json!({"question_id": "tech-9", "transcript": "x"}),
            ),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_QUESTION",
        ),
        (
            get("/api/v1/interviews/no-such-session"),
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
        ),
        (get("/api/v2/nothing"), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    expect_codes(&app(&f), cases).await;
}

#[tokio::test]
async fn the_status_route_reports_live_feedback_from_the_session_state() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let uri = format!("/api/v1/interviews/{id}/status");
    let (_, body) = call(&app(&f), get(&uri)).await;
    assert_eq!(body["live_feedback"], "active");
    f.emotion(Answer::Down);
    f.frame(&id).await.unwrap();
    let (status, body) = call(&app(&f), get(&uri)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["live_feedback"], "paused", "{body}");
}

#[tokio::test]
async fn an_invitation_opens_its_interview_until_the_interview_expires() {
    use iv_platform::auth::{OrgId, Principal};
    use iv_platform::testing::as_caller;
    let f = Fixture::new().await;
    let body = json!({"user_id": "c1", "candidate_name": "Ada", "expires_in_hours": 2});
    let (status, created) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["candidate_name"], "Ada");
    let id = created["id"].as_str().unwrap().to_string();
    let hours = (created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap())
        as f64
        / 3.6e6;
    assert!((hours - 2.0).abs() < 0.01, "{hours}");
    assert!(
        created["invitation"]["token"]
            .as_str()
            .is_some_and(|t| t.len() > 100)
    );

    let candidate = Principal::candidate("invitation", OrgId("default".into()), &id);
    let path = format!("/api/v1/interviews/{id}/status");
    let (status, _) = call(&app(&f), as_caller(get(&path), candidate.clone())).await;
    assert_eq!(status, StatusCode::OK);
    sqlx::query("UPDATE interviews SET expires_at = 1 WHERE id = $1")
        .bind(&id)
        .execute(f.app.store.pool())
        .await
        .unwrap();
    let (status, body) = call(&app(&f), as_caller(get(&path), candidate)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SESSION_NOT_FOUND"))
    );
    let (status, _) = call(&app(&f), get(&path)).await;
    assert_eq!(status, StatusCode::OK, "the organisation still sees it");
    for hours in [0, 721] {
        let body = json!({"user_id": "c", "expires_in_hours": hours});
        let (status, _) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hours} hours");
    }
}
