//! `kaitong-dev chat` against an in-process bot, against a running server by URL, and hosting
//! the simulator that server pushes to.

use std::io::Write;
use std::process::Stdio;

use crate::{free_port, kaitong_dev};

fn chat_with(args: &[&str], envs: &[(&str, String)], input: &str) -> (bool, String, String) {
    let mut child = kaitong_dev()
        .arg("chat")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The production server, built from the library in a thread of its own (the production binary
/// belongs to the root package, whose tests run `kaitong serve` itself); stopped when dropped.
struct Served {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// `serve` on a free loopback port over a fresh embedded store, with these settings on top.
    fn start(envs: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = vec![
            (
                "KAITONG_SERVER__LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("KAITONG_SERVER__ADMIN_LISTEN".to_owned(), String::new()),
            (
                "KAITONG_STORE__URL".to_owned(),
                format!("embedded://{}", dir.path().join("k.db").display()),
            ),
            // The test runs in dev/; the catalog is the workspace's.
            (
                "KAITONG_DIALOGS__DIR".to_owned(),
                crate::root().join("dialogs").display().to_string(),
            ),
            (
                "KAITONG_DIALOGS__TEMPLATES_DIR".to_owned(),
                crate::root()
                    .join("dialogs/templates")
                    .display()
                    .to_string(),
            ),
        ];
        vars.extend(envs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let settings = kaitong::config::Settings::load_with_env(None, vars).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, url) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let app = kaitong::startup::Application::build(&settings)
                    .await
                    .unwrap();
                ready.send(format!("http://{}", app.local_addr())).unwrap();
                app.run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let url = url
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("serve did not start");
        Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn chat_talks_to_an_in_process_bot_on_both_channels() {
    let dir = tempfile::tempdir().unwrap();
    let store = (
        "KAITONG_STORE__URL",
        format!("embedded://{}", dir.path().join("k.db").display()),
    );
    let (ok, out, err) = chat_with(
        &[],
        std::slice::from_ref(&store),
        "帮助\n帮我给 abc_flagship 开一下电子发票\n客户要开票报销用\n确认\n/quit\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("URL 验证通过 (app)"), "{out}");
    assert!(out.contains("开通「#7 电子发票」"), "{out}");
    assert!(out.contains("卖家账号 abc_flagship"), "{out}");
    assert!(out.contains("单号: KT-"), "{out}");

    // Options are sent as a card through the simulated WeCom API and shown in the chat.
    let (ok, out, err) = chat_with(
        &[],
        std::slice::from_ref(&store),
        "实施助手 卖家账号 acct_9\n客户要做初始化配置\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("[1] 是  [2] 否"), "{out}");

    let (ok, out, err) = chat_with(&["--group", "wrkTEAM"], &[store], "物流追踪\n");
    assert!(ok, "{err}");
    assert!(out.contains("URL 验证通过 (aibot)"), "{out}");
    assert!(out.contains("开通「#6 物流追踪」"), "{out}");
}

#[test]
fn chat_reaches_a_running_server_by_url() {
    let server = Served::start(&[]);
    let (ok, out, err) = chat_with(&["--url", &server.url, "--channel", "aibot"], &[], "你好\n");
    assert!(ok, "{err}");
    assert!(out.contains("开通助手: 你好, 我是开通助手"), "{out}");
}

/// Issue 23: against a running `serve`, `chat --url --simulator ADDR` hosts the WeCom API
/// simulator the server is pointed at, so what the bot pushes (here a question's button card,
/// which the callback's own answer does not carry) shows in the chat.
#[test]
fn chat_by_url_shows_what_serve_pushes_to_the_simulator() {
    let sim = format!("127.0.0.1:{}", free_port());
    let server = Served::start(&[("KAITONG_WECOM__API_BASE", format!("http://{sim}/cgi-bin"))]);
    let (ok, out, err) = chat_with(
        &["--url", &server.url, "--simulator", &sim],
        &[],
        "实施助手 卖家账号 acct_9\n客户要做初始化配置\n",
    );
    drop(server);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("http://{sim}/cgi-bin")), "{out}");
    assert!(
        out.contains("[1] 是  [2] 否"),
        "the card pushed by serve: {out}"
    );
}
