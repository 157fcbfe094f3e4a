//! Turns WeCom callbacks of both inbound channels into one domain [`Inbound`] message for the
//! [`Bot`] (both in [`crate::domain`]), and the bot's [`Reply`] back into each channel's encrypted wire format.
//!
//! [`Inbound`]: crate::domain::Inbound
//! [`Bot`]: crate::domain::Bot
//! [`Reply`]: crate::domain::Reply
//!
//! Owns signature/timestamp checks, envelope parsing, retry de-duplication and reply rendering.
//! It must not know what the bot does with a message, nor anything of HTTP beyond raw bytes.

mod aibot;
mod app;
mod callback;
pub mod cards;
mod dedupe;
pub mod limit;
pub mod media;

pub use aibot::{AiBotChannel, strip_mentions};
pub use app::AppChannel;
pub use callback::{CallbackResponse, ChannelSettings, Malformed, Rejection};
pub use dedupe::{Outcome, ReplyCache};
