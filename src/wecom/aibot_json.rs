//! JSON shapes of the AI bot (智能机器人) channel: the `{"encrypt"}` envelope, the decrypted
//! message or event, and the reply bodies (stream, text, template card updates).

use serde::{Deserialize, Serialize};

use super::cards::{TemplateCard, TextNotice};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("malformed JSON: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("missing field {0}")]
    Missing(&'static str),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    encrypt: Option<String>,
    // Some senders capitalise the key; accept both rather than reject a real tenant.
    #[serde(rename = "Encrypt")]
    encrypt_capitalised: Option<String>,
}

/// Returns the ciphertext of a well-formed `{"encrypt": "..."}` body.
pub fn parse_envelope(body: &[u8]) -> Result<String, JsonError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(JsonError::Malformed)?;
    envelope
        .encrypt
        .or(envelope.encrypt_capitalised)
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .ok_or(JsonError::Missing("encrypt"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BotMessage {
    pub msgid: String,
    pub aibotid: String,
    pub chatid: Option<String>,
    pub chattype: Option<String>,
    pub from: Sender,
    pub create_time: Option<i64>,
    pub response_url: Option<String>,
    pub msgtype: String,
    pub text: Option<TextBody>,
    pub image: Option<UrlBody>,
    pub file: Option<UrlBody>,
    pub video: Option<UrlBody>,
    pub voice: Option<TextBody>,
    pub mixed: Option<Mixed>,
    pub stream: Option<StreamRef>,
    pub event: Option<Event>,
    pub quote: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sender {
    pub userid: String,
    pub corpid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextBody {
    pub content: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UrlBody {
    pub url: String,
    pub filename: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Mixed {
    pub msg_item: Vec<MixedItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MixedItem {
    pub msgtype: String,
    pub text: Option<TextBody>,
    pub image: Option<UrlBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StreamRef {
    pub id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    pub eventtype: String,
    pub template_card_event: Option<CardEvent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CardEvent {
    pub card_type: String,
    pub event_key: String,
    pub task_id: String,
    pub selected_items: Option<SelectedItems>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SelectedItems {
    pub selected_item: Vec<SelectedItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SelectedItem {
    pub question_key: String,
    pub option_ids: OptionIds,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OptionIds {
    pub option_id: Vec<String>,
}

impl BotMessage {
    pub fn parse(json: &[u8]) -> Result<Self, JsonError> {
        let msg: BotMessage = serde_json::from_slice(json).map_err(JsonError::Malformed)?;
        if msg.msgtype.is_empty() {
            return Err(JsonError::Missing("msgtype"));
        }
        Ok(msg)
    }
}

/// The encrypted reply body of the JSON protocol.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyEnvelope {
    pub encrypt: String,
    pub msgsignature: String,
    pub timestamp: String,
    pub nonce: String,
}

/// Markdown stream content is capped at 20480 bytes by WeCom (doc 101031). The same cap is
/// taken for a markdown message posted to `response_url`, whose own limit is not documented.
pub const STREAM_LIMIT_BYTES: usize = 20480;

/// A stream's content; the channel splits longer text before, so the cut here (between
/// sentences) is only a guard.
fn stream_content(content: &str) -> String {
    super::text::split_text(content, STREAM_LIMIT_BYTES)
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[must_use]
pub fn stream_reply(stream_id: &str, content: &str, finish: bool) -> serde_json::Value {
    serde_json::json!({
        "msgtype": "stream",
        "stream": {"id": stream_id, "finish": finish, "content": stream_content(content)}
    })
}

/// A stream and a card below it in one reply (doc 101031 流式消息+模板卡片回复): the question's
/// text, then its buttons.
#[must_use]
pub fn stream_with_card_reply(
    stream_id: &str,
    content: &str,
    finish: bool,
    card: &TemplateCard,
) -> serde_json::Value {
    serde_json::json!({
        "msgtype": "stream_with_template_card",
        "stream": {"id": stream_id, "finish": finish, "content": stream_content(content)},
        "template_card": card,
    })
}

/// A markdown message for `response_url`.
#[must_use]
pub fn markdown_message(content: &str) -> serde_json::Value {
    serde_json::json!({"msgtype": "markdown", "markdown": {"content": stream_content(content)}})
}

#[must_use]
pub fn text_reply(content: &str) -> serde_json::Value {
    serde_json::json!({"msgtype": "text", "text": {"content": content}})
}

/// A reply that is a card (a question with buttons).
#[must_use]
pub fn card_reply(card: &TemplateCard) -> serde_json::Value {
    serde_json::json!({"msgtype": "template_card", "template_card": card})
}

/// The answer to a card click: the clicked card is replaced by `card`.
#[must_use]
pub fn card_update(card: &TemplateCard) -> serde_json::Value {
    serde_json::json!({"response_type": "update_template_card", "template_card": card})
}

/// The answer to a card click: replace the card with a text notice carrying the bot's words.
#[must_use]
pub fn card_update_reply(title: &str, body: &str) -> serde_json::Value {
    card_update(&TemplateCard::TextNotice(TextNotice::new(title, body)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_envelope_spellings_are_accepted() {
        assert_eq!(parse_envelope(br#"{"encrypt":"x"}"#).unwrap(), "x");
        assert_eq!(parse_envelope(br#"{"Encrypt":"y"}"#).unwrap(), "y");
        assert!(parse_envelope(br#"{"other":1}"#).is_err());
        assert!(parse_envelope(b"{").is_err());
    }

    #[test]
    fn card_event_parses() {
        let json = br#"{"msgid":"m1","aibotid":"b","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"card_type":"button_interaction","event_key":"k","task_id":"t","selected_items":{"selected_item":[{"question_key":"q","option_ids":{"option_id":["o1","o2"]}}]}}}}"#;
        let msg = BotMessage::parse(json).unwrap();
        let card = msg.event.unwrap().template_card_event.unwrap();
        assert_eq!(
            card.selected_items.unwrap().selected_item[0]
                .option_ids
                .option_id,
            vec!["o1", "o2"]
        );
    }
}
