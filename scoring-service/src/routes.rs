//! The REST front end: `/api/v1/scores/*`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use iv_platform::auth::{Caller, Principal, Privileged};
use iv_platform::errors::{AppJson, AppQuery};
use iv_platform::health::Health;
use serde::Deserialize;
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::answer::{AnswerAnalysis, AnswerInput};
use crate::app::{ReportFormat, ScoringApp};
use crate::error::ScoringError;
use crate::overall::Score;
use crate::overall::ScoreInput;
use crate::report::Report;
use iv_platform::openapi::Pdf;

#[derive(Clone)]
pub struct RestState {
    pub scoring: ScoringApp,
    pub health: Health,
}

/// Every public route, each described by its handler's `#[utoipa::path]`: a route cannot be added
/// here without its description, nor described without being routed.
fn api() -> OpenApiRouter<RestState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(calculate))
        .routes(routes!(analyze))
        .routes(routes!(session_score))
        .routes(routes!(report, report_by_query))
        .routes(routes!(health))
}

#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "scores", description = "Answer analysis, interview scores and reports.")))]
struct ApiDoc;

/// The scoring service's part of the public API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn router(state: RestState) -> Router {
    api().split_for_parts().0.with_state(state)
}

/// An interview to score; a service caller names the organisation it belongs to (an admin's
/// own is used for theirs).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct CalculateBody {
    #[serde(flatten)]
    input: ScoreInput,
    #[serde(default)]
    org_id: String,
}

/// Scores a whole interview from its answers and frames, and stores the score (services and
/// admins; the interview service calls it when an interview completes).
#[utoipa::path(post, path = "/api/v1/scores/calculate", tag = "scores",
    security(("bearer" = ["service", "admin"])),
    request_body = CalculateBody,
    responses((status = 200, description = "The interview's score, stored.", body = Score)))]
async fn calculate(
    State(s): State<RestState>,
    Privileged(caller): Privileged,
    AppJson(body): AppJson<CalculateBody>,
) -> Result<Response, ScoringError> {
    let org = caller.acting_for(&body.org_id);
    Ok(Json(s.scoring.calculate(&body.input, org.as_ref()).await?).into_response())
}

/// Analyses one answer against its question: relevance by meaning, with the evidence for each
/// expected point, depth and clarity. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/scores/analyze", operation_id = "analyze_answer", tag = "scores",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    request_body = AnswerInput,
    responses((status = 200, description = "The answer's analysis.", body = AnswerAnalysis)))]
async fn analyze(
    State(s): State<RestState>,
    AppJson(input): AppJson<AnswerInput>,
) -> Result<Response, ScoringError> {
    Ok(Json(s.scoring.analyze_answer(input).await?).into_response())
}

/// The stored score of one interview, for its organisation's members and services.
#[utoipa::path(get, path = "/api/v1/scores/session/{id}", tag = "scores",
    security(("bearer" = ["admin", "recruiter", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The interview's score.", body = Score)))]
async fn session_score(
    State(s): State<RestState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ScoringError> {
    Ok(Json(s.scoring.score(&caller, &id).await?).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// The interview's id.
    session_id: String,
    /// `json` (the default) or `pdf`.
    #[serde(default)]
    format: String,
    /// Whether the face analysis' summary is in the report (when the policy allowed it).
    #[serde(default = "yes")]
    include_emotions: bool,
    /// Kept for the contract: no video is stored, so `true` is refused (`VIDEO_NOT_STORED`).
    #[serde(default)]
    include_video: bool,
}

fn yes() -> bool {
    true
}

/// The interview's report, asked for with a JSON body.
#[utoipa::path(post, path = "/api/v1/scores/report", operation_id = "score_report", tag = "scores",
    security(("bearer" = ["admin", "recruiter", "service"])),
    request_body = ReportQuery,
    responses((status = 200, description = "The report: JSON, or a PDF with `format=pdf`.",
        content((Report = "application/json"), (Pdf = "application/pdf")))))]
async fn report(
    State(s): State<RestState>,
    Caller(caller): Caller,
    AppJson(q): AppJson<ReportQuery>,
) -> Result<Response, ScoringError> {
    render(&s, &caller, q).await
}

/// The interview's report, asked for in the query string.
#[utoipa::path(get, path = "/api/v1/scores/report", operation_id = "score_report_by_query", tag = "scores",
    security(("bearer" = ["admin", "recruiter", "service"])),
    params(ReportQuery),
    responses((status = 200, description = "The report: JSON, or a PDF with `format=pdf`.",
        content((Report = "application/json"), (Pdf = "application/pdf")))))]
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

/// The service's health, by component (reachable without a token at `/health` too).
#[utoipa::path(get, path = "/api/v1/scores/health", operation_id = "scoring_health", tag = "scores",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    responses((status = 200, description = "Each component's state.", body = Object)))]
async fn health(State(s): State<RestState>) -> impl IntoResponse {
    Json(s.health.report())
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
