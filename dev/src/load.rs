//! `kaitong-dev load`: drives a running bot with many people's really encrypted callbacks and
//! reports throughput and latency; `kaitong-dev echo-baseline` is the minimal server (decrypt and
//! encrypt only) the same load is compared against. Loopback only: never point it elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::routing::post;
use serde::Serialize;

use crate::peer::{self, WecomPeer};
use kaitong::config::Settings;
use kaitong::wecom::app_xml::{self, Envelope, InnerMessage};
use kaitong::wecom::{CallbackQuery, MsgCrypt};

/// What a conversation turn of the load says, in order, per simulated person.
const SCRIPT: [&str; 3] = [
    "帮我给 acct_{u} 开一下电子发票",
    "客户需要开电子发票",
    "取消",
];

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub url: String,
    pub requests: usize,
    pub users: usize,
    pub concurrency: usize,
    /// Open-loop rate in requests per second; `None` = as fast as the concurrency allows.
    pub rate: Option<u32>,
    /// Server process to read the peak RSS of (Linux /proc).
    pub pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub requests: usize,
    pub ok: usize,
    pub failed: usize,
    pub seconds: f64,
    pub throughput_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_peak_rss_mib: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    AesKey(#[from] kaitong::wecom::AesKeySettingError),
    #[error(transparent)]
    Crypto(#[from] kaitong::wecom::CryptoError),
    #[error("load targets must be on this machine (loopback), not {0}")]
    NotLoopback(String),
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the plan: builds every callback first (so encryption is not timed), then sends them.
pub async fn run(settings: &Settings, plan: LoadPlan) -> Result<LoadReport, LoadError> {
    check_loopback(&plan.url)?;
    let callbacks = Arc::new(build_callbacks(settings, &plan)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|_| {
            let (client, callbacks, next) =
                (client.clone(), Arc::clone(&callbacks), Arc::clone(&next));
            tokio::spawn(send_callbacks(client, callbacks, next, started, plan.rate))
        })
        .collect();
    let mut latencies = Vec::with_capacity(plan.requests);
    let mut ok = 0;
    for worker in workers {
        for (took, success) in worker.await.unwrap_or_default() {
            latencies.push(took);
            ok += usize::from(success);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    #[allow(clippy::cast_precision_loss)]
    Ok(LoadReport {
        requests: latencies.len(),
        ok,
        failed: latencies.len() - ok,
        seconds,
        throughput_per_sec: latencies.len() as f64 / seconds,
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: percentile(&latencies, 1.0),
        server_peak_rss_mib: plan.pid.and_then(peak_rss_mib),
    })
}

/// Load is only ever sent to this machine.
fn check_loopback(url: &str) -> Result<(), LoadError> {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        return Err(LoadError::NotLoopback(host));
    }
    Ok(())
}

/// Every callback of the plan, encrypted and signed: (URL, body). The users take turns, each
/// going through the script.
fn build_callbacks(
    settings: &Settings,
    plan: &LoadPlan,
) -> Result<Vec<(String, String)>, LoadError> {
    let peer = WecomPeer::new(MsgCrypt::for_app(&settings.wecom)?);
    let corp = settings.wecom.corp_id.clone();
    let agent = settings.wecom.agent_id.to_string();
    let users = plan.users.max(1);
    // Fresh message ids each run, so no callback is answered from a previous run's replies.
    let run_base = u64::from(rand::random::<u32>()) << 24;
    let mut callbacks = Vec::with_capacity(plan.requests);
    for i in 0..plan.requests {
        let user = i % users;
        let turn = (i / users) % SCRIPT.len();
        let text = SCRIPT[turn].replace("{u}", &user.to_string());
        let inner = peer::app_text_xml(
            &corp,
            &format!("load{user}"),
            &agent,
            run_base + (i as u64) + 1,
            &text,
        );
        let cb = peer.app_callback(&inner, &agent)?;
        callbacks.push((
            format!("{}/wecom/app?{}", plan.url.trim_end_matches('/'), cb.query),
            cb.body,
        ));
    }
    Ok(callbacks)
}

/// One worker: sends the next unsent callback until none is left, at `rate` overall when
/// set; how long each took and whether it was answered.
async fn send_callbacks(
    client: reqwest::Client,
    callbacks: Arc<Vec<(String, String)>>,
    next: Arc<AtomicUsize>,
    started: Instant,
    rate: Option<u32>,
) -> Vec<(Duration, bool)> {
    let mut results = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((url, body)) = callbacks.get(i) else {
            break;
        };
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate.max(1)));
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = Instant::now();
        let ok = match client.post(url).body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| !b.is_empty()),
            _ => false,
        };
        results.push((sent.elapsed(), ok));
    }
    results
}

/// The baseline: verify, decrypt, parse, and answer an encrypted echo. No store, no bot.
pub fn echo_baseline(crypt: MsgCrypt) -> axum::Router {
    async fn handle(
        State(crypt): State<Arc<MsgCrypt>>,
        RawQuery(query): RawQuery,
        body: String,
    ) -> String {
        let q = CallbackQuery::parse(query.as_deref().unwrap_or(""));
        let (Some(sig), Some(ts), Some(nonce)) = (q.msg_signature, q.timestamp, q.nonce) else {
            return String::new();
        };
        let Ok(encrypted) = Envelope::parse(&body) else {
            return String::new();
        };
        let Ok(plain) = crypt.verify_and_decrypt(&sig, &ts, &nonce, &encrypted) else {
            return String::new();
        };
        let Ok(msg) = InnerMessage::parse(&String::from_utf8_lossy(&plain)) else {
            return String::new();
        };
        let reply = app_xml::text_reply(
            &msg.from_user_name,
            &msg.to_user_name,
            0,
            msg.content.as_deref().unwrap_or(""),
        );
        let Ok(out) = crypt.encrypt(reply.as_bytes()) else {
            return String::new();
        };
        let signature = crypt.signature(&ts, &nonce, &out);
        app_xml::reply_envelope(&out, &signature, &ts, &nonce)
    }
    axum::Router::new()
        .route("/wecom/app", post(handle))
        .with_state(Arc::new(crypt))
}
