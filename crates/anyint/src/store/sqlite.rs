//! The embedded SQLite backend: one file, WAL mode, created on first use.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::Error;
use super::migrations::MIGRATIONS;
use super::sql::SqlStore;

/// Opens (creating if needed) the SQLite file named by `url`.
pub(super) async fn open(url: &str) -> Result<SqlStore, Error> {
    sqlx::any::install_default_drivers();
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Err(Error::Config(
            "sqlite store needs a file path, e.g. sqlite://data/anyint.db".into(),
        ));
    }
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // busy_timeout: concurrent writers (CLI + server) wait instead of failing. A larger
                // page cache and mmap keep batch inserts from re-reading pages through syscalls.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                     PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(SqlStore {
        pool,
        backend: "sqlite",
        migrations: MIGRATIONS,
        migration_lock: None,
        anonymous_placeholders: true,
    })
}
