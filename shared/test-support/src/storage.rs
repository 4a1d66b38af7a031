//! What a stack still stores about an interview: every table of a database and every queue of
//! a broker namespace, searched for its id. Tables and queues are listed from the engines
//! themselves, so one added later is searched without changing the tests.

use iv_platform::db::{self, Backend};
use sqlx::Row;

/// A column of a table holding rows that mention the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub table: String,
    pub column: String,
    pub rows: i64,
}

/// Every column of every table in the database at `url` whose text mentions `needle`, but for
/// the tables in `except` (the erasure's own receipts).
pub async fn rows_mentioning(url: &str, needle: &str, except: &[&str]) -> Vec<Mention> {
    let pool = db::connect(url).await.expect("the database opens");
    let backend = Backend::of(url).expect("a known database");
    let columns: Vec<(String, String)> = match backend {
        Backend::Postgres => sqlx::query(
            "SELECT table_name::TEXT AS t, column_name::TEXT AS c FROM information_schema.columns
             WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&pool)
        .await
        .expect("columns listed")
        .iter()
        .map(|r| (r.get("t"), r.get("c")))
        .collect(),
        Backend::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables listed");
            let mut columns = Vec::new();
            for table in tables {
                let sql = format!("SELECT name FROM pragma_table_info('{table}')");
                let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&pool)
                    .await
                    .expect("columns listed");
                columns.extend(names.into_iter().map(|c| (table.clone(), c)));
            }
            columns
        }
    };
    assert!(!columns.is_empty(), "the database at {url} has tables");
    let mut found = Vec::new();
    for (table, column) in columns {
        if except.contains(&table.as_str()) {
            continue;
        }
        // Names come from the engine's own catalogue; the id is bound.
        let sql = format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE '%' || $1 || '%'"
        );
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .expect("a table searched");
        if rows > 0 {
            found.push(Mention {
                table,
                column,
                rows,
            });
        }
    }
    pool.close().await;
    found
}

/// The number of messages waiting in each queue of the broker namespace (a test's own),
/// including retry and dead-letter queues, by name.
pub fn rabbit_queue_depths(namespace: &str) -> Vec<(String, u64)> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages",
        ])
        .output()
        .expect("rabbitmqctl runs (these tests read queue depths with it)");
    assert!(out.status.success(), "rabbitmqctl list_queues failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let depth = words.next()?.parse().ok()?;
            name.starts_with(namespace)
                .then(|| (name.to_string(), depth))
        })
        .collect()
}
