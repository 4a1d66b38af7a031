//! The REST front end: `/api/v1/emotions/*`. Frames arrive as base64 in JSON.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::IntoResponse;
use axum::{Json, Router};
use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::{Caller, Principal, Privileged};
use iv_platform::errors::AppJson;
use iv_platform::health::Health;
use serde::Deserialize;
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::{EmotionApp, FrameInput, FrameResult, SessionSummary};
use crate::error::EmotionError;
use crate::grpc::MAX_BATCH;
use iv_frames::MAX_FRAME_BYTES;

#[derive(Clone)]
pub struct RestState {
    pub app: EmotionApp,
    pub health: Health,
}

/// Every public route, each described by its handler's `#[utoipa::path]`: a route cannot be added
/// here without its description, nor described without being routed.
fn api() -> OpenApiRouter<RestState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(analyze))
        .routes(routes!(batch))
        .routes(routes!(session))
        .routes(routes!(health))
}

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "emotions", description = "Face analysis of frames, and each session's summary.")))]
struct ApiDoc;

/// The emotion service's part of the public API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn router(state: RestState) -> Router {
    api()
        .split_for_parts()
        .0
        // base64 inflates by 4/3; a batch carries up to MAX_BATCH frames.
        .layer(DefaultBodyLimit::max(
            MAX_FRAME_BYTES * 4 / 3 * 8 + 64 * 1024,
        ))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FrameBody {
    pub session_id: String,
    /// Base64 of the JPEG or PNG bytes (a `data:` URL prefix is accepted).
    pub image: String,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub frame_number: i64,
    /// For a service caller: the organisation the session belongs to (an admin's own is used
    /// for theirs).
    #[serde(default)]
    pub org_id: String,
    /// The candidate's consent the frame is analysed under; a frame without one is refused
    /// (`409 CONSENT_REQUIRED`) unless the policy is `off`.
    #[serde(default)]
    pub consent: Option<ConsentBody>,
}

/// [`iv_contracts::emotion::ConsentProof`] as JSON.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = FrameConsent)]
pub struct ConsentBody {
    pub notice_version: i64,
    pub notice_sha256: String,
    pub policy: String,
    pub given_at: i64,
}

impl ConsentBody {
    fn into_proof(self) -> Result<iv_contracts::emotion::ConsentProof, EmotionError> {
        let policy = AnalysisPolicy::from_request(Some(&self.policy))?;
        Ok(iv_contracts::emotion::ConsentProof {
            notice_version: self.notice_version,
            notice_sha256: self.notice_sha256,
            policy: iv_contracts::emotion::AnalysisPolicy::from(policy) as i32,
            given_at: self.given_at,
        })
    }
}

impl FrameBody {
    fn into_input(self, caller: &Principal) -> Result<FrameInput, EmotionError> {
        let policy = AnalysisPolicy::from_request(Some(&self.policy))?;
        let image = iv_frames::decode_base64(&self.image, MAX_FRAME_BYTES)?;
        Ok(FrameInput {
            session_id: self.session_id,
            image,
            timestamp: if self.timestamp > 0 {
                self.timestamp
            } else {
                iv_contracts::now_millis()
            },
            format: self.format,
            policy,
            frame_number: self.frame_number,
            org: caller.acting_for(&self.org_id),
            consent: self.consent.map(ConsentBody::into_proof).transpose()?,
            ..FrameInput::default()
        })
    }
}

/// Analyses one frame of a session: faces, landmarks, blinks, expression (when the policy
/// allows it) and attention. For the backend's services and admins; candidates' frames come
/// through the interview.
/// Decodes base64 (standard alphabet, optional `data:image/...;base64,` prefix).
#[utoipa::path(post, path = "/api/v1/emotions/analyze", operation_id = "analyze_frame", tag = "emotions",
    security(("bearer" = ["service", "admin"])),
    request_body = FrameBody,
    responses((status = 200, description = "What the frame shows.", body = FrameResult)))]
async fn analyze(
    State(s): State<RestState>,
    Privileged(caller): Privileged,
    AppJson(body): AppJson<FrameBody>,
) -> Result<Json<FrameResult>, EmotionError> {
    Ok(Json(s.app.analyze(body.into_input(&caller)?).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct BatchBody {
    session_id: String,
    frames: Vec<FrameBody>,
}

/// Analyses up to 64 frames of one session, in order.
#[utoipa::path(post, path = "/api/v1/emotions/batch", operation_id = "analyze_frames", tag = "emotions",
    security(("bearer" = ["service", "admin"])),
    request_body = BatchBody,
    responses((status = 200, description = "Each frame's analysis, in order.", body = Vec<FrameResult>)))]
async fn batch(
    State(s): State<RestState>,
    Privileged(caller): Privileged,
    AppJson(body): AppJson<BatchBody>,
) -> Result<Json<Vec<FrameResult>>, EmotionError> {
    if body.frames.len() > MAX_BATCH {
        return Err(EmotionError::InvalidInput(format!(
            "at most {MAX_BATCH} frames per batch"
        )));
    }
    let mut results = Vec::with_capacity(body.frames.len());
    for mut frame in body.frames {
        if frame.session_id.is_empty() {
            frame.session_id.clone_from(&body.session_id);
        }
        results.push(s.app.analyze(frame.into_input(&caller)?).await?);
    }
    Ok(Json(results))
}

/// A session's summary: frame counts, blinks, attention, the timeline and its spells.
#[utoipa::path(get, path = "/api/v1/emotions/session/{id}", operation_id = "face_session", tag = "emotions",
    security(("bearer" = ["admin", "recruiter", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The session's summary.", body = SessionSummary)))]
async fn session(
    State(s): State<RestState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, EmotionError> {
    Ok(Json(s.app.summary(&caller, &id).await?))
}

/// The service's health, by component (reachable without a token at `/health` too).
#[utoipa::path(get, path = "/api/v1/emotions/health", operation_id = "emotion_health", tag = "emotions",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    responses((status = 200, description = "Each component's state.", body = Object)))]
async fn health(State(s): State<RestState>) -> impl IntoResponse {
    Json(s.health.report())
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
