//! Durable scores and reports (SQLite or PostgreSQL).

use iv_platform::auth::OrgId;
use iv_platform::db::Pool;
use iv_platform::erasure::{Eraser, Erasure, Held};
use sqlx::Row;

use crate::error::ScoringError;
use crate::overall::Score;
use crate::report::Report;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS scores (
        session_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        overall_score DOUBLE PRECISION,
        sufficient_data BIGINT NOT NULL,
        payload TEXT NOT NULL,
        calculated_at BIGINT NOT NULL,
        org_id TEXT
    )",
    "CREATE TABLE IF NOT EXISTS reports (
        session_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        generated_at BIGINT NOT NULL
    )",
];

/// Columns added since the first schema, for databases made before them.
pub const ADDED_COLUMNS: &[iv_platform::db::AddedColumn] = &[
    // Scores made before organisations belong to none: only services read them.
    iv_platform::db::AddedColumn {
        table: "scores",
        column: "org_id",
        definition: "TEXT",
    },
];

#[derive(Clone)]
pub struct ScoreStore {
    pool: Pool,
    eraser: Eraser,
}

/// Every table holding rows of a session: what erasure deletes.
const HELD: &[Held] = &[Held::by_session("scores"), Held::by_session("reports")];

impl ScoreStore {
    pub fn new(pool: Pool) -> Self {
        Self {
            eraser: Eraser::new(pool.clone(), crate::SERVICE.name, HELD),
            pool,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Deletes the session's score and reports; it is never scored again.
    #[tracing::instrument(name = "db.erase", skip_all)]
    pub async fn erase(&self, session_id: &str) -> Result<Erasure, ScoringError> {
        Ok(self.eraser.erase(session_id).await?)
    }

    /// Saves a score of `org`'s interview; scoring the same interview again replaces it
    /// (events may be redelivered), but never one of another organisation: that answers
    /// [`ScoringError::ScoreNotFound`], as if it were not there. An erased interview is not
    /// scored again ([`ScoringError::SessionErased`]), even when its erasure lands mid-scoring.
    #[tracing::instrument(name = "db.save_score", skip_all)]
    pub async fn save_score(&self, score: &Score, org: Option<&OrgId>) -> Result<(), ScoringError> {
        let payload = serde_json::to_string(score).map_err(ScoringError::Serialize)?;
        let saved = sqlx::query(
            "INSERT INTO scores (session_id, user_id, overall_score, sufficient_data, payload, calculated_at, org_id)
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE NOT EXISTS (SELECT 1 FROM erased_sessions WHERE service = $8 AND session_id = $1)
             ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id,
                overall_score = excluded.overall_score, sufficient_data = excluded.sufficient_data,
                payload = excluded.payload, calculated_at = excluded.calculated_at,
                org_id = COALESCE(scores.org_id, excluded.org_id)
             WHERE scores.org_id IS NULL OR scores.org_id = excluded.org_id",
        )
        .bind(&score.session_id)
        .bind(&score.user_id)
        .bind(score.overall_score.map(f64::from))
        .bind(i64::from(score.sufficient_data))
        .bind(payload)
        .bind(score.calculated_at)
        .bind(org.map(|o| o.0.as_str()))
        .bind(crate::SERVICE.name)
        .execute(&self.pool)
        .await?;
        if saved.rows_affected() == 0 && self.eraser.is_erased(&score.session_id).await? {
            return Err(ScoringError::SessionErased(score.session_id.clone()));
        }
        if saved.rows_affected() == 0 {
            return Err(ScoringError::ScoreNotFound(score.session_id.clone()));
        }
        Ok(())
    }

    /// A session's score and the organisation it belongs to.
    pub async fn score(
        &self,
        session_id: &str,
    ) -> Result<Option<(Score, Option<OrgId>)>, ScoringError> {
        let row = sqlx::query("SELECT payload, org_id FROM scores WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let org: Option<String> = row.try_get("org_id")?;
        let payload: String = row.try_get("payload")?;
        let score = decode(session_id, &payload)?;
        Ok(Some((score, org.map(OrgId))))
    }

    #[tracing::instrument(name = "db.save_report", skip_all)]
    pub async fn save_report(&self, report: &Report) -> Result<(), ScoringError> {
        let payload = serde_json::to_string(report).map_err(ScoringError::Serialize)?;
        sqlx::query(
            "INSERT INTO reports (session_id, payload, generated_at) SELECT $1, $2, $3
             WHERE NOT EXISTS (SELECT 1 FROM erased_sessions WHERE service = $4 AND session_id = $1)
             ON CONFLICT (session_id) DO UPDATE SET payload = excluded.payload, generated_at = excluded.generated_at",
        )
        .bind(&report.session_id)
        .bind(payload)
        .bind(report.generated_at)
        .bind(crate::SERVICE.name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drops the stored report, so that the next one is built from the score as it is now.
    pub async fn delete_report(&self, session_id: &str) -> Result<i64, ScoringError> {
        let done = sqlx::query("DELETE FROM reports WHERE session_id = $1")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() as i64)
    }

    pub async fn report(&self, session_id: &str) -> Result<Option<Report>, ScoringError> {
        self.payload(
            "SELECT payload FROM reports WHERE session_id = $1",
            session_id,
        )
        .await
    }

    /// A session's stored JSON record, decoded; `None` when there is none.
    async fn payload<T: serde::de::DeserializeOwned>(
        &self,
        select: &'static str,
        session_id: &str,
    ) -> Result<Option<T>, ScoringError> {
        let row = sqlx::query(select)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload")?;
        decode(session_id, &payload).map(Some)
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    session_id: &str,
    payload: &str,
) -> Result<T, ScoringError> {
    serde_json::from_str(payload).map_err(|source| ScoringError::Corrupt {
        session: session_id.to_string(),
        source,
    })
}
