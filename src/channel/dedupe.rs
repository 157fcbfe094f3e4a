//! Runs each WeCom callback's turn once, however often WeCom retries it.
//!
//! WeCom retries a callback (3 times in all) when it gets no answer in 5 s, and retries can
//! overlap. The first arrival claims the key with a short-lived "pending" marker, runs the turn
//! and stores the reply; later arrivals wait for that reply and return it unchanged.

use std::sync::Arc;
use std::time::Duration;

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
    /// How long a finished reply is kept for retries (WeCom's retries span well under this).
    reply_ttl: Duration,
    /// How long a claim lives if its turn never finishes (crash), so a retry can run it again.
    pending_ttl: Duration,
    /// How long a duplicate waits for the first call's reply before giving up.
    wait: Duration,
}

impl ReplyCache {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, reply_ttl: Duration) -> Self {
        Self {
            store,
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
                let reply = turn().await;
                let mut record = Vec::with_capacity(reply.len() + 1);
                record.push(REPLY_TAG);
                record.extend_from_slice(reply.as_bytes());
                // This durable write is what makes the turn's claim and session durable, so
                // the reply is given only once it succeeded; otherwise the person is told the
                // system is busy (the turn may be undone by a crash) and sends again.
                if let Err(e) = self.store.put(key, &record, Some(self.reply_ttl)).await {
                    tracing::error!(error = %e, key, "could not store the reply; answering busy");
                    return Err(e);
                }
                return Ok(Outcome::Fresh(reply));
            }
            loop {
                match self.store.get(key).await? {
                    Some(record) if record.first() == Some(&REPLY_TAG) => {
                        let reply = String::from_utf8_lossy(&record[1..]).into_owned();
                        return Ok(Outcome::Replayed(reply));
                    }
                    // The claim expired without a reply: try to claim it ourselves.
                    None => break,
                    Some(_) => {
                        if tokio::time::Instant::now() >= deadline {
                            return Ok(Outcome::InFlight);
                        }
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
            }
        }
    }
}
