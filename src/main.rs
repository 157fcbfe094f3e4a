//! The `kaitong` binary: parses the command line and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use kaitong::channel::ChannelKind;
use kaitong::chat::{ChatClient, ChatIdentity, converse};
use kaitong::config::Settings;
use kaitong::startup::{Application, shutdown_signal};

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
            let app = Application::build(&local)
                .await
                .context("could not start the in-process bot (is `kaitong serve` holding the store? then pass --url)")?;
            let url = format!("http://{}", app.local_addr());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let handle = tokio::spawn(app.run_until_stopped(async {
                let _ = rx.await;
            }));
            (url, Some((tx, handle)))
        }
    };
    let client = ChatClient::new(&settings, &base_url, identity)?;
    let result = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(converse(
            &client,
            std::io::stdin().lock(),
            std::io::stdout(),
        ))
    });
    if let Some((tx, handle)) = stop {
        let _ = tx.send(());
        let _ = handle.await;
    }
    result.context("chat ended with an error")
}
