//! A bounded pool for CPU-bound inference: at most `workers` frames run at once (one per core),
//! at most `queue` more wait, and anything beyond is refused at once so the service sheds load
//! (RESOURCE_EXHAUSTED) instead of queueing without bound.
//!
//! Live frames wait for a slot until their caller's deadline and no longer: an answer after it
//! would be read by nobody. Background frames (the worker's late analysis) never wait and never
//! take a slot a live frame is waiting for, so catching up cannot slow the candidates down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Whose frame it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// A candidate is waiting for the answer.
    #[default]
    Live,
    /// Analysed late, by the worker; only on an idle slot.
    Background,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("all {0} analysis slots are busy; try again shortly")]
    Overloaded(usize),
    /// The caller's deadline passed while the frame waited for a slot.
    #[error("no analysis slot came free within the caller's deadline ({} ms)", .0.as_millis())]
    PastDeadline(Duration),
    /// A background frame found no idle slot.
    #[error("analysis slots are taken by live frames; background work waits")]
    LiveFirst,
    /// The pool was closed (the service is stopping).
    #[error("the inference pool is closed")]
    Closed(#[from] tokio::sync::AcquireError),
    /// The job panicked.
    #[error("the analysis task failed")]
    Crashed(#[from] tokio::task::JoinError),
}

#[derive(Clone)]
pub struct InferencePool {
    admitted: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    /// Live frames admitted and waiting for a slot.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
}

impl InferencePool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            workers: Arc::new(Semaphore::new(workers)),
            waiting: Arc::default(),
            capacity: workers + queue,
        }
    }

    /// Runs `job` on a blocking thread once a worker is free. A live frame is refused when the
    /// queue is full or its `deadline` passes while it waits; a background frame unless a slot
    /// is idle and no live frame waits.
    pub async fn run<T, F>(
        &self,
        priority: Priority,
        deadline: Option<Instant>,
        job: F,
    ) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let shed = |reason: &'static str| {
            metrics::counter!("inference_shed_total", "reason" => reason).increment(1);
        };
        let _permits = match priority {
            Priority::Background => {
                let idle = (self.waiting.load(Ordering::SeqCst) == 0)
                    .then(|| self.workers.clone().try_acquire_owned().ok())
                    .flatten();
                let worker = idle.ok_or_else(|| {
                    shed("live_first");
                    PoolError::LiveFirst
                })?;
                (worker, None)
            }
            Priority::Live => {
                // A caller that has already given up reads no answer, even from an idle slot.
                if let Some(at) = deadline.filter(|at| *at <= Instant::now()) {
                    shed("past_deadline");
                    return Err(PoolError::PastDeadline(at.elapsed()));
                }
                let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
                    shed("queue_full");
                    PoolError::Overloaded(self.capacity)
                })?;
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let slot = self.workers.clone().acquire_owned();
                let acquired = match deadline {
                    Some(at) => tokio::time::timeout_at(at, slot).await.ok(),
                    None => Some(slot.await),
                };
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match acquired {
                    Some(worker) => (worker?, Some(admitted)),
                    None => {
                        shed("past_deadline");
                        let waited = deadline.map(|d| d.elapsed()).unwrap_or_default();
                        return Err(PoolError::PastDeadline(waited));
                    }
                }
            }
        };
        // The models' spans belong to the caller's trace.
        let span = tracing::Span::current();
        Ok(tokio::task::spawn_blocking(move || span.in_scope(job)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn work_beyond_the_queue_is_refused_at_once() {
        let pool = InferencePool::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let busy = blocked(&pool, &rx, None);
        let queued = blocked(&pool, &rx, None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            pool.run(Priority::Live, None, || ()).await,
            Err(PoolError::Overloaded(2))
        ));
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        assert!(pool.run(Priority::Live, None, || 5).await.is_ok());
    }

    type Gate = Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>;

    /// A live job that holds its slot until the gate lets it through.
    fn blocked(
        pool: &InferencePool,
        gate: &Gate,
        deadline: Option<Instant>,
    ) -> tokio::task::JoinHandle<Result<Option<()>, PoolError>> {
        let (pool, gate) = (pool.clone(), gate.clone());
        tokio::spawn(async move {
            pool.run(Priority::Live, deadline, move || {
                gate.lock().unwrap().recv().ok()
            })
            .await
        })
    }

    #[tokio::test]
    async fn a_live_frame_stops_waiting_at_its_deadline() {
        let pool = InferencePool::new(1, 4);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = blocked(&pool, &Arc::new(std::sync::Mutex::new(rx)), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let deadline = Some(started + Duration::from_millis(50));
        let late = pool.run(Priority::Live, deadline, || ()).await;
        assert!(matches!(late, Err(PoolError::PastDeadline(_))), "{late:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
        tx.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert!(pool.run(Priority::Live, deadline, || ()).await.is_err());
        let later = Some(Instant::now() + Duration::from_secs(5));
        assert!(pool.run(Priority::Live, later, || ()).await.is_ok());
    }

    #[tokio::test]
    async fn background_work_runs_only_on_an_idle_slot_and_never_before_waiting_live_frames() {
        let pool = InferencePool::new(1, 4);
        assert_eq!(pool.run(Priority::Background, None, || 7).await.unwrap(), 7);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(rx));
        let busy = blocked(&pool, &gate, None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            pool.run(Priority::Background, None, || ()).await,
            Err(PoolError::LiveFirst)
        ));
        // A live frame waits; the moment the slot frees it is the live frame's.
        let waiting = blocked(&pool, &gate, None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            pool.run(Priority::Background, None, || ()).await,
            Err(PoolError::LiveFirst)
        ));
        tx.send(()).unwrap();
        assert!(waiting.await.unwrap().is_ok());
        assert!(pool.run(Priority::Background, None, || ()).await.is_ok());
    }
}
