//! The socket loop driven through channels with a fake emotion service that can be held, busy
//! or down: what the candidate receives, and what the emotion service is asked.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::testing::{Answer, Fixture, png};

/// A socket on `f`'s app: what the client sends, and what it receives.
struct Client {
    tx: mpsc::UnboundedSender<Incoming>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn open(f: &Fixture, session_id: &str) -> Self {
        Self::open_with(f, session_id, SocketLimits::default()).await
    }

    async fn open_with(f: &Fixture, session_id: &str, limits: SocketLimits) -> Self {
        let (tx, in_rx) = mpsc::unbounded_channel::<Incoming>();
        let (out_tx, rx) = mpsc::unbounded_channel::<Outgoing>();
        let sink = Box::pin(futures_util::sink::unfold(
            out_tx,
            |tx, out: Outgoing| async move {
                tx.send(out).map_err(|_| "closed")?;
                Ok::<_, &str>(tx)
            },
        ));
        let task = tokio::spawn(run(
            f.app.clone(),
            session_id.to_string(),
            sink,
            tokio_stream::wrappers::UnboundedReceiverStream::new(in_rx),
            limits,
            CancellationToken::new(),
        ));
        let mut client = Self { tx, rx, task };
        client.until("question").await; // joined: status, then the first question
        client
    }

    fn frame(&self) {
        self.tx.send(Incoming::Binary(png().bytes)).unwrap();
    }

    fn text(&self, message: Value) {
        self.tx.send(Incoming::Text(message.to_string())).unwrap();
    }

    /// The next message, pings included.
    async fn next_out(&mut self) -> Outgoing {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
    }

    /// The next text message (pings skipped).
    async fn next(&mut self) -> Value {
        loop {
            if let Outgoing::Text(text) = self.next_out().await {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    async fn until(&mut self, kind: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// Closes the socket; everything it still sent.
    async fn close(self) -> Vec<Value> {
        self.tx.send(Incoming::Close).unwrap();
        self.task.await.unwrap();
        tokio_stream::wrappers::UnboundedReceiverStream::new(self.rx)
            .filter_map(|out| async move {
                match out {
                    Outgoing::Text(t) => Some(serde_json::from_str(&t).unwrap()),
                    Outgoing::Ping => None,
                }
            })
            .collect()
            .await
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn frames_that_arrive_during_an_analysis_are_sampled_newest_first_and_answers_never_wait() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    let gate = f.hold_analysis();
    let mut c = Client::open(&f, &s.id).await;
    for _ in 0..5 {
        c.frame();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The first frame is still being analysed; the answer is handled regardless.
    c.text(json!({"type": "answer", "data": {"question_id": "intro-1", "transcript": "I build backends.", "duration": 3}}));
    let q = c.until("question").await;
    assert_eq!(q["data"]["id"], "tech-1", "answered while a frame was held");
    assert_eq!(
        f.emotion.calls.load(Ordering::SeqCst),
        1,
        "one frame at a time"
    );

    gate.add_permits(10);
    let first = c.until("emotion_update").await;
    let second = c.until("emotion_update").await;
    settle().await;
    assert_eq!(
        f.emotion.calls.load(Ordering::SeqCst),
        2,
        "of the four that arrived meanwhile, only the newest was analysed"
    );
    let asked = f.emotion.timestamps.lock().unwrap().clone();
    assert!(
        asked[1] >= asked[0] + 15,
        "the newest frame, timed at arrival: {asked:?}"
    );
    assert_eq!(first["data"]["timestamp"], asked[0]);
    assert_eq!(second["data"]["timestamp"], asked[1]);
    let rest = c.close().await;
    assert!(rest.iter().all(|m| m["type"] != "error"), "{rest:#?}");
    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!(
        (
            session.frames_received,
            session.frames_analyzed,
            session.frames_skipped
        ),
        (5, 2, 3),
        "the sampled-out frames are counted as received and skipped"
    );
}

#[tokio::test]
async fn a_frame_waiting_when_the_candidate_leaves_is_still_analysed_and_counted() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    let gate = f.hold_analysis();
    let c = Client::open(&f, &s.id).await;
    c.frame();
    settle().await;
    c.frame();
    settle().await;
    gate.add_permits(10);
    c.close().await;
    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!((session.frames_received, session.frames_analyzed), (2, 2));
}

#[tokio::test]
async fn a_busy_emotion_service_is_neither_an_error_nor_a_pause_for_the_candidate() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.emotion(Answer::Busy);
    let mut c = Client::open(&f, &s.id).await;
    for _ in 0..6 {
        c.frame();
        settle().await;
    }
    c.text(json!({"type": "ping"}));
    c.until("pong").await;
    // Every busy frame was offered before the service recovers (on a loaded machine the last
    // may still be on its way).
    for _ in 0..200 {
        if f.emotion.calls.load(Ordering::SeqCst) >= 6 {
            break;
        }
        settle().await;
    }
    f.emotion(Answer::Works);
    c.frame();
    c.until("emotion_update").await;
    let rest = c.close().await;
    assert!(
        rest.iter()
            .all(|m| m["type"] != "error" && m["data"]["live_feedback"] != "paused"),
        "{rest:#?}"
    );
    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!(
        (
            session.frames_received,
            session.frames_analyzed,
            session.frames_deferred,
            session.frames_skipped
        ),
        (7, 1, 0, 6)
    );
}

#[tokio::test]
async fn frames_sent_before_complete_are_analysed_before_the_interview_completes() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    let gate = f.hold_analysis();
    let mut c = Client::open(&f, &s.id).await;
    c.frame();
    settle().await;
    c.frame();
    c.text(json!({"type": "complete"}));
    settle().await;
    let held = f.app.get(&s.id).await.unwrap();
    assert!(
        held.completed_at.is_none(),
        "completion waits for the frames sent before it"
    );
    gate.add_permits(10);
    c.until("emotion_update").await;
    c.until("emotion_update").await;
    let rest = c.close().await;
    assert!(rest.iter().all(|m| m["type"] != "error"), "{rest:#?}");
    let session = f.app.get(&s.id).await.unwrap();
    assert!(session.completed_at.is_some());
    assert_eq!((session.frames_received, session.frames_analyzed), (2, 2));
}

fn quick_limits() -> SocketLimits {
    SocketLimits {
        ping_after: Duration::from_millis(150),
        idle_timeout: Duration::from_millis(400),
        ..SocketLimits::default()
    }
}

#[tokio::test]
async fn a_silent_socket_is_pinged_then_closed_with_a_code() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let mut client = Client::open_with(&f, &id, quick_limits()).await;
    assert_eq!(client.next_out().await, Outgoing::Ping);
    let closing = client.next().await;
    assert_eq!(closing["type"], "error");
    assert_eq!(closing["data"]["code"], "IDLE_TIMEOUT", "{closing}");
    tokio::time::timeout(Duration::from_secs(5), &mut client.task)
        .await
        .expect("the socket loop ends")
        .unwrap();
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let mut client = Client::open_with(&f, &id, quick_limits()).await;
    for _ in 0..4 {
        assert_eq!(client.next_out().await, Outgoing::Ping);
        client.tx.send(Incoming::Alive).unwrap();
    }
    assert!(
        !client.task.is_finished(),
        "open past several idle timeouts"
    );
    client.text(json!({"type": "ping"}));
    assert_eq!(client.until("pong").await["type"], "pong");
}

#[tokio::test]
async fn frames_over_the_rate_get_one_coded_error_and_the_socket_stays() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let limits = SocketLimits {
        frame_rate: 1,
        frame_burst: 3,
        ..SocketLimits::default()
    };
    let mut client = Client::open_with(&f, &id, limits).await;
    for _ in 0..10 {
        client.frame();
    }
    let limited = client.until("error").await;
    assert_eq!(limited["data"]["code"], "RATE_LIMITED", "{limited}");
    settle().await;
    client.text(json!({"type": "ping"}));
    let mut errors = 0;
    loop {
        let m = client.next().await;
        match m["type"].as_str() {
            Some("pong") => break,
            Some("error") => errors += 1,
            _ => {}
        }
    }
    assert_eq!(errors, 0, "told once per spell");
    let asked = f.emotion.calls.load(Ordering::SeqCst);
    assert!(asked <= 3, "{asked} frames analysed past a burst of 3");
}

mod props {
    use iv_platform::testing::arbitrary::{self, image_like_bytes};
    use proptest::prelude::*;

    use super::*;

    fn incoming() -> impl Strategy<Value = Incoming> {
        let kinds = &["frame", "answer", "ping", "complete", "", "other"][..];
        prop_oneof![
            ".{0,100}".prop_map(Incoming::Text),
            (prop::sample::select(kinds), arbitrary::json()).prop_map(|(kind, data)| {
                Incoming::Text(json!({"type": kind, "data": data}).to_string())
            }),
            image_like_bytes().prop_map(Incoming::Binary),
            Just(Incoming::Alive),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever a client sends, the socket answers and stays: a ping after it gets a pong.
        #[test]
        fn any_messages_leave_the_socket_serving(messages in prop::collection::vec(incoming(), 0..12)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let f = Fixture::new().await;
                let s = f.start(true).await;
                let mut c = Client::open(&f, &s.id).await;
                for m in messages {
                    c.tx.send(m).unwrap();
                }
                c.text(json!({"type": "ping"}));
                loop {
                    let m = c.next().await;
                    if m["type"] == "pong" {
                        break;
                    }
                    if m["type"] == "error" {
                        prop_assert!(m["data"]["code"].is_string(), "{}", m);
                    }
                }
                prop_assert!(!c.task.is_finished());
                Ok(())
            })?;
        }
    }
}
