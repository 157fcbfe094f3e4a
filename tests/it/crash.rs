//! kill -9 in the middle of the completion push: the real `kaitong serve` process is killed
//! while notices are going out, restarted on the same store, and every requester still hears
//! exactly once (the outbox resends what was not marked; WeCom's duplicate check absorbs a
//! resend of what had gone out).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::domain::{ChannelKind, Conversation, ServiceId, UserId};
use kaitong::requests::{BatchSchedule, FiledForm, Ledger, Requester, StoreLedger};

use crate::harness::{self, free_port};

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
    serve_on(db, api_base, free_port())
}

fn serve_on(db: &std::path::Path, api_base: &str, port: u16) -> Server {
    Command::new(env!("CARGO_BIN_EXE_kaitong"))
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
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
    let sim = harness::wecom_simulator(&settings).await;
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
                routing: FilingRoute::ResourcePlatform,
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

/// One person's callback that was answered before the kill: what was sent and what came back.
struct Answered {
    person: usize,
    turn: usize,
    query: String,
    body: String,
    reply: String,
}

async fn post(client: &reqwest::Client, port: u16, query: &str, body: &str) -> Option<String> {
    let res = client
        .post(format!("http://127.0.0.1:{port}/wecom/app?{query}"))
        .body(body.to_owned())
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.text().await.ok().filter(|b| !b.is_empty())
}

/// Issue 13: a turn's claim and session are written without an fsync of their own and ride on
/// the reply record's. kill -9 while many people talk at once; after the restart every answered
/// callback, sent again as WeCom would retry it, gets the same answer back (the reply record
/// survived, so the turn does not run twice), and every person whose first turn was answered
/// finds the form where that answer left it (the session survived).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_turns_loses_no_answered_turn() {
    const PEOPLE: usize = 64;
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let sim = harness::wecom_simulator(&settings).await;
    let peer = kaitong_dev::peer::WecomPeer::new(
        kaitong::wecom::MsgCrypt::for_app(&settings.wecom).unwrap(),
    );
    let corp = settings.wecom.corp_id.clone();
    let agent = settings.wecom.agent_id.to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let port = free_port();
    let mut first = serve_on(&db, &sim.base_url(), port);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every person says the first two lines of the load script, over and over (new message
    // ids each time), until the server is killed under them.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Answered>::new()));
    let mut talkers = Vec::new();
    for person in 0..PEOPLE {
        let (peer, client, corp, agent, answered) = (
            peer.clone(),
            client.clone(),
            corp.clone(),
            agent.clone(),
            std::sync::Arc::clone(&answered),
        );
        talkers.push(tokio::spawn(async move {
            for round in 0u64.. {
                let turn = usize::try_from(round % 2).unwrap();
                let text = if turn == 0 {
                    format!("帮我给 acct_{person} 开一下电子发票")
                } else {
                    "客户需要开电子发票".to_owned()
                };
                let msg_id = (person as u64) * 1_000_000 + round + 1;
                let inner = kaitong_dev::peer::app_text_xml(
                    &corp,
                    &format!("crash{person}"),
                    &agent,
                    msg_id,
                    &text,
                );
                let cb = peer.app_callback(&inner, &agent).unwrap();
                let Some(body) = post(&client, port, &cb.query, &cb.body).await else {
                    return;
                };
                let reply = peer.open_app_reply(&body).unwrap().unwrap();
                answered.lock().unwrap().push(Answered {
                    person,
                    turn,
                    query: cb.query,
                    body: cb.body,
                    reply,
                });
                if turn == 1 {
                    // 取消, so the next round starts a fresh form.
                    let inner = kaitong_dev::peer::app_text_xml(
                        &corp,
                        &format!("crash{person}"),
                        &agent,
                        msg_id + 500_000,
                        "取消",
                    );
                    let cb = peer.app_callback(&inner, &agent).unwrap();
                    if post(&client, port, &cb.query, &cb.body).await.is_none() {
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.lock().unwrap().len() < 400 {
        assert!(Instant::now() < deadline, "too few turns answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = Command::new("kill")
        .arg("-9")
        .arg(first.id().to_string())
        .status();
    first.wait();
    for talker in talkers {
        let _ = talker.await;
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());

    let second = serve_on(&db, &sim.base_url(), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // WeCom's retry of an answered callback gets that answer, not a second run of the turn.
    for a in &answered {
        let body = post(&client, port, &a.query, &a.body)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "person {} turn {}: no answer to the retry",
                    a.person, a.turn
                )
            });
        assert_eq!(
            peer.open_app_reply(&body).unwrap().unwrap(),
            a.reply,
            "person {} turn {}: the retry was not answered from the stored reply",
            a.person,
            a.turn
        );
    }
    // Whoever's last answered callback was the first line is in the form that answer opened
    // (or further on, if a later turn was committed but its answer never arrived): the reason
    // is not answered as it is to a person with no form.
    let say_reason = |user: String, msg_id: u64| {
        let inner =
            kaitong_dev::peer::app_text_xml(&corp, &user, &agent, msg_id, "客户需要开电子发票");
        peer.app_callback(&inner, &agent).unwrap()
    };
    let cb = say_reason("nobody".to_owned(), 999_999_999);
    let body = post(&client, port, &cb.query, &cb.body).await.unwrap();
    let without_form = peer.open_app_reply(&body).unwrap().unwrap();
    let content = |xml: &str| {
        kaitong::wecom::app_xml::InnerMessage::parse(xml)
            .unwrap()
            .content
            .unwrap()
    };
    let mut checked = 0;
    for person in 0..PEOPLE {
        let Some(last) = answered.iter().rev().find(|a| a.person == person) else {
            continue;
        };
        if last.turn != 0 {
            continue;
        }
        let cb = say_reason(
            format!("crash{person}"),
            (person as u64) * 1_000_000 + 999_999,
        );
        let body = post(&client, port, &cb.query, &cb.body).await.unwrap();
        let reply = peer.open_app_reply(&body).unwrap().unwrap();
        assert_ne!(
            content(&reply),
            content(&without_form),
            "person {person}: the answered first turn's form was lost"
        );
        checked += 1;
    }
    assert!(checked > 0, "no person was left mid-form");
    drop(second);
}
