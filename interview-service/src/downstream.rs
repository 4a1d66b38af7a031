//! What the interview service asks of the emotion and scoring services, as two small traits.
//!
//! The use cases hold these rather than the gRPC clients, so they are tested with fakes (a busy,
//! failing or rejecting downstream) without sockets; the services run with the platform's
//! clients, each behind its resilience policy.

use futures_util::future::BoxFuture;
use iv_contracts::emotion::{EmotionResponse, FrameRequest};
use iv_contracts::scoring::{AnswerAnalysis, AnswerRequest};
use iv_platform::downstream::{EmotionClient, ScoringClient};
use iv_platform::resilience::CallError;

/// Live analysis of one frame.
pub trait FrameAnalysis: Send + Sync {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>>;
}

/// Live analysis of one answer.
pub trait AnswerScoring: Send + Sync {
    fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> BoxFuture<'_, Result<AnswerAnalysis, CallError>>;
}

impl FrameAnalysis for EmotionClient {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>> {
        Box::pin(EmotionClient::analyze_frame(self, request))
    }
}

impl AnswerScoring for ScoringClient {
    fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> BoxFuture<'_, Result<AnswerAnalysis, CallError>> {
        Box::pin(ScoringClient::analyze_answer(self, request))
    }
}
