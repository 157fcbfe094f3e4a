//! A Sentinel-managed Redis: which server is the master is asked of the sentinels, not
//! configured, so a failover moves every instance to the new master without a restart.
//!
//! `store.url = "redis+sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT,…/MASTER[?db=N&replica_ack_ms=M]"`
//!
//! - the hosts are the sentinels (port 26379 when left out); any one that answers will do;
//! - `MASTER` is the name the sentinels monitor (`sentinel monitor MASTER …`);
//! - `PASSWORD` (and `db`) are for the Redis servers, not the sentinels;
//! - `replica_ack_ms` is how long a write waits for a replica's acknowledgement before it is
//!   reported as not done (default [`DEFAULT_REPLICA_ACK`]; `0` = do not wait).
//!
//! The master is the one a majority of the configured sentinels name
//! (`SENTINEL GET-MASTER-ADDR-BY-NAME`, asked side by side), checked with `ROLE` before a
//! client is handed out: one sentinel that names another live master is never followed, and a
//! demoted master is never used. The `redis` crate's `sentinel` feature
//! ([`redis::sentinel::Sentinel`]) answers whether a healthy replica exists.

use std::time::{Duration, Instant};

use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use tokio::sync::Mutex;

use super::error::{Cause, StoreError};

pub const SCHEME: &str = "redis+sentinel://";
const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// Long enough for a replica on the same network to acknowledge (normally well under 1 ms),
/// short enough that a turn with several writes still answers inside WeCom's 5 s.
pub const DEFAULT_REPLICA_ACK: Duration = Duration::from_millis(500);
/// A sentinel (or the server it names) that does not answer within this is treated as
/// unreachable; keeps a lookup from hanging on a dead host's TCP timeout. The sentinels are asked
/// side by side, so one on a lost machine costs nothing while another answers.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1000);
/// For the check behind a write acknowledged without a replica, which waits for every sentinel:
/// they answer in well under a millisecond on a working network.
const CONFIRM_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the sentinels' confirmation that a server is the sole master is reused.
const SOLE_MASTER_REUSE: Duration = Duration::from_millis(500);
/// How long the answer to "is there a healthy replica?" is reused before asking again.
const REPLICA_VIEW_TTL: Duration = Duration::from_secs(1);

/// A parsed `redis+sentinel://` URL. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct SentinelUrl {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub password: Option<String>,
    pub replica_ack: Duration,
}

impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl SentinelUrl {
    /// Parses the URL; errors say what is wrong without repeating the URL (it may hold a
    /// password).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl(format!("redis+sentinel: {reason}"));
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| invalid("must start with redis+sentinel://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("the master name is missing (…/MASTER)"))?;
        let (password, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                // `:password@` or `password@`: a user name is not supported by Sentinel setups
                // here, so whatever follows the last ':' is the password.
                let secret = userinfo.rsplit_once(':').map_or(userinfo, |(_, p)| p);
                let secret = percent_encoding::percent_decode_str(secret)
                    .decode_utf8()
                    .map_err(|_| invalid("the password is not valid percent-encoded UTF-8"))?;
                ((!secret.is_empty()).then(|| secret.into_owned()), hosts)
            }
            None => (None, authority),
        };
        let mut sentinels = Vec::new();
        for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) => (
                    name,
                    port.parse::<u16>()
                        .map_err(|_| invalid("a sentinel port is not a number"))?,
                ),
                None => (host, DEFAULT_SENTINEL_PORT),
            };
            if name.is_empty() {
                return Err(invalid("a sentinel host is empty"));
            }
            sentinels.push((name.to_owned(), port));
        }
        if sentinels.is_empty() {
            return Err(invalid("no sentinel host given"));
        }
        let master = path.trim_matches('/');
        if master.is_empty() || master.contains('/') {
            return Err(invalid("expected exactly one master name after the hosts"));
        }
        let mut db = 0;
        let mut replica_ack = DEFAULT_REPLICA_ACK;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("db", n)) => {
                    db = n.parse().map_err(|_| invalid("db must be a number"))?;
                }
                Some(("replica_ack_ms", n)) => {
                    replica_ack = Duration::from_millis(
                        n.parse()
                            .map_err(|_| invalid("replica_ack_ms must be a number"))?,
                    );
                }
                _ => return Err(invalid("unknown parameter (known: db, replica_ack_ms)")),
            }
        }
        Ok(Self {
            sentinels,
            master: master.to_owned(),
            db,
            password,
            replica_ack,
        })
    }

    /// For logs: the sentinels and the master name, never the password.
    #[must_use]
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        format!(
            "redis+sentinel:{}/{}/{}",
            hosts.join(","),
            self.master,
            self.db
        )
    }
}

/// The sentinels, asked for the current master and whether a healthy replica exists.
pub struct SentinelLink {
    /// One crate `Sentinel` per sentinel, so they can be asked side by side (the crate asks a
    /// list of them one after another, and one that hangs would hold up the rest).
    sentinels: Vec<Mutex<Sentinel>>,
    /// Each sentinel's own address, for questions the crate's `Sentinel` does not ask.
    each_sentinel: Vec<redis::Client>,
    master: String,
    node: SentinelNodeConnectionInfo,
    /// Whether the sentinels knew a healthy replica when last asked, and when that was.
    replica_view: std::sync::Mutex<Option<(Instant, bool)>>,
    /// The master address the sentinels last confirmed as sole master, and when.
    sole_master: std::sync::Mutex<Option<(Instant, String)>>,
}

impl SentinelLink {
    pub fn new(url: &SentinelUrl) -> Result<Self, StoreError> {
        let sentinels: Vec<String> = url
            .sentinels
            .iter()
            .map(|(h, p)| format!("redis://{h}:{p}/"))
            .collect();
        let each_sentinel = sentinels
            .iter()
            .map(|url| redis::Client::open(url.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let sentinels = sentinels
            .into_iter()
            .map(|url| Sentinel::build(vec![url]).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        Ok(Self {
            sentinels,
            each_sentinel,
            master: url.master.clone(),
            node: SentinelNodeConnectionInfo {
                tls_mode: None,
                redis_connection_info: Some(redis::RedisConnectionInfo {
                    db: url.db,
                    username: None,
                    password: url.password.clone(),
                    protocol: redis::ProtocolVersion::RESP2,
                }),
            },
            replica_view: std::sync::Mutex::new(None),
            sole_master: std::sync::Mutex::new(None),
        })
    }

    /// A client for the master a majority of the configured sentinels name now, checked with
    /// `ROLE`. One sentinel is never enough: a sentinel that monitors another live master
    /// under the same name (misconfigured, or lying) would split the data between two masters.
    /// The sentinels are asked side by side and the answer is taken as soon as a majority
    /// agrees, so a sentinel that hangs costs nothing while the others answer.
    pub async fn master(&self) -> Result<redis::Client, StoreError> {
        let needed = self.each_sentinel.len() / 2 + 1;
        let mut answers: futures::stream::FuturesUnordered<_> = self
            .each_sentinel
            .iter()
            .map(|client| {
                let client = client.clone();
                async move {
                    let ask = async {
                        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(&self.master)
                            .query_async::<Option<(String, u16)>>(&mut conn)
                            .await
                            .ok()
                            .flatten()
                    };
                    tokio::time::timeout(LOOKUP_TIMEOUT, ask)
                        .await
                        .ok()
                        .flatten()
                }
            })
            .collect();
        let mut votes: std::collections::HashMap<(String, u16), usize> =
            std::collections::HashMap::new();
        let mut chosen = None;
        while let Some(answer) = futures::StreamExt::next(&mut answers).await {
            if let Some(addr) = answer {
                let count = votes.entry(addr.clone()).or_default();
                *count += 1;
                if *count >= needed {
                    chosen = Some(addr);
                    break;
                }
            }
        }
        let Some((host, port)) = chosen else {
            let named: Vec<String> = votes
                .iter()
                .map(|((h, p), n)| format!("{h}:{p} by {n}"))
                .collect();
            if votes.len() > 1 {
                tracing::warn!(
                    master = %self.master,
                    named = %named.join(", "),
                    "the sentinels disagree about the master; following none without a majority"
                );
            }
            return Err(StoreError::Unavailable(
                format!(
                    "no master named by a majority ({needed} of {}) of the sentinels (named: {})",
                    self.each_sentinel.len(),
                    if named.is_empty() {
                        "none".to_owned()
                    } else {
                        named.join(", ")
                    }
                )
                .into(),
            ));
        };
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host.clone(), port),
            redis: self.node.redis_connection_info.clone().unwrap_or_default(),
        };
        let client =
            redis::Client::open(info).map_err(|e| StoreError::Unavailable(Cause::of(e)))?;
        // The server must itself say it is a master (a demoted one says "slave").
        let role = tokio::time::timeout(LOOKUP_TIMEOUT, async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE")
                .query_async::<Vec<redis::Value>>(&mut conn)
                .await
        })
        .await
        .map_err(|_| {
            StoreError::Unavailable(
                format!("the master {host}:{port} did not answer ROLE in time").into(),
            )
        })?
        .map_err(|e| {
            StoreError::Unavailable(Cause::within(format!("the master {host}:{port}"), e))
        })?;
        let is_master = role
            .first()
            .and_then(|v| redis::from_redis_value::<String>(v).ok())
            .is_some_and(|r| r == "master");
        if !is_master {
            return Err(StoreError::Unavailable(
                format!("{host}:{port}, named by the sentinels, is not a master (ROLE)").into(),
            ));
        }
        // Its replicas must be the ones the sentinels monitor: a master whose replicas are all
        // strangers to them is another replication group under the same address or name.
        let connected = role_replicas(&role);
        let monitored = self.monitored_replicas().await;
        if !replica_sets_agree(&connected, &monitored) {
            tracing::warn!(
                master = %format!("{host}:{port}"),
                connected = ?connected,
                monitored = ?monitored,
                "the master's replicas are not the ones the sentinels monitor; not following it"
            );
            return Err(StoreError::Unavailable(
                format!("{host}:{port}: its replicas are not the ones the sentinels monitor")
                    .into(),
            ));
        }
        Ok(client)
    }

    /// The replicas (ip, port) one answering sentinel monitors for the master; empty when none
    /// answers in time (then nothing is compared).
    async fn monitored_replicas(&self) -> Vec<(String, u16)> {
        for client in &self.each_sentinel {
            let ask = async {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(&self.master)
                    .query_async::<Vec<std::collections::HashMap<String, String>>>(&mut conn)
                    .await
                    .ok()
            };
            if let Ok(Some(replicas)) = tokio::time::timeout(LOOKUP_TIMEOUT, ask).await {
                return replicas
                    .iter()
                    .filter_map(|r| Some((r.get("ip")?.clone(), r.get("port")?.parse().ok()?)))
                    .collect();
            }
        }
        Vec::new()
    }

    /// Whether the sentinels know a replica that is up (asked at most once a second). After the
    /// master's machine is lost and its replica promoted there is none until the old master
    /// comes back as a replica.
    pub async fn replica_expected(&self) -> bool {
        if let Some((at, healthy)) = *self
            .replica_view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && at.elapsed() < REPLICA_VIEW_TTL
        {
            return healthy;
        }
        let mut answers: futures::stream::FuturesUnordered<_> = self
            .sentinels
            .iter()
            .map(|sentinel| async move {
                let mut sentinel = sentinel.lock().await;
                tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    sentinel.async_replica_for(&self.master, Some(&self.node)),
                )
                .await
            })
            .collect();
        // One sentinel naming a healthy replica is enough; "none" needs a sentinel that says
        // so. Sentinels unreachable or slow: assume a replica, so a write is acknowledged only
        // once it is on two machines.
        // A majority saying none is the answer: a sentinel that hangs is not waited for.
        let mut denied = 0;
        let mut healthy = true;
        while let Some(answer) = futures::StreamExt::next(&mut answers).await {
            match answer {
                Ok(Ok(_)) => {
                    denied = 0;
                    break;
                }
                Ok(Err(e)) if e.kind() == redis::ErrorKind::NoValidReplicasFoundBySentinel => {
                    denied += 1;
                    if denied * 2 > self.sentinels.len() {
                        break;
                    }
                }
                Ok(Err(_)) | Err(_) => {}
            }
        }
        if denied > 0 {
            healthy = false;
        }
        if !healthy {
            tracing::warn!(
                master = %self.master,
                "no healthy replica known to the sentinels: unless the master has one connected, \
                 writes are acknowledged from the master alone"
            );
        }
        *self
            .replica_view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), healthy));
        healthy
    }

    /// Whether a write on the server at `addr` may be acknowledged without a replica: a
    /// majority of the sentinels answer, and every one that answers names `addr` as the master
    /// with no failover under way and no "down" flag. In a planned failover the old master
    /// keeps taking writes after its replica was promoted (everything it takes then is thrown
    /// away when it is demoted), and a sentinel not leading the failover still names it for a
    /// moment; asking them all, for the failover flag too, closes that window.
    ///
    /// A confirmation is reused for [`SOLE_MASTER_REUSE`]: the check waits for every sentinel
    /// (up to [`CONFIRM_TIMEOUT`] for one that hangs), and for this answer to turn wrong a
    /// replica would have to attach to this master, sync, be noticed by the sentinels and be
    /// promoted within that time — while it is attached, writes wait for it anyway.
    pub async fn confirms_sole_master(&self, addr: &str) -> bool {
        if let Some((at, confirmed)) = self
            .sole_master
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < SOLE_MASTER_REUSE
            && confirmed == addr
        {
            return true;
        }
        let answers = futures::future::join_all(self.each_sentinel.iter().map(|client| {
            let client = client.clone();
            async move {
                let ask = async {
                    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("SENTINEL")
                        .arg("MASTER")
                        .arg(&self.master)
                        .query_async::<std::collections::HashMap<String, String>>(&mut conn)
                        .await
                        .ok()
                };
                tokio::time::timeout(CONFIRM_TIMEOUT, ask)
                    .await
                    .ok()
                    .flatten()
            }
        }))
        .await;
        let answered: Vec<_> = answers.into_iter().flatten().collect();
        let majority = answered.len() * 2 > self.each_sentinel.len();
        let confirmed = majority
            && answered.iter().all(|master| {
                let named = format!(
                    "{}:{}",
                    master.get("ip").map_or("", String::as_str),
                    master.get("port").map_or("", String::as_str)
                );
                let flags = master.get("flags").map_or("", String::as_str);
                named == addr
                    && !flags.contains("failover_in_progress")
                    && !flags.contains("s_down")
                    && !flags.contains("o_down")
            });
        *self
            .sole_master
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            confirmed.then(|| (Instant::now(), addr.to_owned()));
        confirmed
    }

    /// Forgets the replica view, so the next write asks the sentinels again.
    pub fn replica_view_stale(&self) {
        *self
            .replica_view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The replicas a master's `ROLE` answer lists: `["master", offset, [[ip, port, offset], …]]`.
fn role_replicas(role: &[redis::Value]) -> Vec<(String, u16)> {
    let Some(redis::Value::Array(replicas)) = role.get(2) else {
        return Vec::new();
    };
    replicas
        .iter()
        .filter_map(|r| {
            let redis::Value::Array(parts) = r else {
                return None;
            };
            let ip = redis::from_redis_value::<String>(parts.first()?).ok()?;
            let port = redis::from_redis_value::<String>(parts.get(1)?)
                .ok()?
                .parse()
                .ok()?;
            Some((ip, port))
        })
        .collect()
}

/// Whether a master's connected replicas and the sentinels' monitored ones can be the same
/// group: either side empty (a failover under way, a replica re-attaching) or one in common.
fn replica_sets_agree(connected: &[(String, u16)], monitored: &[(String, u16)]) -> bool {
    connected.is_empty() || monitored.is_empty() || connected.iter().any(|r| monitored.contains(r))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_master_whose_replicas_are_all_strangers_to_the_sentinels_is_not_followed() {
        let r = |p: u16| ("127.0.0.1".to_owned(), p);
        assert!(replica_sets_agree(&[r(7001)], &[r(7001), r(7002)]));
        assert!(replica_sets_agree(&[], &[r(7001)]));
        assert!(replica_sets_agree(&[r(7001)], &[]));
        assert!(!replica_sets_agree(&[r(7101)], &[r(7001)]));
        let role = vec![
            redis::Value::BulkString(b"master".to_vec()),
            redis::Value::Int(10),
            redis::Value::Array(vec![redis::Value::Array(vec![
                redis::Value::BulkString(b"127.0.0.1".to_vec()),
                redis::Value::BulkString(b"7001".to_vec()),
                redis::Value::BulkString(b"10".to_vec()),
            ])]),
        ];
        assert_eq!(role_replicas(&role), vec![r(7001)]);
    }

    #[test]
    fn a_full_url_names_sentinels_master_db_password_and_ack_wait() {
        let url = SentinelUrl::parse(
            "redis+sentinel://:p%40ss@s1:26379,s2,10.0.0.3:26380/mymaster?db=2&replica_ack_ms=250",
        )
        .unwrap();
        assert_eq!(
            url.sentinels,
            vec![
                ("s1".to_owned(), 26379),
                ("s2".to_owned(), 26379),
                ("10.0.0.3".to_owned(), 26380)
            ]
        );
        assert_eq!(url.master, "mymaster");
        assert_eq!(url.db, 2);
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!(url.replica_ack, Duration::from_millis(250));
        assert!(!format!("{url:?}").contains("p@ss"));
    }

    #[test]
    fn defaults_are_db_zero_and_a_half_second_ack_wait() {
        let url = SentinelUrl::parse("redis+sentinel://s1:26379/m").unwrap();
        assert_eq!((url.db, url.replica_ack), (0, DEFAULT_REPLICA_ACK));
        assert_eq!(url.password, None);
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_a_password() {
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel://:secret@/m",
            "redis+sentinel://:secret@s1:notaport/m",
            "redis+sentinel://s1/m/extra",
            "redis+sentinel://s1/m?replica_ack_ms=soon",
            "redis+sentinel://s1/m?timeout=1",
        ] {
            let err = SentinelUrl::parse(bad).err().unwrap().to_string();
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
