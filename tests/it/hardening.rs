//! Issue 13: the callback path under hostile or odd input, through the real server on a random
//! port with really signed callbacks: wrapped timestamp arithmetic, WeCom's retries and the
//! per-person limit, slow bodies.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaitong_dev::peer;

use crate::harness::{self, Backend, RecordingBot, TestApp};

async fn spawn_with(settings: kaitong::config::Settings) -> (TestApp, Arc<RecordingBot>) {
    harness::capture_logs();
    let bot = RecordingBot::new();
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    (
        TestApp::spawn_with(settings, store, dir, bot.clone()).await,
        bot,
    )
}

fn next_id() -> u64 {
    rand::random::<u64>() >> 1
}

// ------------------------------------------------------------- item 3: timestamps

#[tokio::test]
async fn a_correctly_signed_callback_with_a_wrapping_timestamp_is_401() {
    let (app, bot) = spawn_with(harness::test_settings()).await;
    let now = chrono::Utc::now().timestamp();
    // now − 2^63 made `(now - sent).abs()` wrap to a negative number, inside any window.
    let wrapping = [
        now.wrapping_sub(i64::MIN),
        now - (1i64 << 62) - (1i64 << 62),
        i64::MIN,
        i64::MAX,
    ];
    for timestamp in wrapping {
        let timestamp = timestamp.to_string();
        let inner = peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), next_id(), "x");
        let encrypted = app.app_peer.crypt().encrypt(inner.as_bytes()).unwrap();
        let body = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>",
            app.corp_id()
        );
        let query = app.app_peer.query_for(&encrypted, &timestamp, "n1");
        let (status, _) = app.post("/wecom/app", &query, body).await;
        assert_eq!(status, 401, "app callback with timestamp {timestamp}");

        let json = peer::aibot_text_json(&format!("m{}", next_id()), "u", None, "x");
        let encrypted = app.aibot_peer.crypt().encrypt(json.as_bytes()).unwrap();
        let body = serde_json::json!({ "encrypt": encrypted }).to_string();
        let query = app.aibot_peer.query_for(&encrypted, &timestamp, "n2");
        let (status, _) = app.post("/wecom/aibot", &query, body).await;
        assert_eq!(status, 401, "aibot callback with timestamp {timestamp}");

        // URL verification takes the same path.
        let echostr = app.app_peer.crypt().encrypt(b"echo").unwrap();
        let query = app.app_peer.query_for(&echostr, &timestamp, "n3");
        let encoded: String =
            percent_encoding::utf8_percent_encode(&echostr, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let (status, _) = app
            .get(&format!("/wecom/app?{query}&echostr={encoded}"))
            .await;
        assert_eq!(status, 401, "URL verification with timestamp {timestamp}");
    }
    assert_eq!(bot.calls(), 0, "nothing reached the bot");
    // The server is still healthy: nothing panicked.
    assert_eq!(app.get("/healthz").await.0, 200);
    assert!(
        harness::captured_logs().contains(&format!("timestamp \"{}\"", i64::MIN)),
        "each refusal is logged with its reason"
    );
}

// ------------------------------------------------------------- item 5: retries and the limit

#[tokio::test]
async fn wecom_retries_of_one_message_never_use_up_the_persons_rate_limit() {
    let (app, bot) = spawn_with(harness::test_settings()).await;
    assert_eq!(app.settings.server.per_user_per_minute, 60);
    let inner = peer::app_text_xml(&app.corp_id(), "lisi", &app.agent_id(), next_id(), "你好");
    let mut replies = Vec::new();
    // The first delivery and 65 retries of it (WeCom resends the same MsgId).
    for _ in 0..66 {
        let cb = app.app_peer.app_callback(&inner, &app.agent_id()).unwrap();
        let (status, body) = app.post("/wecom/app", &cb.query, cb.body).await;
        assert_eq!(status, 200, "{body}");
        replies.push(app.app_peer.open_app_reply(&body).unwrap().unwrap());
    }
    assert_eq!(bot.calls(), 1, "the turn ran once");
    assert!(
        replies.iter().all(|r| r == &replies[0]),
        "every retry got the first reply"
    );
    assert!(replies[0].contains("echo:你好"), "{}", replies[0]);
    // The person's next real message is answered, not throttled.
    let reply = app.say("lisi", "电子发票").await;
    assert_eq!(reply, "echo:电子发票");
    assert_eq!(bot.calls(), 2);
}

#[tokio::test]
async fn fresh_messages_over_the_limit_are_still_slowed_down() {
    let mut settings = harness::test_settings();
    settings.server.per_user_per_minute = 3;
    let (app, bot) = spawn_with(settings).await;
    for i in 0..3 {
        assert_eq!(
            app.say("wangwu", &format!("m{i}")).await,
            format!("echo:m{i}")
        );
    }
    let reply = app.say("wangwu", "m3").await;
    assert!(reply.contains("稍等"), "{reply}");
    assert_eq!(bot.calls(), 3);
}

// ------------------------------------------------------------- item 6: slow bodies

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_after_the_body_timeout() {
    let mut settings = harness::test_settings();
    settings.server.body_read_timeout_ms = 400;
    let (app, bot) = spawn_with(settings).await;
    let now = chrono::Utc::now().timestamp().to_string();
    let query = app.app_peer.query_for("x", &now, "n");
    let addr = app.addr;
    let started = Instant::now();
    let (head, elapsed) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Announces 1000 bytes, sends 10, then goes quiet.
        write!(
            stream,
            "POST /wecom/app?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap();
        (
            String::from_utf8_lossy(&buf[..n]).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(bot.calls(), 0);
    let log = harness::captured_logs();
    let line = log
        .lines()
        .find(|l| l.contains("status=408"))
        .expect("a log line for the 408");
    assert!(
        line.contains("body not received in time") && line.contains("peer=127.0.0.1"),
        "{line}"
    );
    // A body that does arrive in time is handled as before.
    assert_eq!(app.say("zhaoliu", "hi").await, "echo:hi");
}
