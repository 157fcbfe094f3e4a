//! Understanding per utterance over the evaluation set, and one full conversation turn in
//! process (engine + session + store), on the embedded store. `cargo bench --bench dialog`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use kaitong::catalog::Catalog;
use kaitong::dialog::understand::Matcher;
use kaitong::dialog::understand::Tuning;
use kaitong::domain::{ChannelKind, Content, Conversation, Inbound, UserId};

fn eval_texts() -> Vec<String> {
    include_str!("../tests/fixtures/understanding_eval.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect()
}

fn understanding(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let catalog = Catalog::load(&dir).unwrap();
    let matcher = Matcher::new(&catalog, Tuning::load(&dir).unwrap());
    let texts = eval_texts();
    let mut i = 0;
    c.bench_function("understand_one_utterance_eval_set", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            let ranked = matcher.rank(black_box(&texts[i]));
            black_box(matcher.verdict(&ranked))
        })
    });
}

/// The hybrid with the in-process table: words, then (when they are not clear) the message's
/// vector against every example and passage. Paraphrases, so meaning is consulted.
fn understanding_by_meaning(c: &mut Criterion) {
    use kaitong::dialog::meaning::Space;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let catalog = Catalog::load(&dir).unwrap();
    let matcher = Matcher::new(&catalog, Tuning::load(&dir).unwrap());
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let encoder = kaitong::startup::static_encoder(&settings).unwrap();
    let space = Space::encode(&catalog, encoder.as_ref());
    let texts: Vec<String> = include_str!("../tests/fixtures/paraphrase_eval.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    let mut i = 0;
    c.bench_function("understand_by_meaning_default_table_paraphrase", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            let text = black_box(&texts[i]);
            let vector = encoder.encode_message(text);
            black_box(matcher.understand_with(text, Some((&space, vector.as_slice()))))
        })
    });
}

fn turn(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    settings.dialogs.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let store: Arc<dyn kaitong::store::Store> =
        Arc::new(kaitong::store::EmbeddedStore::open(dir.path().join("k.db")).unwrap());
    let parts = runtime
        .block_on(async { kaitong::startup::Parts::build(&settings, store) })
        .unwrap();
    let bot = parts.bot;
    let script = ["帮我给 acct_1 开一下电子发票", "客户需要开电子发票", "取消"];
    let mut n = 0usize;
    c.bench_function("one_turn_in_process_embedded", |b| {
        b.iter(|| {
            n += 1;
            let message = Inbound {
                channel: ChannelKind::App,
                sender: UserId::parse(&format!("bench{}", n % 500)).unwrap(),
                conversation: Conversation::Direct,
                content: Content::Text(script[(n / 500) % 3].to_owned()),
            };
            runtime.block_on(bot.respond(message))
        })
    });
}

criterion_group!(benches, understanding, understanding_by_meaning, turn);
criterion_main!(benches);
