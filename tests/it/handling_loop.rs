//! The handling loop end to end, through the real server with encrypted callbacks and the WeCom
//! API simulator: a rejected request resubmitted by its requester, the handlers' cards at the
//! 16:00 cut-off with 完成 / 驳回 clicks (a replayed click acting once), and the blank
//! disclaimer template sent as a file.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::Utc;
use kaitong::config::{HandlerAccountSettings, Settings};
use kaitong::domain::RequestId;
use kaitong::requests::{Status, token_hash};
use kaitong::startup::Parts;
use kaitong::wecom::app_xml::InnerMessage;
use kaitong_dev::simulator::{SentMessage, SimulatorHandle};

use crate::harness::{self, Backend, TestApp};

struct Bot {
    app: TestApp,
    parts: Parts,
    settings: Settings,
    wecom: SimulatorHandle,
}

fn settings_with_handler() -> Settings {
    let mut settings = harness::test_settings();
    settings.handlers.accounts = vec![HandlerAccountSettings {
        name: "职能-小王".into(),
        team: "functional".into(),
        token_sha256: token_hash("t-functional"),
        wecom_userid: "handler_f".into(),
    }];
    settings.console.public_url = "https://kt.example.com".into();
    settings
}

async fn start(mut settings: Settings) -> Bot {
    let wecom = harness::wecom_simulator(&settings).await;
    wecom.set_per_user_minute_limit(None);
    settings.wecom.api_base = wecom.base_url();
    let (store, dir) = harness::fresh_store(Backend::Redis);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let bot = Arc::clone(&parts.bot);
    let app = TestApp::spawn_with(settings.clone(), store, dir, bot).await;
    Bot {
        app,
        parts,
        settings,
        wecom,
    }
}

fn request_id(text: &str) -> RequestId {
    let start = text.find("KT-").unwrap();
    RequestId::parse(&text[start..start + 16]).unwrap()
}

impl Bot {
    async fn say(&self, user: &str, text: &str) -> String {
        self.app.say(user, text).await
    }

    /// Files an 电子发票 request (职能组) for `user` and returns its id.
    async fn file(&self, user: &str) -> RequestId {
        self.say(user, &format!("给 acct_{user} 开电子发票")).await;
        self.say(user, "客户需要开电子发票").await;
        request_id(&self.say(user, "确认").await)
    }

    /// Sends what the outbox holds, as the worker would.
    async fn deliver(&self) {
        self.deliver_at(Utc::now()).await;
    }

    async fn deliver_at(&self, now: chrono::DateTime<Utc>) {
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

    /// A template_card_event callback: a click on the button `key` of card `task`. The same
    /// arguments make the same callback, as WeCom's retries do.
    async fn click(
        &self,
        user: &str,
        create_time: u64,
        task: &str,
        key: &str,
        code: &str,
    ) -> String {
        let inner = format!(
            "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{task}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[{code}]]></ResponseCode><AgentID>{agent}</AgentID></xml>",
            corp = self.app.corp_id(),
            agent = self.app.agent_id(),
        );
        let cb = self
            .app
            .app_peer
            .app_callback(&inner, &self.app.agent_id())
            .unwrap();
        let (status, body) = self.app.post("/wecom/app", &cb.query, cb.body).await;
        assert_eq!(status, 200, "{body}");
        let xml = self.app.app_peer.open_app_reply(&body).unwrap().unwrap();
        InnerMessage::parse(&xml).unwrap().content.unwrap()
    }
}

#[tokio::test]
async fn a_rejected_request_is_corrected_and_filed_again_linked_to_the_old_one() {
    let bot = start(settings_with_handler()).await;
    let old = bot.file("alice").await;
    let rejected = bot
        .say("handler_f", &format!("/reject {old} 卖家账号不存在"))
        .await;
    assert!(rejected.contains("已驳回"), "{rejected}");

    // The rejection notice tells how to resubmit in one reply.
    bot.deliver().await;
    let notice = &bot.sent_to("alice")[0].content;
    assert!(
        notice.contains("卖家账号不存在") && notice.contains(&format!("重新提交 {old}")),
        "{notice}"
    );

    // Someone else's request and an unknown id: the answer /status gives for them.
    let not_found = bot.say("mallory", &format!("/status {old}")).await;
    assert_eq!(
        bot.say("mallory", &format!("重新提交 {old}")).await,
        not_found
    );
    assert_eq!(
        bot.say("alice", "重新提交 KT-20990101-0001").await,
        not_found
    );

    // The requester gets the old answers, the reason, and is asked what to change.
    let opened = bot.say("alice", &format!("修改后重新提交 {old}")).await;
    assert!(
        opened.contains("卖家账号不存在")
            && opened.contains("acct_alice")
            && opened.contains("要修改哪一项"),
        "{opened}"
    );
    let asked = bot.say("alice", "卖家账号").await;
    assert!(asked.contains("卖家账号"), "{asked}");
    let summary = bot.say("alice", "acct_alice_fixed").await;
    assert!(
        summary.contains("acct_alice_fixed") && summary.contains("确认"),
        "{summary}"
    );
    let receipt = bot.say("alice", "确认").await;
    assert!(
        receipt.contains("已提交") && receipt.contains(&format!("重新提交自: {old}")),
        "{receipt}"
    );
    let new = request_id(&receipt);
    assert_ne!(new, old, "a new request");

    let filed = bot.parts.ledger.get(&new).await.unwrap().unwrap();
    assert_eq!(filed.form.resubmit_of.as_ref(), Some(&old));
    assert_eq!(filed.status(), Status::Submitted);
    assert!(
        filed
            .form
            .summary
            .iter()
            .any(|(_, v)| v == "acct_alice_fixed"),
        "{:?}",
        filed.form.summary
    );
    let status = bot.say("alice", &format!("/status {new}")).await;
    assert!(status.contains(&format!("重新提交自: {old}")), "{status}");
    // The old one stays rejected; only rejected requests may be resubmitted.
    assert_eq!(
        bot.parts.ledger.get(&old).await.unwrap().unwrap().status(),
        Status::Rejected
    );
    let refused = bot.say("alice", &format!("重新提交 {new}")).await;
    assert!(refused.contains("只有被驳回的申请"), "{refused}");

    // Asked in a group, the correction continues in the 1:1 chat (secrets, files).
    let bobs = bot.file("bob").await;
    bot.say("handler_f", &format!("驳回 {bobs} 原因写清楚些"))
        .await;
    let in_group = bot
        .app
        .say_to_aibot(Some("chat1"), "bob", &format!("重新提交 {bobs}"))
        .await;
    assert!(
        in_group.contains("原因写清楚些") && in_group.contains("私聊"),
        "{in_group}"
    );
    let private = bot.app.say_to_aibot(None, "bob", "继续").await;
    assert!(private.contains("要修改哪一项"), "{private}");
}

#[tokio::test]
async fn handlers_get_their_batch_at_the_cut_off_and_complete_or_reject_by_button_once() {
    let bot = start(settings_with_handler()).await;
    let ids = [
        bot.file("alice").await,
        bot.file("bob").await,
        bot.file("carol").await,
    ];

    // The 16:00 cut-off of the batch these requests joined.
    let schedule = bot.parts.schedule;
    let day = schedule.batch_for(Utc::now());
    let cutoff = schedule.cutoff_at(day).unwrap();
    let jobs = bot.parts.background(&bot.settings);
    assert!(
        jobs.cutoff
            .tick(cutoff - chrono::Duration::minutes(1))
            .await
            .is_empty(),
        "nothing before the cut-off"
    );
    assert_eq!(jobs.cutoff.tick(cutoff).await, vec![day]);
    bot.deliver_at(cutoff).await;
    assert_eq!(bot.sent_to("handler_f").len(), 1, "the overview first");
    bot.deliver_at(cutoff + chrono::Duration::seconds(5)).await;

    let mut to_handler = bot.sent_to("handler_f");
    assert_eq!(to_handler.len(), 4, "an overview and one card per request");
    // The cards are sent side by side; order them as the batch is.
    to_handler[1..].sort_by_key(|m| m.body["template_card"]["main_title"]["desc"].to_string());
    assert_eq!(to_handler[0].msgtype, "text");
    assert!(
        to_handler[0].content.contains("3 条")
            && to_handler[0].content.contains(ids[0].as_str())
            && to_handler[0].content.contains("https://kt.example.com"),
        "{}",
        to_handler[0].content
    );
    let cards: Vec<&serde_json::Value> = to_handler[1..]
        .iter()
        .map(|m| &m.body["template_card"])
        .collect();
    for (card, id) in cards.iter().zip(&ids) {
        assert_eq!(card["card_type"], "button_interaction");
        assert_eq!(card["main_title"]["desc"], id.as_str());
        assert_eq!(card["button_list"][0]["key"], format!("kt_done:{id}"));
        assert_eq!(card["button_list"][1]["key"], format!("kt_reject:{id}"));
        assert_eq!(
            card["card_action"]["url"],
            format!("https://kt.example.com/console/requests/{id}"),
            "the card opens the request's own page"
        );
    }

    // Once a day across restarts and instances: another instance on the same store sends nothing.
    assert!(jobs.cutoff.tick(cutoff).await.is_empty());
    let other = Parts::build(&bot.settings, Arc::clone(&bot.parts.store)).unwrap();
    assert!(
        other
            .background(&bot.settings)
            .cutoff
            .tick(cutoff + chrono::Duration::minutes(5))
            .await
            .is_empty()
    );
    bot.deliver_at(cutoff + chrono::Duration::minutes(5)).await;
    assert_eq!(bot.sent_to("handler_f").len(), 4);

    // 完成 on the first card; WeCom retries the same callback: it acts once.
    let agent = bot.settings.wecom.agent_id;
    let task = |i: usize| cards[i]["task_id"].as_str().unwrap().to_owned();
    let code = bot.wecom.issue_response_code(agent);
    let done_key = format!("kt_done:{}", ids[0]);
    let first = bot
        .click("handler_f", 1_700_000_001, &task(0), &done_key, &code)
        .await;
    assert!(first.contains("已完成"), "{first}");
    let replay = bot
        .click("handler_f", 1_700_000_001, &task(0), &done_key, &code)
        .await;
    assert_eq!(
        replay, first,
        "a replayed click is answered from the first run"
    );
    let done = bot.parts.ledger.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(done.status(), Status::Done);
    assert_eq!(
        done.history
            .iter()
            .filter(|c| c.status == Status::Done)
            .count(),
        1
    );
    let updates = bot.wecom.card_updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        updates[0].replace_name.as_deref(),
        Some("已完成 · 职能-小王")
    );
    assert_eq!(updates[0].response_code, code);

    // 驳回 on the second card asks for the reason; the handler's next message is it.
    let code = bot.wecom.issue_response_code(agent);
    let reject_key = format!("kt_reject:{}", ids[1]);
    let ask = bot
        .click("handler_f", 1_700_000_002, &task(1), &reject_key, &code)
        .await;
    assert!(
        ask.contains("原因") && ask.contains(ids[1].as_str()),
        "{ask}"
    );
    let replay = bot
        .click("handler_f", 1_700_000_002, &task(1), &reject_key, &code)
        .await;
    assert_eq!(replay, ask);
    let rejected = bot.say("handler_f", "卖家账号不存在").await;
    assert!(rejected.contains("已驳回"), "{rejected}");
    let request = bot.parts.ledger.get(&ids[1]).await.unwrap().unwrap();
    assert_eq!(request.status(), Status::Rejected);
    assert_eq!(
        request.history.last().unwrap().note.as_deref(),
        Some("卖家账号不存在")
    );
    let updates = bot.wecom.card_updates();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(
        updates[1].replace_name.as_deref(),
        Some("已驳回 · 职能-小王")
    );
    // The requester hears of the rejection at once, as after /reject.
    bot.deliver().await;
    let to_bob = bot.sent_to("bob");
    assert!(
        to_bob
            .iter()
            .any(|m| m.content.contains("卖家账号不存在") && m.content.contains(ids[1].as_str())),
        "{to_bob:?}"
    );
    // The reason was used once: the handler's next message is an ordinary one again.
    let today = bot.say("handler_f", "/today").await;
    assert!(today.contains("团队视图"), "{today}");
    assert_eq!(
        bot.parts
            .ledger
            .get(&ids[2])
            .await
            .unwrap()
            .unwrap()
            .status(),
        Status::Submitted
    );

    // Someone who is not a handler cannot use a card's key.
    let code = bot.wecom.issue_response_code(agent);
    let refused = bot
        .click(
            "mallory",
            1_700_000_003,
            &task(2),
            &format!("kt_done:{}", ids[2]),
            &code,
        )
        .await;
    assert!(refused.contains("只有处理人"), "{refused}");
    assert_eq!(
        bot.parts
            .ledger
            .get(&ids[2])
            .await
            .unwrap()
            .unwrap()
            .status(),
        Status::Submitted
    );
}

#[tokio::test]
async fn the_blank_disclaimer_template_is_sent_as_a_file_uploaded_once() {
    let templates = tempfile::tempdir().unwrap();
    let blank = b"PK\x03\x04 blank disclaimer template".to_vec();
    std::fs::write(templates.path().join("免责声明填写样板.docx"), &blank).unwrap();
    let mut settings = harness::test_settings();
    settings.dialogs.templates_dir = templates.path().to_owned();
    let bot = start(settings).await;

    for (user, account) in [("t1", "shop_t1"), ("t2", "shop_t2")] {
        bot.say(user, &format!("实施助手 卖家账号 {account}")).await;
        bot.say(user, "客户要用实施助手做初始化").await;
        let ask = bot.say(user, "是").await;
        assert!(
            ask.contains("免责声明") && ask.contains("模板「免责声明填写样板.docx」已发给你"),
            "{ask}"
        );
        // The file goes out beside the reply.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let file = loop {
            if let Some(m) = bot.sent_to(user).into_iter().find(|m| m.msgtype == "file") {
                break m;
            }
            assert!(std::time::Instant::now() < deadline, "no file message");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let media_id = file.body["file"]["media_id"].as_str().unwrap();
        let media = bot.wecom.media(media_id).unwrap();
        assert_eq!(media.file_name, "免责声明填写样板.docx");
        assert_eq!(media.bytes, blank);
    }
    assert_eq!(bot.wecom.uploads(), 1, "the media_id is reused");

    // Re-asking the same field does not send the file again.
    bot.say("t1", "好了").await;
    assert_eq!(
        bot.sent_to("t1")
            .iter()
            .filter(|m| m.msgtype == "file")
            .count(),
        1
    );

    // The blank template sent back, renamed: refused like the unrenamed one.
    bot.wecom.add_media("media-blank", "签好了.docx", &blank);
    let refused = bot
        .app
        .send_app_file("t1", "media-blank", "签好了.docx")
        .await;
    assert!(refused.contains("空白"), "{refused}");
    let refused = bot
        .app
        .send_app_file("t1", "media-blank", "免责声明填写样板.docx")
        .await;
    assert!(refused.contains("空白"), "{refused}");
    bot.wecom
        .add_media("media-signed", "签好了.pdf", b"%PDF signed disclaimer");
    let summary = bot
        .app
        .send_app_file("t1", "media-signed", "签好了.pdf")
        .await;
    assert!(summary.contains("请核对"), "{summary}");
}

/// Asks for 实施助手 up to the disclaimer question; its reply.
async fn ask_template(bot: &Bot, user: &str) -> String {
    bot.say(user, &format!("实施助手 卖家账号 shop_{user}"))
        .await;
    bot.say(user, "客户要用实施助手做初始化").await;
    bot.say(user, "是").await
}

/// Issue 23, probe 9: the 免责声明 template had no size or type check: a 110 MB file was read
/// and uploaded in full on every ask (4 at once → 1 GB RSS), a 0-byte file was uploaded too, and
/// the person was told the template was sent although the upload failed. Reproduce: a 0-byte
/// template (the reply said 已发给你; WeCom answered 40006), and a failing upload.
#[tokio::test]
async fn probe_9_templates_are_checked_at_load_uploaded_once_and_failures_told() {
    harness::capture_logs();
    let name = "免责声明填写样板.docx";
    // Too small, too large, or not what its name says: refused at load, never offered.
    for (label, bytes) in [
        ("empty", Vec::new()),
        ("oversized", {
            let mut big = b"PK\x03\x04".to_vec();
            big.resize(20 * 1024 * 1024 + 1, 0);
            big
        }),
        ("not a docx", b"<html>not a document</html>".to_vec()),
    ] {
        let templates = tempfile::tempdir().unwrap();
        std::fs::write(templates.path().join(name), &bytes).unwrap();
        let mut settings = harness::test_settings();
        settings.dialogs.templates_dir = templates.path().to_owned();
        let bot = start(settings).await;
        let reply = ask_template(&bot, "u9").await;
        assert!(reply.contains("免责声明"), "{label}: {reply}");
        assert!(!reply.contains("已发给你"), "{label}: {reply}");
        assert_eq!(bot.wecom.uploads(), 0, "{label}: nothing uploaded");
        assert!(
            harness::captured_logs().contains("template refused"),
            "{label}: a log line"
        );
    }
    // A good template whose upload fails: the person is told so, not that it was sent.
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join(name), b"PK\x03\x04 blank template").unwrap();
    let mut settings = harness::test_settings();
    settings.dialogs.templates_dir = templates.path().to_owned();
    let bot = start(settings).await;
    bot.say("v9", "实施助手 卖家账号 shop_v9").await;
    bot.say("v9", "客户要用实施助手做初始化").await;
    bot.wecom.fail_next(1, 40006);
    let reply = bot.say("v9", "是").await;
    assert!(!reply.contains("已发给你"), "{reply}");
    assert!(reply.contains("没能发出"), "{reply}");
    // Four people asked at once: one upload.
    let (a, b, c, d) = tokio::join!(
        ask_template(&bot, "w1"),
        ask_template(&bot, "w2"),
        ask_template(&bot, "w3"),
        ask_template(&bot, "w4")
    );
    for reply in [a, b, c, d] {
        assert!(reply.contains("已发给你"), "{reply}");
    }
    assert_eq!(bot.wecom.uploads(), 1, "uploaded once");
}
