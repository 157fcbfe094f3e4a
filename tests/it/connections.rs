//! Issue 13 item 1: the real `kaitong serve` under slow-header connections. Connections that
//! send half a request line and wait must not exhaust descriptors or stop /healthz; they are
//! closed after the header-read timeout, and descriptors and memory come back.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAP: usize = 40;
const EXTRA: usize = 60;
const HEADER_TIMEOUT_MS: u64 = 1000;

/// The server process, killed when the test ends however it ends.
struct Server {
    child: Child,
    port: u16,
    /// The admin listener (metrics).
    admin_port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_kaitong"))
            .arg("serve")
            .env_remove("RUST_LOG")
            .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "KAITONG_SERVER__ADMIN_LISTEN",
                format!("127.0.0.1:{admin_port}"),
            )
            .env(
                "KAITONG_STORE__URL",
                format!("embedded://{}", dir.path().join("k.db").display()),
            )
            .env("KAITONG_SERVER__MAX_CONNECTIONS", CAP.to_string())
            .env(
                "KAITONG_SERVER__HEADER_READ_TIMEOUT_MS",
                HEADER_TIMEOUT_MS.to_string(),
            )
            .env("KAITONG_NOTIFY__ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            admin_port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.get("/healthz").is_none() {
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// One request on a fresh connection; the whole response, `None` when it failed.
    fn get(&self, path: &str) -> Option<String> {
        let port = if path == "/metrics" {
            self.admin_port
        } else {
            self.port
        };
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response).filter(|r| r.starts_with("HTTP/1.1"))
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[test]
fn slow_header_connections_are_capped_and_timed_out_and_healthz_keeps_answering() {
    let server = Server::start();
    let baseline_fds = server.open_fds();
    let baseline_rss = server.rss_kib();

    // More half-sent requests than the cap, all waiting.
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..CAP + EXTRA)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let during = server.open_fds();
    assert!(
        during <= baseline_fds + CAP + 2,
        "at most {CAP} connections held: {baseline_fds} fds before, {during} during"
    );

    // /healthz still answers within a few seconds: the slow ones make room as they time out.
    let asked = Instant::now();
    let health = server.get("/healthz").expect("healthz answered");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "healthz took {:?}",
        asked.elapsed()
    );

    // Every slow connection is closed by the server (EOF or reset), none before the timeout.
    for stream in &mut slow {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "a half-sent request got an answer: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ),
                "not closed by the server: {e}"
            ),
        }
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_millis(HEADER_TIMEOUT_MS),
        "closed by the timeout, not at once: {closed_after:?}"
    );
    assert!(closed_after < Duration::from_secs(15), "{closed_after:?}");
    drop(slow);

    // Descriptors and memory come back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.open_fds() > baseline_fds + 1 {
        assert!(
            Instant::now() < deadline,
            "fds did not return: {} now, {baseline_fds} before",
            server.open_fds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = server.rss_kib();
    assert!(
        rss < baseline_rss + 16 * 1024,
        "RSS {rss} KiB after, {baseline_rss} KiB before"
    );

    // The metrics are on the admin listener, so the public one may still be closing the last
    // connection it took from the backlog (the client had already gone): wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let metrics = server.get("/metrics").unwrap();
        if metric(&metrics, "kaitong_connections_open") == Some(1.0) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "only the metrics request itself is open: {:?}",
            metric(&metrics, "kaitong_connections_open")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metric(&metrics, "kaitong_connection_cap_hits_total").unwrap_or(0.0) >= 1.0);
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("connection cap reached"))
        .unwrap_or_else(|| panic!("no log line for the cap: {log}"));
    assert!(
        line.contains("max_connections") && line.contains(&CAP.to_string()),
        "{line}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::start();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Keep-alive: the server waits for a next request, but not forever.
    let waited = Instant::now();
    assert_eq!(stream.read(&mut buf).unwrap_or(0), 0, "closed");
    assert!(
        waited.elapsed() >= Duration::from_millis(HEADER_TIMEOUT_MS - 100)
            && waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
}
