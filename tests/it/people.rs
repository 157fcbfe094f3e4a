//! Issue 22: handlers see people, not user ids. After filing, the requester is looked up in
//! WeCom's contacts (`user/get`, department names from `department/list`, both answered by the
//! simulator with WeCom's shapes) in the background; the name and department reach the
//! console, the CSV, the JSON API, the webhook and the e-mail (Reply-To the requester). A
//! member outside the app's visible range (60011) stays shown by userid and nothing fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::console::{ConsoleState, LoginThrottle, router};
use kaitong::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
use kaitong::requests::{FiledForm, Request, Requester};
use kaitong::startup::Parts;

use crate::handoff::{Receiver, SmtpSink};
use crate::harness::{self, Backend};

const MAILBOX: &str = "qijianban@example.com";
/// `demo-handler` of config/default.toml: every team.
const HANDLER_TOKEN: &str = "demo-handler-token";

fn t0() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn email_form(id: &str, user: &str) -> FiledForm {
    FiledForm {
        form_id: id.to_owned(),
        service: ServiceId(4),
        service_name: "旗舰版增值服务".into(),
        team: Team::Mailbox,
        routing: FilingRoute::Email {
            address: Some(MAILBOX.into()),
        },
        window: Window::Custom("邮件处理".into()),
        answers: Answers::new(),
        summary: vec![("卖家账号".into(), "shop_a".into())],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(user).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

/// The request once its background lookup has run (at most 5 s).
async fn settled(parts: &Parts, id: &RequestId, until: impl Fn(&Request) -> bool) -> Request {
    for _ in 0..100 {
        let request = parts.ledger.get(id).await.unwrap().unwrap();
        if until(&request) {
            return request;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the contact lookup did not settle for {id}");
}

#[tokio::test]
async fn the_requesters_name_and_department_reach_console_csv_api_and_mail_and_60011_falls_back() {
    harness::capture_logs();
    let sink = SmtpSink::start();
    let platform = Receiver::start().await;
    let mut settings = harness::test_settings();
    settings.handoff.platform_webhook_url = platform.url.clone();
    let sim = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    settings.handoff.smtp_url = sink.url().into();
    sim.add_department(1, "万店总部", 0);
    sim.add_department(2, "广州研发中心", 1);
    sim.add_member("zhangsan", "张三", &[2, 1], Some("zhangsan@example.com"));
    sim.add_member("lisi", "李四", &[2], None);
    sim.hide_members(&["lisi"]);
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();

    // Filing answers at once; the name follows.
    let known = parts
        .ledger
        .file(email_form("pp1", "zhangsan"), t0())
        .await
        .unwrap()
        .id;
    let hidden = parts
        .ledger
        .file(email_form("pp2", "lisi"), t0())
        .await
        .unwrap()
        .id;
    let named = settled(&parts, &known, |r| r.contact.is_some()).await;
    let contact = named.contact.clone().unwrap();
    assert_eq!(contact.name, "张三");
    assert_eq!(contact.departments, vec!["广州研发中心", "万店总部"]);
    assert_eq!(contact.email.as_deref(), Some("zhangsan@example.com"));
    // 60011: answered, remembered, and the request keeps the userid.
    let refused = || {
        harness::captured_logs().lines().any(|line| {
            line.contains("requester not readable in WeCom contacts")
                && line.contains("user=lisi")
                && line.contains("cause=errcode 60011")
        })
    };
    for _ in 0..100 {
        if refused() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused(), "the refusal is logged with its cause");
    let unnamed = parts.ledger.get(&hidden).await.unwrap().unwrap();
    assert_eq!(unnamed.contact, None);
    assert_eq!(unnamed.requester_label(), "lisi");
    let calls = sim.contact_calls();

    // The e-mails: the name and department in the body, Reply-To the requester; the
    // platform's webhook names them too.
    let report = parts
        .outbox
        .run_pass(&parts.transports, t0())
        .await
        .unwrap();
    assert_eq!(report.sent, 4, "{report:?}");
    assert_eq!(report.failed, 0);
    assert_eq!(sim.contact_calls(), calls, "served from the cache");
    let messages = sink.messages();
    let mail_of = |id: &RequestId| {
        messages
            .iter()
            .map(|(_, m)| m)
            .find(|m| m["subject"].as_str().unwrap().contains(id.as_str()))
            .unwrap()
            .clone()
    };
    let mail = mail_of(&known);
    let body = mail["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        body.contains("申请人: zhangsan (企业微信自建应用)\n申请人姓名: 张三 · 部门: 广州研发中心、万店总部 · 邮箱: zhangsan@example.com"),
        "{body}"
    );
    assert!(
        mail["reply_to"]
            .as_str()
            .unwrap()
            .contains("zhangsan@example.com"),
        "{mail}"
    );
    let mail = mail_of(&hidden);
    let body = mail["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        body.contains("申请人: lisi (") && !body.contains("申请人姓名"),
        "{body}"
    );
    assert!(mail["reply_to"].is_null(), "{mail}");

    let hooks: Vec<serde_json::Value> = platform.received().iter().map(|r| r.json()).collect();
    let hook_of = |id: &RequestId| {
        hooks
            .iter()
            .find(|h| h["request"]["id"] == id.as_str())
            .unwrap()["request"]["requester"]
            .clone()
    };
    assert_eq!(
        hook_of(&known),
        serde_json::json!({
            "userid": "zhangsan",
            "channel": "app",
            "name": "张三",
            "departments": ["广州研发中心", "万店总部"],
            "email": "zhangsan@example.com",
        })
    );
    assert_eq!(
        hook_of(&hidden),
        serde_json::json!({ "userid": "lisi", "channel": "app" }),
        "the payload as before when WeCom does not say"
    );

    // The console, its CSV and the JSON API.
    let state = ConsoleState {
        desk: parts.desk.clone(),
        directory: parts.handlers.clone(),
        store: Arc::clone(&store),
        outbox: parts.outbox.clone(),
        schedule: parts.schedule,
        login_throttle: Arc::new(LoginThrottle::new(1000, Duration::from_millis(1))),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("http://{addr}{path}");
    let login = http
        .post(url("/console/login"))
        .form(&[("token", HANDLER_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |path: String| {
        let request = http.get(url(&path)).header("cookie", &cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let list = page("/console?day=2026-11-28".into()).await;
    assert!(
        list.contains("张三 · 广州研发中心 (zhangsan)") && list.contains("lisi"),
        "{list}"
    );
    // Handlers search by the requester's name: 张三's request only.
    let by_name = page(format!("/console?q={}", "%E5%BC%A0%E4%B8%89")).await;
    assert!(
        by_name.contains(known.as_str()) && !by_name.contains(hidden.as_str()),
        "{by_name}"
    );
    let detail = page(format!("/console/requests/{known}")).await;
    assert!(
        detail.contains("张三 · 广州研发中心 (zhangsan)")
            && detail.contains("mailto:zhangsan@example.com"),
        "{detail}"
    );
    let csv = page("/console/export.csv?day=2026-11-28".into()).await;
    assert!(
        csv.contains(&format!(
            "{known},4,旗舰版增值服务,旗舰版增值邮箱,邮件 {MAILBOX},app,zhangsan,张三,广州研发中心、万店总部,"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "{hidden},4,旗舰版增值服务,旗舰版增值邮箱,邮件 {MAILBOX},app,lisi,,,"
        )),
        "{csv}"
    );
    let api = |id: &RequestId| {
        let request = http
            .get(url(&format!("/api/v1/requests/{id}")))
            .bearer_auth(HANDLER_TOKEN);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let body = api(&known).await;
    assert_eq!(body["requester"]["userid"], "zhangsan", "{body}");
    assert_eq!(body["requester"]["name"], "张三");
    assert_eq!(
        body["requester"]["departments"],
        serde_json::json!(["广州研发中心", "万店总部"])
    );
    assert_eq!(body["requester"]["email"], "zhangsan@example.com");
    let body = api(&hidden).await;
    assert_eq!(body["requester"]["userid"], "lisi");
    assert!(body["requester"]["name"].is_null(), "{body}");
}

/// A handler's cut-off card names who asked on its grey line when it fits WeCom's 30
/// characters (the department dropped first, then the name), else the number alone.
#[test]
fn a_handler_card_names_the_requester_when_it_fits() {
    let catalog = crate::reply_limits::catalog();
    let handler = UserId::parse("handler_f").unwrap();
    let desc = |contact: Option<kaitong::requests::Contact>| {
        let mut request = crate::reply_limits::request("电子发票", &[]);
        request.contact = contact;
        let (card, _) = kaitong::notify::request_card(
            catalog.messages(),
            &request,
            &handler,
            (1, 1),
            "",
            false,
        );
        let card = serde_json::to_value(card).unwrap();
        card["main_title"]["desc"].as_str().unwrap().to_owned()
    };
    let contact = |name: &str, department: &str| kaitong::requests::Contact {
        name: name.into(),
        departments: vec![department.into()],
        email: None,
    };
    assert_eq!(desc(None), "KT-20261128-0007");
    assert_eq!(
        desc(Some(contact("张三", "华南销售部"))),
        "KT-20261128-0007 · 张三 · 华南销售部"
    );
    assert_eq!(
        desc(Some(contact("张三", "华南区域大客户销售一部第三小组"))),
        "KT-20261128-0007 · 张三"
    );
    assert_eq!(
        desc(Some(contact(&"长".repeat(20), "部"))),
        "KT-20261128-0007"
    );
}
