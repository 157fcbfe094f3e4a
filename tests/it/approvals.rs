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
