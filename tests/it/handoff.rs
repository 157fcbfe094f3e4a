//! Hand-offs end to end: a request filed through the watched ledger reaches a test double of
//! the request platform's webhook (signed, once, retried after 503s) and a real SMTP server on
//! loopback (aiosmtpd, with the attachment), both through the durable outbox on both stores.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use kaitong::catalog::{Answers, FieldKey, FieldValue, FilingRoute, Team, Window};
use kaitong::config::HandoffSection;
use kaitong::domain::{ChannelKind, Conversation, ServiceId, UserId};
use kaitong::notify::handoff::{self, HandoffWatcher, WebhookEvent, verify_signature};
use kaitong::notify::{DeliveryKind, Outbox, RetryPolicy, Transport};
use kaitong::requests::attachments;
use kaitong::requests::{
    BatchSchedule, FiledForm, Ledger, Request, Requester, Status, StoreLedger, WatchedLedger,
    Watcher,
};
use kaitong::store::Store;

use crate::harness::{BACKENDS, Backend, fresh_store};

const PLATFORM_SECRET: &str = "platform-secret-for-tests";
const OA_SECRET: &str = "oa-secret-for-tests";

fn t0() -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// `t0` plus `n` hours: far past any test backoff, so each pass finds retried items due.
fn later(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::hours(n)
}

fn form(form_id: &str, service: u16, name: &str, routing: FilingRoute) -> FiledForm {
    FiledForm {
        form_id: form_id.to_owned(),
        service: ServiceId(service),
        service_name: name.into(),
        team: Team::Ops,
        routing,
        window: Window::DailyBatch,
        answers: Answers::new(),
        summary: vec![
            ("卖家账号".into(), "abc".into()),
            ("AppSecret".into(), "****9f3k".into()),
        ],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse("zhangsan").unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

fn section(platform: &str, oa: &str, smtp: &str) -> HandoffSection {
    HandoffSection {
        platform_webhook_url: platform.into(),
        platform_webhook_secret: PLATFORM_SECRET.into(),
        oa_webhook_url: oa.into(),
        oa_webhook_secret: OA_SECRET.into(),
        smtp_url: smtp.into(),
        mail_from: "开通助手 <kaitong@example.com>".into(),
        oa_approval_template_id: String::new(),
        oa_approval_control_id: String::new(),
    }
}

/// The pieces start-up wires together, on one store.
struct Rig {
    store: Arc<dyn Store>,
    outbox: Outbox,
    watcher: Arc<HandoffWatcher>,
    ledger: WatchedLedger,
    transports: HashMap<DeliveryKind, Arc<dyn Transport>>,
    _dir: Option<tempfile::TempDir>,
}

fn rig(backend: Backend, section: &HandoffSection) -> Rig {
    let (store, dir) = fresh_store(backend);
    let outbox = Outbox::new(Arc::clone(&store)).with_policy(RetryPolicy {
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(10),
        give_up_after: Duration::from_secs(4 * 3600),
    });
    let watcher = Arc::new(HandoffWatcher::new(outbox.clone(), section));
    let inner = Arc::new(StoreLedger::new(
        Arc::clone(&store),
        BatchSchedule::default(),
    ));
    let ledger = WatchedLedger::new(inner, vec![watcher.clone() as Arc<dyn Watcher>]);
    let transports = handoff::transports(section, Arc::clone(&store))
        .unwrap()
        .into_iter()
        .map(|t| (t.kind(), t))
        .collect();
    Rig {
        store,
        outbox,
        watcher,
        ledger,
        transports,
        _dir: dir,
    }
}

impl Rig {
    async fn file(&self, form: FiledForm) -> Request {
        let receipt = self.ledger.file(form, t0()).await.unwrap();
        self.ledger.get(&receipt.id).await.unwrap().unwrap()
    }

    async fn pass(&self, hours: i64) -> kaitong::notify::PassReport {
        self.outbox
            .run_pass(&self.transports, later(hours))
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// A test double of the request platform: records every POST, fails on demand.

#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn event(&self) -> WebhookEvent {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn signed_with(&self, secret: &str) -> bool {
        verify_signature(
            secret,
            &self.header("x-kaitong-timestamp"),
            &self.body,
            &self.header("x-kaitong-signature"),
        )
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// Answer this many requests with `fail_status` before accepting.
    fail_next: u32,
    fail_status: u16,
    retry_after: Option<String>,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut script = script.lock().unwrap();
    let (status, retry_after) = if script.fail_next > 0 {
        script.fail_next -= 1;
        (script.fail_status, script.retry_after.clone())
    } else {
        (200, None)
    };
    script.received.push(Received {
        headers,
        body: body.to_vec(),
        answered: status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(v) => (code, [("retry-after", v)], "try later").into_response(),
        None => (code, if status == 200 { "ok" } else { "no" }).into_response(),
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook?token=not-for-logs"),
            script,
            task,
        }
    }

    fn fail(&self, times: u32, status: u16, retry_after: Option<&str>) {
        let mut s = self.script.lock().unwrap();
        s.fail_next = times;
        s.fail_status = status;
        s.retry_after = retry_after.map(str::to_owned);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook tests.

#[tokio::test]
async fn a_filed_request_is_posted_once_signed_with_its_fields() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        let rig = rig(backend, &section(&platform.url, "", ""));
        let request = rig
            .file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        let key = format!("handoff:webhook:{}", request.id);
        let pending = rig.outbox.pending(DeliveryKind::Webhook).await.unwrap();
        assert_eq!(pending.len(), 1, "{backend:?}");
        assert_eq!(pending[0].id, key);

        let report = rig.pass(0).await;
        assert_eq!(report.sent, 1, "{backend:?} {report:?}");
        let got = platform.received();
        assert_eq!(got.len(), 1);
        let hit = &got[0];
        assert!(hit.signed_with(PLATFORM_SECRET), "signature must verify");
        assert!(!hit.signed_with(OA_SECRET));
        assert_eq!(hit.header("content-type"), "application/json");
        assert_eq!(hit.header("x-kaitong-idempotency-key"), key);
        let ts: i64 = hit.header("x-kaitong-timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - ts).abs() < 60);

        let json = hit.json();
        assert_eq!(json["event"], "request.filed");
        assert_eq!(json["idempotency_key"], key.as_str());
        let r = &json["request"];
        assert_eq!(r["id"], request.id.as_str());
        assert_eq!(r["service"]["id"], 7);
        assert_eq!(r["service"]["name"], "电子发票");
        assert_eq!(r["team"], "ops");
        assert_eq!(r["routing"]["kind"], "resource_platform");
        assert_eq!(r["batch_day"], "2026-11-28");
        assert_eq!(r["status"], "submitted");
        assert_eq!(r["version"], 1);
        assert_eq!(r["requester"]["userid"], "zhangsan");
        assert_eq!(r["requester"]["channel"], "app");
        assert_eq!(
            r["submitted_at"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap(),
            t0()
        );
        assert_eq!(
            r["fields"],
            serde_json::json!([
                {"label": "卖家账号", "value": "abc"},
                {"label": "AppSecret", "value": "****9f3k"},
            ])
        );

        // Delivered means done: later passes send nothing more.
        assert_eq!(rig.pass(1).await.sent, 0);
        assert_eq!(rig.pass(2).await.sent, 0);
        assert_eq!(platform.received().len(), 1);
        assert!(rig.outbox.all_pending().await.unwrap().is_empty());
        assert!(rig.outbox.failed().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn service_unavailable_is_retried_honouring_retry_after_then_delivered_once() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        platform.fail(2, 503, Some("120"));
        let rig = rig(backend, &section(&platform.url, "", ""));
        let request = rig
            .file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;

        let first = rig.pass(0).await;
        assert_eq!(first.retried, 1, "{backend:?} {first:?}");
        let pending = rig.outbox.pending(DeliveryKind::Webhook).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].attempts, 1);
        assert_eq!(pending[0].due, later(0) + chrono::Duration::seconds(120));
        assert!(
            pending[0].last_error.as_deref().unwrap().contains("503"),
            "{:?}",
            pending[0].last_error
        );
        // The error names the host only, never the path or its token.
        assert!(!pending[0].last_error.as_deref().unwrap().contains("token"));

        // Not due yet at the same instant: nothing is sent.
        let early = rig
            .outbox
            .run_pass(&rig.transports, later(0) + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(early, kaitong::notify::PassReport::default());
        assert_eq!(platform.received().len(), 1);

        assert_eq!(rig.pass(1).await.retried, 1);
        assert_eq!(rig.pass(2).await.sent, 1);
        assert_eq!(rig.pass(3).await.sent, 0);

        let got = platform.received();
        assert_eq!(
            got.iter().map(|r| r.answered).collect::<Vec<_>>(),
            vec![503, 503, 200]
        );
        let key = format!("handoff:webhook:{}", request.id);
        for r in &got {
            assert_eq!(r.header("x-kaitong-idempotency-key"), key);
            assert!(r.signed_with(PLATFORM_SECRET));
        }
        assert_eq!(platform.accepted().len(), 1);
        assert!(rig.outbox.all_pending().await.unwrap().is_empty());
        assert!(rig.outbox.failed().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_client_error_is_permanent_and_listed_as_failed() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        platform.fail(1, 400, None);
        let rig = rig(backend, &section(&platform.url, "", ""));
        let request = rig
            .file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        let report = rig.pass(0).await;
        assert_eq!(report.failed, 1, "{backend:?} {report:?}");
        let failed = rig.outbox.failed().await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id, format!("handoff:webhook:{}", request.id));
        assert!(failed[0].last_error.as_deref().unwrap().contains("400"));
        assert!(rig.outbox.all_pending().await.unwrap().is_empty());
        assert_eq!(rig.pass(1).await, kaitong::notify::PassReport::default());
        assert_eq!(platform.received().len(), 1);
    }
}

#[tokio::test]
async fn an_unreachable_platform_is_retried_not_dropped() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let rig = rig(Backend::Embedded, &section(&url, "", ""));
    rig.file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
        .await;
    for hour in 0..4 {
        assert_eq!(rig.pass(hour).await.retried, 1);
    }
    // Four hours after it was queued the policy gives up: it goes to failed(), not away.
    assert_eq!(rig.pass(4).await.failed, 1);
    let failed = rig.outbox.failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    let error = failed[0].last_error.as_deref().unwrap();
    assert!(error.contains("refused"), "the cause is named: {error}");
}

#[tokio::test]
async fn a_platform_that_never_answers_times_out_and_is_retried() {
    // Accepts connections and reads nothing back: only the transport's own timeout ends it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let url = format!("http://{addr}/hook");
    let rig = rig(Backend::Embedded, &section(&url, "", ""));
    rig.file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
        .await;
    let started = Instant::now();
    assert_eq!(rig.pass(0).await.retried, 1);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "the 10 s total timeout should end the attempt, took {took:?}"
    );
    let pending = rig.outbox.pending(DeliveryKind::Webhook).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].last_error.is_some());
    hold.abort();
}

#[tokio::test]
async fn a_store_outage_while_queueing_never_fails_the_filing() {
    // File for real, then tell a watcher whose outbox sits on a Redis nobody runs.
    let rig = rig(
        Backend::Embedded,
        &section("http://127.0.0.1:9/hook", "", ""),
    );
    let request = rig
        .file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead: Arc<dyn Store> = Arc::new(
        kaitong::store::RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "x:").unwrap(),
    );
    let watcher = HandoffWatcher::new(
        Outbox::new(dead),
        &section("http://127.0.0.1:9/hook", "", ""),
    );
    // Returns the error (logged, and reported so a filing can say it failed) instead of
    // panicking or hanging.
    let outcome = tokio::time::timeout(Duration::from_secs(30), watcher.changed(&request, t0()))
        .await
        .unwrap();
    assert!(outcome.is_err());
}

#[tokio::test]
async fn filing_the_same_form_twice_queues_and_sends_once() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        let rig = rig(backend, &section(&platform.url, "", ""));
        let first = rig
            .file(form("same", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        let second = rig
            .file(form("same", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        assert_eq!(first.id, second.id);
        // Even a watcher told twice queues once: the outbox is idempotent by key.
        rig.watcher.changed(&first, t0()).await.unwrap();
        assert_eq!(
            rig.outbox
                .pending(DeliveryKind::Webhook)
                .await
                .unwrap()
                .len(),
            1,
            "{backend:?}"
        );
        assert_eq!(rig.pass(0).await.sent, 1);
        // ... and after delivery too.
        rig.watcher.changed(&first, later(1)).await.unwrap();
        assert_eq!(rig.pass(2).await.sent, 0);
        assert_eq!(platform.received().len(), 1);
    }
}

#[tokio::test]
async fn a_status_change_sends_a_status_event() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        let rig = rig(backend, &section(&platform.url, "", ""));
        let request = rig
            .file(form("f1", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        assert_eq!(rig.pass(0).await.sent, 1);
        rig.ledger
            .transition(
                &request.id,
                Status::Processing,
                "ops1",
                Some("开始处理".into()),
                later(1),
            )
            .await
            .unwrap();
        rig.ledger
            .transition(&request.id, Status::Done, "ops1", None, later(2))
            .await
            .unwrap();
        let report = rig.pass(3).await;
        assert_eq!(report.sent, 2, "{backend:?} {report:?}");
        let got = platform.received();
        assert_eq!(got.len(), 3);
        let mut statuses: Vec<(String, String, usize)> = got[1..]
            .iter()
            .map(|r| {
                assert!(r.signed_with(PLATFORM_SECRET));
                let event = r.event();
                assert_eq!(event.event, "request.status");
                assert_eq!(event.idempotency_key, r.header("x-kaitong-idempotency-key"));
                assert_eq!(event.request.id, request.id.as_str());
                (
                    event.request.status.clone(),
                    event.idempotency_key,
                    event.request.version,
                )
            })
            .collect();
        statuses.sort();
        assert_eq!(
            statuses,
            vec![
                (
                    "done".to_owned(),
                    format!("handoff:webhook:{}:done", request.id),
                    3
                ),
                (
                    "processing".to_owned(),
                    format!("handoff:webhook:{}:processing", request.id),
                    2
                ),
            ]
        );
        let processing = got[1..]
            .iter()
            .map(Received::event)
            .find(|e| e.request.status == "processing")
            .unwrap();
        assert_eq!(processing.request.history[1].by, "ops1");
        assert_eq!(
            processing.request.history[1].note.as_deref(),
            Some("开始处理")
        );
    }
}

#[tokio::test]
async fn nothing_is_queued_when_no_hand_off_is_configured() {
    for backend in BACKENDS {
        let rig = rig(backend, &section("", "", ""));
        assert!(rig.transports.is_empty());
        let request = rig
            .file(form("f1", 12, "OA 服务", FilingRoute::OaTicket))
            .await;
        rig.file(form(
            "f2",
            4,
            "邮件服务",
            FilingRoute::Email {
                address: Some("x@example.com".into()),
            },
        ))
        .await;
        rig.ledger
            .transition(&request.id, Status::Processing, "ops1", None, later(1))
            .await
            .unwrap();
        assert!(
            rig.outbox.all_pending().await.unwrap().is_empty(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn oa_routed_services_also_go_to_the_oa_webhook() {
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        let oa = Receiver::start().await;
        let rig = rig(backend, &section(&platform.url, &oa.url, ""));
        let oa_request = rig
            .file(form("f1", 12, "OA 服务", FilingRoute::OaTicket))
            .await;
        rig.file(form("f2", 7, "电子发票", FilingRoute::ResourcePlatform))
            .await;
        let report = rig.pass(0).await;
        assert_eq!(report.sent, 3, "{backend:?} {report:?}");

        let to_oa = oa.received();
        assert_eq!(to_oa.len(), 1, "only the OA-routed request goes to OA");
        assert!(to_oa[0].signed_with(OA_SECRET));
        assert!(!to_oa[0].signed_with(PLATFORM_SECRET));
        assert_eq!(
            to_oa[0].header("x-kaitong-idempotency-key"),
            format!("handoff:oa:{}", oa_request.id)
        );
        let event = to_oa[0].event();
        assert_eq!(event.event, "request.filed");
        assert_eq!(event.request.id, oa_request.id.as_str());
        assert_eq!(to_oa[0].json()["request"]["routing"]["kind"], "oa_ticket");

        // The platform, the system of record, has both.
        let mut on_platform: Vec<String> = platform
            .received()
            .iter()
            .map(|r| r.event().request.service.id.to_string())
            .collect();
        on_platform.sort();
        assert_eq!(on_platform, vec!["12", "7"]);

        // Status updates go to the platform only.
        rig.ledger
            .transition(&oa_request.id, Status::Processing, "ops1", None, later(1))
            .await
            .unwrap();
        assert_eq!(rig.pass(2).await.sent, 1);
        assert_eq!(oa.received().len(), 1);
        assert_eq!(platform.received().len(), 3);
    }
}

// ---------------------------------------------------------------------------------------------
// Email through a real SMTP server on loopback (aiosmtpd).

/// The aiosmtpd handler: refuses `reject*@` with 550 and `busy*@` with 451 (to see how both
/// are classified), and writes each accepted message to OUTDIR as N.eml plus N.json (the
/// envelope), the JSON last so its presence means the message is complete.
const SINK_PY: &str = r#"
import itertools, json, os

class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.seq = itertools.count()

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("Sink takes OUTDIR")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 no such mailbox"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.seq)
        base = os.path.join(self.outdir, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted"
"#;

/// Decodes a message with Python's own email package (RFC 2047 subjects, RFC 2231 file names,
/// transfer encodings), so the test checks what a mail client shows, not lettre's encoding.
const DECODE_PY: &str = r#"
import base64, email, email.policy, json, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
body = msg.get_body(preferencelist=("plain",))
print(json.dumps({
    "subject": str(msg["subject"]),
    "from": str(msg["from"]),
    "to": str(msg["to"]),
    "reply_to": str(msg["reply-to"]) if msg["reply-to"] else None,
    "message_id": str(msg["message-id"]),
    "body": body.get_content() if body is not None else None,
    "attachments": [
        {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "data": base64.b64encode(part.get_payload(decode=True)).decode(),
        }
        for part in msg.iter_attachments()
    ],
}, ensure_ascii=False))
"#;

fn python() -> String {
    std::env::var("KAITONG_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// A running aiosmtpd; killed when dropped, also when the test panics.
pub(crate) struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    pub(crate) fn start() -> Self {
        let py = python();
        let probe = Command::new(&py)
            .args(["-c", "import aiosmtpd; print(aiosmtpd.__version__)"])
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "the email hand-off test needs a real SMTP server: `{py} -m aiosmtpd` is not \
                 available ({other:?}). Install it with `python3 -m pip install aiosmtpd` \
                 (or point KAITONG_TEST_PYTHON at a python that has it)."
            ),
        }
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        std::fs::write(dir.path().join("kt_sink.py"), SINK_PY).unwrap();
        std::fs::write(dir.path().join("decode.py"), DECODE_PY).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new(&py)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "kt_sink.Sink"])
            .arg(&mail)
            .env("PYTHONPATH", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start `{py} -m aiosmtpd`: {e}"));
        let mut sink = Self { child, port, dir };
        sink.wait_until_listening();
        sink
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "aiosmtpd exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on 127.0.0.1:{} within 20 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Messages received so far, in order: (envelope, decoded message).
    pub(crate) fn messages(&self) -> Vec<(serde_json::Value, serde_json::Value)> {
        let mut out = Vec::new();
        for n in 0.. {
            let envelope = self.mail_dir().join(format!("{n}.json"));
            if !envelope.exists() {
                break;
            }
            let envelope: serde_json::Value =
                serde_json::from_slice(&std::fs::read(envelope).unwrap()).unwrap();
            out.push((
                envelope,
                self.decode(&self.mail_dir().join(format!("{n}.eml"))),
            ));
        }
        out
    }

    fn decode(&self, eml: &Path) -> serde_json::Value {
        let out = Command::new(python())
            .arg(self.dir.path().join("decode.py"))
            .arg(eml)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "decode failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

const MAILBOX: &str = "qijianbanzengzhi@wangdian.cn";

fn email_form(form_id: &str, address: &str) -> FiledForm {
    let mut form = form(
        form_id,
        4,
        "旗舰版增值服务",
        FilingRoute::Email {
            address: Some(address.into()),
        },
    );
    form.team = Team::Mailbox;
    form.answers.insert(
        FieldKey::parse("quote_file").unwrap(),
        FieldValue::Attachment {
            file_name: "报价单 2026.xlsx".into(),
            media_id: "MEDIA_1".into(),
        },
    );
    form.summary
        .push(("报价单".into(), "报价单 2026.xlsx".into()));
    form
}

/// Bytes no text encoding would survive unchanged.
fn attachment_bytes() -> Vec<u8> {
    let mut bytes = b"PK\x03\x04 fake xlsx \r\n\x00\xff".to_vec();
    bytes.extend((0..=255u8).cycle().take(5000));
    bytes
}

#[tokio::test]
async fn email_routed_requests_are_mailed_with_their_attachment() {
    let sink = SmtpSink::start();
    let mut seen = 0;
    for backend in BACKENDS {
        let platform = Receiver::start().await;
        let rig = rig(backend, &section(&platform.url, "", &sink.url()));
        let form = email_form(&format!("mail-{backend:?}"), MAILBOX);
        attachments::store_blob(
            rig.store.as_ref(),
            &form.form_id,
            "quote_file",
            &attachment_bytes(),
        )
        .await
        .unwrap();
        let request = rig.file(form).await;
        let report = rig.pass(0).await;
        assert_eq!(report.sent, 2, "{backend:?} {report:?}: webhook and email");
        assert!(rig.outbox.all_pending().await.unwrap().is_empty());

        let messages = sink.messages();
        assert_eq!(
            messages.len(),
            seen + 1,
            "{backend:?}: one message per request"
        );
        let (envelope, message) = &messages[seen];
        seen += 1;
        assert_eq!(envelope["rcpt_tos"], serde_json::json!([MAILBOX]));
        assert_eq!(envelope["mail_from"], "kaitong@example.com");
        assert_eq!(message["to"], MAILBOX);
        assert!(
            message["from"]
                .as_str()
                .unwrap()
                .contains("kaitong@example.com"),
            "{message}"
        );
        assert_eq!(
            message["subject"],
            format!("[开通申请] {} #4 旗舰版增值服务 (卖家账号 abc)", request.id)
        );
        assert_eq!(
            message["message_id"],
            format!("<handoff.email.{}@kaitong>", request.id)
        );
        let body = message["body"].as_str().unwrap();
        for needle in [
            format!("申请单号: {}", request.id),
            "服务: #4 旗舰版增值服务".to_owned(),
            "处理人: 旗舰版增值邮箱".to_owned(),
            "批次日: 2026-11-28".to_owned(),
            "提交时间: 2026-11-28 10:00 (北京时间)".to_owned(),
            "申请人: zhangsan (企业微信自建应用)".to_owned(),
            "卖家账号: abc".to_owned(),
            "AppSecret: ****9f3k".to_owned(),
            "报价单: 报价单 2026.xlsx".to_owned(),
        ] {
            assert!(body.contains(&needle), "body lacks {needle:?}:\n{body}");
        }
        let attachments = message["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1, "{message}");
        assert_eq!(attachments[0]["filename"], "报价单 2026.xlsx");
        assert_eq!(
            attachments[0]["content_type"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(attachments[0]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, attachment_bytes());

        // Sent means sent: another pass mails nothing more.
        assert_eq!(rig.pass(1).await.sent, 0);
        assert_eq!(sink.messages().len(), seen);
    }
}

#[tokio::test]
async fn smtp_refusals_are_failed_and_deferrals_retried() {
    let sink = SmtpSink::start();
    let rig = rig(Backend::Embedded, &section("", "", &sink.url()));
    let rejected = rig
        .file(email_form("rejected", "reject-me@example.com"))
        .await;
    let deferred = rig.file(email_form("deferred", "busy@example.com")).await;
    // No attachment bytes were kept for these forms: the mail says so instead of blocking.
    let report = rig.pass(0).await;
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.retried, 1, "{report:?}");
    let failed = rig.outbox.failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, format!("handoff:email:{}", rejected.id));
    assert!(failed[0].last_error.as_deref().unwrap().contains("550"));
    let pending = rig.outbox.pending(DeliveryKind::Email).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, format!("handoff:email:{}", deferred.id));
    assert!(pending[0].last_error.as_deref().unwrap().contains("451"));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_missing_attachment_is_named_in_the_mail_instead_of_holding_it_up() {
    let sink = SmtpSink::start();
    let rig = rig(Backend::Embedded, &section("", "", &sink.url()));
    rig.file(email_form("no-bytes", MAILBOX)).await;
    assert_eq!(rig.pass(0).await.sent, 1);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let (_, message) = &messages[0];
    assert!(message["attachments"].as_array().unwrap().is_empty());
    let body = message["body"].as_str().unwrap();
    assert!(body.contains("附件「报价单 2026.xlsx」未能找到"), "{body}");
}

/// Issue 12: an e-mail service whose seed row gives no address (#10) is never mailed to a
/// guessed one; the request platform's webhook still carries it, with the address left empty.
#[tokio::test]
async fn an_email_service_without_an_address_queues_no_mail_only_the_platform_webhook() {
    for backend in BACKENDS {
        // Mail is switched on (any SMTP URL): the request itself has nowhere to be mailed.
        let rig = rig(
            backend,
            &section("http://127.0.0.1:9/hook", "", "smtp://127.0.0.1:9"),
        );
        rig.file(form(
            "f-noaddr",
            10,
            "数据迁移",
            FilingRoute::Email { address: None },
        ))
        .await;
        let pending = rig.outbox.all_pending().await.unwrap();
        let kinds: Vec<&str> = pending.iter().map(|i| i.delivery.kind()).collect();
        assert_eq!(kinds, vec!["webhook"], "{backend:?}");
        assert_eq!(
            pending[0].delivery.payload()["request"]["routing"],
            serde_json::json!({ "kind": "email", "address": null }),
            "{backend:?}"
        );
    }
}

/// Issue 22: OA and e-mail services routed to a hand-off `[handoff]` leaves empty are named at
/// start-up (one log line each) and on the admin listener's `/readyz` (still 200: the bot
/// works, the hand-off does not); the public `/readyz` says only "ready".
#[tokio::test]
async fn an_unconfigured_hand_off_is_warned_about_at_start_up_and_on_readyz() {
    crate::harness::capture_logs();
    let bare =
        crate::harness::TestApp::spawn(Backend::Embedded, crate::harness::RecordingBot::new())
            .await;
    let admin_readyz = |app: &crate::harness::TestApp| {
        let url = format!("http://{}/readyz", app.admin_addr.unwrap());
        let http = app.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, body) = admin_readyz(&bare).await;
    assert_eq!(
        bare.get("/readyz").await,
        (200, "ready".into()),
        "public: no detail"
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("ready\nwarning: "), "{body}");
    assert!(
        body.contains("handoff.oa_webhook_url is empty") && body.contains("#1 "),
        "the OA services by number: {body}"
    );
    assert!(body.contains("handoff.smtp_url is empty"), "{body}");
    assert!(crate::harness::captured_logs().contains("hand-off not configured"));

    let mut settings = crate::harness::test_settings();
    settings.handoff.oa_webhook_url = "https://oa.example.com/hook".into();
    settings.handoff.smtp_url = "smtp://127.0.0.1:2525".into();
    let (store, dir) = fresh_store(Backend::Embedded);
    let configured = crate::harness::TestApp::spawn_with(
        settings,
        store,
        dir,
        crate::harness::RecordingBot::new(),
    )
    .await;
    assert_eq!(admin_readyz(&configured).await, (200, "ready".into()));
}
