//! `kaitong-dev chat`: talk to the bot from the terminal, as WeCom would (encrypted callbacks).

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};

use kaitong::config::Settings;
use kaitong::domain::ChannelKind;
use kaitong::startup::Application;
use kaitong_dev::chat::{ChatClient, ChatIdentity, converse};
use kaitong_dev::simulator::{SimulatedApp, SimulatorHandle, WecomSimulator};

#[derive(Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    App,
    Aibot,
}

#[derive(Args)]
pub struct ChatArgs {
    /// URL of a running bot, e.g. http://127.0.0.1:8080; without it a bot is started in-process.
    #[arg(long)]
    pub url: Option<String>,
    /// Inbound channel to speak through.
    #[arg(long, value_enum, default_value = "app")]
    pub channel: ChannelArg,
    /// The WeCom UserID you speak as.
    #[arg(long, default_value = "zhangsan")]
    pub user: String,
    /// Speak in this group chat (AI bot channel only).
    #[arg(long)]
    pub group: Option<String>,
    /// With --url: run the WeCom API simulator on this address (e.g. 127.0.0.1:8090) and show
    /// what the bot pushes to it (cards, notices, the 16:00 cards, the 17:30 push); start
    /// `kaitong serve` with KAITONG_WECOM__API_BASE=http://ADDR/cgi-bin.
    #[arg(long, value_name = "ADDR", requires = "url")]
    pub simulator: Option<std::net::SocketAddr>,
}

pub async fn run(settings: Settings, args: ChatArgs) -> anyhow::Result<()> {
    let channel = match (args.channel, &args.group) {
        (_, Some(_)) | (ChannelArg::Aibot, None) => ChannelKind::AiBot,
        (ChannelArg::App, None) => ChannelKind::App,
    };
    let identity = ChatIdentity {
        channel,
        user: args.user,
        group: args.group,
    };
    chat(settings, args.url, args.simulator, identity).await
}

/// The WeCom API simulator with the configured app, on `addr`, without the per-member limit.
pub(crate) async fn start_simulator(
    settings: &Settings,
    addr: std::net::SocketAddr,
) -> anyhow::Result<SimulatorHandle> {
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
