//! Issue 13 item 8: a sensitive answer (service 3's 接口密钥) never reaches the store in plain
//! text. The application is built the way `kaitong serve` builds it (store from `store.url`,
//! sealed with `store.secret_key`), a real conversation files the request, and then the raw
//! bytes — the redb file, the Redis values — are searched for the secret.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kaitong::config::Settings;
use kaitong::startup::Application;
use kaitong::store::{EmbeddedStore, RedisStore, Sealed, Store};

use crate::harness::{self, TestApp};

const API_SECRET: &str = "sk_live_9f8e7d6c5b4a39281706";

/// Files a service-3 request carrying `API_SECRET` through the real server on `settings`.
async fn file_a_request_with_a_secret(mut settings: Settings) {
    let sim = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = sim.base_url();
    // Options as numbered text, so every answer comes back in the callback's reply.
    settings.wecom.cards = false;
    let app = Application::build(&settings).await.unwrap();
    let store = app.store();
    assert!(store.describe().contains("sealed"), "{}", store.describe());
    let mut app = TestApp::serve(app, settings, store, None);
    app.say("dora", "标准接口开通 卖家账号 acct_dora").await;
    let mut reply = String::new();
    for answer in [
        "正式环境",
        "已经提交了",
        "api_dora",
        API_SECRET,
        "客户要对接自研系统",
    ] {
        reply = app.say("dora", answer).await;
    }
    assert!(
        reply.contains("****") && !reply.contains(API_SECRET),
        "{reply}"
    );
    let filed = app.say("dora", "确认").await;
    assert!(filed.contains("单号"), "{filed}");
    app.stop().await;
}

/// Whether `haystack` contains `needle` anywhere.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_embedded_store_file_never_holds_a_sensitive_answer_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaitong.db");
    let mut settings = harness::test_settings();
    settings.store.url = format!("embedded://{}", path.display());
    let sealer = kaitong::store::Sealer::from_settings(&settings.store)
        .unwrap()
        .expect("the default config seals");
    file_a_request_with_a_secret(settings).await;

    let bytes = std::fs::read(&path).unwrap();
    assert!(contains(&bytes, "KTS1"), "records are sealed");
    assert!(!contains(&bytes, API_SECRET), "the secret is in the file");

    // With the key the request is intact: the handling side still gets the real value.
    let raw: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
    let records = raw.list_prefix("", 100_000).await.unwrap();
    assert!(!records.is_empty());
    assert!(records.iter().all(|(_, v)| !contains(v, API_SECRET)));
    let opened = Sealed::wrap(raw, sealer)
        .list_prefix("", 100_000)
        .await
        .unwrap();
    assert!(
        opened.iter().any(|(_, v)| contains(v, API_SECRET)),
        "the filed request keeps the secret for the handling side"
    );
}

#[tokio::test]
async fn redis_never_holds_a_sensitive_answer_in_plain_text() {
    let mut settings = harness::test_settings();
    settings.store.url = harness::redis_url();
    settings.store.redis_prefix = harness::unique_prefix();
    let prefix = settings.store.redis_prefix.clone();
    let sealer = kaitong::store::Sealer::from_settings(&settings.store)
        .unwrap()
        .expect("the default config seals");
    file_a_request_with_a_secret(settings).await;

    let client = redis::Client::open(harness::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!contains(&value, API_SECRET), "{key} holds the secret");
    }
    let opened = Sealed::wrap(
        Arc::new(RedisStore::open(&harness::redis_url(), &prefix).unwrap()),
        sealer,
    )
    .list_prefix("", 100_000)
    .await
    .unwrap();
    assert!(opened.iter().any(|(_, v)| contains(v, API_SECRET)));
}
