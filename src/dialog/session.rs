//! Conversation state: what one person is doing with the bot in one chat. Stored as JSON, so
//! every type here is serde; a half-filled form survives restarts and moves between instances.

use serde::{Deserialize, Serialize};

use crate::catalog::{Answers, FieldKey, ServiceId};

/// One person's conversation in one chat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Session {
    pub state: State,
    /// Other services the person asked for in the same message, offered after filing.
    #[serde(default)]
    pub queue: Vec<ServiceId>,
    /// Unix seconds of the last message; older than the TTL means the form expired.
    pub updated_at: i64,
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
    pub started_at: i64,
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
    #[must_use]
    pub fn new(service: ServiceId, answers: Answers, now: i64) -> Self {
        let order = answers.keys().cloned().collect();
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
            step: Step::Summary,
            failures: 0,
            started_at: now,
        }
    }
}
