//! What the interview service asks of the emotion and scoring services, as two small traits.
//!
//! The use cases hold these rather than the gRPC clients, so they are tested with fakes (a busy,
//! failing or rejecting downstream) without sockets; the services run with the platform's
//! clients, each behind its resilience policy.

use futures_util::future::BoxFuture;
use iv_contracts::emotion::{EmotionResponse, FrameRequest, SessionSummary};
use iv_contracts::scoring::{AnswerAnalysis, AnswerRequest, ReportRequest, ReportResponse};
use iv_platform::downstream::{EmotionClient, ScoringClient};
use iv_platform::resilience::CallError;

/// Live analysis of one frame, and what was analysed of a session (for its export).
pub trait FrameAnalysis: Send + Sync {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>>;

    fn session_summary<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<SessionSummary, CallError>>;
}

/// Live analysis of one answer, and the report of a scored interview (for its export).
pub trait AnswerScoring: Send + Sync {
    fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> BoxFuture<'_, Result<AnswerAnalysis, CallError>>;

    fn report(&self, request: ReportRequest) -> BoxFuture<'_, Result<ReportResponse, CallError>>;
}

impl FrameAnalysis for EmotionClient {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>> {
        Box::pin(EmotionClient::analyze_frame(self, request))
    }

    fn session_summary<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<SessionSummary, CallError>> {
        Box::pin(EmotionClient::session_summary(self, session_id))
    }
}

impl AnswerScoring for ScoringClient {
    fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> BoxFuture<'_, Result<AnswerAnalysis, CallError>> {
        Box::pin(ScoringClient::analyze_answer(self, request))
    }

    fn report(&self, request: ReportRequest) -> BoxFuture<'_, Result<ReportResponse, CallError>> {
        Box::pin(ScoringClient::generate_report(self, request))
    }
}
