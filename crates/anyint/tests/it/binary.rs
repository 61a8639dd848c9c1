//! The `anyint` binary as an operator runs it: config errors, the keys CLI, SIGTERM, logs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness::UPSTREAM_KEY;

/// The `anyint` binary, without the environment that would change its config.
pub fn anyint() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anyint"));
    c.env_remove("ANYINT_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("ANYINT_ADMIN_TOKEN");
    c
}

/// Starts an emulator for a gateway process to use, for the rest of the test; its base URL.
pub async fn emulator() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(anyint_emulator::serve(
        listener,
        anyint_emulator::Options {
            api_key: Some(UPSTREAM_KEY.into()),
        },
        std::future::pending(),
    ));
    emulator
}

/// Reads a starting `anyint serve`'s stdout until it says where it listens; its base URL.
pub async fn listening(stdout: std::process::ChildStdout) -> String {
    let mut stdout = BufReader::new(stdout);
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "gateway exited before listening"
            );
            if let Some(url) = line.trim().strip_prefix("anyint listening on ") {
                return url.to_owned();
            }
        }
    })
    .await
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn config(dir: &Path, emulator: &str, extra_server: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{extra_server}\n[store]\nurl = \"sqlite://{}/gw.db\"\n\n\
         [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{emulator}/v1\"\napi_key_env = \"UPSTREAM_SECRET\"\n\n\
         [[models]]\nid = \"gpt-4o-mini\"\nroutes = [{{ provider = \"emu\", upstream_model = \"gpt-4o-mini\" }}]\n",
        dir.display()
    )
}

#[test]
fn bad_config_exits_nonzero_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[server]\nlisten = \"127.0.0.1:0\"\nlisen = 1\n", "lisen"),
        (
            "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"ftp://x\"\napi_key = \"k\"\n",
            "providers[0].base_url",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"nope\"\nbase_url = \"http://x\"\napi_key = \"k\"\n",
            "nope",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.toml"), text);
        let out = anyint()
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad{i}.toml")) && err.contains(needle),
            "{err}"
        );
    }
}

#[test]
fn missing_secret_env_var_is_named_and_set_secrets_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &config(dir.path(), "http://127.0.0.1:1", ""),
    );
    let out = anyint()
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("UPSTREAM_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UPSTREAM_SECRET") && err.contains("providers[0].api_key_env"),
        "{err}"
    );

    // The secret is set but another field is wrong: the error must not show the secret.
    let text = config(dir.path(), "http://127.0.0.1:1", "")
        .replace("provider = \"emu\"", "provider = \"missing\"");
    let path = write(dir.path(), "c2.toml", &text);
    let out = anyint()
        .args(["serve", "--config"])
        .arg(&path)
        .env("UPSTREAM_SECRET", "sk-live-very-secret-42")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("models[0].routes[0].provider"), "{all}");
    assert!(!all.contains("sk-live-very-secret-42"));
}

#[test]
fn keys_cli_creates_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &config(dir.path(), "http://127.0.0.1:1", ""),
    );
    let run = |args: &[&str]| {
        let out = anyint()
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("UPSTREAM_SECRET", "x")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&run(&[
        "keys",
        "create",
        "--name",
        "cli",
        "--account",
        "acme",
        "--models",
        "gpt-4o-mini",
        "--json",
    ]))
    .unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("sk-anyint-"));
    assert_eq!(created["models"], json!(["gpt-4o-mini"]));
    let list = run(&["keys", "list", "--json"]);
    assert!(list.contains(created["id"].as_str().unwrap()));
    assert!(!list.contains(key), "key leaked in list");
    let table = run(&["keys", "list"]);
    assert!(table.contains("active"));
    run(&["keys", "revoke", created["id"].as_str().unwrap()]);
    assert!(run(&["keys", "list"]).contains("revoked"));
    let out = anyint()
        .args([
            "keys", "create", "--name", "x", "--models", "nope", "--config",
        ])
        .arg(&path)
        .env("UPSTREAM_SECRET", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_hold_no_keys_or_prompts_and_sigterm_flushes_usage() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator().await;
    // A long flush interval: rows reach the store only through the shutdown flush.
    let text = config(
        dir.path(),
        &emulator,
        "log_level = \"trace\"\nlog_format = \"json\"\n",
    ) + "\n[meter]\nflush_interval_ms = 600000\nbatch_size = 5000\n";
    let path = write(dir.path(), "c.toml", &text);

    // Issue a key with the CLI, as an operator would.
    let out = anyint()
        .args(["keys", "create", "--name", "log", "--json", "--config"])
        .arg(&path)
        .env("UPSTREAM_SECRET", UPSTREAM_KEY)
        .output()
        .unwrap();
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut child = anyint()
        .args(["serve", "--config"])
        .arg(&path)
        .env("UPSTREAM_SECRET", UPSTREAM_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let base = listening(stdout).await;

    let prompt = "Reply with exactly: PROMPT-canary-7f3a9";
    let http = reqwest::Client::new();
    let chat = |stream: bool| {
        http.post(format!("{base}/openai/v1/chat/completions")).bearer_auth(&key).json(&json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": prompt}]}))
    };
    let a = chat(false).send().await.unwrap();
    assert_eq!(a.status(), 200);
    let rid = a.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(a.text().await.unwrap().contains("PROMPT-canary-7f3a9"));
    let b = chat(true).send().await.unwrap().text().await.unwrap();
    assert!(b.contains("[DONE]"));
    let bad_key = "sk-anyint-WRONGcanaryKEY0000000000000000000000000";
    let c = http
        .get(format!("{base}/openai/v1/models"))
        .bearer_auth(bad_key)
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 401);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let logs = stderr_reader.join().unwrap();

    assert!(logs.contains(&rid), "request lines are logged: {logs}");
    for secret in [
        key.as_str(),
        &key[10..],
        "PROMPT-canary-7f3a9",
        bad_key,
        UPSTREAM_KEY,
    ] {
        assert!(
            !logs.contains(secret),
            "secret `{secret}` appeared in the logs"
        );
    }

    // The shutdown flush wrote both requests' rows.
    let store = anyint::store::open(&format!("sqlite://{}/gw.db", dir.path().display()))
        .await
        .unwrap();
    let rows = store
        .usage(&anyint::store::UsageQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.completion_tokens > 0 && r.status == 200)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_streams_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator().await;
    let path = write(dir.path(), "c.toml", &config(dir.path(), &emulator, ""));
    let out = anyint()
        .args(["keys", "create", "--name", "drain", "--json", "--config"])
        .arg(&path)
        .env("UPSTREAM_SECRET", UPSTREAM_KEY)
        .output()
        .unwrap();
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = anyint()
        .args(["serve", "--config"])
        .arg(&path)
        .env("UPSTREAM_SECRET", UPSTREAM_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = listening(child.stdout.take().unwrap()).await;
    #[cfg(target_os = "linux")]
    {
        // The process runs with transparent huge pages off (where the kernel reports it), and
        // serves on its worker threads.
        let pid = child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
        }
        // Where the kernel gives huge pages only to memory that asks for them, none is
        // resident: the allocator's arena, reserved before `main`, does not ask.
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"));
        if let (Ok(mode), Ok(rollup)) = (mode, rollup)
            && mode.contains("[madvise]")
        {
            let huge = rollup.lines().find(|l| l.starts_with("AnonHugePages:"));
            assert_eq!(
                huge.and_then(|l| l.split_whitespace().nth(1)),
                Some("0"),
                "{huge:?}"
            );
        }
        let threads = crate::harness::worker_threads(&pid.to_string());
        assert!(
            threads.iter().any(|t| t == "anyint-worker-1"),
            "{threads:?}"
        );
    }

    let words = "w ".repeat(30);
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": format!("Reply with exactly: {words}[emulate: chunk_delay_ms=20]")}]});
    let mut resp = reqwest::Client::new()
        .post(format!("{base}/openai/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut received = resp.chunk().await.unwrap().unwrap().to_vec();
    // The stream is in flight: ask the gateway to stop.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    while let Some(chunk) = resp.chunk().await.unwrap() {
        received.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(received).unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the in-flight stream was cut: {text}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}

#[test]
fn cli_manages_plans_accounts_teams_and_team_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "c.toml",
        &config(dir.path(), "http://127.0.0.1:1", ""),
    );
    let run = |args: &[&str]| {
        let out = anyint()
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("UPSTREAM_SECRET", "x")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "plans",
        "create",
        "--id",
        "pro",
        "--models",
        "gpt-4o-mini",
        "--rpm",
        "100",
        "--credit-cap-micros",
        "5000000",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["credit_cap_micros"],
        5_000_000
    );
    assert!(run(&["accounts", "create", "--id", "acme", "--plan", "pro"]).0);
    assert!(
        !run(&["accounts", "create", "--id", "x", "--plan", "missing"]).0,
        "unknown plan refused"
    );
    assert!(
        run(&[
            "teams",
            "create",
            "--id",
            "ops",
            "--account",
            "acme",
            "--concurrency",
            "4"
        ])
        .0
    );
    let (ok, out, err) = run(&[
        "keys",
        "create",
        "--name",
        "k",
        "--team",
        "ops",
        "--budget-micros",
        "100",
        "--json",
    ]);
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            key["account"].as_str(),
            key["team"].as_str(),
            key["budget_micros"].as_i64()
        ),
        (Some("acme"), Some("ops"), Some(100))
    );
    let (ok, out, _) = run(&["teams", "list", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()[0]["id"], "ops");
}

/// A forward HTTP proxy that answers every request itself with one chat completion, and
/// reports each request's line and `authorization` header.
fn answering_proxy() -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let (mut auth, mut length) = (String::new(), 0usize);
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (name, value) = h.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => value.trim().clone_into(&mut auth),
                        "content-length" => length = value.trim().parse().unwrap(),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                seen.send((line.trim().to_owned(), auth)).unwrap();
                let answer = json!({"id": "chatcmpl-proxy", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant", "content": "via the proxy"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}).to_string();
                let mut out = conn;
                write!(out, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}", answer.len()).unwrap();
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_the_environment_proxies_is_called_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator().await;
    let (proxy, seen) = answering_proxy();
    // One provider at a host only the proxy knows; the emulator is exempt through NO_PROXY.
    let text = config(dir.path(), &emulator, "")
        + "\n[[providers]]\nname = \"far\"\nkind = \"openai\"\nbase_url = \"http://upstream.example.invalid/v1\"\napi_key = \"far-secret\"\n\n\
           [[models]]\nid = \"far-model\"\nroutes = [{ provider = \"far\", upstream_model = \"gpt-4o-mini\" }]\n";
    let path = write(dir.path(), "c.toml", &text);
    let with_env = |c: &mut Command| {
        c.env("UPSTREAM_SECRET", UPSTREAM_KEY)
            .env("HTTP_PROXY", &proxy)
            .env("NO_PROXY", "127.0.0.1")
            .env_remove("http_proxy")
            .env_remove("no_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy");
    };
    let mut create = anyint();
    create
        .args(["keys", "create", "--name", "p", "--json", "--config"])
        .arg(&path);
    with_env(&mut create);
    let out = create.output().unwrap();
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut serve = anyint();
    serve
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    with_env(&mut serve);
    let mut child = serve.spawn().unwrap();
    let base = listening(child.stdout.take().unwrap()).await;
    let http = reqwest::Client::new();
    let chat = |model: &str| {
        http.post(format!("{base}/openai/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Reply with exactly: direct"}]}))
            .send()
    };
    let far = chat("far-model").await.unwrap();
    assert_eq!(far.status(), 200);
    let v: Value = far.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "via the proxy");
    let (line, auth) = seen.recv().unwrap();
    assert_eq!(
        line,
        "POST http://upstream.example.invalid/v1/chat/completions HTTP/1.1"
    );
    assert_eq!(auth, "Bearer far-secret");
    // The exempt provider is called directly.
    let near = chat("gpt-4o-mini").await.unwrap();
    assert_eq!(near.status(), 200);
    let v: Value = near.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "direct");
    assert!(
        seen.try_recv().is_err(),
        "the exempt call went through the proxy"
    );
    child.kill().unwrap();
    let _ = child.wait();
}
