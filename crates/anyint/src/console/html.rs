//! The console's HTML: escaping, the page frame (navigation, sign-out form, messages), the
//! response headers every page carries, and small formatting helpers for numbers and times.
//!
//! Every dynamic value goes through [`esc`]. Pages carry a strict Content-Security-Policy: only
//! the console's own embedded stylesheet and script, no inline script or style.

use std::fmt::Write as _;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The console's own stylesheet and script, embedded in the binary.
pub(super) const CSS: &str = include_str!("assets/console.css");
pub(super) const JS: &str = include_str!("assets/console.js");

/// The headers of every console page: no caching (pages show secrets once and live data), no
/// framing, no referrer beyond the console itself (`same-origin`: with `no-referrer` browsers
/// send `Origin: null` on form posts, which the CSRF check refuses), and only the console's own
/// assets.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(super) fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A query string (`a=1&b=2`) from pairs, skipping empty values.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", url_enc(k), url_enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes an `application/x-www-form-urlencoded` body (or query) into pairs, in order.
pub(super) fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    let decode =
        |s: &str| String::from_utf8_lossy(&crate::families::percent_decode(s, true)).into_owned();
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of a form field, trimmed; empty when absent.
pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

/// Navigation entries: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console/", "Overview"),
    ("/console/keys", "Keys"),
    ("/console/usage", "Usage"),
    ("/console/directory", "Plans & accounts"),
    ("/console/tasks", "Tasks"),
    ("/console/routes", "Routes"),
];

/// A signed-in page: navigation, the sign-out form (with the session's CSRF token), an
/// optional notice, and the body.
pub(super) fn page(title: &str, active: &str, csrf: &str, notice: &Notice, body: &str) -> String {
    let mut nav = String::new();
    for (href, label) in NAV {
        let cls = if *href == active {
            " class=\"active\" aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{cls}>{label}</a>");
    }
    let notice = notice.render();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · anyint console</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <header class=\"top\"><a class=\"brand\" href=\"/console/\">anyint</a><nav>{nav}</nav>\
         <form method=\"post\" action=\"/console/sign-out\" class=\"signout\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Sign out</button></form></header>\
         <main><h1>{t}</h1>{notice}{body}</main></body></html>",
        t = esc(title),
        csrf = esc(csrf),
    )
}

/// A page without navigation (sign-in, console disabled, errors before a session).
pub(super) fn bare(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · anyint console</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head><body class=\"bare\">\
         <main class=\"narrow\"><p class=\"brand\">anyint</p><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    )
}

/// A message above a page's body.
pub(super) enum Notice {
    /// Nothing to say.
    None,
    /// An action succeeded.
    Done(String),
    /// An action failed; the admin API's message.
    Failed(String),
}

impl Notice {
    /// The notice a redirect after a successful action asked for (`?done=…`; fixed texts,
    /// so a link cannot make the console say something else).
    pub(super) fn from_query(q: &std::collections::HashMap<String, String>) -> Self {
        let text = match q.get("done").map(String::as_str) {
            Some("revoked") => "The key was revoked: requests with it are now refused.",
            Some("updated") => "Saved.",
            Some("created") => "Created.",
            Some("replayed") => "The delivery was queued again; it is attempted now.",
            _ => return Self::None,
        };
        Self::Done(text.to_owned())
    }

    fn render(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Done(m) => format!("<p class=\"notice ok\" role=\"status\">{}</p>", esc(m)),
            Self::Failed(m) => format!("<p class=\"notice err\" role=\"alert\">{}</p>", esc(m)),
        }
    }
}

/// An HTML response with the console's security headers.
pub(super) fn respond(status: StatusCode, html: String) -> Response {
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    resp
}

/// The headers every console response carries.
pub(super) fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A 303 redirect (after a form POST, so reloading does not repeat it).
pub(super) fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(resp.headers_mut());
    resp
}

/// The hidden CSRF field of a form.
pub(super) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A whole number with thousands separators.
pub(super) fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Micro-units as credits with up to six decimals, trailing zeros trimmed.
pub(super) fn credits(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let frac = format!("{:06}", m % 1_000_000);
    let frac = frac.trim_end_matches('0');
    let whole = int(i64::try_from(m / 1_000_000).unwrap_or(i64::MAX));
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn time(secs: i64) -> String {
    crate::clock::rfc3339(secs)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// Unix milliseconds as [`time`].
pub(super) fn time_ms(ms: i64) -> String {
    time(ms.div_euclid(1000))
}

/// A JSON value as display text: strings bare, null as an em dash.
pub(super) fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn form_decoding_handles_plus_percent_and_broken_escapes() {
        let f = parse_form(b"a=1+2&b=%41%zz&c&models=x&models=y");
        assert_eq!(field(&f, "a"), "1 2");
        assert_eq!(field(&f, "b"), "A%zz");
        assert_eq!(field(&f, "c"), "");
        assert_eq!(f.iter().filter(|(k, _)| k == "models").count(), 2);
        assert_eq!(url_enc("a b&c"), "a%20b%26c");
    }

    #[test]
    fn numbers_and_credits() {
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(-1000), "-1,000");
        assert_eq!(credits(1_500_000), "1.5");
        assert_eq!(credits(25), "0.000025");
        assert_eq!(credits(3_000_000_000), "3,000");
    }
}
