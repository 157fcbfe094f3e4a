//! Channel A: the self-built app (自建应用), XML over WXBizMsgCrypt.

use std::sync::Arc;

use super::{
    CallbackResponse, ChannelSettings, Rejection, ReplyCache, open, reply_stamp, signed_query,
};
use crate::domain::{
    Attachment, AttachmentKind, Bot, CardAction, ChannelKind, Content, Conversation, Inbound,
    MediaSource, Reply, UserId,
};
use crate::store::keys;
use crate::wecom::api::{MessageBody, OutboundMessage, WecomApi};
use crate::wecom::app_xml::{self, Envelope, InnerMessage};
use crate::wecom::{CallbackQuery, MsgCrypt};

/// Events that need no answer at all (a reply to them is never shown).
const SILENT_EVENTS: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "LOCATION",
    "view",
    "view_miniprogram",
    "batch_job_result",
    "change_contact",
    "change_external_contact",
    "open_approval_change",
    "sys_approval_change",
];

/// WeCom waits 5 s for the passive reply; the card send must leave room for the text fallback.
const CARD_SEND_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);

pub struct AppChannel {
    /// Outbound API for button cards; `None` answers options as numbered text.
    api: Option<Arc<WecomApi>>,
    crypt: MsgCrypt,
    corp_id: String,
    agent_id: String,
    bot: Arc<dyn Bot>,
    replies: ReplyCache,
    settings: ChannelSettings,
}

impl AppChannel {
    #[must_use]
    pub fn new(
        crypt: MsgCrypt,
        agent_id: String,
        bot: Arc<dyn Bot>,
        replies: ReplyCache,
        settings: ChannelSettings,
    ) -> Self {
        Self {
            api: None,
            corp_id: crypt.receive_id().to_owned(),
            crypt,
            agent_id,
            bot,
            replies,
            settings,
        }
    }

    /// Sends questions with options as button cards through `api`.
    #[must_use]
    pub fn with_cards(mut self, api: Arc<WecomApi>) -> Self {
        self.api = Some(api);
        self
    }

    /// GET: URL verification; the answer is the decrypted echostr, verbatim.
    pub fn verify_url(&self, query: &CallbackQuery, now: i64) -> Result<String, Rejection> {
        super::verify_url(&self.crypt, query, now, self.settings.timestamp_window)
    }

    /// POST: one message or event.
    pub async fn receive(
        &self,
        query: &CallbackQuery,
        body: &[u8],
        now: i64,
    ) -> Result<CallbackResponse, Rejection> {
        let signed = signed_query(query, now, self.settings.timestamp_window)?;
        let body = std::str::from_utf8(body)
            .map_err(|_| Rejection::Malformed("body is not UTF-8".into()))?;
        let encrypted = Envelope::parse(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let plain = open(&self.crypt, &signed, &encrypted)?;
        let plain = String::from_utf8(plain)
            .map_err(|_| Rejection::Malformed("message is not UTF-8".into()))?;
        let message =
            InnerMessage::parse(&plain).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let sender = UserId::parse(&message.from_user_name)
            .ok_or_else(|| Rejection::Malformed("FromUserName is empty".into()))?;

        let Some(content) = content_of(&message) else {
            tracing::info!(
                channel = "app",
                msg_type = %message.msg_type,
                event = message.event.as_deref().unwrap_or(""),
                "event needs no reply"
            );
            return Ok(CallbackResponse::empty());
        };
        if let Content::Unsupported(kind) = &content {
            tracing::info!(channel = "app", kind = %kind, "unsupported message type");
        }

        let key = self.dedupe_key(&message);
        let inbound = Inbound {
            channel: ChannelKind::App,
            sender: sender.clone(),
            conversation: Conversation::Direct,
            content,
        };
        // Short texts (the slow-down and busy answers) render the same through every path.
        let render = |reply: Reply| {
            let sender = &sender;
            async move {
                if self.send_card(sender, &reply).await {
                    return String::new();
                }
                self.render(sender, now, &reply)
            }
        };
        let Some(plaintext) = super::answer_once(
            ChannelKind::App,
            &self.replies,
            &self.settings,
            self.bot.as_ref(),
            &key,
            inbound,
            render,
        )
        .await
        else {
            return Ok(CallbackResponse::empty());
        };
        Ok(self.seal(&plaintext))
    }

    /// Messages by MsgId; events by sender + CreateTime + Event (WeCom's own rule), per app.
    fn dedupe_key(&self, message: &InnerMessage) -> String {
        match message
            .msg_id
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(msg_id) => keys::dedupe_app_message(&self.corp_id, &self.agent_id, msg_id),
            None => keys::dedupe_app_event(
                &self.corp_id,
                &self.agent_id,
                &message.from_user_name,
                message.create_time.trim(),
                message.event.as_deref().unwrap_or(""),
                message.task_id.as_deref().unwrap_or(""),
                message.event_key.as_deref().unwrap_or(""),
            ),
        }
    }

    /// Sends a question with options as a button card through the API (a passive reply cannot
    /// carry a card). Returns false when there is no API or the send failed, so the caller
    /// answers with numbered text instead.
    async fn send_card(&self, to: &UserId, reply: &Reply) -> bool {
        let (Some(api), Reply::Choices { text, options }) = (&self.api, reply) else {
            return false;
        };
        let Some(card) = super::cards::button_card(&super::cards::task_id(), text, options) else {
            return false;
        };
        let message = OutboundMessage::new(
            &[to.as_str()],
            MessageBody::TemplateCard {
                template_card: card,
            },
        );
        match tokio::time::timeout(CARD_SEND_BUDGET, api.send(&message)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(channel = "app", error = %e, "card not sent; answering with text");
                false
            }
            Err(_) => {
                tracing::warn!(channel = "app", "card send timed out; answering with text");
                false
            }
        }
    }

    /// A passive reply carries at most 2048 bytes: the first part goes passively, the rest
    /// follows through the API in order (split on character boundaries, preferring newlines).
    fn render(&self, to: &UserId, create_time: i64, reply: &Reply) -> String {
        let Some(text) = reply.as_text() else {
            return String::new();
        };
        if text.len() <= app_xml::TEXT_LIMIT_BYTES {
            return app_xml::text_reply(to.as_str(), &self.corp_id, create_time, &text);
        }
        let mut parts =
            crate::wecom::api::split_on_char_boundaries(&text, app_xml::TEXT_LIMIT_BYTES);
        let first = if parts.is_empty() {
            String::new()
        } else {
            parts.remove(0)
        };
        if let Some(api) = &self.api {
            let api = Arc::clone(api);
            let user = to.as_str().to_owned();
            tokio::spawn(async move {
                // Let the passive reply arrive first.
                tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                for part in parts {
                    if let Err(e) = api.send_text(&[user.as_str()], &part, None).await {
                        tracing::warn!(channel = "app", error = %e, "rest of a long reply not sent");
                        break;
                    }
                }
            });
        } else {
            tracing::warn!(
                channel = "app",
                bytes = text.len(),
                "long reply truncated: no API to send the rest"
            );
        }
        app_xml::text_reply(to.as_str(), &self.corp_id, create_time, &first)
    }

    /// Encrypts and signs a plaintext reply; an empty plaintext is the empty 200.
    fn seal(&self, plaintext: &str) -> CallbackResponse {
        if plaintext.is_empty() {
            return CallbackResponse::empty();
        }
        let (timestamp, nonce) = reply_stamp();
        match self.crypt.encrypt(plaintext.as_bytes()) {
            Ok(encrypted) => {
                let signature = self.crypt.signature(&timestamp, &nonce, &encrypted);
                CallbackResponse {
                    body: app_xml::reply_envelope(&encrypted, &signature, &timestamp, &nonce),
                    content_type: "application/xml; charset=utf-8",
                }
            }
            Err(e) => {
                tracing::error!(channel = "app", error = %e, code = e.code(), "could not encrypt reply");
                CallbackResponse::empty()
            }
        }
    }
}

/// Maps the inner XML to domain content; `None` for events that need no answer.
fn content_of(message: &InnerMessage) -> Option<Content> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let media = |kind: AttachmentKind, name: Option<String>| {
        message.media_id.as_ref().map(|id| {
            Content::Attachment(Attachment {
                kind,
                source: MediaSource::MediaId(id.clone()),
                file_name: name,
            })
        })
    };
    let content = match message.msg_type.trim() {
        "text" => Content::Text(text(&message.content)),
        "image" => media(AttachmentKind::Image, None)?,
        "voice" => media(AttachmentKind::Voice, None)?,
        "video" => media(AttachmentKind::Video, None)?,
        "file" => media(AttachmentKind::File, message.file_name.clone())?,
        "location" => Content::Location {
            label: text(&message.label),
            latitude: text(&message.location_x).trim().parse().unwrap_or(0.0),
            longitude: text(&message.location_y).trim().parse().unwrap_or(0.0),
        },
        "link" => Content::Link {
            title: text(&message.title),
            url: text(&message.url),
        },
        "event" => {
            let event = message.event.as_deref().unwrap_or("").trim();
            match event {
                "enter_agent" => Content::Entered,
                "click" => Content::MenuClick(text(&message.event_key)),
                "template_card_event" => Content::CardAction(CardAction {
                    task_id: text(&message.task_id),
                    key: text(&message.event_key),
                    selections: message
                        .selected_items
                        .as_ref()
                        .map(|items| {
                            items
                                .items
                                .iter()
                                .map(|item| {
                                    (
                                        item.question_key.clone(),
                                        item.option_ids
                                            .as_ref()
                                            .map(|o| o.ids.clone())
                                            .unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    response_code: message
                        .response_code
                        .as_deref()
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned),
                }),
                e if SILENT_EVENTS.contains(&e) => return None,
                other => {
                    tracing::info!(channel = "app", event = other, "unknown event ignored");
                    return None;
                }
            }
        }
        other => Content::Unsupported(other.to_owned()),
    };
    Some(content)
}
