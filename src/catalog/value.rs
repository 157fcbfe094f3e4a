//! What a form holds: field keys, typed answer values ([`FieldValue`], [`Answers`]), and the
//! pure text readers answers are parsed with (numbers, money, durations, yes/no, accounts,
//! widths). The bottom of the catalog: imports no other catalog module. Reading an answer for
//! a particular field is `catalog::answer`. Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Key of a field in the shared field library (`dialogs/fields.toml`).
/// Lower snake case so it is safe in JSON, logs and TOML conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldKey(String);

/// A field key that is not lower snake case; holds the key as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field key {0:?}: expected lower_snake_case")]
pub struct InvalidFieldKey(pub String);

impl FieldKey {
    /// Accepts `^[a-z][a-z0-9_]*$`.
    pub fn parse(s: &str) -> Result<Self, InvalidFieldKey> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if first_ok
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidFieldKey(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FieldKey {
    type Error = InvalidFieldKey;
    fn try_from(s: String) -> Result<Self, InvalidFieldKey> {
        Self::parse(&s)
    }
}

impl std::str::FromStr for FieldKey {
    type Err = InvalidFieldKey;
    fn from_str(s: &str) -> Result<Self, InvalidFieldKey> {
        Self::parse(s)
    }
}

impl From<FieldKey> for String {
    fn from(k: FieldKey) -> String {
        k.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Answers collected so far in one form.
pub type Answers = BTreeMap<FieldKey, FieldValue>;

/// A typed answer; serialisable because forms are stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    Text(String),
    Integer(i64),
    Money {
        cents: i64,
    },
    Choice(String),
    Choices(Vec<String>),
    Bool(bool),
    /// Given by the engine from a WeCom file message.
    Attachment {
        file_name: String,
        media_id: String,
    },
    IdList(Vec<String>),
    DurationHours(u32),
}

impl FieldValue {
    /// Text for summaries; secrets show only their last 4 chars.
    pub fn display(&self, sensitive: bool) -> String {
        let plain = match self {
            FieldValue::Text(s) | FieldValue::Choice(s) => s.clone(),
            FieldValue::Integer(n) => n.to_string(),
            FieldValue::Money { cents } => {
                let sign = if *cents < 0 { "-" } else { "" };
                let c = cents.unsigned_abs();
                format!("{sign}{}.{:02} 元", c / 100, c % 100)
            }
            FieldValue::Choices(v) => v.join("、"),
            FieldValue::Bool(b) => (if *b { "是" } else { "否" }).to_owned(),
            FieldValue::Attachment { file_name, .. } => file_name.clone(),
            FieldValue::IdList(v) => v.join(", "),
            FieldValue::DurationHours(h) => format!("{h} 小时"),
        };
        if sensitive { mask(&plain) } else { plain }
    }
}

/// `****` followed by the last 4 characters (only `****` when the secret is
/// too short to reveal anything safely).
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 4 {
        return "****".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

/// A rejected answer, with the message to send back to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnswerError {
    pub message: String,
}

/// The word that opens a free-text answer to an assumed choice list ("其他: 调拨单").
pub const OTHER: &str = "其他";
/// The other common spelling people type.
const OTHER_VARIANT: &str = "其它";

/// The text after "其他:" / "其它 " (the word, then a colon, a space or nothing), or `None`
/// when the answer does not start so; "其他出入库单" is an option's name, not this.
pub(super) fn other_text(input: &str) -> Option<&str> {
    let t = input.trim();
    let rest = t
        .strip_prefix(OTHER)
        .or_else(|| t.strip_prefix(OTHER_VARIANT))?;
    let is_separator = |c: char| matches!(c, ':' | '：' | '-') || c.is_whitespace();
    if !rest.is_empty() && !rest.starts_with(is_separator) {
        return None;
    }
    Some(rest.trim_start_matches(is_separator).trim())
}

/// Where "其他: …" starts inside a multi-choice answer.
pub(super) fn other_start(input: &str) -> Option<usize> {
    input
        .match_indices(OTHER)
        .chain(input.match_indices(OTHER_VARIANT))
        .map(|(at, _)| at)
        .filter(|at| other_text(&input[*at..]).is_some())
        .min()
}

/// Whether an answer holds a value outside its list ("其他: 盘点单").
#[must_use]
pub fn holds_other(value: &FieldValue) -> bool {
    let is_other = |s: &String| s.starts_with(&other_value(""));
    match value {
        FieldValue::Choice(c) => is_other(c),
        FieldValue::Choices(cs) => cs.iter().any(is_other),
        _ => false,
    }
}

/// The stored form of a value outside the list.
pub(super) fn other_value(text: &str) -> String {
    format!("{OTHER}: {text}")
}

/// Whether `s` has the shape of a seller account: 2-64 characters of ASCII letters and digits,
/// `_ - . @` and Chinese characters, with at least one letter. Pure digits (a phone number, an
/// order number, a stray "180") and letters from other scripts ("shop_ü1") are refused: a wrong
/// account filed costs more than a question asked.
#[must_use]
pub fn is_seller_account(s: &str) -> bool {
    let n = s.chars().count();
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@') || is_han(c);
    let has_letter = s.chars().any(|c| c.is_ascii_alphabetic() || is_han(c));
    let han = s.chars().filter(|c| is_han(*c)).count();
    // A mainland mobile number is a common login, and a shape nothing else has.
    let mobile = n == 11 && s.starts_with('1') && s.chars().all(|c| c.is_ascii_digit());
    if mobile {
        return true;
    }
    // The bot's own request numbers (KT-20261202-0001) are never a shop's login.
    if looks_like_request_number(s) {
        return false;
    }
    (2..=64).contains(&n)
        && s.chars().all(allowed)
        && has_letter
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || is_han(c))
        // Chinese accounts are shop-like names, not sentences or questions.
        && (han == 0 || (n <= 32 && !QUESTION_WORDS.iter().any(|q| s.contains(q))))
}

/// `KT-YYYYMMDD-N…`, the shape of a filed request's number, in any case.
fn looks_like_request_number(s: &str) -> bool {
    let upper = s.to_ascii_uppercase();
    upper.strip_prefix("KT-").is_some_and(|rest| {
        rest.split_once('-').is_some_and(|(date, seq)| {
            date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !seq.is_empty()
                && seq.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

const QUESTION_WORDS: &[&str] = &["吗", "呢", "多少", "怎么", "什么", "为什么", "哪", "么"];

/// CJK unified ideographs (the basic block and extension A).
#[must_use]
pub fn is_han(c: char) -> bool {
    // 〇 (U+3007) is written in names and dates ("二〇二四店") though it sits outside the blocks.
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{3007}')
}

/// Numbers written inside a phrase ("调到3000吧", "续费了10万单", "那300呢"), each with its byte
/// range in `text`: Arabic digits with an optional 万/w/千/k/百 multiplier, or a run of two or
/// more Chinese numerals. Digits that belong to an identifier ("shop_a1", "WH001") are not numbers.
#[must_use]
pub fn number_spans(text: &str) -> Vec<(std::ops::Range<usize>, i64)> {
    static NUMBER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = NUMBER.get_or_init(|| {
        regex::Regex::new(
            r"[0-9][0-9,]*(?:\.[0-9]+)?\s*(?:[wWkK万千百][零〇一二两三四五六七八九0-9]?)?|[零〇一二两三四五六七八九十百千万]{2,}",
        )
        .unwrap_or_else(|_| regex::Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    });
    let ident = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@');
    let mut out = Vec::new();
    for m in re.find_iter(text) {
        let mut end = m.end();
        let mut span = m.as_str();
        // "3千5" is 3500, but in "3千50" or "2k5x" the digits after the unit are something else:
        // the unit alone is read ("3千"), never a number the person did not write.
        let unit_digit = span.chars().next_back().is_some_and(|c| c.is_ascii_digit())
            && span
                .chars()
                .rev()
                .nth(1)
                .is_some_and(|c| matches!(c, 'w' | 'W' | 'k' | 'K' | '万' | '千' | '百'));
        if unit_digit
            && text[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            span = &span[..span.len() - 1];
            end -= 1;
        }
        // A trailing w/k glued to more letters is part of a word ("3kg", "5wms"), not a multiplier.
        let after = text[end..].chars().next();
        if span.ends_with(['w', 'W', 'k', 'K']) && after.is_some_and(|c| c.is_ascii_alphabetic()) {
            span = &span[..span.len() - 1];
            end -= 1;
        }
        let span = span.trim_end_matches([',', ' ']);
        let end = m.start() + span.len().min(end - m.start());
        let before = text[..m.start()].chars().next_back();
        let after = text[end..].chars().next();
        if span.starts_with(|c: char| c.is_ascii_digit())
            && (before.is_some_and(ident)
                || after.is_some_and(|c| ident(c) && c != '.' && c != '-'))
        {
            continue;
        }
        if let Some(n) = parse_integer(span) {
            out.push((m.start()..end, n));
        }
    }
    out
}

/// How a code is written: letters as `a`, digits as `9`, marks as themselves
/// ("WH-BJ01" → "aa-aa99").
pub fn code_shape(code: &str) -> String {
    code.chars()
        .map(|c| match c {
            c if c.is_ascii_alphabetic() => 'a',
            c if c.is_ascii_digit() => '9',
            c => c,
        })
        .collect()
}

/// How an id is written, loosely: which kinds of letters and marks it holds. Ids of one list
/// share it; an account among codes does not ("WH002" vs "wdt_yz01").
pub fn id_family(id: &str) -> (bool, bool, bool) {
    (
        id.chars().any(|c| c.is_ascii_lowercase()),
        id.chars().any(|c| c.is_ascii_uppercase()),
        id.contains('_'),
    )
}

/// The number a short phrase holds, when it holds exactly one ("3000吧" → 3000).
pub(super) fn the_one_number(input: &str) -> Option<i64> {
    let spans = number_spans(input);
    let first = spans.first()?.1;
    spans.iter().all(|(_, n)| *n == first).then_some(first)
}

/// Splits a list typed in chat: commas (ASCII and full width), 、, ;,
/// whitespace and newlines.
pub fn split_list(input: &str) -> impl Iterator<Item = &str> {
    input
        .split(|c: char| matches!(c, ',' | '，' | '、' | ';' | '；') || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The one text normalisation every check sees: Unicode NFKC (full-width ＡＢＣ１２３ and the
/// ideographic space become ASCII, compatibility forms fold) with invisible characters removed
/// ([`is_invisible`]: by Unicode category, not by a list), so "原因" followed by five U+200B or
/// five TAG characters is two characters, and an RTL override never reaches a summary.
pub fn normalize_width(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc().filter(|c| !is_invisible(*c)).collect()
}

/// A character that renders as nothing, reorders what is around it, or means nothing to a
/// reader: general category Cf (format), Cc (control; tab and line breaks excepted — other
/// controls are refused before cleaning, see [`has_control_chars`]), Co (private use), Cs, Cn
/// (unassigned), and every `Default_Ignorable_Code_Point` (variation selectors, CGJ, Hangul
/// fillers, the TAG block …, which are not all Cf).
#[must_use]
pub fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::Control
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    ) || is_default_ignorable(c)
}

/// Unicode's derived `Default_Ignorable_Code_Point` property (DerivedCoreProperties.txt, as of
/// Unicode 16: the property is stable, new ones are assigned inside these ranges).
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Control characters (NUL, BEL, ESC …) other than tab and line breaks: a message holding one
/// is refused rather than stored.
#[must_use]
pub fn has_control_chars(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

pub(super) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// Yes or no as people answer a yes/no question: "是", "对的", "已经结项了", "没有", "还没结项",
/// "不支持". Unsure answers ("不确定", "不知道") and bare command words ("确认") are neither.
pub(super) fn parse_yes_no(s: &str) -> Option<bool> {
    let core = yes_no_core(s);
    let core = core.as_str();
    if UNSURE_WORDS.iter().any(|u| core.contains(u)) && !NO_WORDS.contains(&core) {
        return None;
    }
    if NO_WORDS.contains(&core) {
        return Some(false);
    }
    if YES_WORDS.contains(&core) {
        return Some(true);
    }
    // Short phrases: a negation decides; otherwise "已经/已/有/支持/是…" says yes.
    if core.chars().count() > 10 {
        return None;
    }
    short_phrase_yes_no(core)
}

/// The answer folded (lowercase, letters and digits only) without trailing particles
/// ("对的" → "对"); the folded answer itself when it is all particles ("嗯").
fn yes_no_core(s: &str) -> String {
    let folded: String = s
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let core = folded.trim_end_matches(['了', '的', '啦', '呀', '啊', '哦', '吧', '呢', '嗯']);
    if core.is_empty() {
        folded.clone()
    } else {
        core.to_owned()
    }
}

/// Yes or no for a short phrase that is not a listed answer: a negation decides, then a
/// leading "已经/已/有/支持/是…".
fn short_phrase_yes_no(core: &str) -> Option<bool> {
    // A word that only begins like a yes is none: "对接自研WMS" (a reason typed at a yes/no
    // question was filed as 是), "是否…", "有赞", "有没有".
    if ["对接", "对应", "是否", "有赞", "有没有", "有些", "已读"]
        .iter()
        .any(|w| core.starts_with(w))
    {
        return None;
    }
    if ["没", "未", "不", "无", "否", "尚未"]
        .iter()
        .any(|w| core.contains(w))
    {
        return Some(false);
    }
    let core = core.trim_start_matches(['都', '早', '就']);
    if ["已经", "已", "是", "有", "支持", "结项", "对"]
        .iter()
        .any(|w| core.starts_with(w))
    {
        return Some(true);
    }
    None
}

/// Answers that are neither yes nor no: doubt, or a bare command word.
const UNSURE_WORDS: &[&str] = &[
    "不确定",
    "不知道",
    "不清楚",
    "不一定",
    "可能",
    "也许",
    "待确认",
    "看情况",
    "不好说",
    "确认",
];

/// Whole answers that say no.
const NO_WORDS: &[&str] = &[
    "否",
    "不是",
    "不",
    "不对",
    "没有",
    "没",
    "无",
    "未",
    "不支持",
    "不行",
    "no",
    "n",
    "0",
    "false",
    "不要",
    "不需要",
    "不可以",
    "没结项",
    "未结项",
    "还没",
    "还没有",
    "尚未",
];

/// Whole answers that say yes.
const YES_WORDS: &[&str] = &[
    "是",
    "是的",
    "对",
    "对的",
    "有",
    "支持",
    "已",
    "已结项",
    "结项",
    "好",
    "好",
    "可以",
    "嗯",
    "yes",
    "y",
    "1",
    "true",
    "ok",
    "要",
    "需要",
    "没错",
    "是滴",
    "必须",
];

fn chinese_digit(c: char) -> Option<i64> {
    Some(match c {
        '零' | '〇' => 0,
        '一' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// Integers as salespeople type them: "3000", "3,000", "3000条", "两千",
/// "三百", "3万", "1w", "1.5万", "2k", "一万五" is not supported (ambiguous).
pub fn parse_integer(raw: &str) -> Option<i64> {
    let s = normalize_width(raw);
    let s: String = s
        .trim()
        .trim_end_matches(|c: char| "条个天件单次家张行人台元块小时组".contains(c))
        .chars()
        .filter(|c| *c != ',' && *c != '，' && !c.is_whitespace())
        .collect();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    // Colloquial: a lone digit after the unit means the next lower unit, as in Chinese
    // numerals ("2百五" = 250, "3千5" = 3500, "1万2" = 12000, "1w5" = 15000), never the
    // unit alone with the digit dropped.
    let chars: Vec<char> = s.chars().collect();
    if let [head @ .., unit, last] = chars.as_slice()
        && !head.is_empty()
        && head.iter().all(char::is_ascii_digit)
        && let Some(d) = last
            .to_digit(10)
            .map(i64::from)
            .or_else(|| chinese_digit(*last))
        && let Some(mult) = match unit {
            '百' => Some(100),
            '千' | 'k' | 'K' => Some(1_000),
            '万' | 'w' | 'W' => Some(10_000),
            _ => None,
        }
    {
        let n: i64 = head.iter().collect::<String>().parse().ok()?;
        return n.checked_mul(mult)?.checked_add(d * (mult / 10));
    }
    // Arabic number with a unit suffix: "3万", "1w", "1.5万", "2k", "3千".
    let lower = s.to_lowercase();
    for (suffix, mult) in [
        ("万", 10_000.0),
        ("w", 10_000.0),
        ("千", 1_000.0),
        ("k", 1_000.0),
        ("百", 100.0),
    ] {
        if let Some(num) = lower.strip_suffix(suffix)
            && let Ok(f) = num.parse::<f64>()
        {
            let v = f * mult;
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                return Some(v as i64);
            }
            return None;
        }
    }
    parse_chinese_numeral(&s)
}

fn parse_chinese_numeral(s: &str) -> Option<i64> {
    // Colloquial: a lone digit after a unit means the next lower unit ("一百五" = 150,
    // "两千五" = 2500, "一万二" = 12000).
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= 3
        && let (Some(d), Some(unit)) = (
            chinese_digit(chars[chars.len() - 1]),
            match chars[chars.len() - 2] {
                '百' | '佰' => Some(10),
                '千' | '仟' => Some(100),
                '万' | '萬' => Some(1000),
                _ => None,
            },
        )
        && chinese_digit(chars[chars.len() - 3]).is_some()
    {
        let head: String = chars[..chars.len() - 1].iter().collect();
        return parse_chinese_numeral(&head)?.checked_add(d * unit);
    }
    // Checked arithmetic: a long run of 万 must not overflow.
    let (mut total, mut section, mut number) = (0i64, 0i64, None::<i64>);
    for c in s.chars() {
        if let Some(d) = chinese_digit(c) {
            number = Some(d);
            continue;
        }
        let unit = match c {
            '十' | '拾' => 10,
            '百' | '佰' => 100,
            '千' | '仟' => 1000,
            '万' | '萬' => {
                let part = section.checked_add(number.unwrap_or(0))?;
                total = total.checked_add(part.checked_mul(10_000)?)?;
                section = 0;
                number = None;
                continue;
            }
            _ => return None,
        };
        section = section.checked_add(number.unwrap_or(1).checked_mul(unit)?)?;
        number = None;
    }
    total.checked_add(section)?.checked_add(number.unwrap_or(0))
}

/// Yuan amounts: "1200", "1200元", "¥1,200.50", "1.2万" → cents.
pub fn parse_money(raw: &str) -> Option<i64> {
    let s = normalize_width(raw);
    let s: String = s
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim_end_matches(['元', '块'])
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    if let Some(num) = s.strip_suffix('万').or_else(|| s.strip_suffix('w')) {
        let f: f64 = num.parse().ok()?;
        return Some((f * 1_000_000.0).round() as i64);
    }
    let (int_part, frac_part) = s.split_once('.').unwrap_or((&s, ""));
    if int_part.is_empty() || frac_part.len() > 2 {
        return None;
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return parse_integer(&s).map(|n| n.saturating_mul(100));
    }
    let int: i64 = int_part.parse().ok()?;
    let frac: i64 = if frac_part.is_empty() {
        0
    } else {
        format!("{frac_part:0<2}").parse().ok()?
    };
    Some(int.checked_mul(100)? + frac)
}

pub(super) fn is_permanent(s: &str) -> bool {
    let l = s.to_lowercase();
    ["永久", "一直", "长期", "永远", "permanent", "forever"]
        .iter()
        .any(|w| l.contains(w))
}

/// "3小时", "3个小时", "2天", "48h", "2d", "两天", "半天" → hours.
pub fn parse_duration_hours(raw: &str) -> Option<u32> {
    let s: String = normalize_width(raw)
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if s == "半天" {
        return Some(12);
    }
    // "一天半", "2天半": a day and a half.
    if let Some(days) = s.strip_suffix("天半") {
        let n = u32::try_from(parse_integer(days)?).ok()?;
        return n.checked_mul(24)?.checked_add(12);
    }
    let units: [(&str, u32); 15] = [
        ("个小时", 1),
        ("小时", 1),
        ("个钟头", 1),
        ("钟头", 1),
        ("个钟", 1),
        ("钟", 1),
        ("周", 168),
        ("hours", 1),
        ("hour", 1),
        ("hrs", 1),
        ("h", 1),
        ("天", 24),
        ("days", 24),
        ("day", 24),
        ("d", 24),
    ];
    for (unit, mult) in units {
        if let Some(num) = s.strip_suffix(unit) {
            let n = parse_integer(num)?;
            let n = u32::try_from(n).ok()?;
            return n.checked_mul(mult).filter(|h| *h > 0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_after_a_unit_is_the_next_lower_unit_never_dropped() {
        for (said, n) in [
            ("2百五", 250),
            ("3千5", 3500),
            ("1万2", 12000),
            ("1w5", 15000),
            ("2k5", 2500),
            ("3千", 3000),
        ] {
            assert_eq!(parse_integer(said), Some(n), "{said}");
        }
        let found: Vec<i64> = number_spans("上限调到2百五 账号 zz_09")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(found, vec![250]);
        // "3千50" is no colloquial number: only what is certain is read.
        let found: Vec<i64> = number_spans("调到3千50")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert!(!found.contains(&3500), "{found:?}");
    }

    #[test]
    fn a_request_number_is_never_a_seller_account() {
        assert!(!is_seller_account("KT-20261202-0001"));
        assert!(!is_seller_account("kt-20261202-12"));
        assert!(is_seller_account("kt_shop01"));
        assert!(is_seller_account("KT-home"));
    }

    #[test]
    fn integers_in_many_forms() {
        for (s, n) in [
            ("3000", 3000),
            ("３０００", 3000),
            ("3,000", 3000),
            ("3000条", 3000),
            ("两千", 2000),
            ("三百", 300),
            ("3万", 30000),
            ("1w", 10000),
            ("1.5万", 15000),
            ("2k", 2000),
            ("十五", 15),
            ("二百五十", 250),
            ("一万二千", 12000),
            ("四百", 400),
        ] {
            assert_eq!(parse_integer(s), Some(n), "{s}");
        }
        assert_eq!(parse_integer("很多"), None);
        assert_eq!(parse_integer(""), None);
    }

    #[test]
    fn money_forms() {
        assert_eq!(parse_money("1200元"), Some(120_000));
        assert_eq!(parse_money("1,200.50"), Some(120_050));
        assert_eq!(parse_money("¥99.9"), Some(9_990));
        assert_eq!(parse_money("1.2万"), Some(1_200_000));
        assert_eq!(parse_money("abc"), None);
        assert_eq!(parse_money("1.234"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_hours("3小时"), Some(3));
        assert_eq!(parse_duration_hours("3 个小时"), Some(3));
        assert_eq!(parse_duration_hours("2天"), Some(48));
        assert_eq!(parse_duration_hours("两天"), Some(48));
        assert_eq!(parse_duration_hours("48h"), Some(48));
        assert_eq!(parse_duration_hours("48"), None);
        assert!(is_permanent("永久开通"));
    }

    #[test]
    fn yes_no_forms() {
        for s in ["是", "对", "yes", "Y", "1", "是的", "已结项"] {
            assert_eq!(parse_yes_no(s), Some(true), "{s}");
        }
        for s in ["否", "不是", "no", "n", "0", "没有"] {
            assert_eq!(parse_yes_no(s), Some(false), "{s}");
        }
        assert_eq!(parse_yes_no("也许"), None);
        // Found trying the bot: a reason typed at a yes/no question was filed as 是.
        for s in ["对接自研WMS", "是否多仓", "有赞店铺"] {
            assert_eq!(parse_yes_no(s), None, "{s}");
        }
        assert_eq!(parse_yes_no("对的"), Some(true));
    }

    #[test]
    fn masking_shows_last_four() {
        assert_eq!(mask("secretkeyabcd"), "****abcd");
        assert_eq!(mask("abc"), "****");
        let v = FieldValue::Text("sk_live_12345678abcd".into());
        assert_eq!(v.display(true), "****abcd");
        assert_eq!(v.display(false), "sk_live_12345678abcd");
    }

    #[test]
    fn value_roundtrips_json() {
        let v = FieldValue::Choices(vec!["淘宝".into()]);
        let json = serde_json::to_string(&v).expect("serialise");
        let back: FieldValue = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(v, back);
    }

    #[test]
    fn emails() {
        assert!(is_email("ops@example.com"));
        assert!(is_email("a.b+c@wangdian.cn"));
        assert!(!is_email("ops@example"));
        assert!(!is_email("not an email"));
    }
}
