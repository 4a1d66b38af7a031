//! The worker's dead-letter operations, over HTTP.

use std::time::Duration;

use iv_contracts::events::{Event, InterviewCompleted};

use iv_test_support::*;

#[tokio::test]
async fn dead_letters_are_listed_with_their_reason_and_replayed_by_an_operator() {
    let t = spawn_stack(&[]).await;
    let stack = t.stack.as_ref().unwrap();
    let worker = format!("http://{}", stack.addresses.worker);
    let list = format!("{worker}/ops/dead-letters?queue=worker.interview-completed");
    // What `stack mint-token --service ops` prints.
    let assertion = iv_stack::tokens::service_assertion(&t.env, "ops").unwrap();
    let auth = [("x-iv-identity", assertion.as_str())];
    let get = |url: String| {
        let http = t.http.clone();
        async move {
            http.send(http::Method::GET, &url, None, Vec::new(), &auth)
                .await
                .unwrap()
        }
    };

    let denied = t.http.get(&list).await.unwrap();
    assert_eq!(denied.status, 401);
    assert!(denied.json()["error"].is_string(), "{:?}", denied.body);
    let forged = t
        .http
        .send(
            http::Method::GET,
            &list,
            None,
            Vec::new(),
            &[("x-iv-identity", "made.up.assertion")],
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 401);
    let unknown = get(format!("{worker}/ops/dead-letters?queue=nope")).await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["error"]
            .as_str()
            .unwrap()
            .contains("worker.interview-completed")
    );

    // A poison event: dead-lettered at once, with the reason.
    stack
        .bus
        .publish_raw(
            InterviewCompleted::ROUTING_KEY,
            "poison-1",
            b"\xff not protobuf",
        )
        .await
        .unwrap();
    let mut listed = serde_json::Value::Null;
    for _ in 0..100 {
        listed = get(list.clone()).await.json();
        if listed["dead_letters"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["message_id"], "poison-1");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("undecodable"),
        "{listed}"
    );

    // Replayed: handed back to the consumer, which dead-letters it again (still poison).
    let replay = t
        .http
        .send(
            http::Method::POST,
            &format!("{worker}/ops/dead-letters/replay?queue=worker.interview-completed"),
            None,
            Vec::new(),
            &auth,
        )
        .await
        .unwrap();
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.json()["replayed"], 1);
    let dead_lettered_twice = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("events_consumed_total")
                && l.contains("queue=\"worker.interview-completed\"")
                && l.contains("outcome=\"dead_lettered\"")
                && l.ends_with(" 2")
        })
    };
    let mut metrics = String::new();
    for _ in 0..100 {
        let m = t.http.get(&format!("{worker}/metrics")).await.unwrap();
        metrics = String::from_utf8_lossy(&m.body).into_owned();
        if dead_lettered_twice(&metrics) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dead_lettered_twice(&metrics),
        "consumed again after the replay:\n{metrics}"
    );
    let again = get(list.clone()).await.json();
    assert_eq!(
        again["dead_letters"].as_array().unwrap().len(),
        1,
        "{again}"
    );
    assert_eq!(again["dead_letters"][0]["message_id"], "poison-1");
    t.stop().await;
}
