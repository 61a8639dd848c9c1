//! The embedded SQLite backend: one file, WAL mode, created on first use.
//!
//! The file holds callback signing secrets and task prompts, so it is private to its owner:
//! created 0600 (SQLite gives its `-wal` and `-shm` files the same mode), in a directory
//! created 0700 when the gateway creates it. An existing file (or WAL/SHM) readable by others
//! is tightened to 0600 at open; existing directories are left as they are, since they may be
//! shared (the working directory, `/tmp`).

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::Error;
use super::migrations::MIGRATIONS;
use super::sql::SqlStore;

/// Creates the file's directory (0700) and the file (0600) when missing, and tightens an
/// existing database file, WAL or SHM readable by others to 0600.
#[cfg(unix)]
fn private_files(path: &std::path::Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot create {}: {e}",
                path.display()
            )));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::info!(file = %file.display(), "made the store file private to its owner (0600)");
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "the store file is readable by other users and could not be made private; chmod 600 it");
                }
            }
        }
    }
    Ok(())
}

/// Elsewhere only the directory is created.
#[cfg(not(unix))]
fn private_files(path: &std::path::Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// A pool of at most `max` connections, each set up the same way with a page cache of at most
/// `cache_kib` KiB.
fn options(max: u32, cache_kib: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // busy_timeout: concurrent writers (CLI + server) wait instead of failing. A page
                // cache and mmap keep batch inserts from re-reading index pages through syscalls;
                // both are bounded (64 MiB mapped) so the gateway's memory does not grow with the
                // ledger: nothing on the hot path reads it, and grouped reads use the small
                // aggregate tables.
                conn.execute(
                    format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA cache_size = -{cache_kib}; PRAGMA mmap_size = 67108864; PRAGMA temp_store = MEMORY;"
                    )
                    .as_str(),
                )
                .await?;
                Ok(())
            })
        })
}

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
    private_files(std::path::Path::new(path))?;
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let pool = options(8, 16_384).connect(&url).await?;
    // The ledger's writer appends: a batch touches the last pages of the ledger, its indexes
    // and the aggregate tables, and the paths down to them. 2 MiB holds those many times over;
    // a larger cache only filled with pages written once and never read again.
    let writer = options(1, 2_048).connect(&url).await?;
    Ok(SqlStore {
        pool,
        writer,
        backend: "sqlite",
        migrations: MIGRATIONS,
        migration_lock: None,
        anonymous_placeholders: true,
        ledger_months: std::sync::Mutex::default(),
    })
}
