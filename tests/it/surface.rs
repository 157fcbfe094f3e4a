//! Issue 23, operations: what faces the internet. The public listener carries only the WeCom
//! callbacks and health; the console, the JSON API, `/metrics` and `/admin` are on
//! `server.admin_listen`; and `serve` will not listen beyond loopback with a demo secret.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{self, Backend, TestApp, fresh_store};

async fn status(client: &reqwest::Client, method: &str, url: &str) -> u16 {
    let request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    request
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn admin_routes_are_served_only_on_the_admin_listener() {
    let mut settings = harness::test_settings();
    settings.notify.enabled = false;
    let (store, dir) = fresh_store(Backend::Embedded);
    let parts = kaitong::startup::Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = kaitong::startup::Application::build_from(&settings, parts)
        .await
        .unwrap();
    let mut app = TestApp::serve(app, settings, store, dir);
    let admin = app.admin_addr.expect("an admin listener by default");
    assert_ne!(admin, app.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/console"),
        ("GET", "/console/login"),
        ("GET", "/api/v1/requests"),
        ("GET", "/metrics"),
        ("POST", "/admin/store/backup"),
    ] {
        let public = status(&client, method, &app.public_url(path)).await;
        assert_eq!(public, 404, "{method} {path} on the public listener");
        let private = status(&client, method, &format!("http://{admin}{path}")).await;
        assert_ne!(private, 404, "{method} {path} on the admin listener");
    }
    // The callbacks are public only; health is on both.
    let public = status(&client, "GET", &app.public_url("/wecom/app")).await;
    assert_ne!(public, 404);
    let private = status(&client, "GET", &format!("http://{admin}/wecom/app")).await;
    assert_eq!(private, 404);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(status(&client, "GET", &app.public_url(path)).await, 200);
        assert_eq!(
            status(&client, "GET", &format!("http://{admin}{path}")).await,
            200
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_empty_admin_listen_serves_no_admin_routes() {
    let mut settings = harness::test_settings();
    settings.server.admin_listen = String::new();
    settings.notify.enabled = false;
    let (store, dir) = fresh_store(Backend::Embedded);
    let parts = kaitong::startup::Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = kaitong::startup::Application::build_from(&settings, parts)
        .await
        .unwrap();
    let mut app = TestApp::serve(app, settings, store, dir);
    assert!(app.admin_addr.is_none());
    let client = reqwest::Client::new();
    assert_eq!(
        status(&client, "GET", &app.public_url("/console/login")).await,
        404
    );
    assert_eq!(
        status(&client, "GET", &app.public_url("/healthz")).await,
        200
    );
    app.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `kaitong serve` with `envs`; its exit code and stderr once it exits (within 20 s).
fn serve_until_exit(envs: &[(&str, String)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaitong"))
        .arg("serve")
        .env_remove("RUST_LOG")
        .env(
            "KAITONG_STORE__URL",
            format!("embedded://{}", dir.path().join("k.db").display()),
        )
        .env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve kept running: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_demo_secrets_on_a_public_address_naming_the_keys() {
    let (code, err) =
        serve_until_exit(&[("KAITONG_SERVER__LISTEN", format!("0.0.0.0:{}", free_port()))]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for key in [
        "admin.token (KAITONG_ADMIN__TOKEN)",
        "wecom.encoding_aes_key (KAITONG_WECOM__ENCODING_AES_KEY)",
        "aibot.encoding_aes_key (KAITONG_AIBOT__ENCODING_AES_KEY)",
        "store.secret_key (KAITONG_STORE__SECRET_KEY)",
        "handlers.accounts (demo-handler)",
    ] {
        assert!(err.contains(key), "{key} not named: {err}");
    }
    assert!(!err.contains("demo-admin-token"), "a value leaked: {err}");

    // A public admin listener is refused alike, and replacing one secret drops it from the list.
    let (code, err) = serve_until_exit(&[
        ("KAITONG_SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        (
            "KAITONG_SERVER__ADMIN_LISTEN",
            format!("0.0.0.0:{}", free_port()),
        ),
        ("KAITONG_ADMIN__TOKEN", "a-real-admin-token-1234".to_owned()),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("server.admin_listen"), "{err}");
    assert!(!err.contains("admin.token"), "{err}");
}
