//! The SQL both backends share, on sqlx's `Any` driver. Placeholders are `$n`, which SQLite
//! and Postgres both accept; types are TEXT and BIGINT only, which both map the same way.

use async_trait::async_trait;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use sqlx::Row;

use super::migrations::Migration;
use super::{
    ApiKey, Entity, EntityKind, Error, GroupBy, KeyLimits, SpendTotal, Store, UsageGroup,
    UsageQuery, UsageRecord,
};

/// A store over an `Any` pool; `backend` picks the migrations and the lock strategy.
pub(super) struct SqlStore {
    pub(super) pool: AnyPool,
    /// Where the usage ledger is written. On SQLite a pool of its own with one connection, so
    /// that connection's page cache and prepared statements stay warm from batch to batch:
    /// a pool hands its connections out in turn, and SQLite drops a connection's page cache
    /// whenever another connection has written, so every batch re-read the B-tree pages it
    /// updates (a `pread` per page). On Postgres the shared pool.
    pub(super) writer: AnyPool,
    pub(super) backend: &'static str,
    pub(super) migrations: &'static [Migration],
    /// Statement run first inside the migration transaction, to serialize concurrent migrators.
    pub(super) migration_lock: Option<&'static str>,
    /// Whether bulk inserts use anonymous `?` placeholders. SQLite looks numbered ones up by
    /// name, which made an 8,000-parameter batch insert quadratic; Postgres needs `$n`.
    pub(super) anonymous_placeholders: bool,
    /// Ledger months known to have their partition (Postgres), as month starts in Unix ms.
    pub(super) ledger_months: std::sync::Mutex<std::collections::HashSet<i64>>,
}

/// Whether `e` is a primary-key or unique conflict (on either backend).
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const KEY_COLUMNS: &str = "id, name, account, models, prefix, key_hash, created_at, revoked_at, \
    expires_at, ip_allowlist, rpm, concurrency, team_id, budget_micros, tpm";
fn key_from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let models: Option<String> = row.try_get("models")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        account: row.try_get("account")?,
        models: models.and_then(|m| serde_json::from_str(&m).ok()),
        prefix: row.try_get("prefix")?,
        key_hash: row.try_get("key_hash")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        limits: KeyLimits {
            expires_at: row.try_get("expires_at")?,
            ip_allowlist: row
                .try_get::<Option<String>, _>("ip_allowlist")?
                .and_then(|m| serde_json::from_str(&m).ok()),
            rpm: row
                .try_get::<Option<i64>, _>("rpm")?
                .and_then(|v| u32::try_from(v).ok()),
            concurrency: row
                .try_get::<Option<i64>, _>("concurrency")?
                .and_then(|v| u32::try_from(v).ok()),
            budget_micros: row.try_get("budget_micros")?,
            tpm: row
                .try_get::<Option<i64>, _>("tpm")?
                .and_then(|v| u32::try_from(v).ok()),
        },
        team: row.try_get("team_id")?,
    })
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn migrate(&self) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if let Some(lock) = self.migration_lock {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS anyint_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM anyint_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for m in self
            .migrations
            .iter()
            .filter(|m| !applied.contains(&m.version))
        {
            let own = if self.backend == "postgres" {
                m.postgres
            } else {
                m.sqlite
            };
            for stmt in m.statements.iter().chain(own) {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO anyint_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(m.version)
                .bind(crate::clock::unix_secs())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_key(&self, key: &ApiKey) -> Result<(), Error> {
        let models = key
            .models
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap_or_default());
        sqlx::query(&format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.account)
        .bind(models)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(key.created_at)
        .bind(key.revoked_at)
        .bind(key.limits.expires_at)
        .bind(key.limits.ip_allowlist.as_ref().map(|l| serde_json::to_string(l).unwrap_or_default()))
        .bind(key.limits.rpm.map(i64::from))
        .bind(key.limits.concurrency.map(i64::from))
        .bind(key.team.clone())
        .bind(key.limits.budget_micros)
        .bind(key.limits.tpm.map(i64::from))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    async fn active_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn revoke_key(&self, id: &str, now: i64) -> Result<Option<ApiKey>, Error> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn update_key(
        &self,
        id: &str,
        models: Option<&[String]>,
        limits: &KeyLimits,
    ) -> Result<Option<ApiKey>, Error> {
        sqlx::query(
            "UPDATE api_keys SET models = $1, expires_at = $2, ip_allowlist = $3, rpm = $4, \
             concurrency = $5, budget_micros = $6, tpm = $7 WHERE id = $8",
        )
        .bind(models.map(|m| serde_json::to_string(m).unwrap_or_default()))
        .bind(limits.expires_at)
        .bind(
            limits
                .ip_allowlist
                .as_ref()
                .map(|l| serde_json::to_string(l).unwrap_or_default()),
        )
        .bind(limits.rpm.map(i64::from))
        .bind(limits.concurrency.map(i64::from))
        .bind(limits.budget_micros)
        .bind(limits.tpm.map(i64::from))
        .bind(id)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn insert_entity(&self, kind: EntityKind, entity: &Entity) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO policy_entities (kind, id, spec, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, id) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(&entity.id)
        .bind(entity.spec.to_string())
        .bind(entity.created_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_entity(
        &self,
        kind: EntityKind,
        id: &str,
        spec: &serde_json::Value,
    ) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE policy_entities SET spec = $1 WHERE kind = $2 AND id = $3")
            .bind(spec.to_string())
            .bind(kind.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn entities(&self, kind: EntityKind) -> Result<Vec<Entity>, Error> {
        let rows = sqlx::query(
            "SELECT id, spec, created_at FROM policy_entities WHERE kind = $1 ORDER BY id",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let spec: String = r.try_get("spec")?;
                Ok(Entity {
                    id: r.try_get("id")?,
                    spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null),
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    async fn insert_usage(&self, rows: &[UsageRecord]) -> Result<(), Error> {
        self.ledger_insert(rows).await
    }

    async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, Error> {
        self.ledger_rows(q).await
    }

    async fn usage_summary(
        &self,
        q: &UsageQuery,
        group: GroupBy,
    ) -> Result<Vec<UsageGroup>, Error> {
        self.ledger_summary(q, group).await
    }

    async fn spend_totals(&self, month_ms: i64) -> Result<Vec<SpendTotal>, Error> {
        self.ledger_spend_totals(month_ms).await
    }

    async fn maintain_usage(&self, now_ms: i64, keep_from_ms: Option<i64>) -> Result<u64, Error> {
        self.ledger_maintain(now_ms, keep_from_ms).await
    }
}
