//! The whole router without sockets (`oneshot`): routes exist where clients expect them, every
//! failure comes back as the documented status and JSON code, and gRPC gets gRPC answers.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use iv_platform::db;
use iv_platform::health::Health;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::ScoringApp;
use crate::store::{self, ScoreStore};

async fn app() -> axum::Router {
    let dir = std::env::temp_dir().join(format!("iv-scoring-{}", uuid::Uuid::new_v4().simple()));
    let pool = db::connect(&db::sqlite_url(dir.to_str().unwrap(), "t"))
        .await
        .unwrap();
    db::apply_schema(&pool, store::SCHEMA).await.unwrap();
    crate::service_router(
        ScoringApp::new(ScoreStore::new(pool)),
        Health::new("scoring-service"),
    )
    .await
    .unwrap()
}

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    let response = app().await.oneshot(request).await.unwrap();
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
async fn bad_input_gets_its_status_and_code() {
    let cases = [
        (
            post_json(
                "/api/v1/scores/calculate",
                json!({"session_id": "s", "answers": [], "analysis_policy": "telepathy"}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            Request::post("/api/v1/scores/calculate")
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            post_json(
                "/api/v1/scores/calculate",
                json!({"session_id": " ", "answers": []}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            Request::get("/api/v1/scores/session/never-scored")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "SCORE_NOT_FOUND",
        ),
        (
            Request::get("/api/v1/scores/report?session_id=s&format=docx")
                .body(Body::empty())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_FORMAT",
        ),
        (
            Request::get("/api/v2/nothing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = call(request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_policy_is_named_in_the_error() {
    let (_, body) = call(post_json(
        "/api/v1/scores/calculate",
        json!({"session_id": "s", "answers": [], "analysis_policy": "telepathy"}),
    ))
    .await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown analysis policy \"telepathy\"")),
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
    let response = app
        .clone()
        .oneshot(post_json("/api/v1/scores/calculate", input))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .oneshot(
            Request::get("/api/v1/scores/session/s1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["session_id"], "s1");
    assert_eq!(body["analysis_policy"], "full", "absent means full");
}

#[tokio::test]
async fn an_unknown_grpc_method_is_unimplemented_not_a_json_404() {
    let response = app()
        .await
        .oneshot(
            Request::post("/scoring.ScoringService/NoSuchMethod")
                .header("content-type", "application/grpc")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()),
        Some("12"),
        "UNIMPLEMENTED"
    );
}
