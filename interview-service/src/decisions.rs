//! Hiring decisions: what a recruiter decided about an interview, why, who and when.
//!
//! The system scores; it never decides. A person records the decision (advance, reject or
//! hold, with a reason), and every decision is kept, so a changed mind shows as a second
//! entry rather than an overwrite. Decisions are about the candidate: they are erased with the
//! interview.

use std::str::FromStr;

use iv_platform::auth::Principal;
use iv_platform::db::Pool;
use serde::Serialize;
use sqlx::Row;

use crate::error::InterviewError;

pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_role TEXT NOT NULL,
    decided_at BIGINT NOT NULL
)"];

/// A reason long enough to explain, short enough to stay a reason.
pub const MAX_REASON_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Advance,
    Reject,
    Hold,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advance => "advance",
            Self::Reject => "reject",
            Self::Hold => "hold",
        }
    }
}

impl FromStr for Outcome {
    type Err = InterviewError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "advance" => Ok(Self::Advance),
            "reject" => Ok(Self::Reject),
            "hold" => Ok(Self::Hold),
            other => Err(InterviewError::InvalidArgument(format!(
                "decision must be advance, reject or hold, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub decision: Outcome,
    pub reason: String,
    pub decided_by: String,
    pub decided_role: String,
    pub decided_at: i64,
}

#[derive(Clone)]
pub struct Decisions {
    pool: Pool,
}

impl Decisions {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Records `by`'s decision on the interview.
    pub async fn record(
        &self,
        session_id: &str,
        by: &Principal,
        decision: Outcome,
        reason: &str,
    ) -> Result<Decision, InterviewError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(InterviewError::InvalidArgument(format!(
                "a decision needs a reason of 1 to {MAX_REASON_CHARS} characters"
            )));
        }
        let d = Decision {
            decision,
            reason: reason.to_string(),
            decided_by: by.subject.clone(),
            decided_role: by.role.as_str().to_string(),
            decided_at: iv_contracts::now_millis(),
        };
        sqlx::query(
            "INSERT INTO decisions (id, session_id, outcome, reason, decided_by, decided_role, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(session_id)
        .bind(d.decision.as_str())
        .bind(&d.reason)
        .bind(&d.decided_by)
        .bind(&d.decided_role)
        .bind(d.decided_at)
        .execute(&self.pool)
        .await?;
        Ok(d)
    }

    /// Every decision on the interview, oldest first; the last one stands.
    pub async fn history(&self, session_id: &str) -> Result<Vec<Decision>, InterviewError> {
        let rows = sqlx::query(
            "SELECT outcome, reason, decided_by, decided_role, decided_at FROM decisions
             WHERE session_id = $1 ORDER BY decided_at, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Decision {
                    decision: r.try_get::<String, _>("outcome")?.parse()?,
                    reason: r.try_get("reason")?,
                    decided_by: r.try_get("decided_by")?,
                    decided_role: r.try_get("decided_role")?,
                    decided_at: r.try_get("decided_at")?,
                })
            })
            .collect()
    }
}
