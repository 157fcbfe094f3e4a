//! kaitong-dev: the developer's side of kaitong, kept out of the production crate. The
//! production binary `kaitong` neither contains nor links any of this; `kaitong-dev` (the binary
//! of this crate), the integration tests and the benches do.
//!
//! - [`simulator`]: an in-repo WeCom server API (tests, benches, `kaitong-dev chat`).
//! - [`peer`]: WeCom's side of a callback: signs and encrypts callbacks, opens replies.
//! - [`chat`]: `kaitong-dev chat`, a terminal stand-in for WeCom.
//! - [`load`]: `kaitong-dev load` and the echo baseline it is compared against.
//! - [`eval`]: `kaitong-dev eval`, scoring understanding against a labelled set.
//! - [`conversations`]: `kaitong-dev conversations`, whole conversations judged by the ledger.
//! - [`train`]: `kaitong-dev train`, the learned ranking's weights from the catalog.
//! - [`understand_report`]: the JSON `kaitong-dev understand` prints.
//!
//! It may use any public item of the `kaitong` library (it drives the bot from outside, as WeCom
//! and its people would); the library never names this crate (checked with the other dependency
//! rules by `tests/it/architecture.rs`).

pub mod chat;
pub mod conversations;
pub mod eval;
pub mod load;
pub mod peer;
pub mod simulator;
pub mod train;
pub mod understand_report;
