//! Channel A: the self-built app (自建应用), XML over WXBizMsgCrypt.

use std::sync::Arc;

use super::callback::{
    CallbackResponse, ChannelSettings, Malformed, Rejection, open, reply_stamp, signed_query,
};
use super::dedupe::ReplyCache;
use crate::domain::{
    ApprovalChange, ApprovalSink, ApprovalStatus, Attachment, AttachmentKind, Bot, CardAction,
    ChannelKind, Content, Conversation, Inbound, MediaSource, Reply, UserId,
};
use crate::store::keys;
use crate::wecom::api::{MessageBody, OutboundMessage, WecomApi};
use crate::wecom::app_xml::{self, Envelope, InnerMessage};
use crate::wecom::text::message_parts;
use crate::wecom::{CallbackQuery, MsgCrypt, TEXT_LIMIT_BYTES};

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

/// WeCom waits 5 s for the passive reply; the sends before a card (its texts and the card)
/// must leave room for the text fallback.
const CARD_SEND_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);
/// How long the rest of a long text waits, so the passive reply arrives first.
const REST_AFTER: std::time::Duration = std::time::Duration::from_millis(800);

pub struct AppChannel {
    /// Outbound API for what one passive reply cannot carry: the rest of a long text, cards.
    /// `None` answers with the passive reply alone.
    api: Option<Arc<WecomApi>>,
    /// Whether questions with options go out as button cards (`wecom.cards`).
    cards: bool,
    crypt: MsgCrypt,
    corp_id: String,
    agent_id: String,
    bot: Arc<dyn Bot>,
    replies: ReplyCache,
    settings: ChannelSettings,
    /// Where `sys_approval_change` events go (OA through WeCom approvals); `None`: ignored.
    approvals: Option<Arc<dyn ApprovalSink>>,
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
            cards: false,
            corp_id: crypt.receive_id().to_owned(),
            crypt,
            agent_id,
            bot,
            replies,
            settings,
            approvals: None,
        }
    }

    /// Acts on approval changes (`sys_approval_change`) through `sink`.
    #[must_use]
    pub fn with_approvals(mut self, sink: Option<Arc<dyn ApprovalSink>>) -> Self {
        self.approvals = sink;
        self
    }

    /// Sends through `api` what a passive reply cannot carry: the rest of a long text, and,
    /// when `cards` is on, questions with options as button cards.
    #[must_use]
    pub fn with_api(mut self, api: Arc<WecomApi>, cards: bool) -> Self {
        self.api = Some(api);
        self.cards = cards;
        self
    }

    /// GET: URL verification; the answer is the decrypted echostr, verbatim.
    pub fn verify_url(&self, query: &CallbackQuery, now: i64) -> Result<String, Rejection> {
        super::callback::verify_url(&self.crypt, query, now, self.settings.timestamp_window)
    }

    /// POST: one message or event.
    pub async fn receive(
        &self,
        query: &CallbackQuery,
        body: &[u8],
        now: i64,
    ) -> Result<CallbackResponse, Rejection> {
        let signed = signed_query(query, now, self.settings.timestamp_window)?;
        let body = std::str::from_utf8(body).map_err(|_| Malformed::NotUtf8("body"))?;
        let encrypted = Envelope::parse(body).map_err(Malformed::Xml)?;
        let plain = open(&self.crypt, &signed, &encrypted)?;
        let plain = String::from_utf8(plain).map_err(|_| Malformed::NotUtf8("message"))?;
        let message = InnerMessage::parse(&plain).map_err(Malformed::Xml)?;
        let sender =
            UserId::parse(&message.from_user_name).ok_or(Malformed::Empty("FromUserName"))?;

        if message.msg_type.trim() == "event"
            && message.event.as_deref().map(str::trim) == Some("sys_approval_change")
            && let Some(sink) = &self.approvals
        {
            return Ok(self.approval_changed(sink.as_ref(), &message).await);
        }

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
            async move { self.deliver(sender, now, &reply).await }
        };
        let Some(plaintext) = super::callback::answer_once(
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

    /// A verified approval change: acted on once however often WeCom sends it (keyed by the
    /// approval's number and status, as every change of one approval comes from `sys`).
    /// Answered empty; a failure to act leaves no record, so WeCom's retry acts again.
    async fn approval_changed(
        &self,
        sink: &dyn ApprovalSink,
        message: &InnerMessage,
    ) -> CallbackResponse {
        let Some(info) = message
            .approval_info
            .as_ref()
            .filter(|info| !info.sp_no.trim().is_empty())
        else {
            tracing::warn!(
                channel = "app",
                "approval change without an approval number ignored"
            );
            return CallbackResponse::empty();
        };
        let decision = info.decision();
        let change = ApprovalChange {
            sp_no: info.sp_no.trim().to_owned(),
            status: ApprovalStatus::from_code(info.status()),
            approver: decision
                .and_then(|d| d.approver.as_ref())
                .and_then(|a| UserId::parse(&a.user_id)),
            comment: decision
                .map(|d| d.speech.trim().to_owned())
                .filter(|speech| !speech.is_empty()),
        };
        let key = keys::dedupe_app_event(
            &self.corp_id,
            &self.agent_id,
            &message.from_user_name,
            message.create_time.trim(),
            "sys_approval_change",
            &change.sp_no,
            &info.status().to_string(),
        );
        let outcome = self
            .replies
            .run_once(&key, || async {
                match sink.approval_changed(change.clone()).await {
                    Ok(()) => String::new(),
                    // A marker instead of a reply: see below.
                    Err(e) => format!("failed: {e}"),
                }
            })
            .await;
        match outcome {
            Ok(super::dedupe::Outcome::Fresh(result)) if result.starts_with("failed: ") => {
                tracing::error!(channel = "app", sp_no = %change.sp_no, error = %result, "approval change not acted on; WeCom's retry acts again");
                // The stored marker would answer the retry; drop it so the retry runs.
                self.replies.forget(&key).await;
            }
            Ok(super::dedupe::Outcome::Fresh(_)) => {
                tracing::info!(channel = "app", sp_no = %change.sp_no, status = ?change.status, "approval change acted on");
            }
            Ok(_) => {
                tracing::info!(channel = "app", sp_no = %change.sp_no, "repeated approval change ignored");
                crate::metrics::callback("app", "replayed");
            }
            Err(e) => {
                tracing::error!(channel = "app", error = %e, "store unavailable; approval change left for WeCom's retry");
            }
        }
        CallbackResponse::empty()
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

    /// Renders `reply` and sends what the passive reply cannot carry; returns the passive
    /// reply's plaintext (empty when everything went through the API).
    async fn deliver(&self, to: &UserId, create_time: i64, reply: &Reply) -> String {
        let rendered = super::cards::render(
            reply,
            &super::cards::task_id(),
            TEXT_LIMIT_BYTES,
            self.cards && self.api.is_some(),
        );
        let (Some(api), Some(card)) = (&self.api, rendered.card) else {
            return self.passive_then_rest(to, create_time, rendered.texts);
        };
        // A passive reply cannot carry a card, and the texts must come before it: all of it
        // goes through the API, in order.
        let mut sent = 0;
        let sending = async {
            for text in &rendered.texts {
                api.send_text(&[to.as_str()], text, None).await?;
                sent += 1;
            }
            let message = OutboundMessage::new(
                &[to.as_str()],
                MessageBody::TemplateCard {
                    template_card: card,
                },
            );
            api.send(&message).await
        };
        let error = match tokio::time::timeout(CARD_SEND_BUDGET, sending).await {
            Ok(Ok(_)) => return String::new(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(channel = "app", error = %error, texts_sent = sent, "card not sent; answering with text");
        // The question is already read when its texts went out: the options follow as a
        // numbered list. Otherwise the whole reply as numbered text.
        let fallback = match reply {
            Reply::Choices { options, .. } if sent > 0 && sent == rendered.texts.len() => {
                crate::domain::numbered_options(options)
            }
            other => other.as_text().unwrap_or_default(),
        };
        self.passive_then_rest(to, create_time, message_parts(&fallback, TEXT_LIMIT_BYTES))
    }

    /// A passive reply carries one text of at most 2048 bytes: the first part goes passively,
    /// the rest follows through the API in order.
    fn passive_then_rest(&self, to: &UserId, create_time: i64, mut parts: Vec<String>) -> String {
        if parts.is_empty() {
            return String::new();
        }
        let first = parts.remove(0);
        if !parts.is_empty() {
            if let Some(api) = &self.api {
                let api = Arc::clone(api);
                let user = to.as_str().to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(REST_AFTER).await;
                    for part in parts {
                        if let Err(e) = api.send_text(&[user.as_str()], &part, None).await {
                            tracing::warn!(channel = "app", error = %e, "rest of a long reply not sent");
                            break;
                        }
                    }
                });
            } else {
                // Only a deployment without the app's API (tests, `kaitong-dev chat` by URL) ends
                // up here: WeCom's passive reply has room for one message.
                tracing::warn!(
                    channel = "app",
                    parts = parts.len(),
                    "long reply: no API to send the rest"
                );
            }
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
