//! `kaitong-dev eval`: scores understanding against a labelled JSONL file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use kaitong::catalog::Catalog;
use kaitong::config::Settings;
use kaitong::dialog::understand::Matcher;
use kaitong_dev::eval::Labelled;

#[derive(Args)]
pub struct EvalArgs {
    pub file: PathBuf,
    /// Print every confusion, not just the top 20.
    #[arg(long)]
    pub all: bool,
    /// Also try a grid of `[meaning]` thresholds per space and print the best ones that
    /// keep at least this share of out-of-scope lines unmatched (e.g. 0.8): a tuning aid.
    #[arg(long)]
    pub sweep: Option<f64>,
}

pub async fn run(settings: &Settings, args: EvalArgs) -> anyhow::Result<()> {
    eval(settings, &args.file, args.all, args.sweep).await
}

async fn eval(
    settings: &Settings,
    file: &std::path::Path,
    all: bool,
    sweep: Option<f64>,
) -> anyhow::Result<()> {
    let catalog = super::load_catalog(settings)?;
    let matcher = Matcher::new(&catalog, super::load_tuning(settings)?);
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let set = kaitong_dev::eval::parse(&text)?;
    if set.iter().any(|l| l.slots.is_some()) {
        print_slots(&catalog, &matcher, &set, all);
    }
    let (rows, spaces) = understand_all(settings, &catalog, &matcher, &set).await?;
    print_scores(&rows);
    if let Some(min_none) = sweep {
        for (space, queries) in &spaces {
            sweep_thresholds(&catalog, &matcher, space, queries, &set, min_none);
        }
    }
    print_misses(&catalog, &rows, all);
    Ok(())
}

/// Each way of understanding with its report: lexical, then by meaning in every space
/// available.
type Rows = Vec<(String, kaitong_dev::eval::EvalReport)>;
/// The meaning spaces tried, each with the lines' vectors in it.
type Spaces = Vec<(kaitong::dialog::meaning::Space, Vec<kaitong::embed::Vector>)>;

/// How the set's slots were read: exact, and fully answered; with `all`, every miss.
fn print_slots(catalog: &Catalog, matcher: &Matcher, set: &[Labelled], all: bool) {
    let slots = kaitong_dev::eval::evaluate_slots(catalog, &matcher.tuning().slots, set);
    println!(
        "slots exact {:.1}% ({}/{})  fully answered (noticed + unsure + extra accounts) {:.1}% ({}/{})",
        slots.exact_ratio * 100.0,
        slots.exact,
        slots.lines,
        slots.fully_answered_ratio * 100.0,
        slots.fully_answered,
        slots.lines
    );
    if all {
        for (text, expected, got) in &slots.misses {
            println!("  miss: {text}\n    expected {expected}\n    got      {got}");
        }
    }
}

/// Evaluates the set lexically, with the built-in table, and with the embedding server when
/// each is configured.
async fn understand_all(
    settings: &Settings,
    catalog: &Catalog,
    matcher: &Matcher,
    set: &[Labelled],
) -> anyhow::Result<(Rows, Spaces)> {
    use kaitong::dialog::meaning::Space;
    use kaitong::dialog::text::meaning_text;
    use kaitong_dev::eval::{evaluate, evaluate_meaning};
    let mut rows: Rows = vec![("lexical".to_owned(), evaluate(matcher, set))];
    let mut spaces: Spaces = Vec::new();
    if let Some(encoder) = kaitong::startup::static_encoder(settings) {
        let space = Space::encode(catalog, encoder.as_ref());
        let queries: Vec<_> = set
            .iter()
            .map(|l| encoder.encode_message(&l.text))
            .collect();
        rows.push((
            format!("default ({})", space.model),
            evaluate_meaning(matcher, &space, &queries, set),
        ));
        spaces.push((space, queries));
    }
    if let Some(server) = kaitong::embed::ServerEmbedder::from_settings(&settings.embeddings)? {
        // Vectors are cached in a store file of their own, so a second run costs nothing and the
        // bot's store (perhaps held by `serve`) is never touched.
        let store = kaitong::store::open("embedded://data/eval-embed-cache.db", "")
            .await
            .ok();
        let store = store.as_deref();
        let space = Space::from_server(catalog, &server, store).await?;
        let lines: Vec<String> = set.iter().map(|l| meaning_text(&l.text)).collect();
        let queries =
            kaitong::embed::embed_cached(&server, store, &lines, kaitong::embed::TextKind::Query)
                .await?;
        rows.push((
            format!("server ({})", server.model_id()),
            evaluate_meaning(matcher, &space, &queries, set),
        ));
        spaces.push((space, queries));
    }
    Ok((rows, spaces))
}

/// The set's counts, one line of scores per way of understanding, its speed, and the acts.
fn print_scores(rows: &Rows) {
    let first = &rows[0].1;
    println!(
        "lines {}  requests {}  out-of-scope {}  acts {}",
        first.lines, first.in_scope, first.out_of_scope, first.acts
    );
    println!(
        "{:<44} {:>7} {:>8} {:>9} {:>9} {:>7} {:>6} {:>6}",
        "understanding", "top-1", "offered", "taken ok", "taken BAD", "none", "close", "missed"
    );
    for (name, r) in rows {
        println!(
            "{:<44} {:>6.1}% {:>7.1}% {:>8.1}% {:>8.1}% {:>6.1}% {:>6} {:>6}",
            name,
            r.top1_accuracy * 100.0,
            r.offered_accuracy * 100.0,
            r.taken_right_ratio * 100.0,
            r.taken_wrong_ratio * 100.0,
            r.none_accuracy * 100.0,
            r.ambiguous,
            r.missed
        );
    }
    for (name, r) in rows.iter().skip(1) {
        println!("median understanding {:.0} µs ({name})", r.median_us);
    }
    if first.acts > 0 {
        println!(
            "acts read as meant {:.1}% ({}/{})",
            first.act_accuracy * 100.0,
            first.act_correct,
            first.acts
        );
        println!(
            "requests read as acts {} of {}",
            first.requests_read_as_acts,
            first.lines - first.acts - first.out_of_scope
        );
        for (text, act) in &first.act_misses {
            println!("    act {act} not read: {text}");
        }
    }
}

/// With `all`, the lines the last way got wrong; then each way's confusions (the top 20
/// unless `all`).
fn print_misses(catalog: &Catalog, rows: &Rows, all: bool) {
    let name = |id: u16| {
        catalog
            .service(kaitong::domain::ServiceId(id))
            .map_or_else(|| "-".to_owned(), |s| s.name.clone())
    };
    let shown = if all { usize::MAX } else { 20 };
    if all && let Some((label, report)) = rows.last() {
        println!("lines not taken right by {label} (expected, what was done):");
        for (text, expected, got) in &report.misses {
            println!("  #{expected:<3} {got:<40} {text}");
        }
    }
    for (label, report) in rows {
        println!("confusions of {label} (expected → got, 0 = nothing):");
        for (expected, got, n) in report.confusions.iter().take(shown) {
            println!(
                "  {n:>3} × #{expected} {} → #{got} {}",
                name(*expected),
                name(*got)
            );
        }
    }
}

/// Tries a grid of accept / margin / offer thresholds for one space and prints the ten with
/// the best top-1 among those that keep `min_none` of out-of-scope lines unmatched.
fn sweep_thresholds(
    catalog: &Catalog,
    matcher: &Matcher,
    space: &kaitong::dialog::meaning::Space,
    queries: &[kaitong::embed::Vector],
    set: &[kaitong_dev::eval::Labelled],
    min_none: f64,
) {
    use kaitong::dialog::meaning::SpaceKind;
    use kaitong::dialog::understand::SpaceThresholds;
    let mut found: Vec<(f64, f64, f64, SpaceThresholds)> = Vec::new();
    let mut trial = Matcher::new(catalog, matcher.tuning().clone());
    for a in 0..40u8 {
        let accept = 0.5 + f32::from(a) * 0.02;
        for margin in [0.0, 0.01, 0.02, 0.03, 0.05, 0.08] {
            for below in [0.0, 0.03, 0.06, 0.1, 0.15] {
                let thresholds = SpaceThresholds {
                    accept,
                    margin,
                    offer: accept - below,
                };
                let mut tuning = matcher.tuning().clone();
                let Some(meaning) = tuning.meaning.as_mut() else {
                    return;
                };
                match space.kind {
                    SpaceKind::Static => meaning.static_space = thresholds,
                    SpaceKind::Server => meaning.server_space = thresholds,
                }
                trial.set_tuning(tuning);
                let r = kaitong_dev::eval::evaluate_meaning(&trial, space, queries, set);
                if r.none_accuracy >= min_none {
                    found.push((
                        r.top1_accuracy,
                        r.offered_accuracy,
                        r.none_accuracy,
                        thresholds,
                    ));
                }
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    println!("best thresholds for {} (none ≥ {min_none}):", space.model);
    for (top1, offered, none, t) in found.iter().take(10) {
        println!(
            "  accept {:.2} margin {:.2} offer {:.2}: top-1 {:.1}% offered {:.1}% none {:.1}%",
            t.accept,
            t.margin,
            t.offer,
            top1 * 100.0,
            offered * 100.0,
            none * 100.0
        );
    }
}
