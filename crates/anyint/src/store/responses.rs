//! The stored Responses API conversations (`store: true`, the API's default): each response
//! with the whole input it answered (history included) and its output, owned by an account and
//! kept until it expires or is deleted. `previous_response_id` continues from one; `GET`,
//! `DELETE` and `input_items` read it. Credentials are never part of what is stored.

use async_trait::async_trait;

use super::Error;

/// One stored response.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    /// The response ID the client saw (`resp_…`).
    pub id: String,
    /// The owning account: any other account's lookup finds nothing.
    pub account: String,
    /// The key that created it.
    pub key_id: String,
    /// The public model that answered.
    pub model: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// When it stops being readable (Unix milliseconds).
    pub expires_at_ms: i64,
    /// Every input item of the conversation up to this response, history included, each with
    /// an `id`.
    pub input: serde_json::Value,
    /// The response object as the client received it (its `output` included).
    pub response: serde_json::Value,
}

/// Storage of Responses API conversations.
#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Stores a response; a second write of the same ID replaces the first.
    async fn put_response(&self, r: &StoredResponse) -> Result<(), Error>;
    /// The response with this ID if it exists, has not expired at `now_ms`, and belongs to
    /// `account`.
    async fn response(
        &self,
        id: &str,
        account: &str,
        now_ms: i64,
    ) -> Result<Option<StoredResponse>, Error>;
    /// Deletes the account's response; `false` when there was none.
    async fn delete_response(&self, id: &str, account: &str) -> Result<bool, Error>;
    /// Removes up to `limit` responses expired at `now_ms`; returns how many.
    async fn purge_responses(&self, now_ms: i64, limit: i64) -> Result<u64, Error>;
}
