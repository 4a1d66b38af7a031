//! The audit trail: an append-only, hash-chained log of who looked at or changed what.
//!
//! Every view of an interview's results (its answers, score, report, emotion timeline, export)
//! by a person, and every erasure, retention change, hiring decision and dead-letter replay, is
//! one entry: when, the actor (subject, role, organisation), the action, the interview, a short
//! detail. Entries hold ids, never interview content, and erasure leaves them: they are the
//! record of what happened to the data.
//!
//! Each entry carries the hash of the one before (SHA-256 over its fields and that hash), so an
//! entry changed or removed afterwards breaks the chain at that point; [`AuditLog::verify`]
//! names the first broken entry. The services of a deployment share one database, so they
//! write one chain; an entry is committed before the request it records is answered.

use std::time::Duration;

use aws_lc_rs::digest;
use serde::Serialize;
use sqlx::Row;

use crate::auth::{OrgId, Principal, Role};
use crate::db::Pool;

pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_subject TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    actor_org TEXT NOT NULL,
    action TEXT NOT NULL,
    org_id TEXT NOT NULL,
    interview_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
)"];

/// What the first entry chains to.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Appends that lose a race for the chain's end (another writer appended first) try again.
const APPEND_TRIES: u32 = 8;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    InterviewViewed,
    ScoreViewed,
    ReportViewed,
    TimelineViewed,
    ExportViewed,
    InterviewErased,
    RetentionChanged,
    DecisionRecorded,
    DeadLettersReplayed,
    ConsentGiven,
    ConsentWithdrawn,
    NoticePublished,
    PolicyChanged,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Self::InterviewViewed,
        Self::ScoreViewed,
        Self::ReportViewed,
        Self::TimelineViewed,
        Self::ExportViewed,
        Self::InterviewErased,
        Self::RetentionChanged,
        Self::DecisionRecorded,
        Self::DeadLettersReplayed,
        Self::ConsentGiven,
        Self::ConsentWithdrawn,
        Self::NoticePublished,
        Self::PolicyChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InterviewViewed => "interview_viewed",
            Self::ScoreViewed => "score_viewed",
            Self::ReportViewed => "report_viewed",
            Self::TimelineViewed => "timeline_viewed",
            Self::ExportViewed => "export_viewed",
            Self::InterviewErased => "interview_erased",
            Self::RetentionChanged => "retention_changed",
            Self::DecisionRecorded => "decision_recorded",
            Self::DeadLettersReplayed => "dead_letters_replayed",
            Self::ConsentGiven => "consent_given",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::NoticePublished => "notice_published",
            Self::PolicyChanged => "policy_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub subject: String,
    pub role: String,
    pub org: String,
}

impl Actor {
    pub fn of(p: &Principal) -> Self {
        Self {
            subject: p.subject.clone(),
            role: p.role.as_str().to_string(),
            org: p.org.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
        }
    }
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor: Actor,
    /// The stored action; an unknown one (written by a newer version) is kept as written.
    pub action: String,
    /// The organisation the entry belongs to: the interview's.
    pub org_id: String,
    pub interview_id: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    fn computed_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.org_id,
            &self.interview_id,
            &self.detail,
        )
    }
}

/// The chain checked from its first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub entries: i64,
    pub valid: bool,
    /// The first entry whose hash or link does not hold: it, or one before it, was changed,
    /// or entries were removed before it.
    pub first_broken: Option<i64>,
}

/// What is being recorded: an action on an interview of an organisation.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub action: Action,
    pub org: &'a OrgId,
    pub interview_id: &'a str,
    pub detail: &'a str,
}

#[derive(Clone)]
pub struct AuditLog {
    pool: Pool,
}

impl AuditLog {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Records a person's view of an interview's results; services reading for their work
    /// (the worker fetching a timeline to score) are not views.
    pub async fn viewed(
        &self,
        viewer: &Principal,
        record: Record<'_>,
    ) -> Result<Option<Entry>, sqlx::Error> {
        if viewer.role == Role::Service {
            return Ok(None);
        }
        self.record(viewer, record).await.map(Some)
    }

    /// Appends an entry at the end of the chain.
    #[tracing::instrument(name = "db.audit", skip_all, fields(action = record.action.as_str()))]
    pub async fn record(
        &self,
        actor: &Principal,
        record: Record<'_>,
    ) -> Result<Entry, sqlx::Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.append(actor, &record).await {
                Ok(entry) => return Ok(entry),
                // Another writer took the end of the chain (a unique `seq` or `prev_hash`
                // clash on PostgreSQL; SQLite's writers wait their turn): read the new end and
                // try again.
                Err(e) if tries < APPEND_TRIES => {
                    tracing::debug!(error = %e, tries, "audit append raced; again");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn append(&self, actor: &Principal, record: &Record<'_>) -> Result<Entry, sqlx::Error> {
        let mut tx = crate::db::begin_write(&self.pool).await?;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (seq, prev_hash) = match last {
            Some(row) => (row.try_get::<i64, _>("seq")? + 1, row.try_get("hash")?),
            None => (1, GENESIS.to_string()),
        };
        let mut entry = Entry {
            seq,
            at: iv_contracts::now_millis(),
            actor: Actor::of(actor),
            action: record.action.as_str().to_string(),
            org_id: record.org.0.clone(),
            interview_id: record.interview_id.to_string(),
            detail: record.detail.to_string(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor_subject, actor_role, actor_org, action, org_id,
                interview_id, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor.subject)
        .bind(&entry.actor.role)
        .bind(&entry.actor.org)
        .bind(&entry.action)
        .bind(&entry.org_id)
        .bind(&entry.interview_id)
        .bind(&entry.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// An organisation's entries, oldest first, optionally about one interview.
    pub async fn entries(
        &self,
        org: &OrgId,
        interview_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entry>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE org_id = $1 AND ($2 = '' OR interview_id = $2)
             ORDER BY seq LIMIT $3",
        )
        .bind(&org.0)
        .bind(interview_id.unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Walks the whole chain from its first entry and names the first that does not hold.
    pub async fn verify(&self) -> Result<Verification, sqlx::Error> {
        let mut expected_prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut entries = 0;
        let mut after = 0;
        loop {
            let rows =
                sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000")
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?;
            if rows.is_empty() {
                return Ok(Verification {
                    entries,
                    valid: true,
                    first_broken: None,
                });
            }
            for row in &rows {
                let e = entry(row)?;
                entries += 1;
                if e.seq != expected_seq
                    || e.prev_hash != expected_prev
                    || e.hash != e.computed_hash()
                {
                    return Ok(Verification {
                        entries,
                        valid: false,
                        first_broken: Some(e.seq),
                    });
                }
                expected_prev = e.hash;
                expected_seq = e.seq + 1;
                after = e.seq;
            }
        }
    }
}

fn entry(row: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: Actor {
            subject: row.try_get("actor_subject")?,
            role: row.try_get("actor_role")?,
            org: row.try_get("actor_org")?,
        },
        action: row.try_get("action")?,
        org_id: row.try_get("org_id")?,
        interview_id: row.try_get("interview_id")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// SHA-256, hex, over the link and every field, each length-prefixed so that no two entries
/// hash alike by moving text from one field to the next.
#[allow(clippy::too_many_arguments)]
fn chain_hash(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &Actor,
    action: &str,
    org_id: &str,
    interview_id: &str,
    detail: &str,
) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let seq = seq.to_string();
    let at = at.to_string();
    for field in [
        prev,
        &seq,
        &at,
        &actor.subject,
        &actor.role,
        &actor.org,
        action,
        org_id,
        interview_id,
        detail,
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn log() -> AuditLog {
        AuditLog::new(crate::testing::fresh_sqlite(&[SCHEMA]).await)
    }

    fn admin() -> Principal {
        Principal::member("ada", Role::Admin, OrgId("acme".into()))
    }

    fn on<'a>(action: Action, org: &'a OrgId, interview_id: &'a str) -> Record<'a> {
        Record {
            action,
            org,
            interview_id,
            detail: "",
        }
    }

    #[tokio::test]
    async fn entries_chain_and_a_changed_or_removed_one_is_named() {
        let log = log().await;
        let acme = OrgId("acme".into());
        for n in 0..5 {
            let id = format!("i-{n}");
            log.record(&admin(), on(Action::ScoreViewed, &acme, &id))
                .await
                .unwrap();
        }
        let ok = log.verify().await.unwrap();
        assert_eq!((ok.entries, ok.valid, ok.first_broken), (5, true, None));

        sqlx::query("UPDATE audit_log SET actor_subject = 'someone-else' WHERE seq = 3")
            .execute(&log.pool)
            .await
            .unwrap();
        assert_eq!(log.verify().await.unwrap().first_broken, Some(3));
        sqlx::query("UPDATE audit_log SET actor_subject = 'ada' WHERE seq = 3")
            .execute(&log.pool)
            .await
            .unwrap();
        assert!(
            log.verify().await.unwrap().valid,
            "put back, it holds again"
        );

        sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(&log.pool)
            .await
            .unwrap();
        assert_eq!(log.verify().await.unwrap().first_broken, Some(3));
    }

    /// Three pools on one file, as the services share the embedded database, with more writers
    /// than the retries could absorb if each lost the race: all append, in one chain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_from_several_pools_make_one_unbroken_chain() {
        let first = log().await;
        let url = first.pool.connect_options().database_url.to_string();
        let mut logs = vec![first];
        for _ in 0..2 {
            logs.push(AuditLog::new(
                crate::db::open(&url, &[SCHEMA]).await.unwrap(),
            ));
        }
        let acme = OrgId("acme".into());
        let tasks: Vec<_> = (0..48)
            .map(|n| {
                let log = logs[n % logs.len()].clone();
                let acme = acme.clone();
                tokio::spawn(async move {
                    let id = format!("i-{n}");
                    log.record(&admin(), on(Action::ReportViewed, &acme, &id))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let v = logs[0].verify().await.unwrap();
        assert_eq!((v.entries, v.valid), (48, true));
    }

    #[tokio::test]
    async fn an_organisation_reads_its_own_entries_and_services_reading_are_not_views() {
        let log = log().await;
        let (acme, other) = (OrgId("acme".into()), OrgId("other".into()));
        log.record(&admin(), on(Action::InterviewErased, &acme, "i-1"))
            .await
            .unwrap();
        log.record(&admin(), on(Action::ScoreViewed, &acme, "i-2"))
            .await
            .unwrap();
        log.record(&admin(), on(Action::ScoreViewed, &other, "i-3"))
            .await
            .unwrap();
        let worker = Principal::service("worker-service");
        assert!(
            log.viewed(&worker, on(Action::TimelineViewed, &acme, "i-1"))
                .await
                .unwrap()
                .is_none()
        );
        let mine = log.entries(&acme, None, 100).await.unwrap();
        assert_eq!(mine.len(), 2);
        let about = log.entries(&acme, Some("i-1"), 100).await.unwrap();
        assert_eq!(about.len(), 1);
        assert_eq!(about[0].action, "interview_erased");
        assert_eq!(about[0].actor.subject, "ada");
        assert_eq!(about[0].actor.role, "admin");
        assert!(
            log.entries(&other, Some("i-1"), 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
