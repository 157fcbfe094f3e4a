//! The Redis backend: state shared by every instance behind a load balancer.
//!
//! Two ways to reach Redis:
//! - `redis://HOST:PORT/DB`: one server; the connection manager reconnects to it by itself.
//! - `redis+sentinel://S1,S2,S3/MASTER`: a Sentinel-managed master with a replica (see
//!   [`super::sentinel`]). The master is asked of the sentinels; when it fails over, the broken
//!   connection is dropped, the new master looked up, and the operation tried again when that
//!   is safe (below). Every write waits (`WAIT 1`) until a replica has it before it is
//!   acknowledged, so an acknowledged write survives the loss of the master's machine.
//!
//! Which operations are tried again after a failure:
//! - one that certainly did not run (no connection, refused by a read-only replica, `LOADING`,
//!   `MASTERDOWN`): always;
//! - one whose outcome is unknown (the connection broke after sending, no answer in time, or
//!   no replica confirmed it):
//!   - `get`, `put`, `delete`, `list_prefix`, `ping`: running them twice is the same as once;
//!   - `put_if_absent`, `compare_and_swap`: a plain second run would take its own first write
//!     for someone else's and answer "not written". They are tried again as a check-and-write
//!     script: if the key already holds exactly the value we were writing, the first attempt
//!     landed and the answer is "written"; otherwise the write is done as usual. Values are
//!     sealed with a fresh random nonce each time (`store.secret_key`), so an equal value is our
//!     own; without sealing two writers of byte-identical values could be confused — another
//!     reason to keep sealing on;
//!   - `increment`: no way to tell, so it reports [`StoreError::Unavailable`]; the request
//!     number it may have used is skipped, as with any failed filing.
//!
//! Callers treat `Unavailable` as "not done, ask again": the busy answer, a filing repeated by
//! form id.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::Mutex;

use super::backend::Store;
use super::error::{Cause, StoreError};
use super::sentinel::{SCHEME as SENTINEL_SCHEME, SentinelLink, SentinelUrl};

/// Fails fast while Redis is down so a callback can still answer inside WeCom's 5 s budget.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long one operation keeps trying while a Sentinel failover is under way. A manual or
/// planned failover switches in about a second; an unplanned one takes the sentinels'
/// `down-after-milliseconds` plus an election, longer than a callback can wait, so those
/// turns answer busy and the person sends again.
const FAILOVER_BUDGET: Duration = Duration::from_millis(2000);
/// How long a master connection is used before the sentinels are asked again whether it is
/// still the master. A planned failover promotes the replica while the old master keeps
/// answering (the sentinels demote it only seconds later), so a connection that never breaks
/// must still be moved; reads may be this stale, writes are checked (`confirm_replicated`).
const MASTER_RECHECK: Duration = Duration::from_secs(1);
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_millis(400);

/// Atomic compare-and-swap: ARGV[1] = "1" if a value is expected, ARGV[2] = expected,
/// ARGV[3] = new value, ARGV[4] = ttl in ms (0 = none), ARGV[5] = "1" when an earlier attempt
/// of this very write may have landed (then finding the new value already there is success).
/// With no value expected it is also `put_if_absent`'s check-and-write retry.
const CAS_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[5] == '1' and current == ARGV[3] then return 1 end
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
else
  if current then return 0 end
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
";

/// Whether an operation may be sent again when its outcome is unknown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Running it twice leaves the same state and answer as once.
    Safe,
    /// Sent again told that its first attempt may have landed, which it checks for.
    Checked,
    /// A second run could answer differently; only retried when the first surely did not run.
    Once,
}

/// Why an attempt failed, as far as retrying is concerned.
enum Failure {
    /// Certainly not carried out.
    NotDone(StoreError),
    /// Sent, but it may or may not have been carried out, or it was carried out on the master
    /// and no replica confirmed it in time.
    Unknown(StoreError),
    /// An answer that trying again cannot change.
    Final(StoreError),
}

impl Failure {
    fn into_error(self) -> StoreError {
        match self {
            Self::NotDone(e) | Self::Unknown(e) | Self::Final(e) => e,
        }
    }
}

fn failure_of(e: redis::RedisError) -> Failure {
    use redis::ErrorKind;
    let refused_before_running = matches!(
        e.kind(),
        ErrorKind::ReadOnly
            | ErrorKind::MasterDown
            | ErrorKind::BusyLoadingError
            | ErrorKind::TryAgain
    ) || e.code() == Some("NOREPLICAS")
        || e.is_connection_refusal();
    if refused_before_running {
        Failure::NotDone(StoreError::Unavailable(Cause::of(e)))
    } else if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        Failure::Unknown(StoreError::Unavailable(Cause::of(e)))
    } else {
        Failure::Final(StoreError::Backend(Cause::of(e)))
    }
}

/// Escapes Redis glob characters so a prefix matches literally.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn ttl_millis(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

/// The connection an operation runs on.
#[derive(Clone)]
enum Conn {
    Managed(ConnectionManager),
    /// To the master the sentinels named; `generation` tells a broken one from its successor.
    Master {
        generation: u64,
        conn: MultiplexedConnection,
        addr: Arc<str>,
    },
}

impl MasterConn {
    fn to_conn(&self) -> Conn {
        Conn::Master {
            generation: self.generation,
            conn: self.conn.clone(),
            addr: Arc::clone(&self.addr),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Master { conn, .. } => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(cmd, offset, count),
            Self::Master { conn, .. } => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Master { conn, .. } => conn.get_db(),
        }
    }
}

/// The connection to the master, and when the sentinels last confirmed it is still the one.
struct MasterConn {
    generation: u64,
    conn: MultiplexedConnection,
    addr: Arc<str>,
    confirmed: Instant,
}

enum Route {
    /// One fixed server.
    Direct {
        client: redis::Client,
        /// Connected lazily and kept; the manager reconnects by itself after Redis comes back.
        manager: Mutex<Option<ConnectionManager>>,
    },
    /// Whichever server the sentinels name as master.
    Sentinel {
        link: SentinelLink,
        master: Mutex<Option<MasterConn>>,
        generations: AtomicU64,
        /// How long a write waits for a replica's acknowledgement; zero = not at all.
        replica_ack: Duration,
    },
}

pub struct RedisStore {
    route: Route,
    prefix: String,
    cas: redis::Script,
    url_for_logs: String,
}

impl RedisStore {
    /// Parses the URL (`redis://`, `rediss://` or `redis+sentinel://`); the connection is made
    /// on first use so start-up does not need Redis up.
    pub fn open(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let (route, url_for_logs) = if url.starts_with(SENTINEL_SCHEME) {
            let parsed = SentinelUrl::parse(url)?;
            (
                Route::Sentinel {
                    link: SentinelLink::new(&parsed)?,
                    master: Mutex::new(None),
                    generations: AtomicU64::new(0),
                    replica_ack: parsed.replica_ack,
                },
                parsed.describe(),
            )
        } else {
            let client = redis::Client::open(url).map_err(|e| StoreError::Backend(Cause::of(e)))?;
            let info = client.get_connection_info();
            let described = format!("redis:{}/{}", info.addr, info.redis.db);
            (
                Route::Direct {
                    client,
                    manager: Mutex::new(None),
                },
                described,
            )
        };
        Ok(Self {
            route,
            prefix: prefix.to_owned(),
            cas: redis::Script::new(CAS_SCRIPT),
            url_for_logs,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.route {
            Route::Direct { client, manager } => {
                let mut slot = manager.lock().await;
                if let Some(conn) = slot.as_ref() {
                    return Ok(Conn::Managed(conn.clone()));
                }
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(1);
                let conn = tokio::time::timeout(
                    CONNECT_TIMEOUT * 2,
                    ConnectionManager::new_with_config(client.clone(), config),
                )
                .await
                .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
                .map_err(|e| failure_of(e).into_error())?;
                *slot = Some(conn.clone());
                Ok(Conn::Managed(conn))
            }
            Route::Sentinel {
                link,
                master,
                generations,
                ..
            } => {
                // Held while looking up, so a failover sends one lookup, not one per request.
                let mut slot = master.lock().await;
                if let Some(current) = slot.as_ref()
                    && current.confirmed.elapsed() < MASTER_RECHECK
                {
                    return Ok(current.to_conn());
                }
                let client = match link.master().await {
                    Ok(client) => client,
                    // The sentinels cannot be asked right now: keep a connection we have (it
                    // fails by itself if its server is gone) rather than stop on their account,
                    // and ask them again in a second, not on every operation.
                    Err(e) => match slot.as_mut() {
                        Some(current) => {
                            tracing::warn!(store = %self.url_for_logs, error = %e, "sentinels not answering; keeping the current master connection");
                            current.confirmed = Instant::now();
                            return Ok(current.to_conn());
                        }
                        None => return Err(e),
                    },
                };
                let addr: Arc<str> = client.get_connection_info().addr.to_string().into();
                if let Some(current) = slot.as_mut()
                    && current.addr == addr
                {
                    current.confirmed = Instant::now();
                    return Ok(current.to_conn());
                }
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                let conn = tokio::time::timeout(
                    CONNECT_TIMEOUT * 2,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await
                .map_err(|_| StoreError::Unavailable("connect to the master timed out".into()))?
                .map_err(|e| failure_of(e).into_error())?;
                let generation = generations.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(
                    store = %self.url_for_logs,
                    master = %addr,
                    "connected to the master named by the sentinels"
                );
                let fresh = MasterConn {
                    generation,
                    conn,
                    addr,
                    confirmed: Instant::now(),
                };
                let out = fresh.to_conn();
                *slot = Some(fresh);
                Ok(out)
            }
        }
    }

    /// Drops a master connection that failed, so the next operation asks the sentinels again
    /// (a multiplexed connection does not reconnect, and the old address may now be a replica).
    async fn forget(&self, broken: &Conn) {
        if let (Route::Sentinel { master, .. }, Conn::Master { generation, .. }) =
            (&self.route, broken)
        {
            let mut slot = master.lock().await;
            if slot
                .as_ref()
                .is_some_and(|current| current.generation == *generation)
            {
                *slot = None;
            }
        }
    }

    /// After a write on a Sentinel-managed master: waits until a replica has it, so it is
    /// acknowledged only once it would survive a failover.
    ///
    /// A replica is expected when the sentinels know a healthy one *or* the master itself has
    /// one connected. Either alone can be wrong for a moment around a failover: the sentinels'
    /// view is cached for a second and lags a re-attached replica; the master loses its replica
    /// the instant that replica is promoted, while it still takes writes that are about to be
    /// thrown away. Only when both say none (the old master's machine is gone) does the write
    /// stand on the master alone, logged, rather than the service stopping.
    async fn confirm_replicated(&self, conn: &mut Conn) -> Result<(), Failure> {
        let Route::Sentinel {
            link, replica_ack, ..
        } = &self.route
        else {
            return Ok(());
        };
        if replica_ack.is_zero() {
            return Ok(());
        }
        let ran = |e: redis::RedisError| match failure_of(e) {
            // The write ran; whether it reached a replica is unknown.
            Failure::NotDone(e) => Failure::Unknown(e),
            other => other,
        };
        if !link.replica_expected().await {
            let role: Vec<Value> = redis::cmd("ROLE").query_async(conn).await.map_err(ran)?;
            let connected =
                matches!(role.get(2), Some(Value::Array(replicas)) if !replicas.is_empty());
            if !connected {
                // A master without a replica may be one the sentinels have just replaced (its
                // replica promoted, itself not yet demoted): what it takes now is thrown away
                // when it is. Acknowledge only if it is still the master they name.
                return self.confirm_still_master(link, conn).await;
            }
        }
        let millis = u64::try_from(replica_ack.as_millis()).unwrap_or(u64::MAX);
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(millis)
            .query_async(conn)
            .await
            .map_err(ran)?;
        if acked >= 1 {
            Ok(())
        } else {
            link.replica_view_stale();
            Err(Failure::Unknown(StoreError::Unavailable(
                format!("write not confirmed by a replica within {millis} ms").into(),
            )))
        }
    }

    /// For a write acknowledged from the master alone: the sentinels must agree this
    /// connection's server is the master, with no failover under way; otherwise the write is
    /// reported as not done (it may be on a master about to be demoted).
    async fn confirm_still_master(&self, link: &SentinelLink, conn: &Conn) -> Result<(), Failure> {
        let Conn::Master { addr, .. } = conn else {
            return Ok(());
        };
        if link.confirms_sole_master(addr).await {
            Ok(())
        } else {
            Err(Failure::Unknown(StoreError::Unavailable(format!(
                "write on {addr} has no replica and the sentinels do not confirm it as the master"
            ).into())))
        }
    }

    /// Runs `op` (which answers its result and whether it wrote), confirming writes with a
    /// replica and, on a Sentinel-managed store, trying again on the current master while that
    /// is safe for `repeat` and the failover budget lasts. `op`'s flag says that an earlier
    /// attempt may have been carried out.
    async fn run<T, F, Fut>(
        &self,
        what: &'static str,
        repeat: Repeat,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Conn, bool) -> Fut + Send + Sync,
        Fut: Future<Output = redis::RedisResult<(T, bool)>> + Send,
        T: Send,
    {
        let sentinel = matches!(self.route, Route::Sentinel { .. });
        let started = Instant::now();
        // Doubled by hand, not `backon`: the budget counts the operations' time, not only pauses.
        let mut pause = FIRST_PAUSE;
        let mut maybe_ran = false;
        loop {
            let failure = match self.conn().await {
                Err(e) => Failure::NotDone(e),
                Ok(mut conn) => {
                    let attempt = match op(conn.clone(), maybe_ran).await {
                        Ok((value, false)) => Ok(value),
                        Ok((value, true)) => {
                            self.confirm_replicated(&mut conn).await.map(|()| value)
                        }
                        Err(e) => Err(failure_of(e)),
                    };
                    match attempt {
                        Ok(value) => return Ok(value),
                        Err(failure) => {
                            if !matches!(failure, Failure::Final(_)) {
                                self.forget(&conn).await;
                            }
                            failure
                        }
                    }
                }
            };
            let again = match &failure {
                Failure::NotDone(_) => true,
                Failure::Unknown(_) => {
                    maybe_ran = true;
                    repeat != Repeat::Once
                }
                Failure::Final(_) => false,
            };
            let error = failure.into_error();
            if !sentinel {
                return Err(error);
            }
            if !again || started.elapsed() + pause > FAILOVER_BUDGET {
                tracing::warn!(store = %self.url_for_logs, op = what, error = %error, "store operation not done");
                return Err(error);
            }
            tracing::warn!(
                store = %self.url_for_logs,
                op = what,
                error = %error,
                retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "store operation failed, possibly a failover; trying again on the master the sentinels name"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        self.run("get", Repeat::Safe, |mut conn, _| {
            let key = key.clone();
            async move {
                let value: Option<Vec<u8>> =
                    redis::cmd("GET").arg(key).query_async(&mut conn).await?;
                Ok((value, false))
            }
        })
        .await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if ttl.is_some() {
            cmd.arg("PX").arg(ttl_millis(ttl));
        }
        self.run("put", Repeat::Safe, |mut conn, _| {
            let cmd = cmd.clone();
            async move {
                cmd.query_async::<()>(&mut conn).await?;
                Ok(((), true))
            }
        })
        .await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX");
        if ttl.is_some() {
            cmd.arg("PX").arg(ttl_millis(ttl));
        }
        let key = self.key(key);
        self.run("put_if_absent", Repeat::Checked, |mut conn, maybe_ran| {
            let cmd = cmd.clone();
            let key = key.clone();
            async move {
                let wrote = if maybe_ran {
                    // Absent-or-ours, as one script: see the module comment.
                    let swapped: i64 = self
                        .cas
                        .key(key)
                        .arg("0")
                        .arg(&[] as &[u8])
                        .arg(value)
                        .arg(ttl_millis(ttl))
                        .arg("1")
                        .invoke_async(&mut conn)
                        .await?;
                    swapped == 1
                } else {
                    let reply: Option<String> = cmd.query_async(&mut conn).await?;
                    reply.is_some()
                };
                Ok((wrote, wrote))
            }
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
        let key = self.key(key);
        self.run(
            "compare_and_swap",
            Repeat::Checked,
            |mut conn, maybe_ran| {
                let key = key.clone();
                async move {
                    let swapped: i64 = self
                        .cas
                        .key(key)
                        .arg(if expected.is_some() { "1" } else { "0" })
                        .arg(expected.unwrap_or_default())
                        .arg(value)
                        .arg(ttl_millis(ttl))
                        .arg(if maybe_ran { "1" } else { "0" })
                        .invoke_async(&mut conn)
                        .await?;
                    Ok((swapped == 1, swapped == 1))
                }
            },
        )
        .await
    }

    async fn increment(&self, key: &str) -> Result<u64, StoreError> {
        let key = self.key(key);
        self.run("increment", Repeat::Once, |mut conn, _| {
            let key = key.clone();
            async move {
                let value: u64 = redis::cmd("INCR").arg(key).query_async(&mut conn).await?;
                Ok((value, true))
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = self.key(key);
        // Deleting twice leaves the same state; only the "was it there" answer of a repeated
        // delete can say no where the first one removed it, and no caller relies on it.
        self.run("delete", Repeat::Safe, |mut conn, _| {
            let key = key.clone();
            async move {
                let removed: i64 = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
                Ok((removed > 0, removed > 0))
            }
        })
        .await
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        let strip = self.prefix.len();
        self.run("list_prefix", Repeat::Safe, |mut conn, _| {
            let pattern = pattern.clone();
            async move {
                let mut keys: Vec<String> = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    keys.extend(batch);
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                }
                keys.sort();
                keys.dedup();
                keys.truncate(limit);
                if keys.is_empty() {
                    return Ok((Vec::new(), false));
                }
                let values: Vec<Option<Vec<u8>>> =
                    redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
                let found = keys
                    .into_iter()
                    .zip(values)
                    .filter_map(|(k, v)| v.map(|v| (k[strip..].to_owned(), v)))
                    .collect();
                Ok((found, false))
            }
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", Repeat::Safe, |mut conn, _| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(((), false))
        })
        .await
    }

    fn describe(&self) -> String {
        self.url_for_logs.clone()
    }
}
