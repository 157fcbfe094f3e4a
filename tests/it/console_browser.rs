//! The console in a real headless Chromium on a phone-sized screen: log in, see the batch,
//! open a request, press 完成, and find it done in the ledger and on the page.
//!
//! Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in NUL on fds 3 and 4), so no driver crate or download is needed. A machine
//! without Chromium fails this test loudly: it never skips (CI installs `chromium`).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::config::HandlerAccountSettings;
use kaitong::console::{ConsoleState, router};
use kaitong::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
use kaitong::notify::Outbox;
use kaitong::requests::{
    BatchSchedule, Desk, FiledForm, HandlerDirectory, Ledger, Requester, Status, StoreLedger,
    token_hash,
};
use serde_json::{Value, json};

use crate::harness::{Backend, fresh_store};

const TOKEN: &str = "browser-handler-token";
/// An iPhone-sized viewport: the console must work on a phone.
const WIDTH: u32 = 390;
const HEIGHT: u32 = 844;
const WAIT: Duration = Duration::from_secs(20);

fn chromium_path() -> PathBuf {
    std::env::var_os("KAITONG_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// A headless Chromium with one page attached, spoken to over the DevTools pipe.
struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Self {
        let binary = chromium_path();
        assert!(
            binary.exists(),
            "Chromium not found at {}: the browser test needs it (apt-get install chromium, \
             as .ci/run does; or set KAITONG_CHROMIUM). This test never skips.",
            binary.display()
        );
        let profile = tempfile::tempdir().unwrap();
        // The pipe transport reads fd 3 and writes fd 4: the shell points them at our pipes.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 </dev/null >/dev/null")
            .arg(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        let commands = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match output.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(value) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(value).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            commands,
            messages,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .unwrap();
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .unwrap();
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 2, "mobile": true }),
            )
            .unwrap();
        browser
    }

    /// Sends one command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .and_then(|()| self.commands.flush())
            .map_err(|e| format!("Chromium pipe closed: {e}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(reply) if reply["id"] == json!(id) => {
                    return match reply.get("error") {
                        Some(error) => Err(format!("{method}: {error}")),
                        None => Ok(reply["result"].clone()),
                    };
                }
                Ok(_) => {} // an event or another answer: not ours
                Err(RecvTimeoutError::Timeout) => return Err(format!("{method}: no answer")),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{method}: Chromium exited"));
                }
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {exception}"));
        }
        Ok(result["result"]["value"].clone())
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).unwrap();
    }

    /// Polls until the expression is true in a loaded page (navigations destroy the context
    /// mid-way, so errors just mean "not yet").
    fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + WAIT;
        let check = format!("document.readyState === 'complete' && !!({expression})");
        loop {
            if self.eval(&check).ok() == Some(json!(true)) {
                return;
            }
            if Instant::now() > deadline {
                let page = self
                    .eval("location.href + '\\n' + document.body.innerText")
                    .unwrap_or_default();
                panic!("timed out waiting for {what}; page: {page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element's centre with real mouse events, as a finger or mouse would.
    fn click(&mut self, selector: &str) {
        let selector_js = serde_json::to_string(selector).unwrap();
        let centre = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector_js}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
            ))
            .unwrap();
        let (Some(x), Some(y)) = (centre[0].as_f64(), centre[1].as_f64()) else {
            panic!("nothing to click at {selector}");
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .unwrap();
        }
    }

    fn type_into(&mut self, selector: &str, text: &str) {
        let selector_js = serde_json::to_string(selector).unwrap();
        self.eval(&format!("document.querySelector({selector_js}).focus()"))
            .unwrap();
        self.call("Input.insertText", json!({ "text": text }))
            .unwrap();
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The page's size as a phone (mobile, touch-sized) or a desktop window would have it.
    fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile }),
        )
        .unwrap();
    }

    /// The whole page, not only what fits the window.
    fn screenshot_full(&mut self, path: &Path) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    fn log_in(&mut self, base: &str) {
        self.navigate(&format!("{base}/console/login"));
        self.wait_for("the login form", "document.getElementById('token')");
        self.type_into("#token", TOKEN);
        self.click("form[action='/console/login'] button");
        self.wait_for("the console", "location.pathname === '/console'");
    }

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.clear();
        let _ = self.call("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn filed_form() -> FiledForm {
    FiledForm {
        form_id: "browser-1".into(),
        service: ServiceId(7),
        service_name: "电子发票".into(),
        team: Team::Rnd,
        routing: FilingRoute::ResourcePlatform,
        window: Window::DailyBatch,
        answers: Answers::new(),
        summary: vec![
            ("卖家账号".into(), "shop-001".into()),
            ("说明".into(), "<b>请尽快</b>开通".into()),
        ],
        resubmit_of: None,
        requester: Requester {
            user: UserId::parse("zhangsan").unwrap(),
            channel: ChannelKind::App,
            conversation: Conversation::Direct,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_logs_in_sees_the_batch_and_completes_a_request_in_chromium() {
    let (store, _dir) = fresh_store(Backend::Embedded);
    let schedule = BatchSchedule::default();
    let ledger: Arc<dyn Ledger> = Arc::new(StoreLedger::new(Arc::clone(&store), schedule));
    let state = ConsoleState {
        desk: Desk::new(Arc::clone(&ledger)),
        directory: HandlerDirectory::new(&[HandlerAccountSettings {
            name: "boss".into(),
            team: "all".into(),
            token_sha256: token_hash(TOKEN),
            wecom_userid: String::new(),
        }]),
        store: Arc::clone(&store),
        outbox: Outbox::new(Arc::clone(&store)),
        schedule,
        login_throttle: Arc::new(kaitong::console::LoginThrottle::new(
            1000,
            std::time::Duration::from_millis(1),
        )),
    };
    let id = ledger.file(filed_form(), Utc::now()).await.unwrap().id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{addr}");
    let request_id = id.to_string();
    let (text, shots) = tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        browser.navigate(&format!("{base}/console/login"));
        browser.wait_for("the login form", "document.getElementById('token')");
        browser.type_into("#token", TOKEN);
        browser.screenshot(&shots.join("1-login.png"));
        browser.click("form[action='/console/login'] button");
        browser.wait_for(
            "the batch page",
            &format!("location.pathname === '/console' && document.body.innerText.includes('{request_id}')"),
        );
        browser.screenshot(&shots.join("2-batch.png"));
        browser.click(&format!("a[href='/console/requests/{request_id}']"));
        browser.wait_for(
            "the request page",
            &format!("location.pathname === '/console/requests/{request_id}'"),
        );
        assert!(browser.text().contains("<b>请尽快</b>开通"), "user text shown as text");
        browser.screenshot(&shots.join("3-detail.png"));
        browser.click("form[action$='/complete'] button");
        // 完成 asks first; the second press does it.
        browser.wait_for(
            "the confirmation",
            "document.querySelector(\"input[name='confirmed']\") && document.body.innerText.includes('确认完成')",
        );
        browser.screenshot(&shots.join("4-confirm.png"));
        browser.click("form[action$='/complete'] button");
        browser.wait_for(
            "the request marked done",
            "location.search.includes('ok=complete')",
        );
        browser.screenshot(&shots.join("5-done.png"));
        (browser.text(), shots)
    })
    .await
    .unwrap();

    assert!(text.contains("已完成"), "the page shows 已完成: {text}");
    assert!(text.contains("已标记为已完成"), "{text}");
    let request = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(request.status(), Status::Done);
    assert_eq!(request.history.last().unwrap().by, "boss");
    eprintln!("screenshots in {}", shots.display());
}

/// Serves the console over `ledger`'s store with one all-teams handler; returns the base URL.
async fn serve_console(
    store: Arc<dyn kaitong::store::Store>,
    ledger: Arc<dyn Ledger>,
    schedule: BatchSchedule,
) -> String {
    let state = ConsoleState {
        desk: Desk::new(ledger),
        directory: HandlerDirectory::new(&[HandlerAccountSettings {
            name: "组长".into(),
            team: "all".into(),
            token_sha256: token_hash(TOKEN),
            wecom_userid: String::new(),
        }]),
        store: Arc::clone(&store),
        outbox: Outbox::new(store),
        schedule,
        login_throttle: Arc::new(kaitong::console::LoginThrottle::new(
            1000,
            std::time::Duration::from_millis(1),
        )),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// Issue 22: the team lead's dashboard with real data, in Chromium at a phone's and a
/// desktop's width: charts drawn (SVG, no script), nothing wider than the screen, every
/// number written; screenshots of both in the test output directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_its_charts_at_phone_and_desktop_widths_in_chromium() {
    let (store, _dir) = fresh_store(Backend::Embedded);
    let schedule = BatchSchedule::default();
    let ledger: Arc<dyn Ledger> = Arc::new(StoreLedger::new(Arc::clone(&store), schedule));
    let now = Utc::now();
    // Two weeks of requests for three teams and four services; some handled in time, some
    // late, some still open (overdue).
    let services = [
        (7, "电子发票"),
        (12, "物流追踪"),
        (33, "多仓库存同步"),
        (58, "赠品策略上限调整"),
    ];
    let teams = [Team::Rnd, Team::Ops, Team::Functional];
    let mut ids: Vec<RequestId> = Vec::new();
    for day in 0..14u32 {
        for k in 0..(day % 4 + 1) {
            let n = day * 10 + k;
            let filed = now
                - chrono::Duration::days(i64::from(day))
                - chrono::Duration::minutes(i64::from(k));
            let (service, name) = services[(n as usize) % services.len()];
            let mut form = filed_form();
            form.form_id = format!("dash-{n}");
            form.service = ServiceId(service);
            form.service_name = name.into();
            form.team = teams[(n as usize) % teams.len()];
            let id = ledger.file(form, filed).await.unwrap().id;
            match n % 3 {
                0 => {
                    ledger
                        .transition(
                            &id,
                            Status::Done,
                            "组长",
                            None,
                            filed + chrono::Duration::minutes(30),
                        )
                        .await
                        .unwrap();
                }
                1 if day > 1 => {
                    ledger
                        .transition(
                            &id,
                            Status::Rejected,
                            "组长",
                            Some("信息不全".into()),
                            filed + chrono::Duration::days(1),
                        )
                        .await
                        .unwrap();
                }
                _ => {}
            }
            ids.push(id);
        }
    }
    let base = serve_console(Arc::clone(&store), ledger, schedule).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let out = shots.clone();
    let (phone, desktop) = tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        browser.log_in(&base);
        let look = |browser: &mut Browser, width: u32, height: u32, mobile: bool, name: &str| {
            browser.set_viewport(width, height, mobile);
            browser.navigate(&format!("{base}/console/dashboard"));
            browser.wait_for(
                "the dashboard's charts",
                "location.pathname === '/console/dashboard' && document.querySelectorAll('svg.chart').length === 3",
            );
            let layout = browser
                .eval(
                    "JSON.stringify({ page: document.documentElement.scrollWidth, window: innerWidth, \
                     charts: [...document.querySelectorAll('svg.chart')].map(s => { const r = s.getBoundingClientRect(); \
                     return [r.left, r.right, r.height]; }), scripts: document.scripts.length })",
                )
                .unwrap();
            browser.screenshot_full(&out.join(name));
            (serde_json::from_str::<Value>(layout.as_str().unwrap()).unwrap(), browser.text())
        };
        let phone = look(&mut browser, WIDTH, HEIGHT, true, "dashboard-phone.png");
        let desktop = look(&mut browser, 1280, 900, false, "dashboard-desktop.png");
        (phone, desktop)
    })
    .await
    .unwrap();

    for ((layout, text), width) in [(&phone, WIDTH), (&desktop, 1280)] {
        assert_eq!(layout["scripts"], 0, "no script");
        assert!(
            layout["page"].as_f64().unwrap() <= f64::from(width),
            "nothing wider than the screen at {width}: {layout}"
        );
        for chart in layout["charts"].as_array().unwrap() {
            let (left, right, height) = (
                chart[0].as_f64().unwrap(),
                chart[1].as_f64().unwrap(),
                chart[2].as_f64().unwrap(),
            );
            assert!(
                left >= 0.0 && right <= f64::from(width) && height > 40.0,
                "{width}: {layout}"
            );
        }
        for words in [
            "看板",
            "现在待处理",
            "每天申请数",
            "按时处理率",
            "申请最多的服务",
            "#7 电子发票",
            "产研",
            "运维",
            "职能组",
        ] {
            assert!(text.contains(words), "{width}: {words} in {text}");
        }
        assert!(text.contains('%'), "{text}");
    }
    // The charts fill a phone's width and grow on a desktop, up to a readable size.
    let chart_width = |layout: &Value| {
        let c = &layout["charts"][0];
        c[1].as_f64().unwrap() - c[0].as_f64().unwrap()
    };
    assert!(
        chart_width(&phone.0) > f64::from(WIDTH) * 0.8,
        "{}",
        phone.0
    );
    assert!(chart_width(&desktop.0) > chart_width(&phone.0) * 1.5);
    assert!(chart_width(&desktop.0) <= 720.0);
    assert!(ids.len() > 20);
    eprintln!("dashboard screenshots in {}", shots.display());
}
