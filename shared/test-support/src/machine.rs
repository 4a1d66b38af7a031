//! The machine's RabbitMQ and PostgreSQL, which the end-to-end and fault tests use for real.
//! Each helper checks its service first and says what is missing, rather than failing somewhere
//! deep inside a test.

use crate::stack::unique;

/// `TEST_AMQP_URL`, or the local broker as `scripts/services.sh` starts it.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `TEST_PG_URL`, or the local server's `postgres` database with a trust login.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// An admin connection to PostgreSQL, or a panic that says what the tests need.
pub async fn pg_admin() -> iv_platform::db::Pool {
    iv_platform::db::connect(&pg_admin_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL at {} with a trust login for user postgres \
                 (scripts/services.sh starts it; TEST_PG_URL points elsewhere): {e}",
                pg_admin_url()
            )
        })
}

/// A new, empty PostgreSQL database on the machine's server: its name and URL. The stack that
/// uses it drops it when stopped.
pub async fn fresh_pg_database() -> (String, String) {
    sqlx::any::install_default_drivers();
    let db = unique("iv_test_");
    let admin = pg_admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let base = pg_admin_url();
    let url = format!("{}/{db}", base.rsplit_once('/').expect("a database path").0);
    (db, url)
}

/// Drops a database made by [`fresh_pg_database`], closing whatever still uses it.
pub async fn drop_pg_database(db: &str) {
    let admin = pg_admin().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
    admin.close().await;
}

/// Runs `rabbitmqctl`, which the broker-restart tests need with the rights to stop and start the
/// broker's application (root, or the rabbitmq user).
pub fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("these tests restart RabbitMQ and need rabbitmqctl on the PATH: {e}")
        });
    assert!(
        status.success(),
        "rabbitmqctl {args:?} failed: these tests need the rights to stop and start the broker \
         (run them as root or as the rabbitmq user)"
    );
}

/// Checks up front that the broker can be restarted: `rabbitmqctl status` answers.
pub fn require_rabbitmqctl() {
    rabbitmqctl(&["status"]);
}
