//! The far pass, apart from the frames: it counts people a few metres behind the candidate on
//! one frame in [`crate::analysis::FAR_EVERY`], and costs four to eight tracked frames. Run on the
//! frame's path, each one held that frame's answer back by 40-85 ms and the frames queued behind
//! it on the same core with it; with 20 candidates that is two far passes a second, which is what
//! lifted the whole run's p95 above the 33-44 ms of the seconds without one.
//!
//! So a candidate already in view is answered at once and the far pass runs on a thread of its
//! own, scheduled `SCHED_IDLE`: it takes only the time the live frames leave, on any core, and a
//! live frame that wakes takes its core back at once. Its count reaches the session's frames
//! from the next one on (see [`crate::analysis::Scanner::next_apart`]).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

/// Far passes waiting for the thread. Two a second come due at 20 candidates, so eight is
/// several seconds of them; beyond that the cores have had no idle time for that long, and a
/// session whose far pass is refused asks again on its next frame (nothing is lost but time).
const QUEUE: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The far-pass thread's queue; the thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct FarPasses {
    jobs: mpsc::SyncSender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum FarPassError {
    /// The queue is full: the far pass is asked for again on the session's next frame.
    #[error("{QUEUE} far passes already wait for idle time")]
    Busy,
    /// The thread has stopped (a far pass panicked past its guard, or the service is stopping).
    #[error("the far-pass thread has stopped")]
    Stopped,
}

impl FarPasses {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("far-pass".into())
            .spawn(move || {
                idle_priority();
                for job in queue {
                    // A far pass that panics costs its own count, not the thread.
                    if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a far pass panicked");
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Queues `job`, run in the caller's span; its result comes back on the receiver.
    pub fn submit<T, F>(&self, job: F) -> Result<oneshot::Receiver<T>, FarPassError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            // The session may have ended meanwhile; nobody to tell.
            let _ = done.send(span.in_scope(job));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => FarPassError::Busy,
            mpsc::TrySendError::Disconnected(_) => FarPassError::Stopped,
        })?;
        Ok(result)
    }
}

/// `SCHED_IDLE` for the calling thread: it runs only when no other thread wants its core.
/// Lowering a thread's priority needs no privilege; where it fails anyway the far pass runs at
/// normal priority, as it did on the frame's path, and the log says so.
fn idle_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let priority = thread_priority::ThreadPriority::Min;
    if let Err(error) = set_thread_priority_and_policy(thread_native_id(), priority, idle) {
        tracing::warn!(?error, "the far pass runs at normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[tokio::test]
    async fn far_passes_run_in_order_and_beyond_the_queue_are_refused_not_lost_later() {
        let passes = FarPasses::start().unwrap();
        let gate = Arc::new(Barrier::new(2));
        let held = gate.clone();
        let first = passes
            .submit(move || {
                held.wait();
                held.wait();
                1
            })
            .unwrap();
        gate.wait();
        // The first holds the thread; QUEUE more wait; the next is refused.
        let queued: Vec<_> = (0..QUEUE)
            .map(|i| passes.submit(move || i + 2).unwrap())
            .collect();
        assert!(matches!(passes.submit(|| 0), Err(FarPassError::Busy)));
        gate.wait();
        assert_eq!(first.await.unwrap(), 1);
        for (i, r) in queued.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), i + 2);
        }
        // A panic costs its own result only.
        let panicked = passes
            .submit(|| -> u32 { panic!("a broken far pass") })
            .unwrap();
        assert!(panicked.await.is_err());
        assert_eq!(passes.submit(|| 7).unwrap().await.unwrap(), 7);
    }

    #[test]
    fn the_far_pass_thread_runs_at_idle_priority() {
        let passes = FarPasses::start().unwrap();
        let policy = passes
            .submit(|| {
                thread_priority::unix::thread_schedule_policy().map_err(|e| format!("{e:?}"))
            })
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(
            policy,
            thread_priority::unix::ThreadSchedulePolicy::Normal(
                thread_priority::unix::NormalThreadSchedulePolicy::Idle
            )
        );
    }
}
