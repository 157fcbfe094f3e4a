//! The operations every backend provides (`Store`), with the durability a write asks for and a
//! read together with its version.

use std::time::Duration;

use async_trait::async_trait;

use super::error::StoreError;

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
    /// sealed bytes under [`Sealed`](super::Sealed) (so the swap needs no second read to find
    /// them).
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
