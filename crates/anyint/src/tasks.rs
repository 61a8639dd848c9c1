//! Async media tasks (DashScope video and image, music): creation, status refresh, charging
//! and the events that feed client callbacks. Families parse and render; this module owns the
//! life of a task:
//!
//! 1. [`create`]: entitlement, limits and quota; a `submitting` row with the reservation and
//!    the `Idempotency-Key` is stored *before* the upstream call, so two replays cannot create
//!    two upstream tasks; the upstream's refusal deletes the row (nothing is left behind).
//! 2. [`status`]: `refresh` (on a client poll of a stale task, and by [`poller`]), one
//!    instance at a time under a lease; `apply`: a state change, its outbox events and, on a
//!    terminal state, its one ledger row commit together (`store::TaskStore::apply_task`), so
//!    the charge settles exactly once; cancel; the upstream's own callbacks.
//! 3. [`outbox`] delivers the events, signed; [`callback`] guards callback URLs; [`render`]
//!    writes the families' task bodies (poll answers and callback bodies).
//!
//! This root holds what those steps share: the task family, the parsed create request, and
//! pricing.

pub mod callback;
pub mod create;
pub mod outbox;
pub mod poller;
pub mod render;
pub mod status;

use std::time::Duration;

use serde_json::Value;

use crate::config::{ModelApi, ModelConfig};
use crate::store::Task;

/// A task family: which client shape created the task and renders it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskFamily {
    /// `/dashscope/v1/…`.
    DashScope,
    /// `/music/v1/…`.
    Music,
}

impl TaskFamily {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DashScope => "dashscope",
            Self::Music => "music",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "music" {
            Self::Music
        } else {
            Self::DashScope
        }
    }

    fn api(self) -> ModelApi {
        match self {
            Self::DashScope => ModelApi::DashScope,
            Self::Music => ModelApi::Music,
        }
    }
}

/// A parsed create request, in the family's own shape.
pub struct NewTask {
    /// The family.
    pub family: TaskFamily,
    /// `video`, `image` or `song`.
    pub kind: &'static str,
    /// DashScope service path (`aigc/video-generation/video-synthesis`); empty for music.
    pub service: &'static str,
    /// Public model ID.
    pub model: String,
    /// The client's body, forwarded with `model` (and music's `callBackUrl`) replaced.
    pub body: serde_json::Map<String, Value>,
    /// The client's callback URL.
    pub callback_url: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Units reserved: seconds of video, images, or one song.
    pub units: u64,
}

/// A created (or replayed) task.
pub struct Created {
    /// The task.
    pub task: Task,
    /// Whether an `Idempotency-Key` replay returned an existing task.
    pub replayed: bool,
}

/// The price of `units` of `kind` on `model`, in micro-units.
fn unit_price(model: &ModelConfig, kind: &str) -> u64 {
    match kind {
        "video" => model.price.per_video_second,
        "image" => model.price.per_image,
        _ => model.price.per_song,
    }
}

fn cost(model: Option<&ModelConfig>, kind: &str, units: u64) -> i64 {
    model.map_or(0, |m| {
        i64::try_from(unit_price(m, kind).saturating_mul(units)).unwrap_or(i64::MAX)
    })
}

/// Hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
