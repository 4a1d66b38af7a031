//! The whole router without sockets (`oneshot`): routes exist where clients expect them, every
//! failure comes back as the documented status and JSON code, and gRPC gets gRPC answers.

use axum::http::StatusCode;
use iv_platform::health::Health;
use iv_platform::testing::{
    call, expect_codes, fresh_sqlite, get, grpc_status, post_json, post_raw,
};
use serde_json::json;

use crate::app::ScoringApp;
use crate::store::{self, ScoreStore};

pub(super) async fn app() -> axum::Router {
    let pool = fresh_sqlite(&[
        store::SCHEMA,
        iv_platform::erasure::SCHEMA,
        iv_platform::audit::SCHEMA,
    ])
    .await;
    crate::service_router(
        ScoringApp::new(ScoreStore::new(pool), crate::meaning::test_encoder()),
        Health::new("scoring-service"),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn bad_input_gets_its_status_and_code() {
    let telepathy = json!({"session_id": "s", "answers": [], "analysis_policy": "telepathy"});
    let cases = vec![
        (
            post_json("/api/v1/scores/calculate", &telepathy),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_raw("/api/v1/scores/calculate", "application/json", "{not json"),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            post_json(
                "/api/v1/scores/calculate",
                &json!({"session_id": " ", "answers": []}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            get("/api/v1/scores/session/never-scored"),
            StatusCode::NOT_FOUND,
            "SCORE_NOT_FOUND",
        ),
        (
            get("/api/v1/scores/report?session_id=s&format=docx"),
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_FORMAT",
        ),
        (get("/api/v2/nothing"), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    expect_codes(&app().await, cases).await;
}

#[tokio::test]
async fn an_unknown_policy_is_named_in_the_error() {
    let body = json!({"session_id": "s", "answers": [], "analysis_policy": "telepathy"});
    let (_, body) = call(&app().await, post_json("/api/v1/scores/calculate", &body)).await;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("unknown analysis policy \"telepathy\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_calculated_score_is_then_served_by_session() {
    let app = app().await;
    let input = json!({
        "session_id": "s1",
        "answers": [{"question_id": "q", "question": "How would you design a URL shortener?",
                     "transcript": "I would store a mapping from short codes to addresses in a database and cache popular ones.",
                     "expected_points": ["database"]}],
        "total_questions": 1
    });
    let (status, _) = call(&app, post_json("/api/v1/scores/calculate", &input)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, get("/api/v1/scores/session/s1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["session_id"], "s1");
    assert_eq!(body["analysis_policy"], "full", "absent means full");
}

#[tokio::test]
async fn an_unknown_grpc_method_is_unimplemented_not_a_json_404() {
    let status = grpc_status(&app().await, "/scoring.ScoringService/NoSuchMethod").await;
    assert_eq!(status.as_deref(), Some("12"), "UNIMPLEMENTED");
}

#[tokio::test]
async fn every_described_operation_is_routed_and_no_other_method_is() {
    iv_platform::testing::assert_described_routes(&app().await, &super::openapi(), &[]).await;
    iv_platform::testing::assert_no_hand_written_api_routes(include_str!("../routes.rs"));
}
