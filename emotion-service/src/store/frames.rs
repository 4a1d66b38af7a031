//! Frame rows committed together: each frame still waits for its row's commit before it is
//! answered, but the frames that arrive while one commit is under way share the next one. Under
//! load (20 candidates at 5 frames per second), one transaction per frame meant one write lock
//! and one sync of the log per frame, taken in turn.

use std::sync::Arc;

use iv_platform::db::Pool;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::StoredFrame;
use crate::error::EmotionError;

/// The most frames one commit takes: a few hundred milliseconds of frames at the load above,
/// a transaction short enough not to hold readers' snapshots back.
const MAX_BATCH: usize = 64;
/// Frames that may wait for a commit before the next waits for room: the analysis pool admits
/// far fewer at once, so this bounds only a database that has stopped answering.
const QUEUE: usize = 1024;

type Committed = Result<(), Arc<sqlx::Error>>;

struct Pending {
    session_id: String,
    frame: StoredFrame,
    committed: oneshot::Sender<Committed>,
}

/// Hands frames to the writer task and waits for their commit.
#[derive(Clone)]
pub(super) struct FrameWriter {
    queue: mpsc::Sender<Pending>,
}

impl FrameWriter {
    /// Starts the writer on the current runtime; it ends when the last handle is dropped, once
    /// what was queued is written.
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, pending).instrument(tracing::info_span!("frame_writer")));
        Self { queue }
    }

    /// Records a frame once its row is committed (a frame recorded before, a redelivered event,
    /// is left as it was; one of an erased session is not kept).
    pub(super) async fn record(
        &self,
        session_id: &str,
        frame: &StoredFrame,
    ) -> Result<(), EmotionError> {
        let (committed, done) = oneshot::channel();
        let pending = Pending {
            session_id: session_id.to_string(),
            frame: frame.clone(),
            committed,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| EmotionError::FramesNotWritten(None))?;
        match done.await {
            Ok(result) => result.map_err(|e| EmotionError::FramesNotWritten(Some(e))),
            Err(_) => Err(EmotionError::FramesNotWritten(None)),
        }
    }
}

/// Takes whatever frames are waiting (at least one, at most [`MAX_BATCH`]), commits them in one
/// transaction and tells each its outcome; a failed commit fails all of its frames, as each
/// would have failed alone.
async fn write_batches(pool: Pool, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = write(&pool, &batch).await.map_err(Arc::new);
        if let Err(e) = &result {
            tracing::warn!(frames = batch.len(), error = %e, "frame rows not written");
        }
        for p in batch.drain(..) {
            // The frame's request may have gone (the client left): nothing to tell.
            let _ = p.committed.send(result.clone());
        }
    }
}

#[tracing::instrument(name = "db.record_frames", skip_all, fields(frames = batch.len()))]
async fn write(pool: &Pool, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let mut tx = iv_platform::db::begin_write(pool).await?;
    for p in batch {
        let f = &p.frame;
        sqlx::query(
            "INSERT INTO frame_analyses (session_id, frame_number, timestamp, face_present, face_count, emotion,
                confidence, attention, eye_contact, blink_count, eye_closed)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
             WHERE NOT EXISTS (SELECT 1 FROM erased_sessions WHERE service = $12 AND session_id = $1)
             ON CONFLICT (session_id, frame_number) DO NOTHING",
        )
        .bind(&p.session_id)
        .bind(f.frame_number)
        .bind(f.timestamp)
        .bind(i64::from(f.face_present))
        .bind(f.face_count)
        .bind(&f.emotion)
        .bind(f64::from(f.confidence))
        .bind(f64::from(f.attention))
        .bind(i64::from(f.eye_contact))
        .bind(f.blink_count)
        .bind(i64::from(f.eye_closed))
        .bind(crate::SERVICE.name)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use iv_platform::testing::fresh_sqlite;

    use super::*;
    use crate::store::{EmotionStore, SCHEMA};

    fn frame(frame_number: i64) -> StoredFrame {
        StoredFrame {
            frame_number,
            timestamp: 1_000 + frame_number * 200,
            face_present: true,
            face_count: 1,
            emotion: "neutral".into(),
            confidence: 0.5,
            attention: 0.9,
            eye_contact: true,
            blink_count: 0,
            eye_closed: false,
        }
    }

    async fn store() -> EmotionStore {
        EmotionStore::new(fresh_sqlite(&[SCHEMA, iv_platform::erasure::SCHEMA]).await)
    }

    #[tokio::test]
    async fn frames_recorded_at_once_are_each_committed_and_read_back_in_order() {
        let store = store().await;
        let records = (1..=150).map(|n| {
            let store = store.clone();
            let session = if n % 2 == 0 { "even" } else { "odd" };
            async move { store.record(session, &frame(n)).await }
        });
        for result in futures_util::future::join_all(records).await {
            result.expect("every frame is committed");
        }
        // Recorded again (a redelivered frame): left as it was.
        store.record("odd", &frame(1)).await.unwrap();
        let odd = store.frames("odd").await.unwrap();
        let even = store.frames("even").await.unwrap();
        assert_eq!(odd.len(), 75);
        assert_eq!(even.len(), 75);
        assert_eq!(odd[0], frame(1));
        assert!(even.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }

    #[tokio::test]
    async fn a_commit_that_fails_fails_each_of_its_frames_and_the_writer_goes_on() {
        let store = store().await;
        sqlx::query("DROP TABLE frame_analyses")
            .execute(store.pool())
            .await
            .unwrap();
        let failed = futures_util::future::join_all((1..=5).map(|n| {
            let store = store.clone();
            async move { store.record("s", &frame(n)).await }
        }))
        .await;
        for result in failed {
            let err = result.expect_err("no table to write to");
            assert!(
                matches!(&err, EmotionError::FramesNotWritten(Some(_))),
                "{err:?}"
            );
        }
        for statement in SCHEMA {
            sqlx::query(*statement).execute(store.pool()).await.unwrap();
        }
        store.record("s", &frame(6)).await.unwrap();
        assert_eq!(store.frames("s").await.unwrap(), vec![frame(6)]);
    }
}
