//! A downstream service dies in the middle of an interview and comes back.

use std::time::{Duration, Instant};

use base64::Engine;
use iv_stack::test_env;
use serde_json::{Value, json};

use iv_test_support::ServiceProcess;
use iv_test_support::*;

fn frame_message(jpeg: &[u8], timestamp: i64) -> Value {
    json!({"type": "frame", "data": {
        "image": base64::engine::general_purpose::STANDARD.encode(jpeg),
        "timestamp": timestamp,
        "format": "jpeg",
    }})
}

/// The next message within `within`, if any.
async fn ws_poll(ws: &mut Ws, within: Duration) -> Option<Value> {
    tokio::time::timeout(within, ws_next(ws)).await.ok()
}

/// `circuit_breaker_state{downstream="<name>"}` as served on `/metrics` at `base`.
async fn breaker_state(t: &TestStack, base: &str, downstream: &str) -> Option<f64> {
    let resp = t.http.get(&format!("{base}/metrics")).await.ok()?;
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    let prefix = format!("circuit_breaker_state{{downstream=\"{downstream}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Stop the emotion service (SIGKILL) mid-interview: the candidate's socket stays open and is told
/// once that live feedback is paused, frames are queued for the worker, the breaker opens and
/// calls fail fast; after the service returns, feedback resumes and every queued frame is analysed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emotion_service_outage_pauses_live_feedback_and_loses_no_frame() {
    let _turn = iv_test_support::one_at_a_time().await;
    let dir = fresh_dir();
    let mut emotion = ServiceProcess::start("emotion", test_env(&dir.join("emotion"), &[])).await;
    let emotion_url = emotion.url();
    let t = spawn_in(
        &dir,
        &[
            ("STACK_SERVICES", "scoring,interview,worker,gateway"),
            ("EMOTION_GRPC_URL", &emotion_url),
            // Deferred frames wait for the service for up to ~3 minutes before dead-lettering.
            ("WORKER_RETRY_DELAY_MS", "1000"),
            ("WORKER_MAX_ATTEMPTS", "20"),
        ],
    )
    .await;
    let interview = format!("http://{}", t.stack.as_ref().unwrap().addresses.interview);
    let id = t.start_interview(true).await;
    let mut ws = ws_connect(&t.ws_url(&id), Some(&t.token)).await;
    let frames: Vec<Vec<u8>> = face_frames()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut sent = 0usize;
    let next_frame = |ws_frames: &mut usize| {
        let jpeg = &frames[*ws_frames % frames.len()];
        *ws_frames += 1;
        frame_message(jpeg, 1_000 + *ws_frames as i64 * 66)
    };

    // Live: each frame answered with its analysis.
    for _ in 0..5 {
        ws_send(&mut ws, next_frame(&mut sent)).await;
        ws_until(&mut ws, "emotion_update").await;
    }
    assert_eq!(breaker_state(&t, &interview, "emotion").await, Some(0.0));

    emotion.kill().await;

    // Down: told once, the socket stays open, and frames keep being accepted.
    ws_send(&mut ws, next_frame(&mut sent)).await;
    let status = ws_until(&mut ws, "status").await;
    assert_eq!(status["data"]["live_feedback"], "paused", "{status}");
    for _ in 0..10 {
        ws_send(&mut ws, next_frame(&mut sent)).await;
    }
    ws_send(&mut ws, json!({"type": "ping"})).await;
    let pong = ws_until(&mut ws, "pong").await;
    let answered_at = pong["data"]["timestamp"].as_i64().expect("a timestamp");
    assert!(
        (iv_contracts::now_millis() - answered_at).abs() < 10_000,
        "the socket still answers, now: {pong}"
    );
    // The frames are handled beside the socket's reading, so the last may still be on its way.
    let mut state = None;
    for _ in 0..50 {
        state = breaker_state(&t, &interview, "emotion").await;
        if state == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state,
        Some(2.0),
        "the breaker is open after consecutive failures"
    );
    // Open: a frame is refused by the breaker at once and queued (202), not held for a timeout.
    let started = Instant::now();
    let resp = t
        .http
        .send(
            http::Method::POST,
            &t.url(&format!("/api/v1/interviews/{id}/frames")),
            Some("image/jpeg"),
            frames[0].clone(),
            &[],
        )
        .await
        .expect("sent");
    sent += 1;
    let took = started.elapsed();
    assert_eq!(resp.status, 202, "{:?}", resp.body);
    assert_eq!(resp.json()["live_feedback"], "paused");
    assert!(
        took < Duration::from_millis(1500),
        "an open breaker answers without waiting for the 1.5 s attempt timeout; took {took:?}"
    );

    // Back: the breaker half-opens at its next probe, closes, and feedback resumes by itself.
    emotion.restart().await;
    let back = Instant::now();
    let mut resumed_status = false;
    let recovered = loop {
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "live feedback did not resume within 60 s of the service's return"
        );
        ws_send(&mut ws, next_frame(&mut sent)).await;
        if let Some(m) = ws_poll(&mut ws, Duration::from_millis(100)).await {
            if m["type"] == "status" && m["data"]["live_feedback"] == "active" {
                resumed_status = true;
            }
            if m["type"] == "emotion_update" {
                break back.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        resumed_status,
        "the candidate is told that feedback resumed"
    );
    println!(
        "emotion service back -> live feedback resumed in {} ms",
        recovered.as_millis()
    );
    // The gauge is per process, and this test process also holds the worker, whose own emotion
    // breaker may still be probing with its queued frames: wait until both have closed.
    let mut state = None;
    for _ in 0..100 {
        state = breaker_state(&t, &interview, "emotion").await;
        if state == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, Some(0.0), "the emotion breaker closes again");

    // Every frame sent, live or queued while the service was down, ends up analysed (once),
    // but for those sampled out while an analysis was slow. Frames still in flight when feedback
    // resumed may arrive after the others.
    let waited = Instant::now();
    loop {
        let summary = t.get(&format!("/api/v1/emotions/session/{id}")).await;
        let session = t.get(&format!("/api/v1/interviews/{id}")).await.json();
        let count = |field: &str| session[field].as_u64().unwrap();
        let expected = count("frames_received") - count("frames_skipped");
        let analysed = summary.json()["frames_analyzed"].as_u64().unwrap_or(0);
        if count("frames_received") == sent as u64 && analysed >= expected {
            assert_eq!(analysed, expected, "each frame analysed once: {session}");
            assert!(count("frames_skipped") * 4 < sent as u64, "{session}");
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "queued frames not all analysed: {analysed} of {expected}: {session}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(ws);
    emotion.kill().await;
    t.stop().await;
}

/// Stop the scoring service during the answers and across completion: answers are accepted (their
/// live analysis is skipped), completion is accepted, and the report is produced once it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoring_service_outage_delays_the_report_but_loses_no_answer() {
    let _turn = iv_test_support::one_at_a_time().await;
    let dir = fresh_dir();
    let mut scoring = ServiceProcess::start("scoring", test_env(&dir.join("scoring"), &[])).await;
    let scoring_url = scoring.url();
    let no_models = emotion_service::models_missing("face analysis is not needed in this test");
    let t = spawn_with(
        &dir,
        &[
            ("STACK_SERVICES", "emotion,interview,worker,gateway"),
            ("SCORING_GRPC_URL", &scoring_url),
            ("WORKER_RETRY_DELAY_MS", "1000"),
            ("WORKER_MAX_ATTEMPTS", "20"),
        ],
        Some(no_models),
    )
    .await;
    let interview = format!("http://{}", t.stack.as_ref().unwrap().addresses.interview);
    let id = t.start_interview(true).await;
    let mut ws = ws_connect(&t.ws_url(&id), Some(&t.token)).await;
    let answer = |ws_question: &Value| {
        json!({"type": "answer", "data": {
            "question_id": ws_question["data"]["id"],
            "transcript": "I designed the service with a queue, retries and idempotent consumers, \
                           measured it, and explained the trade-offs to the team.",
            "duration": 30.0,
        }})
    };
    let mut question = ws_until(&mut ws, "question").await;

    // First answer while scoring is up: analysed live.
    ws_send(&mut ws, answer(&question)).await;
    question = ws_until(&mut ws, "question").await;

    scoring.kill().await;
    // Down: the rest are accepted one after another.
    for _ in 0..5 {
        let started = Instant::now();
        ws_send(&mut ws, answer(&question)).await;
        let status = ws_until(&mut ws, "status").await;
        assert_ne!(status["data"]["state"], "completed");
        if status["data"]["answered"].as_u64() < Some(6) {
            question = ws_until(&mut ws, "question").await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an answer is accepted without waiting for scoring"
        );
    }
    assert_eq!(
        breaker_state(&t, &interview, "scoring").await,
        Some(2.0),
        "the scoring breaker is open"
    );
    ws_send(&mut ws, json!({"type": "complete"})).await;
    let done = ws_until(&mut ws, "status").await;
    assert_eq!(done["data"]["state"], "completed", "{done}");
    assert_eq!(done["data"]["report_ready"], false);

    tokio::time::sleep(Duration::from_secs(2)).await;
    scoring.restart().await;
    let back = Instant::now();
    let session = loop {
        let s = t.get(&format!("/api/v1/interviews/{id}")).await.json();
        if s["report_ready"] == true {
            break s;
        }
        assert!(
            back.elapsed() < Duration::from_secs(90),
            "no report within 90 s of scoring's return: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "scoring service back -> report ready in {} ms",
        back.elapsed().as_millis()
    );
    let answers = session["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 6, "no answer lost");
    assert!(answers[0]["analysis"]["relevance"].as_f64().is_some());
    assert!(
        answers[1..].iter().all(|a| a["analysis"].is_null()),
        "answers given while scoring was down had no live analysis"
    );
    let report = t
        .get(&format!(
            "/api/v1/scores/report?session_id={id}&format=json"
        ))
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.json()["answers"].as_array().unwrap().len(), 6);
    drop(ws);
    scoring.kill().await;
    t.stop().await;
}
