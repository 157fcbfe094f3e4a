//! The forms of a message that understanding compares: the fold every word comparison uses
//! (width, case, whitespace and punctuation dropped), toneless pinyin for homophones, and the
//! meaning text the embedding side reads. A leaf of `dialog`: ranking, commands and meaning
//! all use it, and it uses none of them.

use pinyin::ToPinyin;

use crate::catalog::value::normalize_width;

thread_local! {
    /// The last text folded on this thread and its fold. A turn folds the same message dozens
    /// of times (every whole-message word list, the plain commands, ranking, slots), and each
    /// fold is NFKC + lower-casing + a filter with three allocations: with the memo a turn
    /// folds its message once (issue 13; `fold` was 14 % of the server's CPU). `fold` is a pure
    /// function of the text, so the remembered answer is exact.
    static LAST_FOLD: std::cell::RefCell<(String, String)> =
        const { std::cell::RefCell::new((String::new(), String::new())) };
}

/// Sentence-final particles that add tone, not meaning ("不弄了吧", "算了啊"): what may stand
/// after a cancel or withdrawal that still stands on its own.
pub const TRAILING_PARTICLES: &str = "了吧啊哈呀哦啦嘛";

/// Lower-cases, normalises width, drops whitespace and punctuation.
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

/// The fold of `text` and, for each folded character, (its byte offset in the fold, the byte
/// offset in `text` of the character it came from): a match found in the fold can be cut from
/// the text the person typed, with their spacing and case.
#[must_use]
pub fn fold_mapped(text: &str) -> (String, Vec<(usize, usize)>) {
    let mut folded = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    let mut one = [0u8; 4];
    for (at, c) in text.char_indices() {
        for f in fold_uncached(c.encode_utf8(&mut one)).chars() {
            map.push((folded.len(), at));
            folded.push(f);
        }
    }
    (folded, map)
}

/// The byte offset in the typed text of the folded byte offset `folded_at` (the text's end
/// when `folded_at` is the fold's end).
#[must_use]
pub fn typed_offset(text: &str, map: &[(usize, usize)], folded_at: usize) -> usize {
    map.iter()
        .find(|(f, _)| *f >= folded_at)
        .map_or(text.len(), |(_, t)| *t)
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

/// The part of a message that carries its meaning: without @mentions, seller accounts,
/// codes and numbers (a model reads `shop_a1` or `WH01` as noise, and the lexical matcher and
/// the form already see them). Used for messages and catalog examples alike.
#[must_use]
pub fn meaning_text(text: &str) -> String {
    let text = crate::catalog::value::normalize_width(text);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if word.starts_with('@') {
            continue;
        }
        // Within a word, drop ASCII runs that hold a digit or an underscore (accounts, codes,
        // amounts) and keep the rest ("dy", "wms", Chinese).
        let mut kept = String::new();
        let mut run = String::new();
        let flush = |run: &mut String, kept: &mut String| {
            if !run.chars().any(|c| c.is_ascii_digit() || c == '_') {
                kept.push_str(run);
            }
            run.clear();
        };
        for c in word.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                run.push(c);
            } else {
                flush(&mut run, &mut kept);
                kept.push(c);
            }
        }
        flush(&mut run, &mut kept);
        if !kept.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&kept);
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
}
