//! The REST front end: `/api/v1/scores/*`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iv_platform::auth::{Caller, Principal, Privileged};
use iv_platform::errors::{AppJson, AppQuery};
use iv_platform::health::Health;
use serde::Deserialize;

use crate::answer::AnswerInput;
use crate::app::{ReportFormat, ScoringApp};
use crate::error::ScoringError;
use crate::overall::ScoreInput;

#[derive(Clone)]
pub struct RestState {
    pub scoring: ScoringApp,
    pub health: Health,
}

pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/api/v1/scores/calculate", post(calculate))
        .route("/api/v1/scores/analyze", post(analyze))
        .route("/api/v1/scores/session/{id}", get(session_score))
        .route("/api/v1/scores/report", post(report).get(report_by_query))
        .route("/api/v1/scores/health", get(health))
        .with_state(state)
}

/// An interview to score; a service caller names the organisation it belongs to (an admin's
/// own is used for theirs).
#[derive(Debug, Deserialize)]
struct CalculateBody {
    #[serde(flatten)]
    input: ScoreInput,
    #[serde(default)]
    org_id: String,
}

async fn calculate(
    State(s): State<RestState>,
    Privileged(caller): Privileged,
    AppJson(body): AppJson<CalculateBody>,
) -> Result<Response, ScoringError> {
    let org = caller.acting_for(&body.org_id);
    Ok(Json(s.scoring.calculate(&body.input, org.as_ref()).await?).into_response())
}

async fn analyze(
    State(s): State<RestState>,
    AppJson(input): AppJson<AnswerInput>,
) -> Result<Response, ScoringError> {
    Ok(Json(s.scoring.analyze_answer(input).await?).into_response())
}

async fn session_score(
    State(s): State<RestState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ScoringError> {
    Ok(Json(s.scoring.score(&caller, &id).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    session_id: String,
    #[serde(default)]
    format: String,
    #[serde(default = "yes")]
    include_emotions: bool,
    #[serde(default)]
    include_video: bool,
}

fn yes() -> bool {
    true
}

async fn report(
    State(s): State<RestState>,
    Caller(caller): Caller,
    AppJson(q): AppJson<ReportQuery>,
) -> Result<Response, ScoringError> {
    render(&s, &caller, q).await
}

async fn report_by_query(
    State(s): State<RestState>,
    Caller(caller): Caller,
    AppQuery(q): AppQuery<ReportQuery>,
) -> Result<Response, ScoringError> {
    render(&s, &caller, q).await
}

async fn render(
    s: &RestState,
    caller: &Principal,
    q: ReportQuery,
) -> Result<Response, ScoringError> {
    if q.session_id.trim().is_empty() {
        return Err(ScoringError::InvalidInput("session_id is required".into()));
    }
    let format = ReportFormat::parse(&q.format)?;
    let rendered = s
        .scoring
        .report(
            caller,
            &q.session_id,
            q.include_emotions,
            q.include_video,
            format,
            None,
        )
        .await?;
    let disposition = format!(
        "inline; filename=\"interview-{}.{}\"",
        q.session_id,
        format.as_str()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        rendered.bytes,
    )
        .into_response())
}

async fn health(State(s): State<RestState>) -> impl IntoResponse {
    Json(s.health.report())
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
