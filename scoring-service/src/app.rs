//! The scoring use cases, shared by the gRPC and REST front ends.

use std::sync::Arc;

use iv_contracts::now_millis;
use iv_platform::audit::{Action, AuditLog, Record};
use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::erasure::Erasure;

use crate::answer::{self, AnswerAnalysis, AnswerInput};
use crate::error::ScoringError;
use crate::meaning::SentenceEncoder;
use crate::overall::{self, Score, ScoreInput};
use crate::report::{self, Report};
use crate::store::ScoreStore;

/// Limits that keep one request from tying up the service.
pub const MAX_TRANSCRIPT_CHARS: usize = 20_000;
pub const MAX_ANSWERS: usize = 100;
pub const MAX_FRAMES: usize = 200_000;

/// A rendered report.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    pub report: Report,
    pub format: ReportFormat,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Pdf,
}

impl ReportFormat {
    pub fn parse(text: &str) -> Result<Self, ScoringError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "json" => Ok(Self::Json),
            "pdf" => Ok(Self::Pdf),
            other => Err(ScoringError::UnsupportedFormat(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Pdf => "application/pdf",
        }
    }
}

#[derive(Clone)]
pub struct ScoringApp {
    store: ScoreStore,
    /// Who viewed which score and report.
    audit: AuditLog,
    /// The sentence model, loaded once at start and shared by every request.
    encoder: Arc<SentenceEncoder>,
}

impl ScoringApp {
    pub fn new(store: ScoreStore, encoder: Arc<SentenceEncoder>) -> Self {
        Self {
            audit: AuditLog::new(store.pool().clone()),
            store,
            encoder,
        }
    }

    pub async fn analyze_answer(&self, input: AnswerInput) -> Result<AnswerAnalysis, ScoringError> {
        validate_answer(&input)?;
        let encoder = self.encoder.clone();
        let started = std::time::Instant::now();
        let span = tracing::Span::current();
        let analysis = tokio::task::spawn_blocking(move || {
            span.in_scope(|| answer::analyze(&input, &encoder))
        })
        .await
        .map_err(ScoringError::WorkerGone)??;
        metrics::histogram!("answer_analysis_seconds").record(started.elapsed().as_secs_f64());
        Ok(analysis)
    }

    /// Scores an interview of `org` and stores the result (replacing an earlier score of the
    /// same session, if it is that organisation's).
    pub async fn calculate(
        &self,
        input: &ScoreInput,
        org: Option<&OrgId>,
    ) -> Result<Score, ScoringError> {
        if input.session_id.trim().is_empty() {
            return Err(ScoringError::InvalidInput("session_id is required".into()));
        }
        if input.answers.len() > MAX_ANSWERS {
            return Err(ScoringError::InvalidInput(format!(
                "at most {MAX_ANSWERS} answers per interview"
            )));
        }
        if input.frames.len() > MAX_FRAMES {
            return Err(ScoringError::InvalidInput(format!(
                "at most {MAX_FRAMES} frame samples per interview"
            )));
        }
        for a in &input.answers {
            validate_answer(a)?;
        }
        let encoder = self.encoder.clone();
        // Only the answers go to the blocking pool: the frames (up to MAX_FRAMES) stay here.
        let answers = input.answers.clone();
        let span = tracing::Span::current();
        let analyses = tokio::task::spawn_blocking(move || {
            span.in_scope(|| overall::analyze_answers(&answers, &encoder))
        })
        .await
        .map_err(ScoringError::WorkerGone)??;
        let score = overall::calculate(input, analyses, now_millis());
        self.store.save_score(&score, org).await?;
        metrics::counter!("scores_calculated_total", "sufficient" => score.sufficient_data.to_string()).increment(1);
        Ok(score)
    }

    /// A session's score, for its organisation's members and services; to anyone else it does
    /// not exist.
    pub async fn score(&self, caller: &Principal, session_id: &str) -> Result<Score, ScoringError> {
        let (score, org) = self.readable(caller, session_id).await?;
        self.viewed(caller, Action::ScoreViewed, &org, session_id, "")
            .await?;
        Ok(score)
    }

    /// The stored score and its organisation, if `caller` may read it.
    async fn readable(
        &self,
        caller: &Principal,
        session_id: &str,
    ) -> Result<(Score, OrgId), ScoringError> {
        if caller.role == Role::Candidate {
            return Err(ScoringError::Forbidden(
                "a candidate reads their interview's status, not its score",
            ));
        }
        match self.store.score(session_id).await? {
            Some((score, org)) if caller.may_review(org.as_ref()) => {
                // Scores stored before organisations belong to none: filed under the viewer's.
                let org = org.or_else(|| caller.org.clone());
                Ok((score, org.unwrap_or_else(|| OrgId(String::new()))))
            }
            _ => Err(ScoringError::ScoreNotFound(session_id.to_string())),
        }
    }

    /// A person's view of results goes on the audit trail before it is answered.
    async fn viewed(
        &self,
        caller: &Principal,
        action: Action,
        org: &OrgId,
        session_id: &str,
        detail: &str,
    ) -> Result<(), ScoringError> {
        self.audit
            .viewed(
                caller,
                Record {
                    action,
                    org,
                    interview_id: session_id,
                    detail,
                },
            )
            .await?;
        Ok(())
    }

    /// The session's score and owner, for a caller acting for `claimed_org` (services name it,
    /// admins act for their own): another organisation's score is answered as absent.
    async fn owned_score(
        &self,
        caller: &Principal,
        session_id: &str,
        claimed_org: &str,
    ) -> Result<Option<(Score, Option<OrgId>)>, ScoringError> {
        if session_id.trim().is_empty() {
            return Err(ScoringError::InvalidInput("session_id is required".into()));
        }
        let org = caller.acting_for(claimed_org);
        match self.store.score(session_id).await? {
            Some((_, Some(owner))) if org.as_ref() != Some(&owner) => {
                Err(ScoringError::ScoreNotFound(session_id.to_string()))
            }
            found => Ok(found),
        }
    }

    /// Erases the session's score and reports. Services erase for the organisation they name,
    /// admins for their own; another organisation's session is answered as absent.
    pub async fn erase(
        &self,
        caller: &Principal,
        session_id: &str,
        claimed_org: &str,
    ) -> Result<Erasure, ScoringError> {
        let scored = self.owned_score(caller, session_id, claimed_org).await?;
        // Only services erase interviews never scored: their late scoring must be refused.
        if scored.is_none() && caller.role != Role::Service {
            return Err(ScoringError::ScoreNotFound(session_id.to_string()));
        }
        let erasure = self.store.erase(session_id).await?;
        tracing::info!(%session_id, deleted = ?erasure.deleted, "session erased");
        Ok(erasure)
    }

    /// After the candidate withdrew consent: the interview's score is recomputed without its
    /// face-analysis part and its stored report dropped (the next one is built from the new
    /// score); the answers' analyses stay. Services only (the worker), for the organisation
    /// they name. Idempotent; an interview not scored yet has nothing to forget.
    pub async fn forget_face_analysis(
        &self,
        caller: &Principal,
        session_id: &str,
        claimed_org: &str,
    ) -> Result<Erasure, ScoringError> {
        if caller.role != Role::Service {
            return Err(ScoringError::Forbidden(
                "face analysis is forgotten by the worker after a withdrawal",
            ));
        }
        let mut deleted = std::collections::BTreeMap::from([
            ("reports".to_string(), 0),
            ("scores_rescored".to_string(), 0),
        ]);
        if let Some((score, owner)) = self.owned_score(caller, session_id, claimed_org).await? {
            let forgotten = score.without_face_analysis(now_millis());
            self.store.save_score(&forgotten, owner.as_ref()).await?;
            deleted.insert("scores_rescored".into(), 1);
            deleted.insert(
                "reports".into(),
                self.store.delete_report(session_id).await?,
            );
        }
        tracing::info!(%session_id, ?deleted, "face analysis left out of the score after a withdrawal");
        Ok(Erasure {
            deleted,
            erased_at: now_millis(),
        })
    }

    /// Builds the report from the stored score, stores it, and renders it in the asked format.
    pub async fn report(
        &self,
        caller: &Principal,
        session_id: &str,
        include_emotions: bool,
        include_video: bool,
        format: ReportFormat,
        decisions: Option<Vec<report::ReportDecision>>,
    ) -> Result<RenderedReport, ScoringError> {
        if include_video {
            return Err(ScoringError::VideoNotStored);
        }
        let (score, org) = self.readable(caller, session_id).await?;
        let mut report = report::build(&score, include_emotions, now_millis());
        report.decisions = decisions;
        self.store.save_report(&report).await?;
        self.viewed(
            caller,
            Action::ReportViewed,
            &org,
            session_id,
            format.as_str(),
        )
        .await?;
        let bytes = match format {
            ReportFormat::Json => serde_json::to_vec(&report).map_err(ScoringError::Serialize)?,
            ReportFormat::Pdf => report::to_pdf(&report),
        };
        Ok(RenderedReport {
            report,
            format,
            bytes,
        })
    }
}

fn validate_answer(a: &AnswerInput) -> Result<(), ScoringError> {
    if a.transcript.chars().count() > MAX_TRANSCRIPT_CHARS {
        return Err(ScoringError::InvalidInput(format!(
            "transcript longer than {MAX_TRANSCRIPT_CHARS} characters"
        )));
    }
    if a.question.trim().is_empty() {
        return Err(ScoringError::InvalidInput(
            "question is required: an answer is scored against its question".into(),
        ));
    }
    if a.expected_points.len() > 50 {
        return Err(ScoringError::InvalidInput(
            "at most 50 expected points per question".into(),
        ));
    }
    if a.duration_secs.is_some_and(|d| !d.is_finite() || d < 0.0) {
        return Err(ScoringError::InvalidInput(
            "duration must be a non-negative number of seconds".into(),
        ));
    }
    Ok(())
}
