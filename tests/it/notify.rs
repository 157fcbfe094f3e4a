//! Completion notices end to end: the batch push at 17:30 through the outbox to the WeCom API
//! simulator, exactly once across restarts and instances, with WeCom's failures injected.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::config::Settings;
use kaitong::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
use kaitong::notify::{Delivery, DeliveryKind};
use kaitong::requests::{FiledForm, Handler, Requester, TeamScope};
use kaitong::startup::Parts;
use kaitong::store::Store;
use kaitong_dev::simulator::SimulatorHandle;

use crate::harness::{self, BACKENDS, Backend};

fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn handler() -> Handler {
    Handler {
        name: "ops1".into(),
        scope: TeamScope::All,
    }
}

async fn simulator(settings: &Settings) -> SimulatorHandle {
    let sim = harness::wecom_simulator(settings).await;
    sim.set_per_user_minute_limit(None);
    sim
}

fn parts_on(settings: &Settings, store: Arc<dyn Store>) -> Parts {
    Parts::build(settings, store).unwrap()
}

fn form(id: &str, user: &str) -> FiledForm {
    FiledForm {
        form_id: id.to_owned(),
        service: ServiceId(7),
        service_name: "电子发票".into(),
        team: Team::Functional,
        routing: FilingRoute::ResourcePlatform,
        window: Window::DailyBatch,
        answers: Answers::new(),
        summary: vec![("卖家账号".into(), format!("acct_{user}"))],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(user).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

async fn file(parts: &Parts, id: &str, user: &str, when: DateTime<Utc>) -> RequestId {
    parts.ledger.file(form(id, user), when).await.unwrap().id
}

async fn setup(backend: Backend) -> (Settings, SimulatorHandle, Parts, Option<tempfile::TempDir>) {
    let mut settings = harness::test_settings();
    let sim = simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    let (store, dir) = harness::fresh_store(backend);
    let parts = parts_on(&settings, store);
    (settings, sim, parts, dir)
}

#[tokio::test]
async fn at_half_past_five_each_requester_hears_once_done_rejected_or_still_processing() {
    for backend in BACKENDS {
        let (_settings, sim, parts, _dir) = setup(backend).await;
        let done = file(&parts, "f1", "alice", at(28, 9, 0)).await;
        let rejected = file(&parts, "f2", "bob", at(28, 10, 0)).await;
        let _pending = file(&parts, "f3", "carol", at(28, 11, 0)).await;
        let _tomorrow = file(&parts, "f4", "dave", at(28, 16, 0)).await;
        parts
            .desk
            .complete(&handler(), &done, Some("已开通".into()), at(28, 16, 30))
            .await
            .unwrap();
        parts
            .desk
            .reject(&handler(), &rejected, "卖家账号不存在", at(28, 16, 40))
            .await
            .unwrap();
        let push = parts.background(&harness::test_settings()).push;

        let day = kaitong::requests::BatchDay(
            at(28, 9, 0)
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .date_naive(),
        );
        assert!(
            !push.tick(at(28, 17, 29)).await.contains(&day),
            "{backend:?}: nothing before 17:30"
        );
        parts
            .outbox
            .run_pass(&parts.transports, at(28, 17, 29))
            .await
            .unwrap();
        // A completion waits for 17:30; a rejection is told at once, with its reason.
        let early = sim.sent_messages();
        assert_eq!(early.len(), 1, "{early:?}");
        assert_eq!(early[0].touser, vec!["bob".to_owned()]);
        assert!(
            early[0].content.contains("卖家账号不存在")
                && early[0].content.contains("如有疑问请联系职能组"),
            "{}",
            early[0].content
        );

        assert_eq!(push.tick(at(28, 17, 30)).await, vec![day]);
        let report = parts
            .outbox
            .run_pass(&parts.transports, at(28, 17, 30))
            .await
            .unwrap();
        assert_eq!(report.sent, 2, "{backend:?}: bob already heard, once");
        let sent = sim.sent_messages();
        let to = |user: &str| {
            sent.iter()
                .find(|m| m.touser == vec![user.to_owned()])
                .unwrap()
                .content
                .clone()
        };
        assert!(
            to("alice").contains("已开通") && to("alice").contains("acct_alice"),
            "{}",
            to("alice")
        );
        assert!(to("bob").contains("卖家账号不存在"), "{}", to("bob"));
        assert!(to("carol").contains("仍在处理"), "{}", to("carol"));
        assert!(
            sent.iter().all(|m| m.touser != vec!["dave".to_owned()]),
            "dave is in tomorrow's batch"
        );

        // Ticking again, or after a restart, sends nothing more.
        assert!(push.tick(at(28, 17, 31)).await.is_empty());
        let again = parts_on(
            &harness::test_settings_with_api(&sim),
            Arc::clone(&parts.store),
        );
        again
            .background(&harness::test_settings())
            .push
            .tick(at(28, 18, 0))
            .await;
        again
            .outbox
            .run_pass(&again.transports, at(28, 18, 0))
            .await
            .unwrap();
        assert_eq!(sim.sent_messages().len(), 3, "{backend:?}");
    }
}

#[tokio::test]
async fn a_request_handled_after_done_by_is_notified_at_once() {
    let (_s, sim, parts, _dir) = setup(Backend::Embedded).await;
    let id = file(&parts, "late", "erin", at(28, 9, 0)).await;
    parts
        .background(&harness::test_settings())
        .push
        .tick(at(28, 17, 30))
        .await;
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    assert!(sim.sent_messages()[0].content.contains("仍在处理"));
    parts
        .desk
        .complete(&handler(), &id, None, at(28, 19, 0))
        .await
        .unwrap();
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 19, 0))
        .await
        .unwrap();
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2);
    assert!(sent[1].content.contains("已开通"), "{}", sent[1].content);
}

#[tokio::test]
async fn a_missed_push_runs_once_at_start_up() {
    let (_s, sim, parts, _dir) = setup(Backend::Redis).await;
    file(&parts, "m1", "fay", at(27, 9, 0)).await;
    // The bot was down over the 27th's 17:30; it starts on the 28th in the morning.
    let pushed = parts
        .background(&harness::test_settings())
        .push
        .tick(at(28, 8, 0))
        .await;
    let the_27th =
        kaitong::requests::BatchDay(chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
    assert!(pushed.contains(&the_27th), "{pushed:?}");
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 8, 0))
        .await
        .unwrap();
    assert_eq!(sim.sent_messages().len(), 1);
    assert!(
        parts
            .background(&harness::test_settings())
            .push
            .tick(at(28, 8, 1))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_sending_loses_and_doubles_nothing() {
    for backend in BACKENDS {
        let (settings, sim, parts, dir) = setup(backend).await;
        let users = ["u1", "u2", "u3", "u4", "u5"];
        for (i, user) in users.iter().enumerate() {
            file(&parts, &format!("r{i}"), user, at(28, 9, 0)).await;
        }
        parts.background(&settings).push.tick(at(28, 17, 30)).await;
        // WeCom is busy for three of the five sends of this pass; then the process dies.
        sim.fail_next(3, -1);
        let first = parts
            .outbox
            .run_pass(&parts.transports, at(28, 17, 30))
            .await
            .unwrap();
        assert_eq!((first.sent, first.retried), (2, 3), "{backend:?}");
        // A send that went out just before the crash but was never marked: WeCom's duplicate
        // check (which every notice carries) absorbs the resend.
        let pending = parts.outbox.pending(DeliveryKind::Wecom).await.unwrap();
        let Delivery::Wecom(notice) = &pending[0].delivery else {
            panic!("{:?}", pending[0]);
        };
        parts
            .api
            .send_text(
                &[notice.touser.as_str()],
                &notice.text,
                Some(kaitong::wecom::api::DuplicateCheck::default()),
            )
            .await
            .unwrap();
        let store = Arc::clone(&parts.store);
        drop(parts);

        let restarted = parts_on(&settings, store);
        restarted
            .background(&settings)
            .push
            .tick(at(28, 17, 40))
            .await;
        restarted
            .outbox
            .run_pass(&restarted.transports, at(28, 17, 40))
            .await
            .unwrap();
        let delivered = sim.sent_messages();
        for user in users {
            assert_eq!(
                delivered
                    .iter()
                    .filter(|m| m.touser == vec![user.to_owned()])
                    .count(),
                1,
                "{backend:?} {user}"
            );
        }
        assert_eq!(sim.duplicates_suppressed(), 1);
        drop(dir);
    }
}

/// A failover between marking a notice sent and dropping its pending entry leaves both: the
/// next pass drops the leftover and sends nothing twice, even past WeCom's duplicate window.
#[tokio::test]
async fn a_pending_entry_left_behind_by_a_sent_notice_is_dropped_not_sent_again() {
    for backend in BACKENDS {
        let (settings, sim, parts, dir) = setup(backend).await;
        file(&parts, "r1", "u1", at(28, 9, 0)).await;
        parts.background(&settings).push.tick(at(28, 17, 30)).await;
        let pending = parts.outbox.pending(DeliveryKind::Wecom).await.unwrap();
        assert_eq!(pending.len(), 1, "{backend:?}");
        let key = kaitong::store::keys::outbox_pending("wecom", &pending[0].id);
        let stored = parts.store.get(&key).await.unwrap().unwrap();
        let first = parts
            .outbox
            .run_pass(&parts.transports, at(28, 17, 30))
            .await
            .unwrap();
        assert_eq!(first.sent, 1, "{backend:?}");
        parts.store.put(&key, &stored, None).await.unwrap();

        let next = parts
            .outbox
            .run_pass(&parts.transports, at(29, 17, 30))
            .await
            .unwrap();
        assert_eq!((next.sent, next.retried), (0, 0), "{backend:?}");
        assert!(
            parts.store.get(&key).await.unwrap().is_none(),
            "{backend:?}"
        );
        assert_eq!(sim.sent_messages().len(), 1, "{backend:?}");
        drop(dir);
    }
}

#[tokio::test]
async fn an_expired_token_mid_push_is_refreshed_and_the_push_completes() {
    let (settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    for i in 0..4 {
        file(&parts, &format!("t{i}"), &format!("user{i}"), at(28, 9, 0)).await;
    }
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    sim.fail_next(2, -1); // stop the pass after two sends
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    sim.expire_tokens();
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 35))
        .await
        .unwrap();
    assert_eq!(sim.sent_messages().len(), 4);
    assert_eq!(sim.gettoken_calls(), 2, "one refresh after expiry");
}

#[tokio::test]
async fn a_rate_limit_backs_off_before_retrying() {
    let (settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    file(&parts, "rl", "gina", at(28, 9, 0)).await;
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    sim.fail_next(1, 45009);
    let report = parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    assert_eq!(report.retried, 1);
    let item = &parts.outbox.pending(DeliveryKind::Wecom).await.unwrap()[0];
    assert!(
        item.due >= at(28, 17, 30) + Duration::seconds(60),
        "45009 waits a minute: {}",
        item.due
    );
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30) + Duration::seconds(30))
        .await
        .unwrap();
    assert!(sim.sent_messages().is_empty(), "not before the backoff");
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 31) + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(sim.sent_messages().len(), 1);
}

#[tokio::test]
async fn an_untrusted_ip_is_reported_as_a_configuration_problem_and_retried_later() {
    let (settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    file(&parts, "ip", "hana", at(28, 9, 0)).await;
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    sim.fail_next(1, 60020);
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    let item = &parts.outbox.pending(DeliveryKind::Wecom).await.unwrap()[0];
    assert!(
        item.last_error.as_deref().unwrap().contains("可信IP"),
        "{:?}",
        item.last_error
    );
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 36))
        .await
        .unwrap();
    assert_eq!(sim.sent_messages().len(), 1, "sent once the IP is trusted");
}

#[tokio::test]
async fn two_instances_on_one_redis_send_each_notice_once() {
    let mut settings = harness::test_settings();
    let sim = simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    let prefix = harness::unique_prefix();
    let open = || -> Arc<dyn Store> {
        Arc::new(kaitong::store::RedisStore::open(&harness::redis_url(), &prefix).unwrap())
    };
    let a = parts_on(&settings, open());
    let b = parts_on(&settings, open());
    for i in 0..20 {
        file(&a, &format!("x{i}"), &format!("member{i}"), at(28, 9, 0)).await;
    }
    let (pa, pb) = (a.background(&settings).push, b.background(&settings).push);
    let (da, db) = tokio::join!(pa.tick(at(28, 17, 30)), pb.tick(at(28, 17, 30)));
    let the_28th =
        kaitong::requests::BatchDay(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    let runs = da.iter().chain(&db).filter(|d| **d == the_28th).count();
    assert_eq!(runs, 1, "one instance ran the push");
    let (ra, rb) = tokio::join!(
        a.outbox.run_pass(&a.transports, at(28, 17, 30)),
        b.outbox.run_pass(&b.transports, at(28, 17, 30))
    );
    assert_eq!(ra.unwrap().sent + rb.unwrap().sent, 20);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 20);
    for i in 0..20 {
        let user = format!("member{i}");
        assert_eq!(
            sent.iter()
                .filter(|m| m.touser == vec![user.clone()])
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_long_notice_is_split_on_character_boundaries() {
    let (settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    let mut long = form("long", "ivy");
    long.summary = (0..200)
        .map(|i| (format!("字段{i}"), "很长的值".repeat(3)))
        .collect();
    let id = parts.ledger.file(long, at(28, 9, 0)).await.unwrap().id;
    parts
        .desk
        .complete(&handler(), &id, None, at(28, 16, 10))
        .await
        .unwrap();
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    let parts_sent = sim.sent_messages();
    assert!(parts_sent.len() > 1, "{}", parts_sent.len());
    assert!(parts_sent.iter().all(|m| m.content.len() <= 2048));
}

#[tokio::test]
async fn no_member_gets_more_than_thirty_messages_a_minute() {
    let (settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    for i in 0..31 {
        file(&parts, &format!("burst{i}"), "busy_user", at(28, 9, 0)).await;
    }
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    let report = parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    assert_eq!((report.sent, report.retried), (30, 1));
    assert_eq!(sim.sent_messages().len(), 30);
    let waiting = &parts.outbox.pending(DeliveryKind::Wecom).await.unwrap()[0];
    assert!(
        waiting.due > at(28, 17, 30),
        "the 31st waits for the next minute"
    );
}

/// An OA-ticket request is not in the 16:00 batch: no 17:30 push for it ("仍在处理" would be a
/// promise the seed does not make); its requester hears as soon as the handler acts.
#[tokio::test]
async fn an_oa_ticket_request_is_left_out_of_the_batch_push_and_heard_of_at_once() {
    let (_settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    let mut oa = form("o1", "olga");
    oa.service = ServiceId(1);
    oa.service_name = "续费充值单量".into();
    oa.team = Team::Ops;
    oa.routing = FilingRoute::OaTicket;
    oa.window = Window::Custom("运维在 OA 工单上处理".into());
    let oa_id = parts.ledger.file(oa, at(28, 9, 0)).await.unwrap().id;
    let _batch = file(&parts, "o2", "paul", at(28, 9, 5)).await;
    let push = parts.background(&harness::test_settings()).push;
    push.tick(at(28, 17, 30)).await;
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    let sent = sim.sent_messages();
    assert!(
        sent.iter().any(|m| m.touser == vec!["paul".to_owned()]),
        "the batch's own"
    );
    assert!(
        sent.iter().all(|m| m.touser != vec!["olga".to_owned()]),
        "no 17:30 push for an OA ticket"
    );
    // Handled on the ticket in the morning: heard at once, not at 17:30.
    parts
        .desk
        .complete(&handler(), &oa_id, None, at(29, 10, 0))
        .await
        .unwrap();
    parts
        .outbox
        .run_pass(&parts.transports, at(29, 10, 0))
        .await
        .unwrap();
    assert!(
        sim.sent_messages()
            .iter()
            .any(|m| m.touser == vec!["olga".to_owned()] && m.content.contains("已开通")),
        "{:?}",
        sim.sent_messages()
    );
}

/// Issue 12: the seed names no handler for #1, so a rejection does not send the requester to a
/// team we only assumed; it names whom the receipt named.
#[tokio::test]
async fn a_rejection_of_a_service_without_a_seed_handler_names_no_assumed_team() {
    let (_settings, sim, parts, _dir) = setup(Backend::Embedded).await;
    let mut oa = form("r1", "rita");
    oa.service = ServiceId(1);
    oa.service_name = "续费充值单量".into();
    oa.team = Team::Ops;
    oa.routing = FilingRoute::OaTicket;
    oa.window = Window::Custom("在 OA 开库工单上处理".into());
    let id = parts.ledger.file(oa, at(28, 9, 0)).await.unwrap().id;
    parts
        .desk
        .reject(&handler(), &id, "单量写错了", at(28, 10, 0))
        .await
        .unwrap();
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 10, 0))
        .await
        .unwrap();
    let sent = sim.sent_messages();
    let notice = sent
        .iter()
        .find(|m| m.touser == vec!["rita".to_owned()])
        .expect("the rejection is told at once");
    assert!(
        notice.content.contains("单量写错了")
            && notice.content.contains("如有疑问请联系工单/邮件的处理人")
            && !notice.content.contains("运维"),
        "{}",
        notice.content
    );
}

/// Issue 22: WeCom unreachable for a minute around 17:30 (its port refusing connections). The
/// worker keeps passing every second meanwhile; each failure waits the outbox's growing
/// backoff (a transport error carries no hint that could shorten it), nothing is given up,
/// the log names the cause, and once WeCom is back every requester hears once. Each delivered
/// notice is in its request's history: to whom, when, what.
#[tokio::test]
async fn a_minute_of_wecom_outage_at_half_past_five_loses_no_notice() {
    harness::capture_logs();
    for backend in BACKENDS {
        let (settings, mut sim, parts, _dir) = setup(backend).await;
        let done = file(&parts, "out1", "outage_alice", at(28, 9, 0)).await;
        let rejected = file(&parts, "out2", "outage_bob", at(28, 9, 5)).await;
        let open = file(&parts, "out3", "outage_carol", at(28, 9, 10)).await;
        parts
            .desk
            .complete(&handler(), &done, Some("已开通".into()), at(28, 16, 30))
            .await
            .unwrap();
        let down_from = at(28, 17, 29) + Duration::seconds(30);
        sim.go_down().await;
        // The rejection is told at once — into the outage.
        parts
            .desk
            .reject(&handler(), &rejected, "账号不存在", down_from)
            .await
            .unwrap();
        parts.background(&settings).push.tick(at(28, 17, 30)).await;
        let mut now = down_from;
        let back_at = down_from + Duration::seconds(60);
        let mut attempts_while_down = 0;
        while now < back_at {
            let report = parts.outbox.run_pass(&parts.transports, now).await.unwrap();
            assert_eq!(report.failed, 0, "{backend:?}: nothing given up at {now}");
            assert_eq!(report.sent, 0);
            attempts_while_down += report.retried;
            now += Duration::seconds(1);
        }
        let waiting = parts.outbox.pending(DeliveryKind::Wecom).await.unwrap();
        assert_eq!(waiting.len(), 3, "{backend:?}: {waiting:?}");
        for item in &waiting {
            let error = item.last_error.as_deref().unwrap();
            assert!(error.contains("refused"), "{backend:?}: the cause: {error}");
            // 5 s, 10 s, 20 s …: a handful of attempts in a minute, not one a second.
            assert!(item.attempts <= 4, "{backend:?}: {item:?}");
        }
        assert!(attempts_while_down <= 12, "{attempts_while_down}");
        assert!(
            harness::captured_logs().contains("cause=refused"),
            "the log names the cause"
        );
        assert!(sim.sent_messages().is_empty());

        sim.recover().await.unwrap();
        while now < back_at + Duration::minutes(2) {
            parts.outbox.run_pass(&parts.transports, now).await.unwrap();
            now += Duration::seconds(1);
        }
        let sent = sim.sent_messages();
        for user in ["outage_alice", "outage_bob", "outage_carol"] {
            assert_eq!(
                sent.iter()
                    .filter(|m| m.touser == vec![user.to_owned()])
                    .count(),
                1,
                "{backend:?} {user}: {sent:?}"
            );
        }
        assert!(parts.outbox.failed().await.unwrap().is_empty());
        for (id, user, words) in [
            (&done, "outage_alice", "已开通"),
            (&rejected, "outage_bob", "账号不存在"),
            (&open, "outage_carol", "处理"),
        ] {
            let request = parts.ledger.get(id).await.unwrap().unwrap();
            assert_eq!(request.deliveries.len(), 1, "{backend:?}: {request:?}");
            let record = &request.deliveries[0];
            assert_eq!(record.to, user);
            assert_eq!(record.channel, "wecom");
            assert!(record.at >= back_at, "{backend:?}: {record:?}");
            assert!(record.message.contains(words), "{record:?}");
            let message = sent
                .iter()
                .find(|m| m.touser == vec![user.to_owned()])
                .unwrap();
            assert!(message.content.contains(words));
        }
    }
}

/// An item is given up by age, not by a count of attempts: still failing when
/// `notify.give_up_after_hours` have passed since it was queued, it is tried a last time then
/// and listed as failed.
#[tokio::test]
async fn a_notice_failing_for_a_whole_day_is_given_up_then_and_not_before() {
    let (settings, mut sim, parts, _dir) = setup(Backend::Embedded).await;
    assert_eq!(settings.notify.give_up_after_hours, 24);
    file(&parts, "gu1", "giveup_dora", at(28, 9, 0)).await;
    sim.go_down().await;
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    let mut now = at(28, 17, 30);
    let mut passes = 0;
    while now < at(29, 17, 30) {
        let report = parts.outbox.run_pass(&parts.transports, now).await.unwrap();
        assert_eq!(report.failed, 0, "not before a day has passed: {now}");
        passes += report.retried;
        // The worker looks every minute here; the item is due far less often.
        now += Duration::minutes(1);
    }
    assert!(
        passes > 20,
        "more attempts than the old cap of 20: {passes}"
    );
    let item = &parts.outbox.pending(DeliveryKind::Wecom).await.unwrap()[0];
    assert_eq!(
        item.due,
        at(29, 17, 30),
        "the last attempt is at the deadline"
    );
    let report = parts
        .outbox
        .run_pass(&parts.transports, at(29, 17, 30))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let failed = parts.outbox.failed().await.unwrap();
    let error = failed[0].last_error.as_deref().unwrap();
    assert!(error.contains("refused"), "{error}");
}

/// Issue 22 (metrics to alert on): `/metrics` carries the outbox's depth and given-up items by
/// transport, failed attempts by transport and cause, the process's own `process_*` figures
/// and `kaitong_build_info`.
#[tokio::test]
async fn metrics_show_outbox_depth_failures_by_cause_the_process_and_the_build() {
    let (settings, mut sim, parts, _dir) = setup(Backend::Embedded).await;
    file(&parts, "m1", "metrics_erin", at(28, 9, 0)).await;
    sim.go_down().await;
    parts.background(&settings).push.tick(at(28, 17, 30)).await;
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 17, 30))
        .await
        .unwrap();
    let app = harness::TestApp::spawn(Backend::Embedded, harness::RecordingBot::new()).await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(line_start))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in {text}"))
    };
    // Other tests share the process's metrics: at least ours is counted.
    assert!(
        value("kaitong_outbox_attempt_failures_total{cause=\"refused\",kind=\"wecom\"}") >= 1.0
    );
    assert!(value("kaitong_outbox_pending_by_kind{kind=\"wecom\"}") >= 0.0);
    assert!(value("kaitong_outbox_failed_by_kind{kind=\"email\"}") >= 0.0);
    assert!(value("process_resident_memory_bytes") > 1_000_000.0);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") > 0.0);
    let started = value("process_start_time_seconds");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} vs {now}"
    );
    let build = text
        .lines()
        .find(|line| line.starts_with("kaitong_build_info{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.contains("commit=\"")
            && build.ends_with(" 1"),
        "{build}"
    );
}

/// Issue 22: a 驳回 taken back the same day and made again with another reason reaches the
/// requester again (the first notice does not swallow the second), and the platform hears of
/// each change of the new round as a new event.
#[tokio::test]
async fn a_reopened_request_handled_again_is_told_again_with_the_new_outcome() {
    let mut settings = harness::test_settings();
    let sim = simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    // Never reached in this test: only the queued hand-offs are looked at.
    settings.handoff.platform_webhook_url = "http://127.0.0.1:9/hook".into();
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let parts = parts_on(&settings, store);
    let id = file(&parts, "r1", "erin", at(28, 10, 0)).await;
    parts
        .desk
        .reject(&handler(), &id, "账号写错了", at(28, 11, 0))
        .await
        .unwrap();
    parts
        .desk
        .reopen(&handler(), &id, Some("看错了".into()), at(28, 11, 30))
        .await
        .unwrap();
    parts
        .desk
        .reject(&handler(), &id, "缺少授权书", at(28, 12, 0))
        .await
        .unwrap();
    parts
        .outbox
        .run_pass(&parts.transports, at(28, 12, 0))
        .await
        .unwrap();
    let to_erin: Vec<String> = sim
        .sent_messages()
        .into_iter()
        .filter(|m| m.touser == vec!["erin".to_owned()])
        .map(|m| m.content)
        .collect();
    assert_eq!(to_erin.len(), 2, "{to_erin:?}");
    assert!(to_erin.iter().any(|t| t.contains("账号写错了")));
    assert!(
        to_erin.iter().any(|t| t.contains("缺少授权书")),
        "{to_erin:?}"
    );
    let mut items: Vec<String> = parts
        .outbox
        .all_pending()
        .await
        .unwrap()
        .into_iter()
        .chain(parts.outbox.failed().await.unwrap())
        .map(|item| item.id)
        .filter(|item| item.starts_with("handoff:webhook:"))
        .collect();
    items.sort();
    assert_eq!(
        items,
        vec![
            format!("handoff:webhook:{id}"),
            format!("handoff:webhook:{id}:processing-r1"),
            format!("handoff:webhook:{id}:rejected"),
            format!("handoff:webhook:{id}:rejected-r1"),
        ]
    );
}
