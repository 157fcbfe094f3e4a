//! Per-person rate limit on the callback path, so one person flooding the bot (or a stuck
//! client) cannot starve everyone else. A token bucket per (channel, user), in memory: with
//! several instances each applies it to the callbacks it receives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    /// Burst size and refill per minute.
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `who`; false when the bucket is empty.
    pub fn allow(&self, who: &str) -> bool {
        self.allow_at(who, Instant::now())
    }

    fn allow_at(&self, who: &str, now: Instant) -> bool {
        let capacity = f64::from(self.per_minute);
        let refill_per_sec = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 50_000 {
            // Forget people who have been quiet long enough to be full again anyway.
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs() < 60);
        }
        let (tokens, last) = buckets.entry(who.to_owned()).or_insert((capacity, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * refill_per_sec).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_and_refills_over_time_per_person() {
        let limiter = RateLimiter::new(6);
        let t0 = Instant::now();
        assert!((0..6).all(|_| limiter.allow_at("a", t0)));
        assert!(!limiter.allow_at("a", t0));
        assert!(limiter.allow_at("b", t0), "others are unaffected");
        assert!(
            limiter.allow_at("a", t0 + Duration::from_secs(10)),
            "one token per 10 s at 6/min"
        );
        assert!(!limiter.allow_at("a", t0 + Duration::from_secs(11)));
    }
}
