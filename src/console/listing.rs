//! Which requests a page, the CSV or the API lists: the query as typed (`BatchQuery`), its
//! checked view (`BatchView`, `Listing`) or why it is refused (`FilterError`), and the requests
//! of it a handler may see (`visible_batch`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::state::ConsoleState;
use crate::catalog::Team;
use crate::requests::{
    BatchDay, BatchSchedule, Handler, LedgerError, Request, RequestFilter, Status,
};

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
    pub(super) fn any_status(&self) -> Self {
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
