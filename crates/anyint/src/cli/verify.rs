//! `anyint verify`: the customer integration checklist as one command, against any anyint
//! deployment (your own, staging, or `serve --demo`).
//!
//! Each check prints one line: PASS, FAIL or SKIP, its duration, and a reason; a failure adds
//! what to fix in the terms of the error tables (which header, which model, back off…). A check
//! whose prerequisite failed is skipped rather than failed again, so one fault shows as one
//! failing check. The key comes only from `ANYINT_API_KEY` and is printed only as its prefix.
//!
//! Checks, in order (`--only` takes these names): `key`, `models`, `chat`, `stream`,
//! `anthropic`, `gemini`, `task`, `callback`, `errors`, `limits`.

mod checks;
mod tasks;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The names `--only` accepts, in run order.
pub const CHECKS: &[&str] = &[
    "key",
    "models",
    "chat",
    "stream",
    "anthropic",
    "gemini",
    "task",
    "callback",
    "errors",
    "limits",
];

/// `anyint verify` arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The deployment's base URL.
    #[arg(
        long,
        value_name = "URL",
        env = "ANYINT_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// Chat model for the minimal and streaming requests (default: the first chat model listed).
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// A second model that must also be listed (default: the second chat model listed).
    #[arg(long, value_name = "ID")]
    pub fallback_model: Option<String>,
    /// Model for the Anthropic-native check (default: an Anthropic-owned chat model, else --model).
    #[arg(long, value_name = "ID")]
    pub anthropic_model: Option<String>,
    /// Model for the Gemini-native check (default: a Google-owned chat model, else --model).
    #[arg(long, value_name = "ID")]
    pub gemini_model: Option<String>,
    /// DashScope video model for the task check (default: the first one listed).
    #[arg(long, value_name = "ID")]
    pub video_model: Option<String>,
    /// Music model for the callback check (default: the first one listed; else the video model).
    #[arg(long, value_name = "ID")]
    pub music_model: Option<String>,
    /// A model this key must NOT be allowed to use, to check the 403.
    #[arg(long, value_name = "ID")]
    pub unentitled_model: Option<String>,
    /// Where the callback receiver listens; the deployment must be able to reach it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub callback_listen: SocketAddr,
    /// The URL the deployment should call to reach the receiver (e.g. an https tunnel to
    /// --callback-listen); default: http://<listen address>.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Run only these checks (comma-separated names; `key` always runs).
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also hit a rate limit to check the 429 envelope and Retry-After (sends many requests).
    #[arg(long)]
    pub include_limits: bool,
    /// Longest wait, in seconds, for a task to finish and for a callback to arrive.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Machine-readable results on stdout.
    #[arg(long)]
    pub json: bool,
    /// Refused: a key on the command line lands in shell history.
    #[arg(long, hide = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Refused, like --api-key.
    #[arg(long, hide = true, value_name = "KEY")]
    pub key: Option<String>,
}

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It held.
    Pass,
    /// It did not; the result says what to fix.
    Fail,
    /// It was not run; the result says why.
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// What a check found.
#[derive(Clone, Debug)]
pub struct Found {
    /// The verdict.
    pub status: Status,
    /// One line: what was seen.
    pub reason: String,
    /// For failures: what to change.
    pub fix: Option<String>,
}

impl Found {
    /// A pass.
    pub fn pass(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Pass,
            reason: reason.into(),
            fix: None,
        }
    }

    /// A failure and its fix.
    pub fn fail(reason: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            reason: reason.into(),
            fix: Some(fix.into()),
        }
    }

    /// A skip.
    pub fn skip(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Skip,
            reason: reason.into(),
            fix: None,
        }
    }
}

/// One printed result.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// Check name.
    pub name: &'static str,
    /// What it found.
    pub found: Found,
    /// How long it took.
    pub duration: Duration,
}

/// A model as listed by `/openai/v1/models`.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its ID.
    pub id: String,
    /// `owned_by`.
    pub owned_by: String,
    /// anyint's `api` field (`chat` when absent).
    pub api: String,
}

/// What the checks share.
pub struct Ctx {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Base URL without a trailing slash.
    pub base: String,
    /// The key (never printed).
    pub key: String,
    /// The arguments.
    pub args: VerifyArgs,
    /// Models the key may use (filled by the key check).
    pub models: Vec<Listed>,
    /// Results so far.
    pub results: Vec<CheckResult>,
    /// Whether progress lines go to the terminal.
    pub progress: bool,
}

impl Ctx {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `req` with the key as `Authorization: Bearer`.
    pub fn bearer(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.key),
        )
    }

    /// An authenticated GET of `path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.bearer(self.http.get(self.url(path)))
    }

    /// A POST of `body` as JSON to `path`, without credentials (each family adds its own).
    pub fn post_json(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// The status of an earlier check.
    pub fn status(&self, name: &str) -> Option<Status> {
        self.results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.found.status)
    }

    fn listed(&self, id: &str) -> bool {
        self.models.iter().any(|m| m.id == id)
    }

    /// The first listed model of `api`, preferring one owned by `owner`.
    fn first(&self, api: &str, owner: Option<&str>) -> Option<String> {
        let of_api = || self.models.iter().filter(|m| m.api == api);
        owner
            .and_then(|o| of_api().find(|m| m.owned_by == o))
            .or_else(|| of_api().next())
            .map(|m| m.id.clone())
    }

    /// The chat model: `--model` or the first chat model.
    pub fn model(&self) -> Option<String> {
        self.args.model.clone().or_else(|| self.first("chat", None))
    }

    /// The fallback model: `--fallback-model` or the second chat model.
    pub fn fallback_model(&self) -> Option<String> {
        self.args.fallback_model.clone().or_else(|| {
            self.models
                .iter()
                .filter(|m| m.api == "chat")
                .nth(1)
                .map(|m| m.id.clone())
        })
    }

    /// The Anthropic-native check's model.
    pub fn anthropic_model(&self) -> Option<String> {
        self.args
            .anthropic_model
            .clone()
            .or_else(|| self.first("chat", Some("anthropic")))
    }

    /// The Gemini-native check's model.
    pub fn gemini_model(&self) -> Option<String> {
        self.args
            .gemini_model
            .clone()
            .or_else(|| self.first("chat", Some("google")))
    }

    /// The task check's model.
    pub fn video_model(&self) -> Option<String> {
        self.args
            .video_model
            .clone()
            .or_else(|| self.first("dashscope", None))
    }

    /// The callback check's model and whether it is a music model.
    pub fn callback_model(&self) -> Option<(String, bool)> {
        if let Some(m) = &self.args.music_model {
            return Some((m.clone(), true));
        }
        self.first("music", None)
            .map(|m| (m, true))
            .or_else(|| self.video_model().map(|m| (m, false)))
    }

    /// A skip when `model` is unset or not listed for this key (the models check reports it).
    pub fn unavailable(&self, model: Option<&str>, flag: &str) -> Option<Found> {
        match model {
            None => Some(Found::skip(format!(
                "no suitable model is available to this key (pass {flag})"
            ))),
            Some(m) if !self.listed(m) => Some(Found::skip(format!(
                "model `{m}` is not available to this key (see the models check)"
            ))),
            Some(_) => None,
        }
    }

    /// Every listed ID, for suggestions.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|m| m.id.as_str())
    }
}

/// A response read whole: status, headers, parsed JSON (Null when not JSON) and raw text.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Parsed JSON body, or Null.
    pub json: Value,
}

/// Sends a request and reads the whole answer; a transport failure becomes the advice to give.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Answer, Found> {
    let resp = req.send().await.map_err(|e| transport(&e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| transport(&e))?;
    Ok(Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// The failure for a request that got no answer.
pub fn transport(e: &reqwest::Error) -> Found {
    let what = crate::providers::http::describe(e);
    Found::fail(
        format!("no answer from the deployment: {what}"),
        "check --base-url (or ANYINT_BASE_URL) and that the gateway is running and reachable",
    )
}

/// The error message of any family's envelope.
pub fn error_message(json: &Value) -> String {
    json.pointer("/error/message")
        .or_else(|| json.get("message"))
        .or_else(|| json.get("msg"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned()
}

/// The error code of any family's envelope.
pub fn error_code(json: &Value) -> String {
    json.pointer("/error/code")
        .or_else(|| json.pointer("/error/status"))
        .or_else(|| json.get("code"))
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
        .unwrap_or_default()
}

/// A failure for an error answer, with the fix its status calls for.
pub fn failure(what: &str, a: &Answer, model: Option<&str>) -> Found {
    let msg = error_message(&a.json);
    let code = error_code(&a.json);
    let model = model.unwrap_or("the model");
    let retry_after = a
        .headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    let fix = match a.status {
        400 => format!("the gateway refused the request shape ({code}): {msg}; fix the request"),
        401 => "the key was refused (401): check ANYINT_API_KEY is a current key of this deployment (it may be revoked or expired) and sent in the header the route expects".to_owned(),
        403 => format!("this key may not use `{model}` (403 {code}): ask the operator to enable it, or pick a model from GET /openai/v1/models"),
        404 => format!("`{model}` does not exist on this deployment (404 {code}): pick a model from GET /openai/v1/models"),
        429 if code.contains("insufficient_quota") => "a monthly credit cap is used up (429 insufficient_quota): wait for the reset the message names, or ask the operator to raise it".to_owned(),
        429 => format!("rate limited (429, Retry-After {retry_after} s): back off and retry after the delay, or ask for a higher limit"),
        500..=599 => format!("the deployment or its upstream for `{model}` is failing ({} {code}): clients should retry with backoff; if it persists, the operator must check the provider", a.status),
        s => format!("unexpected HTTP {s} ({code}): {msg}"),
    };
    Found::fail(
        format!("{what} answered HTTP {} {code}: {msg}", a.status),
        fix,
    )
}

/// The key as it may be printed: an anyint key's visible prefix, or only the first four
/// characters of anything else (another vendor's key could be short).
pub fn redacted(key: &str) -> String {
    if key.starts_with(crate::auth::KEY_PREFIX) {
        crate::auth::visible_prefix(key)
    } else {
        key.chars().take(4).collect()
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The listed ID closest to `id`.
pub fn closest<'a>(id: &str, ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    ids.min_by_key(|c| distance(&id.to_lowercase(), &c.to_lowercase()))
}

/// Runs the checklist; `Err` when a check failed (the exit code is then non-zero).
pub async fn run(args: VerifyArgs) -> Result<(), String> {
    if args.api_key.is_some() || args.key.is_some() {
        return Err("refusing to take a key on the command line: it would land in your shell history. Export it instead: export ANYINT_API_KEY=sk-anyint-…".into());
    }
    if let Some(bad) = args.only.iter().find(|c| !CHECKS.contains(&c.as_str())) {
        return Err(format!(
            "--only: unknown check `{bad}`; the checks are {}",
            CHECKS.join(", ")
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("anyint-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let json = args.json;
    let mut ctx = Ctx {
        http,
        base: args.base_url.trim_end_matches('/').to_owned(),
        key: std::env::var("ANYINT_API_KEY").unwrap_or_default(),
        progress: !json && std::io::stderr().is_terminal(),
        args,
        models: Vec::new(),
        results: Vec::new(),
    };
    let colour = !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !json {
        println!("anyint verify → {} (key {}…)", ctx.base, redacted(&ctx.key));
    }
    for &name in CHECKS {
        if name != "key" && !ctx.args.only.is_empty() && !ctx.args.only.iter().any(|c| c == name) {
            continue;
        }
        let started = Instant::now();
        let found = if name != "key" && ctx.status("key") != Some(Status::Pass) {
            Found::skip("skipped: the key check failed")
        } else {
            run_check(&mut ctx, name).await
        };
        let result = CheckResult {
            name,
            found,
            duration: started.elapsed(),
        };
        if !json {
            print_line(&result, colour);
        }
        ctx.results.push(result);
    }
    let count = |s: Status| ctx.results.iter().filter(|r| r.found.status == s).count();
    let (passed, failed, skipped) = (
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
    );
    if json {
        println!("{}", report_json(&ctx, passed, failed, skipped));
    } else {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    if failed > 0 {
        Err(format!("{failed} check(s) failed"))
    } else {
        Ok(())
    }
}

async fn run_check(ctx: &mut Ctx, name: &str) -> Found {
    match name {
        "key" => checks::key(ctx).await,
        "models" => checks::models(ctx),
        "chat" => checks::chat(ctx).await,
        "stream" => checks::stream(ctx).await,
        "anthropic" => checks::anthropic(ctx).await,
        "gemini" => checks::gemini(ctx).await,
        "task" => tasks::task(ctx).await,
        "callback" => tasks::callback(ctx).await,
        "errors" => checks::errors(ctx).await,
        _ => checks::limits(ctx).await,
    }
}

fn print_line(r: &CheckResult, colour: bool) {
    let (word, code) = match r.found.status {
        Status::Pass => ("PASS", "32"),
        Status::Fail => ("FAIL", "31"),
        Status::Skip => ("SKIP", "33"),
    };
    let word = if colour {
        format!("\x1b[1;{code}m{word}\x1b[0m")
    } else {
        word.to_owned()
    };
    let took = if r.duration < Duration::from_secs(1) {
        format!("{} ms", r.duration.as_millis())
    } else {
        format!("{:.1} s", r.duration.as_secs_f64())
    };
    println!("{word}  {:<10} {took:>8}  {}", r.name, r.found.reason);
    if let Some(fix) = &r.found.fix {
        println!("{:27}fix: {fix}", "");
    }
}

fn report_json(ctx: &Ctx, passed: usize, failed: usize, skipped: usize) -> Value {
    let checks: Vec<Value> = ctx
        .results
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "status": r.found.status.as_str(),
                "duration_ms": u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                "reason": r.found.reason,
                "fix": r.found.fix,
            })
        })
        .collect();
    json!({
        "base_url": ctx.base,
        "key_prefix": redacted(&ctx.key),
        "ok": failed == 0,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "checks": checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_id_is_suggested() {
        let ids = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"];
        assert_eq!(closest("gpt-4o-mni", ids.into_iter()), Some("gpt-4o-mini"));
        assert_eq!(
            closest("claude-sonet", ids.into_iter()),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
