//! Prometheus metrics, served as text at `/metrics`.
//!
//! One process-wide registry; modules record through the small functions here so none of them
//! depends on the metrics library directly.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

struct Metrics {
    registry: Registry,
    callbacks: IntCounterVec,
    turn_seconds: HistogramVec,
    understanding: IntCounterVec,
    embedding_fallbacks: IntCounterVec,
    embedding_space_texts: IntGauge,
    transitions: IntCounterVec,
    outbox_depth: IntGauge,
    outbox_oldest_seconds: IntGauge,
    outbox_failed: IntGauge,
    outbox_pending_by_kind: IntGaugeVec,
    outbox_failed_by_kind: IntGaugeVec,
    outbox_attempt_failures: IntCounterVec,
    wecom_api: IntCounterVec,
    store_seconds: HistogramVec,
    connections_open: IntGauge,
    connection_cap_hits: IntCounter,
    requests_open: IntGaugeVec,
    requests_overdue: IntGaugeVec,
    daily_job_last_success: IntGaugeVec,
    background_restarts: IntCounterVec,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry =
            Registry::new_custom(Some("kaitong".into()), None).unwrap_or_else(|_| Registry::new());
        // Metric definitions are constants; a failure here is a programming error caught by
        // the tests, so fall back to unregistered metrics rather than abort.
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|_| std::process::abort());
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .unwrap_or_else(|_| std::process::abort());
            let _ = registry.register(Box::new(h.clone()));
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|_| std::process::abort());
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        register_build_info(&registry);
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|_| std::process::abort());
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let fast = vec![
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0,
        ];
        Metrics {
            callbacks: counter(
                "callbacks_total",
                "WeCom callbacks by channel and result",
                &["channel", "result"],
            ),
            turn_seconds: histogram(
                "turn_seconds",
                "Time for the bot to answer one message",
                &["channel"],
                fast.clone(),
            ),
            understanding: counter(
                "understanding_total",
                "Understanding outcomes",
                &["outcome"],
            ),
            embedding_space_texts: gauge(
                "embedding_server_space_texts",
                "Catalog texts embedded by the embedding server for the current catalog (0: not ready)",
            ),
            embedding_fallbacks: counter(
                "embedding_fallbacks_total",
                "Messages understood with the in-process table because the embedding server failed",
                &["reason"],
            ),
            transitions: counter(
                "request_transitions_total",
                "Requests filed or moved, by new status",
                &["status"],
            ),
            outbox_depth: gauge("outbox_pending", "Messages waiting in the outbox"),
            outbox_oldest_seconds: gauge(
                "outbox_oldest_seconds",
                "Age of the oldest waiting outbox message",
            ),
            outbox_failed: gauge("outbox_failed", "Outbox messages given up"),
            outbox_pending_by_kind: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "outbox_pending_by_kind",
                        "Messages waiting in the outbox, by transport",
                    ),
                    &["kind"],
                )
                .unwrap_or_else(|_| std::process::abort());
                let _ = registry.register(Box::new(g.clone()));
                g
            },
            outbox_failed_by_kind: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "outbox_failed_by_kind",
                        "Outbox messages given up, by transport",
                    ),
                    &["kind"],
                )
                .unwrap_or_else(|_| std::process::abort());
                let _ = registry.register(Box::new(g.clone()));
                g
            },
            outbox_attempt_failures: counter(
                "outbox_attempt_failures_total",
                "Failed delivery attempts by transport and cause (refused, DNS, TLS, timeout, errcode N, HTTP N, …)",
                &["kind", "cause"],
            ),
            wecom_api: counter(
                "wecom_api_calls_total",
                "WeCom API calls by path and errcode",
                &["path", "errcode"],
            ),
            store_seconds: histogram("store_seconds", "Store operation latency", &["op"], fast),
            connections_open: gauge("connections_open", "Open HTTP connections"),
            connection_cap_hits: {
                let c = IntCounter::new(
                    "connection_cap_hits_total",
                    "Times the accept loop waited because server.max_connections were open",
                )
                .unwrap_or_else(|_| std::process::abort());
                let _ = registry.register(Box::new(c.clone()));
                c
            },
            requests_open: gauges(
                "requests_open",
                "Requests submitted or processing now, any batch day, by handling team",
                &["team"],
            ),
            requests_overdue: gauges(
                "requests_overdue",
                "Open requests past their batch's done-by time (逾期), by handling team",
                &["team"],
            ),
            daily_job_last_success: gauges(
                "daily_job_last_success_timestamp_seconds",
                "When each daily job (cutoff 16:00, push and reminder 17:30) last completed a day, unix seconds",
                &["job"],
            ),
            background_restarts: counter(
                "background_restarts_total",
                "Background tasks (outbox worker, daily jobs, gauges, purger, reloader, admin listener) restarted after a panic, by task",
                &["task"],
            ),
            registry,
        }
    })
}

/// `kaitong_build_info{version,commit}` = 1: which build answers, for dashboards and alerts on
/// a mixed fleet (the commit from build.rs, as `kaitong --version` shows it).
fn register_build_info(registry: &Registry) {
    let Ok(info) = IntGaugeVec::new(
        Opts::new(
            "build_info",
            "The running build: package version and git commit",
        ),
        &["version", "commit"],
    ) else {
        return;
    };
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("KT_BUILD_COMMIT")])
        .set(1);
    let _ = registry.register(Box::new(info));
}

pub fn callback(channel: &str, result: &str) {
    metrics()
        .callbacks
        .with_label_values(&[channel, result])
        .inc();
}

pub fn turn(channel: &str, took: Duration) {
    metrics()
        .turn_seconds
        .with_label_values(&[channel])
        .observe(took.as_secs_f64());
}

pub fn understanding(outcome: &str) {
    metrics().understanding.with_label_values(&[outcome]).inc();
}

/// The server's catalog space is ready with this many texts.
pub fn embedding_space_ready(texts: usize) {
    metrics()
        .embedding_space_texts
        .set(i64::try_from(texts).unwrap_or(i64::MAX));
}

/// The embedding server failed (timeout, status, garbage); the in-process table answered.
pub fn embedding_fallback(reason: &str) {
    metrics()
        .embedding_fallbacks
        .with_label_values(&[reason])
        .inc();
}

pub fn transition(status: &str) {
    metrics().transitions.with_label_values(&[status]).inc();
}

pub fn wecom_api(path: &str, errcode: i64) {
    metrics()
        .wecom_api
        .with_label_values(&[path, &errcode.to_string()])
        .inc();
}

pub fn store(op: &str, took: Duration) {
    metrics()
        .store_seconds
        .with_label_values(&[op])
        .observe(took.as_secs_f64());
}

pub fn outbox(pending: usize, oldest: Option<Duration>, failed: usize) {
    let m = metrics();
    m.outbox_depth
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.outbox_oldest_seconds
        .set(oldest.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    m.outbox_failed
        .set(i64::try_from(failed).unwrap_or(i64::MAX));
}

/// One transport's share of the outbox: waiting and given up.
pub fn outbox_kind(kind: &str, pending: usize, failed: usize) {
    let m = metrics();
    m.outbox_pending_by_kind
        .with_label_values(&[kind])
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.outbox_failed_by_kind
        .with_label_values(&[kind])
        .set(i64::try_from(failed).unwrap_or(i64::MAX));
}

/// A delivery attempt failed (retried or given up).
pub fn outbox_failure(kind: &str, cause: &str) {
    metrics()
        .outbox_attempt_failures
        .with_label_values(&[kind, cause])
        .inc();
}

pub fn connection_opened() {
    metrics().connections_open.inc();
}

pub fn connection_closed() {
    metrics().connections_open.dec();
}

pub fn connection_cap_hit() {
    metrics().connection_cap_hits.inc();
}

/// The open-work queue of one team now.
pub fn open_requests(team: &str, open: usize, overdue: usize) {
    let m = metrics();
    m.requests_open
        .with_label_values(&[team])
        .set(i64::try_from(open).unwrap_or(i64::MAX));
    m.requests_overdue
        .with_label_values(&[team])
        .set(i64::try_from(overdue).unwrap_or(i64::MAX));
}

/// A daily job completed a day at `unix_secs` (this instance, or another one, read from the
/// store's done record). Only ever moves forward, so a day found done later by another
/// instance never sets it back.
pub fn daily_job_succeeded(job: &str, unix_secs: i64) {
    let gauge = metrics().daily_job_last_success.with_label_values(&[job]);
    if unix_secs > gauge.get() {
        gauge.set(unix_secs);
    }
}

/// Background task `task` was started: its restart counter is shown from now on, at 0, so an
/// alert on its increase sees the first restart too (a series that appears at 1 has no rise).
pub fn background_task(task: &str) {
    let _ = metrics().background_restarts.with_label_values(&[task]);
}

/// The supervisor restarted background task `task` after it panicked.
pub fn background_restart(task: &str) {
    metrics()
        .background_restarts
        .with_label_values(&[task])
        .inc();
}

/// The text exposition of every metric: ours and the process's own (`process::render`).
#[must_use]
pub fn render() -> String {
    let mut out = Vec::new();
    let families = metrics().registry.gather();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    let mut text = String::from_utf8(out).unwrap_or_default();
    text.push_str(&process::render());
    text
}

/// The standard `process_*` metrics (the names Prometheus' client libraries use, unprefixed, so
/// stock dashboards and alerts work), read from `/proc/self` at each scrape. Off Linux, or when
/// `/proc` cannot be read, a value is left out rather than reported as 0.
mod process {
    use std::fmt::Write as _;

    /// The unit of `/proc/[pid]/stat`'s times: `USER_HZ`, fixed at 100 in Linux's user ABI
    /// whatever the kernel's own tick rate.
    const USER_HZ: f64 = 100.0;

    pub(super) fn render() -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
            if let Some(value) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
                );
            }
        };
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        // Fields after the command name, which is in parentheses and may hold spaces: index 0
        // is field 3 (state), so field N is at N - 3.
        let fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let cpu = field(14)
            .zip(field(15))
            .map(|(user, system)| (user + system) / USER_HZ);
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
        let start = field(22)
            .zip(boot_time())
            .map(|(ticks, boot)| boot + ticks / USER_HZ);
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            start,
        );
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let kib = |key: &str| {
            status.as_deref().and_then(|s| {
                s.lines()
                    .find_map(|line| line.strip_prefix(key))
                    .and_then(|rest| {
                        rest.trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<f64>()
                            .ok()
                    })
                    .map(|kib| kib * 1024.0)
            })
        };
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            kib("VmRSS:"),
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            kib("VmSize:"),
        );
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            open,
        );
        metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max_fds(),
        );
        out
    }

    /// `btime` of `/proc/stat`: when the machine booted, in seconds since the epoch.
    fn boot_time() -> Option<f64> {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }

    /// The soft limit of `Max open files` in `/proc/self/limits`.
    fn max_fds() -> Option<f64> {
        std::fs::read_to_string("/proc/self/limits")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_jobs_last_success_only_moves_forward_and_the_queue_gauges_are_labelled() {
        daily_job_succeeded("unit-test-job", 1_700_000_100);
        daily_job_succeeded("unit-test-job", 1_700_000_000);
        open_requests("unit-test-team", 3, 1);
        let text = render();
        assert!(
            text.contains(
                "kaitong_daily_job_last_success_timestamp_seconds{job=\"unit-test-job\"} 1700000100"
            ),
            "{text}"
        );
        assert!(text.contains("kaitong_requests_open{team=\"unit-test-team\"} 3"));
        assert!(text.contains("kaitong_requests_overdue{team=\"unit-test-team\"} 1"));
    }
}
