//! Everything that leaves the bot on its own initiative: the durable outbox and its worker,
//! hand-offs to the handling side, the daily completion push and the notices it sends.
//!
//! Owns timing and delivery. It must not decide what a request is or how a dialog goes.
//!
//! Inside, the dependencies run one way: [`delivery`] (what an item carries) and [`daily`] (the
//! once-a-day scheduler) at the bottom, the [`outbox`] above `delivery`, and the notices,
//! hand-offs, cards and announcements above both. This file only declares and re-exports; no
//! child imports from it, so no child can reach itself through it.

pub mod announce;
pub mod daily;
pub mod delivery;
pub mod handler_cards;
pub mod handoff;
pub mod notices;
pub mod outbox;
pub mod people;
pub mod wecom;

pub use announce::OaAnnouncer;
pub use daily::{DailyJob, DayJob, DayJobError};
pub use delivery::{Delivery, DeliveryKind, Notice};
pub use handler_cards::{HandlerCards, HandlerReminders, request_card};
pub use handoff::{EmailTransport, HandoffError, HandoffTargets, HandoffWatcher, WebhookTransport};
pub use notices::{BatchPush, Notifier};
pub use outbox::{
    DEFAULT_GIVE_UP_AFTER, DeliveryError, ItemState, Outbox, OutboxItem, PassReport, RetryPolicy,
    Transport,
};
pub use people::{ContactWatcher, Lookups, People, Requesters};
pub use wecom::WecomTransport;
