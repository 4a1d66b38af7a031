//! The worker's jobs. A failure that may pass (a service down) is transient and retried later;
//! one that never will (a malformed event, a rejected frame) is permanent and dead-lettered.

use std::time::Duration;

use iv_contracts::emotion::{AnalysisPolicy as WirePolicy, FramePriority, FrameRequest};
use iv_contracts::events::Event;
use iv_contracts::events::{
    ConsentWithdrawn, EmotionAnalyzed, ErasureReported, FrameCaptured, InterviewCompleted,
    InterviewErased, ScoreCalculated,
};
use iv_contracts::policy::AnalysisPolicy;
use iv_contracts::scoring::{Answer, EmotionData, InterviewMetadata, ReportRequest, ScoreRequest};
use iv_platform::bus::EventBus;
use iv_platform::downstream::{EmotionClient, ScoringClient};
use iv_platform::errors::{code, status_code};
use iv_platform::resilience::CallError;

use crate::error::WorkerError;

#[derive(Clone)]
pub struct Jobs {
    pub emotion: EmotionClient,
    pub scoring: ScoringClient,
    pub bus: EventBus,
}

impl Jobs {
    /// InterviewCompleted -> engagement from the emotion service -> CalculateScore ->
    /// GenerateReport (stored by the scoring service) -> ScoreCalculated.
    ///
    /// On the `last_attempt`, an emotion service that is still unavailable no longer holds the
    /// report back: the interview is scored without engagement, which the score then says.
    pub async fn score_interview(
        &self,
        event: InterviewCompleted,
        last_attempt: bool,
    ) -> Result<(), WorkerError> {
        let session_id = event.session_id.clone();
        let policy = AnalysisPolicy::from_stored(&event.analysis_policy);
        let emotions = self.timeline(&session_id, policy, last_attempt).await?;
        let request = score_request(event, emotions, policy);
        let score = match self.scoring.calculate_score(request).await {
            Err(e) if erased(&e) => {
                tracing::info!(%session_id, "interview erased before it was scored; dropping");
                return Ok(());
            }
            result => result.map_err(WorkerError::call("calculate score"))?,
        };
        self.scoring
            .generate_report(ReportRequest {
                session_id: session_id.clone(),
                include_emotions: policy != AnalysisPolicy::Off,
                include_video: false,
                format: "json".into(),
                ..Default::default()
            })
            .await
            .map_err(WorkerError::call("generate report"))?;
        let calculated = ScoreCalculated {
            session_id: session_id.clone(),
            technical_score: f64::from(score.technical_score),
            communication_score: f64::from(score.communication_score),
            emotion_score: f64::from(score.emotion_score),
            overall_score: f64::from(score.overall_score),
            calculated_at: score.calculated_at,
            sufficient_data: score.sufficient_data,
        };
        self.bus
            .publish(&calculated)
            .await
            .map_err(|source| WorkerError::Publish {
                routing_key: ScoreCalculated::ROUTING_KEY,
                source,
            })?;
        metrics::counter!("interviews_scored_total").increment(1);
        tracing::info!(%session_id, overall = score.overall_score, sufficient = score.sufficient_data, "interview scored; report stored");
        Ok(())
    }

    /// The session's emotion timeline for scoring: none under `off`; on the last attempt, none
    /// either when the emotion service is still unavailable (the score then says so).
    async fn timeline(
        &self,
        session_id: &str,
        policy: AnalysisPolicy,
        last_attempt: bool,
    ) -> Result<Vec<EmotionData>, WorkerError> {
        let summary = match policy {
            AnalysisPolicy::Off => None,
            _ => match self.emotion.session_summary(session_id).await {
                Ok(s) => Some(s),
                Err(e) if last_attempt && e.is_unavailable() => {
                    tracing::warn!(%session_id, error = %e, "scoring without engagement: the emotion service stayed unavailable");
                    None
                }
                Err(e) => return Err(WorkerError::call("session summary")(e)),
            },
        };
        Ok(match summary {
            None => Vec::new(),
            Some(summary) => summary
                .timeline
                .into_iter()
                .map(|t| EmotionData {
                    timestamp: t.timestamp,
                    emotion: t.emotion,
                    confidence: t.confidence,
                    blink_count: t.blink_count,
                    face_present: t.face_present,
                    attention: t.attention,
                })
                .collect(),
        })
    }

    /// FrameCaptured: only frames queued while live analysis was unavailable carry pixels; those
    /// are analysed now, as background work that yields to live frames: while the emotion service
    /// is busy the worker waits here (the message stays unacknowledged, no attempt is spent) and
    /// asks again later. The others are metadata and need nothing.
    pub async fn analyze_deferred_frame(&self, event: FrameCaptured) -> Result<(), WorkerError> {
        if !event.deferred || event.image_data.is_empty() {
            return Ok(());
        }
        if is_expired(&event, iv_contracts::now_millis()) {
            metrics::counter!("deferred_frames_expired_total").increment(1);
            tracing::info!(session_id = %event.session_id, frame_number = event.frame_number, "deferred frame expired before it could be analysed; discarded");
            return Ok(());
        }
        let policy = AnalysisPolicy::from_stored(&event.analysis_policy);
        let request = FrameRequest {
            consent: iv_contracts::consent::of_event(&event),
            session_id: event.session_id.clone(),
            image_data: event.image_data,
            timestamp: event.timestamp,
            format: event.format,
            policy: WirePolicy::from(policy) as i32,
            frame_number: event.frame_number,
            priority: FramePriority::Background as i32,
            org_id: event.org_id,
        };
        match self.analyze_when_idle(request).await {
            Ok(r) => {
                let analysed = EmotionAnalyzed {
                    session_id: event.session_id,
                    timestamp: event.timestamp,
                    emotion: r.emotion,
                    confidence: f64::from(r.confidence),
                    blink_count: r.blink_metrics.map(|b| b.count).unwrap_or_default(),
                    metadata: [("source".to_string(), "deferred".to_string())].into(),
                    frame_number: event.frame_number,
                };
                if let Err(e) = self.bus.publish(&analysed).await {
                    tracing::warn!(error = %e, "EmotionAnalyzed not published; the analysis is stored regardless");
                }
                metrics::counter!("deferred_frames_analyzed_total").increment(1);
                Ok(())
            }
            Err(e) if erased(&e) => {
                tracing::info!(session_id = %event.session_id, "interview erased; dropping its deferred frame");
                Ok(())
            }
            Err(e) if e.status().code() == tonic::Code::FailedPrecondition => {
                tracing::info!(session_id = %event.session_id, "frame analysis switched off for the session; dropping frame");
                Ok(())
            }
            Err(e) => Err(WorkerError::call("analyze deferred frame")(e)),
        }
    }
}

/// Who is asked to erase an interview's data; each has its own queue, so one service being
/// down holds back only its own part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Emotion,
    Scoring,
}

impl Holder {
    pub fn service(self) -> &'static str {
        match self {
            Self::Emotion => "emotion-service",
            Self::Scoring => "scoring-service",
        }
    }
}

impl Jobs {
    /// InterviewErased -> `holder` deletes what it holds for the interview -> ErasureReported
    /// with its counts. Idempotent: a service erasing again answers with its first counts.
    pub async fn erase(&self, event: &InterviewErased, holder: Holder) -> Result<(), WorkerError> {
        let session_id = &event.session_id;
        let (deleted, erased_at) = match holder {
            Holder::Emotion => {
                let c = self
                    .emotion
                    .erase_session(session_id, &event.org_id)
                    .await
                    .map_err(WorkerError::call("erase emotion data"))?;
                (c.deleted, c.erased_at)
            }
            Holder::Scoring => {
                let c = self
                    .scoring
                    .erase_session(iv_contracts::scoring::EraseSessionRequest {
                        session_id: session_id.clone(),
                        org_id: event.org_id.clone(),
                    })
                    .await
                    .map_err(WorkerError::call("erase scores"))?;
                (c.deleted, c.erased_at)
            }
        };
        let report = ErasureReported {
            session_id: session_id.clone(),
            service: holder.service().to_string(),
            deleted,
            erased_at,
        };
        self.bus
            .publish(&report)
            .await
            .map_err(|source| WorkerError::Publish {
                routing_key: ErasureReported::ROUTING_KEY,
                source,
            })?;
        metrics::counter!("erasures_carried_out_total", "service" => holder.service()).increment(1);
        tracing::info!(%session_id, service = holder.service(), deleted = ?report.deleted, "interview data erased");
        Ok(())
    }
}

impl Jobs {
    /// ConsentWithdrawn -> the emotion service erases what it derived from the candidate's
    /// frames (per-frame metrics, blinks, its session record) and refuses their frames from
    /// then on; then the scoring service recomputes a score made before without its engagement
    /// part. Retried like an erasure while either service is down (both steps are idempotent).
    pub async fn consent_withdrawn(&self, event: &ConsentWithdrawn) -> Result<(), WorkerError> {
        let c = self
            .emotion
            .erase_session(&event.session_id, &event.org_id)
            .await
            .map_err(WorkerError::call(
                "erase face-analysis data after a withdrawal",
            ))?;
        let rescored = self
            .scoring
            .forget_face_analysis(iv_contracts::scoring::EraseSessionRequest {
                session_id: event.session_id.clone(),
                org_id: event.org_id.clone(),
            })
            .await
            .map_err(WorkerError::call(
                "leave face analysis out of the score after a withdrawal",
            ))?;
        metrics::counter!("consent_withdrawals_carried_out_total").increment(1);
        tracing::info!(session_id = %event.session_id, deleted = ?c.deleted, score = ?rescored.deleted, "consent withdrawn: face-analysis data erased, the score recomputed without it");
        Ok(())
    }
}

/// Whether a deferred frame waited past its expiry: it is discarded unanalysed.
fn is_expired(event: &FrameCaptured, now: i64) -> bool {
    event.expires_at > 0 && event.expires_at <= now
}

/// Whether a service refused the call because the interview was erased: its work is dropped.
fn erased(e: &CallError) -> bool {
    status_code(&e.status()) == Some(code::SESSION_ERASED)
}

/// How long a background frame waits, in all, for the emotion service to have an idle slot
/// before its attempt counts as failed: long enough to ride out a busy minute of live
/// interviews, short enough that a frame stuck for another reason is retried by the bus.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);
/// The first pause after a busy answer, doubling up to [`BUSY_PAUSE_MAX`]: a few frames' time.
const BUSY_PAUSE_MIN: Duration = Duration::from_millis(200);
/// The longest pause: a busy spell ends within seconds and catching up should start soon after.
const BUSY_PAUSE_MAX: Duration = Duration::from_secs(5);

impl Jobs {
    /// Analyses a background frame, waiting while the emotion service says it is busy.
    async fn analyze_when_idle(
        &self,
        request: FrameRequest,
    ) -> Result<iv_contracts::emotion::EmotionResponse, CallError> {
        let started = tokio::time::Instant::now();
        let mut pause = BUSY_PAUSE_MIN;
        loop {
            match self.emotion.analyze_frame(request.clone()).await {
                Err(e) if e.is_busy() && started.elapsed() + pause < BUSY_PATIENCE => {
                    metrics::counter!("deferred_frames_yielded_total").increment(1);
                    tracing::debug!(session_id = %request.session_id, error = %e, ?pause, "emotion service busy; the deferred frame waits");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(BUSY_PAUSE_MAX);
                }
                result => return result,
            }
        }
    }
}

/// The CalculateScore request for a completed interview.
fn score_request(
    event: InterviewCompleted,
    emotions: Vec<EmotionData>,
    policy: AnalysisPolicy,
) -> ScoreRequest {
    ScoreRequest {
        session_id: event.session_id,
        answers: event
            .answers
            .into_iter()
            .map(|a| Answer {
                question_id: a.question_id,
                transcript: a.transcript,
                duration: a.duration,
                confidence: 0.0,
                question: a.question,
                category: a.category,
                expected_points: a.expected_points,
            })
            .collect(),
        emotions,
        metadata: Some(InterviewMetadata {
            user_id: event.user_id,
            started_at: event.started_at,
            completed_at: event.completed_at,
            total_questions: event.total_questions,
            analysis_policy: policy.as_str().into(),
            org_id: event.org_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_past_its_expiry_is_discarded_and_one_without_expiry_never_is() {
        let frame = |expires_at| FrameCaptured {
            expires_at,
            ..Default::default()
        };
        assert!(is_expired(&frame(1_000), 1_000));
        assert!(is_expired(&frame(1_000), 5_000));
        assert!(!is_expired(&frame(1_001), 1_000));
        assert!(
            !is_expired(&frame(0), i64::MAX),
            "frames of older publishers"
        );
    }
}
