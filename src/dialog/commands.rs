//! Chat commands about filed requests: `/status ID` (查询), `/mine` (我的申请), `/today` (今天),
//! `/cancel ID` (撤回), and for handlers `/done ID [备注]` (完成) and `/reject ID 原因` (驳回).
//!
//! Who may see what: the requester, handlers of the request's team, and configured admins.
//! An unknown id and someone else's request get the same answer, so existence does not leak.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::catalog::MessageKey;
use crate::catalog::{Catalog, Messages};
use crate::domain::{ChannelKind, RequestId, ServiceId, UserId};
use crate::requests::{
    BatchSchedule, Desk, DeskError, HandlerDirectory, Ledger, Request, RequestFilter, Status,
    TeamScope,
};

/// One slash command as the bot lists it: its name and the `messages.toml` key of its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashCommand {
    pub name: &'static str,
    pub line_key: MessageKey,
    /// Only handlers may use it (listed under their own heading).
    pub handlers_only: bool,
}

/// Every slash command the bot answers, in the order they are listed. `/help` and the reply to an
/// unknown command are built from this one list, so neither can miss a command; a test sends each
/// one and checks it is understood.
pub const SLASH_COMMANDS: &[SlashCommand] = &[
    SlashCommand {
        name: "services",
        line_key: MessageKey::CmdListServices,
        handlers_only: false,
    },
    SlashCommand {
        name: "status",
        line_key: MessageKey::CmdListStatus,
        handlers_only: false,
    },
    SlashCommand {
        name: "mine",
        line_key: MessageKey::CmdListMine,
        handlers_only: false,
    },
    SlashCommand {
        name: "today",
        line_key: MessageKey::CmdListToday,
        handlers_only: false,
    },
    SlashCommand {
        name: "cancel",
        line_key: MessageKey::CmdListCancel,
        handlers_only: false,
    },
    SlashCommand {
        name: "resubmit",
        line_key: MessageKey::CmdListResubmit,
        handlers_only: false,
    },
    SlashCommand {
        name: "help",
        line_key: MessageKey::CmdListHelp,
        handlers_only: false,
    },
    SlashCommand {
        name: "done",
        line_key: MessageKey::CmdListDone,
        handlers_only: true,
    },
    SlashCommand {
        name: "reject",
        line_key: MessageKey::CmdListReject,
        handlers_only: true,
    },
];

/// The command list as shown in `/help` and after an unknown command: everyone's commands, then
/// the handlers' under their heading.
#[must_use]
pub fn command_list(messages: &Messages) -> String {
    let lines = |handlers_only: bool| {
        SLASH_COMMANDS
            .iter()
            .filter(|c| c.handlers_only == handlers_only)
            .map(|c| messages.get(c.line_key))
            .collect::<Vec<_>>()
            .join("\n")
    };
    messages.render(
        MessageKey::CmdList,
        &[
            ("commands", &lines(false)),
            ("handler_commands", &lines(true)),
        ],
    )
}

/// Lines per page of `/today` and `/mine`.
const PAGE: usize = 10;

/// A recognised command about filed requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestCommand {
    Status(Option<RequestId>),
    /// "好了没", "为什么被驳回": the person's most recent request.
    LatestStatus,
    /// "为什么被驳回": the person's most recent rejected request (not the latest one).
    LatestRejected,
    /// "那重新提一个": reopen the person's most recent rejected request.
    ResubmitLatest,
    /// "我昨天提的电子发票开了没": the person's most recent request for that service (or one of
    /// the same name, as #5 and #47 are).
    LatestStatusOf(ServiceId),
    /// "多包裹那个申请撤回": the person's most recent request for that service, withdrawn.
    CancelLatestOf(ServiceId),
    /// "撤回刚才那个申请": the person's most recent request.
    CancelLatest,
    Mine,
    Today {
        page: usize,
    },
    Cancel(RequestId),
    Done {
        id: Option<RequestId>,
        note: String,
    },
    Reject {
        id: Option<RequestId>,
        reason: String,
    },
    /// "重新提交 KT-…": the requester corrects a rejected request; the bot opens it as a form.
    Resubmit(Option<RequestId>),
}

/// The words that name each chat command (`[chat_commands]` in `dialogs/understanding.toml`):
/// the first word of a message, with or without a leading `/`. Each list holds the command's
/// slash name and its Chinese words, so a synonym is added in data, not here.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatWords {
    pub status: Vec<String>,
    pub mine: Vec<String>,
    pub today: Vec<String>,
    pub cancel: Vec<String>,
    pub resubmit: Vec<String>,
    pub done: Vec<String>,
    pub reject: Vec<String>,
    /// Words that name a command only after a `/` ("/我的"): too common to read alone.
    #[serde(default)]
    pub slash_only: Vec<String>,
}

/// Which command a word names; each has its own rule for what must follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Status,
    Mine,
    Today,
    Cancel,
    Resubmit,
    Done,
    Reject,
}

/// How a command word is compared: the message's first word gets the same treatment.
fn fold_word(word: &str) -> String {
    crate::catalog::value::normalize_width(word.trim()).to_lowercase()
}

impl ChatWords {
    fn lists(&self) -> [(Verb, &'static str, &[String]); 7] {
        [
            (Verb::Status, "status", &self.status),
            (Verb::Mine, "mine", &self.mine),
            (Verb::Today, "today", &self.today),
            (Verb::Cancel, "cancel", &self.cancel),
            (Verb::Resubmit, "resubmit", &self.resubmit),
            (Verb::Done, "done", &self.done),
            (Verb::Reject, "reject", &self.reject),
        ]
    }

    /// Folds every word (width, case) and checks the lists: none empty, each holds its
    /// command's slash name, every word is one non-empty token without a `/` and names one
    /// command only, and every `slash_only` word names some command.
    pub fn checked(mut self) -> Result<Self, String> {
        for list in [
            &mut self.status,
            &mut self.mine,
            &mut self.today,
            &mut self.cancel,
            &mut self.resubmit,
            &mut self.done,
            &mut self.reject,
            &mut self.slash_only,
        ] {
            for word in list.iter_mut() {
                *word = fold_word(word);
            }
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (_, key, list) in self.lists() {
            if list.is_empty() {
                return Err(format!("chat_commands.{key} is empty"));
            }
            if !list.iter().any(|w| w == key) {
                return Err(format!(
                    "chat_commands.{key} must hold its slash name \"{key}\" (/help lists it)"
                ));
            }
            for word in list {
                if word.is_empty() || word.contains(char::is_whitespace) || word.contains('/') {
                    return Err(format!(
                        "chat_commands.{key}: \"{word}\" must be one word without \"/\""
                    ));
                }
                if let Some(other) = seen.insert(word, key) {
                    return Err(format!(
                        "chat_commands: \"{word}\" names both {other} and {key}"
                    ));
                }
            }
        }
        if let Some(word) = self
            .slash_only
            .iter()
            .find(|w| !seen.contains_key(w.as_str()))
        {
            return Err(format!(
                "chat_commands.slash_only: \"{word}\" names no command"
            ));
        }
        Ok(self)
    }

    fn verb(&self, word: &str) -> Option<Verb> {
        self.lists()
            .into_iter()
            .find(|(_, _, list)| list.iter().any(|w| w == word))
            .map(|(verb, _, _)| verb)
    }
}

/// Reads a command from a whole message; `None` leaves it to the conversation. Bare words (no
/// `/`) follow each command's rule: status, resubmit, done and reject need a request id after
/// them, cancel always does, today takes nothing or a page number.
#[must_use]
pub fn parse(text: &str, words: &ChatWords) -> Option<RequestCommand> {
    let text = crate::catalog::value::normalize_width(text.trim());
    let (head, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text.as_str(), ""), |(h, r)| (h, r.trim()));
    let id = |s: &str| s.split_whitespace().next().and_then(RequestId::parse);
    let after_id = |s: &str| {
        s.split_once(char::is_whitespace)
            .map(|(_, r)| r.trim().to_owned())
            .unwrap_or_default()
    };
    let slashed = head.starts_with('/');
    let word = fold_word(head.trim_start_matches('/'));
    if !slashed && words.slash_only.contains(&word) {
        return None;
    }
    match words.verb(&word)? {
        Verb::Status if slashed || id(rest).is_some() => Some(RequestCommand::Status(id(rest))),
        Verb::Mine => Some(RequestCommand::Mine),
        Verb::Today if slashed || rest.is_empty() || rest.parse::<usize>().is_ok() => {
            Some(RequestCommand::Today {
                page: rest.parse().unwrap_or(1).max(1),
            })
        }
        Verb::Cancel => id(rest).map(RequestCommand::Cancel),
        // The rejection notice says to reply "重新提交 KT-…".
        Verb::Resubmit if slashed || id(rest).is_some() => Some(RequestCommand::Resubmit(id(rest))),
        Verb::Done if slashed || id(rest).is_some() => Some(RequestCommand::Done {
            id: id(rest),
            note: after_id(rest),
        }),
        Verb::Reject if slashed || id(rest).is_some() => Some(RequestCommand::Reject {
            id: id(rest),
            reason: after_id(rest),
        }),
        _ => None,
    }
}

/// Plain-language forms of the commands (`[plain_commands]` in `dialogs/understanding.toml`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainWords {
    /// Longest message still read as a command rather than a request.
    pub max_chars: usize,
    pub status: Vec<String>,
    pub mine: Vec<String>,
    pub cancel: Vec<String>,
    /// "为什么被驳回": about the latest rejected request.
    pub why_rejected: Vec<String>,
    /// "重新提一个": reopen the latest rejected request.
    pub resubmit: Vec<String>,
    /// "昨天那个多包裹的申请帮我收回哈": a withdrawal verb and a word for a filed request, anywhere.
    #[serde(default)]
    pub cancel_verbs: Vec<String>,
    #[serde(default)]
    pub request_nouns: Vec<String>,
    /// "我昨天提的…", "之前申请的…": words pointing at a request the person filed …
    #[serde(default)]
    pub own_request_refs: Vec<String>,
    /// … which, with one of these closing the message, ask how it stands ("…那个怎么样了").
    #[serde(default)]
    pub status_endings: Vec<String>,
    /// Examples of each question about one's own requests, for the messages no listed phrase
    /// reads: the act whose example's words the message holds most of.
    #[serde(default)]
    pub examples: ActExamples,
}

/// Examples of the read-only acts (withdrawing is never read from similarity: it changes a
/// filed request).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActExamples {
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default)]
    pub why_rejected: Vec<String>,
    #[serde(default)]
    pub mine: Vec<String>,
    /// Share of an example's character pairs the message must hold (0 = never).
    #[serde(default)]
    pub min_cover: f32,
}

/// The character pairs of a text's letters, digits and Chinese characters.
fn pairs(text: &str) -> std::collections::HashSet<(char, char)> {
    let chars: Vec<char> = super::text::fold(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

/// The act whose example the message covers most (at least `min_cover` of the example's
/// character pairs, an example of three pairs or more), when one act alone is best.
fn act_by_examples(text: &str, examples: &ActExamples) -> Option<RequestCommand> {
    if examples.min_cover <= 0.0 {
        return None;
    }
    let said = pairs(text);
    let best = |list: &[String]| -> f32 {
        list.iter()
            .map(|e| pairs(e))
            .filter(|e| e.len() >= 3)
            .map(|e| {
                #[allow(clippy::cast_precision_loss)]
                let cover = e.intersection(&said).count() as f32 / e.len() as f32;
                cover
            })
            .fold(0.0, f32::max)
    };
    let scored = [
        (best(&examples.status), RequestCommand::LatestStatus),
        (best(&examples.why_rejected), RequestCommand::LatestRejected),
        (best(&examples.mine), RequestCommand::Mine),
    ];
    let top = scored.iter().map(|(s, _)| *s).fold(0.0, f32::max);
    let mut winners = scored
        .into_iter()
        .filter(|(s, _)| *s >= top && top >= examples.min_cover);
    let (_, command) = winners.next()?;
    winners.next().is_none().then_some(command)
}

/// Reads a status question, "my requests" or a withdrawal said in plain words; a request id in
/// the message ("KT-20261128-0007 好了没") is used, else the person's most recent request.
#[must_use]
pub fn parse_plain(text: &str, words: &PlainWords) -> Option<RequestCommand> {
    let folded = super::text::fold(text);
    if folded.is_empty() || folded.chars().count() > words.max_chars {
        return None;
    }
    // The lists are folded once at load (`Tuning::load`), not here for every message.
    let has = |list: &[String]| list.iter().any(|w| folded.contains(w.as_str()));
    let id = crate::catalog::value::normalize_width(text)
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '，'))
        .find_map(|t| RequestId::parse(t.trim()));
    if has(&words.cancel) || (has(&words.cancel_verbs) && has(&words.request_nouns)) {
        return Some(id.map_or(RequestCommand::CancelLatest, RequestCommand::Cancel));
    }
    if has(&words.resubmit) {
        return Some(id.map_or(RequestCommand::ResubmitLatest, |id| {
            RequestCommand::Resubmit(Some(id))
        }));
    }
    if id.is_none() && has(&words.why_rejected) {
        return Some(RequestCommand::LatestRejected);
    }
    // "我昨天提的电子发票那个怎么样了": a filed request pointed at and asked about.
    let asks_how = words.status_endings.iter().any(|w| {
        folded
            .trim_end_matches(['?', '？', '。', '~'])
            .ends_with(w.as_str())
    }) || folded.ends_with(['?', '？']);
    // Before "my requests": "我的申请到哪了" asks where the request is, not for the list.
    // "我提的申请呢" asks for the list ("my requests" words), not how one stands.
    if has(&words.status) || (has(&words.own_request_refs) && asks_how && !has(&words.mine)) {
        return Some(id.map_or(RequestCommand::LatestStatus, |id| {
            RequestCommand::Status(Some(id))
        }));
    }
    if has(&words.mine) {
        return Some(RequestCommand::Mine);
    }
    // No listed phrase: by the examples, when the message names no request of its own.
    if id.is_none() {
        return act_by_examples(text, &words.examples);
    }
    None
}

/// A chat command typed after a few words ("帮我查下 /status KT-…"): the message from the
/// command on, to be read as if it began there. Only for a short lead (the words up to and
/// including the command within `max_chars`, folded), only for a `/` that starts a token (not
/// inside a link or a path), and only for a command word (`[chat_commands]` or a listed slash
/// command such as `/services`).
#[must_use]
pub fn embedded_command(text: &str, words: &ChatWords, max_chars: usize) -> Option<String> {
    // Every text turn comes through here: most have no slash and need no normalising.
    if !text.contains(['/', '／']) {
        return None;
    }
    let text = crate::catalog::value::normalize_width(text.trim());
    if text.starts_with('/') {
        return None;
    }
    let known =
        |word: &str| words.verb(word).is_some() || SLASH_COMMANDS.iter().any(|c| c.name == word);
    for (at, _) in text.match_indices('/') {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.')) {
            continue;
        }
        let command = &text[at..];
        let head = command
            .split(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let word = fold_word(head.trim_start_matches('/'));
        let lead = super::text::fold(&text[..at + head.len()]);
        if !word.is_empty() && known(&word) && lead.chars().count() <= max_chars {
            return Some(command.to_owned());
        }
    }
    None
}

/// Every request `user` filed, on either channel (a form moved to the 1:1 chat of the other
/// channel files under that channel).
pub async fn person_requests(
    ledger: &dyn Ledger,
    user: &UserId,
) -> Result<Vec<Request>, crate::requests::LedgerError> {
    let mut all = Vec::new();
    for channel in [ChannelKind::App, ChannelKind::AiBot] {
        let filter = RequestFilter {
            requester: Some((channel, user.clone())),
            ..RequestFilter::default()
        };
        all.extend(ledger.list(&filter).await?);
    }
    Ok(all)
}

/// The person's most recently filed request that is rejected now.
pub async fn latest_rejected(
    ledger: &dyn Ledger,
    user: &UserId,
) -> Result<Option<Request>, crate::requests::LedgerError> {
    Ok(person_requests(ledger, user)
        .await?
        .into_iter()
        .filter(|r| r.status() == Status::Rejected)
        .max_by_key(|r| r.submitted_at))
}

/// Everything the commands need.
pub struct Commands<'a> {
    /// Wording, and the services' handlers as the receipt names them.
    pub catalog: &'a Catalog,
    pub ledger: &'a dyn Ledger,
    pub desk: &'a Desk,
    pub handlers: &'a HandlerDirectory,
    pub admins: &'a [String],
    pub schedule: &'a BatchSchedule,
    /// Asked in a group chat: others read the answer, so `/today` says whose view it is.
    pub in_group: bool,
}

fn local_time(schedule: &BatchSchedule, at: DateTime<Utc>) -> String {
    at.with_timezone(&schedule.tz)
        .format("%m-%d %H:%M")
        .to_string()
}

impl Commands<'_> {
    fn is_admin(&self, user: &UserId) -> bool {
        self.admins.iter().any(|a| a == user.as_str())
    }

    /// The scope this person sees beyond their own requests.
    fn scope(&self, user: &UserId) -> Option<TeamScope> {
        if self.is_admin(user) {
            return Some(TeamScope::All);
        }
        self.handlers.by_wecom_user(user).map(|h| h.scope)
    }

    fn may_see(&self, user: &UserId, request: &Request) -> bool {
        request.form.requester.user == *user
            || self
                .scope(user)
                .is_some_and(|s| s.covers(request.form.team))
    }

    fn line(&self, request: &Request) -> String {
        self.catalog.messages().render(
            MessageKey::CmdLine,
            &[
                ("id", request.id.as_str()),
                ("service_id", &request.form.service.to_string()),
                ("service", &request.form.service_name),
                ("status", request.status().label()),
            ],
        )
    }

    pub async fn run(
        &self,
        command: RequestCommand,
        channel: ChannelKind,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> String {
        let m = self.catalog.messages();
        let result = match command {
            RequestCommand::Status(None) => Ok(m.get(MessageKey::CmdStatusUsage).to_owned()),
            RequestCommand::Status(Some(id)) => self.status(user, &id).await,
            RequestCommand::LatestStatus => self.latest_status(user, None).await,
            RequestCommand::LatestRejected => match latest_rejected(self.ledger, user).await {
                Ok(Some(r)) => self.status(user, &r.id).await,
                Ok(None) => Ok(m.get(MessageKey::CmdNoneRejected).to_owned()),
                Err(e) => Err((None, DeskError::Ledger(e))),
            },
            // Reopened by the bot before the engine; here only when nothing was rejected.
            RequestCommand::ResubmitLatest => Ok(m.get(MessageKey::CmdNoneRejected).to_owned()),
            RequestCommand::LatestStatusOf(service) => {
                self.latest_status(user, Some(service)).await
            }
            RequestCommand::CancelLatest | RequestCommand::CancelLatestOf(_) => match self
                .latest(
                    user,
                    match command {
                        RequestCommand::CancelLatestOf(service) => Some(service),
                        _ => None,
                    },
                )
                .await
            {
                Ok(Some(id)) => match self.desk.cancel_own(channel, user, &id, now).await {
                    Ok(_) => Ok(m.render(MessageKey::CmdCancelDone, &[("id", id.as_str())])),
                    Err(e) => Err((Some(id), e)),
                },
                Ok(None) => Ok(m.get(MessageKey::CmdMineEmpty).to_owned()),
                Err(e) => Err((None, e)),
            },
            RequestCommand::Mine => self.mine(user).await,
            RequestCommand::Today { page } => self.today(user, page, now).await,
            RequestCommand::Cancel(id) => match self.desk.cancel_own(channel, user, &id, now).await
            {
                Ok(_) => Ok(m.render(MessageKey::CmdCancelDone, &[("id", id.as_str())])),
                Err(e) => Err((Some(id), e)),
            },
            RequestCommand::Done { id, note } => match (self.handlers.by_wecom_user(user), id) {
                (None, _) => Ok(m.get(MessageKey::CmdNoPermission).to_owned()),
                (Some(_), None) => Ok(m.get(MessageKey::CmdDoneUsage).to_owned()),
                (Some(handler), Some(id)) => {
                    let note = (!note.is_empty()).then_some(note);
                    match self.desk.complete(&handler, &id, note, now).await {
                        Ok(r) => Ok(m.render(
                            MessageKey::CmdDoneOk,
                            &[("id", id.as_str()), ("when", &self.when(&r, now))],
                        )),
                        Err(e) => Err((Some(id), e)),
                    }
                }
            },
            // Opening a form is the bot's; here only when no bot intercepted it.
            RequestCommand::Resubmit(_) => Ok(m.get(MessageKey::CmdResubmitUsage).to_owned()),
            RequestCommand::Reject { id, reason } => {
                match (self.handlers.by_wecom_user(user), id) {
                    (None, _) => Ok(m.get(MessageKey::CmdNoPermission).to_owned()),
                    (Some(_), None) => Ok(m.get(MessageKey::CmdRejectUsage).to_owned()),
                    (Some(_), Some(_)) if reason.is_empty() => {
                        Ok(m.get(MessageKey::CmdRejectUsage).to_owned())
                    }
                    (Some(handler), Some(id)) => {
                        match self.desk.reject(&handler, &id, &reason, now).await {
                            Ok(_) => Ok(m.render(
                                MessageKey::CmdRejectOk,
                                // Rejections are pushed at once, so the request can make the next
                                // cut-off.
                                &[
                                    ("id", id.as_str()),
                                    ("when", m.get(MessageKey::CmdNotifyNow)),
                                ],
                            )),
                            Err(e) => Err((Some(id), e)),
                        }
                    }
                }
            }
        };
        match result {
            Ok(text) => text,
            Err((id, DeskError::NotNow { from, .. })) => {
                let id = id.map(|i| i.to_string()).unwrap_or_default();
                m.render(MessageKey::CmdNotNow, &[("id", &id), ("status", from)])
            }
            Err((_, DeskError::ReasonRequired)) => m.get(MessageKey::CmdRejectUsage).to_owned(),
            // Chat never reopens (the console does); answered like any move that is too late.
            Err((id, DeskError::TooLate)) => {
                let id = id.map(|i| i.to_string()).unwrap_or_default();
                m.render(MessageKey::CmdNotNow, &[("id", &id), ("status", "已处理")])
            }
            Err((_, DeskError::NotFound)) => m.get(MessageKey::CmdNotFound).to_owned(),
            Err((_, DeskError::Ledger(e))) => {
                tracing::error!(error = %e, "command failed");
                m.get(MessageKey::Busy).to_owned()
            }
        }
    }

    /// When the requester hears of a completed request: with the 17:30 push for the daily
    /// batch, at once for services outside it (OA ticket, e-mail) or after 17:30.
    fn when(&self, request: &Request, now: DateTime<Utc>) -> String {
        if !matches!(request.form.window, crate::catalog::Window::DailyBatch) {
            return self
                .catalog
                .messages()
                .get(MessageKey::CmdNotifyNow)
                .to_owned();
        }
        match self.schedule.done_at(request.batch) {
            Some(due) if now < due => self.catalog.messages().render(
                MessageKey::CmdNotifyLater,
                &[(
                    "time",
                    &due.with_timezone(&self.schedule.tz)
                        .format("%H:%M")
                        .to_string(),
                )],
            ),
            _ => self
                .catalog
                .messages()
                .get(MessageKey::CmdNotifyNow)
                .to_owned(),
        }
    }

    async fn status(
        &self,
        user: &UserId,
        id: &RequestId,
    ) -> Result<String, (Option<RequestId>, DeskError)> {
        let request = match self.ledger.get(id).await {
            Ok(Some(r)) if self.may_see(user, &r) => r,
            Ok(_) => return Err((Some(id.clone()), DeskError::NotFound)),
            Err(e) => return Err((Some(id.clone()), DeskError::Ledger(e))),
        };
        let note = request
            .history
            .last()
            .and_then(|c| c.note.clone())
            .map(|n| {
                self.catalog
                    .messages()
                    .render(MessageKey::CmdStatusNote, &[("note", &n)])
            })
            .unwrap_or_default();
        let note = match &request.form.resubmit_of {
            Some(rejected) => {
                note + &self.catalog.messages().render(
                    MessageKey::CmdStatusResubmitOf,
                    &[("id", rejected.as_str())],
                )
            }
            None => note,
        };
        // An open request says when to expect it: the batch's done-by time, or the seed's own
        // window for services outside the batch (OA ticket, e-mail).
        let expected = match (request.status(), &request.form.window) {
            (Status::Submitted | Status::Processing, crate::catalog::Window::DailyBatch) => {
                self.schedule.done_at(request.batch).map(|due| {
                    self.catalog.messages().render(
                        MessageKey::CmdStatusDue,
                        &[("time", &local_time(self.schedule, due))],
                    )
                })
            }
            (Status::Submitted | Status::Processing, crate::catalog::Window::Custom(text)) => {
                Some(text.clone())
            }
            _ => None,
        };
        let note = match expected {
            Some(when) => {
                self.catalog
                    .messages()
                    .render(MessageKey::CmdStatusExpected, &[("when", &when)])
                    + &note
            }
            None => note,
        };
        // A handler of the request's team reads what was filled in (secrets already masked
        // in the summary), so `/status` is enough to act on a request from the chat.
        let note = if self
            .scope(user)
            .is_some_and(|s| s.covers(request.form.team))
            && !request.form.summary.is_empty()
        {
            let fields = request
                .form
                .summary
                .iter()
                .map(|(label, value)| {
                    self.catalog.messages().render(
                        MessageKey::SummaryLine,
                        &[("label", label), ("value", value)],
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            note + &self
                .catalog
                .messages()
                .render(MessageKey::CmdStatusFields, &[("fields", &fields)])
        } else {
            note
        };
        // The handler the receipt named (no assumed team); the team when the service is gone.
        let team = self.catalog.service(request.form.service).map_or_else(
            || request.form.team.label().to_owned(),
            |s| s.handler_label(self.catalog.messages()),
        );
        Ok(self.catalog.messages().render(
            MessageKey::CmdStatus,
            &[
                ("id", request.id.as_str()),
                ("service_id", &request.form.service.to_string()),
                ("service", &request.form.service_name),
                ("status", request.status().label()),
                (
                    "submitted",
                    &local_time(self.schedule, request.submitted_at),
                ),
                ("batch", &request.batch.to_string()),
                ("team", &team),
                ("extra", &note),
            ],
        ))
    }

    /// The status of the person's latest request (for `service`, when named); never another
    /// service's status when one was named.
    async fn latest_status(
        &self,
        user: &UserId,
        service: Option<ServiceId>,
    ) -> Result<String, (Option<RequestId>, DeskError)> {
        let m = self.catalog.messages();
        match (self.latest(user, service).await, service) {
            (Ok(Some(id)), _) => self.status(user, &id).await,
            (Ok(None), None) => Ok(m.get(MessageKey::CmdMineEmpty).to_owned()),
            (Ok(None), Some(service)) => Ok(m.render(
                MessageKey::CmdStatusNoneForService,
                &[
                    ("service_id", &service.to_string()),
                    (
                        "service",
                        self.catalog
                            .service(service)
                            .map_or("", |s| s.name.as_str()),
                    ),
                ],
            )),
            (Err(e), _) => Err((None, e)),
        }
    }

    /// The person's most recently filed request, on either channel; with `service`, the most
    /// recent one for that service or one of the same name (the person cannot tell #5 支付宝数据透视
    /// from #47 by its name).
    async fn latest(
        &self,
        user: &UserId,
        service: Option<ServiceId>,
    ) -> Result<Option<RequestId>, DeskError> {
        let name = service
            .and_then(|id| self.catalog.service(id))
            .map(|s| s.name.as_str());
        let about = |r: &Request| {
            service.is_none_or(|id| {
                r.form.service == id || name.is_some_and(|n| r.form.service_name == n)
            })
        };
        Ok(person_requests(self.ledger, user)
            .await
            .map_err(DeskError::Ledger)?
            .into_iter()
            .filter(|r| about(r))
            .max_by_key(|r| r.submitted_at)
            .map(|r| r.id))
    }

    async fn mine(&self, user: &UserId) -> Result<String, (Option<RequestId>, DeskError)> {
        let mut all = person_requests(self.ledger, user)
            .await
            .map_err(|e| (None, DeskError::Ledger(e)))?;
        if all.is_empty() {
            return Ok(self
                .catalog
                .messages()
                .get(MessageKey::CmdMineEmpty)
                .to_owned());
        }
        // Open ones first, then the most recent.
        all.sort_by(|a, b| {
            a.status()
                .is_final()
                .cmp(&b.status().is_final())
                .then(b.submitted_at.cmp(&a.submitted_at))
        });
        all.truncate(PAGE);
        let mut out = self
            .catalog
            .messages()
            .render(MessageKey::CmdMineHeader, &[("n", &all.len().to_string())]);
        for r in &all {
            out.push('\n');
            out.push_str(&self.line(r));
        }
        Ok(out)
    }

    async fn today(
        &self,
        user: &UserId,
        page: usize,
        now: DateTime<Utc>,
    ) -> Result<String, (Option<RequestId>, DeskError)> {
        // Handlers (and admins) see their team's open work of any day; everyone else their
        // own requests of today's batch. The first line names the view, so nobody in a group
        // takes one person's list for the team's.
        if let Some(scope) = self.scope(user) {
            return self.queue(scope, page, now).await;
        }
        let day = self.schedule.batch_for(now);
        let filter = RequestFilter {
            day: Some(day),
            ..RequestFilter::default()
        };
        let batch = self
            .ledger
            .list(&filter)
            .await
            .map_err(|e| (None, DeskError::Ledger(e)))?;
        let visible: Vec<&Request> = batch
            .iter()
            .filter(|r| r.form.requester.user == *user)
            .collect();
        let view = if self.in_group {
            self.catalog
                .messages()
                .render(MessageKey::CmdTodayViewOwnGroup, &[("user", user.as_str())])
        } else {
            self.catalog
                .messages()
                .get(MessageKey::CmdTodayViewOwn)
                .to_owned()
        };
        let mut counts: BTreeMap<u8, (Status, usize)> = BTreeMap::new();
        for r in &visible {
            let status = r.status();
            counts.entry(status as u8).or_insert((status, 0)).1 += 1;
        }
        let counts = counts
            .values()
            .map(|(s, n)| format!("{} {n}", s.label()))
            .collect::<Vec<_>>()
            .join(" · ");
        let mut out = view;
        out.push('\n');
        out += &self.catalog.messages().render(
            MessageKey::CmdTodayHeader,
            &[
                ("day", &day.to_string()),
                ("total", &visible.len().to_string()),
                ("counts", &counts),
            ],
        );
        let pages = visible.len().div_ceil(PAGE).max(1);
        let page = page.min(pages);
        for r in visible.iter().skip((page - 1) * PAGE).take(PAGE) {
            out.push('\n');
            out.push_str(&self.line(r));
        }
        if pages > 1 {
            out.push('\n');
            out.push_str(&self.catalog.messages().render(
                MessageKey::CmdPage,
                &[
                    ("page", &page.to_string()),
                    ("pages", &pages.to_string()),
                    ("next", &(page % pages + 1).to_string()),
                ],
            ));
        }
        Ok(out)
    }

    /// A handler's `/today`: the open requests of their team(s), any day, oldest first, each
    /// with how long it has waited and 逾期 when past its done-by time.
    async fn queue(
        &self,
        scope: TeamScope,
        page: usize,
        now: DateTime<Utc>,
    ) -> Result<String, (Option<RequestId>, DeskError)> {
        let m = self.catalog.messages();
        let open: Vec<Request> = self
            .ledger
            .list(&RequestFilter::open())
            .await
            .map_err(|e| (None, DeskError::Ledger(e)))?
            .into_iter()
            .filter(|r| scope.covers(r.form.team))
            .collect();
        let mut out = match scope {
            TeamScope::All => m.get(MessageKey::CmdTodayViewQueueAll).to_owned(),
            TeamScope::Team(team) => {
                m.render(MessageKey::CmdTodayViewQueueTeam, &[("team", team.label())])
            }
        };
        out.push('\n');
        if open.is_empty() {
            out.push_str(m.get(MessageKey::CmdQueueEmpty));
            return Ok(out);
        }
        let overdue = open
            .iter()
            .filter(|r| r.is_overdue(self.schedule, now))
            .count();
        out += &m.render(
            MessageKey::CmdQueueHeader,
            &[
                ("total", &open.len().to_string()),
                ("overdue", &overdue.to_string()),
            ],
        );
        let pages = open.len().div_ceil(PAGE).max(1);
        let page = page.min(pages);
        for r in open.iter().skip((page - 1) * PAGE).take(PAGE) {
            out.push('\n');
            out += &m.render(
                MessageKey::HandlerOpenLine,
                &[
                    ("id", r.id.as_str()),
                    ("service_id", &r.form.service.to_string()),
                    ("service", &r.form.service_name),
                    ("status", r.status().label()),
                    ("age", &m.age((now - r.submitted_at).num_minutes())),
                ],
            );
            if r.is_overdue(self.schedule, now) {
                out.push_str(m.get(MessageKey::OverdueMark));
            }
        }
        if pages > 1 {
            out.push('\n');
            out.push_str(&m.render(
                MessageKey::CmdPage,
                &[
                    ("page", &page.to_string()),
                    ("pages", &pages.to_string()),
                    ("next", &(page % pages + 1).to_string()),
                ],
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped words, as the loader checks them.
    fn words() -> ChatWords {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        crate::dialog::understand::Tuning::load(&dir)
            .expect("understanding.toml")
            .chat_commands
    }

    fn parse(text: &str) -> Option<RequestCommand> {
        super::parse(text, &words())
    }

    #[test]
    fn every_listed_command_has_a_required_line_and_the_request_commands_parse() {
        for c in SLASH_COMMANDS {
            assert!(
                MessageKey::ALL.contains(&c.line_key),
                "{} must be a required key so the list is never blank",
                c.line_key
            );
        }
        // The form's own commands (services, help, cancel) are the engine's; the rest are here.
        for name in ["status", "mine", "today", "done", "reject", "resubmit"] {
            assert!(
                SLASH_COMMANDS.iter().any(|c| c.name == name),
                "{name} listed"
            );
            assert!(parse(&format!("/{name}")).is_some(), "/{name} parses");
        }
    }

    #[test]
    fn commands_parse_in_slash_and_chinese_forms() {
        let id = RequestId::parse("KT-20261128-0007");
        assert_eq!(
            parse("/status KT-20261128-7"),
            Some(RequestCommand::Status(id.clone()))
        );
        assert_eq!(
            parse("查询 kt-20261128-0007"),
            Some(RequestCommand::Status(id.clone()))
        );
        assert_eq!(parse("/status"), Some(RequestCommand::Status(None)));
        assert_eq!(parse("我的申请"), Some(RequestCommand::Mine));
        assert_eq!(parse("/today 2"), Some(RequestCommand::Today { page: 2 }));
        assert_eq!(parse("今天"), Some(RequestCommand::Today { page: 1 }));
        assert_eq!(
            parse("撤回 KT-20261128-0007"),
            id.clone().map(RequestCommand::Cancel)
        );
        assert_eq!(
            parse("/reject KT-20261128-0007 卖家账号 不存在"),
            Some(RequestCommand::Reject {
                id: id.clone(),
                reason: "卖家账号 不存在".into()
            })
        );
        assert_eq!(
            parse("/done KT-20261128-0007"),
            Some(RequestCommand::Done {
                id,
                note: String::new()
            })
        );
        assert_eq!(
            parse("修改后重新提交 KT-20261128-0007"),
            Some(RequestCommand::Resubmit(RequestId::parse(
                "KT-20261128-0007"
            )))
        );
        assert_eq!(parse("/resubmit"), Some(RequestCommand::Resubmit(None)));
        assert_eq!(parse("重新提交一下"), None);
        // Ordinary sentences are left to the conversation.
        assert_eq!(parse("查询一下电子发票怎么开"), None);
        assert_eq!(parse("今天能开通吗"), None);
        assert_eq!(parse("/cancel"), None);
        assert_eq!(parse("完成了"), None);
    }

    #[test]
    fn a_word_added_in_data_is_recognised() {
        let mut words = words();
        assert_eq!(super::parse("进展 KT-20261128-0007", &words), None);
        words.status.push("进展".to_owned());
        words.slash_only.push("ＴＯＤＡＹ".to_owned());
        let words = words.checked().expect("still valid");
        assert_eq!(
            super::parse("进展 KT-20261128-0007", &words),
            Some(RequestCommand::Status(RequestId::parse("KT-20261128-0007")))
        );
        assert_eq!(
            super::parse("today", &words),
            None,
            "full-width folded, now slash-only"
        );
        assert_eq!(
            super::parse("/today", &words),
            Some(RequestCommand::Today { page: 1 })
        );
    }

    fn plain_words() -> PlainWords {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        crate::dialog::understand::Tuning::load(&dir)
            .expect("understanding.toml")
            .plain_commands
    }

    #[test]
    fn a_withdrawal_verb_with_a_word_for_a_filed_request_withdraws_anywhere_in_the_message() {
        let words = plain_words();
        for text in ["昨天那个多包裹的申请帮我收回哈", "刚提的撤掉吧", "那单撤回"]
        {
            assert_eq!(
                parse_plain(text, &words),
                Some(RequestCommand::CancelLatest),
                "{text}"
            );
        }
        // A verb alone is no withdrawal of a request ("撤回的消息" is about chat messages).
        assert_eq!(parse_plain("怎么撤回消息", &words), None);
    }

    #[test]
    fn hurried_status_and_list_questions_are_read_in_plain_words() {
        let words = plain_words();
        let plain = |text: &str| parse_plain(text, &words);
        for status in [
            "我的申请到哪了",
            "到哪一步了",
            "我昨天提的电子发票开了没",
            "开了吗",
            "开好没",
            "好了没有",
            "办了没",
            "上周那个办好了吗",
        ] {
            assert_eq!(
                plain(status),
                Some(RequestCommand::LatestStatus),
                "{status}"
            );
        }
        for mine in [
            "查一下我提交的申请",
            "我的申请",
            "查一下我的",
            "我提的申请呢",
        ] {
            assert_eq!(plain(mine), Some(RequestCommand::Mine), "{mine}");
        }
        assert_eq!(
            plain("KT-20261128-0007 到哪一步了"),
            Some(RequestCommand::Status(RequestId::parse("KT-20261128-0007")))
        );
    }

    /// The plain words never catch a request to enable a service: no example a service is
    /// asked with, in the catalog or the evaluation sets, reads as a status question, "my
    /// requests" or a withdrawal.
    #[test]
    fn no_request_in_the_catalog_or_the_evaluation_sets_reads_as_a_plain_command() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let words = plain_words();
        let catalog = crate::catalog::Catalog::load(&root.join("dialogs")).expect("catalog");
        let mut texts: Vec<String> = catalog
            .services()
            .flat_map(|s| s.examples.iter().cloned())
            .collect();
        for set in [
            "understanding_eval.jsonl",
            "paraphrase_eval.jsonl",
            "slots_eval.jsonl",
        ] {
            let lines = std::fs::read_to_string(root.join("tests/fixtures").join(set))
                .expect("an evaluation set");
            for line in lines.lines().filter(|l| !l.trim().is_empty()) {
                let case: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                if case["service"].is_u64() {
                    texts.push(case["text"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        assert!(texts.len() > 500, "{}", texts.len());
        let caught: Vec<&String> = texts
            .iter()
            .filter(|t| parse_plain(t, &words).is_some())
            .collect();
        assert!(caught.is_empty(), "requests read as commands: {caught:?}");
    }

    #[test]
    fn a_command_after_a_few_words_is_read_from_the_command_on() {
        let words = words();
        let max = plain_words().max_chars;
        let embedded = |text: &str| embedded_command(text, &words, max);
        assert_eq!(embedded("帮我查下 /status").as_deref(), Some("/status"));
        assert_eq!(
            embedded("帮我查下/status KT-20261128-0007").as_deref(),
            Some("/status KT-20261128-0007")
        );
        assert_eq!(embedded("看看 /mine").as_deref(), Some("/mine"));
        assert_eq!(embedded("麻烦 /help").as_deref(), Some("/help"));
        assert_eq!(embedded("看下 /我的").as_deref(), Some("/我的"));
        // Not a command word, a link, a path, a message that already starts with one, or a
        // long message.
        assert_eq!(embedded("帮我查下 /frobnicate"), None);
        assert_eq!(embedded("看 https://x.cn/status"), None);
        assert_eq!(embedded("目录 a/status"), None);
        assert_eq!(embedded("/status KT-20261128-0007"), None);
        assert_eq!(
            embedded("客户说他们的店铺最近订单特别多所以想问一下 /status"),
            None
        );
    }

    #[test]
    fn the_loader_refuses_ambiguous_or_unusable_words() {
        let refused = |change: fn(&mut ChatWords)| {
            let mut words = words();
            change(&mut words);
            words.checked().expect_err("refused")
        };
        assert!(refused(|w| w.done.push("驳回".into())).contains("both"));
        assert!(refused(|w| w.cancel.push("撤回 申请".into())).contains("one word"));
        assert!(refused(|w| w.mine.push("/我".into())).contains("one word"));
        assert!(refused(|w| w.today.clear()).contains("empty"));
        assert!(refused(|w| w.reject.retain(|x| x != "reject")).contains("slash name"));
        assert!(refused(|w| w.slash_only.push("好的".into())).contains("names no command"));
    }
}
