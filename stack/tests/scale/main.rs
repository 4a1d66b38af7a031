//! Scale-out tests: Consul registration and discovery against an HTTP double of the agent,
//! balancing across several real instances with one killed, and the real nginx in front of two
//! interview-service processes.
//!
//! `scripts/test.sh` runs this binary with the fault tests, one test at a time: they start
//! processes and time health checks, which a loaded 2-core machine would blur.

#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../faults/process.rs"]
mod process;

mod balancing;
mod consul_double;
mod nginx;
mod registration;

use std::future::Future;
use std::time::{Duration, Instant};

use iv_platform::client::HttpClient;

/// Under `cargo test` (threads in one process) these tests take turns; nextest runs each in its
/// own process, one at a time (`scripts/test.sh`).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `within`.
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
