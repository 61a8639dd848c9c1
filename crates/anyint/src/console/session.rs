//! Console sign-in, sessions and CSRF.
//!
//! - Sign-in is a form POST of the admin token (never a URL, never stored in the browser). Only
//!   the admin token opens the console; client API keys are refused like any wrong token.
//! - A session is an HMAC-signed cookie, `v1.<expiry>.<nonce>.<mac>`, keyed by a digest of
//!   the admin token: every instance behind one load balancer accepts it, a restart keeps it,
//!   and changing the admin token ends every session. It is `HttpOnly`, `SameSite=Strict`,
//!   `Path=/console`, expires after [`TTL_SECS`], and is `Secure` when the request came over
//!   https (the URI's scheme, or `X-Forwarded-Proto: https` from a trusted proxy).
//! - Signing out clears the cookie and remembers the nonce as signed out on this instance
//!   until it would have expired (other instances still accept a copied cookie until then).
//! - CSRF: every state-changing request is a POST with a `_csrf` field equal to the session's
//!   token (an HMAC of the session nonce), and no cross-site `Origin` or `Sec-Fetch-Site`. The
//!   sign-in form itself uses a double-submit token (a short-lived cookie and a field).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, Request, State};
use axum::response::Response;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use sha2::{Digest, Sha256};

use super::html::{self, esc};
use crate::state::SharedState;

/// The session cookie.
const COOKIE: &str = "anyint_console";
/// The sign-in form's double-submit cookie.
const SIGNIN_COOKIE: &str = "anyint_console_signin";
/// How long a session lasts.
pub(super) const TTL_SECS: i64 = 12 * 3600;
/// The largest form body the console reads.
pub(super) const FORM_LIMIT: usize = 64 * 1024;

/// Sessions signed out on this instance: nonce → expiry (Unix seconds).
#[derive(Default)]
pub(super) struct Sessions {
    signed_out: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    fn is_signed_out(&self, nonce: &str) -> bool {
        self.signed_out.lock().is_ok_and(|m| m.contains_key(nonce))
    }

    fn sign_out(&self, nonce: &str, expires: i64) {
        if let Ok(mut m) = self.signed_out.lock() {
            let now = crate::clock::unix_secs();
            m.retain(|_, exp| *exp > now);
            m.insert(nonce.to_owned(), expires);
        }
    }
}

/// The console's shared handles, as an axum extension.
pub(super) type Shared = Extension<Arc<Sessions>>;

/// A valid session.
pub(super) struct Session {
    nonce: String,
    expires: i64,
    /// The CSRF token forms of this session carry.
    pub(super) csrf: String,
}

/// The signing key: a digest of the admin token, so a new token ends old sessions.
fn signing_key(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"anyint console session v1\0");
    h.update(token.as_bytes());
    h.finalize().into()
}

fn mac(key: &[u8; 32], msg: &str) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Compares two secrets by digest, so the time taken does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session the request carries, if it is valid now.
fn current(state: &SharedState, sessions: &Sessions, headers: &HeaderMap) -> Option<Session> {
    let token = state.config.server.admin_token.as_ref()?;
    let key = signing_key(token.expose());
    let value = cookie(headers, COOKIE)?;
    let mut parts = value.split('.');
    let (Some("v1"), Some(exp), Some(nonce), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expires: i64 = exp.parse().ok()?;
    if !same(&mac(&key, &format!("v1.{exp}.{nonce}")), sig)
        || expires <= crate::clock::unix_secs()
        || sessions.is_signed_out(nonce)
    {
        return None;
    }
    Some(Session {
        csrf: mac(&key, &format!("csrf.{nonce}")),
        nonce: nonce.to_owned(),
        expires,
    })
}

/// The page shown when no admin token is configured.
fn disabled(state: &SharedState) -> Response {
    html::respond(
        StatusCode::NOT_FOUND,
        html::bare(
            "The console is off",
            &format!(
                "<p>The console signs in with the admin token, and none is configured.</p>\
                 <p>Set the <code>{}</code> environment variable to a long random secret (for \
                 example <code>openssl rand -hex 32</code>) and restart <code>anyint serve</code>; \
                 then sign in here with that token. <code>anyint serve --demo</code> makes one \
                 for you and prints it.</p>",
                esc(&state.config.server.admin_token_env)
            ),
        ),
    )
}

/// The session of a page request, or the answer to give instead: the disabled page, or a
/// redirect to sign-in.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the page's whole answer, returned at once"
)]
pub(super) fn require(
    state: &SharedState,
    sessions: &Sessions,
    headers: &HeaderMap,
) -> Result<Session, Response> {
    if state.config.server.admin_token.is_none() {
        return Err(disabled(state));
    }
    current(state, sessions, headers).ok_or_else(|| html::see_other("/console/sign-in"))
}

/// Whether the request says it comes from another site (`Origin` naming another host, or
/// `Sec-Fetch-Site: cross-site`).
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (headers.get(header::ORIGIN).map(HeaderValue::to_str), host) {
        (Some(Ok(origin)), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            !origin_host.eq_ignore_ascii_case(host)
        }
        // An unreadable `Origin`; without a `Host` (HTTP/2) the CSRF token and SameSite decide.
        (Some(Err(_)), _) => true,
        _ => false,
    }
}

fn forbidden(why: &str) -> Response {
    html::respond(
        StatusCode::FORBIDDEN,
        html::bare(
            "Request refused",
            &format!(
                "<p>{}</p><p><a href=\"/console/\">Back to the console</a></p>",
                esc(why)
            ),
        ),
    )
}

/// The session of a state-changing request whose form carries the session's CSRF token; or
/// the refusal (403 for a missing or wrong token or a cross-site request).
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the page's whole answer, returned at once"
)]
pub(super) fn require_post(
    state: &SharedState,
    sessions: &Sessions,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<Session, Response> {
    let session = require(state, sessions, headers)?;
    if cross_site(headers) {
        return Err(forbidden("Cross-site requests cannot change the gateway."));
    }
    if !same(html::field(form, "_csrf"), &session.csrf) {
        return Err(forbidden(
            "The form's CSRF token is missing or wrong. Reload the page and try again.",
        ));
    }
    Ok(session)
}

/// A state-changing request's form and session: the form read (bounded) and checked by
/// [`require_post`].
pub(super) async fn form_post(
    state: &SharedState,
    sessions: &Sessions,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(Session, Vec<(String, String)>), Response> {
    let form = crate::families::read_body(headers, body, FORM_LIMIT)
        .await
        .map(|b| html::parse_form(&b))
        .unwrap_or_default();
    let session = require_post(state, sessions, headers, &form)?;
    Ok((session, form))
}

/// Whether the request reached the gateway over https: the gateway's own TLS (its listener
/// then serves nothing else), the URI's scheme, or the `X-Forwarded-Proto` of a trusted proxy.
fn is_https(state: &SharedState, parts: &Parts) -> bool {
    if state.config.server.tls.is_some() || parts.uri.scheme_str() == Some("https") {
        return true;
    }
    let peer = parts
        .extensions
        .get::<crate::telemetry::PeerIp>()
        .map(|p| p.0);
    let trusted = peer.is_some_and(|ip| {
        state
            .config
            .server
            .trusted_proxies
            .iter()
            .any(|c| c.contains(ip))
    });
    trusted
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn sign_in_form(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"notice err\" role=\"alert\">{}</p>", esc(e))
    });
    html::bare(
        "Sign in",
        &format!(
            "{error}<form method=\"post\" action=\"/console/sign-in\" class=\"stack\">\
             {}<label>Admin token <input type=\"password\" name=\"token\" \
             autocomplete=\"current-password\" required autofocus></label>\
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"muted\">The token is the value of the admin token environment variable \
             (<code>ANYINT_ADMIN_TOKEN</code> unless <code>[server] admin_token_env</code> names \
             another). Client API keys do not open the console.</p>",
            html::csrf_field(csrf)
        ),
    )
}

/// `GET /console/sign-in`: the form, with a fresh double-submit token.
pub(super) async fn sign_in_page(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    if state.config.server.admin_token.is_none() {
        return disabled(&state);
    }
    if current(&state, &sessions, &parts.headers).is_some() {
        return html::see_other("/console/");
    }
    sign_in_answer(&state, &parts, StatusCode::OK, None)
}

fn sign_in_answer(
    state: &SharedState,
    parts: &Parts,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let pre = hex::encode(crate::auth::random_bytes::<16>());
    let mut resp = html::respond(status, sign_in_form(&pre, error));
    if let Some(c) = set_cookie(SIGNIN_COOKIE, &pre, 3600, is_https(state, parts)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `POST /console/sign-in`: exchanges the admin token for a session cookie.
pub(super) async fn sign_in(
    State(state): State<SharedState>,
    Extension(_sessions): Shared,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Some(token) = state.config.server.admin_token.clone() else {
        return disabled(&state);
    };
    let Ok(bytes) = crate::families::read_body(&parts.headers, body, FORM_LIMIT).await else {
        return forbidden("The sign-in form could not be read.");
    };
    let form = html::parse_form(&bytes);
    let pre = cookie(&parts.headers, SIGNIN_COOKIE).unwrap_or("");
    if cross_site(&parts.headers) || pre.is_empty() || !same(html::field(&form, "_csrf"), pre) {
        return sign_in_answer(
            &state,
            &parts,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or came from another site; please sign in again."),
        );
    }
    if !same(html::field(&form, "token"), token.expose()) {
        return sign_in_answer(
            &state,
            &parts,
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token. Client API keys do not open the console."),
        );
    }
    let key = signing_key(token.expose());
    let expires = crate::clock::unix_secs() + TTL_SECS;
    let nonce = hex::encode(crate::auth::random_bytes::<16>());
    let payload = format!("v1.{expires}.{nonce}");
    let value = format!("{payload}.{}", mac(&key, &payload));
    let secure = is_https(&state, &parts);
    let mut resp = html::see_other("/console/");
    if let Some(c) = set_cookie(COOKIE, &value, TTL_SECS, secure) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(c) = set_cookie(SIGNIN_COOKIE, "", 0, secure) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `POST /console/sign-out`: ends the session (CSRF-checked like every other POST).
pub(super) async fn sign_out(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let session = match form_post(&state, &sessions, &parts.headers, body).await {
        Ok((s, _)) => s,
        Err(resp) => return resp,
    };
    sessions.sign_out(&session.nonce, session.expires);
    let mut resp = html::see_other("/console/sign-in");
    if let Some(c) = set_cookie(COOKIE, "", 0, is_https(&state, &parts)) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; anyint_console=v1.2.n.s; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("v1.2.n.s"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn cross_site_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw.example:8080"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://gw.example:8080"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h));
    }

    #[test]
    fn a_new_admin_token_changes_the_signing_key() {
        assert_ne!(signing_key("a"), signing_key("b"));
        let k = signing_key("a");
        assert_eq!(mac(&k, "x"), mac(&k, "x"));
        assert_ne!(mac(&k, "x"), mac(&k, "y"));
    }
}
