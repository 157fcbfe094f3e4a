//! What can go wrong calling WeCom, and what a caller should do about it: the errcodes we
//! branch on, retryable or not, how long to wait, and the configuration problems an
//! administrator must fix.

use std::time::Duration;

/// WeCom's global errcodes (DOC-90313) by name, the one list the client and the simulator
/// (`kaitong_dev::simulator`, in `dev/`) share. Never branch on `errmsg`.
pub mod errcode {
    pub const SYSTEM_BUSY: i64 = -1;
    pub const INVALID_SECRET: i64 = 40001;
    pub const INVALID_FILE_TYPE: i64 = 40005;
    pub const INVALID_FILE_SIZE: i64 = 40006;
    pub const INVALID_MEDIA_ID: i64 = 40007;
    pub const INVALID_MSGTYPE: i64 = 40008;
    pub const INVALID_IMAGE_SIZE: i64 = 40009;
    pub const INVALID_VIDEO_SIZE: i64 = 40011;
    pub const INVALID_CORP_ID: i64 = 40013;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const INVALID_AGENT_ID: i64 = 40056;
    pub const INVALID_PARAMETER: i64 = 40058;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const MISSING_CORP_ID: i64 = 41002;
    pub const MISSING_SECRET: i64 = 41004;
    pub const MISSING_MEDIA_ID: i64 = 41006;
    pub const MISSING_AGENT_ID: i64 = 41011;
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const EMPTY_MEDIA: i64 = 44001;
    pub const EMPTY_CONTENT: i64 = 44004;
    pub const CONTENT_TOO_LONG: i64 = 45002;
    pub const API_RATE_LIMIT: i64 = 45009;
    pub const API_CONCURRENCY_LIMIT: i64 = 45033;
    pub const DATA_FORMAT_ERROR: i64 = 47001;
    pub const MISSING_USERID: i64 = 41009;
    pub const API_NO_PERMISSION: i64 = 48002;
    /// No privilege to read the member or department (outside the app's visible range).
    pub const NO_PRIVILEGE: i64 = 60011;
    pub const UNTRUSTED_IP: i64 = 60020;
    pub const USERID_NOT_FOUND: i64 = 60111;
    pub const IP_WHITELIST: i64 = 301042;
    pub const ALL_RECIPIENTS_INVALID: i64 = 81013;
    pub const RECIPIENTS_EMPTY: i64 = 82001;
}

/// Everything that can go wrong calling WeCom.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Connection refused, DNS, TLS, timeout, reset: the request may or may not have arrived.
    /// Shown with its cause and the whole source chain: reqwest's own text ("error sending
    /// request") names none of them.
    #[error("WeCom API {path}: transport error ({}): {}", transport_cause(.source), source_chain(.source))]
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

    /// How long WeCom tells us to wait, for the errors that carry such a rule: its
    /// minute-level rate-limit blocks last 60 s (DOC-90312), so 45009 waits a full minute;
    /// 45033 (too many at once) a moment. Every other error has no hint: the caller's own
    /// backoff decides (a fixed short hint here once spent an outbox item's every attempt in
    /// half a minute of network trouble).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self.errcode()? {
            errcode::API_RATE_LIMIT => Some(Duration::from_secs(60)),
            errcode::API_CONCURRENCY_LIMIT => Some(Duration::from_secs(2)),
            _ => None,
        }
    }

    /// What went wrong, in a word or two an operator can act on: `DNS`, `refused`, `TLS`,
    /// `timeout`, `reset`, `connect` (transport, from the source chain), `HTTP 502`,
    /// `errcode 45009`, `body too large`, `bad response`, `bad request`.
    #[must_use]
    pub fn cause(&self) -> String {
        match self {
            Self::Transport { source, .. } => transport_cause(source).to_owned(),
            Self::Http { status, .. } => format!("HTTP {status}"),
            Self::WeCom { errcode, .. } => format!("errcode {errcode}"),
            Self::BodyTooLarge { .. } => "body too large".to_owned(),
            Self::InvalidResponse { .. } => "bad response".to_owned(),
            Self::InvalidRequest { .. } => "bad request".to_owned(),
        }
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
    pub(super) fn is_token_rejection(&self) -> bool {
        matches!(
            self.errcode(),
            Some(
                errcode::INVALID_ACCESS_TOKEN
                    | errcode::ACCESS_TOKEN_EXPIRED
                    | errcode::MISSING_ACCESS_TOKEN
            )
        )
    }

    pub(super) fn path(&self) -> &'static str {
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

/// The errors under `error`, outermost first, itself included.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// The error and its sources joined with `: `, each text once (wrappers often repeat their
/// source's text).
#[must_use]
pub fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(error) {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The cause of a network failure, read from its source chain: `DNS`, `refused`, `TLS`,
/// `timeout`, `reset`, `connect` (another failure to connect) or `network`. reqwest, hyper and
/// rustls do not expose their error types to us alike, so I/O kinds are read where there is
/// one and the texts of the layers (hyper-util's `dns error`, rustls' certificate and
/// handshake errors) where there is not.
#[must_use]
pub fn transport_cause(error: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut connect = false;
    for e in chain(error) {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "refused",
                std::io::ErrorKind::TimedOut => return "timeout",
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => return "reset",
                _ => {}
            }
        }
        if let Some(request) = e.downcast_ref::<reqwest::Error>() {
            if request.is_timeout() {
                return "timeout";
            }
            connect |= request.is_connect();
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
            || text.contains("no address associated")
        {
            return "DNS";
        }
        if text.contains("certificate")
            || text.contains("tls")
            || text.contains("handshake")
            || text.contains("invalid peer")
        {
            return "TLS";
        }
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return "timeout";
        }
        if text.contains("connection closed")
            || text.contains("connection reset")
            || text.contains("incomplete message")
        {
            return "reset";
        }
    }
    if connect { "connect" } else { "network" }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A wrapper around an error, as hyper and reqwest wrap the I/O error underneath.
    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Wrapped {
        text: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn the_cause_is_read_from_the_source_chain() {
        let wrapped = |text, kind: std::io::ErrorKind| Wrapped {
            text,
            source: std::io::Error::new(kind, "inner"),
        };
        let cause = |e: &Wrapped| transport_cause(e);
        assert_eq!(
            cause(&wrapped(
                "tcp connect error",
                std::io::ErrorKind::ConnectionRefused
            )),
            "refused"
        );
        assert_eq!(
            cause(&wrapped(
                "error sending request",
                std::io::ErrorKind::TimedOut
            )),
            "timeout"
        );
        assert_eq!(
            cause(&wrapped(
                "connection error",
                std::io::ErrorKind::ConnectionReset
            )),
            "reset"
        );
        assert_eq!(
            cause(&wrapped("dns error", std::io::ErrorKind::Other)),
            "DNS"
        );
        assert_eq!(
            cause(&wrapped(
                "invalid peer certificate: UnknownIssuer",
                std::io::ErrorKind::InvalidData
            )),
            "TLS"
        );
        assert_eq!(cause(&wrapped("odd", std::io::ErrorKind::Other)), "network");
        assert_eq!(
            source_chain(&wrapped("dns error", std::io::ErrorKind::Other)),
            "dns error: inner"
        );
    }

    #[test]
    fn only_wecoms_own_rules_give_a_wait() {
        let wecom = |errcode| ApiError::WeCom {
            path: "message/send",
            errcode,
            errmsg: String::new(),
        };
        assert_eq!(wecom(45033).retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(wecom(-1).retry_after(), None, "busy: the caller's backoff");
        let http = ApiError::Http {
            path: "x",
            status: 502,
        };
        assert_eq!(http.retry_after(), None);
        assert_eq!(http.cause(), "HTTP 502");
        assert_eq!(wecom(45009).cause(), "errcode 45009");
    }
}
