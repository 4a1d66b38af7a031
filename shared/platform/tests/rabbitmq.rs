//! The event bus against the machine's real RabbitMQ: confirmed publishing, consuming, delayed
//! retries and dead-lettering with the reason attached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use iv_contracts::events::{Event, InterviewCompleted};
use iv_platform::CancellationToken;
use iv_platform::bus::{EventBus, HandlerError, Subscription, handler};

fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn bus() -> EventBus {
    let namespace = format!("test-{}.", uuid::Uuid::new_v4().simple());
    EventBus::connect(Some(&amqp_url()), &namespace)
        .await
        .expect("RabbitMQ is reachable")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
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
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the consumer declares its queue
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
                Err(HandlerError::Transient("scoring is down".into()))
            }
        }),
        cancel.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    bus.publish(&InterviewCompleted {
        session_id: "s".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    eventually("three attempts", || attempts.load(Ordering::SeqCst) == 3).await;
    let EventBus::Rabbit(rabbit) = &bus else {
        panic!("RabbitMQ bus expected")
    };
    let mut dead = 0;
    for _ in 0..100 {
        dead = rabbit.dead_letter_count("flaky").await.unwrap();
        if dead == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(dead, 1, "the message is dead-lettered, not dropped");
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
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    let EventBus::Rabbit(rabbit) = &bus else {
        panic!("RabbitMQ bus expected")
    };
    assert_eq!(rabbit.dead_letter_count("poison").await.unwrap(), 1);
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
                    return Err(HandlerError::Transient(format!(
                        "scoring unavailable for {}",
                        e.session_id
                    )));
                }
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
        cancel.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        bus.publish(&InterviewCompleted {
            session_id: format!("s{i}"),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let EventBus::Rabbit(rabbit) = &bus else {
        panic!("RabbitMQ bus expected")
    };
    for _ in 0..200 {
        if rabbit.dead_letter_count("replay").await.unwrap() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let listed = bus.dead_letters("replay", 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|d| d.attempts == 2), "{listed:?}");
    assert!(
        listed[0].reason.contains("scoring unavailable for s0"),
        "{listed:?}"
    );
    assert_eq!(
        rabbit.dead_letter_count("replay").await.unwrap(),
        3,
        "listing leaves them in place"
    );

    fixed.store(true, Ordering::SeqCst);
    assert_eq!(bus.replay_dead_letters("replay", 2).await.unwrap(), 2);
    eventually("two replayed messages handled", || {
        handled.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(rabbit.dead_letter_count("replay").await.unwrap(), 1);
    assert_eq!(bus.replay_dead_letters("replay", 10).await.unwrap(), 1);
    eventually("the last one handled", || {
        handled.load(Ordering::SeqCst) == 3
    })
    .await;
    assert!(bus.dead_letters("replay", 10).await.unwrap().is_empty());
    cancel.cancel();
}
