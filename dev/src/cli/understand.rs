//! `kaitong-dev understand`: which service a text asks for, as JSON.

use clap::Args;

use kaitong::config::Settings;
use kaitong::dialog::understand::Matcher;

#[derive(Args)]
pub struct UnderstandArgs {
    /// The utterance; without it, one utterance per stdin line.
    pub text: Option<String>,
}

pub async fn run(
    settings: &Settings,
    UnderstandArgs { text }: UnderstandArgs,
) -> anyhow::Result<()> {
    use kaitong::dialog::meaning::Space;
    use kaitong::dialog::text::meaning_text;
    let catalog = super::load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, super::load_tuning(settings)?);
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
        let report = kaitong_dev::understand_report::report(&catalog, &matcher, line, meaning);
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
