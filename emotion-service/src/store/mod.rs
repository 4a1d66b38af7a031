//! Durable per-frame aggregates (never pixels) and each session's analysis policy.

use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::OrgId;
use iv_platform::db::Pool;
use iv_platform::erasure::{Eraser, Erasure, Held};
use sqlx::Row;

use crate::error::EmotionError;

mod frames;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS frame_analyses (
        session_id TEXT NOT NULL,
        frame_number BIGINT NOT NULL,
        timestamp BIGINT NOT NULL,
        face_present BIGINT NOT NULL,
        face_count BIGINT NOT NULL,
        emotion TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        attention DOUBLE PRECISION NOT NULL,
        eye_contact BIGINT NOT NULL,
        blink_count BIGINT NOT NULL,
        eye_closed BIGINT NOT NULL,
        PRIMARY KEY (session_id, frame_number)
    )",
    // Every closure of the eyes between open eyes: blinks and long closures, told apart by their
    // duration (`blink::BLINK_MS`).
    "CREATE TABLE IF NOT EXISTS blinks (
        session_id TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        duration_ms BIGINT NOT NULL,
        PRIMARY KEY (session_id, started_at)
    )",
    "CREATE TABLE IF NOT EXISTS emotion_sessions (
        session_id TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        org_id TEXT
    )",
];

/// Columns added since the first schema, for databases made before them.
pub const ADDED_COLUMNS: &[iv_platform::db::AddedColumn] = &[
    // Sessions analysed before organisations belong to none: only services read them.
    iv_platform::db::AddedColumn {
        table: "emotion_sessions",
        column: "org_id",
        definition: "TEXT",
    },
];

/// One analysed frame as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFrame {
    pub frame_number: i64,
    pub timestamp: i64,
    pub face_present: bool,
    pub face_count: i64,
    pub emotion: String,
    pub confidence: f32,
    pub attention: f32,
    pub eye_contact: bool,
    pub blink_count: i64,
    pub eye_closed: bool,
}

/// What is fixed about a session once its first frame is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub policy: AnalysisPolicy,
    /// None only for sessions from before organisations that no frame has claimed yet.
    pub owner: Option<OrgId>,
}

impl StoredSession {
    /// The policy for a frame of this session: the stricter of the stored and the requested one.
    /// A frame naming another organisation is refused as if the session did not exist, so nobody
    /// adds to another's timeline.
    pub fn admit(
        &self,
        session_id: &str,
        requested: AnalysisPolicy,
        org: Option<&OrgId>,
    ) -> Result<AnalysisPolicy, EmotionError> {
        match (&self.owner, org) {
            (Some(owner), Some(org)) if owner != org => {
                Err(EmotionError::SessionNotFound(session_id.to_string()))
            }
            _ => Ok(stricter(self.policy, requested)),
        }
    }
}

#[derive(Clone)]
pub struct EmotionStore {
    pool: Pool,
    eraser: Eraser,
    frames: frames::FrameWriter,
}

/// Every table holding rows of a session: what erasure deletes.
const HELD: &[Held] = &[
    Held::by_session("frame_analyses"),
    Held::by_session("blinks"),
    Held::by_session("emotion_sessions"),
];

/// Frames kept per session for summaries (30 minutes at 15 fps, with room).
pub const MAX_FRAMES_PER_SUMMARY: i64 = 50_000;

impl EmotionStore {
    /// Opens the store on `pool`, with its frame writer on the current runtime.
    pub fn new(pool: Pool) -> Self {
        Self {
            eraser: Eraser::new(pool.clone(), crate::SERVICE.name, HELD),
            frames: frames::FrameWriter::start(pool.clone()),
            pool,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Deletes everything stored for the session; its frames are refused from then on.
    #[tracing::instrument(name = "db.erase", skip_all)]
    pub async fn erase(&self, session_id: &str) -> Result<Erasure, EmotionError> {
        Ok(self.eraser.erase(session_id).await?)
    }

    /// Records the session on its first frame, or reads it back (an erased session is refused): the policy first seen (never
    /// loosened by a later request, so a client cannot turn emotion inference back on for an
    /// engagement-only interview) and the organisation its first frame named. A session first seen
    /// before organisations is claimed by the first that names it.
    #[tracing::instrument(name = "db.session", skip_all)]
    pub async fn claim_session(
        &self,
        session_id: &str,
        requested: AnalysisPolicy,
        org: Option<&OrgId>,
    ) -> Result<StoredSession, EmotionError> {
        if self.eraser.is_erased(session_id).await? {
            return Err(EmotionError::SessionErased(session_id.to_string()));
        }
        let org = org.map(|o| o.0.as_str());
        sqlx::query("INSERT INTO emotion_sessions (session_id, policy, created_at, org_id) VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING")
            .bind(session_id)
            .bind(requested.as_str())
            .bind(iv_contracts::now_millis())
            .bind(org)
            .execute(&self.pool)
            .await?;
        if let Some(org) = org {
            sqlx::query(
                "UPDATE emotion_sessions SET org_id = $2 WHERE session_id = $1 AND org_id IS NULL",
            )
            .bind(session_id)
            .bind(org)
            .execute(&self.pool)
            .await?;
        }
        let (stored, owner): (String, Option<String>) =
            sqlx::query_as("SELECT policy, org_id FROM emotion_sessions WHERE session_id = $1")
                .bind(session_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(StoredSession {
            policy: AnalysisPolicy::from_stored(&stored),
            owner: owner.map(OrgId),
        })
    }

    /// Whether the session is known, and the organisation it belongs to (none for sessions
    /// from before organisations).
    pub async fn owner(&self, session_id: &str) -> Result<Option<Option<OrgId>>, EmotionError> {
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT org_id FROM emotion_sessions WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(owner.map(|o| o.map(OrgId)))
    }

    pub async fn policy(&self, session_id: &str) -> Result<Option<AnalysisPolicy>, EmotionError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT policy FROM emotion_sessions WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(stored.map(|p| AnalysisPolicy::from_stored(&p)))
    }

    /// Records a frame, answering once its row is committed (with the frames that came
    /// meanwhile: [`frames`]); a frame recorded before (a redelivered event) is left as it was,
    /// and one of a session erased while it was being analysed is not kept.
    #[tracing::instrument(name = "db.record_frame", skip_all)]
    pub async fn record(&self, session_id: &str, f: &StoredFrame) -> Result<(), EmotionError> {
        self.frames.record(session_id, f).await
    }

    pub async fn frames(&self, session_id: &str) -> Result<Vec<StoredFrame>, EmotionError> {
        let rows = sqlx::query(
            "SELECT frame_number, timestamp, face_present, face_count, emotion, confidence, attention, eye_contact,
                blink_count, eye_closed
             FROM frame_analyses WHERE session_id = $1 ORDER BY timestamp, frame_number LIMIT $2",
        )
        .bind(session_id)
        .bind(MAX_FRAMES_PER_SUMMARY)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredFrame {
                    frame_number: r.try_get("frame_number")?,
                    timestamp: r.try_get("timestamp")?,
                    face_present: r.try_get::<i64, _>("face_present")? != 0,
                    face_count: r.try_get("face_count")?,
                    emotion: r.try_get("emotion")?,
                    confidence: r.try_get::<f64, _>("confidence")? as f32,
                    attention: r.try_get::<f64, _>("attention")? as f32,
                    eye_contact: r.try_get::<i64, _>("eye_contact")? != 0,
                    blink_count: r.try_get("blink_count")?,
                    eye_closed: r.try_get::<i64, _>("eye_closed")? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(EmotionError::from)
    }
}

impl EmotionStore {
    /// Records a closure of the eyes (a blink or a long closure); the same one recorded twice (a
    /// redelivered frame) is kept once, and none of an erased session.
    #[tracing::instrument(name = "db.record_closure", skip_all)]
    pub async fn record_closure(
        &self,
        session_id: &str,
        closure: crate::blink::Closure,
    ) -> Result<(), EmotionError> {
        sqlx::query(
            "INSERT INTO blinks (session_id, started_at, duration_ms) SELECT $1, $2, $3
             WHERE NOT EXISTS (SELECT 1 FROM erased_sessions WHERE service = $4 AND session_id = $1)
             ON CONFLICT (session_id, started_at) DO NOTHING",
        )
        .bind(session_id)
        .bind(closure.started_at)
        .bind(closure.duration_ms)
        .bind(crate::SERVICE.name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session's closures of the eyes, oldest first.
    pub async fn closures(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::blink::Closure>, EmotionError> {
        let rows = sqlx::query(
            "SELECT started_at, duration_ms FROM blinks WHERE session_id = $1 ORDER BY started_at",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::blink::Closure {
                    started_at: r.try_get("started_at")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(EmotionError::from)
    }
}

/// The stricter of two policies: off over engagement over full.
pub fn stricter(a: AnalysisPolicy, b: AnalysisPolicy) -> AnalysisPolicy {
    let rank = |p: AnalysisPolicy| match p {
        AnalysisPolicy::Full => 0,
        AnalysisPolicy::Engagement => 1,
        AnalysisPolicy::Off => 2,
    };
    if rank(a) >= rank(b) { a } else { b }
}
