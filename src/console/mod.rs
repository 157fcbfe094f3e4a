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

mod auth;
mod csv;
mod dashboard;
mod failure;
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

/// Teams in the order the pages show them (and the dashboard's colours follow).
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
#[derive(Debug, Clone)]
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

/// The query of a listing, as typed (every part optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BatchQuery {
    #[serde(default)]
    pub day: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    /// `1`: the open-work queue (any day), whatever the default of the page.
    #[serde(default)]
    pub open: Option<String>,
    /// `1`: only overdue requests (逾期) of the queue.
    #[serde(default)]
    pub overdue: Option<String>,
    /// A request number, seller account or requester id (or a part of one).
    #[serde(default)]
    pub q: Option<String>,
    /// The CSV's range of batch days (`YYYY-MM-DD`, both included; either alone is one day).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// Which requests a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Open requests of any day, oldest first: the handlers' default view.
    Open { overdue_only: bool },
    /// One batch day, every status.
    Day(BatchDay),
}

/// A checked listing.
#[derive(Debug, Clone)]
pub(crate) struct BatchView {
    pub listing: Listing,
    pub status: Option<Status>,
    pub team: Option<Team>,
    /// Lower-cased search text; matches anywhere in the request number, the seller account, the
    /// requester id or the requester's name (when WeCom contacts gave one).
    pub search: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("day must be YYYY-MM-DD")]
    Day,
    #[error("unknown status")]
    Status,
    #[error("unknown team")]
    Team,
    #[error("search text too long")]
    Search,
    #[error("from must not be after to, and the range at most 366 days")]
    Range,
}

impl FilterError {
    pub fn chinese(&self) -> &'static str {
        match self {
            Self::Day => "日期格式应为 YYYY-MM-DD",
            Self::Status => "未知的状态",
            Self::Team => "未知的处理组",
            Self::Search => "搜索内容过长",
            Self::Range => "日期范围有误（开始不能晚于结束，最多 366 天）",
        }
    }
}

fn present(raw: Option<&String>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn flag(raw: Option<&String>) -> bool {
    present(raw).is_some_and(|v| matches!(v, "1" | "true" | "yes"))
}

/// Longest search text: a request number or account is far shorter.
const MAX_SEARCH_CHARS: usize = 64;

/// A `YYYY-MM-DD` parameter.
pub(crate) fn parse_day(raw: &str) -> Result<BatchDay, FilterError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(BatchDay)
        .map_err(|_| FilterError::Day)
}

impl BatchQuery {
    /// Empty parts mean "any". Without a day the listing is the open queue when
    /// `open_by_default` (the console) or `open=1`; otherwise — and for a final status, which
    /// the queue never holds — the batch of today's local date (after the 16:00 cut-off the
    /// batch that takes new requests is tomorrow's, but today's is the one being worked on).
    pub fn check(
        &self,
        schedule: &BatchSchedule,
        now: DateTime<Utc>,
        open_by_default: bool,
    ) -> Result<BatchView, FilterError> {
        let status = present(self.status.as_ref())
            .map(|raw| Status::parse(raw).ok_or(FilterError::Status))
            .transpose()?;
        let team = present(self.team.as_ref())
            .map(|raw| Team::parse(raw).ok_or(FilterError::Team))
            .transpose()?;
        let search = present(self.q.as_ref()).map(str::to_lowercase);
        if search
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(FilterError::Search);
        }
        let overdue_only = flag(self.overdue.as_ref());
        let day = present(self.day.as_ref()).map(parse_day).transpose()?;
        let wants_open = flag(self.open.as_ref()) || overdue_only;
        let listing = match day {
            Some(day) if !wants_open => Listing::Day(day),
            _ if wants_open || (open_by_default && status.is_none_or(|s| !s.is_final())) => {
                Listing::Open { overdue_only }
            }
            _ => Listing::Day(BatchDay(schedule.local_date(now))),
        };
        Ok(BatchView {
            listing,
            status,
            team,
            search,
        })
    }
}

impl BatchView {
    /// The same view without the status filter (for the counts).
    fn any_status(&self) -> Self {
        Self {
            status: None,
            ..self.clone()
        }
    }

    /// The day of a day listing.
    pub fn day(&self) -> Option<BatchDay> {
        match self.listing {
            Listing::Day(day) => Some(day),
            Listing::Open { .. } => None,
        }
    }

    fn matches(&self, request: &Request, schedule: &BatchSchedule, now: DateTime<Utc>) -> bool {
        let overdue_only = matches!(self.listing, Listing::Open { overdue_only: true });
        (!overdue_only || request.is_overdue(schedule, now))
            && self.search.as_deref().is_none_or(|q| {
                request.id.as_str().to_lowercase().contains(q)
                    || request
                        .form
                        .requester
                        .user
                        .as_str()
                        .to_lowercase()
                        .contains(q)
                    || request
                        .seller_account()
                        .is_some_and(|a| a.to_lowercase().contains(q))
                    || request
                        .contact
                        .as_ref()
                        .is_some_and(|c| c.name.to_lowercase().contains(q))
            })
    }
}

/// The requests of a listing the handler may see, oldest first.
pub(crate) async fn visible_batch(
    state: &ConsoleState,
    handler: &Handler,
    view: &BatchView,
    now: DateTime<Utc>,
) -> Result<Vec<Request>, LedgerError> {
    let filter = RequestFilter {
        day: view.day(),
        status: view.status,
        team: view.team,
        requester: None,
        open: matches!(view.listing, Listing::Open { .. }),
    };
    Ok(state
        .desk
        .ledger()
        .list(&filter)
        .await?
        .into_iter()
        .filter(|r| handler.scope.covers(r.form.team) && view.matches(r, &state.schedule, now))
        .collect())
}

/// How long ago, for people: "12 分钟", "5 小时", "2 天 3 小时".
pub(crate) fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    let (days, hours) = (minutes / 1440, (minutes % 1440) / 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} 分钟"),
        (0, h) => format!("{h} 小时"),
        (d, 0) => format!("{d} 天"),
        (d, h) => format!("{d} 天 {h} 小时"),
    }
}

/// Local time for people: the schedule's zone (Asia/Shanghai).
pub(crate) fn local_time(schedule: &BatchSchedule, at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&schedule.tz).format(format).to_string()
}
