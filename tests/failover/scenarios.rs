//! High availability: two kaitong instances on a Sentinel-managed Redis (one master, one
//! replica, three sentinels, all real processes on loopback ports) keep every half-filled form
//! and every filed request through the master's process being killed and, once that machine
//! is back as a replica, a planned failover (`SENTINEL FAILOVER`) back to it, in the middle of
//! conversations; nothing is filed twice and the 17:30 push runs once.
//!
//! `redis-server` and `redis-sentinel` must be installed: a missing one fails the test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kaitong::domain::{ChannelKind, RequestId, UserId};
use kaitong::requests::{BatchDay, RequestFilter};
use kaitong::startup::{Application, Parts};

use crate::harness::{self, TestApp, free_port};

const MASTER_NAME: &str = "mymaster";
const BUSY: &str = "系统繁忙,请稍后再试";
const FILING_FAILED: &str = "提交失败了";
/// The whole scenario must finish within this (a hung failover fails, it does not stall CI).
/// It guards against a hang, it times nothing: on two busy cores the three scenarios of this
/// binary start their debug-built instances side by side (each loads the catalog and the word
/// table), and 2 of 34 runs spent 40 s there before the first kill and crossed a 60 s limit.
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

fn installed(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One process of the cluster; killed when dropped, so none outlives a failing test.
struct Proc(Option<Child>);

impl Proc {
    fn spawn(program: &str, args: &[String]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} could not be started: {e}"));
        Self(Some(child))
    }

    /// SIGSTOP / SIGCONT: the process hangs (a frozen machine), its connections stay open.
    fn signal(&self, signal: &str) {
        if let Some(child) = &self.0 {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal}");
        }
    }

    /// SIGKILL: the machine is gone, nothing is flushed or handed over.
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ROLE` of the server at `replica`: a replica of `master` with its link up.
async fn replica_in_sync(replica: u16, master: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{replica}/")) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let role: Vec<redis::Value> = redis::cmd("ROLE")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let text = |v: Option<&redis::Value>| {
        v.and_then(|v| redis::from_redis_value::<String>(v).ok())
            .unwrap_or_default()
    };
    text(role.first()) == "slave"
        && text(role.get(2)) == master.to_string()
        && text(role.get(3)) == "connected"
}

/// One master, one replica and three sentinels on free loopback ports.
struct Cluster {
    servers: BTreeMap<u16, Proc>,
    /// A "sentinel" that takes connections and never answers, listed first in the URL: a
    /// sentinel on a machine that hangs must not hold up the lookups through the others.
    hung_sentinel: std::net::TcpListener,
    sentinels: Vec<Proc>,
    sentinel_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

fn server_args(port: u16, dir: &Path, replica_of: Option<u16>) -> Vec<String> {
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--bind".to_owned(),
        "127.0.0.1".to_owned(),
        "--save".to_owned(),
        String::new(),
        "--appendonly".to_owned(),
        "no".to_owned(),
        "--dir".to_owned(),
        dir.display().to_string(),
        "--dbfilename".to_owned(),
        format!("dump-{port}.rdb"),
        // Both must be picked again by the sentinels: never rule a replica out by priority.
        "--replica-priority".to_owned(),
        "100".to_owned(),
    ];
    if let Some(master) = replica_of {
        args.extend([
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master.to_string(),
        ]);
    }
    args
}

impl Cluster {
    async fn start() -> Self {
        assert!(
            installed("redis-server"),
            "redis-server is not installed: the failover test needs a real server (apt-get install redis-server)"
        );
        assert!(
            installed("redis-sentinel"),
            "redis-sentinel is not installed: the failover test needs real sentinels \
             (apt-get install redis-sentinel)"
        );
        let dir = tempfile::tempdir().unwrap();
        let master = free_port();
        let replica = free_port();
        let mut servers = BTreeMap::new();
        servers.insert(
            master,
            Proc::spawn("redis-server", &server_args(master, dir.path(), None)),
        );
        servers.insert(
            replica,
            Proc::spawn(
                "redis-server",
                &server_args(replica, dir.path(), Some(master)),
            ),
        );
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut sentinels = Vec::new();
        for port in &sentinel_ports {
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            // Small timings keep the test short: a master is "down" after 1 s of silence.
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 4000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir = dir.path().display()
                ),
            )
            .unwrap();
            sentinels.push(Proc::spawn("redis-sentinel", &[conf.display().to_string()]));
        }
        let cluster = Self {
            hung_sentinel: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            servers,
            sentinels,
            sentinel_ports,
            dir,
        };
        cluster.wait_until_ready(master, replica).await;
        cluster
    }

    fn url(&self) -> String {
        let hung = self.hung_sentinel.local_addr().unwrap().port();
        let hosts: Vec<String> = std::iter::once(&hung)
            .chain(&self.sentinel_ports)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// A connection to one sentinel; `None` while it is not listening yet.
    async fn sentinel(&self, index: usize) -> Option<redis::aio::MultiplexedConnection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.sentinel_ports[index]))
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()
    }

    /// The master's port as each sentinel sees it (`None` for one that does not answer).
    async fn masters_seen(&self) -> Vec<Option<u16>> {
        let mut seen = Vec::new();
        for index in 0..self.sentinel_ports.len() {
            let Ok(client) =
                redis::Client::open(format!("redis://127.0.0.1:{}/", self.sentinel_ports[index]))
            else {
                seen.push(None);
                continue;
            };
            let answer: Option<(String, u16)> =
                match client.get_multiplexed_async_connection().await {
                    Ok(mut conn) => redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(MASTER_NAME)
                        .query_async(&mut conn)
                        .await
                        .ok(),
                    Err(_) => None,
                };
            seen.push(answer.map(|(_, port)| port));
        }
        seen
    }

    /// Until `replica` is in sync with `master` (asked directly: the sentinels refresh their
    /// view of a replica only every 10 s) and every sentinel names `master`, lists `replica`
    /// as up and knows the two other sentinels (a failover needs the quorum and a replica).
    async fn wait_until_ready(&self, master: u16, replica: u16) {
        // Sentinels learn of a replica from INFO every 10 s; on a loaded machine (two cores
        // compiling beside the test) that took over 20 s once. A hang guard, not a timing claim.
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let mut ready = replica_in_sync(replica, master).await;
            for index in 0..self.sentinel_ports.len() {
                let Some(mut conn) = self.sentinel(index).await else {
                    ready = false;
                    continue;
                };
                let replicas: Vec<std::collections::HashMap<String, String>> =
                    redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(MASTER_NAME)
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                let others: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                    .arg("SENTINELS")
                    .arg(MASTER_NAME)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                let replica_up = replicas.iter().any(|r| {
                    r.get("port") == Some(&replica.to_string())
                        && r.get("flags").is_some_and(|f| f == "slave")
                });
                ready &= replica_up && others.len() == self.sentinel_ports.len() - 1;
            }
            ready &= self.masters_seen().await.iter().all(|m| *m == Some(master));
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not see the master, the replica and each other in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Until every sentinel names the same master other than `old`; returns its port.
    async fn wait_for_new_master(&self, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.masters_seen().await;
            if let Some(Some(first)) = seen.first()
                && *first != old
                && seen.iter().all(|m| *m == Some(*first))
            {
                return *first;
            }
            assert!(
                Instant::now() < deadline,
                "no failover away from {old}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn current_master(&self) -> u16 {
        self.masters_seen().await[0].unwrap()
    }

    fn kill(&mut self, port: u16) {
        self.servers.get_mut(&port).unwrap().kill();
    }

    /// The lost machine is back and its Redis rejoins as a replica of the current master (as
    /// when its configuration names the new master; left alone the sentinels would demote it
    /// themselves, some 10–20 s later).
    fn rejoin_as_replica(&mut self, port: u16, master: u16) {
        self.servers.insert(
            port,
            Proc::spawn(
                "redis-server",
                &server_args(port, self.dir.path(), Some(master)),
            ),
        );
    }

    /// Asks a sentinel for a planned failover, again while it answers that no replica is ready
    /// yet (its view of a rejoined replica lags by up to a few seconds).
    async fn planned_failover(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer: redis::RedisResult<()> = match self.sentinel(0).await {
                Some(mut conn) => {
                    redis::cmd("SENTINEL")
                        .arg("FAILOVER")
                        .arg(MASTER_NAME)
                        .query_async(&mut conn)
                        .await
                }
                None => Ok(()),
            };
            match answer {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < deadline, "SENTINEL FAILOVER refused: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A person filling forms through whichever instance takes each message (as behind a load
/// balancer), sending again whatever the bot answered busy to, as the busy text asks.
struct Person {
    user: String,
    apps: Arc<Vec<TestApp>>,
    transcript: Vec<String>,
    /// How many answers were the defined "try again" ones (busy, filing failed).
    deferred: usize,
}

impl Person {
    /// The last exchanges, for failure messages.
    fn recent(&self) -> String {
        let from = self.transcript.len().saturating_sub(8);
        self.transcript[from..].join("\n")
    }

    /// Sends `text` until the answer contains one of `expect` (the first is the usual one).
    async fn say(&mut self, text: &str, expect: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let app = &self.apps[rand::random::<usize>() % self.apps.len()];
            let reply = app.say_raw(&self.user, text).await.unwrap_or_default();
            self.transcript.push(format!("> {text}\n< {reply}"));
            if expect.iter().any(|e| reply.contains(e)) {
                return reply;
            }
            assert!(
                reply == BUSY || reply.contains(FILING_FAILED),
                "{}: unexpected answer while waiting for {expect:?}:\n{}",
                self.user,
                self.recent()
            );
            assert!(
                Instant::now() < deadline,
                "{}: still no {expect:?}:\n{}",
                self.user,
                self.recent()
            );
            self.deferred += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Starts a form for `account`: the bot asks for the reason.
    async fn start_form(&mut self, account: &str) {
        self.say(&format!("给 {account} 开电子发票"), &["#7 电子发票"])
            .await;
    }

    /// Answers the last question: the summary to check names the account. An answer that was
    /// saved although the bot could not confirm it (the store failed over under it, so the
    /// person was told busy) meets the summary on the next try: the bot asks for 确认, which is
    /// also right.
    async fn finish_form(&mut self, account: &str) {
        let summary = self
            .say("客户需要开电子发票", &["请核对", "请回复「确认」提交"])
            .await;
        assert!(
            summary.contains(account) || !summary.contains("请核对"),
            "{}: the half-filled form lost its account:\n{}",
            self.user,
            self.recent()
        );
    }

    /// 确认: the receipt's request id.
    async fn confirm(&mut self) -> RequestId {
        let receipt = self.say("确认", &["已提交"]).await;
        receipt
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .find_map(RequestId::parse)
            .unwrap_or_else(|| panic!("no request id in {receipt}"))
    }
}

async fn instance(settings: &kaitong::config::Settings) -> TestApp {
    let app = Application::build(settings).await.unwrap();
    let store = app.store();
    TestApp::serve(app, settings.clone(), store, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_mid_conversation_lose_no_form_or_request_file_nothing_twice_and_push_once() {
    tokio::time::timeout(SCENARIO_LIMIT, scenario())
        .await
        .expect("the failover scenario took longer than its limit");
}

async fn scenario() {
    // The store's failover lines (retries, reconnections, busy answers) show with --nocapture.
    harness::capture_logs();
    let started = Instant::now();
    let mut cluster = Cluster::start().await;
    eprintln!("cluster ready after {:?}", started.elapsed());
    let first_master = cluster.current_master().await;

    let mut settings = harness::test_settings();
    let sim = harness::wecom_simulator(&settings).await;
    sim.set_per_user_minute_limit(None);
    settings.wecom.api_base = sim.base_url();
    settings.store.url = cluster.url();
    settings.store.redis_prefix = harness::unique_prefix();
    // The push is driven below at the batch's own 17:30, not by the wall clock.
    settings.notify.enabled = false;
    settings.server.per_user_per_minute = 10_000;
    let apps = Arc::new(vec![instance(&settings).await, instance(&settings).await]);
    // The instances' own parts over their (sealed) stores, for the ledger and the push.
    let parts: Vec<Parts> = apps
        .iter()
        .map(|app| Parts::build(&settings, Arc::clone(&app.store)).unwrap())
        .collect();

    // Before any failover: one request filed, one form half-filled.
    let mut early = Person {
        user: "early".into(),
        apps: Arc::clone(&apps),
        transcript: Vec::new(),
        deferred: 0,
    };
    early.start_form("acct_early").await;
    early.finish_form("acct_early").await;
    let early_id = early.confirm().await;
    let mut waiting = Person {
        user: "waiting".into(),
        apps: Arc::clone(&apps),
        transcript: Vec::new(),
        deferred: 0,
    };
    waiting.start_form("acct_waiting").await;

    // People keep filing while the store fails over twice under them.
    let failovers_done = Arc::new(AtomicBool::new(false));
    let mut people = Vec::new();
    for n in 0..4 {
        let done = Arc::clone(&failovers_done);
        let apps = Arc::clone(&apps);
        people.push(tokio::spawn(async move {
            let mut person = Person {
                user: format!("busy{n}"),
                apps,
                transcript: Vec::new(),
                deferred: 0,
            };
            let mut filed: Vec<(String, RequestId)> = Vec::new();
            for k in 0.. {
                if done.load(Ordering::SeqCst) && k >= 2 {
                    break;
                }
                let account = format!("acct_busy{n}_{k}");
                person.start_form(&account).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                person.finish_form(&account).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                filed.push((account, person.confirm().await));
            }
            (person.user, filed, person.deferred)
        }));
    }

    // The master's machine is lost: its process killed outright. The sentinels notice after
    // `down-after-milliseconds`, elect a leader and promote the replica.
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(first_master);
    let second_master = cluster.wait_for_new_master(first_master).await;
    eprintln!("failover after the kill done after {:?}", started.elapsed());
    // People go on filing on the promoted master alone for a while.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // The machine is back as a replica; then a planned failover moves the master back to it
    // while the old one keeps answering until the sentinels demote it.
    cluster.rejoin_as_replica(first_master, second_master);
    cluster.wait_until_ready(second_master, first_master).await;
    eprintln!(
        "lost machine back in sync as a replica after {:?}",
        started.elapsed()
    );
    cluster.planned_failover().await;
    let third_master = cluster.wait_for_new_master(second_master).await;
    assert_eq!(third_master, first_master);
    eprintln!("planned failover done after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(600)).await;
    failovers_done.store(true, Ordering::SeqCst);

    let mut acknowledged: Vec<(String, String, RequestId)> =
        vec![("early".into(), "acct_early".into(), early_id)];
    let mut deferred = 0;
    for person in people {
        let (user, filed, told_to_retry) = person.await.unwrap();
        deferred += told_to_retry;
        acknowledged.extend(
            filed
                .into_iter()
                .map(|(account, id)| (user.clone(), account, id)),
        );
    }
    // The form half-filled before both failovers is still there.
    waiting.finish_form("acct_waiting").await;
    let waiting_id = waiting.confirm().await;
    acknowledged.push(("waiting".into(), "acct_waiting".into(), waiting_id));

    eprintln!(
        "{} requests acknowledged by {:?}; {deferred} answers were busy or filing-failed",
        acknowledged.len(),
        started.elapsed()
    );
    // The failovers did land in the middle of conversations: some turns had no master.
    assert!(deferred > 0, "no conversation met a failover");
    // Every acknowledged request is in the ledger, under its own id, once per form.
    let ledger = &parts[0].ledger;
    let ids: BTreeSet<&RequestId> = acknowledged.iter().map(|(_, _, id)| id).collect();
    assert_eq!(
        ids.len(),
        acknowledged.len(),
        "two forms share an id: {acknowledged:?}"
    );
    let mut days = BTreeSet::new();
    for (user, account, id) in &acknowledged {
        let request = ledger
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{user}'s acknowledged {id} was lost"));
        assert!(
            request
                .form
                .summary
                .iter()
                .any(|(_, value)| value == account),
            "{id} does not carry {account}: {:?}",
            request.form.summary
        );
        days.insert(request.batch);
    }
    let users: BTreeSet<&String> = acknowledged.iter().map(|(user, _, _)| user).collect();
    for user in users {
        let filed = ledger
            .list(&RequestFilter {
                requester: Some((ChannelKind::App, UserId::parse(user).unwrap())),
                ..RequestFilter::default()
            })
            .await
            .unwrap();
        let expected = acknowledged.iter().filter(|(u, _, _)| u == user).count();
        assert_eq!(
            filed.len(),
            expected,
            "{user}: filed {:?}, acknowledged {expected}",
            filed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()
        );
    }

    // The 17:30 push of each batch day runs once across both instances, on the master of the
    // planned failover while its predecessor is still being demoted.
    for day in days {
        push_once_across_instances(&parts, day).await;
    }
    let sent = sim.sent_messages();
    assert_eq!(
        sent.len(),
        acknowledged.len(),
        "one notice per request: {sent:?}"
    );
    for (user, _, id) in &acknowledged {
        let notices = sent
            .iter()
            .filter(|m| m.touser == vec![user.clone()] && m.content.contains(id.as_str()))
            .count();
        assert_eq!(notices, 1, "{user} heard of {id} {notices} times");
    }
}

async fn push_once_across_instances(parts: &[Parts], day: BatchDay) {
    let settings = harness::test_settings();
    let due = parts[0].schedule.done_at(day).unwrap();
    let pushes: Vec<_> = parts.iter().map(|p| p.background(&settings).push).collect();
    let (a, b) = tokio::join!(pushes[0].tick(due), pushes[1].tick(due));
    let runs = a.iter().chain(&b).filter(|d| **d == day).count();
    assert_eq!(runs, 1, "the push for {day} ran {runs} times");
    // A later tick on either instance finds it done.
    for push in &pushes {
        assert!(
            push.tick(due + chrono::Duration::minutes(1))
                .await
                .is_empty()
        );
    }
    // Each instance's outbox loop runs a pass per tick and meets a store still settling after
    // the planned failover (a write no replica confirms yet fails the pass); the next tick
    // tries again. Both instances tick until each has had one clean pass.
    let passes = parts.iter().map(|p| async move {
        let mut failed = 0;
        loop {
            match p.outbox.run_pass(&p.transports, due).await {
                Ok(_) => return failed,
                Err(e) => {
                    failed += 1;
                    assert!(failed < 40, "the outbox never had a clean pass: {e}");
                    eprintln!("outbox pass failed ({e}); next tick");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    });
    futures::future::join_all(passes).await;
}

/// The Sentinel backend keeps the store's contract, and a write it acknowledges is already on
/// the replica (`WAIT 1`): read there directly, right after. A write no replica confirms is
/// reported unavailable, not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_is_already_on_the_replica() {
    tokio::time::timeout(SCENARIO_LIMIT, async {
        let cluster = Cluster::start().await;
        let master = cluster.current_master().await;
        let replica = *cluster.servers.keys().find(|p| **p != master).unwrap();
        let prefix = harness::unique_prefix();
        let store = kaitong::store::open(&cluster.url(), &prefix).await.unwrap();
        assert!(store.describe().starts_with("redis+sentinel:"));
        let on_replica = redis::Client::open(format!("redis://127.0.0.1:{replica}/"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let replica_has = |key: String| {
            let mut conn = on_replica.clone();
            async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut conn)
                    .await
                    .unwrap()
            }
        };

        store.ping().await.unwrap();
        store.put("a", b"1", None).await.unwrap();
        assert_eq!(
            replica_has(format!("{prefix}a")).await.as_deref(),
            Some(&b"1"[..])
        );
        assert!(store.put_if_absent("b", b"2", None).await.unwrap());
        assert!(!store.put_if_absent("b", b"3", None).await.unwrap());
        assert_eq!(
            replica_has(format!("{prefix}b")).await.as_deref(),
            Some(&b"2"[..])
        );
        assert!(
            !store
                .compare_and_swap("b", Some(b"3"), b"4", None)
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap("b", Some(b"2"), b"4", None)
                .await
                .unwrap()
        );
        assert_eq!(
            replica_has(format!("{prefix}b")).await.as_deref(),
            Some(&b"4"[..])
        );
        assert_eq!(store.increment("n").await.unwrap(), 1);
        assert_eq!(store.increment("n").await.unwrap(), 2);
        assert_eq!(
            replica_has(format!("{prefix}n")).await.as_deref(),
            Some(&b"2"[..])
        );
        store
            .put("t", b"x", Some(Duration::from_millis(200)))
            .await
            .unwrap();
        let listed = store.list_prefix("", 10).await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["a", "b", "n", "t"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.get("t").await.unwrap(), None, "expired");
        assert!(store.delete("a").await.unwrap());
        assert!(!store.delete("a").await.unwrap());
        assert_eq!(replica_has(format!("{prefix}a")).await, None);

        // A replica that cannot confirm (its process frozen): the write is not acknowledged.
        cluster.servers[&replica].signal("STOP");
        let unconfirmed = store.put("c", b"5", None).await;
        cluster.servers[&replica].signal("CONT");
        assert!(
            matches!(unconfirmed, Err(kaitong::store::StoreError::Unavailable(_))),
            "{unconfirmed:?}"
        );
        // Once it is back, the same write is acknowledged, and it is there.
        store.put("c", b"5", None).await.unwrap();
        assert_eq!(
            replica_has(format!("{prefix}c")).await.as_deref(),
            Some(&b"5"[..])
        );
    })
    .await
    .expect("took longer than its limit");
}

/// Issue 23, probe 12: one lying sentinel split the data: a sentinel that names another live
/// master (under the same name) was followed when it answered first, so requests were filed on
/// two masters with the same numbers. Reproduce: a fourth sentinel monitoring a different
/// master as `mymaster`, listed with the honest three, which are frozen (SIGSTOP) so the liar
/// answers first; write through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_sentinel_is_not_followed_without_a_quorum() {
    tokio::time::timeout(SCENARIO_LIMIT, async {
        let cluster = Cluster::start().await;
        let real = cluster.current_master().await;
        // The liar: its own master, monitored under the same name.
        let other = free_port();
        let _other = Proc::spawn(
            "redis-server",
            &server_args(other, cluster.dir.path(), None),
        );
        let liar_port = free_port();
        let conf = cluster.dir.path().join("liar.conf");
        std::fs::write(
            &conf,
            format!(
                "port {liar_port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {other} 1\n",
                dir = cluster.dir.path().display()
            ),
        )
        .unwrap();
        let _liar = Proc::spawn("redis-sentinel", &[conf.display().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = async {
                let mut conn = redis::Client::open(format!("redis://127.0.0.1:{liar_port}/"))
                    .ok()?
                    .get_multiplexed_async_connection()
                    .await
                    .ok()?;
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(MASTER_NAME)
                    .query_async::<Vec<String>>(&mut conn)
                    .await
                    .ok()
            }
            .await;
            if answer.is_some_and(|a| a.get(1) == Some(&other.to_string())) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the lying sentinel did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let hosts: Vec<String> = std::iter::once(&liar_port)
            .chain(&cluster.sentinel_ports)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let url = format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","));
        let prefix = harness::unique_prefix();
        let on = |port: u16| async move {
            redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap()
        };
        let has = |port: u16, key: String| async move {
            let mut conn = on(port).await;
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut conn)
                .await
                .unwrap()
        };

        // The honest three frozen: only the liar answers. Nothing may be written on its master.
        for sentinel in &cluster.sentinels {
            sentinel.signal("STOP");
        }
        let store = kaitong::store::open(&url, &prefix).await.unwrap();
        let outcome = store.put("k", b"1", None).await;
        for sentinel in &cluster.sentinels {
            sentinel.signal("CONT");
        }
        assert!(
            !has(other, format!("{prefix}k")).await,
            "written on the liar's master ({outcome:?})"
        );
        assert!(
            matches!(outcome, Err(kaitong::store::StoreError::Unavailable(_))),
            "{outcome:?}"
        );
        // With the honest majority back, the real master is used.
        let store = kaitong::store::open(&url, &prefix).await.unwrap();
        store.put("k", b"2", None).await.unwrap();
        assert!(has(real, format!("{prefix}k")).await);
        assert!(!has(other, format!("{prefix}k")).await);
    })
    .await
    .expect("the lying-sentinel scenario finished in time");
}
