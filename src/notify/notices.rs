//! Completion notices: what the requester is told, and when.
//!
//! At a batch's done-by time (17:30) every requester of that batch is told: done ones their
//! completion, rejected ones the reason, unfinished ones an honest "still processing" (and then
//! their own notice the moment it is handled). A request handled after its batch's done-by
//! time is notified at once. Every notice goes through the outbox under its own key, so a
//! restart or a second instance never sends it twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::daily::{DayJob, DayJobError};
use super::delivery::{Delivery, Notice};
use super::outbox::Outbox;
use crate::catalog::MessageKey;
use crate::catalog::{Catalog, CatalogHandle};
use crate::requests::{BatchDay, BatchSchedule, Ledger, Request, RequestFilter, Status, Watcher};
use crate::store::{StoreError, keys};

/// Composes and queues notices.
#[derive(Clone)]
pub struct Notifier {
    outbox: Outbox,
    catalog: CatalogHandle,
    schedule: BatchSchedule,
}

fn fields(request: &Request) -> String {
    request
        .form
        .summary
        .iter()
        .map(|(label, value)| format!("{label}: {value}\n"))
        .collect()
}

impl Notifier {
    #[must_use]
    pub fn new(outbox: Outbox, catalog: CatalogHandle, schedule: BatchSchedule) -> Self {
        Self {
            outbox,
            catalog,
            schedule,
        }
    }

    /// The text for a request in its current state; `None` when there is nothing to tell.
    #[must_use]
    pub fn compose(catalog: &Catalog, request: &Request) -> Option<String> {
        let messages = catalog.messages();
        let last = request.history.last();
        let note = last.and_then(|c| c.note.clone()).unwrap_or_default();
        let service = request.form.service.to_string();
        let id = request.id.to_string();
        let fields = fields(request);
        let base = [
            ("service", service.as_str()),
            ("name", request.form.service_name.as_str()),
            ("id", id.as_str()),
            ("fields", fields.as_str()),
        ];
        match request.status() {
            Status::Done => {
                let note = if note.is_empty() {
                    String::new()
                } else {
                    messages.render(MessageKey::NoticeNote, &[("note", &note)])
                };
                let mut args = base.to_vec();
                args.push(("note", &note));
                Some(
                    messages
                        .render(MessageKey::NoticeDone, &args)
                        .trim_end()
                        .to_owned(),
                )
            }
            Status::Rejected => {
                let mut args = base.to_vec();
                args.push(("reason", &note));
                // The same handler the receipt named; the team when the service is gone.
                let team = catalog.service(request.form.service).map_or_else(
                    || request.form.team.label().to_owned(),
                    |s| s.handler_label(messages),
                );
                args.push(("team", &team));
                Some(messages.render(MessageKey::NoticeRejected, &args))
            }
            Status::Submitted | Status::Processing => {
                Some(messages.render(MessageKey::NoticePending, &base))
            }
            Status::Cancelled => None,
        }
    }

    /// Queues the notice for the request's current state under `key`.
    async fn queue(
        &self,
        request: &Request,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let catalog = self.catalog.current();
        let Some(text) = Self::compose(&catalog, request) else {
            return Ok(false);
        };
        let notice = Notice {
            touser: request.form.requester.user.to_string(),
            text,
            card: None,
            before_card: None,
        };
        self.outbox
            .enqueue(key, Delivery::Wecom(notice), now, now)
            .await
    }

    /// The daily push for batch `day`: one notice per request, keyed so it is queued once.
    pub async fn push_batch(
        &self,
        ledger: &dyn Ledger,
        day: BatchDay,
        now: DateTime<Utc>,
    ) -> Result<usize, crate::requests::LedgerError> {
        let filter = RequestFilter {
            day: Some(day),
            ..RequestFilter::default()
        };
        let mut queued = 0;
        for request in ledger.list(&filter).await? {
            // OA tickets and e-mails are not in the 16:00 batch: no 17:30 push for them.
            if !matches!(request.form.window, crate::catalog::Window::DailyBatch) {
                continue;
            }
            let key = match request.status() {
                Status::Done | Status::Rejected => final_key(&request),
                Status::Submitted | Status::Processing => keys::notice_pending(&request.id),
                Status::Cancelled => continue,
            };
            if self.queue(&request, &key, now).await? {
                queued += 1;
            }
        }
        tracing::info!(batch = %day, queued, "batch push queued");
        Ok(queued)
    }
}

/// One notice per final status; a request reopened and handled again is a new round, so the
/// requester hears the new outcome (`done-r1`, …) instead of the outbox taking it for a repeat.
fn final_key(request: &Request) -> String {
    match request.reopenings() {
        0 => keys::notice_final(&request.id, request.status().as_str()),
        n => keys::notice_final(&request.id, &format!("{}-r{n}", request.status().as_str())),
    }
}

/// Handled after its batch's done-by time → the requester hears at once.
#[async_trait::async_trait]
impl Watcher for Notifier {
    async fn changed(&self, request: &Request, now: DateTime<Utc>) -> Result<(), StoreError> {
        if !matches!(request.status(), Status::Done | Status::Rejected) {
            return Ok(());
        }
        // The daily batch's requests hear at 17:30 (or at once after it); the others, handled
        // on their ticket or by e-mail, hear as soon as their status changes.
        // A rejection is told at once, with its reason, so it can be fixed before the next
        // cut-off; completions keep the 17:30 push the seed describes.
        let due = self.schedule.done_at(request.batch);
        if matches!(request.form.window, crate::catalog::Window::DailyBatch)
            && request.status() == Status::Done
            && due.is_some_and(|due| now < due)
        {
            return Ok(());
        }
        match self.queue(request, &final_key(request), now).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(request = %request.id, error = %e, "notice could not be queued");
                Err(e)
            }
        }
    }
}

/// The 17:30 push as a [`DayJob`]: each batch's requesters hear at its done-by time.
pub struct BatchPush {
    notifier: Notifier,
    ledger: Arc<dyn Ledger>,
}

impl BatchPush {
    #[must_use]
    pub fn new(notifier: Notifier, ledger: Arc<dyn Ledger>) -> Self {
        Self { notifier, ledger }
    }
}

#[async_trait::async_trait]
impl DayJob for BatchPush {
    fn name(&self) -> &'static str {
        "push"
    }

    fn due(&self, schedule: &BatchSchedule, day: BatchDay) -> Option<DateTime<Utc>> {
        schedule.done_at(day)
    }

    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, DayJobError> {
        self.notifier
            .push_batch(self.ledger.as_ref(), day, now)
            .await
            .map_err(DayJobError::from)
    }
}
