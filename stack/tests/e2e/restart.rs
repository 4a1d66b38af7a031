//! Stored data survives a restart of the whole stack.

use serde_json::json;

use iv_test_support::*;

#[tokio::test]
async fn sessions_and_answers_survive_a_restart() {
    let dir = fresh_dir();
    let t = spawn_in(&dir, &[]).await;
    let id = t.start_interview(true).await;
    for q in ["intro-1", "tech-1"] {
        let resp = t
            .post(
                &format!("/api/v1/interviews/{id}/answers"),
                &json!({"question_id": q, "transcript": iv_stack::sim::answer_for(q), "duration": 30.0}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    }
    let stack = t.stack.unwrap();
    stack.stop().await;

    let t = spawn_in(&dir, &[]).await;
    let session = t.get(&format!("/api/v1/interviews/{id}")).await.json();
    assert_eq!(session["state"], "in_progress");
    assert_eq!(session["answers"].as_array().unwrap().len(), 2);
    assert_eq!(session["current_question"]["id"], "tech-2");
    let done = t
        .post(&format!("/api/v1/interviews/{id}/complete"), &json!({}))
        .await;
    assert_eq!(done.status, 200);
    t.stop().await;
}
