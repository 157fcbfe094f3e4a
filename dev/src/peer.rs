//! The WeCom server's side of a callback: builds signed, encrypted callbacks the way WeCom does
//! and opens the replies. `kaitong-dev chat` and the end-to-end tests speak through it.

use kaitong::wecom::aibot_json::ReplyEnvelope;
use kaitong::wecom::crypto::{CryptoError, MsgCrypt};
use rand::Rng;

/// A signed callback ready to send: the query string (already percent-encoded) and the body.
#[derive(Debug, Clone)]
pub struct SignedCallback {
    pub query: String,
    pub body: String,
    pub timestamp: String,
    pub nonce: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("reply is not a valid envelope: {0}")]
    Envelope(String),
}

fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// WeCom as seen from one app or AI bot: same token, key and receive id as the server's config.
#[derive(Debug, Clone)]
pub struct WecomPeer {
    crypt: MsgCrypt,
}

impl WecomPeer {
    #[must_use]
    pub fn new(crypt: MsgCrypt) -> Self {
        Self { crypt }
    }

    #[must_use]
    pub fn crypt(&self) -> &MsgCrypt {
        &self.crypt
    }

    fn fresh_nonce() -> String {
        rand::thread_rng()
            .gen_range(100_000_000u64..9_999_999_999)
            .to_string()
    }

    fn now() -> String {
        chrono::Utc::now().timestamp().to_string()
    }

    /// The GET URL-verification query, with the plaintext echo WeCom expects back.
    pub fn verify_url_query(&self, echo: &str) -> Result<String, CryptoError> {
        let (timestamp, nonce) = (Self::now(), Self::fresh_nonce());
        let echostr = self.crypt.encrypt(echo.as_bytes())?;
        let signature = self.crypt.signature(&timestamp, &nonce, &echostr);
        Ok(format!(
            "msg_signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr={}",
            encode(&echostr)
        ))
    }

    /// Signs `encrypted` with an explicit timestamp and nonce (tests use stale or odd ones).
    #[must_use]
    pub fn query_for(&self, encrypted: &str, timestamp: &str, nonce: &str) -> String {
        let signature = self.crypt.signature(timestamp, nonce, encrypted);
        format!(
            "msg_signature={signature}&timestamp={}&nonce={}",
            encode(timestamp),
            encode(nonce)
        )
    }

    /// A self-built app POST callback carrying `inner_xml`.
    pub fn app_callback(
        &self,
        inner_xml: &str,
        agent_id: &str,
    ) -> Result<SignedCallback, CryptoError> {
        let (timestamp, nonce) = (Self::now(), Self::fresh_nonce());
        let encrypted = self.crypt.encrypt(inner_xml.as_bytes())?;
        let body = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[{agent_id}]]></AgentID></xml>",
            self.crypt.receive_id()
        );
        Ok(SignedCallback {
            query: self.query_for(&encrypted, &timestamp, &nonce),
            body,
            timestamp,
            nonce,
        })
    }

    /// An AI-bot POST callback carrying the JSON message `inner_json`.
    pub fn aibot_callback(&self, inner_json: &str) -> Result<SignedCallback, CryptoError> {
        let (timestamp, nonce) = (Self::now(), Self::fresh_nonce());
        let encrypted = self.crypt.encrypt(inner_json.as_bytes())?;
        let body = serde_json::json!({ "encrypt": encrypted }).to_string();
        Ok(SignedCallback {
            query: self.query_for(&encrypted, &timestamp, &nonce),
            body,
            timestamp,
            nonce,
        })
    }

    /// Verifies and decrypts an app's passive XML reply; `None` for the empty "no reply" body.
    pub fn open_app_reply(&self, body: &str) -> Result<Option<String>, PeerError> {
        if body.trim().is_empty() {
            return Ok(None);
        }
        let fields = ReplyXml::parse(body).map_err(PeerError::Envelope)?;
        let plain = self.crypt.verify_and_decrypt(
            &fields.signature,
            &fields.timestamp,
            &fields.nonce,
            &fields.encrypt,
        )?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|e| PeerError::Envelope(e.to_string()))
    }

    /// Verifies and decrypts an AI bot's JSON reply; `None` for the empty "no reply" body.
    pub fn open_aibot_reply(&self, body: &str) -> Result<Option<serde_json::Value>, PeerError> {
        if body.trim().is_empty() {
            return Ok(None);
        }
        let envelope: ReplyEnvelope =
            serde_json::from_str(body).map_err(|e| PeerError::Envelope(e.to_string()))?;
        let plain = self.crypt.verify_and_decrypt(
            &envelope.msgsignature,
            &envelope.timestamp,
            &envelope.nonce,
            &envelope.encrypt,
        )?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| PeerError::Envelope(e.to_string()))
    }
}

#[derive(serde::Deserialize)]
struct ReplyXml {
    #[serde(rename = "Encrypt")]
    encrypt: String,
    #[serde(rename = "MsgSignature")]
    signature: String,
    #[serde(rename = "TimeStamp")]
    timestamp: String,
    #[serde(rename = "Nonce")]
    nonce: String,
}

impl ReplyXml {
    fn parse(body: &str) -> Result<Self, String> {
        quick_xml::de::from_str(body).map_err(|e| e.to_string())
    }
}

/// Builds the inner XML of an app text message, as WeCom would send it.
#[must_use]
pub fn app_text_xml(
    corp_id: &str,
    user: &str,
    agent_id: &str,
    msg_id: u64,
    content: &str,
) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content><MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>",
        chrono::Utc::now().timestamp(),
        kaitong::wecom::app_xml::cdata(content)
    )
}

/// Builds the decrypted JSON of an AI-bot text message; `chat_id` makes it a group message.
#[must_use]
pub fn aibot_text_json(msg_id: &str, user: &str, chat_id: Option<&str>, content: &str) -> String {
    let mut msg = serde_json::json!({
        "msgid": msg_id,
        "aibotid": "kaitong-aibot",
        "chattype": if chat_id.is_some() { "group" } else { "single" },
        "from": {"userid": user},
        "response_url": "http://127.0.0.1/response",
        "msgtype": "text",
        "text": {"content": content},
    });
    if let Some(chat) = chat_id {
        msg["chatid"] = serde_json::Value::String(chat.to_owned());
    }
    msg.to_string()
}
