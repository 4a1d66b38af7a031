//! The whole router without sockets (`oneshot`), on an instance without models: routes exist
//! where clients expect them, and every failure comes back as the documented status and code.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use iv_platform::db;
use iv_platform::health::Health;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::EmotionApp;
use crate::inference::InferencePool;
use crate::store::{self, EmotionStore};

async fn app() -> axum::Router {
    let dir = std::env::temp_dir().join(format!("iv-emotion-{}", uuid::Uuid::new_v4().simple()));
    let pool = db::connect(&db::sqlite_url(dir.to_str().unwrap(), "t"))
        .await
        .unwrap();
    db::apply_schema(&pool, store::SCHEMA).await.unwrap();
    let app = EmotionApp::new(
        crate::models_missing("no models in this test"),
        InferencePool::new(1, 1),
        EmotionStore::new(pool),
    );
    crate::service_router(app, Health::new("emotion-service"))
        .await
        .unwrap()
}

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    let response = app().await.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn analyze(body: Value) -> Request<Body> {
    Request::post("/api/v1/emotions/analyze")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn png_base64() -> String {
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

#[tokio::test]
async fn failures_get_their_status_and_code() {
    let frame = png_base64();
    let cases = [
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
            analyze(
                json!({"session_id": "s", "image": base64::engine::general_purpose::STANDARD.encode(b"GIF89a")}),
            ),
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
            StatusCode::SERVICE_UNAVAILABLE,
            "MODELS_UNAVAILABLE",
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
async fn health_says_why_frames_cannot_be_analysed() {
    let (status, body) = call(Request::get("/health/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.to_string().contains("no models in this test"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_grpc_method_is_unimplemented_not_a_json_404() {
    let response = app()
        .await
        .oneshot(
            Request::post("/emotion.EmotionService/NoSuchMethod")
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
