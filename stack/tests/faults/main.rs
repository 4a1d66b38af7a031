//! Fault tests with real processes: a service killed and restarted in the middle of an interview,
//! the broker restarted under load, a worker killed before it acknowledges.
//!
//! These run on their own (`scripts/test.sh` runs this binary after the rest, one test at a time):
//! they kill processes, load the CPU and restart the machine's RabbitMQ.

#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;
mod process;

mod broker;
mod outage;

/// Under `cargo test` (threads in one process) the fault tests take turns; nextest runs them as
/// separate processes, one at a time (`scripts/test.sh`).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
