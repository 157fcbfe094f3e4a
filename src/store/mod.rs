//! Durable key-value state behind one trait, with two backends chosen by `store.url`:
//! `embedded://PATH` (a single redb file, the default), `redis://…` (shared by many instances)
//! and `redis+sentinel://…` (the same, on a Sentinel-managed master with a replica, which
//! survives the loss of the master's machine; see `sentinel.rs`).
//!
//! Owns persistence and expiry only. Callers decide what the keys and bytes mean; this module
//! must not know about WeCom, dialogs or requests.

mod backend;
mod embedded;
mod error;
pub mod keys;
mod redis_store;
mod sealed;
mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use backend::{Durability, Store, Versioned};
pub use embedded::{EmbeddedStore, check_file, restore_file};
pub use error::{Cause, StoreError};
pub use redis_store::RedisStore;
pub use sealed::{KeySample, SealKey, SealKeyError, SealKeySettingError, Sealed, Sealer};

/// Opens the backend named by a `store.url`.
pub async fn open(url: &str, redis_prefix: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("embedded://") {
        Ok(Metered::wrap(Arc::new(EmbeddedStore::open(path)?)))
    } else if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with(sentinel::SCHEME)
    {
        Ok(Metered::wrap(Arc::new(RedisStore::open(
            url,
            redis_prefix,
        )?)))
    } else {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        Err(StoreError::UnsupportedUrl(
            scheme.chars().take(40).collect(),
        ))
    }
}

/// Times every operation of the wrapped store for the `store_seconds` metric.
pub struct Metered {
    inner: Arc<dyn Store>,
}

impl Metered {
    #[must_use]
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self { inner })
    }
}

async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    crate::metrics::store(op, started.elapsed());
    out
}

#[async_trait]
impl Store for Metered {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        timed("get", self.inner.get(key)).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        timed("put", self.inner.put(key, value, ttl)).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        timed("put_if_absent", self.inner.put_if_absent(key, value, ttl)).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        timed(
            "compare_and_swap",
            self.inner.compare_and_swap(key, expected, value, ttl),
        )
        .await
    }

    async fn increment(&self, key: &str) -> Result<u64, StoreError> {
        timed("increment", self.inner.increment(key)).await
    }

    async fn put_if_absent_with(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        timed(
            "put_if_absent",
            self.inner.put_if_absent_with(key, value, ttl, durability),
        )
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        timed("get", self.inner.get_versioned(key)).await
    }

    async fn compare_and_swap_version(
        &self,
        key: &str,
        version: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        timed(
            "compare_and_swap",
            self.inner
                .compare_and_swap_version(key, version, value, ttl, durability),
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        timed("delete", self.inner.delete(key)).await
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        timed("list_prefix", self.inner.list_prefix(prefix, limit)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.inner.ping()).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn single_process(&self) -> bool {
        self.inner.single_process()
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        timed("purge", self.inner.purge_expired()).await
    }

    async fn backup_to(&self, dest: &std::path::Path) -> Result<usize, StoreError> {
        self.inner.backup_to(dest).await
    }
}
