//! Slot extraction: which field values a free-text message already carries for one service.
//!
//! The contract (never guess into a form):
//! - a value is taken only when it is *cued* — right after its field's label or one of its cue
//!   words ("账号 X", "仓库编码 X", "调到 3000") — or *unmistakable* by a shape only that field
//!   can have (an e-mail for the one e-mail field, an account-shaped token like `shop_a1`);
//! - every value is a literal span of the normalised message and passes its field's own parser;
//! - a value the message clearly gives but the field refuses (over the cap, not above the
//!   default, a platform not offered) is *noticed*, so the bot can say why it was not used;
//! - further seller accounts are returned in order, to be queued with the same service.
//!
//! Pure: no I/O. The word lists live in `dialogs/understanding.toml` (`[slots]`) and the
//! field cues in `dialogs/fields.toml`.

use std::borrow::Cow;
use std::ops::Range;

use regex::Regex;

use super::text::fold;

use crate::catalog::MessageKey;
use crate::catalog::value::{id_family, is_han, is_seller_account, normalize_width, number_spans};
use crate::catalog::{
    Answers, Catalog, FieldKey, FieldKind, FieldSpec, FieldValue, Service, ServiceField,
};

/// Word lists for slot extraction (`[slots]` in `dialogs/understanding.toml`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotWords {
    /// Words that introduce the new value of a service's number ("调到", "改成", "充").
    pub amount_cues: Vec<String>,
    /// "给/帮/为/替 X 开…": the words before an account …
    pub account_frames_before: Vec<String>,
    /// … and the words that may follow it.
    pub account_frames_after: Vec<String>,
    /// Labels of accounts that are not the seller account ("员工账号", "支付宝账号").
    pub foreign_account_labels: Vec<String>,
    /// A Chinese run after an account cue holding one of these is a sentence, not an account.
    pub chinese_account_stop_words: Vec<String>,
    /// Platform names, to say so when a platform is named that a service does not offer.
    pub platforms: Vec<String>,
    /// "账号 shopA 哦不 shopB": a value after the last of these replaces the one before it.
    pub correction_markers: Vec<String>,
    /// Particles that may stand between a value and the correction after it ("3000 哦不对").
    #[serde(default)]
    pub fillers: Vec<String>,
    /// Words that make free text after its label a promise, not the value ("原因等下发你").
    #[serde(default)]
    pub not_yet_words: Vec<String>,
    /// Free text after its label that only says "the same as before" ("原因一样", "同上"): no
    /// value of its own, never refused as too short.
    #[serde(default)]
    pub same_as_before: Vec<String>,
    /// Words that open free text after its label and are no part of it ("原因都是大促").
    #[serde(default)]
    pub prose_openers: Vec<String>,
    /// Request and polite words that explain nothing ("帮忙开一下"): set aside before an
    /// explanation's length is counted.
    #[serde(default)]
    pub explanation_fillers: Vec<String>,
    /// Chinese characters an explanation needs once the fillers are set aside; 0 = never offer.
    #[serde(default)]
    pub explanation_min_han: usize,
    /// A piece ending in one of these is a question, never an explanation.
    #[serde(default)]
    pub explanation_skip_endings: Vec<String>,
    /// With one of these, ids given for a list that holds some already are added to it
    /// ("单号少写一个 还有TB1003").
    #[serde(default)]
    pub list_add_words: Vec<String>,
    /// Right before a code, these say it is no account ("仓库WH_ZZ1", "编号PDD003").
    #[serde(default)]
    pub code_labels: Vec<String>,
    /// Words that end in a frame word but frame no customer ("推给wms的单子": 给 in 推给).
    #[serde(default)]
    pub frame_exceptions: Vec<String>,
    /// Names of systems and things people write in Latin letters ("wms", "erp", "sku"): never a
    /// customer's account unless said after an account label.
    #[serde(default)]
    pub not_accounts: Vec<String>,
    /// "不是 客户要看利润" where a reason is asked: the person rejects what was proposed and
    /// gives the reason after it; these openers are no part of it.
    #[serde(default)]
    pub rejection_openers: Vec<String>,
    /// A piece holding one of these asks something ("多久能好"): never offered as a reason.
    #[serde(default)]
    pub question_words: Vec<String>,
    /// "只要淘宝京东": the options after the last of these are the whole list.
    #[serde(default)]
    pub list_set_words: Vec<String>,
    /// "平台是jd和ks 不是dy": an option right after one of these is not wanted, never added.
    #[serde(default)]
    pub option_negations: Vec<String>,
    /// "快手不要了": an option of a list answered, right before one of these, leaves the list.
    #[serde(default)]
    pub option_removals: Vec<String>,
    /// Platform → its nicknames ("拼多多" → pdd): an unoffered platform is noticed by these too.
    #[serde(default)]
    pub platform_nicknames: std::collections::BTreeMap<String, Vec<String>>,
    /// Talk about the conversation, never a reason ("点错了", "没问题 提交").
    #[serde(default)]
    pub not_reason_words: Vec<String>,
}

/// A value the message gives for a field but which the field refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Noticed {
    pub key: FieldKey,
    pub label: String,
    /// What the person wrote (numbers as digits).
    pub raw: String,
    /// The field's own message saying why.
    pub why: String,
    /// The nearest value the rule allows, offered instead (the cap for an over-cap number).
    pub offer: Option<FieldValue>,
}

/// A value the message itself corrected ("账号 shopA 哦不 shopB"): the later one is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Corrected {
    pub key: FieldKey,
    pub label: String,
    /// The value given first and then taken back, as written.
    pub was: String,
}

/// What one message carries for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    pub answers: Answers,
    pub noticed: Vec<Noticed>,
    /// Seller accounts after the first, in message order.
    pub extra_accounts: Vec<String>,
    /// The literal text of the (normalised) message each answer was read from.
    pub sources: std::collections::BTreeMap<FieldKey, String>,
    /// How many letters and digits of the message are neither a cue nor a value: few means the
    /// message is just values ("抖店和快手", "原始单号 3456…"), many means a sentence.
    pub leftover_chars: usize,
    /// Answers read after their label or cue words, or named as an option: the ones a message
    /// can give for a field other than the one being asked.
    pub cued: std::collections::BTreeSet<FieldKey>,
    /// Values the message gave twice, correcting itself: the bot says which one it used.
    pub corrected: Vec<Corrected>,
    /// Values that probably answer a field but were not cued ("续费充值单量 cz_01 100000"):
    /// never filled, only asked about ("充值单量是 100000 吗?").
    pub unsure: Vec<Unsure>,
}

/// A value read without a cue, to be confirmed before it enters the form.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsure {
    pub key: FieldKey,
    pub label: String,
    pub value: FieldValue,
    /// As written.
    pub raw: String,
}

/// A cue found in the text: which field it introduces (None: a field this service lacks).
struct Cue {
    span: Range<usize>,
    field: Option<usize>,
}

struct Scan<'a> {
    text: &'a str,
    service: &'a Service,
    words: &'a SlotWords,
    /// Byte ranges already used by a cue or a value.
    used: Vec<Range<usize>>,
    /// Where the service's own name or aliases stand: no number or account inside them.
    names: Vec<Range<usize>>,
    out: Extraction,
}

/// Extracts the field values `text` carries for `service`.
///
/// A message that corrects itself ("账号 shopA 哦不 shopB", "… 不对 是账号 shopB") is read in
/// two parts around its last correction marker: what the part after it gives replaces what the
/// part before it gave, and the replaced value is reported, never silently swapped.
#[must_use]
pub fn extract(catalog: &Catalog, service: &Service, words: &SlotWords, text: &str) -> Extraction {
    // Mentions are the channel's to strip; the ends are trimmed as they always were.
    let text = normalize_width(text).trim().to_owned();
    let whole = extract_normalised(catalog, service, words, &text);
    let Some(marker) = last_marker(&text, &words.correction_markers) else {
        return whole;
    };
    // A marker inside a value ("原因: 客户说之前的配置不对") corrects nothing.
    let inside_value = whole.sources.values().any(|source| {
        text.find(source.as_str())
            .is_some_and(|at| at < marker.end && marker.start < at + source.len())
    });
    if inside_value {
        return whole;
    }
    // "调到3000 哦不对 2500": the filler before the marker belongs to it, not to the value.
    let trim = |s: &'_ str| -> usize {
        s.trim_end()
            .trim_end_matches(|c: char| words.fillers.iter().any(|f| f.starts_with(c)))
            .trim_end()
            .len()
    };
    let mut head = &text[..trim(&text[..marker.start])];
    // "仓库编号CK-07 写错了应该是CK-01": markers said in a row are one correction; the value
    // before the first of them is what it corrects.
    while let Some(m) = words
        .correction_markers
        .iter()
        .find(|m| !m.is_empty() && head.ends_with(m.as_str()))
    {
        head = &head[..trim(&head[..head.len() - m.len()])];
    }
    // "哦不对 bb那个是180", "合并那个 150": the words that point at the request are no value.
    let tail = strip_reference(text[marker.end..].trim_start());
    let mut out = extract_normalised(catalog, service, words, head);
    let mut later = extract_normalised(catalog, service, words, tail);
    // "订单合并上限100 … 哦合并那个写错了 是150": a bare number after the marker corrects the
    // service's one number given before it, wherever it stood.
    let number_before = || {
        let numbers: Vec<&FieldKey> = out
            .answers
            .keys()
            .filter(|k| {
                service
                    .field(k)
                    .is_some_and(|f| matches!(f.spec.kind, FieldKind::Integer { .. }))
            })
            .collect();
        let bare = &tail[skip_separators(tail)..];
        match numbers.as_slice() {
            [k] if bare.starts_with(|c: char| c.is_ascii_digit()) => Some((*k).clone()),
            _ => None,
        }
    };
    // Prose ends where the marker starts, so it stands "just before" every correction; what a
    // bare value after the marker corrects is another field ("原因大促单多 哦不对 要160").
    let just_before = value_just_before(&out, head)
        .filter(|k| service.field(k).is_none_or(|f| !f.spec.prose))
        .or_else(number_before);
    // A marker that is also a cue ("上限改成300") corrects only a value said before it.
    let corrects_something = just_before.is_some()
        || later
            .answers
            .keys()
            .any(|k| out.answers.contains_key(k) || out.noticed.iter().any(|n| &n.key == k))
        || out
            .extra_accounts
            .last()
            .is_some_and(|a| ends_with_value(head, a));
    if !corrects_something {
        return whole;
    }
    // A bare value right after the marker ("shopA 哦不 shopB", "调到2000 不对 2500") is read as
    // the field whose value stands right before it, as if that field's label preceded it.
    if let Some(key) = just_before
        && !later.answers.contains_key(&key)
        && !later.noticed.iter().any(|n| n.key == key)
        && let Some(field) = service.field(&key)
    {
        let bare = &tail[skip_separators(tail)..];
        let labelled = format!("{} {bare}", field.spec.label);
        let again = extract_normalised(catalog, service, words, &labelled);
        let source = again.sources.get(&key);
        // Only a value that opens the tail: "不对 开物流追踪 a_2" corrects the service, not this.
        let opens = source.is_some_and(|s| bare.starts_with(s.as_str()));
        if let (Some(value), Some(source), true) = (again.answers.get(&key), source, opens) {
            // The bare value is this field's: read alone it may have looked like another's
            // ("仓库编号 CK01 改成 CK02": CK02 is no seller account).
            let elsewhere: Vec<FieldKey> = later
                .sources
                .iter()
                .filter(|(k, s)| **k != key && *s == source)
                .map(|(k, _)| k.clone())
                .collect();
            for k in elsewhere {
                later.answers.remove(&k);
                later.sources.remove(&k);
                later.cued.remove(&k);
            }
            later.unsure.retain(|u| u.raw != *source);
            later.answers.insert(key.clone(), value.clone());
            later.sources.insert(key.clone(), source.clone());
            later.cued.insert(key.clone());
            later.extra_accounts.retain(|a| a != source);
            later.leftover_chars = later
                .leftover_chars
                .saturating_sub(source.chars().filter(|c| c.is_alphanumeric()).count());
        } else if words
            .amount_cues
            .iter()
            .any(|c| c.as_str() == &text[marker.clone()])
        {
            // "账号 jh_l1 改成500": a marker that is also a cue and corrects nothing before it
            // introduces a value of its own; the message is read whole.
            return whole;
        } else if let Some(n) = again.noticed.into_iter().find(|n| n.key == key)
            && bare.starts_with(|c: char| c.is_alphanumeric())
            && number_or_token_opens(bare, &n.raw)
        {
            later.noticed.push(n);
        }
    }
    // "shop_a1 和 shop_c3 不对 shop_b2": the account corrected is the extra one before the marker.
    if let Some(field) = service.seller_account_field()
        && let Some(last) = out.extra_accounts.last().cloned()
        && ends_with_value(head, &last)
        && let Some(value) = later.answers.remove(field.key())
    {
        later.sources.remove(field.key());
        out.extra_accounts.pop();
        out.extra_accounts.push(value.display(false));
        out.corrected.push(Corrected {
            key: field.key().clone(),
            label: field.spec.label.clone(),
            was: last,
        });
    }
    out.merge_correction(service, later);
    out
}

/// The words of a request that explain why it is wanted ("账号hz_tea01 仓库重新规划货区" →
/// 仓库重新规划货区): pieces with no value, no account, no service name or field label, no
/// question or correction, and at least `min_han` Chinese characters once polite and request
/// words are set aside. Offered as the reason (asked, never filled), so a reason typed on the
/// first line is not asked for again.
#[must_use]
pub fn explanation(
    service: &Service,
    words: &SlotWords,
    text: &str,
    found: &Extraction,
) -> Option<String> {
    let names: Vec<String> = std::iter::once(&service.name)
        .chain(std::iter::once(&service.seed_name))
        .chain(&service.aliases)
        .map(|n| fold(n))
        .filter(|n| n.chars().count() >= 2)
        .collect();
    // The service's own labels: a piece naming one carries a value. Another service's label
    // in a reason is just a word ("客户食品要管保质期").
    let labels: Vec<String> = service
        .fields
        .iter()
        .flat_map(|f| std::iter::once(&f.spec.label).chain(&f.spec.cues))
        .map(|c| fold(c))
        .collect();
    let mut out: Vec<&str> = Vec::new();
    for piece in
        text.split(|c: char| c.is_whitespace() || is_clause_mark(c) || "?？:：".contains(c))
    {
        let piece = piece.trim();
        if piece.is_empty()
            || piece.chars().any(|c| c.is_ascii_alphanumeric())
            || found
                .sources
                .values()
                .any(|s| !s.is_empty() && piece.contains(s.as_str()))
        {
            continue;
        }
        let folded = fold(piece);
        let marked = |list: &[String]| list.iter().any(|m| folded.contains(m.as_str()));
        if marked(&words.correction_markers)
            || marked(&words.not_yet_words)
            || marked(&words.question_words)
            || words
                .explanation_skip_endings
                .iter()
                .any(|e| folded.ends_with(e.as_str()))
            || labels
                .iter()
                .any(|l| l.chars().count() >= 2 && folded.contains(l.as_str()))
        {
            continue;
        }
        // The service's own name alone is no reason ("开子母单"); with a word of the person's
        // around it, it is part of one ("客户要看物流轨迹", "客户顺丰子母单要拿原始单").
        let han = |s: &str| s.chars().filter(|c| is_han(*c)).count();
        let without_fillers = |s: String| without_fillers(&s, &words.explanation_fillers);
        // "批次有效期管理 账号X 委外仓要看批次": a piece that is part of the service's own name
        // names it; it says nothing about why.
        let said = without_fillers(folded.clone());
        // "开子母单展示子单货品明细": with its request words set aside, still the name.
        if [&folded, &said]
            .iter()
            .any(|p| p.chars().count() >= 3 && names.iter().any(|n| n.contains(p.as_str())))
        {
            continue;
        }
        let mut own = folded.clone();
        for n in &names {
            own = own.replace(n.as_str(), "");
        }
        let own = without_fillers(own);
        if han(&said) >= words.explanation_min_han && han(&own) >= 1 && !out.contains(&piece) {
            out.push(piece);
        }
    }
    (!out.is_empty() && words.explanation_min_han > 0).then(|| out.join("，"))
}

/// `s` without its polite and request words ("客户要给买家开票" → 买家开票). Fillers of two
/// characters or more go wherever they stand; a one-character filler (开, 要, 给 …) only where it
/// stands beside another filler or at an edge, so the 开 of 开票 stays a word of the reason.
#[must_use]
pub fn without_fillers(s: &str, fillers: &[String]) -> String {
    let mut rest = s.to_owned();
    for w in fillers.iter().filter(|w| w.chars().count() >= 2) {
        rest = rest.replace(w.as_str(), " ");
    }
    let single: Vec<char> = fillers
        .iter()
        .filter_map(|w| {
            let mut cs = w.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        })
        .collect();
    rest.split_whitespace()
        .map(|segment| {
            segment
                .trim_start_matches(|c| single.contains(&c))
                .trim_end_matches(|c| single.contains(&c))
        })
        .collect::<Vec<_>>()
        .concat()
}

/// `s` opens with an ASCII account of `len` bytes, then one space and a short piece that reads
/// as its continuation ("shop a1", "wdt 01"): the length up to the piece's end.
fn split_by_space(s: &str, len: usize) -> Option<usize> {
    let first = &s[..len];
    if !first.chars().all(is_ident) {
        return None;
    }
    let after = &s[len..];
    let gap: usize = after
        .chars()
        .take_while(|c| *c == ' ')
        .map(char::len_utf8)
        .sum();
    if gap != 1 {
        return None;
    }
    let piece: usize = after[gap..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    let piece_text = &after[gap..gap + piece];
    let ends = after[gap + piece..]
        .chars()
        .next()
        .is_none_or(|c| c.is_whitespace() || is_clause_mark(c));
    // A piece shaped as an account of its own ("wdt_01 a_02") is a second account.
    let own_account = piece_text.starts_with(|c: char| c.is_ascii_alphabetic())
        && piece_text.len() >= 3
        && piece_text.chars().any(|c| c.is_ascii_digit() || c == '_');
    // "shop a1", "shop b", "wdt 01"; not "zp_1 3000", a number after a whole account.
    let letters_and_digits = piece_text.chars().any(|c| c.is_ascii_digit())
        && piece_text.chars().any(|c| c.is_ascii_alphabetic());
    let lone_letter = piece_text.len() == 1 && piece_text.chars().all(|c| c.is_ascii_alphabetic());
    let short_digits = piece_text.len() <= 2
        && piece_text.chars().all(|c| c.is_ascii_digit())
        && !first.chars().any(|c| c.is_ascii_digit());
    let continues = !own_account && (letters_and_digits || lone_letter || short_digits);
    (piece > 0 && ends && continues && piece <= 4).then_some(len + gap + piece)
}

/// Whether `head` ends with `value`, clause marks and spaces after it aside.
fn ends_with_value(head: &str, value: &str) -> bool {
    head.trim_end_matches(|c: char| c.is_whitespace() || is_clause_mark(c))
        .ends_with(value)
}

/// "账号写错了, 应该是 abc132" → "abc132": what follows the last correction marker (normalised,
/// clause marks and separators after the marker skipped), when anything does.
#[must_use]
pub fn corrected_tail(text: &str, words: &SlotWords) -> Option<String> {
    let mut text = normalize_width(text);
    // "不对不对 是lyf_store 打错了": a marker closing the message says nothing after it; the
    // value is after the marker before it.
    loop {
        let end = text
            .trim_end_matches(|c: char| c.is_whitespace() || is_clause_mark(c))
            .len();
        // The longest marker closing the text ("打错了", not the "错了" inside it).
        let closing = words
            .correction_markers
            .iter()
            .filter(|m| !m.is_empty() && text[..end].ends_with(m.as_str()))
            .map(String::len)
            .max();
        match closing {
            Some(len) if last_marker(&text[..end - len], &words.correction_markers).is_some() => {
                text.truncate(end - len);
            }
            _ => break,
        }
    }
    let marker = last_marker(&text, &words.correction_markers)?;
    let tail =
        text[marker.end..].trim_start_matches(|c: char| c.is_whitespace() || is_clause_mark(c));
    let tail = tail[skip_separators(tail)..].trim();
    (!tail.is_empty()).then(|| tail.to_owned())
}

/// "shopA 哦不 shopB" → ("shopA", "shopB"): the message around its last correction marker
/// (normalised, separators after the marker skipped), when both sides hold something.
#[must_use]
pub fn split_correction(text: &str, words: &SlotWords) -> Option<(String, String)> {
    let text = normalize_width(text).trim().to_owned();
    let marker = last_marker(&text, &words.correction_markers)?;
    let head = text[..marker.start]
        .trim_end_matches(|c: char| c.is_whitespace() || is_clause_mark(c))
        .to_owned();
    let tail = text[marker.end..].trim_start();
    let tail = tail[skip_separators(tail)..].trim().to_owned();
    (!head.is_empty() && !tail.is_empty()).then_some((head, tail))
}

/// "不是 客户要看利润" → "客户要看利润": what follows one of `openers` standing apart (a space, a
/// mark or 是 after it: "不是很好用" is not opened by 不是); `None` when no opener opens `text`
/// or nothing follows it.
#[must_use]
pub fn after_opener<'t>(text: &'t str, openers: &[String]) -> Option<&'t str> {
    let text = text.trim();
    openers.iter().find_map(|opener| {
        let rest = text.strip_prefix(opener.as_str())?;
        let apart = rest.starts_with(|c: char| {
            c.is_whitespace() || is_clause_mark(c) || matches!(c, ':' | '：' | '是')
        });
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || is_clause_mark(c));
        let rest = rest.strip_prefix([':', '：']).unwrap_or(rest).trim_start();
        let rest = rest.strip_prefix('是').unwrap_or(rest).trim_start();
        (apart && !rest.is_empty()).then_some(rest)
    })
}

/// Whether the refused value `raw` is what `bare` opens with (digits, or the first token).
fn number_or_token_opens(bare: &str, raw: &str) -> bool {
    bare.starts_with(raw)
        || number_spans(bare)
            .first()
            .is_some_and(|(r, n)| r.start == 0 && n.to_string() == raw)
}

/// The last correction marker in `text`, by byte range.
fn last_marker(text: &str, markers: &[String]) -> Option<Range<usize>> {
    markers
        .iter()
        .filter(|m| !m.is_empty())
        .filter_map(|m| text.rfind(m.as_str()).map(|at| at..at + m.len()))
        .max_by_key(|r| (r.start, r.len()))
}

/// The field whose value (or refused value) ends `head`: what a bare correction replaces.
fn value_just_before(found: &Extraction, head: &str) -> Option<FieldKey> {
    let head = head.trim_end_matches(|c: char| c.is_whitespace() || is_clause_mark(c));
    found
        .sources
        .iter()
        .find(|(_, source)| !source.is_empty() && head.ends_with(source.as_str()))
        .map(|(k, _)| k.clone())
        .or_else(|| {
            found
                .noticed
                .iter()
                .find(|n| !n.raw.is_empty() && head.ends_with(n.raw.as_str()))
                .map(|n| n.key.clone())
        })
}

fn is_clause_mark(c: char) -> bool {
    matches!(
        c,
        ',' | '，' | '、' | ';' | '；' | '。' | '.' | '!' | '！' | '~' | '…'
    )
}

impl Extraction {
    /// Takes what the corrected part of a message (`later`) gives over what came before it.
    fn merge_correction(&mut self, service: &Service, later: Extraction) {
        for (key, value) in later.answers {
            if let Some(was) = self.answers.remove(&key)
                && was != value
                && let Some(field) = service.field(&key)
            {
                let was = self
                    .sources
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| was.display(false));
                // The taken-back account is not another account to queue.
                self.extra_accounts.retain(|a| *a != was);
                self.corrected.push(Corrected {
                    key: key.clone(),
                    label: field.spec.label.clone(),
                    was,
                });
            }
            self.noticed.retain(|n| n.key != key);
            if let Some(source) = later.sources.get(&key) {
                self.sources.insert(key.clone(), source.clone());
            }
            if later.cued.contains(&key) {
                self.cued.insert(key.clone());
            }
            let shown = value.display(false);
            self.extra_accounts.retain(|a| *a != shown);
            self.answers.insert(key, value);
        }
        for noticed in later.noticed {
            // A refused correction still takes the earlier value back: it is answered, not used.
            if let Some(was) = self.answers.remove(&noticed.key) {
                let was = self
                    .sources
                    .remove(&noticed.key)
                    .unwrap_or_else(|| was.display(false));
                self.cued.remove(&noticed.key);
                self.corrected.push(Corrected {
                    key: noticed.key.clone(),
                    label: noticed.label.clone(),
                    was,
                });
            }
            self.noticed.retain(|n| n.key != noticed.key);
            self.noticed.push(noticed);
        }
        for account in later.extra_accounts {
            if !self.extra_accounts.contains(&account) {
                self.extra_accounts.push(account);
            }
        }
        // A value asked about is asked once: the later one, and none for a field now given.
        for unsure in later.unsure {
            self.unsure.retain(|u| u.key != unsure.key);
            self.unsure.push(unsure);
        }
        let answers = &self.answers;
        let noticed = &self.noticed;
        self.unsure
            .retain(|u| !answers.contains_key(&u.key) && !noticed.iter().any(|n| n.key == u.key));
        self.leftover_chars += later.leftover_chars;
    }
}

fn extract_normalised(
    catalog: &Catalog,
    service: &Service,
    words: &SlotWords,
    text: &str,
) -> Extraction {
    let mut scan = Scan {
        text,
        service,
        words,
        used: Vec::new(),
        names: Vec::new(),
        out: Extraction::default(),
    };
    scan.mask_service_names();
    let cues = scan.find_cues(catalog);
    for (i, cue) in cues.iter().enumerate() {
        let end = cues.get(i + 1).map_or(text.len(), |next| next.span.start);
        // Free text runs to the end of the line, or to the next "label:".
        let text_end = cues[i + 1..]
            .iter()
            .find(|next| text[next.span.end..].trim_start().starts_with(':'))
            .map_or(text.len(), |next| next.span.start);
        scan.take_cued(cue, end, text_end);
    }
    scan.take_uncued();
    for source in scan.out.sources.values() {
        if let Some(at) = text.find(source.as_str()) {
            scan.used.push(at..at + source.len());
        }
    }
    scan.out.leftover_chars = text
        .char_indices()
        .filter(|(i, c)| {
            c.is_alphanumeric() && !scan.used.iter().any(|u| u.start <= *i && *i < u.end)
        })
        .count();
    scan.out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
}

/// "账号都是 wdt_k1": one account for every service named; the words before it are no name.
fn skip_account_lead(s: &str) -> usize {
    let lead = s.len() - s.trim_start().len();
    [
        "都是",
        "就是",
        "均为",
        "都为",
        "统一是",
        "统一为",
        "都用",
        "都",
    ]
    .iter()
    .find(|w| s[lead..].starts_with(*w))
    .map_or(0, |w| {
        let n = lead + w.len();
        n + skip_separators(&s[n..])
    })
}

static REFERENCE: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9_.\-]{1,20}|\p{Han}{1,6}?)\s*的?(?:那个|那单|那家|那条|那一个)\s*")
        .ok()
});

/// `s` without the words that open it by pointing at a request ("bb那个是180" → "是180").
fn strip_reference(s: &str) -> &str {
    REFERENCE
        .as_ref()
        .and_then(|re| re.find(s))
        .map_or(s, |m| s[m.end()..].trim_start())
}

/// A separator between a cue and its value: spaces and "是/为/:/=".
fn skip_separators(s: &str) -> usize {
    let mut n = 0;
    for c in s.chars() {
        if c.is_whitespace() || matches!(c, ':' | '=' | '是' | '为' | '：' | '-' | '—') {
            n += c.len_utf8();
        } else {
            break;
        }
    }
    n
}

/// `text.to_lowercase()`, without a copy when nothing changes.
fn lowered(text: &str) -> Cow<'_, str> {
    let changes = |c: char| {
        let mut lower = c.to_lowercase();
        !(lower.next() == Some(c) && lower.next().is_none())
    };
    if text.chars().any(changes) {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || (!c.is_alphanumeric() && !matches!(c, '_' | '-' | '.' | '@'))
}

impl Scan<'_> {
    fn overlaps_used(&self, r: &Range<usize>) -> bool {
        self.used
            .iter()
            .chain(&self.names)
            .any(|u| u.start < r.end && r.start < u.end)
    }

    /// Nothing inside the service's own name or aliases is a value ("修改拣货分组为300").
    fn mask_service_names(&mut self) {
        let lower = self.text.to_lowercase();
        if lower.len() != self.text.len() {
            return;
        }
        let s = self.service;
        let names = std::iter::once(&s.name)
            .chain(std::iter::once(&s.seed_name))
            .chain(&s.aliases);
        for name in names {
            let name = normalize_width(name).to_lowercase();
            if name.chars().count() < 2 {
                continue;
            }
            for (at, _) in lower.match_indices(name.as_str()) {
                // An ASCII name ("jitx") inside an identifier ("vip_jitx_01") is not the name.
                let before = lower[..at].chars().next_back();
                let after = lower[at + name.len()..].chars().next();
                let ascii_edge = |c: Option<char>| c.is_some_and(is_ident);
                if (name.starts_with(|c: char| c.is_ascii()) && ascii_edge(before))
                    || (name.ends_with(|c: char| c.is_ascii()) && ascii_edge(after))
                {
                    continue;
                }
                self.names.push(at..at + name.len());
            }
        }
    }

    /// Every label or cue word in the text, longest first at each place, not overlapping.
    fn find_cues(&mut self, catalog: &Catalog) -> Vec<Cue> {
        let lower = self.text.to_lowercase();
        if lower.len() != self.text.len() {
            return Vec::new();
        }
        // (word, field index in the service or None). Every label and cue of the catalog is
        // looked for, so they are borrowed, not copied: almost none has an upper-case letter
        // (issue 13: lower-casing them all per message was a tenth of a turn's CPU).
        let mut words: Vec<(Cow<'_, str>, Option<usize>)> = Vec::new();
        for (i, f) in self.service.fields.iter().enumerate() {
            words.push((lowered(&f.spec.label), Some(i)));
            for c in &f.spec.cues {
                words.push((lowered(c), Some(i)));
            }
        }
        // Another field's label that only shortens one of this service's labels ("平台" of
        // 需要开通的平台) names that field here, not a field this service lacks.
        let own_labels: Vec<Cow<'_, str>> = self
            .service
            .fields
            .iter()
            .map(|f| lowered(&f.spec.label))
            .collect();
        let shortened = |word: &str| -> Option<usize> {
            let holders: Vec<usize> = own_labels
                .iter()
                .enumerate()
                .filter(|(_, l)| word.chars().count() >= 2 && l.ends_with(word))
                .map(|(i, _)| i)
                .collect();
            match holders.as_slice() {
                [i] => Some(*i),
                _ => None,
            }
        };
        for spec in catalog.fields() {
            if self.service.field(&spec.key).is_some() {
                continue;
            }
            let label = lowered(&spec.label);
            let field = shortened(&label);
            words.push((label, field));
            for c in &spec.cues {
                let cue = lowered(c);
                let field = shortened(&cue);
                words.push((cue, field));
            }
        }
        for w in &self.words.foreign_account_labels {
            words.push((lowered(w), None));
        }
        let mut found: Vec<Cue> = Vec::new();
        for (word, field) in &words {
            if word.chars().count() < 2 && !word.is_ascii() {
                continue;
            }
            for (at, _) in lower.match_indices(&**word) {
                let span = at..at + word.len();
                // An ASCII cue ("sid", "appkey") must stand alone, not inside a word.
                if word.is_ascii() {
                    let before = lower[..at].chars().next_back();
                    let after = lower[span.end..].chars().next();
                    if before.is_some_and(is_ident)
                        || after.is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    {
                        continue;
                    }
                }
                found.push(Cue {
                    span,
                    field: *field,
                });
            }
        }
        // Longest first, then earliest; drop cues inside a longer one or inside a name.
        found.sort_by(|a, b| (b.span.len(), a.span.start).cmp(&(a.span.len(), b.span.start)));
        let mut kept: Vec<Cue> = Vec::new();
        for cue in found {
            // A cue wholly inside the service's name is part of the name ("上限" in 赠品策略上限).
            // Except this service's own field label closing the name: in "充值单量 10万" the
            // name 充值单量 is also the label of the amount it is followed by.
            let closes_name_as_label = cue.field.is_some_and(|i| {
                lowered(&self.field(i).spec.label).as_ref() == &lower[cue.span.clone()]
            }) && self.names.iter().any(|n| n.end == cue.span.end);
            let inside_name = !closes_name_as_label
                && self
                    .names
                    .iter()
                    .any(|n| n.start <= cue.span.start && cue.span.end <= n.end);
            let overlaps = kept
                .iter()
                .any(|k| k.span.start < cue.span.end && cue.span.start < k.span.end);
            if !inside_name && !overlaps {
                kept.push(cue);
            }
        }
        kept.sort_by_key(|c| c.span.start);
        for c in &kept {
            self.used.push(c.span.clone());
        }
        kept
    }

    fn field(&self, i: usize) -> &ServiceField {
        &self.service.fields[i]
    }

    /// Records a value for a field, or notices why the field refused it.
    fn offer(&mut self, field_index: usize, span: Range<usize>, raw: &str, shown: &str) -> bool {
        self.offer_or_skip(field_index, span, raw, shown, true)
    }

    /// As `offer`; with `notice` false a refused value is neither noticed nor consumed (a
    /// clause after a choice label that holds no option is not a value at all).
    fn offer_or_skip(
        &mut self,
        field_index: usize,
        span: Range<usize>,
        raw: &str,
        shown: &str,
        notice: bool,
    ) -> bool {
        let field = self.field(field_index);
        let key = field.key().clone();
        if let Some(was) = self.out.answers.get(&key) {
            // "店铺编号SP0015 … 哦 店铺编号是SP0016": a code's label said again with another code
            // restates it; the later one stands and the reply says what it replaced. Never an
            // account by default. (Numbers are left alone: "上限调到150 之前上限100不够" says
            // the old value in passing.)
            let restated = matches!(
                field.spec.kind,
                FieldKind::Identifier { .. } | FieldKind::Email
            ) && field.spec.parse_answer(raw).is_ok_and(|v| v != *was)
                && !self.customer_between(&key, span.start);
            if !restated {
                return false;
            }
            let was = was.display(false);
            let label = field.spec.label.clone();
            self.out.answers.remove(&key);
            self.out.sources.remove(&key);
            self.out.corrected.push(Corrected {
                key: key.clone(),
                label,
                was,
            });
        }
        let field = self.field(field_index);
        match field.spec.parse_answer(raw) {
            Ok(value) => {
                self.out
                    .sources
                    .insert(key.clone(), self.text[span.clone()].to_owned());
                self.used.push(span);
                self.out.answers.insert(key, value);
                true
            }
            Err(_) if !notice => false,
            Err(e) => {
                let offer = field.spec.over_cap(shown).map(|(_, cap)| cap);
                self.notice(field_index, span, shown, e.message, offer);
                false
            }
        }
    }

    /// Whether another customer's account stands between the value of `key` taken so far and
    /// byte `at` ("hz_yc1 … 店铺编号DY001，hz_yc2也开 店铺编号DY009": each code is its own
    /// customer's).
    fn customer_between(&self, key: &FieldKey, at: usize) -> bool {
        let Some(from) = self
            .out
            .sources
            .get(key)
            .and_then(|s| self.text.find(s.as_str()).map(|p| p + s.len()))
        else {
            return false;
        };
        self.text.get(from..at).is_some_and(|between| {
            between.split(|c: char| !is_ident(c)).any(|t| {
                t.len() >= 3
                    && t.chars().any(|c| c.is_ascii_alphabetic())
                    && t.chars().any(|c| c.is_ascii_digit() || c == '_')
                    && is_seller_account(t)
            })
        })
    }

    /// Records that the message gives `raw` for a field which refuses it (`why`), once per field.
    fn notice(
        &mut self,
        field_index: usize,
        span: Range<usize>,
        raw: &str,
        why: String,
        offer: Option<FieldValue>,
    ) {
        let field = self.field(field_index);
        let noticed = Noticed {
            key: field.key().clone(),
            label: field.spec.label.clone(),
            raw: raw.to_owned(),
            why,
            offer,
        };
        self.used.push(span);
        if !self.out.noticed.iter().any(|n| n.key == noticed.key) {
            self.out.noticed.push(noticed);
        }
    }

    /// Records a likely value read without a cue, to be asked about: `false` when the field
    /// refuses it.
    fn ask_about(&mut self, field_index: usize, span: Range<usize>, raw: &str) -> bool {
        let field = self.field(field_index);
        let Ok(value) = field.spec.parse_answer(raw) else {
            return false;
        };
        let unsure = Unsure {
            key: field.key().clone(),
            label: field.spec.label.clone(),
            value,
            raw: raw.to_owned(),
        };
        self.used.push(span);
        self.out.unsure.push(unsure);
        true
    }

    /// The unit an integer field counts in ("台", "单"), empty when it has none.
    fn integer_unit(&self, field_index: usize) -> &str {
        match &self.field(field_index).spec.kind {
            FieldKind::Integer { unit, .. } => unit,
            _ => "",
        }
    }

    /// The value right after a cue, read by the cued field's kind, up to `limit`.
    fn take_cued(&mut self, cue: &Cue, limit: usize, text_limit: usize) {
        let before: Vec<FieldKey> = self.out.answers.keys().cloned().collect();
        self.take_cued_value(cue, limit, text_limit);
        let new: Vec<FieldKey> = self
            .out
            .answers
            .keys()
            .filter(|k| !before.contains(k))
            .cloned()
            .collect();
        self.out.cued.extend(new);
    }

    fn take_cued_value(&mut self, cue: &Cue, limit: usize, text_limit: usize) {
        let text = self.text;
        let start = cue.span.end + skip_separators(&text[cue.span.end..limit.max(cue.span.end)]);
        let rest = &text[start..limit.max(start)];
        let Some(i) = cue.field else {
            // A field this service does not have: its value is consumed, never used elsewhere.
            let len: usize = rest
                .chars()
                .take_while(|c| is_ident(*c))
                .map(char::len_utf8)
                .sum();
            self.used.push(start..start + len);
            return;
        };
        let field = self.field(i);
        match &field.spec.kind {
            FieldKind::SellerAccount => {
                let lead = skip_account_lead(rest);
                self.take_cued_accounts(i, start + lead, &rest[lead..]);
            }
            FieldKind::Identifier { .. } => {
                let len: usize = rest
                    .chars()
                    .take_while(|c| is_ident(*c))
                    .map(char::len_utf8)
                    .sum();
                if len > 0 && !rest[len..].starts_with(|c: char| c.is_alphabetic() && !is_han(c)) {
                    let value = &rest[..len];
                    self.offer(i, start..start + len, value, value);
                }
            }
            FieldKind::Email => {
                if let Some(m) = email_regex().find(rest).filter(|m| m.start() == 0) {
                    self.offer(i, start..start + m.end(), m.as_str(), m.as_str());
                }
            }
            FieldKind::Money { .. } => {
                if let Some(m) = money_regex().find(rest).filter(|m| m.start() <= 2) {
                    let raw = m.as_str().trim().to_owned();
                    self.offer(i, start + m.start()..start + m.end(), &raw, &raw);
                }
            }
            FieldKind::Integer { .. } => {
                // The first number soon after the label ("调整数量 3000", "上限调到 3000").
                let window: String = rest.chars().take(8).collect();
                if let Some((r, n)) = number_spans(rest)
                    .into_iter()
                    .find(|(r, _)| r.start <= window.len())
                {
                    let raw = rest[r.clone()].to_owned();
                    self.offer(i, start + r.start..start + r.end, &raw, &n.to_string());
                }
            }
            FieldKind::Text { .. } => {
                // Free text only after "label:" and up to the end of the line.
                let after = &text[cue.span.end..];
                let colon = after.trim_start().starts_with([':', '：']);
                if colon {
                    let rest = &text[start..text_limit.max(start)];
                    let line_end = rest.find('\n').unwrap_or(rest.len());
                    let value = rest[..line_end].trim();
                    if !value.is_empty() {
                        self.offer(i, start..start + line_end, value, value);
                    }
                } else if field.spec.name_like
                    && start > cue.span.end
                    && let Some(name) = self.name_after_label(rest)
                {
                    // "店铺名称 杭州小米淘宝店": a name set apart from its label, one word
                    // long; a sentence there ("仓库名称 等下问客户") is no name.
                    let value = name.to_owned();
                    self.offer(i, start..start + value.len(), &value, &value);
                } else if field.spec.prose && self.opens_word(cue.span.start) {
                    // "原因大促合并单太多": prose right after its label, to the end of the
                    // clause, before any correction, and never a promise ("原因等下发你").
                    let end = rest
                        .find([',', ';', '。', '\n', '，', '；', '!', '！', '?', '？'])
                        .unwrap_or(rest.len());
                    let end = last_marker(&rest[..end], &self.words.correction_markers)
                        .map_or(end, |m| m.start);
                    let value = rest[..end]
                        .trim_end()
                        .trim_end_matches(|c: char| {
                            self.words.fillers.iter().any(|f| f.starts_with(c))
                        })
                        .trim();
                    // "原因都是大促": the words that open the value are no part of it.
                    let value = self
                        .words
                        .prose_openers
                        .iter()
                        .find_map(|o| value.strip_prefix(o.as_str()))
                        .unwrap_or(value)
                        .trim();
                    let promise = self
                        .words
                        .not_yet_words
                        .iter()
                        .any(|w| value.contains(w.as_str()));
                    let same = self
                        .words
                        .same_as_before
                        .iter()
                        .any(|w| value.trim_end_matches(['的', '了']) == w.as_str());
                    if !value.is_empty() && !promise && !same {
                        let at = start + rest.find(value).unwrap_or(0);
                        self.offer(i, at..at + value.len(), value, value);
                    }
                }
            }
            FieldKind::SingleChoice { .. }
            | FieldKind::MultiChoice { .. }
            | FieldKind::YesNo
            | FieldKind::Duration { .. } => {
                let clause_end = rest
                    .find([',', ';', '。', '\n', '，', '；'])
                    .unwrap_or(rest.len());
                let value = rest[..clause_end].trim();
                // The first word alone when it answers ("是否多仓:否 wdt_zlz02"), else the clause.
                let mut word_end = value.find(char::is_whitespace).unwrap_or(value.len());
                // "平台是jd ks 不是dy": a list goes on over the words that are options each.
                if matches!(field.spec.kind, FieldKind::MultiChoice { .. })
                    && field.spec.parse_answer(&value[..word_end]).is_ok()
                {
                    let mut at = word_end;
                    while let Some(next) = value[at..].split_whitespace().next() {
                        let end = at + value[at..].find(next).unwrap_or(0) + next.len();
                        let negated = self
                            .words
                            .option_negations
                            .iter()
                            .any(|n| !n.is_empty() && next.starts_with(n.as_str()));
                        if negated || field.spec.parse_answer(next).is_err() {
                            break;
                        }
                        word_end = end;
                        at = end;
                    }
                }
                let word = &value[..word_end];
                let notice = matches!(field.spec.kind, FieldKind::Duration { .. });
                if !word.is_empty() && field.spec.parse_answer(word).is_ok() {
                    self.offer_or_skip(i, start..start + word_end, word, word, notice);
                } else if !value.is_empty() {
                    self.offer_or_skip(i, start..start + clause_end, value, value, notice);
                }
            }
            FieldKind::IdList { .. } => {
                // The list ends at a word ("CK01 改成 CK02": 改成 is no separator); a joining
                // word between two ids ("TB1001和TB1002") is one.
                let first_id = rest.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
                let list_end = rest[first_id..]
                    .char_indices()
                    .find(|&(_, c)| is_han(c) && !matches!(c, '和' | '及' | '与' | '跟' | '还'))
                    .map_or(rest.len(), |(at, _)| first_id + at);
                let tokens = rest[..list_end]
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
                    .take_while(|t| t.is_empty() || t.chars().any(|c| c.is_ascii_digit()))
                    .filter(|t| !t.is_empty());
                // Ids of one list are written alike; "WH002 wdt_yz01" is a code and then an
                // account, not two codes.
                let mut family = None;
                let ids: Vec<&str> = tokens
                    .take_while(|t| *family.get_or_insert_with(|| id_family(t)) == id_family(t))
                    .collect();
                if let Some(last) = ids.last() {
                    let end = rest.find(last).map_or(0, |p| p + last.len());
                    let joined = ids.join(",");
                    self.offer(i, start..start + end, &joined, &ids.join(", "));
                }
            }
            FieldKind::Attachment { .. } => {}
        }
    }

    /// The one word after a name's label: up to a space or a clause mark, made of letters,
    /// digits and Han characters, and holding none of the words no name has.
    fn name_after_label<'t>(&self, rest: &'t str) -> Option<&'t str> {
        let end = rest
            .find(|c: char| c.is_whitespace() || is_clause_mark(c))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let chars = word.chars().count();
        let name_chars = word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '(' | ')' | '（' | '）'));
        let sentence = self
            .words
            .chinese_account_stop_words
            .iter()
            .chain(&self.words.not_yet_words)
            // A one-character word only where it opens or ends the word: 都 in 成都小女人
            // is part of a name.
            .any(|w| {
                if w.chars().count() == 1 {
                    word.starts_with(w.as_str()) || word.ends_with(w.as_str())
                } else {
                    word.contains(w.as_str())
                }
            });
        (name_chars && (2..=30).contains(&chars) && word.chars().any(is_han) && !sentence)
            .then_some(word)
    }

    /// Whether byte `at` opens a word: the text's start, or after a space or punctuation.
    fn opens_word(&self, at: usize) -> bool {
        self.text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || is_clause_mark(c) || c.is_ascii_punctuation())
    }

    /// "账号 shop_a1", "账号: 杭州小米旗舰店", "账号 a1 和 b2".
    fn take_cued_accounts(&mut self, i: usize, start: usize, rest: &str) {
        let mut at = 0;
        loop {
            let here = &rest[at..];
            let Some(len) = self.account_token(here) else {
                // "账号 shop_ü1": a token is there but not an account; said, not dropped.
                let raw: usize = here
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || is_ident(*c))
                    .map(char::len_utf8)
                    .sum();
                if at == 0 && raw > 0 && here[..raw].chars().any(|c| c.is_ascii_alphanumeric()) {
                    let value = &here[..raw];
                    self.offer(i, start..start + raw, value, value);
                }
                return;
            };
            let value = &here[..len];
            // "账号 a_11，还有物流那个": after a comma a run of Chinese is the next clause, not
            // another customer's account (a Chinese account is taken only right after its cue).
            if at > 0 && !value.chars().any(|c| c.is_ascii_alphanumeric()) {
                return;
            }
            let span = start + at..start + at + len;
            // "账号 shop a1": an account cut by a space is not guessed at either way.
            if let Some(split) = split_by_space(here, len) {
                let raw = &here[..split];
                let why = self
                    .field(i)
                    .spec
                    .parse_answer(raw)
                    .err()
                    .map(|e| e.message)
                    .unwrap_or_default();
                self.notice(i, start + at..start + at + split, raw, why, None);
                return;
            }
            if self.out.answers.contains_key(self.field(i).key()) {
                if is_seller_account(value) && !self.out.extra_accounts.iter().any(|a| a == value) {
                    self.out.extra_accounts.push(value.to_owned());
                    self.used.push(span);
                }
            } else if !self.offer(i, span, value, value) {
                return;
            }
            // Another account joined by 和/、/,/及 continues the list.
            let after = &here[len..];
            let joiner: usize = after
                .chars()
                .take_while(|c| {
                    c.is_whitespace() || matches!(c, '和' | '、' | ',' | '及' | '跟' | '与' | '/')
                })
                .map(char::len_utf8)
                .sum();
            if joiner == 0 || after[..joiner].trim().is_empty() {
                return;
            }
            at += len + joiner;
        }
    }

    /// The length of an account token at the start of `s`: an ASCII token that is not glued to
    /// letters of another script, or a delimited run of Chinese characters that reads as a name.
    fn account_token(&self, s: &str) -> Option<usize> {
        let ascii: usize = s
            .chars()
            .take_while(|c| is_ident(*c))
            .map(char::len_utf8)
            .sum();
        let ascii = s[..ascii].trim_end_matches(['.', '-']).len();
        let next = s[ascii..].chars().next();
        if next.is_some_and(|c| c.is_alphabetic() && !is_han(c)) {
            // "shop_ü1": not a clean account, so nothing is taken.
            return None;
        }
        // A run mixing Chinese ("abc旗舰店", "杭州小米旗舰店") counts when it stands alone and
        // reads as a name, not as the rest of the sentence.
        let run: usize = s
            .chars()
            .take_while(|c| is_han(*c) || is_ident(*c))
            .map(char::len_utf8)
            .sum();
        // "wh_toys哈": a particle after an ASCII account is no part of it.
        let particles_only = ascii > 0
            && s[ascii..run]
                .chars()
                .all(|c| self.words.fillers.iter().any(|f| f.starts_with(c)));
        if run > ascii && !particles_only {
            let next = s[run..].chars().next();
            let delimited = next.is_none_or(is_delimiter);
            let sentence = self
                .words
                .chinese_account_stop_words
                .iter()
                .any(|w| s[..run].contains(w.as_str()));
            if delimited && !sentence {
                return Some(run);
            }
        }
        (ascii > 0).then_some(ascii)
    }

    fn first_field(&self, pred: impl Fn(&FieldKind) -> bool) -> Option<usize> {
        let hits: Vec<usize> = self
            .service
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| pred(&f.spec.kind))
            .map(|(i, _)| i)
            .collect();
        // Uncued values go to a field only when the kind names it alone.
        (hits.len() == 1).then(|| hits[0])
    }

    fn take_uncued(&mut self) {
        if let Some(i) = self.first_field(|k| matches!(k, FieldKind::SellerAccount)) {
            self.uncued_accounts(i);
        }
        if let Some(i) = self.first_field(|k| matches!(k, FieldKind::Integer { .. })) {
            self.uncued_number(i);
            self.bare_number(i);
        }
        if let Some(i) = self.first_field(|k| matches!(k, FieldKind::Email)) {
            let text = self.text;
            let found: Vec<Range<usize>> = email_regex()
                .find_iter(text)
                .map(|m| m.range())
                .filter(|r| !self.overlaps_used(r))
                .collect();
            if let Some(r) = found.first() {
                let value = &text[r.clone()];
                self.offer(i, r.clone(), value, value);
            }
        }
        if let Some(i) = self.first_field(|k| matches!(k, FieldKind::Duration { .. })) {
            self.uncued_duration(i);
        }
        self.uncued_choices();
        for i in 0..self.service.fields.len() {
            if matches!(self.field(i).spec.kind, FieldKind::YesNo) {
                self.uncued_yes_no(i);
            }
        }
    }

    /// Account-shaped tokens anywhere ("给 abc_flagship 开…" or a lone `shop_a1`).
    fn uncued_accounts(&mut self, i: usize) {
        let text = self.text;
        let mut tokens: Vec<(Range<usize>, bool)> = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let c = text[at..].chars().next().unwrap_or(' ');
            if !is_ident(c) {
                at += c.len_utf8();
                continue;
            }
            let len: usize = text[at..]
                .chars()
                .take_while(|c| is_ident(*c))
                .map(char::len_utf8)
                .sum();
            let tok = text[at..at + len].trim_end_matches(['.', '-', '@']);
            let span = at..at + tok.len();
            let before = text[..at].chars().next_back();
            let after = text[at + len..].chars().next();
            let glued = before.is_some_and(|c| c.is_alphabetic() && !is_han(c))
                || after.is_some_and(|c| c.is_alphabetic() && !is_han(c));
            // "仓库WH_ZZ1", "编号PDD003": a code of something else, never the customer's
            // account; asked about when the service has a field for such a code.
            let code_label = self.words.code_labels.iter().find(|l| {
                // Glued or with a colon: "委外仓库 abc_shop1 要开" names the account.
                let head = text[..at]
                    .strip_suffix([':', '：'])
                    .map_or(&text[..at], str::trim_end);
                head.ends_with(l.as_str())
            });
            if let Some(label) = code_label {
                if !self.overlaps_used(&span) {
                    let field = (0..self.service.fields.len()).find(|&f| {
                        let spec = &self.field(f).spec;
                        matches!(spec.kind, FieldKind::Identifier { .. })
                            && !self.out.answers.contains_key(&spec.key)
                            && (spec.label.contains(label.as_str())
                                || spec.cues.iter().any(|c| c.contains(label.as_str())))
                    });
                    match field {
                        Some(f) => {
                            self.ask_about(f, span.clone(), tok);
                        }
                        None => tracing::debug!(code = tok, "a labelled code is no account"),
                    }
                }
                at += len.max(1);
                continue;
            }
            if !glued && !self.overlaps_used(&span) && !tok.contains('@') {
                let framed = self.framed(&span);
                let shaped = tok.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && (3..=40).contains(&tok.len())
                    && tok.chars().any(|c| c.is_ascii_digit() || c == '_');
                let letters = tok.chars().any(|c| c.is_ascii_alphabetic());
                let a_thing = self
                    .words
                    .not_accounts
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(tok));
                if a_thing {
                    tracing::debug!(word = tok, "a system's name, no account");
                } else if (shaped || (framed && letters && tok.len() >= 2))
                    && is_seller_account(tok)
                {
                    tokens.push((span, framed));
                }
            }
            at += len.max(1);
        }
        // A lone mainland mobile number is a common login, but digits say little on their own:
        // asked about ("卖家账号是 138… 吗?"), never filled.
        let mobiles = || -> Vec<Range<usize>> {
            number_spans(text)
                .into_iter()
                .filter_map(|(r, _)| {
                    let raw = &text[r.clone()];
                    let start = r.start + (raw.len() - raw.trim_start().len());
                    let r = start..start + raw.trim().len();
                    let t = &text[r.clone()];
                    (t.len() == 11 && is_seller_account(t) && !self.overlaps_used(&r)).then_some(r)
                })
                .collect()
        };
        if tokens.is_empty() {
            if !self.out.answers.contains_key(self.field(i).key())
                && let [r] = mobiles().as_slice()
            {
                self.ask_about(i, r.clone(), &text[r.clone()]);
            }
        } else {
            // "给 yd_a01 yd_b02 还有 13605718899 都开下": a mobile number listed among accounts
            // is one more customer, never dropped.
            tokens.extend(mobiles().into_iter().map(|r| (r, false)));
            tokens.sort_by_key(|(span, _)| span.start);
        }
        let mut values: Vec<(Range<usize>, String)> = Vec::new();
        for (span, _) in &tokens {
            let v = text[span.clone()].to_owned();
            if !values.iter().any(|(_, x)| *x == v) {
                values.push((span.clone(), v));
            }
        }
        let key = self.field(i).key().clone();
        for (span, value) in values {
            if self.out.answers.contains_key(&key) {
                if self
                    .out
                    .answers
                    .get(&key)
                    .is_some_and(|a| a.display(false) == value)
                {
                    continue;
                }
                if !self.out.extra_accounts.contains(&value) {
                    self.out.extra_accounts.push(value);
                }
                self.used.push(span);
            } else {
                self.offer(i, span, &value, &value);
            }
        }
    }

    /// Whether the token sits in "给/帮/为/替 X 开…".
    fn framed(&self, span: &Range<usize>) -> bool {
        let before = self.text[..span.start].trim_end();
        let after = self.text[span.end..].trim_start();
        if self
            .words
            .frame_exceptions
            .iter()
            .any(|w| before.ends_with(w.as_str()))
        {
            return false;
        }
        self.words
            .account_frames_before
            .iter()
            .any(|w| before.ends_with(w.as_str()))
            && self
                .words
                .account_frames_after
                .iter()
                .any(|w| after.starts_with(w.as_str()))
    }

    /// A number right after an amount cue ("调到3000", "续费了10万单", "上限 400").
    fn uncued_number(&mut self, i: usize) {
        let text = self.text;
        if self.out.answers.contains_key(self.field(i).key()) {
            return;
        }
        let spans = number_spans(text);
        for (r, n) in spans {
            if self.overlaps_used(&r) || Self::not_an_amount(text, &r) {
                continue;
            }
            let before = text[..r.start]
                .trim_end()
                .trim_end_matches(['了', '到', '成', '为', ':']);
            let before_full = text[..r.start].trim_end();
            let cued = self
                .words
                .amount_cues
                .iter()
                .any(|w| before_full.ends_with(w.as_str()) || before.ends_with(w.as_str()));
            // Or the field's own unit right after the number ("开5台", "20000台").
            let unit = self.integer_unit(i);
            let with_unit = !unit.is_empty() && text[r.end..].trim_start().starts_with(unit);
            if cued || with_unit {
                let raw = text[r.clone()].to_owned();
                self.offer(i, r, &raw, &n.to_string());
                return;
            }
        }
    }

    /// "调一下", "改一点", "调两次": a one-character numeral that counts the act, not an amount.
    fn not_an_amount(text: &str, r: &Range<usize>) -> bool {
        let numeral = &text[r.clone()];
        numeral.chars().count() == 1
            && !numeral.starts_with(|c: char| c.is_ascii_digit())
            && text[r.end..].starts_with([
                '下', '点', '些', '次', '遍', '会', '起', '样', '直', '般', '共', '定',
            ])
    }

    /// One number standing alone ("… cz_01 100000") where the service asks for one number:
    /// not taken, but offered for a yes when the field is asked. A refused one is noticed.
    fn bare_number(&mut self, i: usize) {
        let text = self.text;
        let key = self.field(i).key().clone();
        if self.out.answers.contains_key(&key) || self.out.noticed.iter().any(|n| n.key == key) {
            return;
        }
        let unit = self.integer_unit(i);
        let alone: Vec<(Range<usize>, i64)> = number_spans(text)
            .into_iter()
            .filter(|(r, _)| !self.overlaps_used(r))
            .filter(|(r, _)| {
                let before = text[..r.start].chars().next_back();
                let after = text[r.end..].trim_start_matches(unit);
                let after = after.chars().next();
                before.is_none_or(|c| c.is_whitespace() || is_clause_mark(c))
                    && after.is_none_or(|c| c.is_whitespace() || is_clause_mark(c))
            })
            .collect();
        let [(r, n)] = alone.as_slice() else {
            return;
        };
        let raw = text[r.clone()].trim();
        if !self.ask_about(i, r.clone(), raw) {
            self.offer(i, r.clone(), raw, &n.to_string());
        }
    }

    fn uncued_duration(&mut self, i: usize) {
        static DURATION: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let re = DURATION.get_or_init(|| {
            Regex::new(
                r"(?:[0-9]+|[一二两三四五六七八九十半]+)\s*(?:个)?\s*(?:小时|钟头|钟|天半|天|周|星期|h|d)(?:半)?|永久|一直开着|长期",
            )
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
        });
        let text = self.text;
        let found = re
            .find_iter(text)
            .map(|m| m.range())
            .find(|r| !self.overlaps_used(r));
        if let Some(r) = found {
            let raw = text[r.clone()].to_owned();
            self.offer(i, r, &raw, &raw);
        }
    }

    /// Options named in the text, each place counted once for the longest option there;
    /// a platform a field does not offer is noticed.
    fn uncued_choices(&mut self) {
        let lower = self.text.to_lowercase();
        if lower.len() != self.text.len() {
            return;
        }
        // (span, field index, option)
        let mut found: Vec<(Range<usize>, usize, String)> = Vec::new();
        for (i, f) in self.service.fields.iter().enumerate() {
            let (FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options }) =
                &f.spec.kind
            else {
                continue;
            };
            for o in options {
                for form in option_forms(&f.spec, o) {
                    for (at, _) in lower.match_indices(form.as_str()) {
                        let span = at..at + form.len();
                        if !self
                            .used
                            .iter()
                            .any(|u| u.start < span.end && span.start < u.end)
                        {
                            found.push((span, i, o.clone()));
                        }
                    }
                }
            }
        }
        found.sort_by(|a, b| (b.0.len(), a.0.start).cmp(&(a.0.len(), b.0.start)));
        let mut kept: Vec<(Range<usize>, usize, String)> = Vec::new();
        for hit in found {
            if !kept
                .iter()
                .any(|k| k.0.start < hit.0.end && hit.0.start < k.0.end)
            {
                kept.push(hit);
            }
        }
        for i in 0..self.service.fields.len() {
            let key = self.field(i).key().clone();
            let mut options: Vec<String> = Vec::new();
            let mut source = None;
            for (span, f, o) in &kept {
                let negated = {
                    let before = self.text[..span.start].trim_end();
                    self.words
                        .option_negations
                        .iter()
                        .any(|n| !n.is_empty() && before.ends_with(n.as_str()))
                };
                if *f == i && !options.contains(o) && !negated {
                    options.push(o.clone());
                    source.get_or_insert_with(|| self.text[span.clone()].to_owned());
                }
            }
            let (all, multi) = match &self.field(i).spec.kind {
                FieldKind::MultiChoice { options } => (options.clone(), true),
                FieldKind::SingleChoice { options } => (options.clone(), false),
                _ => continue,
            };
            if !self.out.answers.contains_key(&key) {
                if let Some(source) = source.filter(|_| multi || options.len() == 1) {
                    self.out.sources.insert(key.clone(), source);
                }
                match (options.len(), multi) {
                    (0, _) => {}
                    (1, false) => {
                        self.out
                            .answers
                            .insert(key.clone(), FieldValue::Choice(options[0].clone()));
                        self.out.cued.insert(key.clone());
                    }
                    (_, true) => {
                        options.sort_by_key(|o| all.iter().position(|a| a == o));
                        self.out
                            .answers
                            .insert(key.clone(), FieldValue::Choices(options));
                        self.out.cued.insert(key.clone());
                    }
                    _ => {}
                }
            }
            self.unoffered_platforms(i, &all, &lower);
        }
    }

    /// A platform named that a platform question does not offer (拼多多 for 明文打印).
    fn unoffered_platforms(&mut self, i: usize, options: &[String], lower: &str) {
        let key = self.field(i).key().clone();
        let offers_platforms = options
            .iter()
            .any(|o| self.words.platforms.iter().any(|p| o.contains(p.as_str())));
        if !offers_platforms {
            return;
        }
        for p in &self.words.platforms {
            let p_lower = p.to_lowercase();
            let named_as = |word: &str| {
                lower.match_indices(word).any(|(at, _)| {
                    let end = at + word.len();
                    // A nickname in Latin letters stands alone ("pdd和tb"), never inside a
                    // longer run ("jdk", "tb_shop1").
                    let apart = !word.is_ascii()
                        || (!lower[..at]
                            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                            && !lower[end..]
                                .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
                    apart && !self.overlaps_used(&(at..end))
                })
            };
            let named = named_as(p_lower.as_str())
                || self
                    .words
                    .platform_nicknames
                    .get(p)
                    .is_some_and(|nicks| nicks.iter().any(|n| named_as(&n.to_lowercase())));
            let offered = options
                .iter()
                .any(|o| o.contains(p.as_str()) || p.contains(o.as_str()))
                || self
                    .field(i)
                    .spec
                    .synonyms
                    .iter()
                    // 抖音 said as "dy" where dy means the offered 抖店.
                    .any(|(word, _)| {
                        word == p
                            || self
                                .words
                                .platform_nicknames
                                .get(p)
                                .is_some_and(|n| n.contains(word))
                    });
            if named && !offered && !self.out.noticed.iter().any(|n| n.key == key) {
                let spec = &self.field(i).spec;
                let why = spec.messages.render(
                    MessageKey::NoticedPlatform,
                    &[("options", &options.join("、"))],
                );
                self.out.noticed.push(Noticed {
                    key: key.clone(),
                    label: spec.label.clone(),
                    raw: p.clone(),
                    why,
                    offer: None,
                });
            }
        }
    }

    /// A yes/no answered inside a sentence by one of the field's phrases ("实施还没结项").
    fn uncued_yes_no(&mut self, i: usize) {
        let key = self.field(i).key().clone();
        if self.out.answers.contains_key(&key) {
            return;
        }
        let lower = self.text.to_lowercase();
        let spec = &self.field(i).spec;
        let mut phrases: Vec<(&String, bool)> = spec
            .no_phrases
            .iter()
            .map(|p| (p, false))
            .chain(spec.yes_phrases.iter().map(|p| (p, true)))
            .collect();
        // Longest first: "不支持" before "支持".
        phrases.sort_by_key(|(p, _)| std::cmp::Reverse(p.chars().count()));
        for (p, yes) in phrases {
            if let Some(at) = lower.find(p.to_lowercase().as_str()) {
                let source = self.text[at..at + p.len()].to_owned();
                self.out.sources.insert(key.clone(), source);
                self.out.answers.insert(key, FieldValue::Bool(yes));
                return;
            }
        }
    }
}

/// An option's short form people type ("店铺利润" for 店铺利润报表), when distinctive enough.
/// How an option of a choice field is said, width-normalised and lower-cased: the option, its
/// short form ("订单缺货汇总" for "订单缺货汇总(档口模式)") and the field's synonyms of it ("ks"
/// for 快手).
#[must_use]
pub fn option_forms(spec: &FieldSpec, option: &str) -> Vec<String> {
    let lower = normalize_width(option).to_lowercase();
    let mut forms: Vec<String> = short_option(&lower)
        .map(str::to_owned)
        .into_iter()
        .collect();
    forms.insert(0, lower.clone());
    forms.extend(
        spec.synonyms
            .iter()
            .filter(|(_, o)| o == option)
            .map(|(word, _)| normalize_width(word).to_lowercase()),
    );
    forms
}

fn short_option(option: &str) -> Option<&str> {
    // "订单缺货汇总(档口模式)" is said without its parenthesis.
    if let Some(head) = option.split_once('(').map(|(h, _)| h)
        && head.chars().count() >= 2
    {
        return Some(head);
    }
    for suffix in ["报表", "统计表", "统计", "拆分"] {
        if let Some(s) = option.strip_suffix(suffix)
            && s.chars().count() >= 2
        {
            return Some(s);
        }
    }
    None
}

fn money_regex() -> &'static Regex {
    static MONEY: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    MONEY.get_or_init(|| {
        Regex::new(r"[¥￥]?\s*[0-9][0-9,]*(?:\.[0-9]+)?\s*(?:万|w|元|块)?")
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    })
}

fn email_regex() -> &'static Regex {
    static EMAIL: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    EMAIL.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    })
}

#[cfg(test)]
mod tests {
    use super::without_fillers;

    fn fillers() -> Vec<String> {
        ["客户", "一下", "帮我", "开", "要", "给", "了", "吧"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn one_character_fillers_go_only_at_the_edges_of_what_is_said() {
        // 开 of 开票 is a word of the reason; 要 and 给 lead it.
        assert_eq!(without_fillers("客户要给买家开票", &fillers()), "买家开票");
        // Only request talk: nothing is left.
        assert_eq!(without_fillers("帮我开一下吧", &fillers()), "");
        assert_eq!(without_fillers("要开了", &fillers()), "");
    }
}
