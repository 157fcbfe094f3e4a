//! The conversation: understanding free text, the form state machine, and what the bot says.
//!
//! Works on domain messages and the catalog only; it must not know about XML, HTTP or Redis
//! (sessions go through the `Store` trait).

mod bot;
pub mod commands;
pub mod engine;
pub mod examples;
pub mod learned;
pub mod meaning;
pub mod reading;
pub mod session;
pub mod slots;
pub mod text;
pub mod understand;

pub use bot::DialogBot;
