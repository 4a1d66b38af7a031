//! gRPC clients of the emotion and scoring services, every call behind the downstream's named
//! policy ([`crate::resilience`]). Channels connect lazily, so services start in any order.

use std::time::Duration;

use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
use iv_contracts::emotion::{EmotionResponse, FrameRequest, SessionRequest, SessionSummary};
use iv_contracts::scoring::scoring_service_client::ScoringServiceClient;
use iv_contracts::scoring::{
    AnswerAnalysis, AnswerRequest, ReportRequest, ReportResponse, ScoreRequest, ScoreResponse,
};
use tonic::transport::{Channel, Endpoint};

use crate::resilience::{CallError, Downstream, PolicyConfig};

/// Largest gRPC message either side accepts (a batch of frames, a PDF report).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Frame analysis and session queries go through separate breakers: analysis needs models and
/// CPU, queries only the database, and one failing must not block the other.
#[derive(Clone)]
pub struct EmotionClient {
    client: EmotionServiceClient<Channel>,
    policy: Downstream,
    queries: Downstream,
}

impl EmotionClient {
    pub fn new(
        url: &str,
        policy: PolicyConfig,
        queries: PolicyConfig,
    ) -> Result<Self, tonic::transport::Error> {
        let client = EmotionServiceClient::new(channel(url)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            client,
            policy: Downstream::new(policy),
            queries: Downstream::new(queries),
        })
    }

    /// The frame-analysis policy (the live path).
    pub fn policy(&self) -> &Downstream {
        &self.policy
    }

    pub async fn analyze_frame(&self, request: FrameRequest) -> Result<EmotionResponse, CallError> {
        self.policy
            .call("analyze_frame", || {
                let mut client = self.client.clone();
                let request = request.clone();
                async move {
                    client
                        .analyze_frame(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    pub async fn session_summary(&self, session_id: &str) -> Result<SessionSummary, CallError> {
        self.queries
            .call("get_session_summary", || {
                let mut client = self.client.clone();
                let request = SessionRequest {
                    session_id: session_id.to_string(),
                };
                async move {
                    client
                        .get_session_summary(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }
}

#[derive(Clone)]
pub struct ScoringClient {
    client: ScoringServiceClient<Channel>,
    policy: Downstream,
}

impl ScoringClient {
    pub fn new(url: &str, policy: PolicyConfig) -> Result<Self, tonic::transport::Error> {
        let client = ScoringServiceClient::new(channel(url)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            client,
            policy: Downstream::new(policy),
        })
    }

    pub fn policy(&self) -> &Downstream {
        &self.policy
    }

    pub async fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> Result<AnswerAnalysis, CallError> {
        self.policy
            .call("analyze_answer", || {
                let mut client = self.client.clone();
                let request = request.clone();
                async move {
                    client
                        .analyze_answer(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    pub async fn calculate_score(&self, request: ScoreRequest) -> Result<ScoreResponse, CallError> {
        self.policy
            .call("calculate_score", || {
                let mut client = self.client.clone();
                let request = request.clone();
                async move {
                    client
                        .calculate_score(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }

    pub async fn generate_report(
        &self,
        request: ReportRequest,
    ) -> Result<ReportResponse, CallError> {
        self.policy
            .call("generate_report", || {
                let mut client = self.client.clone();
                let request = request.clone();
                async move {
                    client
                        .generate_report(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await
    }
}
