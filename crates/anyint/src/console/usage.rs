//! The usage page: `/admin/v1/usage` grouped by day, hour, model, key, team or account, as a
//! chart and a table, with the same filters as the API, the latest requests, and CSV export of
//! exactly what the table shows.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use super::api;
use super::chart::{self, Series, Style, Unit};
use super::html::{self, Notice, esc};
use super::overview::group_table;
use super::range;
use super::session::{self, Shared};
use crate::state::SharedState;

/// The groupings offered, as the usage API names them.
const GROUPS: &[&str] = &["day", "hour", "model", "key", "team", "account"];
/// The filters passed through to the usage API.
const FILTERS: &[&str] = &["account", "team", "key", "model"];
/// The chart metrics offered: (value, label).
const METRICS: &[(&str, &str)] = &[
    ("requests", "Requests"),
    ("tokens", "Tokens"),
    ("cost_micros", "Spend"),
    ("errors", "Errors"),
];
/// Most buckets a time chart fills (longer windows are drawn by the buckets that have usage).
const MAX_FILL: i64 = 400;

/// The page's parameters, with defaults: by day over the last 30 days.
struct Params {
    group_by: String,
    from: String,
    to: String,
    metric: String,
    filters: Vec<(&'static str, String)>,
}

impl Params {
    fn read(q: &HashMap<String, String>) -> Self {
        let get = |k: &str| q.get(k).map_or("", |v| v.trim()).to_owned();
        let group_by = Some(get("group_by"))
            .filter(|g| GROUPS.contains(&g.as_str()))
            .unwrap_or_else(|| "day".to_owned());
        let from = Some(get("from"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                crate::clock::rfc3339(crate::clock::unix_secs() - 29 * 86_400)
                    .get(..10)
                    .unwrap_or_default()
                    .to_owned()
            });
        let metric = Some(get("metric"))
            .filter(|m| METRICS.iter().any(|(v, _)| v == m))
            .unwrap_or_else(|| "requests".to_owned());
        Self {
            group_by,
            from,
            to: get("to"),
            metric,
            filters: FILTERS.iter().map(|f| (*f, get(f))).collect(),
        }
    }

    /// The usage API query for these parameters (without `group_by` when `grouped` is false).
    fn api_query(&self, grouped: bool, limit: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![("from", &self.from), ("to", &self.to)];
        if grouped {
            pairs.push(("group_by", &self.group_by));
        } else {
            pairs.push(("limit", limit));
        }
        for (k, v) in &self.filters {
            pairs.push((k, v));
        }
        html::query(&pairs)
    }

    /// This page's own query (for the CSV link).
    fn page_query(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("group_by", &self.group_by),
            ("from", &self.from),
            ("to", &self.to),
        ];
        for (k, v) in &self.filters {
            pairs.push((k, v));
        }
        html::query(&pairs)
    }
}

/// `GET /console/usage`.
pub(super) async fn page(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = match session::require(&state, &sessions, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let params = Params::read(&q);
    let p = &params;
    let (groups, rows) = tokio::join!(
        api::get(&state, format!("/admin/v1/usage?{}", p.api_query(true, ""))),
        api::get(
            &state,
            format!("/admin/v1/usage?{}", p.api_query(false, "50"))
        ),
    );
    let mut body = filter_form(p);
    let notice = match [&groups, &rows].into_iter().find(|r| !r.ok()) {
        Some(failed) => {
            let status = failed.status;
            let n = Notice::Failed(failed.message());
            return html::respond(
                status,
                html::page("Usage", "/console/usage", &s.csrf, &n, &body),
            );
        }
        None => Notice::None,
    };
    let metric_label = METRICS
        .iter()
        .find(|(v, _)| *v == p.metric)
        .map_or("Requests", |(_, l)| *l);
    let unit = match p.metric.as_str() {
        "tokens" => Unit::Tokens,
        "cost_micros" => Unit::Credits,
        _ => Unit::Requests,
    };
    let data = groups.data();
    body.push_str(&chart_for(p, data, metric_label, unit));
    let _ = write!(
        body,
        "<p class=\"actions\"><a class=\"button\" href=\"/console/usage.csv?{}\" download>Export CSV</a></p>",
        esc(&p.page_query())
    );
    let heading = match p.group_by.as_str() {
        "day" => "Day (UTC)",
        "hour" => "Hour (UTC)",
        "model" => "Model",
        "key" => "Key",
        "team" => "Team",
        _ => "Account",
    };
    let by_key = p.group_by == "key";
    body.push_str(&group_table(data, heading, |g| {
        (by_key && !g.is_empty()).then(|| format!("/console/keys/{}", html::url_enc(g)))
    }));
    body.push_str("<h2>Latest requests</h2>");
    body.push_str(&rows_table(rows.data()));
    html::respond(
        StatusCode::OK,
        html::page("Usage", "/console/usage", &s.csrf, &notice, &body),
    )
}

fn filter_form(p: &Params) -> String {
    let mut out = String::from(
        "<form method=\"get\" class=\"inline filters\" data-autosubmit><label>Group by <select name=\"group_by\">",
    );
    for g in GROUPS {
        let sel = if *g == p.group_by { " selected" } else { "" };
        let _ = write!(out, "<option{sel}>{g}</option>");
    }
    out.push_str("</select></label><label>Chart <select name=\"metric\">");
    for (v, l) in METRICS {
        let sel = if *v == p.metric { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{v}\"{sel}>{l}</option>");
    }
    let _ = write!(
        out,
        "</select></label><label>From <input name=\"from\" value=\"{}\" placeholder=\"2026-01-31 or Unix seconds\"></label>\
         <label>To <input name=\"to\" value=\"{}\" placeholder=\"now\"></label>",
        esc(&p.from),
        esc(&p.to)
    );
    for (k, v) in &p.filters {
        let _ = write!(
            out,
            "<label>{} <input name=\"{k}\" value=\"{}\"></label>",
            esc(&format!("{}{}", &k[..1].to_uppercase(), &k[1..])),
            esc(v)
        );
    }
    out.push_str("<button type=\"submit\">Show</button></form>");
    out
}

/// A time chart for day or hour groupings (empty buckets filled in), else a bar chart.
fn chart_for(p: &Params, data: &[Value], label: &str, unit: Unit) -> String {
    let step = match p.group_by.as_str() {
        "day" => 86_400,
        "hour" => 3600,
        _ => {
            let mut items: Vec<(String, f64)> = data
                .iter()
                .map(|g| {
                    let name = g["group"].as_str().unwrap_or("");
                    (
                        if name.is_empty() { "(none)" } else { name }.to_owned(),
                        range::metric_of(g, &p.metric),
                    )
                })
                .collect();
            items.sort_by(|a, b| b.1.total_cmp(&a.1));
            items.truncate(20);
            return chart::bars(&format!("{label} by {}", p.group_by), &items, unit);
        }
    };
    let now = crate::clock::unix_secs();
    let from = crate::clock::parse_instant(&p.from).unwrap_or(now - 29 * 86_400);
    let to = crate::clock::parse_instant(&p.to).unwrap_or(now + 1);
    let first = from.div_euclid(step) * step;
    let last = (to - 1).div_euclid(step) * step;
    let starts: Vec<i64> = if last >= first && (last - first) / step < MAX_FILL {
        (0..=(last - first) / step)
            .map(|i| first + i * step)
            .collect()
    } else {
        // Too long to draw every bucket: draw the buckets that have usage.
        data.iter()
            .filter_map(|g| g["group"].as_str())
            .filter_map(|g| {
                crate::clock::parse_instant(g.get(..10).unwrap_or(g)).map(|d| d + hour_of(g) * 3600)
            })
            .collect()
    };
    let values = range::fill(data, &starts, step, &p.metric);
    chart::time_chart(
        &format!("{label} by {} (UTC)", p.group_by),
        &starts,
        step,
        &[Series {
            name: &p.metric.replace("_micros", ""),
            class: "s1",
            values,
        }],
        unit,
        Style::Bars,
    )
}

/// The hour of an hour group label (`2026-01-31T13:00:00Z` → 13); 0 for a day label.
fn hour_of(label: &str) -> i64 {
    label.get(11..13).and_then(|h| h.parse().ok()).unwrap_or(0)
}

fn rows_table(rows: &[Value]) -> String {
    let mut out = String::from(
        "<table class=\"data\" id=\"latest\"><thead><tr><th>Time</th><th>Request</th><th>Key</th><th>Model</th>\
         <th>Family</th><th class=\"num\">Status</th><th class=\"num\">Input</th><th class=\"num\">Output</th>\
         <th class=\"num\">Spend</th><th class=\"num\">Latency</th></tr></thead><tbody>",
    );
    for r in rows {
        let n = |f: &str| r[f].as_i64().unwrap_or(0);
        let key = r["key_id"].as_str().unwrap_or("");
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td><a href=\"/console/keys/{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} ms</td></tr>",
            esc(&html::time_ms(n("created_at_ms"))),
            esc(r["request_id"].as_str().unwrap_or("")),
            esc(&html::url_enc(key)),
            esc(key),
            esc(r["model"].as_str().unwrap_or("")),
            esc(r["family"].as_str().unwrap_or("")),
            n("status"),
            html::int(n("prompt_tokens")),
            html::int(n("completion_tokens")),
            html::credits(n("cost_micros")),
            html::int(n("latency_ms")),
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"10\" class=\"muted\">No requests match.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// One CSV field: quoted when needed, and a leading `= + - @` defused so a spreadsheet does
/// not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /console/usage.csv`: the page's grouped table as CSV.
pub(super) async fn csv(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = session::require(&state, &sessions, &headers) {
        return r;
    }
    let p = Params::read(&q);
    let reply = api::get(&state, format!("/admin/v1/usage?{}", p.api_query(true, ""))).await;
    if !reply.ok() {
        return (reply.status, reply.message()).into_response();
    }
    let cols = [
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "web_searches",
        "cost_micros",
    ];
    let mut out = format!("{},{}\r\n", csv_field(&p.group_by), cols.join(","));
    for g in reply.data() {
        out.push_str(&csv_field(g["group"].as_str().unwrap_or("")));
        for c in cols {
            let _ = write!(out, ",{}", g[c].as_i64().unwrap_or(0));
        }
        out.push_str("\r\n");
    }
    let mut resp = out.into_response();
    let h = resp.headers_mut();
    html::secure_headers(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"anyint-usage-by-{}.csv\"",
        p.group_by
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("gpt-4o"), "gpt-4o");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }

    #[test]
    fn defaults_are_thirty_days_by_day() {
        let p = Params::read(&HashMap::new());
        assert_eq!(p.group_by, "day");
        assert_eq!(p.metric, "requests");
        assert_eq!(p.from.len(), 10);
        assert!(p.api_query(true, "").contains("group_by=day"));
        assert!(p.api_query(false, "50").contains("limit=50"));
    }
}
