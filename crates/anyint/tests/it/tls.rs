//! TLS served by the gateway itself (`[server] tls_cert_file` / `tls_key_file`): HTTP/2 by
//! ALPN, plain HTTP refused on the TLS port, and a certificate swapped on disk taken up by new
//! connections while open ones keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::harness::{TestGateway, user};

/// A self-signed certificate for `localhost` and 127.0.0.1 from the system's `openssl`.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl: {out:?}");
    (cert, key)
}

/// A client that trusts only `cert`, so it can tell which certificate a connection got.
fn trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

async fn chat(client: &reqwest::Client, t: &TestGateway) -> reqwest::Result<reqwest::Response> {
    client
        .post(https(t, "/openai/v1/chat/completions"))
        .bearer_auth(&t.key)
        .json(&json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .send()
        .await
}

fn https(t: &TestGateway, path: &str) -> String {
    t.url(path).replacen("http://", "https://", 1)
}

#[tokio::test]
async fn serves_https_with_h2_and_takes_up_a_swapped_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (old_cert, old_key) = self_signed(dir.path(), "old");
    let (live_cert, live_key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&old_cert, &live_cert).unwrap();
    std::fs::copy(&old_key, &live_key).unwrap();
    let t = TestGateway::builder()
        .server(&format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            live_cert.display(),
            live_key.display()
        ))
        .start()
        .await;

    let old = trusting(&old_cert);
    let resp = chat(&old, &t).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.version(),
        reqwest::Version::HTTP_2,
        "ALPN should pick h2"
    );
    // The console's cookies are Secure when the gateway serves TLS itself.
    let page = old.get(https(&t, "/console/sign-in")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(t.http.get(t.url("/healthz")).send().await.is_err());

    // Renew: the key first, then the certificate (between the two, the pair does not match
    // and the old one stays served).
    let (new_cert, new_key) = self_signed(dir.path(), "new");
    std::fs::copy(&new_key, &live_key).unwrap();
    std::fs::copy(&new_cert, &live_cert).unwrap();
    // Wait for the reload (checked every second) by trying new connections that trust only
    // the new certificate; bounded, so a reload that never comes fails the test.
    let mut took = false;
    for _ in 0..100 {
        if chat(&trusting(&new_cert), &t).await.is_ok() {
            took = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(took, "the swapped certificate was never served");
    // The client on the old certificate keeps its open connection and is served on it.
    let resp = chat(&old, &t).await.unwrap();
    assert_eq!(resp.status(), 200);
    // A new connection that trusts only the old certificate is refused now.
    assert!(chat(&trusting(&old_cert), &t).await.is_err());
    t.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_mismatched_certificate_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "a");
    let (_, other_key) = self_signed(dir.path(), "b");
    let text = |cert: &Path, key: &Path| {
        format!(
            "[server]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n[store]\nurl = \"sqlite://{}/s.db\"\n",
            cert.display(),
            key.display(),
            dir.path().display()
        )
    };
    for (cert, key, names) in [
        (cert.clone(), other_key.clone(), "does not match"),
        (dir.path().join("none.crt"), other_key.clone(), "none.crt"),
    ] {
        let config =
            anyint::config::Config::parse(&text(&cert, &key), "t.toml", &|_| None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let Err(e) = anyint::server::start(config, listener).await else {
            panic!("started with a bad certificate");
        };
        let cause = e.cause.unwrap_or_default();
        assert!(cause.contains(names), "{cause}");
    }
    // One file without the other is a configuration error.
    let half = format!("[server]\ntls_cert_file = \"{}\"\n", cert.display());
    let e = anyint::config::Config::parse(&half, "t.toml", &|_| None).unwrap_err();
    assert!(e.to_string().contains("tls_key_file"), "{e}");
}
