//! Understanding: which service a free-text message asks for, and which field values it
//! already carries. Local and pure; built once per catalog snapshot.
//!
//! Scoring is deliberately general (no rules for single lines):
//! - every name, alias and keyword of a service is a phrase; a phrase found in the text scores
//!   the sum of its characters' distinctiveness (IDF over the catalog), so words shared by many
//!   services ("旗舰版", "上限调整") weigh little and specific ones ("发票", "解绑") weigh much;
//! - a phrase found in the text's toneless pinyin also counts (homophone typos "发漂", pinyin typed
//!   as "fapiao"), slightly discounted; so does a phrase with one mistyped character;
//! - a partial overlap (the longest common run of characters) counts proportionally.

use std::collections::{BTreeMap, HashMap, HashSet};

use pinyin::ToPinyin;
use regex::Regex;
use serde::Serialize;

use crate::catalog::value::normalize_width;
use crate::catalog::{Catalog, Service};
use crate::domain::ServiceId;

/// A ranked service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    pub id: ServiceId,
    pub score: f32,
}

/// What the matcher concluded about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// One clear winner.
    Service(ServiceId),
    /// A close call between these (best first).
    Ambiguous(Vec<ServiceId>),
    /// Nothing in the catalog matches.
    Nothing,
}

struct Phrase {
    /// Folded (width-normalised, lower-case, no spaces/punctuation) characters.
    chars: Vec<char>,
    /// Toneless pinyin of the phrase, concatenated (ASCII kept as is).
    pinyin: String,
    /// Where this phrase's pinyin is among the matcher's pinyin patterns; `None` when the
    /// pinyin is too short (or not ASCII) to be matched on its own.
    pinyin_pattern: Option<usize>,
    weight: f32,
}

struct Entry {
    id: ServiceId,
    names: Vec<Phrase>,
    keywords: Vec<Phrase>,
}

/// The catalog, indexed for ranking.
pub struct Matcher {
    entries: Vec<Entry>,
    idf: HashMap<char, f32>,
    /// The words of every service's examples, for the blend by meaning.
    examples: super::examples::ExampleIndex,
    tuning: Tuning,
    /// Every distinct phrase pinyin long enough to match on its own, found in a message's
    /// pinyin in one pass (a substring search per phrase was a tenth of a turn, issue 13).
    pinyin_patterns: Option<aho_corasick::AhoCorasick>,
    /// How many patterns `pinyin_patterns` holds.
    pinyin_pattern_count: usize,
    /// Identifies this index for the ranking memo (see [`Matcher::rank`]); unique per process.
    generation: u64,
}

/// Where matcher generations come from: every `Matcher::new` takes the next one, so a memo
/// entry of a replaced matcher (catalog reload) can never be mistaken for the new one's.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// The last ranking computed on this thread: (matcher generation, text, ranking).
    ///
    /// One turn ranks the same message several times: the bot ranks a new request to decide
    /// whether to embed it, then the engine ranks it again to understand it; mid-form, a
    /// message is ranked by `rank` and `rank_words`, which are the same text when it has no
    /// digits. Each ranking costs ~80 µs (issue 13). Ranking is a pure function of the
    /// matcher and the text, so returning the remembered result is exact, whatever thread or
    /// task asks; a one-entry memo per thread is enough because the repeats come back to back.
    static LAST_RANKING: std::cell::RefCell<Option<(u64, String, Vec<Scored>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `dialogs/understanding.toml`: the knobs and word lists of understanding.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    pub generic_words: Vec<String>,
    pub question_markers: Vec<String>,
    pub request_markers: Vec<String>,
    /// Words that interrupt a free-text answer with another request ("等下", "先", "另外").
    pub interrupt_markers: Vec<String>,
    /// Words that correct the service named before them in the same message ("电子发票 额
    /// 不对 是物流追踪"): what follows the last one is what the person wants.
    #[serde(default)]
    pub correction_markers: Vec<String>,
    pub question_discount: f32,
    pub min_score: f32,
    pub close_call: f32,
    pub greetings: Vec<String>,
    pub thanks: Vec<String>,
    pub acknowledgements: Vec<String>,
    pub commands: CommandWords,
    pub slots: super::slots::SlotWords,
    /// Status, "my requests" and withdrawal in plain words.
    pub plain_commands: super::commands::PlainWords,
    /// The words of the chat commands about filed requests (查询, 撤回, 完成 …).
    pub chat_commands: super::commands::ChatWords,
    /// The hybrid with meaning; without it understanding is by words alone.
    #[serde(default)]
    pub meaning: Option<super::meaning::MeaningTuning>,
}

/// Words for the conversation commands; each list holds whole-message forms.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandWords {
    pub cancel: Vec<String>,
    pub back: Vec<String>,
    pub skip: Vec<String>,
    pub help: Vec<String>,
    pub confirm: Vec<String>,
    pub edit: Vec<String>,
    pub yes: Vec<String>,
    pub no: Vec<String>,
    pub resume: Vec<String>,
    /// Answers to "switch to the other service?": switch now, queue it, or keep filling.
    pub switch: Vec<String>,
    pub later: Vec<String>,
    pub keep: Vec<String>,
    /// "已确认" and the like: never a new request when nothing waits for confirmation.
    pub confirm_like: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TuningError {
    pub path: String,
    pub reason: String,
}

impl Tuning {
    /// Loads `understanding.toml` from the dialogs folder.
    pub fn load(dir: &std::path::Path) -> Result<Self, TuningError> {
        let path = dir.join("understanding.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| TuningError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut tuning: Tuning = toml::from_str(&text).map_err(|e| TuningError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let c = &mut tuning.commands;
        for list in [
            &mut tuning.generic_words,
            &mut tuning.greetings,
            &mut tuning.thanks,
            &mut tuning.acknowledgements,
            &mut c.cancel,
            &mut c.back,
            &mut c.skip,
            &mut c.help,
            &mut c.confirm,
            &mut c.edit,
            &mut c.yes,
            &mut c.no,
            &mut c.resume,
            &mut c.switch,
            &mut c.later,
            &mut c.keep,
            &mut c.confirm_like,
            &mut tuning.interrupt_markers,
            &mut tuning.correction_markers,
            // Folded here once, not per message (`commands::parse_plain` compares as they are).
            &mut tuning.plain_commands.status,
            &mut tuning.plain_commands.mine,
            &mut tuning.plain_commands.cancel,
        ] {
            for word in list.iter_mut() {
                *word = fold(word);
            }
        }
        tuning.chat_commands = std::mem::take(&mut tuning.chat_commands)
            .checked()
            .map_err(|reason| TuningError {
                path: path.display().to_string(),
                reason,
            })?;
        Ok(tuning)
    }

    /// The folded message without trailing particles, for whole-message word lists.
    #[must_use]
    pub fn core(text: &str) -> String {
        let folded = fold(text);
        core_of(&folded).to_owned()
    }

    /// Whether the whole message is one of `words`.
    #[must_use]
    pub fn is(words: &[String], text: &str) -> bool {
        // One fold, not two (`core` folds too); a turn asks this of a dozen word lists.
        let folded = fold(text);
        let core = core_of(&folded);
        words.iter().any(|w| w == core || *w == folded)
    }

    /// Whether the whole message is a greeting or a thank-you (trailing particles ignored).
    #[must_use]
    pub fn small_talk(&self, text: &str) -> Option<SmallTalk> {
        let folded = fold(text);
        let core = folded.trim_end_matches(['啊', '呀', '哈', '呢', '吧', '哦', '了', '啦', '~']);
        if core.is_empty() {
            return None;
        }
        if self.greetings.iter().any(|g| g == core || g == &folded) {
            Some(SmallTalk::Greeting)
        } else if self.thanks.iter().any(|t| t == core || t == &folded) {
            Some(SmallTalk::Thanks)
        } else if self
            .acknowledgements
            .iter()
            .any(|t| t == core || t == &folded)
        {
            Some(SmallTalk::Acknowledgement)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTalk {
    Greeting,
    Thanks,
    Acknowledgement,
}

/// A folded message without trailing particles (the whole folded text if nothing else is left).
fn core_of(folded: &str) -> &str {
    let core = folded.trim_end_matches(['啊', '呀', '哈', '呢', '吧', '哦', '了', '啦', '~']);
    if core.is_empty() { folded } else { core }
}

thread_local! {
    /// The last text folded on this thread and its fold. A turn folds the same message dozens
    /// of times (every whole-message word list, the plain commands, ranking, slots), and each
    /// fold is NFKC + lower-casing + a filter with three allocations: with the memo a turn
    /// folds its message once (issue 13; `fold` was 14 % of the server's CPU). `fold` is a pure
    /// function of the text, so the remembered answer is exact.
    static LAST_FOLD: std::cell::RefCell<(String, String)> =
        const { std::cell::RefCell::new((String::new(), String::new())) };
}

/// Lower-cases, normalises width, drops whitespace, punctuation and leading @mentions.
#[must_use]
pub fn fold(text: &str) -> String {
    if let Some(folded) = LAST_FOLD.with_borrow(|(t, f)| (t == text).then(|| f.clone())) {
        return folded;
    }
    let folded = fold_uncached(text);
    LAST_FOLD.with_borrow_mut(|last| {
        last.0.clear();
        last.0.push_str(text);
        last.1.clone_from(&folded);
    });
    folded
}

fn fold_uncached(text: &str) -> String {
    let text = normalize_width(text);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Toneless pinyin of each Chinese character; other characters kept as they are.
#[must_use]
pub fn to_pinyin(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len() * 3);
    for (c, py) in folded.chars().zip(folded.to_pinyin()) {
        match py {
            Some(p) => out.push_str(p.plain()),
            None => out.push(c),
        }
    }
    out
}

fn longest_common_run(a: &[char], b: &[char]) -> usize {
    // Two reused rows of the classic dynamic programme; phrases are short.
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for &ca in a {
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

/// Whether `needle` occurs in `hay` with at most one substituted character.
fn contains_with_one_typo(hay: &[char], needle: &[char]) -> bool {
    if needle.len() < 3 || hay.len() < needle.len() {
        return false;
    }
    hay.windows(needle.len())
        .any(|w| w.iter().zip(needle).filter(|(a, b)| a != b).count() <= 1)
}

fn contains(hay: &[char], needle: &[char]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay.windows(needle.len()).any(|w| w == needle)
}

impl Matcher {
    #[must_use]
    pub fn new(catalog: &Catalog, tuning: Tuning) -> Self {
        // Document frequency of each character across services.
        let mut df: HashMap<char, usize> = HashMap::new();
        let services: Vec<&Service> = catalog.services().collect();
        for service in &services {
            let mut seen = HashSet::new();
            for phrase in phrases_of(service).chain(service.keywords.iter().map(String::as_str)) {
                seen.extend(fold(phrase).chars());
            }
            for c in seen {
                *df.entry(c).or_default() += 1;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let n = services.len().max(1) as f32;
        #[allow(clippy::cast_precision_loss)]
        let idf: HashMap<char, f32> = df
            .into_iter()
            .map(|(c, d)| (c, ((n + 1.0) / (d as f32 + 0.5)).ln().max(0.05)))
            .collect();
        let phrase = |text: &str| {
            let folded = fold(text);
            let chars: Vec<char> = folded.chars().collect();
            let weight = chars
                .iter()
                .map(|c| idf.get(c).copied().unwrap_or(1.0))
                .sum();
            Phrase {
                pinyin: to_pinyin(&folded),
                pinyin_pattern: None,
                chars,
                weight,
            }
        };
        let mut entries: Vec<Entry> = services
            .iter()
            .map(|s| Entry {
                id: s.id,
                names: phrases_of(s)
                    .map(phrase)
                    .filter(|p| !p.chars.is_empty())
                    .collect(),
                keywords: s
                    .keywords
                    .iter()
                    .map(|k| phrase(k))
                    .filter(|p| !p.chars.is_empty())
                    .collect(),
            })
            .collect();
        let mut patterns: Vec<String> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        for p in entries
            .iter_mut()
            .flat_map(|e| e.names.iter_mut().chain(e.keywords.iter_mut()))
        {
            // Pinyin matches need some length, or "an" would match everything.
            if p.pinyin.len() >= 4 && p.pinyin.is_ascii() {
                let slot = *slot_of.entry(p.pinyin.clone()).or_insert_with(|| {
                    patterns.push(p.pinyin.clone());
                    patterns.len() - 1
                });
                p.pinyin_pattern = Some(slot);
            }
        }
        // Building fails only on patterns beyond the crate's size limits; matching then falls
        // back to no pinyin matches rather than refusing the catalog.
        let pinyin_patterns = aho_corasick::AhoCorasick::new(&patterns)
            .map_err(|e| tracing::warn!(error = %e, "pinyin patterns not indexed"))
            .ok();
        Self {
            entries,
            idf,
            pinyin_patterns,
            pinyin_pattern_count: patterns.len(),
            examples: super::examples::ExampleIndex::new(catalog),
            tuning,
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    #[must_use]
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Other knobs over the same index (a tuning sweep tries many without re-indexing).
    pub fn set_tuning(&mut self, tuning: Tuning) {
        self.tuning = tuning;
    }

    /// The words of the catalog's examples.
    #[must_use]
    pub fn examples(&self) -> &super::examples::ExampleIndex {
        &self.examples
    }

    /// Which pinyin patterns occur in `text_pinyin` (overlapping occurrences count).
    fn pinyin_hits(&self, text_pinyin: &str) -> Vec<bool> {
        let mut hits = vec![false; self.pinyin_pattern_count];
        if let Some(patterns) = &self.pinyin_patterns {
            for found in patterns.find_overlapping_iter(text_pinyin) {
                if let Some(hit) = hits.get_mut(found.pattern().as_usize()) {
                    *hit = true;
                }
            }
        }
        hits
    }

    fn is_generic(&self, run: &[char]) -> bool {
        let run: String = run.iter().collect();
        self.tuning.generic_words.iter().any(|g| g.contains(&run))
    }

    fn char_weight(&self, c: char) -> f32 {
        self.idf.get(&c).copied().unwrap_or(1.0)
    }

    fn phrase_score(
        &self,
        text: &[char],
        text_chars: &[char],
        pinyin_hits: &[bool],
        p: &Phrase,
        partial: bool,
    ) -> f32 {
        // How many of the phrase's characters occur in the text at all: a cheap bound that
        // rules out the costlier checks below for most phrases.
        let shared = p
            .chars
            .iter()
            .filter(|c| text_chars.binary_search(c).is_ok())
            .count();
        if shared == p.chars.len() && contains(text, &p.chars) {
            return p.weight;
        }
        if p.pinyin_pattern
            .is_some_and(|i| pinyin_hits.get(i).copied().unwrap_or(false))
        {
            return p.weight * 0.9;
        }
        if shared < 2 {
            return 0.0;
        }
        if shared + 1 >= p.chars.len() && contains_with_one_typo(text, &p.chars) {
            return p.weight * 0.75;
        }
        if !partial {
            return 0.0;
        }
        let run = longest_common_run(text, &p.chars);
        if run >= 2 && p.chars.len() > run {
            // Weight only the overlapping run, found again to sum its characters' weights.
            let mut best = 0.0f32;
            for w in p.chars.windows(run) {
                if contains(text, w) && !self.is_generic(w) {
                    best = best.max(w.iter().map(|&c| self.char_weight(c)).sum());
                }
            }
            return best * 0.6;
        }
        0.0
    }

    /// Every service with a positive score, best first.
    #[must_use]
    pub fn rank(&self, text: &str) -> Vec<Scored> {
        let remembered = LAST_RANKING.with_borrow(|last| match last {
            Some((generation, t, ranked)) if *generation == self.generation && t == text => {
                Some(ranked.clone())
            }
            _ => None,
        });
        if let Some(ranked) = remembered {
            return ranked;
        }
        let ranked = self.rank_uncached(text);
        LAST_RANKING.with_borrow_mut(|last| {
            *last = Some((self.generation, text.to_owned(), ranked.clone()));
        });
        ranked
    }

    fn rank_uncached(&self, text: &str) -> Vec<Scored> {
        let folded = fold(text);
        if folded.is_empty() {
            return Vec::new();
        }
        let chars: Vec<char> = folded.chars().collect();
        let mut text_chars = chars.clone();
        text_chars.sort_unstable();
        text_chars.dedup();
        let pinyin_hits = self.pinyin_hits(&to_pinyin(&folded));
        let asks_how = self
            .tuning
            .question_markers
            .iter()
            .any(|m| folded.contains(m.as_str()));
        let requests = self
            .tuning
            .request_markers
            .iter()
            .any(|m| folded.contains(m.as_str()));
        let discount = if asks_how && !requests {
            self.tuning.question_discount
        } else {
            1.0
        };
        let mut scored: Vec<Scored> = self
            .entries
            .iter()
            .map(|e| {
                let name = e
                    .names
                    .iter()
                    .map(|p| self.phrase_score(&chars, &text_chars, &pinyin_hits, p, true))
                    .fold(0.0f32, f32::max);
                let keywords: f32 = e
                    .keywords
                    .iter()
                    .map(|p| self.phrase_score(&chars, &text_chars, &pinyin_hits, p, false))
                    .filter(|s| *s > 0.0)
                    .sum();
                Scored {
                    id: e.id,
                    score: (name + 0.5 * keywords) * discount,
                }
            })
            .filter(|s| s.score >= self.tuning.min_score)
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        scored
    }

    /// The ranking of a message sent mid-conversation: by its words, not its numbers, since a
    /// number there answers a question ("调到300吧" is not #46 "修改拣货分组为300").
    #[must_use]
    pub fn rank_words(&self, text: &str) -> Vec<Scored> {
        if !text.contains(|c: char| c.is_ascii_digit()) {
            // The same text as `rank`'s: the memo answers when the caller ranked it just before.
            return self.rank(text);
        }
        let words: String = text.chars().filter(|c| !c.is_ascii_digit()).collect();
        self.rank(&words)
    }

    /// Whether `text` contains one of the service's names or aliases in full (3+ characters):
    /// the bar for reading a mid-form message as a request to switch services.
    #[must_use]
    pub fn names_fully(&self, id: ServiceId, text: &str) -> bool {
        let chars: Vec<char> = fold(text).chars().collect();
        self.entries
            .iter()
            .filter(|e| e.id == id)
            .flat_map(|e| &e.names)
            .any(|p| p.chars.len() >= 3 && contains(&chars, &p.chars))
    }

    /// Decides between a clear winner, a close call (2–4 options) and nothing.
    #[must_use]
    pub fn verdict(&self, ranked: &[Scored]) -> Verdict {
        let Some(best) = ranked.first() else {
            return Verdict::Nothing;
        };
        let close: Vec<ServiceId> = ranked
            .iter()
            .take_while(|s| s.score >= best.score * self.tuning.close_call)
            .take(4)
            .map(|s| s.id)
            .collect();
        if close.len() == 1 {
            return Verdict::Service(best.id);
        }
        Verdict::Ambiguous(close)
    }

    /// The service a message corrects itself to ("开个电子发票 额 不对 是物流追踪" → 物流追踪):
    /// the words after the last correction marker, when they alone have a clear winner that
    /// differs from what the words before it name.
    #[must_use]
    pub fn corrected(&self, text: &str) -> Option<(ServiceId, ServiceId)> {
        let folded = fold(text);
        let (at, marker) = self
            .tuning
            .correction_markers
            .iter()
            .filter_map(|m| folded.rfind(m.as_str()).map(|at| (at, m)))
            .max_by_key(|(at, _)| *at)?;
        let (before, after) = (&folded[..at], &folded[at + marker.len()..]);
        let Verdict::Service(wanted) = self.verdict(&self.rank(after)) else {
            return None;
        };
        let before = self.rank(before);
        let dropped = before.first().map(|s| s.id)?;
        (dropped != wanted).then_some((dropped, wanted))
    }

    /// The services a message asks for, in order: one per clause that has a clear winner.
    /// Empty for a single-clause message.
    /// Used to handle "开电子发票和物流追踪" one service at a time.
    #[must_use]
    pub fn several(&self, text: &str) -> Vec<ServiceId> {
        let clauses = split_clauses(text);
        // One clause is the whole message, which the caller ranks anyway.
        if clauses.len() < 2 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for clause in clauses {
            let ranked = self.rank(clause);
            let picked = match self.verdict(&ranked) {
                Verdict::Service(id) => Some(id),
                // A close call inside a list ("物流追踪" vs 韵达物流追踪) goes to the service the
                // clause names in full, else to the best-ranked one: a listed service is never
                // dropped, and the person sees which one was understood before filing.
                Verdict::Ambiguous(ids) => ids
                    .iter()
                    .copied()
                    .find(|&id| self.names_fully(id, clause))
                    .or_else(|| ids.first().copied()),
                Verdict::Nothing => None,
            };
            if let Some(id) = picked
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        out
    }
}

fn phrases_of(service: &Service) -> impl Iterator<Item = &str> {
    std::iter::once(service.name.as_str())
        .chain(std::iter::once(service.seed_name.as_str()))
        .chain(service.aliases.iter().map(String::as_str))
}

fn split_clauses(text: &str) -> Vec<&str> {
    static SPLIT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = SPLIT.get_or_init(|| {
        Regex::new(r"[,，、;；。+]|还有|以及|另外|顺便|再开|和")
            .unwrap_or_else(|_| unreachable_regex())
    });
    re.split(text).filter(|c| !c.trim().is_empty()).collect()
}

fn unreachable_regex() -> Regex {
    // The patterns in this file are constants covered by tests; this is never reached.
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

/// JSON shape printed by `kaitong understand`.
#[derive(Debug, Serialize)]
pub struct UnderstandReport {
    pub service: Option<ServiceRef>,
    pub candidates: Vec<CandidateRef>,
    pub slots: BTreeMap<String, String>,
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

/// Runs understanding on one utterance, as `kaitong understand` reports it.
#[must_use]
pub fn report(catalog: &Catalog, matcher: &Matcher, text: &str) -> UnderstandReport {
    report_with(catalog, matcher, text, None)
}

/// As [`report`], with the message's vector in an embedding space (the configured backend).
#[must_use]
pub fn report_with(
    catalog: &Catalog,
    matcher: &Matcher,
    text: &str,
    meaning: Option<(&super::meaning::Space, &[f32])>,
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
            super::slots::extract(catalog, s, &matcher.tuning().slots, text)
                .answers
                .iter()
                .map(|(k, v)| {
                    let sensitive = s.field(k).is_some_and(|f| f.spec.sensitive);
                    (k.as_str().to_owned(), v.display(sensitive))
                })
                .collect()
        })
        .unwrap_or_default();
    UnderstandReport {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folding_drops_width_and_punctuation() {
        // @mentions never get this far: the AI-bot channel strips them (`channel::strip_mentions`).
        assert_eq!(fold("开通ＡＢＣ１２３, 电子发票!"), "开通abc123电子发票");
    }

    #[test]
    fn pinyin_is_toneless_and_keeps_ascii() {
        assert_eq!(to_pinyin("发票abc"), "fapiaoabc");
        assert_eq!(to_pinyin("发漂"), "fapiao");
    }

    #[test]
    fn one_typo_is_tolerated_only_for_longer_phrases() {
        let hay: Vec<char> = "开个电子发漂吧".chars().collect();
        assert!(contains_with_one_typo(
            &hay,
            &"电子发票".chars().collect::<Vec<_>>()
        ));
        assert!(!contains_with_one_typo(
            &hay,
            &"发票".chars().collect::<Vec<_>>()
        ));
    }

    #[test]
    fn clauses_split_on_conjunctions() {
        assert_eq!(split_clauses("开电子发票和物流追踪").len(), 2);
        assert_eq!(split_clauses("电子发票").len(), 1);
    }
}
