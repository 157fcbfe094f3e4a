//! Reading a free-text answer for one field: `FieldSpec::parse_answer` turns what a
//! salesperson typed into a typed [`FieldValue`], or an [`AnswerError`] whose Chinese message
//! (from `dialogs/messages.toml`) states the rule; `as_other` and `over_cap` say what to offer
//! instead of a refusal. Pure: no I/O, no clock.

use regex::Regex;

use super::messages::MessageKey;
use super::model::{FieldKind, FieldSpec};
use super::value::{
    AnswerError, FieldValue, is_email, is_permanent, is_seller_account, normalize_width,
    other_start, other_text, other_value, parse_duration_hours, parse_integer, parse_money,
    parse_yes_no, split_list, the_one_number,
};

impl FieldSpec {
    /// Parses and validates a free-text answer for this field.
    pub fn parse_answer(&self, raw: &str) -> Result<FieldValue, AnswerError> {
        let input = normalize_width(raw.trim());
        let input = input.trim();
        if input.is_empty() && !matches!(self.kind, FieldKind::Attachment { .. }) {
            return Err(self.refusal(MessageKey::ErrEmpty, &[]));
        }
        match &self.kind {
            FieldKind::SellerAccount => self.text_if(
                is_seller_account(input),
                input,
                MessageKey::ErrSellerAccount,
            ),
            FieldKind::Text {
                min_chars,
                max_chars,
            } => self.parse_text(input, *min_chars, *max_chars),
            FieldKind::Identifier { pattern, hint } => {
                if pattern.is_match(input) {
                    Ok(FieldValue::Text(input.to_owned()))
                } else {
                    Err(self.refusal(MessageKey::ErrPattern, &[("hint", hint)]))
                }
            }
            FieldKind::Email => self.text_if(is_email(input), input, MessageKey::ErrEmail),
            FieldKind::Integer {
                min,
                max,
                default,
                allowed,
                ..
            } => self.parse_integer_field(input, *min, *max, *default, allowed),
            FieldKind::Money {
                min_cents,
                max_cents,
            } => self.parse_money_field(input, *min_cents, *max_cents),
            FieldKind::SingleChoice { options } => self.parse_single_choice(input, options),
            FieldKind::MultiChoice { options } => self.parse_multi_choice(input, options),
            FieldKind::YesNo => parse_yes_no(input)
                .map(FieldValue::Bool)
                .ok_or_else(|| self.refusal(MessageKey::ErrYesNo, &[])),
            FieldKind::Attachment { template } => Err(self.refusal(
                MessageKey::ErrAttachment,
                &[("template", template.as_deref().unwrap_or("免责声明"))],
            )),
            FieldKind::IdList { pattern, max_items } => {
                self.parse_id_list(input, pattern.as_ref(), *max_items)
            }
            FieldKind::Duration { max_hours } => self.parse_duration(input, *max_hours),
        }
    }

    /// The refusal for `key`, worded with this field's label and example plus `extra`.
    fn refusal(&self, key: MessageKey, extra: &[(&str, &str)]) -> AnswerError {
        let mut args: Vec<(&str, &str)> = vec![
            ("label", self.label.as_str()),
            ("example", self.example.as_str()),
        ];
        args.extend_from_slice(extra);
        AnswerError {
            message: self.messages.render(key, &args),
        }
    }

    /// The answer as text when `valid`, else the refusal `key`.
    fn text_if(
        &self,
        valid: bool,
        input: &str,
        key: MessageKey,
    ) -> Result<FieldValue, AnswerError> {
        if valid {
            Ok(FieldValue::Text(input.to_owned()))
        } else {
            Err(self.refusal(key, &[]))
        }
    }

    fn parse_text(
        &self,
        input: &str,
        min_chars: usize,
        max_chars: usize,
    ) -> Result<FieldValue, AnswerError> {
        let n = input.chars().filter(|c| !c.is_whitespace()).count();
        let code_like = input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
            && input.chars().any(|c| c.is_ascii_digit() || c == '_');
        if self.prose && code_like {
            Err(self.refusal(MessageKey::ErrNotProse, &[]))
        } else if n < min_chars {
            Err(self.refusal(
                MessageKey::ErrTextTooShort,
                &[("min", &min_chars.to_string())],
            ))
        } else if n > max_chars {
            Err(self.refusal(
                MessageKey::ErrTextTooLong,
                &[("max", &max_chars.to_string())],
            ))
        } else {
            Ok(FieldValue::Text(input.to_owned()))
        }
    }

    fn parse_integer_field(
        &self,
        input: &str,
        min: Option<i64>,
        max: Option<i64>,
        default: Option<i64>,
        allowed: &[i64],
    ) -> Result<FieldValue, AnswerError> {
        let n = parse_integer(input)
            .or_else(|| the_one_number(input))
            .ok_or_else(|| self.refusal(MessageKey::ErrInteger, &[]))?;
        if !allowed.is_empty() && !allowed.contains(&n) {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            return Err(self.refusal(
                MessageKey::ErrIntegerAllowed,
                &[("allowed", &list.join("/"))],
            ));
        }
        if let Some(min) = min.filter(|min| n < *min) {
            return Err(self.refusal(MessageKey::ErrIntegerMin, &[("min", &min.to_string())]));
        }
        if let Some(max) = max.filter(|max| n > *max) {
            return Err(self.refusal(MessageKey::ErrIntegerMax, &[("max", &max.to_string())]));
        }
        // A limit with a default below its cap is raised, never lowered: asking for the
        // default (or less) is not an adjustment (#60: 默认 200 上限 400).
        if let (Some(d), Some(max)) = (default, max)
            && d < max
            && n <= d
        {
            return Err(self.refusal(
                MessageKey::ErrIntegerNotAboveDefault,
                &[("default", &d.to_string()), ("max", &max.to_string())],
            ));
        }
        Ok(FieldValue::Integer(n))
    }

    fn parse_money_field(
        &self,
        input: &str,
        min_cents: Option<i64>,
        max_cents: Option<i64>,
    ) -> Result<FieldValue, AnswerError> {
        let cents = parse_money(input).ok_or_else(|| self.refusal(MessageKey::ErrMoney, &[]))?;
        if let Some(min) = min_cents.filter(|m| cents < *m) {
            return Err(self.refusal(
                MessageKey::ErrMoneyMin,
                &[("min", &(min / 100).to_string())],
            ));
        }
        if let Some(max) = max_cents.filter(|m| cents > *m) {
            return Err(self.refusal(
                MessageKey::ErrMoneyMax,
                &[("max", &(max / 100).to_string())],
            ));
        }
        Ok(FieldValue::Money { cents })
    }

    fn parse_single_choice(
        &self,
        input: &str,
        options: &[String],
    ) -> Result<FieldValue, AnswerError> {
        if self.other_allowed {
            if let Some(rest) = other_text(input) {
                return match rest {
                    "" => Err(self.refusal(MessageKey::ErrOtherEmpty, &[])),
                    // "其他: 调拨单" when 调拨单 is listed is simply 调拨单.
                    t => Ok(FieldValue::Choice(
                        exact_option(t, options).map_or_else(|| other_value(t), ToOwned::to_owned),
                    )),
                };
            }
            if is_other_number(input, options) {
                return Err(self.refusal(MessageKey::ErrOtherEmpty, &[]));
            }
        }
        pick_option(&self.with_synonyms(input), options)
            .map(FieldValue::Choice)
            .map_err(|e| choice_error(e, options, &|k, x| self.refusal(k, x)))
    }

    fn parse_multi_choice(
        &self,
        input: &str,
        options: &[String],
    ) -> Result<FieldValue, AnswerError> {
        if says_all(input) {
            return Ok(FieldValue::Choices(options.to_vec()));
        }
        let mut picked: Vec<String> = Vec::new();
        let mut listed = input;
        let mut other: Option<String> = None;
        if self.other_allowed {
            if is_other_number(input, options) {
                return Err(self.refusal(MessageKey::ErrOtherEmpty, &[]));
            }
            // "采购单, 其他: 库存调整单": the listed part, then the free text.
            if let Some(at) = other_start(input) {
                let rest = other_text(&input[at..]).unwrap_or_default();
                if rest.is_empty() {
                    return Err(self.refusal(MessageKey::ErrOtherEmpty, &[]));
                }
                match exact_option(rest, options) {
                    Some(o) => picked.push(o.to_owned()),
                    None => other = Some(other_value(rest)),
                }
                listed = &input[..at];
            }
        }
        let input = self.with_synonyms(listed);
        for token in split_choices(&input, options) {
            let choice = pick_option(token, options)
                .map_err(|e| choice_error(e, options, &|k, x| self.refusal(k, x)))?;
            if !picked.contains(&choice) {
                picked.push(choice);
            }
        }
        // Keep catalog order so summaries are stable; "其他: …" goes last.
        picked.sort_by_key(|p| options.iter().position(|o| o == p));
        picked.extend(other);
        if picked.is_empty() {
            return Err(self.refusal(MessageKey::ErrChoice, &[("options", &numbered(options))]));
        }
        Ok(FieldValue::Choices(picked))
    }

    fn parse_id_list(
        &self,
        input: &str,
        pattern: Option<&Regex>,
        max_items: Option<usize>,
    ) -> Result<FieldValue, AnswerError> {
        let mut ids: Vec<String> = Vec::new();
        for token in split_list(input) {
            if let Some(p) = pattern
                && !p.is_match(token)
            {
                return Err(self.refusal(MessageKey::ErrIdListItem, &[("item", token)]));
            }
            if !ids.iter().any(|i| i == token) {
                ids.push(token.to_owned());
            }
        }
        if ids.is_empty() {
            return Err(self.refusal(MessageKey::ErrIdListEmpty, &[]));
        }
        if let Some(max) = max_items.filter(|m| ids.len() > *m) {
            return Err(self.refusal(MessageKey::ErrIdListTooMany, &[("max", &max.to_string())]));
        }
        Ok(FieldValue::IdList(ids))
    }

    fn parse_duration(
        &self,
        input: &str,
        max_hours: Option<u32>,
    ) -> Result<FieldValue, AnswerError> {
        if is_permanent(input) {
            let max = max_hours.unwrap_or(0).to_string();
            return Err(self.refusal(MessageKey::ErrDurationPermanent, &[("max", &max)]));
        }
        let hours = parse_duration_hours(input)
            .ok_or_else(|| self.refusal(MessageKey::ErrDuration, &[]))?;
        if let Some(max) = max_hours.filter(|m| hours > *m) {
            return Err(self.refusal(MessageKey::ErrDurationMax, &[("max", &max.to_string())]));
        }
        Ok(FieldValue::DurationHours(hours))
    }
}

impl FieldSpec {
    /// For an answer outside an assumed choice list ("库存调整单" for #86's document types): the
    /// value it would be as "其他: …", to offer instead of refusing. Listed options in the same
    /// answer are kept; numbers and answers that match options ambiguously are not offered.
    pub fn as_other(&self, raw: &str) -> Option<FieldValue> {
        if !self.other_allowed {
            return None;
        }
        let input = normalize_width(raw.trim());
        let input = self.with_synonyms(input.trim());
        if input.is_empty() || input.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        match &self.kind {
            FieldKind::SingleChoice { options } => match pick_option(&input, options) {
                Err(PickError::NoMatch) => Some(FieldValue::Choice(other_value(&input))),
                _ => None,
            },
            FieldKind::MultiChoice { options } => {
                let mut picked = Vec::new();
                let mut unknown = Vec::new();
                for token in split_choices(&input, options) {
                    match pick_option(token, options) {
                        Ok(o) => picked.push(o),
                        Err(PickError::NoMatch) => unknown.push(token),
                        Err(PickError::Ambiguous(_)) => return None,
                    }
                }
                if unknown.is_empty() {
                    return None;
                }
                picked.sort_by_key(|p| options.iter().position(|o| o == p));
                picked.dedup();
                picked.push(other_value(&unknown.join("、")));
                Some(FieldValue::Choices(picked))
            }
            _ => None,
        }
    }

    /// For a number over this field's cap: the number read (as `parse_answer` reads it) and the
    /// cap as a value, to offer instead.
    pub fn over_cap(&self, raw: &str) -> Option<(i64, FieldValue)> {
        let FieldKind::Integer { max: Some(max), .. } = &self.kind else {
            return None;
        };
        let input = normalize_width(raw.trim());
        let n = parse_integer(&input).or_else(|| the_one_number(&input))?;
        if n <= *max {
            return None;
        }
        self.parse_answer(&max.to_string()).ok().map(|cap| (n, cap))
    }

    /// The answer with the words people use for an option replaced by the option ("抖音" → 抖店).
    /// A Latin nickname ("tb", "jd") stands alone: "tb" inside the account "abc_tb01" is no 淘宝.
    fn with_synonyms(&self, input: &str) -> String {
        let mut out = input.to_owned();
        for (word, option) in &self.synonyms {
            if out.contains(option.as_str()) {
                continue;
            }
            if word.is_ascii() {
                out = replace_ascii_word(&out, word, option);
            } else if out.contains(word.as_str()) {
                out = out.replace(word.as_str(), option);
            }
        }
        out
    }
}

/// `text` with every standalone, case-insensitive `word` (no ASCII letter, digit or `_` on
/// either side) replaced by `by`.
fn replace_ascii_word(text: &str, word: &str, by: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let word = word.to_ascii_lowercase();
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices(word.as_str()) {
        let end = at + word.len();
        if at < last || joins(text[..at].chars().next_back()) || joins(text[end..].chars().next()) {
            continue;
        }
        out.push_str(&text[last..at]);
        out.push_str(by);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

/// Builds an [`AnswerError`] from a message key and extra placeholders.
type ErrFn<'a> = dyn Fn(MessageKey, &[(&str, &str)]) -> AnswerError + 'a;

enum PickError {
    NoMatch,
    Ambiguous(Vec<String>),
}

fn choice_error(e: PickError, options: &[String], err: &ErrFn<'_>) -> AnswerError {
    match e {
        PickError::NoMatch => err(MessageKey::ErrChoice, &[("options", &numbered(options))]),
        PickError::Ambiguous(c) => err(
            MessageKey::ErrChoiceAmbiguous,
            &[("options", &c.join(" / "))],
        ),
    }
}

fn numbered(options: &[String]) -> String {
    options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{}. {o}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The option spelled exactly (ignoring case), if any.
fn exact_option<'a>(text: &str, options: &'a [String]) -> Option<&'a str> {
    let folded = text.to_lowercase();
    options
        .iter()
        .find(|o| o.to_lowercase() == folded)
        .map(String::as_str)
}

/// The number one past the list: the "其他" entry the prompt adds.
fn is_other_number(input: &str, options: &[String]) -> bool {
    input.trim().parse::<usize>() == Ok(options.len() + 1)
}

/// Option number ("2"), exact text, or an unambiguous substring either way.
fn pick_option(input: &str, options: &[String]) -> Result<String, PickError> {
    let input = input.trim();
    if let Ok(n) = input.parse::<usize>()
        && (1..=options.len()).contains(&n)
    {
        return Ok(options[n - 1].clone());
    }
    let folded = input.to_lowercase();
    if let Some(o) = options.iter().find(|o| o.to_lowercase() == folded) {
        return Ok(o.clone());
    }
    if folded.is_empty() {
        return Err(PickError::NoMatch);
    }
    let hits: Vec<String> = options
        .iter()
        .filter(|o| {
            let lo = o.to_lowercase();
            lo.contains(&folded) || folded.contains(&lo)
        })
        .cloned()
        .collect();
    match hits.len() {
        0 => Err(PickError::NoMatch),
        1 => Ok(hits[0].clone()),
        _ => Err(PickError::Ambiguous(hits)),
    }
}

/// Words that pick every option of a multi-choice question ("两个都要", "全部").
const ALL_OPTIONS: &[&str] = &[
    "都要",
    "全要",
    "全部",
    "全选",
    "所有",
    "都开",
    "全开",
    "两个都要",
    "三个都要",
    "都需要",
    "全部都要",
    "都开通",
    "全部开通",
    "以上全部",
    "都",
];

fn says_all(input: &str) -> bool {
    let core: String = input
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .trim_end_matches(['吧', '了', '啊', '呀', '的'])
        .to_owned();
    ALL_OPTIONS.contains(&core.as_str())
}

/// Splits a multi-choice answer: list separators and the conjunctions people type between
/// options ("店铺利润和链接利润").
fn split_choices<'a>(input: &'a str, options: &[String]) -> Vec<&'a str> {
    split_list(input)
        .flat_map(|t| {
            // An option may itself hold a separator ("订单/退换单明细").
            if options.iter().any(|o| o == t) {
                vec![t]
            } else {
                t.split(['和', '与', '及', '跟', '+', '/']).collect()
            }
        })
        .flat_map(|t| t.split("还有"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::replace_ascii_word;

    #[test]
    fn a_latin_nickname_is_replaced_only_where_it_stands_alone() {
        assert_eq!(
            replace_ascii_word("tb和pdd都要", "tb", "淘宝"),
            "淘宝和pdd都要"
        );
        assert_eq!(
            replace_ascii_word("TB、拼多多", "tb", "淘宝"),
            "淘宝、拼多多"
        );
        assert_eq!(
            replace_ascii_word("账号abc_tb01", "tb", "淘宝"),
            "账号abc_tb01"
        );
        assert_eq!(replace_ascii_word("jdwl", "jd", "京东"), "jdwl");
    }
}
