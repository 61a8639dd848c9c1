//! The operator's web console at `/console/`, on the gateway's own listener: server-rendered
//! HTML pages with charts drawn as inline SVG, a small embedded script for copy buttons,
//! tooltips and confirmations, and an embedded stylesheet (light and dark). Nothing is fetched
//! at run time.
//!
//! Sign-in exchanges the admin token for a session cookie (`session.rs`); every page reads
//! and every form changes the gateway through the admin REST API, called in process
//! (`api.rs`), so the console has no data path of its own. Pages: overview, keys, usage (with
//! CSV export), plans/accounts/teams, tasks (with delivery replay) and routes.

mod api;
mod breakers;
mod chart;
mod directory;
mod html;
mod keys;
mod overview;
mod range;
mod session;
mod tasks;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderValue, header};

use crate::state::SharedState;

/// The console's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(overview::page))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}", get(keys::detail).post(keys::update))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/usage", get(usage::page))
        .route("/console/usage.csv", get(usage::csv))
        .route(
            "/console/directory",
            get(directory::page).post(directory::create),
        )
        .route("/console/directory/{kind}/{id}", post(directory::update))
        .route("/console/tasks", get(tasks::list))
        .route("/console/tasks/{id}", get(tasks::detail))
        .route(
            "/console/tasks/{id}/deliveries/{event}/replay",
            post(tasks::replay),
        )
        .route("/console/routes", get(breakers::page))
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", html::CSS) }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", html::JS) }),
        )
        .layer(Extension(Arc::new(session::Sessions::default())))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
