//! A whole interview through the gateway, as the candidate simulator plays it.

use std::time::Duration;

use iv_stack::sim::{SimOptions, SimResult, run};

use crate::helpers::*;

async fn play(t: &TestStack) -> SimResult {
    let mut opts = SimOptions::new(t.gateway.clone(), face_frames());
    opts.fps = 25.0;
    opts.frames_per_answer = 3;
    opts.report_timeout = Duration::from_secs(60);
    run(&opts).await.expect("the interview plays to the end")
}

/// What every complete run must show, whatever the storage and broker.
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

    // Without face models the emotion service is unavailable: the candidate is told once that live
    // feedback is paused (not once per frame), and every frame is queued for the worker.
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
    assert!(
        r.of_type("error").is_empty(),
        "no errors: {:#?}",
        r.of_type("error")
    );
    let last = r.of_type("status").last().cloned().cloned().unwrap();
    assert_eq!(last["data"]["state"], "completed");
    assert_eq!(last["data"]["report_ready"], true);

    let components = r.score["components"].as_array().unwrap();
    let by_name = |n: &str| components.iter().find(|c| c["name"] == n).unwrap().clone();
    let technical = by_name("technical");
    assert_eq!(technical["sufficient_data"], true);
    assert!(technical["score"].as_f64().unwrap() > 50.0, "{technical}");
    assert!(by_name("communication")["score"].as_f64().unwrap() > 50.0);
    let engagement = by_name("engagement");
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
    assert!(r.score["overall_score"].as_f64().is_some());

    assert_eq!(r.report["session_id"], r.session_id.as_str());
    assert_eq!(r.report["answers"].as_array().unwrap().len(), 6);
    assert!(r.pdf_bytes > 1000);
    assert_eq!(r.emotions["frames_analyzed"], 0);

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
    assert_eq!(
        session["frames_deferred"].as_u64().unwrap() as usize,
        r.frames_sent
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

#[tokio::test]
async fn a_candidate_plays_a_whole_interview_through_the_gateway_on_embedded_defaults() {
    let t = spawn_stack(&[]).await;
    let r = play(&t).await;
    assert_complete_interview(&t, &r).await;
    t.stop().await;
}

#[tokio::test]
async fn the_same_interview_runs_on_rabbitmq_and_postgresql() {
    let t = spawn_stack_on_rabbitmq_and_postgres().await;
    assert_eq!(t.stack.as_ref().unwrap().bus.kind(), "rabbitmq");
    let r = play(&t).await;
    assert_complete_interview(&t, &r).await;
    t.stop().await;
}
