//! The usage ledger in SQL: raw rows, and the aggregates kept beside them in the same
//! transaction (hourly buckets by key and model, monthly spend totals by key, team and
//! account), the grouped reads that prefer the buckets, and the ledger's upkeep (monthly
//! partitions on Postgres, retention on both).
//!
//! The aggregates are what make spend and the usage API independent of the ledger's size: a
//! restart loads one month's totals (a row per key, team and account), and a grouped read
//! over whole hours sums buckets. A range that starts or ends inside an hour reads the raw
//! rows of those partial hours only, so every answer stays exact to the row.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{SqlStore, is_unique_violation};
use super::{Error, GroupBy, SpendScope, SpendTotal, UsageGroup, UsageQuery, UsageRecord};

pub(super) const USAGE_COLUMNS: &str = "request_id, key_id, account, model, provider, \
    upstream_model, family, stream, prompt_tokens, completion_tokens, cache_read_tokens, \
    cache_write_tokens, status, outcome, latency_ms, created_at_ms, cost_micros, team_id, \
    web_searches";

const HOUR_MS: i64 = 3_600_000;

/// Raw rows deleted per statement by SQLite retention: small enough that a writer waiting on
/// the database lock waits milliseconds, not the whole clean-up.
const RETENTION_BATCH: i64 = 2_000;

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

/// The UTC month holding `ms`, as (start, end) in Unix milliseconds.
pub(super) fn month_of(ms: i64) -> (i64, i64) {
    let (start, end) = crate::clock::month_bounds(ms.div_euclid(1000));
    (start.saturating_mul(1000), end.saturating_mul(1000))
}

/// The Postgres partition holding the month that starts at `start_ms`: `usage_ledger_mYYYYMM`.
fn partition_name(start_ms: i64) -> String {
    let date = crate::clock::rfc3339(start_ms.div_euclid(1000));
    format!(
        "usage_ledger_m{}{}",
        date.get(..4).unwrap_or("1970"),
        date.get(5..7).unwrap_or("01")
    )
}

/// The month a partition name stands for, as its start in Unix milliseconds.
fn partition_start(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("usage_ledger_m")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = format!("{}-{}-01", digits.get(..4)?, digits.get(4..)?);
    crate::clock::parse_instant(&date).map(|s| s.saturating_mul(1000))
}

/// Sums of one bucket or one total.
#[derive(Clone, Copy, Default)]
struct Sums {
    requests: i64,
    errors: i64,
    prompt: i64,
    completion: i64,
    cache_read: i64,
    cache_write: i64,
    web_searches: i64,
    cost: i64,
}

impl Sums {
    fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        self.errors += i64::from(r.status >= 400);
        self.prompt = self.prompt.saturating_add(r.prompt_tokens);
        self.completion = self.completion.saturating_add(r.completion_tokens);
        self.cache_read = self.cache_read.saturating_add(r.cache_read_tokens);
        self.cache_write = self.cache_write.saturating_add(r.cache_write_tokens);
        self.web_searches = self.web_searches.saturating_add(r.web_searches);
        self.cost = self.cost.saturating_add(r.cost_micros);
    }
}

/// Text for a bind: without NUL characters, which Postgres refuses in text columns; borrowed
/// when it has none.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// [`clean`] text, owned.
fn text(s: &str) -> String {
    clean(s).into_owned()
}

/// A ledger insert being built.
type Insert<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds `s` [`clean`]ed, borrowing it when it has no NUL (the ledger's writes bind nine
/// strings a row: an owned copy of each was a tenth of the writer's work).
fn bind_text<'q>(q: Insert<'q>, s: &'q str) -> Insert<'q> {
    match clean(s) {
        Cow::Borrowed(s) => q.bind(s),
        Cow::Owned(s) => q.bind(s),
    }
}

/// Rows per statement a batch is cut into, largest first. A batch of any size runs as a few
/// statements of these fixed shapes, so a connection parses each statement once (sqlx keeps
/// prepared statements by their text). With one statement text per batch size, SQLite parsed
/// a new VALUES list for most batches, and parsing cost more than the inserts themselves.
const SHAPES: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// `rows` cut into chunks of [`SHAPES`] sizes (largest first), each with its shape's index.
fn shaped<T>(rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let shape = SHAPES.iter().position(|&size| size <= rest.len())?;
        let (chunk, tail) = rest.split_at(SHAPES[shape]);
        rest = tail;
        Some((shape, chunk))
    })
}

/// A multi-row statement's text for every shape and placeholder style, built on first use.
struct ShapedSql {
    cols: usize,
    build: fn(&str) -> String,
    texts: [std::sync::OnceLock<String>; 2 * SHAPES.len()],
}

impl ShapedSql {
    const fn new(cols: usize, build: fn(&str) -> String) -> Self {
        Self {
            cols,
            build,
            texts: [const { std::sync::OnceLock::new() }; 2 * SHAPES.len()],
        }
    }

    /// The statement for shape `shape` (an index into [`SHAPES`]).
    fn text(&self, shape: usize, anonymous: bool) -> &str {
        self.texts[shape * 2 + usize::from(anonymous)]
            .get_or_init(|| (self.build)(&values(SHAPES[shape], self.cols, anonymous)))
    }

    /// The statement for `shape` with room for all its binds: a chunk of 64 rows binds over a
    /// thousand values, and a bind list grown by doubling copied each of them several times.
    fn query<'q>(&'static self, shape: usize, anonymous: bool) -> Insert<'q> {
        let mut args = sqlx::any::AnyArguments::default();
        sqlx::Arguments::reserve(&mut args, SHAPES[shape] * self.cols, 0);
        sqlx::query_with(self.text(shape, anonymous), args)
    }
}

static LEDGER_INSERT: ShapedSql = ShapedSql::new(19, |rows| {
    format!(
        "INSERT INTO usage_ledger ({USAGE_COLUMNS}) VALUES {rows} ON CONFLICT DO NOTHING RETURNING request_id"
    )
});

/// The plain insert of rows never offered before: a stored request ID fails the statement
/// instead of being skipped, so nothing comes back to say which rows went in (all did).
static LEDGER_INSERT_NEW: ShapedSql = ShapedSql::new(19, |rows| {
    format!("INSERT INTO usage_ledger ({USAGE_COLUMNS}) VALUES {rows}")
});

/// What an insert may assume about its rows' request IDs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Rows {
    /// None is stored yet (the usual batch). Any stored ID fails the insert with a unique
    /// violation, which the caller answers by rolling back and writing the batch again as
    /// [`Rows::MaybeStored`]. Skipping `RETURNING`'s temporary table and the set of returned
    /// IDs is a tenth of a row's cost on SQLite.
    New,
    /// Some may be stored already (a replay, a retried batch, a task's settlement): those are
    /// skipped and only the rows inserted count in the aggregates.
    MaybeStored,
}

static HOURLY_UPSERT: ShapedSql = ShapedSql::new(13, |rows| {
    format!(
        "INSERT INTO usage_hourly (hour_ms, key_id, model, account, team_id, requests, errors, \
         prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens, web_searches, \
         cost_micros) VALUES {rows} ON CONFLICT (hour_ms, key_id, model, account, team_id) DO UPDATE SET \
         requests = usage_hourly.requests + excluded.requests, \
         errors = usage_hourly.errors + excluded.errors, \
         prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens, \
         cache_read_tokens = usage_hourly.cache_read_tokens + excluded.cache_read_tokens, \
         cache_write_tokens = usage_hourly.cache_write_tokens + excluded.cache_write_tokens, \
         web_searches = usage_hourly.web_searches + excluded.web_searches, \
         cost_micros = usage_hourly.cost_micros + excluded.cost_micros"
    )
});

static TOTALS_UPSERT: ShapedSql = ShapedSql::new(5, |rows| {
    format!(
        "INSERT INTO usage_totals (month_ms, scope, id, requests, cost_micros) VALUES {rows} \
         ON CONFLICT (month_ms, scope, id) DO UPDATE SET \
         requests = usage_totals.requests + excluded.requests, \
         cost_micros = usage_totals.cost_micros + excluded.cost_micros"
    )
});

/// `($1, …, $c), ($c+1, …)` for `rows` rows of `cols` columns (or with `?` placeholders).
fn values(rows: usize, cols: usize, anonymous: bool) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..cols {
            let sep = if col == 0 { "" } else { ", " };
            if anonymous {
                let _ = write!(sql, "{sep}?");
            } else {
                let _ = write!(sql, "{sep}${}", row * cols + col + 1);
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts ledger rows inside `tx` and adds the rows it inserted (only those: a replay never
/// double-counts) to the hourly buckets and the monthly totals in the same transaction. Rows
/// whose request ID is stored already are skipped ([`Rows::MaybeStored`]) or fail the insert
/// ([`Rows::New`]).
pub(super) async fn insert_usage_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[UsageRecord],
    anonymous: bool,
    assume: Rows,
) -> Result<(), sqlx::Error> {
    // Sorted maps: every transaction updates aggregate rows in one order, so two instances
    // writing at once on Postgres wait for each other instead of deadlocking.
    let mut hourly = Hourly::new();
    let mut totals = Totals::new();
    let mut months: HashMap<i64, i64> = HashMap::new();
    // 19 binds a row; 64 rows a statement stays far under both backends' bind limits.
    for (shape, chunk) in shaped(rows) {
        let sql = match assume {
            Rows::New => &LEDGER_INSERT_NEW,
            Rows::MaybeStored => &LEDGER_INSERT,
        };
        let mut q = sql.query(shape, anonymous);
        for r in chunk {
            for s in [
                &r.request_id,
                &r.key_id,
                &r.account,
                &r.model,
                &r.provider,
                &r.upstream_model,
                &r.family,
            ] {
                q = bind_text(q, s);
            }
            q = q
                .bind(i64::from(r.stream))
                .bind(r.prompt_tokens)
                .bind(r.completion_tokens)
                .bind(r.cache_read_tokens)
                .bind(r.cache_write_tokens)
                .bind(r.status);
            q = bind_text(q, &r.outcome)
                .bind(r.latency_ms)
                .bind(r.created_at_ms)
                .bind(r.cost_micros);
            q = match r.team.as_deref() {
                Some(team) => bind_text(q, team),
                None => q.bind(None::<&str>),
            }
            .bind(r.web_searches);
        }
        let mut inserted: Option<HashSet<String>> = match assume {
            Rows::New => {
                q.execute(&mut **tx).await?;
                None
            }
            Rows::MaybeStored => Some(
                q.fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?,
            ),
        };
        for r in chunk {
            // A request ID twice in one chunk is inserted once: count its first row only.
            if let Some(inserted) = &mut inserted
                && !inserted.remove(clean(&r.request_id).as_ref())
            {
                continue;
            }
            let hour = r.created_at_ms.div_euclid(HOUR_MS) * HOUR_MS;
            let month = *months.entry(hour).or_insert_with(|| month_of(hour).0);
            let team = r.team.as_deref().unwrap_or("");
            hourly
                .entry((hour, &r.key_id, &r.model, &r.account, team))
                .or_default()
                .add(r);
            totals.entry((month, "key", &r.key_id)).or_default().add(r);
            if !team.is_empty() {
                totals.entry((month, "team", team)).or_default().add(r);
            }
            totals
                .entry((month, "account", &r.account))
                .or_default()
                .add(r);
        }
    }
    upsert_hourly(tx, hourly, anonymous).await?;
    upsert_totals(tx, totals, anonymous).await
}

/// Hourly buckets: (hour, key, model, account, team) → sums.
type Hourly<'a> = BTreeMap<(i64, &'a str, &'a str, &'a str, &'a str), Sums>;
/// Monthly totals: (month, scope, ID) → sums.
type Totals<'a> = BTreeMap<(i64, &'static str, &'a str), Sums>;

/// Adds sums to their hourly buckets, creating the missing ones.
async fn upsert_hourly(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    hourly: Hourly<'_>,
    anonymous: bool,
) -> Result<(), sqlx::Error> {
    let hourly: Vec<_> = hourly.into_iter().collect();
    for (shape, chunk) in shaped(&hourly) {
        let mut q = HOURLY_UPSERT.query(shape, anonymous);
        for ((hour, key, model, account, team), s) in chunk {
            q = q
                .bind(*hour)
                .bind(text(key))
                .bind(text(model))
                .bind(text(account))
                .bind(text(team))
                .bind(s.requests)
                .bind(s.errors)
                .bind(s.prompt)
                .bind(s.completion)
                .bind(s.cache_read)
                .bind(s.cache_write)
                .bind(s.web_searches)
                .bind(s.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Adds sums to their monthly totals, creating the missing ones.
async fn upsert_totals(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    totals: Totals<'_>,
    anonymous: bool,
) -> Result<(), sqlx::Error> {
    let totals: Vec<_> = totals.into_iter().collect();
    for (shape, chunk) in shaped(&totals) {
        let mut q = TOTALS_UPSERT.query(shape, anonymous);
        for ((month, scope, id), s) in chunk {
            q = q
                .bind(*month)
                .bind(*scope)
                .bind(text(id))
                .bind(s.requests)
                .bind(s.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The WHERE clause for a usage query over `time` (a column in Unix milliseconds), with `$n`
/// placeholders (numbered by hand: the Any driver's query builder emits `?`, which Postgres
/// rejects) and the values to bind. The buckets keep "no team" as `''`, which no team ID is.
fn usage_filter(q: &UsageQuery, time: &str) -> (String, Vec<FilterValue>) {
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
        let _ = write!(sql, " AND {time} >= ${}", binds.len());
    }
    if let Some(to) = q.to_ms {
        binds.push(FilterValue::Int(to));
        let _ = write!(sql, " AND {time} < ${}", binds.len());
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

/// Where a grouped read comes from.
#[derive(Clone, Copy)]
enum Source {
    /// `usage_ledger`, row by row.
    Raw,
    /// `usage_hourly`.
    Buckets,
}

impl SqlStore {
    /// Writes usage rows and their aggregates in one transaction.
    pub(super) async fn ledger_insert(&self, rows: &[UsageRecord]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        self.ledger_prepare(rows).await?;
        let mut tx = self.writer.begin().await?;
        match insert_usage_rows(&mut tx, rows, self.anonymous_placeholders, Rows::New).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(());
            }
            // Some row is stored already: a replay, or a retry of a batch whose commit did
            // go through. Nothing of this attempt stays; the careful insert skips those rows.
            Err(e) if is_unique_violation(&e) => tx.rollback().await?,
            Err(e) => return Err(e.into()),
        }
        let mut tx = self.writer.begin().await?;
        insert_usage_rows(
            &mut tx,
            rows,
            self.anonymous_placeholders,
            Rows::MaybeStored,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes sure the ledger can take `rows`: on Postgres, the partition of every month they
    /// fall in exists (created outside the writing transaction, so that two instances creating
    /// the same month cannot fail each other's batch). Known months cost no query.
    pub(super) async fn ledger_prepare(&self, rows: &[UsageRecord]) -> Result<(), Error> {
        if self.backend != "postgres" {
            return Ok(());
        }
        let mut wanted: Vec<i64> = rows.iter().map(|r| month_of(r.created_at_ms).0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        for start in wanted {
            self.ensure_partition(start).await?;
        }
        Ok(())
    }

    async fn ensure_partition(&self, start: i64) -> Result<(), Error> {
        if self
            .ledger_months
            .lock()
            .is_ok_and(|known| known.contains(&start))
        {
            return Ok(());
        }
        let (_, end) = month_of(start);
        let name = partition_name(start);
        let created = sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF usage_ledger FOR VALUES FROM ({start}) TO ({end})"
        ))
        .execute(&self.pool)
        .await;
        if let Err(e) = created {
            // Another instance may have created it at the same moment: fine if it exists now.
            let exists: Option<String> = sqlx::query("SELECT CAST(to_regclass($1) AS TEXT)")
                .bind(&name)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            if exists.is_none() {
                return Err(e.into());
            }
        }
        if let Ok(mut known) = self.ledger_months.lock() {
            known.insert(start);
        }
        Ok(())
    }

    pub(super) async fn ledger_rows(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, Error> {
        let (filter, binds) = usage_filter(q, "created_at_ms");
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

    /// Sums usage by `group`: whole hours from the buckets, the partial hours at either end of
    /// the range from the raw rows. Per request and per minute only the raw rows can answer.
    pub(super) async fn ledger_summary(
        &self,
        q: &UsageQuery,
        group: GroupBy,
    ) -> Result<Vec<UsageGroup>, Error> {
        if q.request_id.is_some() || group == GroupBy::Minute {
            return self.summary_from(Source::Raw, q, group).await;
        }
        let ceil = |ms: i64| {
            ms.div_euclid(HOUR_MS) * HOUR_MS
                + if ms.rem_euclid(HOUR_MS) > 0 {
                    HOUR_MS
                } else {
                    0
                }
        };
        let floor = |ms: i64| ms.div_euclid(HOUR_MS) * HOUR_MS;
        let whole_from = q.from_ms.map(ceil);
        let whole_to = q.to_ms.map(floor);
        if let (Some(a), Some(b)) = (whole_from, whole_to)
            && a >= b
        {
            return self.summary_from(Source::Raw, q, group).await;
        }
        let mut parts = Vec::new();
        if let (Some(from), Some(a)) = (q.from_ms, whole_from)
            && from < a
        {
            let head = UsageQuery {
                from_ms: Some(from),
                to_ms: Some(a),
                ..q.clone()
            };
            parts.push(self.summary_from(Source::Raw, &head, group).await?);
        }
        let whole = UsageQuery {
            from_ms: whole_from,
            to_ms: whole_to,
            ..q.clone()
        };
        parts.push(self.summary_from(Source::Buckets, &whole, group).await?);
        if let (Some(to), Some(b)) = (q.to_ms, whole_to)
            && b < to
        {
            let tail = UsageQuery {
                from_ms: Some(b),
                to_ms: Some(to),
                ..q.clone()
            };
            parts.push(self.summary_from(Source::Raw, &tail, group).await?);
        }
        if parts.len() == 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        let mut merged: BTreeMap<String, UsageGroup> = BTreeMap::new();
        for g in parts.into_iter().flatten() {
            match merged.get_mut(&g.group) {
                Some(m) => {
                    m.requests += g.requests;
                    m.errors += g.errors;
                    m.prompt_tokens += g.prompt_tokens;
                    m.completion_tokens += g.completion_tokens;
                    m.cache_read_tokens += g.cache_read_tokens;
                    m.cache_write_tokens += g.cache_write_tokens;
                    m.web_searches += g.web_searches;
                    m.cost_micros += g.cost_micros;
                }
                None => {
                    merged.insert(g.group.clone(), g);
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    async fn summary_from(
        &self,
        source: Source,
        q: &UsageQuery,
        group: GroupBy,
    ) -> Result<Vec<UsageGroup>, Error> {
        let (table, time) = match source {
            Source::Raw => ("usage_ledger", "created_at_ms"),
            Source::Buckets => ("usage_hourly", "hour_ms"),
        };
        let (filter, binds) = usage_filter(q, time);
        let key = match group {
            // Integer division is floor division for non-negative values on both backends.
            GroupBy::Minute => format!("CAST({time} / 60000 AS BIGINT)"),
            GroupBy::Hour => format!("CAST({time} / 3600000 AS BIGINT)"),
            GroupBy::Day => format!("CAST({time} / 86400000 AS BIGINT)"),
            GroupBy::Model => "model".to_owned(),
            GroupBy::Key => "key_id".to_owned(),
            GroupBy::Team => "team_id".to_owned(),
            GroupBy::Account => "account".to_owned(),
        };
        // SUM over BIGINT is NUMERIC on Postgres, which the Any driver cannot decode: cast back.
        let sums = match source {
            Source::Raw => {
                "COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS p, \
                 CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(cache_read_tokens) AS BIGINT) AS cr, \
                 CAST(SUM(cache_write_tokens) AS BIGINT) AS cw, CAST(SUM(cost_micros) AS BIGINT) AS cost, \
                 CAST(SUM(web_searches) AS BIGINT) AS ws, \
                 CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors"
            }
            Source::Buckets => {
                "CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS p, \
                 CAST(SUM(completion_tokens) AS BIGINT) AS c, CAST(SUM(cache_read_tokens) AS BIGINT) AS cr, \
                 CAST(SUM(cache_write_tokens) AS BIGINT) AS cw, CAST(SUM(cost_micros) AS BIGINT) AS cost, \
                 CAST(SUM(web_searches) AS BIGINT) AS ws, CAST(SUM(errors) AS BIGINT) AS errors"
            }
        };
        let sql = format!(
            "SELECT {key} AS g, {sums} FROM {table} WHERE {filter} GROUP BY {key} ORDER BY {key}"
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

    /// The month's spend per key, team and account, as kept with every ledger write.
    pub(super) async fn ledger_spend_totals(
        &self,
        month_ms: i64,
    ) -> Result<Vec<SpendTotal>, Error> {
        let rows = sqlx::query(
            "SELECT scope, id, cost_micros FROM usage_totals WHERE month_ms = $1 ORDER BY scope, id",
        )
        .bind(month_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let scope = match r.try_get::<String, _>("scope")?.as_str() {
                "key" => SpendScope::Key,
                "team" => SpendScope::Team,
                "account" => SpendScope::Account,
                _ => continue,
            };
            out.push(SpendTotal {
                scope,
                id: r.try_get("id")?,
                cost_micros: r.try_get("cost_micros")?,
            });
        }
        Ok(out)
    }

    /// The ledger's upkeep: on Postgres, this month's and next month's partitions exist and
    /// months that ended before `keep_from_ms` are dropped whole; on SQLite, rows before
    /// `keep_from_ms` are deleted a small batch at a time. Buckets and totals are kept.
    /// Returns how many raw rows (SQLite) or partitions (Postgres) were removed.
    pub(super) async fn ledger_maintain(
        &self,
        now_ms: i64,
        keep_from_ms: Option<i64>,
    ) -> Result<u64, Error> {
        if self.backend == "postgres" {
            let (this, next) = month_of(now_ms);
            self.ensure_partition(this).await?;
            self.ensure_partition(next).await?;
            let Some(keep_from) = keep_from_ms else {
                return Ok(0);
            };
            let names = sqlx::query(
                "SELECT CAST(c.relname AS TEXT) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = CAST('usage_ledger' AS regclass)",
            )
            .fetch_all(&self.pool)
            .await?;
            let mut dropped = 0;
            for row in &names {
                let name: String = row.try_get(0)?;
                let Some(start) = partition_start(&name) else {
                    continue;
                };
                if month_of(start).1 > keep_from {
                    continue;
                }
                // The name matched `usage_ledger_mYYYYMM` exactly, so it is safe to splice.
                sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
                    .execute(&self.pool)
                    .await?;
                if let Ok(mut known) = self.ledger_months.lock() {
                    known.remove(&start);
                }
                tracing::info!(partition = %name, "dropped a usage ledger month past its retention");
                dropped += 1;
            }
            return Ok(dropped);
        }
        let Some(keep_from) = keep_from_ms else {
            return Ok(0);
        };
        let mut deleted = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM usage_ledger WHERE rowid IN \
                 (SELECT rowid FROM usage_ledger WHERE created_at_ms < $1 LIMIT $2)",
            )
            .bind(keep_from)
            .bind(RETENTION_BATCH)
            .execute(&self.pool)
            .await?;
            deleted += done.rows_affected();
            if done.rows_affected() < u64::try_from(RETENTION_BATCH).unwrap_or(0) {
                return Ok(deleted);
            }
            // Let the meter's writes in between batches.
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let (start, end) = month_of(1_764_720_000_000); // 2025-12-03
        assert_eq!(partition_name(start), "usage_ledger_m202512");
        assert_eq!(partition_start("usage_ledger_m202512"), Some(start));
        assert_eq!(crate::clock::rfc3339(end / 1000), "2026-01-01T00:00:00Z");
        for bad in [
            "usage_ledger_m2025",
            "usage_ledger_m20251x",
            "usage_ledger",
            "x_m202512",
        ] {
            assert_eq!(partition_start(bad), None, "{bad}");
        }
    }

    /// A ledger written before the aggregates existed: migrating fills the buckets and totals
    /// from it (and on Postgres moves it into monthly partitions) without losing a row.
    async fn migration_fills_aggregates(mut store: SqlStore) {
        use crate::store::Store as _;
        let all = &super::super::migrations::MIGRATIONS;
        store.migrations = &all[..10];
        store.migrate().await.unwrap();
        let (month, _) = month_of(crate::clock::unix_millis());
        let (prev, _) = month_of(month - 1);
        let rows: Vec<UsageRecord> = (0..250_i64)
            .map(|i| UsageRecord {
                request_id: format!("r{i}"),
                key_id: format!("k{}", i % 3),
                account: format!("a{}", i % 2),
                model: "m".into(),
                provider: "p".into(),
                upstream_model: "u".into(),
                family: "openai".into(),
                stream: false,
                prompt_tokens: i,
                completion_tokens: 2 * i,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                web_searches: 0,
                status: if i % 10 == 0 { 500 } else { 200 },
                outcome: "ok".into(),
                latency_ms: 1,
                created_at_ms: if i % 2 == 0 { prev } else { month } + i * 1_000_000,
                cost_micros: i * 7,
                team: (i % 3 == 1).then(|| "t".to_owned()),
            })
            .collect();
        for r in &rows {
            sqlx::query(&format!(
                "INSERT INTO usage_ledger ({USAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(&r.request_id).bind(&r.key_id).bind(&r.account).bind(&r.model)
            .bind(&r.provider).bind(&r.upstream_model).bind(&r.family).bind(0_i64)
            .bind(r.prompt_tokens).bind(r.completion_tokens).bind(0_i64).bind(0_i64)
            .bind(r.status).bind(&r.outcome).bind(r.latency_ms).bind(r.created_at_ms)
            .bind(r.cost_micros).bind(r.team.clone()).bind(0_i64)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        store.migrations = all;
        store.migrate().await.unwrap();
        let q = UsageQuery {
            limit: 10_000,
            ..UsageQuery::default()
        };
        assert_eq!(store.usage(&q).await.unwrap().len(), rows.len());
        let by_key = store.usage_summary(&q, GroupBy::Key).await.unwrap();
        for k in 0..3 {
            let id = format!("k{k}");
            let want: i64 = rows
                .iter()
                .filter(|r| r.key_id == id)
                .map(|r| r.cost_micros)
                .sum();
            let got = by_key.iter().find(|g| g.group == id).map(|g| g.cost_micros);
            assert_eq!(got, Some(want), "{id}");
        }
        for start in [prev, month] {
            let (_, end) = month_of(start);
            let totals = store.spend_totals(start).await.unwrap();
            let want: i64 = rows
                .iter()
                .filter(|r| (start..end).contains(&r.created_at_ms) && r.account == "a1")
                .map(|r| r.cost_micros)
                .sum();
            let got = totals
                .iter()
                .find(|t| t.scope == SpendScope::Account && t.id == "a1")
                .map_or(0, |t| t.cost_micros);
            assert_eq!(got, want);
            let team: i64 = rows
                .iter()
                .filter(|r| (start..end).contains(&r.created_at_ms) && r.team.is_some())
                .map(|r| r.cost_micros)
                .sum();
            let got = totals
                .iter()
                .find(|t| t.scope == SpendScope::Team)
                .map_or(0, |t| t.cost_micros);
            assert_eq!(got, team);
        }
        // A replayed row is still refused after the move.
        store.ledger_insert(&rows[..5]).await.unwrap();
        assert_eq!(store.usage(&q).await.unwrap().len(), rows.len());
    }

    #[tokio::test]
    async fn sqlite_migration_fills_aggregates() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        migration_fills_aggregates(super::super::sqlite::open(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn pg_migration_fills_aggregates() {
        use sqlx::Connection as _;
        let base = std::env::var("ANYINT_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("m_{}", hex::encode(crate::auth::random_bytes::<6>()));
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        migration_fills_aggregates(super::super::postgres::open(&url).await.unwrap()).await;
    }

    #[test]
    fn a_batch_is_cut_into_fixed_shapes_in_order() {
        for n in 0..300usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<(usize, &[usize])> = shaped(&rows).collect();
            let sizes: Vec<usize> = chunks.iter().map(|(_, c)| c.len()).collect();
            // Every row once, in order, each chunk of its shape's size, largest shapes first.
            assert_eq!(
                chunks
                    .iter()
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect::<Vec<_>>(),
                rows
            );
            assert!(
                chunks.iter().all(|(shape, c)| SHAPES[*shape] == c.len()),
                "{n}: {sizes:?}"
            );
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{n}: {sizes:?}");
            // At most one chunk of each shape below the largest.
            assert!(sizes.len() < n / SHAPES[0] + SHAPES.len(), "{n}: {sizes:?}");
        }
    }

    #[test]
    fn each_shape_has_one_statement_text() {
        let text = LEDGER_INSERT.text(2, false);
        assert_eq!(text.matches('(').count(), 1 + 16, "{text}");
        assert!(text.contains("$304)") && !text.contains("$305"), "{text}");
        assert!(std::ptr::eq(text, LEDGER_INSERT.text(2, false)));
        assert_eq!(TOTALS_UPSERT.text(6, true).matches('?').count(), 5);
    }

    #[test]
    fn placeholders() {
        assert_eq!(values(2, 2, false), "($1, $2), ($3, $4)");
        assert_eq!(values(1, 3, true), "(?, ?, ?)");
    }
}
