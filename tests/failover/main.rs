//! Redis Sentinel failover with real `redis-server` and `redis-sentinel` processes, in its own
//! binary. It times a failover against sentinel elections and replica acknowledgements (500 ms);
//! beside every other test of `it` on two cores those timings were missed now and then, and cargo
//! runs test binaries one after another, so here it runs alone. It shares `it`'s harness file.

// This binary uses only the part of the shared harness that starts servers and apps.
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod scenarios;
