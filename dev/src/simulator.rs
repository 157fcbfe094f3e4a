//! An in-repo WeCom server API simulator: an axum app on `127.0.0.1:0` answering `gettoken`,
//! `message/send`, `media/get`, `media/upload`, `message/update_template_card`, the contacts'
//! `user/get` and `department/list` (60011 for members outside the visible range), approvals
//! (`oa/applyevent`, and the `sys_approval_change` callback's XML) and the AI bot's
//! `response_url` (`aibot/response?response_code=…`, see [`SimulatorHandle::response_url`]) with
//! WeCom's real JSON shapes and errcodes (PROTOCOL.md §4, §5, §7), so tests and `kaitong-dev chat`
//! never need the real server.
//!
//! Owns: the simulated apps, tokens, delivered messages, stored media and response codes, plus
//! test hooks on [`SimulatorHandle`] (fault injection, delays, token expiry, counters). It must
//! not depend on the client in [`kaitong::wecom::api`] for parsing: it reads raw JSON, and multipart with
//! `multer`, the way WeCom would, so client bugs show up as WeCom errors rather than being
//! mirrored.
//!
//! Faithfulness notes (where WeCom's behaviour is not documented, the choice is marked):
//! - gettoken returns the same token while it is valid, with the remaining `expires_in`.
//! - Per member, at most 30 messages a minute are delivered per app; the excess is accepted and
//!   silently dropped (DOC-90312). Adjustable with [`SimulatorHandle::set_per_user_minute_limit`].
//! - A duplicate within `duplicate_check_interval` is accepted (errcode 0, the first msgid) but
//!   not delivered again.
//! - A reused or unknown `response_code` answers 40058 (不合法的参数): WeCom's exact code for
//!   this case is not in the public errcode table — a documented guess.
//! - Injected faults ([`SimulatorHandle::fail_next`]) apply to token-bearing endpoints only, not
//!   to gettoken, so a fault is consumed by the call under test.
//! - `Range` requests on media/get are not simulated.
//! - An outage ([`SimulatorHandle::go_down`]) closes the port: connections are refused, as
//!   when WeCom or the way to it is gone; [`SimulatorHandle::recover`] listens again.
//! - A `response_url` takes one `markdown` or `template_card` message (PROTOCOL.md §5); a second
//!   post to the same URL answers 40058, as a reused response_code does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use kaitong::wecom::TEXT_LIMIT_BYTES;
use kaitong::wecom::api::{DEFAULT_DUPLICATE_CHECK_INTERVAL, errcode};

/// The app [`WecomSimulator::start`] configures.
pub const DEFAULT_CORP_ID: &str = "wwsimulatedcorp0001";
pub const DEFAULT_SECRET: &str = "simulated-app-secret-0001";
pub const DEFAULT_AGENT_ID: u32 = 1_000_002;

/// Text the simulator's own code puts into any binary that links it: a reply of its fallback
/// route, its log line when it stops, and its source file's name (panic locations, tracing's
/// metadata). The root's `tests/it/workspace.rs` asserts the production binary holds none of
/// them; this crate's `tests/it/binary.rs` that `kaitong-dev` holds them all, so that check can
/// fail. Change them together with the code they are taken from.
pub const MARKERS: &[&str] = &[
    "api not simulated by kaitong",
    "WeCom simulator stopped",
    "simulator.rs",
];

const TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
const MEDIA_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);
const RESPONSE_CODE_LIFETIME: Duration = Duration::from_secs(72 * 3600);
/// Largest `duplicate_check_interval` WeCom accepts (seconds); longer asks are cut to it.
const MAX_DUPLICATE_INTERVAL_SECS: u64 = 4 * 3600;
const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

/// One self-built app the simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedApp {
    pub corp_id: String,
    pub secret: String,
    pub agent_id: u32,
}

impl SimulatedApp {
    #[must_use]
    pub fn new(corp_id: impl Into<String>, secret: impl Into<String>, agent_id: u32) -> Self {
        Self {
            corp_id: corp_id.into(),
            secret: secret.into(),
            agent_id,
        }
    }
}

/// A message WeCom accepted and delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub agent_id: u32,
    /// Recipients as sent (`touser` split on `|`), minus invalid users.
    pub touser: Vec<String>,
    pub msgtype: String,
    /// `text.content` / `markdown.content`; for other types the type's JSON object.
    pub content: String,
    pub msgid: String,
    pub time: chrono::DateTime<chrono::Utc>,
    /// The whole request body, for assertions on cards and flags.
    pub body: Value,
}

/// A `message/update_template_card` that WeCom accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct CardUpdate {
    pub agent_id: u32,
    pub userids: Vec<String>,
    pub response_code: String,
    /// `button.replace_name` for button-only updates.
    pub replace_name: Option<String>,
    pub body: Value,
}

/// A message posted to an AI-bot `response_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePost {
    pub response_code: String,
    pub msgtype: String,
    /// `markdown.content`; for a card the card's JSON.
    pub content: String,
    pub body: Value,
}

/// An approval filed with `oa/applyevent`.
#[derive(Debug, Clone, PartialEq)]
pub struct FiledApproval {
    pub sp_no: String,
    pub creator: String,
    pub template_id: String,
    pub body: Value,
}

/// A stored temporary media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Builder for a simulator with custom apps.
#[derive(Debug, Clone, Default)]
pub struct WecomSimulator {
    apps: Vec<SimulatedApp>,
}

impl WecomSimulator {
    /// A simulator with no apps yet; add them with [`Self::with_app`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn with_app(mut self, app: SimulatedApp) -> Self {
        self.apps.push(app);
        self
    }

    /// Starts a simulator with the default app ([`DEFAULT_CORP_ID`], [`DEFAULT_SECRET`],
    /// [`DEFAULT_AGENT_ID`]) on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<SimulatorHandle> {
        Self::new()
            .with_app(SimulatedApp::new(
                DEFAULT_CORP_ID,
                DEFAULT_SECRET,
                DEFAULT_AGENT_ID,
            ))
            .spawn()
            .await
    }

    /// Binds `127.0.0.1:0` and serves until the handle is stopped or dropped.
    pub async fn spawn(self) -> std::io::Result<SimulatorHandle> {
        self.spawn_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (a fixed port a separately started `kaitong serve` can be pointed at with
    /// `wecom.api_base`) and serves until the handle is stopped or dropped.
    pub async fn spawn_on(self, addr: SocketAddr) -> std::io::Result<SimulatorHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self.apps));
        let (shutdown, task) = serve(listener, Arc::clone(&shared));
        Ok(SimulatorHandle {
            addr,
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }
}

/// Serves the simulated API on `listener` until the sender fires or is dropped.
fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<()>) {
    let router = Router::new()
        .route("/cgi-bin/gettoken", get(gettoken))
        .route("/cgi-bin/message/send", post(message_send))
        .route("/cgi-bin/media/get", get(media_get))
        .route("/cgi-bin/media/upload", post(media_upload))
        .route(
            "/cgi-bin/message/update_template_card",
            post(update_template_card),
        )
        .route("/cgi-bin/aibot/response", post(aibot_response))
        .route("/cgi-bin/user/get", get(user_get))
        .route("/cgi-bin/department/list", get(department_list))
        .route("/cgi-bin/oa/applyevent", post(oa_applyevent))
        .fallback(unknown_api)
        // Media uploads go up to 20 MB; axum's default limit is 2 MB.
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(shared);
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            // A dropped sender (handle dropped) also means stop.
            let _ = shutdown_signal.await;
        });
        if let Err(error) = serve.await {
            tracing::warn!(%error, "WeCom simulator stopped");
        }
    });
    (shutdown, task)
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for SimulatorHandle {
    // Aborting the accept loop drops the graceful-shutdown watch, which makes open keep-alive
    // connections close once their in-flight request is answered.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl SimulatorHandle {
    /// `http://127.0.0.1:PORT/cgi-bin`, the `api_base` for [`kaitong::wecom::api::WecomApi`].
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/cgi-bin", self.addr)
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configured apps, the first being the default one.
    #[must_use]
    pub fn apps(&self) -> Vec<SimulatedApp> {
        self.shared.lock().apps.clone()
    }

    /// Stops accepting, closes idle connections, and waits (at most 2 s, since a request may
    /// be sleeping in [`Self::set_delay`]) for in-flight requests before cutting them off.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; nothing to signal then.
            let _ = shutdown.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    /// An outage: the server stops listening (connections to its port are refused, open ones
    /// are closed) while everything it holds — apps, tokens, delivered messages, faults —
    /// stays for [`Self::recover`].
    pub async fn go_down(&mut self) {
        self.halt().await;
    }

    /// Ends an outage: listens again on the same port with the same state.
    pub async fn recover(&mut self) -> std::io::Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let (shutdown, task) = serve(listener, Arc::clone(&self.shared));
        self.shutdown = Some(shutdown);
        self.task = Some(task);
        Ok(())
    }

    /// Stores media as if uploaded; `content_type` is guessed from the extension.
    pub fn add_media(&self, media_id: &str, file_name: &str, bytes: &[u8]) {
        self.shared.lock().media.insert(
            media_id.to_owned(),
            MediaEntry {
                media: StoredMedia {
                    file_name: file_name.to_owned(),
                    content_type: guess_content_type(file_name).to_owned(),
                    bytes: bytes.to_vec(),
                },
                created: Instant::now(),
            },
        );
    }

    #[must_use]
    pub fn media(&self, media_id: &str) -> Option<StoredMedia> {
        self.shared
            .lock()
            .media
            .get(media_id)
            .map(|entry| entry.media.clone())
    }

    /// Delivered messages, oldest first.
    #[must_use]
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    pub fn clear_sent_messages(&self) {
        self.shared.lock().sent.clear();
    }

    /// Accepted template-card updates, oldest first.
    #[must_use]
    pub fn card_updates(&self) -> Vec<CardUpdate> {
        self.shared.lock().card_updates.clone()
    }

    /// A fresh AI-bot `response_url` under this simulator, as a callback would carry it.
    #[must_use]
    pub fn response_url(&self) -> String {
        format!(
            "{}/aibot/response?response_code=rc{:016x}",
            self.base_url(),
            rand::random::<u64>()
        )
    }

    /// Messages posted to `response_url`s, oldest first.
    #[must_use]
    pub fn response_posts(&self) -> Vec<ResponsePost> {
        self.shared.lock().response_posts.clone()
    }

    /// Issues a fresh single-use `response_code` for `agent_id`, as a card click would.
    #[must_use]
    pub fn issue_response_code(&self, agent_id: u32) -> String {
        self.shared.lock().issue_response_code(agent_id)
    }

    /// Makes every token issued so far answer 42001 (expired); gettoken then issues new ones.
    pub fn expire_tokens(&self) {
        for token in self.shared.lock().tokens.values_mut() {
            token.expired = true;
        }
    }

    /// Makes every token issued so far unknown (40014), as when WeCom invalidates early.
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// The next `n` token-bearing calls answer `errcode` (HTTP 200, WeCom JSON).
    pub fn fail_next(&self, n: usize, errcode: i64) {
        let mut state = self.shared.lock();
        state
            .faults
            .extend(std::iter::repeat_n(Fault::Errcode(errcode), n));
    }

    /// The next `n` token-bearing calls answer HTTP `status` with a non-JSON body.
    pub fn fail_next_http(&self, n: usize, status: u16) {
        let mut state = self.shared.lock();
        state
            .faults
            .extend(std::iter::repeat_n(Fault::Http(status), n));
    }

    /// Every request waits this long before being handled.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Users WeCom reports in `invaliduser` (not in the directory) instead of delivering to.
    pub fn set_invalid_users(&self, users: &[&str]) {
        self.shared.lock().invalid_users = users.iter().map(|user| (*user).to_owned()).collect();
    }

    /// Users WeCom reports in `unlicenseduser`; messages to them are not delivered.
    pub fn set_unlicensed_users(&self, users: &[&str]) {
        self.shared.lock().unlicensed_users = users.iter().map(|user| (*user).to_owned()).collect();
    }

    /// WeCom drops messages beyond 30 per member per minute; `None` disables the cap.
    pub fn set_per_user_minute_limit(&self, limit: Option<usize>) {
        self.shared.lock().per_user_minute_limit = limit;
    }

    /// A member in the corp's contacts, as `user/get` answers for them: `name`, `department`
    /// (ids), `main_department`, and `email` when given (WeCom leaves it out for apps created
    /// after 2022-06-20).
    pub fn add_member(&self, userid: &str, name: &str, departments: &[u64], email: Option<&str>) {
        let mut member = json!({
            "userid": userid,
            "name": name,
            "department": departments,
            "order": departments.iter().map(|_| 0).collect::<Vec<_>>(),
            "is_leader_in_dept": departments.iter().map(|_| 0).collect::<Vec<_>>(),
            "main_department": departments.first().copied().unwrap_or(1),
            "position": "",
            "status": 1,
            "isleader": 0,
            "enable": 1,
            "alias": "",
            "open_userid": format!("wo{userid}"),
            "direct_leader": [],
        });
        if let (Some(email), Some(object)) = (email, member.as_object_mut()) {
            object.insert("email".to_owned(), json!(email));
        }
        self.shared.lock().members.insert(userid.to_owned(), member);
    }

    /// A department `department/list` lists.
    pub fn add_department(&self, id: u64, name: &str, parentid: u64) {
        self.shared.lock().departments.push(json!({
            "id": id,
            "name": name,
            "name_en": "",
            "department_leader": [],
            "parentid": parentid,
            "order": 100_000_000u64.saturating_sub(id),
        }));
    }

    /// Members outside the app's visible range: `user/get` answers 60011 for them.
    pub fn hide_members(&self, users: &[&str]) {
        self.shared.lock().hidden_members = users.iter().map(|u| (*u).to_owned()).collect();
    }

    /// An approval template (审批模板) `oa/applyevent` accepts.
    pub fn add_approval_template(&self, template_id: &str) {
        self.shared
            .lock()
            .approval_templates
            .push(template_id.to_owned());
    }

    /// Approvals filed so far, oldest first.
    #[must_use]
    pub fn approvals(&self) -> Vec<FiledApproval> {
        self.shared.lock().approvals.clone()
    }

    /// The inner XML of the `sys_approval_change` callback WeCom sends when approval `sp_no`
    /// reaches `status` (2 已通过, 3 已驳回, …) by `approver`'s decision with `speech` (their
    /// comment), shaped as WeCom's "审批申请状态变化回调通知". Encrypt and sign it with
    /// [`crate::peer::WecomPeer::app_callback`].
    #[must_use]
    pub fn approval_change_xml(
        &self,
        sp_no: &str,
        status: u32,
        approver: &str,
        speech: &str,
        create_time: i64,
    ) -> String {
        use kaitong::wecom::app_xml::cdata;
        let state = self.shared.lock();
        let filed = state.approvals.iter().find(|a| a.sp_no == sp_no);
        let creator = filed.map_or("", |a| a.creator.as_str());
        let template = filed.map_or("", |a| a.template_id.as_str());
        let corp = state.apps.first().map_or("", |a| a.corp_id.as_str());
        let agent = state.apps.first().map_or(0, |a| a.agent_id);
        // The step's own status is the approver's decision: 2 同意, 3 驳回.
        format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType>{}</MsgType><Event>{}</Event><AgentID>{agent}</AgentID><ApprovalInfo><SpNo>{sp_no}</SpNo><SpName>{}</SpName><SpStatus>{status}</SpStatus><TemplateId>{}</TemplateId><ApplyTime>{create_time}</ApplyTime><Applyer><UserId>{}</UserId><Party>{}</Party></Applyer><SpRecord><SpStatus>{status}</SpStatus><ApproverAttr>1</ApproverAttr><Details><Approver><UserId>{}</UserId></Approver><Speech>{}</Speech><SpStatus>{status}</SpStatus><SpTime>{create_time}</SpTime></Details></SpRecord><StatuChangeEvent>{status}</StatuChangeEvent></ApprovalInfo></xml>",
            cdata(corp),
            cdata("sys"),
            cdata("event"),
            cdata("sys_approval_change"),
            cdata("开库工单"),
            cdata(template),
            cdata(creator),
            cdata("1"),
            cdata(approver),
            cdata(speech),
        )
    }

    /// `user/get` and `department/list` calls received.
    #[must_use]
    pub fn contact_calls(&self) -> u64 {
        self.shared.lock().contact_calls
    }

    /// Number of gettoken requests received (successful or not).
    #[must_use]
    pub fn gettoken_calls(&self) -> u64 {
        self.shared.gettoken_calls.load(Ordering::SeqCst)
    }

    /// Number of requests received on any path.
    #[must_use]
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Messages accepted as duplicates and therefore not delivered again.
    #[must_use]
    pub fn duplicates_suppressed(&self) -> u64 {
        self.shared.lock().duplicates_suppressed
    }

    /// Successful `media/upload` calls.
    #[must_use]
    pub fn uploads(&self) -> u64 {
        self.shared.lock().uploads
    }

    /// Messages accepted but dropped by the per-member minute cap.
    #[must_use]
    pub fn rate_dropped(&self) -> u64 {
        self.shared.lock().rate_dropped
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Errcode(i64),
    Http(u16),
}

#[derive(Debug)]
struct TokenEntry {
    app: usize,
    issued: Instant,
    expired: bool,
}

#[derive(Debug)]
struct MediaEntry {
    media: StoredMedia,
    created: Instant,
}

#[derive(Debug)]
struct ResponseCodeEntry {
    agent_id: u32,
    issued: Instant,
    used: bool,
}

#[derive(Debug)]
struct SimState {
    apps: Vec<SimulatedApp>,
    tokens: HashMap<String, TokenEntry>,
    sent: Vec<SentMessage>,
    card_updates: Vec<CardUpdate>,
    response_posts: Vec<ResponsePost>,
    media: HashMap<String, MediaEntry>,
    response_codes: HashMap<String, ResponseCodeEntry>,
    /// (agent, recipients, msgtype, payload) → (first msgid, when, interval).
    recent: HashMap<String, (String, Instant, Duration)>,
    deliveries: HashMap<(u32, String), VecDeque<Instant>>,
    faults: VecDeque<Fault>,
    delay: Duration,
    invalid_users: Vec<String>,
    unlicensed_users: Vec<String>,
    per_user_minute_limit: Option<usize>,
    /// `user/get` answers by userid: the member's JSON as WeCom gives it.
    members: HashMap<String, Value>,
    /// `department/list`'s departments.
    departments: Vec<Value>,
    /// Members outside the app's visible range: `user/get` answers 60011.
    hidden_members: Vec<String>,
    contact_calls: u64,
    /// Approval templates `oa/applyevent` accepts.
    approval_templates: Vec<String>,
    approvals: Vec<FiledApproval>,
    duplicates_suppressed: u64,
    uploads: u64,
    rate_dropped: u64,
    next_msgid: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<SimState>,
    gettoken_calls: AtomicU64,
    requests: AtomicU64,
}

impl Shared {
    fn new(apps: Vec<SimulatedApp>) -> Self {
        Self {
            state: Mutex::new(SimState {
                apps,
                tokens: HashMap::new(),
                sent: Vec::new(),
                card_updates: Vec::new(),
                response_posts: Vec::new(),
                media: HashMap::new(),
                response_codes: HashMap::new(),
                recent: HashMap::new(),
                deliveries: HashMap::new(),
                faults: VecDeque::new(),
                delay: Duration::ZERO,
                invalid_users: Vec::new(),
                unlicensed_users: Vec::new(),
                per_user_minute_limit: Some(30),
                members: HashMap::new(),
                departments: Vec::new(),
                hidden_members: Vec::new(),
                contact_calls: 0,
                approval_templates: Vec::new(),
                approvals: Vec::new(),
                duplicates_suppressed: 0,
                uploads: 0,
                rate_dropped: 0,
                next_msgid: 1,
            }),
            gettoken_calls: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// A poisoned lock only means a handler panicked mid-update; the simulator keeps serving.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts the request and applies the configured delay (never holding the lock across it).
    async fn arrive(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl SimState {
    fn random_id(prefix: &str, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let tail: String = (0..len)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        format!("{prefix}{tail}")
    }

    fn issue_response_code(&mut self, agent_id: u32) -> String {
        let code = Self::random_id("", 43);
        self.response_codes.insert(
            code.clone(),
            ResponseCodeEntry {
                agent_id,
                issued: Instant::now(),
                used: false,
            },
        );
        code
    }

    fn next_msgid(&mut self) -> String {
        self.next_msgid += 1;
        Self::random_id(&format!("sim{}_", self.next_msgid), 24)
    }

    /// Resolves `access_token` to the app index, or the errcode WeCom answers.
    fn authenticate(&mut self, token: Option<&str>) -> Result<usize, Rejection> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Err(Rejection::WeCom(
                errcode::MISSING_ACCESS_TOKEN,
                "access_token missing",
            ));
        };
        match self.tokens.get(token) {
            None => Err(Rejection::WeCom(
                errcode::INVALID_ACCESS_TOKEN,
                "invalid access_token",
            )),
            Some(entry) if entry.expired || entry.issued.elapsed() >= TOKEN_LIFETIME => Err(
                Rejection::WeCom(errcode::ACCESS_TOKEN_EXPIRED, "access_token expired"),
            ),
            Some(entry) => Ok(entry.app),
        }
    }

    /// Prologue of the app's JSON calls (`message/send`, `update_template_card`): admitted as
    /// any token-bearing call, a JSON body, and its `agentid` the token's app's.
    fn admit_app_call(
        &mut self,
        query: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<(usize, Value), Rejection> {
        let app_index = self.admit(query)?;
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return Err(Rejection::WeCom(
                errcode::DATA_FORMAT_ERROR,
                "data format error",
            ));
        };
        let Some(agent_id) = agent_id_of(&body) else {
            return Err(Rejection::WeCom(
                errcode::MISSING_AGENT_ID,
                "missing agentid",
            ));
        };
        if agent_id != u64::from(self.apps[app_index].agent_id) {
            return Err(Rejection::WeCom(
                errcode::INVALID_AGENT_ID,
                "invalid agentid",
            ));
        }
        Ok((app_index, body))
    }

    /// Common prologue of token-bearing endpoints: injected fault, then token check.
    fn admit(&mut self, query: &HashMap<String, String>) -> Result<usize, Rejection> {
        if let Some(fault) = self.faults.pop_front() {
            return Err(match fault {
                Fault::Errcode(errcode) => Rejection::WeCom(errcode, canned_errmsg(errcode)),
                Fault::Http(status) => Rejection::Http(status),
            });
        }
        self.authenticate(query.get("access_token").map(String::as_str))
    }

    /// Whether one more delivery to `user` fits the 30-a-minute cap; records it if so.
    fn admit_delivery(&mut self, agent_id: u32, user: &str, now: Instant) -> bool {
        let Some(limit) = self.per_user_minute_limit else {
            return true;
        };
        let window = self
            .deliveries
            .entry((agent_id, user.to_owned()))
            .or_default();
        while window
            .front()
            .is_some_and(|sent| now.duration_since(*sent) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= limit {
            return false;
        }
        window.push_back(now);
        true
    }
}

/// Why a token-bearing request was turned away before its endpoint logic ran.
#[derive(Debug, Clone, Copy)]
enum Rejection {
    WeCom(i64, &'static str),
    /// A front-end failure: non-JSON body, as WeCom's gateways answer.
    Http(u16),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Self::WeCom(errcode, errmsg) => wecom_error(errcode, errmsg),
            Self::Http(status) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>Internal Server Error</body></html>",
            )
                .into_response(),
        }
    }
}

fn canned_errmsg(errcode: i64) -> &'static str {
    match errcode {
        errcode::SYSTEM_BUSY => "system busy",
        errcode::INVALID_ACCESS_TOKEN => "invalid access_token",
        errcode::ACCESS_TOKEN_EXPIRED => "access_token expired",
        errcode::API_RATE_LIMIT => "api freq out of limit",
        errcode::API_CONCURRENCY_LIMIT => "api concurrent out of limit",
        errcode::API_NO_PERMISSION => "api forbidden",
        errcode::UNTRUSTED_IP => {
            "not allow to access from your ip, hint: [simulated], from ip: 127.0.0.1"
        }
        _ => "simulated error",
    }
}

/// WeCom's error answer: HTTP 200, JSON, errcode + errmsg (real errmsgs append a hint and
/// a link; clients must not parse them).
fn wecom_error(errcode: i64, errmsg: &str) -> Response {
    Json(json!({
        "errcode": errcode,
        "errmsg": format!("{errmsg}, hint: [simulated], more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"),
    }))
    .into_response()
}

fn ok(mut body: Value) -> Response {
    if let Some(object) = body.as_object_mut() {
        object.insert("errcode".to_owned(), json!(0));
        object.insert("errmsg".to_owned(), json!("ok"));
    }
    Json(body).into_response()
}

async fn unknown_api(State(shared): State<Arc<Shared>>) -> Response {
    shared.arrive().await;
    // WeCom answers unknown cgi paths with a JSON error too.
    wecom_error(
        errcode::INVALID_PARAMETER,
        "invalid Request Parameter (api not simulated by kaitong)",
    )
}

async fn gettoken(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.arrive().await;
    shared.gettoken_calls.fetch_add(1, Ordering::SeqCst);
    let mut state = shared.lock();
    let Some(corp_id) = query.get("corpid").filter(|id| !id.is_empty()) else {
        return wecom_error(errcode::MISSING_CORP_ID, "corpid missing");
    };
    let Some(secret) = query.get("corpsecret").filter(|secret| !secret.is_empty()) else {
        return wecom_error(errcode::MISSING_SECRET, "corpsecret missing");
    };
    if !state.apps.iter().any(|app| &app.corp_id == corp_id) {
        return wecom_error(errcode::INVALID_CORP_ID, "invalid corpid");
    }
    let Some(app) = state
        .apps
        .iter()
        .position(|app| &app.corp_id == corp_id && &app.secret == secret)
    else {
        return wecom_error(errcode::INVALID_SECRET, "invalid credential");
    };
    // WeCom hands out the same token while it is valid.
    let current = state.tokens.iter().find(|(_, entry)| {
        entry.app == app && !entry.expired && entry.issued.elapsed() < TOKEN_LIFETIME
    });
    let (token, remaining) = match current {
        Some((token, entry)) => (token.clone(), TOKEN_LIFETIME - entry.issued.elapsed()),
        None => {
            let token = SimState::random_id("simtok_", 64);
            state.tokens.insert(
                token.clone(),
                TokenEntry {
                    app,
                    issued: Instant::now(),
                    expired: false,
                },
            );
            (token, TOKEN_LIFETIME)
        }
    };
    ok(json!({ "access_token": token, "expires_in": remaining.as_secs() }))
}

/// Splits WeCom's `a|b` id lists, ignoring empties.
fn id_list(body: &Value, field: &str) -> Vec<String> {
    body.get(field)
        .and_then(Value::as_str)
        .map(|ids| {
            ids.split('|')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `agentid` may be a number or a numeric string, as WeCom tolerates both.
fn agent_id_of(body: &Value) -> Option<u64> {
    match body.get("agentid")? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

async fn message_send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    let (app_index, body) = match state.admit_app_call(&query, &body) {
        Ok(admitted) => admitted,
        Err(rejection) => return rejection.into_response(),
    };
    let app_agent = state.apps[app_index].agent_id;
    let msgtype = body
        .get("msgtype")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let content = match message_content(&state, &msgtype, &body) {
        Ok(content) => content,
        Err(refused) => return refused.into_response(),
    };
    let recipients = match Recipients::of(&state, &body) {
        Ok(recipients) => recipients,
        Err(refused) => return refused.into_response(),
    };

    // An interaction card yields a single-use response_code for updating it later.
    let card_type = body
        .pointer("/template_card/card_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let response_code = (msgtype == "template_card"
        && matches!(
            card_type,
            "button_interaction" | "vote_interaction" | "multiple_interaction"
        ))
    .then(|| state.issue_response_code(app_agent));

    let msgid = state.send_once(
        Outgoing {
            app_agent,
            msgtype: &msgtype,
            content,
            body: &body,
        },
        &recipients,
    );
    let mut reply = json!({
        "invaliduser": recipients.invalid.join("|"),
        "invalidparty": "",
        "invalidtag": "",
        "unlicenseduser": recipients.unlicensed.join("|"),
        "msgid": msgid,
    });
    if let (Some(code), Some(object)) = (response_code, reply.as_object_mut()) {
        object.insert("response_code".to_owned(), json!(code));
    }
    ok(reply)
}

/// What a message says, as the simulator records it, or WeCom's refusal of it: text within
/// the limit, an unexpired upload, or a card's or article's object.
fn message_content(state: &SimState, msgtype: &str, body: &Value) -> Result<String, Rejection> {
    match msgtype {
        "text" | "markdown" => {
            let content = body
                .get(msgtype)
                .and_then(|payload| payload.get("content"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if content.is_empty() {
                return Err(Rejection::WeCom(errcode::EMPTY_CONTENT, "empty content"));
            }
            if content.len() > TEXT_LIMIT_BYTES {
                return Err(Rejection::WeCom(
                    errcode::CONTENT_TOO_LONG,
                    "content size out of limit",
                ));
            }
            Ok(content.to_owned())
        }
        "image" | "voice" | "video" | "file" => {
            // A media message names an uploaded file that has not expired.
            let media_id = body
                .pointer(&format!("/{msgtype}/media_id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match state.media.get(media_id) {
                Some(entry) if entry.created.elapsed() < MEDIA_LIFETIME => {
                    Ok(body[msgtype].to_string())
                }
                _ => Err(Rejection::WeCom(
                    errcode::INVALID_MEDIA_ID,
                    "invalid media_id",
                )),
            }
        }
        "template_card" | "textcard" | "news" | "mpnews" => match body.get(msgtype) {
            Some(payload) if payload.is_object() => Ok(payload.to_string()),
            _ => Err(Rejection::WeCom(
                errcode::INVALID_PARAMETER,
                "invalid Request Parameter",
            )),
        },
        _ => Err(Rejection::WeCom(
            errcode::INVALID_MSGTYPE,
            "invalid message type",
        )),
    }
}

/// A message's recipients, sorted as WeCom answers: unknown users, users without a licence,
/// and those it can reach.
struct Recipients {
    invalid: Vec<String>,
    unlicensed: Vec<String>,
    deliverable: Vec<String>,
    toparty: Vec<String>,
    totag: Vec<String>,
}

impl Recipients {
    /// The recipients of `body`, or WeCom's refusal when it names none, or none it can reach.
    fn of(state: &SimState, body: &Value) -> Result<Self, Rejection> {
        let touser = id_list(body, "touser");
        let toparty = id_list(body, "toparty");
        let totag = id_list(body, "totag");
        if touser.is_empty() && toparty.is_empty() && totag.is_empty() {
            return Err(Rejection::WeCom(
                errcode::RECIPIENTS_EMPTY,
                "All touser & toparty & totag invalid",
            ));
        }
        let (invalid, rest): (Vec<String>, Vec<String>) = touser
            .into_iter()
            .partition(|user| state.invalid_users.contains(user));
        let (unlicensed, deliverable): (Vec<String>, Vec<String>) = rest
            .into_iter()
            .partition(|user| state.unlicensed_users.contains(user));
        if deliverable.is_empty() && toparty.is_empty() && totag.is_empty() {
            return Err(Rejection::WeCom(
                errcode::ALL_RECIPIENTS_INVALID,
                "user & party & tag all invalid",
            ));
        }
        Ok(Self {
            invalid,
            unlicensed,
            deliverable,
            toparty,
            totag,
        })
    }
}

/// An admitted message on its way out.
struct Outgoing<'a> {
    app_agent: u32,
    msgtype: &'a str,
    content: String,
    body: &'a Value,
}

impl SimState {
    /// Sends `message` unless WeCom's duplicate check (when asked for) finds the same message
    /// sent within its interval; the message id either way.
    fn send_once(&mut self, message: Outgoing<'_>, recipients: &Recipients) -> String {
        let now = Instant::now();
        let duplicate_check = message
            .body
            .get("enable_duplicate_check")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            == 1;
        let mut sorted = recipients.deliverable.clone();
        sorted.sort();
        let dedupe_key = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            message.app_agent,
            sorted.join("|"),
            recipients.toparty.join("|"),
            recipients.totag.join("|"),
            message.msgtype,
            message.content,
        );
        self.recent
            .retain(|_, (_, sent, interval)| now.duration_since(*sent) < *interval);
        let earlier = self
            .recent
            .get(&dedupe_key)
            .map(|(msgid, _, _)| msgid.clone());
        if let Some(msgid) = earlier.filter(|_| duplicate_check) {
            self.duplicates_suppressed += 1;
            return msgid;
        }
        let msgid = self.next_msgid();
        if duplicate_check {
            let interval = message
                .body
                .get("duplicate_check_interval")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_DUPLICATE_CHECK_INTERVAL.as_secs())
                .min(MAX_DUPLICATE_INTERVAL_SECS);
            self.recent.insert(
                dedupe_key,
                (msgid.clone(), now, Duration::from_secs(interval)),
            );
        }
        self.deliver(message, &recipients.deliverable, &msgid, now);
        msgid
    }

    /// Records the message as sent to the members within their minute's limit; WeCom accepts
    /// and silently drops over-limit messages.
    fn deliver(
        &mut self,
        message: Outgoing<'_>,
        deliverable: &[String],
        msgid: &str,
        now: Instant,
    ) {
        let delivered: Vec<String> = deliverable
            .iter()
            .filter(|user| self.admit_delivery(message.app_agent, user, now))
            .cloned()
            .collect();
        if delivered.is_empty() && !deliverable.is_empty() {
            self.rate_dropped += 1;
        } else {
            self.sent.push(SentMessage {
                agent_id: message.app_agent,
                touser: delivered,
                msgtype: message.msgtype.to_owned(),
                content: message.content,
                msgid: msgid.to_owned(),
                time: chrono::Utc::now(),
                body: message.body.clone(),
            });
        }
    }
}

fn guess_content_type(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "amr" => "voice/amr",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

async fn media_get(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    if let Err(rejection) = state.admit(&query) {
        return rejection.into_response();
    }
    let Some(media_id) = query.get("media_id").filter(|id| !id.is_empty()) else {
        return wecom_error(errcode::MISSING_MEDIA_ID, "media_id missing");
    };
    let Some(entry) = state
        .media
        .get(media_id)
        .filter(|entry| entry.created.elapsed() < MEDIA_LIFETIME)
    else {
        return wecom_error(errcode::INVALID_MEDIA_ID, "invalid media_id");
    };
    let media = &entry.media;
    // WeCom puts the UTF-8 name raw into the quoted filename; header values may carry such
    // bytes (obs-text). Quotes cannot occur: upload replaced them.
    let disposition = format!(
        "attachment; filename=\"{}\"",
        media.file_name.replace('"', "_")
    );
    let disposition = HeaderValue::from_bytes(disposition.as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let content_type = HeaderValue::from_str(&media.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (headers, media.bytes.clone()).into_response()
}

/// One part of a multipart body.
struct Part {
    name: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

/// The parts of a `multipart/form-data` body, read with `multer` (the parser behind axum's
/// own `Multipart` extractor), not with the client's code. `None` when the body is no
/// multipart at all or has no part.
async fn parse_multipart(content_type: &str, body: Bytes) -> Option<Vec<Part>> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(ToString::to_string);
        let bytes = field.bytes().await.ok()?.to_vec();
        parts.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
    }
    (!parts.is_empty()).then_some(parts)
}

async fn media_upload(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.arrive().await;
    // Read before taking the state lock (parsing awaits); judged after the token and type.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let parts = parse_multipart(content_type, body).await;
    let mut state = shared.lock();
    if let Err(rejection) = state.admit(&query) {
        return rejection.into_response();
    }
    let kind = query.get("type").map(String::as_str).unwrap_or("");
    // Per-type size limits (doc 90253): image 10 MB, voice 2 MB, video 10 MB, file 20 MB.
    let (max_bytes, too_big) = match kind {
        "image" => (10 * 1024 * 1024, errcode::INVALID_IMAGE_SIZE),
        "voice" => (2 * 1024 * 1024, errcode::INVALID_FILE_SIZE),
        "video" => (10 * 1024 * 1024, errcode::INVALID_VIDEO_SIZE),
        "file" => (20 * 1024 * 1024, errcode::INVALID_FILE_SIZE),
        _ => return wecom_error(errcode::INVALID_FILE_TYPE, "invalid file type"),
    };
    let Some(parts) = parts else {
        return wecom_error(errcode::EMPTY_MEDIA, "empty media data");
    };
    let Some(part) = parts
        .into_iter()
        .find(|part| part.name.as_deref() == Some("media"))
    else {
        return wecom_error(errcode::EMPTY_MEDIA, "empty media data");
    };
    // WeCom rejects files of 5 bytes or fewer with 40006 不合法的文件大小.
    if part.bytes.len() <= 5 {
        return wecom_error(errcode::INVALID_FILE_SIZE, "invalid file size");
    }
    if part.bytes.len() > max_bytes {
        return wecom_error(too_big, "invalid file size");
    }
    let file_name = part.file_name.unwrap_or_else(|| "unnamed".to_owned());
    let content_type = match part.content_type.as_deref() {
        Some(declared) if declared != "application/octet-stream" => declared.to_owned(),
        _ => guess_content_type(&file_name).to_owned(),
    };
    let media_id = SimState::random_id("3sim", 60);
    state.uploads += 1;
    state.media.insert(
        media_id.clone(),
        MediaEntry {
            media: StoredMedia {
                file_name,
                content_type,
                bytes: part.bytes,
            },
            created: Instant::now(),
        },
    );
    // WeCom returns created_at as a string of Unix seconds.
    ok(json!({
        "type": kind,
        "media_id": media_id,
        "created_at": chrono::Utc::now().timestamp().to_string(),
    }))
}

/// An AI-bot `response_url`: no token, plain JSON, one message per URL.
async fn aibot_response(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    let Some(code) = query.get("response_code").filter(|c| !c.is_empty()) else {
        return wecom_error(errcode::INVALID_PARAMETER, "response_code missing");
    };
    if state
        .response_posts
        .iter()
        .any(|p| &p.response_code == code)
    {
        return wecom_error(errcode::INVALID_PARAMETER, "response_url already used");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return wecom_error(errcode::DATA_FORMAT_ERROR, "data format error");
    };
    let msgtype = body
        .get("msgtype")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let content = match msgtype.as_str() {
        "markdown" => match body.pointer("/markdown/content").and_then(Value::as_str) {
            Some(content) if !content.is_empty() => content.to_owned(),
            _ => return wecom_error(errcode::EMPTY_CONTENT, "empty content"),
        },
        "template_card" => match body.get("template_card") {
            Some(card) if card.is_object() => card.to_string(),
            _ => return wecom_error(errcode::INVALID_PARAMETER, "invalid Request Parameter"),
        },
        _ => return wecom_error(errcode::INVALID_MSGTYPE, "invalid message type"),
    };
    state.response_posts.push(ResponsePost {
        response_code: code.clone(),
        msgtype,
        content,
        body,
    });
    ok(json!({}))
}

/// `user/get`: a known member's JSON; 41009 without a userid, 60011 for a member outside the
/// app's visible range, 60111 for an unknown one.
async fn user_get(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    if let Err(rejection) = state.admit(&query) {
        return rejection.into_response();
    }
    state.contact_calls += 1;
    let Some(userid) = query.get("userid").filter(|u| !u.is_empty()) else {
        return wecom_error(errcode::MISSING_USERID, "missing userid");
    };
    // WeCom's userids are case-insensitive.
    let key = state
        .members
        .keys()
        .find(|known| known.eq_ignore_ascii_case(userid))
        .cloned();
    if state
        .hidden_members
        .iter()
        .any(|hidden| hidden.eq_ignore_ascii_case(userid))
    {
        return wecom_error(
            errcode::NO_PRIVILEGE,
            "no privilege to access/modify contact/party/agent",
        );
    }
    match key.and_then(|key| state.members.get(&key).cloned()) {
        Some(member) => ok(member),
        None => wecom_error(errcode::USERID_NOT_FOUND, "userid not found"),
    }
}

/// `department/list`: every department, as WeCom lists them.
async fn department_list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    if let Err(rejection) = state.admit(&query) {
        return rejection.into_response();
    }
    state.contact_calls += 1;
    ok(json!({ "department": state.departments.clone() }))
}

/// `oa/applyevent`: files an approval on a known template for a known-looking creator and
/// answers its `sp_no` (`YYYYMMDD` + a 4-digit sequence, as WeCom numbers them). An unknown
/// template answers 40058 (不合法的参数): the exact code WeCom gives is not in its public table
/// (a documented guess); a body without `creator_userid` or `template_id` the same.
async fn oa_applyevent(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    if let Err(rejection) = state.admit(&query) {
        return rejection.into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return wecom_error(errcode::DATA_FORMAT_ERROR, "data format error");
    };
    let text = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let (creator, template_id) = (text("creator_userid"), text("template_id"));
    if creator.is_empty() || !state.approval_templates.contains(&template_id) {
        return wecom_error(
            errcode::INVALID_PARAMETER,
            "invalid Request Parameter (creator_userid or template_id)",
        );
    }
    let sp_no = format!(
        "{}{:04}",
        chrono::Utc::now().format("%Y%m%d"),
        state.approvals.len() + 1
    );
    state.approvals.push(FiledApproval {
        sp_no: sp_no.clone(),
        creator,
        template_id,
        body,
    });
    ok(json!({ "sp_no": sp_no }))
}

async fn update_template_card(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.arrive().await;
    let mut state = shared.lock();
    let (app_index, body) = match state.admit_app_call(&query, &body) {
        Ok(admitted) => admitted,
        Err(rejection) => return rejection.into_response(),
    };
    let app_agent = state.apps[app_index].agent_id;
    let Some(response_code) = body
        .get("response_code")
        .and_then(Value::as_str)
        .filter(|code| !code.is_empty())
    else {
        return wecom_error(errcode::INVALID_PARAMETER, "response_code missing");
    };
    let usable = state
        .response_codes
        .get(response_code)
        .is_some_and(|entry| {
            !entry.used
                && entry.agent_id == app_agent
                && entry.issued.elapsed() < RESPONSE_CODE_LIFETIME
        });
    if !usable {
        return wecom_error(errcode::INVALID_PARAMETER, "invalid response_code");
    }
    let replace_name = body
        .pointer("/button/replace_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if replace_name.is_none() && !body.get("template_card").is_some_and(Value::is_object) {
        return wecom_error(
            errcode::INVALID_PARAMETER,
            "button or template_card required",
        );
    }
    if let Some(entry) = state.response_codes.get_mut(response_code) {
        entry.used = true;
    }
    let userids: Vec<String> = body
        .get("userids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let invalid: Vec<String> = userids
        .iter()
        .filter(|user| state.invalid_users.contains(user))
        .cloned()
        .collect();
    state.card_updates.push(CardUpdate {
        agent_id: app_agent,
        userids,
        response_code: response_code.to_owned(),
        replace_name,
        body: body.clone(),
    });
    ok(json!({ "invaliduser": invalid }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn multipart_reader_finds_the_media_part() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"报告;b.txt\"; filelength=6\r\nContent-Type: application/octet-stream\r\n\r\nabc\r\ndef\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", Bytes::from(body))
            .await
            .expect("parsed");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name.as_deref(), Some("media"));
        assert_eq!(parts[0].file_name.as_deref(), Some("报告;b.txt"));
        assert_eq!(parts[0].bytes, b"abc\r\ndef");
    }

    #[tokio::test]
    async fn multipart_reader_rejects_garbage() {
        let form = "multipart/form-data; boundary=XyZ";
        assert!(
            parse_multipart(form, Bytes::from_static(b"nothing here"))
                .await
                .is_none()
        );
        assert!(
            parse_multipart("text/plain", Bytes::from_static(b"--XyZ--"))
                .await
                .is_none()
        );
    }
}
