//! The production binary's commands, one module each: what an operator runs. The developer's
//! commands (chat, load, eval, train, …) are the `kaitong-dev` binary's, in `dev/`.
//!
//! These modules belong to the binary, not to the library: they may use anything public in
//! `kaitong`, and nothing in the library imports them.

pub mod catalog;
pub mod healthcheck;
pub mod serve;
pub mod store;
