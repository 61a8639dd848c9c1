//! The overview page: requests, tokens, spend and error rate over the last hour, day or 30
//! days; the top models and keys of that window; and the live state of every route.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::api;
use super::chart::{self, Series, Style, Unit};
use super::html::{self, Notice, esc};
use super::range::{self, Range};
use super::session::{self, Shared};
use crate::state::SharedState;

/// `GET /console/`.
#[expect(clippy::too_many_lines, reason = "one page's HTML, top to bottom")]
pub(super) async fn page(
    State(state): State<SharedState>,
    axum::extract::Extension(sessions): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = match session::require(&state, &sessions, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let range = Range::parse(q.get("range").map(String::as_str));
    let now = crate::clock::unix_secs();
    let starts = range.starts(now);
    let from = starts.first().copied().unwrap_or(now).to_string();
    let series_q = html::query(&[("group_by", range.group_by()), ("from", &from)]);
    let models_q = html::query(&[("group_by", "model"), ("from", &from)]);
    let keys_q = html::query(&[("group_by", "key"), ("from", &from)]);
    let (series, models, keys, names, routes) = tokio::join!(
        api::get(&state, format!("/admin/v1/usage?{series_q}")),
        api::get(&state, format!("/admin/v1/usage?{models_q}")),
        api::get(&state, format!("/admin/v1/usage?{keys_q}")),
        api::get(&state, "/admin/v1/keys"),
        api::get(&state, "/admin/v1/routes"),
    );
    if let Some(failed) = [&series, &models, &keys, &names, &routes]
        .into_iter()
        .find(|r| !r.ok())
    {
        return html::respond(
            failed.status,
            html::page(
                "Overview",
                "/console/",
                &s.csrf,
                &Notice::Failed(failed.message()),
                "",
            ),
        );
    }
    let step = range.step();
    let requests = range::fill(series.data(), &starts, step, "requests");
    let errors = range::fill(series.data(), &starts, step, "errors");
    let tokens = range::fill(series.data(), &starts, step, "tokens");
    let cost = range::fill(series.data(), &starts, step, "cost_micros");
    let total = |v: &[f64]| v.iter().sum::<f64>();
    let (req_total, err_total) = (total(&requests), total(&errors));
    let error_rate = if req_total > 0.0 {
        err_total / req_total * 100.0
    } else {
        0.0
    };

    let mut body = String::new();
    body.push_str("<form method=\"get\" class=\"inline\" data-autosubmit><label>Window <select name=\"range\">");
    for r in [Range::Hour, Range::Day, Range::Month] {
        let sel = if r == range { " selected" } else { "" };
        let _ = write!(
            body,
            "<option value=\"{}\"{sel}>{}</option>",
            r.as_str(),
            r.label()
        );
    }
    body.push_str("</select></label><button type=\"submit\">Show</button></form>");
    let _ = write!(
        body,
        "<section class=\"cards\">\
         <div class=\"card\"><span>Requests</span><strong>{}</strong></div>\
         <div class=\"card\"><span>Tokens</span><strong>{}</strong></div>\
         <div class=\"card\"><span>Spend (credits)</span><strong>{}</strong></div>\
         <div class=\"card\"><span>Error rate</span><strong>{}</strong></div></section>",
        Unit::Requests.format(req_total),
        Unit::Tokens.format(total(&tokens)),
        Unit::Credits.format(total(&cost)),
        Unit::Percent.format(error_rate),
    );
    let label = range.label();
    body.push_str("<section class=\"grid2\">");
    body.push_str(&chart::time_chart(
        &format!("Requests, {label}"),
        &starts,
        step,
        &[
            Series {
                name: "requests",
                class: "s1",
                values: requests.clone(),
            },
            Series {
                name: "errors",
                class: "s-err",
                values: errors.clone(),
            },
        ],
        Unit::Requests,
        Style::Bars,
    ));
    body.push_str(&chart::time_chart(
        &format!("Tokens, {label}"),
        &starts,
        step,
        &[Series {
            name: "tokens",
            class: "s2",
            values: tokens,
        }],
        Unit::Tokens,
        Style::Bars,
    ));
    body.push_str(&chart::time_chart(
        &format!("Spend, {label}"),
        &starts,
        step,
        &[Series {
            name: "spend",
            class: "s3",
            values: cost,
        }],
        Unit::Credits,
        Style::Bars,
    ));
    body.push_str(&chart::time_chart(
        &format!("Error rate, {label}"),
        &starts,
        step,
        &[Series {
            name: "error rate",
            class: "s-err",
            values: range::rate(&errors, &requests),
        }],
        Unit::Percent,
        Style::Line,
    ));
    body.push_str("</section><section class=\"grid2\">");
    body.push_str(&chart::bars(
        &format!("Top models by requests, {label}"),
        &top(models.data(), ToOwned::to_owned),
        Unit::Requests,
    ));
    let key_names: HashMap<&str, &str> = names
        .data()
        .iter()
        .filter_map(|k| Some((k["id"].as_str()?, k["name"].as_str()?)))
        .collect();
    body.push_str(&chart::bars(
        &format!("Top keys by requests, {label}"),
        &top(keys.data(), |id| {
            key_names
                .get(id)
                .map_or_else(|| id.to_owned(), |n| (*n).to_owned())
        }),
        Unit::Requests,
    ));
    body.push_str("</section><h2>Routes</h2>");
    body.push_str(&super::breakers::table(routes.data()));
    html::respond(
        StatusCode::OK,
        html::page("Overview", "/console/", &s.csrf, &Notice::None, &body),
    )
}

/// The eight largest groups by requests, named by `name`.
fn top(groups: &[Value], name: impl Fn(&str) -> String) -> Vec<(String, f64)> {
    let mut items: Vec<(String, f64)> = groups
        .iter()
        .map(|g| {
            (
                name(g["group"].as_str().unwrap_or("")),
                range::metric_of(g, "requests"),
            )
        })
        .collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1));
    items.truncate(8);
    items
}

/// A usage summary as a table: group, requests, errors, tokens, searches, spend; with a
/// totals row. `link` makes a group's cell a link when it returns a URL.
pub(super) fn group_table(
    groups: &[Value],
    heading: &str,
    link: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = format!(
        "<table class=\"data\"><thead><tr><th>{}</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Errors</th><th class=\"num\">Input tokens</th>\
         <th class=\"num\">Output tokens</th><th class=\"num\">Cached read</th>\
         <th class=\"num\">Web searches</th><th class=\"num\">Spend (credits)</th></tr></thead><tbody>",
        esc(heading)
    );
    let fields = [
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cache_read_tokens",
        "web_searches",
    ];
    let mut totals = [0i64; 7];
    for g in groups {
        let name = g["group"].as_str().unwrap_or("");
        let shown = if name.is_empty() { "(none)" } else { name };
        let cell = match link(name) {
            Some(href) => format!("<a href=\"{}\">{}</a>", esc(&href), esc(shown)),
            None => esc(shown),
        };
        let _ = write!(out, "<tr><td>{cell}</td>");
        for (i, f) in fields.iter().enumerate() {
            let v = g[*f].as_i64().unwrap_or(0);
            totals[i] += v;
            let _ = write!(out, "<td class=\"num\">{}</td>", html::int(v));
        }
        let cost = g["cost_micros"].as_i64().unwrap_or(0);
        totals[6] += cost;
        let _ = write!(out, "<td class=\"num\">{}</td></tr>", html::credits(cost));
    }
    if groups.is_empty() {
        out.push_str("<tr><td colspan=\"8\" class=\"muted\">No usage matches.</td></tr>");
    }
    out.push_str("</tbody><tfoot><tr><th>Total</th>");
    for t in &totals[..6] {
        let _ = write!(out, "<th class=\"num\">{}</th>", html::int(*t));
    }
    let _ = write!(
        out,
        "<th class=\"num\">{}</th></tr></tfoot></table>",
        html::credits(totals[6])
    );
    out
}
