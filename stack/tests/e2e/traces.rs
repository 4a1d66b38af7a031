//! Traces across processes: each service runs as a process of its own on the real RabbitMQ and
//! exports to an OTLP receiver in this test. One frame's journey and one interview's completion
//! -> report must each form one connected trace across the processes they cross.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use iv_stack::test_env;
use iv_test_support::otlp::{ReceivedSpan, Trace, TraceReceiver};
use iv_test_support::*;
use serde_json::json;

/// Waits until the trace of the first span `service`/`name` matching `find` is connected and
/// holds everything `complete` asks for, and returns it: the processes export in batches of
/// their own, so a trace arrives in pieces.
async fn trace_when(
    receiver: &TraceReceiver,
    (service, name): (&str, &str),
    find: impl Fn(&ReceivedSpan) -> bool,
    complete: impl Fn(&Trace) -> bool,
) -> Trace {
    let mut last = None;
    for _ in 0..200 {
        if let Some(trace) = receiver.trace_of(service, name, &find) {
            if trace.is_connected() && complete(&trace) {
                return trace;
            }
            last = Some(trace);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no complete trace from {service}/{name} within 20 s; the last seen:\n{}",
        last.map(|t| t.outline()).unwrap_or_else(|| "none".into())
    );
}

fn path_is(path: String) -> impl Fn(&ReceivedSpan) -> bool {
    move |s| s.attributes.get("path") == Some(&path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_and_a_completed_interview_each_form_one_trace_across_the_processes() {
    let receiver = TraceReceiver::start().await;
    let dir = fresh_dir();
    let namespace = format!("{}.", unique("traces-"));
    let env = |name: &str, extra: &[(&str, &str)]| -> HashMap<String, String> {
        let mut env = test_env(&dir.join(name), extra);
        for (k, v) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("AMQP_URL", &amqp_url()),
            ("AMQP_NAMESPACE", &namespace),
        ] {
            env.insert(k.into(), v.into());
        }
        env
    };
    let emotion = ServiceProcess::start("emotion", env("emotion", &[])).await;
    let scoring = ServiceProcess::start("scoring", env("scoring", &[])).await;
    let (emotion_url, scoring_url) = (emotion.url(), scoring.url());
    let downstream = [
        ("EMOTION_GRPC_URL", emotion_url.as_str()),
        ("SCORING_GRPC_URL", scoring_url.as_str()),
    ];
    let interview = ServiceProcess::start("interview", env("interview", &downstream)).await;
    let _worker = ServiceProcess::start("worker", env("worker", &downstream)).await;
    let interview_url = interview.url();
    let gateway_env = env(
        "gateway",
        &[
            ("INTERVIEW_URL", &interview_url),
            ("EMOTION_URL", &emotion_url),
            ("SCORING_URL", &scoring_url),
        ],
    );
    let token = iv_stack::tokens::mint(
        &gateway_env,
        &iv_stack::tokens::first_admin(),
        Duration::from_secs(600),
    )
    .unwrap();
    let gateway = ServiceProcess::start("gateway", gateway_env).await;
    let http = iv_platform::client::HttpClient::new().with_bearer(&token);
    let api = |path: &str| format!("{}{path}", gateway.url());

    let started = http
        .post_json(
            &api("/api/v1/interviews/start"),
            &json!({"user_id": "cand-1", "consent": true}),
        )
        .await
        .expect("sent");
    assert_eq!(
        started.status,
        201,
        "{}",
        String::from_utf8_lossy(&started.body)
    );
    let id = started.json()["id"].as_str().unwrap().to_string();

    // One frame: gateway -> interview service -> gRPC -> emotion service and its models.
    let frame = http
        .send(
            http::Method::POST,
            &api(&format!("/api/v1/interviews/{id}/frames")),
            Some("image/jpeg"),
            face_jpeg(),
            &[],
        )
        .await
        .expect("sent");
    assert_eq!(
        frame.status,
        200,
        "{}",
        String::from_utf8_lossy(&frame.body)
    );
    let frame_trace = trace_when(
        &receiver,
        ("interview-service", "http"),
        path_is("/api/v1/interviews/{id}/frames".into()),
        |t| {
            let names = t.names();
            ["gateway", "interview-service", "emotion-service"]
                .iter()
                .all(|s| t.services().contains(s))
                && ["decode", "model.detect", "model.mesh", "db.record_frame"]
                    .iter()
                    .all(|n| names.contains(n))
        },
    )
    .await;
    assert!(frame_trace.names().contains("grpc.call"));

    // A frame over the WebSocket is a trace of its own, from the interview service on (the
    // socket lives for the whole interview).
    let mut ws = ws_connect(
        &format!(
            "{}/ws/interviews/{id}",
            gateway.url().replacen("http", "ws", 1)
        ),
        Some(&token),
    )
    .await;
    ws_send(
        &mut ws,
        json!({"type": "frame", "data": {
            "image": base64::engine::general_purpose::STANDARD.encode(face_jpeg()),
            "timestamp": 5_000,
            "format": "jpeg",
        }}),
    )
    .await;
    ws_until(&mut ws, "emotion_update").await;
    let ws_trace = trace_when(
        &receiver,
        ("interview-service", "ws.frame"),
        |_| true,
        |t| t.services().contains("emotion-service") && t.names().contains("model.mesh"),
    )
    .await;
    let (roots, _) = ws_trace.roots_and_orphans();
    assert_eq!(
        (roots[0].service.as_str(), roots[0].name.as_str()),
        ("interview-service", "ws.frame"),
        "{}",
        ws_trace.outline()
    );
    drop(ws);

    // Completion -> report: gateway -> interview service -> outbox -> RabbitMQ -> worker ->
    // gRPC -> scoring service.
    let answer = http
        .post_json(
            &api(&format!("/api/v1/interviews/{id}/answers")),
            &json!({"question_id": "intro-1", "transcript": "I build payment systems in Rust and lead the on-call rotation for them.", "duration": 9.0}),
        )
        .await
        .expect("sent");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let completed = http
        .post_json(
            &api(&format!("/api/v1/interviews/{id}/complete")),
            &json!({}),
        )
        .await
        .expect("sent");
    assert_eq!(
        completed.status,
        200,
        "{}",
        String::from_utf8_lossy(&completed.body)
    );
    let report_trace = trace_when(
        &receiver,
        ("interview-service", "http"),
        path_is("/api/v1/interviews/{id}/complete".into()),
        |t| {
            let names = t.names();
            [
                "gateway",
                "interview-service",
                "worker-service",
                "scoring-service",
            ]
            .iter()
            .all(|s| t.services().contains(s))
                && ["publish", "consume", "db.save_score", "model.sentences"]
                    .iter()
                    .all(|n| names.contains(n))
                // The score's notification, back in the interview service.
                && t.spans
                    .iter()
                    .any(|s| s.name == "consume" && s.service == "interview-service")
        },
    )
    .await;
    let consume = report_trace
        .spans
        .iter()
        .find(|s| s.name == "consume" && s.service == "worker-service")
        .expect("the worker consumed the completion");
    assert_eq!(
        consume.attributes.get("routing_key").map(String::as_str),
        Some("interview.completed.v1"),
        "{}",
        report_trace.outline()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
