//! The form state machine: one inbound message and the current session in, the next session,
//! the reply and (on 确认) the form to file out. Pure: no I/O, the clock is passed in.

use chrono::{DateTime, Utc};
use regex::Regex;

use super::session::{Form, Offer, Queued, Session, State, Step};
use super::slots::{Extraction, extract};
use super::understand::{Matcher, SmallTalk, Tuning, Verdict, fold};
use crate::catalog::{
    Catalog, FieldKey, FieldKind, FieldValue, Messages, Service, ServiceField, Window,
};
use crate::domain::{ChoiceOption, Content, Reply, ServiceId};
use crate::requests::BatchSchedule;

/// What one turn decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub session: Session,
    pub reply: Reply,
    /// A confirmed form to hand to the ledger; the reply then still needs the receipt.
    pub file: Option<Form>,
    /// The form reached a field not to be asked in a group (a secret or a file): the bot moves
    /// it to the person's 1:1 chat.
    pub move_to_private: bool,
    /// A field naming a blank template (免责声明填写样板.docx) was just asked: the bot sends
    /// the file when it has one.
    pub template: Option<String>,
}

/// Everything a turn reads; cheap to build per message.
pub struct Engine<'a> {
    pub catalog: &'a Catalog,
    pub matcher: &'a Matcher,
    pub schedule: &'a BatchSchedule,
    /// Secrets and disclaimers are never asked for in a group chat.
    pub in_group: bool,
    /// The message in an embedding space, when its words alone were not clear.
    pub meaning: Option<(&'a super::meaning::Space, &'a [f32])>,
}

/// The reply under construction: paragraphs, and options if the last one is a question.
#[derive(Default)]
struct Say {
    parts: Vec<String>,
    options: Vec<ChoiceOption>,
    move_to_private: bool,
    template: Option<String>,
}

impl Say {
    fn push(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.parts.push(text);
        }
    }

    fn into_reply(self) -> Reply {
        let text = self.parts.join("\n\n");
        if self.options.is_empty() {
            Reply::Text(text)
        } else {
            Reply::Choices {
                text,
                options: self.options,
            }
        }
    }
}

/// A conversation command recognised in a message.
#[derive(Debug, PartialEq)]
enum Command {
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

fn correction_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:把|将)?\s*(.{1,12}?)\s*(?:改成|改为|换成|修改为|更正为|应该是|改一下为)\s*[:：]?\s*(.+)$")
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
    fn m(&self) -> &Messages {
        self.catalog.messages()
    }

    fn tuning(&self) -> &Tuning {
        self.matcher.tuning()
    }

    fn command(&self, text: &str) -> Option<Command> {
        let trimmed = text.trim();
        if let Some(rest) = trimmed
            .strip_prefix('/')
            .or_else(|| trimmed.strip_prefix('／'))
        {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            return Some(Command::Slash {
                name: name.to_lowercase(),
                args: args.trim().to_owned(),
            });
        }
        if let Some(c) = service_number_regex().captures(trimmed)
            && let Ok(n) = c[1].parse::<u16>()
            && self.catalog.service(ServiceId(n)).is_some()
        {
            let rest = c.get(2).map_or("", |m| m.as_str()).trim().to_owned();
            return Some(Command::Service(ServiceId(n), rest));
        }
        let w = &self.tuning().commands;
        let is = |list: &[String]| Tuning::is(list, trimmed);
        if is(&w.cancel) {
            Some(Command::Cancel)
        } else if is(&w.back) {
            Some(Command::Back)
        } else if is(&w.skip) {
            Some(Command::Skip)
        } else if is(&w.help) {
            Some(Command::Help)
        } else if is(&w.confirm) || is(&w.confirm_like) {
            Some(Command::Confirm)
        } else if is(&w.edit) {
            Some(Command::Edit(None))
        } else if is(&w.resume) {
            Some(Command::Resume)
        } else if let Some(c) = correction_regex().captures(trimmed) {
            Some(Command::Correct {
                field: c[1].trim().to_owned(),
                value: c[2].trim().to_owned(),
            })
        } else {
            edit_regex()
                .captures(trimmed)
                .map(|c| Command::Edit(Some(c[1].trim().to_owned())))
        }
    }

    /// Runs one turn. `expired` says the stored session outlived its TTL.
    #[must_use]
    pub fn turn(
        &self,
        session: Session,
        expired: bool,
        content: &Content,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut say = Say::default();
        let mut session = if expired {
            if !matches!(session.state, State::Idle) {
                say.push(self.m().get("form_expired"));
            }
            Session::default()
        } else {
            session
        };
        session.updated_at = now.timestamp();
        let state = std::mem::take(&mut session.state);
        let mut file = None;
        let next = match content {
            Content::Text(text) if crate::catalog::value::has_control_chars(text) => {
                // Refused at the edge: NUL, BEL or ESC are never stored or shown.
                say.push(self.m().get("text_control_chars"));
                state
            }
            Content::Text(text) => {
                let text = crate::catalog::value::normalize_width(text);
                self.on_text(state, &mut session.queue, &text, now, &mut say, &mut file)
            }
            Content::CardAction(action) => self.on_text(
                state,
                &mut session.queue,
                &action.key,
                now,
                &mut say,
                &mut file,
            ),
            Content::Attachment(attachment) => match state {
                State::Filling { mut form } => {
                    let field = match &form.step {
                        Step::Ask(key) => self.service(&form).and_then(|s| s.field(key)),
                        _ => None,
                    };
                    match field {
                        Some(f) if is_blank_template(f, attachment.file_name.as_deref()) => {
                            let template = match &f.spec.kind {
                                FieldKind::Attachment { template } => {
                                    template.clone().unwrap_or_default()
                                }
                                _ => String::new(),
                            };
                            say.push(
                                self.m()
                                    .render("template_refused", &[("template", &template)]),
                            );
                            self.reask(form, &mut say)
                        }
                        Some(f) if matches!(f.spec.kind, FieldKind::Attachment { .. }) => {
                            let value = FieldValue::Attachment {
                                file_name: attachment
                                    .file_name
                                    .clone()
                                    .unwrap_or_else(|| default_file_name(attachment.kind)),
                                media_id: match &attachment.source {
                                    crate::domain::MediaSource::MediaId(id) => id.clone(),
                                    crate::domain::MediaSource::EncryptedUrl(url) => url.clone(),
                                },
                            };
                            let key = f.key().clone();
                            form.answers.insert(key.clone(), value);
                            form.order.push(key);
                            form.failures = 0;
                            self.advance(form, &mut say, now)
                        }
                        _ => {
                            say.push(self.m().get("attachment_unexpected"));
                            self.reask(form, &mut say)
                        }
                    }
                }
                other => {
                    say.push(self.m().get("attachment_unexpected"));
                    other
                }
            },
            Content::Entered => match state {
                State::Filling { form } => {
                    let name = self
                        .service(&form)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    say.push(self.m().render("welcome_back", &[("name", &name)]));
                    self.reask(form, &mut say)
                }
                other => {
                    say.push(self.m().get("greeting"));
                    other
                }
            },
            Content::Location { .. }
            | Content::Link { .. }
            | Content::MenuClick(_)
            | Content::Unsupported(_) => {
                say.push(self.help_text());
                state
            }
        };
        session.state = next;
        Self::outcome(session, say, file)
    }

    fn outcome(session: Session, say: Say, file: Option<Form>) -> Outcome {
        let move_to_private = say.move_to_private;
        let template = say.template.clone();
        Outcome {
            session,
            reply: say.into_reply(),
            file,
            move_to_private,
            template,
        }
    }

    /// A rejected request opened again for its requester ("重新提交 KT-…"): the answers it was
    /// filed with, the reason it was rejected, and the question which item the reason concerns
    /// (the 修改 flow from there; 确认 at the summary files a new request linked to
    /// `rejected`). `session` is the person's current one; a form in progress is replaced.
    #[must_use]
    pub fn reopen(
        &self,
        mut session: Session,
        service: ServiceId,
        answers: crate::catalog::Answers,
        rejected: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut say = Say::default();
        session.updated_at = now.timestamp();
        let Some(found) = self.catalog.service(service) else {
            say.push(self.m().get("cmd_not_found"));
            return Self::outcome(session, say, None);
        };
        let order = found
            .fields
            .iter()
            .map(|f| f.key().clone())
            .filter(|k| answers.contains_key(k))
            .collect();
        let mut form = Form::new(service, answers, order, now.timestamp());
        form.resubmit_of = Some(rejected.to_owned());
        form.step = Step::PickEdit;
        let m = self.m();
        let fields = found
            .summary_lines(&form.answers)
            .iter()
            .map(|(label, value)| m.render("summary_line", &[("label", label), ("value", value)]))
            .collect::<Vec<_>>()
            .join("\n");
        say.push(m.render(
            "resubmit_opened",
            &[
                ("id", rejected),
                ("service_id", &service.to_string()),
                ("name", &found.name),
                ("reason", reason),
                ("fields", &fields),
            ],
        ));
        // Secrets and files are never asked for in a group: the form continues in the 1:1
        // chat, where 继续 asks which item to change.
        if self.in_group {
            say.push(m.get("resubmit_private"));
            say.move_to_private = true;
        } else {
            say.push(m.render(
                "edit_which",
                &[("fields", &self.editable_list(found, &form))],
            ));
        }
        session.state = State::Filling { form };
        Self::outcome(session, say, None)
    }

    fn service(&self, form: &Form) -> Option<&Service> {
        self.catalog.service(form.service)
    }

    fn on_text(
        &self,
        state: State,
        queue: &mut Vec<Queued>,
        text: &str,
        now: DateTime<Utc>,
        say: &mut Say,
        file: &mut Option<Form>,
    ) -> State {
        let text = text.trim();
        let command = self.command(text);
        match state {
            State::Idle => self.idle(queue, text, command, now, say),
            State::Choosing {
                options,
                text: original,
            } => {
                if command == Some(Command::Cancel) {
                    say.push(self.m().get("cancelled"));
                    return State::Idle;
                }
                // "#60" names service 60; a bare "2" is the second option.
                if let Some(Command::Service(id, rest)) = &command {
                    return self.start(*id, &format!("{original} {rest}"), None, queue, now, say);
                }
                if let Some(n) = pick_number(text, options.len()) {
                    return self.start(options[n], &original, None, queue, now, say);
                }
                let ranked = self.matcher.rank_words(text);
                if let Some(best) = ranked.iter().find(|s| options.contains(&s.id)) {
                    return self.start(
                        best.id,
                        &format!("{original} {text}"),
                        None,
                        queue,
                        now,
                        say,
                    );
                }
                if matches!(
                    self.matcher.verdict(&ranked),
                    Verdict::Service(_) | Verdict::Ambiguous(_)
                ) || command.is_some()
                {
                    return self.idle(queue, text, command, now, say);
                }
                say.push(
                    self.m()
                        .render("choose_number", &[("n", &options.len().to_string())]),
                );
                self.offer(&options, say);
                State::Choosing {
                    options,
                    text: original,
                }
            }
            State::ConfirmSwitch {
                form,
                target,
                text: original,
            } => {
                let words = &self.tuning().commands;
                let carried = self.seller_account(&form);
                // The buttons' numbers: 1 切换, 2 稍后, 3 继续填.
                let picked = pick_number(text, 3);
                let text = match picked {
                    Some(0) => words.switch.first().map_or(text, String::as_str),
                    Some(1) => words.later.first().map_or(text, String::as_str),
                    Some(_) => words.keep.first().map_or(text, String::as_str),
                    None => text,
                };
                if Tuning::is(&words.switch, text) || Tuning::is(&words.yes, text) {
                    self.start(target, &original, carried, queue, now, say)
                } else if Tuning::is(&words.later, text) {
                    let name = self
                        .catalog
                        .service(target)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    if !queue.iter().any(|q| q.service == target) {
                        queue.insert(
                            0,
                            Queued {
                                service: target,
                                account: carried,
                            },
                        );
                    }
                    say.push(self.m().render(
                        "switch_queued",
                        &[("id", &target.to_string()), ("name", &name)],
                    ));
                    self.reask(form, say)
                } else if Tuning::is(&words.keep, text)
                    && let Step::Ask(_) = &form.step
                {
                    // "That was my answer": the held message answers the current field.
                    self.answer(form, &original, now, say)
                } else if Tuning::is(&words.keep, text)
                    || Tuning::is(&words.no, text)
                    || command == Some(Command::Cancel)
                {
                    let name = self
                        .service(&form)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    say.push(self.m().render("switch_kept", &[("name", &name)]));
                    self.reask(form, say)
                } else if self.matcher.verdict(&self.matcher.rank(text)) == Verdict::Service(target)
                {
                    // Naming the new service again is a yes.
                    self.start(
                        target,
                        &format!("{original} {text}"),
                        carried,
                        queue,
                        now,
                        say,
                    )
                } else {
                    // Anything else keeps the current form and is handled as part of it.
                    self.filling(form, queue, text, command, now, say, file)
                }
            }
            State::Filling { form } => self.filling(form, queue, text, command, now, say, file),
        }
    }

    fn idle(
        &self,
        queue: &mut Vec<Queued>,
        text: &str,
        command: Option<Command>,
        now: DateTime<Utc>,
        say: &mut Say,
    ) -> State {
        match command {
            Some(Command::Cancel) => {
                say.push(self.m().get("nothing_to_cancel"));
                return State::Idle;
            }
            Some(Command::Help) => {
                say.push(self.help_text());
                return State::Idle;
            }
            Some(Command::Resume) if !queue.is_empty() => {
                let next = queue.remove(0);
                return self.start(next.service, "", next.account, queue, now, say);
            }
            Some(Command::Service(id, rest)) => {
                return self.start(id, &rest, None, queue, now, say);
            }
            Some(Command::Slash { name, args }) => {
                return self.slash(State::Idle, &name, &args, say);
            }
            // A stray 确认/返回/跳过/修改 after filing is never a new request (待确认 is #56's alias).
            Some(Command::Confirm | Command::Back | Command::Skip | Command::Edit(None)) => {
                say.push(self.m().get("nothing_to_confirm"));
                return State::Idle;
            }
            _ => {}
        }
        if Tuning::is(&self.tuning().commands.confirm_like, text) {
            say.push(self.m().get("nothing_to_confirm"));
            return State::Idle;
        }
        match self.tuning().small_talk(text) {
            Some(SmallTalk::Greeting) => {
                say.push(self.m().get("greeting"));
                return State::Idle;
            }
            Some(SmallTalk::Thanks | SmallTalk::Acknowledgement) => {
                say.push(self.m().get("thanks_reply"));
                return State::Idle;
            }
            None => {}
        }
        // "开个电子发票 额 不对 是物流追踪": the correction is what is wanted, and the person
        // hears which one was dropped.
        if let Some((dropped, wanted)) = self.matcher.corrected(text)
            && let (Some(d), Some(w)) =
                (self.catalog.service(dropped), self.catalog.service(wanted))
        {
            say.push(self.m().render(
                "correction_taken",
                &[
                    ("dropped", &format!("#{} {}", d.id, d.name)),
                    ("wanted", &format!("#{} {}", w.id, w.name)),
                ],
            ));
            return self.start(wanted, text, None, queue, now, say);
        }
        let several = self.matcher.several(text);
        if several.len() > 1 {
            let account = self.account_in(several[0], text);
            // Every service the message names is accounted for at once, not only after filing.
            let later = several[1..]
                .iter()
                .filter_map(|id| self.catalog.service(*id))
                .map(|s| format!("「#{} {}」", s.id, s.name))
                .collect::<Vec<_>>()
                .join("、");
            say.push(self.m().render("several_queued", &[("later", &later)]));
            queue.splice(
                0..0,
                several[1..].iter().map(|&service| Queued {
                    service,
                    account: account.clone(),
                }),
            );
            return self.start(several[0], text, None, queue, now, say);
        }
        let understood = self.matcher.understand_with(text, self.meaning);
        let verdict = understood.verdict;
        crate::metrics::understanding(match (&verdict, understood.by_meaning) {
            (Verdict::Service(_), false) => "matched",
            (Verdict::Service(_), true) => "matched_by_meaning",
            (Verdict::Ambiguous(_), false) => "ambiguous",
            (Verdict::Ambiguous(_), true) => "ambiguous_by_meaning",
            (Verdict::Nothing, _) => "none",
        });
        match verdict {
            Verdict::Service(id) => self.start(id, text, None, queue, now, say),
            Verdict::Ambiguous(options) => {
                // The options are numbered by the channel (text) or shown as buttons (cards).
                say.push(
                    self.m()
                        .render("choose_candidates", &[("candidates", "")])
                        .trim_end(),
                );
                self.offer(&options, say);
                State::Choosing {
                    options,
                    text: text.to_owned(),
                }
            }
            Verdict::Nothing => {
                say.push(self.m().get("nothing_matched"));
                State::Idle
            }
        }
    }

    /// The seller account a message gives, as read for `service`.
    fn account_in(&self, service: ServiceId, text: &str) -> Option<String> {
        let service = self.catalog.service(service)?;
        let found = self.extract(service, text);
        service
            .seller_account_field()
            .and_then(|f| found.answers.get(f.key()))
            .map(|v| v.display(false))
    }

    /// The seller account a form holds (its seller-account field, whatever its key), carried to
    /// the request that follows it.
    fn seller_account(&self, form: &Form) -> Option<String> {
        let service = self.service(form)?;
        service
            .seller_account_field()
            .and_then(|f| form.answers.get(f.key()))
            .map(|v| v.display(false))
    }

    fn extract(&self, service: &Service, text: &str) -> Extraction {
        extract(self.catalog, service, &self.tuning().slots, text)
    }

    fn offer(&self, ids: &[ServiceId], say: &mut Say) {
        say.options = ids
            .iter()
            .filter_map(|id| self.catalog.service(*id))
            .map(|s| ChoiceOption {
                key: format!("#{}", s.id),
                label: format!("#{} {}", s.id, s.name),
            })
            .collect();
    }

    /// Starts a form for `id` with what `text` already carries; `carried` is the seller account
    /// of the request this one follows (a switch, a queued service), used when `text` has none.
    fn start(
        &self,
        id: ServiceId,
        text: &str,
        carried: Option<String>,
        queue: &mut Vec<Queued>,
        now: DateTime<Utc>,
        say: &mut Say,
    ) -> State {
        let Some(service) = self.catalog.service(id) else {
            say.push(self.m().get("nothing_matched"));
            return State::Idle;
        };
        let m = self.m();
        let Extraction {
            mut answers,
            noticed,
            extra_accounts,
            ..
        } = self.extract(service, text);
        say.push(m.render(
            "start_service",
            &[("id", &service.id.to_string()), ("name", &service.name)],
        ));
        if service.applicant == crate::catalog::ApplicantRule::ImplementationStaff {
            say.push(m.render(
                "applicant_rule_note",
                &[("rule", m.get("applicant_implementation_only"))],
            ));
        }
        let account_field = service.seller_account_field();
        let mut carried_key = None;
        if let (Some(f), Some(account)) = (account_field, carried)
            && !answers.contains_key(f.key())
            && let Ok(value) = f.spec.parse_answer(&account)
        {
            answers.insert(f.key().clone(), value);
            carried_key = Some(f.key().clone());
        }
        if !answers.is_empty() {
            let values = service
                .fields
                .iter()
                .filter_map(|f| {
                    let v = answers.get(f.key())?;
                    let mut line = format!("{} {}", f.spec.label, f.spec.display_value(v));
                    if carried_key.as_ref() == Some(f.key()) {
                        line.push_str(m.get("carried_suffix"));
                    }
                    Some(line)
                })
                .collect::<Vec<_>>()
                .join(", ");
            say.push(m.render("prefilled", &[("values", &values)]));
        }
        // Nothing recognised is dropped without a word.
        let mut offers = Vec::new();
        for n in &noticed {
            match &n.offer {
                Some(value) => offers.push(self.cap_offer(&n.key, &n.raw, &n.why, value.clone())),
                None => say.push(m.render(
                    "noticed_value",
                    &[("label", &n.label), ("raw", &n.raw), ("why", &n.why)],
                )),
            }
        }
        if !extra_accounts.is_empty() {
            say.push(m.render(
                "extra_accounts_queued",
                &[
                    ("accounts", &extra_accounts.join("、")),
                    ("name", &service.name),
                ],
            ));
            let at = 0;
            queue.splice(
                at..at,
                extra_accounts.into_iter().map(|a| Queued {
                    service: id,
                    account: Some(a),
                }),
            );
        }
        let order = service
            .fields
            .iter()
            .map(|f| f.key().clone())
            .filter(|k| answers.contains_key(k))
            .collect();
        let mut form = Form::new(id, answers, order, now.timestamp());
        form.offers = offers;
        self.advance(form, say, now)
    }

    /// After any change: refuse, guide, ask the next field, or show the summary.
    fn advance(&self, mut form: Form, say: &mut Say, now: DateTime<Utc>) -> State {
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        if let Some(refusal) = service.refusal_for(&form.answers) {
            say.push(
                self.m()
                    .render("refusal_framing", &[("message", &refusal.message)]),
            );
            // The answer that triggered the refusal is taken back and asked again; everything
            // else the person gave is kept ("那300呢" continues the same form).
            // Only a number can be asked again ("那300呢"); a refused choice or yes/no (淘宝 for
            // 解绑, 我是销售 for 实施-only) ends the form, so nobody answers around a rule.
            if let Some(key) = refusal.when.field().cloned()
                && service.field(&key).is_some_and(|f| {
                    refusal.keep_form
                        || matches!(
                            f.spec.kind,
                            FieldKind::Integer { .. } | FieldKind::Duration { .. }
                        )
                })
            {
                form.answers.remove(&key);
                form.order.retain(|k| *k != key);
                form.failures = 0;
                say.push(self.m().get("refusal_retry"));
            } else {
                return State::Idle;
            }
        }
        if let Some(guidance) = service.guidance_for(&form.answers) {
            say.push(
                self.m()
                    .render("guidance_framing", &[("message", &guidance.message)]),
            );
            return State::Idle;
        }
        // Answers to fields no longer asked (a condition flipped) are dropped.
        let active: Vec<_> = service
            .active_fields(&form.answers)
            .map(|f| f.key().clone())
            .collect();
        form.answers.retain(|k, _| active.contains(k));
        form.order.retain(|k| active.contains(k));
        let next = service.fields.iter().find(|f| {
            f.is_active(&form.answers)
                && !form.answers.contains_key(f.key())
                && !form.skipped.contains(f.key())
        });
        match next {
            Some(field)
                if self.in_group
                    && (field.spec.sensitive
                        || matches!(field.spec.kind, FieldKind::Attachment { .. })) =>
            {
                form.step = Step::Ask(field.key().clone());
                say.push(
                    self.m()
                        .render("continue_private", &[("label", &field.spec.label)]),
                );
                say.move_to_private = true;
            }
            Some(field) => {
                form.step = Step::Ask(field.key().clone());
                self.ask_first(field, &form, say);
            }
            None => {
                form.step = Step::Summary;
                self.summary(service, &form, say, now);
            }
        }
        State::Filling { form }
    }

    /// The cap offered instead of an over-cap number, with the question that offers it.
    fn cap_offer(&self, key: &FieldKey, raw: &str, why: &str, cap: FieldValue) -> Offer {
        let question = self.m().render(
            "offer_value",
            &[
                ("raw", raw),
                ("why", why.trim_end_matches(['。', '.'])),
                ("value", &cap.display(false)),
            ],
        );
        Offer {
            key: key.clone(),
            value: cap,
            question,
        }
    }

    /// Asks a field for the first time (not a re-ask): a blank template it names is sent once.
    fn ask_first(&self, field: &ServiceField, form: &Form, say: &mut Say) {
        if let FieldKind::Attachment {
            template: Some(template),
        } = &field.spec.kind
        {
            say.template = Some(template.clone());
        }
        self.ask(field, form, say);
    }

    fn ask(&self, field: &ServiceField, form: &Form, say: &mut Say) {
        let mut prompt = field.spec.render_prompt();
        if !field.required {
            prompt.push('\n');
            prompt.push_str(self.m().get("optional_hint"));
        }
        let options: Vec<String> = match &field.spec.kind {
            FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options } => {
                let mut options = options.clone();
                // An assumed list ends with 其他 (the number after the last option), which asks
                // for the name.
                if field.spec.other_allowed {
                    options.push(crate::catalog::value::OTHER.to_owned());
                }
                options
            }
            FieldKind::YesNo => vec!["是".into(), "否".into()],
            _ => Vec::new(),
        };
        say.push(prompt);
        if let Some(offer) = form.offers.iter().find(|o| &o.key == field.key()) {
            say.push(offer.question.clone());
        }
        say.options = options
            .into_iter()
            .map(|o| ChoiceOption {
                key: o.clone(),
                label: o,
            })
            .collect();
    }

    fn reask(&self, form: Form, say: &mut Say) -> State {
        if let (Step::Ask(key), Some(service)) = (&form.step, self.service(&form))
            && let Some(field) = service.field(key)
        {
            self.ask(field, &form, say);
        } else if form.step == Step::Summary {
            say.push(self.m().get("confirm_needed"));
        } else if form.step == Step::PickEdit
            && let Some(service) = self.service(&form)
        {
            say.push(self.m().render(
                "edit_which",
                &[("fields", &self.editable_list(service, &form))],
            ));
        }
        State::Filling { form }
    }

    fn window_text(&self, service: &Service, now: DateTime<Utc>) -> String {
        match &service.window {
            Window::DailyBatch => self.schedule.expectation(self.schedule.batch_for(now), now),
            Window::Custom(text) => text.clone(),
        }
    }

    fn summary(&self, service: &Service, form: &Form, say: &mut Say, now: DateTime<Utc>) {
        let m = self.m();
        let mut text = m.render(
            "summary_header",
            &[("id", &service.id.to_string()), ("name", &service.name)],
        );
        for (label, value) in service.summary_lines(&form.answers) {
            text.push('\n');
            text.push_str(&m.render("summary_line", &[("label", &label), ("value", &value)]));
        }
        if !service.preconditions.is_empty() {
            text.push_str("\n\n");
            text.push_str(m.get("summary_preconditions_header"));
            for p in &service.preconditions {
                text.push_str("\n· ");
                text.push_str(p);
            }
        }
        if !service.warnings.is_empty() {
            text.push_str("\n\n");
            text.push_str(m.get("summary_warnings_header"));
            for w in &service.warnings {
                text.push_str("\n· ");
                text.push_str(w);
            }
        }
        text.push_str("\n\n");
        text.push_str(&m.render(
            "summary_window",
            &[("window", &self.window_text(service, now))],
        ));
        say.push(text);
        say.push(m.get("confirm_prompt"));
    }

    fn editable_fields<'s>(&self, service: &'s Service, form: &Form) -> Vec<&'s ServiceField> {
        service
            .fields
            .iter()
            .filter(|f| f.is_active(&form.answers) && form.answers.contains_key(f.key()))
            .collect()
    }

    fn editable_list(&self, service: &Service, form: &Form) -> String {
        self.editable_fields(service, form)
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{}. {}", i + 1, f.spec.label))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Finds a field of the form by what the user called it ("卖家账号", "账号", "原因").
    fn find_field<'s>(
        &self,
        service: &'s Service,
        form: &Form,
        name: &str,
    ) -> Option<&'s ServiceField> {
        let name = fold(name);
        if name.is_empty() {
            return None;
        }
        let active: Vec<&ServiceField> = service
            .fields
            .iter()
            .filter(|f| f.is_active(&form.answers))
            .collect();
        active
            .iter()
            .find(|f| fold(&f.spec.label) == name)
            .or_else(|| {
                active.iter().find(|f| {
                    fold(&f.spec.label).contains(&name) || name.contains(&fold(&f.spec.label))
                })
            })
            .copied()
    }

    #[allow(clippy::too_many_arguments)]
    fn filling(
        &self,
        mut form: Form,
        queue: &mut Vec<Queued>,
        text: &str,
        command: Option<Command>,
        now: DateTime<Utc>,
        say: &mut Say,
        file: &mut Option<Form>,
    ) -> State {
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        let m = self.m();
        let words = &self.tuning().commands;
        let current = match &form.step {
            Step::Ask(key) => service.field(key),
            _ => None,
        };
        // A yes/no or option question reads its own words first: "没有" is 否 there, not 跳过.
        if let Some(f) = current
            && f.spec.kind.is_closed()
            && !matches!(
                command,
                Some(
                    Command::Cancel
                        | Command::Back
                        | Command::Help
                        | Command::Slash { .. }
                        | Command::Service(..)
                        | Command::Correct { .. }
                        | Command::Edit(_)
                )
            )
            && f.spec.parse_answer(text).is_ok()
        {
            return self.answer(form, text, now, say);
        }
        // A value the bot proposed for this field is taken on a yes.
        if let Some(f) = current
            && let Some(i) = form.offers.iter().position(|o| &o.key == f.key())
            && Tuning::is(&words.yes, text)
        {
            let offer = form.offers.remove(i);
            form.answers.insert(offer.key.clone(), offer.value);
            if !form.order.contains(&offer.key) {
                form.order.push(offer.key);
            }
            form.failures = 0;
            return self.advance(form, say, now);
        }
        match command {
            Some(Command::Cancel) => {
                queue.clear();
                say.push(m.get("cancelled"));
                return State::Idle;
            }
            Some(Command::Help) => {
                match &form.step {
                    Step::Ask(key) => {
                        if let Some(f) = service.field(key) {
                            let help = if f.spec.help.is_empty() {
                                f.spec.render_prompt()
                            } else {
                                f.spec.help.clone()
                            };
                            say.push(m.render(
                                "field_help",
                                &[("label", &f.spec.label), ("help", &help)],
                            ));
                        }
                    }
                    _ => say.push(self.help_text()),
                }
                return self.reask(form, say);
            }
            Some(Command::Back) => {
                form.failures = 0;
                match form.order.pop() {
                    Some(key) => {
                        form.answers.remove(&key);
                        form.skipped.retain(|k| *k != key);
                        say.push(m.get("back_done"));
                        form.step = Step::Ask(key.clone());
                        if let Some(f) = service.field(&key) {
                            self.ask(f, &form, say);
                        }
                        return State::Filling { form };
                    }
                    None => {
                        say.push(m.get("at_first_step"));
                        return self.reask(form, say);
                    }
                }
            }
            Some(Command::Skip) => {
                if let Step::Ask(key) = &form.step
                    && let Some(f) = service.field(key)
                {
                    if f.required {
                        say.push(m.render("skip_not_allowed", &[("label", &f.spec.label)]));
                        return self.reask(form, say);
                    }
                    form.skipped.push(key.clone());
                    form.failures = 0;
                    return self.advance(form, say, now);
                }
            }
            Some(Command::Confirm) if form.step == Step::Summary => {
                *file = Some(form);
                say.push(m.get("confirmed"));
                return State::Idle;
            }
            Some(Command::Confirm) => {
                // 确认 is never a field value ("确认" as a seller account).
                say.push(m.get("not_at_summary"));
                return self.reask(form, say);
            }
            Some(Command::Resume) => return self.reask(form, say),
            Some(Command::Edit(None)) => {
                form.step = Step::PickEdit;
                say.push(m.render(
                    "edit_which",
                    &[("fields", &self.editable_list(service, &form))],
                ));
                return State::Filling { form };
            }
            Some(Command::Edit(Some(name))) => {
                if let Some(f) = self.find_field(service, &form, &name) {
                    form.step = Step::Ask(f.key().clone());
                    form.failures = 0;
                    self.ask_first(f, &form, say);
                    return State::Filling { form };
                }
            }
            Some(Command::Correct { field, value }) => {
                if let Some(f) = self.find_field(service, &form, &field) {
                    match f.spec.parse_answer(&value) {
                        Ok(parsed) => {
                            say.push(m.render(
                                "field_updated",
                                &[
                                    ("label", &f.spec.label),
                                    ("value", &f.spec.display_value(&parsed)),
                                ],
                            ));
                            let key = f.key().clone();
                            form.answers.insert(key.clone(), parsed);
                            form.offers.retain(|o| o.key != key);
                            if !form.order.contains(&key) {
                                form.order.push(key);
                            }
                            return self.advance(form, say, now);
                        }
                        Err(e) => {
                            say.push(e.message);
                            return self.reask(form, say);
                        }
                    }
                }
            }
            Some(Command::Service(id, _)) if id != form.service => {
                return self.switch_prompt(form, id, text.to_owned(), say);
            }
            Some(Command::Service(..)) => return self.reask(form, say),
            Some(Command::Slash { name, args }) => {
                return match self.slash(State::Filling { form }, &name, &args, say) {
                    State::Filling { form } => self.reask(form, say),
                    other => other,
                };
            }
            _ => {}
        }
        match self.tuning().small_talk(text) {
            Some(SmallTalk::Greeting) if form.step != Step::Summary => {
                let name = service.name.clone();
                say.push(m.render("welcome_back", &[("name", &name)]));
                return self.reask(form, say);
            }
            Some(SmallTalk::Thanks) if form.step != Step::Summary => {
                say.push(m.get("thanks_reply"));
                return self.reask(form, say);
            }
            _ => {}
        }

        // A message that names another service is never taken as a field value.
        if let Some(target) = self.names_other_service(service, &form, text) {
            return self.switch_prompt(form, target, text.to_owned(), say);
        }

        match form.step.clone() {
            Step::PickEdit => {
                let fields = self.editable_fields(service, &form);
                let chosen = pick_number(text, fields.len())
                    .map(|n| fields[n])
                    .or_else(|| self.find_field(service, &form, text));
                match chosen {
                    Some(f) => {
                        form.step = Step::Ask(f.key().clone());
                        self.ask_first(f, &form, say);
                        State::Filling { form }
                    }
                    None => {
                        say.push(m.render(
                            "edit_which",
                            &[("fields", &self.editable_list(service, &form))],
                        ));
                        State::Filling { form }
                    }
                }
            }
            Step::Summary => {
                say.push(m.get("confirm_needed"));
                State::Filling { form }
            }
            Step::Ask(_) => self.answer(form, text, now, say),
        }
    }

    /// Reads `text` as the answer to the field being asked.
    fn answer(&self, mut form: Form, text: &str, now: DateTime<Utc>, say: &mut Say) -> State {
        let m = self.m();
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        let Step::Ask(key) = form.step.clone() else {
            return self.reask(form, say);
        };
        let Some(field) = service.field(&key) else {
            return self.advance(form, say, now);
        };
        let words = &self.tuning().commands;
        let plain_word = Tuning::is(&words.yes, text)
            || Tuning::is(&words.no, text)
            || self.tuning().small_talk(text) == Some(SmallTalk::Acknowledgement);
        let asks_choice = field.spec.kind.is_closed();
        // A cued value inside a sentence ("账号是 abc_1", "调到3000吧") wins over reading the
        // whole message as the value; then the whole message.
        let found = self.extract(service, text);
        // A message made only of values for other fields ("原始单号 3456…" while the reason is
        // asked, "抖店和快手" for the platforms) fills those fields; this one keeps waiting.
        let others: Vec<_> = found
            .answers
            .iter()
            // A value the form already holds is no news ("某某淘宝店" for the shop name of a
            // 淘宝 shop); only new or changed values count.
            .filter(|(k, v)| {
                **k != key
                    && form.answers.get(*k) != Some(*v)
                    && found.cued.contains(*k)
                    && service.field(k).is_some_and(|f| f.is_active(&form.answers))
            })
            .collect();
        if !found.answers.contains_key(&key) && !others.is_empty() && found.leftover_chars <= 4 {
            for (k, v) in others {
                if let Some(f) = service.field(k) {
                    say.push(m.render(
                        "field_updated",
                        &[
                            ("label", &f.spec.label),
                            ("value", &f.spec.display_value(v)),
                        ],
                    ));
                }
                form.answers.insert(k.clone(), v.clone());
                form.offers.retain(|o| o.key != *k);
                if !form.order.contains(k) {
                    form.order.push(k.clone());
                }
            }
            for n in &found.noticed {
                say.push(m.render(
                    "noticed_value",
                    &[("label", &n.label), ("raw", &n.raw), ("why", &n.why)],
                ));
            }
            return self.advance(form, say, now);
        }
        // "采购单, 其他: 盘点单" for an assumed list: slot extraction knows only the listed
        // options, so the field's own reading, which keeps the 其他 part, goes first.
        let with_other = field
            .spec
            .other_allowed
            .then(|| field.spec.parse_answer(text).ok())
            .flatten()
            .filter(crate::catalog::value::holds_other);
        let parsed = match (with_other, found.answers.get(&key)) {
            (Some(value), _) => Ok((value, false)),
            (None, Some(value)) => Ok((value.clone(), true)),
            // "好的", "是" where a name or a reason is asked are no answer: the question again.
            (None, None)
                if plain_word
                    && matches!(
                        field.spec.kind,
                        FieldKind::SellerAccount
                            | FieldKind::Text { .. }
                            | FieldKind::Identifier { .. }
                    ) =>
            {
                Err(field.spec.render_prompt())
            }
            // "在吗 好了没" where a reason is asked is a question about a request, not a reason.
            (None, None)
                if matches!(field.spec.kind, FieldKind::Text { .. })
                    && super::commands::parse_plain(text, &self.tuning().plain_commands)
                        .is_some() =>
            {
                Err(format!(
                    "{}\n{}",
                    m.get("plain_command_in_form"),
                    field.spec.render_prompt()
                ))
            }
            (None, None) => match field.spec.parse_answer(text) {
                Ok(value) => Ok((value, false)),
                Err(e) => Err(found
                    .noticed
                    .iter()
                    .find(|n| n.key == key)
                    .map_or(e.message, |n| n.why.clone())),
            },
        };
        match parsed {
            Ok((value, cued)) => {
                // A Chinese account typed without a cue is read back before it is used.
                if !cued
                    && matches!(field.spec.kind, FieldKind::SellerAccount)
                    && text.chars().any(crate::catalog::value::is_han)
                {
                    // "客户要给买家开票" is a sentence and "好了没" a question, not a shop's
                    // account name.
                    let tuning = self.tuning();
                    if tuning
                        .slots
                        .chinese_account_stop_words
                        .iter()
                        .any(|w| text.contains(w.as_str()))
                        || super::commands::parse_plain(text, &tuning.plain_commands).is_some()
                    {
                        form.failures = form.failures.saturating_add(1);
                        say.push(
                            field
                                .spec
                                .parse_answer("?")
                                .err()
                                .map(|e| e.message)
                                .unwrap_or_default(),
                        );
                        return State::Filling { form };
                    }
                    let shown = value.display(false);
                    let question = m.render("offer_chinese_account", &[("value", &shown)]);
                    form.offers.retain(|o| o.key != key);
                    form.offers.push(Offer {
                        key: key.clone(),
                        value,
                        question: question.clone(),
                    });
                    say.push(question);
                    return State::Filling { form };
                }
                form.answers.insert(key.clone(), value);
                form.offers.retain(|o| o.key != key);
                if !form.order.contains(&key) {
                    form.order.push(key);
                }
                form.failures = 0;
                self.advance(form, say, now)
            }
            Err(message) => {
                form.failures = form.failures.saturating_add(1);
                // Not in an assumed list: offer it as "其他: …", taken on a yes.
                if let Some(value) = field.spec.as_other(text) {
                    let question = m.render(
                        "offer_other",
                        &[("raw", text.trim()), ("value", &value.display(false))],
                    );
                    say.push(question.clone());
                    form.offers.retain(|o| o.key != key);
                    form.offers.push(Offer {
                        key: key.clone(),
                        value,
                        question,
                    });
                    return State::Filling { form };
                }
                // Over the cap at the prompt: offer the cap, as for a first message.
                if let Some((n, cap)) = field.spec.over_cap(text) {
                    let offer = self.cap_offer(&key, &n.to_string(), &message, cap);
                    say.push(offer.question.clone());
                    form.offers.retain(|o| o.key != key);
                    form.offers.push(offer);
                    if form.failures >= 3 {
                        form.failures = 0;
                        say.push(m.render("too_many_failures", &[("label", &field.spec.label)]));
                    }
                    return State::Filling { form };
                }
                say.push(message);
                if form.failures >= 3 {
                    form.failures = 0;
                    say.push(m.render("too_many_failures", &[("label", &field.spec.label)]));
                } else if asks_choice {
                    // The options again, as buttons, without repeating the question text.
                    self.ask(field, &form, say);
                    say.parts.pop();
                }
                State::Filling { form }
            }
        }
    }

    /// Another service named clearly enough to be a switch, not an answer.
    fn names_other_service(&self, service: &Service, form: &Form, text: &str) -> Option<ServiceId> {
        let folded = fold(text);
        let mut free_text = false;
        if let Step::Ask(key) = &form.step
            && let Some(f) = service.field(key)
        {
            // The answer the question suggests (an option, the field's own example or a value
            // its help names, "菜鸟自流转") is an answer, never a switch.
            if f.spec.kind.is_closed() && f.spec.parse_answer(text).is_ok() {
                return None;
            }
            if !folded.is_empty()
                && (fold(&f.spec.example) == folded || fold(&f.spec.help).contains(&folded))
            {
                return None;
            }
            free_text = matches!(f.spec.kind, FieldKind::Text { .. });
        }
        let tuning = self.tuning();
        let asks_for = |markers: &[String]| markers.iter().any(|w| folded.contains(w.as_str()));
        let ranked = self.matcher.rank(text);
        // A service named in full, except inside a free-text answer that does not ask for it
        // ("客户做活动 一单多包裹赠品多" is a reason that mentions 多包裹).
        if let Some(id) = ranked
            .iter()
            .map(|s| s.id)
            .find(|&id| id != service.id && self.matcher.names_fully(id, text))
            && (!free_text
                || asks_for(&tuning.interrupt_markers)
                || asks_for(&tuning.request_markers) && folded.chars().count() <= 16)
        {
            return Some(id);
        }
        // A valid answer to a closed question ("调到3000" for a number) is an answer; only a
        // service named in full (above) beats it.
        if !free_text
            && let Step::Ask(key) = &form.step
            && let Some(f) = service.field(key)
            && (f.spec.parse_answer(text).is_ok()
                || self.extract(service, text).answers.contains_key(key))
        {
            return None;
        }
        let ranked = self.matcher.rank_words(text);
        // A clear winner asked for in so many words: "等下 先帮我开个物流对账报表". In a free-text
        // answer only an interruption counts, since reasons mention features all the time.
        let markers = if free_text {
            &tuning.interrupt_markers
        } else {
            &tuning.request_markers
        };
        let asks = asks_for(markers);
        match self.matcher.verdict(&ranked) {
            Verdict::Service(id) if id != service.id && asks => Some(id),
            _ => None,
        }
    }

    fn switch_prompt(&self, form: Form, target: ServiceId, text: String, say: &mut Say) -> State {
        let current = self
            .service(&form)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let target_name = self
            .catalog
            .service(target)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        say.push(self.m().render(
            "switch_confirm",
            &[
                ("current", &form.service.to_string()),
                ("current_name", &current),
                ("target", &target.to_string()),
                ("target_name", &target_name),
            ],
        ));
        say.options = ["切换", "稍后", "继续填"]
            .into_iter()
            .map(|o| ChoiceOption {
                key: o.to_owned(),
                label: o.to_owned(),
            })
            .collect();
        State::ConfirmSwitch { form, target, text }
    }

    fn slash(&self, state: State, name: &str, args: &str, say: &mut Say) -> State {
        match name {
            "help" | "帮助" => {
                say.push(self.help_text());
                state
            }
            "cancel" | "取消" if args.is_empty() => {
                if matches!(state, State::Idle) {
                    say.push(self.m().get("nothing_to_cancel"));
                } else {
                    say.push(self.m().get("cancelled"));
                }
                State::Idle
            }
            "services" | "服务" => {
                say.push(self.services(args));
                state
            }
            _ => {
                say.push(self.m().render(
                    "unknown_command",
                    &[("commands", &super::commands::command_list(self.m()))],
                ));
                state
            }
        }
    }

    /// `/help`, with the command list built from the one list of commands.
    fn help_text(&self) -> String {
        self.m().render(
            "help",
            &[("commands", &super::commands::command_list(self.m()))],
        )
    }

    fn services(&self, keyword: &str) -> String {
        let m = self.m();
        if keyword.is_empty() {
            let categories = self
                .catalog
                .categories()
                .iter()
                .map(|c| {
                    let n = self
                        .catalog
                        .services()
                        .filter(|s| s.category == c.key)
                        .count();
                    format!("· {} ({n})", c.name)
                })
                .collect::<Vec<_>>()
                .join("\n");
            return m.render(
                "services_overview",
                &[
                    ("count", &self.catalog.service_count().to_string()),
                    ("categories", &categories),
                ],
            );
        }
        // A category name lists its services; otherwise rank by the keyword.
        let folded = fold(keyword);
        let ids: Vec<ServiceId> = match self
            .catalog
            .categories()
            .iter()
            .find(|c| fold(&c.name) == folded)
        {
            Some(c) => self
                .catalog
                .services()
                .filter(|s| s.category == c.key)
                .map(|s| s.id)
                .collect(),
            None => {
                // Services whose name, aliases or keywords hold the word ("上限", "报表", "sn"),
                // then whatever ranking adds.
                let mut ids: Vec<ServiceId> = self
                    .catalog
                    .services()
                    .filter(|s| {
                        // Examples say what a service is about in people's words ("打印").
                        std::iter::once(&s.name)
                            .chain(&s.aliases)
                            .chain(&s.keywords)
                            .chain(&s.examples)
                            .any(|w| fold(w).contains(&folded))
                    })
                    .map(|s| s.id)
                    .collect();
                for s in self.matcher.rank(keyword).iter().take(10) {
                    if !ids.contains(&s.id) {
                        ids.push(s.id);
                    }
                }
                ids
            }
        };
        if ids.is_empty() {
            return m.render("services_none", &[("keyword", keyword)]);
        }
        let list = ids
            .iter()
            .filter_map(|id| self.catalog.service(*id))
            .map(|s| format!("#{} {}", s.id, s.name))
            .collect::<Vec<_>>()
            .join("\n");
        m.render("services_found", &[("services", &list)])
    }

    /// The receipt after the ledger filed a form.
    #[must_use]
    pub fn receipt(
        &self,
        form: &Form,
        request_id: &str,
        batch_text: &str,
        queue: &[Queued],
    ) -> String {
        let Some(service) = self.service(form) else {
            return String::new();
        };
        let window = match &service.window {
            Window::DailyBatch => batch_text.to_owned(),
            Window::Custom(text) => text.clone(),
        };
        let mut text = self.m().render(
            "filed_receipt",
            &[
                ("id", &service.id.to_string()),
                ("name", &service.name),
                ("ticket", request_id),
                ("channel", &receipt_channel(service, self.m())),
                ("team", &service.handler_label(self.m())),
                ("window", &window),
            ],
        );
        if let Some(rejected) = &form.resubmit_of {
            text.push('\n');
            text.push_str(&self.m().render("receipt_resubmit_of", &[("id", rejected)]));
        }
        if let Some(queued) = queue.first()
            && let Some(next) = self.catalog.service(queued.service)
        {
            let account = queued
                .account
                .as_ref()
                .map(|a| self.m().render("queued_account", &[("account", a)]))
                .unwrap_or_default();
            text.push_str("\n\n");
            text.push_str(&self.m().render(
                "queued_next",
                &[
                    ("id", &next.id.to_string()),
                    ("name", &next.name),
                    ("account", &account),
                ],
            ));
        }
        text
    }
}

/// Whether a file sent for `field` is the field's blank template itself (same file name).
pub(crate) fn is_blank_template(field: &ServiceField, file_name: Option<&str>) -> bool {
    let FieldKind::Attachment {
        template: Some(template),
    } = &field.spec.kind
    else {
        return false;
    };
    let Some(name) = file_name else {
        return false;
    };
    let norm = |s: &str| fold(s);
    norm(name) == norm(template)
}

/// Where the receipt says the request goes; an e-mail channel without a seed address names none.
fn receipt_channel(service: &Service, m: &crate::catalog::Messages) -> String {
    match &service.channel {
        crate::catalog::Channel::Email { address: None } => {
            m.get("receipt_channel_email_unaddressed").to_owned()
        }
        channel => channel.label(),
    }
}

fn default_file_name(kind: crate::domain::AttachmentKind) -> String {
    match kind {
        crate::domain::AttachmentKind::Image => "图片".into(),
        crate::domain::AttachmentKind::Voice => "语音".into(),
        crate::domain::AttachmentKind::Video => "视频".into(),
        crate::domain::AttachmentKind::File => "文件".into(),
    }
}

/// "2", "2号", "第2个", "#2" → index 1 when within 1..=len.
fn pick_number(text: &str, len: usize) -> Option<usize> {
    let t = crate::catalog::value::normalize_width(text);
    let digits: String = t
        .trim()
        .trim_start_matches(['第', '#', '选'])
        .trim_end_matches(['号', '个', '项', '.', '、'])
        .trim()
        .to_owned();
    let n: usize = digits.parse().ok()?;
    (1..=len).contains(&n).then(|| n - 1)
}
