//! Erasing an interview through the gateway, and waiting for every service to report.

use std::time::Duration;

use iv_platform::client::HttpClient;
use serde_json::Value;

use crate::TestStack;
use crate::storage::rabbit_queue_depths;

/// What is kept by design after an erasure, holding ids, subjects and counts only: the
/// erasure's receipts and tombstones, and the audit trail.
pub const RECEIPTS: &[&str] = &[
    "erased_sessions",
    "erasures",
    "erasure_reports",
    "audit_log",
];

/// Asks for the interview's erasure as `http`'s caller: the status and the JSON body.
pub async fn delete(http: &HttpClient, t: &TestStack, id: &str) -> (u16, Value) {
    let resp = http
        .send(
            http::Method::DELETE,
            &t.url(&format!("/api/v1/interviews/{id}")),
            None,
            Vec::new(),
            &[],
        )
        .await
        .expect("sent");
    let body = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status.as_u16(), body)
}

/// The receipt once every service has reported, or panics after `within`.
pub async fn completed_receipt(t: &TestStack, id: &str, within: Duration) -> Value {
    let path = format!("/api/v1/interviews/{id}/erasure");
    let started = std::time::Instant::now();
    loop {
        let resp = t.get(&path).await;
        let receipt = resp.json();
        if resp.status == 200 && !receipt["completed_at"].is_null() {
            println!(
                "erasure complete {} ms after it was asked for",
                started.elapsed().as_millis()
            );
            return receipt;
        }
        assert!(
            started.elapsed() < within,
            "not every service reported its erasure within {within:?}: {receipt:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No queue holds a message about the interview: on RabbitMQ every queue of the test's
/// namespace (with retries and dead letters) drains; on the in-process bus no dead letter
/// mentions it.
pub async fn assert_no_message_about(t: &TestStack, id: &str) {
    let bus = &t.stack.as_ref().expect("running").bus;
    if let Some(namespace) = t.env.get("AMQP_NAMESPACE") {
        let mut depths = Vec::new();
        crate::eventually(Duration::from_secs(60), "every queue drains", || {
            depths = rabbit_queue_depths(namespace);
            let drained = !depths.is_empty() && depths.iter().all(|(_, n)| *n == 0);
            async move { drained }
        })
        .await;
    }
    for queue in worker_service::ops::QUEUES {
        let letters = bus.dead_letters(queue, 1000).await.expect("dead letters");
        let about: Vec<_> = letters
            .iter()
            .filter(|d| String::from_utf8_lossy(&d.payload).contains(id))
            .collect();
        assert!(about.is_empty(), "dead letters of {queue}: {about:?}");
    }
}
