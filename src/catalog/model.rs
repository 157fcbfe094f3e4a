//! Typed, validated catalog model: the structures the dialog engine reads.
//!
//! Everything here is produced by the loader (`load.rs`) from the raw TOML
//! in `dialogs/`; once a value of these types exists it is known to be
//! consistent (field references resolved, regexes compiled, caps coherent).

use crate::domain::ServiceId;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::messages::MessageKey;
use super::messages::Messages;
use super::value::{Answers, FieldKey, FieldValue, InvalidFieldKey};

/// Who handles the request once filed (the seed's 处理人 column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Team {
    /// 运维
    Ops,
    /// 产研
    Rnd,
    /// 职能组
    Functional,
    /// The flagship value-added mailbox (旗舰版增值邮箱).
    Mailbox,
}

impl Team {
    /// The config/API spelling: "ops", "rnd", "functional", "mailbox".
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "ops" => Some(Team::Ops),
            "rnd" => Some(Team::Rnd),
            "functional" => Some(Team::Functional),
            "mailbox" => Some(Team::Mailbox),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Team::Ops => "ops",
            Team::Rnd => "rnd",
            Team::Functional => "functional",
            Team::Mailbox => "mailbox",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Team::Ops => "运维",
            Team::Rnd => "产研",
            Team::Functional => "职能组",
            Team::Mailbox => "旗舰版增值邮箱",
        }
    }
}

/// Where the request is filed (the seed's 申请渠道 column; `channel` in `dialogs/services/`). Not
/// to be confused with `channel`, the chat channels messages arrive on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilingRoute {
    /// 慧策资源管理平台: 项目管理→服务管理→服务申请→申请开通.
    ResourcePlatform,
    /// An OA 工单.
    OaTicket,
    /// An e-mail; the address only when the seed gives one (#4). Without one (#10) the receipt
    /// says the handling side answers by e-mail and names no address.
    Email { address: Option<String> },
}

impl FilingRoute {
    pub fn label(&self) -> String {
        match self {
            FilingRoute::ResourcePlatform => "资源管理系统".to_owned(),
            FilingRoute::OaTicket => "OA 工单".to_owned(),
            FilingRoute::Email {
                address: Some(address),
            } => format!("邮件 {address}"),
            FilingRoute::Email { address: None } => "邮件(seed 未给地址)".to_owned(),
        }
    }
}

/// How long processing takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The daily batch: 16:00 every day incl. holidays, done by 17:30.
    DailyBatch,
    /// A service-specific window, e.g. "1~3 个工作日".
    Custom(String),
}

/// Who may apply for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantRule {
    #[default]
    Anyone,
    /// Only implementation staff (实施) may apply (service 8).
    ImplementationStaff,
}

/// A browsing category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub key: String,
    pub name: String,
    pub description: String,
}

/// Type and constraints of a field; the merged result of the library field
/// and the service's overrides.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// 卖家账号: trimmed, no spaces, 2-64 chars of letters/digits/CJK/_-.@
    SellerAccount,
    /// Free text with a minimum length in characters.
    Text {
        min_chars: usize,
        max_chars: usize,
    },
    /// An identifier (code, appkey...) checked against a pattern.
    Identifier {
        pattern: Regex,
        hint: String,
    },
    Email,
    Integer {
        min: Option<i64>,
        max: Option<i64>,
        default: Option<i64>,
        /// When set, only these values are accepted (service 61).
        allowed: Vec<i64>,
        unit: String,
    },
    /// Money in yuan, stored as cents.
    Money {
        min_cents: Option<i64>,
        max_cents: Option<i64>,
    },
    SingleChoice {
        options: Vec<String>,
    },
    MultiChoice {
        options: Vec<String>,
    },
    YesNo,
    /// A file sent by the user; `template` names the template to fill in.
    Attachment {
        template: Option<String>,
    },
    /// A list of ids, e.g. 原始单号.
    IdList {
        pattern: Option<Regex>,
        max_items: Option<usize>,
    },
    /// A duration in hours; `max_hours` also means "never permanent".
    Duration {
        max_hours: Option<u32>,
    },
}

impl FieldKind {
    /// A question answered by picking (yes/no, one option, several options): its own words
    /// ("没有", "都要") are answers there, never commands or switches.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            FieldKind::YesNo | FieldKind::SingleChoice { .. } | FieldKind::MultiChoice { .. }
        )
    }

    /// Short type name for `show` and diagnostics.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::SellerAccount => "seller_account",
            FieldKind::Text { .. } => "text",
            FieldKind::Identifier { .. } => "identifier",
            FieldKind::Email => "email",
            FieldKind::Integer { .. } => "integer",
            FieldKind::Money { .. } => "money",
            FieldKind::SingleChoice { .. } => "choice",
            FieldKind::MultiChoice { .. } => "multi_choice",
            FieldKind::YesNo => "yes_no",
            FieldKind::Attachment { .. } => "attachment",
            FieldKind::IdList { .. } => "id_list",
            FieldKind::Duration { .. } => "duration",
        }
    }

    /// The rule a prompt states up front, so nobody learns it from an error: "上限 3000",
    /// "默认 200, 可调到 201~400", "只能是 200/300/400", "最多 48 小时, 不能永久". Empty when the
    /// question needs no rule (choices show their options anyway).
    pub fn prompt_rule(&self) -> String {
        match self {
            FieldKind::Integer {
                min,
                max,
                default,
                allowed,
                unit,
            } => {
                let unit = unit.as_str();
                if !allowed.is_empty() {
                    let list: Vec<String> = allowed.iter().map(|n| n.to_string()).collect();
                    return format!("只能是 {}{unit}", list.join("/"));
                }
                match (min.filter(|m| *m > 1), max, default) {
                    (_, Some(max), Some(d)) if d < max => {
                        format!("默认 {d}{unit}, 可调到 {}~{max}{unit}", d + 1)
                    }
                    (_, Some(max), Some(d)) => format!("固定为 {d}{unit}, 上限 {max}{unit}"),
                    (Some(min), Some(max), None) => format!("{min}~{max}{unit}"),
                    (None, Some(max), None) => format!("上限 {max}{unit}"),
                    (_, None, Some(d)) => format!("默认 {d}{unit}"),
                    (Some(min), None, None) => format!("至少 {min}{unit}"),
                    (None, None, None) => String::new(),
                }
            }
            FieldKind::Money { max_cents, .. } => max_cents
                .map(|m| format!("上限 {} 元", m / 100))
                .unwrap_or_default(),
            FieldKind::Duration { max_hours } => max_hours
                .map(|h| format!("最多 {h} 小时, 不能永久"))
                .unwrap_or_default(),
            FieldKind::Text { min_chars, .. } if *min_chars > 1 => {
                format!("至少 {min_chars} 个字")
            }
            _ => String::new(),
        }
    }

    /// Human-readable constraints, e.g. "100~3000, 默认 300".
    pub fn describe(&self) -> String {
        match self {
            FieldKind::SellerAccount => "2-64 位, 不含空格".to_owned(),
            FieldKind::Text {
                min_chars,
                max_chars,
            } => {
                format!("{min_chars}~{max_chars} 个字")
            }
            FieldKind::Identifier { pattern, hint } => format!("{hint} ({})", pattern.as_str()),
            FieldKind::Email => "邮箱".to_owned(),
            FieldKind::Integer {
                min,
                max,
                default,
                allowed,
                unit,
            } => {
                let mut parts = Vec::new();
                if !allowed.is_empty() {
                    let list: Vec<String> = allowed.iter().map(|n| n.to_string()).collect();
                    parts.push(format!("只能是 {}", list.join("/")));
                }
                if let Some(min) = min {
                    parts.push(format!("最小 {min}"));
                }
                if let Some(max) = max {
                    parts.push(format!("上限 {max}"));
                }
                if let Some(d) = default {
                    parts.push(format!("默认 {d}"));
                }
                if !unit.is_empty() {
                    parts.push(format!("单位 {unit}"));
                }
                parts.join(", ")
            }
            FieldKind::Money {
                min_cents,
                max_cents,
            } => {
                let mut s = "金额(元)".to_owned();
                if let Some(m) = min_cents {
                    s.push_str(&format!(", 最小 {}", m / 100));
                }
                if let Some(m) = max_cents {
                    s.push_str(&format!(", 上限 {}", m / 100));
                }
                s
            }
            FieldKind::SingleChoice { options } => format!("单选: {}", options.join(" / ")),
            FieldKind::MultiChoice { options } => format!("多选: {}", options.join(" / ")),
            FieldKind::YesNo => "是/否".to_owned(),
            FieldKind::Attachment { template } => match template {
                Some(t) => format!("附件, 模板 {t}"),
                None => "附件".to_owned(),
            },
            FieldKind::IdList { max_items, .. } => match max_items {
                Some(m) => format!("编号列表, 最多 {m} 个"),
                None => "编号列表".to_owned(),
            },
            FieldKind::Duration { max_hours } => match max_hours {
                Some(h) => format!("时长, 最多 {h} 小时, 不能永久"),
                None => "时长".to_owned(),
            },
        }
    }
}

/// A fully resolved field specification. Carries the catalog wording so
/// that `parse_answer` can produce user-facing errors on its own.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub key: FieldKey,
    pub label: String,
    pub prompt: String,
    pub example: String,
    pub help: String,
    /// Words that introduce this field's value in free text besides its label, longest first
    /// at match time ("卖家账号", "店铺账号", "账号").
    pub cues: Vec<String>,
    /// yes_no only: phrases that say yes / no inside a sentence ("实施已经结项了").
    pub yes_phrases: Vec<String>,
    pub no_phrases: Vec<String>,
    /// choice / multi_choice: (word people use, the option it means).
    pub synonyms: Vec<(String, String)>,
    pub kind: FieldKind,
    /// Secret: masked as `****abcd` wherever shown or logged.
    pub sensitive: bool,
    /// text: one code-like token ("kt_05", an account typed at the wrong prompt) is refused.
    pub prose: bool,
    /// text: a name ("某某旗舰店"); an answer holding sentence words is refused by the engine.
    pub name_like: bool,
    /// choice / multi_choice whose list is an assumption, not the seed's: "其他: …" is
    /// accepted, so a real value the list misses is never refused (#86 单据类型).
    pub other_allowed: bool,
    pub(crate) messages: Arc<Messages>,
}

impl FieldSpec {
    /// The question to send, e.g. "请提供卖家账号, 例如: wdt_shop01".
    pub fn render_prompt(&self) -> String {
        let mut prompt = if self.prompt.is_empty() {
            self.messages
                .render(MessageKey::Prompt, &[("label", &self.label)])
        } else {
            self.prompt.clone()
        };
        let mut rule = self.kind.prompt_rule();
        if self.other_allowed {
            rule = self.messages.get(MessageKey::ChoiceOtherRule).to_owned();
        }
        if !rule.is_empty() {
            prompt = self.messages.render(
                MessageKey::PromptWithRule,
                &[("prompt", &prompt), ("rule", &rule)],
            );
        }
        if self.example.is_empty() {
            prompt
        } else {
            self.messages.render(
                MessageKey::PromptWithExample,
                &[("prompt", &prompt), ("example", &self.example)],
            )
        }
    }

    /// Shows a value, masking it when the field is sensitive.
    pub fn display_value(&self, value: &FieldValue) -> String {
        value.display(self.sensitive)
    }
}

/// A field as used by one service: merged spec plus per-service rules.
#[derive(Debug, Clone)]
pub struct ServiceField {
    pub spec: FieldSpec,
    pub required: bool,
    /// `false`: never prompted (a detail the seed does not ask for); kept when the person
    /// gives it unasked ("拆分上限 单品全拆分 调到300").
    pub asked: bool,
    /// Ask only when this holds on the earlier answers.
    pub when: Option<Condition>,
}

impl ServiceField {
    pub fn key(&self) -> &FieldKey {
        &self.spec.key
    }

    /// Whether this field should be asked given the answers so far.
    pub fn is_active(&self, answers: &Answers) -> bool {
        self.when.as_ref().is_none_or(|c| c.holds(answers))
    }
}

/// A refusal: when the condition holds the request must not be filed and
/// the message explains why and what to do instead.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub when: Condition,
    pub message: String,
    /// Keep the form at the refused question (a number is always asked again).
    pub keep_form: bool,
}

/// A guidance-only outcome: when the condition holds nothing is filed; the
/// user is told how to get the service elsewhere.
#[derive(Debug, Clone)]
pub struct Guidance {
    pub when: Condition,
    pub message: String,
}

/// One value-added service.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: ServiceId,
    /// Canonical short name shown to users.
    pub name: String,
    /// The exact name in the seed (may span lines).
    pub seed_name: String,
    pub category: String,
    pub team: Team,
    pub route: FilingRoute,
    pub window: Window,
    /// The person the seed names as handler, shown on the receipt instead of the team.
    pub handler: Option<String>,
    pub applicant: ApplicantRule,
    pub aliases: Vec<String>,
    pub keywords: Vec<String>,
    /// How salespeople ask for it, mostly by describing the need or the symptom.
    pub examples: Vec<String>,
    pub fields: Vec<ServiceField>,
    /// Must be confirmed by the requester before filing.
    pub preconditions: Vec<String>,
    /// Must be acknowledged before filing.
    pub warnings: Vec<String>,
    pub refusals: Vec<Refusal>,
    pub guidance: Vec<Guidance>,
    pub related: Vec<ServiceId>,
    /// Informational text shown in help and the summary.
    pub notes: Vec<String>,
    /// Values of this service the seed does not state, each with why it is there.
    pub assumed: Vec<Assumption>,
    /// The seed's notes column verbatim, so nothing is ever lost.
    pub seed_notes: String,
    /// File the service was loaded from (for diagnostics).
    pub source: PathBuf,
}

/// Which catalog value of a service is an assumption (`what` in `[[assumed]]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssumedValue {
    Route,
    RouteAddress,
    Team,
    Handler,
    Window,
    /// Notes, preconditions, warnings and outcome messages.
    Notes,
    /// The option list of a choice field: `options.<field>`.
    Options(FieldKey),
    /// The caps of an integer field (max, default, allowed): `cap.<field>`.
    Cap(FieldKey),
}

/// Why an `[[assumed]]` entry's `what` is not one the data may name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssumptionError {
    /// `options.<field>` or `cap.<field>` with a key that is not lower snake case.
    #[error(transparent)]
    FieldKey(#[from] InvalidFieldKey),
    #[error(
        "unknown assumption `{0}`: expected team, handler, window, channel, \
         channel_address, notes, options.<field> or cap.<field>"
    )]
    Unknown(String),
}

impl AssumedValue {
    /// Reads the data spelling: `team`, `handler`, `window`, `channel`, `channel_address`,
    /// `notes`, `options.<field>`, `cap.<field>`.
    pub fn parse(raw: &str) -> Result<Self, AssumptionError> {
        let field = |k: &str| FieldKey::parse(k).map_err(AssumptionError::from);
        match raw.trim() {
            "channel" => Ok(Self::Route),
            "channel_address" => Ok(Self::RouteAddress),
            "team" => Ok(Self::Team),
            "handler" => Ok(Self::Handler),
            "window" => Ok(Self::Window),
            "notes" => Ok(Self::Notes),
            other => match other.split_once('.') {
                Some(("options", k)) => field(k).map(Self::Options),
                Some(("cap", k)) => field(k).map(Self::Cap),
                _ => Err(AssumptionError::Unknown(other.to_owned())),
            },
        }
    }
}

impl fmt::Display for AssumedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Route => f.write_str("channel"),
            Self::RouteAddress => f.write_str("channel_address"),
            Self::Team => f.write_str("team"),
            Self::Handler => f.write_str("handler"),
            Self::Window => f.write_str("window"),
            Self::Notes => f.write_str("notes"),
            Self::Options(k) => write!(f, "options.{k}"),
            Self::Cap(k) => write!(f, "cap.{k}"),
        }
    }
}

/// A value the seed does not state, kept on purpose and said so in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumption {
    pub what: AssumedValue,
    pub note: String,
}

impl Service {
    /// Whether the data marks `what` as an assumption.
    pub fn is_assumed(&self, what: &AssumedValue) -> bool {
        self.assumed.iter().any(|a| &a.what == what)
    }

    /// Who the requester is told handles it: the person the seed names (#4 江雪), else the team,
    /// unless the team is only our routing assumption (#1, #10) — then no one is promised.
    pub fn handler_label(&self, messages: &Messages) -> String {
        match &self.handler {
            Some(person) => person.clone(),
            None if self.is_assumed(&AssumedValue::Team) => {
                messages.get(MessageKey::ReceiptHandlerUnnamed).to_owned()
            }
            None => self.team.label().to_owned(),
        }
    }

    pub fn field(&self, key: &FieldKey) -> Option<&ServiceField> {
        self.fields.iter().find(|f| f.key() == key)
    }

    /// Fields to ask given the answers so far, in order.
    pub fn active_fields<'a>(
        &'a self,
        answers: &'a Answers,
    ) -> impl Iterator<Item = &'a ServiceField> + 'a {
        self.fields.iter().filter(move |f| f.is_active(answers))
    }

    /// The next field to ask: first active field without an answer.
    pub fn next_missing_field(&self, answers: &Answers) -> Option<&ServiceField> {
        self.fields
            .iter()
            .find(|f| f.is_active(answers) && !answers.contains_key(f.key()))
    }

    /// The first refusal that applies, if any.
    pub fn refusal_for(&self, answers: &Answers) -> Option<&Refusal> {
        self.refusals.iter().find(|r| r.when.holds(answers))
    }

    /// Label and display text of each answered, active field, in order,
    /// with secrets masked: what the summary (and any log line) shows.
    pub fn summary_lines(&self, answers: &Answers) -> Vec<(String, String)> {
        self.active_fields(answers)
            .filter_map(|f| {
                answers
                    .get(f.key())
                    .map(|v| (f.spec.label.clone(), f.spec.display_value(v)))
            })
            .collect()
    }

    /// The field that holds the customer's seller account, when the service asks for one.
    pub fn seller_account_field(&self) -> Option<&ServiceField> {
        self.fields
            .iter()
            .find(|f| matches!(f.spec.kind, FieldKind::SellerAccount))
    }

    /// The first guidance-only outcome that applies, if any.
    pub fn guidance_for(&self, answers: &Answers) -> Option<&Guidance> {
        self.guidance.iter().find(|g| g.when.holds(answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_keys_parse() {
        assert!(FieldKey::parse("seller_account").is_ok());
        assert!(FieldKey::parse("Seller").is_err());
        assert!(FieldKey::parse("9x").is_err());
        assert!(FieldKey::parse("").is_err());
    }
}
