//! The embedded backend: one redb file, so a single instance needs no server at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};

use super::backend::{Durability, Store};
use super::error::{Cause, StoreError};

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

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend(Cause::of(e))
}

/// One write, run inside the writer's shared transaction. It returns whether it changed
/// anything and how to report its result once the transaction is committed (or failed).
type Job = Box<dyn FnOnce(Option<&mut redb::Table<&str, &[u8]>>) -> (bool, Finish) + Send>;
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A queued write and how durable its commit must be.
struct Queued {
    job: Job,
    durability: Durability,
}

/// How many queued writes share one commit (one fsync) at most.
const GROUP_COMMIT_MAX: usize = 256;

pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    /// Writes go to one writer thread that commits them in groups: every write is durable
    /// (fsync before it is acknowledged), and concurrent writers share the fsync.
    writer: Option<std::sync::mpsc::Sender<Queued>>,
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
///
/// A group whose writes all asked for [`Durability::WithNextImmediate`] is committed without
/// an fsync (redb `Durability::None`): it is visible to every later transaction at once, and
/// the next durable commit persists it with its own (redb commits are ordered; recovery after
/// a crash goes back to the last durable commit, never past a missing one). A callback's turn
/// writes its claim and session so and its reply record durably, so the turn costs one fsync,
/// not three, and nothing it wrote is acknowledged before that fsync.
fn run_writer(db: Arc<Database>, jobs: std::sync::mpsc::Receiver<Queued>) {
    // Whether a commit since the last durable one is not yet on disk.
    let mut undurable = false;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|q| q.durability == Durability::Immediate);
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                let error = backend(e);
                for queued in group {
                    let (_, finish) = (queued.job)(None);
                    finish(Some(&error));
                }
                continue;
            }
        };
        if !durable {
            txn.set_durability(redb::Durability::None);
        }
        let mut finishes = Vec::with_capacity(group.len());
        let mut changed = false;
        match txn.open_table(KV) {
            Ok(mut table) => {
                for queued in group {
                    let (did_change, finish) = (queued.job)(Some(&mut table));
                    changed |= did_change;
                    finishes.push(finish);
                }
            }
            Err(e) => {
                let error = backend(e);
                for queued in group {
                    let (_, finish) = (queued.job)(None);
                    finish(Some(&error));
                }
                continue;
            }
        }
        let outcome = if changed || (durable && undurable) {
            // A durable group commits even when it changed nothing itself if an earlier
            // commit is not on disk yet: what its callers read may rest on that commit.
            let committed = txn.commit().map_err(backend);
            if committed.is_ok() {
                undurable = !durable;
            }
            committed
        } else {
            txn.abort().map_err(backend)
        };
        let error = outcome.err();
        for finish in finishes {
            finish(error.as_ref());
        }
    }
    // Stopping: make the last commits durable too, so a clean shutdown keeps every claim and
    // session (a turn still unanswered at that point can be retried either way).
    if undurable && let Ok(txn) = db.begin_write() {
        let _ = txn.commit();
    }
}

thread_local! {
    /// Set while this thread opens a store file, so the panic hook stays quiet: a panic inside
    /// redb on a damaged file is caught and reported as one line, not a backtrace.
    static OPENING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that silences panics raised while a store file is opened on
/// this thread and hands every other panic to the previous hook unchanged.
fn quiet_open_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !OPENING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the storage engine failed".to_owned())
}

fn damaged(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Any of redb's errors, boxed: `redb::Error` is large, and every closure [`guarded`] runs
/// returns it.
struct Redb(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for Redb {
    fn from(error: E) -> Self {
        Self(Box::new(error.into()))
    }
}

/// Runs `f` on a store file, turning redb's errors and panics into [`StoreError`]s: a file
/// held by another process is `InUse`, anything else wrong with it is `Damaged`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, Redb>) -> Result<T, StoreError> {
    quiet_open_panics();
    OPENING.with(|o| o.set(true));
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        // Unboxed here, so the arms below match redb's error itself.
        Ok(result) => Ok(result.map_err(|Redb(error)| *error)),
        Err(panic) => Err(panic),
    };
    OPENING.with(|o| o.set(false));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(redb::Error::DatabaseAlreadyOpen)) => {
            Err(StoreError::InUse(path.display().to_string()))
        }
        Ok(Err(redb::Error::Io(e))) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(StoreError::InUse(path.display().to_string()))
        }
        // Not damage: the file cannot be opened for writing where it is (a read-only folder,
        // e.g. under systemd's ProtectSystem=strict). Restoring a backup would not help.
        Ok(Err(redb::Error::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(StoreError::Backend(format!(
                "embedded store {}: cannot open it for writing: {e} (the folder must be writable by the bot, e.g. /var/lib/kaitong)",
                path.display()
            ).into()))
        }
        Ok(Err(e)) => Err(damaged(path, e)),
        Err(payload) => Err(damaged(path, panic_text(payload.as_ref()))),
    }
}

/// Opens the database file and reads every record once, so a damaged file is found at
/// start-up instead of by the first request that touches the broken part. An existing empty
/// file is damaged (redb would silently start a new store in it, hiding the loss).
fn open_checked(path: &Path, create: bool) -> Result<(Database, usize), StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(damaged(path, "the file is empty (0 bytes)")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
        Err(e) => return Err(StoreError::Backend(Cause::within(path.display(), e))),
    }
    guarded(path, || {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(KV)?;
        txn.commit()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(KV)?;
        let mut records = 0;
        for entry in table.iter()? {
            let (key, value) = entry?;
            let _ = (key.value().len(), value.value().len());
            records += 1;
        }
        drop(table);
        drop(txn);
        Ok((db, records))
    })
}

/// What `kaitong store check` reports for a healthy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    /// Records in the file, expired ones included.
    pub records: usize,
    /// Whether redb had to repair its allocator state (after an unclean stop).
    pub repaired: bool,
}

/// Checks an existing store file thoroughly (every page's checksum) without starting anything
/// and without ever writing it: the checks run on a private copy (redb repairs what it opens),
/// so a damaged file stays exactly as it was for `kaitong store restore` or a closer look. A
/// damaged file is reported with how many of its records could still be read. The file must not
/// be in use.
pub fn check_file(path: &Path) -> Result<CheckReport, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(damaged(path, "the file is empty (0 bytes)")),
        Ok(_) => {}
        Err(e) => return Err(StoreError::Backend(Cause::within(path.display(), e))),
    }
    let original = std::fs::File::open(path)
        .map_err(|e| StoreError::Backend(Cause::within(path.display(), e)))?;
    // The same advisory lock redb takes: a running server holds it.
    match original.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::InUse(path.display().to_string()));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Backend(Cause::within(path.display(), e)));
        }
    }
    let copy = std::env::temp_dir().join(format!(
        "kaitong-check-{}-{}.db",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let copied = std::fs::copy(path, &copy).map_err(|e| {
        StoreError::Backend(Cause::within(
            format!("copying {} to check it", path.display()),
            e,
        ))
    });
    drop(original);
    let outcome = copied.and_then(|_| check_copy(path, &copy));
    let _ = std::fs::remove_file(&copy);
    outcome
}

/// The checks of [`check_file`] on `copy`, a private copy of `path` (errors name `path`).
fn check_copy(path: &Path, copy: &Path) -> Result<CheckReport, StoreError> {
    let mut db = guarded(path, || Ok(Database::open(copy)?))?;
    let (records, readable_error) = guarded(path, || Ok(readable_records(&db)))?;
    let integrity = guarded(path, || Ok(db.check_integrity()?));
    let (problem, clean) = match (integrity, readable_error) {
        (Err(StoreError::Damaged { reason, .. }), _) => (Some(reason), false),
        (Err(e), _) => return Err(e),
        (Ok(_), Some(reason)) => (Some(reason), false),
        (Ok(clean), None) => (None, clean),
    };
    let _ = guarded(path, || {
        drop(db);
        Ok(())
    });
    match problem {
        Some(reason) => Err(damaged(
            path,
            format!("{reason}; {records} records readable before the damage"),
        )),
        None => Ok(CheckReport {
            records,
            repaired: !clean,
        }),
    }
}

/// Reads every record once; returns how many were read and, if reading stopped early, why.
fn readable_records(db: &Database) -> (usize, Option<String>) {
    let mut records = 0;
    let txn = match db.begin_read() {
        Ok(txn) => txn,
        Err(e) => return (0, Some(e.to_string())),
    };
    let table = match txn.open_table(KV) {
        Ok(table) => table,
        Err(e) => return (0, Some(e.to_string())),
    };
    let entries = match table.iter() {
        Ok(entries) => entries,
        Err(e) => return (0, Some(e.to_string())),
    };
    for entry in entries {
        match entry {
            Ok((key, value)) => {
                let _ = (key.value().len(), value.value().len());
                records += 1;
            }
            Err(e) => return (records, Some(e.to_string())),
        }
    }
    (records, None)
}

/// Replaces the store file at `path` with the backup at `backup`, after checking the backup.
/// The current file (if any) is kept beside it as `PATH.before-restore-UNIXTIME`. The store
/// must not be in use.
pub fn restore_file(backup: &Path, path: &Path) -> Result<std::path::PathBuf, StoreError> {
    check_file(backup)?;
    if path.exists() {
        // Taking the lock proves no server is using the file right now.
        match guarded(path, || Ok(Database::open(path)?)) {
            Err(StoreError::InUse(p)) => return Err(StoreError::InUse(p)),
            Ok(db) => drop(db),
            // A damaged current file is what a restore is for.
            Err(_) => {}
        }
    }
    let staged = path.with_extension("restoring");
    std::fs::copy(backup, &staged).map_err(backend)?;
    // The moment of the restore, so the daily jobs that were due before it (and ran on the
    // store the backup came from) are not run again with the backup's stale content.
    let stamp = chrono::Utc::now().to_rfc3339();
    guarded(&staged, || {
        let db = Database::open(&staged)?;
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(KV)?;
            table.insert(
                super::keys::store_restored_at().as_str(),
                encode(stamp.as_bytes(), None).as_slice(),
            )?;
        }
        txn.commit()?;
        Ok(())
    })?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(backend)?;
    let kept = path.with_extension(format!(
        "before-restore-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    ));
    if path.exists() {
        std::fs::rename(path, &kept).map_err(backend)?;
    }
    std::fs::rename(&staged, path).map_err(backend)?;
    Ok(kept)
}

impl EmbeddedStore {
    /// Opens or creates the file, creating parent folders as needed. A damaged file is refused
    /// with [`StoreError::Damaged`] (never a panic), a file held by another process with
    /// [`StoreError::InUse`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(
                    format!(
                        "embedded store {}: cannot create its folder: {e}",
                        path.display()
                    )
                    .into(),
                )
            })?;
        }
        let (db, _) = open_checked(&path, true)?;
        let db = Arc::new(db);
        let (writer, jobs) = std::sync::mpsc::channel::<Queued>();
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

    /// Queues a durable write for the writer thread and waits for its group to be committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        self.write_with(Durability::Immediate, f).await
    }

    /// Queues a write for the writer thread and waits for its group to be committed, with
    /// an fsync unless every write of the group allows its durability to come later.
    async fn write_with<T, F>(&self, durability: Durability, f: F) -> Result<T, StoreError>
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
                        // The commit's error is shared by every write in it: each says it again.
                        |e| StoreError::Backend(e.to_string().into()),
                    );
                    let _ = tx.send(Err(error));
                });
                return (false, finish);
            };
            let outcome = f(table);
            let changed = matches!(outcome, Ok((_, true)));
            let finish: Finish = Box::new(move |commit_error| {
                let result = match (outcome, commit_error) {
                    (Ok((_, true)), Some(e)) => Err(StoreError::Backend(e.to_string().into())),
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
            .send(Queued { job, durability })
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
    /// Read on the calling task, not on the blocking pool: a point read of this small, hot
    /// file is a few microseconds from redb's page cache, less than handing it to another
    /// thread and waking the task again (two context switches per read on a busy box; two
    /// reads per turn). Scans (`list_prefix`, backups) still go to the blocking pool.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(KV).map_err(backend)?;
        let now = now_millis();
        Ok(table
            .get(key)
            .map_err(backend)?
            .and_then(|v| live(v.value(), now).map(<[u8]>::to_vec)))
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
        self.put_if_absent_with(key, value, ttl, Durability::Immediate)
            .await
    }

    async fn put_if_absent_with(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let (key, record) = (key.to_owned(), encode(value, ttl));
        self.write_with(durability, move |table| {
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
        self.compare_and_swap_version(key, expected, value, ttl, Durability::Immediate)
            .await
    }

    /// On a bare store the version is the value itself.
    async fn compare_and_swap_version(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        let (key, record) = (key.to_owned(), encode(value, ttl));
        let expected = expected.map(<[u8]>::to_vec);
        self.write_with(durability, move |table| {
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
                    .ok_or_else(|| StoreError::Backend(format!("{key} is not a counter").into()))?,
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

    fn single_process(&self) -> bool {
        // redb holds an exclusive lock on the file for as long as it is open.
        true
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.path.display())
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        self.purge().await
    }

    async fn backup_to(&self, dest: &Path) -> Result<usize, StoreError> {
        let db = Arc::clone(&self.db);
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if dest.exists() {
                return Err(StoreError::Backend(
                    format!(
                        "{} already exists; a backup never overwrites a file",
                        dest.display()
                    )
                    .into(),
                ));
            }
            // One read transaction is a consistent snapshot; writers carry on meanwhile.
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let copy = Database::create(&dest).map_err(backend)?;
            let write = copy.begin_write().map_err(backend)?;
            let mut copied = 0;
            {
                let mut out = write.open_table(KV).map_err(backend)?;
                let now = now_millis();
                for entry in table.iter().map_err(backend)? {
                    let (key, value) = entry.map_err(backend)?;
                    if live(value.value(), now).is_some() {
                        out.insert(key.value(), value.value()).map_err(backend)?;
                        copied += 1;
                    }
                }
            }
            write.commit().map_err(backend)?;
            Ok(copied)
        })
        .await
        .map_err(backend)?
    }
}
