//! `anyint verify` as a user runs it (the binary, key in the environment) against the demo
//! gateway and against gateways with one deliberate fault each: exactly the matching check
//! fails, with the right advice.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{TestGateway, UPSTREAM_KEY};

fn verify(base: &str, key: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_anyint"))
        .args(["verify", "--json", "--base-url", base])
        .args(args)
        .env("ANYINT_API_KEY", key)
        .env_remove("ANYINT_CALLBACK_SECRET")
        .env_remove("ANYINT_BASE_URL")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn failed(report: &Value) -> Vec<String> {
    statuses(report)
        .into_iter()
        .filter(|(_, s)| s == "fail")
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn verify_passes_every_check_against_serve_demo() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_anyint"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("ANYINT_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut key = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("anyint demo gateway on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(k) = line.strip_prefix("export ANYINT_API_KEY=") {
            key = Some(k.to_owned());
            break;
        }
    }
    let (base, key) = (base.unwrap(), key.unwrap());
    std::thread::spawn(move || lines.for_each(drop));
    let (ok, report) = verify(&base, &key, &[]);
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(ok, "{report:#}");
    let expected: Vec<(String, String)> = anyint::cli::verify::CHECKS
        .iter()
        .map(|&c| {
            let want = if c == "limits" { "skip" } else { "pass" };
            (c.to_owned(), want.to_owned())
        })
        .collect();
    assert_eq!(statuses(&report), expected, "{report:#}");
    // The key appears only as its prefix.
    assert!(!report.to_string().contains(&key));
    assert_eq!(report["key_prefix"], key.get(..16).unwrap());
}

fn toml() -> String {
    format!(
        r#"
[[providers]]
name = "emu-dashscope"
kind = "dashscope"
base_url = "{{emulator}}/api/v1"
api_key = "{UPSTREAM_KEY}"

[[providers]]
name = "emu-music"
kind = "music"
base_url = "{{emulator}}"
api_key = "{UPSTREAM_KEY}"

[[models]]
id = "broken-chat"
owned_by = "openai"
routes = [{{ provider = "emu", upstream_model = "gpt-4o-mini+status=503" }}]

[[models]]
id = "wan2.2-t2v-plus"
routes = [{{ provider = "emu-dashscope", upstream_model = "wan2.2-t2v-plus" }}]

[[models]]
id = "stuck-video"
routes = [{{ provider = "emu-dashscope", upstream_model = "wan2.2-t2v-plus+never=1" }}]

[[models]]
id = "V4_5"
routes = [{{ provider = "emu-music", upstream_model = "V4_5" }}]

[tasks]
poll_interval_ms = 100
refresh_after_ms = 0
callback_backoff_ms = 100
callback_allow_networks = ["127.0.0.0/8"]
"#
    )
}

async fn gateway() -> TestGateway {
    TestGateway::builder().toml(&toml()).start().await
}

/// The healthy models of the harness config, so only the fault under test can fail.
const MODELS: &[&str] = &[
    "--model",
    "gpt-4o-mini",
    "--fallback-model",
    "gpt-4o",
    "--anthropic-model",
    "claude",
    "--gemini-model",
    "gemini",
];

async fn run(gw: &TestGateway, extra: &[&str]) -> (bool, Value) {
    let base = gw.base.clone();
    let key = gw.key.clone();
    let args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(&base, &key, &args)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn healthy_gateway_passes_and_unentitled_model_gets_403() {
    let gw = gateway().await;
    let created: Value = gw
        .admin(reqwest::Method::POST, "/admin/v1/keys")
        .json(&serde_json::json!({"name": "r", "account": "acct", "models": ["gpt-4o-mini", "gpt-4o", "claude", "gemini", "wan2.2-t2v-plus", "V4_5"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let restricted = created["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let base = gw.base.clone();
    let mut args: Vec<String> = MODELS.iter().map(|s| (*s).to_owned()).collect();
    args.extend(["--unentitled-model".into(), "broken-chat".into()]);
    let (ok, report) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(&base, &restricted, &args)
    })
    .await
    .unwrap();
    assert!(ok, "{report:#}");
    let skipped: Vec<_> = statuses(&report)
        .into_iter()
        .filter(|(_, s)| s != "pass")
        .collect();
    assert_eq!(skipped, [("limits".to_owned(), "skip".to_owned())]);
    let errors = check(&report, "errors")["reason"].as_str().unwrap();
    assert!(errors.contains("403"), "{errors}");
    gw.shutdown().await;
}

#[tokio::test]
async fn missing_model_fails_only_discovery_with_a_suggestion() {
    let gw = gateway().await;
    let mut args = MODELS.to_vec();
    args[1] = "gpt-4o-mni";
    let (ok, report) = run(&gw, &args).await;
    assert!(!ok);
    assert_eq!(failed(&report), ["models"], "{report:#}");
    let fix = check(&report, "models")["fix"].as_str().unwrap();
    assert!(fix.contains("did you mean `gpt-4o-mini`"), "{fix}");
    assert_eq!(check(&report, "chat")["status"], "skip");
    gw.shutdown().await;
}

#[tokio::test]
async fn revoked_key_fails_only_the_key_check() {
    let gw = gateway().await;
    let id = gw.store.list_keys().await.unwrap()[0].id.clone();
    let r = gw
        .admin(reqwest::Method::DELETE, &format!("/admin/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, report) = run(&gw, MODELS).await;
    assert!(!ok);
    assert_eq!(failed(&report), ["key"], "{report:#}");
    let fix = check(&report, "key")["fix"].as_str().unwrap();
    assert!(fix.contains("revoked"), "{fix}");
    assert!(statuses(&report).iter().skip(1).all(|(_, s)| s == "skip"));
    gw.shutdown().await;
}

#[tokio::test]
async fn failing_upstream_fails_the_request_check_with_retry_advice() {
    let gw = gateway().await;
    let mut args = MODELS.to_vec();
    args[1] = "broken-chat";
    let (ok, report) = run(&gw, &args).await;
    assert!(!ok);
    assert_eq!(failed(&report), ["chat"], "{report:#}");
    for other in ["anthropic", "gemini", "task", "callback", "errors"] {
        assert_eq!(
            check(&report, other)["status"],
            "pass",
            "{other}: {report:#}"
        );
    }
    let fix = check(&report, "chat")["fix"].as_str().unwrap();
    assert!(fix.contains("retry with backoff"), "{fix}");
    assert_eq!(check(&report, "stream")["status"], "skip");
    gw.shutdown().await;
}

#[tokio::test]
async fn task_that_never_finishes_fails_the_task_check_within_the_timeout() {
    let gw = gateway().await;
    let mut args = MODELS.to_vec();
    args.extend(["--video-model", "stuck-video", "--timeout", "2"]);
    let (ok, report) = run(&gw, &args).await;
    assert!(!ok);
    assert_eq!(failed(&report), ["task"], "{report:#}");
    let task = check(&report, "task");
    assert!(
        task["reason"].as_str().unwrap().contains("after 2 s"),
        "{task}"
    );
    assert!(
        task["fix"]
            .as_str()
            .unwrap()
            .contains("never create it again")
    );
    // The task was created once, not re-created.
    let created = gw.store.tasks(None, None, 100).await.unwrap();
    assert_eq!(
        created.iter().filter(|t| t.model == "stuck-video").count(),
        1
    );
    gw.shutdown().await;
}

#[test]
fn a_key_on_the_command_line_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_anyint"))
        .args(["verify", "--api-key", "sk-anyint-secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ANYINT_API_KEY") && err.contains("history"),
        "{err}"
    );
    assert!(!err.contains("sk-anyint-secret"));
}
