//! Property tests: whatever a client sends to a REST route or a socket, the service answers
//! with a client error and a code (never a server error, never a panic), and keeps serving.

use axum::body::Body;
use axum::http::Request;
use iv_platform::testing::arbitrary::{self, image_like_bytes};
use iv_platform::testing::{never_a_server_error, post_json};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::app;
use crate::messages::ClientMessage;
use crate::testing::Fixture;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const START: &[&str] = &[
    "user_id",
    "policy",
    "consent",
    "questions",
    "candidate_name",
    "expires_in_hours",
];
const ANSWER: &[&str] = &["question_id", "transcript", "duration"];
const FRAME: &[&str] = &["image", "timestamp", "format"];

/// A question set whose questions have the fields the parser reads, set to anything.
fn question_sets() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        arbitrary::body_with(&["id", "text", "category", "expected_points"]),
        0..4,
    )
    .prop_map(|qs| json!({"user_id": "c", "consent": true, "questions": qs}))
}

fn raw(uri: &str, content_type: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(Body::from(bytes))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_body_on_any_route_gets_a_client_error_or_success(
        start in arbitrary::body_with(START),
        questions in question_sets(),
        answer in arbitrary::body_with(ANSWER),
        frame in arbitrary::body_with(FRAME),
        any_json in arbitrary::json(),
        image in image_like_bytes(),
    ) {
        runtime().block_on(async {
            let f = Fixture::new().await;
            let router = app(&f);
            let id = f.start(true).await.id;
            let requests = [
                post_json("/api/v1/interviews/start", &start),
                post_json("/api/v1/interviews/start", &questions),
                post_json("/api/v1/interviews/start", &any_json),
                post_json(&format!("/api/v1/interviews/{id}/answers"), &answer),
                post_json(&format!("/api/v1/interviews/{id}/answers"), &any_json),
                post_json(&format!("/api/v1/interviews/{id}/frames"), &frame),
                raw(&format!("/api/v1/interviews/{id}/frames"), "image/jpeg", image.clone()),
                raw(&format!("/api/v1/interviews/{id}/frames"), "application/json", image),
                post_json(&format!("/api/v1/interviews/{id}/complete"), &any_json),
            ];
            for request in requests {
                never_a_server_error(&router, request, &[]).await.map_err(TestCaseError::fail)?;
            }
            // Still serving, and the session intact.
            prop_assert!(f.app.get(&id).await.is_ok());
            Ok(())
        })?;
    }

    #[test]
    fn any_socket_message_parses_or_is_refused_with_a_code(
        text in ".{0,200}",
        data in arbitrary::json(),
        kind in prop::sample::select(&["frame", "answer", "ping", "complete", "", "FRAME", "other"][..]),
    ) {
        let _ = ClientMessage::parse(&text);
        let envelope = json!({"type": kind, "data": data}).to_string();
        if let Err(e) = ClientMessage::parse(&envelope) {
            let api = iv_platform::errors::ApiError::from(e);
            prop_assert!(api.class.http_status().is_client_error(), "{}", api.message);
        }
    }
}
