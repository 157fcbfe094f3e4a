//! The production `kaitong` binary as an operator uses it: `serve` stopped by SIGTERM, a clear
//! one-line refusal for bad configuration, and `store backup|check|restore`. (`kaitong-dev chat`
//! is tested in `dev/tests/it/chat.rs`.)
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kaitong() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaitong"));
    cmd.env_remove("RUST_LOG");
    // Tests run side by side: the admin listener on a free port unless a test names one.
    cmd.env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = kaitong()
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "KAITONG_STORE__URL",
            format!("embedded://{}", dir.path().join("k.db").display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM is a graceful stop: the process exits cleanly.
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "serve exited with {status:?} after SIGTERM"
    );
}

#[test]
fn an_invalid_aes_key_stops_start_up_with_one_line_naming_it() {
    let out = kaitong()
        .arg("serve")
        .env("KAITONG_WECOM__ENCODING_AES_KEY", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("wecom.encoding_aes_key"), "{err}");
}

#[test]
fn a_missing_required_key_stops_start_up_naming_it() {
    let out = kaitong()
        .arg("serve")
        .env("KAITONG_AIBOT__TOKEN", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("aibot.token") && err.contains("KAITONG_AIBOT__TOKEN"),
        "{err}"
    );
}

/// Runs `kaitong --config FILE serve` with `toml` as the file; the exit code and stderr.
fn serve_with_config_file(toml: &str, envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.toml");
    std::fs::write(&path, toml).unwrap();
    let out = kaitong()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn a_config_syntax_error_names_file_line_and_key_but_never_the_value() {
    let (code, err, path) = serve_with_config_file(
        "# local overrides\n[server]\nlisten = \"127.0.0.1:0\"\n\n[wecom]\ntoken = \"TopSecret-7f3a9\n",
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{path}:6")), "{err}");
    assert!(err.contains("wecom.token"), "{err}");
    assert!(!err.contains("TopSecret"), "the value leaked: {err}");
    assert!(
        !err.contains("7f3a9"),
        "a fragment of the value leaked: {err}"
    );
}

#[test]
fn a_config_type_error_names_the_key_but_never_the_value() {
    let (code, err, _) = serve_with_config_file("[wecom]\nagent_id = \"TopSecret-7f3a9\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("agent_id"), "{err}");
    assert!(!err.contains("TopSecret"), "the value leaked: {err}");
    // The same through the environment.
    let (code, err, _) = serve_with_config_file(
        "[server]\nlisten = \"127.0.0.1:0\"\n",
        &[("KAITONG_WECOM__AGENT_ID", "EnvSecret-1b2c")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("agent_id"), "{err}");
    assert!(!err.contains("EnvSecret"), "the value leaked: {err}");
}

/// A store file with `n` records written through the library, closed again.
fn populated_store(path: &std::path::Path, n: usize) {
    use kaitong::store::{EmbeddedStore, Store};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(path).unwrap();
        for i in 0..n {
            let value = format!("record {i} {}", "x".repeat(200));
            store
                .put(&format!("k{i:05}"), value.as_bytes(), None)
                .await
                .unwrap();
        }
    });
}

fn store_env(path: &std::path::Path) -> (&'static str, String) {
    (
        "KAITONG_STORE__URL",
        format!("embedded://{}", path.display()),
    )
}

/// Starts `serve` on the store and returns its exit code and stderr (it must refuse to start).
fn serve_refusal(path: &std::path::Path) -> (Option<i32>, String) {
    let (key, url) = store_env(path);
    let mut child = kaitong()
        .arg("serve")
        .env(key, url)
        .env("KAITONG_SERVER__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started on a damaged store");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The log lines (JSON or text) are not part of the refusal: keep the line that says why.
fn refusal_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("kaitong: "))
        .collect()
}

#[test]
fn a_damaged_store_file_is_refused_with_one_line_and_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    populated_store(&good, 400);
    let len = std::fs::metadata(&good).unwrap().len();

    let truncated = dir.path().join("truncated.db");
    std::fs::copy(&good, &truncated).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let zeroed = dir.path().join("zeroed.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let half = bytes.len() / 2;
    bytes[half..].fill(0);
    std::fs::write(&zeroed, &bytes).unwrap();

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();

    for path in [&truncated, &zeroed, &empty] {
        let (code, err) = serve_refusal(path);
        assert_eq!(code, Some(1), "{}: {err}", path.display());
        assert!(!err.contains("panicked"), "{}: {err}", path.display());
        let lines = refusal_lines(&err);
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(&path.display().to_string())
                && lines[0].contains("damaged")
                && lines[0].contains("kaitong store restore"),
            "{}",
            lines[0]
        );
        assert_eq!(
            err.lines().filter(|l| !l.contains("DEMO")).count(),
            1,
            "only the refusal is printed: {err}"
        );
        // `store check` says the same, with its own exit code.
        let (key, url) = store_env(path);
        let out = kaitong()
            .args(["store", "check"])
            .env(key, url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("damaged") && !err.contains("panicked"),
            "{err}"
        );
    }
    // The empty file is still empty: nothing started a new store in it.
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

    let (key, url) = store_env(&good);
    let out = kaitong()
        .args(["store", "check"])
        .env(key, url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("400 records"), "{text}");
}

/// N from "(N records" in a store command's output.
fn records_in(text: &str) -> usize {
    text.split_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count in {text:?}"))
}

#[test]
fn the_store_is_backed_up_while_serving_and_restored_after_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    populated_store(&db, 50);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("127.0.0.1:{}", free_port());
    let (key, url) = store_env(&db);
    let mut server = kaitong()
        .arg("serve")
        .env(key, &url)
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KAITONG_SERVER__ADMIN_LISTEN", &admin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The running server holds the file; the backup is taken through it.
    let backup = dir.path().join("backup.db");
    let out = kaitong()
        .args(["store", "backup", "--to"])
        .arg(&backup)
        .env(key, &url)
        .env("KAITONG_SERVER__ADMIN_LISTEN", &admin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("through the running server"), "{text}");
    let backed_up = records_in(&text);
    assert!(
        backed_up >= 50,
        "the 50 records and the server's own: {text}"
    );
    // Restoring under a running server is refused.
    let out = kaitong()
        .args(["store", "restore"])
        .arg(&backup)
        .env(key, &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    let _ = server.kill();
    let _ = server.wait();

    // The file is damaged while stopped; the backup brings it back.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(4096)
        .unwrap();
    assert_eq!(serve_refusal(&db).0, Some(1));
    let out = kaitong()
        .args(["store", "restore"])
        .arg(&backup)
        .env(key, &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kaitong()
        .args(["store", "check"])
        .env(key, &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every record of the backup, and the restore's own time (daily jobs due before it ran).
    assert_eq!(
        records_in(&String::from_utf8_lossy(&out.stdout)),
        backed_up + 1
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use kaitong::store::Store;
        let store = kaitong::store::EmbeddedStore::open(&db).unwrap();
        let value = store.get("k00049").await.unwrap().unwrap();
        assert!(value.starts_with(b"record 49 "));
    });
    // The damaged file was kept aside, not deleted.
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("before-restore"));
    assert!(kept);
    // A stopped store is backed up directly.
    let second = dir.path().join("second.db");
    let out = kaitong()
        .args(["store", "backup", "--to"])
        .arg(&second)
        .env(key, &url)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("directly"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 23: a typo in the configuration is refused with the file, the line and the key,
/// instead of being ignored and the default silently used.
#[test]
fn config_typos_are_refused_with_file_line_and_key() {
    let cases: [(&str, usize, &str); 6] = [
        // An unknown section, with the one meant.
        (
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[sever]\nlisten = \"0.0.0.0:80\"\n",
            4,
            "[sever] (是不是 server?)",
        ),
        // An unknown top-level key.
        ("# local\ndebug = true\n", 2, "未知的配置项 debug"),
        // An unknown key in a known section.
        ("[server]\nlisen = \"127.0.0.1:0\"\n", 2, "server.lisen"),
        // The cut-off after the done-by time.
        ("[schedule]\ncutoff = \"18:00\"\n", 2, "schedule.cutoff"),
        // A log filter tracing cannot read.
        ("[log]\nfilter = \"info,kaitong=loud\"\n", 2, "log.filter"),
        // An enum, in plain words.
        (
            "[log]\nformat = \"xml\"\n",
            2,
            "log.format 只能是 text 或 json",
        ),
    ];
    for (toml, line, expected) in cases {
        let (code, err, path) = serve_with_config_file(toml, &[]);
        assert_eq!(code, Some(2), "{toml}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{path}:{line}:")), "{toml}: {err}");
        assert!(err.contains(expected), "{toml}: {err}");
    }
}

#[test]
fn an_unknown_kaitong_variable_is_refused_naming_it() {
    let out = kaitong()
        .arg("serve")
        .env("KAITONG_SERVER_LISTEN", "0.0.0.0:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KAITONG_SERVER_LISTEN"), "{err}");
    assert!(err.contains("KAITONG_SERVER__LISTEN"), "{err}");
    assert!(!err.contains("0.0.0.0:9"), "{err}");
}
