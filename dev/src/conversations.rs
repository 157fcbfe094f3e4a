//! `kaitong-dev conversations`: whole conversations judged by what ends up in the ledger.
//!
//! A line of the set (`tests/fixtures/conversations.jsonl`) is one person's conversation: the
//! messages they type (`turns`), the requests they filed before (`before`), and the requests
//! they mean (`expect`, with every field value by the seed's field name). The turns are sent to
//! the real [`Bot`] (catalog, engine, ledger and store as in production, the embedded store in a
//! temporary folder); when they run out, a simulated person who knows `expect` answers every
//! question the form asks with the true value, picks the meant option, puts a switch off until
//! later and confirms every summary without re-reading it (a hurried salesperson). The
//! conversation passes when the ledger then holds exactly the meant requests with exactly their
//! values; a filed request nobody meant, or with a value nobody meant, is a wrong filing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use kaitong::catalog::{Catalog, FieldKind, FieldValue, Service, ServiceField};
use kaitong::dialog::session::{Session, State, Step};
use kaitong::domain::{
    Attachment, AttachmentKind, Bot, ChannelKind, Content, Conversation as Chat, Inbound,
    MediaSource, Reply, ServiceId, UserId,
};
use kaitong::requests::{FiledForm, Ledger, Request, Requester, Status};
use kaitong::store::{Store, keys};

/// One labelled conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub split: String,
    #[serde(default)]
    pub class: String,
    #[serde(default = "app")]
    pub channel: String,
    #[serde(default)]
    pub turns: Vec<String>,
    #[serde(default)]
    pub before: Vec<Earlier>,
    #[serde(default)]
    pub expect: Vec<Meant>,
    #[serde(default)]
    pub note: String,
}

fn app() -> String {
    "app".into()
}

/// A request the person filed before the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Earlier {
    pub service: u16,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reject_reason: Option<String>,
    #[serde(default)]
    pub days_ago: Option<i64>,
}

/// A request the person means to file.
#[derive(Debug, Clone, Deserialize)]
pub struct Meant {
    pub service: u16,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// How one conversation ended.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub id: String,
    pub class: String,
    pub split: String,
    pub passed: bool,
    /// Filed requests nobody meant, or with a value nobody meant.
    pub wrong_filings: usize,
    /// Meant requests not in the ledger.
    pub missing: usize,
    pub problems: Vec<String>,
    /// (who, text) in order.
    pub transcript: Vec<(String, String)>,
}

/// The totals over a set.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub conversations: usize,
    pub passed: usize,
    pub wrong_filings: usize,
    pub missing: usize,
    pub by_class: BTreeMap<String, (usize, usize)>,
    pub failures: Vec<Verdict>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationsError {
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a JSONL set (blank lines and lines starting with `//` are skipped).
pub fn parse(text: &str) -> Result<Vec<Conversation>, ConversationsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| ConversationsError::Json {
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// The bot and what it files into, shared by every conversation of a run (each has its own
/// person, so they never see each other's sessions or requests).
pub struct Rig {
    pub catalog: Arc<Catalog>,
    pub bot: Arc<dyn Bot>,
    pub ledger: Arc<dyn Ledger>,
    pub store: Arc<dyn Store>,
    /// WeCom's server API: the files a person sends are stored here for the bot to download.
    pub wecom: crate::simulator::SimulatorHandle,
}

#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error(transparent)]
    Store(#[from] kaitong::store::StoreError),
    #[error(transparent)]
    Startup(#[from] kaitong::startup::StartupError),
    #[error("the WeCom API simulator did not start: {0}")]
    Simulator(#[from] std::io::Error),
}

impl Rig {
    /// The production parts over a fresh embedded store in `dir`, WeCom's API simulated.
    pub async fn build(
        settings: &kaitong::config::Settings,
        dir: &std::path::Path,
    ) -> Result<Self, RigError> {
        let mut settings = settings.clone();
        let wecom = crate::simulator::WecomSimulator::new()
            .with_app(crate::simulator::SimulatedApp::new(
                settings.wecom.corp_id.clone(),
                settings.wecom.secret.expose(),
                settings.wecom.agent_id,
            ))
            .spawn()
            .await?;
        wecom.set_per_user_minute_limit(None);
        settings.wecom.api_base = wecom.base_url();
        let url = format!("embedded://{}", dir.join("conversations.redb").display());
        let store = kaitong::store::open(&url, "").await?;
        let parts = kaitong::startup::Parts::build(&settings, Arc::clone(&store))?;
        Ok(Self {
            catalog: parts.catalog.current(),
            bot: parts.bot,
            ledger: parts.ledger,
            store,
            wecom,
        })
    }
}

/// The most messages a conversation may take before it counts as stuck.
const MAX_STEPS: usize = 40;

impl Rig {
    /// Runs the whole set; `only_split` keeps one half.
    pub async fn run(&self, set: &[Conversation], only_split: Option<&str>) -> Report {
        let mut report = Report::default();
        for c in set
            .iter()
            .filter(|c| only_split.is_none_or(|s| c.split == s))
        {
            let verdict = self.run_one(c).await;
            report.conversations += 1;
            report.wrong_filings += verdict.wrong_filings;
            report.missing += verdict.missing;
            let entry = report.by_class.entry(c.class.clone()).or_default();
            entry.1 += 1;
            if verdict.passed {
                report.passed += 1;
                entry.0 += 1;
            } else {
                report.failures.push(verdict);
            }
        }
        report
    }

    /// Plays one conversation and judges the ledger afterwards.
    pub async fn run_one(&self, c: &Conversation) -> Verdict {
        let user = UserId::parse(&format!("eval_{}_{}", c.id, rand::random::<u32>()))
            .unwrap_or_else(|| UserId::parse("eval_user").unwrap_or_else(|| unreachable!()));
        let (channel, chat) = match c.channel.as_str() {
            "aibot" => (ChannelKind::AiBot, Chat::Direct),
            "group" => (ChannelKind::AiBot, Chat::Group(format!("g_{}", c.id))),
            _ => (ChannelKind::App, Chat::Direct),
        };
        let mut person = Person {
            rig: self,
            user,
            channel,
            chat,
            transcript: Vec::new(),
            problems: Vec::new(),
        };
        let before_ids = person.file_earlier(&c.before).await;
        for turn in &c.turns {
            // What the channel hands the bot: a group message without its leading @mentions.
            let mut text = if matches!(person.chat, Chat::Group(_)) {
                kaitong::channel::strip_mentions(turn)
            } else {
                turn.clone()
            };
            for (i, id) in before_ids.iter().enumerate() {
                text = text.replace(&format!("{{KT{}}}", i + 1), id);
            }
            person.say(Content::Text(text)).await;
        }
        person.finish(&c.expect, &before_ids).await;
        let filed: Vec<Request> = person
            .mine()
            .await
            .into_iter()
            .filter(|r| !before_ids.iter().any(|b| b == r.id.as_str()))
            .collect();
        let (wrong, missing, mut problems) = judge(&self.catalog, &c.expect, &filed);
        problems.splice(0..0, person.problems.drain(..));
        Verdict {
            id: c.id.clone(),
            class: c.class.clone(),
            split: c.split.clone(),
            passed: wrong == 0 && missing == 0 && problems.is_empty(),
            wrong_filings: wrong,
            missing,
            problems,
            transcript: person.transcript,
        }
    }
}

/// The simulated person of one conversation.
struct Person<'a> {
    rig: &'a Rig,
    user: UserId,
    channel: ChannelKind,
    chat: Chat,
    transcript: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Person<'_> {
    async fn say(&mut self, content: Content) {
        self.say_in(self.chat.clone(), content).await;
    }

    async fn say_in(&mut self, chat: Chat, content: Content) {
        let shown = match &content {
            Content::Text(t) => t.clone(),
            Content::Attachment(a) => format!("[文件 {}]", a.file_name.clone().unwrap_or_default()),
            other => format!("{other:?}"),
        };
        self.transcript.push(("我".into(), shown));
        let reply = self
            .rig
            .bot
            .respond(Inbound {
                channel: self.channel,
                sender: self.user.clone(),
                conversation: chat,
                content,
            })
            .await;
        let text = match reply {
            Reply::Nothing => "(无回复)".to_owned(),
            other => other.as_text().unwrap_or_default(),
        };
        self.transcript.push(("开通助手".into(), text));
    }

    /// The person's requests on both channels (a form moved to the 1:1 chat of the other
    /// channel files under that channel).
    async fn mine(&self) -> Vec<Request> {
        kaitong::dialog::commands::person_requests(self.rig.ledger.as_ref(), &self.user)
            .await
            .unwrap_or_default()
    }

    /// The person's session where a form is open: the chat itself, else a 1:1 chat.
    async fn session(&self) -> (Chat, Session) {
        let mut places = vec![(self.channel, self.chat.clone())];
        if self.chat != Chat::Direct {
            places.push((self.channel, Chat::Direct));
        }
        let mut first = None;
        for (channel, chat) in places {
            let key = keys::session(channel, &chat, &self.user);
            let session: Session = match self.rig.store.get(&key).await {
                Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
                _ => Session::default(),
            };
            // A group that points to the 1:1 chat is where the person does not go on.
            if !matches!(session.state, State::Idle | State::MovedToPrivate { .. }) {
                return (chat, session);
            }
            // Idle with requests queued: the person answers "回复继续" where it was said.
            if !session.queue.is_empty() {
                first = Some((chat, session));
                continue;
            }
            first.get_or_insert((chat, session));
        }
        first.unwrap_or((self.chat.clone(), Session::default()))
    }

    async fn file_earlier(&mut self, before: &[Earlier]) -> Vec<String> {
        let mut ids = Vec::new();
        for e in before {
            let Some(service) = self.rig.catalog.service(ServiceId(e.service)) else {
                self.problems
                    .push(format!("before: no service #{}", e.service));
                continue;
            };
            let mut answers = kaitong::catalog::Answers::new();
            for (label, raw) in &e.fields {
                if let Some(f) = field_for_label(service, label)
                    && let Ok(v) = f.spec.parse_answer(raw)
                {
                    answers.insert(f.key().clone(), v);
                }
            }
            let now = Utc::now();
            let at = now - Duration::days(e.days_ago.unwrap_or(1));
            let form = FiledForm {
                form_id: format!("{:016x}", rand::random::<u64>()),
                service: service.id,
                service_name: service.name.clone(),
                team: service.team,
                routing: service.route.clone(),
                window: service.window.clone(),
                summary: service.summary_lines(&answers),
                answers,
                requester: Requester {
                    user: self.user.clone(),
                    channel: self.channel,
                    conversation: self.chat.clone(),
                },
                resubmit_of: None,
            };
            match self.rig.ledger.file(form, at).await {
                Ok(receipt) => {
                    // Done and rejected requests were picked up by a handler first.
                    let path: &[Status] = match e.status.as_deref().and_then(Status::parse) {
                        Some(Status::Processing) => &[Status::Processing],
                        Some(Status::Done) => &[Status::Processing, Status::Done],
                        Some(Status::Rejected) => &[Status::Processing, Status::Rejected],
                        Some(Status::Cancelled) => &[Status::Cancelled],
                        Some(Status::Submitted) | None => &[],
                    };
                    for &to in path {
                        let note = (to == Status::Rejected)
                            .then(|| e.reject_reason.clone())
                            .flatten();
                        if let Err(err) = self
                            .rig
                            .ledger
                            .transition(&receipt.id, to, "handler", note, at)
                            .await
                        {
                            self.problems.push(format!("before: {err}"));
                        }
                    }
                    ids.push(receipt.id.as_str().to_owned());
                }
                Err(err) => self.problems.push(format!("before: {err}")),
            }
        }
        ids
    }

    /// Answers what the bot asks, as a person who knows `expect` and does not re-read.
    async fn finish(&mut self, expect: &[Meant], earlier: &[String]) {
        for _ in 0..MAX_STEPS {
            let open = self.still_open(expect, earlier).await;
            let (chat, session) = self.session().await;
            let Some(answer) = self.answer_to(&session, &open, earlier) else {
                return;
            };
            self.say_in(chat, answer).await;
        }
        self.problems
            .push(format!("no end after {MAX_STEPS} answers"));
    }

    /// The meant requests not filed yet: as many of each service and account as meant.
    async fn still_open<'m>(&self, expect: &'m [Meant], earlier: &[String]) -> Vec<&'m Meant> {
        // Requests filed before the conversation are no answer to what it means.
        let filed: Vec<Request> = self
            .mine()
            .await
            .into_iter()
            .filter(|r| !earlier.iter().any(|e| e == r.id.as_str()))
            .collect();
        expect
            .iter()
            .filter(|m| {
                let same = expect
                    .iter()
                    .filter(|o| o.service == m.service && o.account == m.account)
                    .count();
                filed
                    .iter()
                    .filter(|r| r.form.service.get() == m.service && account_of(r) == m.account)
                    .count()
                    < same
            })
            .collect()
    }

    /// What the person says next in `session`, with `open` still to file; `None` when the
    /// conversation is over, done or stuck (stuck is noted as a problem).
    fn answer_to(
        &mut self,
        session: &Session,
        open: &[&Meant],
        earlier: &[String],
    ) -> Option<Content> {
        let reply = match &session.state {
            State::Idle | State::MovedToPrivate { .. } if open.is_empty() => return None,
            // The runner speaks in the chat it was given; the form went on elsewhere.
            State::MovedToPrivate { service } => {
                self.problems
                    .push(format!("stuck: #{service} went on in the 1:1 chat"));
                return None;
            }
            State::Idle => self.idle_answer(session, open)?,
            State::Choosing { options, .. } => self.choosing_answer(options, open)?,
            State::ConfirmSwitch { form, target, .. } => {
                let current_meant = open.iter().any(|m| m.service == form.service.get());
                let target_meant = open.iter().any(|m| m.service == target.get());
                match (current_meant, target_meant) {
                    (true, true) => "稍后".into(),
                    (false, true) => "切换".into(),
                    _ => "继续填".into(),
                }
            }
            // Told that the same request was filed lately, a person who did not mean
            // another one withdraws it.
            State::Filling { form }
                if !open.iter().any(|m| m.service == form.service.get())
                    && self
                        .transcript
                        .last()
                        .is_some_and(|(_, t)| earlier.iter().any(|id| t.contains(id.as_str()))) =>
            {
                "取消".into()
            }
            State::Filling { form } => return self.filling_answer(form, open),
        };
        Some(Content::Text(reply))
    }

    /// Idle with requests still meant: go on with the queue, or with what the bot offered to
    /// go on with; anything else means they never started.
    fn idle_answer(&mut self, session: &Session, open: &[&Meant]) -> Option<String> {
        if !session.queue.is_empty() {
            return Some("继续".to_owned());
        }
        let last = self
            .transcript
            .last()
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        if last.contains("继续") && last.contains("回复") {
            return Some("继续".to_owned());
        }
        self.problems.push(format!(
            "stuck: {} meant request(s) never started: {}",
            open.len(),
            open.iter()
                .map(|m| format!("#{}", m.service))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        None
    }

    /// The number of the first option that is meant.
    fn choosing_answer(&mut self, options: &[ServiceId], open: &[&Meant]) -> Option<String> {
        match options
            .iter()
            .position(|o| open.iter().any(|m| m.service == o.get()))
        {
            Some(i) => Some((i + 1).to_string()),
            None => {
                self.problems.push(format!(
                    "the meant service was not among the options {:?}",
                    options.iter().map(|o| o.get()).collect::<Vec<_>>()
                ));
                None
            }
        }
    }

    /// Confirms the summary, leaves the edit menu, or answers the field asked: a signed file
    /// for an attachment, the meant value, or 跳过 for an optional field it has none for.
    fn filling_answer(
        &mut self,
        form: &kaitong::dialog::session::Form,
        open: &[&Meant],
    ) -> Option<Content> {
        let catalog = Arc::clone(&self.rig.catalog);
        let service = catalog.service(form.service)?;
        let key = match &form.step {
            Step::Summary => return Some(Content::Text("确认".into())),
            Step::PickEdit => return Some(Content::Text("返回".into())),
            Step::Ask(key) => key,
        };
        let target = pick_meant(open, form);
        let reply = match service.field(key) {
            Some(f) if matches!(f.spec.kind, FieldKind::Attachment { .. }) => {
                return Some(self.signed_disclaimer());
            }
            Some(f) => match target.and_then(|m| value_for(service, f, m)) {
                Some(v) => v,
                None if !f.required => "跳过".into(),
                None => {
                    // The person has no answer the set gives: the form went
                    // somewhere they did not mean (a wrong service or value).
                    self.problems.push(format!(
                        "asked 「{}」 of #{}, which the person has no answer for",
                        f.spec.label, service.id
                    ));
                    return None;
                }
            },
            None => "跳过".into(),
        };
        Some(Content::Text(reply))
    }

    /// The signed and stamped 免责声明, uploaded to the simulator as the person's file.
    fn signed_disclaimer(&self) -> Content {
        let media_id = format!("media_{}", rand::random::<u32>());
        self.rig.wecom.add_media(
            &media_id,
            "免责声明_已盖章.pdf",
            b"%PDF-1.4 signed and stamped",
        );
        Content::Attachment(Attachment {
            kind: AttachmentKind::File,
            source: MediaSource::MediaId(media_id),
            file_name: Some("免责声明_已盖章.pdf".into()),
        })
    }
}

/// The meant request a form is for: same service, same account when the form has one.
fn pick_meant<'m>(open: &[&'m Meant], form: &kaitong::dialog::session::Form) -> Option<&'m Meant> {
    let account = form
        .answers
        .iter()
        .find(|(k, _)| k.as_str() == "seller_account")
        .map(|(_, v)| v.display(false));
    open.iter()
        .copied()
        .filter(|m| m.service == form.service.get())
        .find(|m| account.is_none() || m.account == account || m.account.is_none())
        .or_else(|| {
            open.iter()
                .copied()
                .find(|m| m.service == form.service.get())
        })
}

fn value_for(service: &Service, field: &ServiceField, meant: &Meant) -> Option<String> {
    meant
        .fields
        .iter()
        .find(|(label, _)| field_for_label(service, label).is_some_and(|f| f.key() == field.key()))
        .map(|(_, v)| v.clone())
}

fn account_of(r: &Request) -> Option<String> {
    r.form
        .answers
        .iter()
        .find(|(k, _)| k.as_str() == "seller_account")
        .map(|(_, v)| v.display(false))
}

/// Whether a filed prose value (a reason) is the person's reason in their own words: it
/// shares a two-character word with the meant one, and it is no question ("这个多久能好啊") or
/// rejection ("不是 客户要看利润") the bot took for the reason. The judge keeps its own short
/// lists on purpose: judging the bot with the bot's own word lists would pass its blind spots.
fn prose_as_meant(got: &str, meant: &str) -> bool {
    const NOT_A_REASON_START: [&str; 6] = ["不是", "不对", "哦不", "算了", "搞错", "写错"];
    const QUESTIONS: [&str; 8] = [
        "多久",
        "什么时候",
        "几点",
        "好了没",
        "能好",
        "好了吗",
        "进度",
        "吗",
    ];
    let got_s = squash(got);
    let meant_s = squash(meant);
    if NOT_A_REASON_START
        .iter()
        .any(|w| got_s.starts_with(w) && !meant_s.starts_with(w))
    {
        return false;
    }
    if QUESTIONS
        .iter()
        .any(|w| got_s.contains(w) && !meant_s.contains(w))
    {
        return false;
    }
    let han = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| kaitong::catalog::value::is_han(*c))
            .collect()
    };
    let (g, m) = (han(&got_s), han(&meant_s));
    if g.len() < 2 || m.len() < 2 {
        return true;
    }
    g.windows(2).any(|w| m.windows(2).any(|v| v == w))
}

fn squash(s: &str) -> String {
    kaitong::catalog::value::normalize_width(s)
        .chars()
        .filter(|c| !c.is_whitespace() && !"()（）:：、,，".contains(*c))
        .collect::<String>()
        .to_lowercase()
}

/// The service's field a seed field name means: the same label, one label inside the other, or
/// the label sharing the most characters (at least two).
pub fn field_for_label<'s>(service: &'s Service, label: &str) -> Option<&'s ServiceField> {
    let want = squash(label);
    let fields = || service.fields.iter();
    if let Some(f) = fields().find(|f| squash(&f.spec.label) == want) {
        return Some(f);
    }
    if let Some(f) = fields().find(|f| {
        let l = squash(&f.spec.label);
        !l.is_empty() && (want.contains(&l) || l.contains(&want))
    }) {
        return Some(f);
    }
    // The seed says "说明调整数量" for every raise; the catalog names the number after what it
    // counts ("异常地址最大条数"): a service's one number is what the seed's 调整数量 means.
    let numbers: Vec<&ServiceField> = fields()
        .filter(|f| matches!(f.spec.kind, FieldKind::Integer { .. }))
        .collect();
    if ["数量", "上限", "大小", "条数"]
        .iter()
        .any(|w| want.contains(w))
        && numbers.len() == 1
    {
        return numbers.first().copied();
    }
    fields()
        .map(|f| {
            let l = squash(&f.spec.label);
            let shared = l.chars().filter(|c| want.contains(*c)).count();
            (shared, f)
        })
        .filter(|(shared, _)| *shared >= 2)
        .max_by_key(|(shared, _)| *shared)
        .map(|(_, f)| f)
}

/// Meant versus filed: (wrong filings, missing, problems).
fn judge(catalog: &Catalog, expect: &[Meant], filed: &[Request]) -> (usize, usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut unmatched: Vec<&Request> = filed.iter().collect();
    let mut missing = 0;
    for m in expect {
        let Some(service) = catalog.service(ServiceId(m.service)) else {
            problems.push(format!("expect: no service #{}", m.service));
            continue;
        };
        let mut best: Option<(usize, Vec<String>)> = None;
        for (i, r) in unmatched.iter().enumerate() {
            if r.form.service.get() != m.service {
                continue;
            }
            let diffs = differences(service, m, &r.form.answers);
            if best.as_ref().is_none_or(|(_, d)| diffs.len() < d.len()) {
                best = Some((i, diffs));
            }
        }
        match best {
            Some((i, diffs)) if diffs.is_empty() => {
                unmatched.remove(i);
            }
            Some((_, diffs)) => {
                missing += 1;
                problems.push(format!("#{} filed with {}", m.service, diffs.join("; ")));
            }
            None => {
                missing += 1;
                problems.push(format!("#{} not filed", m.service));
            }
        }
    }
    for r in &unmatched {
        problems.push(format!(
            "filed, not meant: #{} {}",
            r.form.service,
            r.form
                .summary
                .iter()
                .map(|(l, v)| format!("{l}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    (unmatched.len(), missing, problems)
}

/// Every meant value the filed answers do not hold. Prose (申请原因) is compared loosely: the
/// person's own words in any form are fine, it is never a value another field meant.
fn differences(service: &Service, m: &Meant, answers: &kaitong::catalog::Answers) -> Vec<String> {
    let mut out = Vec::new();
    for (label, raw) in &m.fields {
        let Some(f) = field_for_label(service, label) else {
            out.push(format!("{label}: no such field on #{}", service.id));
            continue;
        };
        let got = answers.get(f.key());
        match (&f.spec.kind, got) {
            (FieldKind::Attachment { .. }, Some(FieldValue::Attachment { .. })) => {}
            (_, Some(g)) if f.spec.prose => {
                let got = g.display(false);
                if !prose_as_meant(&got, raw) {
                    out.push(format!("{label}={got} (meant {raw})"));
                }
            }
            (_, got) => {
                let want = f.spec.parse_answer(raw).ok();
                let same = match (&want, got) {
                    (Some(w), Some(g)) => w.display(false) == g.display(false),
                    (None, Some(g)) => squash(&g.display(false)) == squash(raw),
                    (_, None) => false,
                };
                if !same {
                    out.push(format!(
                        "{label}={} (meant {raw})",
                        got.map_or_else(|| "∅".to_owned(), |g| g.display(false))
                    ));
                }
            }
        }
    }
    out
}

/// One line per conversation that failed, with its transcript when `transcripts`.
#[must_use]
pub fn render(report: &Report, transcripts: bool) -> String {
    let mut out = String::new();
    for v in &report.failures {
        out.push_str(&format!(
            "✗ {} [{}] wrong={} missing={}: {}\n",
            v.id,
            v.class,
            v.wrong_filings,
            v.missing,
            v.problems.join(" | ")
        ));
        if transcripts {
            for (who, text) in &v.transcript {
                out.push_str(&format!("    {who}: {}\n", text.replace('\n', "\n      ")));
            }
        }
    }
    out.push_str(&format!(
        "conversations {}  ended as meant {} ({:.1} %)  wrong filings {}  missing {}\n",
        report.conversations,
        report.passed,
        100.0 * report.passed as f64 / report.conversations.max(1) as f64,
        report.wrong_filings,
        report.missing
    ));
    for (class, (ok, all)) in &report.by_class {
        out.push_str(&format!("  {class:<10} {ok}/{all}\n"));
    }
    out
}
