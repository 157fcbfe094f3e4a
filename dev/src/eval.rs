//! Scoring understanding against a labelled JSONL set (`kaitong-dev eval`, and the test that pins
//! the accuracy). A line is `{"text": "...", "service": 7 | null, "alt": [47]}`; a slot line
//! adds the values expected in the form, `"slots": {"seller_account": "shop_a1"}`, and optionally
//! `"noticed"` (values the bot must answer about instead of using), `"unsure"` (uncued values it
//! asks about before filling) and `"extra_accounts"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use kaitong::dialog::understand::{Matcher, Verdict};
use kaitong::domain::ServiceId;

#[derive(Debug, Deserialize)]
pub struct Labelled {
    pub text: String,
    pub service: Option<u16>,
    #[serde(default)]
    pub alt: Vec<u16>,
    /// Expected form values (canonical display text); present on slot lines only.
    #[serde(default)]
    pub slots: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub noticed: BTreeMap<String, String>,
    #[serde(default)]
    pub unsure: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_accounts: Vec<String>,
    #[serde(default)]
    pub class: Option<String>,
    /// The set's kind of line (`symptom`, `oos`, `act`, …), when it says.
    #[serde(default)]
    pub style: Option<String>,
    /// An own-request act line: `status`, `why_rejected`, `my_requests` or `withdraw`.
    #[serde(default)]
    pub act: Option<String>,
}

/// The slot metric: a line is exact when every expected value is found and nothing else is.
#[derive(Debug, Default, Serialize)]
pub struct SlotReport {
    pub lines: usize,
    pub exact: usize,
    pub exact_ratio: f64,
    /// Lines whose noticed values and extra accounts are also exactly as expected.
    pub fully_answered: usize,
    pub fully_answered_ratio: f64,
    /// (text, expected, got) of every line that is not exact.
    pub misses: Vec<(String, String, String)>,
}

fn show(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scores slot extraction on the lines that carry `slots`, each against its labelled service.
#[must_use]
pub fn evaluate_slots(
    catalog: &kaitong::catalog::Catalog,
    words: &kaitong::dialog::slots::SlotWords,
    set: &[Labelled],
) -> SlotReport {
    let mut report = SlotReport::default();
    for item in set {
        let (Some(expected), Some(id)) = (&item.slots, item.service) else {
            continue;
        };
        let Some(service) = catalog.service(ServiceId(id)) else {
            continue;
        };
        report.lines += 1;
        let found = kaitong::dialog::slots::extract(catalog, service, words, &item.text);
        let got: BTreeMap<String, String> = found
            .answers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.display(false)))
            .collect();
        if &got == expected {
            report.exact += 1;
            let noticed: BTreeMap<String, String> = found
                .noticed
                .iter()
                .map(|n| (n.key.as_str().to_owned(), n.raw.clone()))
                .collect();
            let unsure: BTreeMap<String, String> = found
                .unsure
                .iter()
                .map(|u| (u.key.as_str().to_owned(), u.raw.clone()))
                .collect();
            if noticed == item.noticed
                && unsure == item.unsure
                && found.extra_accounts == item.extra_accounts
            {
                report.fully_answered += 1;
            } else {
                report.misses.push((
                    item.text.clone(),
                    format!(
                        "noticed {} unsure {} extra {:?}",
                        show(&item.noticed),
                        show(&item.unsure),
                        item.extra_accounts
                    ),
                    format!(
                        "noticed {} unsure {} extra {:?}",
                        show(&noticed),
                        show(&unsure),
                        found.extra_accounts
                    ),
                ));
            }
        } else {
            report
                .misses
                .push((item.text.clone(), show(expected), show(&got)));
        }
    }
    report.exact_ratio = ratio(report.exact, report.lines);
    report.fully_answered_ratio = ratio(report.fully_answered, report.lines);
    report
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
    /// In-scope lines taken without asking (one clear winner) that are right …
    pub taken_right: usize,
    pub taken_right_ratio: f64,
    /// … and WRONG: the costly error (a form for a service nobody asked for).
    pub taken_wrong: usize,
    pub taken_wrong_ratio: f64,
    /// Out-of-scope lines recognised as such: nothing matched, or answered as small talk or as
    /// a question about a service (no form started).
    pub none_correct: usize,
    pub none_accuracy: f64,
    /// Own-request act lines (`"act"`: status, why_rejected, my_requests, withdraw) …
    pub acts: usize,
    /// … read as that act in plain words (`commands::parse_plain`).
    pub act_correct: usize,
    pub act_accuracy: f64,
    /// (text, act) of every act line not read as its act.
    pub act_misses: Vec<(String, String)>,
    /// Request lines read as a question about one's own requests (a request lost).
    pub requests_read_as_acts: usize,
    /// The median time of understanding one line (ranking and verdict; the message's vector
    /// is computed before), in microseconds.
    pub median_us: f64,
    /// (text, expected, what the bot did) of every line not taken right, out-of-scope lines
    /// not recognised included.
    pub misses: Vec<(String, u16, String)>,
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
            let mut labelled: Labelled = serde_json::from_str(l).map_err(|e| EvalError {
                line: i + 1,
                reason: e.to_string(),
            })?;
            // Lines are what people typed in a group chat; the dialog sees them as the
            // AI-bot channel hands them over, @mentions stripped.
            labelled.text = kaitong::channel::strip_mentions(&labelled.text);
            Ok(labelled)
        })
        .collect()
}

#[allow(clippy::cast_precision_loss)]
fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Scores understanding by words alone.
#[must_use]
pub fn evaluate(matcher: &Matcher, set: &[Labelled]) -> EvalReport {
    let mut report = evaluate_with(set, |item, _| {
        let ranked = matcher.rank(&item.text);
        let verdict = first_message(matcher, &item.text, matcher.verdict(&ranked));
        (ranked, verdict)
    });
    evaluate_acts(matcher, set, &mut report);
    report
}

/// What the bot does with a first message beside ranking: small talk and a question about a
/// service (`Matcher::asks_about`) start no form, whatever the ranking says.
fn first_message(matcher: &Matcher, text: &str, verdict: Verdict) -> Verdict {
    if matcher.tuning().small_talk(text).is_some() || matcher.asks_about(text) {
        Verdict::Nothing
    } else {
        verdict
    }
}

/// Whether `text` is read as the act `act` (the set's names) in plain words.
fn reads_as_act(matcher: &Matcher, text: &str, act: &str) -> bool {
    use kaitong::dialog::commands::{RequestCommand as C, parse_plain};
    let Some(command) = parse_plain(text, &matcher.tuning().plain_commands) else {
        return false;
    };
    match act {
        "status" => matches!(
            command,
            C::Status(_) | C::LatestStatus | C::LatestStatusOf(_)
        ),
        "why_rejected" => matches!(command, C::LatestRejected),
        "my_requests" => matches!(command, C::Mine | C::Today { .. }),
        "withdraw" => matches!(
            command,
            C::Cancel(_) | C::CancelLatest | C::CancelLatestOf(_)
        ),
        _ => false,
    }
}

/// Scores the hybrid with meaning in `space`; `queries[i]` is line i's vector in that space.
#[must_use]
pub fn evaluate_meaning(
    matcher: &Matcher,
    space: &kaitong::dialog::meaning::Space,
    queries: &[kaitong::embed::Vector],
    set: &[Labelled],
) -> EvalReport {
    let times = std::cell::RefCell::new(Vec::with_capacity(set.len()));
    let mut report = evaluate_with(set, |item, i| {
        let started = std::time::Instant::now();
        let u = matcher.understand_with(&item.text, queries.get(i).map(|q| (space, q.as_slice())));
        let verdict = first_message(matcher, &item.text, u.verdict);
        times
            .borrow_mut()
            .push(started.elapsed().as_secs_f64() * 1e6);
        (u.ranked, verdict)
    });
    let mut times = times.into_inner();
    times.sort_by(f64::total_cmp);
    report.median_us = times.get(times.len() / 2).copied().unwrap_or(0.0);
    evaluate_acts(matcher, set, &mut report);
    report
}

/// Scores any understanding: `understand(line, index)` gives the ranking and the verdict.
/// Act lines (`"act"`) are scored by [`evaluate_acts`], not here.
pub fn evaluate_with(
    set: &[Labelled],
    understand: impl Fn(&Labelled, usize) -> (Vec<kaitong::dialog::understand::Scored>, Verdict),
) -> EvalReport {
    let mut report = EvalReport::default();
    let mut confusions: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    for (i, item) in set.iter().enumerate() {
        report.lines += 1;
        if item.act.is_some() {
            report.acts += 1;
            continue;
        }
        let (ranked, verdict) = understand(item, i);
        match item.service {
            None => {
                report.out_of_scope += 1;
                if verdict == Verdict::Nothing {
                    report.none_correct += 1;
                } else if let Some(top) = ranked.first() {
                    report
                        .misses
                        .push((item.text.clone(), 0, format!("{verdict:?}")));
                    *confusions.entry((0, top.id.get())).or_default() += 1;
                }
            }
            Some(expected) => {
                report.in_scope += 1;
                let ok = |id: ServiceId| id.get() == expected || item.alt.contains(&id.get());
                let top = ranked.first().map(|s| s.id);
                if !matches!(verdict, Verdict::Service(id) if ok(id)) {
                    report
                        .misses
                        .push((item.text.clone(), expected, format!("{verdict:?}")));
                }
                if top.is_some_and(ok) {
                    report.top1_correct += 1;
                } else {
                    *confusions
                        .entry((expected, top.map_or(0, ServiceId::get)))
                        .or_default() += 1;
                }
                match verdict {
                    Verdict::Service(id) if ok(id) => {
                        report.offered_correct += 1;
                        report.taken_right += 1;
                    }
                    Verdict::Ambiguous(ids) => {
                        report.ambiguous += 1;
                        if ids.into_iter().any(ok) {
                            report.offered_correct += 1;
                        }
                    }
                    Verdict::Nothing => report.missed += 1,
                    Verdict::Service(_) => report.taken_wrong += 1,
                }
            }
        }
    }
    report.top1_accuracy = ratio(report.top1_correct, report.in_scope);
    report.offered_accuracy = ratio(report.offered_correct, report.in_scope);
    report.none_accuracy = ratio(report.none_correct, report.out_of_scope);
    report.taken_right_ratio = ratio(report.taken_right, report.in_scope);
    report.taken_wrong_ratio = ratio(report.taken_wrong, report.in_scope);
    let mut confusions: Vec<(u16, u16, usize)> = confusions
        .into_iter()
        .map(|((e, g), n)| (e, g, n))
        .collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    report.confusions = confusions;
    report
}

/// Scores the act lines of `set` into `report`: each must be read as its act in plain words.
fn evaluate_acts(matcher: &Matcher, set: &[Labelled], report: &mut EvalReport) {
    let (read, missed): (Vec<_>, Vec<_>) = set
        .iter()
        .filter_map(|l| l.act.as_deref().map(|a| (l, a)))
        .partition(|(l, act)| reads_as_act(matcher, &l.text, act));
    report.act_correct = read.len();
    report.requests_read_as_acts = set
        .iter()
        .filter(|l| l.service.is_some())
        .filter(|l| {
            kaitong::dialog::commands::parse_plain(&l.text, &matcher.tuning().plain_commands)
                .is_some()
        })
        .count();
    report.act_misses = missed
        .into_iter()
        .map(|(l, act)| (l.text.clone(), act.to_owned()))
        .collect();
    report.act_accuracy = ratio(report.act_correct, report.acts);
}
