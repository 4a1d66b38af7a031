//! Notice and consent as use cases: the candidate reads the notice of their interview's
//! policy and consents to that version, or withdraws; admins write their organisation's
//! notices and default policy. Each step goes on the audit trail.

use iv_contracts::policy::AnalysisPolicy;
use iv_platform::audit::Action;
use iv_platform::auth::{Principal, Role};

use super::InterviewApp;
use crate::consent::{Consent, ConsentState, Notice};
use crate::error::InterviewError;
use crate::messages::ServerMessage;
use crate::store::{Session, SessionState};

impl InterviewApp {
    /// The notice of the interview's policy, for its candidate and its organisation's members.
    pub async fn notice_for(&self, caller: &Principal, id: &str) -> Result<Notice, InterviewError> {
        let session = self.authorize(caller, id).await?;
        self.notice(&session).await
    }

    pub(crate) async fn notice(&self, session: &Session) -> Result<Notice, InterviewError> {
        let days = self.retention.of(&session.org).await?.days;
        self.consents
            .notice(&session.org, session.policy, days)
            .await
    }

    /// The candidate consents to the notice they read, named by its version and SHA-256: a
    /// notice changed since is refused, so nobody consents to a text they did not see. A
    /// repeat answers with the first consent.
    pub async fn give_consent(
        &self,
        caller: &Principal,
        id: &str,
        version: i64,
        sha256: &str,
    ) -> Result<Consent, InterviewError> {
        let session = self.authorize(caller, id).await?;
        if caller.role != Role::Candidate {
            return Err(InterviewError::Forbidden(
                "the candidate consents with their invitation; a member attests a consent given \
                 elsewhere with \"consent\": true when creating the interview",
            ));
        }
        match &session.consent {
            ConsentState::Withdrawn => return Err(InterviewError::ConsentWithdrawn),
            ConsentState::Given(_) => {
                return self
                    .consents
                    .of(id)
                    .await?
                    .ok_or(InterviewError::ConsentRequired);
            }
            ConsentState::Pending => {}
        }
        if session.state == SessionState::Completed {
            return Err(InterviewError::SessionCompleted(id.to_string()));
        }
        let notice = self.notice(&session).await?;
        if notice.version != version || !notice.sha256.eq_ignore_ascii_case(sha256.trim()) {
            return Err(InterviewError::NoticeChanged {
                version: notice.version,
                sha256: notice.sha256,
            });
        }
        self.record_consent(&session, &notice, caller).await
    }

    pub(crate) async fn record_consent(
        &self,
        session: &Session,
        notice: &Notice,
        by: &Principal,
    ) -> Result<Consent, InterviewError> {
        let consent = self.consents.give(&session.id, notice, by).await?;
        let detail = format!("policy={} notice_version={}", notice.policy, notice.version);
        self.audited(by, Action::ConsentGiven, &session.org, &session.id, &detail)
            .await?;
        metrics::counter!("consents_total", "outcome" => "given").increment(1);
        tracing::info!(session_id = %session.id, notice_version = notice.version, role = by.role.as_str(), "consent given");
        Ok(consent)
    }

    /// The interview's consent record, for its candidate and members; `None` before consent.
    pub async fn consent_record(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Option<Consent>, InterviewError> {
        self.authorize(caller, id).await?;
        self.consents.of(id).await
    }

    /// Withdraws consent, for the candidate (or a member recording a withdrawal the candidate
    /// sent them): frames and answers are refused from now on, the open sockets are told, and
    /// the worker has the face-analysis data erased. The record stays, with when and by whom.
    pub async fn withdraw_consent(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Consent, InterviewError> {
        let session = self.authorize(caller, id).await?;
        if caller.role == Role::Service {
            return Err(InterviewError::Forbidden(
                "consent is withdrawn by the candidate or recorded by a member",
            ));
        }
        if session.consent == ConsentState::Pending {
            return Err(InterviewError::ConsentRequired);
        }
        let first = session.consent.is_given();
        let consent = self.consents.withdraw(id, &session.org, caller).await?;
        if !first {
            return Ok(consent);
        }
        self.relay.notify();
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.audited(caller, Action::ConsentWithdrawn, &session.org, id, "")
            .await?;
        metrics::counter!("consents_total", "outcome" => "withdrawn").increment(1);
        tracing::info!(session_id = %id, role = caller.role.as_str(), "consent withdrawn; face analysis stops and its data is erased");
        let session = self.store.get(id).await?;
        self.hub.send(
            id,
            ServerMessage::Status(
                self.status(
                    &session,
                    Some(
                        "Consent withdrawn: nothing more is analysed, and what was derived from \
                     your frames is being erased."
                            .into(),
                    ),
                ),
            ),
        );
        Ok(consent)
    }

    /// An admin writes a new version of their organisation's notice for `policy`.
    pub async fn publish_notice(
        &self,
        admin: &Principal,
        policy: AnalysisPolicy,
        text: &str,
    ) -> Result<Notice, InterviewError> {
        let version = self.consents.publish(admin, policy, text).await?;
        let org = admin.org.clone().ok_or(InterviewError::Forbidden(
            "only an organisation's admins write its notices",
        ))?;
        let detail = format!("policy={policy} version={version}");
        self.audited(admin, Action::NoticePublished, &org, "", &detail)
            .await?;
        let days = self.retention.of(&org).await?.days;
        self.consents.notice(&org, policy, days).await
    }

    /// The member's organisation's current notice for `policy`.
    pub async fn organisation_notice(
        &self,
        caller: &Principal,
        policy: AnalysisPolicy,
    ) -> Result<Notice, InterviewError> {
        let org = member_org(caller)?;
        let days = self.retention.of(org).await?.days;
        self.consents.notice(org, policy, days).await
    }

    /// The member's organisation's default policy.
    pub async fn default_policy(
        &self,
        caller: &Principal,
    ) -> Result<AnalysisPolicy, InterviewError> {
        self.consents.default_policy(member_org(caller)?).await
    }

    /// An admin sets the default policy: new interviews take it, or a stricter one.
    pub async fn set_default_policy(
        &self,
        admin: &Principal,
        policy: AnalysisPolicy,
    ) -> Result<AnalysisPolicy, InterviewError> {
        self.consents.set_default_policy(admin, policy).await?;
        let org = member_org(admin)?;
        self.audited(admin, Action::PolicyChanged, org, "", policy.as_str())
            .await?;
        Ok(policy)
    }
}

fn member_org(caller: &Principal) -> Result<&iv_platform::auth::OrgId, InterviewError> {
    caller.member_of().ok_or(InterviewError::Forbidden(
        "an organisation's settings are for its admins and recruiters",
    ))
}

#[cfg(test)]
mod tests;
