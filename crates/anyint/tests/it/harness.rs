//! `TestGateway`: starts an emulator and a gateway for one test, each on its own port, with
//! its own store, so tests run in parallel without shared state.

use std::sync::Arc;

use anyint::config::Config;
use anyint::server::Running;
use anyint::store::{Store, UsageQuery, UsageRecord};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const UPSTREAM_KEY: &str = "test-upstream-key";
pub const ADMIN_TOKEN: &str = "test-admin-token-123";
/// The value of `ANYINT_TEST_METRICS_TOKEN`, for `[server] metrics_token_env` tests.
pub const METRICS_TOKEN: &str = "test-metrics-token-456";

/// Where a test's store lives.
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestGateway {
    pub gw: Option<Running>,
    pub base: String,
    pub emulator: String,
    pub key: String,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    _emulator_stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

pub struct Builder {
    backend: Backend,
    admin: bool,
    max_body: Option<usize>,
    store_url: Option<String>,
    extra: String,
    server_extra: String,
    upstream: Option<String>,
}

impl Builder {
    /// Postgres at `url`, shared with another gateway.
    pub fn shared_postgres(mut self, url: &str) -> Self {
        self.backend = Backend::Postgres;
        self.store_url = Some(url.to_owned());
        self
    }

    /// SQLite at `url` (kept across gateways, for restart tests).
    pub fn store_url(mut self, url: &str) -> Self {
        self.store_url = Some(url.to_owned());
        self
    }

    pub fn postgres(mut self) -> Self {
        self.backend = Backend::Postgres;
        self
    }
    pub fn no_admin(mut self) -> Self {
        self.admin = false;
        self
    }
    /// Extra TOML appended to the config; `{emulator}` becomes the emulator's base URL.
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self
    }

    /// Extra lines for the `[server]` table.
    pub fn server(mut self, lines: &str) -> Self {
        self.server_extra.push_str(lines);
        self.server_extra.push('\n');
        self
    }

    /// Uses an emulator already running at `url` (another gateway's) instead of a new one.
    pub fn upstream(mut self, url: &str) -> Self {
        self.upstream = Some(url.to_owned());
        self
    }

    pub fn max_body(mut self, n: usize) -> Self {
        self.max_body = Some(n);
        self
    }

    pub async fn start(self) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let emulator = if let Some(url) = self.upstream.clone() {
            url
        } else {
            let emulator_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let emulator_addr = emulator_listener.local_addr().unwrap();
            tokio::spawn(anyint_emulator::serve(
                emulator_listener,
                anyint_emulator::Options {
                    api_key: Some(UPSTREAM_KEY.into()),
                },
                async move {
                    let _ = stopped.await;
                },
            ));
            format!("http://{emulator_addr}")
        };
        let store_url = match self.backend {
            Backend::Sqlite => self
                .store_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}/anyint.db", dir.path().display())),
            Backend::Postgres => match self.store_url.clone() {
                Some(url) => url,
                None => fresh_pg_schema().await,
            },
        };
        // Each gateway journals into its own directory, so no test replays another's rows.
        let journal = dir.path().join("journal");
        let text = config_text(&emulator, &store_url, self.max_body)
            .replacen(
                "[meter]\n",
                &format!("[meter]\njournal_dir = \"{}\"\n", journal.display()),
                1,
            )
            .replacen("[server]\n", &format!("[server]\n{}", self.server_extra), 1)
            + &self.extra.replace("{emulator}", &emulator);
        let admin = self.admin;
        let env = move |name: &str| match name {
            "ANYINT_ADMIN_TOKEN" if admin => Some(ADMIN_TOKEN.to_owned()),
            "ANYINT_TEST_METRICS_TOKEN" => Some(METRICS_TOKEN.to_owned()),
            _ => None,
        };
        let config = Config::parse(&text, "test.toml", &env).unwrap();
        let store = anyint::store::open(&config.store_url).await.unwrap();
        let (_, key) = anyint::auth::issue_key(
            store.as_ref(),
            "test",
            "acct",
            None,
            anyint::store::KeyLimits::default(),
        )
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = anyint::server::start_with_store(config, store.clone(), listener)
            .await
            .unwrap();
        let base = format!("http://{}", gw.addr);
        TestGateway {
            gw: Some(gw),
            base,
            emulator,
            key,
            store,
            http: reqwest::Client::new(),
            _emulator_stop: stop,
            _dir: dir,
        }
    }
}

fn config_text(emulator: &str, store_url: &str, max_body: Option<usize>) -> String {
    let max_body = max_body
        .map(|n| format!("max_body_bytes = {n}\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{max_body}
[store]
url = "{store_url}"

[meter]
flush_interval_ms = 20
# Tests write rows with fixed, old timestamps; a gateway's retention upkeep would remove them
# under the test (retention has its own tests, calling the store's upkeep directly).
retention_days = 0

[routing]
max_attempts = 3
retry_budget_ms = 3000
backoff_base_ms = 5
backoff_max_ms = 50

[[providers]]
name = "emu"
kind = "openai"
base_url = "{emulator}/v1"
api_key = "{UPSTREAM_KEY}"

[[providers]]
name = "emu-anthropic"
kind = "anthropic"
base_url = "{emulator}"
api_key = "{UPSTREAM_KEY}"

[[providers]]
name = "emu-gemini"
kind = "gemini"
base_url = "{emulator}/v1beta"
api_key = "{UPSTREAM_KEY}"

[[providers]]
name = "dead"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "unused"
connect_timeout_ms = 2000

[[models]]
id = "gpt-4o-mini"
display_name = "GPT-4o mini"
owned_by = "openai"
routes = [{{ provider = "emu", upstream_model = "gpt-4o-mini" }}]

[[models]]
id = "gpt-4o"
price = {{ input = 2500000, output = 10000000, cache_read = 1250000 }}
routes = [{{ provider = "emu", upstream_model = "gpt-4o" }}]

[[models]]
id = "alias-model"
routes = [{{ provider = "emu", upstream_model = "gpt-4.1" }}]

[[models]]
id = "unreachable"
routes = [{{ provider = "dead", upstream_model = "gpt-4o" }}]

[[models]]
id = "claude"
routes = [{{ provider = "emu-anthropic", upstream_model = "claude-sonnet-4-5" }}]

[[models]]
id = "gemini"
routes = [{{ provider = "emu-gemini", upstream_model = "gemini-2.5-flash" }}]

[[models]]
id = "failover"
routes = [{{ provider = "dead", upstream_model = "gpt-4o" }}, {{ provider = "emu", upstream_model = "gpt-4o" }}]
"#
    )
}

/// A new schema in the `test` database, returned as a store URL that uses it.
pub async fn fresh_pg_schema() -> String {
    use sqlx::Connection;
    let base = std::env::var("ANYINT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("t_{}", hex::encode(anyint::auth::random_bytes::<6>()));
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("postgres at 127.0.0.1:5432 (database test) is required for pg_ tests");
    sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

impl TestGateway {
    pub fn builder() -> Builder {
        Builder {
            backend: Backend::Sqlite,
            admin: true,
            max_body: None,
            store_url: None,
            extra: String::new(),
            server_extra: String::new(),
            upstream: None,
        }
    }

    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(&self.key)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.key)
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// The body of `GET path` as text.
    pub async fn text_of(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.post("/openai/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// How many requests the emulator counted under `tag` (a `tag=` fault key).
    pub async fn emulator_count(&self, tag: &str) -> u64 {
        let v = self.emulator_get(&format!("counts/{tag}")).await;
        v["count"].as_u64().unwrap()
    }

    /// The last request the emulator received under `tag`: `{"headers": {...}, "body": ...}`.
    pub async fn upstream_request(&self, tag: &str) -> serde_json::Value {
        self.emulator_get(&format!("last/{tag}")).await
    }

    async fn emulator_get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}/_emulator/{path}", self.emulator))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A key of another account (`another-account`), active at once.
    pub async fn key_for_other_account(&self) -> String {
        let (_, key) = anyint::auth::issue_key(
            self.store.as_ref(),
            "other",
            "another-account",
            None,
            anyint::store::KeyLimits::default(),
        )
        .await
        .unwrap();
        self.gw.as_ref().unwrap().state.keys.reload().await.unwrap();
        key
    }

    /// Ledger rows after everything answered so far is written.
    pub async fn usage(&self, request_id: &str) -> Vec<UsageRecord> {
        self.gw.as_ref().unwrap().state.meter.flush().await;
        self.store
            .usage(&UsageQuery {
                request_id: Some(request_id.to_owned()),
                limit: 10,
                ..UsageQuery::default()
            })
            .await
            .unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

pub fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

pub fn user(text: &str) -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": text}])
}

/// A log sink for a test's own subscriber.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The serving threads' names (`anyint-worker-N`) of process `pid` ("self": this test
/// process), sorted.
#[cfg(target_os = "linux")]
pub fn worker_threads(pid: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .filter(|n| n.starts_with("anyint-worker-"))
        .collect();
    names.sort();
    names
}
