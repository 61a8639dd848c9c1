//! The task store on the shared SQL: async tasks, their client-callback deliveries, and the
//! per-account signing secrets.
//!
//! Two guarantees live here, in SQL, so that they hold with several instances and across
//! crashes:
//! - one poller at a time: a task is fetched only by the instance holding its lease
//!   (`lease_owner`, `lease_until_ms`), claimed with `FOR UPDATE SKIP LOCKED` on Postgres;
//! - charge exactly once: the terminal update, its ledger row and its outbox events commit in
//!   one transaction guarded by `settled = 0`, and the ledger row's ID is the task ID.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Error;
use super::ledger_sql::{Rows, insert_usage_rows};
use super::sql::{SqlStore, is_unique_violation};
use super::tasks::{
    Delivery, DeliveryAttempt, DeliveryNext, Reservation, Submitted, Task, TaskStatus, TaskStore,
    TaskUpdate,
};

const TASK_COLUMNS: &str = "id, family, kind, account, key_id, team_id, model, provider, \
    upstream_model, upstream_id, status, native_status, stage, request, result, error_code, \
    error_message, callback_url, callback_token_hash, idempotency_key, request_hash, \
    created_at_ms, updated_at_ms, refreshed_at_ms, finished_at_ms, deadline_ms, next_poll_ms, \
    polls, reserved_micros, charged_micros, settled, key_slot";

const DELIVERY_COLUMNS: &str = "event_id, task_id, account, url, body, state, attempts, \
    created_at_ms, next_attempt_ms, expires_at_ms, delivered_at_ms, last_status, last_error";

/// A task its poller should claim at time `$1`: unsettled, its next poll come, no lease held.
/// A claim selects by it and its `UPDATE` checks it again on the row it writes: on Postgres
/// another instance may have claimed the row since the selection's snapshot.
const TASK_DUE: &str = "settled = 0 AND next_poll_ms <= $1 AND lease_until_ms <= $1";

/// A callback delivery the outbox should claim at time `$1`: pending, its next attempt come,
/// no lease held. Checked twice by a claim, as [`TASK_DUE`] is.
const DELIVERY_DUE: &str = "state = 'pending' AND next_attempt_ms <= $1 AND lease_until_ms <= $1";

fn json_column(row: &AnyRow, name: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    Ok(row
        .try_get::<Option<String>, _>(name)?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

fn task_from_row(row: &AnyRow) -> Result<Task, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Task {
        id: row.try_get("id")?,
        family: row.try_get("family")?,
        kind: row.try_get("kind")?,
        account: row.try_get("account")?,
        key_id: row.try_get("key_id")?,
        team: row.try_get("team_id")?,
        model: row.try_get("model")?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        upstream_id: row.try_get("upstream_id")?,
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
        native_status: row.try_get("native_status")?,
        stage: row.try_get("stage")?,
        request: json_column(row, "request")?.unwrap_or(serde_json::Value::Null),
        result: json_column(row, "result")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        callback_url: row.try_get("callback_url")?,
        callback_token_hash: row.try_get("callback_token_hash")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        refreshed_at_ms: row.try_get("refreshed_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        deadline_ms: row.try_get("deadline_ms")?,
        next_poll_ms: row.try_get("next_poll_ms")?,
        polls: row.try_get("polls")?,
        reserved_micros: row.try_get("reserved_micros")?,
        charged_micros: row.try_get("charged_micros")?,
        settled: row.try_get::<i64, _>("settled")? != 0,
        key_slot: row.try_get("key_slot")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        event_id: row.try_get("event_id")?,
        task_id: row.try_get("task_id")?,
        account: row.try_get("account")?,
        url: row.try_get("url")?,
        body: row.try_get("body")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        created_at_ms: row.try_get("created_at_ms")?,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        delivered_at_ms: row.try_get("delivered_at_ms")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
    })
}

/// Postgres refuses NUL in text; upstream-supplied words lose them (JSON escapes its own).
fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

impl SqlStore {
    /// The one task matching `filter` (text parameters `$1…` bound from `binds`).
    async fn one_task(&self, filter: &str, binds: &[&str]) -> Result<Option<Task>, Error> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE {filter}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let row = query.fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(task_from_row).transpose()?)
    }

    /// Whether a row of `table` is `due` (a condition on the time, bound as `$1`). The claims
    /// below look first, with the condition they claim by: a claiming `UPDATE` takes SQLite's
    /// one write lock even when it matches nothing, so an idle gateway took it four times a
    /// second for the outbox's poll, and under load each empty poll waited for the ledger
    /// writer's batch in progress.
    async fn any_due(&self, table: &str, due: &str, now_ms: i64) -> Result<bool, Error> {
        Ok(
            sqlx::query(&format!("SELECT 1 FROM {table} WHERE {due} LIMIT 1"))
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// `FOR UPDATE SKIP LOCKED` where the backend has row locks (Postgres); SQLite serializes
    /// writers, so its claim `UPDATE` is atomic on its own.
    fn skip_locked(&self) -> &'static str {
        if self.backend == "postgres" {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }
}

#[async_trait]
impl TaskStore for SqlStore {
    async fn insert_task(&self, t: &Task) -> Result<bool, Error> {
        let done = sqlx::query(&format!(
            "INSERT INTO tasks ({TASK_COLUMNS}, lease_owner, lease_until_ms) VALUES ($1, $2, $3, \
             $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
             $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, NULL, 0)"
        ))
        .bind(&t.id)
        .bind(&t.family)
        .bind(&t.kind)
        .bind(&t.account)
        .bind(&t.key_id)
        .bind(t.team.clone())
        .bind(&t.model)
        .bind(&t.provider)
        .bind(&t.upstream_model)
        .bind(t.upstream_id.clone())
        .bind(t.status.as_str())
        .bind(&t.native_status)
        .bind(t.stage)
        .bind(t.request.to_string())
        .bind(t.result.as_ref().map(ToString::to_string))
        .bind(t.error_code.clone())
        .bind(t.error_message.clone())
        .bind(t.callback_url.clone())
        .bind(t.callback_token_hash.clone())
        .bind(t.idempotency_key.clone())
        .bind(&t.request_hash)
        .bind(t.created_at_ms)
        .bind(t.updated_at_ms)
        .bind(t.refreshed_at_ms)
        .bind(t.finished_at_ms)
        .bind(t.deadline_ms)
        .bind(t.next_poll_ms)
        .bind(t.polls)
        .bind(t.reserved_micros)
        .bind(t.charged_micros)
        .bind(i64::from(t.settled))
        .bind(t.key_slot)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) && t.idempotency_key.is_some() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn task_submitted(
        &self,
        id: &str,
        s: &Submitted,
        now_ms: i64,
        next_poll_ms: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE tasks SET provider = $1, upstream_model = $2, upstream_id = $3, \
             status = 'pending', updated_at_ms = $4, refreshed_at_ms = $4, next_poll_ms = $5, \
             key_slot = $7 WHERE id = $6 AND status = 'submitting'",
        )
        .bind(&s.provider)
        .bind(&s.upstream_model)
        .bind(&s.upstream_id)
        .bind(now_ms)
        .bind(next_poll_ms)
        .bind(id)
        .bind(s.key_slot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_task(&self, id: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM tasks WHERE id = $1 AND settled = 0")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn task(&self, id: &str) -> Result<Option<Task>, Error> {
        self.one_task("id = $1", &[id]).await
    }

    async fn task_by_idempotency(&self, account: &str, key: &str) -> Result<Option<Task>, Error> {
        self.one_task("account = $1 AND idempotency_key = $2", &[account, key])
            .await
    }

    async fn clear_idempotency(&self, id: &str) -> Result<(), Error> {
        sqlx::query("UPDATE tasks SET idempotency_key = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn task_by_callback_token(&self, hash: &str) -> Result<Option<Task>, Error> {
        self.one_task("callback_token_hash = $1", &[hash]).await
    }

    async fn tasks(
        &self,
        account: Option<&str>,
        status: Option<TaskStatus>,
        limit: i64,
    ) -> Result<Vec<Task>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE ($1 IS NULL OR account = $1) \
             AND ($2 IS NULL OR status = $2) ORDER BY created_at_ms DESC, id LIMIT $3"
        ))
        .bind(account)
        .bind(status.map(TaskStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(task_from_row).collect::<Result<_, _>>()?)
    }

    async fn claim_due_tasks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Task>, Error> {
        if !self.any_due("tasks", TASK_DUE, now_ms).await? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "UPDATE tasks SET lease_owner = $2, lease_until_ms = $3 WHERE id IN (SELECT id FROM \
             tasks WHERE {TASK_DUE} ORDER BY next_poll_ms LIMIT $4{}) AND {TASK_DUE} \
             RETURNING {TASK_COLUMNS}",
            self.skip_locked()
        ))
        .bind(now_ms)
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(task_from_row).collect::<Result<_, _>>()?)
    }

    async fn claim_task(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE tasks SET lease_owner = $1, lease_until_ms = $2 WHERE id = $3 AND settled = 0 \
             AND lease_until_ms <= $4 AND upstream_id IS NOT NULL",
        )
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn apply_task(&self, u: &TaskUpdate) -> Result<bool, Error> {
        if let Some(row) = &u.settlement {
            self.ledger_prepare(std::slice::from_ref(row)).await?;
        }
        let mut tx = self.pool.begin().await?;
        let settled = u.settlement.is_some();
        // A leased update also releases the lease; a callback's leaves any poller's alone.
        let lease_clause = if u.lease_owner.is_some() {
            ", lease_owner = NULL, lease_until_ms = 0 WHERE id = $12 AND lease_owner = $13"
        } else {
            " WHERE id = $12 AND $13 IS NULL"
        };
        let state_clause = if u.changed {
            "status = $1, native_status = $2, stage = $3, result = $4, error_code = $5, \
             error_message = $6, updated_at_ms = $7, "
        } else {
            ""
        };
        let sql = format!(
            "UPDATE tasks SET {state_clause}refreshed_at_ms = $7, finished_at_ms = $8, \
             next_poll_ms = $9, polls = $10, charged_micros = $11, settled = $14{lease_clause} \
             AND settled = 0 AND stage <= $3"
        );
        let charged = u.settlement.as_ref().map(|r| r.cost_micros);
        let done = sqlx::query(&sql)
            .bind(u.status.as_str())
            .bind(no_nul(&u.native_status))
            .bind(u.stage)
            .bind(u.result.as_ref().map(ToString::to_string))
            .bind(u.error_code.as_deref().map(no_nul))
            .bind(u.error_message.as_deref().map(no_nul))
            .bind(u.now_ms)
            .bind(settled.then_some(u.now_ms))
            .bind(u.next_poll_ms)
            .bind(u.polls)
            .bind(charged)
            .bind(&u.id)
            .bind(u.lease_owner.clone())
            .bind(i64::from(settled))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for e in &u.events {
            sqlx::query(&format!(
                "INSERT INTO task_deliveries ({DELIVERY_COLUMNS}, lease_owner, lease_until_ms) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7, NULL, NULL, NULL, NULL, 0) \
                 ON CONFLICT (event_id) DO NOTHING"
            ))
            .bind(&e.event_id)
            .bind(&e.task_id)
            .bind(&e.account)
            .bind(&e.url)
            .bind(&e.body)
            .bind(u.now_ms)
            .bind(e.expires_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(row) = &u.settlement {
            insert_usage_rows(&mut tx, std::slice::from_ref(row), false, Rows::MaybeStored).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn release_task(&self, id: &str, owner: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE tasks SET lease_owner = NULL, lease_until_ms = 0 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn task_reservations(&self) -> Result<Vec<Reservation>, Error> {
        let rows = sqlx::query(
            "SELECT key_id, team_id, account, CAST(SUM(reserved_micros) AS BIGINT) AS micros FROM tasks \
             WHERE settled = 0 GROUP BY key_id, team_id, account",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Reservation {
                    key_id: r.try_get("key_id")?,
                    team: r.try_get("team_id")?,
                    account: r.try_get("account")?,
                    micros: r.try_get("micros")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, Error> {
        if !self
            .any_due("task_deliveries", DELIVERY_DUE, now_ms)
            .await?
        {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "UPDATE task_deliveries SET lease_owner = $2, lease_until_ms = $3 WHERE event_id IN \
             (SELECT event_id FROM task_deliveries WHERE {DELIVERY_DUE} ORDER BY next_attempt_ms \
             LIMIT $4{}) AND {DELIVERY_DUE} RETURNING {DELIVERY_COLUMNS}",
            self.skip_locked()
        ))
        .bind(now_ms)
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn finish_attempt(
        &self,
        event_id: &str,
        owner: &str,
        a: &DeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<(), Error> {
        let (state, next_ms, delivered) = match next {
            DeliveryNext::Delivered => ("delivered", a.at_ms, Some(a.at_ms)),
            DeliveryNext::Retry(at) => ("pending", at, None),
            DeliveryNext::Dead => ("dead", a.at_ms, None),
        };
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE task_deliveries SET state = $1, attempts = $2, next_attempt_ms = $3, \
             delivered_at_ms = $4, last_status = $5, last_error = $6, lease_owner = NULL, \
             lease_until_ms = 0 WHERE event_id = $7 AND lease_owner = $8",
        )
        .bind(state)
        .bind(a.attempt)
        .bind(next_ms)
        .bind(delivered)
        .bind(a.status)
        .bind(a.error.clone())
        .bind(event_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO task_delivery_attempts (event_id, attempt, at_ms, status, error, \
                 duration_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, attempt) \
                 DO NOTHING",
            )
            .bind(event_id)
            .bind(a.attempt)
            .bind(a.at_ms)
            .bind(a.status)
            .bind(a.error.clone())
            .bind(a.duration_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        task_id: &str,
    ) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM task_deliveries WHERE task_id = $1 \
             ORDER BY created_at_ms, event_id"
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let d = delivery_from_row(row)?;
            let attempts = sqlx::query(
                "SELECT attempt, at_ms, status, error, duration_ms FROM task_delivery_attempts \
                 WHERE event_id = $1 ORDER BY attempt",
            )
            .bind(&d.event_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(DeliveryAttempt {
                    attempt: r.try_get("attempt")?,
                    at_ms: r.try_get("at_ms")?,
                    status: r.try_get("status")?,
                    error: r.try_get("error")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            out.push((d, attempts));
        }
        Ok(out)
    }

    async fn replay_delivery(
        &self,
        task_id: &str,
        event_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE task_deliveries SET state = 'pending', next_attempt_ms = $1, \
             expires_at_ms = $2, lease_owner = NULL, lease_until_ms = 0 \
             WHERE task_id = $3 AND event_id = $4 AND state <> 'delivered'",
        )
        .bind(now_ms)
        .bind(expires_at_ms)
        .bind(task_id)
        .bind(event_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn signing_secret(&self, account: &str) -> Result<Option<String>, Error> {
        let row = sqlx::query("SELECT secret FROM signing_secrets WHERE account = $1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("secret")).transpose()?)
    }

    async fn put_signing_secret(
        &self,
        account: &str,
        secret: &str,
        now: i64,
        replace: bool,
    ) -> Result<String, Error> {
        let conflict = if replace {
            "DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at"
        } else {
            "DO NOTHING"
        };
        sqlx::query(&format!(
            "INSERT INTO signing_secrets (account, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account) {conflict}"
        ))
        .bind(account)
        .bind(secret)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self
            .signing_secret(account)
            .await?
            .unwrap_or_else(|| secret.to_owned()))
    }
}
