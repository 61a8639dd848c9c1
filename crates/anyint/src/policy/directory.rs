//! Plans, accounts and teams: who may use which models, and the limits they share.
//!
//! A key belongs to an account and optionally a team; an account may be on a plan. The
//! effective model set is plan ∩ team ∩ key (a level without a list adds no restriction).
//! Limits apply at every level that sets them: per key, per team (shared by its keys) and per
//! account (the plan's defaults, shared by all its keys). The hot path reads a cached snapshot
//! ([`DirectoryCache`]); admin changes reload it at once, other instances' changes within
//! `key_cache_refresh_secs`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::store::{ApiKey, EntityKind, Store};

/// A subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Models the plan includes; all configured models when absent.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Requests per minute for each account on the plan.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Requests in flight for each account on the plan.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Tokens per minute for each account on the plan.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// Credit cap per period, in micro-units (enforcement arrives with quotas).
    #[serde(default)]
    pub credit_cap_micros: Option<i64>,
}

/// A customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account's plan.
    #[serde(default)]
    pub plan: Option<String>,
}

/// A group of keys within an account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpec {
    /// The owning account.
    pub account: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model allowlist.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Requests per minute shared by the team's keys.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Requests in flight shared by the team's keys.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Tokens per minute shared by the team's keys.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// Credit budget per period, in micro-units (enforcement arrives with quotas).
    #[serde(default)]
    pub budget_micros: Option<i64>,
}

/// One level of limits that applies to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    /// Limiter key, e.g. `team:t1`.
    pub id: String,
    /// How refusals name it, e.g. `team t1` (written only when one is).
    pub label: Label<'a>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Requests in flight.
    pub concurrency: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
}

/// How a refusal names a level of limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label<'a> {
    /// A key, by its visible prefix.
    Key(&'a str),
    /// A team, by its ID.
    Team(&'a str),
    /// An account and its plan.
    Account {
        /// The account ID.
        account: &'a str,
        /// The plan ID.
        plan: &'a str,
    },
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(prefix) => write!(f, "key {prefix}"),
            Self::Team(id) => write!(f, "team {id}"),
            Self::Account { account, plan } => write!(f, "account {account} (plan {plan})"),
        }
    }
}

/// A snapshot of plans, accounts and teams.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    /// Plans by ID.
    pub plans: HashMap<String, PlanSpec>,
    /// Accounts by ID.
    pub accounts: HashMap<String, AccountSpec>,
    /// Teams by ID.
    pub teams: HashMap<String, TeamSpec>,
}

/// Which level refused a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The key's own allowlist.
    Key,
    /// The team's allowlist.
    Team(String),
    /// The account's plan.
    Plan(String),
}

impl Directory {
    /// The plan of `account`, with its ID.
    pub fn plan_of(&self, account: &str) -> Option<(&str, &PlanSpec)> {
        let plan_id = self.accounts.get(account)?.plan.as_deref()?;
        self.plans.get(plan_id).map(|p| (plan_id, p))
    }

    /// Whether `key` may use model `id`; which level refuses it otherwise.
    pub fn check_model(&self, key: &ApiKey, id: &str) -> Result<(), Denial> {
        let listed =
            |list: &Option<Vec<String>>| list.as_ref().is_none_or(|m| m.iter().any(|x| x == id));
        if !listed(&key.models) {
            return Err(Denial::Key);
        }
        if let Some(team_id) = &key.team
            && let Some(team) = self.teams.get(team_id)
            && !listed(&team.models)
        {
            return Err(Denial::Team(team_id.clone()));
        }
        if let Some((plan_id, plan)) = self.plan_of(&key.account)
            && !listed(&plan.models)
        {
            return Err(Denial::Plan(plan_id.to_owned()));
        }
        Ok(())
    }

    /// The limit scopes for a request by `key`, most specific first.
    pub fn scopes<'a>(&'a self, key: &'a ApiKey) -> Vec<Scope<'a>> {
        let mut scopes = vec![Scope {
            id: format!("key:{}", key.id),
            label: Label::Key(&key.prefix),
            rpm: key.limits.rpm,
            concurrency: key.limits.concurrency,
            tpm: key.limits.tpm,
        }];
        if let Some(team_id) = &key.team
            && let Some(team) = self.teams.get(team_id)
        {
            scopes.push(Scope {
                id: format!("team:{team_id}"),
                label: Label::Team(team_id),
                rpm: team.rpm,
                concurrency: team.concurrency,
                tpm: team.tpm,
            });
        }
        if let Some((plan_id, plan)) = self.plan_of(&key.account) {
            scopes.push(Scope {
                id: format!("account:{}", key.account),
                label: Label::Account {
                    account: &key.account,
                    plan: plan_id,
                },
                rpm: plan.rpm,
                concurrency: plan.concurrency,
                tpm: plan.tpm,
            });
        }
        scopes.retain(|s| s.rpm.is_some() || s.concurrency.is_some() || s.tpm.is_some());
        scopes
    }
}

/// The cached directory the hot path reads.
pub struct DirectoryCache {
    store: Arc<dyn Store>,
    current: RwLock<Arc<Directory>>,
}

impl DirectoryCache {
    /// An empty cache; call [`DirectoryCache::reload`] before serving.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            current: RwLock::new(Arc::new(Directory::default())),
        }
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Directory> {
        self.current
            .read()
            .map_or_else(|_| Arc::new(Directory::default()), |d| d.clone())
    }

    /// Reloads every entity from the store. Rows that no longer parse are skipped (and logged).
    pub async fn reload(&self) -> Result<(), crate::store::Error> {
        fn parse<T: serde::de::DeserializeOwned>(
            kind: EntityKind,
            rows: Vec<crate::store::Entity>,
        ) -> HashMap<String, T> {
            rows.into_iter()
                .filter_map(|e| match serde_json::from_value(e.spec) {
                    Ok(spec) => Some((e.id, spec)),
                    Err(err) => {
                        tracing::warn!(kind = kind.as_str(), id = %e.id, error = %err, "skipping an unreadable policy entity");
                        None
                    }
                })
                .collect()
        }
        let dir = Directory {
            plans: parse(
                EntityKind::Plan,
                self.store.entities(EntityKind::Plan).await?,
            ),
            accounts: parse(
                EntityKind::Account,
                self.store.entities(EntityKind::Account).await?,
            ),
            teams: parse(
                EntityKind::Team,
                self.store.entities(EntityKind::Team).await?,
            ),
        };
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(dir);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyLimits;

    fn key(models: Option<Vec<&str>>, team: Option<&str>) -> ApiKey {
        ApiKey {
            id: "key_1".into(),
            name: "k".into(),
            account: "acme".into(),
            models: models.map(|m| m.into_iter().map(str::to_owned).collect()),
            prefix: "sk-anyint-abc".into(),
            key_hash: String::new(),
            created_at: 0,
            revoked_at: None,
            limits: KeyLimits::default(),
            team: team.map(str::to_owned),
        }
    }

    fn dir() -> Directory {
        let mut d = Directory::default();
        d.plans.insert(
            "pro".into(),
            PlanSpec {
                models: Some(vec!["a".into(), "b".into(), "c".into()]),
                rpm: Some(100),
                ..PlanSpec::default()
            },
        );
        d.accounts.insert(
            "acme".into(),
            AccountSpec {
                name: None,
                plan: Some("pro".into()),
            },
        );
        d.teams.insert(
            "t1".into(),
            TeamSpec {
                account: "acme".into(),
                models: Some(vec!["a".into(), "b".into(), "z".into()]),
                concurrency: Some(2),
                ..TeamSpec::default()
            },
        );
        d
    }

    #[test]
    fn entitlement_is_the_intersection_of_plan_team_and_key() {
        let d = dir();
        // The matrix: every level can refuse, and names itself.
        let cases = [
            (key(None, None), "a", Ok(())),
            (key(None, None), "z", Err(Denial::Plan("pro".into()))),
            (key(None, None), "d", Err(Denial::Plan("pro".into()))),
            (key(None, Some("t1")), "c", Err(Denial::Team("t1".into()))),
            (key(None, Some("t1")), "z", Err(Denial::Plan("pro".into()))),
            (key(None, Some("t1")), "b", Ok(())),
            (key(Some(vec!["a"]), Some("t1")), "b", Err(Denial::Key)),
            (key(Some(vec!["a"]), Some("t1")), "a", Ok(())),
        ];
        for (k, model, expected) in cases {
            assert_eq!(
                d.check_model(&k, model),
                expected,
                "{model} for {:?}/{:?}",
                k.models,
                k.team
            );
        }
        // Without an account row, only the key restricts.
        let mut lone = key(None, None);
        lone.account = "other".into();
        assert_eq!(d.check_model(&lone, "z"), Ok(()));
    }

    #[test]
    fn scopes_cover_every_level_that_sets_a_limit() {
        let d = dir();
        let mut k = key(None, Some("t1"));
        k.limits.rpm = Some(5);
        let scopes = d.scopes(&k);
        let ids: Vec<&str> = scopes.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["key:key_1", "team:t1", "account:acme"]);
        // How refusals name each level.
        let labels: Vec<String> = scopes.iter().map(|s| s.label.to_string()).collect();
        assert_eq!(
            labels,
            [
                format!("key {}", k.prefix),
                "team t1".to_owned(),
                "account acme (plan pro)".to_owned()
            ]
        );
        let plain = key(None, None);
        assert_eq!(d.scopes(&plain).len(), 1, "only the plan's account scope");
    }
}
