//! What the outbox carries: the kinds of delivery and each one's payload — a WeCom notice, a
//! hand-off webhook event (the request platform's and the OA system's contract), an e-mail to
//! send. The notices, the hand-offs and the outbox all build on these shapes; this module names
//! none of them, so the dependency runs one way (notices, hand-offs → outbox → delivery).
//!
//! Owns the stored and sent shapes. It must not decide what is said, to whom, or when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::FilingRoute;
use crate::requests::attachments::BlobRef;
use crate::requests::{Contact, Request};

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

/// Why a stored item cannot be read as a [`Delivery`]: its `reason` when it is kept as
/// [`Delivery::Unreadable`].
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("unknown kind")]
    Kind,
    /// The payload is not the kind's shape.
    #[error(transparent)]
    Payload(serde_json::Error),
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
        ) -> Result<Delivery, ReadError> {
            T::deserialize(payload)
                .map(wrap)
                .map_err(ReadError::Payload)
        }
        let read = match DeliveryKind::parse(&kind) {
            Some(DeliveryKind::Wecom) => typed(&payload, Self::Wecom),
            Some(DeliveryKind::Webhook) => typed(&payload, Self::Webhook),
            Some(DeliveryKind::Oa) => typed(&payload, Self::Oa),
            Some(DeliveryKind::Email) => typed(&payload, Self::Email),
            None => Err(ReadError::Kind),
        };
        read.unwrap_or_else(|why| Self::Unreadable {
            kind,
            payload,
            reason: why.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A WeCom notice.

/// A notice as queued: who gets which text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub touser: String,
    pub text: String,
    /// A template card to send instead of the text (the handlers' cut-off cards); the text
    /// then only names it in logs and the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<crate::wecom::cards::TemplateCard>,
    /// A text sent just before the card: what the card cannot show whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_card: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The webhook event (the platform team's contract; keep changes additive).

/// The JSON body POSTed to the webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// [`EVENT_FILED`] or [`EVENT_STATUS`].
    pub event: String,
    /// Same as the `X-Kaitong-Idempotency-Key` header: the receiver must treat a repeated key
    /// as already handled (the bot retries until it sees a 2xx).
    pub idempotency_key: String,
    pub request: RequestView,
}

/// A snapshot of a request as the handling side sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestView {
    /// `KT-YYYYMMDD-NNNN`.
    pub id: String,
    /// Number of status changes so far (1 when filed). Events may arrive out of order after
    /// retries: keep the snapshot with the highest version.
    pub version: usize,
    pub service: ServiceView,
    /// `ops`, `rnd`, `functional` or `mailbox`.
    pub team: String,
    pub routing: RoutingView,
    /// The daily batch the request joins, `YYYY-MM-DD` (Asia/Shanghai).
    pub batch_day: String,
    pub submitted_at: DateTime<Utc>,
    /// `submitted`, `processing`, `done`, `rejected` or `cancelled`.
    pub status: String,
    pub status_since: DateTime<Utc>,
    pub requester: RequesterView,
    /// Every answer as label and display text; secrets are masked (`****1234`).
    pub fields: Vec<FieldView>,
    pub history: Vec<HistoryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub id: u16,
    pub name: String,
}

/// Where the catalog routes the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoutingView {
    ResourcePlatform,
    OaTicket,
    /// No address when the seed names none (the handling side answers by e-mail).
    Email {
        address: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequesterView {
    /// The WeCom userid.
    pub userid: String,
    /// `app` (self-built app) or `aibot` (AI bot).
    pub channel: String,
    /// From WeCom's contacts (`user/get`), when it says; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Department names, the main one first; absent when unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl RequesterView {
    /// Fills in what WeCom's contacts say about the requester.
    pub fn name_from(&mut self, contact: &Contact) {
        self.name = Some(contact.name.clone());
        self.departments.clone_from(&contact.departments);
        self.email.clone_from(&contact.email);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldView {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    pub status: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub note: Option<String>,
}

impl RequestView {
    #[must_use]
    pub fn of(request: &Request) -> Self {
        let form = &request.form;
        Self {
            id: request.id.to_string(),
            version: request.history.len(),
            service: ServiceView {
                id: form.service.get(),
                name: form.service_name.clone(),
            },
            team: form.team.key().to_owned(),
            routing: match &form.routing {
                FilingRoute::ResourcePlatform => RoutingView::ResourcePlatform,
                FilingRoute::OaTicket => RoutingView::OaTicket,
                FilingRoute::Email { address } => RoutingView::Email {
                    address: address.clone(),
                },
            },
            batch_day: request.batch.to_string(),
            submitted_at: request.submitted_at,
            status: request.status().as_str().to_owned(),
            status_since: request.status_since(),
            requester: {
                let mut view = RequesterView {
                    userid: form.requester.user.as_str().to_owned(),
                    channel: form.requester.channel.as_str().to_owned(),
                    name: None,
                    departments: Vec::new(),
                    email: None,
                };
                if let Some(contact) = &request.contact {
                    view.name_from(contact);
                }
                view
            },
            fields: form
                .summary
                .iter()
                .map(|(label, value)| FieldView {
                    label: label.clone(),
                    value: value.clone(),
                })
                .collect(),
            history: request
                .history
                .iter()
                .map(|c| HistoryView {
                    status: c.status.as_str().to_owned(),
                    at: c.at,
                    by: c.by.clone(),
                    note: c.note.clone(),
                })
                .collect(),
        }
    }
}

/// `event` of a newly filed request.
pub const EVENT_FILED: &str = "request.filed";
/// `event` of a status change of a request filed earlier.
pub const EVENT_STATUS: &str = "request.status";

// ---------------------------------------------------------------------------------------------
// An e-mail.

/// What the outbox keeps for one email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Stable per hand-off, so a message resent after a crash mid-send can be recognised.
    pub message_id: String,
    pub attachments: Vec<AttachmentRef>,
}

/// An attachment to load when sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub file_name: String,
    /// Named `store_key` on the wire, as queued items have always spelled it.
    #[serde(rename = "store_key")]
    pub blob: BlobRef,
}
