//! An erasure asked for while the emotion service is down.

use std::time::{Duration, Instant};

use base64::Engine;
use iv_stack::test_env;
use serde_json::json;

use iv_test_support::ServiceProcess;
use iv_test_support::erasure::{RECEIPTS, assert_no_message_about, completed_receipt, delete};
use iv_test_support::storage::rows_mentioning;
use iv_test_support::*;

/// The interview is gone from the interview service at once; the receipt waits for the emotion
/// service and completes when it returns. Frames queued for the worker while it was down are
/// dropped when met: never analysed, never dead-lettered, no row left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_asked_for_while_the_emotion_service_is_down_completes_when_it_returns() {
    let _turn = iv_test_support::one_at_a_time().await;
    let dir = fresh_dir();
    let emotion_dir = dir.join("emotion");
    let mut emotion = ServiceProcess::start("emotion", test_env(&emotion_dir, &[])).await;
    let emotion_url = emotion.url();
    let t = spawn_in(
        &dir,
        &[
            ("STACK_SERVICES", "scoring,interview,worker,gateway"),
            ("EMOTION_GRPC_URL", &emotion_url),
            ("WORKER_RETRY_DELAY_MS", "500"),
        ],
    )
    .await;
    let id = t.start_interview(true).await;
    let mut ws = ws_connect(&t.ws_url(&id), Some(&t.token)).await;
    let jpeg = face_jpeg();
    let frame = |n: i64| {
        json!({"type": "frame", "data": {
            "image": base64::engine::general_purpose::STANDARD.encode(&jpeg),
            "timestamp": 1_000 + n * 200,
            "format": "jpeg",
        }})
    };
    for n in 0..3 {
        ws_send(&mut ws, frame(n)).await;
        ws_until(&mut ws, "emotion_update").await;
    }

    emotion.kill().await;
    for n in 3..8 {
        ws_send(&mut ws, frame(n)).await;
    }
    let session_path = format!("/api/v1/interviews/{id}");
    eventually(
        Duration::from_secs(20),
        "frames queued for the worker",
        || {
            let t = &t;
            let path = &session_path;
            async move { t.get(path).await.json()["frames_deferred"].as_u64() >= Some(1) }
        },
    )
    .await;
    drop(ws);

    let asked = Instant::now();
    let (status, receipt) = delete(&t.http, &t, &id).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(t.get(&session_path).await.status, 404, "gone here at once");
    // The scoring service reports; the emotion service cannot.
    let erasure_path = format!("/api/v1/interviews/{id}/erasure");
    eventually(
        Duration::from_secs(20),
        "the scoring service reports",
        || {
            let t = &t;
            let path = &erasure_path;
            async move {
                let r = t.get(path).await.json();
                r["services"]["scoring-service"].is_object()
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = t.get(&erasure_path).await.json();
    assert_eq!(
        waiting["pending"],
        json!(["emotion-service"]),
        "{waiting:#}"
    );
    assert!(waiting["completed_at"].is_null());
    let down_for = asked.elapsed();

    emotion.restart().await;
    let back = Instant::now();
    let receipt = completed_receipt(&t, &id, Duration::from_secs(120)).await;
    println!(
        "erasure asked with the emotion service down; it came back {} ms later; receipt complete {} ms after its return",
        down_for.as_millis(),
        back.elapsed().as_millis()
    );
    // The frames analysed live, and any queued one the worker got in before the erasure.
    let frames = receipt["services"]["emotion-service"]["deleted"]["frame_analyses"]
        .as_i64()
        .unwrap_or_default();
    assert!((3..=8).contains(&frames), "{receipt:#}");

    // Queued frames meet the erasure on their next attempt and are dropped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for url in [
        t.database_url(),
        iv_platform::db::sqlite_url(&emotion_dir.display().to_string(), "interview"),
    ] {
        let left = rows_mentioning(&url, &id, RECEIPTS).await;
        assert!(left.is_empty(), "rows left in {url}: {left:#?}");
    }
    assert_no_message_about(&t, &id).await;
    emotion.kill().await;
    t.stop().await;
}
