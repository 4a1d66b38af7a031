//! Organisations and their members (admins and recruiters), kept where the interviews are.
//!
//! A member's token is verified at the gateway (the backend's own issuer or the organisation's
//! identity provider); this is what the organisation itself says about them. Someone with a
//! valid token who is not on the list yet is added on first use with the token's role (the
//! provider is the source of truth for who works there), and an admin can revoke anyone: from
//! then on their requests to interviews answer 403 `MEMBERSHIP_REVOKED`, whatever their token
//! says. The first start creates the default organisation and its first admin.

use iv_contracts::now_millis;
use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::db::Pool;
use serde::Serialize;
use sqlx::Row;

use crate::error::InterviewError;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS organisations (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS members (
        org_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        role TEXT NOT NULL,
        added_at BIGINT NOT NULL,
        added_by TEXT NOT NULL,
        revoked_at BIGINT,
        revoked_by TEXT,
        PRIMARY KEY (org_id, subject)
    )",
];

/// The organisation and admin the embedded default signs in (no identity provider).
pub const DEFAULT_ORG: &str = "default";
pub const FIRST_ADMIN: &str = "admin";

/// Longest subject kept: e-mail addresses and provider ids fit well within it.
const MAX_SUBJECT: usize = 200;

/// One member, as an admin sees them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub subject: String,
    pub role: Role,
    pub added_at: i64,
    pub added_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

#[derive(Clone)]
pub struct Members {
    pool: Pool,
}

impl Members {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// With no organisation at all, creates the default one and its first admin, so the run
    /// command's sign-in link works on a fresh machine. Returns whether it did.
    pub async fn ensure_first(&self) -> Result<bool, InterviewError> {
        let any: Option<String> = sqlx::query_scalar("SELECT id FROM organisations LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if any.is_some() {
            return Ok(false);
        }
        let first = Principal::member(FIRST_ADMIN, Role::Admin, OrgId(DEFAULT_ORG.into()));
        self.insert(&first, "first start").await?;
        tracing::info!(
            org = DEFAULT_ORG,
            admin = FIRST_ADMIN,
            "created the first organisation and admin"
        );
        Ok(true)
    }

    /// Lets a member's request through unless the organisation revoked them; someone seen for
    /// the first time is added with their token's role. Candidates and services are not
    /// members and pass untouched.
    pub async fn admit(&self, caller: &Principal) -> Result<(), InterviewError> {
        let (true, Some(org)) = (caller.role.is_member(), caller.org.as_ref()) else {
            return Ok(());
        };
        match self.get(org, &caller.subject).await? {
            Some(m) if m.revoked_at.is_some() => {
                metrics::counter!("interview_access_refused_total").increment(1);
                Err(InterviewError::MembershipRevoked)
            }
            Some(_) => Ok(()),
            None => {
                check_subject(&caller.subject)?;
                self.insert(caller, "first sign-in").await?;
                tracing::info!(org = %org.0, subject = %caller.subject, role = %caller.role, "member added on first sign-in");
                Ok(())
            }
        }
    }

    /// The admin's organisation and its members, revoked ones included (with when and by
    /// whom).
    pub async fn list(&self, admin: &Principal) -> Result<(OrgId, Vec<Member>), InterviewError> {
        let org = admin_org(admin)?;
        Ok((org.clone(), self.members_of(org).await?))
    }

    async fn members_of(&self, org: &OrgId) -> Result<Vec<Member>, InterviewError> {
        let rows = sqlx::query(
            "SELECT subject, role, added_at, added_by, revoked_at, revoked_by FROM members
             WHERE org_id = $1 ORDER BY added_at, subject",
        )
        .bind(&org.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member).collect()
    }

    /// Adds a member (or reinstates a revoked one, with the new role).
    pub async fn add(
        &self,
        admin: &Principal,
        subject: &str,
        role: Role,
    ) -> Result<Member, InterviewError> {
        let org = admin_org(admin)?;
        check_subject(subject)?;
        if !role.is_member() {
            return Err(InterviewError::InvalidArgument(
                "role must be admin or recruiter".into(),
            ));
        }
        match self.get(org, subject).await? {
            Some(m) if m.revoked_at.is_none() => {
                return Err(InterviewError::MemberExists(subject.to_string()));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE members SET role = $3, added_at = $4, added_by = $5, revoked_at = NULL, revoked_by = NULL
                     WHERE org_id = $1 AND subject = $2",
                )
                .bind(&org.0)
                .bind(subject)
                .bind(role.as_str())
                .bind(now_millis())
                .bind(&admin.subject)
                .execute(&self.pool)
                .await?;
            }
            None => {
                self.insert(
                    &Principal::member(subject, role, org.clone()),
                    &admin.subject,
                )
                .await?
            }
        }
        tracing::info!(org = %org.0, subject, %role, by = %admin.subject, "member added");
        self.get(org, subject)
            .await?
            .ok_or_else(|| InterviewError::MemberNotFound(subject.to_string()))
    }

    /// Revokes a member; the organisation keeps at least one admin.
    pub async fn revoke(&self, admin: &Principal, subject: &str) -> Result<Member, InterviewError> {
        let org = admin_org(admin)?;
        let Some(target) = self
            .get(org, subject)
            .await?
            .filter(|m| m.revoked_at.is_none())
        else {
            return Err(InterviewError::MemberNotFound(subject.to_string()));
        };
        if target.role == Role::Admin {
            let admins: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM members WHERE org_id = $1 AND role = 'admin' AND revoked_at IS NULL",
            )
            .bind(&org.0)
            .fetch_one(&self.pool)
            .await?;
            if admins <= 1 {
                return Err(InterviewError::LastAdmin);
            }
        }
        sqlx::query(
            "UPDATE members SET revoked_at = $3, revoked_by = $4 WHERE org_id = $1 AND subject = $2",
        )
        .bind(&org.0)
        .bind(subject)
        .bind(now_millis())
        .bind(&admin.subject)
        .execute(&self.pool)
        .await?;
        tracing::info!(org = %org.0, subject, by = %admin.subject, "member revoked");
        self.get(org, subject)
            .await?
            .ok_or_else(|| InterviewError::MemberNotFound(subject.to_string()))
    }

    async fn get(&self, org: &OrgId, subject: &str) -> Result<Option<Member>, InterviewError> {
        let row = sqlx::query(
            "SELECT subject, role, added_at, added_by, revoked_at, revoked_by FROM members
             WHERE org_id = $1 AND subject = $2",
        )
        .bind(&org.0)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(member).transpose()
    }

    /// Inserts the member and, the first time, their organisation.
    async fn insert(&self, who: &Principal, added_by: &str) -> Result<(), InterviewError> {
        let org = who.org.as_ref().expect("members belong to an organisation");
        let now = now_millis();
        sqlx::query("INSERT INTO organisations (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(&org.0)
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO members (org_id, subject, role, added_at, added_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, subject) DO NOTHING",
        )
        .bind(&org.0)
        .bind(&who.subject)
        .bind(who.role.as_str())
        .bind(now)
        .bind(added_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The organisation an admin manages; anyone else may not manage members.
fn admin_org(caller: &Principal) -> Result<&OrgId, InterviewError> {
    caller.admin_of().ok_or(InterviewError::Forbidden(
        "only an organisation's admins manage its members",
    ))
}

fn check_subject(subject: &str) -> Result<(), InterviewError> {
    if subject.trim().is_empty()
        || subject.len() > MAX_SUBJECT
        || subject.chars().any(char::is_control)
    {
        return Err(InterviewError::InvalidArgument(format!(
            "subject must be 1 to {MAX_SUBJECT} printable characters"
        )));
    }
    Ok(())
}

fn member(row: &sqlx::any::AnyRow) -> Result<Member, InterviewError> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        subject: row.try_get("subject")?,
        role: role
            .parse()
            .map_err(|_| InterviewError::UnknownState(format!("member role {role}")))?,
        added_at: row.try_get("added_at")?,
        added_by: row.try_get("added_by")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}
