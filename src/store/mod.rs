//! Durable key-value state behind one trait, with two backends chosen by `store.url`:
//! `embedded://PATH` (a single redb file, the default), `redis://…` (shared by many instances)
//! and `redis+sentinel://…` (the same, on a Sentinel-managed master with a replica, which
//! survives the loss of the master's machine; see `sentinel.rs`).
//!
//! Owns persistence and expiry only. Callers decide what the keys and bytes mean; this module
//! must not know about WeCom, dialogs or requests.

mod embedded;
pub mod keys;
mod redis_store;
mod sealed;
mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use embedded::{EmbeddedStore, check_file, restore_file};
pub use redis_store::RedisStore;
pub use sealed::{KeySample, SealKey, SealKeyError, SealKeySettingError, Sealed, Sealer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached right now (Redis down, timeout); the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The backend answered but failed (corrupt file, protocol error).
    #[error("store failure: {0}")]
    Backend(#[source] Cause),
    /// A store URL of an unknown scheme; holds the scheme only (the rest may hold a password).
    #[error(
        "unsupported store url scheme {0:?}: expected embedded://PATH, redis://HOST:PORT or \
         redis+sentinel://SENTINEL:PORT,…/MASTER"
    )]
    UnsupportedUrl(String),
    /// A store URL of a known kind that cannot be used; says why, never the URL (it may hold
    /// a password).
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// The embedded store's file cannot be used as it is; start-up is refused rather than
    /// starting empty or crashing inside the storage engine.
    #[error(
        "embedded store {path} is damaged ({reason}); restore a backup with `kaitong store restore BACKUP`, \
         or move the file aside to start with an empty store"
    )]
    Damaged { path: String, reason: String },
    /// Another process (usually a running `kaitong serve`) holds the embedded store's file.
    #[error("embedded store {0} is in use by another process (is `kaitong serve` running?)")]
    InUse(String),
    #[error("{0} is not supported by this store")]
    Unsupported(&'static str),
    /// The store answers, but the configured keys open none of its sealed records.
    #[error(
        "store.secret_key 打不开存储里的记录: 抽查的 {sealed} 条加密记录一条也打不开(密钥配错了?换过密钥时旧密钥要放进 store.previous_secret_keys)"
    )]
    WrongKey { sealed: usize },
}

/// What a store failure says, with the backend's own error when there is one (a Redis, redb or
/// file error kept whole), so a log line walks down to it; a failure of our own making (a
/// truncated sealed record, a stopped writer) is a message alone.
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// The backend's error, said as it says itself.
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// The backend's error, after what was being done (`path: error`).
    pub fn within(
        context: impl std::fmt::Display,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: format!("{context}: {error}"),
            source: Some(Box::new(error)),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self {
            message,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// How durable a write must be when the call that made it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Durable (fsync'd; on `redis+sentinel://`, on a replica) before the call returns. Every
    /// write of the plain trait methods is this.
    Immediate,
    /// Visible to every later operation at once, and durable no later than the next
    /// `Immediate` write to the same store made after it returns. For writes whose outcome
    /// nobody is told about before such a write: a callback's turn writes its claim and the
    /// session this way, and the reply record written after them (`channel::ReplyCache`) is
    /// `Immediate`; the answer is sent only after that, so one fsync covers all three. The
    /// embedded store commits these without an fsync (its commits are ordered: a durable one
    /// persists every commit before it); backends without a per-write fsync treat it as
    /// `Immediate`.
    WithNextImmediate,
}

/// A value read together with what a later [`Store::compare_and_swap_version`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// The record's bytes as the backend holds them: the value itself on a bare store, the
    /// sealed bytes under [`Sealed`] (so the swap needs no second read to find them).
    pub version: Vec<u8>,
}

/// Key-value operations every backend provides with the same semantics (see `tests/it/store.rs`).
///
/// `ttl = None` keeps a value until deleted. Expired values are invisible to every operation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError>;

    /// Writes only when no live value exists; returns whether it wrote.
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// Replaces the value only if it still equals `expected` (`None` = absent); returns whether it
    /// wrote. This is what keeps two instances from losing each other's update.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;

    /// As [`Store::put_if_absent`], as durable as `durability` asks.
    async fn put_if_absent_with(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        _durability: Durability,
    ) -> Result<bool, StoreError> {
        self.put_if_absent(key, value, ttl).await
    }

    /// As [`Store::get`], with the record's version for [`Store::compare_and_swap_version`].
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.get(key).await?.map(|value| Versioned {
            version: value.clone(),
            value,
        }))
    }

    /// Replaces the value only if the record is still the one read as `version` (`None` =
    /// absent); returns whether it wrote. One round trip, where `compare_and_swap` on a sealed
    /// store must first read the sealed bytes: a read-modify-write (the dialog's session)
    /// reads with [`Store::get_versioned`] and swaps with this.
    async fn compare_and_swap_version(
        &self,
        key: &str,
        version: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
        _durability: Durability,
    ) -> Result<bool, StoreError> {
        self.compare_and_swap(key, version, value, ttl).await
    }

    /// Atomically adds one to a decimal counter (absent = 0) and returns the new value; used
    /// for request numbers, so concurrent callers never share one.
    async fn increment(&self, key: &str) -> Result<u64, StoreError>;

    /// Returns whether a live value was removed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Live records whose key starts with `prefix`, in key order, at most `limit`.
    /// Used for small indexes (a day's batch, a person's requests, the outbox).
    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Human-readable backend name for logs.
    fn describe(&self) -> String;

    /// Whether only this process can reach the store (the embedded file is locked by the
    /// process that opened it). Short-lived coordination that need not outlive the process,
    /// such as a callback's "being answered" claim, can then stay in memory instead of costing
    /// a write.
    fn single_process(&self) -> bool {
        false
    }

    /// Drops expired records where the backend does not do so itself.
    async fn purge_expired(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Writes a consistent copy of every live record to a new store file at `dest` while the
    /// store stays in use; returns how many records it copied. Only the embedded store can
    /// (Redis has its own persistence and backups).
    async fn backup_to(&self, _dest: &std::path::Path) -> Result<usize, StoreError> {
        Err(StoreError::Unsupported("backup"))
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_backend_failure_keeps_the_backend_error_as_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let error = StoreError::Backend(Cause::within("/var/lib/kaitong/store.db", io));
        assert_eq!(
            error.to_string(),
            "store failure: /var/lib/kaitong/store.db: denied"
        );
        let cause = error.source().unwrap();
        assert!(
            cause
                .source()
                .unwrap()
                .downcast_ref::<std::io::Error>()
                .is_some()
        );
        // A failure of our own making is its message alone.
        let error = StoreError::Unavailable("connect timed out".into());
        assert!(error.source().unwrap().source().is_none());
    }
}
