//! The conversation: understanding free text, the form state machine, and what the bot says.
//!
//! Works on domain messages and the catalog only; it must not know about XML, HTTP or Redis
//! (sessions go through the `Store` trait). What it asks of the outside — downloading an
//! attachment, sending a blank template, relabelling a clicked card — goes through the ports in
//! `domain`, which `startup` fills with the channel's adapters; `tests/it/architecture.rs` checks
//! that no file here names an adapter or a concrete store.

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
