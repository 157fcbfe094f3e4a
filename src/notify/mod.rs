//! Everything that leaves the bot on its own initiative: the durable outbox and its worker,
//! hand-offs to the handling side, the daily completion push and the notices it sends.
//!
//! Owns timing and delivery. It must not decide what a request is or how a dialog goes.

pub mod handler_cards;
pub mod handoff;
pub mod notices;
pub mod outbox;
pub mod wecom;

pub use handler_cards::HandlerCards;
pub use handoff::{EmailTransport, HandoffError, HandoffTargets, HandoffWatcher, WebhookTransport};
pub use notices::{BatchPush, DailyJob, DayJob, Notice, Notifier};
pub use outbox::{
    Delivery, DeliveryError, DeliveryKind, Outbox, OutboxItem, PassReport, RetryPolicy, Transport,
};
pub use wecom::WecomTransport;
