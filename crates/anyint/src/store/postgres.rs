//! The Postgres backend, for several gateway instances sharing one database.

use sqlx::any::AnyPoolOptions;

use super::Error;
use super::migrations::MIGRATIONS;
use super::sql::SqlStore;

/// Serializes instances that start at the same time and would both migrate.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7271736901)";

/// Connects to the database named by `url` (`postgres://…`; `?options=-c search_path=…` works).
pub(super) async fn open(url: &str) -> Result<SqlStore, Error> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    Ok(SqlStore {
        // The server's shared buffers serve every connection alike: no connection of its own.
        writer: pool.clone(),
        pool,
        backend: "postgres",
        migrations: MIGRATIONS,
        migration_lock: Some(MIGRATION_LOCK),
        anonymous_placeholders: false,
        ledger_months: std::sync::Mutex::default(),
    })
}
