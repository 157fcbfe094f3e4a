//! The integration tests, one binary: a module per area (each was once its own binary), sharing
//! one harness. One binary links once instead of once per file, which dominated CI on two
//! cores. Run one area with `cargo test --test it callbacks::`.
//!
//! One process runs every test, so process-wide state is shared: the Redis and embedding
//! servers, the log subscriber and the metrics registry (`harness` says how each is kept apart).
//! Two scenarios run in binaries of their own: the SIGHUP reload (`tests/catalog_sighup.rs`), whose
//! signal reaches every server running in its process, and the Sentinel failover
//! (`tests/failover/`), whose election and replica timings need the two cores to itself.

mod harness;

mod approvals;
mod architecture;
mod batching;
mod callbacks;
mod catalog;
mod catalog_props;
mod catalog_rules;
mod cli;
mod commands;
mod connections;
mod console;
mod console_browser;
mod conversations;
mod crash;
mod crypto_props;
mod crypto_vectors;
mod deploy;
mod dialog;
mod faults;
mod handling_loop;
mod handoff;
mod hardening;
mod health;
mod ledger;
mod meaning;
mod notify;
mod open_work;
mod people;
mod probes;
mod reading_props;
mod reply_limits;
mod restore;
mod secrets_at_rest;
mod seed_promises;
mod static_table;
mod store;
mod supervise;
mod surface;
mod trust;
mod understanding;
mod wecom_api;
mod workspace;
