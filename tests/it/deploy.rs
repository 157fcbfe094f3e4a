//! Issue 23, operations: the deploy kit. `kaitong healthcheck` (the Docker HEALTHCHECK), plain
//! logs off a terminal, `--version` with the commit, store errors naming the path, and the
//! files of the kit agreeing with each other.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const OTHER_KEY: &str = "b3RoZXItc3RvcmUta2V5LW5vdC10aGUtZGVtby0wMDA=";

fn kaitong() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaitong"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &std::path::Path, port: u16, key: &str, log: &std::path::Path) -> Server {
    let server = kaitong()
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env("KAITONG_STORE__URL", format!("embedded://{}", db.display()))
        .env("KAITONG_STORE__SECRET_KEY", key)
        .env("KAITONG_NOTIFY__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .map(Server)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn healthcheck(port: u16) -> Output {
    kaitong()
        .arg("healthcheck")
        .env("KAITONG_SERVER__LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .unwrap()
}

#[test]
fn healthcheck_exits_by_readiness_and_logs_carry_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let log = dir.path().join("serve.log");
    let demo_key = kaitong::config::Settings::load_with_env(None, Vec::new())
        .unwrap()
        .store
        .secret_key
        .expose()
        .to_owned();
    // Records sealed with the configured key, as a running bot leaves them.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use kaitong::store::{EmbeddedStore, Sealed, Sealer};
        let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
        let sealer = Sealer::from_settings(&settings.store).unwrap().unwrap();
        let store = Sealed::wrap(
            std::sync::Arc::new(EmbeddedStore::open(&db).unwrap()),
            sealer,
        );
        for i in 0..3 {
            store.put(&format!("probe:{i}"), b"v", None).await.unwrap();
        }
    });
    let port = free_port();
    {
        let _server = serve(&db, port, &demo_key, &log);
        let out = healthcheck(port);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));
    }
    // Written to a file, not a terminal: no ANSI colour codes.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("kaitong listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );

    // Nothing listening: not healthy.
    let out = healthcheck(port);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/readyz"));

    // The store answers but the key opens none of its records: not healthy either.
    let port = free_port();
    let _server = serve(&db, port, OTHER_KEY, &log);
    let out = healthcheck(port);
    assert_eq!(out.status.code(), Some(1), "a wrong store key is not ready");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("503"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn version_names_the_commit() {
    let out = kaitong().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let commit = text
        .split_once("(commit ")
        .and_then(|(_, rest)| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {text}"));
    assert!(!commit.is_empty(), "{text}");
}

#[test]
fn a_store_that_cannot_be_opened_names_its_path() {
    let out = kaitong()
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", "127.0.0.1:0")
        .env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env(
            "KAITONG_STORE__URL",
            "embedded:///proc/kaitong-no-such/k.db",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/proc/kaitong-no-such/k.db"), "{err}");
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_deploy_kit_files_agree() {
    let dockerfile = repo_file("Dockerfile");
    assert!(
        dockerfile.contains(r#"HEALTHCHECK"#)
            && dockerfile.contains(r#"CMD ["kaitong", "healthcheck"]"#),
        "the HEALTHCHECK runs kaitong healthcheck"
    );
    assert!(dockerfile.contains("VOLUME [\"/var/lib/kaitong\"]"));
    assert!(dockerfile.contains("embedded:///var/lib/kaitong/"));
    assert!(dockerfile.contains("build.rs"), "build.rs names the commit");
    // The workspace's manifest names dev/ as a member: without it cargo refuses to build.
    assert!(
        dockerfile.contains("COPY dev ./dev"),
        "the workspace member dev/"
    );
    assert!(
        dockerfile.contains("--bin kaitong\n"),
        "only the production binary"
    );
    let ignore = repo_file(".dockerignore");
    for entry in ["target/", ".git/"] {
        assert!(ignore.lines().any(|l| l.trim() == entry), "{entry}");
    }
    let compose = repo_file("docker-compose.yml");
    for needle in [
        "  kaitong:",
        "  redis:",
        "  redis-replica:",
        "  sentinel-1:",
        "  sentinel-2:",
        "  sentinel-3:",
        "  embeddings:",
        "profiles: [\"sentinel\"]",
        "profiles: [\"embeddings\"]",
        "./deploy/kaitong.toml:/etc/kaitong/kaitong.toml",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle}"
        );
    }

    // The unit's config file: loads over the defaults, keeps the store where the unit may
    // write (ReadWritePaths), listens on loopback, and carries no demo account.
    let unit = repo_file("deploy/kaitong.service");
    assert!(unit.contains("--config /etc/kaitong/kaitong.toml"));
    assert!(unit.contains("ReadWritePaths=/var/lib/kaitong"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kaitong.toml");
    let settings = kaitong::config::Settings::load_with_env(Some(&path), Vec::new()).unwrap();
    assert!(
        settings
            .store
            .url
            .starts_with("embedded:///var/lib/kaitong/"),
        "{}",
        settings.store.url
    );
    assert!(settings.handlers.accounts.is_empty());
    assert!(
        !settings
            .demo_secrets()
            .iter()
            .any(|k| k.starts_with("handlers")),
        "{:?}",
        settings.demo_secrets()
    );
}
