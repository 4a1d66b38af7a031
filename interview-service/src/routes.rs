//! REST (`/api/v1/interviews/*`) and the WebSocket endpoint (`/ws/interviews/{id}`).

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use iv_platform::CancellationToken;
use iv_platform::auth::{Caller, Principal};
use iv_platform::errors::{AppJson, AppQuery};
use iv_platform::health::Health;
use iv_platform::http;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::{FrameOutcome, FrameUpload, InterviewApp, StartRequest};
use crate::error::InterviewError;
use crate::messages::{AnswerData, FrameData, LiveFeedback, QuestionMessage, StatusMessage};
use crate::store::{AnswerFeedback, Session, StoredAnswer};
use crate::ws::{self, Incoming, Outgoing};

#[derive(Clone)]
pub struct AppState {
    pub app: InterviewApp,
    /// How long each organisation keeps its interviews.
    pub retention: crate::retention::Retention,
    /// Who the organisations say their members are.
    pub members: crate::members::Members,
    /// Signs candidates' invitations (the backend's own key, the one the gateway trusts).
    pub invitations: std::sync::Arc<iv_platform::auth::SigningKey>,
    /// Cancelled on shutdown, so open sockets say goodbye and close.
    pub shutdown: CancellationToken,
    pub socket_limits: ws::SocketLimits,
}

/// Every request from a member passes the organisation's own list first: a revoked member is
/// refused here, on every route and the socket alike.
async fn admit(
    State(members): State<crate::members::Members>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(asserted) = req.extensions().get::<iv_platform::auth::Asserted>()
        && let Err(e) = members.admit(&asserted.principal).await
    {
        return e.into_response();
    }
    next.run(req).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MemberList {
    org_id: String,
    members: Vec<crate::members::Member>,
}

/// The caller's organisation's members (admins only).
#[utoipa::path(
    get, path = "/api/v1/organisation/members", tag = "organisation",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The organisation's members.", body = MemberList)),
)]
async fn members(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<MemberList>, InterviewError> {
    let (org, members) = s.members.list(&caller).await?;
    Ok(Json(MemberList {
        org_id: org.0,
        members,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewMember {
    subject: String,
    role: String,
}

#[utoipa::path(
    post, path = "/api/v1/organisation/members", tag = "organisation",
    security(("bearer" = ["admin"])),
    request_body = NewMember,
    responses((status = 201, description = "The member, added.", body = crate::members::Member)),
)]
async fn add_member(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppJson(body): AppJson<NewMember>,
) -> Result<Response, InterviewError> {
    let role = body
        .role
        .parse()
        .map_err(|_| InterviewError::InvalidArgument("role must be admin or recruiter".into()))?;
    let member = s.members.add(&caller, &body.subject, role).await?;
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

#[utoipa::path(
    delete, path = "/api/v1/organisation/members/{subject}", tag = "organisation",
    security(("bearer" = ["admin"])),
    params(
        ("subject" = String, Path, description = "The member's subject, as their identity provider names them."),
    ),
    responses((status = 200, description = "The member, revoked.", body = crate::members::Member)),
)]
async fn revoke_member(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(subject): Path<String>,
) -> Result<Json<crate::members::Member>, InterviewError> {
    Ok(Json(s.members.revoke(&caller, &subject).await?))
}

/// The caller's organisation's retention: days interviews are kept after they end.
#[utoipa::path(
    get, path = "/api/v1/organisation/retention", tag = "organisation",
    security(("bearer" = ["admin", "recruiter"])),
    responses((status = 200, description = "The retention.", body = crate::retention::Policy)),
)]
async fn retention(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<crate::retention::Policy>, InterviewError> {
    Ok(Json(s.retention.policy(&caller).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewRetention {
    days: u32,
}

#[utoipa::path(
    put, path = "/api/v1/organisation/retention", tag = "organisation",
    security(("bearer" = ["admin"])),
    request_body = NewRetention,
    responses(
        (status = 200, description = "The retention, changed.", body = crate::retention::Policy),
    ),
)]
async fn set_retention(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppJson(body): AppJson<NewRetention>,
) -> Result<Json<crate::retention::Policy>, InterviewError> {
    let policy = s.retention.set(&caller, body.days).await?;
    let org = iv_platform::auth::OrgId(policy.org_id.clone());
    let detail = format!("days={}", policy.days);
    s.app
        .audited(
            &caller,
            iv_platform::audit::Action::RetentionChanged,
            &org,
            "",
            &detail,
        )
        .await?;
    Ok(Json(policy))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Swept {
    erased: Vec<String>,
    /// A full batch: more may be due; ask again.
    more: bool,
}

/// The worker's sweeper: erases a batch of interviews whose retention ran out.
async fn sweep(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Swept>, InterviewError> {
    let erased = s
        .app
        .sweep(&caller, &s.retention, iv_contracts::now_millis())
        .await?;
    Ok(Json(Swept {
        more: erased.len() as i64 >= crate::app::SWEEP_BATCH,
        erased,
    }))
}

/// The notice of the interview's policy, as the candidate reads it before consenting.
#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/notice", tag = "consent",
    security(("bearer" = ["candidate", "admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The notice.", body = crate::consent::Notice)),
)]
async fn notice(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::consent::Notice>, InterviewError> {
    Ok(Json(s.app.notice_for(&caller, &id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ConsentView {
    interview_id: String,
    /// `pending` (no record yet), `given` or `withdrawn`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<crate::consent::Consent>,
}

impl ConsentView {
    fn of(id: String, record: Option<crate::consent::Consent>) -> Self {
        let state = match &record {
            None => "pending",
            Some(c) if c.is_active() => "given",
            Some(_) => "withdrawn",
        };
        Self {
            interview_id: id,
            state,
            record,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/consent", tag = "consent",
    security(("bearer" = ["candidate", "admin", "recruiter", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The consent's state and record.", body = ConsentView)),
)]
async fn consent(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ConsentView>, InterviewError> {
    let record = s.app.consent_record(&caller, &id).await?;
    Ok(Json(ConsentView::of(id, record)))
}

/// The notice consented to, as `GET .../notice` gave it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = GivenConsent)]
struct ConsentBody {
    notice_version: i64,
    notice_sha256: String,
}

#[utoipa::path(
    post, path = "/api/v1/interviews/{id}/consent", tag = "consent",
    security(("bearer" = ["candidate"])),
    params(("id" = String, Path, description = "The interview's id.")),
    request_body = ConsentBody,
    responses((status = 201, description = "The consent, given.", body = ConsentView)),
)]
async fn give_consent(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    AppJson(body): AppJson<ConsentBody>,
) -> Result<Response, InterviewError> {
    let record = s
        .app
        .give_consent(&caller, &id, body.notice_version, &body.notice_sha256)
        .await?;
    Ok((StatusCode::CREATED, Json(ConsentView::of(id, Some(record)))).into_response())
}

#[utoipa::path(
    delete, path = "/api/v1/interviews/{id}/consent", tag = "consent",
    security(("bearer" = ["candidate", "admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 200, description = "The consent, withdrawn: nothing more is analysed.", body = ConsentView),
    ),
)]
async fn withdraw_consent(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ConsentView>, InterviewError> {
    let record = s.app.withdraw_consent(&caller, &id).await?;
    Ok(Json(ConsentView::of(id, Some(record))))
}

fn policy_in_path(policy: &str) -> Result<iv_contracts::policy::AnalysisPolicy, InterviewError> {
    Ok(iv_contracts::policy::AnalysisPolicy::from_request(Some(
        policy,
    ))?)
}

#[utoipa::path(
    get, path = "/api/v1/organisation/notices/{policy}", tag = "organisation",
    security(("bearer" = ["admin", "recruiter"])),
    params(
        ("policy" = iv_contracts::policy::AnalysisPolicy, Path, description = "The analysis policy the notice is for."),
    ),
    responses((status = 200, description = "The notice in force.", body = crate::consent::Notice)),
)]
async fn organisation_notice(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(policy): Path<String>,
) -> Result<Json<crate::consent::Notice>, InterviewError> {
    let policy = policy_in_path(&policy)?;
    Ok(Json(s.app.organisation_notice(&caller, policy).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NoticeBody {
    text: String,
}

#[utoipa::path(
    put, path = "/api/v1/organisation/notices/{policy}", tag = "organisation",
    security(("bearer" = ["admin"])),
    params(
        ("policy" = iv_contracts::policy::AnalysisPolicy, Path, description = "The analysis policy the notice is for."),
    ),
    request_body = NoticeBody,
    responses(
        (status = 201, description = "The notice, as a new version.", body = crate::consent::Notice),
    ),
)]
async fn publish_notice(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(policy): Path<String>,
    AppJson(body): AppJson<NoticeBody>,
) -> Result<Response, InterviewError> {
    let policy = policy_in_path(&policy)?;
    let notice = s.app.publish_notice(&caller, policy, &body.text).await?;
    Ok((StatusCode::CREATED, Json(notice)).into_response())
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct DefaultPolicy {
    policy: iv_contracts::policy::AnalysisPolicy,
}

#[utoipa::path(
    get, path = "/api/v1/organisation/policy", tag = "organisation",
    security(("bearer" = ["admin", "recruiter"])),
    responses((status = 200, description = "The default analysis policy.", body = DefaultPolicy)),
)]
async fn default_policy(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<DefaultPolicy>, InterviewError> {
    let policy = s.app.default_policy(&caller).await?;
    Ok(Json(DefaultPolicy { policy }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewDefaultPolicy {
    policy: String,
}

#[utoipa::path(
    put, path = "/api/v1/organisation/policy", tag = "organisation",
    security(("bearer" = ["admin"])),
    request_body = NewDefaultPolicy,
    responses(
        (status = 200, description = "The default analysis policy, changed.", body = DefaultPolicy),
    ),
)]
async fn set_default_policy(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppJson(body): AppJson<NewDefaultPolicy>,
) -> Result<Json<DefaultPolicy>, InterviewError> {
    let policy = iv_contracts::policy::AnalysisPolicy::from_request(Some(&body.policy))?;
    let policy = s.app.set_default_policy(&caller, policy).await?;
    Ok(Json(DefaultPolicy { policy }))
}

/// The largest message a frame needs: one frame of the service's limit, base64-encoded (4/3)
/// inside a JSON body, with room for the other fields. Bodies and socket messages beyond it
/// are refused before they are buffered.
fn largest_message(max_frame_bytes: usize) -> usize {
    max_frame_bytes / 3 * 4 + 64 * 1024
}

/// Every public route, each described by its handler's `#[utoipa::path]`: a route cannot be added
/// here without its description, nor described without being routed.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(interviews))
        .routes(routes!(start))
        .routes(routes!(session, erase))
        .routes(routes!(erasure))
        .routes(routes!(decide, decisions))
        .routes(routes!(export))
        .routes(routes!(report))
        .routes(routes!(notice))
        .routes(routes!(consent, give_consent, withdraw_consent))
        .routes(routes!(organisation_notice, publish_notice))
        .routes(routes!(default_policy, set_default_policy))
        .routes(routes!(audit_trail))
        .routes(routes!(verify_audit))
        .routes(routes!(frame))
        .routes(routes!(answer))
        .routes(routes!(complete))
        .routes(routes!(status))
        .routes(routes!(members, add_member))
        .routes(routes!(revoke_member))
        .routes(routes!(retention, set_retention))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(socket),
    tags(
        (name = "interviews", description = "Interviews: creating them, taking them, their reports, decisions and the candidate's rights."),
        (name = "consent", description = "The notice a candidate reads and the consent they give or withdraw."),
        (name = "organisation", description = "The organisation's members, notices, default policy and retention."),
        (name = "audit", description = "Who saw or changed what, in a tamper-evident chain."),
    )
)]
struct ApiDoc;

/// The interview service's part of the public API's OpenAPI document (the WebSocket's upgrade
/// included).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The service's whole HTTP surface: REST, the socket, health and metrics, with the common layers
/// and the JSON 404. The socket takes any method (the upgrade answers what is not one); the
/// internal routes are for the backend's services, never proxied by the gateway.
pub fn router(state: AppState, health: &Health) -> Router {
    let body_limit = largest_message(state.app.max_frame_bytes());
    let routes = api()
        .split_for_parts()
        .0
        .route("/internal/v1/audit", post(record_audit))
        .route("/ws/interviews/{id}", any(socket))
        .route("/internal/v1/retention/sweep", post(sweep))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.members.clone(),
            admit,
        ))
        .with_state(state);
    http::observe(
        routes.merge(health.router()).fallback(http::not_found),
        "interview-service",
    )
}

/// A session as clients see it (expected answer points stay server-side).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    pub user_id: String,
    pub candidate_name: String,
    /// The position applied for (may be empty).
    pub job_title: String,
    /// When the invitation runs out, epoch milliseconds.
    pub expires_at: Option<i64>,
    pub state: crate::store::SessionState,
    pub policy: &'static str,
    /// Whether the candidate's consent is in force (frames and answers are analysed).
    pub consent: bool,
    /// `pending`, `given` or `withdrawn`.
    pub consent_state: &'static str,
    pub progress: u32,
    pub total_questions: usize,
    pub current_question: Option<QuestionMessage>,
    pub frames_received: i64,
    pub frames_analyzed: i64,
    pub frames_deferred: i64,
    /// Sampled out or shed while the emotion service was busy.
    pub frames_skipped: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub report_ready: bool,
    pub overall_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<AnswerView>>,
    /// Only in the answer that creates the interview: what the candidate opens it with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<Invitation>,
    /// The recruiter's latest decision, for the organisation's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::decisions::Decision>,
}

/// A candidate's invitation: a token that opens this one interview and nothing else, valid until
/// the interview expires. The link is relative to the gateway (`http://<gateway>` + `path`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub token: String,
    pub path: String,
    pub expires_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnswerView {
    pub question_id: String,
    pub transcript: String,
    pub duration: f32,
    pub analysis: Option<AnswerFeedback>,
    pub created_at: i64,
}

impl SessionView {
    fn of(s: &Session, answers: Option<Vec<StoredAnswer>>) -> Self {
        Self {
            id: s.id.clone(),
            user_id: s.user_id.clone(),
            candidate_name: s.candidate_name.clone(),
            job_title: s.job_title.clone(),
            expires_at: s.expires_at,
            state: s.state,
            policy: s.policy.as_str(),
            consent: s.consent.is_given(),
            consent_state: s.consent.as_str(),
            progress: s.progress(),
            total_questions: s.questions.len(),
            current_question: s
                .current_question()
                .map(|q| QuestionMessage::new(q, s.current_index, s.questions.len())),
            frames_received: s.frames_received,
            frames_analyzed: s.frames_analyzed,
            frames_deferred: s.frames_deferred,
            frames_skipped: s.frames_skipped,
            created_at: s.created_at,
            started_at: s.started_at,
            completed_at: s.completed_at,
            report_ready: s.report_ready,
            overall_score: s.overall_score,
            answers: answers.map(|list| {
                list.into_iter()
                    .map(|a| AnswerView {
                        question_id: a.question_id,
                        transcript: a.transcript,
                        duration: a.duration,
                        analysis: a.analysis,
                        created_at: a.created_at,
                    })
                    .collect()
            }),
            invitation: None,
            decision: None,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/interviews/start", tag = "interviews",
    security(("bearer" = ["admin", "recruiter"])),
    request_body = StartRequest,
    responses(
        (status = 201, description = "The interview, with the candidate's invitation.", body = SessionView),
    ),
)]
async fn start(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppJson(req): AppJson<StartRequest>,
) -> Result<Response, InterviewError> {
    // Interviews are created by the organisation's members, in their organisation.
    let org = match (caller.role.is_member(), caller.org.clone()) {
        (true, Some(org)) => org,
        _ => {
            return Err(InterviewError::Forbidden(
                "only an organisation's admins and recruiters start interviews",
            ));
        }
    };
    let session = s.app.start(req, org.clone(), &caller).await?;
    let expires_at = session.expires_at.unwrap_or_else(iv_contracts::now_millis);
    let ttl_ms = (expires_at - iv_contracts::now_millis()).max(1000) as u64;
    let candidate = Principal::candidate(format!("invitation:{}", session.id), org, &session.id);
    let token = s
        .invitations
        .mint(&candidate, std::time::Duration::from_millis(ttl_ms))
        .map_err(InterviewError::Invitation)?;
    let mut view = SessionView::of(&session, None);
    view.invitation = Some(Invitation {
        path: format!("/?invitation={token}"),
        token,
        expires_at,
    });
    tracing::info!(session_id = %session.id, created_by = %caller.subject, "invitation issued");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The organisation's interviews: `?state=&q=&sort=created_at|completed_at|score|candidate
/// &order=asc|desc&limit=&offset=`.
#[utoipa::path(
    get, path = "/api/v1/interviews", tag = "interviews",
    security(("bearer" = ["admin", "recruiter"])),
    params(crate::listing::Listing),
    responses(
        (status = 200, description = "A page of the organisation's interviews.", body = crate::listing::Page),
    ),
)]
async fn interviews(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppQuery(listing): AppQuery<crate::listing::Listing>,
) -> Result<Json<crate::listing::Page>, InterviewError> {
    Ok(Json(s.app.interviews(&caller, &listing).await?))
}

#[utoipa::path(
    get, path = "/api/v1/interviews/{id}", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The interview, with its answers.", body = SessionView)),
)]
async fn session(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, InterviewError> {
    let session = s.app.authorize(&caller, &id).await?;
    let answers = s.app.answers(&id).await?;
    let mut view = SessionView::of(&session, Some(answers));
    if caller.role.is_member() {
        view.decision = s.app.decisions(&caller, &id).await?.pop();
    }
    s.app.viewed(&caller, &session).await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewDecision {
    decision: String,
    reason: String,
}

/// A recruiter's decision on the interview (advance, reject or hold, with a reason).
#[utoipa::path(
    post, path = "/api/v1/interviews/{id}/decision", tag = "interviews",
    security(("bearer" = ["admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id.")),
    request_body = NewDecision,
    responses(
        (status = 201, description = "The decision, recorded.", body = crate::decisions::Decision),
    ),
)]
async fn decide(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    AppJson(body): AppJson<NewDecision>,
) -> Result<Response, InterviewError> {
    let d = s
        .app
        .decide(&caller, &id, &body.decision, &body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DecisionList {
    interview_id: String,
    /// Oldest first; the last one stands.
    decisions: Vec<crate::decisions::Decision>,
}

#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/decision", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 200, description = "Every decision recorded, oldest first.", body = DecisionList),
    ),
)]
async fn decisions(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionList>, InterviewError> {
    let decisions = s.app.decisions(&caller, &id).await?;
    Ok(Json(DecisionList {
        interview_id: id,
        decisions,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ExportView {
    interview: SessionView,
    #[serde(flatten)]
    rest: crate::app::rights::Export,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// `json` (the default) or `pdf`.
    #[serde(default)]
    format: String,
    /// Whether the face analysis' summary is in the report (when the policy allowed it).
    #[serde(default = "yes")]
    include_emotions: bool,
}

fn yes() -> bool {
    true
}

/// The report with the hiring decisions people recorded, for the organisation's members.
#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/report", tag = "interviews",
    security(("bearer" = ["admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id."), ReportQuery),
    responses(
        (status = 200, description = "The scoring service's report (see `/api/v1/scores/report`) with the decisions recorded: JSON, or a PDF with `format=pdf`.", content((Object = "application/json"), (iv_platform::openapi::Pdf = "application/pdf"))),
    ),
)]
async fn report(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<ReportQuery>,
) -> Result<Response, InterviewError> {
    let r = s
        .app
        .report(&caller, &id, &q.format, q.include_emotions)
        .await?;
    let content_type = if r.format == "pdf" {
        "application/pdf"
    } else {
        "application/json"
    };
    let disposition = format!("inline; filename=\"interview-{id}.{}\"", r.format);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        r.report_data,
    )
        .into_response())
}

/// Everything stored about the interview, as JSON: for the candidate's access and portability
/// rights, and for the organisation.
#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/export", tag = "interviews",
    security(("bearer" = ["candidate", "admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 200, description = "Everything stored about the interview, as an attachment.", body = ExportView),
    ),
)]
async fn export(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, InterviewError> {
    let export = s.app.export(&caller, &id).await?;
    let view = ExportView {
        interview: SessionView::of(&export.session, Some(export.answers.clone())),
        rest: export,
    };
    let disposition = format!("attachment; filename=\"interview-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(view)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this interview's entries.
    interview_id: Option<String>,
    /// At most this many entries.
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditList {
    entries: Vec<iv_platform::audit::Entry>,
}

/// The admin's organisation's audit trail, oldest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    security(("bearer" = ["admin"])),
    params(AuditQuery),
    responses((status = 200, description = "The entries, oldest first.", body = AuditList)),
)]
async fn audit_trail(
    State(s): State<AppState>,
    Caller(caller): Caller,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<Json<AuditList>, InterviewError> {
    let entries = s
        .app
        .audit_trail(
            &caller,
            q.interview_id.as_deref().filter(|i| !i.is_empty()),
            q.limit.unwrap_or(crate::app::rights::MAX_AUDIT_ENTRIES),
        )
        .await?;
    Ok(Json(AuditList { entries }))
}

/// Walks the audit chain and names the first entry that does not hold (admins).
#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Whether the chain holds, and where it breaks.", body = iv_platform::audit::Verification),
    ),
)]
async fn verify_audit(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<iv_platform::audit::Verification>, InterviewError> {
    Ok(Json(s.app.verify_audit(&caller).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ServiceRecord {
    action: String,
    #[serde(default)]
    detail: String,
}

/// An entry written by a service for the person it acted for (the worker's replays).
async fn record_audit(
    State(s): State<AppState>,
    Caller(caller): Caller,
    asserted: Option<axum::Extension<iv_platform::auth::Asserted>>,
    AppJson(body): AppJson<ServiceRecord>,
) -> Result<Response, InterviewError> {
    // Only a backend service writes here, never a person through the gateway.
    if asserted.is_none_or(|a| a.by == "gateway") {
        return Err(InterviewError::Forbidden(
            "only the backend's services write audit entries",
        ));
    }
    let entry = s
        .app
        .record_for(&caller, &body.action, &body.detail)
        .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// Erases the interview everywhere: 202 with the receipt when this request started it (other
/// services report as they finish), 200 with the same receipt when asked again.
#[utoipa::path(
    delete, path = "/api/v1/interviews/{id}", tag = "interviews",
    security(("bearer" = ["candidate", "admin", "recruiter"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 202, description = "Erasure started; the receipt fills in as each service finishes.", body = crate::erasure::Receipt),
        (status = 200, description = "Erasure asked for before: the receipt so far.", body = crate::erasure::Receipt),
    ),
)]
async fn erase(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, InterviewError> {
    let (receipt, first) = s.app.erase(&caller, &id).await?;
    let code = if first {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(receipt)).into_response())
}

/// The erasure receipt: who asked, when, what each service deleted, and whether all have.
#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/erasure", tag = "interviews",
    security(("bearer" = ["candidate", "admin", "recruiter", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "The erasure receipt.", body = crate::erasure::Receipt)),
)]
async fn erasure(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::erasure::Receipt>, InterviewError> {
    Ok(Json(s.app.erasure(&caller, &id).await?))
}

#[utoipa::path(
    get, path = "/api/v1/interviews/{id}/status", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses((status = 200, description = "Where the interview stands.", body = StatusMessage)),
)]
async fn status(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<StatusMessage>, InterviewError> {
    let session = s.app.authorize(&caller, &id).await?;
    Ok(Json(s.app.status(&session, None)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
enum FrameReply {
    Analyzed {
        emotion_update: crate::messages::EmotionUpdate,
    },
    Queued {
        frame_number: i64,
        live_feedback: LiveFeedback,
        message: String,
    },
}

/// A frame as JSON (`{image: base64, timestamp, format}`) or as a raw `image/jpeg`/`image/png` body.
#[utoipa::path(
    post, path = "/api/v1/interviews/{id}/frames", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    request_body(
        content((FrameData = "application/json"), (iv_platform::openapi::Jpeg = "image/jpeg"), (iv_platform::openapi::Png = "image/png")),
    ),
    responses(
        (status = 200, description = "The frame, analysed.", body = FrameReply),
        (status = 202, description = "The frame, queued for later analysis.", body = FrameReply),
    ),
)]
async fn frame(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, InterviewError> {
    s.app.authorize(&caller, &id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let upload = if content_type.starts_with("image/") {
        FrameUpload {
            bytes: body.to_vec(),
            timestamp: None,
            format: content_type.to_string(),
        }
    } else if content_type.starts_with("application/json") {
        let data: FrameData = serde_json::from_slice(&body)
            .map_err(|e| InterviewError::InvalidArgument(format!("invalid frame JSON: {e}")))?;
        ws::decode_frame(data)?
    } else {
        return Err(InterviewError::UnsupportedMediaType);
    };
    let reply = match s.app.submit_frame(&id, upload).await? {
        FrameOutcome::Analyzed { update, .. } => FrameReply::Analyzed {
            emotion_update: update,
        },
        FrameOutcome::Deferred { frame_number, .. } => FrameReply::Queued {
            frame_number,
            live_feedback: s.app.live_feedback(&id),
            message: "emotion service unavailable; the frame is queued for later analysis".into(),
        },
        FrameOutcome::Shed { cause, .. } => return Err(InterviewError::Downstream(cause)),
    };
    let code = if matches!(reply, FrameReply::Queued { .. }) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(reply)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AnswerReply {
    question_id: String,
    analysis: Option<AnswerFeedback>,
    next_question: Option<QuestionMessage>,
    status: StatusMessage,
}

#[utoipa::path(
    post, path = "/api/v1/interviews/{id}/answers", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    request_body = AnswerData,
    responses(
        (status = 200, description = "The answer's analysis and the next question.", body = AnswerReply),
    ),
)]
async fn answer(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    AppJson(data): AppJson<AnswerData>,
) -> Result<Json<AnswerReply>, InterviewError> {
    s.app.authorize(&caller, &id).await?;
    let outcome = s.app.submit_answer(&id, data).await?;
    let session = &outcome.session;
    Ok(Json(AnswerReply {
        question_id: outcome.question_id,
        analysis: outcome.feedback,
        next_question: session
            .current_question()
            .map(|q| QuestionMessage::new(q, session.current_index, session.questions.len())),
        status: s.app.status(session, None),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/interviews/{id}/complete", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 200, description = "The interview, completed; scoring follows.", body = SessionView),
    ),
)]
async fn complete(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, InterviewError> {
    s.app.authorize(&caller, &id).await?;
    let session = s.app.complete(&id).await?;
    Ok(Json(SessionView::of(&session, None)))
}

#[utoipa::path(
    get, path = "/ws/interviews/{id}", tag = "interviews",
    security(("bearer" = ["admin", "recruiter", "candidate", "service"])),
    params(("id" = String, Path, description = "The interview's id.")),
    responses(
        (status = 101, description = "The live interview: JSON messages (`answer`, `frame`, `complete`, ...) and binary JPEG frames from the client; `question`, `emotion_update`, `status` and `error` from the server."),
    ),
)]
async fn socket(
    ws: WebSocketUpgrade,
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Response {
    // Checked before the upgrade; a session the caller may not see gets the very answer an
    // unknown one gets.
    let allowed = s.app.authorize(&caller, &id).await;
    let largest = largest_message(s.app.max_frame_bytes());
    ws.max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| async move {
            match allowed {
                Ok(_) => serve_socket(socket, s, id).await,
                Err(e) => refuse_socket(socket, e).await,
            }
        })
}

async fn refuse_socket(mut socket: WebSocket, err: InterviewError) {
    let message = crate::messages::ServerMessage::from_error(err).to_json();
    let _ = socket.send(Message::Text(message.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn serve_socket(socket: WebSocket, s: AppState, id: String) {
    let (sink, stream) = socket.split();
    let sink = Box::pin(sink.with(|out: Outgoing| async move {
        Ok::<_, axum::Error>(match out {
            Outgoing::Text(text) => Message::Text(text.into()),
            Outgoing::Ping => Message::Ping(Default::default()),
        })
    }));
    let stream = stream.filter_map(|m| async move {
        match m {
            Ok(Message::Text(t)) => Some(Incoming::Text(t.to_string())),
            Ok(Message::Binary(b)) => Some(Incoming::Binary(b.to_vec())),
            Ok(Message::Close(_)) | Err(_) => Some(Incoming::Close),
            Ok(Message::Ping(_) | Message::Pong(_)) => Some(Incoming::Alive),
        }
    });
    ws::run(
        s.app,
        id,
        sink,
        Box::pin(stream),
        s.socket_limits,
        s.shutdown,
    )
    .await;
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
