//! What the stack's test binaries (`e2e`, `faults`, `scale`) share, so each binary holds only its
//! tests.
//!
//! # Layout
//! - [`stack`]: a whole stack on free ports with fresh storage, and client helpers.
//! - [`process`]: one service as a real process, to kill and restart.
//! - [`machine`]: the machine's RabbitMQ and PostgreSQL, checked up front with a clear message.
//! - [`otlp`]: an OTLP trace receiver, to check the traces the services export.
//! - [`erasure`]: erasing an interview and waiting for its receipt to complete.
//! - [`storage`]: what a database or a broker namespace still holds about an interview.
//! - [`eventually`], [`one_at_a_time`]: waits that always have a deadline, and the turn-taking of
//!   tests that kill processes or restart the broker.

pub mod erasure;
pub mod machine;
pub mod otlp;
pub mod process;
pub mod stack;
pub mod storage;

pub use machine::{amqp_url, drop_pg_database, fresh_pg_database, pg_admin_url};
pub use process::ServiceProcess;
pub use stack::*;

use std::future::Future;
use std::time::{Duration, Instant};

use iv_platform::client::HttpClient;

/// A consent to the `full` policy as the interview service records one, for tests that call
/// the emotion service directly.
pub fn consent_proof() -> iv_contracts::emotion::ConsentProof {
    iv_contracts::emotion::ConsentProof {
        notice_version: 1,
        notice_sha256: "ab".repeat(32),
        policy: iv_contracts::emotion::AnalysisPolicy::Full as i32,
        given_at: 1,
    }
}

/// Under `cargo test` (threads in one process) the tests that kill processes, restart the broker
/// or time health checks take turns; nextest runs each in its own process, one at a time
/// (`scripts/test.sh`).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Polls `condition` every 50 ms until it holds, and returns how long that took; panics with
/// `what` after `within`, so a broken behaviour fails the test instead of hanging CI.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if condition().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {within:?}");
}

/// Requests a process's own `/metrics` counted for routes whose path contains `path_part`.
pub async fn requests_served(http: &HttpClient, base: &str, path_part: &str) -> u64 {
    let Ok(resp) = http.get(&format!("{base}/metrics")).await else {
        return 0;
    };
    String::from_utf8_lossy(&resp.body)
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_count{"))
        .filter(|l| l.contains(path_part))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
