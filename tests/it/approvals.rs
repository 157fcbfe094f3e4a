//! Issue 22: OA tickets as WeCom approvals (审批). An OA-channel request is filed with
//! `oa/applyevent` on the configured template (the simulator keeps what it got); WeCom's
//! `sys_approval_change` callbacks — signed and encrypted, through the real server — complete
//! it when approved and reject it with the approver's comment when rejected, once each however
//! often WeCom repeats them, and the requester hears the comment.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
use kaitong::requests::{FiledForm, Requester, Status};
use kaitong::startup::{Application, Parts};

use crate::harness::{self, Backend, TestApp};

const TEMPLATE: &str = "3TkaH5KFbrG9heEQWLJjhgpFwmqAFB4dLEnapaB7aaa";
const CONTROL: &str = "Textarea-1569573760849";

fn oa_form(id: &str, user: &str) -> FiledForm {
    FiledForm {
        form_id: id.to_owned(),
        service: ServiceId(1),
        service_name: "续费充值单量".into(),
        team: Team::Ops,
        routing: FilingRoute::OaTicket,
        window: Window::Custom("运维在 OA 工单上处理".into()),
        answers: Answers::new(),
        summary: vec![("卖家账号".into(), format!("shop_{user}"))],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(user).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

/// Posts WeCom's approval-change callback; the server answers 200 with an empty body.
async fn approval_callback(app: &TestApp, xml: &str) {
    let cb = app.app_peer.app_callback(xml, &app.agent_id()).unwrap();
    let (status, body) = app.post("/wecom/app", &cb.query, cb.body).await;
    assert_eq!((status, body.as_str()), (200, ""), "{body}");
}

#[tokio::test]
async fn an_oa_ticket_filed_as_an_approval_is_completed_and_rejected_by_its_callbacks_once_each() {
    harness::capture_logs();
    let mut settings = harness::test_settings();
    let sim = harness::wecom_simulator(&settings).await;
    sim.set_per_user_minute_limit(None);
    sim.add_approval_template(TEMPLATE);
    settings.wecom.api_base = sim.base_url();
    settings.handoff.oa_approval_template_id = TEMPLATE.into();
    settings.handoff.oa_approval_control_id = CONTROL.into();
    // The test sends what the outbox holds itself.
    settings.notify.enabled = false;
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let served = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = Application::build_from(&settings, served).await.unwrap();
    let app = TestApp::serve(app, settings.clone(), Arc::clone(&store), dir);
    let now = || -> DateTime<Utc> { Utc::now() };

    let approved = parts
        .ledger
        .file(oa_form("ap1", "olga"), now())
        .await
        .unwrap()
        .id;
    let rejected = parts
        .ledger
        .file(oa_form("ap2", "oleg"), now())
        .await
        .unwrap()
        .id;
    let report = parts
        .outbox
        .run_pass(&parts.transports, now())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let filed = sim.approvals();
    assert_eq!(filed.len(), 2, "{filed:?}");
    let sp_no = |id: &RequestId, user: &str| {
        let approval = filed
            .iter()
            .find(|a| a.body.to_string().contains(id.as_str()))
            .unwrap();
        assert_eq!(approval.creator, user, "filed as the requester");
        assert_eq!(approval.template_id, TEMPLATE);
        assert_eq!(approval.body["use_template_approver"], 1);
        let content = &approval.body["apply_data"]["contents"][0];
        assert_eq!(content["id"], CONTROL);
        let text = content["value"]["text"].as_str().unwrap();
        assert!(
            text.contains("续费充值单量") && text.contains(&format!("卖家账号: shop_{user}")),
            "{text}"
        );
        approval.sp_no.clone()
    };
    let (sp_approved, sp_rejected) = (sp_no(&approved, "olga"), sp_no(&rejected, "oleg"));
    // The approval's number is the request's ticket number.
    let ticket = parts
        .ledger
        .get(&approved)
        .await
        .unwrap()
        .unwrap()
        .external_ticket;
    assert_eq!(
        ticket.map(|t| (t.number, t.by)),
        Some((sp_approved.clone(), "企业微信审批".to_owned()))
    );
    // Sent means filed: another pass files nothing more.
    parts
        .outbox
        .run_pass(&parts.transports, now())
        .await
        .unwrap();
    assert_eq!(sim.approvals().len(), 2);

    // Approved: done, once, however often WeCom repeats the callback.
    let xml = sim.approval_change_xml(&sp_approved, 2, "ops_lead", "已开库", 1_700_000_100);
    for _ in 0..3 {
        approval_callback(&app, &xml).await;
    }
    let request = parts.ledger.get(&approved).await.unwrap().unwrap();
    assert_eq!(request.status(), Status::Done);
    assert_eq!(request.history.len(), 2, "{:?}", request.history);
    assert_eq!(request.history[1].by, "审批:ops_lead");
    assert_eq!(request.history[1].note.as_deref(), Some("已开库"));

    // Rejected: with the approver's comment as the reason the requester reads.
    let xml = sim.approval_change_xml(
        &sp_rejected,
        3,
        "ops_lead",
        "单量超出本月额度，请先续费",
        1_700_000_200,
    );
    approval_callback(&app, &xml).await;
    approval_callback(&app, &xml).await;
    let request = parts.ledger.get(&rejected).await.unwrap().unwrap();
    assert_eq!(request.status(), Status::Rejected);
    assert_eq!(request.history.len(), 2, "{:?}", request.history);
    assert_eq!(
        request.history[1].note.as_deref(),
        Some("单量超出本月额度，请先续费")
    );

    parts
        .outbox
        .run_pass(&parts.transports, now())
        .await
        .unwrap();
    let to = |user: &str| {
        sim.sent_messages()
            .into_iter()
            .filter(|m| m.touser == vec![user.to_owned()])
            .collect::<Vec<_>>()
    };
    let oleg = to("oleg");
    assert_eq!(oleg.len(), 1, "{oleg:?}");
    assert!(
        oleg[0].content.contains("单量超出本月额度，请先续费"),
        "{}",
        oleg[0].content
    );
    assert_eq!(to("olga").len(), 1, "the completion, once");

    // A later change of a decided approval (revoked after approval) moves nothing; an
    // approval that is not ours is ignored; both answered 200.
    let revoked = sim.approval_change_xml(&sp_approved, 6, "olga", "", 1_700_000_300);
    approval_callback(&app, &revoked).await;
    assert_eq!(
        parts.ledger.get(&approved).await.unwrap().unwrap().status(),
        Status::Done
    );
    let stranger = sim.approval_change_xml("209901010001", 2, "ops_lead", "", 1_700_000_400);
    approval_callback(&app, &stranger).await;
    assert!(harness::captured_logs().contains("approval change for no request of ours"));
}

/// Issue 22: a new OA ticket is announced in WeCom to the handlers of its team (with a WeCom
/// userid), once; handlers of other teams and requests of other channels are not.
#[tokio::test]
async fn a_new_oa_ticket_is_announced_to_its_teams_handlers_in_wecom_once() {
    use kaitong::config::HandlerAccountSettings;
    use kaitong::requests::token_hash;
    let mut settings = harness::test_settings();
    let sim = harness::wecom_simulator(&settings).await;
    sim.set_per_user_minute_limit(None);
    settings.wecom.api_base = sim.base_url();
    settings.console.public_url = "https://kt.example.com".into();
    let account = |name: &str, team: &str, wecom: &str| HandlerAccountSettings {
        name: name.into(),
        team: team.into(),
        token_sha256: token_hash(&format!("token-{name}")),
        wecom_userid: wecom.into(),
    };
    settings.handlers.accounts = vec![
        account("运维-小王", "ops", "ops_wang"),
        account("职能-小李", "functional", "func_li"),
    ];
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let oa = parts
        .ledger
        .file(oa_form("an1", "olga"), Utc::now())
        .await
        .unwrap()
        .id;
    // Filing the same form again announces nothing more.
    parts
        .ledger
        .file(oa_form("an1", "olga"), Utc::now())
        .await
        .unwrap();
    let mut batch = oa_form("an2", "paul");
    batch.routing = FilingRoute::ResourcePlatform;
    batch.team = Team::Ops;
    parts.ledger.file(batch, Utc::now()).await.unwrap();
    parts
        .outbox
        .run_pass(&parts.transports, Utc::now())
        .await
        .unwrap();
    let sent = sim.sent_messages();
    let to_ops: Vec<_> = sent
        .iter()
        .filter(|m| m.touser == vec!["ops_wang".to_owned()])
        .collect();
    assert_eq!(to_ops.len(), 1, "{sent:?}");
    let text = &to_ops[0].content;
    assert!(
        text.contains(&format!("新的 OA 工单待处理: {oa} #1 续费充值单量"))
            && text.contains("申请人: olga")
            && text.contains("卖家账号: shop_olga")
            && text.contains(&format!("https://kt.example.com/console/requests/{oa}")),
        "{text}"
    );
    assert!(
        sent.iter().all(|m| m.touser != vec!["func_li".to_owned()]),
        "another team's handler is not told: {sent:?}"
    );
    // The announcement is in the request's history.
    let request = parts.ledger.get(&oa).await.unwrap().unwrap();
    assert!(
        request.deliveries.iter().any(|d| d.to == "ops_wang"),
        "{:?}",
        request.deliveries
    );
}

/// Issue 22: the request page and the API say where each request's hand-off stands —
/// delivered (when), waiting (how often it failed, why), not configured here — and carry the
/// handling side's ticket number a handler sets (console form or API; noted in the trail).
#[tokio::test]
async fn the_request_page_and_api_show_the_hand_off_state_and_the_ticket_number_handlers_set() {
    use kaitong::console::{ConsoleState, LoginThrottle, router};
    let platform = crate::handoff::Receiver::start().await;
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = harness::test_settings();
    let sim = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    settings.handoff.platform_webhook_url = platform.url.clone();
    settings.handoff.smtp_url = format!("smtp://127.0.0.1:{refused_port}").into();
    let (store, _dir) = harness::fresh_store(Backend::Embedded);
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let oa = parts
        .ledger
        .file(oa_form("hs1", "olga"), Utc::now())
        .await
        .unwrap()
        .id;
    let mut mail = oa_form("hs2", "mia");
    mail.service = ServiceId(4);
    mail.service_name = "旗舰版增值服务".into();
    mail.team = Team::Mailbox;
    mail.routing = FilingRoute::Email {
        address: Some("ops@example.com".into()),
    };
    let mail = parts.ledger.file(mail, Utc::now()).await.unwrap().id;
    let mut batch = oa_form("hs3", "paul");
    batch.routing = FilingRoute::ResourcePlatform;
    let batch = parts.ledger.file(batch, Utc::now()).await.unwrap().id;
    parts
        .outbox
        .run_pass(&parts.transports, Utc::now())
        .await
        .unwrap();

    let state = ConsoleState {
        desk: parts.desk.clone(),
        directory: parts.handlers.clone(),
        store: Arc::clone(&store),
        outbox: parts.outbox.clone(),
        schedule: parts.schedule,
        login_throttle: Arc::new(LoginThrottle::new(
            1000,
            std::time::Duration::from_millis(1),
        )),
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
    const TOKEN: &str = "demo-handler-token";
    let api = |id: &RequestId| {
        let request = http
            .get(url(&format!("/api/v1/requests/{id}")))
            .bearer_auth(TOKEN);
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
    assert_eq!(
        api(&oa).await["handoff"],
        serde_json::json!({ "state": "not_configured" })
    );
    let waiting = api(&mail).await["handoff"].clone();
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert_eq!(waiting["attempts"], 1);
    assert!(
        waiting["error"].as_str().unwrap().contains("refused"),
        "{waiting}"
    );
    let delivered = api(&batch).await["handoff"].clone();
    assert_eq!(delivered["state"], "delivered", "{delivered}");
    assert!(delivered["at"].as_str().unwrap().ends_with('Z'));

    // The ticket number, through the API: refused when empty or too long, kept otherwise.
    let post_ticket = |ticket: serde_json::Value| {
        let request = http
            .post(url(&format!("/api/v1/requests/{oa}/ticket")))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "ticket": ticket }));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(post_ticket(serde_json::json!("  ")).await.status(), 422);
    assert_eq!(
        post_ticket(serde_json::json!("x".repeat(65)))
            .await
            .status(),
        422
    );
    let saved = post_ticket(serde_json::json!(" OA-2026-0042 ")).await;
    assert_eq!(saved.status(), 200);
    let body = api(&oa).await;
    assert_eq!(body["external_ticket"]["number"], "OA-2026-0042", "{body}");
    assert_eq!(body["external_ticket"]["by"], "demo-handler");
    assert!(
        body["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["text"] == "工单号: OA-2026-0042"),
        "{body}"
    );

    // The console's request page: the states in words, and the ticket form.
    let login = http
        .post(url("/console/login"))
        .form(&[("token", TOKEN)])
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
    let page = |id: &RequestId| {
        let request = http
            .get(url(&format!("/console/requests/{id}")))
            .header("cookie", &cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let oa_page = page(&oa).await;
    assert!(
        oa_page.contains("未配置") && oa_page.contains("OA-2026-0042"),
        "{oa_page}"
    );
    assert!(page(&mail).await.contains("排队重试中（已失败 1 次"));
    assert!(page(&batch).await.contains("已送达"));
    let marker = "name=\"csrf\" value=\"";
    let start = oa_page.find(marker).unwrap() + marker.len();
    let csrf = &oa_page[start..start + 64];
    let posted = http
        .post(url(&format!("/console/requests/{batch}/ticket")))
        .header("cookie", &cookie)
        .header("origin", url(""))
        .form(&[("csrf", csrf), ("ticket", "PLAT-7")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303, "{}", posted.text().await.unwrap());
    let batch_page = page(&batch).await;
    assert!(batch_page.contains("PLAT-7"), "{batch_page}");
}
