//! The handling side's web: the console (server-rendered HTML under `/console`, usable on a
//! phone without JavaScript) and the JSON API (`/api/v1`), where handlers see each day's batch
//! and mark requests done or rejected.
//!
//! Owns HTTP concerns of the handling side only: console sessions and CSRF, bearer tokens,
//! rendering, the CSV export and the API's JSON shapes. Every change to a request goes through
//! [`Desk`] (so a `WatchedLedger` hears of it and who may act is decided in one place); this
//! module must not write requests to the store itself, send anything (the outbox does), or
//! know about WeCom callbacks.

mod auth;
mod csv;
mod html;
mod json_api;
mod pages;
mod session;
mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use axum::middleware;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

pub use auth::{SESSION_COOKIE, SESSION_TTL};
pub use throttle::{LoginThrottle, retry_after_secs};

use crate::catalog::Team;
use crate::notify::Outbox;
use crate::requests::{
    BatchDay, BatchSchedule, Desk, Handler, HandlerDirectory, LedgerError, Request, RequestFilter,
    Status,
};
use crate::store::Store;

/// What the console and the API need; cheap to clone (everything is shared).
#[derive(Clone)]
pub struct ConsoleState {
    pub desk: Desk,
    pub directory: HandlerDirectory,
    pub store: Arc<dyn Store>,
    pub outbox: Outbox,
    pub schedule: BatchSchedule,
    /// Failed console logins and API tokens, per address and token prefix.
    pub login_throttle: Arc<LoginThrottle>,
}

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
        .route("/console/deliveries", get(pages::deliveries))
        .route("/console/deliveries/retry", post(pages::retry))
        .route("/console/deliveries/retry-all", post(pages::retry_all))
        // Cross-site form posts are refused before any handler runs (CSRF tokens are the
        // second line: this one also covers the login form, which has no session yet).
        .layer(middleware::from_fn(auth::same_origin_posts));
    let api = Router::new()
        .route("/api/v1/requests", get(json_api::list))
        .route("/api/v1/requests/{id}", get(json_api::get_one))
        .route("/api/v1/requests/{id}/complete", post(json_api::complete))
        .route("/api/v1/requests/{id}/reject", post(json_api::reject))
        .route("/api/v1/requests/{id}/ticket", post(json_api::ticket));
    console.merge(api).with_state(state)
}

/// Teams in the order the batch page shows them.
const TEAMS: [Team; 4] = [Team::Rnd, Team::Ops, Team::Functional, Team::Mailbox];

/// Statuses in the order the counts show them.
const STATUSES: [Status; 5] = [
    Status::Submitted,
    Status::Processing,
    Status::Done,
    Status::Rejected,
    Status::Cancelled,
];

/// Where a request came from, for refusal logs.
pub(crate) struct Peer(pub String);

impl Peer {
    /// The address without the port, for per-address limits.
    pub(crate) fn ip(&self) -> Option<std::net::IpAddr> {
        self.0.parse::<SocketAddr>().ok().map(|addr| addr.ip())
    }

    fn of(extensions: &Extensions) -> Self {
        Self(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// One line per refused request: why, where, from whom. Never the token or session id.
pub(crate) fn log_refusal(status: u16, reason: &str, path: &str, peer: &Peer) {
    tracing::warn!(status, reason, path, peer = %peer.0, "handler request refused");
}

/// The query of a batch listing, as typed (every part optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BatchQuery {
    #[serde(default)]
    pub day: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
}

/// A checked batch listing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchView {
    pub day: BatchDay,
    pub status: Option<Status>,
    pub team: Option<Team>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("day must be YYYY-MM-DD")]
    Day,
    #[error("unknown status")]
    Status,
    #[error("unknown team")]
    Team,
}

impl FilterError {
    pub fn chinese(&self) -> &'static str {
        match self {
            Self::Day => "日期格式应为 YYYY-MM-DD",
            Self::Status => "未知的状态",
            Self::Team => "未知的处理组",
        }
    }
}

fn present(raw: Option<&String>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl BatchQuery {
    /// Empty parts mean "any"; the day defaults to the batch open at `now`.
    pub fn check(
        &self,
        schedule: &BatchSchedule,
        now: DateTime<Utc>,
    ) -> Result<BatchView, FilterError> {
        let day = match present(self.day.as_ref()) {
            Some(raw) => {
                BatchDay(NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| FilterError::Day)?)
            }
            None => schedule.batch_for(now),
        };
        let status = present(self.status.as_ref())
            .map(|raw| Status::parse(raw).ok_or(FilterError::Status))
            .transpose()?;
        let team = present(self.team.as_ref())
            .map(|raw| Team::parse(raw).ok_or(FilterError::Team))
            .transpose()?;
        Ok(BatchView { day, status, team })
    }
}

impl BatchView {
    /// The same view without the status filter (for the counts).
    fn any_status(self) -> Self {
        Self {
            status: None,
            ..self
        }
    }
}

/// A day's requests the handler may see, oldest first.
pub(crate) async fn visible_batch(
    state: &ConsoleState,
    handler: &Handler,
    view: BatchView,
) -> Result<Vec<Request>, LedgerError> {
    let filter = RequestFilter {
        day: Some(view.day),
        status: view.status,
        team: view.team,
        requester: None,
    };
    Ok(state
        .desk
        .ledger()
        .list(&filter)
        .await?
        .into_iter()
        .filter(|r| handler.scope.covers(r.form.team))
        .collect())
}

/// Local time for people: the schedule's zone (Asia/Shanghai).
pub(crate) fn local_time(schedule: &BatchSchedule, at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&schedule.tz).format(format).to_string()
}
