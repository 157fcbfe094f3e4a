//! `kaitong-dev train`: the learned ranking's weights (`dialog::learned`) from the catalog's own
//! examples and the out-of-scope lines of `dialogs/ranking/training.toml`, with the in-process
//! embedding table. Deterministic: the same catalog, table and file give the same
//! `dialogs/ranking/weights.toml` byte for byte (a test retrains and compares).

use std::path::Path;

use kaitong::catalog::Catalog;
use kaitong::dialog::learned::{TrainingKnobs, fit};
use kaitong::dialog::meaning::{SentenceEncoder, Space};
use kaitong::dialog::understand::{Matcher, Tuning};

/// Where the weights live, relative to the dialogs folder.
pub const WEIGHTS: &str = "ranking/weights.toml";
/// The training file, relative to the dialogs folder.
pub const TRAINING: &str = "ranking/training.toml";

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    training: TrainingKnobs,
    out_of_scope: Vec<String>,
}

/// Trains on the catalog in `dir` and returns the weights file's text.
pub fn train(dir: &Path, encoder: &dyn SentenceEncoder) -> anyhow::Result<String> {
    let catalog = Catalog::load(dir)?;
    // The weights being trained are not read: training depends on everything but them.
    let tuning = Tuning::load_with(dir, false)?;
    let matcher = Matcher::new(&catalog, tuning);
    let file: TrainingFile = toml::from_str(&std::fs::read_to_string(dir.join(TRAINING))?)?;
    let space = Space::encode(&catalog, encoder);
    let negatives: Vec<(String, kaitong::embed::Vector)> = file
        .out_of_scope
        .iter()
        .map(|t| (t.clone(), encoder.encode_message(t)))
        .collect();
    let samples =
        matcher.learned_samples(&catalog, &space, &negatives, file.training.negative_weight);
    let weights = fit(&samples, &file.training);
    let knobs = &file.training;
    Ok(weights.render(&[
        ("trained_by", "kaitong-dev train".to_owned()),
        (
            "positives",
            format!(
                "{} catalog examples (dialogs/services/*.toml), each scored against the others with itself left out",
                space.examples()
            ),
        ),
        (
            "negatives",
            format!(
                "{} out-of-scope lines of dialogs/{TRAINING}, weight {} each; every other service is a negative of each example",
                negatives.len(),
                knobs.negative_weight
            ),
        ),
        ("table", encoder.model()),
        (
            "method",
            format!(
                "conditional logit with an out-of-scope alternative, Newton's method from zero, {} steps, l2 {}",
                knobs.iterations, knobs.l2
            ),
        ),
    ]))
}
