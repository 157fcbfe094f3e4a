//! Runs each WeCom callback's turn once, however often WeCom retries it.
//!
//! WeCom retries a callback (3 times in all) when it gets no answer in 5 s, and retries can
//! overlap. The first arrival claims the key with a short-lived "pending" marker, runs the turn
//! and stores the reply; later arrivals wait for that reply and return it unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{Durability, Store, StoreError};

const PENDING: &[u8] = b"P";
const REPLY_TAG: u8 = b'R';

/// How a callback's turn was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This call ran the turn.
    Fresh(String),
    /// Another call ran it; this is its stored reply.
    Replayed(String),
    /// Another call is still running it; answer empty and let WeCom's next retry pick it up.
    InFlight,
}

#[derive(Clone)]
pub struct ReplyCache {
    store: Arc<dyn Store>,
    /// Claims held in this process's memory, when only this process can reach the store
    /// (`Store::single_process`): a claim need not outlive the process (see `run_once`), so
    /// the embedded store is spared one write per turn. `None`: claims go to the store, where
    /// every instance sharing it sees them.
    local_claims: Option<Arc<Mutex<HashMap<String, Instant>>>>,
    /// How long a finished reply is kept for retries (WeCom's retries span well under this).
    reply_ttl: Duration,
    /// How long a claim lives if its turn never finishes (crash), so a retry can run it again.
    pending_ttl: Duration,
    /// How long a duplicate waits for the first call's reply before giving up.
    wait: Duration,
}

/// Releases an in-memory claim when its turn ends, however it ends (reply stored, store
/// error, or the turn's future dropped).
struct LocalClaim<'a> {
    claims: &'a Mutex<HashMap<String, Instant>>,
    key: &'a str,
}

impl Drop for LocalClaim<'_> {
    fn drop(&mut self) {
        self.claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(self.key);
    }
}

impl ReplyCache {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, reply_ttl: Duration) -> Self {
        let local_claims = store
            .single_process()
            .then(|| Arc::new(Mutex::new(HashMap::new())));
        Self {
            store,
            local_claims,
            reply_ttl,
            pending_ttl: Duration::from_secs(30),
            wait: Duration::from_millis(4000),
        }
    }

    /// Runs `turn` unless a call with the same key already did or is doing so.
    pub async fn run_once<F, Fut>(&self, key: &str, turn: F) -> Result<Outcome, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        match &self.local_claims {
            Some(claims) => self.run_once_local(claims, key, turn).await,
            None => self.run_once_shared(key, turn).await,
        }
    }

    /// Claims in the store, seen by every instance that shares it.
    async fn run_once_shared<F, Fut>(&self, key: &str, turn: F) -> Result<Outcome, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // The claim needs no fsync of its own: it only holds off concurrent retries while
            // the turn runs. If the process dies before the reply record below is durable, the
            // claim may vanish with it, and a retry runs the turn again on the state the
            // last durable commit left, which is the right thing: nobody heard this turn's
            // answer, and its session write (also left to the reply's fsync) is gone too.
            if self
                .store
                .put_if_absent_with(
                    key,
                    PENDING,
                    Some(self.pending_ttl),
                    Durability::WithNextImmediate,
                )
                .await?
            {
                return self.run_and_record(key, turn).await;
            }
            loop {
                match self.store.get(key).await? {
                    Some(record) if record.first() == Some(&REPLY_TAG) => {
                        return Ok(Outcome::Replayed(reply_of(&record)));
                    }
                    // The claim expired without a reply: try to claim it ourselves.
                    None => break,
                    Some(_) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Ok(Outcome::InFlight);
                        }
                        tokio::time::sleep(RETRY_POLL).await;
                    }
                }
            }
        }
    }

    /// Claims in memory, for a store only this process reaches. The same guarantees as a
    /// claim in the store, which was never made durable either: a crash loses both.
    async fn run_once_local<F, Fut>(
        &self,
        claims: &Mutex<HashMap<String, Instant>>,
        key: &str,
        turn: F,
    ) -> Result<Outcome, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            if self.try_claim_local(claims, key) {
                let _claim = LocalClaim { claims, key };
                // Read only while holding the claim: a reply stored by a turn that released
                // its claim just before is then always seen, so the turn never runs twice.
                if let Some(reply) = self.stored_reply(key).await? {
                    return Ok(Outcome::Replayed(reply));
                }
                return self.run_and_record(key, turn).await;
            }
            if let Some(reply) = self.stored_reply(key).await? {
                return Ok(Outcome::Replayed(reply));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Outcome::InFlight);
            }
            tokio::time::sleep(RETRY_POLL).await;
        }
    }

    /// The reply a finished turn stored (a claim left in the store by a version that kept
    /// claims there is not a reply).
    async fn stored_reply(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(key)
            .await?
            .filter(|record| record.first() == Some(&REPLY_TAG))
            .map(|record| reply_of(&record)))
    }

    /// Takes the claim unless another turn holds a claim younger than `pending_ttl`.
    fn try_claim_local(&self, claims: &Mutex<HashMap<String, Instant>>, key: &str) -> bool {
        let now = Instant::now();
        let mut held = claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.get(key) {
            Some(since) if now.duration_since(*since) < self.pending_ttl => false,
            _ => {
                held.insert(key.to_owned(), now);
                true
            }
        }
    }

    /// Drops the record of `key`, so the next arrival runs its turn again (a turn that could
    /// not act and wants WeCom's retry to try again). A failure is only logged: the record
    /// then lives out its TTL.
    pub async fn forget(&self, key: &str) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(error = %e, key, "callback record not dropped");
        }
    }

    async fn run_and_record<F, Fut>(&self, key: &str, turn: F) -> Result<Outcome, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        let reply = turn().await;
        let mut record = Vec::with_capacity(reply.len() + 1);
        record.push(REPLY_TAG);
        record.extend_from_slice(reply.as_bytes());
        // This durable write is what makes the turn's session durable, so the reply is
        // given only once it succeeded; otherwise the person is told the system is busy
        // (the turn may be undone by a crash) and sends again.
        if let Err(e) = self.store.put(key, &record, Some(self.reply_ttl)).await {
            tracing::error!(error = %e, key, "could not store the reply; answering busy");
            return Err(e);
        }
        Ok(Outcome::Fresh(reply))
    }
}

/// How often a retry looks again for the first call's reply.
const RETRY_POLL: Duration = Duration::from_millis(25);

fn reply_of(record: &[u8]) -> String {
    String::from_utf8_lossy(record.get(1..).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn embedded() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("embedded://{}", dir.path().join("k.db").display());
        let store = crate::store::open(&url, "").await.expect("embedded store");
        (dir, store)
    }

    #[tokio::test]
    async fn concurrent_retries_run_the_turn_once_and_share_its_reply() {
        let (_dir, store) = embedded().await;
        let cache = ReplyCache::new(Arc::clone(&store), Duration::from_secs(60));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..16 {
            let (cache, runs) = (cache.clone(), Arc::clone(&runs));
            calls.push(tokio::spawn(async move {
                cache
                    .run_once("app:msg-1", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        "好的".to_owned()
                    })
                    .await
            }));
        }
        let mut fresh = 0;
        for call in calls {
            match call.await.expect("task").expect("store up") {
                Outcome::Fresh(reply) | Outcome::Replayed(reply) => {
                    assert_eq!(reply, "好的");
                    fresh += 1;
                }
                Outcome::InFlight => panic!("a 50 ms turn is waited for"),
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(fresh, 16);
        // A later retry is answered from the stored reply without running the turn.
        let later = cache
            .run_once("app:msg-1", || async { "again".to_owned() })
            .await
            .expect("store up");
        assert_eq!(later, Outcome::Replayed("好的".to_owned()));
    }

    #[tokio::test]
    async fn on_the_embedded_store_the_claim_costs_no_write() {
        let (_dir, store) = embedded().await;
        let cache = ReplyCache::new(Arc::clone(&store), Duration::from_secs(60));
        let seen = store.clone();
        let outcome = cache
            .run_once("app:msg-2", || async move {
                // While the turn runs, nothing is in the store under the callback's key.
                let during = seen.get("app:msg-2").await.expect("store up");
                format!("{}", during.is_none())
            })
            .await
            .expect("store up");
        assert_eq!(outcome, Outcome::Fresh("true".to_owned()));
    }

    #[tokio::test]
    async fn a_turn_dropped_midway_leaves_no_claim_behind() {
        let (_dir, store) = embedded().await;
        let cache = ReplyCache::new(store, Duration::from_secs(60));
        let stuck = cache.clone();
        let first = tokio::spawn(async move {
            stuck
                .run_once("app:msg-3", || async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "never".to_owned()
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.abort();
        let _ = first.await;
        let retry = cache
            .run_once("app:msg-3", || async { "ran".to_owned() })
            .await
            .expect("store up");
        assert_eq!(retry, Outcome::Fresh("ran".to_owned()));
    }
}
