//! kill -9 in the middle of the completion push: the real `kaitong serve` process is killed
//! while notices are going out, restarted on the same store, and every requester still hears
//! exactly once (the outbox resends what was not marked; WeCom's duplicate check absorbs a
//! resend of what had gone out).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use kaitong::catalog::{Answers, Channel, ServiceId, Team, Window};
use kaitong::channel::{ChannelKind, Conversation, UserId};
use kaitong::requests::{BatchSchedule, FiledForm, Ledger, Requester, StoreLedger};

const REQUESTERS: usize = 100;

/// The server process; killed when dropped, so a failing assertion never leaves it running.
struct Server(Child);

impl Server {
    fn id(&self) -> u32 {
        self.0.id()
    }

    fn wait(&mut self) {
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &std::path::Path, api_base: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(env!("CARGO_BIN_EXE_kaitong"))
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KAITONG_STORE__URL", format!("embedded://{}", db.display()))
        .env("KAITONG_WECOM__API_BASE", api_base)
        .env("KAITONG_NOTIFY__TICK_MILLIS", "100")
        .env("KAITONG_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_the_push_loses_and_doubles_no_notice() {
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let sim = common::wecom_simulator(&settings).await;
    sim.set_per_user_minute_limit(None);
    // Slow enough that the push takes several rounds of sends.
    sim.set_delay(Duration::from_millis(300));

    // Yesterday's batch, already past its 17:30: the server pushes it as soon as it starts.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    {
        let store = std::sync::Arc::new(kaitong::store::EmbeddedStore::open(&db).unwrap());
        let ledger = StoreLedger::new(store, BatchSchedule::default());
        let yesterday = Utc::now() - chrono::Duration::days(1);
        let morning = chrono_tz::Asia::Shanghai
            .from_local_datetime(
                &yesterday
                    .with_timezone(&chrono_tz::Asia::Shanghai)
                    .date_naive()
                    .and_hms_opt(9, 0, 0)
                    .unwrap(),
            )
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..REQUESTERS {
            let form = FiledForm {
                form_id: format!("crash{i}"),
                service: ServiceId(7),
                service_name: "电子发票".into(),
                team: Team::Functional,
                routing: Channel::ResourcePlatform,
                window: Window::DailyBatch,
                answers: Answers::new(),
                summary: vec![("卖家账号".into(), format!("acct{i}"))],
                resubmit_of: None,
                requester: Requester {
                    user: UserId::parse(&format!("person{i}")).unwrap(),
                    channel: ChannelKind::App,
                    conversation: Conversation::Direct,
                },
            };
            ledger.file(form, morning).await.unwrap();
        }
    }

    let mut first = serve(&db, &sim.base_url());
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.sent_messages().len() < 20 {
        assert!(Instant::now() < deadline, "the push did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = Command::new("kill")
        .arg("-9")
        .arg(first.id().to_string())
        .status();
    first.wait();
    let at_kill = sim.sent_messages().len();
    assert!(
        at_kill < REQUESTERS,
        "killed in the middle of the push ({at_kill} sent)"
    );

    let second = serve(&db, &sim.base_url());
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.sent_messages().len() < REQUESTERS {
        assert!(
            Instant::now() < deadline,
            "only {} of {REQUESTERS} delivered after the restart",
            sim.sent_messages().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, to catch a late duplicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(second);

    let sent = sim.sent_messages();
    for i in 0..REQUESTERS {
        let user = format!("person{i}");
        assert_eq!(
            sent.iter().filter(|m| m.touser.contains(&user)).count(),
            1,
            "{user}"
        );
    }
    assert_eq!(sent.len(), REQUESTERS);
}
