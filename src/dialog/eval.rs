//! Scoring understanding against a labelled JSONL set (`kaitong eval`, and the test that pins
//! the accuracy). A line is `{"text": "...", "service": 7 | null, "alt": [47]}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::understand::{Matcher, Verdict};
use crate::catalog::ServiceId;

#[derive(Debug, Deserialize)]
pub struct Labelled {
    pub text: String,
    pub service: Option<u16>,
    #[serde(default)]
    pub alt: Vec<u16>,
}

#[derive(Debug, Default, Serialize)]
pub struct EvalReport {
    pub lines: usize,
    pub in_scope: usize,
    pub out_of_scope: usize,
    /// Best-ranked service is the label (or an accepted alternative).
    pub top1_correct: usize,
    pub top1_accuracy: f64,
    /// The label is among the options the bot would offer (winner or close call).
    pub offered_correct: usize,
    pub offered_accuracy: f64,
    /// In-scope lines the bot answered with a close call instead of a winner.
    pub ambiguous: usize,
    /// In-scope lines the bot found nothing for.
    pub missed: usize,
    /// Out-of-scope lines correctly matched to nothing.
    pub none_correct: usize,
    pub none_accuracy: f64,
    /// (expected, got) → count; got = 0 means nothing.
    pub confusions: Vec<(u16, u16, usize)>,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EvalError {
    pub line: usize,
    pub reason: String,
}

pub fn parse(jsonl: &str) -> Result<Vec<Labelled>, EvalError> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError {
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

#[allow(clippy::cast_precision_loss)]
fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[must_use]
pub fn evaluate(matcher: &Matcher, set: &[Labelled]) -> EvalReport {
    let mut report = EvalReport::default();
    let mut confusions: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    for item in set {
        report.lines += 1;
        let ranked = matcher.rank(&item.text);
        let verdict = matcher.verdict(&ranked);
        match item.service {
            None => {
                report.out_of_scope += 1;
                if verdict == Verdict::Nothing {
                    report.none_correct += 1;
                } else if let Some(top) = ranked.first() {
                    *confusions.entry((0, top.id.get())).or_default() += 1;
                }
            }
            Some(expected) => {
                report.in_scope += 1;
                let ok = |id: ServiceId| id.get() == expected || item.alt.contains(&id.get());
                let top = ranked.first().map(|s| s.id);
                if top.is_some_and(ok) {
                    report.top1_correct += 1;
                } else {
                    *confusions
                        .entry((expected, top.map_or(0, ServiceId::get)))
                        .or_default() += 1;
                }
                match verdict {
                    Verdict::Service(id) if ok(id) => report.offered_correct += 1,
                    Verdict::Ambiguous(ids) => {
                        report.ambiguous += 1;
                        if ids.into_iter().any(ok) {
                            report.offered_correct += 1;
                        }
                    }
                    Verdict::Nothing => report.missed += 1,
                    Verdict::Service(_) => {}
                }
            }
        }
    }
    report.top1_accuracy = ratio(report.top1_correct, report.in_scope);
    report.offered_accuracy = ratio(report.offered_correct, report.in_scope);
    report.none_accuracy = ratio(report.none_correct, report.out_of_scope);
    let mut confusions: Vec<(u16, u16, usize)> = confusions
        .into_iter()
        .map(|((e, g), n)| (e, g, n))
        .collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    report.confusions = confusions;
    report
}
