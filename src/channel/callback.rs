//! What both channels do with one callback: why it is refused (`Rejection`), what it answers
//! (`CallbackResponse`), the signing checks, decrypting, the reply's stamp, their shared
//! settings (`ChannelSettings`), and running its turn at most once (`answer_once`).

use std::time::Duration;

use super::dedupe::{Outcome, ReplyCache};
use crate::domain::{Bot, ChannelKind, Inbound, Reply};
use crate::wecom::aibot_json::JsonError;
use crate::wecom::app_xml::XmlError;
use crate::wecom::{CallbackQuery, CryptoError, MsgCrypt};

/// Why a callback was refused; each maps to one HTTP status in `http`.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    #[error("timestamp {0:?} outside the accepted window")]
    StaleTimestamp(String),
    #[error("bad signature")]
    BadSignature,
    #[error("receive id does not match this app")]
    ReceiveIdMismatch,
    #[error("malformed callback: {0}")]
    Malformed(#[from] Malformed),
}

/// What is wrong with a callback refused as malformed.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// A part that must be text is not UTF-8 (`body`, `message`, `echostr`).
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A field that must be set is empty (`FromUserName`, `from.userid`, `msgid`).
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("group message without chatid")]
    GroupWithoutChatId,
    /// The app channel's XML envelope or message.
    #[error(transparent)]
    Xml(XmlError),
    /// The AI bot's JSON envelope or message.
    #[error(transparent)]
    Json(JsonError),
    /// Decrypting failed, other than for a foreign receive id; with the code Tencent's sample
    /// libraries give it.
    #[error("{0} ({code})", code = .0.code())]
    Crypto(#[source] CryptoError),
}

impl Rejection {
    /// Whether the sender failed to prove it is WeCom (401) rather than sent garbage (400).
    #[must_use]
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::StaleTimestamp(_) | Self::BadSignature | Self::ReceiveIdMismatch
        )
    }
}

/// What a callback answers with: the body of a 200 (empty = no reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResponse {
    pub body: String,
    pub content_type: &'static str,
}

impl CallbackResponse {
    #[must_use]
    pub fn empty() -> Self {
        Self {
            body: String::new(),
            content_type: "text/plain; charset=utf-8",
        }
    }
}

/// A signed, fresh request's signature parts.
pub(super) struct SignedQuery<'a> {
    signature: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
}

/// Checks presence and freshness of the signing parameters (the signature itself is checked
/// against the payload by the caller).
pub(super) fn signed_query<'a>(
    query: &'a CallbackQuery,
    now: i64,
    window: Duration,
) -> Result<SignedQuery<'a>, Rejection> {
    let signature = query
        .msg_signature
        .as_deref()
        .ok_or(Rejection::MissingParameter("msg_signature"))?;
    let timestamp = query
        .timestamp
        .as_deref()
        .ok_or(Rejection::MissingParameter("timestamp"))?;
    let nonce = query
        .nonce
        .as_deref()
        .ok_or(Rejection::MissingParameter("nonce"))?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejection::StaleTimestamp(timestamp.to_owned()))?;
    // `abs_diff` cannot overflow: `now - sent` wraps for a timestamp near i64::MIN (a signed
    // callback with timestamp = now − 2^63 would otherwise land inside the window).
    if now.abs_diff(sent) > window.as_secs() {
        return Err(Rejection::StaleTimestamp(timestamp.to_owned()));
    }
    Ok(SignedQuery {
        signature,
        timestamp,
        nonce,
    })
}

/// Verifies then decrypts, mapping crypto failures to rejections.
pub(super) fn open(
    crypt: &MsgCrypt,
    signed: &SignedQuery<'_>,
    encrypted: &str,
) -> Result<Vec<u8>, Rejection> {
    crypt
        .verify_signature(signed.signature, signed.timestamp, signed.nonce, encrypted)
        .map_err(|_| Rejection::BadSignature)?;
    crypt.decrypt(encrypted).map_err(|e| match e {
        CryptoError::ValidateReceiveId => Rejection::ReceiveIdMismatch,
        other => Rejection::Malformed(Malformed::Crypto(other)),
    })
}

/// URL verification (GET): verify echostr's signature and answer its plaintext.
pub(super) fn verify_url(
    crypt: &MsgCrypt,
    query: &CallbackQuery,
    now: i64,
    window: Duration,
) -> Result<String, Rejection> {
    let signed = signed_query(query, now, window)?;
    let echostr = query
        .echostr
        .as_deref()
        .ok_or(Rejection::MissingParameter("echostr"))?;
    let plain = open(crypt, &signed, echostr)?;
    String::from_utf8(plain).map_err(|_| Malformed::NotUtf8("echostr").into())
}

/// A fresh timestamp and nonce for a reply envelope.
pub(super) fn reply_stamp() -> (String, String) {
    use rand::Rng;
    (
        chrono::Utc::now().timestamp().to_string(),
        rand::thread_rng()
            .gen_range(1_000_000_000u64..9_999_999_999)
            .to_string(),
    )
}

/// Settings shared by both channels.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub timestamp_window: Duration,
    /// Said when the store is unreachable, instead of failing the callback.
    pub busy_text: String,
    /// Said to a person who sends faster than the per-person limit.
    pub slow_down_text: String,
    pub limiter: std::sync::Arc<super::limit::RateLimiter>,
}

/// Runs one callback's turn at most once and returns the reply plaintext to seal, or `None`
/// when the answer is an empty 200 (a retry arriving while the first call still runs).
///
/// Shared by both channels: the per-person rate limit (checked after de-duplication), the turn
/// metrics, WeCom's retries and the "store unavailable" answer are the same; only rendering
/// differs, and `render` does it.
pub(super) async fn answer_once<R, Fut>(
    channel: ChannelKind,
    replies: &ReplyCache,
    settings: &ChannelSettings,
    bot: &dyn Bot,
    key: &str,
    inbound: Inbound,
    render: R,
) -> Option<String>
where
    R: Fn(Reply) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let name = channel.as_str();
    // The limit is taken inside the turn, which runs only for the first arrival of a message:
    // WeCom's retries of a message already answered (or in flight) never use up a token, so
    // a burst of retries cannot throttle the person's next real message.
    let turn = || async {
        let limited = !settings
            .limiter
            .allow(&format!("{name}:{}", inbound.sender));
        if limited {
            tracing::warn!(channel = name, user = %inbound.sender, "per-person rate limit hit");
            crate::metrics::callback(name, "rate_limited");
            return render(Reply::Text(settings.slow_down_text.clone())).await;
        }
        let started = std::time::Instant::now();
        // `replies.run_once` stores the reply durably before it is returned: the turn's own
        // writes ride on that fsync.
        let reply = bot.respond_then_persist(inbound).await;
        crate::metrics::turn(name, started.elapsed());
        render(reply).await
    };
    match replies.run_once(key, turn).await {
        Ok(Outcome::Fresh(reply)) => Some(reply),
        Ok(Outcome::Replayed(reply)) => {
            tracing::info!(channel = name, key, "retried callback answered from cache");
            crate::metrics::callback(name, "replayed");
            Some(reply)
        }
        Ok(Outcome::InFlight) => {
            tracing::info!(channel = name, key, "retry while first call still running");
            None
        }
        Err(e) => {
            tracing::error!(channel = name, error = %e, "store unavailable; answering busy");
            crate::metrics::callback(name, "busy");
            Some(render(Reply::Text(settings.busy_text.clone())).await)
        }
    }
}
