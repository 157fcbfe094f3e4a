//! `kaitong-dev load`: drives a running bot with encrypted callbacks; `kaitong-dev
//! echo-baseline`: the minimal server it is compared against.

use anyhow::Context;
use clap::Args;

use kaitong::config::Settings;
use kaitong::startup::shutdown_signal;
use kaitong::wecom::MsgCrypt;
use kaitong_dev::load::LoadPlan;

#[derive(Args)]
pub struct LoadArgs {
    /// The bot, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Distinct people; default requests / 10 so no one hits the per-person limit.
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open-loop rate (requests per second) instead of as fast as possible.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Server process id, to report its peak RSS.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Send these messages instead of the script, each as a new request from a person of its
    /// own: a file of lines, or JSON lines with a "text" field (tests/fixtures/*_eval*.jsonl).
    #[arg(long)]
    pub messages: Option<std::path::PathBuf>,
    /// The server's /metrics (http://<server.admin_listen>/metrics): reports the embedding
    /// fallbacks, calls and cache hits during the run.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Run the WeCom API simulator on this address for the run (start `kaitong serve` with
    /// KAITONG_WECOM__API_BASE=http://ADDR/cgi-bin), so the cards a reply sends go somewhere.
    #[arg(long, value_name = "ADDR")]
    pub simulator: Option<std::net::SocketAddr>,
}

#[derive(Args)]
pub struct EchoBaselineArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
}

pub async fn run(settings: &Settings, args: LoadArgs) -> anyhow::Result<()> {
    let messages = match &args.messages {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let messages = kaitong_dev::load::read_messages(&text);
            anyhow::ensure!(!messages.is_empty(), "{} has no messages", path.display());
            Some(messages)
        }
        None => None,
    };
    let plan = LoadPlan {
        url: args.url,
        requests: args.requests,
        users: args.users.unwrap_or(args.requests / 10),
        concurrency: args.concurrency,
        rate: args.rate,
        pid: args.pid,
        messages,
        metrics_url: args.metrics,
    };
    // Keeps the simulator running for the whole load run.
    let _simulator = match args.simulator {
        Some(addr) => Some(super::chat::start_simulator(settings, addr).await?),
        None => None,
    };
    let report = kaitong_dev::load::run(settings, plan).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn echo_baseline(settings: &Settings, args: EchoBaselineArgs) -> anyhow::Result<()> {
    let listen = args.listen;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("echo baseline on {listen}");
    axum::serve(
        listener,
        kaitong_dev::load::echo_baseline(MsgCrypt::for_app(&settings.wecom)?),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}
