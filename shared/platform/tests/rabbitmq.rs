//! The event bus against the machine's real RabbitMQ: confirmed publishing, consuming, delayed
//! retries and dead-lettering with the reason attached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use iv_contracts::events::{Event, InterviewCompleted};
use iv_platform::CancellationToken;
use iv_platform::bus::{DeadLetter, EventBus, HandlerError, Subscription, handler};

fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn bus() -> EventBus {
    let namespace = format!("test-{}.", uuid::Uuid::new_v4().simple());
    EventBus::connect(Some(&amqp_url()), &namespace)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "these tests need RabbitMQ at {} (scripts/services.sh starts it): {e}",
                amqp_url()
            )
        })
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out after 10 s waiting for {what}");
}

/// Polls the public dead-letter listing until `n` are there (10 s at most).
async fn dead_letters_eventually(bus: &EventBus, queue: &str, n: usize) -> Vec<DeadLetter> {
    for _ in 0..400 {
        let listed = bus.dead_letters(queue, 100).await.unwrap();
        if listed.len() >= n {
            assert_eq!(listed.len(), n, "no more than expected: {listed:?}");
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out after 10 s waiting for {n} dead letters in {queue}");
}

#[tokio::test]
async fn a_published_event_reaches_a_bound_queue_once() {
    let bus = bus().await;
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let cancel = CancellationToken::new();
    bus.subscribe(
        Subscription::new("completed", &[InterviewCompleted::ROUTING_KEY]),
        handler(move |d| {
            let g = g.clone();
            async move {
                let e: InterviewCompleted = d.decode()?;
                g.lock().unwrap().push(e.session_id);
                Ok(())
            }
        }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");
    for i in 0..5 {
        let event = InterviewCompleted {
            session_id: format!("s{i}"),
            ..Default::default()
        };
        bus.publish(&event).await.expect("confirmed");
    }
    eventually("five events", || got.lock().unwrap().len() == 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        *got.lock().unwrap(),
        ["s0", "s1", "s2", "s3", "s4"],
        "once each, in order"
    );
    cancel.cancel();
}

#[tokio::test]
async fn transient_failures_are_retried_with_a_delay_and_then_dead_lettered_with_the_reason() {
    let bus = bus().await;
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let cancel = CancellationToken::new();
    let mut sub = Subscription::new("flaky", &["interview.#"]);
    sub.max_attempts = 3;
    sub.retry_delay = Duration::from_millis(100);
    bus.subscribe(
        sub,
        handler(move |d| {
            let a = a.clone();
            async move {
                assert_eq!(
                    d.attempt,
                    a.fetch_add(1, Ordering::SeqCst) + 1,
                    "attempts are numbered"
                );
                Err(HandlerError::transient("scoring is down"))
            }
        }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");
    bus.publish(&InterviewCompleted {
        session_id: "s".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    eventually("three attempts", || attempts.load(Ordering::SeqCst) == 3).await;
    let dead = dead_letters_eventually(&bus, "flaky", 1).await;
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].routing_key, InterviewCompleted::ROUTING_KEY);
    assert_eq!(dead[0].reason, "transient failure: scoring is down");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "no attempts after the last"
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_malformed_message_is_dead_lettered_at_once_and_the_queue_keeps_flowing() {
    let bus = bus().await;
    let handled = Arc::new(AtomicU32::new(0));
    let h = handled.clone();
    let cancel = CancellationToken::new();
    bus.subscribe(
        Subscription::new("poison", &[InterviewCompleted::ROUTING_KEY]),
        handler(move |d| {
            let h = h.clone();
            async move {
                let _: InterviewCompleted = d.decode()?;
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");
    bus.publish_raw(
        InterviewCompleted::ROUTING_KEY,
        "poison-1",
        b"\xff\xff\xff not protobuf",
    )
    .await
    .unwrap();
    bus.publish(&InterviewCompleted {
        session_id: "after".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    eventually("the good message after the poison one", || {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;
    let dead = dead_letters_eventually(&bus, "poison", 1).await;
    assert_eq!(dead[0].message_id, "poison-1");
    assert!(
        dead[0]
            .reason
            .starts_with("permanent failure: undecodable interview.completed.v1: "),
        "{dead:?}"
    );
    cancel.cancel();
}

/// A message dead-lettered while its cause lasted is listed with the reason, left in place by the
/// listing, and processed once replayed after the cause is fixed.
#[tokio::test]
async fn dead_letters_are_listed_and_replayed_once_the_cause_is_fixed() {
    let bus = bus().await;
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handled = Arc::new(AtomicU32::new(0));
    let (f, h) = (fixed.clone(), handled.clone());
    let cancel = CancellationToken::new();
    let mut sub = Subscription::new("replay", &[InterviewCompleted::ROUTING_KEY]);
    sub.max_attempts = 2;
    sub.retry_delay = Duration::from_millis(50);
    bus.subscribe(
        sub,
        handler(move |d| {
            let (f, h) = (f.clone(), h.clone());
            async move {
                let e: InterviewCompleted = d.decode()?;
                if !f.load(Ordering::SeqCst) {
                    return Err(HandlerError::transient(format!(
                        "scoring unavailable for {}",
                        e.session_id
                    )));
                }
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");
    for i in 0..3 {
        bus.publish(&InterviewCompleted {
            session_id: format!("s{i}"),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let listed = dead_letters_eventually(&bus, "replay", 3).await;
    assert!(listed.iter().all(|d| d.attempts == 2), "{listed:?}");
    assert!(
        listed[0].reason.contains("scoring unavailable for s0"),
        "{listed:?}"
    );
    assert_eq!(
        bus.dead_letters("replay", 10).await.unwrap().len(),
        3,
        "listing leaves them in place"
    );

    fixed.store(true, Ordering::SeqCst);
    assert_eq!(bus.replay_dead_letters("replay", 2).await.unwrap(), 2);
    eventually("two replayed messages handled", || {
        handled.load(Ordering::SeqCst) == 2
    })
    .await;
    let left = bus.dead_letters("replay", 10).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].reason.contains("for s2"),
        "the newest stays: {left:?}"
    );
    assert_eq!(bus.replay_dead_letters("replay", 10).await.unwrap(), 1);
    eventually("the last one handled", || {
        handled.load(Ordering::SeqCst) == 3
    })
    .await;
    assert!(bus.dead_letters("replay", 10).await.unwrap().is_empty());
    cancel.cancel();
}

/// A subscription for what must not outlive its use (frames): its dead letters, and messages
/// nobody takes, are discarded by the broker once the TTL has passed.
#[tokio::test]
async fn messages_with_a_ttl_leave_the_dead_letters_when_it_passes() {
    let bus = bus().await;
    let cancel = CancellationToken::new();
    let mut sub = Subscription::new("frames", &[InterviewCompleted::ROUTING_KEY]);
    sub.message_ttl = Some(Duration::from_millis(1500));
    bus.subscribe(
        sub,
        handler(|_| async { Err(HandlerError::permanent("the frame is refused")) }),
        cancel.clone(),
    )
    .await
    .expect("the queue is declared");
    bus.publish(&InterviewCompleted {
        session_id: "s-ttl".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dead = dead_letters_eventually(&bus, "frames", 1).await;
    assert_eq!(dead.len(), 1);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        bus.dead_letters("frames", 100).await.unwrap().is_empty(),
        "expired dead letters are gone"
    );
    cancel.cancel();
}
