//! The conversation commands inside a turn (取消, 返回, 跳过, 帮助, 确认, 修改, "X改成Y", "#33", `/…`),
//! recognised from the tuning's word lists. Not the commands about filed requests
//! (`dialog::commands`).

use regex::Regex;

use super::context::Engine;
use crate::dialog::text::fold;
use crate::dialog::understand::Tuning;
use crate::domain::ServiceId;

/// A conversation command recognised in a message.
#[derive(Debug, PartialEq)]
pub(super) enum FormCommand {
    Cancel,
    Back,
    Skip,
    Help,
    Confirm,
    /// 修改, optionally naming the field ("修改 申请原因").
    Edit(Option<String>),
    /// "卖家账号改成 xyz".
    Correct {
        field: String,
        value: String,
    },
    Resume,
    /// "#33 …": the service with that 序号, and the rest of the message.
    Service(ServiceId, String),
    Slash {
        name: String,
        args: String,
    },
}

impl FormCommand {
    /// Whether the command outranks reading the message as the answer to a yes/no or option
    /// question (确认, 跳过 and 继续 do not: "没有" there is 否).
    pub(super) fn steers_a_closed_question(&self) -> bool {
        matches!(
            self,
            FormCommand::Cancel
                | FormCommand::Back
                | FormCommand::Help
                | FormCommand::Slash { .. }
                | FormCommand::Service(..)
                | FormCommand::Correct { .. }
                | FormCommand::Edit(_)
        )
    }
}

fn correction_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(?:修改|更改|改一下)\s*)?(?:把|将)?\s*(.{1,12}?)\s*(?:改成|改为|换成|修改为|更正为|应该是|改一下为)\s*[:：]?\s*(.+)$")
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    })
}

/// "#33", "＃33 shop_a1 调到2000" (full width is folded before this runs).
fn service_number_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^#\s*([0-9]{1,3})(?:$|[^0-9](.*))$")
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    })
}

fn edit_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:修改|更改|改一下|改)\s*(.{1,12})$")
            .unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| std::process::abort()))
    })
}

impl Engine<'_> {
    pub(super) fn command(&self, text: &str) -> Option<FormCommand> {
        let trimmed = text.trim();
        if let Some(rest) = trimmed
            .strip_prefix('/')
            .or_else(|| trimmed.strip_prefix('／'))
        {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            return Some(FormCommand::Slash {
                name: name.to_lowercase(),
                args: args.trim().to_owned(),
            });
        }
        if let Some(c) = service_number_regex().captures(trimmed)
            && let Ok(n) = c[1].parse::<u16>()
            && self.catalog.service(ServiceId(n)).is_some()
        {
            let rest = c.get(2).map_or("", |m| m.as_str()).trim().to_owned();
            return Some(FormCommand::Service(ServiceId(n), rest));
        }
        let w = &self.tuning().commands;
        let is = |list: &[String]| Tuning::is(list, trimmed);
        // "算了不弄了", "算了吧 不办了": cancel words one after another, nothing else.
        let only_cancel_words = |said: &str| {
            let folded: String = fold(said).chars().filter(|c| c.is_alphanumeric()).collect();
            let mut rest = folded.as_str();
            let mut words = 0;
            while !rest.is_empty() {
                let longest = w
                    .cancel
                    .iter()
                    .filter(|c| !c.is_empty() && rest.starts_with(c.as_str()))
                    .map(String::len)
                    .max();
                if let Some(len) = longest {
                    rest = &rest[len..];
                    words += 1;
                } else if let Some(c) = rest
                    .chars()
                    .next()
                    .filter(|c| crate::dialog::text::TRAILING_PARTICLES.contains(*c))
                {
                    rest = &rest[c.len_utf8()..];
                } else {
                    return false;
                }
            }
            words >= 2
        };
        // "算了 取消", "不是韵达了 取消", "200不够 那算了不弄了": a short message that ends with cancel words
        // standing apart from the words before it cancels too ("客户要取消" is no command).
        let ends_cancelled = || {
            trimmed.chars().count() <= 20
                && trimmed
                    .rsplit(|c: char| c.is_whitespace() || ",，。!！".contains(c))
                    .find(|w| !w.is_empty())
                    .is_some_and(|last| {
                        last != trimmed && (Tuning::is(&w.cancel, last) || only_cancel_words(last))
                    })
        };
        // "先不弄了 等客户签了免责声明再说": a message opening with a cancel of three characters
        // or more, standing apart, then saying why.
        let opens_cancelled = || {
            trimmed.chars().count() <= 30
                && trimmed
                    .split(|c: char| c.is_whitespace() || ",，。!！".contains(c))
                    .next()
                    .filter(|first| *first != trimmed)
                    .is_some_and(|first| {
                        // "算了不弄了 客户说再考虑下": cancel words one after another.
                        if only_cancel_words(first) {
                            return true;
                        }
                        let first = fold(first);
                        // Only 先/那/就 before it: "快手不要了" takes back an option.
                        w.cancel.iter().any(|c| {
                            c.chars().count() >= 3
                                && first.strip_suffix(c.as_str()).is_some_and(|lead| {
                                    lead.chars().all(|ch| "先那就还".contains(ch))
                                })
                        })
                    })
        };
        if is(&w.cancel) || ends_cancelled() || only_cancel_words(trimmed) || opens_cancelled() {
            Some(FormCommand::Cancel)
        } else if is(&w.back) {
            Some(FormCommand::Back)
        } else if is(&w.skip) {
            Some(FormCommand::Skip)
        } else if is(&w.help) {
            Some(FormCommand::Help)
        } else if is(&w.confirm) || is(&w.confirm_like) {
            Some(FormCommand::Confirm)
        } else if is(&w.edit) {
            Some(FormCommand::Edit(None))
        } else if is(&w.resume) {
            Some(FormCommand::Resume)
        } else if let Some(c) = correction_regex().captures(trimmed) {
            Some(FormCommand::Correct {
                field: c[1].trim().to_owned(),
                value: c[2].trim().to_owned(),
            })
        } else {
            edit_regex()
                .captures(trimmed)
                .map(|c| FormCommand::Edit(Some(c[1].trim().to_owned())))
        }
    }
}
