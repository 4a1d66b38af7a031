//! The `scoring.ScoringService` gRPC front end: wire types in, domain types through, wire types out.

use iv_contracts::scoring::scoring_service_server::ScoringService;
use iv_contracts::scoring::{
    self as pb, AnswerRequest, ReportRequest, ReportResponse, ScoreRequest, ScoreResponse,
};
use iv_platform::auth::{grpc_caller, grpc_privileged};
use tonic::{Request, Response, Status};

use crate::answer::{self, AnswerAnalysis, AnswerInput, PointStatus};
use crate::app::{ReportFormat, ScoringApp};
use crate::error::ScoringError;
use crate::overall::{FrameSample, Score, ScoreInput};
use iv_contracts::policy::AnalysisPolicy;

pub struct GrpcScoring {
    pub scoring: ScoringApp,
}

#[tonic::async_trait]
impl ScoringService for GrpcScoring {
    async fn erase_session(
        &self,
        request: Request<pb::EraseSessionRequest>,
    ) -> Result<Response<pb::ErasureCounts>, Status> {
        let caller = grpc_privileged(&request)?;
        let r = request.into_inner();
        let erasure = self
            .scoring
            .erase(&caller, &r.session_id, &r.org_id)
            .await?;
        Ok(Response::new(pb::ErasureCounts {
            session_id: r.session_id,
            deleted: erasure.deleted.into_iter().collect(),
            erased_at: erasure.erased_at,
        }))
    }

    async fn forget_face_analysis(
        &self,
        request: Request<pb::EraseSessionRequest>,
    ) -> Result<Response<pb::ErasureCounts>, Status> {
        let caller = grpc_privileged(&request)?;
        let r = request.into_inner();
        let done = self
            .scoring
            .forget_face_analysis(&caller, &r.session_id, &r.org_id)
            .await?;
        Ok(Response::new(pb::ErasureCounts {
            session_id: r.session_id,
            deleted: done.deleted.into_iter().collect(),
            erased_at: done.erased_at,
        }))
    }

    async fn calculate_score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        // Scores are the services' to write (and admins'), like `POST /api/v1/scores/calculate`.
        let caller = grpc_privileged(&request)?;
        let request = request.into_inner();
        let org = caller.acting_for(request.metadata.as_ref().map_or("", |m| m.org_id.as_str()));
        let input = score_input(request)?;
        let score = self.scoring.calculate(&input, org.as_ref()).await?;
        Ok(Response::new(score_response(&score)))
    }

    async fn analyze_answer(
        &self,
        request: Request<AnswerRequest>,
    ) -> Result<Response<pb::AnswerAnalysis>, Status> {
        let r = request.into_inner();
        let input = AnswerInput {
            question_id: String::new(),
            question: r.question,
            category: r.category,
            expected_points: r.expected_points,
            transcript: r.answer,
            duration_secs: (r.duration > 0.0).then_some(r.duration),
        };
        let analysis = self.scoring.analyze_answer(input).await?;
        Ok(Response::new(analysis_to_wire(&analysis)))
    }

    async fn generate_report(
        &self,
        request: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        let caller = grpc_caller(&request)?;
        let r = request.into_inner();
        if r.session_id.trim().is_empty() {
            return Err(Status::invalid_argument("session_id is required"));
        }
        let format = ReportFormat::parse(&r.format)?;
        let rendered = self
            .scoring
            .report(
                &caller,
                &r.session_id,
                r.include_emotions,
                r.include_video,
                format,
                r.with_decisions.then(|| {
                    r.decisions
                        .into_iter()
                        .map(|d| crate::report::ReportDecision {
                            decision: d.decision,
                            reason: d.reason,
                            decided_by: d.decided_by,
                            decided_role: d.decided_role,
                            decided_at: d.decided_at,
                        })
                        .collect()
                }),
            )
            .await?;
        Ok(Response::new(ReportResponse {
            report_url: format!(
                "/api/v1/scores/report?session_id={}&format={}",
                r.session_id,
                format.as_str()
            ),
            report_data: rendered.bytes,
            format: format.as_str().into(),
            session_id: r.session_id,
            generated_at: rendered.report.generated_at,
        }))
    }
}

/// The request as the use case takes it; an unknown policy is refused here, at the edge.
pub fn score_input(r: ScoreRequest) -> Result<ScoreInput, ScoringError> {
    let meta = r.metadata.unwrap_or_default();
    Ok(ScoreInput {
        session_id: r.session_id,
        user_id: meta.user_id,
        answers: r
            .answers
            .into_iter()
            .map(|a| AnswerInput {
                question_id: a.question_id,
                question: a.question,
                category: a.category,
                expected_points: a.expected_points,
                transcript: a.transcript,
                duration_secs: (a.duration > 0.0).then_some(a.duration),
            })
            .collect(),
        frames: r
            .emotions
            .into_iter()
            .map(|e| FrameSample {
                timestamp: e.timestamp,
                emotion: e.emotion,
                confidence: e.confidence,
                face_present: e.face_present,
                attention: e.attention,
                blink_count: e.blink_count,
            })
            .collect(),
        total_questions: meta.total_questions.max(0) as u32,
        analysis_policy: AnalysisPolicy::from_request(Some(&meta.analysis_policy))?,
        started_at: meta.started_at,
        completed_at: meta.completed_at,
    })
}

pub fn analysis_to_wire(a: &AnswerAnalysis) -> pb::AnswerAnalysis {
    pb::AnswerAnalysis {
        relevance_score: a.relevance,
        clarity_score: a.clarity,
        depth_score: a.depth,
        keywords: a.keywords.clone(),
        feedback: a.feedback.clone(),
        covered_points: a.covered_points.clone(),
        missed_points: a.missed_points.clone(),
        word_count: a.word_count as i32,
        filler_count: a.filler_count as i32,
        words_per_minute: a.words_per_minute.unwrap_or_default(),
        sufficient_data: a.sufficient_data,
        evidence: a
            .evidence
            .iter()
            .map(|e| pb::PointEvidence {
                point: e.point.clone(),
                status: point_status(e.status) as i32,
                sentence: e.sentence.clone().unwrap_or_default(),
                similarity: e.similarity,
            })
            .collect(),
        question_relevance: a.question_relevance,
        method: answer::METHOD.into(),
    }
}

fn point_status(s: PointStatus) -> pb::PointStatus {
    match s {
        PointStatus::Covered => pb::PointStatus::Covered,
        PointStatus::Partial => pb::PointStatus::Partial,
        PointStatus::Rejected => pb::PointStatus::Rejected,
        PointStatus::Listed => pb::PointStatus::Listed,
        PointStatus::Missing => pb::PointStatus::Missing,
    }
}

pub fn score_response(s: &Score) -> ScoreResponse {
    ScoreResponse {
        session_id: s.session_id.clone(),
        technical_score: s.technical_score.unwrap_or_default(),
        communication_score: s.communication_score.unwrap_or_default(),
        emotion_score: s.engagement_score.unwrap_or_default(),
        overall_score: s.overall_score.unwrap_or_default(),
        feedback: s.feedback.clone(),
        insights: s
            .insights
            .iter()
            .map(|i| pb::Insight {
                category: i.category.clone(),
                description: i.description.clone(),
                impact: i.impact,
            })
            .collect(),
        components: s
            .components
            .iter()
            .map(|c| pb::ScoreComponent {
                name: c.name.as_str().into(),
                score: c.score.unwrap_or_default(),
                weight: c.weight,
                sufficient_data: c.sufficient_data,
                reason: c.reason.clone(),
            })
            .collect(),
        answers: s
            .answers
            .iter()
            .map(|a| pb::AnswerScore {
                question_id: a.question_id.clone(),
                question: a.question.clone(),
                category: a.category.clone(),
                analysis: Some(analysis_to_wire(&a.analysis)),
            })
            .collect(),
        sufficient_data: s.sufficient_data,
        calculated_at: s.calculated_at,
    }
}
