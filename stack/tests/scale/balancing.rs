//! Balancing across instances found in Consul, with real processes: traffic spreads, a killed
//! instance is skipped at once (its refused connection is retried on another) and leaves the
//! rotation when its check fails; a restarted one comes back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iv_contracts::emotion::FrameRequest;
use iv_contracts::scoring::AnswerRequest;
use iv_platform::client::HttpClient;
use iv_platform::discovery::{ConsulAgent, EJECT_FOR, Instances, Source, passing_instances};
use iv_platform::downstream::{EmotionClient, ScoringClient};
use iv_platform::resilience::{BreakerState, PolicyConfig};
use iv_stack::test_env;

use crate::consul_double::ConsulDouble;
use iv_test_support::ServiceProcess;
use iv_test_support::{eventually, requests_served};
use iv_test_support::{face_frames, fresh_dir};

const CHECK_INTERVAL: &str = "300ms";
const POLL_MS: &str = "200";

fn agent(consul: &ConsulDouble) -> ConsulAgent {
    ConsulAgent {
        addr: consul.url(),
        token: None,
        poll: Duration::from_millis(200),
    }
}

fn process_env(dir: &std::path::Path, consul: &ConsulDouble) -> HashMap<String, String> {
    test_env(
        dir,
        &[
            ("CONSUL_HTTP_ADDR", &consul.url()),
            ("CONSUL_CHECK_INTERVAL", CHECK_INTERVAL),
            ("CONSUL_POLL_MS", POLL_MS),
        ],
    )
}

/// The credential the test's processes share (`test_env` gives them one `SERVICE_SECRET`).
fn credential(env: &HashMap<String, String>) -> iv_platform::auth::ServiceCredential {
    iv_platform::auth::AuthConfig::from_env(&iv_platform::config::Env::new(env))
        .unwrap()
        .credential("scale-test")
        .unwrap()
}

async fn passing(consul: &ConsulDouble, service: &str) -> Vec<String> {
    passing_instances(&HttpClient::new(), &agent(consul), service)
        .await
        .unwrap_or_default()
}

async fn wait_passing(consul: &ConsulDouble, service: &str, n: usize) -> Duration {
    eventually(
        Duration::from_secs(30),
        &format!("{n} passing instances of {service}"),
        || async { passing(consul, service).await.len() == n },
    )
    .await
}

/// Waits until a client follows exactly `n` instances (it reads Consul every 200 ms).
async fn listed(instances: &Instances, n: usize) {
    eventually(
        Duration::from_secs(10),
        &format!("{n} instances of {} listed", instances.name()),
        || async { instances.len() == n },
    )
    .await;
}

/// `n` GETs of an unknown interview through `base`; every one must be answered by an instance
/// (404 SESSION_NOT_FOUND), never by the gateway's 502.
async fn get_unknown_interviews(http: &HttpClient, base: &str, n: usize) {
    for _ in 0..n {
        let id = uuid::Uuid::new_v4();
        let r = http
            .get(&format!("{base}/api/v1/interviews/{id}"))
            .await
            .unwrap();
        assert_eq!(r.status, 404, "{:?}", r.json());
        assert_eq!(r.json()["code"], "SESSION_NOT_FOUND", "{:?}", r.json());
    }
}

const SESSION_PATH: &str = "/api/v1/interviews/{id}\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_spreads_requests_over_healthy_instances_and_drops_a_failed_one() {
    let _turn = iv_test_support::one_at_a_time().await;
    let consul = ConsulDouble::start(None).await;
    let dir = fresh_dir();
    let mut a = ServiceProcess::start("interview", process_env(&dir.join("a"), &consul)).await;
    let b = ServiceProcess::start("interview", process_env(&dir.join("b"), &consul)).await;
    let gateway_env = process_env(&dir.join("g"), &consul);
    let gateway = ServiceProcess::start("gateway", gateway_env.clone()).await;
    let token = iv_stack::tokens::mint(
        &gateway_env,
        &iv_stack::tokens::first_admin(),
        Duration::from_secs(600),
    )
    .unwrap();
    let http = HttpClient::new().with_bearer(&token);
    wait_passing(&consul, "interview-service", 2).await;
    // The gateway reads Consul every 200 ms: wait until it sends to both, then count afresh.
    eventually(
        Duration::from_secs(10),
        "the gateway uses both instances",
        || async {
            // Until the gateway has read Consul it answers 503 itself: only count, never assert.
            let probe = format!("{}/api/v1/interviews/probe", gateway.url());
            let _ = http.get(&probe).await;
            let _ = http.get(&probe).await;
            requests_served(&http, &a.url(), SESSION_PATH).await > 0
                && requests_served(&http, &b.url(), SESSION_PATH).await > 0
        },
    )
    .await;
    let (before_a, before_b) = (
        requests_served(&http, &a.url(), SESSION_PATH).await,
        requests_served(&http, &b.url(), SESSION_PATH).await,
    );

    get_unknown_interviews(&http, &gateway.url(), 40).await;
    let (on_a, on_b) = (
        requests_served(&http, &a.url(), SESSION_PATH).await - before_a,
        requests_served(&http, &b.url(), SESSION_PATH).await - before_b,
    );
    eprintln!("spread over two instances: {on_a} + {on_b}");
    assert_eq!(on_a + on_b, 40);
    assert!(on_a >= 15 && on_b >= 15, "taken in turn: {on_a} / {on_b}");
    let on_b = on_b + before_b;

    // Killed: every request still answered, the refused ones by the other instance.
    a.kill().await;
    let killed = Instant::now();
    get_unknown_interviews(&http, &gateway.url(), 40).await;
    assert_eq!(
        requests_served(&http, &b.url(), SESSION_PATH).await,
        on_b + 40,
        "the survivor took all 40"
    );
    wait_passing(&consul, "interview-service", 1).await;
    eprintln!(
        "killed instance left Consul's passing list {:?} after the kill",
        killed.elapsed()
    );

    // Back on the same address: it registers again, passes its check, and gets traffic again:
    // at once if the gateway saw it leave Consul's list, else when its ejection ends
    // (EJECT_FOR, 5 s).
    a.restart().await;
    let listening = Instant::now();
    let back = wait_passing(&consul, "interview-service", 2).await;
    eprintln!("restarted instance passing again {back:?} after it listened");
    eventually(
        EJECT_FOR + Duration::from_secs(5),
        "the restarted instance gets requests",
        || async {
            // Until the gateway has read Consul it answers 503 itself: only count, never assert.
            let probe = format!("{}/api/v1/interviews/probe", gateway.url());
            let _ = http.get(&probe).await;
            let _ = http.get(&probe).await;
            requests_served(&http, &a.url(), SESSION_PATH).await > 0
        },
    )
    .await;
    eprintln!(
        "restarted instance served again {:?} after it listened",
        listening.elapsed()
    );
    let before = requests_served(&http, &a.url(), SESSION_PATH).await;
    get_unknown_interviews(&http, &gateway.url(), 20).await;
    let on_a = requests_served(&http, &a.url(), SESSION_PATH).await - before;
    assert!(
        on_a >= 7,
        "the restarted instance is back in turn: {on_a} of 20"
    );
}

fn answer() -> AnswerRequest {
    AnswerRequest {
        question: "How do you keep a service available when a dependency fails?".into(),
        answer: "I put a circuit breaker around the call, retry transient errors with \
                 exponential backoff and jitter, and keep a fallback so the user still gets an \
                 answer while the dependency recovers."
            .into(),
        category: "technical".into(),
        expected_points: vec!["circuit breaker".into(), "retry with backoff".into()],
        duration: 20.0,
    }
}

const SCORING_PATH: &str = "scoring.ScoringService";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_spread_over_instances_and_skip_a_killed_one_without_opening_the_breaker() {
    let _turn = iv_test_support::one_at_a_time().await;
    let http = HttpClient::new();
    let consul = ConsulDouble::start(None).await;
    let dir = fresh_dir();
    let mut a = ServiceProcess::start("scoring", process_env(&dir.join("a"), &consul)).await;
    let b = ServiceProcess::start("scoring", process_env(&dir.join("b"), &consul)).await;
    wait_passing(&consul, "scoring-service", 2).await;

    let client = ScoringClient::new(
        &Source::Consul {
            agent: agent(&consul),
            service: "scoring-service".into(),
        },
        PolicyConfig::scoring(),
    )
    .with_credential(credential(&process_env(&dir, &consul)));
    let instances = client.instances();
    listed(instances, 2).await;
    for _ in 0..20 {
        let analysis = client.analyze_answer(answer()).await.expect("analysed");
        assert!(analysis.relevance_score > 0.0);
    }
    let (on_a, on_b) = (
        requests_served(&http, &a.url(), SCORING_PATH).await,
        requests_served(&http, &b.url(), SCORING_PATH).await,
    );
    eprintln!("gRPC spread over two instances: {on_a} + {on_b}");
    assert_eq!(on_a + on_b, 20);
    assert!(on_a >= 8 && on_b >= 8, "taken in turn: {on_a} / {on_b}");

    a.kill().await;
    for _ in 0..20 {
        client
            .analyze_answer(answer())
            .await
            .expect("answered by the other instance");
    }
    assert_eq!(
        requests_served(&http, &b.url(), SCORING_PATH).await,
        on_b + 20
    );
    assert_eq!(
        client.policy().state(),
        BreakerState::Closed,
        "one dead instance of two is not a dead service"
    );
    wait_passing(&consul, "scoring-service", 1).await;
    listed(instances, 1).await;
    assert_eq!(*instances.all(), vec![b.url()]);
}

fn frame(session: &str, number: i64, jpeg: &[u8]) -> FrameRequest {
    FrameRequest {
        session_id: session.to_string(),
        image_data: jpeg.to_vec(),
        timestamp: 1_000 + number * 66,
        format: "jpeg".into(),
        policy: 0,
        frame_number: number,
        consent: Some(iv_test_support::consent_proof()),
        ..Default::default()
    }
}

const EMOTION_PATH: &str = "emotion.EmotionService";

/// The emotion service keeps each session's face track and blink history in memory, so a
/// session's frames go to one instance; when it dies, the session continues on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_frames_stay_on_one_emotion_instance_and_move_when_it_dies() {
    let _turn = iv_test_support::one_at_a_time().await;
    let http = HttpClient::new();
    let consul = ConsulDouble::start(None).await;
    let dir = fresh_dir();
    let mut a = ServiceProcess::start("emotion", process_env(&dir.join("a"), &consul)).await;
    let mut b = ServiceProcess::start("emotion", process_env(&dir.join("b"), &consul)).await;
    wait_passing(&consul, "emotion-service", 2).await;
    let client = EmotionClient::new(
        &Source::Consul {
            agent: agent(&consul),
            service: "emotion-service".into(),
        },
        PolicyConfig::emotion(),
        PolicyConfig::emotion_queries(),
    )
    .with_credential(credential(&process_env(&dir, &consul)));
    let assertion = credential(&process_env(&dir, &consul)).assert_self();
    let instances = client.instances();
    listed(instances, 2).await;
    let jpegs: Vec<Vec<u8>> = face_frames()
        .iter()
        .take(3)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let sessions: Vec<String> = (0..16).map(|i| format!("affinity-{i}")).collect();
    for session in &sessions {
        for (n, jpeg) in jpegs.iter().enumerate() {
            let r = client
                .analyze_frame(frame(session, n as i64, jpeg))
                .await
                .expect("analysed");
            assert!(
                r.face_metrics.is_some_and(|m| m.detected),
                "a face in every frame"
            );
        }
    }
    // Each instance keeps its own database: ask each which sessions it analysed, and how much.
    let frames_seen = |base: String, session: String| {
        let (http, assertion) = (http.clone(), assertion.clone());
        async move {
            let r = http
                .send(
                    http::Method::GET,
                    &format!("{base}/api/v1/emotions/session/{session}"),
                    None,
                    Vec::new(),
                    &[(iv_platform::auth::IDENTITY_HEADER, assertion.as_str())],
                )
                .await
                .unwrap();
            r.json()["frames_analyzed"].as_i64().unwrap_or(0)
        }
    };
    let (mut on_a, mut on_b) = (0, 0);
    for session in &sessions {
        let seen = (
            frames_seen(a.url(), session.clone()).await,
            frames_seen(b.url(), session.clone()).await,
        );
        assert!(
            seen == (3, 0) || seen == (0, 3),
            "all three frames of {session} on one instance: {seen:?}"
        );
        on_a += usize::from(seen.0 == 3);
        on_b += usize::from(seen.1 == 3);
    }
    eprintln!("16 sessions: {on_a} on one instance, {on_b} on the other");
    assert!(on_a > 0 && on_b > 0, "sessions spread over both");

    // The home of the first session dies: its next frames are analysed by the other.
    let first = &sessions[0];
    let (dead, survivor) = if instances.pick_for(first).as_deref() == Some(a.url().as_str()) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let before = requests_served(&http, &survivor.url(), EMOTION_PATH).await;
    dead.kill().await;
    for n in 3..6 {
        let r = client
            .analyze_frame(frame(first, n, &jpegs[n as usize % 3]))
            .await
            .expect("analysed by the surviving instance");
        assert!(r.face_metrics.is_some_and(|m| m.detected));
    }
    assert_eq!(
        requests_served(&http, &survivor.url(), EMOTION_PATH).await,
        before + 3
    );
    assert_eq!(client.policy().state(), BreakerState::Closed);
}
