//! Finding services from what a salesperson typed ("给 wdt01 开电子发票",
//! "fapiao", "#33"). Deliberately simple and explainable: names and
//! aliases found in the text weigh most, keywords add up, and near
//! duplicates tie so the engine can ask the user to choose.

use super::Catalog;
use super::model::Service;
use super::value::normalize_width;
use crate::domain::ServiceId;

/// A candidate service and its score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: ServiceId,
    pub score: u32,
}

fn fold(s: &str) -> String {
    normalize_width(s)
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn score(service: &Service, text: &str) -> u32 {
    let len = |s: &str| u32::try_from(s.chars().count()).unwrap_or(u32::MAX);
    let mut best_phrase = 0;
    for phrase in std::iter::once(&service.name)
        .chain(std::iter::once(&service.seed_name))
        .chain(&service.aliases)
    {
        let p = fold(phrase);
        if p.is_empty() {
            continue;
        }
        if text.contains(&p) {
            best_phrase = best_phrase.max(3 * len(&p));
        } else if len(text) >= 2 && p.contains(text) {
            // The user typed a fragment of a name ("发票").
            best_phrase = best_phrase.max(2 * len(text));
        }
    }
    let keywords: u32 = service
        .keywords
        .iter()
        .map(|k| fold(k))
        .filter(|k| !k.is_empty() && text.contains(k.as_str()))
        .map(|k| len(&k))
        .sum();
    best_phrase + keywords
}

impl Catalog {
    /// Services matching free text, best first; empty when nothing matches.
    /// "#33", "33" or "33号" select service 33 directly.
    pub fn candidates(&self, text: &str) -> Vec<Candidate> {
        let text = fold(text);
        if let Ok(id) = text.parse::<ServiceId>()
            && let Some(s) = self.service(id)
        {
            return vec![Candidate {
                id: s.id,
                score: u32::MAX,
            }];
        }
        if text.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<Candidate> = self
            .services()
            .map(|s| Candidate {
                id: s.id,
                score: score(s, &text),
            })
            .filter(|c| c.score > 0)
            .collect();
        out.sort_by(|a, b| b.score.cmp(&a.score).then(a.id.cmp(&b.id)));
        out
    }
}
