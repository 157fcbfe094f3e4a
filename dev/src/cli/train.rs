//! `kaitong-dev train`: the learned ranking's weights from the catalog, and calibrating its
//! thresholds.

use std::path::PathBuf;

use clap::Args;

use kaitong::config::Settings;
use kaitong::dialog::understand::Matcher;

#[derive(Args)]
pub struct TrainArgs {
    /// Only compare: exit 1 when retraining gives another file than the one shipped.
    #[arg(long)]
    pub check: bool,
    /// Instead of training, try a grid of `[learned]` thresholds on this labelled file and
    /// print those that take at most 2 % of requests wrongly.
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: TrainArgs) -> anyhow::Result<()> {
    train(settings, args.check, args.calibrate.as_deref())
}

fn train(
    settings: &Settings,
    check: bool,
    calibrate: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let encoder = kaitong::startup::static_encoder(settings)
        .ok_or_else(|| anyhow::anyhow!("the in-process embedding table did not load"))?;
    if let Some(file) = calibrate {
        return calibrate_learned(settings, encoder.as_ref(), file);
    }
    let dir = &settings.dialogs.dir;
    let text = kaitong_dev::train::train(dir, encoder.as_ref())?;
    let path = dir.join(kaitong_dev::train::WEIGHTS);
    if check {
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        if shipped != text {
            eprintln!("{} differs from a retraining", path.display());
            std::process::exit(1);
        }
        println!("{} is reproduced by retraining", path.display());
        return Ok(());
    }
    std::fs::write(&path, &text)?;
    print!("{text}");
    Ok(())
}

/// Tries `[learned]` take / offer thresholds on a labelled file (the wording set's dev half).
fn calibrate_learned(
    settings: &Settings,
    encoder: &dyn kaitong::dialog::meaning::SentenceEncoder,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use kaitong::dialog::meaning::Space;
    let catalog = super::load_catalog(settings)?;
    let tuning = super::load_tuning(settings)?;
    anyhow::ensure!(
        tuning.learned.is_some(),
        "no [learned] in understanding.toml"
    );
    let mut trial = Matcher::new(&catalog, tuning.clone());
    let set = kaitong_dev::eval::parse(&std::fs::read_to_string(file)?)?;
    let space = Space::encode(&catalog, encoder);
    let queries: Vec<_> = set
        .iter()
        .map(|l| encoder.encode_message(&l.text))
        .collect();
    let mut rows = Vec::new();
    for t in 0..30u8 {
        let take = 0.30 + f64::from(t) * 0.02;
        for o in 0..20u8 {
            let offer = 0.05 + f64::from(o) * 0.05;
            for cover in [0.7, 0.8, 0.9] {
                let mut tuning = tuning.clone();
                if let Some(l) = tuning.learned.as_mut() {
                    l.take = take;
                    l.offer = offer;
                    l.offer_cover = cover;
                }
                trial.set_tuning(tuning);
                let r = kaitong_dev::eval::evaluate_meaning(&trial, &space, &queries, &set);
                if r.taken_wrong_ratio <= 0.02 {
                    rows.push((take, offer, cover, r));
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        (b.3.offered_accuracy + b.3.none_accuracy + b.3.taken_right_ratio)
            .total_cmp(&(a.3.offered_accuracy + a.3.none_accuracy + a.3.taken_right_ratio))
    });
    println!("take  offer cover   top-1 offered taken-ok taken-BAD   none");
    for (take, offer, cover, r) in rows.iter().take(25) {
        println!(
            "{take:.2}  {offer:.2}  {cover:.1}   {:5.1}%  {:5.1}%  {:5.1}%   {:5.1}%  {:5.1}%",
            r.top1_accuracy * 100.0,
            r.offered_accuracy * 100.0,
            r.taken_right_ratio * 100.0,
            r.taken_wrong_ratio * 100.0,
            r.none_accuracy * 100.0
        );
    }
    Ok(())
}
