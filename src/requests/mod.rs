//! Filed requests: the ledger every confirmed form goes into, with readable ids
//! (`KT-20261128-0007`), batch days and status history.
//!
//! Owns request records and their ids. It must not know about chat wording, HTTP or WeCom.
//!
//! Layout: `record` the request and its parts, `ledger` what a ledger does, `batch` the batch
//! days, `desk` the handlers' actions, `attachments` the files; this file the ledger on the
//! store (`StoreLedger`), the ledger that tells its watchers (`WatchedLedger`) and the queue
//! counts.

pub mod attachments;
mod batch;
pub mod desk;
mod ledger;
mod record;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use batch::{BatchDay, BatchSchedule, ScheduleError};
pub use desk::{
    ADMIN_ACTOR, Desk, DeskAction, DeskError, Handler, HandlerAccountError, HandlerDirectory,
    TeamScope, token_hash,
};
pub use ledger::{Ledger, LedgerError, Receipt, RequestFilter};
pub use record::{
    Contact, DeliveryRecord, ExternalTicket, FiledForm, Note, Request, Requester, Status,
    StatusChange, ticket_problem,
};

use crate::catalog::Team;
use crate::domain::RequestId;
use crate::store::{Store, StoreError, keys};

/// Open and overdue requests per team (every team, zeros included, in a fixed order), from
/// the open queue: what the `kaitong_requests_open` / `_overdue` gauges show.
#[must_use]
pub fn queue_counts(
    open: &[Request],
    schedule: &BatchSchedule,
    now: DateTime<Utc>,
) -> Vec<(Team, usize, usize)> {
    [Team::Ops, Team::Rnd, Team::Functional, Team::Mailbox]
        .into_iter()
        .map(|team| {
            let mine = || {
                open.iter()
                    .filter(move |r| r.is_open() && r.form.team == team)
            };
            let overdue = mine().filter(|r| r.is_overdue(schedule, now)).count();
            (team, mine().count(), overdue)
        })
        .collect()
}

/// A day's batch or a person's history is far below this.
const LIST_LIMIT: usize = 10_000;

/// The ledger on the shared store: requests survive restarts on either backend.
pub struct StoreLedger {
    store: Arc<dyn Store>,
    schedule: BatchSchedule,
}

impl StoreLedger {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, schedule: BatchSchedule) -> Self {
        Self { store, schedule }
    }

    /// Next sequence number of the day; the store's atomic counter keeps instances apart.
    async fn next_seq(&self, date: &str) -> Result<u64, LedgerError> {
        Ok(self.store.increment(&keys::request_seq(date)).await?)
    }

    /// Read-modify-write of one request under compare-and-swap.
    async fn update<F>(&self, id: &RequestId, change: F) -> Result<Request, LedgerError>
    where
        F: Fn(&mut Request) -> Result<(), LedgerError> + Send + Sync,
    {
        let key = keys::request(id);
        for _ in 0..16 {
            let Some(bytes) = self.store.get(&key).await? else {
                return Err(LedgerError::NotFound(id.clone()));
            };
            let mut request: Request = Self::decode(&key, &bytes)?;
            change(&mut request)?;
            if self
                .store
                .compare_and_swap(&key, Some(&bytes), &encode(&request), None)
                .await?
            {
                return Ok(request);
            }
        }
        Err(LedgerError::Contention(id.clone()))
    }

    /// Writes the request and its indexes for a receipt already claimed under the form's key.
    ///
    /// Also the repeat path: a filing that stopped after the claim (the store failed over, the
    /// process died) left a receipt without its request; the person's repeated 确认 finishes
    /// it here instead of answering with a number nobody can find. Every write is idempotent:
    /// the request only if absent (a handler may already have moved it on), the indexes as
    /// empty markers. `newly_filed` is true when this call wrote the request.
    async fn record(
        &self,
        form: FiledForm,
        mut receipt: Receipt,
        now: DateTime<Utc>,
    ) -> Result<Receipt, LedgerError> {
        let id = receipt.id.clone();
        let request = Request {
            id: id.clone(),
            submitted_at: now,
            batch: receipt.batch,
            history: vec![StatusChange {
                status: Status::Submitted,
                at: now,
                by: form.requester.user.to_string(),
                note: None,
            }],
            notes: Vec::new(),
            deliveries: Vec::new(),
            contact: None,
            external_ticket: None,
            form,
        };
        let request_key = keys::request(&id);
        receipt.newly_filed = match self.store.get(&request_key).await? {
            Some(_) => false,
            None => {
                self.store
                    .put_if_absent(&request_key, &encode(&request), None)
                    .await?
            }
        };
        // Indexes for a day's batch and a person's requests (values unused).
        self.store
            .put(
                &keys::batch_entry(&receipt.batch.to_string(), &id),
                b"",
                None,
            )
            .await?;
        let requester = &request.form.requester;
        self.store
            .put(
                &keys::requester_entry(requester.channel, &requester.user, &id),
                b"",
                None,
            )
            .await?;
        // Also on a repeat: a filing that stopped before this line left the request out of
        // the queue. An entry for a request already closed is dropped by the next listing.
        self.store.put(&keys::open_entry(&id), b"", None).await?;
        Ok(receipt)
    }

    /// Indexes the open requests filed before the open-work index existed, once per store.
    async fn build_open_index(&self) -> Result<(), LedgerError> {
        let built = keys::open_index_built();
        if self.store.get(&built).await?.is_some() {
            return Ok(());
        }
        // Every record, once; the ids are the keys, the values only to know the status.
        for (key, value) in self.store.list_prefix(keys::REQUESTS, usize::MAX).await? {
            let request: Request = Self::decode(&key, &value)?;
            if request.is_open() {
                self.store
                    .put(&keys::open_entry(&request.id), b"", None)
                    .await?;
            }
        }
        self.store.put(&built, b"1", None).await?;
        Ok(())
    }

    /// The open requests, from the open-work index; entries of requests that are final by
    /// now (a change that stopped before removing its entry) are removed here.
    async fn list_open(&self) -> Result<Vec<Request>, LedgerError> {
        self.build_open_index().await?;
        let entries = self.store.list_prefix(keys::OPEN_INDEX, usize::MAX).await?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, _) in entries {
            let Some(id) = keys::indexed_request(keys::OPEN_INDEX, &key) else {
                continue;
            };
            match self.get(&id).await? {
                Some(request) if request.is_open() => out.push(request),
                _ => {
                    let _ = self.store.delete(&key).await;
                }
            }
        }
        Ok(out)
    }

    /// Keeps the open-work index in step with a change that has been written: a failure is
    /// logged, never undoes the change (the listing corrects the index).
    async fn reindex(&self, request: &Request) {
        let key = keys::open_entry(&request.id);
        let written = if request.is_open() {
            self.store.put(&key, b"", None).await
        } else {
            self.store.delete(&key).await.map(|_| ())
        };
        if let Err(e) = written {
            tracing::warn!(request = %request.id, error = %e, "open-work index not updated");
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, LedgerError> {
        serde_json::from_slice(bytes).map_err(|e| LedgerError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[async_trait::async_trait]
impl Ledger for StoreLedger {
    async fn file(&self, form: FiledForm, now: DateTime<Utc>) -> Result<Receipt, LedgerError> {
        let form_key = keys::filed_form(&form.form_id);
        if let Some(bytes) = self.store.get(&form_key).await? {
            let receipt: Receipt = Self::decode(&form_key, &bytes)?;
            return self.record(form, receipt, now).await;
        }
        let local_date = self.schedule.local_date(now).format("%Y%m%d").to_string();
        let seq = self.next_seq(&local_date).await?;
        let id = RequestId::numbered(&local_date, seq);
        let receipt = Receipt {
            id: id.clone(),
            batch: self.schedule.batch_for(now),
            newly_filed: true,
        };
        // The form key decides: a concurrent confirm of the same form loses here and reports
        // the winner's receipt (its allocated number is simply skipped).
        if !self
            .store
            .put_if_absent(&form_key, &encode(&receipt), None)
            .await?
        {
            let bytes = self.store.get(&form_key).await?.unwrap_or_default();
            let winner: Receipt = Self::decode(&form_key, &bytes)?;
            return self.record(form, winner, now).await;
        }
        self.record(form, receipt, now).await
    }

    async fn list(&self, filter: &RequestFilter) -> Result<Vec<Request>, LedgerError> {
        if filter.open && filter.day.is_none() && filter.requester.is_none() {
            let mut out: Vec<Request> = self
                .list_open()
                .await?
                .into_iter()
                .filter(|r| filter.accepts(r))
                .collect();
            out.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then(a.id.cmp(&b.id)));
            return Ok(out);
        }
        let prefix = match (&filter.day, &filter.requester) {
            (Some(day), _) => keys::batch_index(&day.to_string()),
            (None, Some((channel, user))) => keys::requester_index(*channel, user),
            (None, None) => keys::REQUESTS.to_owned(),
        };
        let entries = self.store.list_prefix(&prefix, LIST_LIMIT).await?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let request = if prefix == keys::REQUESTS {
                Some(Self::decode::<Request>(&key, &value)?)
            } else {
                let Some(id) = keys::indexed_request(&prefix, &key) else {
                    continue;
                };
                self.get(&id).await?
            };
            if let Some(request) = request.filter(|r| filter.accepts(r)) {
                out.push(request);
            }
        }
        out.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn transition(
        &self,
        id: &RequestId,
        to: Status,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        let request = self
            .update(id, |request| {
                let from = request.status();
                if !from.can_become(to) {
                    return Err(LedgerError::InvalidTransition {
                        id: id.clone(),
                        from,
                        to,
                    });
                }
                request.history.push(StatusChange {
                    status: to,
                    at: now,
                    by: by.to_owned(),
                    note: note.clone(),
                });
                Ok(())
            })
            .await?;
        self.reindex(&request).await;
        Ok(request)
    }

    async fn reopen(
        &self,
        id: &RequestId,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        let request = self
            .update(id, |request| {
                let from = request.status();
                if !matches!(from, Status::Done | Status::Rejected) {
                    return Err(LedgerError::InvalidTransition {
                        id: id.clone(),
                        from,
                        to: Status::Processing,
                    });
                }
                if !request.reopenable(&self.schedule, now) {
                    return Err(LedgerError::ReopenTooLate(id.clone()));
                }
                request.history.push(StatusChange {
                    status: Status::Processing,
                    at: now,
                    by: by.to_owned(),
                    note: note.clone(),
                });
                Ok(())
            })
            .await?;
        self.reindex(&request).await;
        Ok(request)
    }

    async fn add_note(
        &self,
        id: &RequestId,
        by: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        self.update(id, |request| {
            request.notes.push(Note {
                at: now,
                by: by.to_owned(),
                text: text.clone(),
            });
            Ok(())
        })
        .await
    }

    async fn record_delivery(
        &self,
        id: &RequestId,
        record: DeliveryRecord,
    ) -> Result<Request, LedgerError> {
        self.update(id, |request| {
            if !request.deliveries.iter().any(|d| d.item == record.item) {
                request.deliveries.push(record.clone());
            }
            Ok(())
        })
        .await
    }

    async fn set_contact(&self, id: &RequestId, contact: Contact) -> Result<Request, LedgerError> {
        self.update(id, |request| {
            request.contact = Some(contact.clone());
            Ok(())
        })
        .await
    }

    async fn set_external_ticket(
        &self,
        id: &RequestId,
        ticket: ExternalTicket,
    ) -> Result<Request, LedgerError> {
        self.update(id, |request| {
            request.notes.push(Note {
                at: ticket.at,
                by: ticket.by.clone(),
                text: format!("工单号: {}", ticket.number),
            });
            request.external_ticket = Some(ticket.clone());
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, LedgerError> {
        let key = keys::request(id);
        match self.store.get(&key).await? {
            Some(bytes) => Ok(Some(Self::decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }
}

/// Hears about every request that is filed or changes status (hand-offs and notices start here).
#[async_trait::async_trait]
pub trait Watcher: Send + Sync + 'static {
    /// Queues what the change calls for (idempotently, by key); an error means something
    /// could not be queued (it has been logged) and telling again later will queue it.
    async fn changed(&self, request: &Request, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// A ledger that tells its watchers after each successful filing (new ones only) and change.
/// A watcher's failure never undoes the change: watchers write to the durable outbox.
pub struct WatchedLedger {
    inner: Arc<dyn Ledger>,
    watchers: Vec<Arc<dyn Watcher>>,
}

impl WatchedLedger {
    #[must_use]
    pub fn new(inner: Arc<dyn Ledger>, watchers: Vec<Arc<dyn Watcher>>) -> Self {
        Self { inner, watchers }
    }

    /// Tells every watcher; the first failure to queue, after all have been told.
    async fn tell(&self, request: &Request, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut outcome = Ok(());
        for watcher in &self.watchers {
            if let Err(e) = watcher.changed(request, now).await
                && outcome.is_ok()
            {
                outcome = Err(e);
            }
        }
        outcome
    }
}

#[async_trait::async_trait]
impl Ledger for WatchedLedger {
    async fn file(&self, form: FiledForm, now: DateTime<Utc>) -> Result<Receipt, LedgerError> {
        let receipt = self.inner.file(form, now).await?;
        if receipt.newly_filed {
            crate::metrics::transition(Status::Submitted.as_str());
        }
        // Told on a repeated filing of a still-submitted request too: queuing is idempotent by
        // key, and if a hand-off could not be queued the first time (the store failing over),
        // the filing is reported as failed, the form stays at its summary, and the person's
        // next 确认 queues it here.
        if let Some(request) = self.inner.get(&receipt.id).await?
            && (receipt.newly_filed || request.status() == Status::Submitted)
        {
            self.tell(&request, now).await?;
        }
        Ok(receipt)
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, LedgerError> {
        self.inner.get(id).await
    }

    async fn list(&self, filter: &RequestFilter) -> Result<Vec<Request>, LedgerError> {
        self.inner.list(filter).await
    }

    async fn transition(
        &self,
        id: &RequestId,
        to: Status,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        let request = self.inner.transition(id, to, by, note, now).await?;
        crate::metrics::transition(request.status().as_str());
        // The change stands either way (a handler's action is not undone because a notice
        // could not be queued); the failure has been logged by the watcher.
        let _ = self.tell(&request, now).await;
        Ok(request)
    }

    async fn reopen(
        &self,
        id: &RequestId,
        by: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        let request = self.inner.reopen(id, by, note, now).await?;
        crate::metrics::transition(request.status().as_str());
        let _ = self.tell(&request, now).await;
        Ok(request)
    }

    async fn add_note(
        &self,
        id: &RequestId,
        by: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<Request, LedgerError> {
        self.inner.add_note(id, by, text, now).await
    }

    async fn record_delivery(
        &self,
        id: &RequestId,
        record: DeliveryRecord,
    ) -> Result<Request, LedgerError> {
        self.inner.record_delivery(id, record).await
    }

    async fn set_contact(&self, id: &RequestId, contact: Contact) -> Result<Request, LedgerError> {
        self.inner.set_contact(id, contact).await
    }

    async fn set_external_ticket(
        &self,
        id: &RequestId,
        ticket: ExternalTicket,
    ) -> Result<Request, LedgerError> {
        self.inner.set_external_ticket(id, ticket).await
    }
}
