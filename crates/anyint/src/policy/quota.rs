//! Credit caps: a plan's cap per account, a team's budget and a key's budget, each per UTC
//! calendar month. Admission refuses a request once a cap is used up (429
//! `insufficient_quota`, saying when the month resets, with `x-should-retry: false` so SDKs
//! do not retry in a loop). Settlement is the ledger: every row's cost is added as it is
//! metered, so a stream cut short is charged for what it generated.
//!
//! Counts live in memory per instance and are reloaded from the ledger on start and at each
//! cache refresh, which also folds in other instances' spend.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, ErrorKind};
use crate::policy::directory::Directory;
use crate::store::{ApiKey, GroupBy, Store, UsageQuery, UsageRecord};

#[derive(Default)]
struct Month {
    start: i64,
    by_key: HashMap<String, i64>,
    by_team: HashMap<String, i64>,
    by_account: HashMap<String, i64>,
}

/// Spend so far this month, per key, team and account.
#[derive(Default)]
pub struct SpendTracker {
    month: Mutex<Month>,
}

impl SpendTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metered row's cost to the month the row belongs to.
    pub fn add(&self, row: &UsageRecord) {
        self.bump(
            row.created_at_ms / 1000,
            &row.key_id,
            row.team.as_deref(),
            &row.account,
            row.cost_micros,
        );
    }

    /// Adds `delta` micro-units (negative to release) to a key's, team's and account's spend
    /// this month: task reservations and their settlement.
    pub fn adjust(&self, key_id: &str, team: Option<&str>, account: &str, delta: i64) {
        self.bump(crate::clock::unix_secs(), key_id, team, account, delta);
    }

    /// Adds `delta` to the month holding `at_secs`, starting that month afresh if it is not
    /// the one tracked.
    fn bump(&self, at_secs: i64, key_id: &str, team: Option<&str>, account: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let (start, _) = crate::clock::month_bounds(at_secs);
        let Ok(mut m) = self.month.lock() else { return };
        if m.start != start {
            *m = Month {
                start,
                ..Month::default()
            };
        }
        *m.by_key.entry(key_id.to_owned()).or_default() += delta;
        if let Some(team) = team {
            *m.by_team.entry(team.to_owned()).or_default() += delta;
        }
        *m.by_account.entry(account.to_owned()).or_default() += delta;
    }

    /// Replaces the counts with this month's sums from the ledger.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), crate::store::Error> {
        let (start, _) = crate::clock::month_bounds(crate::clock::unix_secs());
        let q = UsageQuery {
            from_ms: Some(start.saturating_mul(1000)),
            ..UsageQuery::default()
        };
        let sums = |groups: Vec<crate::store::UsageGroup>| -> HashMap<String, i64> {
            groups
                .into_iter()
                .filter(|g| !g.group.is_empty())
                .map(|g| (g.group, g.cost_micros))
                .collect()
        };
        let mut month = Month {
            start,
            by_key: sums(store.usage_summary(&q, GroupBy::Key).await?),
            by_team: sums(store.usage_summary(&q, GroupBy::Team).await?),
            by_account: sums(store.usage_summary(&q, GroupBy::Account).await?),
        };
        // Credit held by unfinished tasks counts as spent until they settle.
        for r in store.task_reservations().await? {
            *month.by_key.entry(r.key_id).or_default() += r.micros;
            if let Some(team) = r.team {
                *month.by_team.entry(team).or_default() += r.micros;
            }
            *month.by_account.entry(r.account).or_default() += r.micros;
        }
        if let Ok(mut m) = self.month.lock() {
            *m = month;
        }
        Ok(())
    }

    fn spent(&self, pick: impl FnOnce(&Month) -> Option<i64>) -> i64 {
        let (start, _) = crate::clock::month_bounds(crate::clock::unix_secs());
        self.month
            .lock()
            .ok()
            .filter(|m| m.start == start)
            .and_then(|m| pick(&m))
            .unwrap_or(0)
    }

    /// Refuses `key` when any cap that applies to it is used up.
    pub fn check(&self, dir: &Directory, key: &ApiKey) -> Result<(), Error> {
        let mut caps: Vec<(String, i64, i64)> = Vec::new();
        if let Some(cap) = key.limits.budget_micros {
            caps.push((
                format!("key {}", key.prefix),
                cap,
                self.spent(|m| m.by_key.get(&key.id).copied()),
            ));
        }
        if let Some(team_id) = &key.team
            && let Some(cap) = dir.teams.get(team_id).and_then(|t| t.budget_micros)
        {
            caps.push((
                format!("team {team_id}"),
                cap,
                self.spent(|m| m.by_team.get(team_id).copied()),
            ));
        }
        if let Some((plan_id, plan)) = dir.plan_of(&key.account)
            && let Some(cap) = plan.credit_cap_micros
        {
            let label = format!("account {} (plan {plan_id})", key.account);
            caps.push((
                label,
                cap,
                self.spent(|m| m.by_account.get(&key.account).copied()),
            ));
        }
        match caps.into_iter().find(|(_, cap, spent)| spent >= cap) {
            None => Ok(()),
            Some((label, cap, spent)) => {
                let (_, reset) = crate::clock::month_bounds(crate::clock::unix_secs());
                Err(Error::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "the monthly credit cap of {cap} micro-units for {label} is used up ({spent} spent); it resets at {}. Retrying before then will not succeed; ask your administrator to raise the cap",
                        crate::clock::rfc3339(reset)
                    ),
                )
                .with_code("insufficient_quota"))
            }
        }
    }
}
