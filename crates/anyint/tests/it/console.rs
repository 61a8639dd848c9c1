//! The web console: sign-in with the admin token only, the session cookie's flags, CSRF
//! refusal, sign-out, and pages reading and changing the gateway through the admin API.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestGateway, request_id, user};

/// A browser-like client: no redirects followed, cookies kept by hand.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name="_csrf"` in a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

/// `name=value` of the Set-Cookie for `name`, and the whole header line.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| (c.split(';').next().unwrap().to_owned(), c))
}

/// The admin API's key list.
async fn admin_keys(t: &TestGateway) -> Value {
    t.admin(Method::GET, "/admin/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Posts the sign-in form with `token`; returns the answer.
async fn sign_in_with(t: &TestGateway, http: &reqwest::Client, token: &str) -> reqwest::Response {
    let page = http.get(t.url("/console/sign-in")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (pre, _) = set_cookie(&page, "anyint_console_signin").expect("a sign-in cookie");
    let html = page.text().await.unwrap();
    http.post(t.url("/console/sign-in"))
        .header(header::COOKIE, pre)
        .form(&[("_csrf", csrf_of(&html).as_str()), ("token", token)])
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the session cookie (`anyint_console=…`) and the session's CSRF token.
async fn sign_in(t: &TestGateway, http: &reqwest::Client) -> (String, String) {
    let resp = sign_in_with(t, http, ADMIN_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (cookie, _) = set_cookie(&resp, "anyint_console").expect("a session cookie");
    let page = http
        .get(t.url("/console/keys"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    (cookie, csrf)
}

#[tokio::test]
async fn console_refuses_a_wrong_token_and_client_keys() {
    let t = TestGateway::start().await;
    let http = client();
    for token in ["wrong-token", t.key.as_str(), ""] {
        let resp = sign_in_with(&t, &http, token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert!(set_cookie(&resp, "anyint_console").is_none());
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("That is not the admin token")
        );
    }
    // Without a session every page sends the browser to sign in.
    let resp = http.get(t.url("/console/keys")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/console/sign-in");
    // A forged cookie is no session.
    let resp = http
        .get(t.url("/console/"))
        .header(header::COOKIE, "anyint_console=v1.99999999999.00.00")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn console_session_cookie_is_httponly_strict_and_expires() {
    let t = TestGateway::start().await;
    let http = client();
    let resp = sign_in_with(&t, &http, ADMIN_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/console/");
    let (_, line) = set_cookie(&resp, "anyint_console").unwrap();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(line.contains(flag), "{line} lacks {flag}");
    }
    // Plain http: not Secure (a browser would drop the cookie).
    assert!(!line.contains("Secure"), "{line}");
    // The token itself is never in the cookie.
    assert!(!line.contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn console_cookie_is_secure_behind_a_trusted_https_proxy() {
    let t = TestGateway::builder()
        .server("trusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await;
    let http = client();
    let page = http
        .get(t.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let (pre, line) = set_cookie(&page, "anyint_console_signin").unwrap();
    assert!(line.contains("; Secure"), "{line}");
    let html = page.text().await.unwrap();
    let resp = http
        .post(t.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .header(header::COOKIE, pre)
        .form(&[("_csrf", csrf_of(&html).as_str()), ("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let (_, line) = set_cookie(&resp, "anyint_console").unwrap();
    assert!(line.contains("; Secure"), "{line}");
}

#[tokio::test]
async fn console_post_without_the_csrf_token_is_refused() {
    let t = TestGateway::start().await;
    let http = client();
    let (cookie, csrf) = sign_in(&t, &http).await;
    let keys_before = admin_keys(&t).await;
    let attempts = [
        (vec![("name", "csrf-less")], None),
        (vec![("name", "csrf-wrong"), ("_csrf", "0000")], None),
        (
            vec![("name", "cross-site"), ("_csrf", csrf.as_str())],
            Some("https://evil.example"),
        ),
    ];
    for (form, origin) in attempts {
        let mut req = http
            .post(t.url("/console/keys"))
            .header(header::COOKIE, &cookie)
            .form(&form);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    // Revoking and signing out need the token too.
    let resp = http
        .post(t.url("/console/sign-out"))
        .header(header::COOKIE, &cookie)
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let keys_after = admin_keys(&t).await;
    assert_eq!(keys_before, keys_after, "no key was created");
    // The same form with the token works.
    let resp = http
        .post(t.url("/console/keys"))
        .header(header::COOKIE, &cookie)
        .form(&[("name", "with-csrf"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn console_sign_out_ends_the_session() {
    let t = TestGateway::start().await;
    let http = client();
    let (cookie, csrf) = sign_in(&t, &http).await;
    let resp = http
        .post(t.url("/console/sign-out"))
        .header(header::COOKIE, &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/console/sign-in");
    let (cleared, line) = set_cookie(&resp, "anyint_console").unwrap();
    assert_eq!(cleared, "anyint_console=");
    assert!(line.contains("Max-Age=0"));
    // The old cookie, replayed, no longer opens a page.
    let resp = http
        .get(t.url("/console/"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn console_without_an_admin_token_says_how_to_enable_it() {
    let t = TestGateway::builder().no_admin().start().await;
    let resp = client().get(t.url("/console/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let html = resp.text().await.unwrap();
    assert!(html.contains("ANYINT_ADMIN_TOKEN"), "{html}");
    let resp = client()
        .get(t.url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn console_creates_edits_and_revokes_a_key_through_the_admin_api() {
    let t = TestGateway::start().await;
    let http = client();
    let (cookie, csrf) = sign_in(&t, &http).await;
    let resp = http
        .post(t.url("/console/keys"))
        .header(header::COOKIE, &cookie)
        .form(&[
            ("name", "console-made"),
            ("rpm", "100"),
            ("_csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    let html = resp.text().await.unwrap();
    let needle = "id=\"new-key\" class=\"secret-value\">";
    let at = html.find(needle).unwrap() + needle.len();
    let secret = html[at..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("sk-anyint-"), "{secret}");
    let keys = admin_keys(&t).await;
    let made = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "console-made")
        .unwrap()
        .clone();
    assert_eq!(made["rpm"], 100);
    let id = made["id"].as_str().unwrap();
    let chat = |key: String| {
        let http = t.http.clone();
        let url = t.url("/openai/v1/chat/completions");
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"model": "gpt-4o-mini", "messages": user("hi")}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(chat(secret.clone()).await.status(), 200);
    // The list shows the key but never its secret again.
    let list = http
        .get(t.url("/console/keys"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(id) && !list.contains(&secret));
    // Edit a restriction: the form replaces them all (an empty field clears one).
    let resp = http
        .post(t.url(&format!("/console/keys/{id}")))
        .header(header::COOKIE, &cookie)
        .form(&[("tpm", "5000"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let keys = admin_keys(&t).await;
    let edited = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(edited["tpm"], 5000);
    assert_eq!(edited["rpm"], Value::Null);
    // An invalid restriction is the admin API's refusal, shown on the page.
    let resp = http
        .post(t.url(&format!("/console/keys/{id}")))
        .header(header::COOKIE, &cookie)
        .form(&[("ip_allowlist", "not-a-cidr"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("not-a-cidr"));
    let resp = http
        .post(t.url(&format!("/console/keys/{id}/revoke")))
        .header(header::COOKIE, &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(chat(secret).await.status(), 401);
}

#[tokio::test]
async fn console_pages_show_a_request_and_export_csv() {
    let t = TestGateway::start().await;
    let http = client();
    let (cookie, _) = sign_in(&t, &http).await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let page = |path: &'static str| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = t.url(path);
        async move {
            let resp = http
                .get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("script-src 'self'"), "{csp}");
            resp.text().await.unwrap()
        }
    };
    let usage = page("/console/usage").await;
    assert!(usage.contains(&rid), "the latest requests list the request");
    assert!(usage.contains("<svg"), "a chart");
    let overview = page("/console/?range=hour").await;
    assert!(overview.contains("requests: 1"), "the hour chart counts it");
    for path in [
        "/console/routes",
        "/console/tasks",
        "/console/directory",
        "/console/usage?group_by=model",
    ] {
        page(path).await;
    }
    let csv = http
        .get(t.url("/console/usage.csv?group_by=model"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "model,requests,errors,prompt_tokens,completion_tokens,cache_read_tokens,cache_write_tokens,web_searches,cost_micros"
    );
    assert!(lines.next().unwrap().starts_with("gpt-4o-mini,1,0,"));
    // The CSV is for signed-in operators only.
    let anon = client()
        .get(t.url("/console/usage.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::SEE_OTHER);
}

#[test]
fn serve_demo_prints_the_console_url_and_an_admin_token_that_opens_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
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
    let (mut console, mut token) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Console: ") {
            console = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("Admin token: ") {
            token = Some(rest.trim().to_owned());
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let (console, token) = (console.unwrap(), token.unwrap());
    assert!(console.ends_with("/console/"), "{console}");
    assert!(token.starts_with("adm_") && token.len() > 40, "{token}");
    let base = console.trim_end_matches("/console/").to_owned();
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::builder()
                .build()
                .unwrap()
                .get(format!("{base}/admin/v1/keys"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
        });
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(status, 200, "the printed token is the demo's admin token");
}
