//! The open-work queue under a moved clock, through the real server and the WeCom API
//! simulator: a request filed on day 1 and left open is in the handler's reminder at day 1's
//! done-by time (once), in the day-2 cut-off cards as 逾期, and in the handler's default views
//! on day 3 (console, JSON API, `/today` in chat) marked 逾期, oldest first, with its age.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Days, TimeZone, Utc};
use kaitong::catalog::{Answers, FieldKey, FieldValue, FilingRoute, Team, Window};
use kaitong::config::{HandlerAccountSettings, Settings};
use kaitong::domain::{ChannelKind, Conversation, ServiceId, UserId};
use kaitong::requests::{BatchDay, FiledForm, Requester, token_hash};
use kaitong::startup::{Application, Parts};
use kaitong::store::Store;
use kaitong_dev::simulator::{SentMessage, SimulatorHandle};

use crate::harness::{self, Backend, TestApp};

const FUNCTIONAL_TOKEN: &str = "t-functional-0123456789";

fn settings() -> Settings {
    let mut settings = harness::test_settings();
    let account = |name: &str, team: &str, token: &str, user: &str| HandlerAccountSettings {
        name: name.into(),
        team: team.into(),
        token_sha256: token_hash(token),
        wecom_userid: user.into(),
    };
    settings.handlers.accounts = vec![
        account("职能-小王", "functional", FUNCTIONAL_TOKEN, "handler_f"),
        account("运维-老李", "ops", "t-ops-0123456789", "handler_o"),
    ];
    settings.console.public_url = "https://kt.example.com/".into();
    // The test drives the daily jobs and the outbox itself, at the moved times.
    settings.notify.enabled = false;
    settings
}

struct World {
    app: TestApp,
    parts: Parts,
    settings: Settings,
    wecom: SimulatorHandle,
}

async fn start() -> World {
    let mut settings = settings();
    let wecom = harness::wecom_simulator(&settings).await;
    wecom.set_per_user_minute_limit(None);
    settings.wecom.api_base = wecom.base_url();
    let (store, dir) = harness::fresh_store(Backend::Redis);
    let served = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = Application::build_from(&settings, served).await.unwrap();
    let app = TestApp::serve(app, settings.clone(), Arc::clone(&store), dir);
    let parts = Parts::build(&settings, store).unwrap();
    World {
        app,
        parts,
        settings,
        wecom,
    }
}

impl World {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.parts.store)
    }

    async fn deliver_at(&self, now: DateTime<Utc>) {
        self.parts
            .outbox
            .run_pass(&self.parts.transports, now)
            .await
            .unwrap();
    }

    fn sent_to(&self, user: &str) -> Vec<SentMessage> {
        self.wecom
            .sent_messages()
            .into_iter()
            .filter(|m| m.touser == vec![user.to_owned()])
            .collect()
    }
}

fn shanghai(day: BatchDay, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.0.and_hms_opt(h, m, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn form(form_id: &str, user: &str, account: &str) -> FiledForm {
    let mut answers = Answers::new();
    answers.insert(
        FieldKey::parse("seller_account").unwrap(),
        FieldValue::Text(account.to_owned()),
    );
    FiledForm {
        form_id: form_id.to_owned(),
        service: ServiceId(7),
        service_name: "电子发票".into(),
        team: Team::Functional,
        routing: FilingRoute::ResourcePlatform,
        window: Window::DailyBatch,
        answers,
        summary: vec![("卖家账号".into(), account.to_owned())],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(user).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

#[tokio::test]
async fn a_request_left_open_is_reminded_carried_to_the_next_cut_off_and_overdue_on_day_three() {
    let w = start().await;
    let schedule = w.parts.schedule;
    let now = Utc::now();
    let day3 = BatchDay(schedule.local_date(now));
    let day1 = BatchDay(day3.0.checked_sub_days(Days::new(2)).unwrap());
    let day2 = BatchDay(day1.0.succ_opt().unwrap());

    // Day 1, 10:00: two requests; one is handled in time, the other is left open.
    let left = w
        .parts
        .ledger
        .file(form("ow-1", "alice", "shop_left"), shanghai(day1, 10, 0))
        .await
        .unwrap()
        .id;
    let handled = w
        .parts
        .ledger
        .file(form("ow-2", "bob", "shop_done"), shanghai(day1, 10, 5))
        .await
        .unwrap()
        .id;
    assert_eq!(
        w.parts.ledger.get(&left).await.unwrap().unwrap().batch,
        day1
    );
    let handler = w
        .parts
        .handlers
        .by_wecom_user(&UserId::parse("handler_f").unwrap())
        .unwrap();
    w.parts
        .desk
        .complete(&handler, &handled, None, shanghai(day1, 15, 0))
        .await
        .unwrap();

    // Day 1, 17:30: one reminder to the functional handler, naming the open one only; the
    // ops handler, with nothing open, hears nothing.
    let jobs = w.parts.background(&w.settings);
    let done_by = schedule.done_at(day1).unwrap();
    assert!(
        jobs.reminder
            .tick(done_by - chrono::Duration::minutes(1))
            .await
            .is_empty(),
        "nothing before the done-by time"
    );
    assert_eq!(jobs.reminder.tick(done_by).await, vec![day1]);
    w.deliver_at(done_by).await;
    let reminders = w.sent_to("handler_f");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    let text = &reminders[0].content;
    assert!(
        text.contains("已过 17:30")
            && text.contains(left.as_str())
            && !text.contains(handled.as_str())
            && text.contains("已等 7 小时")
            && text.contains("https://kt.example.com/console?overdue=1"),
        "{text}"
    );
    assert!(w.sent_to("handler_o").is_empty(), "nothing open for ops");
    // Once per day, across restarts and instances.
    assert!(jobs.reminder.tick(done_by).await.is_empty());
    let other = Parts::build(&w.settings, w.store()).unwrap();
    assert!(
        other
            .background(&w.settings)
            .reminder
            .tick(done_by + chrono::Duration::minutes(5))
            .await
            .is_empty()
    );
    w.deliver_at(done_by + chrono::Duration::minutes(5)).await;
    assert_eq!(w.sent_to("handler_f").len(), 1, "one reminder a day");

    // Day 2, 16:00: the cut-off carries the overdue request, with a card marked 逾期 that
    // opens the request's own console page.
    let cutoff = schedule.cutoff_at(day2).unwrap();
    assert_eq!(jobs.cutoff.tick(cutoff).await, vec![day2]);
    w.deliver_at(cutoff).await;
    w.deliver_at(cutoff + chrono::Duration::seconds(5)).await;
    let to_handler = w.sent_to("handler_f");
    assert_eq!(
        to_handler.len(),
        3,
        "reminder, overview, one card: {to_handler:?}"
    );
    let overview = &to_handler[1].content;
    assert!(
        overview.contains(&format!("{day2} 批次已截止"))
            && overview.contains("待你处理 1 条(含逾期 1 条)")
            && overview.contains(left.as_str()),
        "{overview}"
    );
    let card = &to_handler[2].body["template_card"];
    assert_eq!(card["main_title"]["desc"], left.as_str());
    assert_eq!(card["source"]["desc"], "逾期 第1/1条");
    assert_eq!(
        card["card_action"]["url"],
        format!("https://kt.example.com/console/requests/{left}")
    );

    // Day 3 (now): the handler's default views hold it, marked 逾期, with its age.
    let today = w.app.say("handler_f", "/today").await;
    assert!(
        today.contains("职能组的待处理")
            && today.contains("待处理 1 条 · 逾期 1 条")
            // Filed on day 1 at 10:00: at least 1 天 14 小时 by day 3, whatever the hour.
            && today.contains(&format!("{left} #7 电子发票 · 已提交 · 已等 "))
            && waited_days(&today)
            && today.contains("· 逾期")
            && !today.contains(handled.as_str()),
        "{today}"
    );

    let api = w
        .app
        .http
        .get(w.app.url("/api/v1/requests/open"))
        .bearer_auth(FUNCTIONAL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let listed: serde_json::Value = api.json().await.unwrap();
    assert_eq!(listed["view"], "open");
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["overdue"], 1);
    let first = &listed["requests"][0];
    assert_eq!(first["id"], left.as_str());
    assert_eq!(first["overdue"], true);
    assert_eq!(first["seller_account"], "shop_left");
    assert!(first["age_seconds"].as_i64().unwrap() > 2 * 86_400 - 86_400);
    // The same with ?open=1 on the listing resource; its default is today's local date.
    let (_, by_flag) = api_get(&w, "/api/v1/requests?open=1").await;
    assert_eq!(by_flag["requests"][0]["id"], left.as_str());
    let (_, by_day) = api_get(&w, "/api/v1/requests").await;
    assert_eq!(
        by_day["day"],
        day3.to_string(),
        "today's local date, not the next batch"
    );

    let console = console_page(&w, "/console").await;
    assert!(
        console.contains("待处理")
            && console.contains(left.as_str())
            && console.contains("逾期 1")
            && console.contains("账号 shop_left")
            && waited_days(&console)
            && !console.contains(handled.as_str()),
        "{console}"
    );
    let overdue_only = console_page(&w, "/console?overdue=1").await;
    assert!(overdue_only.contains(left.as_str()), "{overdue_only}");
}

/// Whether the first "已等 …" on the page counts days.
fn waited_days(page: &str) -> bool {
    page.split_once("已等 ")
        .is_some_and(|(_, rest)| rest.chars().take(10).any(|c| c == '天'))
}

async fn api_get(w: &World, path: &str) -> (u16, serde_json::Value) {
    let response = w
        .app
        .http
        .get(w.app.url(path))
        .bearer_auth(FUNCTIONAL_TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Logs in with the functional handler's token and reads a console page.
async fn console_page(w: &World, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(w.app.url("/console/login"))
        .form(&[("token", FUNCTIONAL_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    http.get(w.app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The real `kaitong serve` on a store holding open requests and a push another instance ran:
/// `/metrics` shows open and overdue requests per team and each daily job's last success.
#[test]
fn metrics_show_open_and_overdue_per_team_and_when_each_daily_job_last_succeeded() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use kaitong::requests::{BatchSchedule, Ledger, StoreLedger};
    use kaitong::store::{EmbeddedStore, Sealed, Sealer};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let schedule = BatchSchedule::default();
    let now = Utc::now();
    let today = BatchDay(schedule.local_date(now));
    // Another instance ran the 17:30 push of the last days (and today's) at this time.
    let pushed_at = Utc.with_ymd_and_hms(2026, 1, 2, 9, 30, 0).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let settings = Settings::load_with_env(None, Vec::new()).unwrap();
        let embedded: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&db).unwrap());
        let store = match Sealer::from_settings(&settings.store).unwrap() {
            Some(sealer) => Sealed::wrap(embedded, sealer),
            None => embedded,
        };
        let ledger = StoreLedger::new(Arc::clone(&store), schedule);
        let mut old = form("m-1", "alice", "shop_old");
        old.team = Team::Functional;
        ledger
            .file(old, now - chrono::Duration::days(3))
            .await
            .unwrap();
        let mut fresh = form("m-2", "bob", "shop_new");
        fresh.team = Team::Ops;
        ledger.file(fresh, now).await.unwrap();
        for back in 0..=3 {
            let day = BatchDay(today.0.checked_sub_days(Days::new(back)).unwrap());
            store
                .put(
                    &format!("job:push:{day}:done"),
                    pushed_at.to_rfc3339().as_bytes(),
                    None,
                )
                .await
                .unwrap();
        }
    });

    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (public, admin) = (port(), port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kaitong"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{public}"))
        .env("KAITONG_SERVER__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("KAITONG_STORE__URL", format!("embedded://{}", db.display()))
        // Nothing may leave for the real WeCom.
        .env("KAITONG_WECOM__API_BASE", "http://127.0.0.1:9/cgi-bin")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = || -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin)).ok()?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    };
    let wanted = [
        "kaitong_requests_open{team=\"functional\"} 1".to_owned(),
        "kaitong_requests_overdue{team=\"functional\"} 1".to_owned(),
        "kaitong_requests_open{team=\"ops\"} 1".to_owned(),
        "kaitong_requests_overdue{team=\"ops\"} 0".to_owned(),
        "kaitong_requests_open{team=\"rnd\"} 0".to_owned(),
        format!(
            "kaitong_daily_job_last_success_timestamp_seconds{{job=\"push\"}} {}",
            pushed_at.timestamp()
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics().unwrap_or_default();
        if wanted.iter().all(|w| text.contains(w.as_str())) {
            break text;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("metrics never showed {wanted:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("# TYPE kaitong_daily_job_last_success_timestamp_seconds gauge"));
}
