//! What a ledger does (`Ledger`): file a confirmed form, list requests (`RequestFilter`), move
//! them on, with the receipt of a filing and the ledger's error. The ledgers themselves,
//! `StoreLedger` and `WatchedLedger`, are in `mod.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::batch::BatchDay;
use super::record::{Contact, DeliveryRecord, ExternalTicket, FiledForm, Request, Status};
use crate::catalog::Team;
use crate::domain::{ChannelKind, RequestId, UserId};
use crate::store::StoreError;

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub day: Option<BatchDay>,
    pub status: Option<Status>,
    pub team: Option<Team>,
    /// Only this requester's (channel and user).
    pub requester: Option<(ChannelKind, UserId)>,
    /// Only open ones (submitted, processing), of any day.
    pub open: bool,
}

impl RequestFilter {
    /// Every open request, of any day: the handlers' queue.
    #[must_use]
    pub fn open() -> Self {
        Self {
            open: true,
            ..Self::default()
        }
    }

    pub(super) fn accepts(&self, request: &Request) -> bool {
        (!self.open || request.is_open())
            && self.day.is_none_or(|d| request.batch == d)
            && self.status.is_none_or(|s| request.status() == s)
            && self.team.is_none_or(|t| request.form.team == t)
            && self.requester.as_ref().is_none_or(|(channel, user)| {
                request.form.requester.channel == *channel && request.form.requester.user == *user
            })
    }
}

/// What the requester is told on filing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: RequestId,
    pub batch: BatchDay,
    /// Whether this call filed it (false: the same form had been filed before).
    pub newly_filed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("no request {0}")]
    NotFound(RequestId),
    #[error("request {id} is {from:?} and cannot become {to:?}")]
    InvalidTransition {
        id: RequestId,
        from: Status,
        to: Status,
    },
    #[error("request {0} changed concurrently too often")]
    Contention(RequestId),
    /// Reopening is for a mistake noticed the same day; later, file a new request.
    #[error("request {0} was handled before today and cannot be reopened")]
    ReopenTooLate(RequestId),
}

/// Where confirmed forms go, and how handlers move them on.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync + 'static {
    async fn file(&self, form: FiledForm, now: DateTime<Utc>) -> Result<Receipt, LedgerError>;
    async fn get(&self, id: &RequestId) -> Result<Option<Request>, LedgerError>;
    /// Requests matching the filter, oldest first.
    async fn list(&self, filter: &RequestFilter) -> Result<Vec<Request>, LedgerError>;
    /// Moves a request to `to`, recording who and why; refuses moves `Status::can_become` forbids.
    async fn transition(
        &self,
        id: &RequestId,
        to: Status,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError>;
    /// Takes back a 完成 or 驳回 made the same local day: the request is processing again,
    /// recorded in its history with who and why.
    async fn reopen(
        &self,
        id: &RequestId,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError>;
    /// Adds a note to the audit trail without changing the status.
    async fn add_note(
        &self,
        id: &RequestId,
        by: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError>;
    /// Records a delivered message in the request's history; a second record of the same
    /// outbox item (resent after a crash) is not added again.
    async fn record_delivery(
        &self,
        id: &RequestId,
        record: DeliveryRecord,
    ) -> Result<Request, LedgerError>;
    /// Records who the requester is in WeCom's contacts (looked up after filing).
    async fn set_contact(&self, id: &RequestId, contact: Contact) -> Result<Request, LedgerError>;
    /// Sets (or replaces) the handling side's ticket number; the change is noted in the
    /// audit trail.
    async fn set_external_ticket(
        &self,
        id: &RequestId,
        ticket: ExternalTicket,
    ) -> Result<Request, LedgerError>;
}
