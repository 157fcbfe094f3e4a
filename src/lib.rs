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
//! - [`tools`]: test and demo tooling (WeCom simulator and peer, `kaitong chat`, `load`, `eval`);
//!   production modules never import it.

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
pub mod tools;
pub mod wecom;
