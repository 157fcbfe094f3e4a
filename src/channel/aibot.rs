//! Channel B: the AI bot (智能机器人), JSON over WXBizMsgCrypt with an empty receive id.
//! This is the only channel that hears group chats (when the bot is @-mentioned).

use std::sync::Arc;
use std::time::Duration;

use super::{
    CallbackResponse, ChannelSettings, Rejection, ReplyCache, open, reply_stamp, signed_query,
};
use crate::domain::{
    Attachment, AttachmentKind, Bot, CardAction, ChannelKind, Content, Conversation, Inbound,
    MediaSource, Reply, UserId,
};
use crate::store::{Store, keys};
use crate::wecom::aibot_json::{self, BotMessage, ReplyEnvelope};
use crate::wecom::{CallbackQuery, MsgCrypt};

/// WeCom polls a stream for about six minutes; keep its content a little longer.
const STREAM_TTL: Duration = Duration::from_secs(10 * 60);

pub struct AiBotChannel {
    crypt: MsgCrypt,
    bot: Arc<dyn Bot>,
    replies: ReplyCache,
    store: Arc<dyn Store>,
    settings: ChannelSettings,
}

/// A reply that is not a stream: the card-click and welcome shapes.
enum Shape {
    Stream,
    Welcome,
    CardUpdate,
}

impl AiBotChannel {
    #[must_use]
    pub fn new(
        crypt: MsgCrypt,
        bot: Arc<dyn Bot>,
        replies: ReplyCache,
        store: Arc<dyn Store>,
        settings: ChannelSettings,
    ) -> Self {
        Self {
            crypt,
            bot,
            replies,
            store,
            settings,
        }
    }

    pub fn verify_url(&self, query: &CallbackQuery, now: i64) -> Result<String, Rejection> {
        super::verify_url(&self.crypt, query, now, self.settings.timestamp_window)
    }

    pub async fn receive(
        &self,
        query: &CallbackQuery,
        body: &[u8],
        now: i64,
    ) -> Result<CallbackResponse, Rejection> {
        let signed = signed_query(query, now, self.settings.timestamp_window)?;
        let encrypted =
            aibot_json::parse_envelope(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let plain = open(&self.crypt, &signed, &encrypted)?;
        let message = BotMessage::parse(&plain).map_err(|e| Rejection::Malformed(e.to_string()))?;

        if message.msgtype == "stream" {
            return Ok(self.refresh_stream(&message).await);
        }
        let sender = UserId::parse(&message.from.userid)
            .ok_or_else(|| Rejection::Malformed("from.userid is empty".into()))?;
        if message.msgid.trim().is_empty() {
            return Err(Rejection::Malformed("msgid is empty".into()));
        }
        let Some((content, shape)) = content_of(&message) else {
            tracing::info!(channel = "aibot", msgtype = %message.msgtype, "event needs no reply");
            return Ok(CallbackResponse::empty());
        };
        if let Content::Unsupported(kind) = &content {
            tracing::info!(channel = "aibot", kind = %kind, "unsupported message type");
        }
        let conversation = match (message.chattype.as_deref(), message.chatid.as_deref()) {
            (Some("group"), Some(chat)) if !chat.trim().is_empty() => {
                Conversation::Group(chat.trim().to_owned())
            }
            (Some("group"), _) => {
                return Err(Rejection::Malformed("group message without chatid".into()));
            }
            _ => Conversation::Direct,
        };
        let inbound = Inbound {
            channel: ChannelKind::AiBot,
            sender,
            conversation,
            content,
        };
        let key = keys::dedupe_aibot_message(&message.aibotid, message.msgid.trim());
        let shape = &shape;
        let Some(plaintext) = super::answer_once(
            ChannelKind::AiBot,
            &self.replies,
            &self.settings,
            self.bot.as_ref(),
            &key,
            inbound,
            |reply| async move { self.render(&reply, shape).await },
        )
        .await
        else {
            return Ok(CallbackResponse::empty());
        };
        Ok(self.seal(&plaintext))
    }

    /// WeCom polls a stream by id; answer with the full content and finish, or finish an
    /// unknown stream so the polling stops.
    async fn refresh_stream(&self, message: &BotMessage) -> CallbackResponse {
        let id = message
            .stream
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let content = match self.store.get(&keys::aibot_stream(&id)).await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => String::new(),
            Err(e) => {
                tracing::warn!(channel = "aibot", error = %e, "stream refresh without store");
                String::new()
            }
        };
        let reply = aibot_json::stream_reply(&id, &content, true).to_string();
        self.seal(&reply)
    }

    async fn render(&self, reply: &Reply, shape: &Shape) -> String {
        let Some(text) = reply.as_text() else {
            return String::new();
        };
        // Options that fit on a card are buttons; the card also answers a card click.
        if let Reply::Choices {
            text: question,
            options,
        } = reply
            && let Some(card) =
                super::cards::button_card(&super::cards::task_id(), question, options)
        {
            return match shape {
                Shape::CardUpdate => serde_json::json!({
                    "response_type": "update_template_card",
                    "template_card": card,
                })
                .to_string(),
                Shape::Stream | Shape::Welcome => serde_json::json!({
                    "msgtype": "template_card",
                    "template_card": card,
                })
                .to_string(),
            };
        }
        match shape {
            Shape::Welcome => aibot_json::text_reply(&text).to_string(),
            Shape::CardUpdate => aibot_json::card_update_reply("开通助手", &text).to_string(),
            Shape::Stream => {
                let stream_id = new_stream_id();
                if let Err(e) = self
                    .store
                    .put(
                        &keys::aibot_stream(&stream_id),
                        text.as_bytes(),
                        Some(STREAM_TTL),
                    )
                    .await
                {
                    tracing::warn!(channel = "aibot", error = %e, "stream content not kept for refresh");
                }
                aibot_json::stream_reply(&stream_id, &text, true).to_string()
            }
        }
    }

    fn seal(&self, plaintext: &str) -> CallbackResponse {
        if plaintext.is_empty() {
            return CallbackResponse::empty();
        }
        let (timestamp, nonce) = reply_stamp();
        match self.crypt.encrypt(plaintext.as_bytes()) {
            Ok(encrypt) => {
                let envelope = ReplyEnvelope {
                    msgsignature: self.crypt.signature(&timestamp, &nonce, &encrypt),
                    encrypt,
                    timestamp,
                    nonce,
                };
                CallbackResponse {
                    body: serde_json::to_string(&envelope).unwrap_or_default(),
                    content_type: "application/json",
                }
            }
            Err(e) => {
                tracing::error!(channel = "aibot", error = %e, code = e.code(), "could not encrypt reply");
                CallbackResponse::empty()
            }
        }
    }
}

fn new_stream_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().r#gen();
    format!("kt{n:032x}")
}

/// Group messages arrive as "@机器人 text"; the leading mentions are not part of what was asked,
/// so the domain text never carries them (the dialog sees what the person asked).
#[must_use]
pub fn strip_mentions(text: &str) -> String {
    let is_space = |c: char| c.is_whitespace() || c == '\u{2005}';
    let mut rest = text.trim_start_matches(is_space);
    while let Some(after_at) = rest.strip_prefix('@').or_else(|| rest.strip_prefix('＠')) {
        match after_at.find(is_space) {
            Some(end) => rest = after_at[end..].trim_start_matches(is_space),
            None => {
                rest = "";
                break;
            }
        }
    }
    rest.trim_end_matches(is_space).to_owned()
}

fn content_of(message: &BotMessage) -> Option<(Content, Shape)> {
    let attachment = |kind, url: &str, name: Option<String>| {
        Content::Attachment(Attachment {
            kind,
            source: MediaSource::EncryptedUrl(url.to_owned()),
            file_name: name,
        })
    };
    let content = match message.msgtype.as_str() {
        "text" => Content::Text(strip_mentions(
            &message
                .text
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default(),
        )),
        // WeCom transcribes voice; the text is what the person said.
        "voice" => Content::Text(strip_mentions(
            &message
                .voice
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default(),
        )),
        "image" => attachment(AttachmentKind::Image, &message.image.as_ref()?.url, None),
        "file" => {
            let file = message.file.as_ref()?;
            attachment(AttachmentKind::File, &file.url, file.filename.clone())
        }
        "video" => attachment(AttachmentKind::Video, &message.video.as_ref()?.url, None),
        "mixed" => {
            let items = &message.mixed.as_ref()?.msg_item;
            let text: Vec<&str> = items
                .iter()
                .filter_map(|i| i.text.as_ref().map(|t| t.content.as_str()))
                .collect();
            if text.is_empty() {
                let image = items.iter().find_map(|i| i.image.as_ref())?;
                attachment(AttachmentKind::Image, &image.url, None)
            } else {
                Content::Text(strip_mentions(&text.join("\n")))
            }
        }
        "event" => {
            let event = message.event.as_ref()?;
            return match event.eventtype.as_str() {
                "enter_chat" => Some((Content::Entered, Shape::Welcome)),
                "template_card_event" => {
                    let card = event.template_card_event.as_ref()?;
                    Some((
                        Content::CardAction(CardAction {
                            task_id: card.task_id.clone(),
                            key: card.event_key.clone(),
                            selections: card
                                .selected_items
                                .as_ref()
                                .map(|s| {
                                    s.selected_item
                                        .iter()
                                        .map(|i| {
                                            (i.question_key.clone(), i.option_ids.option_id.clone())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            // The AI bot updates a card by its passive reply, not by a code.
                            response_code: None,
                        }),
                        Shape::CardUpdate,
                    ))
                }
                other => {
                    tracing::info!(channel = "aibot", event = other, "event ignored");
                    None
                }
            };
        }
        other => Content::Unsupported(other.to_owned()),
    };
    Some((content, Shape::Stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped_from_the_front() {
        assert_eq!(strip_mentions("@RobotA hello robot"), "hello robot");
        assert_eq!(strip_mentions("@开通助手\u{2005}开电子发票"), "开电子发票");
        assert_eq!(strip_mentions("  @a @b  查询 KT-1 "), "查询 KT-1");
        assert_eq!(strip_mentions("@only"), "");
        assert_eq!(strip_mentions("email a@b.com"), "email a@b.com");
    }
}
