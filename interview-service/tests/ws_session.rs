//! The WebSocket session loop driven through channels (no socket): with the emotion and scoring
//! services unreachable, the candidate still gets every question in order, one "paused" notice
//! for all frames, and answers are kept.

use std::time::Duration;

use futures_util::StreamExt;
use interview_service::app::{InterviewApp, StartRequest};
use interview_service::store::InterviewStore;
use interview_service::ws::{self, Incoming};
use iv_platform::CancellationToken;
use iv_platform::bus::EventBus;
use iv_platform::discovery::Source;
use iv_platform::downstream::{EmotionClient, ScoringClient};
use iv_platform::outbox::Relay;
use iv_platform::resilience::PolicyConfig;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn quick(mut p: PolicyConfig) -> PolicyConfig {
    p.retries = 0;
    p.attempt_timeout = Duration::from_millis(300);
    p
}

async fn app() -> InterviewApp {
    let pool = iv_platform::testing::fresh_sqlite(interview_service::SCHEMAS).await;
    for added in interview_service::ADDED_COLUMNS {
        iv_platform::db::add_missing_columns(&pool, added)
            .await
            .unwrap();
    }
    let bus = EventBus::connect(None, "").await.unwrap();
    // Nothing listens on port 1: both downstreams are unavailable.
    let nowhere = Source::url("http://127.0.0.1:1");
    let emotion = EmotionClient::new(
        &nowhere,
        quick(PolicyConfig::emotion()),
        quick(PolicyConfig::emotion_queries()),
    );
    let scoring = ScoringClient::new(&nowhere, quick(PolicyConfig::scoring()));
    InterviewApp::new(
        InterviewStore::new(pool.clone()),
        std::sync::Arc::new(emotion),
        std::sync::Arc::new(scoring),
        Relay::new(pool, bus),
        2 << 20,
    )
}

fn png_base64() -> String {
    use base64::Engine;
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

#[tokio::test]
async fn with_both_downstreams_down_the_interview_still_runs_and_says_feedback_is_paused_once() {
    let app = app().await;
    let session = app
        .start(
            StartRequest {
                user_id: "c1".into(),
                consent: true,
                ..Default::default()
            },
            iv_platform::auth::OrgId("default".into()),
            &iv_platform::testing::default_caller(),
        )
        .await
        .unwrap();
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Incoming>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let sink = Box::pin(futures_util::sink::unfold(
        out_tx,
        |tx, out: ws::Outgoing| async move {
            if let ws::Outgoing::Text(text) = out {
                tx.send(text).map_err(|_| "closed")?;
            }
            Ok::<_, &str>(tx)
        },
    ));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(ws::run(
        app.clone(),
        session.id.clone(),
        sink,
        tokio_stream::wrappers::UnboundedReceiverStream::new(in_rx),
        ws::SocketLimits::default(),
        cancel.clone(),
    ));
    let frame = json!({"type": "frame", "data": {"image": png_base64()}}).to_string();
    for _ in 0..4 {
        in_tx.send(Incoming::Text(frame.clone())).unwrap();
    }
    for q in ["intro-1", "tech-1"] {
        let answer = json!({"type": "answer", "data": {"question_id": q, "transcript": "Some answer text here.", "duration": 5}});
        in_tx.send(Incoming::Text(answer.to_string())).unwrap();
    }
    // Frames are analysed beside the answers: read until both are through, then leave.
    let mut out_rx = tokio_stream::wrappers::UnboundedReceiverStream::new(out_rx)
        .map(|t| serde_json::from_str::<Value>(&t).unwrap());
    let mut out = Vec::new();
    let told = |out: &[Value]| {
        out.iter().any(|m| m["data"]["id"] == "tech-2")
            && out.iter().any(|m| m["data"]["live_feedback"] == "paused")
    };
    while !told(&out) {
        let m = tokio::time::timeout(Duration::from_secs(5), out_rx.next())
            .await
            .expect("the questions and the paused notice within 5 s");
        out.push(m.expect("the socket is open"));
    }
    in_tx.send(Incoming::Close).unwrap();
    task.await.unwrap();
    out.extend(out_rx.collect::<Vec<_>>().await);
    let questions: Vec<&str> = out
        .iter()
        .filter(|m| m["type"] == "question")
        .map(|m| m["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(questions, ["intro-1", "tech-1", "tech-2"]);
    let paused = out
        .iter()
        .filter(|m| m["type"] == "status" && m["data"]["live_feedback"] == "paused")
        .count();
    assert!(paused >= 1, "{out:#?}");
    let notices = out
        .iter()
        .filter(|m| {
            m["data"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("Live feedback is paused"))
        })
        .count();
    assert_eq!(notices, 1, "one notice for all frames: {out:#?}");
    assert!(out.iter().all(|m| m["type"] != "error"), "{out:#?}");
    let (s, answers) = app.session(&session.id).await.unwrap();
    // Frames that arrive while the first is handled, before the pause is known, are sampled
    // (only the newest waits); every frame handled is queued for the worker.
    assert_eq!(s.frames_received, 4);
    assert!(s.frames_deferred >= 2, "{s:?}");
    assert_eq!(s.frames_deferred + s.frames_skipped, s.frames_received);
    assert_eq!(answers.len(), 2);
    assert!(
        answers.iter().all(|a| a.analysis.is_none()),
        "scoring was down; analysed at completion instead"
    );
}
