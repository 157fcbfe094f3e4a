//! The request ledger on both stores: ids, idempotent filing, batch days, listing, transitions.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::{BACKENDS, fresh_store};
use kaitong::catalog::{Answers, Channel, ServiceId, Team, Window};
use kaitong::channel::{ChannelKind, Conversation, UserId};
use kaitong::requests::{
    BatchSchedule, FiledForm, Ledger, LedgerError, RequestFilter, Requester, Status, StoreLedger,
};

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
        routing: Channel::ResourcePlatform,
        window: Window::DailyBatch,
        answers: Answers::new(),
        summary: vec![("卖家账号".into(), "acct".into())],
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
        let missing = kaitong::requests::RequestId::parse("KT-20990101-0001").unwrap();
        assert!(matches!(
            ledger
                .transition(&missing, Status::Done, "x", None, shanghai(28, 9, 0))
                .await,
            Err(LedgerError::NotFound(_))
        ));
    }
}
