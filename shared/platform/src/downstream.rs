//! gRPC clients of the emotion and scoring services, every call behind the downstream's named
//! policy ([`crate::resilience`]) and sent to one of its instances ([`crate::discovery`]) in turn.
//! Channels connect lazily, so services start in any order.

use crate::auth::{IDENTITY_HEADER, ServiceCredential};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
use iv_contracts::emotion::{EmotionResponse, FrameRequest, SessionRequest, SessionSummary};
use iv_contracts::scoring::scoring_service_client::ScoringServiceClient;
use iv_contracts::scoring::{
    AnswerAnalysis, AnswerRequest, EraseSessionRequest, ErasureCounts, ReportRequest,
    ReportResponse, ScoreRequest, ScoreResponse,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::Instrument;

use crate::config::{ConfigError, Env};
use crate::discovery::{Instances, Source};
use crate::resilience::{CallError, Downstream, PolicyConfig};

/// Largest gRPC message either side accepts (a batch of frames, a PDF report).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where the emotion service's gRPC clients send calls: its healthy instances in Consul, or
/// `EMOTION_GRPC_URL` (comma-separated for several).
pub fn emotion_source(env: &Env) -> Result<Source, ConfigError> {
    Source::from_env(
        env,
        "emotion-service",
        "EMOTION_GRPC_URL",
        "http://127.0.0.1:8082",
    )
}

/// Likewise for the scoring service (`SCORING_GRPC_URL`).
pub fn scoring_source(env: &Env) -> Result<Source, ConfigError> {
    Source::from_env(
        env,
        "scoring-service",
        "SCORING_GRPC_URL",
        "http://127.0.0.1:8083",
    )
}

/// One lazily connected channel per instance of a downstream; each attempt goes to the next
/// instance, so a retry after a refused connection lands on another one.
#[derive(Clone)]
struct Channels {
    instances: Instances,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Proves to the downstream that the caller is one of the backend's services.
    credential: Option<ServiceCredential>,
    /// How `https://` instances are reached (the CA their certificates are checked against).
    tls: Option<tonic::transport::ClientTlsConfig>,
}

impl Channels {
    fn new(source: &Source, name: &'static str) -> Self {
        Self {
            instances: source.start(name),
            channels: Arc::default(),
            credential: None,
            tls: None,
        }
    }

    fn channel(&self, url: &str) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(url) {
            return Ok(c.clone());
        }
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Status::internal(format!("instance address {url}: {e}")))?;
        if url.starts_with("https://") {
            let tls = self.tls.clone().ok_or_else(|| {
                Status::unavailable(format!("{url} speaks TLS: set TLS_CA_FILE to trust it"))
            })?;
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Status::internal(format!("TLS for {url}: {e}")))?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .connect_lazy();
        // Instances that left the rotation take their channels with them.
        let known = self.instances.all();
        channels.retain(|u, _| known.contains(u));
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }

    /// One attempt on the next instance, or on `key`'s instance when given (state kept per key).
    /// `Unavailable` (refused, reset) sets that instance aside.
    async fn attempt<T, F, Fut>(&self, key: Option<&str>, call: F) -> Result<T, Status>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let picked = match key {
            Some(key) => self.instances.pick_for(key),
            None => self.instances.pick(),
        };
        let Some(url) = picked else {
            return Err(Status::unavailable(format!(
                "no healthy instance of {}",
                self.instances.name()
            )));
        };
        let result = call(self.channel(&url)?).await.map_err(connection_lost);
        if let Err(status) = &result
            && status.code() == Code::Unavailable
        {
            self.instances.eject(&url);
        }
        result
    }

    /// One unary call under `policy`: every attempt goes to the next instance (or to `key`'s
    /// instance), so a retry after a refused connection lands elsewhere. Each attempt carries the
    /// policy's attempt timeout as its deadline, so a busy instance can shed it in time.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        policy: &Downstream,
        method: &'static str,
        key: Option<&str>,
        request: Req,
        call: F,
    ) -> Result<Resp, CallError>
    where
        Req: Clone,
        F: Fn(Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let deadline = policy.config().attempt_timeout;
        let span = tracing::info_span!("grpc.call", downstream = self.instances.name(), method);
        policy
            .call(method, || {
                let mut request = tonic::Request::new(request.clone());
                request.set_timeout(deadline);
                crate::telemetry::context::inject_into_metadata(request.metadata_mut());
                if let Some(credential) = &self.credential
                    && let Ok(v) = credential.assert_self().parse()
                {
                    request.metadata_mut().insert(IDENTITY_HEADER, v);
                }
                let call = &call;
                async move {
                    self.attempt(key, |channel| call(channel, request))
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .instrument(span)
            .await
    }
}

/// A request cut off by a dying instance reaches tonic with a transport error inside: `Unknown`
/// for a broken pipe or a reset, `Cancelled` when hyper finds the pooled connection already
/// closed. Either says the instance is gone as surely as a refused connection, so it is
/// `Unavailable`: set aside and retried elsewhere. A `Cancelled` the server itself sent carries no
/// transport error and stays as it is.
fn connection_lost(status: Status) -> Status {
    let transport =
        std::error::Error::source(&status).is_some_and(|s| s.is::<tonic::transport::Error>());
    if matches!(status.code(), Code::Unknown | Code::Cancelled) && transport {
        Status::unavailable(format!(
            "connection to the instance lost: {}",
            status.message()
        ))
    } else {
        status
    }
}

fn emotion_client(channel: Channel) -> EmotionServiceClient<Channel> {
    EmotionServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn scoring_client(channel: Channel) -> ScoringServiceClient<Channel> {
    ScoringServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Frame analysis and session queries go through separate breakers: analysis needs models and
/// CPU, queries only the database, and one failing must not block the other.
#[derive(Clone)]
pub struct EmotionClient {
    channels: Channels,
    policy: Downstream,
    queries: Downstream,
}

impl EmotionClient {
    /// Follows `source` (spawns a Consul poller when it is Consul).
    pub fn new(source: &Source, policy: PolicyConfig, queries: PolicyConfig) -> Self {
        Self {
            channels: Channels::new(source, "emotion-service"),
            policy: Downstream::new(policy),
            queries: Downstream::new(queries),
        }
    }

    /// Every call asserts this service's identity with `credential`.
    pub fn with_credential(mut self, credential: ServiceCredential) -> Self {
        self.channels.credential = Some(credential);
        self
    }

    /// `https://` instances are reached with `tls` (see [`crate::tls::TlsConfig::client`]).
    pub fn with_tls(mut self, tls: Option<tonic::transport::ClientTlsConfig>) -> Self {
        self.channels.tls = tls;
        self
    }

    /// The instances calls go to.
    pub fn instances(&self) -> &Instances {
        &self.channels.instances
    }

    /// The frame-analysis policy (the live path).
    pub fn policy(&self) -> &Downstream {
        &self.policy
    }

    /// Analyses a frame on its session's instance ([`Instances::pick_for`]): the emotion service
    /// tracks each session's face and blinks in memory.
    pub async fn analyze_frame(&self, request: FrameRequest) -> Result<EmotionResponse, CallError> {
        let session = request.session_id.clone();
        self.channels
            .unary(
                &self.policy,
                "analyze_frame",
                Some(&session),
                request,
                |c, r| async move { emotion_client(c).analyze_frame(r).await },
            )
            .await
    }

    pub async fn session_summary(&self, session_id: &str) -> Result<SessionSummary, CallError> {
        let request = SessionRequest {
            session_id: session_id.to_string(),
        };
        self.channels
            .unary(
                &self.queries,
                "get_session_summary",
                None,
                request,
                |c, r| async move { emotion_client(c).get_session_summary(r).await },
            )
            .await
    }

    /// Erases what the emotion service holds for a session, on the session's own instance, so
    /// the face track it keeps in memory goes too.
    pub async fn erase_session(
        &self,
        session_id: &str,
        org_id: &str,
    ) -> Result<iv_contracts::emotion::ErasureCounts, CallError> {
        let request = iv_contracts::emotion::EraseSessionRequest {
            session_id: session_id.to_string(),
            org_id: org_id.to_string(),
        };
        let session = request.session_id.clone();
        self.channels
            .unary(
                &self.queries,
                "erase_session",
                Some(&session),
                request,
                |c, r| async move { emotion_client(c).erase_session(r).await },
            )
            .await
    }
}

/// A scoring-service method: one unary call under the client's policy, on the next instance.
macro_rules! unary {
    ($(#[$doc:meta])* $method:ident($request:ty) -> $response:ty) => {
        $(#[$doc])*
        pub async fn $method(&self, request: $request) -> Result<$response, CallError> {
            self.channels
                .unary(&self.policy, stringify!($method), None, request, |c, r| async move {
                    scoring_client(c).$method(r).await
                })
                .await
        }
    };
}

#[derive(Clone)]
pub struct ScoringClient {
    channels: Channels,
    policy: Downstream,
}

impl ScoringClient {
    /// Follows `source` (spawns a Consul poller when it is Consul).
    pub fn new(source: &Source, policy: PolicyConfig) -> Self {
        Self {
            channels: Channels::new(source, "scoring-service"),
            policy: Downstream::new(policy),
        }
    }

    /// Every call asserts this service's identity with `credential`.
    pub fn with_credential(mut self, credential: ServiceCredential) -> Self {
        self.channels.credential = Some(credential);
        self
    }

    /// `https://` instances are reached with `tls` (see [`crate::tls::TlsConfig::client`]).
    pub fn with_tls(mut self, tls: Option<tonic::transport::ClientTlsConfig>) -> Self {
        self.channels.tls = tls;
        self
    }

    /// The instances calls go to.
    pub fn instances(&self) -> &Instances {
        &self.channels.instances
    }

    pub fn policy(&self) -> &Downstream {
        &self.policy
    }

    unary!(
        /// One answer's relevance, clarity and depth.
        analyze_answer(AnswerRequest) -> AnswerAnalysis
    );
    unary!(
        /// Scores a completed interview (and stores the score).
        calculate_score(ScoreRequest) -> ScoreResponse
    );
    unary!(
        /// Builds, stores and renders the report of a scored interview.
        generate_report(ReportRequest) -> ReportResponse
    );
    unary!(
        /// Deletes a session's score and reports; it is never scored again.
        erase_session(EraseSessionRequest) -> ErasureCounts
    );
    unary!(
        /// Recomputes a session's score without face analysis after a withdrawal.
        forget_face_analysis(EraseSessionRequest) -> ErasureCounts
    );
}
