//! Conversation state: what one person is doing with the bot in one chat. Stored as JSON, so
//! every type here is serde; a half-filled form survives restarts and moves between instances.

use serde::{Deserialize, Serialize};

use crate::catalog::{Answers, FieldKey, FieldValue};
use crate::domain::ServiceId;

/// One person's conversation in one chat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Session {
    pub state: State,
    /// Other services (or other accounts) the person asked for in the same message, offered
    /// after filing.
    #[serde(default)]
    pub queue: Vec<Queued>,
    /// Unix seconds of the last message; older than the TTL means the form expired.
    pub updated_at: i64,
    /// The last form that left the conversation, cancelled or filed.
    #[serde(default)]
    pub recent: Option<Recent>,
}

/// The last form that left the conversation: cancelled (a misclick right after is undone,
/// "点错了 不取消") or filed (the same request again for another customer, "一样的 给 X 也开").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    pub form: Form,
    pub cancelled: bool,
    /// Unix seconds when it left.
    pub at: i64,
}

/// A request waiting its turn: the service, and the seller account it is for when one was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "QueuedRepr")]
pub struct Queued {
    pub service: ServiceId,
    pub account: Option<String>,
    /// The part of the message that asked for it, read for its values when it starts (its
    /// own clauses only: nothing said for another request).
    pub text: Option<String>,
    /// A form put aside while it waits for a file ("先办第二个吧" at the 免责声明 question):
    /// everything else is answered; a file sent meanwhile is kept in it.
    pub parked: Option<Box<Form>>,
}

/// Sessions stored before accounts were queued hold bare service ids.
#[derive(Deserialize)]
#[serde(untagged)]
enum QueuedRepr {
    Id(ServiceId),
    Full {
        service: ServiceId,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        parked: Option<Box<Form>>,
    },
}

impl From<QueuedRepr> for Queued {
    fn from(r: QueuedRepr) -> Self {
        match r {
            QueuedRepr::Id(service) => Queued {
                service,
                account: None,
                text: None,
                parked: None,
            },
            QueuedRepr::Full {
                service,
                account,
                text,
                parked,
            } => Queued {
                service,
                account,
                text,
                parked,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    #[default]
    Idle,
    /// A close call: the person picks one of these; `text` is kept to prefill the form.
    Choosing {
        options: Vec<ServiceId>,
        text: String,
    },
    Filling {
        form: Form,
    },
    /// The person named another service mid-form; confirm before dropping this one.
    ConfirmSwitch {
        form: Form,
        target: ServiceId,
        text: String,
    },
    /// In a group: the form went on in the person's 1:1 chat (a file or a secret was next).
    /// A word here that starts nothing new ("等下发") is pointed there.
    MovedToPrivate {
        service: ServiceId,
    },
}

/// A form in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    /// Stable id: filing the same form twice (a retried 确认) files once.
    pub id: String,
    pub service: ServiceId,
    pub answers: Answers,
    /// Fields in the order they were answered, for 返回.
    pub order: Vec<FieldKey>,
    pub skipped: Vec<FieldKey>,
    pub step: Step,
    /// Consecutive invalid answers to the current question.
    pub failures: u8,
    /// Values waiting for a yes when their field is asked: the cap instead of an over-cap
    /// number, or a Chinese account typed without a cue.
    #[serde(default)]
    pub offers: Vec<Offer>,
    pub started_at: i64,
    /// The rejected request this form corrects; filed as a new request linked to it.
    #[serde(default)]
    pub resubmit_of: Option<String>,
    /// Files that come later ("等下发"): asked after every other field, never skipped.
    #[serde(default)]
    pub deferred: Vec<FieldKey>,
}

/// A value the bot proposes for a field; it enters the form only on the person's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub key: FieldKey,
    pub value: FieldValue,
    /// The question shown with the field's prompt.
    pub question: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "field", rename_all = "snake_case")]
pub enum Step {
    /// Asking this field.
    Ask(FieldKey),
    /// Showing the summary, waiting for 确认.
    Summary,
    /// Asking which field to change.
    PickEdit,
}

impl Form {
    /// A new form of `service` holding `answers`, ordered the way its fields would have been
    /// asked (so 返回 walks back over them in that order).
    #[must_use]
    pub fn prefilled(service: &crate::catalog::Service, answers: Answers, now: i64) -> Self {
        let order = service
            .fields
            .iter()
            .map(|f| f.key().clone())
            .filter(|k| answers.contains_key(k))
            .collect();
        Self::new(service.id, answers, order, now)
    }

    #[must_use]
    /// A new form; `order` lists the prefilled fields in the service's field order, so 返回
    /// walks back over them the way they would have been asked.
    pub fn new(service: ServiceId, answers: Answers, order: Vec<FieldKey>, now: i64) -> Self {
        Self {
            id: format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
            service,
            answers,
            order,
            skipped: Vec::new(),
            deferred: Vec::new(),
            step: Step::Summary,
            failures: 0,
            offers: Vec::new(),
            started_at: now,
            resubmit_of: None,
        }
    }
}
