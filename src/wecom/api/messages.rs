//! `message/send` and `message/update_template_card`: the outbound message model, its wire
//! shape, WeCom's duplicate check and what a send reports back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::WecomApi;
use super::errors::ApiError;
use super::wire::json_body;
use crate::wecom::TEXT_LIMIT_BYTES;
use crate::wecom::cards::{ButtonReplacement, TemplateCard};
use crate::wecom::text::message_parts;

/// Default `duplicate_check_interval` WeCom applies (seconds).
pub const DEFAULT_DUPLICATE_CHECK_INTERVAL: Duration = Duration::from_secs(1800);

/// Ask WeCom to drop a message identical to one sent within WeCom's default interval
/// (`enable_duplicate_check` / `duplicate_check_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCheck {
    interval: Duration,
}

impl Default for DuplicateCheck {
    fn default() -> Self {
        Self {
            interval: DEFAULT_DUPLICATE_CHECK_INTERVAL,
        }
    }
}

/// `{"content": …}` of text messages.
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
    /// A full card (PROTOCOL.md §7), shaped by [`crate::wecom::cards`].
    TemplateCard {
        template_card: TemplateCard,
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

/// The `message/update_template_card` body that relabels the buttons of a clicked card.
#[derive(Serialize)]
struct WireCardUpdate<'a> {
    userids: &'a [&'a str],
    agentid: u32,
    response_code: &'a str,
    button: ButtonReplacement,
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

impl WecomApi {
    /// Sends text, split into parts of at most 2048 bytes where a reader would (between
    /// paragraphs, lines or sentences; never inside a character), in order. Stops at the first
    /// failing part.
    pub async fn send_text(
        &self,
        touser: &[&str],
        content: &str,
        dedupe: Option<DuplicateCheck>,
    ) -> Result<SendOutcome, ApiError> {
        let mut parts = message_parts(content, TEXT_LIMIT_BYTES);
        if parts.is_empty() {
            // Let WeCom judge empty content (44004) rather than silently sending nothing.
            parts.push(String::new());
        }
        let mut outcome = SendOutcome::default();
        for part in parts {
            let message =
                OutboundMessage::new(touser, MessageBody::text(part)).with_duplicate_check(dedupe);
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

    /// Replaces the button of an interaction card the users clicked (doc 94888), the label
    /// clipped to WeCom's 20 characters. The `response_code` is single use and valid 72 h.
    pub async fn update_template_card(
        &self,
        userids: &[&str],
        response_code: &str,
        replace_name: &str,
    ) -> Result<(), ApiError> {
        const PATH: &str = "message/update_template_card";
        let request = WireCardUpdate {
            userids,
            agentid: self.agent_id,
            response_code,
            button: ButtonReplacement::new(replace_name),
        };
        let body = json_body(PATH, &request)?;
        let _: serde::de::IgnoredAny = self
            .call_json(reqwest::Method::POST, PATH, &[], body)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_message_shape() {
        let message = OutboundMessage::new(&["zhangsan", "lisi"], MessageBody::text("hi"))
            .with_duplicate_check(Some(DuplicateCheck::default()));
        let json = serde_json::to_value(message.to_wire(1000002)).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({
                "touser": "zhangsan|lisi",
                "agentid": 1000002,
                "msgtype": "text",
                "text": {"content": "hi"},
                "enable_duplicate_check": 1,
                "duplicate_check_interval": 1800,
            })
        );
    }

    #[test]
    fn card_update_shape() {
        let update = WireCardUpdate {
            userids: &["zhangsan"],
            agentid: 1000002,
            response_code: "code",
            button: ButtonReplacement::new("已处理"),
        };
        assert_eq!(
            serde_json::to_value(update).expect("serializable"),
            serde_json::json!({
                "userids": ["zhangsan"],
                "agentid": 1000002,
                "response_code": "code",
                "button": {"replace_name": "已处理"},
            })
        );
    }
}
