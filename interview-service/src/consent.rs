//! Notices and consent.
//!
//! Each organisation has a notice per analysis policy, versioned: what is analysed and why,
//! what is not, how long data is kept, who sees it, and how to ask for deletion or for a process
//! without automated analysis. An organisation that wrote none shows the shipped notice (version
//! 0), filled in with its name and retention. The candidate reads the notice of their
//! interview's policy and consents to that version; the record keeps the version, the text's
//! SHA-256, the policy and the time. Withdrawal is kept on the same record: analysis stops for
//! good and the face-analysis data is erased, and the record says when and by whom.

use aws_lc_rs::digest;
use iv_contracts::emotion::ConsentProof;
use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::{OrgId, Principal};
use iv_platform::db::{AddedColumn, Pool};
use serde::Serialize;
use sqlx::Row;

use crate::error::InterviewError;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS notices (
        org_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        version BIGINT NOT NULL,
        text TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (org_id, policy, version)
    )",
    "CREATE TABLE IF NOT EXISTS consents (
        session_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        notice_version BIGINT NOT NULL,
        notice_sha256 TEXT NOT NULL,
        given_at BIGINT NOT NULL,
        given_by TEXT NOT NULL,
        given_role TEXT NOT NULL,
        withdrawn_at BIGINT,
        withdrawn_by TEXT
    )",
];

/// The interview carries its consent beside its state, so that a frame needs no second read;
/// the `consents` table keeps the full record. An organisation's default policy sits with its
/// other settings.
pub const ADDED_COLUMNS: &[AddedColumn] = &[
    AddedColumn {
        table: "interviews",
        column: "consent_version",
        definition: "BIGINT",
    },
    AddedColumn {
        table: "interviews",
        column: "consent_sha256",
        definition: "TEXT",
    },
    AddedColumn {
        table: "interviews",
        column: "consent_given_at",
        definition: "BIGINT",
    },
    AddedColumn {
        table: "organisations",
        column: "default_policy",
        definition: "TEXT",
    },
];

/// Where an interview's consent stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsentState {
    /// Not given yet: nothing is analysed or scored.
    Pending,
    Given(Grant),
    /// Taken back: nothing more is analysed, ever.
    Withdrawn,
}

/// What was consented to, as each frame passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Grant {
    pub notice_version: i64,
    pub notice_sha256: String,
    pub given_at: i64,
}

impl ConsentState {
    /// Stored as `interviews.consent`: 0 pending, 1 given, 2 withdrawn. A row marked given
    /// without a notice (from before notices) counts as pending: nobody read a notice.
    pub fn from_row(
        state: i64,
        version: Option<i64>,
        sha256: Option<String>,
        given_at: Option<i64>,
    ) -> Self {
        match (state, version, sha256, given_at) {
            (1, Some(notice_version), Some(notice_sha256), Some(given_at)) => Self::Given(Grant {
                notice_version,
                notice_sha256,
                given_at,
            }),
            (2, ..) => Self::Withdrawn,
            _ => Self::Pending,
        }
    }

    pub fn is_given(&self) -> bool {
        matches!(self, Self::Given(_))
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Given(_) => "given",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The grant, or why there is none.
    pub fn grant(&self) -> Result<&Grant, InterviewError> {
        match self {
            Self::Given(g) => Ok(g),
            Self::Pending => Err(InterviewError::ConsentRequired),
            Self::Withdrawn => Err(InterviewError::ConsentWithdrawn),
        }
    }
}

impl Grant {
    /// What a frame of an interview under `policy` carries to the emotion service.
    pub fn proof(&self, policy: AnalysisPolicy) -> ConsentProof {
        ConsentProof {
            notice_version: self.notice_version,
            notice_sha256: self.notice_sha256.clone(),
            policy: iv_contracts::emotion::AnalysisPolicy::from(policy) as i32,
            given_at: self.given_at,
        }
    }
}

/// A notice long enough for any organisation's wording, short enough to be read.
pub const MAX_NOTICE_CHARS: usize = 20_000;

/// A notice as the candidate reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub org_id: String,
    pub policy: &'static str,
    /// 0 for the shipped notice; the organisation's own count from 1.
    pub version: i64,
    pub text: String,
    /// SHA-256 of the text, hex: what a consent names, so a changed text is a new consent.
    pub sha256: String,
}

/// What a candidate agreed to, when, and whether they took it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Consent {
    pub interview_id: String,
    pub policy: String,
    pub notice_version: i64,
    pub notice_sha256: String,
    pub given_at: i64,
    pub given_by: String,
    /// `candidate`, or the role of a member who recorded consent given outside the system
    /// (the `consent` flag when the interview was created).
    pub given_role: String,
    pub withdrawn_at: Option<i64>,
    pub withdrawn_by: Option<String>,
}

impl Consent {
    pub fn is_active(&self) -> bool {
        self.withdrawn_at.is_none()
    }
}

#[derive(Clone)]
pub struct Consents {
    pool: Pool,
}

impl Consents {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The organisation's current notice for `policy`; the shipped one when it wrote none.
    pub async fn notice(
        &self,
        org: &OrgId,
        policy: AnalysisPolicy,
        retention_days: u32,
    ) -> Result<Notice, InterviewError> {
        let own = sqlx::query(
            "SELECT version, text FROM notices WHERE org_id = $1 AND policy = $2
             ORDER BY version DESC LIMIT 1",
        )
        .bind(&org.0)
        .bind(policy.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let (version, text) = match own {
            Some(row) => (row.try_get("version")?, row.try_get("text")?),
            None => (0, shipped(org, policy, retention_days)),
        };
        Ok(Notice {
            org_id: org.0.clone(),
            policy: policy.as_str(),
            version,
            sha256: sha256(&text),
            text,
        })
    }

    /// An admin writes a new version of their organisation's notice for `policy`.
    pub async fn publish(
        &self,
        admin: &Principal,
        policy: AnalysisPolicy,
        text: &str,
    ) -> Result<i64, InterviewError> {
        let org = admin.admin_of().ok_or(InterviewError::Forbidden(
            "only an organisation's admins write its notices",
        ))?;
        if text.trim().is_empty() || text.chars().count() > MAX_NOTICE_CHARS {
            return Err(InterviewError::InvalidArgument(format!(
                "a notice is 1 to {MAX_NOTICE_CHARS} characters"
            )));
        }
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM notices WHERE org_id = $1 AND policy = $2",
        )
        .bind(&org.0)
        .bind(policy.as_str())
        .fetch_one(&self.pool)
        .await?;
        let version = last.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO notices (org_id, policy, version, text, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&org.0)
        .bind(policy.as_str())
        .bind(version)
        .bind(text)
        .bind(iv_contracts::now_millis())
        .bind(&admin.subject)
        .execute(&self.pool)
        .await?;
        Ok(version)
    }

    pub async fn of(&self, session_id: &str) -> Result<Option<Consent>, InterviewError> {
        let row = sqlx::query("SELECT * FROM consents WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Consent {
                interview_id: r.try_get("session_id")?,
                policy: r.try_get("policy")?,
                notice_version: r.try_get("notice_version")?,
                notice_sha256: r.try_get("notice_sha256")?,
                given_at: r.try_get("given_at")?,
                given_by: r.try_get("given_by")?,
                given_role: r.try_get("given_role")?,
                withdrawn_at: r.try_get("withdrawn_at")?,
                withdrawn_by: r.try_get("withdrawn_by")?,
            })
        })
        .transpose()
    }

    /// Records consent to `notice` and lets the interview's frames be analysed, in one
    /// transaction. A consent given before stands (the first record is kept).
    pub async fn give(
        &self,
        session_id: &str,
        notice: &Notice,
        by: &Principal,
    ) -> Result<Consent, InterviewError> {
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO consents (session_id, org_id, policy, notice_version, notice_sha256,
                given_at, given_by, given_role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(&notice.org_id)
        .bind(notice.policy)
        .bind(notice.version)
        .bind(&notice.sha256)
        .bind(iv_contracts::now_millis())
        .bind(&by.subject)
        .bind(by.role.as_str())
        .execute(&mut *tx)
        .await?;
        // From the record, so that a repeat leaves the first consent in force.
        sqlx::query(
            "UPDATE interviews SET consent = 1,
                consent_version = (SELECT notice_version FROM consents WHERE session_id = $1),
                consent_sha256 = (SELECT notice_sha256 FROM consents WHERE session_id = $1),
                consent_given_at = (SELECT given_at FROM consents WHERE session_id = $1)
             WHERE id = $1 AND EXISTS
                (SELECT 1 FROM consents WHERE session_id = $1 AND withdrawn_at IS NULL)",
        )
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let consent = self
            .of(session_id)
            .await?
            .ok_or_else(|| InterviewError::SessionNotFound(session_id.to_string()))?;
        if consent.withdrawn_at.is_some() {
            return Err(InterviewError::ConsentWithdrawn);
        }
        Ok(consent)
    }

    /// Withdraws consent: frames are refused from now on, and the withdrawal announced in the
    /// same transaction (the worker has the face-analysis data erased). Asked again, the first
    /// withdrawal stands.
    pub async fn withdraw(
        &self,
        session_id: &str,
        org: &OrgId,
        by: &Principal,
    ) -> Result<Consent, InterviewError> {
        let now = iv_contracts::now_millis();
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        let changed = sqlx::query(
            "UPDATE consents SET withdrawn_at = $2, withdrawn_by = $3
             WHERE session_id = $1 AND withdrawn_at IS NULL",
        )
        .bind(session_id)
        .bind(now)
        .bind(&by.subject)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query("UPDATE interviews SET consent = 2 WHERE id = $1")
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
            iv_platform::outbox::enqueue(
                &mut tx,
                &iv_contracts::events::ConsentWithdrawn {
                    session_id: session_id.to_string(),
                    org_id: org.0.clone(),
                    withdrawn_at: now,
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.of(session_id)
            .await?
            .ok_or(InterviewError::ConsentRequired)
    }

    /// The organisation's default analysis policy: `full` until an admin sets another.
    pub async fn default_policy(&self, org: &OrgId) -> Result<AnalysisPolicy, InterviewError> {
        let own: Option<Option<String>> =
            sqlx::query_scalar("SELECT default_policy FROM organisations WHERE id = $1")
                .bind(&org.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(own
            .flatten()
            .map_or(AnalysisPolicy::Full, |p| AnalysisPolicy::from_stored(&p)))
    }

    /// An admin sets their organisation's default policy; interviews already made keep theirs.
    pub async fn set_default_policy(
        &self,
        admin: &Principal,
        policy: AnalysisPolicy,
    ) -> Result<(), InterviewError> {
        let org = admin.admin_of().ok_or(InterviewError::Forbidden(
            "only an organisation's admins set its analysis policy",
        ))?;
        sqlx::query(
            "INSERT INTO organisations (id, created_at, default_policy) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET default_policy = $3",
        )
        .bind(&org.0)
        .bind(iv_contracts::now_millis())
        .bind(policy.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

pub fn sha256(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The shipped notice, for an organisation that wrote none: plain words, one per policy.
pub fn shipped(org: &OrgId, policy: AnalysisPolicy, retention_days: u32) -> String {
    let org = &org.0;
    let analysed = match policy {
        AnalysisPolicy::Full => {
            "Your webcam frames are analysed one by one while you answer: whether a face is \
             present and how many, where you look and how your head is turned (attention and \
             eye contact), your blinks, and your facial expression (an estimate of emotion). \
             Your typed answers are compared by meaning with the points each question expects."
        }
        AnalysisPolicy::Engagement => {
            "Your webcam frames are analysed one by one while you answer: whether a face is \
             present and how many, where you look and how your head is turned (attention and \
             eye contact), and your blinks. No emotion or facial expression is inferred. Your \
             typed answers are compared by meaning with the points each question expects."
        }
        AnalysisPolicy::Off => {
            "Your webcam frames are not analysed. Your typed answers are compared by meaning \
             with the points each question expects."
        }
    };
    format!(
        "{org} uses an automated system in this interview.\n\n\
         What is analysed and why: {analysed} This helps {org}'s recruiters review interviews \
         consistently; the scores are advisory and a person makes every decision.\n\n\
         What is not done: video frames are not recorded or stored; no decision is made by the \
         system.\n\n\
         How long data is kept: {retention_days} days after the interview ends; then it is \
         erased everywhere.\n\n\
         Who sees it: {org}'s recruiters and admins.\n\n\
         Your rights: you may withdraw this consent at any time (analysis of your frames stops \
         at once and what was derived from them is erased); ask for all your interview data \
         to be erased; export it; and ask {org} for an interview without automated analysis."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_notices_say_what_each_policy_analyses_and_what_it_does_not() {
        let org = OrgId("acme".into());
        let full = shipped(&org, AnalysisPolicy::Full, 30);
        let engagement = shipped(&org, AnalysisPolicy::Engagement, 30);
        let off = shipped(&org, AnalysisPolicy::Off, 45);
        assert!(full.contains("facial expression (an estimate of emotion)"));
        assert!(engagement.contains("No emotion or facial expression is inferred"));
        assert!(off.contains("not analysed") && off.contains("45 days"));
        for text in [&full, &engagement, &off] {
            assert!(text.contains("withdraw") && text.contains("erased") && text.contains("acme"));
        }
        assert_ne!(sha256(&full), sha256(&engagement));
        assert_eq!(sha256("abc").len(), 64);
    }
}
