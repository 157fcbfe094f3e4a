//! Per-person rate limit on the callback path, so one person flooding the bot (or a stuck
//! client) cannot starve everyone else. In memory: with several instances each applies it to
//! the callbacks it receives.
//!
//! `governor`'s keyed GCRA limiter, one cell per (channel, user), rather than a hand-kept
//! bucket map: every [`SWEEP_EVERY`] checks its `retain_recent` forgets everyone whose allowance
//! is full again, so the map holds only people active within the last minute or so.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Gcra};

/// How many checks pass between two sweeps of people whose allowance is full again.
const SWEEP_EVERY: u32 = 1024;

type Keyed<C> =
    Gcra<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct RateLimiter<C: Clock = DefaultClock> {
    /// Burst size and refill per minute.
    per_minute: u32,
    limiter: Keyed<C>,
    checks: AtomicU32,
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_minute", &self.per_minute)
            .field("tracked", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `per_minute` messages a minute per person, all of them usable as a burst (0 counts as 1).
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    fn with_clock(per_minute: u32, clock: C) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            per_minute: per_minute.get(),
            limiter: Gcra::new(
                Quota::per_minute(per_minute),
                DefaultKeyedStateStore::default(),
                clock,
            ),
            checks: AtomicU32::new(0),
        }
    }

    /// Takes one message from `who`'s allowance; false when it is used up.
    pub fn allow(&self, who: &str) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&who.to_owned()).is_ok()
    }

    /// How many people the limiter currently remembers.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_and_refills_over_time_per_person() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(6, clock.clone());
        assert!((0..6).all(|_| limiter.allow("a")));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"), "others are unaffected");
        clock.advance(Duration::from_secs(10));
        assert!(limiter.allow("a"), "one message per 10 s at 6/min");
        clock.advance(Duration::from_secs(1));
        assert!(!limiter.allow("a"));
    }

    #[test]
    fn people_whose_allowance_is_full_again_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(6, clock.clone());
        for n in 0..3000 {
            assert!(limiter.allow(&format!("user-{n}")));
        }
        assert!(limiter.tracked() > 1000, "recent people are remembered");
        clock.advance(Duration::from_secs(61));
        for _ in 0..SWEEP_EVERY {
            limiter.allow("still-here");
        }
        assert!(
            limiter.tracked() <= 1,
            "only the active person is left: {}",
            limiter.tracked()
        );
        assert!(!limiter.allow("still-here"), "and is still limited");
    }
}
