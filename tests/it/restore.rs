//! Issue 23, operations: a restore from a backup must not replay the past. The daily jobs of
//! days already done are not run again (they would resend the day with the backup's stale
//! content), and the handlers' cards keep unique task ids when request numbers come round
//! again.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use kaitong::domain::UserId;
use kaitong::notify::{DailyJob, DayJob, DayJobError};
use kaitong::requests::{BatchDay, BatchSchedule};
use kaitong::store::{EmbeddedStore, Store, restore_file};

/// A day job that counts its runs.
struct Counting(AtomicUsize);

#[async_trait::async_trait]
impl DayJob for Counting {
    fn name(&self) -> &'static str {
        "restore_probe"
    }
    fn due(&self, schedule: &BatchSchedule, day: BatchDay) -> Option<DateTime<Utc>> {
        schedule.done_at(day)
    }
    async fn run(&self, _day: BatchDay, _now: DateTime<Utc>) -> Result<usize, DayJobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(1)
    }
}

#[tokio::test]
async fn daily_jobs_due_before_a_restore_do_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let backup = dir.path().join("backup.db");
    // A backup taken before any job ran: it holds no done record.
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.put("probe:a", b"1", None).await.unwrap();
    }
    std::fs::copy(&path, &backup).unwrap();
    let schedule = BatchSchedule::default();
    let now = Utc::now();
    // The live store ran the jobs of the last days.
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
        let job = Arc::new(Counting(AtomicUsize::new(0)));
        let ran = DailyJob::new(job.clone(), store, schedule, 3)
            .tick(now)
            .await;
        assert!(!ran.is_empty());
    }
    // Restored from the older backup: those days are done all the same.
    restore_file(&backup, &path).unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
    let job = Arc::new(Counting(AtomicUsize::new(0)));
    let daily = DailyJob::new(job.clone(), Arc::clone(&store), schedule, 3);
    assert!(daily.tick(now).await.is_empty(), "a done day ran again");
    assert_eq!(job.0.load(Ordering::SeqCst), 0);
    // A day that falls due after the restore runs as always.
    let tomorrow = now + chrono::Duration::days(1);
    let ran = daily.tick(tomorrow).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(job.0.load(Ordering::SeqCst), 1);
    // And a fresh store (never restored) catches up as before.
    let fresh: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path().join("fresh.db")).unwrap());
    let job = Arc::new(Counting(AtomicUsize::new(0)));
    assert!(
        !DailyJob::new(job.clone(), fresh, schedule, 3)
            .tick(now)
            .await
            .is_empty()
    );
}

#[test]
fn a_request_number_seen_again_gets_a_card_with_a_new_task_id() {
    let catalog = crate::reply_limits::catalog();
    // After a restore the counter comes round again: the same number, another request.
    let before = crate::reply_limits::request("电子发票", &[]);
    let after = crate::reply_limits::request("物流追踪", &[]);
    let user = UserId::parse("handler_f").unwrap();
    let task_id = |request| {
        let (card, _) =
            kaitong::notify::request_card(catalog.messages(), request, &user, (1, 1), "", false);
        serde_json::to_value(card).unwrap()["task_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (task_id(&before), task_id(&after));
    assert_ne!(a, b, "WeCom refuses a task id it has seen");
    for id in [&a, &b] {
        assert!(id.len() <= 128, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@')),
            "{id}"
        );
    }
}
