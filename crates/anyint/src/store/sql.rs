//! The SQL both backends share, on sqlx's `Any` driver. Placeholders are `$n`, which SQLite
//! and Postgres both accept; types are TEXT and BIGINT only, which both map the same way.

use async_trait::async_trait;
use sqlx::AnyPool;
use sqlx::any::AnyRow;
use std::fmt::Write as _;

use sqlx::Row;

use super::migrations::Migration;
use super::{
    ApiKey, Entity, EntityKind, Error, GroupBy, KeyLimits, Store, UsageGroup, UsageQuery,
    UsageRecord,
};

/// A store over an `Any` pool; `backend` picks the migrations and the lock strategy.
pub(super) struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) backend: &'static str,
    pub(super) migrations: &'static [Migration],
    /// Statement run first inside the migration transaction, to serialize concurrent migrators.
    pub(super) migration_lock: Option<&'static str>,
    /// Whether bulk inserts use anonymous `?` placeholders. SQLite looks numbered ones up by
    /// name, which made an 8,000-parameter batch insert quadratic; Postgres needs `$n`.
    pub(super) anonymous_placeholders: bool,
}

const KEY_COLUMNS: &str = "id, name, account, models, prefix, key_hash, created_at, revoked_at, \
    expires_at, ip_allowlist, rpm, concurrency, team_id, budget_micros, tpm";
const USAGE_COLUMNS: &str = "request_id, key_id, account, model, provider, upstream_model, family, \
    stream, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, status, \
    outcome, latency_ms, created_at_ms, cost_micros, team_id, web_searches";

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

fn usage_from_row(row: &AnyRow) -> Result<UsageRecord, sqlx::Error> {
    Ok(UsageRecord {
        request_id: row.try_get("request_id")?,
        key_id: row.try_get("key_id")?,
        account: row.try_get("account")?,
        model: row.try_get("model")?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        family: row.try_get("family")?,
        stream: row.try_get::<i64, _>("stream")? != 0,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        cache_read_tokens: row.try_get("cache_read_tokens")?,
        cache_write_tokens: row.try_get("cache_write_tokens")?,
        web_searches: row.try_get("web_searches")?,
        status: row.try_get("status")?,
        outcome: row.try_get("outcome")?,
        latency_ms: row.try_get("latency_ms")?,
        cost_micros: row.try_get("cost_micros")?,
        team: row.try_get("team_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
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
            for stmt in m.statements {
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
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_usage_rows(&mut tx, rows, self.anonymous_placeholders).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, Error> {
        let (filter, binds) = usage_filter(q);
        let sql = format!(
            "SELECT {USAGE_COLUMNS} FROM usage_ledger WHERE {filter} ORDER BY created_at_ms DESC, request_id LIMIT ${}",
            binds.len() + 1
        );
        let query = bind_all(sqlx::query(&sql), binds);
        let rows = query
            .bind(q.limit.clamp(1, 10_000))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(usage_from_row).collect::<Result<_, _>>()?)
    }

    async fn usage_summary(
        &self,
        q: &UsageQuery,
        group: GroupBy,
    ) -> Result<Vec<UsageGroup>, Error> {
        let (filter, binds) = usage_filter(q);
        let key = match group {
            // Integer division is floor division for non-negative values on both backends.
            GroupBy::Minute => "CAST(created_at_ms / 60000 AS BIGINT)",
            GroupBy::Hour => "CAST(created_at_ms / 3600000 AS BIGINT)",
            GroupBy::Day => "CAST(created_at_ms / 86400000 AS BIGINT)",
            GroupBy::Model => "model",
            GroupBy::Key => "key_id",
            GroupBy::Team => "team_id",
            GroupBy::Account => "account",
        };
        // SUM over BIGINT is NUMERIC on Postgres, which the Any driver cannot decode: cast back.
        let sql = format!(
            "SELECT {key} AS g, COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS p, \
             CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(cache_read_tokens) AS BIGINT) AS cr, \
             CAST(SUM(cache_write_tokens) AS BIGINT) AS cw, CAST(SUM(cost_micros) AS BIGINT) AS cost, \
             CAST(SUM(web_searches) AS BIGINT) AS ws, \
             CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors \
             FROM usage_ledger WHERE {filter} GROUP BY {key} ORDER BY {key}"
        );
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let group_value = match group {
                    GroupBy::Minute => {
                        crate::clock::rfc3339(r.try_get::<i64, _>("g")?.saturating_mul(60))
                    }
                    GroupBy::Hour => {
                        crate::clock::rfc3339(r.try_get::<i64, _>("g")?.saturating_mul(3600))
                    }
                    GroupBy::Day => {
                        crate::clock::rfc3339(r.try_get::<i64, _>("g")?.saturating_mul(86_400))
                            .chars()
                            .take(10)
                            .collect()
                    }
                    GroupBy::Model | GroupBy::Key | GroupBy::Account => {
                        r.try_get::<String, _>("g")?
                    }
                    GroupBy::Team => r.try_get::<Option<String>, _>("g")?.unwrap_or_default(),
                };
                let sum = |name: &str| r.try_get::<i64, _>(name);
                Ok(UsageGroup {
                    group: group_value,
                    requests: sum("requests")?,
                    errors: sum("errors")?,
                    prompt_tokens: sum("p")?,
                    completion_tokens: sum("c")?,
                    cache_read_tokens: sum("cr")?,
                    cache_write_tokens: sum("cw")?,
                    web_searches: sum("ws")?,
                    cost_micros: sum("cost")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }
}

/// Text for a bind: without NUL characters, which Postgres refuses in text columns.
fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_owned()
    }
}

/// The WHERE clause for a usage query, with `$n` placeholders (numbered by hand: the Any
/// driver's query builder emits `?`, which Postgres rejects) and the values to bind.
fn usage_filter(q: &UsageQuery) -> (String, Vec<FilterValue>) {
    let mut sql = String::from("1=1");
    let mut binds: Vec<FilterValue> = Vec::new();
    for (column, value) in [
        ("account", &q.account),
        ("team_id", &q.team),
        ("key_id", &q.key_id),
        ("model", &q.model),
        ("request_id", &q.request_id),
    ] {
        if let Some(v) = value {
            binds.push(FilterValue::Text(v.clone()));
            let _ = write!(sql, " AND {column} = ${}", binds.len());
        }
    }
    if let Some(from) = q.from_ms {
        binds.push(FilterValue::Int(from));
        let _ = write!(sql, " AND created_at_ms >= ${}", binds.len());
    }
    if let Some(to) = q.to_ms {
        binds.push(FilterValue::Int(to));
        let _ = write!(sql, " AND created_at_ms < ${}", binds.len());
    }
    (sql, binds)
}

enum FilterValue {
    Text(String),
    Int(i64),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<FilterValue>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            FilterValue::Text(t) => query.bind(t),
            FilterValue::Int(i) => query.bind(i),
        };
    }
    query
}

/// `INSERT … VALUES ($1, …, $19), ($20, …) ON CONFLICT (request_id) DO NOTHING` for `n` rows
/// (or with `?` placeholders).
/// Inserts ledger rows inside `tx`; rows whose request ID is stored already are skipped.
pub(super) async fn insert_usage_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[UsageRecord],
    anonymous: bool,
) -> Result<(), sqlx::Error> {
    // 19 binds a row; 100 rows a statement stays far under both backends' bind limits.
    for chunk in rows.chunks(100) {
        let sql = insert_usage_sql(chunk.len(), anonymous);
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(text(&r.request_id))
                .bind(text(&r.key_id))
                .bind(text(&r.account))
                .bind(text(&r.model))
                .bind(text(&r.provider))
                .bind(text(&r.upstream_model))
                .bind(text(&r.family))
                .bind(i64::from(r.stream))
                .bind(r.prompt_tokens)
                .bind(r.completion_tokens)
                .bind(r.cache_read_tokens)
                .bind(r.cache_write_tokens)
                .bind(r.status)
                .bind(text(&r.outcome))
                .bind(r.latency_ms)
                .bind(r.created_at_ms)
                .bind(r.cost_micros)
                .bind(r.team.as_deref().map(text))
                .bind(r.web_searches);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn insert_usage_sql(n: usize, anonymous: bool) -> String {
    const COLS: usize = 19;
    let mut sql = format!("INSERT INTO usage_ledger ({USAGE_COLUMNS}) VALUES ");
    for row in 0..n {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..COLS {
            let sep = if col == 0 { "" } else { ", " };
            if anonymous {
                let _ = write!(sql, "{sep}?");
            } else {
                let _ = write!(sql, "{sep}${}", row * COLS + col + 1);
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (request_id) DO NOTHING");
    sql
}
