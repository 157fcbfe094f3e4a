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
    /// Free-text requests to send instead of the script, in turn, each from a person of its
    /// own (so every message is a new request, the kind understanding by meaning reads).
    pub messages: Option<Vec<String>>,
    /// The server's `/metrics` (admin listener), read before and after the run for the
    /// embedding counters.
    pub metrics_url: Option<String>,
}

/// What the embedding server did during the run: deltas of the server's counters.
#[derive(Debug, Default, Serialize)]
pub struct EmbeddingCounts {
    /// Messages that fell back to the in-process table (`kaitong_embedding_fallbacks_total`).
    pub fallbacks: u64,
    /// Calls to the embedding server for messages (absent before batching: 0).
    pub calls: u64,
    /// Message texts sent to the server in those calls.
    pub texts_sent: u64,
    /// Message texts answered from the query cache.
    pub cache_hits: u64,
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
    pub embedding: Option<EmbeddingCounts>,
}

/// The texts of a file of messages: one a line, or JSON lines with a `text` field (the
/// evaluation sets); blank lines skipped.
#[must_use]
pub fn read_messages(file: &str) -> Vec<String> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("text")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| l.to_owned())
        })
        .collect()
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
    if let Some(url) = &plan.metrics_url {
        check_loopback(url)?;
    }
    let callbacks = Arc::new(build_callbacks(settings, &plan)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let before = match &plan.metrics_url {
        Some(url) => Some(embedding_counts(&client, url).await),
        None => None,
    };
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
    let embedding = match (&plan.metrics_url, before) {
        (Some(url), Some(before)) => {
            let after = embedding_counts(&client, url).await;
            Some(EmbeddingCounts {
                fallbacks: after.fallbacks.saturating_sub(before.fallbacks),
                calls: after.calls.saturating_sub(before.calls),
                texts_sent: after.texts_sent.saturating_sub(before.texts_sent),
                cache_hits: after.cache_hits.saturating_sub(before.cache_hits),
            })
        }
        _ => None,
    };
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
        embedding,
    })
}

/// The embedding counters of a server's `/metrics` now (zeros when it cannot be read: the
/// report then shows no change rather than failing the run).
async fn embedding_counts(client: &reqwest::Client, url: &str) -> EmbeddingCounts {
    let text = match client.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    EmbeddingCounts {
        fallbacks: metric_sum(&text, "kaitong_embedding_fallbacks_total", None),
        calls: metric_sum(&text, "kaitong_embedding_query_calls_total", None),
        texts_sent: metric_sum(
            &text,
            "kaitong_embedding_query_texts_total",
            Some("source=\"server\""),
        ),
        cache_hits: metric_sum(
            &text,
            "kaitong_embedding_query_texts_total",
            Some("source=\"cache\""),
        ),
    }
}

/// The sum of a Prometheus text exposition's samples of `name` (with `label` when given).
fn metric_sum(text: &str, name: &str, label: Option<&str>) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter(|l| label.is_none_or(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let v = v as u64;
            v
        })
        .sum()
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
        let (person, text) = match plan.messages.as_deref() {
            // A person of its own per message, new each run: every message is a new request
            // (a person left mid-form by an earlier run would read it as an answer).
            Some(messages) if !messages.is_empty() => (
                format!("msg{run_base:x}_{i}"),
                messages[i % messages.len()].clone(),
            ),
            _ => {
                let user = i % users;
                let turn = (i / users) % SCRIPT.len();
                (
                    format!("load{user}"),
                    SCRIPT[turn].replace("{u}", &user.to_string()),
                )
            }
        };
        let inner = peer::app_text_xml(&corp, &person, &agent, run_base + (i as u64) + 1, &text);
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
