//! How long an organisation keeps its interviews, and which ones have outlived it.
//!
//! Each organisation keeps its interviews a number of days after they end: after completion,
//! or, for one never completed, after its invitation ran out (or it was created, when it has no
//! expiry). An organisation that set nothing keeps the shipped default (`RETENTION_DAYS`, 30).
//! The worker's sweeper asks regularly for what is due, and each is erased everywhere like a
//! requested erasure, with `retention` as the reason on its receipt.

use iv_platform::auth::{OrgId, Principal};
use iv_platform::db::{AddedColumn, Pool};
use serde::Serialize;
use sqlx::Row;

use crate::error::InterviewError;

/// The organisation's own period, when it set one (`NULL`: the default).
pub const ADDED_COLUMNS: &[AddedColumn] = &[AddedColumn {
    table: "organisations",
    column: "retention_days",
    definition: "BIGINT",
}];

/// The shipped default: a month, the longest Illinois allows after a deletion request and
/// enough for a hiring decision.
pub const DEFAULT_DAYS: u32 = 30;
/// The longest period an organisation may set: ten years.
pub const MAX_DAYS: u32 = 3650;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// An organisation's retention, as its admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = RetentionPolicy)]
pub struct Policy {
    pub org_id: String,
    pub days: u32,
    /// Whether this is the shipped default rather than the organisation's own choice.
    pub is_default: bool,
}

#[derive(Clone)]
pub struct Retention {
    pool: Pool,
    default_days: u32,
}

impl Retention {
    pub fn new(pool: Pool, default_days: u32) -> Self {
        Self { pool, default_days }
    }

    /// The caller's organisation's retention (its members may read it).
    pub async fn policy(&self, caller: &Principal) -> Result<Policy, InterviewError> {
        let org = match (caller.role.is_member(), caller.org.as_ref()) {
            (true, Some(org)) => org,
            _ => {
                return Err(InterviewError::Forbidden(
                    "an organisation's retention is for its admins and recruiters",
                ));
            }
        };
        self.of(org).await
    }

    pub async fn of(&self, org: &OrgId) -> Result<Policy, InterviewError> {
        let own: Option<Option<i64>> =
            sqlx::query_scalar("SELECT retention_days FROM organisations WHERE id = $1")
                .bind(&org.0)
                .fetch_optional(&self.pool)
                .await?;
        let own = own.flatten();
        Ok(Policy {
            org_id: org.0.clone(),
            days: own.map_or(self.default_days, |d| d as u32),
            is_default: own.is_none(),
        })
    }

    /// Sets the admin's organisation's retention to `days`.
    pub async fn set(&self, admin: &Principal, days: u32) -> Result<Policy, InterviewError> {
        let org = admin.admin_of().ok_or(InterviewError::Forbidden(
            "only an organisation's admins set its retention",
        ))?;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(InterviewError::InvalidArgument(format!(
                "days must be 1 to {MAX_DAYS}"
            )));
        }
        sqlx::query(
            "INSERT INTO organisations (id, created_at, retention_days) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET retention_days = $3",
        )
        .bind(&org.0)
        .bind(iv_contracts::now_millis())
        .bind(i64::from(days))
        .execute(&self.pool)
        .await?;
        tracing::info!(org = %org.0, days, by = %admin.subject, "retention set");
        self.of(org).await
    }

    /// Interviews whose retention ran out by `now` (epoch milliseconds), oldest first, at most
    /// `limit`, with their organisation.
    pub async fn due(&self, now: i64, limit: i64) -> Result<Vec<(String, OrgId)>, InterviewError> {
        let rows = sqlx::query(
            "SELECT i.id, i.org_id FROM interviews i LEFT JOIN organisations o ON o.id = i.org_id
             WHERE COALESCE(i.completed_at, i.expires_at, i.created_at)
                   + COALESCE(o.retention_days, $1) * $2 <= $3
             ORDER BY COALESCE(i.completed_at, i.expires_at, i.created_at) LIMIT $4",
        )
        .bind(i64::from(self.default_days))
        .bind(DAY_MS)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, OrgId(r.try_get("org_id")?))))
            .collect()
    }
}
