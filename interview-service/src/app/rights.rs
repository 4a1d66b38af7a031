//! The candidate's rights and the people's oversight, as use cases: erasure (asked for, or
//! when retention runs out), export, hiring decisions, and the audit trail that records who
//! looked at or changed what.

use iv_contracts::events::ErasureReported;
use iv_contracts::scoring::ReportRequest;
use iv_platform::audit::{Action, Entry, Record, Verification};
use iv_platform::auth::{OrgId, Principal, Role};
use serde::Serialize;

use super::{InterviewApp, SWEEP_BATCH};
use crate::decisions::{Decision, Outcome};
use crate::erasure::{self, Receipt};
use crate::error::InterviewError;
use crate::messages::ServerMessage;
use crate::store::{Session, StoredAnswer};

/// Everything stored about a candidate's interview, for their access and portability rights.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub exported_at: i64,
    /// The session and its answers with their analyses, as `GET /api/v1/interviews/{id}`.
    #[serde(skip)]
    pub session: Session,
    #[serde(skip)]
    pub answers: Vec<StoredAnswer>,
    /// What the candidate consented to (notice version and SHA-256, policy, when, by whom),
    /// and its withdrawal; `None` before consent.
    pub consent: Option<crate::consent::Consent>,
    pub decisions: Vec<Decision>,
    /// The emotion service's per-frame timeline and aggregates; `None` with the reason when it
    /// could not be read now.
    pub face_analysis: Option<iv_contracts::emotion::SessionSummary>,
    /// The scoring service's report (score, components, per-answer evidence); `None` with the
    /// reason when there is none yet or it could not be read now.
    pub report: Option<serde_json::Value>,
    /// What could not be included, and why.
    pub missing: Vec<String>,
    /// Who looked at or changed this interview.
    pub audit: Vec<Entry>,
}

/// Entries an admin reads at once, at most.
pub const MAX_AUDIT_ENTRIES: i64 = 1000;

impl InterviewApp {
    /// Erases the interview everywhere on `caller`'s request: its organisation's members, its
    /// candidate and services may. Returns the receipt, and whether this request started the
    /// erasure (`false`: it was erased before, and this repeat changed nothing but late rows).
    pub async fn erase(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<(Receipt, bool), InterviewError> {
        let request = erasure::Request {
            requested_by: caller.clone(),
            reason: erasure::Reason::Request,
        };
        let (org, first) = match self.authorize(caller, id).await {
            Ok(session) => (session.org, true),
            Err(InterviewError::SessionNotFound(_)) => match self.erasures.receipt(id).await? {
                Some(r) if caller.may_access(&r.org(), id) => (r.org(), false),
                _ => return Err(InterviewError::SessionNotFound(id.to_string())),
            },
            Err(e) => return Err(e),
        };
        let receipt = self.erasures.erase(id, &org, &request).await?;
        self.relay.notify();
        if first {
            self.erased_here(id, &org, &request).await?;
        }
        Ok((receipt, first))
    }

    /// Erases every interview whose retention ran out by `now`, on the worker's sweeper's
    /// request (services only), a batch at a time. Returns the ids erased; as many as
    /// [`SWEEP_BATCH`] means more may be due.
    pub async fn sweep(
        &self,
        caller: &Principal,
        retention: &crate::retention::Retention,
        now: i64,
    ) -> Result<Vec<String>, InterviewError> {
        if caller.role != iv_platform::auth::Role::Service {
            return Err(InterviewError::Forbidden(
                "only the backend's services sweep expired interviews",
            ));
        }
        let request = erasure::Request {
            requested_by: caller.clone(),
            reason: erasure::Reason::Retention,
        };
        let mut erased = Vec::new();
        for (id, org) in retention.due(now, SWEEP_BATCH).await? {
            self.erasures.erase(&id, &org, &request).await?;
            self.erased_here(&id, &org, &request).await?;
            erased.push(id);
        }
        if !erased.is_empty() {
            self.relay.notify();
        }
        Ok(erased)
    }

    /// What follows an interview's first erasure here: its open sockets are told, and the
    /// erasure is counted and logged.
    async fn erased_here(
        &self,
        id: &str,
        org: &OrgId,
        request: &erasure::Request,
    ) -> Result<(), InterviewError> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.hub.send(
            id,
            ServerMessage::from_error(InterviewError::SessionErased(id.to_string())),
        );
        let by = &request.requested_by;
        metrics::counter!("interviews_erased_total", "reason" => request.reason.as_str())
            .increment(1);
        tracing::info!(session_id = %id, requested_by = %by.subject, role = by.role.as_str(), reason = request.reason.as_str(), "interview erased here; other services told");
        self.audited(
            by,
            Action::InterviewErased,
            org,
            id,
            request.reason.as_str(),
        )
        .await
    }

    /// The interview's erasure receipt, for whoever may see the interview; an interview that
    /// still exists answers `NotErased`.
    pub async fn erasure(&self, caller: &Principal, id: &str) -> Result<Receipt, InterviewError> {
        match self.erasures.receipt(id).await? {
            Some(r) if caller.may_access(&r.org(), id) => Ok(r),
            Some(_) => Err(InterviewError::SessionNotFound(id.to_string())),
            None => {
                self.authorize(caller, id).await?;
                Err(InterviewError::NotErased(id.to_string()))
            }
        }
    }

    /// A service reported what it erased: the receipt takes its counts.
    pub async fn erasure_reported(&self, report: &ErasureReported) -> Result<(), InterviewError> {
        self.erasures.reported(report).await?;
        tracing::info!(session_id = %report.session_id, service = %report.service, deleted = ?report.deleted, "erasure reported");
        Ok(())
    }

    /// Records `caller`'s decision on the interview: its organisation's admins and recruiters
    /// only, never a candidate or a service (the system does not decide).
    pub async fn decide(
        &self,
        caller: &Principal,
        id: &str,
        decision: &str,
        reason: &str,
    ) -> Result<Decision, InterviewError> {
        let session = self.authorize(caller, id).await?;
        if !caller.role.is_member() {
            return Err(InterviewError::Forbidden(
                "decisions are made by the organisation's admins and recruiters",
            ));
        }
        let outcome: Outcome = decision.parse()?;
        let d = self.decisions.record(id, caller, outcome, reason).await?;
        self.audited(
            caller,
            Action::DecisionRecorded,
            &session.org,
            id,
            outcome.as_str(),
        )
        .await?;
        tracing::info!(session_id = %id, decision = outcome.as_str(), by = %caller.subject, "decision recorded");
        Ok(d)
    }

    /// The interview's decisions, for its organisation's members.
    pub async fn decisions(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Vec<Decision>, InterviewError> {
        self.authorize(caller, id).await?;
        if !caller.may_review(caller.org.as_ref()) {
            return Err(InterviewError::Forbidden(
                "decisions are for the organisation's admins and recruiters",
            ));
        }
        self.decisions.history(id).await
    }

    /// The recruiter's report (`json` or `pdf`), rendered by the scoring service with the
    /// decisions people recorded here, for the organisation's members.
    pub async fn report(
        &self,
        caller: &Principal,
        id: &str,
        format: &str,
        include_emotions: bool,
    ) -> Result<iv_contracts::scoring::ReportResponse, InterviewError> {
        self.authorize(caller, id).await?;
        if !caller.role.is_member() {
            return Err(InterviewError::Forbidden(
                "the report is for the organisation's recruiters and admins; the candidate \
                 reads everything stored about them with the export",
            ));
        }
        let decisions = self.decisions.history(id).await?;
        let report = self
            .scoring
            .report(ReportRequest {
                session_id: id.to_string(),
                include_emotions,
                include_video: false,
                format: format.to_string(),
                decisions: decisions.iter().map(to_wire).collect(),
                with_decisions: true,
            })
            .await?;
        Ok(report)
    }

    /// Everything stored about the interview, for its candidate and its organisation's members;
    /// the export itself goes on the audit trail.
    pub async fn export(&self, caller: &Principal, id: &str) -> Result<Export, InterviewError> {
        let session = self.authorize(caller, id).await?;
        let answers = self.store.answers(id).await?;
        let decisions = self.decisions.history(id).await?;
        let mut missing = Vec::new();
        let face_analysis = match self.emotion.session_summary(id).await {
            Ok(s) => Some(s),
            Err(e) => {
                missing.push(format!("face analysis: {e}"));
                None
            }
        };
        let report = match self
            .scoring
            .report(ReportRequest {
                session_id: id.to_string(),
                include_emotions: true,
                include_video: false,
                format: "json".into(),
                decisions: decisions.iter().map(to_wire).collect(),
                with_decisions: true,
            })
            .await
        {
            Ok(r) => serde_json::from_slice(&r.report_data).ok(),
            Err(e) if e.status().code() == tonic::Code::NotFound => {
                missing.push("report: the interview has not been scored".into());
                None
            }
            Err(e) => {
                missing.push(format!("report: {e}"));
                None
            }
        };
        self.audited(caller, Action::ExportViewed, &session.org, id, "")
            .await?;
        let audit = self
            .audit
            .entries(&session.org, Some(id), MAX_AUDIT_ENTRIES)
            .await?;
        Ok(Export {
            exported_at: iv_contracts::now_millis(),
            consent: self.consents.of(id).await?,
            session,
            answers,
            decisions,
            face_analysis,
            report,
            missing,
            audit,
        })
    }

    /// A person's view of the interview with its answers and analyses, on the audit trail.
    pub async fn viewed(
        &self,
        caller: &Principal,
        session: &Session,
    ) -> Result<(), InterviewError> {
        if caller.role != Role::Service {
            self.audited(
                caller,
                Action::InterviewViewed,
                &session.org,
                &session.id,
                "",
            )
            .await?;
        }
        Ok(())
    }

    /// Appends to the audit trail.
    pub async fn audited(
        &self,
        actor: &Principal,
        action: Action,
        org: &OrgId,
        interview_id: &str,
        detail: &str,
    ) -> Result<(), InterviewError> {
        self.audit
            .record(
                actor,
                Record {
                    action,
                    org,
                    interview_id,
                    detail,
                },
            )
            .await?;
        Ok(())
    }

    /// The admin's organisation's audit entries, optionally about one interview.
    pub async fn audit_trail(
        &self,
        caller: &Principal,
        interview_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Entry>, InterviewError> {
        let org = admin_org(caller)?;
        Ok(self
            .audit
            .entries(org, interview_id, limit.clamp(1, MAX_AUDIT_ENTRIES))
            .await?)
    }

    /// Checks the whole chain (admins).
    pub async fn verify_audit(&self, caller: &Principal) -> Result<Verification, InterviewError> {
        admin_org(caller)?;
        Ok(self.audit.verify().await?)
    }

    /// An entry a service records for a person it acted for (the worker's dead-letter replays).
    pub async fn record_for(
        &self,
        caller: &Principal,
        action: &str,
        detail: &str,
    ) -> Result<Entry, InterviewError> {
        if caller.role == Role::Candidate {
            return Err(InterviewError::Forbidden(
                "candidates do not write the audit trail",
            ));
        }
        let action = match Action::parse(action) {
            Some(a @ Action::DeadLettersReplayed) => a,
            _ => {
                return Err(InterviewError::InvalidArgument(
                    "services record only dead_letters_replayed here".into(),
                ));
            }
        };
        let org = caller.org.clone().unwrap_or_else(|| OrgId(String::new()));
        Ok(self
            .audit
            .record(
                caller,
                Record {
                    action,
                    org: &org,
                    interview_id: "",
                    detail,
                },
            )
            .await?)
    }
}

fn admin_org(caller: &Principal) -> Result<&OrgId, InterviewError> {
    caller.admin_of().ok_or(InterviewError::Forbidden(
        "the audit trail is for the organisation's admins",
    ))
}

fn to_wire(d: &Decision) -> iv_contracts::scoring::HiringDecision {
    iv_contracts::scoring::HiringDecision {
        decision: d.decision.as_str().to_string(),
        reason: d.reason.clone(),
        decided_by: d.decided_by.clone(),
        decided_role: d.decided_role.clone(),
        decided_at: d.decided_at,
    }
}
