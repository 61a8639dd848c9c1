//! The plans, accounts and teams page: each list, creation and editing (a JSON spec, checked
//! by the admin API exactly as a `POST`/`PATCH` body), and each account's and team's spend
//! this UTC month against its cap or budget.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};

use super::api;
use super::html::{self, Notice, esc};
use super::session::{self, Session, Shared};
use crate::state::SharedState;

/// (API path segment, singular, example spec).
const KINDS: &[(&str, &str, &str)] = &[
    (
        "plans",
        "plan",
        r#"{"name": "Pro", "models": ["gpt-4o-mini"], "rpm": 600, "credit_cap_micros": 50000000}"#,
    ),
    (
        "accounts",
        "account",
        r#"{"name": "Acme Inc", "plan": "pro"}"#,
    ),
    (
        "teams",
        "team",
        r#"{"account": "acme", "name": "Research", "rpm": 60, "budget_micros": 10000000}"#,
    ),
];

/// The first instant of this UTC month, as `YYYY-MM-01`.
fn month_start() -> String {
    let now = crate::clock::rfc3339(crate::clock::unix_secs());
    format!("{}-01", now.get(..7).unwrap_or("1970-01"))
}

/// An entity's spec: its JSON without `id` and `created_at`.
fn spec_of(e: &Value) -> Value {
    let mut m: Map<String, Value> = e.as_object().cloned().unwrap_or_default();
    m.remove("id");
    m.remove("created_at");
    Value::Object(m)
}

/// `GET /console/directory`.
pub(super) async fn page(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match session::require(&state, &sessions, &headers) {
        Ok(s) => render(&state, &s, Notice::from_query(&q), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one page of three tables; splitting scatters the layout"
)]
async fn render(state: &SharedState, s: &Session, notice: Notice, status: StatusCode) -> Response {
    let from = month_start();
    let (plans, accounts, teams, by_account, by_team) = tokio::join!(
        api::get(state, "/admin/v1/plans"),
        api::get(state, "/admin/v1/accounts"),
        api::get(state, "/admin/v1/teams"),
        api::get(
            state,
            format!("/admin/v1/usage?group_by=account&from={from}")
        ),
        api::get(state, format!("/admin/v1/usage?group_by=team&from={from}")),
    );
    if let Some(f) = [&plans, &accounts, &teams, &by_account, &by_team]
        .into_iter()
        .find(|r| !r.ok())
    {
        return html::respond(
            f.status,
            html::page(
                "Plans & accounts",
                "/console/directory",
                &s.csrf,
                &Notice::Failed(f.message()),
                "",
            ),
        );
    }
    let spend_by = |reply: &api::Reply| -> HashMap<String, i64> {
        reply
            .data()
            .iter()
            .filter_map(|g| {
                Some((
                    g["group"].as_str()?.to_owned(),
                    g["cost_micros"].as_i64().unwrap_or(0),
                ))
            })
            .collect()
    };
    let (account_spend, team_spend) = (spend_by(&by_account), spend_by(&by_team));
    let caps: HashMap<&str, i64> = plans
        .data()
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["credit_cap_micros"].as_i64()?)))
        .collect();
    let mut body = String::new();
    let _ = write!(
        body,
        "<details class=\"panel\"><summary>Create a plan, account or team</summary>\
         <form method=\"post\" action=\"/console/directory\" class=\"grid-form\">{}\
         <label>Kind <select name=\"kind\">",
        html::csrf_field(&s.csrf)
    );
    for (path, noun, _) in KINDS {
        let _ = write!(body, "<option value=\"{path}\">{noun}</option>");
    }
    body.push_str(
        "</select></label><label>ID <input name=\"id\" required pattern=\"[A-Za-z0-9_-]{1,128}\"></label>\
         <label class=\"wide\">Spec (JSON) <textarea name=\"spec\" rows=\"3\">{}</textarea></label>\
         <button type=\"submit\">Create</button></form><p class=\"muted\">Examples: ",
    );
    for (_, noun, example) in KINDS {
        let _ = write!(body, "{noun} <code>{}</code> ", esc(example));
    }
    body.push_str(
        "(credits in micro-units). In an edit, a field set to <code>null</code> is cleared.</p></details>",
    );
    let _ = write!(
        body,
        "<h2>Accounts</h2><p class=\"muted\">Spend since {from} (UTC) against the plan's monthly credit cap.</p>"
    );
    body.push_str("<table class=\"data\"><thead><tr><th>ID</th><th>Name</th><th>Plan</th><th>Spend this month</th><th></th></tr></thead><tbody>");
    for a in accounts.data() {
        let id = a["id"].as_str().unwrap_or("");
        let spent = account_spend.get(id).copied().unwrap_or(0);
        let cap = a["plan"].as_str().and_then(|p| caps.get(p)).copied();
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            esc(&html::show(&a["name"])),
            esc(&html::show(&a["plan"])),
            meter(spent, cap),
            edit_form(s, "accounts", a),
        );
    }
    if accounts.data().is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"muted\">No accounts yet; keys without one belong to <code>default</code>.</td></tr>");
    }
    body.push_str("</tbody></table><h2>Plans</h2><table class=\"data\"><thead><tr><th>ID</th><th>Name</th><th>Models</th>\
         <th>Limits</th><th>Monthly cap</th><th></th></tr></thead><tbody>");
    for p in plans.data() {
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p["id"].as_str().unwrap_or("")),
            esc(&html::show(&p["name"])),
            esc(&models(&p["models"])),
            esc(&limits(p)),
            p["credit_cap_micros"]
                .as_i64()
                .map_or_else(|| "none".to_owned(), html::credits),
            edit_form(s, "plans", p),
        );
    }
    if plans.data().is_empty() {
        body.push_str("<tr><td colspan=\"6\" class=\"muted\">No plans yet.</td></tr>");
    }
    body.push_str("</tbody></table><h2>Teams</h2><table class=\"data\"><thead><tr><th>ID</th><th>Account</th><th>Name</th>\
         <th>Models</th><th>Limits</th><th>Spend this month</th><th></th></tr></thead><tbody>");
    for t in teams.data() {
        let id = t["id"].as_str().unwrap_or("");
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            esc(&html::show(&t["account"])),
            esc(&html::show(&t["name"])),
            esc(&models(&t["models"])),
            esc(&limits(t)),
            meter(
                team_spend.get(id).copied().unwrap_or(0),
                t["budget_micros"].as_i64()
            ),
            edit_form(s, "teams", t),
        );
    }
    if teams.data().is_empty() {
        body.push_str("<tr><td colspan=\"7\" class=\"muted\">No teams yet.</td></tr>");
    }
    body.push_str("</tbody></table>");
    html::respond(
        status,
        html::page(
            "Plans & accounts",
            "/console/directory",
            &s.csrf,
            &notice,
            &body,
        ),
    )
}

fn models(v: &Value) -> String {
    if v.is_null() {
        "all".to_owned()
    } else {
        html::show(v)
    }
}

fn limits(e: &Value) -> String {
    let parts: Vec<String> = ["rpm", "tpm", "concurrency"]
        .iter()
        .filter_map(|f| e[*f].as_i64().map(|n| format!("{f} {n}")))
        .collect();
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Spend against a cap: a `<meter>` and the figures; just the spend without a cap.
#[expect(
    clippy::cast_precision_loss,
    reason = "a meter's position needs no exactness; the figures beside it are exact"
)]
fn meter(spent: i64, cap: Option<i64>) -> String {
    match cap {
        Some(cap) if cap > 0 => format!(
            "<meter min=\"0\" max=\"{cap}\" low=\"{low}\" high=\"{high}\" value=\"{spent}\" title=\"{pct:.1}% of the cap\"></meter> {} of {} credits",
            html::credits(spent),
            html::credits(cap),
            low = cap / 10 * 7,
            high = cap / 10 * 9,
            pct = spent as f64 / cap as f64 * 100.0,
        ),
        _ => format!("{} credits (no cap)", html::credits(spent)),
    }
}

fn edit_form(s: &Session, kind: &str, e: &Value) -> String {
    let id = e["id"].as_str().unwrap_or("");
    format!(
        "<details><summary>Edit</summary><form method=\"post\" action=\"/console/directory/{kind}/{}\">{}\
         <textarea name=\"spec\" rows=\"3\" cols=\"40\">{}</textarea><button type=\"submit\">Save</button></form></details>",
        esc(&html::url_enc(id)),
        html::csrf_field(&s.csrf),
        esc(&spec_of(e).to_string()),
    )
}

/// The spec field of a form as a JSON object, or the message to show.
fn spec_field(form: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let text = html::field(form, "spec");
    let text = if text.is_empty() { "{}" } else { text };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("The spec must be a JSON object, like {\"name\": \"Acme\"}.".to_owned()),
        Err(e) => Err(format!("The spec is not valid JSON: {e}")),
    }
}

/// `POST /console/directory`: creates a plan, account or team.
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
    let kind = html::field(&form, "kind");
    let Some((path, _, _)) = KINDS.iter().find(|(p, _, _)| *p == kind) else {
        return render(
            &state,
            &s,
            Notice::Failed("Choose a plan, account or team.".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let mut spec = match spec_field(&form) {
        Ok(m) => m,
        Err(e) => return render(&state, &s, Notice::Failed(e), StatusCode::BAD_REQUEST).await,
    };
    spec.insert("id".into(), html::field(&form, "id").into());
    let reply = api::call(
        &state,
        Method::POST,
        &format!("/admin/v1/{path}"),
        Some(&Value::Object(spec)),
    )
    .await;
    if !reply.ok() {
        return render(&state, &s, Notice::Failed(reply.message()), reply.status).await;
    }
    html::see_other("/console/directory?done=created")
}

/// `POST /console/directory/{kind}/{id}`: replaces the given fields of an entity.
pub(super) async fn update(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match session::form_post(&state, &sessions, &headers, body).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let Some((path, _, _)) = KINDS.iter().find(|(p, _, _)| *p == kind) else {
        return render(
            &state,
            &s,
            Notice::Failed("No such kind of entity.".into()),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    let spec = match spec_field(&form) {
        Ok(m) => m,
        Err(e) => return render(&state, &s, Notice::Failed(e), StatusCode::BAD_REQUEST).await,
    };
    let reply = api::call(
        &state,
        Method::PATCH,
        &format!("/admin/v1/{path}/{}", html::url_enc(&id)),
        Some(&Value::Object(spec)),
    )
    .await;
    if !reply.ok() {
        return render(&state, &s, Notice::Failed(reply.message()), reply.status).await;
    }
    html::see_other("/console/directory?done=updated")
}
