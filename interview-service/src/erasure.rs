//! Erasing an interview everywhere, and the receipt that proves it.
//!
//! The interview service holds the interview itself (session, answers, events not yet relayed).
//! On an erasure request it deletes those, keeps a receipt and writes `InterviewErased` to the
//! outbox, all in one transaction. The worker asks the emotion and scoring services to erase
//! what they hold; each reports its counts (`ErasureReported`), which land on the receipt. The
//! receipt is complete once every service that holds interview data has reported.
//!
//! Receipts and reports hold ids, subjects and counts, never the interview's content, and stay
//! after the interview is gone: they are the proof the request was carried out.

use std::collections::BTreeMap;

use iv_contracts::events::{ErasureReported, InterviewErased};
use iv_platform::auth::{OrgId, Principal};
use iv_platform::db::Pool;
use iv_platform::erasure::{Eraser, Erasure, Held};
use serde::Serialize;
use sqlx::Row;

use crate::error::InterviewError;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS erasures (
        session_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_role TEXT NOT NULL,
        reason TEXT NOT NULL,
        requested_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS erasure_reports (
        session_id TEXT NOT NULL,
        service TEXT NOT NULL,
        deleted TEXT NOT NULL,
        erased_at BIGINT NOT NULL,
        PRIMARY KEY (session_id, service)
    )",
];

/// The name this service reports its own erasures under.
pub const SERVICE: &str = "interview-service";

/// Every service that stores interview data; an erasure is complete when all have reported.
/// The worker and the gateway store none.
pub const REPORTING: [&str; 3] = [SERVICE, "emotion-service", "scoring-service"];

/// What the interview service holds for an interview. Its relayed events are gone from the
/// outbox already; the ones still waiting (deferred frames with their pixels) are deleted here.
const HELD: &[Held] = &[
    Held::by_session("answers"),
    Held::by_session("decisions"),
    Held::by_session("consents"),
    Held::by_session("outbox"),
    Held {
        table: "interviews",
        column: "id",
    },
];

/// Why an interview was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A recruiter, an admin or the candidate asked.
    Request,
    /// The organisation's retention period ran out.
    Retention,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Retention => "retention",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "retention" => Self::Retention,
            _ => Self::Request,
        }
    }
}

/// The proof of an erasure: who asked, when, and what each service deleted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub interview_id: String,
    pub org_id: String,
    pub requested_by: String,
    pub requested_role: String,
    pub reason: Reason,
    pub requested_at: i64,
    /// Rows deleted per table, per service that has reported.
    pub services: BTreeMap<String, Erasure>,
    /// Services that hold interview data and have not reported yet.
    pub pending: Vec<String>,
    /// When the last service reported; `None` while any is pending.
    pub completed_at: Option<i64>,
}

impl Receipt {
    pub fn org(&self) -> OrgId {
        OrgId(self.org_id.clone())
    }

    pub fn is_complete(&self) -> bool {
        self.completed_at.is_some()
    }
}

/// Who asked for an erasure, and why.
#[derive(Debug, Clone)]
pub struct Request {
    pub requested_by: Principal,
    pub reason: Reason,
}

#[derive(Clone)]
pub struct Erasures {
    pool: Pool,
    eraser: Eraser,
}

impl Erasures {
    pub fn new(pool: Pool) -> Self {
        Self {
            eraser: Eraser::new(pool.clone(), SERVICE, HELD),
            pool,
        }
    }

    /// Erases the interview's rows here, records (or keeps) the receipt and announces the
    /// erasure, in one transaction. Asked again, rows written since are deleted too, the first
    /// receipt stands, and the announcement goes out again while services are still pending,
    /// which nudges an erasure whose event was lost to a dead letter.
    #[tracing::instrument(name = "db.erase", skip_all, fields(session_id = %session_id))]
    pub async fn erase(
        &self,
        session_id: &str,
        org: &OrgId,
        request: &Request,
    ) -> Result<Receipt, InterviewError> {
        let now = iv_contracts::now_millis();
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        let mine = self.eraser.erase_in(&mut tx, session_id).await?;
        let by = &request.requested_by;
        sqlx::query(
            "INSERT INTO erasures (session_id, org_id, requested_by, requested_role, reason, requested_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(&org.0)
        .bind(&by.subject)
        .bind(by.role.as_str())
        .bind(request.reason.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        record(&mut tx, session_id, SERVICE, &mine).await?;
        let receipt = read(&mut tx, session_id)
            .await?
            .ok_or_else(|| InterviewError::SessionNotFound(session_id.to_string()))?;
        if !receipt.is_complete() {
            iv_platform::outbox::enqueue(
                &mut tx,
                &InterviewErased {
                    session_id: session_id.to_string(),
                    org_id: receipt.org_id.clone(),
                    requested_at: receipt.requested_at,
                    requested_by: receipt.requested_by.clone(),
                    reason: receipt.reason.as_str().to_string(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(receipt)
    }

    /// A service reported its erasure. Reports for an erasure this service never recorded are
    /// kept too: the receipt shows them if the request's own row comes later.
    pub async fn reported(&self, report: &ErasureReported) -> Result<(), InterviewError> {
        let erasure = Erasure {
            deleted: report.deleted.clone().into_iter().collect(),
            erased_at: report.erased_at,
        };
        let mut conn = self.pool.acquire().await?;
        record(&mut conn, &report.session_id, &report.service, &erasure).await
    }

    /// The interview's erasure receipt, if it was erased.
    pub async fn receipt(&self, session_id: &str) -> Result<Option<Receipt>, InterviewError> {
        let mut conn = self.pool.acquire().await?;
        read(&mut conn, session_id).await
    }
}

/// Keeps a service's first report: a repeated one carries the same counts.
async fn record(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
    service: &str,
    erasure: &Erasure,
) -> Result<(), InterviewError> {
    let deleted =
        serde_json::to_string(&erasure.deleted).map_err(|source| InterviewError::Corrupt {
            what: "erasure counts",
            source,
        })?;
    sqlx::query(
        "INSERT INTO erasure_reports (session_id, service, deleted, erased_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session_id, service) DO NOTHING",
    )
    .bind(session_id)
    .bind(service)
    .bind(deleted)
    .bind(erasure.erased_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn read(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
) -> Result<Option<Receipt>, InterviewError> {
    let Some(row) = sqlx::query(
        "SELECT org_id, requested_by, requested_role, reason, requested_at FROM erasures
         WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let reports = sqlx::query(
        "SELECT service, deleted, erased_at FROM erasure_reports WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut services = BTreeMap::new();
    for r in reports {
        let deleted: String = r.try_get("deleted")?;
        services.insert(
            r.try_get::<String, _>("service")?,
            Erasure {
                deleted: serde_json::from_str(&deleted).map_err(|source| {
                    InterviewError::Corrupt {
                        what: "erasure counts",
                        source,
                    }
                })?,
                erased_at: r.try_get("erased_at")?,
            },
        );
    }
    let pending: Vec<String> = REPORTING
        .iter()
        .filter(|s| !services.contains_key(**s))
        .map(|s| s.to_string())
        .collect();
    let completed_at = pending
        .is_empty()
        .then(|| services.values().map(|e| e.erased_at).max())
        .flatten();
    Ok(Some(Receipt {
        interview_id: session_id.to_string(),
        org_id: row.try_get("org_id")?,
        requested_by: row.try_get("requested_by")?,
        requested_role: row.try_get("requested_role")?,
        reason: Reason::parse(&row.try_get::<String, _>("reason")?),
        requested_at: row.try_get("requested_at")?,
        services,
        pending,
        completed_at,
    }))
}
