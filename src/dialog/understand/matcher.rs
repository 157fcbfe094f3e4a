//! Ranking services from free text. Scoring is deliberately general (no rules for single lines):
//! - every name, alias and keyword of a service is a phrase; a phrase found in the text scores
//!   the sum of its characters' distinctiveness (IDF over the catalog), so words shared by many
//!   services ("旗舰版", "上限调整") weigh little and specific ones ("发票", "解绑") weigh much;
//! - a phrase found in the text's toneless pinyin also counts (homophone typos "发漂", pinyin typed
//!   as "fapiao"), slightly discounted; so does a phrase with one mistyped character;
//! - a partial overlap (the longest common run of characters) counts proportionally.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::tuning::Tuning;
use crate::catalog::{Catalog, Service};
use crate::dialog::examples::ExampleIndex;
use crate::dialog::text::{fold, to_pinyin};
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

/// One service's name held whole inside another service's longer name ("超期订单预警" inside
/// "超期订单预警界面汇总看板", "物流追踪" inside "韵达物流追踪"). A message that names the
/// shorter one in full and also says some of the longer name's other words ("…预警的看板",
/// "韵达的物流追踪") means the longer, more specific one: the generic name must not win on
/// being named "in full" (issue 21, class 2).
struct Nested {
    /// The service with the longer name.
    outer: ServiceId,
    /// The service whose name is held inside it.
    inner: ServiceId,
    /// The inner name, folded.
    inner_chars: Vec<char>,
    /// The inner name's weight: what the outer one scores at least when it is meant.
    inner_weight: f32,
    /// The outer name's characters before and after the inner name.
    rest: [Vec<char>; 2],
    /// Every name of the inner service: words of these are no sign of the outer one.
    inner_names: Vec<Vec<char>>,
}

/// The catalog, indexed for ranking.
pub struct Matcher {
    entries: Vec<Entry>,
    idf: HashMap<char, f32>,
    /// The words of every service's examples, for the blend by meaning.
    examples: ExampleIndex,
    tuning: Tuning,
    /// Every distinct phrase pinyin long enough to match on its own, found in a message's
    /// pinyin in one pass (a substring search per phrase was a tenth of a turn, issue 13).
    pinyin_patterns: Option<aho_corasick::AhoCorasick>,
    /// Identifies this index for the ranking memo (see [`Matcher::rank`]); unique per process.
    generation: u64,
    /// Every service name and alias as written, and those holding one of the reading's
    /// connectives ("回传备注和标旗上限调整"): a message is never cut inside them.
    phrases: Vec<String>,
    joined_names: Vec<String>,
    /// How specific each service's phrases are across the catalog (the learned ranking).
    specific: crate::dialog::learned::PhraseIndex,
    /// The examples' sounds (the learned ranking).
    sounds: ExampleIndex,
    /// Names held inside other services' names.
    nested: Vec<Nested>,
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
        let phrases: Vec<String> = services
            .iter()
            .flat_map(|s| phrases_of(s).map(str::to_owned))
            .collect();
        let nested = nested_names(&entries);
        Self {
            nested,
            entries,
            idf,
            pinyin_patterns,
            examples: ExampleIndex::new(catalog),
            specific: crate::dialog::learned::PhraseIndex::new(catalog),
            sounds: ExampleIndex::sounds(catalog),
            joined_names: joined_names(&phrases, &tuning),
            phrases,
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
        self.joined_names = joined_names(&self.phrases, &tuning);
        self.tuning = tuning;
    }

    /// The service names and aliases that hold a connective of `[reading]`, as written.
    #[must_use]
    pub fn joined_names(&self) -> &[String] {
        &self.joined_names
    }

    /// The words of the catalog's examples.
    #[must_use]
    pub fn examples(&self) -> &ExampleIndex {
        &self.examples
    }

    /// The examples by their sounds (toneless pinyin).
    #[must_use]
    pub fn example_sounds(&self) -> &ExampleIndex {
        &self.sounds
    }

    /// How specific each service's phrases are.
    #[must_use]
    pub fn specific_phrases(&self) -> &crate::dialog::learned::PhraseIndex {
        &self.specific
    }

    /// Whether the folded text holds one of `markers` as a word: a marker of two or more
    /// characters anywhere, a one-character marker only as a word of its own (jieba's cut) or
    /// followed by one of `cue_word_endings` ("开个"), never inside another word (提 in 提交,
    /// 开 in 开通, 要 in 重要).
    fn has_word(&self, folded: &str, words: &[&str], markers: &[String]) -> bool {
        markers.iter().any(|m| {
            let mut chars = m.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => words.iter().any(|w| {
                    let mut wc = w.chars();
                    wc.next() == Some(c)
                        && (wc.as_str().is_empty()
                            || self
                                .tuning
                                .cue_word_endings
                                .iter()
                                .any(|e| e == wc.as_str()))
                }),
                (Some(_), Some(_)) => folded.contains(m.as_str()),
                _ => false,
            }
        })
    }

    /// Whether a message asks how to do something in the ERP (a question marker and no request
    /// word, both as words): such a message is no request to enable a service.
    #[must_use]
    pub fn asks_how(&self, text: &str) -> bool {
        let folded = fold(text);
        let words: Vec<&str> = crate::embed::static_table::words(&folded);
        if !self.has_word(&folded, &words, &self.tuning.question_markers) {
            return false;
        }
        // "怎么调", "如何申请": the verb a how-word asks about is no request.
        let mut asked = String::new();
        let mut request_words: Vec<&str> = Vec::with_capacity(words.len());
        let mut after_how = false;
        for w in &words {
            if !after_how {
                request_words.push(w);
                asked.push_str(w);
                asked.push(' ');
            }
            after_how = self.tuning.how_words.iter().any(|h| h == w);
        }
        !self.has_word(&asked, &request_words, &self.tuning.request_markers)
    }

    /// Whether a message names a customer by an account-shaped token ("a_1", "shop2024").
    #[must_use]
    pub fn names_customer(text: &str) -> bool {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .any(|tok| {
                tok.len() >= 3
                    && tok.chars().any(|c| c.is_ascii_digit() || c == '_')
                    && crate::catalog::value::is_seller_account(tok)
            })
    }

    /// Which pinyin patterns occur in `text_pinyin` (overlapping occurrences count).
    fn pinyin_hits(&self, text_pinyin: &str) -> Vec<bool> {
        let Some(patterns) = &self.pinyin_patterns else {
            return Vec::new();
        };
        let mut hits = vec![false; patterns.patterns_len()];
        for found in patterns.find_overlapping_iter(text_pinyin) {
            if let Some(hit) = hits.get_mut(found.pattern().as_usize()) {
                *hit = true;
            }
        }
        hits
    }

    /// The nested names `chars` means the longer of, with the weight of the longer name's own
    /// words it says: the inner name is there in full, a run of 2+ specific characters of the
    /// rest of the outer name is there too, and the outer name itself is not there whole.
    fn more_specific(&self, chars: &[char]) -> Vec<(&Nested, f32)> {
        self.nested
            .iter()
            .filter_map(|n| self.said_of_outer(n, chars).map(|said| (n, said)))
            .collect()
    }

    /// How much of `n`'s outer name `chars` says beside the inner name, if any.
    ///
    /// The outer name's own words must stand next to the inner name, on their side of it, at
    /// most one character apart ("超期订单预警的看板", "韵达的物流追踪"): a value said elsewhere
    /// ("自流转类型 菜鸟") is no sign of "菜鸟自流转…". They must not be words of the inner
    /// service's names too (抖音 names #24 and #25).
    fn said_of_outer(&self, n: &Nested, chars: &[char]) -> Option<f32> {
        let len = n.inner_chars.len();
        let said = (0..chars.len().saturating_sub(len - 1))
            .filter(|&at| chars[at..at + len] == *n.inner_chars)
            .map(|at| {
                self.said_beside(chars, &n.rest[0], &n.inner_names, |k| {
                    [at.checked_sub(k), at.checked_sub(k + 1)]
                }) + self.said_beside(chars, &n.rest[1], &n.inner_names, |_| {
                    [Some(at + len), Some(at + len + 1)]
                })
            })
            .fold(0.0f32, f32::max);
        (said > 0.0).then_some(said)
    }

    /// The weight of the longest specific run (2+ characters) of `rest` that `chars` holds at
    /// one of the positions `starts` gives for the run's length.
    fn said_beside(
        &self,
        chars: &[char],
        rest: &[char],
        inner_names: &[Vec<char>],
        starts: impl Fn(usize) -> [Option<usize>; 2],
    ) -> f32 {
        for k in (2..=rest.len()).rev() {
            let best = rest
                .windows(k)
                .filter(|w| {
                    starts(k)
                        .into_iter()
                        .flatten()
                        .any(|at| chars.get(at..at + k) == Some(*w))
                })
                .filter(|w| !self.is_generic(w) && !inner_names.iter().any(|n| contains(n, w)))
                .map(|w| w.iter().map(|&c| self.char_weight(c)).sum::<f32>())
                .fold(0.0f32, f32::max);
            if best > 0.0 {
                return best;
            }
        }
        0.0
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
        let discount = if self.asks_how(text) {
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
            .collect();
        // The more specific service scores at least what the shorter name scored, plus the
        // words of its own it was told.
        for (n, said) in self.more_specific(&chars) {
            let inner = scored
                .iter()
                .find(|s| s.id == n.inner)
                .map_or(n.inner_weight * discount, |s| s.score);
            if let Some(outer) = scored.iter_mut().find(|s| s.id == n.outer) {
                outer.score = outer.score.max(inner + said * discount);
            }
        }
        scored.retain(|s| s.score >= self.tuning.min_score);
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
    ///
    /// A shorter name said inside a longer, more specific one's words ("超期订单预警的看板")
    /// names the longer one in full, not the shorter.
    #[must_use]
    pub fn names_fully(&self, id: ServiceId, text: &str) -> bool {
        let chars: Vec<char> = fold(text).chars().collect();
        let named = self
            .entries
            .iter()
            .filter(|e| e.id == id)
            .flat_map(|e| &e.names)
            .any(|p| p.chars.len() >= 3 && contains(&chars, &p.chars));
        // Only the pairs this service is part of, on its side: `names_fully` runs for many
        // services per turn.
        let said = |n: &Nested| self.said_of_outer(n, &chars).is_some();
        if named {
            !self.nested.iter().filter(|n| n.inner == id).any(said)
        } else {
            self.nested.iter().filter(|n| n.outer == id).any(said)
        }
    }

    /// Whether a message asks ABOUT a service (its price, its difference from another, its
    /// effects: `[reading] info_question_markers`) rather than for it: no customer named and no
    /// outright request word. The bot answers it as a question and starts no form.
    #[must_use]
    pub fn asks_about(&self, text: &str) -> bool {
        let words = &self.tuning.reading;
        let folded = fold(text);
        let asks_info = words
            .info_question_markers
            .iter()
            .any(|m| folded.contains(m.as_str()));
        if !asks_info {
            return false;
        }
        let asks_for = words
            .outright_request_words
            .iter()
            .any(|m| folded.contains(m.as_str()));
        !asks_for && !Self::names_customer(text)
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
        // "调到350 打错了 是300" corrects the number: digits alone name no service (#46's name
        // holds 300).
        let Verdict::Service(wanted) = self.verdict(&self.rank_words(after)) else {
            return None;
        };
        // "订单合并上限100 不对 合并的要120": the wanted service was named before the marker, so
        // the marker corrects its value, not the service.
        if self.names_fully(wanted, before) {
            return None;
        }
        let before = self.rank(before);
        let dropped = before.first().map(|s| s.id)?;
        (dropped != wanted).then_some((dropped, wanted))
    }
}

/// Every pair of services where one's name (3+ characters) sits inside the other's.
fn nested_names(entries: &[Entry]) -> Vec<Nested> {
    let mut nested = Vec::new();
    for outer in entries {
        for inner in entries.iter().filter(|e| e.id != outer.id) {
            for po in &outer.names {
                for pi in inner.names.iter().filter(|p| p.chars.len() >= 3) {
                    let Some(at) = po.chars.windows(pi.chars.len()).position(|w| w == pi.chars)
                    else {
                        continue;
                    };
                    let rest = [
                        po.chars[..at].to_vec(),
                        po.chars[at + pi.chars.len()..].to_vec(),
                    ];
                    // A service's name and seed name are often the same text: one pair each.
                    let known = nested.iter().any(|n: &Nested| {
                        n.outer == outer.id && n.inner_chars == pi.chars && n.rest == rest
                    });
                    if po.chars.len() == pi.chars.len() || known {
                        continue;
                    }
                    nested.push(Nested {
                        outer: outer.id,
                        inner: inner.id,
                        inner_chars: pi.chars.clone(),
                        inner_weight: pi.weight,
                        rest,
                        inner_names: inner.names.iter().map(|p| p.chars.clone()).collect(),
                    });
                }
            }
        }
    }
    nested
}

fn joined_names(phrases: &[String], tuning: &Tuning) -> Vec<String> {
    let connectives = &tuning.reading.connectives;
    phrases
        .iter()
        .filter(|n| connectives.iter().any(|c| n.contains(c.as_str())))
        .cloned()
        .collect()
}

fn phrases_of(service: &Service) -> impl Iterator<Item = &str> {
    std::iter::once(service.name.as_str())
        .chain(std::iter::once(service.seed_name.as_str()))
        .chain(service.aliases.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matcher() -> Matcher {
        let catalog = crate::catalog::Catalog::load(std::path::Path::new("dialogs")).unwrap();
        Matcher::new(
            &catalog,
            Tuning::load(std::path::Path::new("dialogs")).unwrap(),
        )
    }

    #[test]
    fn a_name_said_with_a_longer_names_own_words_means_the_longer_one() {
        let m = matcher();
        let best = |t: &str| m.rank(t).first().map(|s| s.id.get());
        // The shorter name alone is the shorter service.
        assert_eq!(best("超期订单预警"), Some(48));
        assert_eq!(best("物流追踪"), Some(6));
        // With words only the longer name has, the longer one.
        assert_eq!(best("超期订单预警的看板"), Some(77));
        assert_eq!(best("韵达的物流追踪"), Some(64));
        assert!(m.names_fully("77".parse::<ServiceId>().unwrap(), "超期订单预警的看板"));
        assert!(!m.names_fully("48".parse::<ServiceId>().unwrap(), "超期订单预警的看板"));
        // Generic words and the inner name's own letters are no such sign.
        assert_eq!(best("开通超期订单预警"), Some(48));
        assert!(m.names_fully("48".parse::<ServiceId>().unwrap(), "开通超期订单预警"));
        // Only next to the inner name: a field's value said elsewhere is no sign.
        assert_ne!(best("自流转多仓要开 自流转类型 菜鸟"), Some(80));
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
}
