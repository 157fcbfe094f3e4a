//! The conversation end to end: the real HTTP server, really encrypted callbacks, the real
//! catalog in `dialogs/`, on both stores.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kaitong::domain::RequestId;
use kaitong::requests::{Ledger, Status};
use kaitong::startup::Parts;
use kaitong::store::Store;
use kaitong::wecom::app_xml::InnerMessage;
use kaitong_dev::peer;
use kaitong_dev::simulator::SimulatorHandle;

use crate::harness::{self, BACKENDS, Backend, TestApp};

struct Bot {
    app: TestApp,
    ledger: Arc<dyn Ledger>,
    wecom: SimulatorHandle,
    store: Arc<dyn Store>,
}

async fn start_on(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Bot {
    start_with(harness::test_settings(), store, dir).await
}

async fn start_with(
    mut settings: kaitong::config::Settings,
    store: Arc<dyn Store>,
    dir: Option<tempfile::TempDir>,
) -> Bot {
    // WeCom's server API is the in-repo simulator, with this app's credentials.
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = TestApp::spawn_with(settings, Arc::clone(&store), dir, parts.bot).await;
    Bot {
        app,
        ledger: parts.ledger,
        wecom,
        store,
    }
}

async fn start(backend: Backend) -> Bot {
    let (store, dir) = harness::fresh_store(backend);
    start_on(store, dir).await
}

impl Bot {
    /// A 1:1 message through the self-built app; returns the bot's text.
    async fn say(&self, user: &str, text: &str) -> String {
        self.app.say(user, text).await
    }

    /// A group message through the AI bot, with the @mention WeCom adds.
    async fn say_in_group(&self, chat: &str, user: &str, text: &str) -> String {
        self.app.say_to_aibot(Some(chat), user, text).await
    }

    /// The raw decrypted JSON reply to a group message.
    async fn say_in_group_raw(&self, chat: &str, user: &str, text: &str) -> serde_json::Value {
        self.app.say_to_aibot_raw(Some(chat), user, text).await
    }

    /// An app file message (as WeCom sends a document).
    async fn send_file(&self, user: &str, media_id: &str, file_name: &str) -> String {
        self.app.send_app_file(user, media_id, file_name).await
    }
}

fn request_id(receipt: &str) -> RequestId {
    let start = receipt.find("KT-").expect("a request id in the receipt");
    RequestId::parse(&receipt[start..start + 16]).unwrap()
}

#[tokio::test]
async fn the_happy_path_files_a_request_in_three_messages() {
    for backend in BACKENDS {
        let bot = start(backend).await;
        let first = bot
            .say("sales1", "帮我给 abc_flagship 开一下电子发票")
            .await;
        assert!(first.contains("#7 电子发票"), "{first}");
        assert!(
            first.contains("abc_flagship"),
            "the account is picked up: {first}"
        );
        assert!(
            first.contains("申请原因"),
            "only the reason is asked: {first}"
        );

        let summary = bot.say("sales1", "客户要开票给下游报销").await;
        assert!(summary.contains("· 卖家账号: abc_flagship"), "{summary}");
        assert!(
            summary.contains("不支持试用"),
            "the service's warning is shown: {summary}"
        );
        assert!(
            summary.contains("17:30 前"),
            "when it will be done: {summary}"
        );
        assert!(summary.contains("确认"), "{summary}");

        let receipt = bot.say("sales1", "确认").await;
        assert!(receipt.contains("已提交"), "{receipt}");
        let id = request_id(&receipt);
        let request = bot
            .ledger
            .get(&id)
            .await
            .unwrap()
            .expect("the request is in the ledger");
        assert_eq!(request.form.service.get(), 7);
        assert_eq!(request.status(), Status::Submitted);
        assert_eq!(request.form.requester.user.as_str(), "sales1");
        assert!(
            request
                .form
                .summary
                .iter()
                .any(|(l, v)| l == "卖家账号" && v == "abc_flagship")
        );

        // Confirming again (a late duplicate) files nothing new.
        let again = bot.say("sales1", "确认").await;
        assert!(!again.contains("已提交"), "{again}");
    }
}

#[tokio::test]
async fn prefilled_values_are_not_asked_again() {
    let bot = start(Backend::Embedded).await;
    let reply = bot.say("s2", "赠品策略上限调到3000 卖家账号 shop_a1").await;
    assert!(reply.contains("#33"), "{reply}");
    assert!(
        reply.contains("shop_a1") && reply.contains("3000"),
        "{reply}"
    );
    assert!(!reply.contains("请提供客户的卖家账号"), "{reply}");
    assert!(reply.contains("申请原因"), "{reply}");
}

#[tokio::test]
async fn a_close_call_offers_numbered_options_and_accepts_a_number() {
    let bot = start(Backend::Embedded).await;
    let reply = bot.say("s3", "支付宝数据透视").await;
    assert!(
        reply.contains("1. #5") && reply.contains("2. #47"),
        "{reply}"
    );
    let reply = bot.say("s3", "2").await;
    assert!(reply.contains("开通「#47"), "{reply}");
}

#[tokio::test]
async fn nothing_matched_says_so_and_shows_how_to_browse() {
    let bot = start(Backend::Embedded).await;
    let reply = bot.say("s4", "库存不准怎么办").await;
    assert!(reply.contains("/services"), "{reply}");
    let reply = bot.say("s4", "你好").await;
    assert!(reply.contains("开通助手"), "{reply}");
}

#[tokio::test]
async fn an_invalid_answer_states_the_rule_then_a_valid_one_moves_on() {
    let bot = start(Backend::Redis).await;
    bot.say("s5", "申请开通标准接口").await;
    let reply = bot.say("s5", "abc shop").await;
    assert!(reply.contains("卖家账号格式不对"), "{reply}");
    let reply = bot.say("s5", "abc_shop").await;
    assert!(!reply.contains("格式不对"), "{reply}");
}

#[tokio::test]
async fn a_cap_is_enforced_with_its_number_and_three_failures_offer_a_way_out() {
    let bot = start(Backend::Embedded).await;
    bot.say("s6", "赠品策略上限调整 卖家账号 shop_b2").await;
    let reply = bot.say("s6", "5000").await;
    assert!(reply.contains("上限是 3000"), "{reply}");
    bot.say("s6", "4000").await;
    let third = bot.say("s6", "9999").await;
    assert!(
        third.contains("取消") && third.contains("帮助"),
        "after three failures: {third}"
    );
    let reply = bot.say("s6", "三千").await;
    assert!(
        reply.contains("申请原因"),
        "a Chinese numeral within the cap is accepted: {reply}"
    );
}

#[tokio::test]
async fn a_taobao_unbind_is_refused_with_the_workaround_and_nothing_is_filed() {
    let bot = start(Backend::Embedded).await;
    // Not renamed on Taobao: refused with the seed's workaround, nothing filed.
    let reply = bot.say("s7", "淘宝店铺解绑 卖家 wdt_a1").await;
    assert!(
        reply.contains("改过名字了吗"),
        "asks about the rename first: {reply}"
    );
    let reply = bot.say("s7", "没有").await;
    assert!(
        reply.contains("无法提交") && reply.contains("修改店铺名称"),
        "{reply}"
    );
    let reply = bot.say("s7", "确认").await;
    assert!(!reply.contains("已提交"), "{reply}");
    // Renamed since: the same form resumes, and the summary carries the seed's warning.
    let reply = bot.say("s7", "已经在淘宝上改过名字了").await;
    assert!(reply.contains("店铺编号"), "the same form goes on: {reply}");
    for answer in ["tb001", "某某淘宝店", "店铺改名后要解绑旧授权"] {
        bot.say("s7", answer).await;
    }
    let reply = bot.say("s7", "已经在淘宝上改过名字了").await;
    assert!(!reply.contains("无法提交"), "{reply}");
}

#[tokio::test]
async fn a_renamed_taobao_shop_is_filed_with_the_old_orders_warning() {
    let bot = start(Backend::Embedded).await;
    bot.say("s7b", "淘宝店铺解绑 卖家 wdt_a2").await;
    let reply = bot.say("s7b", "是").await;
    assert!(reply.contains("店铺编号"), "{reply}");
    let mut summary = String::new();
    for answer in ["tb002", "某某淘宝店", "店铺改名后要解绑旧授权"] {
        summary = bot.say("s7b", answer).await;
    }
    // The disclaimer is a file; the summary comes after it.
    bot.wecom
        .add_media("media-23", "免责声明-签字版.pdf", b"%PDF signed");
    if !summary.contains("请核对") {
        summary = bot
            .send_file("s7b", "media-23", "免责声明-签字版.pdf")
            .await;
    }
    assert!(summary.contains("旧店铺里的订单处理完毕"), "{summary}");
    let receipt = bot.say("s7b", "确认").await;
    assert!(receipt.contains("已提交"), "{receipt}");
}

#[tokio::test]
async fn the_disclaimer_is_asked_only_when_implementation_has_closed() {
    let bot = start(Backend::Embedded).await;
    bot.say("s8", "实施助手 卖家账号 shop_c3").await;
    bot.say("s8", "客户要用实施助手做初始化").await;
    let summary = bot.say("s8", "否").await;
    assert!(
        summary.contains("请核对"),
        "no disclaimer when not closed: {summary}"
    );

    bot.say("s9", "实施助手 卖家账号 shop_c4").await;
    bot.say("s9", "客户要用实施助手做初始化").await;
    let ask = bot.say("s9", "是").await;
    assert!(ask.contains("免责声明"), "{ask}");
    let text_answer = bot.say("s9", "好了").await;
    assert!(
        text_answer.contains("免责声明填写样板.docx"),
        "a text is not a file: {text_answer}"
    );

    // A media id WeCom does not know: the person is asked to send it again.
    let failed = bot.send_file("s9", "media-unknown", "x.pdf").await;
    assert!(failed.contains("重新发送"), "{failed}");

    let document = b"%PDF-1.4 signed disclaimer".to_vec();
    bot.wecom
        .add_media("media-123", "免责声明-签字版.pdf", &document);
    let summary = bot
        .send_file("s9", "media-123", "免责声明-签字版.pdf")
        .await;
    assert!(
        summary.contains("免责声明-签字版.pdf"),
        "the summary shows the file name: {summary}"
    );
    let receipt = bot.say("s9", "确认").await;
    let request = bot
        .ledger
        .get(&request_id(&receipt))
        .await
        .unwrap()
        .unwrap();
    let kept = kaitong::requests::attachments::load_blob(
        bot.store.as_ref(),
        &kaitong::requests::attachments::BlobRef::of(&request.form.form_id, "disclaimer"),
    )
    .await
    .unwrap();
    assert_eq!(kept, Some(document), "the file is kept with the request");
}

#[tokio::test]
async fn a_field_is_corrected_from_the_summary() {
    let bot = start(Backend::Embedded).await;
    bot.say("s10", "给 old_acct1 开电子发票").await;
    bot.say("s10", "客户需要开电子发票").await;
    let reply = bot.say("s10", "卖家账号改成 new_acct2").await;
    // The person hears what changed, then the summary holds only the new value.
    let (changed, summary) = reply.split_once("\n\n").unwrap_or_default();
    assert!(
        changed.contains("new_acct2") && changed.contains("old_acct1"),
        "{reply}"
    );
    assert!(
        summary.contains("new_acct2") && !summary.contains("old_acct1"),
        "{reply}"
    );
    assert!(reply.contains("请核对"), "back at the summary: {reply}");

    let pick = bot.say("s10", "修改").await;
    assert!(pick.contains("1. 卖家账号"), "{pick}");
    let ask = bot.say("s10", "2").await;
    assert!(ask.contains("申请原因"), "{ask}");
    let summary = bot.say("s10", "客户的下游需要电子发票").await;
    assert!(summary.contains("客户的下游需要电子发票"), "{summary}");
    let receipt = bot.say("s10", "确认").await;
    let request = bot
        .ledger
        .get(&request_id(&receipt))
        .await
        .unwrap()
        .unwrap();
    assert!(request.form.summary.iter().any(|(_, v)| v == "new_acct2"));
}

#[tokio::test]
async fn cancel_files_nothing_and_says_so_and_back_returns_a_step() {
    let bot = start(Backend::Embedded).await;
    bot.say("s11", "物流追踪").await;
    let reply = bot.say("s11", "acct_11").await;
    assert!(reply.contains("申请原因"), "{reply}");
    let reply = bot.say("s11", "上一步").await;
    assert!(reply.contains("卖家账号"), "{reply}");
    let reply = bot.say("s11", "算了").await;
    assert!(reply.contains("没有提交"), "{reply}");
    let reply = bot.say("s11", "确认").await;
    assert!(!reply.contains("已提交"), "{reply}");
}

#[tokio::test]
async fn naming_another_service_mid_form_asks_before_switching() {
    let bot = start(Backend::Embedded).await;
    bot.say("s12", "电子发票").await;
    let reply = bot.say("s12", "还是先开物流追踪吧").await;
    assert!(
        reply.contains("「#6 物流追踪」") && reply.contains("切换"),
        "the name is not taken as an account: {reply}"
    );
    let reply = bot.say("s12", "否").await;
    assert!(reply.contains("继续填写「电子发票」"), "{reply}");
    bot.say("s12", "发货单明文打印").await;
    let reply = bot.say("s12", "是").await;
    assert!(reply.contains("开通「#49"), "{reply}");
}

#[tokio::test]
async fn a_half_filled_form_survives_a_restart_on_both_stores() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let prefix = harness::unique_prefix();
        let open = || -> Arc<dyn Store> {
            match backend {
                Backend::Embedded => {
                    Arc::new(kaitong::store::EmbeddedStore::open(dir.path().join("k.db")).unwrap())
                }
                Backend::Redis => Arc::new(
                    kaitong::store::RedisStore::open(&harness::redis_url(), &prefix).unwrap(),
                ),
            }
        };
        {
            let mut bot = start_on(open(), None).await;
            bot.say("s13", "赠品策略上限调整 卖家账号 shop_d4").await;
            bot.say("s13", "2000").await;
            bot.app.stop().await;
        }
        let bot = start_on(open(), None).await;
        let summary = bot.say("s13", "客户赠品活动要配很多策略").await;
        assert!(
            summary.contains("shop_d4") && summary.contains("2000"),
            "{backend:?}: {summary}"
        );
        let receipt = bot.say("s13", "确认").await;
        assert!(receipt.contains("已提交"), "{backend:?}: {receipt}");
    }
}

#[tokio::test]
async fn two_people_in_one_group_keep_separate_forms() {
    let bot = start(Backend::Redis).await;
    let a = bot.say_in_group("wrkTEAM", "alice", "电子发票").await;
    assert!(a.contains("#7"), "{a}");
    let b = bot.say_in_group("wrkTEAM", "bob", "物流追踪").await;
    assert!(b.contains("#6"), "{b}");
    let a = bot.say_in_group("wrkTEAM", "alice", "acct_alice").await;
    assert!(a.contains("申请原因"), "{a}");
    let b = bot.say_in_group("wrkTEAM", "bob", "acct_bob").await;
    assert!(b.contains("申请原因"), "{b}");
    let a = bot
        .say_in_group("wrkTEAM", "alice", "客户要开电子发票")
        .await;
    assert!(a.contains("acct_alice") && a.contains("#7"), "{a}");
    let b = bot
        .say_in_group("wrkTEAM", "bob", "客户需要看物流轨迹")
        .await;
    assert!(b.contains("acct_bob") && b.contains("#6"), "{b}");
    // Bob's 1:1 chat is a different conversation from the group.
    let direct = bot.say("bob", "确认").await;
    assert!(!direct.contains("已提交"), "{direct}");
}

#[tokio::test]
async fn several_services_in_one_message_are_handled_one_at_a_time() {
    let bot = start(Backend::Embedded).await;
    let reply = bot.say("s14", "给 acct_14 开电子发票和物流追踪").await;
    assert!(reply.contains("#7"), "{reply}");
    bot.say("s14", "客户两个都要开").await;
    let receipt = bot.say("s14", "确认").await;
    assert!(
        receipt.contains("#6 物流追踪") && receipt.contains("继续"),
        "{receipt}"
    );
    let next = bot.say("s14", "继续").await;
    assert!(next.contains("开通「#6"), "{next}");
}

#[tokio::test]
async fn guidance_only_paths_file_nothing() {
    let bot = start(Backend::Embedded).await;
    bot.say("s15", "标准接口 卖家账号 acct_15").await;
    let mut reply = String::new();
    // Walk to the environment question and pick 联调环境.
    for _ in 0..6 {
        if reply.contains("联调环境") {
            break;
        }
        reply = bot.say("s15", "x").await;
    }
    let reply = bot.say("s15", "联调环境").await;
    assert!(reply.contains("open.wangdian.cn/open"), "{reply}");
}

#[tokio::test]
async fn on_the_app_channel_options_are_buttons_and_a_click_answers() {
    let mut settings = harness::test_settings();
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let ledger = parts.ledger.clone();
    let app = kaitong::startup::Application::build_from(&settings, parts)
        .await
        .unwrap();
    let bot = Bot {
        app: TestApp::serve(app, settings, Arc::clone(&store), dir),
        ledger,
        wecom,
        store,
    };
    bot.say("s20", "实施助手 卖家账号 acct_20").await;
    // The yes/no question goes out as a card, so the passive reply is empty.
    let inner = peer::app_text_xml(
        &bot.app.corp_id(),
        "s20",
        &bot.app.agent_id(),
        777,
        "客户要做初始化配置",
    );
    let cb = bot
        .app
        .app_peer
        .app_callback(&inner, &bot.app.agent_id())
        .unwrap();
    let (status, body) = bot.app.post("/wecom/app", &cb.query, cb.body).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let sent = bot.wecom.sent_messages();
    let card = sent.last().unwrap();
    assert_eq!(card.msgtype, "template_card");
    assert_eq!(card.touser, vec!["s20".to_owned()]);
    let buttons = card.body["template_card"]["button_list"]
        .as_array()
        .unwrap();
    assert_eq!(buttons.len(), 2);
    let yes = buttons[0]["key"].as_str().unwrap().to_owned();

    // The click comes back as a template_card_event whose EventKey is the button key.
    let click = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[s20]]></FromUserName><CreateTime>1700000123</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{yes}]]></EventKey><TaskId><![CDATA[{}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc1]]></ResponseCode><AgentID>{}</AgentID></xml>",
        bot.app.corp_id(),
        card.body["template_card"]["task_id"].as_str().unwrap(),
        bot.app.agent_id()
    );
    let cb = bot
        .app
        .app_peer
        .app_callback(&click, &bot.app.agent_id())
        .unwrap();
    let (_, body) = bot.app.post("/wecom/app", &cb.query, cb.body).await;
    let xml = bot.app.app_peer.open_app_reply(&body).unwrap().unwrap();
    let reply = InnerMessage::parse(&xml).unwrap().content.unwrap();
    assert!(reply.contains("免责声明"), "the click answered 是: {reply}");
}

#[tokio::test]
async fn an_expired_form_is_reported_as_expired() {
    let mut settings = harness::test_settings();
    settings.dialogs.session_ttl_secs = 1;
    let (store, dir) = harness::fresh_store(Backend::Redis);
    let bot = start_with(settings, store, dir).await;
    bot.say("s21", "电子发票").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = bot.say("s21", "acct_21").await;
    assert!(reply.contains("已失效"), "{reply}");
    assert!(
        !reply.contains("申请原因"),
        "the old form does not continue: {reply}"
    );
}

#[tokio::test]
async fn in_a_group_a_yes_no_question_is_a_button_card() {
    let bot = start(Backend::Embedded).await;
    bot.say_in_group_raw("wrkG2", "u22", "实施助手 卖家账号 acct_22")
        .await;
    let reply = bot
        .say_in_group_raw("wrkG2", "u22", "客户要做初始化配置")
        .await;
    assert_eq!(reply["msgtype"], "template_card", "{reply}");
    assert_eq!(reply["template_card"]["card_type"], "button_interaction");
    assert_eq!(reply["template_card"]["button_list"][1]["key"], "否");
}

#[tokio::test]
async fn two_instances_on_one_redis_continue_each_others_forms() {
    let prefix = harness::unique_prefix();
    let open = || -> Arc<dyn Store> {
        Arc::new(kaitong::store::RedisStore::open(&harness::redis_url(), &prefix).unwrap())
    };
    let a = start_on(open(), None).await;
    let b = start_on(open(), None).await;
    a.say("s23", "电子发票").await;
    let reply = b.say("s23", "acct_23").await;
    assert!(
        reply.contains("申请原因"),
        "instance B sees A's form: {reply}"
    );
    let summary = a.say("s23", "客户需要开电子发票").await;
    assert!(summary.contains("acct_23"), "{summary}");
    let receipt = b.say("s23", "确认").await;
    assert!(receipt.contains("已提交"), "{receipt}");
    // Both instances share the ledger: the request is visible from A too.
    assert!(a.ledger.get(&request_id(&receipt)).await.unwrap().is_some());

    // The same person typing on both instances at once: every turn lands, none is lost.
    a.say("s24", "赠品策略上限调整 卖家账号 acct_24").await;
    let (x, y) = tokio::join!(a.say("s24", "2000"), b.say("s24", "上一步"));
    assert!(!x.is_empty() && !y.is_empty());
    let summary = a.say("s24", "帮助").await;
    assert!(
        summary.contains("【"),
        "the session is still usable: {summary}"
    );
}
