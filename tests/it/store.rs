//! One conformance suite, run against both store backends (a real Redis and a redb file), bare
//! and with values sealed at rest.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kaitong::store::{Durability, RedisStore, Sealed, Store, StoreError};

use crate::harness::{self, BACKENDS, Backend, fresh_store};

async fn for_each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>, Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in BACKENDS {
        let (store, _dir) = fresh_store(backend);
        test(store, backend).await;
        // The same semantics with values sealed at rest (compare-and-swap compares plaintexts).
        let (store, _dir) = fresh_store(backend);
        let sealer = kaitong::store::Sealer::from_settings(&harness::test_settings().store)
            .unwrap()
            .expect("the default config seals");
        test(Sealed::wrap(store, sealer), backend).await;
    }
}

#[tokio::test]
async fn put_then_get_returns_the_bytes() {
    for_each_backend(|store, backend| async move {
        store.put("k", b"\x00binary\xff", None).await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"\x00binary\xff"[..]),
            "{backend:?}"
        );
        assert_eq!(store.get("missing").await.unwrap(), None, "{backend:?}");
    })
    .await;
}

#[tokio::test]
async fn put_overwrites() {
    for_each_backend(|store, backend| async move {
        store.put("k", b"one", None).await.unwrap();
        store.put("k", b"two", None).await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"two"[..]),
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn values_expire_after_their_ttl() {
    for_each_backend(|store, backend| async move {
        store
            .put("short", b"v", Some(Duration::from_millis(150)))
            .await
            .unwrap();
        store
            .put("long", b"v", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(store.get("short").await.unwrap().is_some(), "{backend:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.get("short").await.unwrap(), None, "{backend:?}");
        assert!(store.get("long").await.unwrap().is_some(), "{backend:?}");
        // An expired key counts as absent for put_if_absent too.
        assert!(
            store.put_if_absent("short", b"again", None).await.unwrap(),
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn put_if_absent_writes_once() {
    for_each_backend(|store, backend| async move {
        assert!(
            store.put_if_absent("k", b"first", None).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            !store.put_if_absent("k", b"second", None).await.unwrap(),
            "{backend:?}"
        );
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"first"[..])
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_put_if_absent_has_exactly_one_winner() {
    for_each_backend(|store, backend| async move {
        let attempts = (0..16).map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put_if_absent("race", format!("{i}").as_bytes(), None)
                    .await
                    .unwrap()
            })
        });
        let wins = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(wins, 1, "{backend:?}");
    })
    .await;
}

#[tokio::test]
async fn compare_and_swap_only_replaces_the_expected_value() {
    for_each_backend(|store, backend| async move {
        assert!(
            store
                .compare_and_swap("k", None, b"v1", None)
                .await
                .unwrap(),
            "{backend:?}"
        );
        assert!(
            !store
                .compare_and_swap("k", None, b"v2", None)
                .await
                .unwrap(),
            "{backend:?}"
        );
        assert!(
            !store
                .compare_and_swap("k", Some(b"stale"), b"v2", None)
                .await
                .unwrap(),
            "{backend:?}"
        );
        assert!(
            store
                .compare_and_swap("k", Some(b"v1"), b"v2", Some(Duration::from_secs(60)))
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    })
    .await;
}

#[tokio::test]
async fn a_versioned_swap_replaces_only_the_record_as_read() {
    for_each_backend(|store, backend| async move {
        assert!(store.get_versioned("k").await.unwrap().is_none());
        for durability in [Durability::Immediate, Durability::WithNextImmediate] {
            store.delete("k").await.unwrap();
            assert!(
                store
                    .compare_and_swap_version("k", None, b"v1", None, durability)
                    .await
                    .unwrap(),
                "{backend:?}"
            );
            let read = store.get_versioned("k").await.unwrap().unwrap();
            assert_eq!(read.value, b"v1", "{backend:?}");
            // Someone else writes: the version read no longer matches. (On a sealed store even
            // the same value would not match, its nonce changes; a bare store compares bytes.)
            store.put("k", b"v1 by another turn", None).await.unwrap();
            assert!(
                !store
                    .compare_and_swap_version("k", Some(&read.version), b"v2", None, durability)
                    .await
                    .unwrap(),
                "{backend:?} {durability:?}"
            );
            let read = store.get_versioned("k").await.unwrap().unwrap();
            assert!(
                store
                    .compare_and_swap_version("k", Some(&read.version), b"v2", None, durability)
                    .await
                    .unwrap(),
                "{backend:?} {durability:?}"
            );
            assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
            assert!(
                !store
                    .compare_and_swap_version("k", None, b"v3", None, durability)
                    .await
                    .unwrap(),
                "{backend:?} {durability:?}"
            );
        }
        assert!(
            store
                .put_if_absent_with("p", b"x", None, Durability::WithNextImmediate)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_if_absent_with("p", b"y", None, Durability::WithNextImmediate)
                .await
                .unwrap()
        );
        assert_eq!(store.get("p").await.unwrap().as_deref(), Some(&b"x"[..]));
    })
    .await;
}

#[tokio::test]
async fn deferred_writes_are_made_durable_by_the_next_durable_one_and_by_closing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaitong.db");
    {
        let store = kaitong::store::EmbeddedStore::open(&path).unwrap();
        assert!(
            store
                .put_if_absent_with("claim", b"P", None, Durability::WithNextImmediate)
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap_version(
                    "session",
                    None,
                    b"s1",
                    None,
                    Durability::WithNextImmediate
                )
                .await
                .unwrap()
        );
        // Visible at once, before anything durable.
        assert_eq!(
            store.get("session").await.unwrap().as_deref(),
            Some(&b"s1"[..])
        );
        store.put("reply", b"R", None).await.unwrap();
        assert!(
            store
                .compare_and_swap_version("late", None, b"l", None, Durability::WithNextImmediate)
                .await
                .unwrap()
        );
    }
    let reopened = kaitong::store::EmbeddedStore::open(&path).unwrap();
    for (key, value) in [
        ("claim", &b"P"[..]),
        ("session", b"s1"),
        ("reply", b"R"),
        ("late", b"l"),
    ] {
        assert_eq!(
            reopened.get(key).await.unwrap().as_deref(),
            Some(value),
            "{key}"
        );
    }
}

#[tokio::test]
async fn concurrent_increments_through_compare_and_swap_lose_no_update() {
    for_each_backend(|store, backend| async move {
        store.put("counter", b"0", None).await.unwrap();
        let workers = (0..8).map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..5 {
                    loop {
                        let current = store.get("counter").await.unwrap().unwrap();
                        let n: u32 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        if store
                            .compare_and_swap("counter", Some(&current), next.as_bytes(), None)
                            .await
                            .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        });
        futures::future::join_all(workers).await;
        assert_eq!(
            store.get("counter").await.unwrap().as_deref(),
            Some(&b"40"[..]),
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn delete_reports_whether_a_live_value_went() {
    for_each_backend(|store, backend| async move {
        store.put("k", b"v", None).await.unwrap();
        assert!(store.delete("k").await.unwrap(), "{backend:?}");
        assert!(!store.delete("k").await.unwrap(), "{backend:?}");
        assert_eq!(store.get("k").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn ping_succeeds_on_a_reachable_store() {
    for_each_backend(|store, backend| async move {
        store
            .ping()
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
    })
    .await;
}

#[tokio::test]
async fn purge_removes_expired_records() {
    for_each_backend(|store, backend| async move {
        store
            .put("gone", b"v", Some(Duration::from_millis(50)))
            .await
            .unwrap();
        store.put("kept", b"v", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        store.purge_expired().await.unwrap();
        assert_eq!(store.get("gone").await.unwrap(), None, "{backend:?}");
        assert!(store.get("kept").await.unwrap().is_some(), "{backend:?}");
    })
    .await;
}

#[tokio::test]
async fn the_embedded_store_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/kaitong.db");
    {
        let store = kaitong::store::EmbeddedStore::open(&path).unwrap();
        store.put("form", b"half-filled", None).await.unwrap();
    }
    let reopened = kaitong::store::EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        reopened.get("form").await.unwrap().as_deref(),
        Some(&b"half-filled"[..])
    );
}

#[tokio::test]
async fn two_redis_prefixes_do_not_see_each_other() {
    let url = harness::redis_url();
    let a = RedisStore::open(&url, &harness::unique_prefix()).unwrap();
    let b = RedisStore::open(&url, &harness::unique_prefix()).unwrap();
    a.put("k", b"a", None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_as_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "x:").unwrap();
    assert!(matches!(
        store.get("k").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(store.ping().await.is_err());
}

#[tokio::test]
async fn an_unknown_store_url_is_refused() {
    assert!(matches!(
        kaitong::store::open("postgres://x", "p").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

#[tokio::test]
async fn list_prefix_returns_live_matches_in_key_order() {
    for_each_backend(|store, backend| async move {
        store
            .put("batch:2026-11-29:KT-2", b"b", None)
            .await
            .unwrap();
        store
            .put("batch:2026-11-29:KT-1", b"a", None)
            .await
            .unwrap();
        store
            .put("batch:2026-11-30:KT-3", b"c", None)
            .await
            .unwrap();
        store
            .put(
                "batch:2026-11-29:KT-9",
                b"x",
                Some(Duration::from_millis(30)),
            )
            .await
            .unwrap();
        store.put("batch*odd:1", b"glob", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let day = store.list_prefix("batch:2026-11-29:", 100).await.unwrap();
        let keys: Vec<&str> = day.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec!["batch:2026-11-29:KT-1", "batch:2026-11-29:KT-2"],
            "{backend:?}"
        );
        assert_eq!(day[0].1, b"a");
        assert_eq!(
            store.list_prefix("batch:", 2).await.unwrap().len(),
            2,
            "{backend:?}"
        );
        assert_eq!(
            store.list_prefix("batch*", 10).await.unwrap().len(),
            1,
            "glob characters are literal: {backend:?}"
        );
        assert!(store.list_prefix("nothing:", 10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn concurrent_increments_hand_out_every_number_once() {
    for_each_backend(|store, backend| async move {
        let takers = (0..40).map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.increment("seq:day").await.unwrap() })
        });
        let mut numbers: Vec<u64> = futures::future::join_all(takers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=40).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(
            store.get("seq:day").await.unwrap().as_deref(),
            Some(&b"40"[..])
        );
    })
    .await;
}
