//! The database pool: an embedded SQLite file by default, PostgreSQL when `DATABASE_URL` says so.
//!
//! Services write portable SQL (TEXT, BIGINT, DOUBLE PRECISION; `$n` placeholders in ascending
//! order; `ON CONFLICT` upserts) so one code path serves both engines.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;

pub type Pool = sqlx::AnyPool;

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:, got {0:?}")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// The default embedded database: a SQLite file under `dir`.
pub fn sqlite_url(dir: &str, name: &str) -> String {
    format!("sqlite://{}/{name}.db?mode=rwc", dir.trim_end_matches('/'))
}

/// `DATABASE_URL`, or by default the SQLite file `interview.db` under `DATA_DIR` (`data`), which
/// the services of one process share.
pub fn url_from_env(env: &crate::config::Env) -> String {
    let data_dir = env.string("DATA_DIR", "data");
    env.string("DATABASE_URL", &sqlite_url(&data_dir, "interview"))
}

/// Opens the service's database and creates its tables (each schema in turn): what every
/// service with storage does at start.
pub async fn open(url: &str, schemas: &[&[&'static str]]) -> Result<Pool, DbError> {
    let pool = connect(url).await?;
    for schema in schemas {
        apply_schema(&pool, schema).await?;
    }
    Ok(pool)
}

/// A column added to a table after the table first shipped. A database made by an earlier
/// version gets it on start and keeps its rows; `CREATE TABLE IF NOT EXISTS` alone would leave
/// such a database without it.
#[derive(Debug, Clone, Copy)]
pub struct AddedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// Type, constraints and a default for the rows already there, e.g. `BIGINT NOT NULL DEFAULT 0`.
    pub definition: &'static str,
}

/// Adds each column its table lacks (both engines: SQLite has no `ADD COLUMN IF NOT EXISTS`).
pub async fn add_missing_columns(pool: &Pool, columns: &[AddedColumn]) -> Result<(), DbError> {
    // The names and definitions are the services' own constants, never input.
    for c in columns {
        let probe = format!("SELECT {} FROM {} WHERE 1 = 0", c.column, c.table);
        if sqlx::query(sqlx::AssertSqlSafe(probe))
            .fetch_optional(pool)
            .await
            .is_ok()
        {
            continue;
        }
        tracing::info!(
            table = c.table,
            column = c.column,
            "adding a column to an older database"
        );
        let add = format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            c.table, c.column, c.definition
        );
        sqlx::query(sqlx::AssertSqlSafe(add)).execute(pool).await?;
    }
    Ok(())
}

/// Opens a pool. For SQLite the directory is created and the file switched to WAL, so readers
/// do not block the writer; several services may share one file. Each SQLite connection syncs
/// the log at checkpoints, not at every commit (`synchronous=NORMAL`, SQLite's advice for WAL):
/// a commit still survives the process crashing, and only a power cut may take back the last
/// few. Syncing every commit cost ~0.5 ms of held write lock per commit on this project's VM,
/// and a live frame commits three times on a file all services share. PostgreSQL keeps its
/// own durable commits.
pub async fn connect(url: &str) -> Result<Pool, DbError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url).ok_or_else(|| DbError::UnsupportedUrl(url.to_string()))?;
    if backend == Backend::Sqlite {
        let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| DbError::Directory {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    let mut options = AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
        .acquire_timeout(Duration::from_secs(5));
    if backend == Backend::Sqlite {
        // Both on every connection the pool opens: WAL is kept by the file (a no-op after the
        // first), the sync level is the connection's own.
        options = options.after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode=WAL").await?;
                sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous=NORMAL").await?;
                Ok(())
            })
        });
    }
    Ok(options.connect(url).await?)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`), so writers wait their turn on the busy timeout: a plain `BEGIN` that reads first
/// fails at once when it comes to write after another connection committed (WAL's busy
/// snapshot). Twenty-eight candidates starting at once against the services' shared file lost an
/// interview start that way (500, after the audit log's retries). PostgreSQL begins as usual.
pub async fn begin_write(
    pool: &Pool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match Backend::of(pool.connect_options().database_url.as_str()) {
        Some(Backend::Sqlite) => pool.begin_with("BEGIN IMMEDIATE").await,
        _ => pool.begin().await,
    }
}

/// Runs idempotent DDL statements (`CREATE TABLE IF NOT EXISTS ...`) in order.
pub async fn apply_schema(pool: &Pool, statements: &[&'static str]) -> Result<(), DbError> {
    for statement in statements {
        sqlx::query(*statement).execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of("sqlite://data/x.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of("mysql://h/db"), None);
    }

    /// A pool on a SQLite file in a fresh directory of its own (removed by [`drop_sqlite`]).
    async fn temp_sqlite() -> (Pool, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("iv-db-{}", uuid::Uuid::new_v4()));
        let pool = connect(&sqlite_url(dir.to_str().unwrap(), "t"))
            .await
            .unwrap();
        (pool, dir)
    }

    async fn drop_sqlite(pool: Pool, dir: std::path::PathBuf) {
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_sqlite_file_is_created_with_its_directory() {
        let (pool, dir) = temp_sqlite().await;
        apply_schema(
            &pool,
            &["CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"],
        )
        .await
        .unwrap();
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
            .bind("a")
            .bind(3i64)
            .execute(&pool)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = $1")
            .bind("a")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 3);
        drop_sqlite(pool, dir).await;
    }

    #[tokio::test]
    async fn every_sqlite_connection_syncs_at_checkpoints_only() {
        let (pool, dir) = temp_sqlite().await;
        // Hold every connection of the pool at once, so none is left unchecked.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = pool.acquire().await.unwrap();
            let mode: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, 1, "NORMAL is 1, FULL 2");
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(journal, "wal");
            held.push(conn);
        }
        drop(held);
        drop_sqlite(pool, dir).await;
    }

    #[tokio::test]
    async fn a_column_added_later_reaches_an_older_database_and_keeps_its_rows() {
        let (pool, dir) = temp_sqlite().await;
        apply_schema(&pool, &["CREATE TABLE t (id TEXT PRIMARY KEY)"])
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (id) VALUES ('old')")
            .execute(&pool)
            .await
            .unwrap();
        let added = [AddedColumn {
            table: "t",
            column: "n",
            definition: "BIGINT NOT NULL DEFAULT 0",
        }];
        add_missing_columns(&pool, &added).await.unwrap();
        add_missing_columns(&pool, &added).await.unwrap(); // a second start changes nothing
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'old'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
        drop_sqlite(pool, dir).await;
    }
}
