//! The production binary `kaitong`: parses the command line and hands over to a command in
//! [`cli`]. Only what an operator runs is here (serve, healthcheck, catalog, store); the
//! developer's tools are the `kaitong-dev` binary (`dev/`), so none of their code ships.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use kaitong::config::Settings;
use kaitong::startup::check_settings;

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

/// The loaded settings, for taking their secrets out of the one error line `main` prints.
static REDACT: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

#[tokio::main]
async fn main() {
    // Every failure is one line: operators read it in journald, where a multi-line chain is
    // split across entries.
    if let Err(e) = run().await {
        let line = kaitong::telemetry::one_line(e.as_ref());
        let line = match REDACT.get() {
            Some(settings) => settings.redact_secrets(&line),
            None => line,
        };
        eprintln!("kaitong: {line}");
        std::process::exit(1);
    }
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
        Command::Serve => cli::serve::run(settings).await,
        Command::Healthcheck { url } => cli::healthcheck::run(&settings, url).await,
        Command::Catalog { command } => cli::catalog::run(&settings, command),
        Command::Store { command } => cli::store::run(&settings, command).await,
    }
}
