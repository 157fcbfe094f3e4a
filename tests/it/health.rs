//! Issue 23, operations: health that does not lie. With the wrong `store.secret_key` the store
//! answers but no record opens; `/readyz` and `kaitong store check` must say so.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use kaitong::store::{EmbeddedStore, RedisStore, SealKey, Sealed, Sealer, Store};

use crate::harness::{self, Backend, TestApp};

const OTHER_KEY: &str = "b3RoZXItc3RvcmUta2V5LW5vdC10aGUtZGVtby0wMDA=";

fn demo_sealer() -> Sealer {
    Sealer::from_settings(&harness::test_settings().store)
        .unwrap()
        .unwrap()
}

fn other_sealer() -> Sealer {
    Sealer::new(SealKey::parse(OTHER_KEY).unwrap(), Vec::new())
}

async fn write_sealed(inner: &Arc<dyn Store>, n: usize) {
    let sealed = Sealed::wrap(Arc::clone(inner), demo_sealer());
    for i in 0..n {
        sealed
            .put(
                &format!("probe:{i:03}"),
                format!("value {i}").as_bytes(),
                None,
            )
            .await
            .unwrap();
    }
}

async fn readyz_with(inner: Arc<dyn Store>, sealer: Sealer) -> u16 {
    let store = Sealed::wrap(inner, sealer);
    let mut app = TestApp::spawn_with(
        harness::test_settings(),
        store,
        None,
        harness::RecordingBot::new(),
    )
    .await;
    let (status, _) = app.get("/readyz").await;
    app.stop().await;
    status
}

#[tokio::test]
async fn readyz_is_unready_when_the_key_opens_no_record_on_both_stores() {
    for backend in [Backend::Embedded, Backend::Redis] {
        let (inner, _dir): (Arc<dyn Store>, _) = match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let store = EmbeddedStore::open(dir.path().join("k.db")).unwrap();
                (Arc::new(store), Some(dir))
            }
            Backend::Redis => (
                Arc::new(
                    RedisStore::open(&harness::redis_url(), &harness::unique_prefix()).unwrap(),
                ),
                None,
            ),
        };
        // An empty store fits any key.
        assert_eq!(readyz_with(Arc::clone(&inner), other_sealer()).await, 200);
        write_sealed(&inner, 5).await;
        assert_eq!(readyz_with(Arc::clone(&inner), demo_sealer()).await, 200);
        assert_eq!(
            readyz_with(Arc::clone(&inner), other_sealer()).await,
            503,
            "wrong key on {backend:?}"
        );
        // The old key kept among the previous ones: still ready (a rotation).
        let rotated = Sealer::new(
            SealKey::parse(OTHER_KEY).unwrap(),
            vec![SealKey::parse(harness::test_settings().store.secret_key.expose()).unwrap()],
        );
        assert_eq!(readyz_with(Arc::clone(&inner), rotated).await, 200);
    }
}

#[test]
fn store_check_opens_records_and_fails_with_the_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
        write_sealed(&inner, 5).await;
    });
    let check = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_kaitong"))
            .args(["store", "check"])
            .env_remove("RUST_LOG")
            .env(
                "KAITONG_STORE__URL",
                format!("embedded://{}", path.display()),
            )
            .env("KAITONG_STORE__SECRET_KEY", key)
            .output()
            .unwrap()
    };
    let right = check(harness::test_settings().store.secret_key.expose());
    let out = String::from_utf8_lossy(&right.stdout);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(out.contains("opens 5/5"), "{out}");
    let wrong = check(OTHER_KEY);
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{err}");
    assert!(err.contains("store.secret_key"), "{err}");
    assert!(!err.contains(OTHER_KEY), "{err}");
}
