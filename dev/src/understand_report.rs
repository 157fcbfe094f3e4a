//! The JSON shape `kaitong-dev understand` prints; only the CLI uses it.

use std::collections::BTreeMap;

use serde::Serialize;

use kaitong::catalog::Catalog;
use kaitong::dialog::understand::{Matcher, Verdict};
use kaitong::domain::ServiceId;

/// JSON shape printed by `kaitong-dev understand`.
#[derive(Debug, Serialize)]
pub struct UnderstandReport {
    pub service: Option<ServiceRef>,
    pub candidates: Vec<CandidateRef>,
    pub slots: BTreeMap<String, String>,
    /// The whole-message reading: the requests it makes, each with its own words and account.
    pub plan: Vec<PlannedRef>,
    /// Services named and then corrected away or taken back.
    pub dropped: Vec<u16>,
    /// Words for a customer that name no service.
    pub unread: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlannedRef {
    pub id: u16,
    pub text: String,
    pub account: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ServiceRef {
    pub id: u16,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct CandidateRef {
    pub id: u16,
    pub name: String,
    pub score: f32,
}

/// Runs understanding on one utterance, as `kaitong-dev understand` reports it; `meaning` is the
/// message's vector in an embedding space (the configured backend), when there is one.
#[must_use]
pub fn report(
    catalog: &Catalog,
    matcher: &Matcher,
    text: &str,
    meaning: Option<(&kaitong::dialog::meaning::Space, &[f32])>,
) -> UnderstandReport {
    let understood = matcher.understand_with(text, meaning);
    let ranked = understood.ranked;
    let name = |id: ServiceId| {
        catalog
            .service(id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let service = match understood.verdict {
        Verdict::Service(id) => Some(ServiceRef {
            id: id.get(),
            name: name(id),
        }),
        _ => None,
    };
    let slots = service
        .as_ref()
        .and_then(|s| catalog.service(ServiceId(s.id)))
        .map(|s| {
            kaitong::dialog::slots::extract(catalog, s, &matcher.tuning().slots, text)
                .answers
                .iter()
                .map(|(k, v)| {
                    let sensitive = s.field(k).is_some_and(|f| f.spec.sensitive);
                    (k.as_str().to_owned(), v.display(sensitive))
                })
                .collect()
        })
        .unwrap_or_default();
    let tuning = matcher.tuning();
    let reading =
        kaitong::dialog::reading::read(catalog, matcher, &tuning.reading, &tuning.slots, text);
    UnderstandReport {
        plan: reading
            .plan
            .into_iter()
            .map(|p| PlannedRef {
                id: p.service.get(),
                text: p.text,
                account: p.account,
            })
            .collect(),
        dropped: reading.dropped.iter().map(|d| d.service.get()).collect(),
        unread: reading.unread,
        service,
        candidates: ranked
            .iter()
            .take(4)
            .map(|s| CandidateRef {
                id: s.id.get(),
                name: name(s.id),
                score: (s.score * 100.0).round() / 100.0,
            })
            .collect(),
        slots,
    }
}
