//! Durable interview sessions and answers (SQLite or PostgreSQL). Raw frames are never stored:
//! only counters of how many arrived, were analysed live, or were queued for the worker.

use iv_contracts::policy::AnalysisPolicy;
use iv_platform::auth::OrgId;
use iv_platform::db::{AddedColumn, Pool};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::InterviewError;
use crate::questions::Question;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS interviews (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        state TEXT NOT NULL,
        policy TEXT NOT NULL,
        consent BIGINT NOT NULL,
        questions TEXT NOT NULL,
        current_index BIGINT NOT NULL,
        frames_received BIGINT NOT NULL,
        frames_analyzed BIGINT NOT NULL,
        frames_deferred BIGINT NOT NULL,
        frames_skipped BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        completed_at BIGINT,
        report_ready BIGINT NOT NULL,
        overall_score DOUBLE PRECISION,
        org_id TEXT NOT NULL DEFAULT '',
        candidate_name TEXT NOT NULL DEFAULT '',
        expires_at BIGINT,
        job_title TEXT NOT NULL DEFAULT ''
    )",
    "CREATE TABLE IF NOT EXISTS answers (
        session_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        position BIGINT NOT NULL,
        transcript TEXT NOT NULL,
        duration DOUBLE PRECISION NOT NULL,
        analysis TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (session_id, question_id)
    )",
];

/// Columns added since the tables first shipped, for databases made before (a new database has
/// them from [`SCHEMA`]).
pub const ADDED_COLUMNS: &[AddedColumn] = &[
    AddedColumn {
        table: "interviews",
        column: "frames_skipped",
        definition: "BIGINT NOT NULL DEFAULT 0",
    },
    // Interviews made before organisations belong to none: no member sees them.
    AddedColumn {
        table: "interviews",
        column: "org_id",
        definition: "TEXT NOT NULL DEFAULT ''",
    },
    AddedColumn {
        table: "interviews",
        column: "candidate_name",
        definition: "TEXT NOT NULL DEFAULT ''",
    },
    AddedColumn {
        table: "interviews",
        column: "expires_at",
        definition: "BIGINT",
    },
    AddedColumn {
        table: "interviews",
        column: "job_title",
        definition: "TEXT NOT NULL DEFAULT ''",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Created,
    InProgress,
    Completed,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }

    fn parse(s: &str) -> Result<Self, InterviewError> {
        match s {
            "created" => Ok(Self::Created),
            "in_progress" => Ok(Self::InProgress),
            "completed" => Ok(Self::Completed),
            other => Err(InterviewError::UnknownState(other.to_string())),
        }
    }
}

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> InterviewError {
    move |source| InterviewError::Corrupt { what, source }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: String,
    /// The organisation that holds the interview; only its members (and its candidate) see it.
    pub org: OrgId,
    pub user_id: String,
    /// Whom the interview is for, as the recruiter named them.
    pub candidate_name: String,
    /// The position the candidate applies for, as the recruiter named it (may be empty): the
    /// candidate's page shows it on the welcome.
    pub job_title: String,
    /// When the invitation (and the candidate's token) runs out, epoch milliseconds.
    pub expires_at: Option<i64>,
    pub state: SessionState,
    pub policy: AnalysisPolicy,
    /// The candidate's consent to the notice of this interview's policy.
    pub consent: crate::consent::ConsentState,
    pub questions: Vec<Question>,
    /// Index of the question being asked; equal to the number of questions once all are answered.
    pub current_index: usize,
    /// Every frame received is analysed live, deferred to the worker, or skipped: sampled out
    /// or shed while the emotion service was busy (received = analysed + deferred + skipped).
    pub frames_received: i64,
    pub frames_analyzed: i64,
    pub frames_deferred: i64,
    pub frames_skipped: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub report_ready: bool,
    pub overall_score: Option<f32>,
}

/// The part of a session that decides whether, and how, a frame is analysed.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameGate {
    pub state: SessionState,
    pub policy: AnalysisPolicy,
    pub consent: crate::consent::ConsentState,
    pub org: OrgId,
}

/// The columns [`FrameGate::from_row`] reads.
const FRAME_GATE_COLUMNS: &str =
    "state, policy, consent, consent_version, consent_sha256, consent_given_at, org_id";

impl FrameGate {
    /// The gate from a row holding [`FRAME_GATE_COLUMNS`] (a whole session's row holds them).
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, InterviewError> {
        Ok(Self {
            state: SessionState::parse(&row.try_get::<String, _>("state")?)?,
            policy: AnalysisPolicy::from_stored(&row.try_get::<String, _>("policy")?),
            consent: crate::consent::ConsentState::from_row(
                row.try_get("consent")?,
                row.try_get("consent_version")?,
                row.try_get("consent_sha256")?,
                row.try_get("consent_given_at")?,
            ),
            org: OrgId(row.try_get("org_id")?),
        })
    }
}

/// The columns [`Session::from_row`] reads.
pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, state, policy, consent, questions, current_index, frames_received,
     frames_analyzed, frames_deferred, frames_skipped, created_at, started_at, completed_at,
     report_ready, overall_score, org_id, candidate_name, expires_at, consent_version,
     consent_sha256, consent_given_at, job_title";

impl Session {
    /// A session from a row holding [`SESSION_COLUMNS`].
    pub(crate) fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, InterviewError> {
        let questions: String = row.try_get("questions")?;
        let FrameGate {
            state,
            policy,
            consent,
            org,
        } = FrameGate::from_row(row)?;
        Ok(Session {
            id: row.try_get("id")?,
            org,
            candidate_name: row.try_get("candidate_name")?,
            job_title: row.try_get("job_title")?,
            expires_at: row.try_get("expires_at")?,
            user_id: row.try_get("user_id")?,
            state,
            policy,
            consent,
            questions: serde_json::from_str(&questions).map_err(corrupt("questions"))?,
            current_index: row.try_get::<i64, _>("current_index")? as usize,
            frames_received: row.try_get("frames_received")?,
            frames_analyzed: row.try_get("frames_analyzed")?,
            frames_deferred: row.try_get("frames_deferred")?,
            frames_skipped: row.try_get("frames_skipped")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            completed_at: row.try_get("completed_at")?,
            report_ready: row.try_get::<i64, _>("report_ready")? != 0,
            overall_score: row
                .try_get::<Option<f64>, _>("overall_score")?
                .map(|v| v as f32),
        })
    }

    pub fn current_question(&self) -> Option<&Question> {
        if self.state == SessionState::Completed {
            return None;
        }
        self.questions.get(self.current_index)
    }

    /// Share of questions answered, 0..100.
    pub fn progress(&self) -> u32 {
        if self.state == SessionState::Completed {
            return 100;
        }
        (self.current_index * 100 / self.questions.len().max(1)) as u32
    }
}

/// What scoring said of an answer, kept with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerFeedback {
    pub relevance: f32,
    pub clarity: f32,
    pub depth: f32,
    pub keywords: Vec<String>,
    pub feedback: String,
    pub covered_points: Vec<String>,
    pub missed_points: Vec<String>,
    pub sufficient_data: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredAnswer {
    pub question_id: String,
    pub position: i64,
    pub transcript: String,
    pub duration: f32,
    /// `None` while scoring was unavailable; the worker scores every answer at completion anyway.
    pub analysis: Option<AnswerFeedback>,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct InterviewStore {
    pool: Pool,
}

impl InterviewStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn insert(&self, s: &Session) -> Result<(), InterviewError> {
        let questions = serde_json::to_string(&s.questions).map_err(corrupt("questions"))?;
        sqlx::query(
            "INSERT INTO interviews (id, user_id, state, policy, consent, questions, current_index, frames_received,
                frames_analyzed, frames_deferred, created_at, report_ready, org_id, candidate_name,
                expires_at, job_title)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, $7, 0, $8, $9, $10, $11)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(s.state.as_str())
        .bind(s.policy.as_str())
        .bind(0_i64) // consent is recorded after, with its notice
        .bind(questions)
        .bind(s.created_at)
        .bind(&s.org.0)
        .bind(&s.candidate_name)
        .bind(s.expires_at)
        .bind(&s.job_title)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(name = "db.session", skip_all)]
    pub async fn get(&self, id: &str) -> Result<Session, InterviewError> {
        Session::from_row(&self.interview_row(SESSION_COLUMNS, id).await?)
    }

    /// What a frame needs to know of its session, and nothing more: a live frame reads it on
    /// every frame, so the questions (JSON) and counters stay unread.
    #[tracing::instrument(name = "db.frame_gate", skip_all)]
    pub async fn frame_gate(&self, id: &str) -> Result<FrameGate, InterviewError> {
        FrameGate::from_row(&self.interview_row(FRAME_GATE_COLUMNS, id).await?)
    }

    /// `columns` of interview `id`; an unknown id is [`InterviewError::SessionNotFound`].
    async fn interview_row(
        &self,
        columns: &str,
        id: &str,
    ) -> Result<sqlx::any::AnyRow, InterviewError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM interviews WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| InterviewError::SessionNotFound(id.to_string()))
    }

    /// created -> in_progress, once; later calls change nothing.
    pub async fn mark_started(&self, id: &str, now: i64) -> Result<(), InterviewError> {
        sqlx::query("UPDATE interviews SET state = 'in_progress', started_at = $2 WHERE id = $1 AND state = 'created'")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts a received frame and returns its number within the session.
    #[tracing::instrument(name = "db.next_frame_number", skip_all)]
    pub async fn next_frame_number(&self, id: &str) -> Result<i64, InterviewError> {
        let n: i64 = sqlx::query_scalar(
            "UPDATE interviews SET frames_received = frames_received + 1 WHERE id = $1 RETURNING frames_received",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Frames sampled out at the socket, before they were numbered: received and skipped.
    pub async fn count_sampled_out(&self, id: &str, frames: i64) -> Result<(), InterviewError> {
        sqlx::query(
            "UPDATE interviews SET frames_received = frames_received + $2,
                frames_skipped = frames_skipped + $2 WHERE id = $1",
        )
        .bind(id)
        .bind(frames)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A numbered frame the emotion service was too busy for: skipped.
    pub async fn count_shed(&self, id: &str) -> Result<(), InterviewError> {
        sqlx::query("UPDATE interviews SET frames_skipped = frames_skipped + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts a frame and stores its FrameCaptured event in the same transaction (the outbox
    /// relay publishes it): a frame queued for the worker survives a broker outage.
    #[tracing::instrument(name = "db.count_frame", skip_all)]
    pub async fn count_frame(
        &self,
        id: &str,
        analyzed_live: bool,
        event: &iv_contracts::events::FrameCaptured,
    ) -> Result<(), InterviewError> {
        let sql = if analyzed_live {
            "UPDATE interviews SET frames_analyzed = frames_analyzed + 1 WHERE id = $1"
        } else {
            "UPDATE interviews SET frames_deferred = frames_deferred + 1 WHERE id = $1"
        };
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        let counted = sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        // Erased meanwhile: the frame is not queued, so no pixels outlive the interview.
        if counted.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(InterviewError::SessionNotFound(id.to_string()));
        }
        iv_platform::outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an answer to the question at `position` and moves to the next question, atomically:
    /// of two racing answers to one question, exactly one is kept.
    #[tracing::instrument(name = "db.record_answer", skip_all)]
    pub async fn record_answer(
        &self,
        session_id: &str,
        position: usize,
        question_id: &str,
        transcript: &str,
        duration: f32,
        now: i64,
    ) -> Result<(), InterviewError> {
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        let moved = sqlx::query(
            "UPDATE interviews SET current_index = $2 WHERE id = $1 AND current_index = $3 AND state != 'completed'",
        )
        .bind(session_id)
        .bind(position as i64 + 1)
        .bind(position as i64)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(InterviewError::AlreadyAnswered(question_id.to_string()));
        }
        sqlx::query(
            "INSERT INTO answers (session_id, question_id, position, transcript, duration, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session_id)
        .bind(question_id)
        .bind(position as i64)
        .bind(transcript)
        .bind(f64::from(duration))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_analysis(
        &self,
        session_id: &str,
        question_id: &str,
        a: &AnswerFeedback,
    ) -> Result<(), InterviewError> {
        let json = serde_json::to_string(a).map_err(corrupt("answer analysis"))?;
        sqlx::query("UPDATE answers SET analysis = $3 WHERE session_id = $1 AND question_id = $2")
            .bind(session_id)
            .bind(question_id)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn answers(&self, session_id: &str) -> Result<Vec<StoredAnswer>, InterviewError> {
        let rows = sqlx::query(
            "SELECT question_id, position, transcript, duration, analysis, created_at FROM answers
             WHERE session_id = $1 ORDER BY position",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let analysis: Option<String> = r.try_get("analysis")?;
                Ok(StoredAnswer {
                    question_id: r.try_get("question_id")?,
                    position: r.try_get("position")?,
                    transcript: r.try_get("transcript")?,
                    duration: r.try_get::<f64, _>("duration")? as f32,
                    analysis: analysis
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(corrupt("answer analysis"))?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Marks the session completed and stores its InterviewCompleted event in the same
    /// transaction (the outbox relay publishes it). A second completion is refused.
    #[tracing::instrument(name = "db.complete", skip_all)]
    pub async fn complete(
        &self,
        session_id: &str,
        now: i64,
        event: &iv_contracts::events::InterviewCompleted,
    ) -> Result<(), InterviewError> {
        let mut tx = iv_platform::db::begin_write(&self.pool).await?;
        let done = sqlx::query(
            "UPDATE interviews SET state = 'completed', completed_at = $2 WHERE id = $1 AND state != 'completed'",
        )
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(InterviewError::SessionCompleted(session_id.to_string()));
        }
        iv_platform::outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mark_scored(
        &self,
        session_id: &str,
        overall: Option<f32>,
    ) -> Result<(), InterviewError> {
        sqlx::query("UPDATE interviews SET report_ready = 1, overall_score = $2 WHERE id = $1")
            .bind(session_id)
            .bind(overall.map(f64::from))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
