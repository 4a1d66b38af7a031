//! One named resilience policy per downstream: a circuit breaker (failsafe) inside retries with
//! exponential backoff and jitter (backon), and a timeout on every attempt.
//!
//! Why this shape:
//! - Retries sit outside the breaker, so once it opens the remaining retries are refused at once
//!   and the caller gets `Unavailable` without waiting.
//! - The per-attempt timeout sits inside the breaker's future: a future dropped by an outer timeout
//!   records neither success nor failure, so slow calls would never open the breaker.
//! - Only failures that say the downstream is unhealthy (unavailable, silence, internal errors)
//!   count towards opening; a rejected argument is the caller's fault, not the service's.
//! - A busy downstream is not a dead one. Every call carries its deadline (`grpc-timeout`, the
//!   attempt timeout); a busy service answers in time, shedding with `RESOURCE_EXHAUSTED` or
//!   `DEADLINE_EXCEEDED`, and neither opens the breaker nor is retried (for frames the next frame
//!   is the retry; retrying shed work only adds load). Only silence past the deadline, plus a
//!   grace for the answer's trip back ([`PolicyConfig::silent_after`]), counts as a failure:
//!   counting overload as failure opened the breaker under load and turned a spike into minutes of
//!   paused feedback.
//!
//! The numbers and their reasons are in [`PolicyConfig::emotion`], [`PolicyConfig::emotion_queries`]
//! and [`PolicyConfig::scoring`];
//! every one can be overridden from the environment (see [`PolicyConfig::from_env`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine};
use tonic::{Code, Status};

use crate::config::{ConfigError, Env};

/// Breaker and retry settings of one downstream.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Used in metrics, logs and env keys (`EMOTION_BREAKER_FAILURES`, ...).
    pub name: &'static str,
    /// Consecutive unhealthy failures that open the breaker.
    pub failures_to_open: u32,
    /// How long the breaker stays open the first time; doubles while probes fail.
    pub open_for: Duration,
    /// Upper bound of the open time.
    pub open_max: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl PolicyConfig {
    /// The emotion service is on the live-feedback path (a frame every ~66 ms per candidate), so a
    /// dead service must be noticed fast and cost nothing while down:
    /// - 5 consecutive failures: a handful of frames (< 0.5 s), as eShopOnContainers' 5.
    /// - open 2 s, doubling to 30 s: short enough that feedback resumes within seconds of a
    ///   restart, long enough not to hammer a service that is still loading its models.
    /// - 1 retry after 50-200 ms: a frame is worth one quick retry; the next frame is the real retry.
    /// - 1.5 s per attempt: inference on a busy CPU is ~100 ms; anything near 1.5 s is a stuck call.
    pub fn emotion() -> Self {
        Self {
            name: "emotion",
            failures_to_open: 5,
            open_for: Duration::from_secs(2),
            open_max: Duration::from_secs(30),
            attempt_timeout: Duration::from_millis(1500),
            retries: 1,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
        }
    }

    /// Session queries of the emotion service (summaries, timelines) need only its database, not
    /// its models or CPU, so they fail independently of frame analysis and get their own breaker:
    /// - 5 failures, open 2 s doubling to 30 s, 2 retries from 100 ms to 1 s, 3 s per attempt.
    pub fn emotion_queries() -> Self {
        Self {
            name: "emotion_queries",
            failures_to_open: 5,
            open_for: Duration::from_secs(2),
            open_max: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(3),
            retries: 2,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        }
    }

    /// Scoring is called once per answer and once per interview, and a lost call means waiting
    /// for the worker, so it gets more patience than frames:
    /// - 5 consecutive failures, open 5 s doubling to 60 s (Hystrix opens for 5 s).
    /// - 3 retries from 200 ms to 2 s with jitter: rides out a restart of a scoring instance.
    /// - 5 s per attempt: report generation (PDF) is the slowest call, well under a second normally.
    pub fn scoring() -> Self {
        Self {
            name: "scoring",
            failures_to_open: 5,
            open_for: Duration::from_secs(5),
            open_max: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(5),
            retries: 3,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
        }
    }

    /// When an attempt without any answer counts as silent (a failure): the deadline sent with it
    /// plus a fifth. A busy service sheds work at the deadline and answers at once; the fifth
    /// (300 ms of the emotion service's 1.5 s) covers the answer's trip back and a late wake-up on
    /// a loaded CPU.
    pub fn silent_after(&self) -> Duration {
        self.attempt_timeout + self.attempt_timeout / 5
    }

    /// Overrides from `<NAME>_BREAKER_FAILURES`, `<NAME>_BREAKER_OPEN_MS`, `<NAME>_BREAKER_OPEN_MAX_MS`,
    /// `<NAME>_TIMEOUT_MS`, `<NAME>_RETRIES`, `<NAME>_BACKOFF_MIN_MS`, `<NAME>_BACKOFF_MAX_MS`.
    pub fn from_env(self, env: &Env<'_>) -> Result<Self, ConfigError> {
        let p = self.name.to_ascii_uppercase();
        let ms = |d: Duration| d.as_millis() as u64;
        Ok(Self {
            failures_to_open: env.parse(&format!("{p}_BREAKER_FAILURES"), self.failures_to_open)?,
            open_for: env.millis(&format!("{p}_BREAKER_OPEN_MS"), ms(self.open_for))?,
            open_max: env.millis(&format!("{p}_BREAKER_OPEN_MAX_MS"), ms(self.open_max))?,
            attempt_timeout: env.millis(&format!("{p}_TIMEOUT_MS"), ms(self.attempt_timeout))?,
            retries: env.parse(&format!("{p}_RETRIES"), self.retries)?,
            backoff_min: env.millis(&format!("{p}_BACKOFF_MIN_MS"), ms(self.backoff_min))?,
            backoff_max: env.millis(&format!("{p}_BACKOFF_MAX_MS"), ms(self.backoff_max))?,
            ..self
        })
    }
}

/// The breaker's open time: doubles from `next` up to `max`, in milliseconds (failsafe's own
/// backoffs work in whole seconds and reject anything under one).
#[derive(Debug, Clone)]
pub struct OpenBackoff {
    next: Duration,
    max: Duration,
}

impl Iterator for OpenBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let current = self.next.min(self.max);
        self.next = current.saturating_mul(2).min(self.max);
        Some(current)
    }
}

/// The breaker's state as a number, for the `circuit_breaker_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

/// Observes breaker transitions: logs each once and keeps the state for metrics and callers.
#[derive(Clone)]
pub struct BreakerEvents {
    name: &'static str,
    state: Arc<AtomicU8>,
}

impl BreakerEvents {
    fn set(&self, state: BreakerState) {
        self.state.store(state as u8, Ordering::SeqCst);
        metrics::gauge!("circuit_breaker_state", "downstream" => self.name).set(state as u8 as f64);
        metrics::counter!("circuit_breaker_transitions_total", "downstream" => self.name, "to" => state_name(state))
            .increment(1);
    }
}

fn state_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
    }
}

impl Instrument for BreakerEvents {
    fn on_call_rejected(&self) {
        metrics::counter!("circuit_breaker_rejected_total", "downstream" => self.name).increment(1);
    }
    fn on_open(&self) {
        tracing::warn!(
            downstream = self.name,
            "circuit breaker opened; calls fail fast"
        );
        self.set(BreakerState::Open);
    }
    fn on_half_open(&self) {
        tracing::info!(downstream = self.name, "circuit breaker half-open; probing");
        self.set(BreakerState::HalfOpen);
    }
    fn on_closed(&self) {
        tracing::info!(
            downstream = self.name,
            "circuit breaker closed; downstream healthy again"
        );
        self.set(BreakerState::Closed);
    }
}

/// Why a call through a [`Downstream`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The breaker is open: the call was not attempted.
    #[error("{0} service unavailable (circuit open)")]
    Open(&'static str),
    /// The downstream answered with an error (after retries, if it was transient).
    #[error("{downstream} service: {status}")]
    Failed {
        downstream: &'static str,
        status: Status,
    },
    /// No answer at all within [`PolicyConfig::silent_after`]: stuck or gone.
    #[error("{downstream} service did not answer within {} ms", after.as_millis())]
    Silent {
        downstream: &'static str,
        after: Duration,
    },
}

impl CallError {
    /// True when the downstream could not serve the call at all (breaker open, down, silent),
    /// as opposed to rejecting this particular request or being busy.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Open(_) | Self::Silent { .. } => true,
            Self::Failed { status, .. } => is_unhealthy(status),
        }
    }

    /// True when the downstream is up but busy: it shed the call or could not finish it by the
    /// deadline. Worth trying later, never a reason to route around the service.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Failed { status, .. } if is_busy(status))
    }

    pub fn status(&self) -> Status {
        match self {
            Self::Open(name) => {
                Status::unavailable(format!("{name} service unavailable (circuit open)"))
            }
            Self::Failed { status, .. } => status.clone(),
            Self::Silent { .. } => Status::deadline_exceeded(self.to_string()),
        }
    }
}

/// Why one attempt failed, as the breaker sees it.
#[derive(Debug)]
enum Attempt {
    /// The downstream answered with this error.
    Answered(Status),
    /// It did not answer within [`PolicyConfig::silent_after`].
    Silent,
}

/// What opens the breaker: silence, or an answer that says the downstream is unhealthy.
fn counts_as_failure(attempt: &Attempt) -> bool {
    match attempt {
        Attempt::Silent => true,
        Attempt::Answered(status) => is_unhealthy(status),
    }
}

/// The client's own transport gave up at the call's deadline (tonic reports it as CANCELLED with
/// a [`tonic::TimeoutExpired`] cause): no answer came, which is silence, not an answer.
fn expired_here(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(err) = cause {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Codes of a downstream that cannot serve at all (down, crashing, cut off).
fn is_unhealthy(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Internal | Code::Unknown
    )
}

/// Codes of a downstream that is up but full: it shed the call, or its deadline passed in queue.
fn is_busy(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::ResourceExhausted | Code::DeadlineExceeded
    )
}

/// Worth another attempt at once: the same request may succeed on the next instance or after a
/// short pause. Busy answers are not: a retry would add to the load that caused them.
fn is_retryable(err: &CallError) -> bool {
    match err {
        CallError::Open(_) => false,
        CallError::Silent { .. } => true,
        CallError::Failed { status, .. } => {
            matches!(status.code(), Code::Unavailable | Code::Aborted)
        }
    }
}

type Breaker = StateMachine<ConsecutiveFailures<OpenBackoff>, BreakerEvents>;

/// A downstream guarded by its policy. Cheap to clone; clones share one breaker.
#[derive(Clone)]
pub struct Downstream {
    config: Arc<PolicyConfig>,
    breaker: Breaker,
    events: BreakerEvents,
}

impl Downstream {
    pub fn new(config: PolicyConfig) -> Self {
        let events = BreakerEvents {
            name: config.name,
            state: Arc::new(AtomicU8::new(0)),
        };
        events.set(BreakerState::Closed);
        let backoff = OpenBackoff {
            next: config.open_for,
            max: config.open_max,
        };
        let breaker = Config::new()
            .failure_policy(consecutive_failures(config.failures_to_open, backoff))
            .instrument(events.clone())
            .build();
        Self {
            config: Arc::new(config),
            breaker,
            events,
        }
    }

    pub fn name(&self) -> &'static str {
        self.config.name
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The state as of the last call (failsafe moves it lazily, on the next call).
    pub fn state(&self) -> BreakerState {
        match self.events.state.load(Ordering::SeqCst) {
            0 => BreakerState::Closed,
            1 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }

    /// Runs `op` under the policy: each attempt bounded by [`PolicyConfig::silent_after`] and
    /// recorded by the breaker; transient failures retried with jittered exponential backoff.
    /// `op` should send [`PolicyConfig::attempt_timeout`] as the call's deadline.
    pub async fn call<T, F, Fut>(&self, operation: &'static str, mut op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let name = self.config.name;
        let silent_after = self.config.silent_after();
        let attempt = || {
            let fut = op();
            let bounded = async move {
                match tokio::time::timeout(silent_after, fut).await {
                    Ok(Err(status)) if expired_here(&status) => Err(Attempt::Silent),
                    Ok(result) => result.map_err(Attempt::Answered),
                    Err(_) => Err(Attempt::Silent),
                }
            };
            let guarded = self.breaker.call_with(counts_as_failure, bounded);
            async move {
                guarded.await.map_err(|e| match e {
                    failsafe::Error::Inner(Attempt::Answered(status)) => CallError::Failed {
                        downstream: name,
                        status,
                    },
                    failsafe::Error::Inner(Attempt::Silent) => CallError::Silent {
                        downstream: name,
                        after: silent_after,
                    },
                    failsafe::Error::Rejected => CallError::Open(name),
                })
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.backoff_min)
            .with_max_delay(self.config.backoff_max)
            .with_max_times(self.config.retries)
            .with_jitter();
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(is_retryable)
            .notify(|err, delay| {
                metrics::counter!("downstream_retries_total", "downstream" => name, "operation" => operation)
                    .increment(1);
                tracing::debug!(downstream = name, operation, error = %err, ?delay, "retrying");
            })
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CallError::Open(_)) => "rejected",
            Err(e) if e.is_busy() => "busy",
            Err(CallError::Failed { .. } | CallError::Silent { .. }) => "error",
        };
        metrics::counter!("downstream_calls_total", "downstream" => name, "operation" => operation, "outcome" => outcome)
            .increment(1);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn fast(name: &'static str) -> PolicyConfig {
        PolicyConfig {
            name,
            failures_to_open: 3,
            open_for: Duration::from_millis(80),
            open_max: Duration::from_millis(400),
            attempt_timeout: Duration::from_millis(100),
            retries: 0,
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    #[test]
    fn open_time_doubles_up_to_its_bound() {
        let b = OpenBackoff {
            next: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        let got: Vec<u128> = b.take(4).map(|d| d.as_millis()).collect();
        assert_eq!(got, vec![100, 200, 350, 350]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_consecutive_failures_and_then_fails_fast() {
        let d = Downstream::new(fast("t-open"));
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            let r: Result<(), _> = d
                .call("op", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Status::unavailable("down"))
                })
                .await;
            assert!(matches!(r, Err(CallError::Failed { .. })));
        }
        let started = tokio::time::Instant::now();
        let r: Result<(), _> = d
            .call("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(CallError::Open("t-open"))), "{r:?}");
        // On the paused clock any timeout or backoff would show: refused without waiting at all.
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "an open breaker must not call through"
        );
        assert_eq!(d.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn after_the_open_time_a_successful_probe_closes_the_breaker() {
        let d = Downstream::new(fast("t-close"));
        for _ in 0..3 {
            let _: Result<(), _> = d
                .call("op", || async { Err(Status::unavailable("down")) })
                .await;
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
        let r: Result<u8, _> = d.call("op", || async { Ok(7) }).await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(d.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn caller_errors_neither_open_the_breaker_nor_get_retried() {
        let mut cfg = fast("t-caller");
        cfg.retries = 3;
        let d = Downstream::new(cfg);
        let calls = AtomicUsize::new(0);
        for _ in 0..5 {
            let r: Result<(), _> = d
                .call("op", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Status::invalid_argument("bad frame"))
                })
                .await;
            assert!(!r.unwrap_err().is_unavailable());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(d.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_one_succeeds() {
        let mut cfg = fast("t-retry");
        cfg.retries = 2;
        cfg.failures_to_open = 10;
        let d = Downstream::new(cfg);
        let calls = AtomicUsize::new(0);
        let r = d
            .call("op", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Status::unavailable("blip"))
                } else {
                    Ok("done")
                }
            })
            .await;
        assert_eq!(r.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// Runs `body` on virtual time: tokio's clock is paused (attempt timeouts, backoff sleeps)
    /// and failsafe's clock, which times the open state and reads `Instant` on its own, is
    /// frozen and moved in step by [`Virtual::advance`].
    fn on_virtual_time(body: impl AsyncFnOnce(&mut Virtual<'_>)) {
        failsafe::clock::freeze(|clock| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut v = Virtual { clock };
                body(&mut v).await;
            });
        });
    }

    struct Virtual<'a> {
        clock: &'a mut failsafe::clock::MockClock,
    }

    impl Virtual<'_> {
        async fn advance(&mut self, by: Duration) {
            self.clock.advance(by);
            tokio::time::advance(by).await;
        }
    }

    async fn hang() -> Result<(), Status> {
        std::future::pending().await
    }

    #[test]
    fn the_emotion_policy_on_virtual_time() {
        on_virtual_time(async |v| {
            let cfg = PolicyConfig::emotion();
            let d = Downstream::new(PolicyConfig {
                name: "t-virtual-emotion",
                ..cfg.clone()
            });
            // A hung service: each call is two silent attempts of 1.8 s with one jittered pause.
            let started = tokio::time::Instant::now();
            let r = d.call("analyze", hang).await;
            let took = started.elapsed();
            assert!(matches!(r, Err(CallError::Silent { .. })), "{r:?}");
            assert_eq!(r.unwrap_err().status().code(), Code::DeadlineExceeded);
            let least = cfg.silent_after() * 2 + cfg.backoff_min;
            let most = cfg.silent_after() * 2 + cfg.backoff_min * 2;
            assert!(took >= least && took <= most, "one call took {took:?}");

            // Five failed attempts open it: the third call's retry is refused by the breaker.
            let _ = d.call("analyze", hang).await;
            let r = d.call("analyze", hang).await;
            assert!(matches!(r, Err(CallError::Open(_))), "{r:?}");
            assert_eq!(d.state(), BreakerState::Open);

            // Open: refused at once, with no time passing at all.
            let started = tokio::time::Instant::now();
            let r = d.call("analyze", || async { Ok(()) }).await;
            assert!(matches!(r, Err(CallError::Open(_))));
            assert_eq!(started.elapsed(), Duration::ZERO);

            // Just before the open time ends it still refuses; just after, a probe goes through.
            v.advance(cfg.open_for - Duration::from_millis(10)).await;
            assert!(d.call("analyze", || async { Ok(()) }).await.is_err());
            v.advance(Duration::from_millis(20)).await;
            // A failed probe re-opens it for twice as long.
            let r = d
                .call("analyze", || async {
                    Err::<(), _>(Status::unavailable("still down"))
                })
                .await;
            assert!(r.unwrap_err().is_unavailable());
            assert_eq!(d.state(), BreakerState::Open);
            v.advance(cfg.open_for + Duration::from_millis(10)).await;
            assert!(matches!(
                d.call("analyze", || async { Ok(()) }).await,
                Err(CallError::Open(_))
            ));
            v.advance(cfg.open_for).await;
            // The service is back: the probe succeeds and the breaker closes.
            d.call("analyze", || async { Ok(()) }).await.unwrap();
            assert_eq!(d.state(), BreakerState::Closed);
        });
    }

    #[test]
    fn the_scoring_policy_rides_out_a_short_restart_on_virtual_time() {
        on_virtual_time(async |_| {
            let cfg = PolicyConfig::scoring();
            let d = Downstream::new(PolicyConfig {
                name: "t-virtual-scoring",
                ..cfg.clone()
            });
            // Down for the first three attempts (a restart), up on the fourth: one call succeeds.
            let calls = AtomicUsize::new(0);
            let started = tokio::time::Instant::now();
            let r = d
                .call("score", || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < cfg.retries {
                        Err(Status::unavailable("restarting"))
                    } else {
                        Ok(42)
                    }
                })
                .await;
            assert_eq!(r.unwrap(), 42);
            assert_eq!(calls.load(Ordering::SeqCst), cfg.retries + 1);
            // Three pauses doubling from the minimum (1 + 2 + 4), each up to twice that with jitter.
            let took = started.elapsed();
            assert!(took >= cfg.backoff_min * 7, "{took:?}");
            assert!(took <= cfg.backoff_min * 14, "{took:?}");
            assert_eq!(d.state(), BreakerState::Closed);
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_call_times_out_and_counts_as_a_failure() {
        let d = Downstream::new(fast("t-hang"));
        for _ in 0..3 {
            let started = tokio::time::Instant::now();
            let r: Result<(), _> = d
                .call("op", || async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(())
                })
                .await;
            assert_eq!(r.unwrap_err().status().code(), Code::DeadlineExceeded);
            assert_eq!(
                started.elapsed(),
                Duration::from_millis(120),
                "cut at the deadline and its grace"
            );
        }
        assert_eq!(d.state(), BreakerState::Open);
    }

    /// A real gRPC client against a server that never answers: tonic's own deadline fires first
    /// (as CANCELLED), and it still counts as silence.
    #[tokio::test]
    async fn a_deadline_cut_by_the_grpc_client_is_silence_too() {
        use iv_contracts::emotion::FrameRequest;
        use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket); // accepted, never answered
            }
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let d = Downstream::new(fast("t-grpc-deadline"));
        for _ in 0..3 {
            let r = d
                .call("analyze", || {
                    let mut client = EmotionServiceClient::new(channel.clone());
                    let mut request = tonic::Request::new(FrameRequest::default());
                    request.set_timeout(Duration::from_millis(100));
                    async move { client.analyze_frame(request).await }
                })
                .await;
            assert!(matches!(r, Err(CallError::Silent { .. })), "{r:?}");
        }
        assert_eq!(d.state(), BreakerState::Open);
        held.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_downstream_never_opens_the_breaker_and_is_not_retried() {
        let d = Downstream::new(PolicyConfig {
            retries: 2,
            ..fast("t-busy")
        });
        let calls = AtomicUsize::new(0);
        for i in 0..20 {
            let r: Result<(), _> = d
                .call("op", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(match i % 2 {
                        0 => Status::resource_exhausted("all slots busy"),
                        _ => Status::deadline_exceeded("queued past the deadline"),
                    })
                })
                .await;
            let err = r.unwrap_err();
            assert!(err.is_busy() && !err.is_unavailable(), "{err:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 20, "one attempt per call");
        assert_eq!(d.state(), BreakerState::Closed);
        // Still closed: the next call goes through.
        d.call("op", || async { Ok(()) }).await.unwrap();
    }
}
