//! The whole router without sockets (`oneshot`), on an instance without models: routes exist
//! where clients expect them, and every failure comes back as the documented status and code.

use axum::http::StatusCode;
use base64::Engine;
use iv_platform::health::Health;
use iv_platform::testing::{call, expect_codes, fresh_sqlite, get, grpc_status, post_json};
use serde_json::{Value, json};

use crate::app::EmotionApp;
use crate::inference::InferencePool;
use crate::store::{self, EmotionStore};

pub(super) async fn app() -> axum::Router {
    let app = EmotionApp::new(
        crate::models_missing("no models in this test"),
        InferencePool::new(1, 1),
        EmotionStore::new(
            fresh_sqlite(&[
                store::SCHEMA,
                iv_platform::erasure::SCHEMA,
                iv_platform::audit::SCHEMA,
            ])
            .await,
        ),
        crate::far_pass::FarPasses::start().unwrap(),
    );
    crate::service_router(app, Health::new("emotion-service"))
        .await
        .unwrap()
}

fn analyze(body: Value) -> axum::http::Request<axum::body::Body> {
    post_json("/api/v1/emotions/analyze", &body)
}

/// A consent as the interview service records one, to `policy`.
pub(super) fn consent(policy: &str) -> Value {
    json!({"notice_version": 1, "notice_sha256": "ab".repeat(32), "policy": policy, "given_at": 1})
}

pub(super) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn failures_get_their_status_and_code() {
    let frame = base64(&png());
    let cases = vec![
        (
            analyze(json!({"session_id": "s", "image": frame, "policy": "telepathy"})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            analyze(json!({"session_id": "s", "image": "%%%"})),
            StatusCode::BAD_REQUEST,
            "INVALID_FRAME",
        ),
        (
            analyze(json!({"session_id": "s", "image": base64(b"GIF89a")})),
            StatusCode::BAD_REQUEST,
            "INVALID_FRAME",
        ),
        (
            analyze(json!({"session_id": "s", "image": frame, "policy": "off"})),
            StatusCode::CONFLICT,
            "ANALYSIS_OFF",
        ),
        (
            analyze(json!({"session_id": "s2", "image": frame})),
            StatusCode::CONFLICT,
            "CONSENT_REQUIRED",
        ),
        (
            analyze(json!({"session_id": "s2", "image": frame, "consent": consent("engagement")})),
            StatusCode::CONFLICT,
            "CONSENT_REQUIRED",
        ),
        (
            analyze(json!({"session_id": "s2", "image": frame, "consent": consent("full")})),
            StatusCode::SERVICE_UNAVAILABLE,
            "MODELS_UNAVAILABLE",
        ),
        (get("/api/v2/nothing"), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    expect_codes(&app().await, cases).await;
}

#[tokio::test]
async fn health_says_why_frames_cannot_be_analysed() {
    let (status, body) = call(&app().await, get("/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.to_string().contains("no models in this test"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_grpc_method_is_unimplemented_not_a_json_404() {
    let status = grpc_status(&app().await, "/emotion.EmotionService/NoSuchMethod").await;
    assert_eq!(status.as_deref(), Some("12"), "UNIMPLEMENTED");
}

#[tokio::test]
async fn every_described_operation_is_routed_and_no_other_method_is() {
    iv_platform::testing::assert_described_routes(&app().await, &super::openapi(), &[]).await;
    iv_platform::testing::assert_no_hand_written_api_routes(include_str!("../routes.rs"));
}
