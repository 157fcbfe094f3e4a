//! The production binary `kaitong`: parses the command line and hands over to a command in
//! [`cli`]. Only what an operator runs is here (serve, healthcheck, catalog, store); the
//! developer's tools are the `kaitong-dev` binary (`dev/`), so none of their code ships.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use cli::catalog::CatalogCommand;
use cli::store::StoreCommand;

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

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        kaitong::startup::exit_with_error("kaitong", e.as_ref());
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = kaitong::startup::settings_or_exit("kaitong", cli.config.as_deref());
    if matches!(cli.command, Command::Serve)
        && let Err(e) = settings.refuse_demo_secrets_in_public()
    {
        eprintln!("kaitong: {e}");
        std::process::exit(2);
    }
    match cli.command {
        Command::Serve => cli::serve::run(settings).await,
        Command::Healthcheck { url } => cli::healthcheck::run(&settings, url).await,
        Command::Catalog { command } => cli::catalog::run(&settings, command),
        Command::Store { command } => cli::store::run(&settings, command).await,
    }
}
