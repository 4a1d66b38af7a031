//! The REST front end: `/api/v1/emotions/*`. Frames arrive as base64 in JSON.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::{Caller, Principal, Privileged};
use iv_platform::errors::AppJson;
use iv_platform::health::Health;
use serde::Deserialize;

use crate::app::{EmotionApp, FrameInput, FrameResult};
use crate::error::EmotionError;
use crate::grpc::MAX_BATCH;
use iv_frames::MAX_FRAME_BYTES;

#[derive(Clone)]
pub struct RestState {
    pub app: EmotionApp,
    pub health: Health,
}

pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/api/v1/emotions/analyze", post(analyze))
        .route("/api/v1/emotions/batch", post(batch))
        .route("/api/v1/emotions/session/{id}", get(session))
        .route("/api/v1/emotions/health", get(health))
        // base64 inflates by 4/3; a batch carries up to MAX_BATCH frames.
        .layer(DefaultBodyLimit::max(
            MAX_FRAME_BYTES * 4 / 3 * 8 + 64 * 1024,
        ))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
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

/// Decodes base64 (standard alphabet, optional `data:image/...;base64,` prefix).
async fn analyze(
    State(s): State<RestState>,
    Privileged(caller): Privileged,
    AppJson(body): AppJson<FrameBody>,
) -> Result<Json<FrameResult>, EmotionError> {
    Ok(Json(s.app.analyze(body.into_input(&caller)?).await?))
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    session_id: String,
    frames: Vec<FrameBody>,
}

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

async fn session(
    State(s): State<RestState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, EmotionError> {
    Ok(Json(s.app.summary(&caller, &id).await?))
}

async fn health(State(s): State<RestState>) -> impl IntoResponse {
    Json(s.health.report())
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
