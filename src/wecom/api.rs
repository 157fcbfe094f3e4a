//! Outbound WeCom server API client, one [`WecomApi`] per self-built app (corp id + secret +
//! agent id): `gettoken`, `message/send`, `media/get`, `media/upload`,
//! `message/update_template_card` (PROTOCOL.md §4, §7).
//!
//! Owns: the per-app access-token cache (refreshed early, single-flight, retried once on a
//! rejected token), request/response wire shapes, body size caps, and the classification of
//! WeCom errcodes into retryable / configuration problems. It must not know about dialogs,
//! channels or the store, and it does not retry busy/rate-limit errors itself: callers decide,
//! guided by [`ApiError::is_retryable`] and [`ApiError::retry_after`].
//!
//! Secrets: neither the app secret nor the access token is ever logged or put into an error.
//! Logs carry only the API path and the errcode. `reqwest` errors are stripped of their URL
//! because the URL carries the token (or, for gettoken, the secret).
//!
//! Limitations: `media_get` downloads in one request, so files above 20 MB (which WeCom only
//! serves in `Range` chunks, else errcode 830002) are not supported; a multi-part `send_text`
//! that fails midway has already delivered the earlier parts.

use std::fmt;
use std::time::{Duration, Instant};

// `bytes::Bytes` via axum's re-export (no direct `bytes` dependency): request bodies are
// cloned cheaply when a call is retried with a fresh token.
use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::secret::Secret;

/// The production API base.
pub const DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com/cgi-bin";

/// Byte limit WeCom enforces on `text.content` and `markdown.content` (errcode 45002 beyond).
pub const TEXT_LIMIT_BYTES: usize = 2048;

/// Default `duplicate_check_interval` WeCom applies (seconds).
pub const DEFAULT_DUPLICATE_CHECK_INTERVAL: Duration = Duration::from_secs(1800);
/// Largest `duplicate_check_interval` WeCom accepts: 4 hours.
pub const MAX_DUPLICATE_CHECK_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// WeCom errcodes this module branches on (DOC-90313). Never branch on `errmsg`.
pub mod errcode {
    pub const SYSTEM_BUSY: i64 = -1;
    pub const INVALID_SECRET: i64 = 40001;
    pub const INVALID_FILE_SIZE: i64 = 40006;
    pub const INVALID_MEDIA_ID: i64 = 40007;
    pub const INVALID_MSGTYPE: i64 = 40008;
    pub const INVALID_CORP_ID: i64 = 40013;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const INVALID_AGENT_ID: i64 = 40056;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const EMPTY_CONTENT: i64 = 44004;
    pub const CONTENT_TOO_LONG: i64 = 45002;
    pub const API_RATE_LIMIT: i64 = 45009;
    pub const API_CONCURRENCY_LIMIT: i64 = 45033;
    pub const API_NO_PERMISSION: i64 = 48002;
    pub const UNTRUSTED_IP: i64 = 60020;
    pub const IP_WHITELIST: i64 = 301042;
    pub const ALL_RECIPIENTS_INVALID: i64 = 81013;
    pub const RECIPIENTS_EMPTY: i64 = 82001;
}

/// Tunables for one client. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout, headers and body.
    pub request_timeout: Duration,
    /// Cap on JSON response bodies.
    pub json_body_cap: usize,
    /// Cap on `media/get` bodies; WeCom serves at most 20 MB per request.
    pub media_body_cap: usize,
    /// Refresh the token this long before WeCom says it expires, so a token never dies in flight.
    pub token_refresh_margin: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            json_body_cap: 1024 * 1024,
            media_body_cap: 20 * 1024 * 1024,
            token_refresh_margin: Duration::from_secs(300),
        }
    }
}

impl ApiSettings {
    /// A `reqwest::Client` with these timeouts. Redirects are not followed: the WeCom API never
    /// redirects, and following one would carry the token to another host.
    pub fn http_client(&self) -> Result<reqwest::Client, ApiError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ApiError::Transport {
                path: "client",
                source: source.without_url(),
            })
    }
}

/// Everything that can go wrong calling WeCom.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Connection refused, DNS, TLS, timeout, reset: the request may or may not have arrived.
    #[error("WeCom API {path}: transport error: {source}")]
    Transport {
        path: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx status without a WeCom JSON error body (WeCom's front ends answer 5xx this way).
    #[error("WeCom API {path}: HTTP status {status}")]
    Http { path: &'static str, status: u16 },
    /// WeCom answered with a non-zero errcode.
    #[error("WeCom API {path}: errcode {errcode}: {errmsg}")]
    WeCom {
        path: &'static str,
        errcode: i64,
        errmsg: String,
    },
    /// The response body exceeded the configured cap.
    #[error("WeCom API {path}: response body larger than {limit} bytes")]
    BodyTooLarge { path: &'static str, limit: usize },
    /// The response was not the shape WeCom documents.
    #[error("WeCom API {path}: unexpected response: {reason}")]
    InvalidResponse { path: &'static str, reason: String },
    /// The request could not be built (e.g. unserializable card).
    #[error("WeCom API {path}: invalid request: {reason}")]
    InvalidRequest { path: &'static str, reason: String },
}

impl ApiError {
    /// The WeCom errcode, if WeCom answered with one.
    #[must_use]
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::WeCom { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// Whether the request timed out (connect or total), as opposed to being refused or reset.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }

    /// Whether trying the same call again later can succeed: WeCom busy (-1), rate and
    /// concurrency limits (45009, 45033), HTTP 5xx, and transport failures. Note a transport
    /// failure on `message/send` may mean the message was delivered; use the duplicate check
    /// when resending.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::WeCom { errcode, .. } => matches!(
                *errcode,
                errcode::SYSTEM_BUSY | errcode::API_RATE_LIMIT | errcode::API_CONCURRENCY_LIMIT
            ),
            Self::BodyTooLarge { .. }
            | Self::InvalidResponse { .. }
            | Self::InvalidRequest { .. } => false,
        }
    }

    /// How long to wait before retrying, for retryable errors. WeCom's minute-level rate-limit
    /// blocks last 60 s (DOC-90312), so 45009 waits a full minute.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        if !self.is_retryable() {
            return None;
        }
        Some(match self {
            Self::WeCom {
                errcode: errcode::API_RATE_LIMIT,
                ..
            } => Duration::from_secs(60),
            Self::WeCom {
                errcode: errcode::API_CONCURRENCY_LIMIT,
                ..
            } => Duration::from_secs(2),
            _ => Duration::from_secs(1),
        })
    }

    /// A bilingual hint when the error means the deployment is misconfigured (retrying will not
    /// help; an administrator must act).
    #[must_use]
    pub fn config_problem(&self) -> Option<&'static str> {
        let Self::WeCom { errcode, .. } = self else {
            return None;
        };
        Some(match *errcode {
            errcode::UNTRUSTED_IP => {
                "服务器IP不在应用的企业可信IP中：请在应用管理→本应用→企业可信IP中添加本服务器的出口IP，约1分钟后生效。\
                 / The server's IP is not in the app's trusted IPs (企业可信IP): add this server's egress IP in the app's settings; it takes effect after about a minute."
            }
            errcode::IP_WHITELIST => {
                "服务器IP不在IP白名单中：请在管理后台添加本服务器的出口IP。\
                 / The server's IP is not on the IP whitelist: add this server's egress IP in the admin console."
            }
            errcode::API_NO_PERMISSION => {
                "接口无权限：请检查应用的可见范围与接口权限（例如群聊接口要求可见范围为根部门）。\
                 / API not permitted: check the app's visibility range and API permissions (e.g. app chats need the root department visible)."
            }
            errcode::INVALID_SECRET => {
                "Secret 不正确：请核对应用详情中的 Secret（多次错误会导致IP被封禁1小时）。\
                 / Wrong app secret: check the Secret on the app's detail page (repeated failures ban the IP for an hour)."
            }
            errcode::INVALID_CORP_ID => {
                "CorpID 不正确：请在管理后台“我的企业”页核对企业ID。\
                 / Wrong corp id: check the corp ID on the admin console's My Company page."
            }
            errcode::INVALID_AGENT_ID => {
                "AgentId 不正确：请核对应用详情中的 AgentId，且与 Secret 属于同一应用。\
                 / Wrong agent id: check the app's AgentId and that it belongs to the same app as the secret."
            }
            _ => return None,
        })
    }

    /// Whether WeCom rejected the access token itself, so a fresh one should fix the call.
    fn is_token_rejection(&self) -> bool {
        matches!(
            self.errcode(),
            Some(
                errcode::INVALID_ACCESS_TOKEN
                    | errcode::ACCESS_TOKEN_EXPIRED
                    | errcode::MISSING_ACCESS_TOKEN
            )
        )
    }

    fn path(&self) -> &'static str {
        match self {
            Self::Transport { path, .. }
            | Self::Http { path, .. }
            | Self::WeCom { path, .. }
            | Self::BodyTooLarge { path, .. }
            | Self::InvalidResponse { path, .. }
            | Self::InvalidRequest { path, .. } => path,
        }
    }
}

/// Ask WeCom to drop a message identical to one sent within `interval`
/// (`enable_duplicate_check` / `duplicate_check_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCheck {
    interval: Duration,
}

impl DuplicateCheck {
    /// Clamped to WeCom's accepted range (1 s ..= 4 h).
    #[must_use]
    pub fn within(interval: Duration) -> Self {
        Self {
            interval: interval.clamp(Duration::from_secs(1), MAX_DUPLICATE_CHECK_INTERVAL),
        }
    }

    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl Default for DuplicateCheck {
    fn default() -> Self {
        Self {
            interval: DEFAULT_DUPLICATE_CHECK_INTERVAL,
        }
    }
}

/// `{"content": …}` of text and markdown messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub content: String,
}

/// The `msgtype` and its payload. Serializes as `"msgtype":"text","text":{…}` etc.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msgtype", rename_all = "snake_case")]
pub enum MessageBody {
    Text {
        text: Content,
    },
    Markdown {
        markdown: Content,
    },
    /// A full card (PROTOCOL.md §7); built by whoever owns card layouts.
    TemplateCard {
        template_card: serde_json::Value,
    },
    /// A file uploaded with [`WecomApi::media_upload`] (`MediaKind::File`).
    File {
        file: MediaRef,
    },
}

/// `{"media_id": …}` of file, image, voice and video messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    pub media_id: String,
}

impl MessageBody {
    #[must_use]
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            text: Content {
                content: content.into(),
            },
        }
    }

    #[must_use]
    pub fn markdown(content: impl Into<String>) -> Self {
        Self::Markdown {
            markdown: Content {
                content: content.into(),
            },
        }
    }
}

/// One `message/send` request (doc 90236). Build with [`OutboundMessage::new`]; `agentid`
/// defaults to the sending app's when `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// User ids joined by `|` on the wire (≤ 1000, or `@all`).
    pub touser: Vec<String>,
    pub toparty: Vec<String>,
    pub totag: Vec<String>,
    pub agentid: Option<u32>,
    pub body: MessageBody,
    pub duplicate_check: Option<DuplicateCheck>,
}

impl OutboundMessage {
    #[must_use]
    pub fn new(touser: &[&str], body: MessageBody) -> Self {
        Self {
            touser: touser.iter().map(|user| (*user).to_owned()).collect(),
            toparty: Vec::new(),
            totag: Vec::new(),
            agentid: None,
            body,
            duplicate_check: None,
        }
    }

    #[must_use]
    pub fn with_duplicate_check(mut self, check: Option<DuplicateCheck>) -> Self {
        self.duplicate_check = check;
        self
    }

    fn to_wire(&self, default_agent: u32) -> WireMessage<'_> {
        let join = |ids: &[String]| (!ids.is_empty()).then(|| ids.join("|"));
        WireMessage {
            touser: join(&self.touser),
            toparty: join(&self.toparty),
            totag: join(&self.totag),
            agentid: self.agentid.unwrap_or(default_agent),
            body: &self.body,
            enable_duplicate_check: u8::from(self.duplicate_check.is_some()),
            duplicate_check_interval: self.duplicate_check.map(|check| check.interval.as_secs()),
        }
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    touser: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    toparty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totag: Option<String>,
    agentid: u32,
    #[serde(flatten)]
    body: &'a MessageBody,
    enable_duplicate_check: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_check_interval: Option<u64>,
}

/// What `message/send` reported. WeCom answers errcode 0 even when some recipients were
/// invalid or unlicensed; those are listed here (partial failure).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// The msgid of the last part sent (the only part for short messages); needed for recall.
    pub msgid: String,
    /// Every part's msgid, in sending order.
    pub part_msgids: Vec<String>,
    pub invaliduser: Vec<String>,
    pub invalidparty: Vec<String>,
    pub invalidtag: Vec<String>,
    pub unlicenseduser: Vec<String>,
    /// Only for button/vote/multiple interaction cards: single use, valid 72 h.
    pub response_code: Option<String>,
}

impl SendOutcome {
    fn absorb(&mut self, reply: SendReply) {
        fn merge(into: &mut Vec<String>, ids: &str) {
            for id in ids.split('|').filter(|id| !id.is_empty()) {
                if !into.iter().any(|known| known == id) {
                    into.push(id.to_owned());
                }
            }
        }
        merge(&mut self.invaliduser, &reply.invaliduser);
        merge(&mut self.invalidparty, &reply.invalidparty);
        merge(&mut self.invalidtag, &reply.invalidtag);
        merge(&mut self.unlicenseduser, &reply.unlicenseduser);
        if reply
            .response_code
            .as_deref()
            .is_some_and(|code| !code.is_empty())
        {
            self.response_code = reply.response_code;
        }
        self.part_msgids.push(reply.msgid.clone());
        self.msgid = reply.msgid;
    }
}

#[derive(Deserialize)]
struct SendReply {
    #[serde(default)]
    invaliduser: String,
    #[serde(default)]
    invalidparty: String,
    #[serde(default)]
    invalidtag: String,
    #[serde(default)]
    unlicenseduser: String,
    #[serde(default)]
    msgid: String,
    #[serde(default)]
    response_code: Option<String>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct UploadReply {
    media_id: String,
}

/// `{"errcode":…,"errmsg":…}`, present on every JSON answer.
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// A downloaded temporary media file.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    pub file_name: Option<String>,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Media {
    // Bytes can be megabytes; print only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Media")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The `type` of `media/upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Voice,
    Video,
    File,
}

impl MediaKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::File => "file",
        }
    }
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

enum RequestBody {
    Empty,
    Json(Bytes),
    /// A `multipart/form-data` upload with the single part WeCom reads, `media`; rebuilt for
    /// each attempt (a reqwest form is consumed by sending it).
    Media {
        file_name: String,
        bytes: Bytes,
    },
}

/// What kind of successful answer an endpoint gives; decides the body cap and whether
/// non-JSON bodies are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Json,
    /// Raw bytes on success (media/get), JSON only on error.
    Media,
}

/// What a successful call returned: a JSON object (errcode 0) or raw bytes (media/get).
enum Reply {
    Json(Bytes),
    Binary {
        content_type: String,
        content_disposition: Option<Vec<u8>>,
        bytes: Vec<u8>,
    },
}

/// The WeCom API client for one app. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct WecomApi {
    api_base: String,
    corp_id: String,
    secret: Secret,
    agent_id: u32,
    http: reqwest::Client,
    settings: ApiSettings,
    /// Held across a gettoken call so concurrent callers share one refresh (single flight).
    token: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for WecomApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WecomApi")
            .field("api_base", &self.api_base)
            .field("corp_id", &self.corp_id)
            .field("secret", &self.secret)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

impl WecomApi {
    /// A client with the default settings (connect 3 s, total 10 s, 1 MiB JSON, 20 MiB media).
    pub fn new(
        api_base: impl Into<String>,
        corp_id: impl Into<String>,
        secret: String,
        agent_id: u32,
    ) -> Result<Self, ApiError> {
        Self::with_settings(api_base, corp_id, secret, agent_id, ApiSettings::default())
    }

    pub fn with_settings(
        api_base: impl Into<String>,
        corp_id: impl Into<String>,
        secret: String,
        agent_id: u32,
        settings: ApiSettings,
    ) -> Result<Self, ApiError> {
        let http = settings.http_client()?;
        Ok(Self::with_client(
            api_base, corp_id, secret, agent_id, http, settings,
        ))
    }

    /// Share one connection pool between apps; `http` should carry the timeouts itself
    /// (see [`ApiSettings::http_client`]).
    #[must_use]
    pub fn with_client(
        api_base: impl Into<String>,
        corp_id: impl Into<String>,
        secret: String,
        agent_id: u32,
        http: reqwest::Client,
        settings: ApiSettings,
    ) -> Self {
        Self {
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            corp_id: corp_id.into(),
            secret: Secret::from(secret),
            agent_id,
            http,
            settings,
            token: Mutex::new(None),
        }
    }

    #[must_use]
    pub fn agent_id(&self) -> u32 {
        self.agent_id
    }

    #[must_use]
    pub fn corp_id(&self) -> &str {
        &self.corp_id
    }

    /// Sends text, split into parts of at most 2048 bytes (at a newline when one is near the
    /// limit, never inside a character), in order. Stops at the first failing part.
    pub async fn send_text(
        &self,
        touser: &[&str],
        content: &str,
        dedupe: Option<DuplicateCheck>,
    ) -> Result<SendOutcome, ApiError> {
        self.send_split(touser, content, dedupe, MessageBody::text)
            .await
    }

    /// Like [`Self::send_text`] for markdown. A split may fall inside a markdown construct;
    /// callers wanting clean breaks keep their markdown under the limit.
    pub async fn send_markdown(
        &self,
        touser: &[&str],
        content: &str,
        dedupe: Option<DuplicateCheck>,
    ) -> Result<SendOutcome, ApiError> {
        self.send_split(touser, content, dedupe, MessageBody::markdown)
            .await
    }

    async fn send_split(
        &self,
        touser: &[&str],
        content: &str,
        dedupe: Option<DuplicateCheck>,
        body: fn(String) -> MessageBody,
    ) -> Result<SendOutcome, ApiError> {
        let mut parts = split_on_char_boundaries(content, TEXT_LIMIT_BYTES);
        if parts.is_empty() {
            // Let WeCom judge empty content (44004) rather than silently sending nothing.
            parts.push(String::new());
        }
        let mut outcome = SendOutcome::default();
        for part in parts {
            let message = OutboundMessage::new(touser, body(part)).with_duplicate_check(dedupe);
            outcome.absorb(self.send_one(&message).await?);
        }
        Ok(outcome)
    }

    /// Sends one message as given (no splitting).
    pub async fn send(&self, message: &OutboundMessage) -> Result<SendOutcome, ApiError> {
        let mut outcome = SendOutcome::default();
        outcome.absorb(self.send_one(message).await?);
        Ok(outcome)
    }

    async fn send_one(&self, message: &OutboundMessage) -> Result<SendReply, ApiError> {
        const PATH: &str = "message/send";
        let body = json_body(PATH, &message.to_wire(self.agent_id))?;
        self.call_json(reqwest::Method::POST, PATH, &[], body).await
    }

    /// Replaces the button of an interaction card the users clicked (doc 94888). The
    /// `response_code` is single use and valid 72 h.
    pub async fn update_template_card(
        &self,
        userids: &[&str],
        response_code: &str,
        replace_name: &str,
    ) -> Result<(), ApiError> {
        const PATH: &str = "message/update_template_card";
        let request = serde_json::json!({
            "userids": userids,
            "agentid": self.agent_id,
            "response_code": response_code,
            "button": { "replace_name": replace_name },
        });
        let body = json_body(PATH, &request)?;
        let _: serde::de::IgnoredAny = self
            .call_json(reqwest::Method::POST, PATH, &[], body)
            .await?;
        Ok(())
    }

    /// Replaces the whole card the users clicked (doc 94888, `template_card` form), e.g. to
    /// show disabled options after a vote. Same single-use `response_code` as above.
    pub async fn replace_template_card(
        &self,
        userids: &[&str],
        response_code: &str,
        template_card: &serde_json::Value,
    ) -> Result<(), ApiError> {
        const PATH: &str = "message/update_template_card";
        let request = serde_json::json!({
            "userids": userids,
            "agentid": self.agent_id,
            "response_code": response_code,
            "template_card": template_card,
        });
        let body = json_body(PATH, &request)?;
        let _: serde::de::IgnoredAny = self
            .call_json(reqwest::Method::POST, PATH, &[], body)
            .await?;
        Ok(())
    }

    /// Downloads a temporary media file. Errors arrive as a JSON body with HTTP 200, recognised
    /// by Content-Type, not by status.
    pub async fn media_get(&self, media_id: &str) -> Result<Media, ApiError> {
        const PATH: &str = "media/get";
        let query = [("media_id", media_id)];
        match self
            .call(
                reqwest::Method::GET,
                PATH,
                &query,
                RequestBody::Empty,
                Expect::Media,
            )
            .await?
        {
            Reply::Binary {
                content_type,
                content_disposition,
                bytes,
            } => Ok(Media {
                file_name: content_disposition
                    .as_deref()
                    .and_then(parse_content_disposition_filename),
                content_type,
                bytes,
            }),
            Reply::Json(_) => Err(ApiError::InvalidResponse {
                path: PATH,
                reason: "JSON with errcode 0 instead of media bytes".to_owned(),
            }),
        }
    }

    /// Uploads a temporary media file (valid 3 days) and returns its `media_id`. WeCom rejects
    /// files of 5 bytes or fewer (40006).
    pub async fn media_upload(
        &self,
        kind: MediaKind,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<String, ApiError> {
        const PATH: &str = "media/upload";
        let reply: UploadReply = self
            .call_json(
                reqwest::Method::POST,
                PATH,
                &[("type", kind.as_str())],
                RequestBody::Media {
                    file_name: header_safe_file_name(file_name),
                    bytes: Bytes::copy_from_slice(bytes),
                },
            )
            .await?;
        Ok(reply.media_id)
    }

    /// Forgets the cached token, e.g. after the secret was rotated.
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    /// A valid access token, from the cache or one shared gettoken call.
    async fn access_token(&self) -> Result<String, ApiError> {
        // Holding the lock across gettoken is the single flight: callers queued behind it find
        // the fresh token when they get the lock.
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Drops `rejected` from the cache unless another caller already replaced it.
    async fn invalidate_if_current(&self, rejected: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == rejected) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, ApiError> {
        const PATH: &str = "gettoken";
        let request = self.http.get(self.url(PATH)).query(&[
            ("corpid", self.corp_id.as_str()),
            ("corpsecret", self.secret.expose()),
        ]);
        let reply: TokenReply = match self.execute(PATH, request, Expect::Json).await? {
            Reply::Json(bytes) => decode(PATH, &bytes)?,
            Reply::Binary { .. } => return Err(not_json(PATH)),
        };
        tracing::debug!(
            path = PATH,
            expires_in = reply.expires_in,
            "fetched WeCom access token"
        );
        let lifetime = Duration::from_secs(reply.expires_in);
        // Very short lifetimes (never seen from WeCom) still get half their life cached.
        let margin = self.settings.token_refresh_margin.min(lifetime / 2);
        Ok(CachedToken {
            value: reply.access_token,
            refresh_at: Instant::now() + (lifetime - margin),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.api_base)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: RequestBody,
    ) -> Result<T, ApiError> {
        match self.call(method, path, query, body, Expect::Json).await? {
            Reply::Json(bytes) => decode(path, &bytes),
            Reply::Binary { .. } => Err(not_json(path)),
        }
    }

    /// One authenticated call; when WeCom rejects the token, fetches a fresh one and retries
    /// exactly once.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: RequestBody,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let mut retried = false;
        loop {
            let token = self.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .query(&[("access_token", token.as_str())])
                .query(query);
            request = match &body {
                RequestBody::Empty => request,
                RequestBody::Json(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone()),
                RequestBody::Media { file_name, bytes } => {
                    request.multipart(media_form(file_name, bytes)?)
                }
            };
            match self.execute(path, request, expect).await {
                Err(error) if error.is_token_rejection() && !retried => {
                    tracing::info!(
                        path,
                        errcode = error.errcode(),
                        "WeCom rejected the access token; refreshing and retrying once"
                    );
                    self.invalidate_if_current(&token).await;
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// Sends, reads the capped body, and turns a non-zero errcode into [`ApiError::WeCom`].
    async fn execute(
        &self,
        path: &'static str,
        request: reqwest::RequestBuilder,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let result = self.execute_inner(path, request, expect).await;
        // errcode 0 for success; -2 marks a failure without a WeCom errcode (transport, HTTP).
        crate::metrics::wecom_api(
            path,
            result
                .as_ref()
                .map_or_else(|e| e.errcode().unwrap_or(-2), |_| 0),
        );
        if let Err(error) = &result
            && !error.is_token_rejection()
        {
            // Token rejections are logged by `call`, which retries them.
            // Path and errcode only: never the URL (token) or the secret.
            tracing::warn!(
                path = error.path(),
                errcode = error.errcode(),
                retryable = error.is_retryable(),
                error = %error,
                "WeCom API call failed"
            );
        }
        result
    }

    async fn execute_inner(
        &self,
        path: &'static str,
        request: reqwest::RequestBuilder,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let transport = |source: reqwest::Error| ApiError::Transport {
            path,
            source: source.without_url(),
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let content_disposition = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .map(|value| value.as_bytes().to_vec());
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let declared_json = media_type == "application/json";
        // Only media/get may answer with large non-JSON bodies.
        let limit = if declared_json || expect == Expect::Json {
            self.settings.json_body_cap
        } else {
            self.settings.media_body_cap
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(ApiError::BodyTooLarge { path, limit });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::BodyTooLarge { path, limit });
            }
            bytes.extend_from_slice(&chunk);
        }

        // WeCom error bodies come as application/json, sometimes text/plain; a text/plain body
        // that is not an errcode object is a downloaded .txt file. JSON-only endpoints are read
        // as JSON whatever the label, as long as the body carries an errcode.
        let status_body = if declared_json || expect == Expect::Json || media_type == "text/plain" {
            serde_json::from_slice::<Status>(&bytes)
                .ok()
                .filter(|_| declared_json || looks_like_status(&bytes))
        } else {
            None
        };
        if let Some(reply_status) = status_body {
            if reply_status.errcode != 0 {
                return Err(ApiError::WeCom {
                    path,
                    errcode: reply_status.errcode,
                    errmsg: reply_status.errmsg,
                });
            }
            if status.is_success() {
                return Ok(Reply::Json(Bytes::from(bytes)));
            }
        }
        if !status.is_success() {
            return Err(ApiError::Http {
                path,
                status: status.as_u16(),
            });
        }
        if declared_json || expect == Expect::Json {
            return Err(ApiError::InvalidResponse {
                path,
                reason: format!("body is not a WeCom JSON object (Content-Type {media_type:?})"),
            });
        }
        Ok(Reply::Binary {
            content_type,
            content_disposition,
            bytes,
        })
    }
}

fn looks_like_status(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
        .is_ok_and(|object| object.contains_key("errcode"))
}

fn json_body<T: Serialize>(path: &'static str, value: &T) -> Result<RequestBody, ApiError> {
    serde_json::to_vec(value)
        .map(|bytes| RequestBody::Json(Bytes::from(bytes)))
        .map_err(|error| ApiError::InvalidRequest {
            path,
            reason: error.to_string(),
        })
}

fn decode<T: DeserializeOwned>(path: &'static str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| ApiError::InvalidResponse {
        path,
        reason: error.to_string(),
    })
}

fn not_json(path: &'static str) -> ApiError {
    ApiError::InvalidResponse {
        path,
        reason: "expected a JSON body".to_owned(),
    }
}

/// A file name that needs no escaping inside the part's quoted `filename="…"`: WeCom takes
/// UTF-8 names raw, and a quote, backslash or line break would need escapes it may not read.
fn header_safe_file_name(file_name: &str) -> String {
    file_name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The upload form: one part named `media` with the file name unencoded (as WeCom expects)
/// and a known length, so reqwest sends a `Content-Length` rather than chunks.
fn media_form(file_name: &str, bytes: &Bytes) -> Result<reqwest::multipart::Form, ApiError> {
    let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let part = reqwest::multipart::Part::stream_with_length(bytes.clone(), length)
        .file_name(file_name.to_owned())
        .mime_str("application/octet-stream")
        .map_err(|error| ApiError::InvalidRequest {
            path: "media/upload",
            reason: error.to_string(),
        })?;
    Ok(reqwest::multipart::Form::new()
        .percent_encode_noop()
        .part("media", part))
}

/// The file name from a `Content-Disposition` header value: `filename*=UTF-8''…` (RFC 5987)
/// wins over `filename="…"`; the plain form may carry raw UTF-8 (as WeCom sends Chinese names)
/// or percent-escapes.
#[must_use]
pub fn parse_content_disposition_filename(header: &[u8]) -> Option<String> {
    let header = String::from_utf8_lossy(header);
    let mut plain = None;
    let mut extended = None;
    for param in split_params(&header) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == "filename*" {
            // charset'language'percent-encoded
            let mut pieces = value.splitn(3, '\'');
            let (charset, _language, encoded) = (pieces.next(), pieces.next(), pieces.next());
            if let (Some(charset), Some(encoded)) = (charset, encoded)
                && charset.eq_ignore_ascii_case("utf-8")
            {
                extended = percent_encoding::percent_decode_str(encoded)
                    .decode_utf8()
                    .ok()
                    .map(|name| name.into_owned());
            }
        } else if name == "filename" {
            let unquoted = value
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"");
            let decoded = percent_encoding::percent_decode_str(&unquoted)
                .decode_utf8()
                .map(|name| name.into_owned())
                .unwrap_or(unquoted);
            plain = Some(decoded);
        }
    }
    extended.or(plain).filter(|name| !name.is_empty())
}

/// Splits header parameters on `;` outside quotes.
fn split_params(header: &str) -> Vec<&str> {
    let mut params = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                params.push(&header[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    params.push(&header[start..]);
    params
}

/// Splits `text` into parts of at most `limit_bytes` bytes, never inside a character. A part
/// ends just after a newline when one lies in the last quarter of the chunk, so paragraphs stay
/// whole when possible. Concatenating the parts gives back `text`; empty text gives no parts.
/// `limit_bytes` below 4 is raised to 4 so that every character fits.
#[must_use]
pub fn split_on_char_boundaries(text: &str, limit_bytes: usize) -> Vec<String> {
    let limit = limit_bytes.max(4);
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let window_start = cut - cut / 4;
        if let Some(newline) = rest[..cut].rfind('\n')
            && newline + 1 > window_start
        {
            cut = newline + 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part.to_owned());
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_part_and_empty_is_none() {
        assert_eq!(split_on_char_boundaries("你好", 2048), vec!["你好"]);
        assert!(split_on_char_boundaries("", 2048).is_empty());
    }

    #[test]
    fn split_never_cuts_a_character() {
        let text = "汉".repeat(1000); // 3000 bytes
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 2046);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_prefers_a_newline_near_the_end() {
        let text = format!("{}\n{}", "a".repeat(1800), "b".repeat(1000));
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts[0], format!("{}\n", "a".repeat(1800)));
        assert_eq!(parts[1], "b".repeat(1000));
    }

    #[test]
    fn split_ignores_a_newline_far_from_the_end() {
        let text = format!("{}\n{}", "a".repeat(10), "b".repeat(3000));
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts[0].len(), 2048);
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let parts = split_on_char_boundaries("😀😀", 1);
        assert_eq!(parts, vec!["😀", "😀"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn split_round_trips_within_limit(
            text in "(\\PC|\n){0,400}",
            limit in 4usize..64,
        ) {
            let parts = split_on_char_boundaries(&text, limit);
            prop_assert_eq!(parts.concat(), text);
            for part in &parts {
                prop_assert!(!part.is_empty());
                prop_assert!(part.len() <= limit);
                prop_assert!(std::str::from_utf8(part.as_bytes()).is_ok());
            }
        }
    }

    #[test]
    fn content_disposition_forms() {
        let parse = |h: &str| parse_content_disposition_filename(h.as_bytes());
        assert_eq!(
            parse("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            parse("attachment; filename=\"报价单.xlsx\"").as_deref(),
            Some("报价单.xlsx")
        );
        assert_eq!(
            parse("attachment; filename=\"%E6%8A%A5%E4%BB%B7.txt\"").as_deref(),
            Some("报价.txt")
        );
        assert_eq!(
            parse("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E6%8A%A5%E4%BB%B7.txt")
                .as_deref(),
            Some("报价.txt")
        );
        assert_eq!(
            parse("attachment; filename=\"a;b.txt\"").as_deref(),
            Some("a;b.txt")
        );
        assert_eq!(parse("attachment"), None);
    }

    #[test]
    fn wire_message_shape() {
        let message = OutboundMessage::new(&["zhangsan", "lisi"], MessageBody::text("hi"))
            .with_duplicate_check(Some(DuplicateCheck::within(Duration::from_secs(60))));
        let json = serde_json::to_value(message.to_wire(1000002)).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({
                "touser": "zhangsan|lisi",
                "agentid": 1000002,
                "msgtype": "text",
                "text": {"content": "hi"},
                "enable_duplicate_check": 1,
                "duplicate_check_interval": 60,
            })
        );
    }

    #[test]
    fn classification() {
        let wecom = |errcode| ApiError::WeCom {
            path: "message/send",
            errcode,
            errmsg: String::new(),
        };
        assert!(wecom(45009).is_retryable());
        assert_eq!(wecom(45009).retry_after(), Some(Duration::from_secs(60)));
        assert!(wecom(-1).is_retryable());
        assert!(!wecom(60020).is_retryable());
        assert!(wecom(60020).config_problem().is_some());
        assert!(wecom(48002).config_problem().is_some());
        assert!(wecom(40001).config_problem().is_some());
        assert!(wecom(40013).config_problem().is_some());
        assert!(wecom(45009).config_problem().is_none());
        assert!(
            ApiError::Http {
                path: "x",
                status: 502
            }
            .is_retryable()
        );
        assert!(
            !ApiError::Http {
                path: "x",
                status: 404
            }
            .is_retryable()
        );
    }

    #[test]
    fn upload_names_lose_only_what_would_break_the_part_header() {
        assert_eq!(
            header_safe_file_name("报告\"a\\b\r\n.txt"),
            "报告_a_b__.txt"
        );
        assert_eq!(
            header_safe_file_name("营业执照 2026.pdf"),
            "营业执照 2026.pdf"
        );
        assert!(media_form("报告.txt", &Bytes::from_static(b"hello world")).is_ok());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let api = WecomApi::new("http://127.0.0.1:1/cgi-bin", "corp", "s3cr3t".into(), 1)
            .expect("client");
        assert!(!format!("{api:?}").contains("s3cr3t"));
    }
}
