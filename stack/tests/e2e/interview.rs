//! A whole interview through the gateway, as the candidate simulator plays it.

use std::time::Duration;

use iv_stack::sim::{SimOptions, SimResult, run};
use serde_json::Value;

use iv_test_support::*;

async fn play(t: &TestStack) -> SimResult {
    play_at(t, 25.0).await
}

/// The interview played at `fps` frames a second.
async fn play_at(t: &TestStack, fps: f32) -> SimResult {
    let mut opts = SimOptions::new(t.gateway.clone(), face_frames());
    opts.token = Some(t.token.clone());
    opts.fps = fps;
    opts.frames_per_answer = 4;
    opts.report_timeout = Duration::from_secs(60);
    run(&opts).await.expect("the interview plays to the end")
}

fn component(r: &SimResult, name: &str) -> Value {
    r.score["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// What every complete run must show, whatever the storage, broker and face models.
async fn assert_complete_interview(t: &TestStack, r: &SimResult) {
    let questions: Vec<&str> = r
        .of_type("question")
        .iter()
        .map(|q| q["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        [
            "intro-1", "tech-1", "tech-2", "tech-3", "behav-1", "behav-2"
        ],
        "questions in order"
    );
    assert_eq!(r.answers_sent, 6);
    assert!(
        r.of_type("error").is_empty(),
        "no errors: {:#?}",
        r.of_type("error")
    );
    let last = r.of_type("status").last().cloned().cloned().unwrap();
    assert_eq!(last["data"]["state"], "completed");
    assert_eq!(last["data"]["report_ready"], true);
    let technical = component(r, "technical");
    assert_eq!(technical["sufficient_data"], true);
    assert!(technical["score"].as_f64().unwrap() > 50.0, "{technical}");
    assert!(component(r, "communication")["score"].as_f64().unwrap() > 50.0);
    assert!(r.score["overall_score"].as_f64().is_some());
    assert_eq!(r.report["session_id"], r.session_id.as_str());
    assert_eq!(r.report["answers"].as_array().unwrap().len(), 6);
    assert!(r.pdf_bytes > 1000);
    let session = t
        .get(&format!("/api/v1/interviews/{}", r.session_id))
        .await
        .json();
    assert_eq!(session["state"], "completed");
    assert_eq!(session["report_ready"], true);
    assert_eq!(
        session["frames_received"].as_u64().unwrap() as usize,
        r.frames_sent
    );
    let listed = t
        .get("/api/v1/interviews?state=completed&sort=score&q=sim")
        .await
        .json();
    let row = listed["interviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == r.session_id.as_str())
        .unwrap_or_else(|| panic!("the completed interview is listed: {listed}"));
    assert_eq!(row["answered"], 6);
    assert_eq!(row["report_ready"], true);
    assert!(
        (row["overall_score"].as_f64().unwrap() - r.score["overall_score"].as_f64().unwrap()).abs()
            < 0.01,
        "{row}"
    );
    let answers = session["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 6);
    assert!(
        answers
            .iter()
            .all(|a| a["analysis"]["relevance"].as_f64().is_some()),
        "every answer analysed live"
    );
}

/// Live feedback from the real face models: every frame analysed, the face seen, the expression
/// read, and engagement scored from it.
async fn assert_live_feedback(t: &TestStack, r: &SimResult) {
    assert_complete_interview(t, r).await;
    let updates = r.of_type("emotion_update");
    assert_eq!(updates.len(), r.frames_sent, "one emotion_update per frame");
    assert!(
        updates
            .iter()
            .all(|u| u["data"]["face_detected"] == true && u["data"]["face_count"] == 1)
    );
    assert!(
        updates
            .iter()
            .all(|u| !u["data"]["emotion"].as_str().unwrap().is_empty())
    );
    assert!(
        updates.iter().any(|u| u["data"]["emotion"] == "happy"),
        "the candidate smiles in the clip"
    );
    assert!(
        r.of_type("status")
            .iter()
            .all(|s| s["data"]["live_feedback"] == "active")
    );
    let engagement = component(r, "engagement");
    assert_eq!(engagement["sufficient_data"], true, "{engagement}");
    assert!(engagement["score"].as_f64().unwrap() > 50.0, "{engagement}");
    assert_eq!(
        r.emotions["frames_analyzed"].as_u64().unwrap() as usize,
        r.frames_sent
    );
    assert!(!r.emotions["dominant_emotion"].as_str().unwrap().is_empty());
    assert!(r.report["engagement"]["mean_attention"].as_f64().unwrap() > 0.5);
}

/// Degraded mode: the emotion service answers but cannot analyse. The candidate is told once that
/// live feedback is paused (not once per frame), every frame is queued for the worker, and the
/// report says engagement has insufficient data instead of inventing a number.
async fn assert_degraded_interview(t: &TestStack, r: &SimResult) {
    assert_complete_interview(t, r).await;
    let paused = r
        .of_type("status")
        .iter()
        .filter(|s| {
            s["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("paused"))
        })
        .count();
    assert_eq!(paused, 1, "one paused notice: {:#?}", r.messages);
    assert!(r.of_type("emotion_update").is_empty());
    let engagement = component(r, "engagement");
    assert_eq!(
        engagement["sufficient_data"], false,
        "no frames were analysed: {engagement}"
    );
    assert!(
        engagement["reason"]
            .as_str()
            .unwrap()
            .starts_with("Insufficient data")
    );
    assert_eq!(r.emotions["frames_analyzed"], 0);
    let session = t
        .get(&format!("/api/v1/interviews/{}", r.session_id))
        .await
        .json();
    let count = |field: &str| session[field].as_u64().unwrap() as usize;
    // The simulator does not wait for replies while feedback is paused: frames that arrive
    // while the first failure is still being retried are sampled out, as on any slow answer.
    // Once the pause is known none is lost.
    assert_eq!(
        count("frames_deferred") + count("frames_skipped"),
        r.frames_sent,
        "{session}"
    );
    // How long the first failure takes to be known depends on the machine's load; what must
    // hold on any machine is that no frame sent after it is skipped.
    let before_pause = r.frames_before_pause.expect("the candidate was told");
    assert!(
        count("frames_skipped") <= before_pause && before_pause < r.frames_sent,
        "only frames sent before the pause was known ({before_pause}) are skipped: {session}"
    );
}

#[tokio::test]
async fn a_candidate_plays_a_whole_interview_through_the_gateway_with_live_face_analysis() {
    let t = spawn_stack(&[]).await;
    let r = play(&t).await;
    assert_live_feedback(&t, &r).await;
    t.stop().await;
}

#[tokio::test]
async fn without_face_analysis_the_interview_runs_degraded_and_says_so_once() {
    let t = spawn_stack_without_face_models().await;
    // At a candidate's real rate: while paused each frame is stored for the worker, and the
    // backlog allowed (about 12 s at 5 frames/s) is sized for that rate, not for 25.
    let r = play_at(&t, 5.0).await;
    assert_degraded_interview(&t, &r).await;
    t.stop().await;
}

#[tokio::test]
async fn the_same_interview_runs_on_rabbitmq_and_postgresql() {
    let t = spawn_stack_on_rabbitmq_and_postgres().await;
    assert_eq!(t.stack.as_ref().unwrap().bus.kind(), "rabbitmq");
    let r = play(&t).await;
    assert_live_feedback(&t, &r).await;
    t.stop().await;
}
