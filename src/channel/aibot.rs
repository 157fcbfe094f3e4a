//! Channel B: the AI bot (智能机器人), JSON over WXBizMsgCrypt with an empty receive id.
//! This is the only channel that hears group chats (when the bot is @-mentioned).

use std::sync::Arc;
use std::time::Duration;

use super::callback::{
    CallbackResponse, ChannelSettings, Malformed, Rejection, open, reply_stamp, signed_query,
};
use super::dedupe::ReplyCache;
use crate::domain::{
    Attachment, AttachmentKind, Bot, CardAction, ChannelKind, Content, Conversation, Inbound,
    MediaSource, Reply, UserId,
};
use crate::store::{Store, keys};
use crate::wecom::aibot_json::{self, BotMessage, ReplyEnvelope, STREAM_LIMIT_BYTES};
use crate::wecom::api::ResponseUrls;
use crate::wecom::text::message_parts;
use crate::wecom::{CallbackQuery, MsgCrypt};

/// WeCom polls a stream for about six minutes; keep its content a little longer.
const STREAM_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a message posted to `response_url` waits, so the passive reply shows first.
const FOLLOW_UP_AFTER: Duration = Duration::from_millis(800);

pub struct AiBotChannel {
    crypt: MsgCrypt,
    bot: Arc<dyn Bot>,
    replies: ReplyCache,
    store: Arc<dyn Store>,
    settings: ChannelSettings,
    /// Posts what the one passive reply cannot carry to the callback's `response_url`.
    response_urls: Option<ResponseUrls>,
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
            response_urls: None,
        }
    }

    /// Sends what one passive reply cannot carry (the rest of a very long text, the answer to
    /// a card click that does not fit the card) as one more message to the callback's
    /// `response_url`, when it lies under WeCom's API base.
    #[must_use]
    pub fn with_response_urls(mut self, urls: ResponseUrls) -> Self {
        self.response_urls = Some(urls);
        self
    }

    pub fn verify_url(&self, query: &CallbackQuery, now: i64) -> Result<String, Rejection> {
        super::callback::verify_url(&self.crypt, query, now, self.settings.timestamp_window)
    }

    pub async fn receive(
        &self,
        query: &CallbackQuery,
        body: &[u8],
        now: i64,
    ) -> Result<CallbackResponse, Rejection> {
        let signed = signed_query(query, now, self.settings.timestamp_window)?;
        let encrypted = aibot_json::parse_envelope(body).map_err(Malformed::Json)?;
        let plain = open(&self.crypt, &signed, &encrypted)?;
        let message = BotMessage::parse(&plain).map_err(Malformed::Json)?;

        if message.msgtype == "stream" {
            return Ok(self.refresh_stream(&message).await);
        }
        let sender = UserId::parse(&message.from.userid).ok_or(Malformed::Empty("from.userid"))?;
        if message.msgid.trim().is_empty() {
            return Err(Malformed::Empty("msgid").into());
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
                return Err(Malformed::GroupWithoutChatId.into());
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
        let response_url = message.response_url.as_deref();
        let Some(plaintext) = super::callback::answer_once(
            ChannelKind::AiBot,
            &self.replies,
            &self.settings,
            self.bot.as_ref(),
            &key,
            inbound,
            |reply| async move { self.render(&reply, shape, response_url).await },
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

    /// The passive reply's plaintext. A reply is one message: a stream (text), a card, or a
    /// stream with a card under it (a question whose text does not fit the card); a card click
    /// is answered only by updating the card. What does not fit follows through `response_url`.
    async fn render(&self, reply: &Reply, shape: &Shape, response_url: Option<&str>) -> String {
        let task_id = super::cards::task_id();
        let (passive, rest) = match shape {
            Shape::CardUpdate => {
                let (card, rest) = super::cards::render_update(reply, &task_id, STREAM_LIMIT_BYTES);
                (aibot_json::card_update(&card), rest)
            }
            Shape::Welcome | Shape::Stream => {
                let mut rendered = super::cards::render(reply, &task_id, STREAM_LIMIT_BYTES, true);
                match (rendered.card.take(), shape) {
                    (Some(card), _) if rendered.texts.is_empty() => {
                        (aibot_json::card_reply(&card), Vec::new())
                    }
                    (card, Shape::Stream) => {
                        if rendered.texts.is_empty() {
                            return String::new();
                        }
                        let first = rendered.texts.remove(0);
                        let stream_id = self.keep_stream(&first).await;
                        let passive = match card {
                            Some(card) => {
                                aibot_json::stream_with_card_reply(&stream_id, &first, true, &card)
                            }
                            None => aibot_json::stream_reply(&stream_id, &first, true),
                        };
                        (passive, rendered.texts)
                    }
                    // A welcome is a text or a card, not both: the text, options numbered.
                    (_, _) => {
                        let mut texts =
                            message_parts(&reply.as_text().unwrap_or_default(), STREAM_LIMIT_BYTES);
                        if texts.is_empty() {
                            return String::new();
                        }
                        let first = texts.remove(0);
                        (aibot_json::text_reply(&first), texts)
                    }
                }
            }
        };
        self.follow_up(response_url, rest);
        passive.to_string()
    }

    /// Keeps a stream's content for WeCom's refresh calls; returns the stream's id.
    async fn keep_stream(&self, content: &str) -> String {
        let stream_id = new_stream_id();
        if let Err(e) = self
            .store
            .put(
                &keys::aibot_stream(&stream_id),
                content.as_bytes(),
                Some(STREAM_TTL),
            )
            .await
        {
            tracing::warn!(channel = "aibot", error = %e, "stream content not kept for refresh");
        }
        stream_id
    }

    /// Posts `rest` to `response_url` once the passive reply is out. The URL takes one message,
    /// so a reply can be two messages long (2 × 20 KB); more is logged.
    fn follow_up(&self, response_url: Option<&str>, rest: Vec<String>) {
        let Some(first) = rest.first().cloned() else {
            return;
        };
        let url = response_url.map(str::trim).filter(|u| !u.is_empty());
        let (Some(urls), Some(url)) = (&self.response_urls, url) else {
            tracing::warn!(
                channel = "aibot",
                parts = rest.len(),
                "reply longer than one message and no response_url to send the rest"
            );
            return;
        };
        if !urls.accepts(url) {
            tracing::warn!(
                channel = "aibot",
                "response_url is not under the WeCom API base; the rest of the reply is not sent"
            );
            return;
        }
        if rest.len() > 1 {
            tracing::warn!(
                channel = "aibot",
                parts = rest.len() - 1,
                "reply longer than two messages; the end is not sent"
            );
        }
        let urls = urls.clone();
        let url = url.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(FOLLOW_UP_AFTER).await;
            if let Err(e) = urls.post(&url, &aibot_json::markdown_message(&first)).await {
                tracing::warn!(channel = "aibot", error = %e, "rest of the reply not sent to response_url");
            }
        });
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
        "mixed" => mixed_content(&message.mixed.as_ref()?.msg_item)?,
        "event" => return event_content(message.event.as_ref()?),
        other => Content::Unsupported(other.to_owned()),
    };
    Some((content, Shape::Stream))
}

/// A file the bot received, fetched later from its encrypted URL.
fn attachment(kind: AttachmentKind, url: &str, name: Option<String>) -> Content {
    Content::Attachment(Attachment {
        kind,
        source: MediaSource::EncryptedUrl(url.to_owned()),
        file_name: name,
    })
}

/// A mixed message is its text; only a message of images alone is its first image.
fn mixed_content(items: &[aibot_json::MixedItem]) -> Option<Content> {
    let text: Vec<&str> = items
        .iter()
        .filter_map(|i| i.text.as_ref().map(|t| t.content.as_str()))
        .collect();
    if text.is_empty() {
        let image = items.iter().find_map(|i| i.image.as_ref())?;
        Some(attachment(AttachmentKind::Image, &image.url, None))
    } else {
        Some(Content::Text(strip_mentions(&text.join("\n"))))
    }
}

/// Entering the chat and clicking a card; other events are ignored.
fn event_content(event: &aibot_json::Event) -> Option<(Content, Shape)> {
    match event.eventtype.as_str() {
        "enter_chat" => Some((Content::Entered, Shape::Welcome)),
        "template_card_event" => {
            let card = event.template_card_event.as_ref()?;
            Some((Content::CardAction(card_action(card)), Shape::CardUpdate))
        }
        other => {
            tracing::info!(channel = "aibot", event = other, "event ignored");
            None
        }
    }
}

/// The clicked button or submitted selections of a card.
fn card_action(card: &aibot_json::CardEvent) -> CardAction {
    CardAction {
        task_id: card.task_id.clone(),
        key: card.event_key.clone(),
        selections: card
            .selected_items
            .as_ref()
            .map(|s| {
                s.selected_item
                    .iter()
                    .map(|i| (i.question_key.clone(), i.option_ids.option_id.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        // The AI bot updates a card by its passive reply, not by a code.
        response_code: None,
    }
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
