//! The response store on the shared SQL (SQLite and Postgres alike).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Error;
use super::responses::{ResponseStore, StoredResponse};
use super::sql::SqlStore;

const COLUMNS: &str = "id, account, key_id, model, created_at_ms, expires_at_ms, input, response";

fn from_row(row: &AnyRow) -> Result<StoredResponse, sqlx::Error> {
    let json = |name: &str| -> Result<serde_json::Value, sqlx::Error> {
        let text: String = row.try_get(name)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    Ok(StoredResponse {
        id: row.try_get("id")?,
        account: row.try_get("account")?,
        key_id: row.try_get("key_id")?,
        model: row.try_get("model")?,
        created_at_ms: row.try_get("created_at_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        input: json("input")?,
        response: json("response")?,
    })
}

/// Postgres refuses NUL in text; JSON escapes it, but an ID comes from a URL.
fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

#[async_trait]
impl ResponseStore for SqlStore {
    async fn put_response(&self, r: &StoredResponse) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM responses WHERE id = $1")
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO responses ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&r.id)
        .bind(&r.account)
        .bind(&r.key_id)
        .bind(&r.model)
        .bind(r.created_at_ms)
        .bind(r.expires_at_ms)
        .bind(r.input.to_string())
        .bind(r.response.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn response(
        &self,
        id: &str,
        account: &str,
        now_ms: i64,
    ) -> Result<Option<StoredResponse>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM responses WHERE id = $1 AND account = $2 AND expires_at_ms > $3"
        ))
        .bind(no_nul(id))
        .bind(account)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn delete_response(&self, id: &str, account: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM responses WHERE id = $1 AND account = $2")
            .bind(no_nul(id))
            .bind(account)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_responses(&self, now_ms: i64, limit: i64) -> Result<u64, Error> {
        let done = sqlx::query(
            "DELETE FROM responses WHERE id IN \
             (SELECT id FROM responses WHERE expires_at_ms <= $1 LIMIT $2)",
        )
        .bind(now_ms)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
