//! Status and handler commands through both channels' encrypted callbacks: every command, who
//! may see what, group rules, and long replies split for the phone.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kaitong::config::{HandlerAccountSettings, Settings};
use kaitong::domain::RequestId;
use kaitong::requests::{Ledger, Status, token_hash};
use kaitong::startup::{Application, Parts};
use kaitong::wecom::app_xml::InnerMessage;
use kaitong_dev::peer;
use kaitong_dev::simulator::SimulatorHandle;

use crate::harness::{self, Backend, RecordingBot, TestApp};

struct Bot {
    app: TestApp,
    ledger: Arc<dyn Ledger>,
    _wecom: SimulatorHandle,
}

async fn start(mut settings: Settings) -> Bot {
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let ledger = Arc::clone(&parts.ledger);
    let app = TestApp::spawn_with(settings, store, dir, parts.bot).await;
    Bot {
        app,
        ledger,
        _wecom: wecom,
    }
}

fn settings_with_handler() -> Settings {
    let mut settings = harness::test_settings();
    settings.handlers.accounts = vec![
        HandlerAccountSettings {
            name: "职能-小王".into(),
            team: "functional".into(),
            token_sha256: token_hash("t-functional"),
            wecom_userid: "handler_f".into(),
        },
        HandlerAccountSettings {
            name: "运维-小李".into(),
            team: "ops".into(),
            token_sha256: token_hash("t-ops"),
            wecom_userid: "handler_o".into(),
        },
    ];
    settings.handlers.admins = vec!["boss".into()];
    settings
}

impl Bot {
    async fn say(&self, user: &str, text: &str) -> String {
        self.app.say(user, text).await
    }

    async fn says_all(&self, user: &str, lines: &[&str]) -> String {
        let mut last = String::new();
        for line in lines {
            last = self.say(user, line).await;
        }
        last
    }

    async fn say_in_group(&self, chat: &str, user: &str, text: &str) -> String {
        self.app.say_to_aibot(Some(chat), user, text).await
    }

    async fn say_direct_aibot(&self, user: &str, text: &str) -> String {
        self.app.say_to_aibot(None, user, text).await
    }

    /// Files an 电子发票 request (职能组) for `user` and returns its id.
    async fn file(&self, user: &str) -> RequestId {
        self.say(user, &format!("给 acct_{user} 开电子发票")).await;
        self.say(user, "客户需要开电子发票").await;
        let receipt = self.say(user, "确认").await;
        let start = receipt.find("KT-").unwrap();
        RequestId::parse(&receipt[start..start + 16]).unwrap()
    }
}

#[tokio::test]
async fn status_shows_ones_own_request_and_hides_others_the_same_way_as_unknown_ids() {
    let bot = start(settings_with_handler()).await;
    let id = bot.file("alice").await;
    let mine = bot.say("alice", &format!("/status {id}")).await;
    assert!(
        mine.contains(id.as_str()) && mine.contains("已提交") && mine.contains("电子发票"),
        "{mine}"
    );
    // An open request in the daily batch says when to expect it.
    assert!(
        mine.contains("预计: ") && mine.contains("17:30 前"),
        "{mine}"
    );
    let chinese = bot.say("alice", &format!("查询 {id}")).await;
    assert_eq!(chinese, mine);
    let other = bot.say("mallory", &format!("/status {id}")).await;
    let unknown = bot.say("mallory", "/status KT-20990101-0001").await;
    assert_eq!(other, unknown, "no existence leak");
    assert!(other.contains("没有找到"), "{other}");
    assert!(
        !mine.contains("填写内容"),
        "the requester knows what they filled in"
    );
    // The request's team handler and an admin may look; another team's handler may not. The
    // handler also reads the fields (issue 22), enough to act from the chat.
    let handlers = bot.say("handler_f", &format!("/status {id}")).await;
    assert!(
        handlers.contains("已提交")
            && handlers.contains("填写内容:")
            && handlers.contains("· 卖家账号: acct_alice"),
        "{handlers}"
    );
    assert!(
        bot.say("boss", &format!("/status {id}"))
            .await
            .contains("已提交")
    );
    assert_eq!(
        bot.say("handler_o", &format!("/status {id}")).await,
        unknown
    );
    assert!(bot.say("alice", "/status").await.contains("用法"));
}

#[tokio::test]
async fn mine_lists_open_requests_first() {
    let bot = start(settings_with_handler()).await;
    assert!(bot.say("bob", "/mine").await.contains("还没有"));
    let first = bot.file("bob").await;
    let second = bot.file("bob").await;
    bot.say("handler_f", &format!("/done {first}")).await;
    let mine = bot.say("bob", "我的申请").await;
    let (p_second, p_first) = (
        mine.find(second.as_str()).unwrap(),
        mine.find(first.as_str()).unwrap(),
    );
    assert!(p_second < p_first, "open before done: {mine}");
    assert!(mine.contains("已完成"), "{mine}");
}

#[tokio::test]
async fn today_shows_counts_and_handlers_see_every_request_of_their_team_paged() {
    let bot = start(settings_with_handler()).await;
    for i in 0..12 {
        bot.file(&format!("sales{i}")).await;
    }
    let handler = bot.say("handler_f", "/today").await;
    assert!(
        handler.contains("待处理 12 条 · 逾期 0 条") && handler.contains("已等 0 分钟"),
        "{handler}"
    );
    assert!(handler.contains("第 1/2 页"), "{handler}");
    let page2 = bot.say("handler_f", "/today 2").await;
    assert_eq!(page2.matches("KT-").count(), 2, "{page2}");
    let sales = bot.say("sales3", "今天").await;
    assert!(
        sales.contains("共 1 条"),
        "a salesperson sees their own: {sales}"
    );
    let ops = bot.say("handler_o", "/today").await;
    assert!(
        ops.contains("没有待处理的申请"),
        "ops does not handle 电子发票: {ops}"
    );
}

#[tokio::test]
async fn cancel_is_for_the_requester_before_processing_starts() {
    let bot = start(settings_with_handler()).await;
    let id = bot.file("carol").await;
    assert!(
        bot.say("mallory", &format!("/cancel {id}"))
            .await
            .contains("没有找到")
    );
    assert!(
        bot.say("carol", &format!("撤回 {id}"))
            .await
            .contains("已撤回")
    );
    assert_eq!(
        bot.ledger.get(&id).await.unwrap().unwrap().status(),
        Status::Cancelled
    );

    let second = bot.file("carol").await;
    bot.ledger
        .transition(
            &second,
            Status::Processing,
            "handler",
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let late = bot.say("carol", &format!("/cancel {second}")).await;
    assert!(late.contains("不能"), "{late}");
    assert!(
        bot.say("carol", "/cancel").await.contains("没有进行中"),
        "no form to cancel"
    );
}

#[tokio::test]
async fn handlers_complete_and_reject_in_chat_and_others_may_not() {
    let bot = start(settings_with_handler()).await;
    let id = bot.file("dan").await;
    assert!(
        bot.say("dan", &format!("/done {id}"))
            .await
            .contains("只有处理人")
    );
    assert!(
        bot.say("handler_o", &format!("/done {id}"))
            .await
            .contains("没有找到"),
        "other team"
    );
    let usage = bot.say("handler_f", &format!("/reject {id}")).await;
    assert!(usage.contains("用法"), "a reason is required: {usage}");
    let done = bot
        .say("handler_f", &format!("/done {id} 已在后台开通"))
        .await;
    assert!(
        done.contains("已完成") && done.contains(id.as_str()),
        "{done}"
    );
    let request = bot.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(request.status(), Status::Done);
    assert_eq!(
        request.history.last().unwrap().note.as_deref(),
        Some("已在后台开通")
    );
    assert_eq!(request.history.last().unwrap().by, "职能-小王");
    assert!(
        bot.say("handler_f", &format!("驳回 {id} 重复申请"))
            .await
            .contains("不能"),
        "already done"
    );

    let other = bot.file("dan").await;
    let rejected = bot
        .say("handler_f", &format!("/reject {other} 卖家账号不存在"))
        .await;
    assert!(rejected.contains("已驳回"), "{rejected}");
    // A rejection is pushed at once, and the handler is told so (not "at 17:30").
    assert!(
        rejected.contains("已通知申请人") && !rejected.contains("17:30"),
        "{rejected}"
    );
    assert!(
        bot.say("dan", &format!("/status {other}"))
            .await
            .contains("卖家账号不存在")
    );
}

#[tokio::test]
async fn commands_work_in_groups_through_the_ai_bot() {
    let bot = start(settings_with_handler()).await;
    let id = bot.file("erin").await;
    let status = bot
        .say_in_group("wrkSALES", "erin", &format!("/status {id}"))
        .await;
    assert!(status.contains("已提交"), "{status}");
    let today = bot.say_in_group("wrkSALES", "handler_f", "/today").await;
    assert!(today.contains(id.as_str()), "{today}");
    let unknown = bot.say_in_group("wrkSALES", "erin", "/frobnicate").await;
    assert!(
        unknown.contains("/services") && unknown.contains("/help"),
        "unknown commands get the list: {unknown}"
    );
}

#[tokio::test]
async fn secrets_and_disclaimers_are_asked_in_the_one_to_one_chat_not_in_the_group() {
    let bot = start(harness::test_settings()).await;
    // Service 22 needs a disclaimer file.
    let first = bot
        .say_in_group("wrkSALES", "fred", "取消手机号导出模糊化 卖家账号 acct_f")
        .await;
    let reply = if first.contains("私聊") {
        first
    } else {
        bot.say_in_group("wrkSALES", "fred", "客户要导出完整手机号给快递")
            .await
    };
    assert!(reply.contains("私聊"), "{reply}");
    assert!(
        !reply.contains("请上传"),
        "the disclaimer is not asked for in the group: {reply}"
    );
    let private = bot.say_direct_aibot("fred", "继续").await;
    assert!(
        private.contains("免责声明"),
        "the form continues 1:1: {private}"
    );
    // The group conversation is free again.
    let group = bot.say_in_group("wrkSALES", "fred", "确认").await;
    assert!(!group.contains("已提交"), "{group}");
}

#[tokio::test]
async fn a_long_app_reply_is_split_on_character_boundaries_and_the_rest_follows_by_api() {
    let mut settings = harness::test_settings();
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    let api = Arc::new(
        kaitong::wecom::api::WecomApi::new(
            wecom.base_url(),
            settings.wecom.corp_id.clone(),
            settings.wecom.secret.expose().to_owned(),
            settings.wecom.agent_id,
        )
        .unwrap(),
    );
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let app = Application::build_with_api(&settings, Arc::clone(&store), RecordingBot::new(), api)
        .await
        .unwrap();
    let app = TestApp::serve(app, settings, store, dir);
    let long = "开通".repeat(1500); // 9000 bytes
    let inner = peer::app_text_xml(&app.corp_id(), "gail", &app.agent_id(), 4242, &long);
    let cb = app.app_peer.app_callback(&inner, &app.agent_id()).unwrap();
    let (_, body) = app.post("/wecom/app", &cb.query, cb.body).await;
    let first = InnerMessage::parse(&app.app_peer.open_app_reply(&body).unwrap().unwrap())
        .unwrap()
        .content
        .unwrap();
    assert!(first.len() <= 2048 && first.starts_with("echo:"));
    let mut rest = String::new();
    for _ in 0..50 {
        let sent = wecom.sent_messages();
        rest = sent.iter().map(|m| m.content.clone()).collect();
        if first.len() + rest.len() >= 9005 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        wecom
            .sent_messages()
            .iter()
            .all(|m| m.content.len() <= 2048)
    );
    assert_eq!(
        format!("{first}{rest}"),
        format!("echo:{long}"),
        "nothing lost, in order"
    );
}

#[tokio::test]
async fn status_my_requests_and_withdrawal_in_plain_words_answer_like_the_commands() {
    let bot = start(settings_with_handler()).await;
    let receipt = bot.say("plain1", "电子发票 账号 fp_plain").await;
    assert!(receipt.contains("申请原因"), "{receipt}");
    let receipt = bot.say("plain1", "客户要给下游开票报销").await;
    assert!(receipt.contains("请核对"), "{receipt}");
    let receipt = bot.say("plain1", "确认").await;
    let start = receipt.find("KT-").unwrap();
    let id = &receipt[start..start + 16];

    let plain = bot.say("plain1", "我刚提的那个什么时候能好").await;
    let slash = bot.say("plain1", &format!("/status {id}")).await;
    assert_eq!(plain, slash, "plain words answer exactly as /status");
    for question in ["好了没", "进度怎么样"] {
        assert_eq!(bot.say("plain1", question).await, slash, "{question}");
    }
    assert_eq!(
        bot.say("plain1", "我申请过哪些").await,
        bot.say("plain1", "/mine").await
    );

    // A rejection's reason is what "为什么被驳回" shows.
    let rejected = bot
        .say("handler_f", &format!("/reject {id} 卖家账号不存在"))
        .await;
    assert!(rejected.contains("已驳回"), "{rejected}");
    let why = bot.say("plain1", "为什么被驳回").await;
    assert!(why.contains("卖家账号不存在"), "{why}");
    // Another request filed since: "为什么被驳回" is still about the rejected one, and
    // "重新提一个" reopens it with what was filled.
    bot.says_all(
        "plain1",
        &["物流追踪 账号 wl_after", "客户要看物流轨迹", "确认"],
    )
    .await;
    let why = bot.say("plain1", "为啥被驳回了").await;
    assert!(why.contains(id) && why.contains("卖家账号不存在"), "{why}");
    let reopened = bot.say("plain1", "那重新提一个吧").await;
    assert!(
        reopened.contains(id) && reopened.contains("fp_plain"),
        "{reopened}"
    );
    bot.say("plain1", "取消").await;
    // With nothing rejected the same words are no command ("还是要重新提一个" as a reason).
    bot.say("plain5", "物流追踪 账号 wl_p5").await;
    let reason = bot.say("plain5", "客户说没开 还是要重新提一个").await;
    assert!(reason.contains("请核对"), "{reason}");

    // Someone else's plain question never shows this request.
    let other = bot.say("plain2", "好了没").await;
    assert!(!other.contains(id), "{other}");

    // Withdrawal of the most recent request, as /cancel would.
    bot.says_all(
        "plain3",
        &["物流追踪 账号 wl_plain", "客户要看物流轨迹", "确认"],
    )
    .await;
    let withdrawn = bot.say("plain3", "撤回刚才那个申请").await;
    assert!(withdrawn.contains("已撤回"), "{withdrawn}");
    // Mid-form the same words are never a field value: the question is answered from the
    // ledger and the form's question follows; the form goes on.
    bot.say("plain4", "电子发票 账号 fp_p4").await;
    let mid = bot.say("plain4", "好了没").await;
    assert!(!mid.contains("KT-") && mid.contains("申请原因"), "{mid}");
    bot.say("plain3", "物流追踪").await;
    let mid = bot.say("plain3", "我之前那个好了没").await;
    assert!(mid.contains("KT-") && mid.contains("卖家账号"), "{mid}");
    let went_on = bot.say("plain3", "wl_plain3").await;
    assert!(went_on.contains("申请原因"), "{went_on}");
}

/// Issue 12: the reply to an unknown command lists every command (handlers' too), from the same
/// list as /help, and every listed command is one the bot understands.
#[tokio::test]
async fn an_unknown_command_lists_every_command_and_each_listed_one_is_understood() {
    let bot = start(settings_with_handler()).await;
    let direct = bot.say("erin", "/frobnicate").await;
    let group = bot.say_in_group("wrkSALES", "erin", "/frobnicate").await;
    let help = bot.say("erin", "/help").await;
    for reply in [&direct, &group, &help] {
        for command in [
            "/services",
            "/help",
            "/cancel",
            "/status",
            "/mine",
            "/today",
            "/done",
            "/reject",
        ] {
            assert!(reply.contains(command), "{command} missing: {reply}");
        }
        assert!(reply.contains("处理人专用"), "{reply}");
    }
    assert!(direct.contains("没有这个命令"), "{direct}");
    for c in kaitong::dialog::commands::SLASH_COMMANDS {
        let reply = bot.say("handler_f", &format!("/{}", c.name)).await;
        assert!(
            !reply.contains("没有这个命令"),
            "/{} is listed, so it must be understood: {reply}",
            c.name
        );
    }
}

/// Issue 12: /today in a group says whose view it is: a handler sees the team's open work
/// (issue 22: of any day), anyone else only their own requests, named, so nobody takes one
/// person's list for the team's.
#[tokio::test]
async fn today_in_a_group_names_the_view_team_batch_for_handlers_own_requests_for_others() {
    let bot = start(settings_with_handler()).await;
    let erins = bot.file("erin").await;
    let franks = bot.file("frank").await;

    let team = bot.say_in_group("wrkSALES", "handler_f", "/today").await;
    assert!(team.contains("团队视图: 职能组的待处理"), "{team}");
    assert!(
        team.contains(erins.as_str())
            && team.contains(franks.as_str())
            && team.contains("待处理 2 条"),
        "{team}"
    );

    let own = bot.say_in_group("wrkSALES", "erin", "/today").await;
    assert!(own.contains("个人视图") && own.contains("erin"), "{own}");
    assert!(
        own.contains(erins.as_str()) && own.contains("共 1 条"),
        "{own}"
    );
    assert!(!own.contains(franks.as_str()), "only her own: {own}");

    let nobody = bot.say_in_group("wrkSALES", "gina", "/today").await;
    assert!(
        nobody.contains("只有 gina 的申请") && nobody.contains("共 0 条"),
        "{nobody}"
    );

    let ops = bot.say_in_group("wrkSALES", "handler_o", "/today").await;
    assert!(
        ops.contains("团队视图: 运维") && ops.contains("没有待处理的申请"),
        "{ops}"
    );

    let admin = bot.say_in_group("wrkSALES", "boss", "/today").await;
    assert!(
        admin.contains("全部团队的待处理") && admin.contains("待处理 2 条"),
        "{admin}"
    );

    // One to one, the view is named too, without the name.
    let direct = bot.say("erin", "/today").await;
    assert!(
        direct.contains("只有你的申请") && direct.contains(erins.as_str()),
        "{direct}"
    );
}

/// Found trying the bot as a hurried salesperson: status questions in everyday words, a status
/// question that names a service (about that service's request, never a new form and never
/// another service's status), the list in plain words, and a command typed after a few words.
#[tokio::test]
async fn hurried_status_questions_name_a_service_or_a_command_after_a_few_words() {
    let bot = start(settings_with_handler()).await;
    // Nothing filed yet: no form is started and nothing is searched for.
    let none = bot.say("hurry", "我的物流追踪开了没").await;
    assert!(none.contains("还没有提交过「#6 物流追踪」的申请"), "{none}");
    let invoice = bot.file("hurry").await;
    let status = bot.say("hurry", &format!("/status {invoice}")).await;
    assert_eq!(bot.say("hurry", "我的申请到哪了").await, status);
    assert_eq!(bot.say("hurry", "开好没").await, status);
    let mine = bot.say("hurry", "/mine").await;
    assert_eq!(bot.say("hurry", "查一下我提交的申请").await, mine);

    // A later request for another service: the question naming 电子发票 is still about it.
    bot.says_all(
        "hurry",
        &["物流追踪 账号 wl_hurry", "客户要看物流轨迹", "确认"],
    )
    .await;
    let named = bot.say("hurry", "我昨天提的电子发票开了没").await;
    assert_eq!(named, status, "the 电子发票 request, not the latest one");
    assert!(!named.contains("开通「"), "no new form: {named}");
    // Pointed at and asked about in other words: the same answer, no new form.
    for asked in [
        "我昨天提的电子发票那个怎么样了",
        "之前申请的电子发票呢",
        "我提的电子发票咋样了？",
    ] {
        assert_eq!(bot.say("hurry", asked).await, status, "{asked}");
    }
    let other = bot.say("hurry", "支付宝数据透视开了吗").await;
    assert!(
        other.contains("还没有提交过") && other.contains("支付宝数据透视"),
        "{other}"
    );
    assert!(!other.contains(invoice.as_str()), "{other}");

    // A command after a few words runs as the command.
    assert_eq!(
        bot.say("hurry", &format!("帮我查下 /status {invoice}"))
            .await,
        status
    );
    assert_eq!(
        bot.say("hurry", "帮我查下 /status").await,
        bot.say("hurry", "/status").await
    );
    assert_eq!(
        bot.say("hurry", "麻烦看下 /mine").await,
        bot.say("hurry", "/mine").await
    );
}
