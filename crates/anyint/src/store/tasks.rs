//! Async tasks and their callback outbox, as the rest of the gateway sees them: the task and
//! delivery types and the [`TaskStore`] trait. The SQL behind the trait, with the guarantees it
//! keeps (one poller at a time, charge exactly once), is in `tasks_sql.rs`.

use async_trait::async_trait;
use serde::Serialize;

use super::{Error, UsageRecord};

/// Where a task is in its life. `Submitting` is the short window before the upstream accepted
/// it; a task stuck there (a crash mid-create) is failed and refunded by the poller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Being created upstream.
    Submitting,
    /// Accepted, queued upstream.
    Pending,
    /// Running upstream (possibly with partial results).
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished without a result (upstream failure or timeout).
    Failed,
    /// Cancelled before it ran.
    Canceled,
}

impl TaskStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitting => "submitting",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "submitting" => Self::Submitting,
            "pending" => Self::Pending,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    /// Whether the task is finished (and its charge settled).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// One async task as stored. Its ID is the gateway's own; the upstream ID never leaves.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Task {
    /// Gateway-issued opaque ID.
    pub id: String,
    /// Client family: `dashscope` or `music`.
    pub family: String,
    /// `video`, `image` or `song`.
    pub kind: String,
    /// Owner account.
    pub account: String,
    /// Key that created it.
    pub key_id: String,
    /// The key's team.
    pub team: Option<String>,
    /// Public model ID.
    pub model: String,
    /// Provider name (empty while submitting).
    pub provider: String,
    /// Model ID sent upstream.
    pub upstream_model: String,
    /// The upstream's task ID (never shown to clients).
    #[serde(skip)]
    pub upstream_id: Option<String>,
    /// Which of the provider's keys created it: polls and cancels use the same key, since a
    /// task exists only in the upstream account that created it.
    #[serde(skip)]
    pub key_slot: i64,
    /// Gateway status.
    pub status: TaskStatus,
    /// The family's own status word (`RUNNING`, `TEXT_SUCCESS`…).
    pub native_status: String,
    /// Monotonic progress rank: an update never moves a task back.
    pub stage: i64,
    /// The client's request as sent upstream, minus credentials.
    pub request: serde_json::Value,
    /// The latest upstream view of the result, in the family's shape.
    pub result: Option<serde_json::Value>,
    /// Failure code, when failed.
    pub error_code: Option<String>,
    /// Failure message, when failed.
    pub error_message: Option<String>,
    /// Where state changes are delivered, when the client asked.
    pub callback_url: Option<String>,
    /// SHA-256 of the token in the gateway URL the upstream calls back.
    #[serde(skip)]
    pub callback_token_hash: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the create body, to tell a replay from a conflicting reuse.
    #[serde(skip)]
    pub request_hash: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms of the last state change.
    pub updated_at_ms: i64,
    /// Unix ms of the last upstream observation.
    pub refreshed_at_ms: i64,
    /// Unix ms when it reached a terminal state.
    pub finished_at_ms: Option<i64>,
    /// Unix ms after which an unfinished task fails with a timeout.
    pub deadline_ms: i64,
    /// Unix ms of the next background poll.
    pub next_poll_ms: i64,
    /// Upstream polls so far.
    pub polls: i64,
    /// Credit held from creation until settlement, micro-units.
    pub reserved_micros: i64,
    /// Credit finally charged, once settled.
    pub charged_micros: Option<i64>,
    /// Whether the charge is settled (exactly once).
    pub settled: bool,
}

/// Where the upstream accepted a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// Provider name.
    pub provider: String,
    /// Model ID sent upstream.
    pub upstream_model: String,
    /// The upstream's task ID.
    pub upstream_id: String,
    /// Which of the provider's keys created it.
    pub key_slot: i64,
}

/// A state change to apply to a task, with what must commit alongside it.
#[derive(Clone, Debug)]
pub struct TaskUpdate {
    /// The task.
    pub id: String,
    /// The lease the update is made under; `None` for upstream callbacks, which take no lease
    /// and rely on the stage guard instead.
    pub lease_owner: Option<String>,
    /// New status.
    pub status: TaskStatus,
    /// New native status word.
    pub native_status: String,
    /// New stage; updates with a lower stage than stored are refused.
    pub stage: i64,
    /// New result view.
    pub result: Option<serde_json::Value>,
    /// Failure code.
    pub error_code: Option<String>,
    /// Failure message.
    pub error_message: Option<String>,
    /// Unix ms now.
    pub now_ms: i64,
    /// Next background poll.
    pub next_poll_ms: i64,
    /// Polls so far.
    pub polls: i64,
    /// Whether the state changed (else only the poll bookkeeping is written).
    pub changed: bool,
    /// Outbox events for this change.
    pub events: Vec<NewDelivery>,
    /// The ledger row, when this update finishes the task.
    pub settlement: Option<UsageRecord>,
}

/// A new outbox event.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// Stable ID: the same change always has the same ID.
    pub event_id: String,
    /// The task.
    pub task_id: String,
    /// The task's account (whose secret signs it).
    pub account: String,
    /// Target URL.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Unix ms after which it is no longer retried.
    pub expires_at_ms: i64,
}

/// An outbox event with its delivery state.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Delivery {
    /// Stable event ID.
    pub event_id: String,
    /// The task.
    pub task_id: String,
    /// The task's account.
    pub account: String,
    /// Target URL.
    pub url: String,
    /// The JSON body.
    #[serde(skip)]
    pub body: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms of the next attempt, while pending.
    pub next_attempt_ms: i64,
    /// Unix ms after which it is marked dead.
    pub expires_at_ms: i64,
    /// Unix ms when acknowledged.
    pub delivered_at_ms: Option<i64>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One delivery attempt, for the delivery log.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1-based.
    pub attempt: i64,
    /// Unix ms.
    pub at_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    /// What went wrong, when it did.
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration_ms: i64,
}

/// What an attempt decided for its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryNext {
    /// Acknowledged with a 2xx.
    Delivered,
    /// Retry at this Unix ms.
    Retry(i64),
    /// Past its horizon: give up.
    Dead,
}

/// Unsettled credit held by tasks, per owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Key.
    pub key_id: String,
    /// Team.
    pub team: Option<String>,
    /// Account.
    pub account: String,
    /// Micro-units held.
    pub micros: i64,
}

/// Persistence for tasks, the outbox and signing secrets.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts a new task; `Ok(false)` when its `Idempotency-Key` is already taken.
    async fn insert_task(&self, task: &Task) -> Result<bool, Error>;
    /// Records the upstream's acceptance of a submitting task.
    async fn task_submitted(
        &self,
        id: &str,
        s: &Submitted,
        now_ms: i64,
        next_poll_ms: i64,
    ) -> Result<(), Error>;
    /// Deletes a task the upstream refused (so a failed create leaves nothing behind).
    async fn delete_task(&self, id: &str) -> Result<(), Error>;
    /// The task with this ID.
    async fn task(&self, id: &str) -> Result<Option<Task>, Error>;
    /// The account's task with this `Idempotency-Key`.
    async fn task_by_idempotency(&self, account: &str, key: &str) -> Result<Option<Task>, Error>;
    /// Forgets an expired `Idempotency-Key` so it can be used again.
    async fn clear_idempotency(&self, id: &str) -> Result<(), Error>;
    /// The task whose upstream-callback token hashes to `hash`.
    async fn task_by_callback_token(&self, hash: &str) -> Result<Option<Task>, Error>;
    /// Tasks, newest first, optionally of one account and in one status.
    async fn tasks(
        &self,
        account: Option<&str>,
        status: Option<TaskStatus>,
        limit: i64,
    ) -> Result<Vec<Task>, Error>;
    /// Leases up to `limit` unfinished tasks whose poll is due to `owner`.
    async fn claim_due_tasks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Task>, Error>;
    /// Leases one unfinished task to `owner` if nobody holds it.
    async fn claim_task(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, Error>;
    /// Applies an update atomically with its events and settlement; `Ok(false)` when the lease
    /// was lost, the task is already settled, or the update would move it back.
    async fn apply_task(&self, update: &TaskUpdate) -> Result<bool, Error>;
    /// Gives up `owner`'s lease on a task (after an update the store refused).
    async fn release_task(&self, id: &str, owner: &str) -> Result<(), Error>;
    /// Credit held by unsettled tasks.
    async fn task_reservations(&self) -> Result<Vec<Reservation>, Error>;
    /// Leases up to `limit` due deliveries to `owner`.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, Error>;
    /// Logs an attempt and moves the delivery on, if `owner` still holds it.
    async fn finish_attempt(
        &self,
        event_id: &str,
        owner: &str,
        attempt: &DeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<(), Error>;
    /// A task's deliveries with their attempt logs.
    async fn deliveries(
        &self,
        task_id: &str,
    ) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>, Error>;
    /// Puts a dead (or any undelivered) delivery back in the queue; `Ok(false)` if absent.
    async fn replay_delivery(
        &self,
        task_id: &str,
        event_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, Error>;
    /// The account's callback signing secret.
    async fn signing_secret(&self, account: &str) -> Result<Option<String>, Error>;
    /// Stores `secret` for the account (replacing the old one when `replace`) and returns the
    /// secret now in force.
    async fn put_signing_secret(
        &self,
        account: &str,
        secret: &str,
        now: i64,
        replace: bool,
    ) -> Result<String, Error>;
}
