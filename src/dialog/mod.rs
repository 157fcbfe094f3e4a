//! The conversation: what the bot says to each inbound message.
//!
//! Works on domain messages only; it must not know about XML, HTTP or Redis.

mod echo;

pub use echo::{EchoBot, EchoWording};
