//! Supervised background work through the running server: a background task that panics is
//! started again after its backoff, the panic is logged with its message, the restart is counted
//! on `/metrics`, and shutdown still stops everything.
//!
//! The panic is injected honestly through the public API: a task added to the application's own
//! supervisor (`Application::supervisor`), the same one that runs the outbox worker, the daily
//! jobs, the gauges, the purger, the catalog reloader and the admin listener.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kaitong::startup::Application;

use crate::harness::{self, Backend, RecordingBot, TestApp};

#[tokio::test]
async fn a_background_task_that_panics_is_restarted_and_the_restart_counted_on_metrics() {
    harness::capture_logs();
    let settings = harness::test_settings();
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let app = Application::build_with(&settings, Arc::clone(&store), RecordingBot::new())
        .await
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    {
        let (runs, stopped) = (Arc::clone(&runs), Arc::clone(&stopped));
        app.supervisor().spawn("it_panics_once", move |stop| {
            let (runs, stopped) = (Arc::clone(&runs), Arc::clone(&stopped));
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected: the first run of it_panics_once fails");
                }
                stop.cancelled().await;
                stopped.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let mut app = TestApp::serve(app, settings, store, dir);

    // The first restart comes after the backoff's first second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "never restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "kaitong_background_restarts_total{task=\"it_panics_once\"} 1"),
        "{metrics}"
    );
    // The application's own loops are shown from their start, so the first restart is a rise.
    for task in ["purger", "catalog_reload", "admin_listener"] {
        let line = format!("kaitong_background_restarts_total{{task=\"{task}\"}} 0");
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let logs = harness::captured_logs();
    let panicked = logs
        .lines()
        .find(|l| {
            l.contains("background task panicked; restarting it") && l.contains("it_panics_once")
        })
        .unwrap_or_else(|| panic!("no panic line in:\n{logs}"));
    assert!(
        panicked.contains("injected: the first run of it_panics_once fails"),
        "{panicked}"
    );
    assert!(panicked.contains("restart_in_ms=1000"), "{panicked}");
    assert!(
        logs.lines()
            .any(|l| l.contains("background task restarted") && l.contains("it_panics_once")),
        "{logs}"
    );

    // Shutdown stops the restarted task through its token, and the server as before.
    let started = Instant::now();
    app.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        1,
        "the restarted run saw the shutdown"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "started once more, not again"
    );
}
