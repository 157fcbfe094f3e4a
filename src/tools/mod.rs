//! Test and demo tooling: the WeCom side of the exchange, kept apart from the production bot.
//!
//! - [`simulator`]: an in-repo WeCom server API (tests, benches, `kaitong chat`).
//! - [`peer`]: WeCom's side of a callback: signs and encrypts callbacks, opens replies.
//! - [`chat`]: `kaitong chat`, a terminal stand-in for WeCom.
//! - [`load`]: `kaitong load` and the echo baseline it is compared against.
//! - [`eval`]: `kaitong eval`, scoring understanding against a labelled set.
//! - [`conversations`]: `kaitong conversations`, whole conversations judged by the ledger.
//! - [`train`]: `kaitong train`, the learned ranking's weights from the catalog.
//!
//! Production modules never import this tree; only `main.rs`, tests and benches do (checked with
//! the other dependency rules by `tests/it/architecture.rs`). It may use
//! any production module (it drives the bot from outside, as WeCom and its people would).

pub mod chat;
pub mod conversations;
pub mod eval;
pub mod load;
pub mod peer;
pub mod simulator;
pub mod train;
pub mod understand_report;
