//! A bounded pool for CPU-bound inference: at most `workers` frames run at once (one per core),
//! at most `queue` more wait, and anything beyond is refused at once so the service sheds load
//! (RESOURCE_EXHAUSTED) instead of queueing without bound.

use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("all {0} analysis slots are busy; try again shortly")]
    Overloaded(usize),
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
    capacity: usize,
}

impl InferencePool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            workers: Arc::new(Semaphore::new(workers)),
            capacity: workers + queue,
        }
    }

    /// Runs `job` on a blocking thread once a worker is free; refuses when the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("inference_shed_total").increment(1);
            PoolError::Overloaded(self.capacity)
        })?;
        let _worker = self.workers.clone().acquire_owned().await?;
        Ok(tokio::task::spawn_blocking(job).await?)
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
        let busy = {
            let pool = pool.clone();
            let rx = rx.clone();
            tokio::spawn(async move { pool.run(move || rx.lock().unwrap().recv().ok()).await })
        };
        let queued = {
            let pool = pool.clone();
            let rx = rx.clone();
            tokio::spawn(async move { pool.run(move || rx.lock().unwrap().recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            pool.run(|| ()).await,
            Err(PoolError::Overloaded(2))
        ));
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
        assert!(pool.run(|| 5).await.is_ok());
    }
}
