//! The retention sweeper: now and then it asks the interview service, which keeps the
//! interviews and each organisation's retention, to erase those whose retention ran out. Each
//! is erased everywhere like a requested erasure (the other services hear `InterviewErased`).
//! Several workers may sweep at once: an erasure is idempotent, and each sweep erases what is
//! due at that moment.

use std::time::Duration;

use iv_platform::CancellationToken;
use serde::Deserialize;

use crate::error::WorkerError;
use crate::interview::InterviewClient;

/// The first sweep waits this long after start (or the interval, if shorter), so a restart
/// loop never skips sweeping and the services around have come up.
const FIRST_SWEEP: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Sweeper {
    pub interview: InterviewClient,
    pub every: Duration,
}

#[derive(Debug, Deserialize)]
struct Swept {
    erased: Vec<String>,
    more: bool,
}

impl Sweeper {
    /// Sweeps every `every` until `cancel` fires.
    pub fn spawn(self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut wait = FIRST_SWEEP.min(self.every);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = self.every;
                match self.sweep().await {
                    Ok(0) => tracing::debug!("retention sweep: nothing due"),
                    Ok(n) => tracing::info!(erased = n, "retention sweep"),
                    Err(e) => tracing::warn!(
                        error = %iv_platform::errors::Chain(&e),
                        "retention sweep failed; tried again next time"
                    ),
                }
            }
        })
    }

    /// One sweep: batches until none comes back full. Returns how many were erased.
    pub async fn sweep(&self) -> Result<usize, WorkerError> {
        let mut erased = 0;
        loop {
            let resp = self
                .interview
                .post(
                    "/internal/v1/retention/sweep",
                    &self.interview.itself(),
                    &serde_json::Value::Null,
                )
                .await?;
            let swept: Swept = serde_json::from_slice(&resp.body).map_err(|e| {
                WorkerError::Interview(anyhow::Error::new(e).context("reading the sweep's answer"))
            })?;
            erased += swept.erased.len();
            metrics::counter!("retention_erased_total").increment(swept.erased.len() as u64);
            for id in &swept.erased {
                tracing::info!(session_id = %id, "erased: retention ran out");
            }
            if !swept.more {
                return Ok(erased);
            }
        }
    }
}
