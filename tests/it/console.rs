//! The handler console and JSON API over real HTTP, on both stores: sessions and CSRF, the
//! batch page and its filters, escaping, actions, CSV, attachments, deliveries, API codes and
//! team scoping.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kaitong::catalog::{Answers, FieldKey, FieldValue, FilingRoute, Team, Window};
use kaitong::config::HandlerAccountSettings;
use kaitong::console::{ConsoleState, LoginThrottle, router};
use kaitong::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
use kaitong::notify::handoff::email::EmailJob;
use kaitong::notify::{
    Delivery, DeliveryError, DeliveryKind, Notice, Outbox, OutboxItem, RetryPolicy, Transport,
};
use kaitong::requests::attachments;
use kaitong::requests::{
    ADMIN_ACTOR, BatchSchedule, Desk, FiledForm, HandlerDirectory, Ledger, Requester, Status,
    StoreLedger, token_hash,
};
use kaitong::secret::Secret;
use kaitong::store::Store;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};

use crate::harness::{self, BACKENDS, Backend, fresh_store};

const ALL_TOKEN: &str = "boss-token-0123456789";
const OPS_TOKEN: &str = "ops-token-0123456789";
const RND_TOKEN: &str = "rnd-token-0123456789";
/// `admin.token`: every team's rights, recorded as "admin".
const ADMIN_TOKEN: &str = "adm1n-secret-0123456789";

fn account(name: &str, team: &str, token: &str) -> HandlerAccountSettings {
    HandlerAccountSettings {
        name: name.to_owned(),
        team: team.to_owned(),
        token_sha256: token_hash(token),
        wecom_userid: String::new(),
    }
}

struct Console {
    addr: SocketAddr,
    http: reqwest::Client,
    ledger: Arc<dyn Ledger>,
    store: Arc<dyn Store>,
    outbox: Outbox,
    _dir: Option<tempfile::TempDir>,
}

impl Console {
    async fn spawn(backend: Backend) -> Self {
        Self::spawn_throttled(
            backend,
            LoginThrottle::new(1000, std::time::Duration::from_millis(1)),
        )
        .await
    }

    async fn spawn_throttled(backend: Backend, throttle: LoginThrottle) -> Self {
        harness::capture_logs();
        let (store, dir) = fresh_store(backend);
        let schedule = BatchSchedule::default();
        let ledger: Arc<dyn Ledger> = Arc::new(StoreLedger::new(Arc::clone(&store), schedule));
        let outbox = Outbox::new(Arc::clone(&store)).with_policy(RetryPolicy {
            give_up_after: std::time::Duration::ZERO,
            ..RetryPolicy::default()
        });
        let state = ConsoleState {
            desk: Desk::new(Arc::clone(&ledger)),
            directory: HandlerDirectory::new(&[
                account("boss", "all", ALL_TOKEN),
                account("ops1", "ops", OPS_TOKEN),
                account("dev1", "rnd", RND_TOKEN),
            ])
            .with_admin_token(&Secret::from(ADMIN_TOKEN)),
            store: Arc::clone(&store),
            outbox: outbox.clone(),
            schedule,
            login_throttle: Arc::new(throttle),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            addr,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            ledger,
            store,
            outbox,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Files a request straight into the ledger.
    async fn file(
        &self,
        form_id: &str,
        team: Team,
        summary: &[(&str, &str)],
        at: DateTime<Utc>,
    ) -> RequestId {
        self.file_form(form(form_id, team, summary, Answers::new()), at)
            .await
    }

    async fn file_form(&self, form: FiledForm, at: DateTime<Utc>) -> RequestId {
        self.ledger.file(form, at).await.unwrap().id
    }

    async fn status(&self, id: &RequestId) -> Status {
        self.ledger.get(id).await.unwrap().unwrap().status()
    }

    /// Logs in through the form; returns the session (cookie and CSRF token).
    async fn login(&self, token: &str) -> Session {
        let response = self
            .http
            .post(self.url("/console/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response
            .headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = self
            .http
            .get(self.url("/console"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Session {
            cookie,
            set_cookie,
            csrf: csrf_of(&page),
        }
    }

    async fn get(&self, session: Option<&Session>, path: &str) -> (StatusCode, String) {
        let mut request = self.http.get(self.url(path));
        if let Some(session) = session {
            request = request.header("cookie", &session.cookie);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn post(
        &self,
        session: &Session,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("cookie", &session.cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

struct Session {
    cookie: String,
    set_cookie: String,
    csrf: String,
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field on the page") + marker.len();
    page[start..start + 64].to_owned()
}

fn form(form_id: &str, team: Team, summary: &[(&str, &str)], answers: Answers) -> FiledForm {
    FiledForm {
        form_id: form_id.to_owned(),
        service: ServiceId(7),
        service_name: "电子发票".into(),
        team,
        routing: FilingRoute::ResourcePlatform,
        window: Window::DailyBatch,
        answers,
        summary: summary
            .iter()
            .map(|(l, v)| ((*l).to_owned(), (*v).to_owned()))
            .collect(),
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse(&format!("sales-{form_id}")).unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

#[tokio::test]
async fn login_sets_a_strict_cookie_and_keeps_only_hashes_in_the_store() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let response = c.http.get(c.url("/console")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{backend:?}");
        assert_eq!(response.headers()[LOCATION], "/console/login");
        let (status, page) = c.get(None, "/console/login").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("name=\"token\"") && page.contains("name=\"viewport\""));

        let bad = c
            .http
            .post(c.url("/console/login"))
            .form(&[("token", "not-a-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(bad.headers().get(SET_COOKIE).is_none());
        assert!(bad.text().await.unwrap().contains("令牌无效"));

        let session = c.login(ALL_TOKEN).await;
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(
                session.set_cookie.contains(attribute),
                "{}",
                session.set_cookie
            );
        }
        let (status, page) = c.get(Some(&session), "/console").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        assert!(page.contains("boss"));

        // The store knows the session only by the hash of its id, and never the token.
        let raw_id = session.cookie.split_once('=').unwrap().1;
        let sessions = c.store.list_prefix("console:session:", 10).await.unwrap();
        assert_eq!(sessions.len(), 1, "{backend:?}");
        let (key, value) = &sessions[0];
        assert_eq!(key, &format!("console:session:{}", token_hash(raw_id)));
        let value = String::from_utf8_lossy(value);
        assert!(!value.contains(raw_id) && !value.contains(ALL_TOKEN));

        // Logging out needs the CSRF token, then ends the session for good.
        let refused = c.post(&session, "/console/logout", &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let out = c
            .post(&session, "/console/logout", &[("csrf", &session.csrf)])
            .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let (status, _) = c.get(Some(&session), "/console").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend:?}: session ended");
        assert!(
            c.store
                .list_prefix("console:session:", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// Issue 22: the default page is the open queue of every day, oldest first, with age and 逾期;
/// a day's batch is one filter away; search by number, seller account or requester.
#[tokio::test]
async fn the_console_opens_on_the_open_queue_of_any_day_and_filters_and_searches() {
    let c = Console::spawn(Backend::Embedded).await;
    let now = Utc::now();
    let rnd = c.file("b1", Team::Rnd, &[("卖家账号", "acct")], now).await;
    let ops = c.file("b2", Team::Ops, &[("卖家账号", "acct2")], now).await;
    // Two days ago: its batch's done-by time has passed, whatever the time now.
    let older = c
        .file("b3", Team::Ops, &[], now - chrono::Duration::days(2))
        .await;
    let boss = c.login(ALL_TOKEN).await;

    let (status, page) = c.get(Some(&boss), "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(rnd.as_str()) && page.contains(ops.as_str()));
    assert!(page.contains(older.as_str()), "open work of any day");
    let (p_older, p_ops) = (
        page.find(older.as_str()).unwrap(),
        page.find(ops.as_str()).unwrap(),
    );
    assert!(p_older < p_ops, "oldest first");
    assert!(
        page.contains("产研") && page.contains("运维"),
        "grouped by team"
    );
    assert!(page.contains("#7 电子发票") && page.contains("sales-b1"));
    assert!(
        page.contains("账号 acct2"),
        "the seller account on the card"
    );
    assert!(page.contains("已等 2 天"), "the age on the card");
    assert!(page.contains("已提交 3"), "counts by status");
    assert!(page.contains("逾期 1"), "the overdue one counted");
    assert!(page.contains(&format!("/console/requests/{rnd}")));

    let (_, page) = c.get(Some(&boss), "/console?overdue=1").await;
    assert!(page.contains(older.as_str()) && !page.contains(rnd.as_str()));

    let (_, page) = c.get(Some(&boss), "/console?team=ops").await;
    assert!(page.contains(ops.as_str()) && !page.contains(rnd.as_str()));

    // Search: a seller account, a requester, a request number (any part, any case).
    let (_, page) = c.get(Some(&boss), "/console?q=ACCT2").await;
    assert!(page.contains(ops.as_str()) && !page.contains(rnd.as_str()));
    let (_, page) = c.get(Some(&boss), "/console?q=sales-b1").await;
    assert!(page.contains(rnd.as_str()) && !page.contains(ops.as_str()));
    let (_, page) = c
        .get(
            Some(&boss),
            &format!("/console?q={}", older.as_str().to_lowercase()),
        )
        .await;
    assert!(page.contains(older.as_str()) && !page.contains(ops.as_str()));
    let (status, _) = c
        .get(Some(&boss), &format!("/console?q={}", "x".repeat(65)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Done requests leave the queue; a day's batch still lists them.
    c.ledger
        .transition(&rnd, Status::Done, "boss", None, now)
        .await
        .unwrap();
    let (_, page) = c.get(Some(&boss), "/console").await;
    assert!(!page.contains(rnd.as_str()), "done leaves the queue");
    let day = BatchSchedule::default().batch_for(now);
    let (_, page) = c
        .get(
            Some(&boss),
            &format!("/console?status=done&team=&day={day}"),
        )
        .await;
    assert!(page.contains(rnd.as_str()) && !page.contains(ops.as_str()));

    let older_day = BatchSchedule::default()
        .batch_for(now - chrono::Duration::days(2))
        .to_string();
    let (_, page) = c
        .get(Some(&boss), &format!("/console?day={older_day}"))
        .await;
    assert!(page.contains(older.as_str()) && !page.contains(ops.as_str()));

    let (status, page) = c.get(Some(&boss), "/console?day=28.11.2026").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("日期格式"));

    // A team handler sees only their team, whatever the filter says.
    let ops1 = c.login(OPS_TOKEN).await;
    let (_, page) = c.get(Some(&ops1), "/console").await;
    assert!(page.contains(ops.as_str()) && !page.contains(rnd.as_str()));
    let (_, page) = c.get(Some(&ops1), "/console?team=rnd").await;
    assert!(!page.contains(rnd.as_str()));
    let (_, page) = c.get(Some(&ops1), "/console?q=sales-b1").await;
    assert!(!page.contains(rnd.as_str()), "search stays in scope");
}

/// Issue 22: the dashboard over HTTP: scoped to the handler's teams, open and overdue per team,
/// charts as inline SVG.
#[tokio::test]
async fn the_dashboard_counts_the_handlers_teams_only() {
    let c = Console::spawn(Backend::Embedded).await;
    let now = Utc::now();
    c.file("d1", Team::Ops, &[], now - chrono::Duration::days(2))
        .await;
    c.file("d2", Team::Rnd, &[], now).await;
    let ops1 = c.login(OPS_TOKEN).await;
    let (status, page) = c.get(Some(&ops1), "/console/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 3, "{page}");
    assert!(page.contains("运维") && !page.contains("产研"), "{page}");
    assert!(page.contains("/console?overdue=1&amp;team=ops"), "{page}");
    assert!(page.contains(&format!(
        "{} 运维 1",
        BatchSchedule::default().batch_for(now - chrono::Duration::days(2))
    )));
    assert!(!page.contains("<script"));
    let (status, _) = c.get(None, "/console/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "login first");
}

#[tokio::test]
async fn the_detail_page_escapes_user_text() {
    let c = Console::spawn(Backend::Embedded).await;
    let id = c
        .file(
            "x1",
            Team::Rnd,
            &[
                ("备注", "<script>alert('x')</script>"),
                ("<b>标签</b>", "a&b"),
            ],
            Utc::now(),
        )
        .await;
    let boss = c.login(ALL_TOKEN).await;
    let (status, page) = c.get(Some(&boss), &format!("/console/requests/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>") && !page.contains("<b>标签"));
    // The template engine escapes `&<>"`; a bare `'` is harmless in text and in the
    // double-quoted attributes it always writes.
    assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;标签&lt;/b&gt;") && page.contains("a&amp;b"));
    for action in ["start", "complete", "reject", "note"] {
        assert!(page.contains(&format!("/console/requests/{id}/{action}")));
    }
    let (status, _) = c
        .get(Some(&boss), "/console/requests/KT-20990101-0001")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c.get(Some(&boss), "/console/requests/nonsense").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn form_actions_change_the_ledger_and_csrf_guards_them() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let now = Utc::now();
        let a = c.file("a1", Team::Rnd, &[], now).await;
        let b = c.file("a2", Team::Rnd, &[], now).await;
        let boss = c.login(ALL_TOKEN).await;
        let path = |id: &RequestId, action: &str| format!("/console/requests/{id}/{action}");

        // No token, a wrong token, another site's form: refused, nothing changes.
        let none = c.post(&boss, &path(&a, "complete"), &[("note", "x")]).await;
        assert_eq!(none.status(), StatusCode::FORBIDDEN, "{backend:?}");
        let wrong = c
            .post(&boss, &path(&a, "complete"), &[("csrf", &"0".repeat(64))])
            .await;
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        let cross = c
            .http
            .post(c.url(&path(&a, "complete")))
            .header("cookie", &boss.cookie)
            .header("origin", "https://evil.example")
            .form(&[("csrf", boss.csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        assert_eq!(c.status(&a).await, Status::Submitted, "{backend:?}");

        // A note, then start, then complete with a note (same-origin header is fine).
        let noted = c
            .post(
                &boss,
                &path(&a, "note"),
                &[("csrf", &boss.csrf), ("text", "已联系客户")],
            )
            .await;
        assert_eq!(noted.status(), StatusCode::SEE_OTHER);
        let empty = c
            .post(
                &boss,
                &path(&a, "note"),
                &[("csrf", &boss.csrf), ("text", " ")],
            )
            .await;
        assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let started = c
            .post(&boss, &path(&a, "start"), &[("csrf", &boss.csrf)])
            .await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        assert_eq!(c.status(&a).await, Status::Processing);
        // 完成 asks first: the page repeats the note and changes nothing yet.
        let asked = c
            .post(
                &boss,
                &path(&a, "complete"),
                &[("csrf", &boss.csrf), ("note", "已开通")],
            )
            .await;
        assert_eq!(asked.status(), StatusCode::OK, "{backend:?}");
        let asked = asked.text().await.unwrap();
        assert!(
            asked.contains("确认完成")
                && asked.contains("name=\"confirmed\" value=\"1\"")
                && asked.contains("value=\"已开通\""),
            "{asked}"
        );
        assert_eq!(c.status(&a).await, Status::Processing, "not before 确认");
        let done = c
            .http
            .post(c.url(&path(&a, "complete")))
            .header("cookie", &boss.cookie)
            .header("origin", format!("http://{}", c.addr))
            .form(&[
                ("csrf", boss.csrf.as_str()),
                ("note", "已开通"),
                ("confirmed", "1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{backend:?}");
        assert_eq!(
            done.headers()[LOCATION],
            format!("/console/requests/{a}?ok=complete").as_str()
        );
        let request = c.ledger.get(&a).await.unwrap().unwrap();
        assert_eq!(request.status(), Status::Done);
        assert_eq!(request.history.last().unwrap().by, "boss");
        assert_eq!(
            request.history.last().unwrap().note.as_deref(),
            Some("已开通")
        );
        assert_eq!(request.notes[0].text, "已联系客户");
        let (_, page) = c
            .get(Some(&boss), &format!("/console/requests/{a}?ok=complete"))
            .await;
        assert!(page.contains("已标记为已完成") && page.contains("已完成"));

        // Completing twice is refused in Chinese, with 409.
        let again = c
            .post(&boss, &path(&a, "complete"), &[("csrf", &boss.csrf)])
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert!(
            again
                .text()
                .await
                .unwrap()
                .contains("当前状态（已完成）不能完成")
        );

        // A reject needs a reason.
        let bare = c
            .post(
                &boss,
                &path(&b, "reject"),
                &[("csrf", &boss.csrf), ("reason", "  ")],
            )
            .await;
        assert_eq!(bare.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bare.text().await.unwrap().contains("驳回需要填写原因"));
        assert_eq!(c.status(&b).await, Status::Submitted);
        let asked = c
            .post(
                &boss,
                &path(&b, "reject"),
                &[("csrf", &boss.csrf), ("reason", "账号不存在")],
            )
            .await;
        assert_eq!(asked.status(), StatusCode::OK);
        assert!(asked.text().await.unwrap().contains("确认驳回"));
        assert_eq!(c.status(&b).await, Status::Submitted, "not before 确认");
        let rejected = c
            .post(
                &boss,
                &path(&b, "reject"),
                &[
                    ("csrf", &boss.csrf),
                    ("reason", "账号不存在"),
                    ("confirmed", "1"),
                ],
            )
            .await;
        assert_eq!(rejected.status(), StatusCode::SEE_OTHER);
        let request = c.ledger.get(&b).await.unwrap().unwrap();
        assert_eq!(request.status(), Status::Rejected, "{backend:?}");
        assert_eq!(
            request.history.last().unwrap().note.as_deref(),
            Some("账号不存在")
        );

        // The same day, a 完成 or 驳回 can be taken back: open again, in the history.
        let (_, page) = c.get(Some(&boss), &format!("/console/requests/{b}")).await;
        assert!(page.contains("重新打开"), "{page}");
        let reopened = c
            .post(
                &boss,
                &path(&b, "reopen"),
                &[("csrf", &boss.csrf), ("note", "原因写错")],
            )
            .await;
        assert_eq!(reopened.status(), StatusCode::SEE_OTHER);
        let request = c.ledger.get(&b).await.unwrap().unwrap();
        assert_eq!(request.status(), Status::Processing, "{backend:?}");
        let last = request.history.last().unwrap();
        assert_eq!(
            (last.by.as_str(), last.note.as_deref()),
            ("boss", Some("原因写错"))
        );
        let (_, page) = c
            .get(Some(&boss), &format!("/console/requests/{b}?ok=reopen"))
            .await;
        assert!(page.contains("已重新打开"), "{page}");
        // Handled on an earlier day: no reopen.
        let old = c.file("a4", Team::Rnd, &[], now).await;
        c.ledger
            .transition(
                &old,
                Status::Done,
                "boss",
                None,
                now - chrono::Duration::days(1),
            )
            .await
            .unwrap();
        let (_, page) = c
            .get(Some(&boss), &format!("/console/requests/{old}"))
            .await;
        assert!(!page.contains("重新打开"), "{page}");
        let late = c
            .post(&boss, &path(&old, "reopen"), &[("csrf", &boss.csrf)])
            .await;
        assert_eq!(late.status(), StatusCode::CONFLICT);
        assert!(late.text().await.unwrap().contains("只能重新打开今天"));
        assert_eq!(c.status(&old).await, Status::Done);

        // Another team's handler cannot act on it (and cannot tell it exists).
        let c2 = c.file("a3", Team::Rnd, &[], now).await;
        let ops1 = c.login(OPS_TOKEN).await;
        let hidden = c
            .post(&ops1, &path(&c2, "complete"), &[("csrf", &ops1.csrf)])
            .await;
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
        assert_eq!(c.status(&c2).await, Status::Submitted);
    }
}

#[tokio::test]
async fn the_csv_export_has_a_bom_the_columns_and_rfc_4180_quoting() {
    let c = Console::spawn(Backend::Embedded).await;
    let now = Utc::now();
    let a = c
        .file(
            "c1",
            Team::Rnd,
            &[("卖家账号", "acct, \"main\""), ("数量", "3")],
            now,
        )
        .await;
    let b = c.file("c2", Team::Ops, &[("公式", "=1+1")], now).await;
    let boss = c.login(ALL_TOKEN).await;
    let response = c
        .http
        .get(c.url("/console/export.csv"))
        .header("cookie", &boss.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 BOM for Excel");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "单号,服务编号,服务,处理组,办理渠道,申请渠道,申请人,申请人姓名,部门,卖家账号,状态,逾期,批次,提交时间,\
         处理人,处理时间,原因/说明,备注,卖家账号,数量,公式",
        "one column per field label after the fixed ones"
    );
    let batch = BatchSchedule::default().batch_for(now);
    assert!(
        lines[1].starts_with(&format!(
            "{a},7,电子发票,产研,资源管理系统,app,sales-c1,,,\"acct, \"\"main\"\"\",已提交,,{batch},"
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(",,,,,\"acct, \"\"main\"\"\",3,"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with(&format!("{b},7,电子发票,运维,")));
    assert!(lines[2].ends_with(",,,'=1+1"), "defused: {}", lines[2]);
    assert_eq!(lines.len(), 4, "two rows and the final CRLF");

    let (_, text) = c.get(Some(&boss), "/console/export.csv?team=ops").await;
    assert!(text.contains(b.as_str()) && !text.contains(a.as_str()));
    let rnd = c.login(RND_TOKEN).await;
    let (_, text) = c.get(Some(&rnd), "/console/export.csv").await;
    assert!(
        text.contains(a.as_str()) && !text.contains(b.as_str()),
        "team scoped"
    );
}

/// Issue 22: the CSV for reporting covers a range of batch days and says who handled each
/// request, when, and why.
#[tokio::test]
async fn the_csv_covers_a_date_range_with_who_handled_when_and_why() {
    let c = Console::spawn(Backend::Embedded).await;
    let schedule = BatchSchedule::default();
    let now = Utc::now();
    let long_ago = now - chrono::Duration::days(10);
    let early = c
        .file("r1", Team::Rnd, &[("卖家账号", "s1")], long_ago)
        .await;
    let mid = c
        .file(
            "r2",
            Team::Ops,
            &[("仓库编码", "WH01")],
            now - chrono::Duration::days(5),
        )
        .await;
    let recent = c.file("r3", Team::Ops, &[], now).await;
    c.ledger
        .transition(
            &mid,
            Status::Rejected,
            "ops1",
            Some("账号不存在".into()),
            now,
        )
        .await
        .unwrap();
    let boss = c.login(ALL_TOKEN).await;
    let from = schedule.batch_for(long_ago);
    let to = schedule.batch_for(now - chrono::Duration::days(5));
    let (status, text) = c
        .get(
            Some(&boss),
            &format!("/console/export.csv?from={from}&to={to}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(early.as_str()) && text.contains(mid.as_str()));
    assert!(!text.contains(recent.as_str()), "outside the range");
    let row = text.lines().find(|l| l.starts_with(mid.as_str())).unwrap();
    let handled_at = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(
        row.contains(&format!(",已驳回,,{to},"))
            && row.contains(&format!(",ops1,{handled_at},账号不存在,"))
            && row.ends_with(",WH01"),
        "{row}"
    );
    let (status, _) = c
        .get(
            Some(&boss),
            &format!("/console/export.csv?from={to}&to={from}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "from after to");
}

#[tokio::test]
async fn attachments_download_with_their_file_name() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let mut answers = Answers::new();
        answers.insert(
            FieldKey::parse("license").unwrap(),
            FieldValue::Attachment {
                file_name: "营业执照 2026.pdf".into(),
                media_id: "m1".into(),
            },
        );
        answers.insert(
            FieldKey::parse("account").unwrap(),
            FieldValue::Text("acct".into()),
        );
        let id = c
            .file_form(
                form(
                    "att1",
                    Team::Rnd,
                    &[("营业执照", "营业执照 2026.pdf")],
                    answers,
                ),
                Utc::now(),
            )
            .await;
        attachments::store_blob(c.store.as_ref(), "att1", "license", b"%PDF-1.7 bytes")
            .await
            .unwrap();
        let boss = c.login(ALL_TOKEN).await;
        let (_, page) = c.get(Some(&boss), &format!("/console/requests/{id}")).await;
        let link = format!("/console/requests/{id}/attachments/license");
        assert!(page.contains(&link) && page.contains("营业执照 2026.pdf"));

        let response = c
            .http
            .get(c.url(&link))
            .header("cookie", &boss.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let disposition = response.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(disposition.starts_with("attachment;"));
        assert!(
            disposition
                .contains("filename*=UTF-8''%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7%202026.pdf"),
            "{disposition}"
        );
        assert_eq!(&response.bytes().await.unwrap()[..], b"%PDF-1.7 bytes");

        let (status, _) = c
            .get(
                Some(&boss),
                &format!("/console/requests/{id}/attachments/account"),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not an attachment field");
        let ops1 = c.login(OPS_TOKEN).await;
        let (status, _) = c.get(Some(&ops1), &link).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another team's attachment");
        let (status, _) = c.get(None, &link).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login first");
    }
}

/// A transport that always fails for good, so an item lands in the failed list.
struct Broken;

#[async_trait::async_trait]
impl Transport for Broken {
    fn kind(&self) -> DeliveryKind {
        DeliveryKind::Wecom
    }

    async fn deliver(&self, _: &OutboxItem) -> Result<(), DeliveryError> {
        Err(DeliveryError::permanent("HTTP 500 from <platform>"))
    }
}

#[tokio::test]
async fn failed_deliveries_are_listed_and_a_retry_requeues_them() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let now = Utc::now();
        let notice = Notice {
            touser: "zhangsan".into(),
            text: "已完成".into(),
            card: None,
            before_card: None,
        };
        c.outbox
            .enqueue("handoff:KT-1", Delivery::Wecom(notice), now, now)
            .await
            .unwrap();
        let transports: HashMap<DeliveryKind, Arc<dyn Transport>> =
            HashMap::from([(DeliveryKind::Wecom, Arc::new(Broken) as Arc<dyn Transport>)]);
        let report = c.outbox.run_pass(&transports, now).await.unwrap();
        assert_eq!(report.failed, 1, "{backend:?}");
        let mail = EmailJob {
            to: "ops@example.com".into(),
            subject: "KT-2".into(),
            body: String::new(),
            message_id: "<KT-2@kaitong>".into(),
            attachments: Vec::new(),
        };
        c.outbox
            .enqueue("mail:KT-2", Delivery::Email(mail), now, now)
            .await
            .unwrap();

        let boss = c.login(ALL_TOKEN).await;
        let (status, page) = c.get(Some(&boss), "/console/deliveries").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("handoff:KT-1") && page.contains("mail:KT-2"));
        assert!(
            page.contains("HTTP 500 from &lt;platform&gt;"),
            "last error, escaped"
        );
        assert!(page.contains("重试"));

        let refused = c
            .post(
                &boss,
                "/console/deliveries/retry",
                &[("kind", "wecom"), ("id", "handoff:KT-1")],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(c.outbox.failed().await.unwrap().len(), 1);

        let retried = c
            .post(
                &boss,
                "/console/deliveries/retry",
                &[
                    ("csrf", &boss.csrf),
                    ("kind", "wecom"),
                    ("id", "handoff:KT-1"),
                ],
            )
            .await;
        assert_eq!(retried.status(), StatusCode::SEE_OTHER, "{backend:?}");
        assert!(c.outbox.failed().await.unwrap().is_empty());
        let pending = c.outbox.pending(DeliveryKind::Wecom).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].attempts, 0);
        let (_, page) = c.get(Some(&boss), "/console/deliveries?ok=retry").await;
        assert!(page.contains("已重新排队发送") && page.contains("没有失败的投递"));

        let unknown = c
            .post(
                &boss,
                "/console/deliveries/retry",
                &[("csrf", &boss.csrf), ("kind", "webhook"), ("id", "nope")],
            )
            .await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }
}

/// Issue 23, probe 6: `/console/deliveries` was not team-scoped: a handler saw and could retry
/// other teams' failed items and their errors. Reproduce: an ops handler opens the page while
/// a failed notice of an R&D request is listed, and retries it.
#[tokio::test]
async fn probe_6_deliveries_are_scoped_to_the_handlers_team() {
    harness::capture_logs();
    let c = Console::spawn(Backend::Embedded).await;
    let now = Utc::now();
    let rnd = c.file("dv1", Team::Rnd, &[], now).await;
    let ops = c.file("dv2", Team::Ops, &[], now).await;
    let notice = |text: &str| {
        Delivery::Wecom(Notice {
            touser: "zhangsan".into(),
            text: text.into(),
            card: None,
            before_card: None,
        })
    };
    let rnd_item = format!("notice:{rnd}:done");
    let ops_item = format!("notice:{ops}:done");
    for (id, text) in [
        (rnd_item.as_str(), "研发的通知"),
        (ops_item.as_str(), "运营的通知"),
        ("handler_card:20261207:boss:overview", "概览"),
    ] {
        c.outbox.enqueue(id, notice(text), now, now).await.unwrap();
    }
    let transports: HashMap<DeliveryKind, Arc<dyn Transport>> =
        HashMap::from([(DeliveryKind::Wecom, Arc::new(Broken) as Arc<dyn Transport>)]);
    assert_eq!(c.outbox.run_pass(&transports, now).await.unwrap().failed, 3);

    let ops1 = c.login(OPS_TOKEN).await;
    let (status, page) = c.get(Some(&ops1), "/console/deliveries").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&ops_item), "its own team's item: {page}");
    assert!(!page.contains(&rnd_item), "not another team's: {page}");
    assert!(
        !page.contains("handler_card:"),
        "not an item of no request: {page}"
    );
    let refused = c
        .post(
            &ops1,
            "/console/deliveries/retry",
            &[("csrf", &ops1.csrf), ("kind", "wecom"), ("id", &rnd_item)],
        )
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::NOT_FOUND,
        "answered like an unknown item"
    );
    assert_eq!(
        c.outbox.failed().await.unwrap().len(),
        3,
        "nothing requeued"
    );
    assert!(harness::captured_logs().contains("delivery outside the handler's team"));
    let own = c
        .post(
            &ops1,
            "/console/deliveries/retry",
            &[("csrf", &ops1.csrf), ("kind", "wecom"), ("id", &ops_item)],
        )
        .await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);

    // A handler of every team sees the rest.
    let boss = c.login(ALL_TOKEN).await;
    let (_, page) = c.get(Some(&boss), "/console/deliveries").await;
    assert!(
        page.contains(&rnd_item) && page.contains("handler_card:"),
        "{page}"
    );
}

#[tokio::test]
async fn the_api_refuses_without_a_valid_token() {
    let c = Console::spawn(Backend::Embedded).await;
    for token in [None, Some("wrong-token")] {
        let response = c
            .api(reqwest::Method::GET, "/api/v1/requests", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "error": "unauthorized" }));
    }
    // A console cookie is no API credential.
    let session = c.login(ALL_TOKEN).await;
    let response = c
        .api(reqwest::Method::GET, "/api/v1/requests", None)
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_lists_reads_and_moves_requests_with_the_right_codes() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let now = Utc::now();
        let rnd = c.file("p1", Team::Rnd, &[("卖家账号", "acct")], now).await;
        let ops = c.file("p2", Team::Ops, &[], now).await;
        let get = |path: &str, token: &str| c.api(reqwest::Method::GET, path, Some(token)).send();
        let post = |path: &str, token: &str, body: &'static str| {
            c.api(reqwest::Method::POST, path, Some(token))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };

        let list: serde_json::Value = get("/api/v1/requests/open", ALL_TOKEN)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["count"], 2, "{backend:?}");
        assert_eq!(list["view"], "open");
        assert_eq!(list["overdue"], 0);
        // Without a day the listing resource is today's local batch: after the 16:00 cut-off
        // new requests join tomorrow's, but today's is the one still being worked on.
        let by_day: serde_json::Value = get("/api/v1/requests", ALL_TOKEN)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let today = BatchSchedule::default().local_date(now).to_string();
        assert_eq!(by_day["day"], today, "{backend:?}");
        let tomorrow_batch = BatchSchedule::default().batch_for(now).to_string();
        let batch: serde_json::Value =
            get(&format!("/api/v1/requests?day={tomorrow_batch}"), ALL_TOKEN)
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(batch["count"], 2, "{backend:?}: {batch}");
        let first = &list["requests"][0];
        assert_eq!(first["id"], rnd.as_str());
        assert_eq!(
            first["service"],
            serde_json::json!({ "id": 7, "name": "电子发票" })
        );
        assert_eq!(first["team"], "rnd");
        assert_eq!(first["status"], "submitted");
        assert_eq!(
            first["requester"],
            serde_json::json!({ "userid": "sales-p1", "channel": "app" })
        );
        assert_eq!(
            first["fields"],
            serde_json::json!([{ "label": "卖家账号", "value": "acct" }])
        );
        assert_eq!(first["history"][0]["status"], "submitted");
        assert!(first["submitted_at"].as_str().unwrap().ends_with('Z'));
        assert!(first["notes"].as_array().unwrap().is_empty());

        let ops_list: serde_json::Value = get("/api/v1/requests/open?team=ops", ALL_TOKEN)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ops_list["count"], 1);
        let scoped: serde_json::Value = get("/api/v1/requests?open=1", OPS_TOKEN)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(scoped["count"], 1);
        assert_eq!(scoped["requests"][0]["id"], ops.as_str());
        for bad in [
            "/api/v1/requests?day=tomorrow",
            "/api/v1/requests?status=lost",
            "/api/v1/requests?team=sales",
        ] {
            assert_eq!(
                get(bad, ALL_TOKEN).await.unwrap().status(),
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }

        let one = get(&format!("/api/v1/requests/{rnd}"), RND_TOKEN)
            .await
            .unwrap();
        assert_eq!(one.status(), StatusCode::OK);
        let unknown = get("/api/v1/requests/KT-20990101-0001", ALL_TOKEN)
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            get("/api/v1/requests/garbage", ALL_TOKEN)
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );

        // Team scoping: an ops handler gets 404 for an rnd request, reading or acting.
        let hidden = get(&format!("/api/v1/requests/{rnd}"), OPS_TOKEN)
            .await
            .unwrap();
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{backend:?}");
        let hidden = post(&format!("/api/v1/requests/{rnd}/complete"), OPS_TOKEN, "{}")
            .await
            .unwrap();
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
        assert_eq!(c.status(&rnd).await, Status::Submitted);

        let malformed = post(
            &format!("/api/v1/requests/{rnd}/complete"),
            RND_TOKEN,
            "{\"note\":",
        )
        .await
        .unwrap();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        let done = post(
            &format!("/api/v1/requests/{rnd}/complete"),
            RND_TOKEN,
            "{\"note\":\"已开通\"}",
        )
        .await
        .unwrap();
        assert_eq!(done.status(), StatusCode::OK, "{backend:?}");
        let done: serde_json::Value = done.json().await.unwrap();
        assert_eq!(done["status"], "done");
        assert_eq!(done["history"][1]["by"], "dev1");
        assert_eq!(done["history"][1]["note"], "已开通");
        assert_eq!(c.status(&rnd).await, Status::Done);
        let again = post(&format!("/api/v1/requests/{rnd}/complete"), RND_TOKEN, "")
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert_eq!(
            again.json::<serde_json::Value>().await.unwrap()["error"],
            "invalid_transition"
        );
        // Taken back the same day: open again, then done again.
        let reopened = post(
            &format!("/api/v1/requests/{rnd}/reopen"),
            RND_TOKEN,
            "{\"note\":\"点错了\"}",
        )
        .await
        .unwrap();
        assert_eq!(reopened.status(), StatusCode::OK, "{backend:?}");
        let reopened: serde_json::Value = reopened.json().await.unwrap();
        assert_eq!(reopened["status"], "processing");
        assert_eq!(reopened["history"][2]["note"], "点错了");
        let twice = post(&format!("/api/v1/requests/{rnd}/reopen"), RND_TOKEN, "")
            .await
            .unwrap();
        assert_eq!(twice.status(), StatusCode::CONFLICT, "only a final one");
        post(&format!("/api/v1/requests/{rnd}/complete"), RND_TOKEN, "")
            .await
            .unwrap();

        let no_reason = post(&format!("/api/v1/requests/{ops}/reject"), OPS_TOKEN, "{}")
            .await
            .unwrap();
        assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let blank = post(
            &format!("/api/v1/requests/{ops}/reject"),
            OPS_TOKEN,
            "{\"reason\":\" \"}",
        )
        .await
        .unwrap();
        assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(c.status(&ops).await, Status::Submitted);
        let rejected = post(
            &format!("/api/v1/requests/{ops}/reject"),
            OPS_TOKEN,
            "{\"reason\":\"账号不存在\"}",
        )
        .await
        .unwrap();
        assert_eq!(rejected.status(), StatusCode::OK);
        assert_eq!(c.status(&ops).await, Status::Rejected, "{backend:?}");
        let again = post(
            &format!("/api/v1/requests/{ops}/reject"),
            OPS_TOKEN,
            "{\"reason\":\"x\"}",
        )
        .await
        .unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn the_router_merges_into_an_app_with_its_own_fallback() {
    let (store, _dir) = fresh_store(Backend::Embedded);
    let schedule = BatchSchedule::default();
    let ledger: Arc<dyn Ledger> = Arc::new(StoreLedger::new(Arc::clone(&store), schedule));
    let state = ConsoleState {
        desk: Desk::new(ledger),
        directory: HandlerDirectory::new(&[]),
        store: Arc::clone(&store),
        outbox: Outbox::new(store),
        schedule,
        login_throttle: Arc::new(LoginThrottle::new(
            1000,
            std::time::Duration::from_millis(1),
        )),
    };
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "main fallback") })
        .merge(router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |path: &str| reqwest::get(format!("http://{addr}{path}"));
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("/console/login").await.unwrap().status(),
        StatusCode::OK
    );
    let missing = get("/nope").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await.unwrap(), "main fallback");
}

/// A login attempt from a given loopback address (Linux routes all of 127/8 to lo).
async fn login_from(c: &Console, ip: [u8; 4], token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
        .post(c.url("/console/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_and_token_prefix_and_the_buckets_refill() {
    let refill = std::time::Duration::from_millis(600);
    let c = Console::spawn_throttled(Backend::Embedded, LoginThrottle::new(3, refill)).await;
    // Three guesses from one address are answered; the fourth is refused before it is checked.
    for i in 0..3 {
        let response = login_from(&c, [127, 0, 0, 1], &format!("g{i}-wrong")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login_from(&c, [127, 0, 0, 1], "g3-wrong").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.text().await.unwrap().contains("登录失败次数过多"));
    // The API's bearer tokens share the throttle.
    let api = c
        .http
        .get(c.url("/api/v1/requests"))
        .bearer_auth(ALL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers().contains_key("retry-after"));
    // Another address is not affected.
    let other = login_from(&c, [127, 0, 0, 2], ALL_TOKEN).await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER, "logged in");

    // Guesses at one token prefix spread over addresses meet the prefix bucket.
    for (i, ip) in [[127, 0, 0, 3], [127, 0, 0, 4], [127, 0, 0, 5]]
        .iter()
        .enumerate()
    {
        let response = login_from(&c, *ip, &format!("ops-guess-{i}")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login_from(&c, [127, 0, 0, 6], "ops-guess-3").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    // Nobody is locked out for good: after the refill the right tokens work again.
    tokio::time::sleep(refill + std::time::Duration::from_millis(100)).await;
    let back = login_from(&c, [127, 0, 0, 1], ALL_TOKEN).await;
    assert_eq!(
        back.status(),
        StatusCode::SEE_OTHER,
        "the address recovered"
    );
    let back = login_from(&c, [127, 0, 0, 6], OPS_TOKEN).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "the prefix recovered");
    // A success takes nothing: logging in many times in a row stays possible.
    for _ in 0..5 {
        let again = login_from(&c, [127, 0, 0, 7], RND_TOKEN).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
}

/// Issue 12: `admin.token` on the API sees and moves every team's requests, recorded as
/// "admin"; a wrong token stays 401, and the token shows in no response and no log line.
#[tokio::test]
async fn the_admin_token_lists_and_moves_every_teams_requests_through_the_api() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let now = Utc::now();
        let rnd = c.file("ad1", Team::Rnd, &[], now).await;
        let ops = c.file("ad2", Team::Ops, &[], now).await;
        let functional = c.file("ad3", Team::Functional, &[], now).await;
        let mailbox = c.file("ad4", Team::Mailbox, &[], now).await;
        let mut bodies = Vec::new();

        let list = c
            .api(
                reqwest::Method::GET,
                "/api/v1/requests/open",
                Some(ADMIN_TOKEN),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), StatusCode::OK, "{backend:?}");
        let list: serde_json::Value = list.json().await.unwrap();
        assert_eq!(list["count"], 4, "{backend:?}: every team");
        let ids: Vec<&str> = list["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for id in [&rnd, &ops, &functional, &mailbox] {
            assert!(ids.contains(&id.as_str()), "{backend:?}: {id} listed");
        }
        bodies.push(list.to_string());
        let one = c
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/requests/{mailbox}"),
                Some(ADMIN_TOKEN),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), StatusCode::OK);
        bodies.push(one.text().await.unwrap());

        let done = c
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/requests/{rnd}/complete"),
                Some(ADMIN_TOKEN),
            )
            .header("content-type", "application/json")
            .body("{\"note\":\"管理员代办\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK, "{backend:?}");
        let done: serde_json::Value = done.json().await.unwrap();
        assert_eq!(done["status"], "done");
        assert_eq!(done["history"][1]["by"], ADMIN_ACTOR);
        bodies.push(done.to_string());
        let rejected = c
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/requests/{ops}/reject"),
                Some(ADMIN_TOKEN),
            )
            .header("content-type", "application/json")
            .body("{\"reason\":\"账号不存在\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(rejected.status(), StatusCode::OK, "{backend:?}");
        bodies.push(rejected.text().await.unwrap());

        // The ledger's history names the admin as the actor, with the note or reason.
        let request = c.ledger.get(&rnd).await.unwrap().unwrap();
        assert_eq!(request.status(), Status::Done, "{backend:?}");
        let last = request.history.last().unwrap();
        assert_eq!(last.by, "admin");
        assert_eq!(last.note.as_deref(), Some("管理员代办"));
        let request = c.ledger.get(&ops).await.unwrap().unwrap();
        assert_eq!(request.status(), Status::Rejected, "{backend:?}");
        assert_eq!(request.history.last().unwrap().by, "admin");
        assert_eq!(c.status(&functional).await, Status::Submitted);

        // Near misses of the admin token are 401 like any wrong token, and change nothing.
        for wrong in [
            ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_owned(),
            format!("{ADMIN_TOKEN}x"),
            ADMIN_TOKEN.to_uppercase(),
        ] {
            let response = c
                .api(
                    reqwest::Method::POST,
                    &format!("/api/v1/requests/{functional}/complete"),
                    Some(&wrong),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
            let body = response.text().await.unwrap();
            assert_eq!(body, "{\"error\":\"unauthorized\"}");
        }
        assert_eq!(
            c.status(&functional).await,
            Status::Submitted,
            "{backend:?}"
        );

        for body in &bodies {
            assert!(!body.contains(ADMIN_TOKEN), "{backend:?}: {body}");
        }
    }
    let logs = harness::captured_logs();
    assert!(logs.contains("by=admin"), "the actions are logged as admin");
    assert!(
        !logs.contains(ADMIN_TOKEN),
        "the admin token is never logged"
    );
}

/// Issue 12: `admin.token` logs in to the console (same form), sees every team's batch and
/// acts on any team's request, recorded as "admin"; the store keeps no trace of the token.
#[tokio::test]
async fn the_admin_token_logs_in_to_the_console_and_sees_every_team() {
    for backend in BACKENDS {
        let c = Console::spawn(backend).await;
        let now = Utc::now();
        let rnd = c.file("ac1", Team::Rnd, &[], now).await;
        let ops = c.file("ac2", Team::Ops, &[], now).await;
        let functional = c.file("ac3", Team::Functional, &[], now).await;
        let mailbox = c.file("ac4", Team::Mailbox, &[], now).await;

        let bad = c
            .http
            .post(c.url("/console/login"))
            .form(&[("token", &ADMIN_TOKEN[1..])])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(bad.headers().get(SET_COOKIE).is_none());

        let admin = c.login(ADMIN_TOKEN).await;
        assert!(!admin.set_cookie.contains(ADMIN_TOKEN));
        let (status, page) = c.get(Some(&admin), "/console").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        for id in [&rnd, &ops, &functional, &mailbox] {
            assert!(page.contains(id.as_str()), "{backend:?}: {id} on the page");
        }
        assert!(page.contains("admin"), "the session shows who is logged in");
        assert!(!page.contains(ADMIN_TOKEN));
        let (_, csv) = c.get(Some(&admin), "/console/export.csv").await;
        assert!(csv.contains(mailbox.as_str()) && csv.contains(rnd.as_str()));

        let done = c
            .post(
                &admin,
                &format!("/console/requests/{mailbox}/complete"),
                &[
                    ("csrf", &admin.csrf),
                    ("note", "已处理"),
                    ("confirmed", "1"),
                ],
            )
            .await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{backend:?}");
        let rejected = c
            .post(
                &admin,
                &format!("/console/requests/{functional}/reject"),
                &[
                    ("csrf", &admin.csrf),
                    ("reason", "重复申请"),
                    ("confirmed", "1"),
                ],
            )
            .await;
        assert_eq!(rejected.status(), StatusCode::SEE_OTHER, "{backend:?}");
        for (id, status) in [(&mailbox, Status::Done), (&functional, Status::Rejected)] {
            let request = c.ledger.get(id).await.unwrap().unwrap();
            assert_eq!(request.status(), status, "{backend:?}");
            assert_eq!(request.history.last().unwrap().by, "admin");
        }
        let (_, detail) = c
            .get(Some(&admin), &format!("/console/requests/{mailbox}"))
            .await;
        assert!(detail.contains("admin") && !detail.contains(ADMIN_TOKEN));

        // Only the session id's hash and the actor's name are stored.
        for (_, value) in c.store.list_prefix("console:session:", 10).await.unwrap() {
            let value = String::from_utf8_lossy(&value);
            assert!(!value.contains(ADMIN_TOKEN), "{backend:?}: {value}");
        }
    }
    assert!(
        !harness::captured_logs().contains(ADMIN_TOKEN),
        "never logged"
    );
}

/// Issue 12: the admin token meets the failed-login throttle like any token: a throttled
/// address is refused even with it, guesses at its prefix empty the prefix bucket (which then
/// refuses wrong tokens only), and it works again after the refill.
#[tokio::test]
async fn the_admin_token_is_throttled_like_any_token() {
    let refill = std::time::Duration::from_millis(600);
    let c = Console::spawn_throttled(Backend::Embedded, LoginThrottle::new(2, refill)).await;
    for i in 0..2 {
        let response = login_from(&c, [127, 0, 1, 1], &format!("w{i}-wrong")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login_from(&c, [127, 0, 1, 1], ADMIN_TOKEN).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let api = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 1, 1]))
        .build()
        .unwrap()
        .get(c.url("/api/v1/requests"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the API shares the throttle"
    );

    // Guessing at the admin token from other addresses meets its prefix bucket.
    let guess = |i: usize| format!("{}guess-{i}", &ADMIN_TOKEN[..4]);
    for (i, ip) in [[127, 0, 1, 2], [127, 0, 1, 3]].iter().enumerate() {
        let response = login_from(&c, *ip, &guess(i)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login_from(&c, [127, 0, 1, 4], &guess(9)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Issue 23, probe 4: the prefix bucket never refuses the right token.
    let right = login_from(&c, [127, 0, 1, 4], ADMIN_TOKEN).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);

    tokio::time::sleep(refill + std::time::Duration::from_millis(100)).await;
    let back = login_from(&c, [127, 0, 1, 1], ADMIN_TOKEN).await;
    assert_eq!(
        back.status(),
        StatusCode::SEE_OTHER,
        "the address recovered"
    );
    // Successful admin logins take nothing from the buckets.
    for _ in 0..4 {
        let again = login_from(&c, [127, 0, 1, 5], ADMIN_TOKEN).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
}

/// Issue 12, end to end: the `admin.token` of the settings is accepted by the served app's
/// console and API (start-up wires it in), and a wrong one is not.
#[tokio::test]
async fn the_configured_admin_token_works_on_the_served_app() {
    let mut settings = harness::test_settings();
    settings.admin.token = Secret::from(ADMIN_TOKEN);
    settings.notify.enabled = false;
    let (store, dir) = fresh_store(Backend::Embedded);
    let parts = kaitong::startup::Parts::build(&settings, Arc::clone(&store)).unwrap();
    let ledger = parts.ledger.clone();
    let app = kaitong::startup::Application::build_from(&settings, parts)
        .await
        .unwrap();
    let mut app = harness::TestApp::serve(app, settings, store, dir);
    let now = Utc::now();
    let id = ledger
        .file(form("e2e1", Team::Mailbox, &[], Answers::new()), now)
        .await
        .unwrap()
        .id;

    let list = app
        .http
        .get(app.url("/api/v1/requests/open"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["requests"][0]["id"], id.as_str());
    let wrong = app
        .http
        .get(app.url("/api/v1/requests"))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        StatusCode::UNAUTHORIZED,
        "only the configured one"
    );
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/console/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

/// Issue 22: the deliveries page names each item's recipient and links its request; "全部重试"
/// requeues every failed item the handler may see (not another team's); a delivered notice is
/// in the request's page and API answer (to whom, when, what).
#[tokio::test]
async fn deliveries_name_the_recipient_link_the_request_and_retry_all_at_once() {
    let c = Console::spawn(Backend::Embedded).await;
    let now = Utc::now();
    let ops_a = c.file("ra1", Team::Ops, &[], now).await;
    let ops_b = c.file("ra2", Team::Ops, &[], now).await;
    let rnd = c.file("ra3", Team::Rnd, &[], now).await;
    let notice = |to: &str| {
        Delivery::Wecom(Notice {
            touser: to.into(),
            text: "已完成，请查收".into(),
            card: None,
            before_card: None,
        })
    };
    for (id, to) in [(&ops_a, "lisi"), (&ops_b, "wangwu"), (&rnd, "zhaoliu")] {
        c.outbox
            .enqueue(&format!("notice:{id}:done"), notice(to), now, now)
            .await
            .unwrap();
    }
    let transports: HashMap<DeliveryKind, Arc<dyn Transport>> =
        HashMap::from([(DeliveryKind::Wecom, Arc::new(Broken) as Arc<dyn Transport>)]);
    assert_eq!(c.outbox.run_pass(&transports, now).await.unwrap().failed, 3);

    let ops1 = c.login(OPS_TOKEN).await;
    let (_, page) = c.get(Some(&ops1), "/console/deliveries").await;
    assert!(
        page.contains("发给：lisi") && page.contains("发给：wangwu"),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"/console/requests/{ops_a}\"")),
        "the request is linked: {page}"
    );
    assert!(page.contains("已完成，请查收") && page.contains("全部重试"));

    let refused = c
        .post(&ops1, "/console/deliveries/retry-all", &[("csrf", "wrong")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(c.outbox.failed().await.unwrap().len(), 3);
    let all = c
        .post(
            &ops1,
            "/console/deliveries/retry-all",
            &[("csrf", &ops1.csrf)],
        )
        .await;
    assert_eq!(all.status(), StatusCode::SEE_OTHER);
    let left = c.outbox.failed().await.unwrap();
    assert_eq!(left.len(), 1, "another team's item stays: {left:?}");
    assert_eq!(left[0].id, format!("notice:{rnd}:done"));
    assert_eq!(
        c.outbox.pending(DeliveryKind::Wecom).await.unwrap().len(),
        2
    );
    let (_, page) = c.get(Some(&ops1), "/console/deliveries?ok=retry_all").await;
    assert!(page.contains("失败的投递已全部重新排队"), "{page}");

    // Delivered this time: recorded in the request's history, shown on its page and in the API.
    let outbox = c.outbox.clone().with_history(Arc::clone(&c.ledger));
    let working: HashMap<DeliveryKind, Arc<dyn Transport>> =
        HashMap::from([(DeliveryKind::Wecom, Arc::new(Works) as Arc<dyn Transport>)]);
    let report = outbox.run_pass(&working, Utc::now()).await.unwrap();
    assert_eq!(report.sent, 2);
    let (_, page) = c
        .get(Some(&ops1), &format!("/console/requests/{ops_a}"))
        .await;
    assert!(
        page.contains("送达记录") && page.contains("<td>lisi</td>"),
        "{page}"
    );
    let response = c
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/requests/{ops_a}"),
            Some(OPS_TOKEN),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["deliveries"][0]["to"], "lisi", "{body}");
    assert_eq!(body["deliveries"][0]["channel"], "wecom");
    assert!(
        body["deliveries"][0]["message"]
            .as_str()
            .unwrap()
            .contains("已完成")
    );
}

struct Works;

#[async_trait::async_trait]
impl Transport for Works {
    fn kind(&self) -> DeliveryKind {
        DeliveryKind::Wecom
    }
    async fn deliver(&self, _: &OutboxItem) -> Result<(), DeliveryError> {
        Ok(())
    }
}
