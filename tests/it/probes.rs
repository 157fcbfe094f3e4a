//! The probe failures of issue 23, one test each, in the order. Each test reproduced its
//! failure before the fix (the reproduction is in the test's doc comment).
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn kaitong() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaitong"));
    cmd.env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("KAITONG_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Probe 1: eight flipped bytes in a live data page: `kaitong store check` panicked (exit 101) and
/// rewrote the file, after which `serve` refused with "All roots are corrupted". Reproduce: write
/// 400 records, flip 8 bytes inside one record's value, run `store check`.
#[test]
fn store_check_on_a_damaged_page_never_writes_and_reports_what_is_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use kaitong::store::{EmbeddedStore, Store};
        let store = EmbeddedStore::open(&db).unwrap();
        for i in 0..400 {
            let value = format!("record {i} {}", "x".repeat(200));
            store
                .put(&format!("k{i:05}"), value.as_bytes(), None)
                .await
                .unwrap();
        }
    });
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"record 200 ";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    for b in &mut bytes[at + 20..at + 28] {
        *b ^= 0xff;
    }
    std::fs::write(&db, &bytes).unwrap();
    let out = kaitong()
        .args(["store", "check"])
        .env("KAITONG_STORE__URL", format!("embedded://{}", db.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("damaged"), "{err}");
    assert!(err.contains("kaitong store restore"), "{err}");
    assert!(
        err.contains("readable"),
        "what is recoverable is reported: {err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "check must never write the file"
    );
}

/// Runs `kaitong serve` with `envs` until it exits (it must refuse to start); its stderr.
fn serve_refusal(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = kaitong();
    cmd.arg("serve")
        .env("KAITONG_SERVER__LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started with {envs:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Probe 2: a mistyped store scheme printed the whole URL, password included
/// (`unsupported store url "redis+sentinal://:…@…"`). Reproduce: `serve` with
/// `KAITONG_STORE__URL=redis+sentinal://:PASSWORD@10.0.0.1:26379/mymaster`.
#[test]
fn no_start_up_error_prints_a_password_from_a_url() {
    for url in [
        "redis+sentinal://:Pw7hunter2x@10.0.0.1:26379/mymaster",
        "redis://:Pw7hunter2x@127.0.0.1:notaport/0",
        "redis+sentinel://:Pw7hunter2x@/mymaster",
    ] {
        let (code, err) = serve_refusal(&[("KAITONG_STORE__URL", url)]);
        assert_ne!(code, Some(0), "{url}: {err}");
        assert!(err.contains("kaitong: "), "{url}: {err}");
        assert!(
            !err.contains("Pw7hunter2x"),
            "{url}: the password leaked: {err}"
        );
    }
    // A secret in another field: the embeddings URL's user info.
    let (_, err) = serve_refusal(&[
        ("KAITONG_STORE__URL", "redis+sentinal://h:1/m"),
        (
            "KAITONG_EMBEDDINGS__URL",
            "http://u:Pw8hunter3y@127.0.0.1:1",
        ),
        ("KAITONG_EMBEDDINGS__API_KEY", "Pw9ApiKeyz"),
    ]);
    assert!(
        !err.contains("Pw8hunter3y") && !err.contains("Pw9ApiKeyz"),
        "{err}"
    );
}
