//! A durable outbox on the store: every message to the outside (WeCom notices, the request
//! platform's webhook, emails, OA tickets) is written here first and sent by a worker, retried
//! with backoff until it goes through, and kept as failed (visible to handlers) if it never does.
//!
//! Records per item (`store::keys`): pending (the item), done (sent or given up; makes
//! enqueueing idempotent), failed (given up) and a lease (one sender at a time across
//! instances).
//!
//! Every failed attempt waits the policy's exponential backoff (a hint from the other side,
//! such as WeCom's 60 s after 45009, only ever lengthens it), and an item is given up by age
//! (`notify.give_up_after_hours`), not by a count of attempts: an outage costs as many attempts
//! as its length calls for, never the item. A delivered item about a request is recorded in
//! that request's history (`Ledger::record_delivery`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::delivery::{Delivery, DeliveryKind};
use crate::requests::{DeliveryRecord, Ledger, LedgerError};
use crate::store::{Store, StoreError, keys};

/// One message waiting to go out. Stored as `{"id", "kind", "payload", …}`: the kind string
/// tags the payload ([`WireItem`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireItem", into = "WireItem")]
pub struct OutboxItem {
    /// Idempotency key: the same id is only ever sent once.
    pub id: String,
    pub delivery: Delivery,
    pub attempts: u32,
    /// Not before this time.
    pub due: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// The stored shape of an item, the same fields in the same order as always.
#[derive(Serialize, Deserialize)]
struct WireItem {
    id: String,
    kind: String,
    payload: serde_json::Value,
    attempts: u32,
    due: DateTime<Utc>,
    created: DateTime<Utc>,
    last_error: Option<String>,
}

impl From<WireItem> for OutboxItem {
    fn from(wire: WireItem) -> Self {
        Self {
            id: wire.id,
            delivery: Delivery::read(wire.kind, wire.payload),
            attempts: wire.attempts,
            due: wire.due,
            created: wire.created,
            last_error: wire.last_error,
        }
    }
}

impl From<OutboxItem> for WireItem {
    fn from(item: OutboxItem) -> Self {
        Self {
            id: item.id,
            kind: item.delivery.kind().to_owned(),
            payload: item.delivery.payload(),
            attempts: item.attempts,
            due: item.due,
            created: item.created,
            last_error: item.last_error,
        }
    }
}

impl OutboxItem {
    /// The payload a transport expected but this item does not carry: a permanent failure.
    #[must_use]
    pub fn unexpected(&self, wanted: DeliveryKind) -> DeliveryError {
        match &self.delivery {
            Delivery::Unreadable { reason, .. } => {
                DeliveryError::permanent(format!("bad {} payload: {reason}", wanted.as_str()))
            }
            other => DeliveryError::permanent(format!(
                "a {} item given to the {} transport",
                other.kind(),
                wanted.as_str()
            )),
        }
    }
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    pub retryable: bool,
    /// A hint from the other side (e.g. WeCom's 45009 rate limit: 60 s): the least wait, never
    /// a shorter one than the backoff.
    pub retry_after: Option<Duration>,
    /// What went wrong in a word or two (`refused`, `DNS`, `TLS`, `timeout`, `errcode 45009`,
    /// `HTTP 502`, …): the log's `cause` and the failure metric's label.
    pub cause: String,
}

impl DeliveryError {
    #[must_use]
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
            cause: "other".to_owned(),
        }
    }

    #[must_use]
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
            cause: "other".to_owned(),
        }
    }

    #[must_use]
    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = cause.into();
        self
    }
}

/// Something that sends outbox items of one kind.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    fn kind(&self) -> DeliveryKind;
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError>;
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// An item still failing this long after it was queued is given up and listed as failed;
    /// its last attempt is made at that moment.
    pub give_up_after: Duration,
}

/// `notify.give_up_after_hours`'s default.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(30 * 60),
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff: first_delay × 2^(attempts-1), capped. A function of the stored
    /// attempt count, not a `backon` iterator: the schedule must survive restarts and instances.
    #[must_use]
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Items of one kind sent at once within a pass.
const PASS_CONCURRENCY: usize = 32;

/// Retries at marking a sent item done while the store fails over (0.2 + 0.4 + 0.8 + 1.6 s of
/// waiting: longer than a Sentinel failover of this deployment's settings takes).
const MARK_RETRIES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .without_max_delay()
    .with_max_times(4);

enum Delivered {
    Sent,
    Retry,
    Failed,
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    policy: RetryPolicy,
    lease: Duration,
    /// Where a delivered item about a request is recorded; none in tests of the queue alone.
    history: Option<Arc<dyn Ledger>>,
    /// The kinds this deployment has a transport for, once start-up has built them (shared by
    /// every clone): what "not configured" means on a request's page.
    configured: Arc<std::sync::OnceLock<Vec<String>>>,
    /// This process's lease value, so a lease it took can be told from another instance's.
    owner: Arc<str>,
    /// Items whose lease this process may hold without knowing it: the claim's write ran but
    /// the store could not confirm it (a failover). The next pass takes such a lease back at
    /// once instead of leaving the item untouched until the lease runs out.
    unconfirmed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Where an item is, looked up by kind and id.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemState {
    Pending(OutboxItem),
    Failed(OutboxItem),
    /// Sent (the done record says so), or never queued.
    Absent,
}

fn encode(item: &OutboxItem) -> Vec<u8> {
    serde_json::to_vec(item).unwrap_or_default()
}

impl Outbox {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            policy: RetryPolicy::default(),
            // Longer than one delivery can take (the API client gives up after 10 s), short enough
            // that a crashed instance's items are picked up again soon after a restart.
            lease: Duration::from_secs(20),
            history: None,
            configured: Arc::new(std::sync::OnceLock::new()),
            owner: format!("{:016x}", rand::random::<u64>()).into(),
            unconfirmed: Arc::default(),
        }
    }

    /// Tells the outbox which kinds have a transport (start-up, once).
    pub fn set_configured(&self, kinds: impl IntoIterator<Item = DeliveryKind>) {
        let _ = self
            .configured
            .set(kinds.into_iter().map(|k| k.as_str().to_owned()).collect());
    }

    /// Whether `kind` has a transport here; `None` when start-up has not said.
    #[must_use]
    pub fn is_configured(&self, kind: DeliveryKind) -> Option<bool> {
        self.configured
            .get()
            .map(|kinds| kinds.iter().any(|k| k == kind.as_str()))
    }

    /// Where the item `id` of `kind` is: waiting, given up, or neither.
    pub async fn state(&self, kind: DeliveryKind, id: &str) -> Result<ItemState, StoreError> {
        let read = |bytes: Vec<u8>| serde_json::from_slice::<OutboxItem>(&bytes).ok();
        if let Some(item) = self
            .store
            .get(&keys::outbox_pending(kind.as_str(), id))
            .await?
            .and_then(read)
        {
            return Ok(ItemState::Pending(item));
        }
        if let Some(item) = self
            .store
            .get(&keys::outbox_failed(kind.as_str(), id))
            .await?
            .and_then(read)
        {
            return Ok(ItemState::Failed(item));
        }
        Ok(ItemState::Absent)
    }

    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Records each delivered item about a request in `ledger` (the plain ledger on the same
    /// store: a record is no change its watchers act on).
    #[must_use]
    pub fn with_history(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.history = Some(ledger);
        self
    }

    /// Queues a message; returns false if this id was queued (or sent) before.
    pub async fn enqueue(
        &self,
        id: &str,
        delivery: Delivery,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if self.store.get(&keys::outbox_done(id)).await?.is_some() {
            return Ok(false);
        }
        let kind = delivery.kind().to_owned();
        let item = OutboxItem {
            id: id.to_owned(),
            delivery,
            attempts: 0,
            due,
            created: now,
            last_error: None,
        };
        self.store
            .put_if_absent(&keys::outbox_pending(&kind, id), &encode(&item), None)
            .await
    }

    /// Items of `kind` still to be sent (due or not).
    pub async fn pending(&self, kind: DeliveryKind) -> Result<Vec<OutboxItem>, StoreError> {
        self.list(&keys::outbox_pending_of(kind.as_str())).await
    }

    /// Every item still to be sent, all kinds.
    pub async fn all_pending(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.list(keys::OUTBOX_PENDING).await
    }

    /// Items given up after the last attempt, all kinds.
    pub async fn failed(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.list(keys::OUTBOX_FAILED).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<OutboxItem>, StoreError> {
        Ok(self
            .store
            .list_prefix(prefix, 100_000)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// Puts a failed item back in the queue (a handler pressed "retry").
    pub async fn requeue_failed(
        &self,
        kind: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = keys::outbox_failed(kind, id);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(false);
        };
        let Ok(mut item) = serde_json::from_slice::<OutboxItem>(&bytes) else {
            return Ok(false);
        };
        item.attempts = 0;
        item.due = now;
        // Queued again: its time to be given up counts from now.
        item.created = now;
        self.store.delete(&keys::outbox_done(id)).await?;
        self.store
            .put(&keys::outbox_pending(kind, id), &encode(&item), None)
            .await?;
        self.store.delete(&key).await?;
        Ok(true)
    }

    /// Sends every due item once through its transport. Several instances may run this at
    /// once: a lease per item keeps each send to one of them.
    pub async fn run_pass(
        &self,
        transports: &HashMap<DeliveryKind, Arc<dyn Transport>>,
        now: DateTime<Utc>,
    ) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        // One listing of the queue serves the gauges and every transport's share of it.
        let waiting = self.all_pending().await?;
        let failed = self.failed().await?;
        let oldest = waiting.iter().map(|i| i.created).min();
        crate::metrics::outbox(
            waiting.len(),
            oldest.and_then(|o| (now - o).to_std().ok()),
            failed.len(),
        );
        let mut by_kind_counts: HashMap<&str, (usize, usize)> = DeliveryKind::ALL
            .iter()
            .map(|kind| (kind.as_str(), (0, 0)))
            .collect();
        for item in &waiting {
            by_kind_counts.entry(item.delivery.kind()).or_default().0 += 1;
        }
        for item in &failed {
            by_kind_counts.entry(item.delivery.kind()).or_default().1 += 1;
        }
        for (kind, (pending, given_up)) in by_kind_counts {
            crate::metrics::outbox_kind(kind, pending, given_up);
        }
        let mut by_kind: HashMap<String, Vec<OutboxItem>> = HashMap::new();
        for item in waiting.into_iter().filter(|item| item.due <= now) {
            by_kind
                .entry(item.delivery.kind().to_owned())
                .or_default()
                .push(item);
        }
        for (kind, transport) in transports {
            let kind = kind.as_str();
            let due = by_kind.remove(kind).unwrap_or_default();
            // Items are independent; sending several at once lets the store group their writes.
            let outcomes: Vec<Result<Option<Delivered>, StoreError>> = futures::stream::iter(
                due.into_iter()
                    .map(|item| self.process(kind, transport.as_ref(), item, now)),
            )
            .buffer_unordered(PASS_CONCURRENCY)
            .collect()
            .await;
            for outcome in outcomes {
                match outcome? {
                    Some(Delivered::Sent) => report.sent += 1,
                    Some(Delivered::Retry) => report.retried += 1,
                    Some(Delivered::Failed) => report.failed += 1,
                    None => {}
                }
            }
        }
        Ok(report)
    }

    /// Sends one item under its lease; `None` when another instance has it.
    async fn process(
        &self,
        kind: &'static str,
        transport: &dyn Transport,
        mut item: OutboxItem,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivered>, StoreError> {
        let lease = keys::outbox_lease(&item.id);
        if !self.claim(&lease, &item.id).await? {
            return Ok(None);
        }
        // Re-read under the lease: another instance may have just finished it.
        let key = keys::outbox_pending(kind, &item.id);
        if self.store.get(&key).await?.is_none() {
            self.store.delete(&lease).await?;
            return Ok(None);
        }
        // Sent before, but its pending entry outlived the mark (the store failed over between
        // the two writes): never send it again.
        if self
            .store
            .get(&keys::outbox_done(&item.id))
            .await?
            .is_some()
        {
            tracing::info!(kind, id = %item.id, "already delivered; dropping its leftover pending entry");
            self.store.delete(&key).await?;
            self.store.delete(&lease).await?;
            return Ok(None);
        }
        item.attempts += 1;
        let deadline = item.created
            + chrono::Duration::from_std(self.policy.give_up_after).unwrap_or_default();
        let delivered = match transport.deliver(&item).await {
            Ok(()) => {
                self.mark_sent(&item.id, &key).await?;
                self.record(&item, now).await;
                Delivered::Sent
            }
            Err(e) if e.retryable && now < deadline => {
                crate::metrics::outbox_failure(kind, &e.cause);
                let backoff = self.policy.delay(item.attempts);
                let delay = e.retry_after.map_or(backoff, |hint| hint.max(backoff));
                // The last attempt is made when the item is due to be given up.
                item.due =
                    (now + chrono::Duration::from_std(delay).unwrap_or_default()).min(deadline);
                item.last_error = Some(e.message.clone());
                tracing::warn!(kind, id = %item.id, to = %item.delivery.recipient(), attempts = item.attempts, cause = %e.cause, error = %e, retry_at = %item.due, "delivery failed; will retry");
                self.store.put(&key, &encode(&item), None).await?;
                Delivered::Retry
            }
            Err(e) => {
                crate::metrics::outbox_failure(kind, &e.cause);
                item.last_error = Some(e.message.clone());
                tracing::error!(kind, id = %item.id, to = %item.delivery.recipient(), attempts = item.attempts, cause = %e.cause, error = %e, queued_at = %item.created, "delivery given up; listed as failed");
                self.store
                    .put(&keys::outbox_failed(kind, &item.id), &encode(&item), None)
                    .await?;
                self.store
                    .put(&keys::outbox_done(&item.id), b"failed", None)
                    .await?;
                self.store.delete(&key).await?;
                Delivered::Failed
            }
        };
        self.store.delete(&lease).await?;
        Ok(Some(delivered))
    }

    /// Takes the item's lease; false when another instance holds it.
    async fn claim(&self, lease: &str, id: &str) -> Result<bool, StoreError> {
        let unsure = self.unconfirmed_take(id);
        if unsure && self.store.get(lease).await?.as_deref() == Some(self.owner.as_bytes()) {
            // Our own earlier claim, written although the store could not say so.
            self.store.delete(lease).await?;
        }
        match self
            .store
            .put_if_absent(lease, self.owner.as_bytes(), Some(self.lease))
            .await
        {
            Err(e @ StoreError::Unavailable(_)) => {
                self.unconfirmed_put(id);
                Err(e)
            }
            other => other,
        }
    }

    fn unconfirmed_take(&self, id: &str) -> bool {
        self.unconfirmed
            .lock()
            .map(|mut ids| ids.remove(id))
            .unwrap_or(false)
    }

    fn unconfirmed_put(&self, id: &str) {
        if let Ok(mut ids) = self.unconfirmed.lock() {
            ids.insert(id.to_owned());
        }
    }

    /// Marks a sent item done and drops its pending entry. The message has gone out, so a
    /// store that is failing over right now is tried a few more times before giving up: an
    /// unmarked item would be sent again once its lease runs out.
    async fn mark_sent(&self, id: &str, pending: &str) -> Result<(), StoreError> {
        let mut attempt = 0;
        (|| async {
            self.store
                .put(&keys::outbox_done(id), b"sent", None)
                .await?;
            self.store.delete(pending).await.map(drop)
        })
        .retry(MARK_RETRIES)
        .when(|e| matches!(e, StoreError::Unavailable(_)))
        .notify(|e, _| {
            attempt += 1;
            if let StoreError::Unavailable(e) = e {
                tracing::warn!(id, attempt, error = %e, "sent, but not yet marked done; trying again");
            }
        })
        .await
    }

    /// Records a delivered item in its request's history; a failure is only logged (the
    /// message went out; the record is the lesser loss).
    async fn record(&self, item: &OutboxItem, now: DateTime<Utc>) {
        let (Some(ledger), Some(request)) = (&self.history, keys::request_of_item(&item.id)) else {
            return;
        };
        let record = DeliveryRecord {
            at: now,
            to: item.delivery.recipient(),
            channel: item.delivery.kind().to_owned(),
            item: item.id.clone(),
            message: item.delivery.summary(),
        };
        match ledger.record_delivery(&request, record).await {
            Ok(_) => {}
            Err(LedgerError::NotFound(_)) => {
                tracing::debug!(id = %item.id, "delivered item names no filed request");
            }
            Err(e) => {
                tracing::warn!(id = %item.id, error = %e, "delivered, but not recorded in the request's history");
            }
        }
    }

    /// Runs passes every `tick` until `stop` is cancelled; a send under way is finished first.
    pub async fn run(
        &self,
        transports: &HashMap<DeliveryKind, Arc<dyn Transport>>,
        tick: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(e) = self.run_pass(transports, Utc::now()).await {
                        tracing::warn!(error = %e, "outbox pass failed; store unavailable?");
                    }
                }
                () = stop.cancelled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::Notice;

    /// Items queued by earlier versions (kind and payload as plain JSON) read as typed ones
    /// and are written back byte for byte.
    #[test]
    fn items_in_the_stored_format_read_and_write_back_unchanged() {
        let stored = r#"{"id":"notice:KT-20261128-0007:done","kind":"wecom","payload":{"text":"已完成","touser":"zhangsan"},"attempts":2,"due":"2026-11-28T09:30:00Z","created":"2026-11-28T09:30:00Z","last_error":"HTTP 502"}"#;
        let item: OutboxItem = serde_json::from_str(stored).unwrap();
        assert_eq!(
            item.delivery,
            Delivery::Wecom(Notice {
                touser: "zhangsan".into(),
                text: "已完成".into(),
                card: None,
                before_card: None,
            })
        );
        assert_eq!(item.attempts, 2);
        assert_eq!(serde_json::to_string(&item).unwrap(), stored);

        let email = r#"{"id":"handoff:email:KT-20261128-0007","kind":"email","payload":{"attachments":[{"file_name":"a.pdf","store_key":"attachment:f1:quote_file"}],"body":"b","message_id":"<m@kaitong>","subject":"s","to":"ops@example.com"},"attempts":0,"due":"2026-11-28T09:30:00Z","created":"2026-11-28T09:30:00Z","last_error":null}"#;
        let item: OutboxItem = serde_json::from_str(email).unwrap();
        let Delivery::Email(job) = &item.delivery else {
            panic!("{item:?}");
        };
        assert_eq!(
            job.attachments[0].blob,
            crate::requests::attachments::BlobRef::of("f1", "quote_file")
        );
        assert_eq!(serde_json::to_string(&item).unwrap(), email);
    }

    #[test]
    fn an_unreadable_item_is_kept_as_stored() {
        let stored = r#"{"id":"x","kind":"fax","payload":{"to":1},"attempts":0,"due":"2026-11-28T09:30:00Z","created":"2026-11-28T09:30:00Z","last_error":null}"#;
        let item: OutboxItem = serde_json::from_str(stored).unwrap();
        assert!(matches!(item.delivery, Delivery::Unreadable { .. }));
        assert_eq!(item.delivery.kind(), "fax");
        assert_eq!(serde_json::to_string(&item).unwrap(), stored);
        let odd = stored.replace("fax", "wecom");
        let item: OutboxItem = serde_json::from_str(&odd).unwrap();
        assert!(matches!(item.delivery, Delivery::Unreadable { .. }));
        assert_eq!(serde_json::to_string(&item).unwrap(), odd);
    }

    #[test]
    fn marking_done_waits_a_few_seconds_at_most() {
        use backon::BackoffBuilder;
        // backon doubles in f32: 400 ms comes out 6 ns longer, below tokio's 1 ms timer.
        let waits: Vec<u128> = MARK_RETRIES.build().map(|d| d.as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600]);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_secs(5));
        assert_eq!(p.delay(2), Duration::from_secs(10));
        assert_eq!(p.delay(4), Duration::from_secs(40));
        assert_eq!(p.delay(30), Duration::from_secs(1800));
    }
}
