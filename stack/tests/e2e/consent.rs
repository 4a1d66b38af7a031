//! Notice and consent through the gateway, as the candidate takes them with their invitation:
//! they read the notice and consent to that text; frames are analysed only after; withdrawal
//! stops the open socket's analysis at once, erases what the emotion service derived from the
//! frames, and keeps the record. The wrong callers are refused.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::client::HttpClient;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use iv_test_support::*;

/// The next message of `kind`, skipping the others.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = ws_next(ws).await;
        if msg["type"] == kind {
            return msg;
        }
    }
}

/// Rows the emotion service holds for the interview (its erasure tombstone aside).
async fn emotion_rows(t: &TestStack, id: &str) -> i64 {
    storage::rows_mentioning(&t.database_url(), id, &["erased_sessions"])
        .await
        .into_iter()
        .filter(|m| ["frame_analyses", "blinks", "emotion_sessions"].contains(&m.table.as_str()))
        .map(|m| m.rows)
        .sum()
}

#[tokio::test]
async fn the_candidate_consents_to_the_notice_they_read_and_withdrawal_stops_and_erases() {
    let t = spawn_stack(&[]).await;
    let started = t
        .post(
            "/api/v1/interviews/start",
            &json!({"user_id": "c-1", "candidate_name": "Ada", "policy": "engagement"}),
        )
        .await;
    assert_eq!(started.status, 201);
    let started = started.json();
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["consent_state"], "pending");
    let token = started["invitation"]["token"].as_str().unwrap().to_string();
    let candidate = HttpClient::new().with_bearer(&token);
    let path = |p: &str| t.url(&format!("/api/v1/interviews/{id}{p}"));

    // Nothing is analysed before consent, not even on the socket.
    let mut ws = ws_connect(&t.ws_url(&id), Some(&token)).await;
    assert_eq!(
        next_of(&mut ws, "status").await["data"]["live_feedback"],
        "active"
    );
    ws.send(Message::Binary(face_jpeg().into())).await.unwrap();
    assert_eq!(
        next_of(&mut ws, "error").await["data"]["code"],
        "CONSENT_REQUIRED"
    );

    let (status, notice) = send(&candidate, http::Method::GET, &path("/notice"), None).await;
    assert_eq!(status, 200, "{notice}");
    assert_eq!(notice["policy"], "engagement");
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains("No emotion or facial expression is inferred"),
        "{text}"
    );
    let named = json!({"notice_version": notice["version"], "notice_sha256": notice["sha256"]});

    // The wrong callers: a recruiter cannot consent for the candidate, another organisation
    // finds nothing, and a text the candidate did not read is refused.
    let mint = |p: Principal| {
        HttpClient::new().with_bearer(
            &iv_stack::tokens::mint(&t.env, &p, Duration::from_secs(600)).expect("a token"),
        )
    };
    let recruiter = mint(Principal::member(
        "rita",
        Role::Recruiter,
        OrgId("default".into()),
    ));
    let stranger = mint(Principal::member(
        "otto",
        Role::Admin,
        OrgId("other".into()),
    ));
    let (status, body) = send(
        &recruiter,
        http::Method::POST,
        &path("/consent"),
        Some(named.clone()),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = send(&stranger, http::Method::GET, &path("/notice"), None).await;
    assert_eq!(status, 404);
    let stale = json!({"notice_version": notice["version"], "notice_sha256": "0".repeat(64)});
    let (status, body) = send(
        &candidate,
        http::Method::POST,
        &path("/consent"),
        Some(stale),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("NOTICE_CHANGED"))
    );

    let (status, consent) = send(
        &candidate,
        http::Method::POST,
        &path("/consent"),
        Some(named),
    )
    .await;
    assert_eq!(status, 201, "{consent}");
    assert_eq!(consent["record"]["given_role"], "candidate");
    assert_eq!(consent["record"]["notice_sha256"], notice["sha256"]);

    for frame in face_frames().iter().take(3) {
        ws.send(Message::Binary(std::fs::read(frame).unwrap().into()))
            .await
            .unwrap();
        next_of(&mut ws, "emotion_update").await;
    }
    assert!(
        emotion_rows(&t, &id).await > 0,
        "frames analysed and stored"
    );

    // Withdrawal: the socket is told at once, later frames are refused, and the emotion
    // service's rows for the interview go.
    let (status, withdrawn) = send(&candidate, http::Method::DELETE, &path("/consent"), None).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert!(withdrawn["record"]["withdrawn_at"].is_i64());
    let told = next_of(&mut ws, "status").await;
    assert_eq!(told["data"]["live_feedback"], "stopped", "{told}");
    ws.send(Message::Binary(face_jpeg().into())).await.unwrap();
    assert_eq!(
        next_of(&mut ws, "error").await["data"]["code"],
        "CONSENT_WITHDRAWN"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while emotion_rows(&t, &id).await > 0 {
        assert!(
            Instant::now() < deadline,
            "face data still held 30 s after withdrawal"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, kept) = send(&recruiter, http::Method::GET, &path("/consent"), None).await;
    assert_eq!((status, kept["state"].as_str()), (200, Some("withdrawn")));
    assert_eq!(
        kept["record"]["withdrawn_at"], withdrawn["record"]["withdrawn_at"],
        "the record stays"
    );
    let (status, session) = send(&recruiter, http::Method::GET, &path(""), None).await;
    assert_eq!(
        (status, session["consent_state"].as_str()),
        (200, Some("withdrawn"))
    );
    t.stop().await;
}

fn engagement(score: &Value) -> Value {
    score["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "engagement")
        .cloned()
        .expect("an engagement component")
}

/// A withdrawal after the interview was scored: the emotion service's rows go, and the score
/// is recomputed from the answers alone, saying why engagement is left out.
#[tokio::test]
async fn a_withdrawal_after_scoring_leaves_face_analysis_out_of_the_score() {
    let t = spawn_stack(&[]).await;
    let mut opts = iv_stack::sim::SimOptions::new(t.gateway.clone(), face_frames());
    opts.token = Some(t.token.clone());
    opts.fps = 25.0;
    opts.frames_per_answer = 3;
    opts.report_timeout = Duration::from_secs(60);
    let played = iv_stack::sim::run(&opts)
        .await
        .expect("the interview plays");
    let id = played.session_id.clone();
    assert!(
        engagement(&played.score)["score"].is_number(),
        "{}",
        played.score
    );
    assert!(emotion_rows(&t, &id).await > 0);

    let candidate = HttpClient::new().with_bearer(
        &iv_stack::tokens::mint(
            &t.env,
            &Principal::candidate("invite-a", OrgId("default".into()), &id),
            Duration::from_secs(600),
        )
        .expect("a token"),
    );
    let consent = t.url(&format!("/api/v1/interviews/{id}/consent"));
    let (status, body) = send(&candidate, http::Method::DELETE, &consent, None).await;
    assert_eq!(status, 200, "{body}");

    let score_url = t.url(&format!("/api/v1/scores/session/{id}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let score = loop {
        let (status, score) = send(&t.http, http::Method::GET, &score_url, None).await;
        assert_eq!(status, 200, "{score}");
        if engagement(&score)["score"].is_null() {
            break score;
        }
        assert!(
            Instant::now() < deadline,
            "still scored on the frames: {score}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        engagement(&score)["reason"]
            .as_str()
            .unwrap()
            .contains("withdrew consent"),
        "{score}"
    );
    assert!(
        score["overall_score"].is_number(),
        "the answers still count"
    );
    while emotion_rows(&t, &id).await > 0 {
        assert!(Instant::now() < deadline, "face data still held");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.stop().await;
}
