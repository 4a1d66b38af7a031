//! Erasing what a service holds for one interview, once, with a tombstone that remembers it.
//!
//! Every service with storage deletes an erased interview's rows from its tables in one
//! transaction and writes a tombstone (`erased_sessions`: the service, the interview id, when,
//! and how many rows each table lost). The tombstone holds ids and counts, never personal data.
//! It makes erasure idempotent (asked again, a service answers with the first counts) and lets
//! a service refuse late work for the interview: a deferred frame or a completion event still
//! queued when the interview was erased would otherwise store new rows for it.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::db::Pool;

pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS erased_sessions (
    service TEXT NOT NULL,
    session_id TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    deleted TEXT NOT NULL,
    PRIMARY KEY (service, session_id)
)"];

/// A table holding rows of an interview, and the column naming it.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub table: &'static str,
    pub column: &'static str,
}

impl Held {
    pub const fn by_session(table: &'static str) -> Self {
        Self {
            table,
            column: "session_id",
        }
    }
}

/// What one service erased for an interview: rows deleted per table, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Erasure {
    pub deleted: BTreeMap<String, i64>,
    pub erased_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("stored erasure counts are not readable")]
    Corrupt(#[source] serde_json::Error),
}

/// One service's tables and its tombstones.
#[derive(Clone)]
pub struct Eraser {
    pool: Pool,
    service: &'static str,
    tables: &'static [Held],
}

impl Eraser {
    pub fn new(pool: Pool, service: &'static str, tables: &'static [Held]) -> Self {
        Self {
            pool,
            service,
            tables,
        }
    }

    /// Deletes the interview's rows from every table and records the tombstone; when it was
    /// erased before, answers with the first erasure's counts.
    pub async fn erase(&self, session_id: &str) -> Result<Erasure, ErasureError> {
        let mut tx = crate::db::begin_write(&self.pool).await?;
        let erasure = self.erase_in(&mut tx, session_id).await?;
        tx.commit().await?;
        Ok(erasure)
    }

    /// [`Self::erase`] inside the caller's transaction, so a service can write more in it (an
    /// outbox event, a receipt) and commit all or nothing.
    pub async fn erase_in(
        &self,
        conn: &mut AnyConnection,
        session_id: &str,
    ) -> Result<Erasure, ErasureError> {
        // Deleted again even when erased before: rows a late writer added since go too.
        let before = self.tombstone(&mut *conn, session_id).await?;
        let mut deleted = BTreeMap::new();
        for held in self.tables {
            // Table and column names are the services' own constants, never input.
            let sql = format!("DELETE FROM {} WHERE {} = $1", held.table, held.column);
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(session_id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            *deleted.entry(held.table.to_string()).or_insert(0) += rows as i64;
        }
        if let Some(done) = before {
            return Ok(done);
        }
        let erasure = Erasure {
            deleted,
            erased_at: iv_contracts::now_millis(),
        };
        let counts = serde_json::to_string(&erasure.deleted).map_err(ErasureError::Corrupt)?;
        sqlx::query(
            "INSERT INTO erased_sessions (service, session_id, erased_at, deleted) VALUES ($1, $2, $3, $4)
             ON CONFLICT (service, session_id) DO NOTHING",
        )
        .bind(self.service)
        .bind(session_id)
        .bind(erasure.erased_at)
        .bind(counts)
        .execute(&mut *conn)
        .await?;
        // A concurrent erasure that committed first keeps its counts: read back what is stored.
        Ok(self
            .tombstone(&mut *conn, session_id)
            .await?
            .unwrap_or(erasure))
    }

    /// Whether this service erased the interview.
    pub async fn is_erased(&self, session_id: &str) -> Result<bool, sqlx::Error> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT erased_at FROM erased_sessions WHERE service = $1 AND session_id = $2",
        )
        .bind(self.service)
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn tombstone(
        &self,
        conn: &mut AnyConnection,
        session_id: &str,
    ) -> Result<Option<Erasure>, ErasureError> {
        let row = sqlx::query(
            "SELECT erased_at, deleted FROM erased_sessions WHERE service = $1 AND session_id = $2",
        )
        .bind(self.service)
        .bind(session_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let deleted: String = row.try_get("deleted")?;
        Ok(Some(Erasure {
            deleted: serde_json::from_str(&deleted).map_err(ErasureError::Corrupt)?,
            erased_at: row.try_get("erased_at")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: &[Held] = &[Held::by_session("notes"), Held::by_session("marks")];

    async fn pool() -> Pool {
        let dir = std::env::temp_dir().join(format!("iv-erasure-{}", uuid::Uuid::new_v4()));
        let url = crate::db::sqlite_url(&dir.display().to_string(), "t");
        crate::db::open(
            &url,
            &[
                SCHEMA,
                &[
                    "CREATE TABLE notes (session_id TEXT NOT NULL, n BIGINT NOT NULL)",
                    "CREATE TABLE marks (session_id TEXT NOT NULL, n BIGINT NOT NULL)",
                ],
            ],
        )
        .await
        .unwrap()
    }

    async fn add(pool: &Pool, table: &str, session: &str, n: i64) {
        let sql = format!("INSERT INTO {table} (session_id, n) VALUES ($1, $2)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(n)
            .execute(pool)
            .await
            .unwrap();
    }

    async fn count(pool: &Pool, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn erasing_deletes_only_that_interviews_rows_and_answers_the_same_when_asked_again() {
        let pool = pool().await;
        for n in 0..3 {
            add(&pool, "notes", "s-1", n).await;
        }
        add(&pool, "marks", "s-1", 0).await;
        add(&pool, "notes", "s-2", 0).await;
        let eraser = Eraser::new(pool.clone(), "test-service", TABLES);
        assert!(!eraser.is_erased("s-1").await.unwrap());

        let first = eraser.erase("s-1").await.unwrap();
        assert_eq!(
            first.deleted,
            BTreeMap::from([("notes".into(), 3), ("marks".into(), 1)])
        );
        assert!(eraser.is_erased("s-1").await.unwrap());
        assert_eq!(
            (count(&pool, "notes").await, count(&pool, "marks").await),
            (1, 0)
        );

        // Rows written after the erasure (a late frame) are deleted by a repeated request, yet the
        // answer stays the first one.
        add(&pool, "marks", "s-1", 9).await;
        let again = eraser.erase("s-1").await.unwrap();
        assert_eq!(again, first);
        assert!(
            !Eraser::new(pool.clone(), "other-service", TABLES)
                .is_erased("s-1")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_interview_is_erased_with_zero_counts_and_its_later_work_is_refused() {
        let pool = pool().await;
        let eraser = Eraser::new(pool, "test-service", TABLES);
        let erasure = eraser.erase("never-seen").await.unwrap();
        assert!(erasure.deleted.values().all(|&n| n == 0));
        assert!(eraser.is_erased("never-seen").await.unwrap());
    }
}
