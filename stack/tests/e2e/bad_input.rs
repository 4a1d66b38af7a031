//! Bad input gets a clear error with a stable code; the connection and the stored data survive.

use base64::Engine;
use serde_json::{Value, json};

use iv_test_support::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn send_raw(t: &TestStack, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = t
        .http
        .send(
            http::Method::POST,
            &t.url(path),
            Some(content_type),
            body,
            &[],
        )
        .await
        .unwrap();
    (resp.status.as_u16(), resp.json())
}

#[tokio::test]
async fn rest_rejects_bad_input_with_status_and_code_and_keeps_stored_answers() {
    let t = spawn_stack(&[]).await;
    let (status, body) = send_raw(
        &t,
        "/api/v1/interviews/start",
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_JSON")),
        "{body}"
    );
    let resp = t
        .post(
            "/api/v1/interviews/start",
            &json!({"user_id": "c", "policy": "telepathy"}),
        )
        .await;
    assert_eq!(
        (resp.status.as_u16(), resp.json()["code"].clone()),
        (400, json!("INVALID_ARGUMENT"))
    );

    let missing = t.get("/api/v1/interviews/does-not-exist").await;
    assert_eq!(
        (missing.status.as_u16(), missing.json()["code"].clone()),
        (404, json!("SESSION_NOT_FOUND"))
    );

    let id = t.start_interview(true).await;
    let first = t
        .post(&format!("/api/v1/interviews/{id}/answers"), &json!({"question_id": "intro-1", "transcript": "I build payment systems in Rust and lead the on-call rotation.", "duration": 8.0}))
        .await;
    assert_eq!(first.status, 200);

    let frames = format!("/api/v1/interviews/{id}/frames");
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"image": "%%%not base64%%%"}), 400, "INVALID_FRAME"),
        (
            json!({"image": b64(b"GIF89a just some bytes")}),
            400,
            "INVALID_FRAME",
        ),
        // Just over the 2 MiB frame limit: read, then refused by the frame check.
        (
            json!({"image": b64(&vec![0xFF; 2 * 1024 * 1024 + 1])}),
            413,
            "FRAME_TOO_LARGE",
        ),
        // Far over it: refused before the body is buffered.
        (
            json!({"image": b64(&vec![0xFF; 3 * 1024 * 1024])}),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            json!({"image": b64(&face_jpeg()[..2000])}),
            400,
            "INVALID_FRAME",
        ),
    ];
    for (body, status, code) in cases {
        let resp = t.post(&frames, &body).await;
        assert_eq!(
            (
                resp.status.as_u16(),
                resp.json()["code"].as_str().unwrap_or_default()
            ),
            (status, code),
            "{}",
            resp.json()
        );
    }
    let (status, body) = send_raw(&t, &frames, "text/plain", b"hello".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("UNSUPPORTED_MEDIA_TYPE"))
    );

    let answers = format!("/api/v1/interviews/{id}/answers");
    for (body, status, code) in [
        (
            json!({"question_id": "nope", "transcript": "x"}),
            400,
            "UNKNOWN_QUESTION",
        ),
        (
            json!({"question_id": "intro-1", "transcript": "again"}),
            409,
            "QUESTION_ALREADY_ANSWERED",
        ),
        (
            json!({"question_id": "behav-2", "transcript": "skipping ahead"}),
            409,
            "NOT_CURRENT_QUESTION",
        ),
        (
            json!({"question_id": "tech-1", "transcript": "x", "duration": -3.0}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"transcript": "no question id"}),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let resp = t.post(&answers, &body).await;
        assert_eq!(
            (
                resp.status.as_u16(),
                resp.json()["code"].as_str().unwrap_or_default()
            ),
            (status, code),
            "{body}"
        );
    }

    let no_consent = t.start_interview(false).await;
    let resp = t
        .post(
            &format!("/api/v1/interviews/{no_consent}/frames"),
            &json!({"image": b64(&face_jpeg())}),
        )
        .await;
    assert_eq!(
        (resp.status.as_u16(), resp.json()["code"].clone()),
        (409, json!("CONSENT_REQUIRED"))
    );

    assert_eq!(
        t.post(&format!("/api/v1/interviews/{id}/complete"), &json!({}))
            .await
            .status,
        200
    );
    let again = t
        .post(&format!("/api/v1/interviews/{id}/complete"), &json!({}))
        .await;
    assert_eq!(
        (again.status.as_u16(), again.json()["code"].clone()),
        (409, json!("SESSION_COMPLETED"))
    );
    let late = t
        .post(
            &answers,
            &json!({"question_id": "tech-1", "transcript": "too late"}),
        )
        .await;
    assert_eq!(late.json()["code"], "SESSION_COMPLETED");

    // Nothing stored was lost along the way.
    let session = t.get(&format!("/api/v1/interviews/{id}")).await.json();
    assert_eq!(session["answers"].as_array().unwrap().len(), 1);
    assert_eq!(session["state"], "completed");
    t.stop().await;
}

#[tokio::test]
async fn the_socket_answers_bad_messages_with_error_codes_and_stays_open() {
    let t = spawn_stack(&[]).await;
    let id = t.start_interview(true).await;
    let mut ws = ws_connect(&t.ws_url(&id), Some(&t.token)).await;
    assert_eq!(ws_next(&mut ws).await["type"], "status");
    assert_eq!(ws_next(&mut ws).await["data"]["id"], "intro-1");

    let cases: Vec<(String, &str)> = vec![
        ("not json at all".into(), "INVALID_MESSAGE"),
        (
            json!({"type": "dance", "data": {}}).to_string(),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type": "frame", "data": {"timestamp": 1}}).to_string(),
            "INVALID_MESSAGE",
        ),
        (
            json!({"type": "frame", "data": {"image": "@@@"}}).to_string(),
            "INVALID_FRAME",
        ),
        (
            json!({"type": "frame", "data": {"image": b64(b"\x89PNG\r\n\x1a\ntruncated")}})
                .to_string(),
            "INVALID_FRAME",
        ),
        (
            json!({"type": "frame", "data": {"image": b64(&vec![0xFF; 2 * 1024 * 1024 + 1])}})
                .to_string(),
            "FRAME_TOO_LARGE",
        ),
        (
            json!({"type": "answer", "data": {"question_id": "tech-3", "transcript": "x"}})
                .to_string(),
            "NOT_CURRENT_QUESTION",
        ),
        (
            json!({"type": "answer", "data": {"question_id": "zzz", "transcript": "x"}})
                .to_string(),
            "UNKNOWN_QUESTION",
        ),
    ];
    for (text, code) in cases {
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            text.clone().into(),
        ))
        .await
        .unwrap();
        let reply = ws_until(&mut ws, "error").await;
        assert_eq!(reply["data"]["code"], code, "{text:.80}: {reply}");
    }
    ws_send(&mut ws, json!({"type": "ping", "data": {}})).await;
    let pong = ws_until(&mut ws, "pong").await;
    let answered_at = pong["data"]["timestamp"].as_i64().expect("a timestamp");
    assert!(
        (iv_contracts::now_millis() - answered_at).abs() < 10_000,
        "the socket is still open and answers now: {pong}"
    );

    let mut unknown = ws_connect(&t.ws_url("no-such-session"), Some(&t.token)).await;
    let reply = ws_next(&mut unknown).await;
    assert_eq!(
        (reply["type"].as_str(), reply["data"]["code"].as_str()),
        (Some("error"), Some("SESSION_NOT_FOUND"))
    );
    t.stop().await;
}

use futures_util::SinkExt;
