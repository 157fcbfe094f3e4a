//! kaitong (开通): a WeCom chatbot that files value-added service requests for the flagship ERP.
//!
//! Layout, in the direction data flows:
//! - [`wecom`]: callback crypto (WXBizMsgCrypt), envelope shapes, the outbound API client.
//! - [`channel`]: turns callbacks of both inbound channels into one domain message and back.
//! - [`dialog`]: decides what the bot says.
//! - [`catalog`]: the services, fields and wording loaded from `dialogs/`.
//! - [`store`]: key-value persistence, Redis or an embedded file, behind one trait.
//! - [`http`]: axum routes; [`startup`]: builds and runs the server; [`config`]: settings.
//! - [`supervisor`]: runs the background loops by name, restarting one that panics.
//!
//! The production binary `kaitong` (`src/main.rs`, its commands in `src/cli/`) is built on this
//! library; so is the developer's crate `kaitong-dev` (`dev/`: the WeCom simulator and peer,
//! `chat`, `load`, `eval`, `train`, …), which this library never names.

pub mod catalog;
pub mod channel;
pub mod config;
pub mod console;
pub mod dialog;
pub mod domain;
pub mod embed;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod requests;
pub mod secret;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod wecom;
