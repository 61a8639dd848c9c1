//! The tasks pages: the list with a status filter, and a task's timeline (states, polls,
//! charges) with its callback deliveries and every attempt; a dead delivery can be replayed.
//! Reads `/admin/v1/tasks…`; the replay is `POST /admin/v1/tasks/{id}/deliveries/{event}/replay`.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use super::api;
use super::html::{self, Notice, esc};
use super::session::{self, Session, Shared};
use crate::state::SharedState;

/// Task states, as the admin API spells them.
const STATUSES: &[&str] = &[
    "submitting",
    "pending",
    "running",
    "succeeded",
    "failed",
    "canceled",
];
/// Tasks shown in the list (newest first, after the filters, which the admin API applies).
const LIST_LIMIT: &str = "500";

/// `GET /console/tasks`.
pub(super) async fn list(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = match session::require(&state, &sessions, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let status = q.get("status").map_or("", |v| v.trim());
    let account = q.get("account").map_or("", |v| v.trim());
    let reply = api::get(
        &state,
        format!(
            "/admin/v1/tasks?{}",
            html::query(&[
                ("account", account),
                ("status", status),
                ("limit", LIST_LIMIT)
            ])
        ),
    )
    .await;
    let mut body = String::from(
        "<form method=\"get\" class=\"inline filters\" data-autosubmit><label>Status <select name=\"status\"><option value=\"\">any</option>",
    );
    for st in STATUSES {
        let sel = if *st == status { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{st}</option>");
    }
    let _ = write!(
        body,
        "</select></label><label>Account <input name=\"account\" value=\"{}\"></label><button type=\"submit\">Filter</button></form>",
        esc(account)
    );
    if !reply.ok() {
        return html::respond(
            reply.status,
            html::page(
                "Tasks",
                "/console/tasks",
                &s.csrf,
                &Notice::Failed(reply.message()),
                &body,
            ),
        );
    }
    body.push_str(
        "<table class=\"data\"><thead><tr><th>Task</th><th>Created</th><th>Model</th><th>Kind</th>\
         <th>Account</th><th>Status</th><th class=\"num\">Polls</th><th class=\"num\">Charged</th><th>Callback</th></tr></thead><tbody>",
    );
    let mut shown = 0;
    for t in reply.data() {
        shown += 1;
        let id = t["id"].as_str().unwrap_or("");
        let st = t["status"].as_str().unwrap_or("");
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/tasks/{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><span class=\"badge b-{st}\">{st}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&html::url_enc(id)),
            esc(id),
            esc(&html::time_ms(t["created_at_ms"].as_i64().unwrap_or(0))),
            esc(t["model"].as_str().unwrap_or("")),
            esc(t["kind"].as_str().unwrap_or("")),
            esc(t["account"].as_str().unwrap_or("")),
            t["polls"].as_i64().unwrap_or(0),
            t["charged_micros"]
                .as_i64()
                .map_or_else(|| "—".to_owned(), html::credits),
            if t["callback_url"].is_string() {
                "yes"
            } else {
                "—"
            },
            st = esc(st),
        );
    }
    if shown == 0 {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">No tasks match.</td></tr>");
    }
    let _ = write!(
        body,
        "</tbody></table><p class=\"muted\">Showing {shown} of the latest {} tasks.</p>",
        reply.data().len()
    );
    html::respond(
        StatusCode::OK,
        html::page("Tasks", "/console/tasks", &s.csrf, &Notice::None, &body),
    )
}

/// `GET /console/tasks/{id}`.
pub(super) async fn detail(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match session::require(&state, &sessions, &headers) {
        Ok(s) => {
            let notice = Notice::from_query(&q);
            render_detail(&state, &s, &id, notice, StatusCode::OK).await
        }
        Err(r) => r,
    }
}

async fn render_detail(
    state: &SharedState,
    s: &Session,
    id: &str,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let path = format!("/admin/v1/tasks/{}", html::url_enc(id));
    let (task, deliveries) = tokio::join!(
        api::get(state, &path),
        api::get(state, format!("{path}/deliveries")),
    );
    if let Some(f) = [&task, &deliveries].into_iter().find(|r| !r.ok()) {
        return html::respond(
            f.status,
            html::page(
                "Task",
                "/console/tasks",
                &s.csrf,
                &Notice::Failed(f.message()),
                "<p><a href=\"/console/tasks\">All tasks</a></p>",
            ),
        );
    }
    let t = &task.body;
    let st = t["status"].as_str().unwrap_or("");
    let mut body = format!(
        "<dl class=\"facts\"><dt>Status</dt><dd><span class=\"badge b-{st}\">{st}</span> ({})</dd>\
         <dt>Model</dt><dd>{} → {}/{}</dd><dt>Account</dt><dd>{}</dd><dt>Key</dt><dd><a href=\"/console/keys/{k}\">{kt}</a></dd>\
         <dt>Upstream ID</dt><dd>{}</dd><dt>Callback</dt><dd>{}</dd></dl>",
        esc(t["native_status"].as_str().unwrap_or("")),
        esc(t["model"].as_str().unwrap_or("")),
        esc(t["provider"].as_str().unwrap_or("")),
        esc(t["upstream_model"].as_str().unwrap_or("")),
        esc(t["account"].as_str().unwrap_or("")),
        t["upstream_id"]
            .as_str()
            .map_or_else(|| "—".to_owned(), |u| format!("<code>{}</code>", esc(u))),
        esc(&html::show(&t["callback_url"])),
        st = esc(st),
        k = esc(&html::url_enc(t["key_id"].as_str().unwrap_or(""))),
        kt = esc(t["key_id"].as_str().unwrap_or("")),
    );
    body.push_str(&timeline(t));
    body.push_str("<h2>Callback deliveries</h2>");
    if deliveries.data().is_empty() {
        body.push_str("<p class=\"muted\">No callback events (the task has no callback URL, or no state change to report yet).</p>");
    }
    for d in deliveries.data() {
        body.push_str(&delivery(s, id, d));
    }
    html::respond(
        status,
        html::page(
            &format!("Task {id}"),
            "/console/tasks",
            &s.csrf,
            &notice,
            &body,
        ),
    )
}

/// A task's timeline: the instants its row records (created, last poll, last change, finished
/// or next poll), in order, with the charges.
fn timeline(t: &Value) -> String {
    let ms = |f: &str| t[f].as_i64();
    let st = t["status"].as_str().unwrap_or("");
    let mut events: Vec<(i64, String)> = Vec::new();
    if let Some(c) = ms("created_at_ms") {
        events.push((
            c,
            format!(
                "created; {} credits reserved",
                html::credits(t["reserved_micros"].as_i64().unwrap_or(0))
            ),
        ));
    }
    if let Some(r) = ms("refreshed_at_ms").filter(|r| *r > 0) {
        events.push((
            r,
            format!(
                "last polled upstream ({} polls in all)",
                t["polls"].as_i64().unwrap_or(0)
            ),
        ));
    }
    if let Some(u) = ms("updated_at_ms") {
        events.push((u, format!("last state change: {st}")));
    }
    if let Some(f) = ms("finished_at_ms") {
        let charge = t["charged_micros"].as_i64().map_or_else(
            || "no charge".to_owned(),
            |c| format!("charged {} credits", html::credits(c)),
        );
        let error = t["error_code"]
            .as_str()
            .map(|c| format!(" — {c}: {}", t["error_message"].as_str().unwrap_or("")))
            .unwrap_or_default();
        events.push((f, format!("finished {st}; {charge}{error}")));
    } else if let Some(n) = ms("next_poll_ms") {
        events.push((n, "next poll due".to_owned()));
    }
    events.sort_by_key(|(at, _)| *at);
    let mut body = String::from("<h2>Timeline</h2><ol class=\"timeline\">");
    for (at, what) in &events {
        let _ = write!(
            body,
            "<li><time>{}</time> {}</li>",
            esc(&html::time_ms(*at)),
            esc(what)
        );
    }
    body.push_str("</ol>");
    body
}

fn delivery(s: &Session, task: &str, d: &Value) -> String {
    let event = d["event_id"].as_str().unwrap_or("");
    let state = d["state"].as_str().unwrap_or("");
    let mut out = format!(
        "<section class=\"panel delivery\" data-event=\"{ev}\"><p><code>{ev}</code> to {} · \
         <span class=\"badge b-{st}\">{st}</span> · {} attempts",
        esc(d["url"].as_str().unwrap_or("")),
        d["attempts"].as_i64().unwrap_or(0),
        ev = esc(event),
        st = esc(state),
    );
    if let Some(at) = d["delivered_at_ms"].as_i64() {
        let _ = write!(out, " · delivered {}", esc(&html::time_ms(at)));
    } else if state == "pending" {
        let _ = write!(
            out,
            " · next attempt {}",
            esc(&html::time_ms(d["next_attempt_ms"].as_i64().unwrap_or(0)))
        );
    }
    out.push_str("</p>");
    if state != "delivered" {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/console/tasks/{}/deliveries/{}/replay\">{}\
             <button type=\"submit\">Replay</button></form>",
            esc(&html::url_enc(task)),
            esc(&html::url_enc(event)),
            html::csrf_field(&s.csrf)
        );
    }
    out.push_str(
        "<table class=\"data\"><thead><tr><th class=\"num\">#</th><th>Time</th><th class=\"num\">Status</th>\
         <th>Error</th><th class=\"num\">Duration</th></tr></thead><tbody>",
    );
    for a in d["attempt_log"].as_array().map_or(&[][..], Vec::as_slice) {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{} ms</td></tr>",
            a["attempt"].as_i64().unwrap_or(0),
            esc(&html::time_ms(a["at_ms"].as_i64().unwrap_or(0))),
            esc(&html::show(&a["status"])),
            esc(&html::show(&a["error"])),
            a["duration_ms"].as_i64().unwrap_or(0),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// `POST /console/tasks/{id}/deliveries/{event}/replay`.
pub(super) async fn replay(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, _) = match session::form_post(&state, &sessions, &headers, body).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    let reply = api::call(
        &state,
        Method::POST,
        &format!(
            "/admin/v1/tasks/{}/deliveries/{}/replay",
            html::url_enc(&id),
            html::url_enc(&event)
        ),
        None,
    )
    .await;
    if !reply.ok() {
        return render_detail(
            &state,
            &s,
            &id,
            Notice::Failed(reply.message()),
            reply.status,
        )
        .await;
    }
    html::see_other(&format!(
        "/console/tasks/{}?done=replayed",
        html::url_enc(&id)
    ))
}
