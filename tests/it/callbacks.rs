//! End to end through the real HTTP server with really encrypted callbacks, on both channels
//! and both stores: verification, messages, events, retries, and every kind of bad input.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kaitong::domain::{AttachmentKind, CardAction, Content, Conversation, MediaSource};
use kaitong::wecom::MsgCrypt;
use kaitong::wecom::app_xml::InnerMessage;
use kaitong_dev::peer::{self, WecomPeer};

use crate::harness::{self, BACKENDS, Backend, RecordingBot, TestApp};

async fn spawn(backend: Backend) -> (TestApp, Arc<RecordingBot>) {
    harness::capture_logs();
    let bot = RecordingBot::new();
    (TestApp::spawn(backend, bot.clone()).await, bot)
}

fn next_id() -> u64 {
    rand::random::<u64>() >> 1
}

async fn app_say(app: &TestApp, user: &str, msg_id: u64, text: &str) -> (u16, Option<String>) {
    let inner = peer::app_text_xml(&app.corp_id(), user, &app.agent_id(), msg_id, text);
    app_send(app, &inner).await
}

async fn app_send(app: &TestApp, inner_xml: &str) -> (u16, Option<String>) {
    let cb = app
        .app_peer
        .app_callback(inner_xml, &app.agent_id())
        .unwrap();
    let (status, body) = app.post("/wecom/app", &cb.query, cb.body).await;
    let reply = if status == 200 {
        app.app_peer.open_app_reply(&body).unwrap()
    } else {
        None
    };
    (status, reply)
}

fn content_of(reply_xml: &str) -> String {
    InnerMessage::parse(reply_xml).unwrap().content.unwrap()
}

async fn bot_send(app: &TestApp, inner_json: &str) -> (u16, Option<serde_json::Value>) {
    let cb = app.aibot_peer.aibot_callback(inner_json).unwrap();
    let (status, body) = app.post("/wecom/aibot", &cb.query, cb.body).await;
    let reply = if status == 200 {
        app.aibot_peer.open_aibot_reply(&body).unwrap()
    } else {
        None
    };
    (status, reply)
}

fn event_xml(app: &TestApp, user: &str, event: &str, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><AgentID>{}</AgentID>{extra}</xml>",
        app.corp_id(),
        next_id() % 2_000_000_000,
        app.agent_id()
    )
}

fn message_xml(app: &TestApp, user: &str, msg_type: &str, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}<MsgId>{}</MsgId><AgentID>{}</AgentID></xml>",
        app.corp_id(),
        next_id(),
        app.agent_id()
    )
}

// ---------------------------------------------------------------- verification

#[tokio::test]
async fn both_channels_verify_their_url_with_the_plaintext_echo() {
    let (app, _) = spawn(Backend::Embedded).await;
    for (path, peer) in [
        ("/wecom/app", &app.app_peer),
        ("/wecom/aibot", &app.aibot_peer),
    ] {
        for _ in 0..8 {
            // Random echoes make echostr carry '+', '/' and '=' that must be percent-decoded.
            let echo = format!("{}", next_id());
            let query = peer.verify_url_query(&echo).unwrap();
            let (status, body) = app.get(&format!("{path}?{query}")).await;
            assert_eq!((status, body), (200, echo), "{path}");
        }
    }
}

/// Tencent's own sample request, byte for byte, against a server configured like the sample.
#[tokio::test]
async fn the_official_sample_requests_are_understood() {
    harness::capture_logs();
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/wecom_vectors.json")).unwrap();
    let verify = &vectors["vectors"][1];
    let post = &vectors["vectors"][0];
    let mut settings = harness::test_settings();
    settings.wecom.token = verify["token"].as_str().unwrap().into();
    settings.wecom.encoding_aes_key = verify["encoding_aes_key"].as_str().unwrap().into();
    settings.wecom.corp_id = verify["receive_id"].as_str().unwrap().into();
    settings.server.timestamp_window_secs = 20 * 365 * 24 * 3600; // the samples are from 2014
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let bot = RecordingBot::new();
    let app = TestApp::spawn_with(settings, store, dir, bot.clone()).await;

    let echostr = percent_encoding::utf8_percent_encode(
        verify["encrypt"].as_str().unwrap(),
        percent_encoding::NON_ALPHANUMERIC,
    );
    let (status, body) = app
        .get(&format!(
            "/wecom/app?msg_signature={}&timestamp={}&nonce={}&echostr={echostr}",
            verify["msg_signature"].as_str().unwrap(),
            verify["timestamp"].as_str().unwrap(),
            verify["nonce"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, verify["expected_plaintext"].as_str().unwrap())
    );

    let query = format!(
        "msg_signature={}&timestamp={}&nonce={}",
        post["msg_signature"].as_str().unwrap(),
        post["timestamp"].as_str().unwrap(),
        post["nonce"].as_str().unwrap()
    );
    let (status, body) = app
        .post(
            "/wecom/app",
            &query,
            post["request_body"].as_str().unwrap().to_owned(),
        )
        .await;
    assert_eq!(status, 200);
    let reply = app.app_peer.open_app_reply(&body).unwrap().unwrap();
    assert_eq!(content_of(&reply), "echo:hello");
    assert_eq!(bot.last().sender.as_str(), "mycreate");
}

// ---------------------------------------------------------------- app channel

#[tokio::test]
async fn an_app_text_message_gets_an_encrypted_text_reply() {
    for backend in BACKENDS {
        let (app, bot) = spawn(backend).await;
        let (status, reply) = app_say(&app, "lisi", next_id(), "开通电子发票").await;
        assert_eq!(status, 200);
        let reply = reply.unwrap();
        let parsed = InnerMessage::parse(&reply).unwrap();
        assert_eq!(parsed.content.as_deref(), Some("echo:开通电子发票"));
        assert_eq!(parsed.to_user_name, "lisi");
        assert_eq!(parsed.from_user_name, app.corp_id());
        assert_eq!(parsed.msg_type, "text");
        let seen = bot.last();
        assert_eq!(seen.conversation, Conversation::Direct);
        assert_eq!(seen.channel, kaitong::domain::ChannelKind::App);
    }
}

#[tokio::test]
async fn app_media_location_and_link_messages_become_domain_content() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let cases = [
        (
            "image",
            "<PicUrl><![CDATA[http://p]]></PicUrl><MediaId><![CDATA[img1]]></MediaId>",
        ),
        (
            "voice",
            "<MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format>",
        ),
        (
            "video",
            "<MediaId><![CDATA[vid1]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>",
        ),
        (
            "file",
            "<MediaId><![CDATA[f1]]></MediaId><FileName><![CDATA[免责声明.docx]]></FileName>",
        ),
    ];
    for (kind, extra) in cases {
        let (status, reply) = app_send(&app, &message_xml(&app, "u1", kind, extra)).await;
        assert_eq!(status, 200);
        assert!(reply.is_some());
        let Content::Attachment(attachment) = bot.last().content else {
            panic!("{kind}")
        };
        assert!(matches!(attachment.source, MediaSource::MediaId(_)));
        let expected = match kind {
            "image" => AttachmentKind::Image,
            "voice" => AttachmentKind::Voice,
            "video" => AttachmentKind::Video,
            _ => AttachmentKind::File,
        };
        assert_eq!(attachment.kind, expected);
        if kind == "file" {
            assert_eq!(attachment.file_name.as_deref(), Some("免责声明.docx"));
        }
    }
    app_send(&app, &message_xml(&app, "u1", "location", "<Location_X>23.13</Location_X><Location_Y>113.26</Location_Y><Scale>20</Scale><Label><![CDATA[广州]]></Label>")).await;
    assert!(
        matches!(bot.last().content, Content::Location { ref label, latitude, .. } if label == "广州" && (latitude - 23.13).abs() < 1e-9)
    );
    app_send(&app, &message_xml(&app, "u1", "link", "<Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[http://x]]></Url><PicUrl><![CDATA[p]]></PicUrl>")).await;
    assert!(matches!(bot.last().content, Content::Link { ref url, .. } if url == "http://x"));
    app_send(&app, &message_xml(&app, "u1", "shake", "")).await;
    assert_eq!(bot.last().content, Content::Unsupported("shake".into()));
}

#[tokio::test]
async fn unknown_app_message_types_get_the_help_text_from_the_dialog_bot() {
    harness::capture_logs();
    let settings = harness::test_settings();
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let parts = kaitong::startup::Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = TestApp::spawn_with(settings, store, dir, parts.bot).await;
    let (status, reply) = app_send(&app, &message_xml(&app, "u1", "hologram", "")).await;
    assert_eq!(status, 200);
    let catalog = parts.catalog.current();
    let m = catalog.messages();
    let help = m.render(
        kaitong::catalog::MessageKey::Help,
        &[("commands", &kaitong::dialog::commands::command_list(m))],
    );
    assert!(help.contains("/today"), "{help}");
    assert_eq!(content_of(&reply.unwrap()), help);
}

#[tokio::test]
async fn app_events_enter_click_and_card_reach_the_bot_and_others_get_an_empty_200() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let (status, reply) = app_send(
        &app,
        &event_xml(
            &app,
            "u2",
            "enter_agent",
            "<EventKey><![CDATA[]]></EventKey>",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&reply.unwrap()), "welcome");

    app_send(
        &app,
        &event_xml(
            &app,
            "u2",
            "click",
            "<EventKey><![CDATA[menu_status]]></EventKey>",
        ),
    )
    .await;
    assert_eq!(bot.last().content, Content::MenuClick("menu_status".into()));

    let card = "<EventKey><![CDATA[key111]]></EventKey><TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[vote_interaction]]></CardType><ResponseCode><![CDATA[rc]]></ResponseCode><SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey><OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]></OptionId></OptionIds></SelectedItem></SelectedItems>";
    let (status, _) = app_send(&app, &event_xml(&app, "u2", "template_card_event", card)).await;
    assert_eq!(status, 200);
    assert_eq!(
        bot.last().content,
        Content::CardAction(CardAction {
            task_id: "taskid111".into(),
            key: "key111".into(),
            selections: vec![(
                "QuestionKey1".into(),
                vec!["OptionId1".into(), "OptionId2".into()]
            )],
            response_code: Some("rc".into()),
        })
    );

    let calls = bot.calls();
    for silent in ["subscribe", "LOCATION", "some_future_event"] {
        let (status, reply) = app_send(&app, &event_xml(&app, "u2", silent, "")).await;
        assert_eq!((status, reply), (200, None), "{silent}");
    }
    assert_eq!(bot.calls(), calls, "silent events never reach the bot");
}

// ---------------------------------------------------------------- AI bot channel

#[tokio::test]
async fn an_aibot_single_chat_text_gets_a_finished_stream() {
    for backend in BACKENDS {
        let (app, bot) = spawn(backend).await;
        let json = peer::aibot_text_json(&format!("m{}", next_id()), "wangwu", None, "查询 KT-1");
        let (status, reply) = bot_send(&app, &json).await;
        assert_eq!(status, 200);
        let reply = reply.unwrap();
        assert_eq!(reply["msgtype"], "stream");
        assert_eq!(reply["stream"]["finish"], true);
        assert_eq!(reply["stream"]["content"], "echo:查询 KT-1");
        assert_eq!(bot.last().conversation, Conversation::Direct);
    }
}

#[tokio::test]
async fn a_group_message_is_attributed_to_the_group_with_the_mention_stripped() {
    let (app, bot) = spawn(Backend::Redis).await;
    let json = peer::aibot_text_json(
        &format!("m{}", next_id()),
        "zhaoliu",
        Some("wrkGROUP1"),
        "@开通助手\u{2005}开通电子发票",
    );
    let (_, reply) = bot_send(&app, &json).await;
    assert_eq!(reply.unwrap()["stream"]["content"], "echo:开通电子发票");
    let seen = bot.last();
    assert_eq!(seen.conversation, Conversation::Group("wrkGROUP1".into()));
    assert_eq!(seen.sender.as_str(), "zhaoliu");
}

#[tokio::test]
async fn a_stream_refresh_gets_the_full_content_and_an_unknown_stream_is_finished() {
    let (app, _) = spawn(Backend::Embedded).await;
    let json = peer::aibot_text_json(&format!("m{}", next_id()), "u", None, "hi");
    let (_, reply) = bot_send(&app, &json).await;
    let stream_id = reply.unwrap()["stream"]["id"].as_str().unwrap().to_owned();
    let refresh = serde_json::json!({"msgid": format!("r{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "stream", "stream": {"id": stream_id}});
    let (status, reply) = bot_send(&app, &refresh.to_string()).await;
    assert_eq!(status, 200);
    let reply = reply.unwrap();
    assert_eq!(
        (
            reply["stream"]["content"].as_str(),
            reply["stream"]["finish"].as_bool()
        ),
        (Some("echo:hi"), Some(true))
    );

    let unknown = serde_json::json!({"msgid": "x1", "aibotid": "b", "from": {"userid": "u"}, "msgtype": "stream", "stream": {"id": "nope"}});
    let (_, reply) = bot_send(&app, &unknown.to_string()).await;
    let reply = reply.unwrap();
    assert_eq!(
        (
            reply["stream"]["content"].as_str(),
            reply["stream"]["finish"].as_bool()
        ),
        (Some(""), Some(true))
    );
}

#[tokio::test]
async fn aibot_events_media_and_voice_become_domain_content() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let enter = serde_json::json!({"msgid": format!("e{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "event", "event": {"eventtype": "enter_chat"}});
    let (_, reply) = bot_send(&app, &enter.to_string()).await;
    assert_eq!(
        reply.unwrap(),
        serde_json::json!({"msgtype": "text", "text": {"content": "welcome"}})
    );

    let card = serde_json::json!({"msgid": format!("c{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "event", "event": {"eventtype": "template_card_event", "template_card_event": {"card_type": "button_interaction", "event_key": "confirm", "task_id": "t1"}}});
    let (_, reply) = bot_send(&app, &card.to_string()).await;
    assert_eq!(reply.unwrap()["response_type"], "update_template_card");
    assert!(
        matches!(bot.last().content, Content::CardAction(ref a) if a.key == "confirm" && a.task_id == "t1")
    );

    let voice = serde_json::json!({"msgid": format!("v{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "voice", "voice": {"content": "开通物流追踪"}});
    bot_send(&app, &voice.to_string()).await;
    assert_eq!(bot.last().content, Content::Text("开通物流追踪".into()));

    let file = serde_json::json!({"msgid": format!("f{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "file", "file": {"url": "https://enc/x"}});
    bot_send(&app, &file.to_string()).await;
    assert!(
        matches!(bot.last().content, Content::Attachment(ref a) if a.kind == AttachmentKind::File && a.source == MediaSource::EncryptedUrl("https://enc/x".into()))
    );

    let mixed = serde_json::json!({"msgid": format!("x{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "mixed", "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "@bot 看图"}}, {"msgtype": "image", "image": {"url": "https://enc/i"}}]}});
    bot_send(&app, &mixed.to_string()).await;
    assert_eq!(bot.last().content, Content::Text("看图".into()));

    let calls = bot.calls();
    let feedback = serde_json::json!({"msgid": format!("fb{}", next_id()), "aibotid": "b", "from": {"userid": "u"}, "msgtype": "event", "event": {"eventtype": "feedback_event"}});
    let (status, reply) = bot_send(&app, &feedback.to_string()).await;
    assert_eq!((status, reply), (200, None));
    assert_eq!(bot.calls(), calls);
}

// ---------------------------------------------------------------- retries

#[tokio::test]
async fn a_retried_app_message_gets_the_same_reply_and_runs_once() {
    for backend in BACKENDS {
        let (app, bot) = spawn(backend).await;
        let inner = peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), next_id(), "hello");
        let mut replies = Vec::new();
        for _ in 0..3 {
            // Each retry is signed afresh, as WeCom does, but carries the same MsgId.
            let (status, reply) = app_send(&app, &inner).await;
            assert_eq!(status, 200);
            replies.push(reply.unwrap());
        }
        assert!(
            replies.windows(2).all(|w| w[0] == w[1]),
            "{backend:?}: {replies:?}"
        );
        assert_eq!(bot.calls(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn concurrent_retries_run_the_turn_once_on_both_channels() {
    for backend in BACKENDS {
        harness::capture_logs();
        let bot = RecordingBot::slow(Duration::from_millis(400));
        let app = Arc::new(TestApp::spawn(backend, bot.clone()).await);

        let inner = peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), next_id(), "并发");
        let sends = (0..3).map(|_| {
            let app = Arc::clone(&app);
            let inner = inner.clone();
            tokio::spawn(async move { app_send(&app, &inner).await })
        });
        let results: Vec<_> = futures::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(
            results
                .iter()
                .all(|(s, r)| *s == 200
                    && r.as_deref().map(content_of).as_deref() == Some("echo:并发")),
            "{backend:?}"
        );
        assert_eq!(bot.calls(), 1, "{backend:?}");

        let json = peer::aibot_text_json(&format!("m{}", next_id()), "u", Some("g1"), "@bot 并发");
        let sends = (0..3).map(|_| {
            let app = Arc::clone(&app);
            let json = json.clone();
            tokio::spawn(async move { bot_send(&app, &json).await })
        });
        let results: Vec<_> = futures::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let first = results[0].1.clone().unwrap();
        assert!(
            results
                .iter()
                .all(|(s, r)| *s == 200 && r.as_ref() == Some(&first)),
            "{backend:?}"
        );
        assert_eq!(bot.calls(), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn a_retried_app_event_is_deduplicated_by_sender_time_and_event() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let event = event_xml(&app, "u9", "enter_agent", "");
    app_send(&app, &event).await;
    app_send(&app, &event).await;
    assert_eq!(bot.calls(), 1);
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn a_bad_signature_is_401_and_nothing_reaches_the_bot() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let cb = app
        .app_peer
        .app_callback(
            &peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), 1, "x"),
            &app.agent_id(),
        )
        .unwrap();
    let forged = cb.query.replacen("msg_signature=", "msg_signature=0", 1);
    let (status, _) = app.post("/wecom/app", &forged, cb.body.clone()).await;
    assert_eq!(status, 401);

    let cb = app
        .aibot_peer
        .aibot_callback(&peer::aibot_text_json("m1", "u", None, "x"))
        .unwrap();
    let other = WecomPeer::new(
        MsgCrypt::new(
            "wrong-token",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "",
        )
        .unwrap(),
    );
    let (status, _) = app
        .post(
            "/wecom/aibot",
            &other.query_for("x", &cb.timestamp, &cb.nonce),
            cb.body,
        )
        .await;
    assert_eq!(status, 401);

    let (status, _) = app
        .get(&format!(
            "/wecom/app?{}",
            forged.replace("&nonce", "&echostr=abc&nonce")
        ))
        .await;
    assert_eq!(status, 401);
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_timestamp_outside_the_window_is_401_and_logged_with_the_peer() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let stale = (chrono::Utc::now().timestamp() - 3600 - (next_id() % 1000) as i64).to_string();
    let encrypted = app
        .app_peer
        .crypt()
        .encrypt(peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), 2, "x").as_bytes())
        .unwrap();
    let body = format!(
        "<xml><ToUserName><![CDATA[c]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    );
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for(&encrypted, &stale, "n1"),
            body,
        )
        .await;
    assert_eq!(status, 401);
    let future = (chrono::Utc::now().timestamp() + 3600).to_string();
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for(&encrypted, &future, "n1"),
            "<xml/>",
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(bot.calls(), 0);

    let log = harness::captured_logs();
    let line = log
        .lines()
        .find(|l| l.contains(&stale))
        .expect("a log line for the rejection");
    assert!(
        line.contains("callback rejected")
            && line.contains("peer=127.0.0.1")
            && line.contains("status=401"),
        "{line}"
    );
    assert!(
        !log.contains(app.settings.wecom.token.expose()),
        "the token must never be logged"
    );
    assert!(
        !log.contains(app.settings.wecom.encoding_aes_key.expose()),
        "the key must never be logged"
    );
}

#[tokio::test]
async fn malformed_envelopes_are_400() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let now = chrono::Utc::now().timestamp().to_string();
    // Not XML / not JSON at all.
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for("x", &now, "n"),
            "<xml><Encrypt>",
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post(
            "/wecom/aibot",
            &app.aibot_peer.query_for("x", &now, "n"),
            "{\"encrypt\":",
        )
        .await;
    assert_eq!(status, 400);
    // Not UTF-8.
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for("x", &now, "n"),
            vec![0xff, 0xfe, 0x00],
        )
        .await;
    assert_eq!(status, 400);
    // Missing signing parameters.
    let (status, _) = app.post("/wecom/app", "timestamp=1", "<xml/>").await;
    assert_eq!(status, 400);
    // Correctly signed, but the ciphertext is not base64.
    let garbage = "!!!not-base64!!!";
    let body = format!("<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>");
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for(garbage, &now, "n"),
            body,
        )
        .await;
    assert_eq!(status, 400);
    // Correctly signed base64 whose length is not a whole AES block.
    let short = STANDARD.encode([1u8; 20]);
    let body = serde_json::json!({"encrypt": short}).to_string();
    let (status, _) = app
        .post(
            "/wecom/aibot",
            &app.aibot_peer.query_for(&short, &now, "n"),
            body,
        )
        .await;
    assert_eq!(status, 400);
    // Signed and decryptable, but the decrypted JSON is garbage.
    let encrypted = app.aibot_peer.crypt().encrypt(b"{not json").unwrap();
    let body = serde_json::json!({"encrypt": encrypted}).to_string();
    let (status, _) = app
        .post(
            "/wecom/aibot",
            &app.aibot_peer.query_for(&encrypted, &now, "n"),
            body,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn bad_padding_is_400() {
    let (app, bot) = spawn(Backend::Embedded).await;
    // 16 random + 4 length + 38 message + len(corp id) bytes, chosen so the pad is a full 32-byte block.
    let corp = app.corp_id();
    let msg_len = 64 - 20 - corp.len();
    let msg = "a".repeat(msg_len);
    let encrypted = app.app_peer.crypt().encrypt(msg.as_bytes()).unwrap();
    let mut raw = STANDARD.decode(&encrypted).unwrap();
    assert_eq!(raw.len(), 96, "full pad block expected");
    // In CBC, flipping a byte of block n-1 flips the same byte of plaintext block n: the last
    // pad byte becomes 32 ^ 32 = 0, which a strict unpadder must refuse.
    let idx = raw.len() - 17;
    raw[idx] ^= 32;
    let tampered = STANDARD.encode(raw);
    let now = chrono::Utc::now().timestamp().to_string();
    let body = format!("<xml><Encrypt><![CDATA[{tampered}]]></Encrypt></xml>");
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for(&tampered, &now, "n"),
            body,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_message_for_another_receiver_is_401() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let foreign = WecomPeer::new(
        MsgCrypt::new(
            app.settings.wecom.token.expose(),
            app.settings.wecom.encoding_aes_key.expose(),
            "ww_other_corp",
        )
        .unwrap(),
    );
    let cb = foreign
        .app_callback(
            &peer::app_text_xml("ww_other_corp", "u", &app.agent_id(), 3, "x"),
            &app.agent_id(),
        )
        .unwrap();
    let (status, _) = app.post("/wecom/app", &cb.query, cb.body).await;
    assert_eq!(status, 401);
    // The AI bot expects an empty receive id; the app's corp id must be refused there.
    let corp_keyed = WecomPeer::new(
        MsgCrypt::new(
            app.settings.aibot.token.expose(),
            app.settings.aibot.encoding_aes_key.expose(),
            "ww_kaitong_demo",
        )
        .unwrap(),
    );
    let cb = corp_keyed
        .aibot_callback(&peer::aibot_text_json("m2", "u", None, "x"))
        .unwrap();
    let (status, _) = app.post("/wecom/aibot", &cb.query, cb.body).await;
    assert_eq!(status, 401);
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let (app, bot) = spawn(Backend::Embedded).await;
    let now = chrono::Utc::now().timestamp().to_string();
    let huge = "x".repeat(64 * 1024 + 1);
    let (status, _) = app
        .post(
            "/wecom/app",
            &app.app_peer.query_for("x", &now, "n"),
            huge.clone(),
        )
        .await;
    assert_eq!(status, 413);
    // Streamed without a Content-Length, the limit still holds.
    let stream = futures::stream::iter((0..70).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 1024])));
    let (status, _) = app
        .post(
            "/wecom/aibot",
            &app.aibot_peer.query_for("x", &now, "n"),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_paths_404() {
    let (app, _) = spawn(Backend::Embedded).await;
    for path in ["/wecom/app", "/wecom/aibot"] {
        for method in [
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::PATCH,
        ] {
            let response = app
                .http
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "GET, POST");
        }
    }
    assert_eq!(app.get("/nothing").await.0, 404);
}

// ---------------------------------------------------------------- store outages and ops

#[tokio::test]
async fn with_redis_down_the_user_is_told_the_system_is_busy_and_readyz_fails() {
    harness::capture_logs();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(
        kaitong::store::RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "down:").unwrap(),
    );
    let bot = RecordingBot::new();
    let app = TestApp::spawn_with(harness::test_settings(), store, None, bot.clone()).await;
    let (status, reply) = app_say(&app, "u", next_id(), "开通电子发票").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&reply.unwrap()), "系统繁忙,请稍后再试");
    assert_eq!(bot.calls(), 0, "no turn runs without the store");
    let (status, reply) = bot_send(&app, &peer::aibot_text_json("m-down", "u", None, "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(reply.unwrap()["stream"]["content"], "系统繁忙,请稍后再试");
    assert_eq!(app.get("/readyz").await.0, 503);
    assert_eq!(app.get("/healthz").await, (200, "ok".into()));
}

#[tokio::test]
async fn readyz_is_200_when_the_store_answers() {
    for backend in BACKENDS {
        let (app, _) = spawn(backend).await;
        assert_eq!(
            app.get("/readyz").await,
            (200, "ready".into()),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_callback_finish() {
    harness::capture_logs();
    let bot = RecordingBot::slow(Duration::from_millis(600));
    let mut app = TestApp::spawn(Backend::Embedded, bot.clone()).await;
    let inner = peer::app_text_xml(&app.corp_id(), "u", &app.agent_id(), next_id(), "慢");
    let cb = app.app_peer.app_callback(&inner, &app.agent_id()).unwrap();
    let request = app
        .http
        .post(app.url(&format!("/wecom/app?{}", cb.query)))
        .body(cb.body)
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(150)).await;
    app.trigger_shutdown();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    assert_eq!(
        content_of(&app.app_peer.open_app_reply(&body).unwrap().unwrap()),
        "echo:慢"
    );
    app.stop().await;
    // Once stopped, new connections are refused.
    assert!(app.http.get(app.url("/healthz")).send().await.is_err());
}
