//! The request ledger on both stores: ids, idempotent filing, batch days, listing, transitions.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::domain::{ChannelKind, Conversation, ServiceId, UserId};
use kaitong::requests::{
    BatchSchedule, FiledForm, Ledger, LedgerError, RequestFilter, Requester, Status, StoreLedger,
};

use crate::harness::{BACKENDS, fresh_store};

fn shanghai(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn form(id: &str, user: &str, team: Team) -> FiledForm {
    FiledForm {
        form_id: id.to_owned(),
        service: ServiceId(7),
        service_name: "电子发票".into(),
        team,
        routing: FilingRoute::ResourcePlatform,
        window: Window::DailyBatch,
        answers: Answers::new(),
        summary: vec![("卖家账号".into(), "acct".into())],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(user).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

#[tokio::test]
async fn ids_count_up_per_day_and_filing_twice_files_once() {
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        let ledger = StoreLedger::new(store, BatchSchedule::default());
        let a = ledger
            .file(form("f1", "u1", Team::Rnd), shanghai(28, 10, 0))
            .await
            .unwrap();
        let b = ledger
            .file(form("f2", "u1", Team::Rnd), shanghai(28, 11, 0))
            .await
            .unwrap();
        assert_eq!(a.id.as_str(), "KT-20261128-0001", "{backend:?}");
        assert_eq!(b.id.as_str(), "KT-20261128-0002");
        let again = ledger
            .file(form("f1", "u1", Team::Rnd), shanghai(28, 12, 0))
            .await
            .unwrap();
        assert_eq!(again.id, a.id);
        assert!(!again.newly_filed && a.newly_filed);
    }
}

#[tokio::test]
async fn concurrent_confirms_of_one_form_file_it_once() {
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        let ledger = Arc::new(StoreLedger::new(store, BatchSchedule::default()));
        let tries = (0..6).map(|_| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                ledger
                    .file(form("same", "u", Team::Rnd), shanghai(28, 9, 0))
                    .await
                    .unwrap()
            })
        });
        let receipts: Vec<_> = futures::future::join_all(tries)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(
            receipts.iter().all(|r| r.id == receipts[0].id),
            "{backend:?}"
        );
        assert_eq!(
            receipts.iter().filter(|r| r.newly_filed).count(),
            1,
            "{backend:?}"
        );
        let all = ledger.list(&RequestFilter::default()).await.unwrap();
        assert_eq!(all.len(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn listing_filters_by_batch_day_status_team_and_requester() {
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        let schedule = BatchSchedule::default();
        let ledger = StoreLedger::new(store, schedule);
        let early = ledger
            .file(form("a", "u1", Team::Rnd), shanghai(28, 15, 59))
            .await
            .unwrap();
        let late = ledger
            .file(form("b", "u2", Team::Functional), shanghai(28, 16, 0))
            .await
            .unwrap();
        assert_ne!(early.batch, late.batch);
        let today = RequestFilter {
            day: Some(early.batch),
            ..Default::default()
        };
        let ids: Vec<String> = ledger
            .list(&today)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        assert_eq!(ids, vec![early.id.to_string()], "{backend:?}");
        let team = RequestFilter {
            team: Some(Team::Functional),
            ..Default::default()
        };
        assert_eq!(ledger.list(&team).await.unwrap()[0].id, late.id);
        let mine = RequestFilter {
            requester: Some((ChannelKind::App, UserId::parse("u2").unwrap())),
            ..Default::default()
        };
        assert_eq!(ledger.list(&mine).await.unwrap().len(), 1);
        ledger
            .transition(&late.id, Status::Done, "ops1", None, shanghai(29, 17, 0))
            .await
            .unwrap();
        let done = RequestFilter {
            status: Some(Status::Done),
            ..Default::default()
        };
        assert_eq!(
            ledger.list(&done).await.unwrap()[0].id,
            late.id,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn transitions_follow_the_rules_and_keep_an_audit_trail() {
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        let ledger = StoreLedger::new(store, BatchSchedule::default());
        let r = ledger
            .file(form("t", "u", Team::Rnd), shanghai(28, 9, 0))
            .await
            .unwrap();
        ledger
            .transition(&r.id, Status::Processing, "dev1", None, shanghai(28, 16, 5))
            .await
            .unwrap();
        let err = ledger
            .transition(&r.id, Status::Cancelled, "u", None, shanghai(28, 16, 6))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::InvalidTransition { .. }),
            "{backend:?}: cannot cancel once processing"
        );
        ledger
            .add_note(&r.id, "dev1", "已联系客户".into(), shanghai(28, 16, 7))
            .await
            .unwrap();
        let done = ledger
            .transition(
                &r.id,
                Status::Rejected,
                "dev1",
                Some("账号不存在".into()),
                shanghai(28, 16, 8),
            )
            .await
            .unwrap();
        assert_eq!(done.status(), Status::Rejected);
        assert_eq!(done.history.len(), 3);
        assert_eq!(done.history[2].note.as_deref(), Some("账号不存在"));
        assert_eq!(done.notes[0].text, "已联系客户");
        let again = ledger
            .transition(&r.id, Status::Done, "dev1", None, shanghai(28, 16, 9))
            .await;
        assert!(
            matches!(again, Err(LedgerError::InvalidTransition { .. })),
            "final states stay final"
        );
        let missing = kaitong::domain::RequestId::parse("KT-20990101-0001").unwrap();
        assert!(matches!(
            ledger
                .transition(&missing, Status::Done, "x", None, shanghai(28, 9, 0))
                .await,
            Err(LedgerError::NotFound(_))
        ));
    }
}

/// A store that fails the next write whose key starts with a given prefix, as a failover
/// between two writes of one filing does.
struct FailOnce {
    inner: Arc<dyn kaitong::store::Store>,
    prefix: &'static str,
    armed: std::sync::atomic::AtomicBool,
}

impl FailOnce {
    fn trip(&self, key: &str) -> Result<(), kaitong::store::StoreError> {
        if key.starts_with(self.prefix)
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(kaitong::store::StoreError::Unavailable(
                "failing over".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl kaitong::store::Store for FailOnce {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, kaitong::store::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<std::time::Duration>,
    ) -> Result<(), kaitong::store::StoreError> {
        self.trip(key)?;
        self.inner.put(key, value, ttl).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<std::time::Duration>,
    ) -> Result<bool, kaitong::store::StoreError> {
        self.trip(key)?;
        self.inner.put_if_absent(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<std::time::Duration>,
    ) -> Result<bool, kaitong::store::StoreError> {
        self.trip(key)?;
        self.inner.compare_and_swap(key, expected, value, ttl).await
    }
    async fn increment(&self, key: &str) -> Result<u64, kaitong::store::StoreError> {
        self.inner.increment(key).await
    }
    async fn delete(&self, key: &str) -> Result<bool, kaitong::store::StoreError> {
        self.inner.delete(key).await
    }
    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, kaitong::store::StoreError> {
        self.inner.list_prefix(prefix, limit).await
    }
    async fn ping(&self) -> Result<(), kaitong::store::StoreError> {
        self.inner.ping().await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test]
async fn a_filing_cut_off_after_its_number_was_claimed_is_completed_by_the_repeated_confirm() {
    for backend in BACKENDS {
        for cut in ["request:", "batch:", "mine:"] {
            let (store, _dir) = fresh_store(backend);
            let flaky = Arc::new(FailOnce {
                inner: store,
                prefix: cut,
                armed: std::sync::atomic::AtomicBool::new(true),
            });
            let ledger = StoreLedger::new(flaky, BatchSchedule::default());
            let first = ledger
                .file(form("f1", "u1", Team::Rnd), shanghai(28, 10, 0))
                .await;
            assert!(
                matches!(first, Err(LedgerError::Store(_))),
                "{backend:?} {cut}"
            );
            // The person sends 确认 again: the same number, and now the request is there.
            let again = ledger
                .file(form("f1", "u1", Team::Rnd), shanghai(28, 10, 1))
                .await
                .unwrap();
            assert_eq!(again.id.as_str(), "KT-20261128-0001", "{backend:?} {cut}");
            assert_eq!(again.newly_filed, cut == "request:", "{backend:?} {cut}");
            assert!(ledger.get(&again.id).await.unwrap().is_some());
            let mine = ledger
                .list(&RequestFilter {
                    requester: Some((ChannelKind::App, UserId::parse("u1").unwrap())),
                    ..RequestFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(mine.len(), 1, "{backend:?} {cut}");
            let day = ledger
                .list(&RequestFilter {
                    day: Some(again.batch),
                    ..RequestFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(day.len(), 1, "{backend:?} {cut}");
            let third = ledger
                .file(form("f1", "u1", Team::Rnd), shanghai(28, 10, 2))
                .await
                .unwrap();
            assert_eq!((third.id, third.newly_filed), (again.id, false));
        }
    }
}

/// Issue 22: the open queue lists open requests of every day, oldest first; a final request
/// leaves it, a same-day reopen brings it back (in the history), a reopen on a later day is
/// refused; requests filed before the open-work index existed are found too.
#[tokio::test]
async fn the_open_queue_spans_days_and_follows_finals_and_same_day_reopens() {
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        let ledger = StoreLedger::new(Arc::clone(&store), BatchSchedule::default());
        let old = ledger
            .file(form("o1", "u1", Team::Rnd), shanghai(20, 10, 0))
            .await
            .unwrap()
            .id;
        let done = ledger
            .file(form("o2", "u2", Team::Ops), shanghai(21, 10, 0))
            .await
            .unwrap()
            .id;
        let new = ledger
            .file(form("o3", "u3", Team::Ops), shanghai(28, 17, 0))
            .await
            .unwrap()
            .id;
        // As a store written before the index: only the records, no index entries.
        for key in ["openwork:", "index:openwork:"] {
            for (k, _) in store.list_prefix(key, 100).await.unwrap() {
                store.delete(&k).await.unwrap();
            }
        }
        ledger
            .transition(&done, Status::Done, "h", None, shanghai(28, 9, 0))
            .await
            .unwrap();
        assert_eq!(
            open_ids(&ledger).await,
            vec![old.clone(), new.clone()],
            "{backend:?}"
        );
        let ops_only = ledger
            .list(&RequestFilter {
                team: Some(Team::Ops),
                ..RequestFilter::open()
            })
            .await
            .unwrap();
        assert_eq!(ops_only.len(), 1);

        // The same local day: reopened, open again, in the history.
        let reopened = ledger
            .reopen(&done, "h", Some("点错了".into()), shanghai(28, 12, 0))
            .await
            .unwrap();
        assert_eq!(reopened.status(), Status::Processing);
        assert_eq!(reopened.reopenings(), 1);
        assert_eq!(
            reopened.history.last().unwrap().note.as_deref(),
            Some("点错了")
        );
        assert_eq!(
            open_ids(&ledger).await,
            vec![old.clone(), done.clone(), new.clone()]
        );
        // Handled again, and a day later no reopen.
        ledger
            .transition(
                &done,
                Status::Rejected,
                "h",
                Some("x".into()),
                shanghai(28, 13, 0),
            )
            .await
            .unwrap();
        let late = ledger
            .reopen(&done, "h", None, shanghai(29, 9, 0))
            .await
            .unwrap_err();
        assert!(matches!(late, LedgerError::ReopenTooLate(_)), "{late:?}");
        let open_one = ledger
            .reopen(&old, "h", None, shanghai(28, 13, 0))
            .await
            .unwrap_err();
        assert!(matches!(open_one, LedgerError::InvalidTransition { .. }));
        assert_eq!(open_ids(&ledger).await, vec![old.clone(), new.clone()]);
    }
}

async fn open_ids(ledger: &StoreLedger) -> Vec<kaitong::domain::RequestId> {
    ledger
        .list(&RequestFilter::open())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}
