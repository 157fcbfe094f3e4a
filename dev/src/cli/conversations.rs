//! `kaitong-dev conversations`: plays labelled conversations through the bot and judges what
//! ends up in the ledger.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use kaitong::config::Settings;

#[derive(Args)]
pub struct ConversationsArgs {
    pub file: PathBuf,
    /// Only this half of the set (dev or test).
    #[arg(long)]
    pub split: Option<String>,
    /// Only these conversation ids (comma-separated).
    #[arg(long)]
    pub only: Option<String>,
    /// Print each failed conversation's transcript.
    #[arg(long)]
    pub transcripts: bool,
}

pub async fn run(settings: &Settings, args: ConversationsArgs) -> anyhow::Result<()> {
    conversations(
        settings,
        &args.file,
        args.split,
        args.only,
        args.transcripts,
    )
    .await
}

async fn conversations(
    settings: &Settings,
    file: &std::path::Path,
    split: Option<String>,
    only: Option<String>,
    transcripts: bool,
) -> anyhow::Result<()> {
    use kaitong_dev::conversations::{Rig, parse, render};
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
