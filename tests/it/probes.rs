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

/// The full served application (callbacks, console, API, admin) on the embedded store.
/// Returns it with its ledger and outbox.
async fn served(
    settings: kaitong::config::Settings,
) -> (
    crate::harness::TestApp,
    std::sync::Arc<dyn kaitong::requests::Ledger>,
    kaitong::notify::Outbox,
) {
    let (store, dir) = crate::harness::fresh_store(crate::harness::Backend::Embedded);
    let parts = kaitong::startup::Parts::build(&settings, std::sync::Arc::clone(&store)).unwrap();
    let (ledger, outbox) = (parts.ledger.clone(), parts.outbox.clone());
    let app = kaitong::startup::Application::build_from(&settings, parts)
        .await
        .unwrap();
    (
        crate::harness::TestApp::serve(app, settings, store, dir),
        ledger,
        outbox,
    )
}

/// Sends `head` and `body` on a raw connection and reads the answer (empty when none came
/// within `wait`).
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: &str,
    body: &[u8],
    wait: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut out = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut out)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&out[..n]).into_owned(),
        _ => String::new(),
    }
}

/// Probe 3: the console login had no body deadline and no size cap: 520 trickling login posts
/// made `/healthz` fail for 25 s, and 510 half-sent 2 MB login bodies took RSS to 1 GB.
/// Reproduce: `POST /console/login` announcing 100 bytes and sending 10 (no answer, ever), and
/// one announcing 2 000 000 bytes (read in full, up to axum's 2 MB default).
#[tokio::test]
async fn every_route_has_the_body_deadline_and_a_small_body_cap() {
    crate::harness::capture_logs();
    let mut settings = crate::harness::test_settings();
    settings.notify.enabled = false;
    settings.server.body_read_timeout_ms = 800;
    let (mut app, _, _) = served(settings).await;
    let wait = std::time::Duration::from_secs(3);
    for path in [
        "/console/login",
        "/api/v1/requests/KT-1/reject",
        "/admin/store/backup",
    ] {
        // A trickling body: 408 once the body deadline passes.
        let started = std::time::Instant::now();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\n"
        );
        // The console, the API and /admin live on the admin listener.
        let addr = app.admin_addr.unwrap_or(app.addr);
        let answer = raw_exchange(addr, &head, b"token=abc", wait).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
        assert!(started.elapsed() < std::time::Duration::from_millis(2500));
        // A declared large body: 413 at once, nothing read.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 2000000\r\n\r\n"
        );
        let answer = raw_exchange(addr, &head, b"token=", wait).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer:?}");
        // A chunked body over the cap: 413.
        let big = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(
                (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 16 * 1024])),
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(big.status().as_u16(), 413, "{path}");
    }
    // A small form still works (a wrong token is refused as before).
    let login = app
        .http
        .post(app.url("/console/login"))
        .form(&[("token", "wrong-token-123")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 401);
    let logs = crate::harness::captured_logs();
    assert!(logs.contains("body not received in time"), "{logs}");
    assert!(logs.contains("body over the size limit"), "{logs}");
    app.stop().await;
}

const OPS_TOKEN: &str = "ops-token-0123456789";

fn with_ops_handler(mut settings: kaitong::config::Settings) -> kaitong::config::Settings {
    settings
        .handlers
        .accounts
        .push(kaitong::config::HandlerAccountSettings {
            name: "ops1".to_owned(),
            team: "ops".to_owned(),
            token_sha256: kaitong::requests::token_hash(OPS_TOKEN),
            wecom_userid: String::new(),
        });
    settings
}

/// A client sending from `ip` (Linux routes all of 127/8 to lo), not following redirects.
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// Probe 4: knowing a token's first 4 characters was enough to keep its handler locked out
/// for good: wrong guesses with that prefix from many addresses emptied the prefix bucket, and
/// the right token was then refused (429) before it was looked at. Reproduce: 3 wrong
/// `ops-…` tokens from 3 addresses (burst 3), then the right one from a fourth address.
#[tokio::test]
async fn the_token_prefix_bucket_never_locks_out_the_right_token() {
    crate::harness::capture_logs();
    let mut settings = with_ops_handler(crate::harness::test_settings());
    settings.notify.enabled = false;
    settings.console.login_burst = 3;
    settings.console.login_refill_ms = 600_000;
    let (mut app, _, _) = served(settings).await;
    for i in 0..6u8 {
        let wrong = client_from([127, 0, 3, i + 1])
            .post(app.url("/console/login"))
            .form(&[("token", format!("ops-guess-{i}"))])
            .send()
            .await
            .unwrap();
        let expected = if i < 3 { 401 } else { 429 };
        assert_eq!(wrong.status().as_u16(), expected, "guess {i}");
    }
    // The right token, from an address that has not failed, logs in and calls the API.
    let login = client_from([127, 0, 3, 20])
        .post(app.url("/console/login"))
        .form(&[("token", OPS_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303, "the right token is let in");
    let api = client_from([127, 0, 3, 21])
        .get(app.url("/api/v1/requests"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status().as_u16(),
        200,
        "the right bearer token is let in"
    );
    // A wrong one with the prefix from a fresh address is still refused as throttled.
    let wrong = client_from([127, 0, 3, 22])
        .get(app.url("/api/v1/requests"))
        .bearer_auth("ops-guess-x")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 429);
    let logs = crate::harness::captured_logs();
    assert!(
        logs.contains("too many failed tokens with this prefix"),
        "{logs}"
    );
    app.stop().await;
}

/// Probe 7: `POST /admin/store/backup` was not throttled: 60 wrong tokens from one address and
/// never a 429 (a hit returns the whole store). Reproduce: 60 wrong bearer tokens in a row.
#[tokio::test]
async fn the_admin_backup_is_throttled_like_every_token() {
    crate::harness::capture_logs();
    let mut settings = crate::harness::test_settings();
    settings.notify.enabled = false;
    settings.console.login_burst = 3;
    settings.console.login_refill_ms = 600_000;
    settings.admin.token = kaitong::secret::Secret::from("admin-backup-token-0123456789");
    let (mut app, _, _) = served(settings).await;
    let mut codes = Vec::new();
    for i in 0..60 {
        let response = client_from([127, 0, 7, 1])
            .post(app.url("/admin/store/backup"))
            .bearer_auth(format!("wrong-{i}"))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        codes.push(response.status().as_u16());
    }
    assert_eq!(&codes[..3], &[401, 401, 401]);
    assert!(codes[3..].iter().all(|c| *c == 429), "{codes:?}");
    // The right token from another address still gets its backup.
    let right = client_from([127, 0, 7, 2])
        .post(app.url("/admin/store/backup"))
        .bearer_auth("admin-backup-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert!(crate::harness::captured_logs().contains("too many failed admin tokens"));
    app.stop().await;
}

/// Probe 8: an empty token logged in when a handler's `token_sha256` was the hash of the empty
/// string (what `printf %s "$UNSET" | sha256sum` gives). Reproduce: configure that hash, post
/// an empty token to `/console/login` (303 and a session before).
#[tokio::test]
async fn an_empty_token_is_refused_at_start_up_and_everywhere() {
    use kaitong::requests::{HandlerDirectory, token_hash};
    let empty = kaitong::config::HandlerAccountSettings {
        name: "ghost".to_owned(),
        team: "ops".to_owned(),
        token_sha256: token_hash(""),
        wecom_userid: String::new(),
    };
    // Start-up refuses the hash of an empty (or blank) token, naming the account.
    for blank in ["", "\n", " "] {
        let mut settings = crate::harness::test_settings();
        settings
            .handlers
            .accounts
            .push(kaitong::config::HandlerAccountSettings {
                token_sha256: token_hash(blank),
                ..empty.clone()
            });
        let err = kaitong::startup::check_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ghost") && err.contains("empty"),
            "{blank:?}: {err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.toml");
    std::fs::write(
        &file,
        format!(
            "[[handlers.accounts]]\nname = \"ghost\"\nteam = \"ops\"\ntoken_sha256 = \"{}\"\n",
            token_hash("")
        ),
    )
    .unwrap();
    let out = kaitong()
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .env("KAITONG_SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "KAITONG_STORE__URL",
            format!("embedded://{}", dir.path().join("k.db").display()),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ghost"), "{err}");
    // An empty or blank token matches nothing, whatever the directory holds.
    let directory =
        HandlerDirectory::new(&[empty]).with_admin_token(&kaitong::secret::Secret::from(" "));
    for blank in ["", " ", "\t"] {
        assert!(directory.by_token(blank).is_none(), "{blank:?}");
    }
    // Over HTTP: an empty login field and an empty bearer are refused.
    crate::harness::capture_logs();
    let mut settings = crate::harness::test_settings();
    settings.notify.enabled = false;
    let (mut app, _, _) = served(settings).await;
    let login = client_from([127, 0, 8, 1])
        .post(app.url("/console/login"))
        .form(&[("token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 401);
    let api = client_from([127, 0, 8, 1])
        .get(app.url("/api/v1/requests"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    let backup = client_from([127, 0, 8, 1])
        .post(app.url("/admin/store/backup"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(backup.status().as_u16(), 401);
    app.stop().await;
}

/// A hostile embeddings server: answers every request 200 with an endless JSON body, written
/// as fast as the client reads. Returns its address and the bytes it managed to write.
async fn endless_embeddings_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&written);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = std::sync::Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"data\":[{\"index\":0,\"embedding\":[";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = "0.125,".repeat(10_000);
                // Up to 1 GiB, as the probe sent.
                while counter.load(std::sync::atomic::Ordering::Relaxed) < 1 << 30 {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (addr, written)
}

/// Probe 10: a huge embeddings response (1 GiB) made each unclear message take 4–6 s, past
/// WeCom's 5 s window despite the 800 ms budget, and peaked at 3 GB RSS. Reproduce: an
/// embeddings server answering an endless JSON array; embed one message.
#[tokio::test]
async fn a_huge_embeddings_response_is_capped_and_stays_inside_the_budget() {
    crate::harness::capture_logs();
    let (addr, written) = endless_embeddings_server().await;
    let mut section = crate::harness::test_settings().embeddings;
    section.url = format!("http://{addr}");
    section.timeout_ms = 800;
    let server = kaitong::embed::ServerEmbedder::from_settings(&section)
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let result = server
        .embed(
            &["几个没付钱的订单要作废掉".to_owned()],
            kaitong::embed::TextKind::Query,
        )
        .await;
    let took = started.elapsed();
    assert!(result.is_err(), "an endless answer is no answer");
    assert!(
        took < std::time::Duration::from_millis(1200),
        "inside the budget: {took:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let read = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        read < 16 * 1024 * 1024,
        "the client stopped reading at the cap: {read} bytes written"
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("too large"), "{message}");
}

/// Probe 11: connection slots could be starved: 1,500 clients holding half-sent headers filled
/// the 512 slots and `/healthz` did not answer within 3 s. Reproduce (scaled down): 40 slots,
/// a 10 s header timeout, 200 half-sent requests from one address, then `/healthz`.
#[tokio::test]
async fn slow_clients_cannot_starve_the_connection_slots() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    crate::harness::capture_logs();
    let mut settings = crate::harness::test_settings();
    settings.notify.enabled = false;
    settings.server.max_connections = 40;
    settings.server.max_connections_per_address = 10;
    settings.server.header_read_timeout_ms = 10_000;
    let (mut app, _, _) = served(settings).await;
    let mut slow = Vec::new();
    for i in 0..200u8 {
        // Half from one address (over its share), half spread over others.
        let ip = if i % 2 == 0 {
            [127, 0, 11, 1]
        } else {
            [127, 0, 12, i]
        };
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((ip, 0))).unwrap();
        let mut stream = socket.connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for ip in [[127, 0, 11, 1], [127, 0, 13, 1]] {
        let asked = std::time::Instant::now();
        let answer = client_from(ip)
            .get(app.url("/healthz"))
            .timeout(std::time::Duration::from_secs(3))
            .send()
            .await;
        let answer = answer.unwrap_or_else(|e| panic!("/healthz from {ip:?}: {e}"));
        assert_eq!(answer.status().as_u16(), 200);
        assert!(asked.elapsed() < std::time::Duration::from_secs(3));
    }
    // The server let go of the idlest: most slow connections are closed already.
    let mut closed = 0;
    for stream in &mut slow {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(5), stream.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 200 - 40, "{closed} of 200 closed");
    assert!(crate::harness::captured_logs().contains("idlest connection closed"));
    app.stop().await;
}
