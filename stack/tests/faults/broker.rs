//! The real RabbitMQ restarted under load, a worker killed before it acknowledges, interviews
//! completed while the broker is down.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iv_contracts::events::{Event, FrameCaptured};
use iv_platform::CancellationToken;
use iv_platform::bus::{EventBus, Subscription, handler};
use iv_platform::{db, outbox};
use iv_stack::test_env;
use serde_json::json;

use iv_test_support::ServiceProcess;
use iv_test_support::machine::{rabbitmqctl, require_rabbitmqctl};
use iv_test_support::*;

/// Stops the broker's application (connections drop, durable queues and persistent messages
/// stay on disk); starts it again when dropped, whatever the test did.
struct BrokerDown;

impl BrokerDown {
    async fn begin() -> Self {
        tokio::task::spawn_blocking(|| {
            require_rabbitmqctl();
            rabbitmqctl(&["stop_app"])
        })
        .await
        .unwrap();
        BrokerDown
    }

    async fn end(self) {
        tokio::task::spawn_blocking(|| drop(self)).await.unwrap();
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

fn namespace() -> String {
    format!("{}.", unique("fault-"))
}

/// The broker's view of a namespace's queues (messages ready, unacknowledged, consumers), for a
/// failure message: whether what is missing waits in a queue or never reached one.
fn queues_of(namespace: &str) -> String {
    std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "--quiet",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with(namespace))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|e| format!("rabbitmqctl: {e}"))
}

/// A numbered stream of events goes through the outbox while the broker restarts: every one
/// arrives (zero lost), in order of first arrival; duplicates are counted and harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numbered_event_stream_loses_nothing_across_a_broker_restart() {
    let _turn = iv_test_support::one_at_a_time().await;
    const N: i64 = 2000;
    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let pool = db::connect(&db::sqlite_url(dir.to_str().unwrap(), "outbox"))
        .await
        .unwrap();
    db::apply_schema(&pool, outbox::SCHEMA).await.unwrap();
    let namespace = namespace();
    let bus = EventBus::connect(Some(&amqp_url()), &namespace)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let relay = outbox::Relay::new(pool.clone(), bus.clone());
    relay
        .clone()
        .spawn(Duration::from_millis(200), cancel.clone());

    let received: Arc<Mutex<Vec<i64>>> = Arc::default();
    let r = received.clone();
    bus.subscribe(
        Subscription::new("stream", &[FrameCaptured::ROUTING_KEY]),
        handler(move |d| {
            let r = r.clone();
            async move {
                let e: FrameCaptured = d.decode()?;
                r.lock().unwrap().push(e.frame_number);
                Ok(())
            }
        }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");

    let producer = {
        let (pool, relay) = (pool.clone(), relay.clone());
        tokio::spawn(async move {
            for i in 1..=N {
                let mut tx = pool.begin().await.unwrap();
                let e = FrameCaptured {
                    session_id: "stream".into(),
                    frame_number: i,
                    ..Default::default()
                };
                outbox::enqueue(&mut tx, &e).await.unwrap();
                tx.commit().await.unwrap();
                relay.notify();
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    // Restart the broker once a quarter of the stream is through.
    eventually(
        Duration::from_secs(60),
        "a quarter of the stream",
        || async { received.lock().unwrap().len() as i64 >= N / 4 },
    )
    .await;
    let down = BrokerDown::begin().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    down.end().await;
    producer.await.unwrap();

    let started = Instant::now();
    loop {
        let distinct: BTreeSet<i64> = received.lock().unwrap().iter().copied().collect();
        if distinct.len() as i64 == N && relay.pending().await.unwrap() == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "after 120 s: {} of {N} received, {} still in the outbox; queues (ready, \
             unacknowledged, consumers): {}",
            distinct.len(),
            relay.pending().await.unwrap(),
            queues_of(&namespace)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = received.lock().unwrap().clone();
    let mut seen = BTreeSet::new();
    let firsts: Vec<i64> = got.iter().copied().filter(|n| seen.insert(*n)).collect();
    let lost = N - seen.len() as i64;
    let duplicates = got.len() - seen.len();
    println!(
        "broker restart: sent {N}, received {}, distinct {}, duplicates {duplicates}, lost {lost}",
        got.len(),
        seen.len()
    );
    assert_eq!(lost, 0);
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "events first arrive in the order they were written"
    );
    cancel.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Answers every question of a started interview over REST.
async fn answer_all(t: &TestStack, id: &str) {
    for _ in 0..6 {
        let s = t.get(&format!("/api/v1/interviews/{id}")).await.json();
        let q = s["current_question"]["id"].clone();
        let resp = t
            .post(
                &format!("/api/v1/interviews/{id}/answers"),
                &json!({"question_id": q, "transcript": "I built it with queues, retries and \
                        idempotent consumers, and I measured it.", "duration": 20.0}),
            )
            .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
    }
}

async fn wait_report(t: &TestStack, id: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let s = t.get(&format!("/api/v1/interviews/{id}")).await.json();
        if s["report_ready"] == true {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "no report within {within:?}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A stack on RabbitMQ without a worker (the test runs workers as processes), no face models.
async fn stack_without_worker(namespace: &str) -> TestStack {
    let no_models = emotion_service::models_missing("face analysis is not needed in this test");
    spawn_with(
        &fresh_dir(),
        &[
            ("STACK_SERVICES", "scoring,emotion,interview,gateway"),
            ("AMQP_URL", &amqp_url()),
            ("AMQP_NAMESPACE", namespace),
        ],
        Some(no_models),
    )
    .await
}

fn worker_env(
    t: &TestStack,
    namespace: &str,
    scoring_url: &str,
) -> std::collections::HashMap<String, String> {
    let a = t.stack.as_ref().unwrap().addresses;
    test_env(
        &t.data_dir.join("worker"),
        &[
            ("AMQP_URL", &amqp_url()),
            ("AMQP_NAMESPACE", namespace),
            ("EMOTION_GRPC_URL", &format!("http://{}", a.emotion)),
            ("SCORING_GRPC_URL", scoring_url),
        ],
    )
}

/// kill -9 a worker in the middle of scoring, before it acknowledges: RabbitMQ hands the event
/// to the next worker, and the interview is scored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_it_acks_leaves_the_event_to_the_next_one() {
    let _turn = iv_test_support::one_at_a_time().await;
    let ns = namespace();
    let t = stack_without_worker(&ns).await;
    // A scoring address that accepts connections and never answers: the first worker hangs
    // there, mid-job, with the event unacknowledged.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let mut first = ServiceProcess::start("worker", worker_env(&t, &ns, &hole_url)).await;

    let id = t.start_interview(true).await;
    answer_all(&t, &id).await;
    let done = t
        .post(&format!("/api/v1/interviews/{id}/complete"), &json!({}))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let (_held, _) = tokio::time::timeout(Duration::from_secs(30), hole.accept())
        .await
        .expect("the first worker took the event and called scoring")
        .unwrap();
    first.kill().await;

    let scoring = format!("http://{}", t.stack.as_ref().unwrap().addresses.scoring);
    let second = ServiceProcess::start("worker", worker_env(&t, &ns, &scoring)).await;
    let took = wait_report(&t, &id, Duration::from_secs(60)).await;
    println!(
        "worker killed before ack -> report by the next worker in {} ms",
        took.as_millis()
    );
    // The worker counts a score once its event is published, so the interview service may
    // mark the report ready a moment before the count shows.
    let scored = || async {
        let metrics = t
            .http
            .get(&format!("{}/metrics", second.url()))
            .await
            .unwrap();
        String::from_utf8_lossy(&metrics.body)
            .lines()
            .filter(|l| {
                l.starts_with("interviews_scored_total") || l.starts_with("events_consumed_total")
            })
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let scored_once = || async {
        scored()
            .await
            .iter()
            .any(|l| l == "interviews_scored_total 1")
    };
    if tokio::time::timeout(Duration::from_secs(10), async {
        while !scored_once().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_err()
    {
        panic!(
            "not scored exactly once by the second worker: {:?}",
            scored().await
        );
    }
    let score = t.get(&format!("/api/v1/scores/session/{id}")).await;
    assert_eq!(score.status, 200, "{:?}", score.body);
    drop(second);
    t.stop().await;
}

/// Interviews completed while the broker is down: the interview service keeps serving, the
/// events wait in its outbox, and the reports are produced after the broker returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interviews_completed_while_the_broker_is_down_are_reported_after_it_returns() {
    let _turn = iv_test_support::one_at_a_time().await;
    let ns = namespace();
    let t = stack_without_worker(&ns).await;
    let scoring = format!("http://{}", t.stack.as_ref().unwrap().addresses.scoring);
    let worker = ServiceProcess::start("worker", worker_env(&t, &ns, &scoring)).await;
    let ids = [t.start_interview(true).await, t.start_interview(true).await];
    for id in &ids {
        answer_all(&t, id).await;
    }

    let down = BrokerDown::begin().await;
    for id in &ids {
        let done = t
            .post(&format!("/api/v1/interviews/{id}/complete"), &json!({}))
            .await;
        assert_eq!(
            done.status, 200,
            "completing needs no broker: {:?}",
            done.body
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in &ids {
        let s = t.get(&format!("/api/v1/interviews/{id}")).await.json();
        assert_eq!(s["state"], "completed");
        assert_eq!(s["report_ready"], false);
    }
    down.end().await;
    let back = Instant::now();
    for id in &ids {
        wait_report(&t, id, Duration::from_secs(90)).await;
    }
    println!(
        "broker back -> both reports ready in {} ms",
        back.elapsed().as_millis()
    );
    drop(worker);
    t.stop().await;
}
