//! The routes page: each route's breaker state, error rate (failed attempts over attempts
//! since start) and latency (the peak-EWMA time to first byte the router balances on), from
//! `GET /admin/v1/routes`.

use std::fmt::Write as _;

use axum::extract::{Extension, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::api;
use super::chart::{self, Unit};
use super::html::{self, Notice, esc};
use super::session::{self, Shared};
use crate::state::SharedState;

/// A route's error rate in percent (0 without attempts).
#[expect(
    clippy::cast_precision_loss,
    reason = "attempt counts are far below 2^52"
)]
fn error_rate(r: &Value) -> f64 {
    let attempts = r["attempts"].as_u64().unwrap_or(0);
    let failures = r["failures"].as_u64().unwrap_or(0);
    if attempts == 0 {
        0.0
    } else {
        failures as f64 / attempts as f64 * 100.0
    }
}

fn route_name(r: &Value) -> String {
    format!(
        "{} → {}/{}",
        r["model"].as_str().unwrap_or(""),
        r["provider"].as_str().unwrap_or(""),
        r["upstream_model"].as_str().unwrap_or("")
    )
}

/// The routes as a table (also on the overview).
pub(super) fn table(routes: &[Value]) -> String {
    let mut out = String::from(
        "<table class=\"data\"><thead><tr><th>Model</th><th>Provider</th><th>Upstream model</th>\
         <th class=\"num\">Priority</th><th class=\"num\">Weight</th><th>Breaker</th>\
         <th class=\"num\">Attempts</th><th class=\"num\">Failures</th><th class=\"num\">Error rate</th>\
         <th class=\"num\">In flight</th><th class=\"num\">TTFB (EWMA)</th></tr></thead><tbody>",
    );
    for r in routes {
        let state = r["state"].as_str().unwrap_or("closed");
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td><span class=\"badge b-{}\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(r["model"].as_str().unwrap_or("")),
            esc(r["provider"].as_str().unwrap_or("")),
            esc(r["upstream_model"].as_str().unwrap_or("")),
            r["priority"],
            r["weight"],
            esc(state),
            esc(&state.replace('_', "-")),
            r["attempts"],
            r["failures"],
            Unit::Percent.format(error_rate(r)),
            r["inflight"],
            Unit::Millis.format(r["ttfb_ewma_ms"].as_f64().unwrap_or(0.0)),
        );
    }
    if routes.is_empty() {
        out.push_str("<tr><td colspan=\"11\" class=\"muted\">No routes configured.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// `GET /console/routes`.
pub(super) async fn page(
    State(state): State<SharedState>,
    Extension(sessions): Shared,
    headers: HeaderMap,
) -> Response {
    let s = match session::require(&state, &sessions, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let routes = api::get(&state, "/admin/v1/routes").await;
    if !routes.ok() {
        return html::respond(
            routes.status,
            html::page(
                "Routes",
                "/console/routes",
                &s.csrf,
                &Notice::Failed(routes.message()),
                "",
            ),
        );
    }
    let data = routes.data();
    let mut body = String::from(
        "<p class=\"muted\">Live state of this instance's router since it started: a breaker opens \
         after repeated failures and half-opens to probe. Error rate is failed attempts over \
         attempts; latency is the time to first byte the latency strategy balances on.</p>",
    );
    body.push_str(&table(data));
    let rates: Vec<(String, f64)> = data
        .iter()
        .map(|r| (route_name(r), error_rate(r)))
        .collect();
    let ttfb: Vec<(String, f64)> = data
        .iter()
        .map(|r| (route_name(r), r["ttfb_ewma_ms"].as_f64().unwrap_or(0.0)))
        .collect();
    body.push_str("<section class=\"grid2\">");
    body.push_str(&chart::bars("Error rate by route", &rates, Unit::Percent));
    body.push_str(&chart::bars(
        "Time to first byte by route",
        &ttfb,
        Unit::Millis,
    ));
    body.push_str("</section>");
    html::respond(
        StatusCode::OK,
        html::page("Routes", "/console/routes", &s.csrf, &Notice::None, &body),
    )
}
