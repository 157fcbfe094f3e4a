//! Raw, file-shaped structures deserialised straight from `dialogs/*.toml`.
//! Unknown keys are rejected (`deny_unknown_fields`) so a typo in a data
//! file is an error, not a silently ignored rule. Positions are kept with
//! `toml::Spanned` so later validation can report file and line.

use serde::Deserialize;
use toml::Spanned;

use super::model::{ApplicantRule, Team};

/// Constraint keys shared by library fields and service overrides. The
/// same keys appear in [`RawField`] and [`RawFieldRef`]; they are spelled
/// out in both because serde's `flatten` loses spans and defeats
/// `deny_unknown_fields`.
#[derive(Debug, Default, Clone)]
pub struct RawConstraints {
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub pattern: Option<Spanned<String>>,
    pub pattern_hint: Option<String>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub default: Option<Spanned<i64>>,
    pub allowed: Option<Spanned<Vec<i64>>>,
    pub unit: Option<String>,
    pub options: Option<Spanned<Vec<String>>>,
    pub template: Option<String>,
    pub max_hours: Option<Spanned<u32>>,
    pub max_items: Option<usize>,
}

macro_rules! constraints_of {
    ($raw:expr) => {
        RawConstraints {
            min_chars: $raw.min_chars,
            max_chars: $raw.max_chars,
            pattern: $raw.pattern,
            pattern_hint: $raw.pattern_hint,
            min: $raw.min,
            max: $raw.max,
            default: $raw.default,
            allowed: $raw.allowed,
            unit: $raw.unit,
            options: $raw.options,
            template: $raw.template,
            max_hours: $raw.max_hours,
            max_items: $raw.max_items,
        }
    };
}

impl RawField {
    /// Splits off the constraint keys.
    pub fn split(self) -> (RawFieldHead, RawConstraints) {
        let head = RawFieldHead {
            key: self.key,
            label: self.label,
            prompt: self.prompt,
            example: self.example,
            help: self.help,
            cues: self.cues,
            yes_phrases: self.yes_phrases,
            no_phrases: self.no_phrases,
            synonyms: self.synonyms,
            kind: self.kind,
            sensitive: self.sensitive,
            prose: self.prose,
            name_like: self.name_like,
        };
        (head, constraints_of!(self))
    }
}

/// The non-constraint part of a library field.
#[derive(Debug)]
pub struct RawFieldHead {
    pub key: Spanned<String>,
    pub label: String,
    pub prompt: String,
    pub example: String,
    pub help: String,
    pub cues: Vec<String>,
    pub yes_phrases: Vec<String>,
    pub no_phrases: Vec<String>,
    pub synonyms: std::collections::BTreeMap<String, Vec<String>>,
    pub kind: Spanned<String>,
    pub sensitive: bool,
    pub prose: bool,
    pub name_like: bool,
}

impl RawFieldRef {
    /// Splits off the constraint overrides.
    pub fn split(self) -> (RawFieldRefHead, RawConstraints) {
        let head = RawFieldRefHead {
            key: self.key,
            label: self.label,
            prompt: self.prompt,
            example: self.example,
            help: self.help,
            optional: self.optional,
            ask: self.ask,
            when: self.when,
            other_allowed: self.other_allowed,
        };
        (head, constraints_of!(self))
    }
}

/// The non-constraint part of a service's field reference.
#[derive(Debug)]
pub struct RawFieldRefHead {
    pub key: Spanned<String>,
    pub label: Option<String>,
    pub prompt: Option<String>,
    pub example: Option<String>,
    pub help: Option<String>,
    pub optional: bool,
    pub ask: Option<Spanned<bool>>,
    pub when: Option<Spanned<RawCondition>>,
    pub other_allowed: Option<Spanned<bool>>,
}

fn no_examples() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategoriesFile {
    pub category: Vec<RawCategory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub key: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldsFile {
    pub field: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub key: Spanned<String>,
    pub label: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub example: String,
    #[serde(default)]
    pub help: String,
    /// Other words people put before this field's value ("账号" for 卖家账号).
    #[serde(default)]
    pub cues: Vec<String>,
    /// yes_no only: phrases that answer the question inside a sentence ("已经结项" / "没结项").
    #[serde(default)]
    pub yes_phrases: Vec<String>,
    #[serde(default)]
    pub no_phrases: Vec<String>,
    /// choice / multi_choice: other words people use for an option
    /// (`synonyms = { "抖店" = ["抖音"], "关闭" = ["关掉"] }`).
    #[serde(default)]
    pub synonyms: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub sensitive: bool,
    /// text only: the answer is words ("客户要开票"), not one code-like token ("kt_05").
    #[serde(default)]
    pub prose: bool,
    /// text only: a name (店铺名称), so an answer that reads as a sentence is refused.
    #[serde(default)]
    pub name_like: bool,
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub pattern: Option<Spanned<String>>,
    pub pattern_hint: Option<String>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub default: Option<Spanned<i64>>,
    pub allowed: Option<Spanned<Vec<i64>>>,
    pub unit: Option<String>,
    pub options: Option<Spanned<Vec<String>>>,
    pub template: Option<String>,
    pub max_hours: Option<Spanned<u32>>,
    pub max_items: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub always: Option<bool>,
    pub field: Option<Spanned<String>>,
    pub equals: Option<String>,
    pub any_of: Option<Vec<String>>,
    pub contains: Option<String>,
    pub is: Option<bool>,
    pub gt: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldRef {
    pub key: Spanned<String>,
    pub label: Option<String>,
    pub prompt: Option<String>,
    pub example: Option<String>,
    pub help: Option<String>,
    #[serde(default)]
    pub optional: bool,
    /// `false`: never prompted; filled only when the person gives it unasked.
    pub ask: Option<Spanned<bool>>,
    pub when: Option<Spanned<RawCondition>>,
    /// choice / multi_choice: the list is not the seed's, so "其他: …" is accepted too.
    pub other_allowed: Option<Spanned<bool>>,
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub pattern: Option<Spanned<String>>,
    pub pattern_hint: Option<String>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub default: Option<Spanned<i64>>,
    pub allowed: Option<Spanned<Vec<i64>>>,
    pub unit: Option<String>,
    pub options: Option<Spanned<Vec<String>>>,
    pub template: Option<String>,
    pub max_hours: Option<Spanned<u32>>,
    pub max_items: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    pub when: Spanned<RawCondition>,
    pub message: String,
    /// Refusals only: keep the form at the refused question, so a later answer resumes it
    /// (#23: "已经在淘宝上改过名字了").
    #[serde(default)]
    pub keep_form: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawChannelKind {
    ResourcePlatform,
    OaTicket,
    Email,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub id: Spanned<u16>,
    pub name: String,
    pub seed_name: String,
    pub category: Spanned<String>,
    pub team: Team,
    pub channel: Spanned<RawChannelKind>,
    pub channel_address: Option<String>,
    /// Absent = the daily batch; otherwise free text such as "1~3 个工作日".
    pub window: Option<String>,
    /// The person the seed's 处理人 column names, when it names one (#4 江雪).
    pub handler: Option<String>,
    #[serde(default)]
    pub applicant: ApplicantRule,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Utterances in salespeople's words, mostly describing the need: what every matcher
    /// (lexical and by meaning) learns the service from.
    #[serde(default = "no_examples")]
    pub examples: Spanned<Vec<String>>,
    #[serde(default)]
    pub related: Vec<Spanned<u16>>,
    #[serde(default)]
    pub preconditions: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub seed_notes: String,
    #[serde(default)]
    pub fields: Vec<RawFieldRef>,
    #[serde(default)]
    pub refusals: Vec<RawOutcome>,
    #[serde(default)]
    pub guidance: Vec<RawOutcome>,
    /// Values of this file the seed does not state, each with why it is there.
    #[serde(default)]
    pub assumed: Vec<RawAssumption>,
}

/// `[[assumed]] what = "team", note = "…"`: one catalog value that is ours, not the seed's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssumption {
    pub what: Spanned<String>,
    pub note: String,
}
