//! The daily-job scheduler: run a job once per batch day when its time of that day has come
//! (the 16:00 cut-off cards, the 17:30 push and reminders), across restarts and instances,
//! catching up days missed while the bot was down.
//!
//! Owns when a day's run happens and that it happens once (a lease while it runs, a done
//! record after). It must not know what a job does: the jobs (`notices::BatchPush`,
//! `handler_cards::HandlerCards`, `handler_cards::HandlerReminders`) are its peers and import
//! it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::requests::{BatchDay, BatchSchedule, LedgerError};
use crate::store::{Store, StoreError, keys};

/// Why a day's run did not complete; the day is tried again at the next tick.
#[derive(Debug, thiserror::Error)]
pub enum DayJobError {
    /// The requests the job works on could not be listed.
    #[error("listing the requests: {0}")]
    Ledger(#[from] LedgerError),
    /// The job's records (done, lease, restore time) or its outbox items could not be read
    /// or written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
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
    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, DayJobError>;
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
    async fn ran_before_restore(&self, day: BatchDay) -> Result<bool, DayJobError> {
        let Some(due) = self.job.due(&self.schedule, day) else {
            return Ok(false);
        };
        let restored = self
            .store
            .get(&keys::store_restored_at())
            .await?
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
    ) -> Result<(), DayJobError> {
        self.store
            .put(
                done_key,
                now.to_rfc3339().as_bytes(),
                Some(std::time::Duration::from_secs(31 * 86400)),
            )
            .await?;
        crate::metrics::daily_job_succeeded(self.job.name(), now.timestamp());
        self.remember_done(day);
        Ok(())
    }

    async fn run_once(&self, day: BatchDay, now: DateTime<Utc>) -> Result<bool, DayJobError> {
        let name = self.job.name();
        let done_key = keys::day_job_done(name, &day.to_string());
        if let Some(done) = self.store.get(&done_key).await? {
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
            .await?
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_failed_run_keeps_its_cause() {
        let error = DayJobError::from(LedgerError::Store(StoreError::Unavailable(
            "redis down".into(),
        )));
        assert_eq!(
            error.to_string(),
            "listing the requests: store unavailable: redis down"
        );
        let cause = error.source().map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("store unavailable: redis down"));
        assert!(
            error
                .source()
                .is_some_and(|s| s.downcast_ref::<LedgerError>().is_some())
        );
        let error = DayJobError::from(StoreError::Backend("corrupt".into()));
        assert!(
            error
                .source()
                .is_some_and(|s| s.downcast_ref::<StoreError>().is_some())
        );
    }
}
