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
        if self.lexically_clear(&ranked) || query.iter().all(|x| *x == 0.0) {
            return lexical;
        }
        // Small talk, very short messages and how-to questions ("怎么打印快递单") never become a
        // service by meaning: they are answered by the words' verdict (usually nothing).
        let folded = super::text::fold(text);
        let tuning = self.tuning();
        let asks_how = tuning
            .question_markers
            .iter()
            .any(|m| folded.contains(m.as_str()));
        let requests = tuning
            .request_markers
            .iter()
            .any(|m| folded.contains(m.as_str()));
        if tuning.small_talk(text).is_some()
            || folded.chars().count() < 4
            || (asks_how && !requests)
        {
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
        // A lexical close call between services the message names in full ("支付宝数据透视":
        // #5 and #47) stays the person's to choose: meaning does not pick between twins.
        if let Verdict::Ambiguous(ids) = &lexical.verdict
            && ids.iter().filter(|id| self.names_fully(**id, text)).count() >= 2
        {
            return lexical;
        }
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

impl SentenceEncoder for crate::embed::static_table::StaticTable {
    fn encode(&self, text: &str) -> Vector {
        self.embed(text)
    }

    fn model(&self) -> String {
        format!("static:{}", self.provenance().model)
    }
}
