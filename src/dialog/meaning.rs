//! Understanding by meaning: the hybrid of the lexical ranking with sentence-embedding
//! similarity to each service's examples and catalog text.
//!
//! A *space* holds the vectors of the catalog in one embedding model (the in-process table, or a
//! real model behind an embeddings server). A message is compared with every example (best
//! match per service) and with each service's catalog passage (name, aliases, notes). The
//! lexical matcher decides alone when it has a clear winner; otherwise the blend decides, with
//! thresholds from `dialogs/understanding.toml` (`[meaning]`). Pure: vectors come in, a verdict
//! goes out; the HTTP call lives in `embed` and the bot.

use std::collections::HashMap;

use super::examples::{keep_best, mean_kept};
use super::learned::{Row, Sample, Weights};
use super::text::meaning_text;
use super::understand::{Matcher, Scored, Verdict};
use crate::catalog::Catalog;
use crate::domain::ServiceId;
use crate::embed::{Vector, cosine};

/// Turns a sentence into a vector in-process (the distilled table).
pub trait SentenceEncoder: Send + Sync {
    fn encode(&self, text: &str) -> Vector;
    /// A person's message: its meaning text (see [`meaning_text`]), encoded.
    fn encode_message(&self, text: &str) -> Vector {
        self.encode(&meaning_text(text))
    }
    /// The model the vectors come from, for reports and cache keys.
    fn model(&self) -> String;
}

/// Which embedding model a space was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceKind {
    /// The in-process distilled table.
    Static,
    /// A real model behind `[embeddings] url`.
    Server,
}

/// The catalog's vectors in one model.
pub struct Space {
    pub kind: SpaceKind,
    pub model: String,
    dims: usize,
    /// The services in slot order; rows below point at a slot.
    services: Vec<ServiceId>,
    /// Example vectors, one row each, contiguous (row-major) so a message is compared with
    /// every example in one pass over memory.
    example_slots: Vec<usize>,
    example_matrix: Vec<f32>,
    passage_slots: Vec<usize>,
    passage_matrix: Vec<f32>,
}

/// One text of the catalog to embed: an example or a service's passage.
#[derive(Debug, Clone)]
pub struct CatalogText {
    pub service: ServiceId,
    pub text: String,
    pub is_example: bool,
}

impl Space {
    /// The texts a space is built from, in a stable order.
    #[must_use]
    pub fn texts(catalog: &Catalog) -> Vec<CatalogText> {
        let mut out = Vec::new();
        for s in catalog.services() {
            let mut passage = s.name.clone();
            for a in &s.aliases {
                passage.push('；');
                passage.push_str(a);
            }
            for n in &s.notes {
                passage.push('；');
                passage.push_str(n);
            }
            out.push(CatalogText {
                service: s.id,
                text: passage,
                is_example: false,
            });
            for e in &s.examples {
                out.push(CatalogText {
                    service: s.id,
                    text: meaning_text(e),
                    is_example: true,
                });
            }
        }
        out
    }

    /// A space from vectors computed for [`Space::texts`], in the same order.
    #[must_use]
    pub fn from_vectors(
        kind: SpaceKind,
        model: String,
        texts: &[CatalogText],
        vectors: Vec<Vector>,
    ) -> Self {
        let dims = vectors.first().map_or(0, Vec::len);
        let mut services: Vec<ServiceId> = Vec::new();
        let mut space = Self {
            kind,
            model,
            dims,
            services: Vec::new(),
            example_slots: Vec::new(),
            example_matrix: Vec::new(),
            passage_slots: Vec::new(),
            passage_matrix: Vec::new(),
        };
        for (t, v) in texts.iter().zip(vectors) {
            if v.len() != dims {
                continue;
            }
            let slot = match services.iter().position(|s| *s == t.service) {
                Some(i) => i,
                None => {
                    services.push(t.service);
                    services.len() - 1
                }
            };
            if t.is_example {
                space.example_slots.push(slot);
                space.example_matrix.extend_from_slice(&v);
            } else {
                space.passage_slots.push(slot);
                space.passage_matrix.extend_from_slice(&v);
            }
        }
        space.services = services;
        space
    }

    /// A space from a real model behind an embeddings server: examples are embedded as
    /// queries (they are what people type), passages as passages; cached in `store`.
    pub async fn from_server(
        catalog: &Catalog,
        server: &crate::embed::ServerEmbedder,
        store: Option<&dyn crate::store::Store>,
    ) -> Result<Self, crate::embed::EmbedError> {
        use crate::embed::{TextKind, embed_cached};
        let texts = Self::texts(catalog);
        let (examples, passages): (Vec<&CatalogText>, Vec<&CatalogText>) =
            texts.iter().partition(|t| t.is_example);
        let example_texts: Vec<String> = examples.iter().map(|t| t.text.clone()).collect();
        let passage_texts: Vec<String> = passages.iter().map(|t| t.text.clone()).collect();
        let ev = embed_cached(server, store, &example_texts, TextKind::Query).await?;
        let pv = embed_cached(server, store, &passage_texts, TextKind::Passage).await?;
        let mut ordered: Vec<CatalogText> = Vec::new();
        let mut vectors = Vec::new();
        for (t, v) in examples
            .into_iter()
            .zip(ev)
            .chain(passages.into_iter().zip(pv))
        {
            ordered.push(t.clone());
            vectors.push(v);
        }
        Ok(Self::from_vectors(
            SpaceKind::Server,
            server.model_id(),
            &ordered,
            vectors,
        ))
    }

    /// A space computed in-process.
    #[must_use]
    pub fn encode(catalog: &Catalog, encoder: &dyn SentenceEncoder) -> Self {
        let texts = Self::texts(catalog);
        let vectors = texts.iter().map(|t| encoder.encode(&t.text)).collect();
        Self::from_vectors(SpaceKind::Static, encoder.model(), &texts, vectors)
    }

    /// How many catalog texts the space holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.example_slots.len() + self.passage_slots.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The services in slot order (the order of [`Space::example_stats`]).
    #[must_use]
    pub fn services(&self) -> &[ServiceId] {
        &self.services
    }

    /// How many examples the space holds (catalog order: services, then their examples).
    #[must_use]
    pub fn examples(&self) -> usize {
        self.example_slots.len()
    }

    /// Example `i`'s vector.
    #[must_use]
    pub fn example_vector(&self, i: usize) -> Option<&[f32]> {
        self.example_matrix.chunks_exact(self.dims.max(1)).nth(i)
    }

    /// Per service (slot order): the mean of the `top_k` best example similarities, the best
    /// one, and the passage similarity; the example at `left_out` is not compared (training).
    #[must_use]
    pub fn example_stats(
        &self,
        query: &[f32],
        top_k: usize,
        left_out: Option<usize>,
    ) -> Vec<(f32, f32, f32)> {
        let top_k = top_k.max(1);
        if self.dims == 0 || query.len() != self.dims {
            return vec![(0.0, 0.0, 0.0); self.services.len()];
        }
        let mut best = vec![vec![f32::MIN; top_k]; self.services.len()];
        for (i, (row, slot)) in self
            .example_matrix
            .chunks_exact(self.dims)
            .zip(&self.example_slots)
            .enumerate()
        {
            if Some(i) != left_out {
                keep_best(&mut best[*slot], cosine(query, row));
            }
        }
        let mut out: Vec<(f32, f32, f32)> = best
            .iter()
            .map(|b| (mean_kept(b), b[0].max(0.0), 0.0))
            .collect();
        for (row, slot) in self
            .passage_matrix
            .chunks_exact(self.dims)
            .zip(&self.passage_slots)
        {
            let p = &mut out[*slot].2;
            *p = p.max(cosine(query, row));
        }
        out
    }

    /// (example similarity, passage similarity) per service, in slot order; the example
    /// similarity is the mean of the `top_k` best examples.
    fn similarities(&self, query: &[f32], top_k: usize) -> Vec<(f32, f32)> {
        let top_k = top_k.max(1);
        if self.dims == 0 || query.len() != self.dims {
            return Vec::new();
        }
        // The best `top_k` example similarities per service, highest first.
        let mut best = vec![vec![f32::MIN; top_k]; self.services.len()];
        for (row, slot) in self
            .example_matrix
            .chunks_exact(self.dims)
            .zip(&self.example_slots)
        {
            keep_best(&mut best[*slot], cosine(query, row));
        }
        let mut out: Vec<(f32, f32)> = best.iter().map(|b| (mean_kept(b), 0.0)).collect();
        for (row, slot) in self
            .passage_matrix
            .chunks_exact(self.dims)
            .zip(&self.passage_slots)
        {
            let p = &mut out[*slot].1;
            *p = p.max(cosine(query, row));
        }
        out
    }
}

/// A ranking and the verdict drawn from it, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Understood {
    pub ranked: Vec<Scored>,
    pub verdict: Verdict,
    /// Whether meaning (not words alone) decided.
    pub by_meaning: bool,
}

impl Matcher {
    /// Whether the words alone settle it: a clear winner, strong enough.
    #[must_use]
    pub fn lexically_clear(&self, ranked: &[Scored]) -> bool {
        let Some(t) = self.tuning().meaning.as_ref() else {
            return true;
        };
        matches!(self.verdict(ranked), Verdict::Service(_))
            && ranked
                .first()
                .is_some_and(|b| b.score >= t.clear_lexical_score)
    }

    /// The hybrid: words first; when they are not clear, meaning in `space` with the message's
    /// vector `query` (a zero vector means the model knew none of the words).
    #[must_use]
    pub fn understand_with(&self, text: &str, meaning: Option<(&Space, &[f32])>) -> Understood {
        let ranked = self.rank(text);
        let lexical = Understood {
            verdict: self.verdict(&ranked),
            ranked: ranked.clone(),
            by_meaning: false,
        };
        let (Some(t), Some((space, query))) = (self.tuning().meaning.as_ref(), meaning) else {
            return lexical;
        };
        let folded = super::text::fold(text);
        let tuning = self.tuning();
        if tuning.small_talk(text).is_some() || folded.chars().count() < 4 {
            return lexical;
        }
        // A lexical close call between services the message names in full ("支付宝数据透视":
        // #5 and #47) stays the person's to choose: meaning does not pick between twins.
        if let Verdict::Ambiguous(ids) = &lexical.verdict
            && ids.iter().filter(|id| self.names_fully(**id, text)).count() >= 2
        {
            return lexical;
        }
        if space.kind == SpaceKind::Static
            && let Some(learned) = tuning.learned.as_ref()
            && let Some(model) = learned.model.as_ref()
        {
            if learned.words_decide_when_clear && self.lexically_clear(&ranked) {
                return lexical;
            }
            return self.understand_learned(text, space, query, &ranked, learned, model);
        }
        if self.lexically_clear(&ranked) || query.iter().all(|x| *x == 0.0) {
            return lexical;
        }
        // How-to questions ("怎么打印快递单") never become a service by meaning: they are
        // answered by the words' verdict (usually nothing).
        if self.asks_how(text) {
            return lexical;
        }
        let thresholds = match space.kind {
            SpaceKind::Static => t.static_space,
            SpaceKind::Server => t.server_space,
        };
        let lex_best = ranked
            .first()
            .map_or(self.tuning().min_score, |b| b.score)
            .max(self.tuning().min_score);
        let lex: HashMap<ServiceId, f32> = ranked.iter().map(|s| (s.id, s.score)).collect();
        let words: HashMap<ServiceId, f32> = if t.example_words_weight > 0.0 {
            self.examples()
                .similarities(text, t.example_top_k)
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let mut blended: Vec<Scored> = space
            .similarities(query, t.example_top_k)
            .into_iter()
            .zip(&space.services)
            .map(|((ex, cat), id)| Scored {
                id: *id,
                score: t.example_weight * ex
                    + t.catalog_weight * cat
                    + t.example_words_weight * words.get(id).copied().unwrap_or(0.0)
                    + t.lexical_weight * lex.get(id).copied().unwrap_or(0.0) / lex_best,
            })
            .collect();
        blended.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        let Some(best) = blended.first().copied() else {
            return lexical;
        };
        let runner_up = blended.get(1).map_or(0.0, |s| s.score);
        let verdict =
            if best.score >= thresholds.accept && best.score - runner_up >= thresholds.margin {
                Verdict::Service(best.id)
            } else if best.score >= thresholds.offer {
                Verdict::Ambiguous(
                    blended
                        .iter()
                        .take_while(|s| best.score - s.score < thresholds.margin.max(0.02) * 2.0)
                        .take(4)
                        .map(|s| s.id)
                        .collect(),
                )
            } else {
                // Meaning found nothing convincing: the words' verdict stands (often nothing).
                return lexical;
            };
        let verdict = match verdict {
            Verdict::Ambiguous(ids) if ids.len() == 1 => Verdict::Service(ids[0]),
            v => v,
        };
        Understood {
            ranked: blended,
            verdict,
            by_meaning: true,
        }
    }
}

impl Matcher {
    /// The learned ranking's feature rows (`dialog::learned::FEATURES`), one per service in
    /// the space's slot order. `left_out` is the example the message is (training).
    #[must_use]
    pub fn learned_rows(
        &self,
        text: &str,
        space: &Space,
        query: &[f32],
        ranked: &[Scored],
        left_out: Option<usize>,
    ) -> Vec<Row> {
        const TOP_K: usize = 2;
        let folded = super::text::fold(text);
        let stats = space.example_stats(query, TOP_K, left_out);
        let words: HashMap<ServiceId, f32> = self
            .examples()
            .similarities_leaving_out(text, TOP_K, left_out)
            .into_iter()
            .collect();
        let word_of: Vec<f32> = space
            .services
            .iter()
            .map(|id| words.get(id).copied().unwrap_or(0.0))
            .collect();
        let sounds: HashMap<ServiceId, f32> = self
            .example_sounds()
            .similarities_leaving_out(text, TOP_K, left_out)
            .into_iter()
            .collect();
        let sound_of: Vec<f32> = space
            .services
            .iter()
            .map(|id| sounds.get(id).copied().unwrap_or(0.0))
            .collect();
        let lex: HashMap<ServiceId, f32> = ranked.iter().map(|s| (s.id, s.score)).collect();
        let min_score = self.tuning().min_score;
        let lex_best = ranked.first().map_or(min_score, |b| b.score).max(min_score);
        // The best and second-best of a column, for each service's lead over the others.
        let top_two = |values: &mut dyn Iterator<Item = f32>| {
            values.fold((f32::MIN, f32::MIN), |(a, b), v| {
                if v > a { (v, a) } else { (a, b.max(v)) }
            })
        };
        let (ex_a, ex_b) = top_two(&mut stats.iter().map(|s| s.0));
        let (w_a, w_b) = top_two(&mut word_of.iter().copied());
        let (s_a, s_b) = top_two(&mut sound_of.iter().copied());
        let lead = |v: f32, a: f32, b: f32| f64::from(if v >= a { v - b } else { v - a });
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let how_to = flag(self.asks_how(text));
        // A question of any kind: a question mark or a question ending.
        let question = flag(
            text.contains(['?', '？'])
                || tuning_endings(self)
                    .iter()
                    .any(|e| folded.ends_with(e.as_str())),
        );
        let catalog_words = f64::from(lex_best.max(0.0)).ln_1p() / 3.0 * flag(!ranked.is_empty());
        let nearest = f64::from(ex_a.max(0.0));
        let short = flag(folded.chars().count() < 6);
        let customer = flag(Self::names_customer(text));
        space
            .services
            .iter()
            .zip(&stats)
            .zip(&word_of)
            .zip(&sound_of)
            .map(|(((id, (ex, best, passage)), w), sd)| {
                let l = lex.get(id).copied().unwrap_or(0.0);
                [
                    f64::from(*ex),
                    f64::from(*best),
                    lead(*ex, ex_a, ex_b),
                    f64::from(*passage),
                    f64::from(*w),
                    lead(*w, w_a, w_b),
                    f64::from(*sd),
                    lead(*sd, s_a, s_b),
                    f64::from(l / lex_best),
                    f64::from(l).ln_1p() / 3.0,
                    self.specific_phrases().best(*id, &folded),
                    flag(l > 0.0 && self.names_fully(*id, text)),
                    1.0,
                    how_to,
                    question,
                    short,
                    customer,
                    catalog_words,
                    nearest,
                ]
            })
            .collect()
    }

    /// The learned ranking's verdict: a service whose probability reaches `take` is taken; a
    /// message likely enough to ask for some service gets a short list; anything else is out of
    /// scope.
    fn understand_learned(
        &self,
        text: &str,
        space: &Space,
        query: &[f32],
        ranked: &[Scored],
        learned: &super::understand::LearnedTuning,
        model: &Weights,
    ) -> Understood {
        let rows = self.learned_rows(text, space, query, ranked, None);
        let (probabilities, none) = model.probabilities(&space.services, &rows);
        let verdict = learned_verdict(&probabilities, none, learned);
        #[allow(clippy::cast_possible_truncation)]
        let ranked = probabilities
            .iter()
            .map(|(id, p)| Scored {
                id: *id,
                score: *p as f32,
            })
            .collect();
        Understood {
            ranked,
            verdict,
            by_meaning: true,
        }
    }

    /// The training samples of the learned ranking: every catalog example scored against the
    /// others (its own vector and words left out), labelled with its service, then each
    /// out-of-scope line (with its vector) labelled as none of them.
    #[must_use]
    pub fn learned_samples(
        &self,
        catalog: &Catalog,
        space: &Space,
        out_of_scope: &[(String, Vector)],
        negative_weight: f64,
    ) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut i = 0usize;
        for service in catalog.services() {
            let label = space.services.iter().position(|id| *id == service.id);
            for example in &service.examples {
                let Some(query) = space.example_vector(i) else {
                    break;
                };
                let ranked = self.rank(example);
                samples.push(Sample {
                    rows: self.learned_rows(example, space, query, &ranked, Some(i)),
                    label,
                    weight: 1.0,
                });
                i += 1;
            }
        }
        for (text, query) in out_of_scope {
            let ranked = self.rank(text);
            samples.push(Sample {
                rows: self.learned_rows(text, space, query, &ranked, None),
                label: None,
                weight: negative_weight,
            });
        }
        samples
    }
}

fn tuning_endings(matcher: &Matcher) -> &[String] {
    &matcher.tuning().reading.question_endings
}

/// Take, offer a short list, or out of scope, from the learned probabilities.
fn learned_verdict(
    probabilities: &[(ServiceId, f64)],
    none: f64,
    learned: &super::understand::LearnedTuning,
) -> Verdict {
    let Some(&(best, p)) = probabilities.first() else {
        return Verdict::Nothing;
    };
    if p >= learned.take {
        return Verdict::Service(best);
    }
    let mass = 1.0 - none;
    if mass < learned.offer || mass <= 0.0 {
        return Verdict::Nothing;
    }
    let mut covered = 0.0;
    let options: Vec<ServiceId> = probabilities
        .iter()
        .take(4)
        .take_while(|(_, p)| {
            let go_on = covered < learned.offer_cover * mass;
            covered += p;
            go_on
        })
        .map(|(id, _)| *id)
        .collect();
    match options.as_slice() {
        [] | [_] => Verdict::Ambiguous(probabilities.iter().take(2).map(|(id, _)| *id).collect()),
        _ => Verdict::Ambiguous(options),
    }
}

impl SentenceEncoder for crate::embed::static_table::StaticTable {
    fn encode(&self, text: &str) -> Vector {
        self.embed(text)
    }

    fn model(&self) -> String {
        format!("static:{}", self.provenance().model)
    }
}
