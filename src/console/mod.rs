//! The handling side's web: the console (server-rendered HTML under `/console`, usable on a
//! phone without JavaScript) and the JSON API (`/api/v1`), where handlers work through the open
//! queue of their teams (any day, oldest first, overdue marked) or look at a day's batch, mark
//! requests done or rejected (and take that back the same day), export CSV, and where team
//! leads find the dashboard.
//!
//! Owns HTTP concerns of the handling side only: console sessions and CSRF, bearer tokens,
//! rendering, the CSV export and the API's JSON shapes. Every change to a request goes through
//! [`Desk`] (so a `WatchedLedger` hears of it and who may act is decided in one place); this
//! module must not write requests to the store itself, send anything (the outbox does), or
//! know about WeCom callbacks.
//!
//! [`Desk`]: crate::requests::Desk

mod auth;
mod csv;
mod dashboard;
mod display;
mod failure;
mod html;
mod json_api;
mod listing;
mod pages;
mod peer;
mod session;
mod state;
mod throttle;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

pub use auth::{SESSION_COOKIE, SESSION_TTL};
pub use state::ConsoleState;
pub use throttle::{LoginThrottle, retry_after_secs};

/// The console and API routes, with their state applied so they merge into the main router.
/// No fallback is set here: the main router keeps its own.
pub fn router(state: ConsoleState) -> Router {
    let console = Router::new()
        .route("/console", get(pages::batch))
        .route("/console/login", get(auth::login_form).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route("/console/requests/{id}", get(pages::detail))
        .route(
            "/console/requests/{id}/attachments/{field}",
            get(pages::attachment),
        )
        .route("/console/requests/{id}/{action}", post(pages::act))
        .route("/console/export.csv", get(csv::export))
        .route("/console/dashboard", get(dashboard::page))
        .route("/console/deliveries", get(pages::deliveries))
        .route("/console/deliveries/retry", post(pages::retry))
        .route("/console/deliveries/retry-all", post(pages::retry_all))
        // Cross-site form posts are refused before any handler runs (CSRF tokens are the
        // second line: this one also covers the login form, which has no session yet).
        .layer(middleware::from_fn(auth::same_origin_posts));
    let api = Router::new()
        .route("/api/v1/requests", get(json_api::list))
        .route("/api/v1/requests/open", get(json_api::open))
        .route("/api/v1/requests/{id}", get(json_api::get_one))
        .route("/api/v1/requests/{id}/complete", post(json_api::complete))
        .route("/api/v1/requests/{id}/reject", post(json_api::reject))
        .route("/api/v1/requests/{id}/ticket", post(json_api::ticket))
        .route("/api/v1/requests/{id}/reopen", post(json_api::reopen));
    console.merge(api).with_state(state)
}
