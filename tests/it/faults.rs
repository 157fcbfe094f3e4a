//! Faults: Redis stopped and started mid-conversation, a WeCom API slower than WeCom's 5 s
//! budget, a flood from one person, and secrets kept out of the logs.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kaitong::config::Settings;
use kaitong::startup::{Application, Parts};
use kaitong::store::{RedisStore, Store};
use kaitong::wecom::app_xml::InnerMessage;
use kaitong_dev::simulator::SimulatorHandle;

use crate::harness::{self, Backend, TestApp};

async fn simulator(settings: &Settings) -> SimulatorHandle {
    harness::wecom_simulator(settings).await
}

async fn start(mut settings: Settings, store: Arc<dyn Store>) -> (TestApp, SimulatorHandle) {
    harness::capture_logs();
    let sim = simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = Application::build_from(&settings, parts).await.unwrap();
    (TestApp::serve(app, settings, store, None), sim)
}

async fn say(app: &TestApp, user: &str, text: &str) -> String {
    app.say_raw(user, text).await.unwrap_or_default()
}

/// A redis-server of this test's own, with an append-only file so a restart keeps the data.
struct OwnRedis {
    child: Child,
    port: u16,
    dir: Option<tempfile::TempDir>,
}

impl OwnRedis {
    fn start_in(dir: tempfile::TempDir, port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let url = format!("redis://127.0.0.1:{port}/");
        let client = redis::Client::open(url).unwrap();
        for _ in 0..200 {
            if client.get_connection().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Self {
            child,
            port,
            dir: Some(dir),
        }
    }

    fn stop(mut self) -> (tempfile::TempDir, u16) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        (self.dir.take().expect("a data dir"), self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn redis_stopped_mid_conversation_gives_busy_then_the_form_continues_when_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start_in(tempfile::tempdir().unwrap(), port);
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "fault:").unwrap());
    let (app, _sim) = start(harness::test_settings(), store).await;

    say(&app, "ann", "给 acct_ann 开电子发票").await;
    let (dir, port) = redis.stop();
    let busy = say(&app, "ann", "客户需要开电子发票").await;
    assert_eq!(busy, "系统繁忙,请稍后再试");
    assert_eq!(app.get("/readyz").await.0, 503);

    let _redis = OwnRedis::start_in(dir, port);
    // The bot reconnects by itself; the half-filled form is still there.
    let mut summary = String::new();
    for _ in 0..40 {
        summary = say(&app, "ann", "客户需要开电子发票").await;
        if summary != "系统繁忙,请稍后再试" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        summary.contains("acct_ann") && summary.contains("请核对"),
        "{summary}"
    );
    assert!(say(&app, "ann", "确认").await.contains("已提交"));
    assert_eq!(app.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn a_wecom_api_slower_than_five_seconds_never_holds_up_the_callback() {
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let (app, sim) = start(harness::test_settings(), store).await;
    sim.set_delay(Duration::from_secs(6));
    say(&app, "ben", "实施助手 卖家账号 acct_ben").await;
    let started = std::time::Instant::now();
    // A yes/no question would go out as a card: the slow API is given up and text is sent.
    let reply = say(&app, "ben", "客户要做初始化配置").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        reply.contains("1. 是") && reply.contains("2. 否"),
        "{reply}"
    );
    let started = std::time::Instant::now();
    say(&app, "ben", "是").await;
    let inner = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[ben]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[file]]></MsgType><MediaId><![CDATA[slow-media]]></MediaId><MsgId>99</MsgId><AgentID>{}</AgentID></xml>",
        app.corp_id(),
        app.agent_id()
    );
    let cb = app.app_peer.app_callback(&inner, &app.agent_id()).unwrap();
    let (status, body) = app.post("/wecom/app", &cb.query, cb.body).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = InnerMessage::parse(&app.app_peer.open_app_reply(&body).unwrap().unwrap())
        .unwrap()
        .content
        .unwrap();
    assert!(text.contains("重新发送"), "{text}");
}

#[tokio::test]
async fn a_flood_from_one_person_is_slowed_down_without_starving_others() {
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let mut settings = harness::test_settings();
    settings.server.per_user_per_minute = 20;
    let (app, _sim) = start(settings, store).await;
    let app = Arc::new(app);
    let flood = (0..60).map(|_| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { say(&app, "flooder", "你好").await })
    });
    let other = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { say(&app, "calm", "电子发票").await })
    };
    let replies: Vec<String> = futures::future::join_all(flood)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let slowed = replies.iter().filter(|r| r.contains("稍等")).count();
    assert_eq!(slowed, 40, "20 allowed, the rest asked to slow down");
    assert!(
        other.await.unwrap().contains("#7 电子发票"),
        "someone else is served normally"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_log_during_a_full_conversation() {
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let settings = harness::test_settings();
    let (token, key, secret) = (
        settings.wecom.token.expose().to_owned(),
        settings.wecom.encoding_aes_key.expose().to_owned(),
        settings.wecom.secret.expose().to_owned(),
    );
    let (app, _sim) = start(settings, store).await;
    // Service 3 asks for an API secret (接口密钥), a field marked sensitive.
    let api_secret = "sk_live_9f8e7d6c5b4a39281706";
    let mut reply = say(&app, "dora", "标准接口开通 卖家账号 acct_dora").await;
    for answer in [
        "正式环境",
        "已经提交了",
        "api_dora",
        api_secret,
        "客户要对接自研系统",
    ] {
        reply = say(&app, "dora", answer).await;
    }
    assert!(
        reply.contains("****") && !reply.contains(api_secret),
        "masked in the summary: {reply}"
    );
    say(&app, "dora", "确认").await;
    let log = harness::captured_logs();
    assert!(log.contains("request filed"), "the log was captured");
    for secret in [api_secret, &token, &key, &secret] {
        assert!(!log.contains(secret), "a secret leaked into the log");
    }
}
