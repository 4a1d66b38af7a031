//! The organisation's interviews as a list a recruiter filters and sorts: who, in what state,
//! when, and the overall score once there is one.

use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::OrgId;
use iv_platform::db::Pool;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::InterviewError;
use crate::store::{SESSION_COLUMNS, Session, SessionState};

/// Most interviews one page holds.
pub const MAX_LIMIT: i64 = 200;
/// A page's size when the caller does not say.
pub const DEFAULT_LIMIT: i64 = 50;

/// What the list is ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    CreatedAt,
    CompletedAt,
    /// The overall score; interviews not scored yet come last either way.
    Score,
    /// The candidate's name as the recruiter gave it.
    Candidate,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::CompletedAt => "completed_at",
            Self::Score => "overall_score",
            Self::Candidate => "LOWER(candidate_name)",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Asc,
    /// Newest, highest or last first: what a recruiter looks for.
    #[default]
    Desc,
}

/// Which interviews, in what order, which page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Listing {
    /// Only interviews in this state.
    #[param(inline)]
    pub state: Option<SessionState>,
    /// Only candidates whose name or id contains this (any case).
    pub q: Option<String>,
    #[serde(default)]
    #[param(inline)]
    pub sort: SortKey,
    #[serde(default)]
    #[param(inline)]
    pub order: Order,
    /// At most this many (50 unless said).
    pub limit: Option<i64>,
    /// Skips this many first.
    pub offset: Option<i64>,
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InterviewSummary {
    pub id: String,
    pub candidate_name: String,
    pub user_id: String,
    pub state: SessionState,
    pub policy: AnalysisPolicy,
    pub questions: usize,
    pub answered: usize,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub report_ready: bool,
    pub overall_score: Option<f32>,
}

impl InterviewSummary {
    fn of(s: &Session) -> Self {
        Self {
            id: s.id.clone(),
            candidate_name: s.candidate_name.clone(),
            user_id: s.user_id.clone(),
            state: s.state,
            policy: s.policy,
            questions: s.questions.len(),
            answered: s.current_index,
            created_at: s.created_at,
            started_at: s.started_at,
            completed_at: s.completed_at,
            expires_at: s.expires_at,
            report_ready: s.report_ready,
            overall_score: s.overall_score,
        }
    }
}

/// A page of the list and how many interviews match in all.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub interviews: Vec<InterviewSummary>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// `text` as a LIKE pattern that matches it literally anywhere (escape character `\`).
fn contains_pattern(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// The organisation's interviews that `listing` selects, one page of them.
#[tracing::instrument(name = "db.interviews", skip_all)]
pub async fn list(pool: &Pool, org: &OrgId, listing: &Listing) -> Result<Page, InterviewError> {
    let limit = listing.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(InterviewError::InvalidArgument(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let offset = listing.offset.unwrap_or(0);
    if offset < 0 {
        return Err(InterviewError::InvalidArgument(
            "offset must be 0 or more".into(),
        ));
    }
    let q = listing
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 128) {
        return Err(InterviewError::InvalidArgument(
            "q is at most 128 characters".into(),
        ));
    }
    // The filters are always bound; an absent one matches everything. Sort column and
    // direction come from the enums above, never from the caller's text.
    let filter = "FROM interviews WHERE org_id = $1
           AND ($2 = '' OR state = $2)
           AND ($3 = '' OR LOWER(candidate_name) LIKE $3 ESCAPE '\\' OR LOWER(user_id) LIKE $3 ESCAPE '\\')";
    let state = listing.state.map_or("", SessionState::as_str);
    let pattern = q.map(contains_pattern).unwrap_or_default();
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n {filter}"
    )))
    .bind(&org.0)
    .bind(state)
    .bind(&pattern)
    .fetch_one(pool)
    .await?
    .try_get("n")?;
    let direction = match listing.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} {filter}
         ORDER BY {} {direction} NULLS LAST, id
         LIMIT $4 OFFSET $5",
        listing.sort.column()
    )))
    .bind(&org.0)
    .bind(state)
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let interviews = rows
        .iter()
        .map(|row| Session::from_row(row).map(|s| InterviewSummary::of(&s)))
        .collect::<Result<Vec<_>, InterviewError>>()?;
    Ok(Page {
        interviews,
        total,
        limit,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_matches_its_text_literally() {
        assert_eq!(contains_pattern("Ana"), "%ana%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
