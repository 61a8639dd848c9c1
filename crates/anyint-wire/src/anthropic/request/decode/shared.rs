//! What both the top level and the content blocks use: the client's `anthropic-version`, the
//! field error, and taking a field out of an object (a `null` value counts as absent).

use serde_json::{Map, Value};

use crate::DecodeError;

/// The first `anthropic-version` without sampling parameters. Versions are dates, so a plain
/// string comparison orders them.
const SAMPLING_REMOVED_IN: &str = "2026-10-21";

#[derive(Clone, Copy)]
pub(super) struct Version<'a>(pub(super) &'a str);

impl Version<'_> {
    pub(super) fn without_sampling(self) -> bool {
        self.0.trim() >= SAMPLING_REMOVED_IN
    }
}

pub(super) fn err(param: &'static str, msg: impl Into<String>) -> DecodeError {
    DecodeError::field(param, msg)
}

/// Removes `key`; a `null` value counts as absent.
pub(super) fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    obj.remove(key).filter(|v| !v.is_null())
}

pub(super) fn take_str(obj: &mut Map<String, Value>, key: &str) -> Option<Result<String, Value>> {
    take(obj, key).map(|v| match v {
        Value::String(s) => Ok(s),
        other => Err(other),
    })
}
