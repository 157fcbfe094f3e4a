//! The words of the catalog's examples: a TF-IDF index of character unigrams and bigrams over
//! every service's `examples`, compared with a message by cosine.
//!
//! Salespeople describe a need with the same everyday words the examples use ("加不了新店",
//! "一票多件", "dy"), which a service's name and keywords do not contain; character n-grams
//! catch those shared words without a segmenter and tolerate small variations. Pure: built
//! from the catalog, no I/O. The embedding spaces (`meaning`) read the same examples by meaning.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::domain::ServiceId;

/// The TF-IDF index of the examples.
#[derive(Debug, Default)]
pub struct ExampleIndex {
    /// Letter trigrams of toneless pinyin instead of characters (homophone typos: 力润 for 利润,
    /// pinyin typed: "wuliu").
    sounds: bool,
    /// Distinct services, in catalog order (the output order).
    order: Vec<ServiceId>,
    /// Slot in `order` of each example.
    slots: Vec<usize>,
    /// gram → inverse document frequency.
    idf: HashMap<String, f32>,
    /// gram → (example, normalised weight) for every example holding it.
    postings: HashMap<String, Vec<(u32, f32)>>,
}

/// Character unigrams and bigrams of each run between spaces and punctuation, lowercased; with
/// `sounds`, letter trigrams of the run's toneless pinyin instead.
fn grams(text: &str, sounds: bool) -> HashMap<String, u32> {
    use pinyin::ToPinyin;
    let text = super::text::meaning_text(text).to_lowercase();
    let mut out: HashMap<String, u32> = HashMap::new();
    for run in text.split(|c: char| c.is_whitespace() || (!c.is_alphanumeric() && c != '_')) {
        if sounds {
            // Letter trigrams of the run's sounds: 利润, 力润 and "lirun" typed in pinyin all
            // read "lir iru run".
            let letters: Vec<char> = run
                .chars()
                .flat_map(|c| match c.to_pinyin() {
                    Some(p) => p.plain().chars().collect::<Vec<_>>(),
                    None => vec![c],
                })
                .collect();
            for w in letters.windows(3) {
                *out.entry(w.iter().collect()).or_default() += 1;
            }
            continue;
        }
        let chars: Vec<char> = run.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            *out.entry(c.to_string()).or_default() += 1;
            if let Some(next) = chars.get(i + 1) {
                *out.entry([*c, *next].iter().collect()).or_default() += 1;
            }
        }
    }
    out
}

/// Sublinear term weight times IDF, normalised to unit length.
fn weigh(counts: &HashMap<String, u32>, idf: &HashMap<String, f32>) -> Vec<(String, f32)> {
    #[allow(clippy::cast_precision_loss)]
    let mut weighted: Vec<(String, f32)> = counts
        .iter()
        .filter_map(|(g, n)| {
            idf.get(g)
                .map(|w| (g.clone(), (1.0 + (*n as f32).ln()) * w))
        })
        .collect();
    // A fixed order, so every sum below is the same bit for bit in every process (the learned
    // ranking's training is reproduced exactly).
    weighted.sort_by(|a, b| a.0.cmp(&b.0));
    let norm = weighted.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in &mut weighted {
            *w /= norm;
        }
    }
    weighted
}

impl ExampleIndex {
    #[must_use]
    pub fn new(catalog: &Catalog) -> Self {
        Self::build(catalog, false)
    }

    /// The same index over the examples' sounds (toneless pinyin syllables).
    #[must_use]
    pub fn sounds(catalog: &Catalog) -> Self {
        Self::build(catalog, true)
    }

    fn build(catalog: &Catalog, sounds: bool) -> Self {
        let mut index = Self {
            sounds,
            ..Self::default()
        };
        let mut docs: Vec<HashMap<String, u32>> = Vec::new();
        for service in catalog.services() {
            index.order.push(service.id);
            for example in &service.examples {
                index.slots.push(index.order.len() - 1);
                docs.push(grams(example, sounds));
            }
        }
        let mut df: HashMap<&str, usize> = HashMap::new();
        for doc in &docs {
            for g in doc.keys() {
                *df.entry(g.as_str()).or_default() += 1;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let n = docs.len() as f32;
        #[allow(clippy::cast_precision_loss)]
        let idf: HashMap<String, f32> = df
            .into_iter()
            .map(|(g, d)| (g.to_owned(), ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0))
            .collect();
        for (i, doc) in docs.iter().enumerate() {
            for (g, w) in weigh(doc, &idf) {
                let example = u32::try_from(i).unwrap_or(u32::MAX);
                index.postings.entry(g).or_default().push((example, w));
            }
        }
        index.idf = idf;
        index
    }

    /// Per service (catalog order), the mean of its `top_k` best example similarities.
    #[must_use]
    pub fn similarities(&self, text: &str, top_k: usize) -> Vec<(ServiceId, f32)> {
        self.similarities_leaving_out(text, top_k, None)
    }

    /// [`ExampleIndex::similarities`] without the example at `left_out` (catalog order of all
    /// examples): an example scored against the others, for training.
    #[must_use]
    pub fn similarities_leaving_out(
        &self,
        text: &str,
        top_k: usize,
        left_out: Option<usize>,
    ) -> Vec<(ServiceId, f32)> {
        let top_k = top_k.max(1);
        let mut dots = vec![0.0f32; self.slots.len()];
        for (g, w) in weigh(&grams(text, self.sounds), &self.idf) {
            for (example, ew) in self.postings.get(&g).into_iter().flatten() {
                if let Some(d) = dots.get_mut(*example as usize) {
                    *d += w * ew;
                }
            }
        }
        // The same top-k mean as the embedding spaces (`meaning`), without a sort per example.
        let mut best = vec![vec![f32::MIN; top_k]; self.order.len()];
        for (i, (slot, d)) in self.slots.iter().zip(dots).enumerate() {
            if Some(i) != left_out {
                keep_best(&mut best[*slot], d);
            }
        }
        self.order
            .iter()
            .zip(&best)
            .map(|(id, kept)| (*id, mean_kept(kept)))
            .collect()
    }
}

/// Keeps the highest values in `best` (sorted, highest first).
pub(super) fn keep_best(best: &mut [f32], value: f32) {
    if let Some(pos) = best.iter().position(|b| value > *b) {
        best[pos..].rotate_right(1);
        best[pos] = value;
    }
}

/// The mean of the values actually kept (a service with fewer examples than k).
pub(super) fn mean_kept(best: &[f32]) -> f32 {
    let kept: Vec<f32> = best.iter().copied().filter(|b| *b > f32::MIN).collect();
    if kept.is_empty() {
        0.0
    } else {
        kept.iter().sum::<f32>() / kept.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dialogs"
        )))
        .expect("catalog")
    }

    #[test]
    fn an_example_is_its_own_best_match() {
        let catalog = catalog();
        let index = ExampleIndex::new(&catalog);
        let service = catalog.services().nth(10).expect("a service");
        let example = &service.examples[3];
        let sims = index.similarities(example, 1);
        let best = sims
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("scores");
        assert_eq!(best.0, service.id, "{example}");
        assert!(best.1 > 0.99, "{example}: {}", best.1);
    }

    #[test]
    fn words_no_example_holds_score_nothing() {
        let index = ExampleIndex::new(&catalog());
        assert!(index.similarities("ΩΩΩ", 2).iter().all(|(_, s)| *s == 0.0));
    }
}
