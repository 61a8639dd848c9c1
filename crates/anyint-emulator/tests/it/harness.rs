//! The one harness of the end-to-end tests: [`start`] runs an emulator on
//! its own loopback port with its own state (so tests run in parallel),
//! and [`Emu`] carries the request helpers the modules share. A module
//! adds its family's helpers in its own `impl Emu` block.

use anyint_emulator::{Options, serve};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

/// The bearer key of the OpenAI, DashScope and music requests.
pub(crate) const KEY: &str = "sk-test-key-123456";

/// One running emulator and a client for it.
pub(crate) struct Emu {
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

/// Serves an emulator with `opts` on a fresh loopback port until the test
/// ends.
pub(crate) async fn start(opts: Options) -> Emu {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, opts, std::future::pending()));
    Emu {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().build().unwrap(),
    }
}

/// [`start`] with an emulator that accepts only [`KEY`].
pub(crate) async fn start_locked() -> Emu {
    start(Options {
        api_key: Some(KEY.to_owned()),
    })
    .await
}

/// The status and JSON body of a response.
pub(crate) async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

impl Emu {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A POST with `Authorization: Bearer {KEY}`.
    pub(crate) fn bearer_post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(KEY)
    }

    /// A GET with `Authorization: Bearer {KEY}`.
    pub(crate) fn bearer_get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(KEY)
    }

    /// A GET without a key (the `/_emulator/*` endpoints): status and body.
    pub(crate) async fn admin(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// [`Emu::admin`] for an answer that must be 200: its body.
    pub(crate) async fn get_json(&self, path: &str) -> Value {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }
}
