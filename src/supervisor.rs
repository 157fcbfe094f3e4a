//! Supervised background work: every loop that runs beside the public HTTP server (the outbox
//! worker, the daily jobs, the open-work gauges, the store purger, the catalog reloader, the
//! admin listener) is started here by name.
//!
//! A loop that panics is restarted after an exponential backoff ([`Backoff`]: 1 s doubling to
//! 60 s, from the start again once a run has lasted a whole minute), the panic message logged
//! and each restart counted in `kaitong_background_restarts_total{task}`. A plain
//! `tokio::spawn` would end such a loop silently: the outbox would stop sending, and nothing
//! but the growing `kaitong_outbox_pending` would say so. Shutdown cancels one token every
//! loop listens to and waits, bounded, for them all; what is still running then is aborted.
//!
//! Owns starting, restarting and stopping. It must not know what a loop does.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a panicked task waits before it is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first restart.
    pub first: Duration,
    /// The longest wait; a run that lasted this long counts as healthy, so the next panic
    /// waits `first` again.
    pub max: Duration,
}

impl Backoff {
    /// 1 s, doubling to a minute: a loop that panics on every run costs a log line a minute,
    /// while a one-off panic is over within a second.
    pub const DEFAULT: Self = Self {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    /// The wait before restart number `restart`, counted from 0 since the task last ran
    /// healthy.
    /// A function of the count rather than a `backon` iterator: a healthy run sets it back to 0.
    #[must_use]
    pub fn delay(&self, restart: u32) -> Duration {
        let factor = 1u32.checked_shl(restart).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Starts background tasks by name, restarts them after a panic, stops them all at shutdown.
///
/// Cloning gives another handle on the same tasks.
#[derive(Clone)]
pub struct Supervisor {
    tracker: TaskTracker,
    cancel: CancellationToken,
    backoff: Backoff,
    /// How many tasks of each name are running, to name the ones that do not stop in time.
    running: Arc<Mutex<BTreeMap<&'static str, usize>>>,
    /// Every supervising task, aborted when shutdown's time is up.
    aborts: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new(Backoff::DEFAULT)
    }
}

impl Supervisor {
    #[must_use]
    pub fn new(backoff: Backoff) -> Self {
        Self {
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            backoff,
            running: Arc::default(),
            aborts: Arc::default(),
        }
    }

    /// A token cancelled when the supervisor shuts down. Cancelling it stops only what listens
    /// to it (the admin listener stops with the public one, before the rest).
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Runs the future `make` returns as task `name` until it ends. `make` is handed a token
    /// that is cancelled at shutdown: the future should finish what it is doing and return
    /// then. A future that returns is done (it is not started again); one that panics is
    /// started again through `make` after the backoff, unless shutdown comes first.
    pub fn spawn<F, Fut>(&self, name: &'static str, mut make: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let backoff = self.backoff;
        let running = Running::enter(&self.running, name);
        crate::metrics::background_task(name);
        let task = self.tracker.spawn(async move {
            let _running = running;
            let mut restarts = 0u32;
            loop {
                let started = Instant::now();
                // `make` itself may panic too: inside the caught future.
                let run = AssertUnwindSafe(async { make(cancel.child_token()).await })
                    .catch_unwind()
                    .await;
                let Err(panic) = run else {
                    tracing::debug!(task = name, "background task ended");
                    return;
                };
                let message = panic_message(panic.as_ref());
                if cancel.is_cancelled() {
                    tracing::error!(task = name, panic = %message, "background task panicked while stopping");
                    return;
                }
                if started.elapsed() >= backoff.max {
                    restarts = 0;
                }
                let delay = backoff.delay(restarts);
                restarts = restarts.saturating_add(1);
                tracing::error!(
                    task = name,
                    panic = %message,
                    restart_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "background task panicked; restarting it"
                );
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                crate::metrics::background_restart(name);
                tracing::warn!(task = name, restarts, panic = %message, "background task restarted");
            }
        });
        self.aborts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task.abort_handle());
    }

    /// Cancels every task and waits up to `within` for them to finish; the ones still running
    /// then are named in the log and aborted. True when all finished in time.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        let late: Vec<&'static str> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        tracing::warn!(tasks = ?late, waited_ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX), "background tasks did not stop in time; aborting them");
        for task in self
            .aborts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        // An aborted task is dropped at its next await; wait for that, so what it holds (the
        // store, whose embedded file stays locked while held) is released on return.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        false
    }

    /// How many supervised tasks are running now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }
}

/// A task's place in the supervisor's count of running tasks, given up when the task ends or is
/// aborted.
struct Running {
    map: Arc<Mutex<BTreeMap<&'static str, usize>>>,
    name: &'static str,
}

impl Running {
    fn enter(map: &Arc<Mutex<BTreeMap<&'static str, usize>>>, name: &'static str) -> Self {
        *map.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name)
            .or_default() += 1;
        Self {
            map: Arc::clone(map),
            name,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(self.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(self.name);
            }
        }
    }
}

/// The text a panic was raised with (`panic!("…")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (0..9)
            .map(|n| Backoff::DEFAULT.delay(n).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // No overflow however often a task panics.
        assert_eq!(Backoff::DEFAULT.delay(31), Duration::from_secs(60));
        assert_eq!(Backoff::DEFAULT.delay(32), Duration::from_secs(60));
        assert_eq!(Backoff::DEFAULT.delay(u32::MAX), Duration::from_secs(60));
        let fast = Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(35),
        };
        let waits: Vec<u128> = (0..4).map(|n| fast.delay(n).as_millis()).collect();
        assert_eq!(waits, [10, 20, 35, 35]);
    }

    fn fast() -> Supervisor {
        Supervisor::new(Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        })
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..400 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn a_panicking_task_is_restarted_counted_and_stopped_at_shutdown() {
        let supervisor = fast();
        let runs = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicUsize::new(0));
        {
            let (runs, stopped) = (Arc::clone(&runs), Arc::clone(&stopped));
            supervisor.spawn("unit-panics-twice", move |stop| {
                let (runs, stopped) = (Arc::clone(&runs), Arc::clone(&stopped));
                async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    assert!(run >= 2, "run {run} fails on purpose");
                    stop.cancelled().await;
                    stopped.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        eventually("the third run", || runs.load(Ordering::SeqCst) == 3).await;
        assert!(
            crate::metrics::render()
                .contains("kaitong_background_restarts_total{task=\"unit-panics-twice\"} 2"),
            "{}",
            crate::metrics::render()
        );
        assert_eq!(supervisor.len(), 1);
        assert!(supervisor.shutdown(Duration::from_secs(5)).await);
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            1,
            "the run saw the shutdown"
        );
        assert!(supervisor.is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not started again");
    }

    #[tokio::test]
    async fn a_task_that_returns_is_not_started_again() {
        let supervisor = fast();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        supervisor.spawn("unit-returns", move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        eventually("the task ended", || supervisor.is_empty()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            crate::metrics::render()
                .contains("kaitong_background_restarts_total{task=\"unit-returns\"} 0"),
            "a started task is shown at 0, and a task that ends is no restart"
        );
    }

    #[tokio::test]
    async fn shutdown_is_bounded_and_aborts_what_does_not_stop() {
        let supervisor = fast();
        supervisor.spawn("unit-deaf", |_| async {
            // Never looks at its token.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        supervisor.spawn("unit-listens", |stop| async move { stop.cancelled().await });
        let started = Instant::now();
        assert!(!supervisor.shutdown(Duration::from_millis(100)).await);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(supervisor.is_empty(), "the deaf task was aborted");
        assert!(
            supervisor
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_panic_during_the_backoff_wait_ends_with_shutdown() {
        let supervisor = Supervisor::new(Backoff {
            first: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        });
        supervisor.spawn("unit-panics-always", |_| async {
            panic!("always");
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Waiting an hour for its restart, it stops at once.
        assert!(supervisor.shutdown(Duration::from_secs(5)).await);
    }

    #[test]
    fn panic_messages_are_read_from_str_and_string() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(s.as_ref()), "static");
        let s: Box<dyn Any + Send> = Box::new(String::from("formatted 7"));
        assert_eq!(panic_message(s.as_ref()), "formatted 7");
        let s: Box<dyn Any + Send> = Box::new(7_u8);
        assert_eq!(panic_message(s.as_ref()), "(a panic without a message)");
    }
}
