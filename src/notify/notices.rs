//! Completion notices: what the requester is told, and when.
//!
//! At a batch's done-by time (17:30) every requester of that batch is told: done ones their
//! completion, rejected ones the reason, unfinished ones an honest "still processing" (and then
//! their own notice the moment it is handled). A request handled after its batch's done-by
//! time is notified at once. Every notice goes through the outbox under its own key, so a
//! restart or a second instance never sends it twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Delivery;
use super::outbox::Outbox;
use crate::catalog::MessageKey;
use crate::catalog::{Catalog, CatalogHandle};
use crate::requests::{BatchDay, BatchSchedule, Ledger, Request, RequestFilter, Status, Watcher};
use crate::store::{Store, StoreError, keys};

/// A notice as queued: who gets which text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub touser: String,
    pub text: String,
    /// A template card to send instead of the text (the handlers' cut-off cards); the text
    /// then only names it in logs and the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<crate::wecom::cards::TemplateCard>,
    /// A text sent just before the card: what the card cannot show whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_card: Option<String>,
}

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

    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, String> {
        self.notifier
            .push_batch(self.ledger.as_ref(), day, now)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Work done once per batch day at a time of that day (the 16:00 cards, the 17:30 push).
#[async_trait::async_trait]
pub trait DayJob: Send + Sync + 'static {
    /// Names the job's records in the store (`job:{name}:{day}:done|lease`).
    fn name(&self) -> &'static str;
    /// When the job for `day` is due.
    fn due(&self, schedule: &BatchSchedule, day: BatchDay) -> Option<DateTime<Utc>>;
    /// Queues the day's work; it must be idempotent by key, since a run that fails half-way is
    /// run again.
    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, String>;
}

/// Runs a [`DayJob`] once per day, when due, across restarts and instances.
///
/// Each tick looks at the last few batch days whose due time has passed; a day without a
/// "done" record is run under a lease (one instance at a time), then recorded. A run
/// missed while the bot was down therefore happens at the next start, once.
pub struct DailyJob {
    job: Arc<dyn DayJob>,
    store: Arc<dyn Store>,
    schedule: BatchSchedule,
    /// How many past days to catch up on after downtime.
    catch_up_days: u32,
    /// Days known to be done, so a tick every second does not ask the store again.
    known_done: std::sync::Mutex<std::collections::HashSet<BatchDay>>,
}

impl DailyJob {
    #[must_use]
    pub fn new(
        job: Arc<dyn DayJob>,
        store: Arc<dyn Store>,
        schedule: BatchSchedule,
        catch_up_days: u32,
    ) -> Self {
        Self {
            job,
            store,
            schedule,
            catch_up_days,
            known_done: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn is_known_done(&self, day: BatchDay) -> bool {
        self.known_done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&day)
    }

    fn remember_done(&self, day: BatchDay) {
        let mut known = self
            .known_done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the catch-up window matters; older days are never looked at again.
        if known.len() > 64 {
            known.clear();
        }
        known.insert(day);
    }

    /// One check; returns the days run now.
    pub async fn tick(&self, now: DateTime<Utc>) -> Vec<BatchDay> {
        let mut ran = Vec::new();
        let today = self.schedule.local_date(now);
        for back in (0..=self.catch_up_days).rev() {
            let Some(date) = today.checked_sub_days(chrono::Days::new(u64::from(back))) else {
                continue;
            };
            let day = BatchDay(date);
            if self.is_known_done(day)
                || self
                    .job
                    .due(&self.schedule, day)
                    .is_none_or(|due| now < due)
            {
                continue;
            }
            match self.run_once(day, now).await {
                Ok(true) => ran.push(day),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = self.job.name(), batch = %day, error = %e, "daily job failed; will retry");
                }
            }
        }
        ran
    }

    /// Whether `day`'s run was due before the store was last restored from a backup.
    async fn ran_before_restore(&self, day: BatchDay) -> Result<bool, String> {
        let Some(due) = self.job.due(&self.schedule, day) else {
            return Ok(false);
        };
        let restored = self
            .store
            .get(&keys::store_restored_at())
            .await
            .map_err(|e| e.to_string())?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok());
        Ok(restored.is_some_and(|at| due <= at.with_timezone(&Utc)))
    }

    /// Records `day`'s run as done, in the store (kept a month: long past any catch-up window)
    /// and in memory.
    async fn mark_done(
        &self,
        done_key: &str,
        day: BatchDay,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        self.store
            .put(
                done_key,
                now.to_rfc3339().as_bytes(),
                Some(std::time::Duration::from_secs(31 * 86400)),
            )
            .await
            .map_err(|e| e.to_string())?;
        crate::metrics::daily_job_succeeded(self.job.name(), now.timestamp());
        self.remember_done(day);
        Ok(())
    }

    async fn run_once(&self, day: BatchDay, now: DateTime<Utc>) -> Result<bool, String> {
        let name = self.job.name();
        let done_key = keys::day_job_done(name, &day.to_string());
        if let Some(done) = self.store.get(&done_key).await.map_err(|e| e.to_string())? {
            // Run by another instance (or before a restart): its time is this job's last
            // success too, so each instance's gauge tells whether the job ran anywhere.
            if let Some(at) = std::str::from_utf8(&done)
                .ok()
                .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
            {
                crate::metrics::daily_job_succeeded(name, at.timestamp());
            }
            self.remember_done(day);
            return Ok(false);
        }
        if self.ran_before_restore(day).await? {
            // Due before the store was restored from a backup: it ran then, on the store the
            // backup came from; running it again would resend the day with stale content.
            tracing::info!(job = name, batch = %day, "daily job due before the store was restored; not run again");
            self.mark_done(&done_key, day, now).await?;
            return Ok(false);
        }
        let lease = keys::day_job_lease(name, &day.to_string());
        if !self
            .store
            .put_if_absent(&lease, b"1", Some(std::time::Duration::from_secs(300)))
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(false);
        }
        match self.job.run(day, now).await {
            Ok(_) => {
                self.mark_done(&done_key, day, now).await?;
                let _ = self.store.delete(&lease).await;
                Ok(true)
            }
            Err(e) => {
                let _ = self.store.delete(&lease).await;
                Err(e)
            }
        }
    }

    /// The job's name (`push`, `cutoff`, `reminder`), as its records and metrics spell it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.job.name()
    }

    /// Ticks every `every` until `stop` is cancelled.
    pub async fn run(&self, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
        let mut interval = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = interval.tick() => { self.tick(Utc::now()).await; }
                () = stop.cancelled() => break,
            }
        }
    }
}
