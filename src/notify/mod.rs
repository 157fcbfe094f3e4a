//! Everything that leaves the bot on its own initiative: the durable outbox and its worker,
//! hand-offs to the handling side, the daily completion push and the notices it sends.
//!
//! Owns timing and delivery. It must not decide what a request is or how a dialog goes.

pub mod announce;
pub mod handler_cards;
pub mod handoff;
pub mod notices;
pub mod outbox;
pub mod people;
pub mod wecom;

pub use announce::OaAnnouncer;
pub use handler_cards::{HandlerCards, HandlerReminders, request_card};
pub use handoff::{EmailTransport, HandoffError, HandoffTargets, HandoffWatcher, WebhookTransport};
pub use notices::{BatchPush, DailyJob, DayJob, Notice, Notifier};
pub use outbox::{
    DEFAULT_GIVE_UP_AFTER, DeliveryError, ItemState, Outbox, OutboxItem, PassReport, RetryPolicy,
    Transport,
};
pub use people::{ContactWatcher, Lookups, People, Requesters};
pub use wecom::WecomTransport;

use handoff::WebhookEvent;
use handoff::email::EmailJob;

// The deliveries live here, above the outbox that stores them and the hand-offs and notices
// that make them, so those modules depend on this one and not on each other in a circle.

/// Which transport sends an item. The strings are stored (in keys and items), so they never
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// WeCom `message/send` (notices, handler cards).
    Wecom,
    /// The request platform's webhook.
    Webhook,
    /// The OA webhook.
    Oa,
    Email,
}

impl DeliveryKind {
    pub const ALL: [Self; 4] = [Self::Wecom, Self::Webhook, Self::Oa, Self::Email];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wecom => "wecom",
            Self::Webhook => "webhook",
            Self::Oa => "oa",
            Self::Email => "email",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// What an item carries, by the transport that sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Wecom(Notice),
    Webhook(WebhookEvent),
    Oa(WebhookEvent),
    Email(EmailJob),
    /// A stored item this version cannot read (a kind it does not know, or a payload of
    /// another shape), kept as stored: it stays listed, and its transport, if there is one,
    /// fails it for good so a handler sees it.
    Unreadable {
        kind: String,
        payload: serde_json::Value,
        reason: String,
    },
}

impl Delivery {
    /// The stored kind string: [`DeliveryKind::as_str`], or an unreadable item's own.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Wecom(_) => DeliveryKind::Wecom.as_str(),
            Self::Webhook(_) => DeliveryKind::Webhook.as_str(),
            Self::Oa(_) => DeliveryKind::Oa.as_str(),
            Self::Email(_) => DeliveryKind::Email.as_str(),
            Self::Unreadable { kind, .. } => kind,
        }
    }

    /// The payload as stored; a webhook's is also its body.
    #[must_use]
    pub fn payload(&self) -> serde_json::Value {
        // Serialising these plain structs cannot fail.
        match self {
            Self::Wecom(notice) => serde_json::to_value(notice).unwrap_or_default(),
            Self::Webhook(event) | Self::Oa(event) => {
                serde_json::to_value(event).unwrap_or_default()
            }
            Self::Email(job) => serde_json::to_value(job).unwrap_or_default(),
            Self::Unreadable { payload, .. } => payload.clone(),
        }
    }

    /// Whom it goes to: a WeCom userid, an e-mail address, or the receiving system.
    #[must_use]
    pub fn recipient(&self) -> String {
        match self {
            Self::Wecom(notice) => notice.touser.clone(),
            Self::Webhook(_) => DeliveryKind::Webhook.as_str().to_owned(),
            Self::Oa(_) => DeliveryKind::Oa.as_str().to_owned(),
            Self::Email(job) => job.to.clone(),
            Self::Unreadable { .. } => String::new(),
        }
    }

    /// What it says, shortened to a line or two for the request's history and the console:
    /// a notice's text (a card's title line), a hand-off's event and status, a mail's subject.
    #[must_use]
    pub fn summary(&self) -> String {
        const CHARS: usize = 120;
        let text = match self {
            Self::Wecom(notice) => notice.text.clone(),
            Self::Webhook(event) | Self::Oa(event) => {
                format!("{} {}", event.event, event.request.status)
            }
            Self::Email(job) => job.subject.clone(),
            Self::Unreadable { reason, .. } => reason.clone(),
        };
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut short: String = flat.chars().take(CHARS).collect();
        if flat.chars().count() > CHARS {
            short.push('…');
        }
        short
    }

    pub(crate) fn read(kind: String, payload: serde_json::Value) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(
            payload: &serde_json::Value,
            wrap: fn(T) -> Delivery,
        ) -> Result<Delivery, String> {
            T::deserialize(payload).map(wrap).map_err(|e| e.to_string())
        }
        let read = match DeliveryKind::parse(&kind) {
            Some(DeliveryKind::Wecom) => typed(&payload, Self::Wecom),
            Some(DeliveryKind::Webhook) => typed(&payload, Self::Webhook),
            Some(DeliveryKind::Oa) => typed(&payload, Self::Oa),
            Some(DeliveryKind::Email) => typed(&payload, Self::Email),
            None => Err("unknown kind".to_owned()),
        };
        read.unwrap_or_else(|reason| Self::Unreadable {
            kind,
            payload,
            reason,
        })
    }
}
