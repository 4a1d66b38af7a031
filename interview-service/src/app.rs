//! The interview use cases, shared by REST and the WebSocket: start, frames, answers, completion.

use iv_platform::auth::{OrgId, Principal};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use iv_contracts::emotion::{
    AnalysisPolicy as WirePolicy, EmotionResponse, FramePriority, FrameRequest,
};
use iv_contracts::events::{CompletedAnswer, FrameCaptured, InterviewCompleted, ScoreCalculated};
use iv_contracts::now_millis;
use iv_contracts::policy::AnalysisPolicy;
use iv_contracts::scoring::AnswerRequest;
use iv_platform::outbox::Relay;
use iv_platform::resilience::CallError;
use serde::Deserialize;

use crate::downstream::{AnswerScoring, FrameAnalysis};

use crate::erasure::Erasures;
use crate::error::InterviewError;
use crate::hub::Hub;
use crate::messages::{
    AnswerData, EmotionUpdate, FaceBox, LiveFeedback, ServerMessage, StatusMessage,
};
use crate::questions::{self, Question, QuestionSpec};
use crate::store::{AnswerFeedback, InterviewStore, Session, SessionState, StoredAnswer};

pub const MAX_TRANSCRIPT_CHARS: usize = 20_000;
/// Interviews erased per sweep request: each is a transaction, and a request should end well
/// within a client's timeout; the sweeper asks again while batches come back full.
pub const SWEEP_BATCH: i64 = 100;
/// An answer longer than an hour is a client bug, not an answer.
pub const MAX_ANSWER_SECONDS: f32 = 3600.0;

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct StartRequest {
    pub user_id: String,
    /// full, engagement or off; the organisation's default when absent, and never looser.
    #[serde(default)]
    pub policy: Option<String>,
    /// The member attests that the candidate consented outside the system to the current
    /// notice of the interview's policy (recorded with the member as the one who gave it).
    /// Otherwise the candidate consents with `POST .../consent`; nothing is analysed before.
    #[serde(default)]
    pub consent: bool,
    /// A custom question set; the shipped default set otherwise.
    #[serde(default)]
    pub questions: Option<Vec<QuestionSpec>>,
    /// Whom the interview is for (shown to the recruiter; `user_id` when not given).
    #[serde(default)]
    pub candidate_name: Option<String>,
    /// The position applied for, shown to the candidate (at most 128 characters).
    #[serde(default)]
    pub job_title: Option<String>,
    /// How long the invitation stays valid, hours (default [`INVITATION_HOURS`]).
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

/// How long an invitation lasts unless the recruiter says otherwise: a few days to find a
/// quiet hour.
pub const INVITATION_HOURS: u32 = 72;
/// The longest an invitation may be valid: a month.
pub const MAX_INVITATION_HOURS: u32 = 720;

/// A frame as uploaded.
#[derive(Debug, Clone)]
pub struct FrameUpload {
    pub bytes: Vec<u8>,
    pub timestamp: Option<i64>,
    pub format: String,
}

#[derive(Debug, Clone)]
pub enum FrameOutcome {
    /// Analysed live; `resumed` when the session's live feedback was paused until this frame.
    Analyzed {
        update: EmotionUpdate,
        resumed: bool,
    },
    /// The emotion service is unavailable: queued for the worker to analyse later. `paused_now`
    /// for the first such frame of a spell, so the candidate is told once.
    Deferred {
        frame_number: i64,
        reason: String,
        paused_now: bool,
    },
    /// The emotion service is up but busy and shed the frame: not analysed, and not queued
    /// either (that would only add work to a busy system). Figures follow timestamps, so the
    /// frames that are analysed keep them right.
    Shed { frame_number: i64, cause: CallError },
}

#[derive(Debug, Clone)]
pub struct AnswerOutcome {
    pub question_id: String,
    /// `None` when scoring was unavailable; the final score still covers the answer.
    pub feedback: Option<AnswerFeedback>,
    pub session: Session,
}

#[derive(Clone)]
pub struct InterviewApp {
    pub(crate) store: InterviewStore,
    erasures: Erasures,
    decisions: crate::decisions::Decisions,
    pub(crate) consents: crate::consent::Consents,
    pub(crate) retention: crate::retention::Retention,
    audit: iv_platform::audit::AuditLog,
    emotion: Arc<dyn FrameAnalysis>,
    scoring: Arc<dyn AnswerScoring>,
    relay: Relay,
    hub: Hub,
    /// Sessions whose last frame could not be analysed live. Kept in memory: after a restart
    /// the next frame tells again.
    paused: Arc<Mutex<HashSet<String>>>,
    max_frame_bytes: usize,
    /// How long a deferred frame may wait for its analysis before it is discarded unanalysed.
    frame_ttl: std::time::Duration,
}

impl InterviewApp {
    pub fn new(
        store: InterviewStore,
        emotion: Arc<dyn FrameAnalysis>,
        scoring: Arc<dyn AnswerScoring>,
        relay: Relay,
        max_frame_bytes: usize,
    ) -> Self {
        Self {
            erasures: Erasures::new(store.pool().clone()),
            decisions: crate::decisions::Decisions::new(store.pool().clone()),
            consents: crate::consent::Consents::new(store.pool().clone()),
            retention: crate::retention::Retention::new(
                store.pool().clone(),
                crate::retention::DEFAULT_DAYS,
            ),
            audit: iv_platform::audit::AuditLog::new(store.pool().clone()),
            store,
            emotion,
            scoring,
            relay,
            hub: Hub::default(),
            paused: Arc::default(),
            max_frame_bytes,
            frame_ttl: iv_contracts::events::FRAME_TTL,
        }
    }

    /// Organisations that set no retention keep interviews `days` after they end.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention = crate::retention::Retention::new(self.store.pool().clone(), days);
        self
    }

    pub fn retention(&self) -> &crate::retention::Retention {
        &self.retention
    }

    /// Deferred frames expire `ttl` after they were queued.
    pub fn with_frame_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.frame_ttl = ttl;
        self
    }

    /// Whether the session's frames are analysed live right now.
    pub fn live_feedback(&self, id: &str) -> LiveFeedback {
        let paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if paused.contains(id) {
            LiveFeedback::Paused
        } else {
            LiveFeedback::Active
        }
    }

    /// Frames the socket sampled out, replaced by newer ones while the emotion service was
    /// busy: counted as received and skipped, so the session's figures add up.
    pub async fn sample_out(&self, id: &str, frames: i64) -> Result<(), InterviewError> {
        self.store.count_sampled_out(id, frames).await?;
        metrics::counter!("frames_total", "outcome" => "sampled_out").increment(frames as u64);
        Ok(())
    }

    /// The session's status as the candidate sees it.
    pub fn status(&self, session: &Session, message: Option<String>) -> StatusMessage {
        let live = match session.consent {
            crate::consent::ConsentState::Withdrawn => LiveFeedback::Stopped,
            _ => self.live_feedback(&session.id),
        };
        StatusMessage::of(session, live, message)
    }

    /// Records whether the session's feedback is paused; true when that changed.
    fn set_paused(&self, id: &str, paused: bool) -> bool {
        let mut set = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if paused {
            set.insert(id.to_string())
        } else {
            set.remove(id)
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Starts an interview held by `org`, made by its member `by`.
    pub async fn start(
        &self,
        req: StartRequest,
        org: OrgId,
        by: &Principal,
    ) -> Result<Session, InterviewError> {
        let user_id = req.user_id.trim();
        if user_id.is_empty() || user_id.len() > 128 {
            return Err(InterviewError::InvalidArgument(
                "user_id is required (at most 128 characters)".into(),
            ));
        }
        let candidate_name = req
            .candidate_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(user_id);
        let candidate_name = short_text("candidate_name", candidate_name)?;
        let job_title = short_text(
            "job_title",
            req.job_title.as_deref().map(str::trim).unwrap_or_default(),
        )?;
        let hours = req.expires_in_hours.unwrap_or(INVITATION_HOURS);
        if !(1..=MAX_INVITATION_HOURS).contains(&hours) {
            return Err(InterviewError::InvalidArgument(format!(
                "expires_in_hours must be 1 to {MAX_INVITATION_HOURS}"
            )));
        }
        let allowed = self.consents.default_policy(&org).await?;
        let policy = match req.policy.as_deref().map(str::trim) {
            None | Some("") => allowed,
            Some(p) => AnalysisPolicy::from_request(Some(p))?,
        };
        if !policy.within(allowed) {
            return Err(InterviewError::InvalidArgument(format!(
                "policy {policy} infers more than the organisation's default {allowed} allows"
            )));
        }
        let questions = match req.questions {
            None => questions::default_set(),
            Some(specs) => questions::from_specs(specs).map_err(InterviewError::InvalidArgument)?,
        };
        let mut session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            org,
            user_id: user_id.to_string(),
            candidate_name: candidate_name.to_string(),
            job_title: job_title.to_string(),
            expires_at: Some(now_millis() + i64::from(hours) * 3_600_000),
            state: SessionState::Created,
            policy,
            consent: crate::consent::ConsentState::Pending,
            questions,
            current_index: 0,
            frames_received: 0,
            frames_analyzed: 0,
            frames_deferred: 0,
            frames_skipped: 0,
            created_at: now_millis(),
            started_at: None,
            completed_at: None,
            report_ready: false,
            overall_score: None,
        };
        self.store.insert(&session).await?;
        metrics::counter!("interviews_started_total", "policy" => policy.as_str()).increment(1);
        tracing::info!(session_id = %session.id, policy = policy.as_str(), "interview started");
        if req.consent {
            let notice = self.notice(&session).await?;
            let given = self.record_consent(&session, &notice, by).await?;
            session.consent = crate::consent::ConsentState::Given(crate::consent::Grant {
                notice_version: given.notice_version,
                notice_sha256: given.notice_sha256,
                given_at: given.given_at,
            });
        }
        Ok(session)
    }

    /// The caller's organisation's interviews, filtered, sorted and paged (members only).
    pub async fn interviews(
        &self,
        caller: &Principal,
        listing: &crate::listing::Listing,
    ) -> Result<crate::listing::Page, InterviewError> {
        let org = caller.member_of().ok_or(InterviewError::Forbidden(
            "the list of interviews is for the organisation's admins and recruiters",
        ))?;
        crate::listing::list(self.store.pool(), org, listing).await
    }

    pub async fn session(&self, id: &str) -> Result<(Session, Vec<StoredAnswer>), InterviewError> {
        let session = self.store.get(id).await?;
        let answers = self.store.answers(id).await?;
        Ok((session, answers))
    }

    pub async fn answers(&self, id: &str) -> Result<Vec<StoredAnswer>, InterviewError> {
        self.store.answers(id).await
    }

    pub async fn get(&self, id: &str) -> Result<Session, InterviewError> {
        self.store.get(id).await
    }

    /// The session, if `caller` may see it; otherwise the same answer as for one that does not
    /// exist, so another organisation's interview ids reveal nothing.
    pub async fn authorize(&self, caller: &Principal, id: &str) -> Result<Session, InterviewError> {
        let session = self.store.get(id).await?;
        // A candidate's invitation ends with the interview's expiry, whatever the token says.
        let expired = caller.role == iv_platform::auth::Role::Candidate
            && session.expires_at.is_some_and(|t| t <= now_millis());
        if caller.may_access(&session.org, &session.id) && !expired {
            Ok(session)
        } else {
            metrics::counter!("interview_access_refused_total").increment(1);
            Err(InterviewError::SessionNotFound(id.to_string()))
        }
    }

    /// The candidate joined (socket opened): the session must exist and still be open.
    pub async fn join(&self, id: &str) -> Result<Session, InterviewError> {
        let session = self.store.get(id).await?;
        if session.state == SessionState::Completed {
            return Err(InterviewError::SessionCompleted(id.to_string()));
        }
        self.store.mark_started(id, now_millis()).await?;
        self.store.get(id).await
    }

    pub async fn submit_frame(
        &self,
        id: &str,
        upload: FrameUpload,
    ) -> Result<FrameOutcome, InterviewError> {
        let session = self.store.frame_gate(id).await?;
        match session.state {
            SessionState::Completed => {
                return Err(InterviewError::SessionCompleted(id.to_string()));
            }
            SessionState::Created => self.store.mark_started(id, now_millis()).await?,
            SessionState::InProgress => {}
        }
        if session.policy == AnalysisPolicy::Off {
            return Err(InterviewError::AnalysisOff);
        }
        let grant = session.consent.grant()?;
        let info =
            iv_frames::inspect_with_limit(&upload.bytes, &upload.format, self.max_frame_bytes)?;
        let frame_number = self.store.next_frame_number(id).await?;
        let timestamp = upload
            .timestamp
            .filter(|t| *t > 0)
            .unwrap_or_else(now_millis);
        let size = upload.bytes.len() as u64;
        let request = FrameRequest {
            session_id: id.to_string(),
            image_data: upload.bytes,
            timestamp,
            format: info.format.as_str().into(),
            policy: WirePolicy::from(session.policy) as i32,
            frame_number,
            priority: FramePriority::Live as i32,
            org_id: session.org.0.clone(),
            consent: Some(grant.proof(session.policy)),
        };
        let event = FrameCaptured {
            session_id: id.to_string(),
            timestamp,
            image_data: Vec::new(),
            format: info.format.as_str().into(),
            frame_number,
            width: info.width,
            height: info.height,
            size_bytes: size,
            deferred: false,
            analysis_policy: session.policy.as_str().into(),
            org_id: session.org.0.clone(),
            expires_at: 0,
            consent_notice_version: grant.notice_version,
            consent_notice_sha256: grant.notice_sha256.clone(),
            consent_given_at: grant.given_at,
        };
        match self.emotion.analyze_frame(request.clone()).await {
            Ok(response) => {
                // The relay publishes it; the candidate's feedback never waits for the broker.
                self.store.count_frame(id, true, &event).await?;
                self.relay.notify();
                metrics::counter!("frames_total", "outcome" => "analyzed").increment(1);
                Ok(FrameOutcome::Analyzed {
                    update: update_from(&response, frame_number),
                    resumed: self.set_paused(id, false),
                })
            }
            Err(err) if err.is_busy() => {
                self.store.count_shed(id).await?;
                metrics::counter!("frames_total", "outcome" => "shed").increment(1);
                Ok(FrameOutcome::Shed {
                    frame_number,
                    cause: err,
                })
            }
            Err(err) if err.is_unavailable() => {
                self.defer(id, request.image_data, info, event, err).await
            }
            Err(err) => match err.status().code() {
                tonic::Code::InvalidArgument => Err(InterviewError::FrameRejected(err)),
                // The emotion service's own consent check; otherwise the policy.
                tonic::Code::FailedPrecondition
                    if iv_platform::errors::status_code(&err.status())
                        == Some(iv_platform::errors::code::CONSENT_REQUIRED) =>
                {
                    Err(InterviewError::ConsentRequired)
                }
                tonic::Code::FailedPrecondition => Err(InterviewError::AnalysisOff),
                _ => Err(err.into()),
            },
        }
    }

    /// The emotion service is unavailable: the frame is not lost but travels with its event,
    /// and the worker analyses it later. Decoded first (only on this path) so that no broken
    /// frame enters the queue; stored with the count, and published by the relay when the
    /// broker is there.
    async fn defer(
        &self,
        id: &str,
        bytes: Vec<u8>,
        info: iv_frames::FrameInfo,
        mut event: FrameCaptured,
        err: CallError,
    ) -> Result<FrameOutcome, InterviewError> {
        let bytes =
            tokio::task::spawn_blocking(move || iv_frames::decode(&bytes, info).map(|_| bytes))
                .await
                .map_err(InterviewError::FrameNotQueued)??;
        event.image_data = bytes;
        event.deferred = true;
        event.expires_at = now_millis() + self.frame_ttl.as_millis() as i64;
        self.store.count_frame(id, false, &event).await?;
        self.relay.notify();
        metrics::counter!("frames_total", "outcome" => "deferred").increment(1);
        Ok(FrameOutcome::Deferred {
            frame_number: event.frame_number,
            reason: err.to_string(),
            paused_now: self.set_paused(id, true),
        })
    }

    pub async fn submit_answer(
        &self,
        id: &str,
        answer: AnswerData,
    ) -> Result<AnswerOutcome, InterviewError> {
        if answer.transcript.chars().count() > MAX_TRANSCRIPT_CHARS {
            return Err(InterviewError::InvalidArgument(format!(
                "transcript longer than {MAX_TRANSCRIPT_CHARS} characters"
            )));
        }
        let duration = answer.duration.unwrap_or(0.0);
        if !duration.is_finite() || !(0.0..=MAX_ANSWER_SECONDS).contains(&duration) {
            return Err(InterviewError::InvalidArgument(format!(
                "duration must be 0 to {MAX_ANSWER_SECONDS} seconds"
            )));
        }
        let session = self.store.get(id).await?;
        if session.state == SessionState::Completed {
            return Err(InterviewError::SessionCompleted(id.to_string()));
        }
        // Answers are scored as they come: not before consent, nor after its withdrawal.
        session.consent.grant()?;
        let Some(current) = session.current_question().cloned() else {
            return Err(InterviewError::NoOpenQuestion);
        };
        if answer.question_id != current.id {
            return Err(
                match session
                    .questions
                    .iter()
                    .position(|q| q.id == answer.question_id)
                {
                    Some(p) if p < session.current_index => {
                        InterviewError::AlreadyAnswered(answer.question_id)
                    }
                    Some(_) => InterviewError::NotCurrentQuestion {
                        current: current.id,
                        given: answer.question_id,
                    },
                    None => InterviewError::UnknownQuestion(answer.question_id),
                },
            );
        }
        if session.state == SessionState::Created {
            self.store.mark_started(id, now_millis()).await?;
        }
        self.store
            .record_answer(
                id,
                session.current_index,
                &current.id,
                &answer.transcript,
                duration,
                now_millis(),
            )
            .await?;
        let feedback = self.analyze(&current, &answer.transcript, duration).await;
        if let Some(f) = &feedback {
            self.store.set_analysis(id, &current.id, f).await?;
        }
        metrics::counter!("answers_total", "analysed" => feedback.is_some().to_string())
            .increment(1);
        Ok(AnswerOutcome {
            question_id: current.id,
            feedback,
            session: self.store.get(id).await?,
        })
    }

    async fn analyze(
        &self,
        question: &Question,
        transcript: &str,
        duration: f32,
    ) -> Option<AnswerFeedback> {
        let request = AnswerRequest {
            question: question.text.clone(),
            answer: transcript.to_string(),
            category: question.category.clone(),
            expected_points: question.expected_points.clone(),
            duration,
        };
        match self.scoring.analyze_answer(request).await {
            Ok(a) => Some(AnswerFeedback {
                relevance: a.relevance_score,
                clarity: a.clarity_score,
                depth: a.depth_score,
                keywords: a.keywords,
                feedback: a.feedback,
                covered_points: a.covered_points,
                missed_points: a.missed_points,
                sufficient_data: a.sufficient_data,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "answer stored without live analysis; it is scored at completion");
                None
            }
        }
    }

    pub async fn complete(&self, id: &str) -> Result<Session, InterviewError> {
        let session = self.store.get(id).await?;
        if session.state == SessionState::Completed {
            return Err(InterviewError::SessionCompleted(id.to_string()));
        }
        // Completion has the interview scored.
        session.consent.grant()?;
        let answers = self.store.answers(id).await?;
        let now = now_millis();
        let started = session.started_at.unwrap_or(session.created_at);
        let event = InterviewCompleted {
            session_id: id.to_string(),
            user_id: session.user_id.clone(),
            org_id: session.org.0.clone(),
            completed_at: now,
            total_duration: (now - started).max(0) / 1000,
            answer_count: answers.len() as i32,
            started_at: started,
            total_questions: session.questions.len() as i32,
            answers: answers
                .iter()
                .filter_map(|a| {
                    let q = session.questions.iter().find(|q| q.id == a.question_id)?;
                    Some(CompletedAnswer {
                        question_id: q.id.clone(),
                        question: q.text.clone(),
                        category: q.category.clone(),
                        expected_points: q.expected_points.clone(),
                        transcript: a.transcript.clone(),
                        duration: a.duration,
                    })
                })
                .collect(),
            analysis_policy: session.policy.as_str().into(),
        };
        self.store.complete(id, now, &event).await?;
        self.relay.notify();
        self.set_paused(id, false); // no more frames: nothing left to pause
        let session = self.store.get(id).await?;
        metrics::counter!("interviews_completed_total").increment(1);
        tracing::info!(
            session_id = id,
            answers = answers.len(),
            "interview completed; scoring queued"
        );
        self.hub.send(
            id,
            ServerMessage::Status(self.status(
                &session,
                Some("Interview completed; your report is being prepared.".into()),
            )),
        );
        Ok(session)
    }

    /// The worker scored the interview: remember it. Durable work, done once by whichever
    /// instance takes the event from the shared queue.
    pub async fn record_score(&self, event: &ScoreCalculated) -> Result<(), InterviewError> {
        let overall = event.sufficient_data.then_some(event.overall_score as f32);
        self.store.mark_scored(&event.session_id, overall).await
    }

    /// The worker scored the interview: tell the candidate's sockets on this instance. Every
    /// instance hears every score (its own queue), since any of them may hold the socket. The
    /// status is made from the event, which may arrive before [`Self::record_score`] ran.
    pub async fn notify_score(&self, event: &ScoreCalculated) -> Result<(), InterviewError> {
        if !self.hub.has(&event.session_id) {
            return Ok(());
        }
        let mut session = match self.store.get(&event.session_id).await {
            Ok(s) => s,
            Err(InterviewError::SessionNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        session.report_ready = true;
        session.overall_score = event.sufficient_data.then_some(event.overall_score as f32);
        self.hub.send(
            &event.session_id,
            ServerMessage::Status(
                self.status(&session, Some("Your interview report is ready.".into())),
            ),
        );
        Ok(())
    }
}

/// Names people give (a candidate, a position) are kept to a line's length.
const SHORT_TEXT_CHARS: usize = 128;

/// `value`, or bad input naming `field` when it is longer than [`SHORT_TEXT_CHARS`].
fn short_text<'a>(field: &str, value: &'a str) -> Result<&'a str, InterviewError> {
    if value.chars().count() > SHORT_TEXT_CHARS {
        return Err(InterviewError::InvalidArgument(format!(
            "{field} is at most {SHORT_TEXT_CHARS} characters"
        )));
    }
    Ok(value)
}

fn update_from(r: &EmotionResponse, frame_number: i64) -> EmotionUpdate {
    let face = r.face_metrics.clone().unwrap_or_default();
    let blinks = r.blink_metrics.unwrap_or_default();
    let attention = r.attention.unwrap_or_default();
    EmotionUpdate {
        emotion: r.emotion.clone(),
        confidence: r.confidence,
        timestamp: r.timestamp,
        frame_number,
        face_detected: face.detected,
        face_count: face.face_count,
        attention: attention.score,
        eye_contact: attention.eye_contact,
        blink_count: blinks.count,
        blink_rate: blinks.rate,
        probabilities: r
            .probabilities
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        face_box: face
            .bounding_box
            .filter(|_| face.detected)
            .map(|b| FaceBox {
                x: b.x,
                y: b.y,
                width: b.width,
                height: b.height,
            }),
    }
}

pub mod consent;
pub mod rights;
#[cfg(test)]
mod tests;
