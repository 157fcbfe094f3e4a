//! The embedded backend: one redb file, so a single instance needs no server at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};

use super::{Store, StoreError};

/// value = expiry in unix millis (8 bytes, big-endian; 0 = never) followed by the payload.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn expiry_for(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| {
        now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
    })
}

fn encode(value: &[u8], ttl: Option<Duration>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expiry_for(ttl).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Returns the payload of a stored record if it has not expired.
fn live(record: &[u8], now: u64) -> Option<&[u8]> {
    let (expiry, payload) = record.split_at_checked(8)?;
    let expiry = u64::from_be_bytes(expiry.try_into().ok()?);
    (expiry == 0 || expiry > now).then_some(payload)
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// One write, run inside the writer's shared transaction. It returns whether it changed
/// anything and how to report its result once the transaction is committed (or failed).
type Job = Box<dyn FnOnce(Option<&mut redb::Table<&str, &[u8]>>) -> (bool, Finish) + Send>;
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// How many queued writes share one commit (one fsync) at most.
const GROUP_COMMIT_MAX: usize = 256;

pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    /// Writes go to one writer thread that commits them in groups: every write is durable
    /// (fsync before it is acknowledged), and concurrent writers share the fsync.
    writer: Option<std::sync::mpsc::Sender<Job>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for EmbeddedStore {
    /// Stops the writer after its last group, so the file is closed when the store is dropped
    /// (a restart in the same process can open it again at once).
    fn drop(&mut self) {
        self.writer.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: takes every queued write, runs them in one transaction, commits once,
/// then tells each caller. A failed commit fails every write of the group.
fn run_writer(db: Arc<Database>, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                let error = backend(e);
                for job in group {
                    let (_, finish) = job(None);
                    finish(Some(&error));
                }
                continue;
            }
        };
        let mut finishes = Vec::with_capacity(group.len());
        let mut changed = false;
        match txn.open_table(KV) {
            Ok(mut table) => {
                for job in group {
                    let (did_change, finish) = job(Some(&mut table));
                    changed |= did_change;
                    finishes.push(finish);
                }
            }
            Err(e) => {
                let error = backend(e);
                for job in group {
                    let (_, finish) = job(None);
                    finish(Some(&error));
                }
                continue;
            }
        }
        let outcome = if changed {
            txn.commit().map_err(backend)
        } else {
            txn.abort().map_err(backend)
        };
        let error = outcome.err();
        for finish in finishes {
            finish(error.as_ref());
        }
    }
}

impl EmbeddedStore {
    /// Opens or creates the file, creating parent folders as needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(backend)?;
        }
        let db = Arc::new(Database::create(&path).map_err(backend)?);
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(KV).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let (writer, jobs) = std::sync::mpsc::channel::<Job>();
        let writer_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("kaitong-store-writer".into())
            .spawn(move || run_writer(writer_db, jobs))
            .map_err(backend)?;
        Ok(Self {
            db,
            path,
            writer: Some(writer),
            writer_thread: Some(thread),
        })
    }

    /// Queues a write for the writer thread and waits for its group to be committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |table| {
            let Some(table) = table else {
                let finish: Finish = Box::new(move |error| {
                    let error = error.map_or_else(
                        || StoreError::Backend("no transaction".into()),
                        |e| StoreError::Backend(e.to_string()),
                    );
                    let _ = tx.send(Err(error));
                });
                return (false, finish);
            };
            let outcome = f(table);
            let changed = matches!(outcome, Ok((_, true)));
            let finish: Finish = Box::new(move |commit_error| {
                let result = match (outcome, commit_error) {
                    (Ok((_, true)), Some(e)) => Err(StoreError::Backend(e.to_string())),
                    (Ok((value, _)), _) => Ok(value),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(result);
            });
            (changed, finish)
        });
        self.writer
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store closed".into()))?
            .send(job)
            .map_err(|_| StoreError::Backend("store writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("store writer dropped a write".into()))?
    }

    /// Removes expired records; the server runs this periodically.
    async fn purge(&self) -> Result<usize, StoreError> {
        self.write(|table| {
            let now = now_millis();
            let mut expired = Vec::new();
            for entry in table.iter().map_err(backend)? {
                let (key, value) = entry.map_err(backend)?;
                if live(value.value(), now).is_none() {
                    expired.push(key.value().to_owned());
                }
            }
            for key in &expired {
                table.remove(key.as_str()).map_err(backend)?;
            }
            let changed = !expired.is_empty();
            Ok((expired.len(), changed))
        })
        .await
    }
}

fn read_live(table: &redb::Table<&str, &[u8]>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let now = now_millis();
    Ok(table
        .get(key)
        .map_err(backend)?
        .and_then(|v| live(v.value(), now).map(<[u8]>::to_vec)))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = Arc::clone(&self.db);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let now = now_millis();
            Ok(table
                .get(key.as_str())
                .map_err(backend)?
                .and_then(|v| live(v.value(), now).map(<[u8]>::to_vec)))
        })
        .await
        .map_err(backend)?
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let (key, record) = (key.to_owned(), encode(value, ttl));
        self.write(move |table| {
            table
                .insert(key.as_str(), record.as_slice())
                .map_err(backend)?;
            Ok(((), true))
        })
        .await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let (key, record) = (key.to_owned(), encode(value, ttl));
        self.write(move |table| {
            if read_live(table, &key)?.is_some() {
                return Ok((false, false));
            }
            table
                .insert(key.as_str(), record.as_slice())
                .map_err(backend)?;
            Ok((true, true))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let (key, record) = (key.to_owned(), encode(value, ttl));
        let expected = expected.map(<[u8]>::to_vec);
        self.write(move |table| {
            if read_live(table, &key)? != expected {
                return Ok((false, false));
            }
            table
                .insert(key.as_str(), record.as_slice())
                .map_err(backend)?;
            Ok((true, true))
        })
        .await
    }

    async fn increment(&self, key: &str) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.write(move |table| {
            let current = match read_live(table, &key)? {
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| StoreError::Backend(format!("{key} is not a counter")))?,
                None => 0,
            };
            let next = current + 1;
            let record = encode(next.to_string().as_bytes(), None);
            table
                .insert(key.as_str(), record.as_slice())
                .map_err(backend)?;
            Ok((next, true))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |table| {
            let was_live = read_live(table, &key)?.is_some();
            let removed = table.remove(key.as_str()).map_err(backend)?.is_some();
            Ok((was_live, removed))
        })
        .await
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let db = Arc::clone(&self.db);
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let now = now_millis();
            let mut out = Vec::new();
            for entry in table.range(prefix.as_str()..).map_err(backend)? {
                let (key, value) = entry.map_err(backend)?;
                let key = key.value();
                if !key.starts_with(&prefix) || out.len() >= limit {
                    break;
                }
                if let Some(payload) = live(value.value(), now) {
                    out.push((key.to_owned(), payload.to_vec()));
                }
            }
            Ok(out)
        })
        .await
        .map_err(backend)?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || db.begin_read().map(|_| ()).map_err(backend))
            .await
            .map_err(backend)?
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.path.display())
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        self.purge().await
    }
}
