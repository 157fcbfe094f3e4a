//! The learned ranking: a conditional logistic regression (one weight per feature, shared by
//! every service) over features the matcher and the meaning space already compute, with an
//! "out of scope" alternative whose score is fixed at 0.
//!
//! For a message m, service s scores `w · f(m, s)`; the probabilities are the softmax over the
//! 90 services and the out-of-scope alternative. Message-level features (a how-to question, a
//! question about a service, small talk length, a customer named) enter every service's score
//! alike, so they only move mass between the services and "out of scope".
//!
//! Trained by `kaitong train` on the catalog's own examples (each scored against the others,
//! its own example left out) and the out-of-scope lines of `dialogs/ranking/training.toml`; every
//! neighbour of the right service is a negative in the softmax, the close ones weighing most.
//! Newton's method from zero, fixed order and iteration count, `f64`: the weights come out the
//! same bit for bit, and are written rounded to 6 significant digits
//! (`dialogs/ranking/weights.toml`). Pure: no I/O (the files are read by `understand::tuning`
//! and `tools::train`).

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::dialog::text::fold;
use crate::domain::ServiceId;

/// The features, in weight order.
pub const FEATURES: [&str; 19] = [
    "example",
    "example_best",
    "example_lead",
    "passage",
    "words",
    "words_lead",
    "sounds",
    "sounds_lead",
    "lexical_relative",
    "lexical_log",
    "specific_phrase",
    "named_in_full",
    "bias",
    "how_to_question",
    "question",
    "short",
    "customer",
    "catalog_words",
    "nearest_example",
];

/// How many features a row holds.
pub const N: usize = FEATURES.len();

/// One feature row per service.
pub type Row = [f64; N];

/// The trained weights, with where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub values: Row,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightsFile {
    features: Vec<String>,
    weights: Vec<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    provenance: toml::Table,
}

impl Weights {
    /// Reads `weights.toml`; its features must be exactly [`FEATURES`], in order.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: WeightsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.features.iter().map(String::as_str).ne(FEATURES) {
            return Err(format!(
                "features {:?}, expected {:?}",
                file.features, FEATURES
            ));
        }
        let values: Row = file
            .weights
            .try_into()
            .map_err(|w: Vec<f64>| format!("{} weights for {N} features", w.len()))?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err("a weight is not finite".to_owned());
        }
        Ok(Self { values })
    }

    /// The file `kaitong train` writes: the weights rounded to 6 significant digits.
    #[must_use]
    pub fn render(&self, provenance: &[(&str, String)]) -> String {
        let mut out = String::from(
            "# The learned ranking's weights (src/dialog/learned.rs). Written by `kaitong train`;\n\
             # do not edit: `kaitong train --check` (and a test) retrain and compare this file.\n\n",
        );
        out.push_str("features = [\n");
        for f in FEATURES {
            out.push_str(&format!("    \"{f}\",\n"));
        }
        out.push_str("]\nweights = [\n");
        for (f, w) in FEATURES.iter().zip(self.values) {
            out.push_str(&format!("    {},  # {f}\n", round6(w)));
        }
        out.push_str("]\n\n[provenance]\n");
        for (k, v) in provenance {
            out.push_str(&format!("{k} = {v:?}\n"));
        }
        out
    }

    /// Each service's score (`ids` and `rows` side by side) as a probability, best first,
    /// and the probability that the message asks for none of them.
    #[must_use]
    pub fn probabilities(&self, ids: &[ServiceId], rows: &[Row]) -> (Vec<(ServiceId, f64)>, f64) {
        let scores: Vec<f64> = rows.iter().map(|r| dot(&self.values, r)).collect();
        let top = scores.iter().copied().fold(0.0f64, f64::max);
        let none = (-top).exp();
        let exps: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
        let z = none + exps.iter().sum::<f64>();
        let mut out: Vec<(ServiceId, f64)> =
            ids.iter().zip(exps).map(|(id, e)| (*id, e / z)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        (out, none / z)
    }
}

/// `x` rounded to 6 significant digits, printed so that it reads back as the same `f64`.
fn round6(x: f64) -> String {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    format!("{rounded:?}")
}

fn dot(a: &Row, b: &Row) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One training message: a feature row per service (the same services, in the same order, for
/// every sample), the right service's position (`None`: out of scope) and the sample's weight.
pub struct Sample {
    pub rows: Vec<Row>,
    pub label: Option<usize>,
    pub weight: f64,
}

/// The knobs of training (`[training]` in `dialogs/ranking/training.toml`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingKnobs {
    /// Ridge penalty on every weight.
    pub l2: f64,
    /// Newton steps (each halved while it lowers the likelihood).
    pub iterations: usize,
    /// Weight of an out-of-scope line against one catalog example.
    pub negative_weight: f64,
}

/// Fits the weights by Newton's method on the penalised log-likelihood. Deterministic: the
/// samples are visited in the given order and every sum is taken in a fixed order.
#[must_use]
pub fn fit(samples: &[Sample], knobs: &TrainingKnobs) -> Weights {
    let mut w: Row = [0.0; N];
    let mut best = f64::NEG_INFINITY;
    let mut step: Row = [0.0; N];
    for _ in 0..knobs.iterations {
        let (ll, grad, hess) = pass(samples, &w, knobs.l2);
        if ll < best {
            // The last step overshot: go back half of it and try again.
            for (wi, si) in w.iter_mut().zip(&mut step) {
                *si *= 0.5;
                *wi -= *si;
            }
            continue;
        }
        best = ll;
        step = solve(hess, grad);
        for (wi, si) in w.iter_mut().zip(&step) {
            *wi += si;
        }
    }
    let (ll, _, _) = pass(samples, &w, knobs.l2);
    if ll < best {
        for (wi, si) in w.iter_mut().zip(&step) {
            *wi -= si;
        }
    }
    Weights { values: w }
}

/// The penalised log-likelihood at `w`, its gradient and the negated Hessian.
// Matrix code reads best with indices (a triangle, a symmetric copy).
#[allow(clippy::needless_range_loop)]
fn pass(samples: &[Sample], w: &Row, l2: f64) -> (f64, Row, [Row; N]) {
    let mut ll = -0.5 * l2 * dot(w, w);
    let mut grad: Row = std::array::from_fn(|i| -l2 * w[i]);
    let mut hess: [Row; N] =
        std::array::from_fn(|i| std::array::from_fn(|j| if i == j { l2 } else { 0.0 }));
    for sample in samples {
        let scores: Vec<f64> = sample.rows.iter().map(|r| dot(w, r)).collect();
        let top = scores.iter().copied().fold(0.0f64, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
        let z = (-top).exp() + exps.iter().sum::<f64>();
        let mut mean: Row = [0.0; N];
        let mut second: [Row; N] = [[0.0; N]; N];
        for (row, e) in sample.rows.iter().zip(&exps) {
            let p = e / z;
            if p < 1e-12 {
                continue;
            }
            for i in 0..N {
                let pi = p * row[i];
                mean[i] += pi;
                for j in 0..=i {
                    second[i][j] += pi * row[j];
                }
            }
        }
        let c = sample.weight;
        let chosen = match sample.label {
            Some(y) => scores[y] - top,
            None => -top,
        };
        ll += c * (chosen - z.ln());
        for i in 0..N {
            let x = sample.label.map_or(0.0, |y| sample.rows[y][i]);
            grad[i] += c * (x - mean[i]);
            for j in 0..=i {
                hess[i][j] += c * (second[i][j] - mean[i] * mean[j]);
            }
        }
    }
    for i in 0..N {
        for j in 0..i {
            hess[j][i] = hess[i][j];
        }
    }
    (ll, grad, hess)
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting (`a` is positive definite).
#[allow(clippy::needless_range_loop)]
fn solve(mut a: [Row; N], mut b: Row) -> Row {
    for col in 0..N {
        let pivot = (col..N)
            .max_by(|x, y| a[*x][col].abs().total_cmp(&a[*y][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        for row in col + 1..N {
            let f = a[row][col] / d;
            if f == 0.0 {
                continue;
            }
            for k in col..N {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x: Row = [0.0; N];
    for col in (0..N).rev() {
        let mut s = b[col];
        for k in col + 1..N {
            s -= a[col][k] * x[k];
        }
        x[col] = if a[col][col].abs() < 1e-300 {
            0.0
        } else {
            s / a[col][col]
        };
    }
    x
}

/// How specific each service's phrases are: a phrase (name, alias, keyword) held by few
/// services says much ("发票"), one held by many says little ("包裹", "上限调整").
#[derive(Debug, Default)]
pub struct PhraseIndex {
    /// Per service (catalog order): (folded phrase, specificity in 0..=1).
    phrases: HashMap<ServiceId, Vec<(String, f64)>>,
}

impl PhraseIndex {
    #[must_use]
    pub fn new(catalog: &Catalog) -> Self {
        let services: Vec<_> = catalog.services().collect();
        // Every service's own text: names, aliases, keywords and examples, folded.
        let texts: Vec<String> = services
            .iter()
            .map(|s| {
                let mut t = vec![fold(&s.name), fold(&s.seed_name)];
                t.extend(s.aliases.iter().map(|a| fold(a)));
                t.extend(s.keywords.iter().map(|k| fold(k)));
                t.extend(s.examples.iter().map(|e| fold(e)));
                t.join("|")
            })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let n = services.len().max(2) as f64;
        let mut phrases = HashMap::new();
        for s in &services {
            let mut own: Vec<(String, f64)> = Vec::new();
            let words = std::iter::once(&s.name)
                .chain(&s.aliases)
                .chain(&s.keywords);
            for p in words.map(|p| fold(p)) {
                if p.chars().count() < 2 || own.iter().any(|(q, _)| *q == p) {
                    continue;
                }
                let df = texts
                    .iter()
                    .filter(|t| t.contains(p.as_str()))
                    .count()
                    .max(1);
                #[allow(clippy::cast_precision_loss)]
                let specificity = 1.0 - (df as f64).ln() / n.ln();
                own.push((p, specificity));
            }
            phrases.insert(s.id, own);
        }
        Self { phrases }
    }

    /// The most specific of the service's phrases found in the folded text (0 when none is).
    #[must_use]
    pub fn best(&self, id: ServiceId, folded: &str) -> f64 {
        self.phrases
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|(p, _)| folded.contains(p.as_str()))
            .map(|(_, s)| *s)
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_weights_read_back_the_same() {
        let w = Weights {
            values: std::array::from_fn(|i| (i as f64 - 7.0) / 3.0),
        };
        let text = w.render(&[("examples", "2709".to_owned())]);
        let back = Weights::parse(&text).expect("parses");
        let again = back.render(&[("examples", "2709".to_owned())]);
        assert_eq!(text, again);
    }

    #[test]
    fn fitting_separates_a_feature_that_marks_the_label() {
        // Two services; feature 0 is 1 for the right one, out-of-scope lines have none.
        let mut samples = Vec::new();
        for i in 0..40 {
            let mut a: Row = [0.0; N];
            let mut b: Row = [0.0; N];
            a[10] = 1.0;
            b[10] = 1.0;
            if i % 4 == 3 {
                samples.push(Sample {
                    rows: vec![a, b],
                    label: None,
                    weight: 1.0,
                });
                continue;
            }
            let y = i % 2;
            if y == 0 {
                a[0] = 1.0
            } else {
                b[0] = 1.0
            }
            samples.push(Sample {
                rows: vec![a, b],
                label: Some(y),
                weight: 1.0,
            });
        }
        let knobs = TrainingKnobs {
            l2: 0.01,
            iterations: 20,
            negative_weight: 1.0,
        };
        let w = fit(&samples, &knobs);
        assert!(w.values[0] > 1.0, "{:?}", w.values);
        let again = fit(&samples, &knobs);
        assert_eq!(w, again, "deterministic");
    }
}
