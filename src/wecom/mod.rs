//! The WeCom wire protocol: callback crypto, envelope shapes of both inbound channels, and the
//! outbound server API client. WeCom's own side (simulator, callback peer) is in the
//! developer's crate (`kaitong_dev`, `dev/`).
//!
//! Owns bytes and wire formats only; it must not know about dialogs, requests or the store.

pub mod aibot_json;
pub mod api;
pub mod app_xml;
pub mod cards;
pub mod crypto;
pub mod text;

pub use crypto::{AesKey, AesKeySettingError, CryptoError, MsgCrypt};

/// WeCom's byte limit on a text message's content: a passive reply is truncated beyond it and
/// `message/send` refuses more (errcode 45002).
pub const TEXT_LIMIT_BYTES: usize = 2048;

/// The query parameters WeCom signs a callback with, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackQuery {
    pub msg_signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
}

impl CallbackQuery {
    /// Percent-decodes each value without turning `+` into a space: echostr is base64 and WeCom
    /// sends `+` as `%2B`, but a literal `+` must survive too.
    #[must_use]
    pub fn parse(raw_query: &str) -> Self {
        let mut query = Self::default();
        for pair in raw_query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned();
            match name {
                "msg_signature" => query.msg_signature = Some(value),
                "timestamp" => query.timestamp = Some(value),
                "nonce" => query.nonce = Some(value),
                "echostr" => query.echostr = Some(value),
                _ => {}
            }
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_and_plus_survives() {
        let q =
            CallbackQuery::parse("msg_signature=ab&timestamp=1&nonce=n&echostr=P9n%2BAz%2F%3D+x");
        assert_eq!(q.echostr.as_deref(), Some("P9n+Az/=+x"));
        assert_eq!(q.msg_signature.as_deref(), Some("ab"));
        assert_eq!(CallbackQuery::parse("").timestamp, None);
    }
}
