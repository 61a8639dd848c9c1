//! The keys pages: the list with filters, creation (the secret shown once), revocation, a
//! key's restrictions and its usage chart and recent 429s. Every read and change goes through
//! `/admin/v1/keys` and `/admin/v1/usage`.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};

use super::api;
use super::chart::{self, Series, Style, Unit};
use super::html::{self, Notice, esc};
use super::range::{self, Range};
use super::session::{self, Session, Shared};
use crate::state::SharedState;

/// Keys per list page.
const PAGE: usize = 50;

/// A key's state now: `revoked`, `expired` or `active`.
fn key_state(k: &Value, now: i64) -> &'static str {
    if !k["revoked_at"].is_null() {
        "revoked"
    } else if k["expires_at"].as_i64().is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// Credits as typed (`1.5`) to micro-units; `None` when it is not a plain decimal.
fn parse_credits(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(frac)
}

/// The restriction fields of a key form as admin API JSON; `clear` writes `null` for empty
/// fields (an edit) instead of leaving them out (a create).
fn restrictions(form: &[(String, String)], clear: bool) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(name.to_owned(), v);
        } else if clear {
            out.insert(name.to_owned(), Value::Null);
        }
    };
    for name in ["rpm", "tpm", "concurrency"] {
        let v = html::field(form, name);
        let n = if v.is_empty() {
            None
        } else {
            Some(
                v.parse::<u32>()
                    .map_err(|_| format!("`{name}` must be a whole number"))?,
            )
        };
        put(name, n.map(Value::from));
    }
    let budget = html::field(form, "budget");
    let budget = if budget.is_empty() {
        None
    } else {
        Some(parse_credits(budget).ok_or("`budget` must be a number of credits like 12.5")?)
    };
    put("budget_micros", budget.map(Value::from));
    let expires = html::field(form, "expires");
    let expires = if expires.is_empty() {
        None
    } else {
        Some(
            crate::clock::parse_instant(expires)
                .ok_or("`expires` must be a date like 2026-12-31")?,
        )
    };
    put("expires_at", expires.map(Value::from));
    let ips: Vec<Value> = html::field(form, "ip_allowlist")
        .split([',', ' ', '\n', '\r'])
        .filter(|s| !s.is_empty())
        .map(|s| Value::from(s.to_owned()))
        .collect();
    put(
        "ip_allowlist",
        (!ips.is_empty()).then_some(Value::Array(ips)),
    );
    let models: Vec<Value> = form
        .iter()
        .filter(|(k, v)| k == "models" && !v.is_empty())
        .map(|(_, v)| Value::from(v.clone()))
        .collect();
    put(
        "models",
        (!models.is_empty()).then_some(Value::Array(models)),
    );
    Ok(out)
}

/// The form fields of a key's restrictions, filled from `k` (a key as the admin API shows it,
/// or `Null` for a new key).
fn restriction_fields(state: &SharedState, k: &Value) -> String {
    let allowed: Vec<&str> = k["models"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut models = String::new();
    for m in &state.config.models {
        let sel = if allowed.contains(&m.id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            models,
            "<option value=\"{v}\"{sel}>{v}</option>",
            v = esc(&m.id)
        );
    }
    let num = |f: &str| k[f].as_i64().map_or_else(String::new, |n| n.to_string());
    let expires = k["expires_at"].as_i64().map_or_else(String::new, |e| {
        crate::clock::rfc3339(e)
            .get(..10)
            .unwrap_or_default()
            .to_owned()
    });
    let budget = k["budget_micros"]
        .as_i64()
        .map_or_else(String::new, |b| html::credits(b).replace(',', ""));
    let ips = k["ip_allowlist"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "<label>Models <select name=\"models\" multiple size=\"5\">{models}</select>\
         <small>none selected: every model</small></label>\
         <label>Expires (UTC date) <input type=\"date\" name=\"expires\" value=\"{}\"></label>\
         <label>IP allowlist <input name=\"ip_allowlist\" value=\"{}\" placeholder=\"203.0.113.0/24, 2001:db8::/32\"></label>\
         <label>Requests per minute <input name=\"rpm\" inputmode=\"numeric\" value=\"{}\"></label>\
         <label>Tokens per minute <input name=\"tpm\" inputmode=\"numeric\" value=\"{}\"></label>\
         <label>Concurrency <input name=\"concurrency\" inputmode=\"numeric\" value=\"{}\"></label>\
         <label>Monthly budget (credits) <input name=\"budget\" inputmode=\"decimal\" value=\"{}\"></label>",
        esc(&expires),
        esc(&ips),
        esc(&num("rpm")),
        esc(&num("tpm")),
        esc(&num("concurrency")),
        esc(&budget),
    )
}

/// A key's restrictions as one line of text.
fn limits_text(k: &Value) -> String {
    let mut parts = Vec::new();
    for (f, label) in [("rpm", "rpm"), ("tpm", "tpm"), ("concurrency", "conc.")] {
        if let Some(n) = k[f].as_i64() {
            parts.push(format!("{label} {n}"));
        }
    }
    if let Some(b) = k["budget_micros"].as_i64() {
        parts.push(format!("budget {}", html::credits(b)));
    }
    if let Some(e) = k["expires_at"].as_i64() {
        parts.push(format!(
            "expires {}",
            crate::clock::rfc3339(e).get(..10).unwrap_or_default()
        ));
    }
    if k["ip_allowlist"].is_array() {
        parts.push("IP allowlist".to_owned());
    }
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `GET /console/keys`.
pub(super) async fn list(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match session::require(&state, &sessions, &headers) {
        Ok(s) => render_list(&state, &s, &q, Notice::from_query(&q), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[expect(clippy::too_many_lines, reason = "one page's HTML, top to bottom")]
async fn render_list(
    state: &SharedState,
    s: &Session,
    q: &HashMap<String, String>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let keys = api::get(state, "/admin/v1/keys").await;
    if !keys.ok() {
        return html::respond(
            keys.status,
            html::page(
                "Keys",
                "/console/keys",
                &s.csrf,
                &Notice::Failed(keys.message()),
                "",
            ),
        );
    }
    let now = crate::clock::unix_secs();
    let text = q.get("q").map_or("", |v| v.trim()).to_lowercase();
    let want_state = q.get("state").map_or("active", String::as_str);
    let account = q.get("account").map_or("", |v| v.trim());
    let matching: Vec<&Value> = keys
        .data()
        .iter()
        .filter(|k| want_state == "all" || key_state(k, now) == want_state)
        .filter(|k| account.is_empty() || k["account"].as_str() == Some(account))
        .filter(|k| {
            text.is_empty()
                || ["name", "id", "prefix", "team"].iter().any(|f| {
                    k[*f]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&text))
                })
        })
        .collect();
    let pages = matching.len().div_ceil(PAGE).max(1);
    let page_no = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let mut body = String::new();
    let _ = write!(
        body,
        "<details class=\"panel\"{open}><summary>Create a key</summary>\
         <form method=\"post\" action=\"/console/keys\" class=\"grid-form\">{csrf}\
         <label>Name <input name=\"name\" required></label>\
         <label>Account <input name=\"account\" placeholder=\"default\"></label>\
         <label>Team <input name=\"team\"></label>{fields}\
         <button type=\"submit\">Create key</button></form></details>",
        open = if matches!(notice, Notice::Failed(_)) {
            " open"
        } else {
            ""
        },
        csrf = html::csrf_field(&s.csrf),
        fields = restriction_fields(state, &Value::Null),
    );
    let _ = write!(
        body,
        "<form method=\"get\" class=\"inline filters\"><label>Search <input name=\"q\" value=\"{}\" placeholder=\"name, id, prefix, team\"></label>\
         <label>Account <input name=\"account\" value=\"{}\"></label><label>State <select name=\"state\">",
        esc(&text),
        esc(account)
    );
    for st in ["active", "revoked", "expired", "all"] {
        let sel = if st == want_state { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{st}</option>");
    }
    let _ = write!(
        body,
        "</select></label><button type=\"submit\">Filter</button></form>\
         <p class=\"muted\">{} matching keys</p>\
         <table class=\"data\"><thead><tr><th>Name</th><th>ID</th><th>Prefix</th><th>Account</th>\
         <th>Team</th><th>Models</th><th>Restrictions</th><th>Created</th><th>State</th><th></th></tr></thead><tbody>",
        matching.len()
    );
    for k in matching.iter().skip((page_no - 1) * PAGE).take(PAGE) {
        let id = k["id"].as_str().unwrap_or("");
        let st = key_state(k, now);
        let revoke = if st == "revoked" {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/console/keys/{id}/revoke\" data-confirm=\"Revoke this key? Requests with it will be refused.\">{}\
                 <button type=\"submit\" class=\"danger\">Revoke</button></form>",
                html::csrf_field(&s.csrf),
                id = esc(id)
            )
        };
        let _ = write!(
            body,
            "<tr data-key=\"{id}\"><td><a href=\"/console/keys/{id}\">{name}</a></td><td><code>{id}</code></td>\
             <td><code>{prefix}</code></td><td>{account}</td><td>{team}</td><td>{models}</td><td>{limits}</td>\
             <td>{created}</td><td><span class=\"badge b-{st}\">{st}</span></td><td>{revoke}</td></tr>",
            id = esc(id),
            name = esc(k["name"].as_str().unwrap_or("")),
            prefix = esc(k["prefix"].as_str().unwrap_or("")),
            account = esc(&html::show(&k["account"])),
            team = esc(&html::show(&k["team"])),
            models = if k["models"].is_null() {
                "all".to_owned()
            } else {
                esc(&html::show(&k["models"]))
            },
            limits = esc(&limits_text(k)),
            created = esc(&html::time(k["created_at"].as_i64().unwrap_or(0))),
        );
    }
    if matching.is_empty() {
        body.push_str("<tr><td colspan=\"10\" class=\"muted\">No keys match.</td></tr>");
    }
    body.push_str("</tbody></table>");
    if pages > 1 {
        body.push_str("<nav class=\"pager\">");
        for p in 1..=pages {
            let href = html::query(&[
                ("q", &text),
                ("account", account),
                ("state", want_state),
                ("page", &p.to_string()),
            ]);
            let cls = if p == page_no {
                " class=\"active\""
            } else {
                ""
            };
            let _ = write!(
                body,
                "<a href=\"/console/keys?{}\"{cls}>{p}</a>",
                esc(&href)
            );
        }
        body.push_str("</nav>");
    }
    html::respond(
        status,
        html::page("Keys", "/console/keys", &s.csrf, &notice, &body),
    )
}

/// `POST /console/keys`: creates a key and shows its secret once.
pub(super) async fn create(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match session::form_post(&state, &sessions, &headers, body).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let none = HashMap::new();
    let mut req = match restrictions(&form, false) {
        Ok(r) => r,
        Err(e) => {
            return render_list(
                &state,
                &s,
                &none,
                Notice::Failed(e),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    req.insert("name".into(), html::field(&form, "name").into());
    for f in ["account", "team"] {
        let v = html::field(&form, f);
        if !v.is_empty() {
            req.insert(f.into(), v.into());
        }
    }
    let reply = api::call(
        &state,
        Method::POST,
        "/admin/v1/keys",
        Some(&Value::Object(req)),
    )
    .await;
    if !reply.ok() {
        return render_list(
            &state,
            &s,
            &none,
            Notice::Failed(reply.message()),
            reply.status,
        )
        .await;
    }
    let k = &reply.body;
    let body = format!(
        "<section class=\"panel secret\"><p><strong>Copy this key now.</strong> It is shown once: \
         the gateway keeps only its hash.</p>\
         <p><code id=\"new-key\" class=\"secret-value\">{key}</code> \
         <button type=\"button\" data-copy=\"new-key\">Copy</button></p>\
         <p>Name <strong>{name}</strong> · ID <code>{id}</code> · account {account}</p>\
         <p><a href=\"/console/keys/{id}\">View the key</a> · <a href=\"/console/keys\">All keys</a></p></section>",
        key = esc(k["key"].as_str().unwrap_or("")),
        name = esc(k["name"].as_str().unwrap_or("")),
        id = esc(k["id"].as_str().unwrap_or("")),
        account = esc(k["account"].as_str().unwrap_or("")),
    );
    html::respond(
        StatusCode::CREATED,
        html::page(
            "Key created",
            "/console/keys",
            &s.csrf,
            &Notice::Done("The key was created.".into()),
            &body,
        ),
    )
}

/// `POST /console/keys/{id}/revoke`.
pub(super) async fn revoke(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, _) = match session::form_post(&state, &sessions, &headers, body).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let reply = api::call(
        &state,
        Method::DELETE,
        &format!("/admin/v1/keys/{}", html::url_enc(&id)),
        None,
    )
    .await;
    if !reply.ok() {
        return render_list(
            &state,
            &s,
            &HashMap::new(),
            Notice::Failed(reply.message()),
            reply.status,
        )
        .await;
    }
    html::see_other("/console/keys?done=revoked&state=all")
}

/// `POST /console/keys/{id}`: replaces the key's restrictions.
pub(super) async fn update(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match session::form_post(&state, &sessions, &headers, body).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let failed = |notice: String, status: StatusCode| {
        let state = state.clone();
        let id = id.clone();
        async move {
            render_detail(
                &state,
                &s,
                &id,
                &HashMap::new(),
                Notice::Failed(notice),
                status,
            )
            .await
        }
    };
    let patch = match restrictions(&form, true) {
        Ok(p) => p,
        Err(e) => return failed(e, StatusCode::BAD_REQUEST).await,
    };
    let reply = api::call(
        &state,
        Method::PATCH,
        &format!("/admin/v1/keys/{}", html::url_enc(&id)),
        Some(&Value::Object(patch)),
    )
    .await;
    if !reply.ok() {
        return failed(reply.message(), reply.status).await;
    }
    html::see_other(&format!(
        "/console/keys/{}?done=updated",
        html::url_enc(&id)
    ))
}

/// `GET /console/keys/{id}`.
pub(super) async fn detail(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match session::require(&state, &sessions, &headers) {
        Ok(s) => render_detail(&state, &s, &id, &q, Notice::from_query(&q), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[expect(clippy::too_many_lines, reason = "one page's HTML, top to bottom")]
async fn render_detail(
    state: &SharedState,
    s: &Session,
    id: &str,
    q: &HashMap<String, String>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let range = Range::parse(Some(q.get("range").map_or("month", String::as_str)));
    let now = crate::clock::unix_secs();
    let starts = range.starts(now);
    let from = starts.first().copied().unwrap_or(now).to_string();
    let chart_q = html::query(&[("group_by", range.group_by()), ("from", &from), ("key", id)]);
    let rows_q = html::query(&[("key", id), ("limit", "1000")]);
    let (keys, usage, rows) = tokio::join!(
        api::get(state, "/admin/v1/keys"),
        api::get(state, format!("/admin/v1/usage?{chart_q}")),
        api::get(state, format!("/admin/v1/usage?{rows_q}")),
    );
    let fail = [&keys, &usage, &rows].into_iter().find(|r| !r.ok());
    let key = keys.data().iter().find(|k| k["id"].as_str() == Some(id));
    let (Some(k), None) = (key, fail) else {
        let (status, message) = fail.map_or_else(
            || (StatusCode::NOT_FOUND, format!("No key `{id}`.")),
            |f| (f.status, f.message()),
        );
        return html::respond(
            status,
            html::page(
                "Key",
                "/console/keys",
                &s.csrf,
                &Notice::Failed(message),
                "<p><a href=\"/console/keys\">All keys</a></p>",
            ),
        );
    };
    let st = key_state(k, now);
    let mut body = format!(
        "<dl class=\"facts\"><dt>ID</dt><dd><code>{}</code></dd><dt>Prefix</dt><dd><code>{}</code></dd>\
         <dt>Account</dt><dd>{}</dd><dt>Team</dt><dd>{}</dd><dt>Models</dt><dd>{}</dd>\
         <dt>Restrictions</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>State</dt><dd><span class=\"badge b-{st}\">{st}</span></dd></dl>",
        esc(id),
        esc(k["prefix"].as_str().unwrap_or("")),
        esc(&html::show(&k["account"])),
        esc(&html::show(&k["team"])),
        if k["models"].is_null() {
            "all".to_owned()
        } else {
            esc(&html::show(&k["models"]))
        },
        esc(&limits_text(k)),
        esc(&html::time(k["created_at"].as_i64().unwrap_or(0))),
    );
    let mut tabs = String::from("<p class=\"tabs\">");
    for r in [Range::Hour, Range::Day, Range::Month] {
        let cls = if r == range { " class=\"active\"" } else { "" };
        let _ = write!(
            tabs,
            "<a href=\"/console/keys/{}?range={}\"{cls}>{}</a>",
            esc(&html::url_enc(id)),
            r.as_str(),
            r.label()
        );
    }
    tabs.push_str("</p>");
    body.push_str(&tabs);
    let step = range.step();
    let requests = range::fill(usage.data(), &starts, step, "requests");
    let errors = range::fill(usage.data(), &starts, step, "errors");
    body.push_str("<section class=\"grid2\">");
    body.push_str(&chart::time_chart(
        &format!("Requests, {}", range.label()),
        &starts,
        step,
        &[
            Series {
                name: "requests",
                class: "s1",
                values: requests,
            },
            Series {
                name: "errors",
                class: "s-err",
                values: errors,
            },
        ],
        Unit::Requests,
        Style::Bars,
    ));
    body.push_str(&chart::time_chart(
        &format!("Spend, {}", range.label()),
        &starts,
        step,
        &[Series {
            name: "spend",
            class: "s3",
            values: range::fill(usage.data(), &starts, step, "cost_micros"),
        }],
        Unit::Credits,
        Style::Bars,
    ));
    body.push_str("</section><h2>Recent 429s</h2>");
    let throttled: Vec<&Value> = rows
        .data()
        .iter()
        .filter(|r| r["status"].as_i64() == Some(429))
        .take(20)
        .collect();
    if throttled.is_empty() {
        body.push_str("<p class=\"muted\">None among the key's last 1,000 requests.</p>");
    } else {
        body.push_str("<table class=\"data\"><thead><tr><th>Time</th><th>Request</th><th>Model</th><th>Outcome</th></tr></thead><tbody>");
        for r in throttled {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&html::time_ms(r["created_at_ms"].as_i64().unwrap_or(0))),
                esc(r["request_id"].as_str().unwrap_or("")),
                esc(r["model"].as_str().unwrap_or("")),
                esc(r["outcome"].as_str().unwrap_or("")),
            );
        }
        body.push_str("</tbody></table>");
    }
    if st != "revoked" {
        let _ = write!(
            body,
            "<h2>Restrictions</h2><form method=\"post\" action=\"/console/keys/{id}\" class=\"grid-form\">{}{}\
             <button type=\"submit\">Save restrictions</button></form>\
             <h2>Revoke</h2><form method=\"post\" action=\"/console/keys/{id}/revoke\" data-confirm=\"Revoke this key? Requests with it will be refused.\">{}\
             <button type=\"submit\" class=\"danger\">Revoke this key</button></form>",
            html::csrf_field(&s.csrf),
            restriction_fields(state, k),
            html::csrf_field(&s.csrf),
            id = esc(&html::url_enc(id)),
        );
    }
    let title = format!("Key {}", k["name"].as_str().unwrap_or(id));
    html::respond(
        status,
        html::page(&title, "/console/keys", &s.csrf, &notice, &body),
    )
}

/// Usage for the JSON of a new key's restrictions (for tests of the form mapping).
#[cfg(test)]
fn restrictions_json(form: &[(&str, &str)], clear: bool) -> Result<Value, String> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    restrictions(&form, clear).map(Value::Object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credits_parse_exactly() {
        assert_eq!(parse_credits("12.5"), Some(12_500_000));
        assert_eq!(parse_credits("0.000001"), Some(1));
        assert_eq!(parse_credits("3"), Some(3_000_000));
        assert_eq!(parse_credits("1.0000001"), None);
        assert_eq!(parse_credits("-1"), None);
        assert_eq!(parse_credits("."), None);
    }

    #[test]
    fn a_form_maps_to_the_admin_api_fields() {
        let v = restrictions_json(
            &[
                ("rpm", "60"),
                ("budget", "2.5"),
                ("ip_allowlist", "10.0.0.0/8, 192.0.2.0/24"),
                ("models", "a"),
                ("models", "b"),
                ("expires", "2030-01-01"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"rpm": 60, "budget_micros": 2_500_000, "ip_allowlist": ["10.0.0.0/8", "192.0.2.0/24"],
                   "models": ["a", "b"], "expires_at": 1_893_456_000})
        );
        let cleared = restrictions_json(&[], true).unwrap();
        assert_eq!(cleared["rpm"], Value::Null);
        assert!(cleared.as_object().unwrap().contains_key("models"));
        assert!(restrictions_json(&[("rpm", "many")], false).is_err());
    }
}
