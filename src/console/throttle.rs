//! Slows down token guessing on the console login and the API's bearer tokens.
//!
//! Every failed attempt takes one token from two buckets: the caller's IP address and the
//! first characters of the token tried (so guesses spread over many addresses still meet a
//! limit). While the address's bucket is empty the attempt is refused with 429 and
//! `Retry-After` before the token is even looked at. The prefix bucket can be emptied by anyone
//! who knows a token's first characters, so it never refuses the right token: while it is empty
//! the token is still checked, the right one is let in and a wrong one is answered 429 like a
//! throttled attempt. Buckets refill continuously; successful logins never take a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ConsoleSection;

/// How many leading characters of a tried token share a bucket.
const PREFIX_CHARS: usize = 4;

/// Above this many buckets, full ones are forgotten (they behave as absent ones anyway).
const MAX_BUCKETS: usize = 50_000;

pub struct LoginThrottle {
    burst: f64,
    /// Time to regain one attempt.
    refill: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("burst", &self.burst)
            .field("refill", &self.refill)
            .finish_non_exhaustive()
    }
}

impl LoginThrottle {
    /// `burst` failed attempts at once, then one more per `refill`.
    #[must_use]
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The throttle `[console]` configures: `login_burst`, one back per `login_refill_ms`.
    #[must_use]
    pub fn from_settings(section: &ConsoleSection) -> Self {
        Self::new(
            section.login_burst,
            Duration::from_millis(section.login_refill_ms),
        )
    }

    fn keys(peer: Option<IpAddr>, token: &str) -> [String; 2] {
        let prefix: String = token.trim().chars().take(PREFIX_CHARS).collect();
        [
            format!(
                "peer:{}",
                peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
            ),
            format!("prefix:{prefix}"),
        ]
    }

    /// Tokens left in a bucket at `now`, after refilling.
    fn level(&self, entry: (f64, Instant), now: Instant) -> f64 {
        let (tokens, last) = entry;
        let regained = now.duration_since(last).as_secs_f64() / self.refill.as_secs_f64();
        (tokens + regained).min(self.burst)
    }

    /// `Err(wait)` when an attempt from `peer` with `token` must be refused for now.
    pub fn check(&self, peer: Option<IpAddr>, token: &str) -> Result<(), Duration> {
        let now = Instant::now();
        self.wait_for(&Self::keys(peer, token), now)
    }

    /// `Err(wait)` when `peer`'s own bucket is empty: refuse before looking at the token.
    pub fn check_peer(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let [peer_key, _] = Self::keys(peer, "");
        self.wait_for(&[peer_key], Instant::now())
    }

    /// `Err(wait)` when the bucket of `token`'s prefix is empty. Only for a token that turned
    /// out wrong: the right token is never refused by its prefix.
    pub fn check_prefix(&self, token: &str) -> Result<(), Duration> {
        let [_, prefix_key] = Self::keys(None, token);
        self.wait_for(&[prefix_key], Instant::now())
    }

    #[cfg(test)]
    fn check_at(&self, peer: Option<IpAddr>, token: &str, now: Instant) -> Result<(), Duration> {
        self.wait_for(&Self::keys(peer, token), now)
    }

    fn wait_for(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(entry) = buckets.get(key) {
                let level = self.level(*entry, now);
                if level < 1.0 {
                    wait = wait.max(self.refill.mul_f64(1.0 - level));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records a failed attempt against both buckets.
    pub fn failed(&self, peer: Option<IpAddr>, token: &str) {
        self.failed_at(peer, token, Instant::now());
    }

    fn failed_at(&self, peer: Option<IpAddr>, token: &str, now: Instant) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > MAX_BUCKETS {
            let full = |entry: &(f64, Instant)| self.level(*entry, now) >= self.burst;
            buckets.retain(|_, entry| !full(entry));
        }
        for key in Self::keys(peer, token) {
            let entry = buckets.entry(key).or_insert((self.burst, now));
            let level = self.level(*entry, now);
            *entry = ((level - 1.0).max(0.0), now);
        }
    }
}

/// Whole seconds for a `Retry-After` header, never 0 (0 would invite an immediate retry).
#[must_use]
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::Ipv4Addr;

    const A: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn failures_empty_the_peer_and_prefix_buckets_which_refill() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        for token in ["aaaa1", "bbbb1"] {
            assert!(throttle.check_at(A, token, t0).is_ok());
            throttle.failed_at(A, token, t0);
        }
        let wait = throttle.check_at(A, "cccc", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        assert!(
            throttle.check_at(B, "cccc", t0).is_ok(),
            "other peers are free"
        );
        assert!(
            throttle
                .check_at(A, "cccc", t0 + Duration::from_secs(10))
                .is_ok(),
            "one attempt regained after the refill time"
        );
        // The prefix bucket: two failures from different peers.
        throttle.failed_at(B, "dddd-1", t0);
        throttle.failed_at(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), "dddd-2", t0);
        assert!(throttle.check_at(None, "dddd-3", t0).is_err());
        assert!(throttle.check_at(None, "eeee", t0).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
