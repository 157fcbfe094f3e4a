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
    turns: TurnMetrics,
    outbox: OutboxMetrics,
    server: ServerMetrics,
    work: WorkMetrics,
}

/// What happens to a message: its callback, its answer, how it was understood.
struct TurnMetrics {
    callbacks: IntCounterVec,
    turn_seconds: HistogramVec,
    understanding: IntCounterVec,
    embedding_fallbacks: IntCounterVec,
    embedding_space_texts: IntGauge,
    embedding_query_calls: IntCounter,
    embedding_query_texts: IntCounterVec,
    transitions: IntCounterVec,
}

/// Messages waiting to go out, and their failures.
struct OutboxMetrics {
    depth: IntGauge,
    oldest_seconds: IntGauge,
    failed: IntGauge,
    pending_by_kind: IntGaugeVec,
    failed_by_kind: IntGaugeVec,
    attempt_failures: IntCounterVec,
}

/// The process's dependencies and connections.
struct ServerMetrics {
    wecom_api: IntCounterVec,
    store_seconds: HistogramVec,
    connections_open: IntGauge,
    connection_cap_hits: IntCounter,
    background_restarts: IntCounterVec,
}

/// The teams' open work and the daily jobs.
struct WorkMetrics {
    requests_open: IntGaugeVec,
    requests_overdue: IntGaugeVec,
    daily_job_last_success: IntGaugeVec,
}

/// Latency buckets for work that is usually well under a second.
const FAST_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry =
            Registry::new_custom(Some("kaitong".into()), None).unwrap_or_else(|_| Registry::new());
        register_build_info(&registry);
        let r = Registrar {
            registry: &registry,
        };
        let turns = TurnMetrics::register(&r);
        let outbox = OutboxMetrics::register(&r);
        let server = ServerMetrics::register(&r);
        let work = WorkMetrics::register(&r);
        Metrics {
            turns,
            outbox,
            server,
            work,
            registry,
        }
    })
}

/// Creates metrics and registers them. Metric definitions are constants; a failure here is a
/// programming error caught by the tests, so fall back to unregistered metrics rather than
/// abort (a definition the library refuses outright does abort).
struct Registrar<'a> {
    registry: &'a Registry,
}

impl Registrar<'_> {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|_| std::process::abort());
        let _ = self.registry.register(Box::new(c.clone()));
        c
    }

    fn plain_counter(&self, name: &str, help: &str) -> IntCounter {
        let c = IntCounter::new(name, help).unwrap_or_else(|_| std::process::abort());
        let _ = self.registry.register(Box::new(c.clone()));
        c
    }

    fn histogram(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(FAST_BUCKETS.to_vec());
        let h = HistogramVec::new(opts, labels).unwrap_or_else(|_| std::process::abort());
        let _ = self.registry.register(Box::new(h.clone()));
        h
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let g = IntGauge::new(name, help).unwrap_or_else(|_| std::process::abort());
        let _ = self.registry.register(Box::new(g.clone()));
        g
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|_| std::process::abort());
        let _ = self.registry.register(Box::new(g.clone()));
        g
    }
}

impl TurnMetrics {
    fn register(r: &Registrar<'_>) -> Self {
        Self {
            callbacks: r.counter(
                "callbacks_total",
                "WeCom callbacks by channel and result",
                &["channel", "result"],
            ),
            turn_seconds: r.histogram(
                "turn_seconds",
                "Time for the bot to answer one message",
                &["channel"],
            ),
            understanding: r.counter(
                "understanding_total",
                "Understanding outcomes",
                &["outcome"],
            ),
            embedding_space_texts: r.gauge(
                "embedding_server_space_texts",
                "Catalog texts embedded by the embedding server for the current catalog (0: not ready)",
            ),
            embedding_fallbacks: r.counter(
                "embedding_fallbacks_total",
                "Messages understood with the in-process table because the embedding server failed",
                &["reason"],
            ),
            embedding_query_calls: r.plain_counter(
                "embedding_query_calls_total",
                "Calls to the embedding server for people's messages (each carries a batch)",
            ),
            embedding_query_texts: r.counter(
                "embedding_query_texts_total",
                "Message texts embedded, by where the vector came from (server: sent in a batch; cache: repeated text)",
                &["source"],
            ),
            transitions: r.counter(
                "request_transitions_total",
                "Requests filed or moved, by new status",
                &["status"],
            ),
        }
    }
}

impl OutboxMetrics {
    fn register(r: &Registrar<'_>) -> Self {
        Self {
            depth: r.gauge("outbox_pending", "Messages waiting in the outbox"),
            oldest_seconds: r.gauge(
                "outbox_oldest_seconds",
                "Age of the oldest waiting outbox message",
            ),
            failed: r.gauge("outbox_failed", "Outbox messages given up"),
            pending_by_kind: r.gauges(
                "outbox_pending_by_kind",
                "Messages waiting in the outbox, by transport",
                &["kind"],
            ),
            failed_by_kind: r.gauges(
                "outbox_failed_by_kind",
                "Outbox messages given up, by transport",
                &["kind"],
            ),
            attempt_failures: r.counter(
                "outbox_attempt_failures_total",
                "Failed delivery attempts by transport and cause (refused, DNS, TLS, timeout, errcode N, HTTP N, …)",
                &["kind", "cause"],
            ),
        }
    }
}

impl ServerMetrics {
    fn register(r: &Registrar<'_>) -> Self {
        Self {
            wecom_api: r.counter(
                "wecom_api_calls_total",
                "WeCom API calls by path and errcode",
                &["path", "errcode"],
            ),
            store_seconds: r.histogram("store_seconds", "Store operation latency", &["op"]),
            connections_open: r.gauge("connections_open", "Open HTTP connections"),
            connection_cap_hits: r.plain_counter(
                "connection_cap_hits_total",
                "Times the accept loop waited because server.max_connections were open",
            ),
            background_restarts: r.counter(
                "background_restarts_total",
                "Background tasks (outbox worker, daily jobs, gauges, purger, reloader, admin listener) restarted after a panic, by task",
                &["task"],
            ),
        }
    }
}

impl WorkMetrics {
    fn register(r: &Registrar<'_>) -> Self {
        Self {
            requests_open: r.gauges(
                "requests_open",
                "Requests submitted or processing now, any batch day, by handling team",
                &["team"],
            ),
            requests_overdue: r.gauges(
                "requests_overdue",
                "Open requests past their batch's done-by time (逾期), by handling team",
                &["team"],
            ),
            daily_job_last_success: r.gauges(
                "daily_job_last_success_timestamp_seconds",
                "When each daily job (cutoff 16:00, push and reminder 17:30) last completed a day, unix seconds",
                &["job"],
            ),
        }
    }
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
        .turns
        .callbacks
        .with_label_values(&[channel, result])
        .inc();
}

pub fn turn(channel: &str, took: Duration) {
    metrics()
        .turns
        .turn_seconds
        .with_label_values(&[channel])
        .observe(took.as_secs_f64());
}

pub fn understanding(outcome: &str) {
    metrics()
        .turns
        .understanding
        .with_label_values(&[outcome])
        .inc();
}

/// The server's catalog space is ready with this many texts.
pub fn embedding_space_ready(texts: usize) {
    metrics()
        .turns
        .embedding_space_texts
        .set(i64::try_from(texts).unwrap_or(i64::MAX));
}

/// The embedding server failed (timeout, status, garbage); the in-process table answered.
pub fn embedding_fallback(reason: &str) {
    metrics()
        .turns
        .embedding_fallbacks
        .with_label_values(&[reason])
        .inc();
}

/// One call to the embedding server carrying `texts` distinct message texts.
pub fn embedding_query_call(texts: usize) {
    let m = &metrics().turns;
    m.embedding_query_calls.inc();
    m.embedding_query_texts
        .with_label_values(&["server"])
        .inc_by(texts as u64);
}

/// A message's vector came from the query cache: no call.
pub fn embedding_query_cached() {
    metrics()
        .turns
        .embedding_query_texts
        .with_label_values(&["cache"])
        .inc();
}

pub fn transition(status: &str) {
    metrics()
        .turns
        .transitions
        .with_label_values(&[status])
        .inc();
}

pub fn wecom_api(path: &str, errcode: i64) {
    metrics()
        .server
        .wecom_api
        .with_label_values(&[path, &errcode.to_string()])
        .inc();
}

pub fn store(op: &str, took: Duration) {
    metrics()
        .server
        .store_seconds
        .with_label_values(&[op])
        .observe(took.as_secs_f64());
}

pub fn outbox(pending: usize, oldest: Option<Duration>, failed: usize) {
    let m = metrics();
    m.outbox
        .depth
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.outbox
        .oldest_seconds
        .set(oldest.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    m.outbox
        .failed
        .set(i64::try_from(failed).unwrap_or(i64::MAX));
}

/// One transport's share of the outbox: waiting and given up.
pub fn outbox_kind(kind: &str, pending: usize, failed: usize) {
    let m = metrics();
    m.outbox
        .pending_by_kind
        .with_label_values(&[kind])
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.outbox
        .failed_by_kind
        .with_label_values(&[kind])
        .set(i64::try_from(failed).unwrap_or(i64::MAX));
}

/// A delivery attempt failed (retried or given up).
pub fn outbox_failure(kind: &str, cause: &str) {
    metrics()
        .outbox
        .attempt_failures
        .with_label_values(&[kind, cause])
        .inc();
}

pub fn connection_opened() {
    metrics().server.connections_open.inc();
}

pub fn connection_closed() {
    metrics().server.connections_open.dec();
}

pub fn connection_cap_hit() {
    metrics().server.connection_cap_hits.inc();
}

/// The open-work queue of one team now.
pub fn open_requests(team: &str, open: usize, overdue: usize) {
    let m = metrics();
    m.work
        .requests_open
        .with_label_values(&[team])
        .set(i64::try_from(open).unwrap_or(i64::MAX));
    m.work
        .requests_overdue
        .with_label_values(&[team])
        .set(i64::try_from(overdue).unwrap_or(i64::MAX));
}

/// A daily job completed a day at `unix_secs` (this instance, or another one, read from the
/// store's done record). Only ever moves forward, so a day found done later by another
/// instance never sets it back.
pub fn daily_job_succeeded(job: &str, unix_secs: i64) {
    let gauge = metrics()
        .work
        .daily_job_last_success
        .with_label_values(&[job]);
    if unix_secs > gauge.get() {
        gauge.set(unix_secs);
    }
}

/// Background task `task` was started: its restart counter is shown from now on, at 0, so an
/// alert on its increase sees the first restart too (a series that appears at 1 has no rise).
pub fn background_task(task: &str) {
    let _ = metrics()
        .server
        .background_restarts
        .with_label_values(&[task]);
}

/// The supervisor restarted background task `task` after it panicked.
pub fn background_restart(task: &str) {
    metrics()
        .server
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
        let mut out = Exposition::default();
        write_stat_metrics(&mut out);
        write_memory_metrics(&mut out);
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        out.metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            open,
        );
        out.metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max_fds(),
        );
        out.text
    }

    /// The text exposition being written.
    #[derive(Default)]
    struct Exposition {
        text: String,
    }

    impl Exposition {
        /// One metric with its help and type; nothing when its value could not be read.
        fn metric(&mut self, name: &str, kind: &str, help: &str, value: Option<f64>) {
            if let Some(value) = value {
                let _ = write!(
                    self.text,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
                );
            }
        }
    }

    /// CPU time and start time, from `/proc/self/stat`.
    fn write_stat_metrics(out: &mut Exposition) {
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
        out.metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
        let start = field(22)
            .zip(boot_time())
            .map(|(ticks, boot)| boot + ticks / USER_HZ);
        out.metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            start,
        );
    }

    /// Resident and virtual memory, from `/proc/self/status`.
    fn write_memory_metrics(out: &mut Exposition) {
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
        out.metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            kib("VmRSS:"),
        );
        out.metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            kib("VmSize:"),
        );
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
