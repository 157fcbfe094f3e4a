//! The form state machine: one inbound message and the current session in, the next session,
//! the reply and (on 确认) the form to file out. Pure: no I/O, the clock is passed in.
//!
//! This file holds the turn itself and what happens outside a form (idle, choosing between
//! services, confirming a switch); each step of a form has its own file:
//! [`command`] the conversation commands, [`asking`] starting a form and asking its fields,
//! [`filling`] a message while a form is open, [`answer`] reading the asked field's answer,
//! [`summary`] the summary and the receipt, [`reopen`] a rejected request opened again,
//! [`slash`] `/help`, `/cancel`, `/services`.
//! Must not touch: I/O, the clock, the store.

mod answer;
mod asking;
mod command;
mod context;
mod filling;
mod recent;
mod reopen;
mod slash;
mod summary;

use chrono::{DateTime, Utc};

use self::command::FormCommand;
pub use self::context::Engine;
use super::session::{Form, Queued, Session, State, Step};
use super::slots::{Extraction, extract};
use super::text::fold;
use super::understand::{SmallTalk, Tuning, Verdict};
use crate::catalog::MessageKey;
use crate::catalog::{FieldKind, FieldValue, Messages, Service, ServiceField};
use crate::domain::{ChoiceOption, Content, Reply, ServiceId};

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
    /// The message asked about the person's requests ("好了没") where a field is asked: the
    /// bot answers it from the ledger before the question (the engine knows no ledger).
    pub ledger_question: Option<crate::dialog::commands::RequestCommand>,
    /// A group message meant for the form that went on in the 1:1 chat ("数量打错了 应该是180"
    /// after the move): the bot hands it to that form rather than dropping it.
    pub for_private: bool,
}

/// One turn's working set, shared by its steps: the clock, the reply being built, the person's
/// queue of services still to file, and the form confirmed this turn (to hand to the ledger).
struct Turn {
    now: DateTime<Utc>,
    say: Say,
    queue: Vec<Queued>,
    file: Option<Form>,
    /// The last form that left the conversation (`Session::recent`).
    recent: Option<crate::dialog::session::Recent>,
}

/// The reply under construction: paragraphs, and options if the last one is a question.
#[derive(Default)]
struct Say {
    parts: Vec<String>,
    options: Vec<ChoiceOption>,
    move_to_private: bool,
    for_private: bool,
    template: Option<String>,
    ledger_question: Option<crate::dialog::commands::RequestCommand>,
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

impl Engine<'_> {
    fn m(&self) -> &Messages {
        self.catalog.messages()
    }

    fn tuning(&self) -> &Tuning {
        self.matcher.tuning()
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
        let mut t = Turn {
            now,
            say: Say::default(),
            queue: Vec::new(),
            file: None,
            recent: None,
        };
        let mut session = if expired {
            if !matches!(session.state, State::Idle) {
                t.say.push(self.m().get(MessageKey::FormExpired));
            }
            Session::default()
        } else {
            session
        };
        session.updated_at = now.timestamp();
        let state = std::mem::take(&mut session.state);
        t.queue = std::mem::take(&mut session.queue);
        t.recent = session.recent.take();
        let next = match content {
            Content::Text(text) if crate::catalog::value::has_control_chars(text) => {
                // Refused at the edge: NUL, BEL or ESC are never stored or shown.
                t.say.push(self.m().get(MessageKey::TextControlChars));
                state
            }
            Content::Text(text) => {
                let text = crate::catalog::value::normalize_width(text);
                self.on_text(state, &text, &mut t)
            }
            Content::CardAction(action) => self.on_text(state, &action.key, &mut t),
            Content::Attachment(attachment) => self.on_attachment(state, attachment, &mut t),
            Content::Entered => self.on_entered(state, &mut t.say),
            Content::Location { .. }
            | Content::Link { .. }
            | Content::MenuClick(_)
            | Content::Unsupported(_) => {
                t.say.push(self.help_text());
                state
            }
        };
        session.state = next;
        session.queue = t.queue;
        if let Some(form) = &t.file {
            t.recent = Some(crate::dialog::session::Recent {
                form: form.clone(),
                cancelled: false,
                at: now.timestamp(),
            });
        }
        session.recent = t.recent;
        Self::outcome(session, t.say, t.file)
    }

    /// A file sent: the answer to an attachment field being asked, else not expected here.
    fn on_attachment(
        &self,
        state: State,
        attachment: &crate::domain::Attachment,
        t: &mut Turn,
    ) -> State {
        // A file while no file is asked: it belongs to a form put aside for its file.
        let asks_file = |form: &Form| {
            matches!(&form.step, Step::Ask(key) if self.service(form)
                .and_then(|s| s.field(key))
                .is_some_and(|f| matches!(f.spec.kind, FieldKind::Attachment { .. })))
        };
        let current_asks = matches!(&state, State::Filling { form } if asks_file(form));
        if !current_asks
            && let Some(at) = t
                .queue
                .iter()
                .position(|q| q.parked.as_deref().is_some_and(asks_file))
        {
            let Some(parked) = t.queue[at].parked.take() else {
                return state;
            };
            let mut inner = Turn {
                now: t.now,
                say: Say::default(),
                queue: Vec::new(),
                file: None,
                recent: None,
            };
            let name = self.service_label(parked.service).unwrap_or_default();
            match self.on_attachment(State::Filling { form: *parked }, attachment, &mut inner) {
                State::Filling { form } if !asks_file(&form) => {
                    tracing::info!(service = %form.service, "file kept for a parked form");
                    t.queue[at].parked = Some(Box::new(form));
                    // Nothing else is being filled: go on with it now.
                    if matches!(state, State::Idle) {
                        let next = t.queue.remove(at);
                        return self.start_queued(next, t);
                    }
                    t.say.push(
                        self.m()
                            .render(MessageKey::ParkedFileKept, &[("name", &name)]),
                    );
                    return match state {
                        State::Filling { form } => self.reask(form, &mut t.say),
                        other => other,
                    };
                }
                other => {
                    // Refused (a blank template): said, and the form stays put aside.
                    t.say.parts.extend(inner.say.parts);
                    if let State::Filling { form } = other {
                        t.queue[at].parked = Some(Box::new(form));
                    }
                    return match state {
                        State::Filling { form } => self.reask(form, &mut t.say),
                        other => other,
                    };
                }
            }
        }
        let State::Filling { mut form } = state else {
            t.say.push(self.m().get(MessageKey::AttachmentUnexpected));
            return state;
        };
        let field = match &form.step {
            Step::Ask(key) => self.service(&form).and_then(|s| s.field(key)),
            _ => None,
        };
        match field {
            Some(f) if is_blank_template(f, attachment.file_name.as_deref()) => {
                let template = match &f.spec.kind {
                    FieldKind::Attachment { template } => template.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                t.say.push(
                    self.m()
                        .render(MessageKey::TemplateRefused, &[("template", &template)]),
                );
                self.reask(form, &mut t.say)
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
                self.advance(form, t)
            }
            _ => {
                t.say.push(self.m().get(MessageKey::AttachmentUnexpected));
                self.reask(form, &mut t.say)
            }
        }
    }

    /// The person opened the chat: welcomed back to a form in progress, else greeted.
    fn on_entered(&self, state: State, say: &mut Say) -> State {
        match state {
            State::Filling { form } => {
                let name = self
                    .service(&form)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                say.push(self.m().render(MessageKey::WelcomeBack, &[("name", &name)]));
                self.reask(form, say)
            }
            other => {
                say.push(self.m().get(MessageKey::Greeting));
                other
            }
        }
    }

    fn outcome(session: Session, say: Say, file: Option<Form>) -> Outcome {
        let move_to_private = say.move_to_private;
        let for_private = say.for_private;
        let template = say.template.clone();
        let ledger_question = say.ledger_question.clone();
        Outcome {
            session,
            reply: say.into_reply(),
            file,
            move_to_private,
            template,
            ledger_question,
            for_private,
        }
    }

    fn service(&self, form: &Form) -> Option<&Service> {
        self.catalog.service(form.service)
    }

    fn on_text(&self, state: State, text: &str, t: &mut Turn) -> State {
        let text = text.trim();
        let command = self.command(text);
        match state {
            State::Idle => match self.again(text, command.as_ref(), t) {
                Some(state) => state,
                None => self.idle(text, command, t),
            },
            State::Choosing {
                options,
                text: original,
            } => self.choosing(options, original, text, command, t),
            State::ConfirmSwitch {
                form,
                target,
                text: original,
            } => self.confirm_switch(form, target, original, text, command, t),
            State::Filling { form } => self.filling(form, text, command, t),
            State::MovedToPrivate { service } => {
                // A new request, a command or a status question starts as from idle; anything
                // else was meant for the form that went on in private.
                let starts_anew = match &command {
                    Some(
                        FormCommand::Slash { .. } | FormCommand::Service(..) | FormCommand::Help,
                    ) => true,
                    // 确认/取消/返回 … are the private form's.
                    Some(_) => false,
                    None => !matches!(
                        self.matcher.understand_with(text, self.meaning).verdict,
                        Verdict::Nothing
                    ),
                };
                if starts_anew {
                    return self.idle(text, command, t);
                }
                // A value or a correction is the form's: the bot hands it over. A word about
                // the move itself ("等下发", "好") only hears where the form went.
                let folded = fold(text);
                if !text
                    .chars()
                    .all(|c| crate::catalog::value::is_han(c) || !c.is_alphanumeric())
                    || self
                        .tuning()
                        .slots
                        .correction_markers
                        .iter()
                        .any(|m| folded.contains(m.as_str()))
                {
                    t.say.for_private = true;
                }
                let name = self.service_label(service).unwrap_or_default();
                t.say.push(
                    self.m()
                        .render(MessageKey::MovedToPrivateReminder, &[("name", &name)]),
                );
                State::MovedToPrivate { service }
            }
        }
    }

    /// A close call was offered: a number, a named option or "#N" picks; anything else is a
    /// new message.
    fn choosing(
        &self,
        options: Vec<ServiceId>,
        original: String,
        text: &str,
        command: Option<FormCommand>,
        t: &mut Turn,
    ) -> State {
        if command == Some(FormCommand::Cancel) {
            t.say.push(self.m().get(MessageKey::Cancelled));
            return State::Idle;
        }
        // "#60" names service 60; a bare "2" is the second option.
        if let Some(FormCommand::Service(id, rest)) = &command {
            return self.start(*id, &format!("{original} {rest}"), None, t);
        }
        if let Some(n) = pick_number(text, options.len()) {
            return self.start(options[n], &original, None, t);
        }
        let ranked = self.matcher.rank_words(text);
        // "哦不对 不要这个 是新版支付宝账单": a service named in full that is not offered is
        // the one meant, with what the first message said (its account) kept.
        if let Verdict::Service(id) = self.matcher.verdict(&ranked)
            && !options.contains(&id)
            && self.matcher.names_fully(id, text)
        {
            return self.start(id, &format!("{original} {text}"), None, t);
        }
        if let Some(best) = ranked.iter().find(|s| options.contains(&s.id)) {
            return self.start(best.id, &format!("{original} {text}"), None, t);
        }
        if matches!(
            self.matcher.verdict(&ranked),
            Verdict::Service(_) | Verdict::Ambiguous(_)
        ) || command.is_some()
        {
            return self.idle(text, command, t);
        }
        t.say.push(self.m().render(
            MessageKey::ChooseNumber,
            &[("n", &options.len().to_string())],
        ));
        self.offer(&options, &mut t.say);
        State::Choosing {
            options,
            text: original,
        }
    }

    /// "Switch to the other service?" was asked: 切换, 稍后 (queued), 继续填, or a further answer.
    fn confirm_switch(
        &self,
        form: Form,
        target: ServiceId,
        original: String,
        text: &str,
        command: Option<FormCommand>,
        t: &mut Turn,
    ) -> State {
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
            self.start(target, &original, carried, t)
        } else if Tuning::is(&words.later, text) {
            let name = self
                .catalog
                .service(target)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if !t.queue.iter().any(|q| q.service == target) {
                t.queue.insert(
                    0,
                    Queued {
                        service: target,
                        account: carried,
                        text: None,
                        parked: None,
                    },
                );
            }
            t.say.push(self.m().render(
                MessageKey::SwitchQueued,
                &[("id", &target.to_string()), ("name", &name)],
            ));
            self.reask(form, &mut t.say)
        } else if Tuning::is(&words.keep, text)
            && let Step::Ask(_) = &form.step
        {
            // "That was my answer": the held message answers the current field.
            self.answer(form, &original, t)
        } else if Tuning::is(&words.keep, text)
            || Tuning::is(&words.no, text)
            || command == Some(FormCommand::Cancel)
        {
            let name = self
                .service(&form)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            t.say
                .push(self.m().render(MessageKey::SwitchKept, &[("name", &name)]));
            self.reask(form, &mut t.say)
        } else if self.matcher.verdict(&self.matcher.rank(text)) == Verdict::Service(target) {
            // Naming the new service again is a yes.
            self.start(target, &format!("{original} {text}"), carried, t)
        } else {
            // Anything else keeps the current form and is handled as part of it.
            self.filling(form, text, command, t)
        }
    }

    fn idle(&self, text: &str, command: Option<FormCommand>, t: &mut Turn) -> State {
        // Right after "回复「继续」开始办理", a yes, a 确认 or "1" means go on ("好的", "嗯", "1").
        let go_on = || {
            matches!(command, Some(FormCommand::Confirm))
                || Tuning::is(&self.tuning().commands.yes, text)
                || self.tuning().small_talk(text) == Some(SmallTalk::Acknowledgement)
                || pick_number(text, 1) == Some(0)
        };
        if !t.queue.is_empty() && !matches!(command, Some(FormCommand::Cancel)) && go_on() {
            let next = t.queue.remove(0);
            return self.start_queued(next, t);
        }
        match command {
            Some(FormCommand::Cancel) if !t.queue.is_empty() => {
                let queued = self.queued_names(&t.queue);
                t.queue.clear();
                t.say.push(
                    self.m()
                        .render(MessageKey::QueueCancelled, &[("queued", &queued)]),
                );
                return State::Idle;
            }
            Some(FormCommand::Cancel) => {
                t.say.push(self.m().get(MessageKey::NothingToCancel));
                return State::Idle;
            }
            Some(FormCommand::Help) => {
                t.say.push(self.help_text());
                return State::Idle;
            }
            Some(FormCommand::Resume) => {
                if t.queue.is_empty() {
                    // "继续" with nothing queued is no search for a service called 继续.
                    t.say.push(self.m().get(MessageKey::NothingQueued));
                    return State::Idle;
                }
                let next = t.queue.remove(0);
                return self.start_queued(next, t);
            }
            Some(FormCommand::Service(id, rest)) => {
                return self.start(id, &rest, None, t);
            }
            Some(FormCommand::Slash { name, args }) => {
                return self.slash(State::Idle, &name, &args, &mut t.say);
            }
            // A stray 确认/返回/跳过/修改 after filing is never a new request (待确认 is #56's alias).
            Some(
                FormCommand::Confirm
                | FormCommand::Back
                | FormCommand::Skip
                | FormCommand::Edit(None),
            ) => {
                t.say.push(self.m().get(MessageKey::NothingToConfirm));
                return State::Idle;
            }
            _ => {}
        }
        if Tuning::is(&self.tuning().commands.confirm_like, text) {
            t.say.push(self.m().get(MessageKey::NothingToConfirm));
            return State::Idle;
        }
        match self.tuning().small_talk(text) {
            Some(SmallTalk::Greeting) => {
                t.say.push(self.m().get(MessageKey::Greeting));
                return State::Idle;
            }
            Some(SmallTalk::Thanks | SmallTalk::Acknowledgement) => {
                t.say.push(self.m().get(MessageKey::ThanksReply));
                return State::Idle;
            }
            None => {}
        }
        // "帮我看下有哪些服务能开": the catalog is asked about, no service asked for.
        if self.asks_about_catalog(text) {
            tracing::info!("a question about the catalog; answered with its list");
            t.say.push(self.services(""));
            return State::Idle;
        }
        // "电子发票开通要收费吗": a question about a service, with no customer and no request
        // words, is answered as one; it starts no form.
        if let Some(state) = self.info_question(text, t) {
            return state;
        }
        // Several requests in one message: each reads its values from its own clauses, the
        // plan is read back once, and they are filled in order.
        let reading = crate::dialog::reading::read(
            self.catalog,
            self.matcher,
            &self.tuning().reading,
            &self.tuning().slots,
            text,
        );
        // "开个电子发票额不对是物流追踪" (one clause, no spaces): the correction is what is
        // wanted, and the person hears which one was dropped. Where the reading found several
        // requests, it has applied the corrections clause by clause already.
        if reading.plan.len() < 2
            && let Some((dropped, wanted)) = self.matcher.corrected(text)
        {
            let dropped = crate::dialog::reading::Dropped {
                service: dropped,
                instead: Some(wanted),
            };
            self.say_dropped(&[dropped], wanted, t);
            return self.start(wanted, text, None, t);
        }
        // Words for a customer that named no service are never dropped without a word.
        for said in &reading.unread {
            t.say
                .push(self.m().render(MessageKey::UnreadPart, &[("text", said)]));
        }
        let planned: Vec<ServiceId> = reading.plan.iter().map(|p| p.service).collect();
        self.answer_questions(&reading.questions, &planned, t);
        if reading.plan.len() > 1 {
            return self.plan(reading, t);
        }
        if let (Some(only), false) = (
            reading.plan.first(),
            reading.dropped.is_empty() && reading.unread.is_empty(),
        ) {
            // "电子发票和物流追踪 电子发票先别开了" or "A 哦不 B": one request is left.
            self.say_dropped(&reading.dropped, only.service, t);
            return self.start_or_dequeue(only.service, &only.text, only.account.clone(), t);
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
            Verdict::Service(id) => self.start_or_dequeue(id, text, None, t),
            // "合单太多" right after "回复「继续」": a close call one of whose options is the
            // request waiting first is that request.
            Verdict::Ambiguous(options)
                if t.queue
                    .first()
                    .is_some_and(|q| q.parked.is_none() && options.contains(&q.service)) =>
            {
                let id = t.queue[0].service;
                self.start_or_dequeue(id, text, None, t)
            }
            Verdict::Ambiguous(options) => {
                // The options are numbered by the channel (text) or shown as buttons (cards).
                t.say.push(
                    self.m()
                        .render(MessageKey::ChooseCandidates, &[("candidates", "")])
                        .trim_end(),
                );
                self.offer(&options, &mut t.say);
                State::Choosing {
                    options,
                    text: text.to_owned(),
                }
            }
            // "客户要盯发货时效" right after "回复「继续」开始办理": words that only explain are
            // the queued request's, which starts with them.
            Verdict::Nothing
                if t.queue
                    .first()
                    .is_some_and(|q| q.parked.is_none() && self.only_explains(q.service, text)) =>
            {
                let next = t.queue.remove(0);
                self.start_queued_with_answer(next, text, t)
            }
            Verdict::Nothing => {
                t.say.push(self.m().get(MessageKey::NothingMatched));
                State::Idle
            }
        }
    }

    /// Starts `id`; when it is queued already (named in an earlier message's plan), the queued
    /// request is the one started, with its own words and account, and is no longer queued: a
    /// request is never offered again after it was filed.
    fn start_or_dequeue(
        &self,
        id: ServiceId,
        text: &str,
        account: Option<String>,
        t: &mut Turn,
    ) -> State {
        let Some(at) = t
            .queue
            .iter()
            .position(|q| q.service == id && q.parked.is_none())
        else {
            return self.start(id, text, account, t);
        };
        let queued = t.queue.remove(at);
        // Only a reason ("客户要盯发货时效", understood as the queued service): the request
        // starts with its own words and the reason answers it.
        if self.only_explains(id, text) {
            return self.start_queued_with_answer(queued, text, t);
        }
        let words = match queued.text {
            Some(own) => format!("{own} {text}"),
            None => text.to_owned(),
        };
        tracing::info!(service = %id, "a queued request named again: started from the queue");
        self.start(id, &words, account.or(queued.account), t)
    }

    /// Starts a queued request with its own words, then reads `text` in it as the person's
    /// next message (the reason asked, or a new reason offered at the summary).
    fn start_queued_with_answer(&self, next: Queued, text: &str, t: &mut Turn) -> State {
        match self.start_queued(next, t) {
            State::Filling { form } => {
                // The question the words answer is not shown: the next one follows them.
                if let Step::Ask(key) = &form.step
                    && let Some(f) = self.service(&form).and_then(|s| s.field(key))
                    && t.say.parts.last() == Some(&f.spec.render_prompt())
                {
                    t.say.parts.pop();
                }
                self.filling(form, text, None, t)
            }
            other => other,
        }
    }

    /// Whether `text` only explains why a request of `service` is wanted (no question, no
    /// value, no service): the reason the person gives before 「继续」.
    pub(super) fn only_explains(&self, service: ServiceId, text: &str) -> bool {
        let Some(s) = self.catalog.service(service) else {
            return false;
        };
        let found = self.extract(s, text);
        found.answers.is_empty()
            && crate::dialog::slots::explanation(s, &self.tuning().slots, text, &found).is_some_and(
                |e| {
                    let bare = |s: &str| -> String {
                        fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
                    };
                    bare(&e) == bare(text)
                },
            )
    }

    /// Reads the plan back ("我理解为 2 份申请: ① …"), queues all but the first with their own
    /// text and account, and starts the first.
    fn plan(&self, reading: crate::dialog::reading::Reading, t: &mut Turn) -> State {
        const MARKS: [&str; 9] = ["①", "②", "③", "④", "⑤", "⑥", "⑦", "⑧", "⑨"];
        let items = reading
            .plan
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let mark = MARKS
                    .get(i)
                    .map_or_else(|| format!("{}.", i + 1), |m| (*m).to_owned());
                let account = p
                    .account
                    .as_deref()
                    .map(|a| format!("{a} "))
                    .unwrap_or_default();
                Some(format!(
                    "{mark} {account}{}",
                    self.service_label(p.service)?
                ))
            })
            .collect::<Vec<_>>()
            .join("\n");
        t.say.push(self.m().render(
            MessageKey::PlanReadBack,
            &[
                ("count", &reading.plan.len().to_string()),
                ("items", &items),
            ],
        ));
        let mut plan = reading.plan.into_iter();
        let Some(first) = plan.next() else {
            return State::Idle;
        };
        self.say_dropped(&reading.dropped, first.service, t);
        t.queue.splice(
            0..0,
            plan.map(|p| Queued {
                service: p.service,
                account: p.account,
                text: Some(p.text),
                parked: None,
            }),
        );
        self.start(first.service, &first.text, first.account, t)
    }

    /// "#6 物流追踪": a service as the person reads it in lists.
    fn service_label(&self, id: ServiceId) -> Option<String> {
        let s = self.catalog.service(id)?;
        Some(format!("#{} {}", s.id, s.name))
    }

    /// The queued requests as the person reads them: "「#6 物流追踪」(账号 a_1)、…".
    fn queued_names(&self, queue: &[Queued]) -> String {
        queue
            .iter()
            .filter_map(|q| {
                let account = q
                    .account
                    .as_deref()
                    .map(|a| format!("(账号 {a})"))
                    .unwrap_or_default();
                Some(format!("「{}」{account}", self.service_label(q.service)?))
            })
            .collect::<Vec<_>>()
            .join("、")
    }

    /// A queued request starts with the words that asked for it.
    fn start_queued(&self, next: Queued, t: &mut Turn) -> State {
        // A form put aside for its file goes on where it stood (to its summary when the file
        // came meanwhile).
        if let Some(form) = next.parked {
            let name = self.service_label(form.service).unwrap_or_default();
            t.say.push(
                self.m()
                    .render(MessageKey::ParkedResumed, &[("name", &name)]),
            );
            return self.advance(*form, t);
        }
        let text = next.text.unwrap_or_default();
        self.start(next.service, &text, next.account, t)
    }

    /// Whether `text` asks what the catalog holds ("有哪些服务能开"; `[reading]
    /// catalog_questions`).
    fn asks_about_catalog(&self, text: &str) -> bool {
        let folded = fold(text);
        self.tuning()
            .reading
            .catalog_questions
            .iter()
            .any(|q| folded.contains(q.as_str()))
    }

    /// A question about a service ("多少钱", "有什么区别", "会影响…吗"): said to be one the bot
    /// cannot answer, with how to ask for the service instead. `None` when the message also
    /// names a customer or asks for something outright ("帮 a_1 开…").
    fn info_question(&self, text: &str, t: &mut Turn) -> Option<State> {
        if !self.matcher.asks_about(text) {
            return None;
        }
        let ranked = self.matcher.rank(text);
        let name = match self.matcher.verdict(&ranked) {
            Verdict::Service(id) => self.service_label(id),
            _ => None,
        };
        tracing::info!(named = ?name, "a question about a service, not a request");
        t.say.push(match &name {
            Some(name) => self
                .m()
                .render(MessageKey::InfoQuestionAbout, &[("name", name)]),
            None => self.m().get(MessageKey::InfoQuestion).to_owned(),
        });
        Some(State::Idle)
    }

    /// Questions asked on the way to a request: "多久能好" gets the service's schedule, any
    /// other is said back as one the bot cannot answer, so it is never silently dropped.
    fn answer_questions(&self, questions: &[String], planned: &[ServiceId], t: &mut Turn) {
        let mut services: Vec<&Service> = Vec::new();
        for p in planned.iter().filter_map(|id| self.catalog.service(*id)) {
            if !services.iter().any(|o| o.id == p.id) {
                services.push(p);
            }
        }
        let Some(s) = services.first().copied() else {
            return;
        };
        let when_words = &self.tuning().reading.when_questions;
        let window = self.window_text(s, t.now);
        let warning_words = &self.tuning().reading.warning_questions;
        for q in questions {
            // "有风险吗", "能试用吗": the seed's warnings for the service are the answer.
            if warning_words.iter().any(|w| q.contains(w.as_str())) {
                // Every planned service's warnings, each under its name when there are several.
                let several = services.len() > 1;
                let warnings: String = services
                    .iter()
                    .flat_map(|p| {
                        p.warnings.iter().map(move |w| {
                            if several {
                                format!("\n· {}: {w}", p.name)
                            } else {
                                format!("\n· {w}")
                            }
                        })
                    })
                    .collect();
                let names: Vec<&str> = services.iter().map(|p| p.name.as_str()).collect();
                let said = if warnings.is_empty() {
                    self.m().render(
                        MessageKey::InlineNoWarnings,
                        &[("text", q), ("name", &names.join("」「"))],
                    )
                } else {
                    self.m().render(
                        MessageKey::InlineWarnings,
                        &[("text", q), ("warnings", &warnings)],
                    )
                };
                t.say.push(said);
                continue;
            }
            let key = if when_words.iter().any(|w| q.contains(w.as_str())) {
                MessageKey::InlineWhen
            } else {
                MessageKey::InlineQuestion
            };
            t.say.push(
                self.m()
                    .render(key, &[("text", q), ("name", &s.name), ("window", &window)]),
            );
        }
    }

    /// Says which services the message named and then corrected away or took back.
    /// Says what the message took back: each corrected service with the one it became, or
    /// (withdrawn) with `wanted`, the request that goes ahead.
    fn say_dropped(
        &self,
        dropped: &[crate::dialog::reading::Dropped],
        wanted: ServiceId,
        t: &mut Turn,
    ) {
        for d in dropped {
            let (Some(name), Some(instead)) = (
                self.service_label(d.service),
                self.service_label(d.instead.unwrap_or(wanted)),
            ) else {
                continue;
            };
            t.say.push(self.m().render(
                MessageKey::CorrectionTaken,
                &[("dropped", &name), ("wanted", &instead)],
            ));
        }
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

    /// The services to choose from as options; one whose name another service shares (#5 and
    /// #47 支付宝数据透视) is told apart by who handles it, named before the service.
    fn offer(&self, ids: &[ServiceId], say: &mut Say) {
        say.options = ids
            .iter()
            .filter_map(|id| self.catalog.service(*id))
            .map(|s| {
                let shared = self
                    .catalog
                    .services()
                    .any(|o| o.id != s.id && o.name == s.name);
                let label = if shared {
                    self.m().render(
                        MessageKey::ChoiceLabelHandler,
                        &[
                            ("id", &s.id.to_string()),
                            ("handler", &s.handler_label(self.m())),
                            ("name", &s.name),
                        ],
                    )
                } else {
                    format!("#{} {}", s.id, s.name)
                };
                ChoiceOption {
                    key: format!("#{}", s.id),
                    label,
                }
            })
            .collect();
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

#[cfg(test)]
mod tests {
    //! The engine on the shipped catalog, one turn at a time, with no store or channel.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::Catalog;
    use crate::dialog::understand::Matcher;
    use crate::requests::BatchSchedule;

    struct Fixture {
        catalog: Catalog,
        matcher: Matcher,
        schedule: BatchSchedule,
    }

    fn fixture() -> Fixture {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        let catalog = Catalog::load(&dir).expect("the shipped catalog");
        let matcher = Matcher::new(&catalog, Tuning::load(&dir).expect("understanding.toml"));
        Fixture {
            catalog,
            matcher,
            schedule: BatchSchedule::default(),
        }
    }

    impl Fixture {
        fn engine(&self) -> Engine<'_> {
            Engine {
                catalog: &self.catalog,
                matcher: &self.matcher,
                schedule: &self.schedule,
                in_group: false,
                meaning: None,
            }
        }

        /// Sends `lines` one after another from `session`; the last turn's outcome.
        fn say(&self, mut session: Session, lines: &[&str]) -> Outcome {
            let mut last = None;
            for line in lines {
                let outcome = self.engine().turn(
                    session,
                    false,
                    &Content::Text((*line).to_owned()),
                    Utc::now(),
                );
                session = outcome.session.clone();
                last = Some(outcome);
            }
            last.expect("at least one line")
        }

        fn send_file(&self, session: Session, name: &str) -> Outcome {
            self.engine().turn(
                session,
                false,
                &Content::Attachment(crate::domain::Attachment {
                    kind: crate::domain::AttachmentKind::File,
                    source: crate::domain::MediaSource::MediaId("m-1".into()),
                    file_name: Some(name.into()),
                }),
                Utc::now(),
            )
        }
    }

    fn text(reply: &Reply) -> String {
        match reply {
            Reply::Text(text) | Reply::Choices { text, .. } => text.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn resume_with_nothing_queued_says_so_instead_of_searching_for_a_service() {
        let f = fixture();
        let m = f.catalog.messages();
        let filed = f.say(
            Session::default(),
            &["电子发票 账号 fp_resume", "客户要开票报销", "确认"],
        );
        assert!(filed.file.is_some(), "{:?}", filed.reply);
        assert!(filed.session.queue.is_empty());
        for word in ["继续", "下一个"] {
            let reply = text(&f.say(filed.session.clone(), &[word]).reply);
            assert_eq!(reply, m.get(MessageKey::NothingQueued), "{word}");
            assert!(
                !reply.contains(m.get(MessageKey::NothingMatched)),
                "{reply}"
            );
        }
        // With something queued, 继续 still starts it.
        let mut queued = filed.session.clone();
        queued.queue.push(Queued {
            service: ServiceId(6),
            account: None,
            text: None,
            parked: None,
        });
        for word in ["继续", "1", "好的", "嗯"] {
            let next = f.say(queued.clone(), &[word]);
            assert!(
                matches!(&next.session.state, State::Filling { form } if form.service == ServiceId(6)),
                "{word}: {:?}",
                next.reply
            );
        }
        // With nothing queued, "1" and "好的" start nothing.
        for word in ["1", "好的"] {
            let idle = f.say(filed.session.clone(), &[word]);
            assert!(matches!(idle.session.state, State::Idle), "{word}");
        }
    }

    #[test]
    fn a_plain_yes_confirms_what_can_be_undone_and_not_what_cannot() {
        let f = fixture();
        let filed = f.say(
            Session::default(),
            &["物流追踪 账号 wl_yes1", "客户要看物流轨迹", "好的"],
        );
        assert!(filed.file.is_some(), "{:?}", filed.reply);
        // 电子发票 cannot be undone: 好的 is not enough, the person hears why, 确认 files.
        let held = f.say(
            Session::default(),
            &["电子发票 账号 fp_yes1", "客户要开票报销", "好的"],
        );
        assert!(held.file.is_none(), "{:?}", held.reply);
        assert!(text(&held.reply).contains("无法撤回"), "{:?}", held.reply);
        let filed = f.say(held.session, &["确认"]);
        assert!(filed.file.is_some(), "{:?}", filed.reply);
    }

    #[test]
    fn several_requests_in_one_line_each_keep_their_own_values() {
        let f = fixture();
        let started = f.say(
            Session::default(),
            &["赠品策略上限调到2000 订单合并上限调到100 账号 hz_plan1"],
        );
        let State::Filling { form } = &started.session.state else {
            panic!("a form: {:?}", started.reply);
        };
        assert_eq!(form.service, ServiceId(33));
        let amount = form.answers.iter().find_map(|(_, v)| match v {
            FieldValue::Integer(n) => Some(*n),
            _ => None,
        });
        assert_eq!(amount, Some(2000), "{:?}", started.reply);
        assert!(
            text(&started.reply).contains("2 份申请"),
            "{:?}",
            started.reply
        );
        let queued = &started.session.queue;
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].service, ServiceId(50));
        assert_eq!(queued[0].account.as_deref(), Some("hz_plan1"));
        assert!(
            queued[0]
                .text
                .as_deref()
                .is_some_and(|t| t.contains("100") && !t.contains("2000")),
            "{queued:?}"
        );
    }

    #[test]
    fn a_correction_or_withdrawal_standing_alone_between_spaces_drops_the_service_before_it() {
        // Found trying the bot: "ab_c3 电子发票 哦不 物流追踪" planned both and started the
        // irreversible 电子发票.
        let f = fixture();
        for line in [
            "ab_c3 电子发票 哦不 物流追踪",
            "ab_c3 电子发票 不对 物流追踪",
            "ab_c3 电子发票 先别开了 物流追踪",
        ] {
            let started = f.say(Session::default(), &[line]);
            assert!(
                matches!(&started.session.state, State::Filling { form } if form.service == ServiceId(6)),
                "{line}: {:?}",
                started.reply
            );
            assert!(
                started.session.queue.is_empty(),
                "{line}: {:?}",
                started.session.queue
            );
            assert!(
                text(&started.reply).contains("ab_c3"),
                "{line}: {:?}",
                started.reply
            );
        }
    }

    #[test]
    fn the_forms_own_service_disowned_at_a_prompt_starts_the_meant_one_with_the_same_account() {
        // From the conversation suite: "搞错了 不是电子发票 是…" at the reason prompt became the
        // reason, and the irreversible 电子发票 was filed.
        let f = fixture();
        let moved = f.say(
            Session::default(),
            &[
                "帮tb_dis01开电子发票",
                "啊等下 搞错了 不是电子发票 是物流追踪",
            ],
        );
        let State::Filling { form } = &moved.session.state else {
            panic!("a form: {:?}", moved.reply);
        };
        assert_eq!(form.service, ServiceId(6), "{:?}", moved.reply);
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "tb_dis01"),
            "{:?}",
            form.answers
        );
        assert!(text(&moved.reply).contains("电子发票"), "{:?}", moved.reply);
        // Disowned with nothing else said: nothing is filed and the person is asked what instead.
        let dropped = f.say(
            Session::default(),
            &["帮tb_dis02开电子发票", "不要电子发票了"],
        );
        assert!(
            matches!(dropped.session.state, State::Idle),
            "{:?}",
            dropped.reply
        );
        assert!(dropped.file.is_none());
        // The service's own name in a reason is no disowning.
        let kept = f.say(
            Session::default(),
            &["帮tb_dis03开电子发票", "客户要开电子发票报销"],
        );
        assert!(
            matches!(&kept.session.state, State::Filling { form } if form.service == ServiceId(7)),
            "{:?}",
            kept.reply
        );
    }

    #[test]
    fn a_yes_no_corrected_in_its_own_words_at_a_later_question_changes_that_answer() {
        // "不是" answered 是否多仓 by mistake; at the next question "打错了 是多仓的" mends it.
        let f = fixture();
        let mended = f.say(
            Session::default(),
            &["sz_mend8 自流转订单多仓情况开通", "不是", "打错了 是多仓的"],
        );
        let State::Filling { form } = &mended.session.state else {
            panic!("a form: {:?}", mended.reply);
        };
        let multi = form
            .answers
            .iter()
            .find(|(k, _)| k.as_str() == "is_multi_warehouse")
            .map(|(_, v)| v.clone());
        assert_eq!(multi, Some(FieldValue::Bool(true)), "{:?}", mended.reply);
        assert!(
            text(&mended.reply).contains("是否多仓"),
            "{:?}",
            mended.reply
        );
    }

    #[test]
    fn a_detail_the_seed_does_not_ask_for_is_kept_when_given_and_never_asked() {
        let f = fixture();
        let asked = f.say(
            Session::default(),
            &["按货品属性拆分上限调到300 账号 cf_ask1"],
        );
        assert!(
            !text(&asked.reply).contains("拆分类型"),
            "{:?}",
            asked.reply
        );
        let given = f.say(
            Session::default(),
            &["按货品属性拆分上限 单品全拆分 调到300 账号 cf_ask2"],
        );
        let State::Filling { form } = &given.session.state else {
            panic!("a form: {:?}", given.reply);
        };
        assert!(
            form.answers.keys().any(|k| k.as_str() == "split_kinds"),
            "{:?}",
            form.answers
        );
    }

    #[test]
    fn a_clause_that_describes_its_service_after_a_connective_is_a_request_of_its_own() {
        let f = fixture();
        let started = f.say(
            Session::default(),
            &["给mxw_d1开定制功能 多次购买查询，另外mxw_d2报表日期要能查超过32天"],
        );
        let State::Filling { form } = &started.session.state else {
            panic!("a form: {:?}", started.reply);
        };
        assert_eq!(form.service, ServiceId(9), "{:?}", started.reply);
        let queued = &started.session.queue;
        assert_eq!(queued.len(), 1, "{:?}", started.reply);
        assert_eq!(queued[0].service, ServiceId(84));
        assert_eq!(queued[0].account.as_deref(), Some("mxw_d2"));
    }

    #[test]
    fn surprises_from_trying_it_as_a_hurried_salesperson() {
        let f = fixture();
        // A service named in full at the which-one question is the one meant, with the account.
        let picked = f.say(
            Session::default(),
            &[
                "cd_pet12 开下支付宝数据透视",
                "哦不对 不要这个 是新版支付宝账单",
            ],
        );
        let State::Filling { form } = &picked.session.state else {
            panic!("a form: {:?}", picked.reply);
        };
        assert_eq!(form.service, ServiceId(40), "{:?}", picked.reply);
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "cd_pet12")
        );
        // Each customer's words go to their own request; the account before a service named
        // later in the clause is that request's.
        let two = f.say(
            Session::default(),
            &["gz_shelf 货位调整货区 仓库重新规划货区，sy_med2 采购开单增加批次有效期"],
        );
        let State::Filling { form } = &two.session.state else {
            panic!("a form: {:?}", two.reply);
        };
        assert_eq!(form.service, ServiceId(67));
        assert_eq!(two.session.queue.len(), 1, "{:?}", two.reply);
        assert_eq!(two.session.queue[0].account.as_deref(), Some("sy_med2"));
        // "哦第二个账号写错了": the queued request's account is mended, not this form's.
        let mended = f.say(two.session.clone(), &["哦第二个账号写错了 是sy_med02"]);
        assert_eq!(
            mended.session.queue[0].account.as_deref(),
            Some("sy_med02"),
            "{:?}",
            mended.reply
        );
        let State::Filling { form } = &mended.session.state else {
            panic!("a form: {:?}", mended.reply);
        };
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "gz_shelf")
        );
        // A customer's words that describe another service before the next customer's request.
        let described = f.say(
            Session::default(),
            &["cz_lamp 滞销分析要查60天的 nt_textile开子母单展示子单货品明细"],
        );
        let State::Filling { form } = &described.session.state else {
            panic!("a form: {:?}", described.reply);
        };
        assert_eq!(form.service, ServiceId(82), "{:?}", described.reply);
        assert!(form.answers.values().any(|v| v.display(false) == "cz_lamp"));
        assert_eq!(described.session.queue.len(), 1);
        assert_eq!(described.session.queue[0].service, ServiceId(81));
        assert_eq!(
            described.session.queue[0].account.as_deref(),
            Some("nt_textile")
        );
        // A mistyped account mended without the word 账号 at a free-text question.
        let typo = f.say(
            Session::default(),
            &["lyf_stroe 开物流追踪", "不对不对 是lyf_store 打错了"],
        );
        let State::Filling { form } = &typo.session.state else {
            panic!("a form: {:?}", typo.reply);
        };
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "lyf_store"),
            "{:?}",
            typo.reply
        );
        // A named service whose name a more specific candidate holds, with the specific
        // words said, is the specific one; the plain one after 再开 is its own request.
        let two = f.say(
            Session::default(),
            &["yw_xsp1 开个韵达的物流追踪 再开个普通的物流追踪"],
        );
        let State::Filling { form } = &two.session.state else {
            panic!("a form: {:?}", two.reply);
        };
        assert_eq!(form.service, ServiceId(64), "{:?}", two.reply);
        assert_eq!(two.session.queue.len(), 1, "{:?}", two.reply);
        assert_eq!(two.session.queue[0].service, ServiceId(6));
        // A clause after a request that only explains is no request of its own.
        for line in [
            "帮 hz_ex1 开物流追踪，另外客户说包裹太多查不过来",
            "订单合并上限调到150 账号 yw_ex2 然后客户大促单量大",
        ] {
            let one = f.say(Session::default(), &[line]);
            assert!(one.session.queue.is_empty(), "{line}: {:?}", one.reply);
        }
        // Chinese words after a comma are no second customer's account.
        let one = f.say(Session::default(), &["电子发票 账号 a_11，还有物流那个"]);
        assert!(one.session.queue.is_empty(), "{:?}", one.reply);
        assert!(
            !text(&one.reply).contains("还提到了账号"),
            "{:?}",
            one.reply
        );
        // A cancel word after other words cancels.
        for line in ["算了 取消", "不是韵达了 取消"] {
            let cancelled = f.say(Session::default(), &["nb_auto5 开韵达物流追踪", line]);
            assert!(
                matches!(cancelled.session.state, State::Idle),
                "{line}: {:?}",
                cancelled.reply
            );
        }
    }

    #[test]
    fn a_file_that_comes_later_is_asked_after_the_rest_and_never_skipped() {
        // Found trying the bot: 稍后 / 等下发 at the 免责声明 question looped on "send a file".
        let f = fixture();
        let later = f.say(
            Session::default(),
            &["gz_file1 取消手机号导出模糊化", "等下发 客户还没盖章"],
        );
        assert!(text(&later.reply).contains("申请原因"), "{:?}", later.reply);
        let State::Filling { form } = &later.session.state else {
            panic!("a form: {:?}", later.reply);
        };
        assert_eq!(form.deferred.len(), 1);
        // Everything else answered: the file is asked again, not the summary.
        let again = f.say(later.session.clone(), &["客户导出单据要给快递对账"]);
        assert!(text(&again.reply).contains("免责声明"), "{:?}", again.reply);
        assert!(!text(&again.reply).contains("请核对"), "{:?}", again.reply);
        let still = f.say(again.session, &["稍后"]);
        assert!(matches!(still.session.state, State::Filling { .. }));
        assert!(still.file.is_none());
    }

    #[test]
    fn options_that_share_a_name_are_told_apart_by_their_handler_first() {
        let f = fixture();
        let outcome = f.say(Session::default(), &["支付宝数据透视"]);
        let Reply::Choices { options, .. } = &outcome.reply else {
            panic!("a choice: {:?}", outcome.reply);
        };
        let labels: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(
            labels,
            ["#5 产研 支付宝数据透视", "#47 职能组 支付宝数据透视"]
        );
        // Card buttons show 10 characters: still different.
        let clipped: Vec<String> = labels
            .iter()
            .map(|l| l.chars().take(10).collect())
            .collect();
        assert_ne!(clipped[0], clipped[1]);
        assert_eq!(options[0].key, "#5");
        // A name no other service has keeps the plain label.
        let outcome = f.say(Session::default(), &["查一下标签"]);
        if let Reply::Choices { options, .. } = &outcome.reply {
            for o in options {
                let id: u16 = o.key.trim_start_matches('#').parse().unwrap();
                let s = f.catalog.service(ServiceId(id)).unwrap();
                if f.catalog
                    .services()
                    .all(|x| x.id == s.id || x.name != s.name)
                {
                    assert_eq!(o.label, format!("#{} {}", s.id, s.name));
                }
            }
        }
    }

    #[test]
    fn a_related_service_named_mid_form_is_never_offered_as_a_switch() {
        let f = fixture();
        let started = f.say(Session::default(), &["#5"]);
        assert!(
            matches!(&started.session.state, State::Filling { form } if form.service == ServiceId(5)),
            "{:?}",
            started.reply
        );
        let outcome = f.say(started.session, &["客户要看支付宝数据"]);
        assert!(
            matches!(&outcome.session.state, State::Filling { form } if form.service == ServiceId(5)),
            "no switch to #47: {:?}",
            outcome.reply
        );
        assert!(!text(&outcome.reply).contains("#47"), "{:?}", outcome.reply);
        // Every near-duplicate pair: naming the other one at the first question is no switch.
        for s in f.catalog.services().filter(|s| !s.related.is_empty()) {
            let started = f.say(Session::default(), &[&format!("#{}", s.id)]);
            if !matches!(started.session.state, State::Filling { .. }) {
                continue;
            }
            for r in &s.related {
                let name = &f.catalog.service(*r).unwrap().name;
                let outcome = f.say(started.session.clone(), &[&format!("客户要开{name}")]);
                assert!(
                    !matches!(&outcome.session.state, State::ConfirmSwitch { target, .. } if s.related.contains(target)),
                    "#{} offered a switch to its related #{r}: {:?}",
                    s.id,
                    outcome.reply
                );
            }
        }
    }

    #[test]
    fn a_mobile_customer_after_a_connective_never_takes_the_first_customers_account() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["nb_outdoor要开批量拆分订单 原因导入订单要拆 还有15990123876要开订单合并上限调到150"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert_eq!(form.service, ServiceId(50), "{:?}", out.reply);
        // The words nobody could place are said back, and nb_outdoor goes nowhere.
        assert!(
            text(&out.reply).contains("nb_outdoor要开批量拆分订单"),
            "{:?}",
            out.reply
        );
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false) == "nb_outdoor"),
            "{:?}",
            form.answers
        );
        // The mobile number is asked about, not filled.
        assert!(
            text(&out.reply).contains("15990123876 吗"),
            "{:?}",
            out.reply
        );
    }

    #[test]
    fn a_value_corrected_later_in_a_two_request_line_keeps_both_requests() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["赠品策略上限调到2000 订单合并上限100 不对 合并的要120 账号 abc_shop1"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert_eq!(form.service, ServiceId(33), "{:?}", out.reply);
        assert!(form.answers.values().any(|v| v.display(false) == "2000"));
        assert_eq!(out.session.queue.len(), 1, "{:?}", out.reply);
        assert_eq!(out.session.queue[0].service, ServiceId(50));
    }

    #[test]
    fn prose_after_its_label_is_taken_up_to_a_correction_and_never_a_promise() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["yw_socks订单合并上限调到120 原因大促合并单太多 哦不对 要160"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(shown.contains(&"160".to_owned()), "{shown:?}");
        assert!(shown.contains(&"大促合并单太多".to_owned()), "{shown:?}");
        let later = f.say(
            Session::default(),
            &["yw_socks订单合并上限调到120 原因等下发你"],
        );
        let State::Filling { form } = &later.session.state else {
            panic!("a form: {:?}", later.reply);
        };
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false).contains("发你")),
            "{:?}",
            form.answers
        );
    }

    #[test]
    fn a_withdrawal_naming_a_service_at_a_free_text_question_is_never_the_answer() {
        let f = fixture();
        let two = f.say(Session::default(), &["sz_baby88 开超期订单预警和物流追踪"]);
        assert_eq!(two.session.queue.len(), 1, "{:?}", two.reply);
        // The form's own service: dropped, and the queued one starts with its account.
        let own = f.say(two.session.clone(), &["超期订单预警不要了"]);
        let State::Filling { form } = &own.session.state else {
            panic!("the queued form: {:?}", own.reply);
        };
        assert_eq!(form.service, ServiceId(6), "{:?}", own.reply);
        assert!(own.session.queue.is_empty());
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false).contains("不要"))
        );
        // A queued service: out of the queue, the form being filled stays as it was.
        let queued = f.say(two.session, &["物流追踪先不要了"]);
        let State::Filling { form } = &queued.session.state else {
            panic!("the same form: {:?}", queued.reply);
        };
        assert_eq!(form.service, ServiceId(48), "{:?}", queued.reply);
        assert!(queued.session.queue.is_empty(), "{:?}", queued.reply);
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false).contains("不要"))
        );
    }

    #[test]
    fn codes_and_nicknames_are_read_as_what_they_are() {
        let f = fixture();
        // A warehouse code glued to its label is no second customer; it is asked about.
        let out = f.say(
            Session::default(),
            &["部分发货销退原单 仓库WH_ZZ1 账号ab_shop"],
        );
        assert!(out.session.queue.is_empty(), "{:?}", out.reply);
        assert!(!text(&out.reply).contains("接着办"), "{:?}", out.reply);
        // Platform nicknames standing alone are the platforms.
        let out = f.say(Session::default(), &["多包裹 tb和pdd都要 账号wdt_bg02"]);
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "淘宝、拼多多"),
            "{:?}",
            form.answers
        );
        // A bare withdrawal at the reason question takes the form back; it is no reason.
        let out = f.say(
            Session::default(),
            &["帮sx_tea开物流追踪", "客户说先不开了"],
        );
        assert!(matches!(out.session.state, State::Idle), "{:?}", out.reply);
    }

    #[test]
    fn a_question_on_the_way_is_answered_and_never_a_value() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["lyf_store 电子发票 原因客户要开票, 这个多久能好?"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert_eq!(form.service, ServiceId(7), "{:?}", out.reply);
        let said = text(&out.reply);
        assert!(said.contains("关于「这个多久能好」"), "{said}");
        assert!(said.contains("17:30"), "{said}");
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false).contains("多久")),
            "{:?}",
            form.answers
        );
        // A question the bot cannot answer is said back, not dropped.
        let out = f.say(
            Session::default(),
            &["lyf_store 电子发票 原因客户要开票, 税点是几个点呢"],
        );
        assert!(
            text(&out.reply).contains("税点是几个点呢"),
            "{:?}",
            out.reply
        );
    }

    #[test]
    fn a_form_waiting_for_its_file_is_put_aside_for_the_next_request_and_takes_the_file_later() {
        let f = fixture();
        let first = f.say(
            Session::default(),
            &["yw_socks 订单合并上限调到150 原因大促单量太多 还有电子发票 原因客户要开票"],
        );
        let State::Filling { form } = &first.session.state else {
            panic!("a form: {:?}", first.reply);
        };
        assert_eq!(form.service, ServiceId(50), "{:?}", first.reply);
        // Only the disclaimer is left: the next request starts, this one waits for its file.
        let aside = f.say(first.session, &["先办第二个吧"]);
        let State::Filling { form } = &aside.session.state else {
            panic!("the next form: {:?}", aside.reply);
        };
        assert_eq!(form.service, ServiceId(7), "{:?}", aside.reply);
        assert!(aside.session.queue[0].parked.is_some(), "{:?}", aside.reply);
        // The file sent meanwhile is kept in the waiting form; the question stays.
        let kept = f.send_file(aside.session, "免责声明_已盖章.pdf");
        assert!(text(&kept.reply).contains("收到"), "{:?}", kept.reply);
        let State::Filling { form } = &kept.session.state else {
            panic!("still the same form: {:?}", kept.reply);
        };
        assert_eq!(form.service, ServiceId(7));
        // 电子发票 filed; the waiting one comes back at its summary with the file in it.
        let filed = f.say(kept.session, &["确认"]);
        assert!(filed.file.is_some(), "{:?}", filed.reply);
        let mut session = filed.session;
        if !matches!(session.state, State::Filling { .. }) {
            session = f.say(session, &["继续"]).session;
        }
        let State::Filling { form } = &session.state else {
            panic!("the waiting form: {session:?}");
        };
        assert_eq!(form.service, ServiceId(50));
        assert_eq!(form.step, Step::Summary);
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false).contains("免责声明_已盖章"))
        );
    }

    #[test]
    fn words_that_say_why_are_offered_as_the_reason_and_taken_on_a_yes() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["hz_tea01 赠品策略上限调到2500 双十二活动赠品规则太多"],
        );
        let said = text(&out.reply);
        assert!(
            said.contains("申请原因是 双十二活动赠品规则太多 吗"),
            "{said}"
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        // Asked, never filled before the yes.
        assert!(
            !form
                .answers
                .values()
                .any(|v| v.display(false).contains("双十二"))
        );
        let yes = f.say(out.session, &["是"]);
        let State::Filling { form } = &yes.session.state else {
            panic!("the summary: {:?}", yes.reply);
        };
        assert_eq!(form.step, Step::Summary, "{:?}", yes.reply);
        assert!(
            form.answers
                .values()
                .any(|v| v.display(false) == "双十二活动赠品规则太多")
        );
        // Request words alone explain nothing; a question is no reason.
        for line in [
            "hz_tea01 赠品策略上限调到2500 麻烦帮忙开一下",
            "hz_tea01 赠品策略上限调到2500 今天能好吗",
        ] {
            let out = f.say(Session::default(), &[line]);
            assert!(
                !text(&out.reply).contains("申请原因是"),
                "{line}: {:?}",
                out.reply
            );
        }
    }

    #[test]
    fn a_group_word_for_a_form_that_went_private_is_pointed_there() {
        let f = fixture();
        let moved = Session {
            state: State::MovedToPrivate {
                service: ServiceId(54),
            },
            ..Session::default()
        };
        for line in ["等下发", "确认"] {
            let out = f.say(moved.clone(), &[line]);
            assert!(text(&out.reply).contains("私聊"), "{line}: {:?}", out.reply);
            assert!(
                matches!(out.session.state, State::MovedToPrivate { .. }),
                "{line}"
            );
        }
        // A new request in the group starts as usual.
        let out = f.say(moved, &["电子发票 账号 grp_a1"]);
        assert!(
            matches!(&out.session.state, State::Filling { form } if form.service == ServiceId(7)),
            "{:?}",
            out.reply
        );
    }

    #[test]
    fn surprises_from_the_second_seed_only_trial() {
        let f = fixture();
        // A particle after an account is no part of it.
        let out = f.say(Session::default(), &["物流追踪", "账号是wh_toys哈"]);
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert!(
            form.answers.values().any(|v| v.display(false) == "wh_toys"),
            "{:?}",
            form.answers
        );
        // "账号写错 是X" at the reason offer corrects the account; it is no reason.
        let out = f.say(
            Session::default(),
            &[
                "批量自动合并上限调到150 账号 xa_bike 大促订单太多",
                "账号写错 是xa_bike01",
            ],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(shown.contains(&"xa_bike01".to_owned()), "{shown:?}");
        assert!(!shown.iter().any(|v| v.contains("写错")), "{shown:?}");
    }

    #[test]
    fn an_edit_word_before_a_change_at_the_summary_makes_the_change() {
        let f = fixture();
        for edit in ["修改 条数改成400", "修改条数改成400"] {
            let out = f.say(
                Session::default(),
                &[
                    "异常地址条数调到300 账号bj_food 原因 异常地址太多显示不全",
                    edit,
                ],
            );
            let State::Filling { form } = &out.session.state else {
                panic!("the summary: {:?}", out.reply);
            };
            assert_eq!(form.step, Step::Summary, "{edit}: {:?}", out.reply);
            let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
            assert!(shown.contains(&"400".to_owned()), "{edit}: {shown:?}");
        }
    }

    #[test]
    fn a_shared_reason_is_for_the_requests_before_it_and_an_account_before_a_connective_is_the_next_ones()
     {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["aa_01 超期订单预警 原因都是发货经常超时 另外bb_02再开个自定义属性导出"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert_eq!(form.service, ServiceId(48), "{:?}", out.reply);
        assert_eq!(out.session.queue.len(), 1, "{:?}", out.reply);
        let next = &out.session.queue[0];
        assert_eq!(next.service, ServiceId(55));
        assert_eq!(next.account.as_deref(), Some("bb_02"));
        assert!(
            !next
                .text
                .as_deref()
                .unwrap_or_default()
                .contains("发货经常超时"),
            "{next:?}"
        );
    }

    #[test]
    fn a_bare_number_after_a_marker_corrects_the_forms_one_number_at_any_question() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &[
                "辅助单位上限调到400 账号 hf_cloth 客户货品规格多单位不够用",
                "是",
                "不对 改成450",
            ],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(
            shown.contains(&"450".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
        // Digits inside an account are no number: the account is mended, not the number.
        let out = f.say(
            Session::default(),
            &["辅助单位上限调到400 账号 hf_cloth1", "不对 是hf_cloth2"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(shown.contains(&"400".to_owned()), "{shown:?}");
        assert!(
            shown.contains(&"hf_cloth2".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
    }

    #[test]
    fn a_message_that_opens_with_its_customer_gives_each_customer_the_services_after_it() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["xx_shop1 开电子发票 物流追踪 yy_shop2 开货品摘要"],
        );
        let said = text(&out.reply);
        assert!(said.contains("xx_shop1 #6"), "{said}");
        assert!(said.contains("yy_shop2 #32"), "{said}");
        assert!(!said.contains("yy_shop2 #6"), "{said}");
    }

    #[test]
    fn a_code_corrected_after_its_label_stays_that_fields_and_a_lone_code_mends_its_like() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["平台发货自动取消指定仓库订单 mm_trade 仓库编号 CK11 改成 CK12"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(shown.contains(&"mm_trade".to_owned()), "{shown:?}");
        assert!(shown.contains(&"CK12".to_owned()), "{shown:?}");
        // At the reason question, "不对 是…" with a code written like the warehouse's.
        let out = f.say(
            Session::default(),
            &[
                "平台发货自动取消指定仓库订单 mm_trade 仓库编号 WH-HZ01",
                "不对不对 是WH-HZ05",
            ],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(
            shown.contains(&"WH-HZ05".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
        assert!(!shown.iter().any(|v| v.contains("不对")), "{shown:?}");
    }

    #[test]
    fn several_warehouse_codes_are_one_list_and_an_account_after_them_is_none_of_them() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["平台发货自动取消指定仓库订单 仓库编号 WH-NB01 WH-NB02 pp_shop9"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(shown.contains(&"WH-NB01, WH-NB02".to_owned()), "{shown:?}");
        assert!(shown.contains(&"pp_shop9".to_owned()), "{shown:?}");
    }

    #[test]
    fn a_mobile_number_listed_among_accounts_is_one_more_customer_and_commas_split_customers() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["物流追踪 给 qa_one1 qa_two2 还有 13700001111 都开下"],
        );
        let said = text(&out.reply);
        assert!(said.contains("qa_two2"), "{said}");
        assert!(said.contains("13700001111"), "{said}");
        let out = f.say(
            Session::default(),
            &["aa_one1，开电子发票，bb_two2，开货品摘要"],
        );
        let said = text(&out.reply);
        assert!(said.contains("aa_one1 #7"), "{said}");
        assert!(said.contains("bb_two2 #32"), "{said}");
    }

    #[test]
    fn a_system_named_after_a_frame_word_inside_a_verb_is_no_customer() {
        let f = fixture();
        let out = f.say(Session::default(), &["推给wms的单子不显示金额"]);
        let said = text(&out.reply);
        assert!(said.contains("#70"), "{said}");
        assert!(!said.contains("wms"), "{said}");
        assert!(said.contains("请提供客户的卖家账号"), "{said}");
    }

    #[test]
    fn a_correction_inside_a_plan_names_the_service_it_became() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["aa_shop1开电子发票 bb_shop2开物流追踪 哦不对 bb_shop2是开货品摘要"],
        );
        let said = text(&out.reply);
        assert!(said.contains("按更正办「#32"), "{said}");
        assert!(!said.contains("按更正办「#7"), "{said}");
    }

    #[test]
    fn a_question_about_the_catalog_lists_it_and_starts_no_form() {
        let f = fixture();
        for q in ["帮我看下有哪些服务能开", "你们都能开啥"] {
            let out = f.say(Session::default(), &[q]);
            assert!(
                matches!(out.session.state, State::Idle),
                "{q}: {:?}",
                out.reply
            );
            assert!(!text(&out.reply).contains("开通「"), "{q}: {:?}", out.reply);
        }
        // Asked where the reason is asked: answered, and never the reason.
        let out = f.say(
            Session::default(),
            &["gz_tea01 开个物流追踪", "有哪些服务能开"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(!shown.iter().any(|v| v.contains("服务")), "{shown:?}");
        assert!(text(&out.reply).contains("申请原因"), "{:?}", out.reply);
    }

    #[test]
    fn a_name_set_apart_from_its_label_is_taken_and_a_sentence_there_is_not() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["店铺解绑 账号hz_mall2 店铺编号P003 店铺名称 杭州小米拼多多店 平台拼多多"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(
            shown.contains(&"杭州小米拼多多店".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
        let out = f.say(
            Session::default(),
            &["店铺解绑 账号hz_mall2 店铺编号P003 店铺名称 等下问客户 平台拼多多"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(
            !shown.iter().any(|v| v.contains("等下")),
            "{shown:?} {:?}",
            out.reply
        );
    }

    #[test]
    fn values_for_other_fields_said_at_a_choice_prompt_change_them_in_any_wording() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &[
                "店铺解绑 账号hz_mall2 店铺编号T001 平台淘宝",
                "哦 搞错了 店铺编号P003 平台拼多多的",
            ],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        let shown: Vec<String> = form.answers.values().map(|v| v.display(false)).collect();
        assert!(
            shown.contains(&"P003".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
        assert!(
            shown.contains(&"拼多多".to_owned()),
            "{shown:?} {:?}",
            out.reply
        );
        // The 淘宝-only question no longer applies.
        assert!(!text(&out.reply).contains("改过名字"), "{:?}", out.reply);
    }

    #[test]
    fn ids_said_with_an_add_word_grow_the_list_and_the_request_itself_is_no_reason() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &[
                "帮忙取消几个未付款订单 账号 sy_bag 单号 TB1001 TB1002",
                "单号少写一个 还有TB1003",
            ],
        );
        let said = text(&out.reply);
        assert!(said.contains("TB1001, TB1002, TB1003"), "{said}");
        assert!(!said.contains("申请原因是 帮忙取消"), "{said}");
    }

    #[test]
    fn a_question_about_a_service_is_answered_as_one_and_starts_no_form() {
        let f = fixture();
        for q in [
            "电子发票开通要收费吗",
            "店铺利润报表和链接利润报表有什么区别",
        ] {
            let out = f.say(Session::default(), &[q]);
            assert!(
                matches!(out.session.state, State::Idle),
                "{q}: {:?}",
                out.reply
            );
            assert!(text(&out.reply).contains("咨询"), "{q}: {:?}", out.reply);
        }
        // With a customer or an outright request it is a request.
        for r in [
            "电子发票要收费吗 先帮我给 a_shop1 开了",
            "a_shop1 电子发票 收费吗 开吧",
        ] {
            let out = f.say(Session::default(), &[r]);
            assert!(
                matches!(out.session.state, State::Filling { .. }),
                "{r}: {:?}",
                out.reply
            );
        }
    }

    /// The reason the filed form holds, by the field's label.
    fn reason_filed(out: &Outcome) -> Option<String> {
        let form = out.file.as_ref()?;
        form.answers
            .iter()
            .find(|(k, _)| k.as_str() == "reason")
            .map(|(_, v)| v.display(false))
    }

    #[test]
    fn a_question_where_a_reason_is_asked_is_answered_and_never_the_reason() {
        let f = fixture();
        let asked = f.say(
            Session::default(),
            &["物流追踪 账号 wl_q1", "这个多久能好啊"],
        );
        assert!(text(&asked.reply).contains("17:30"), "{:?}", asked.reply);
        let State::Filling { form } = &asked.session.state else {
            panic!("still filling: {:?}", asked.reply);
        };
        assert!(!form.answers.keys().any(|k| k.as_str() == "reason"));
        let filed = f.say(asked.session, &["客户要看物流轨迹", "确认"]);
        assert_eq!(reason_filed(&filed).as_deref(), Some("客户要看物流轨迹"));
        // "不是 X" after a proposal: the reason is X, without the rejection.
        let filed = f.say(
            Session::default(),
            &["物流追踪 账号 wl_q2", "不是 客户要看物流轨迹", "确认"],
        );
        assert_eq!(reason_filed(&filed).as_deref(), Some("客户要看物流轨迹"));
        // "不是很清楚…" is a reason that starts so.
        let filed = f.say(
            Session::default(),
            &["物流追踪 账号 wl_q3", "不是很清楚物流到哪了", "确认"],
        );
        assert_eq!(
            reason_filed(&filed).as_deref(),
            Some("不是很清楚物流到哪了")
        );
    }

    #[test]
    fn a_new_reason_at_the_summary_is_offered_and_never_lost_or_taken_for_a_switch() {
        let f = fixture();
        let summary = f.say(
            Session::default(),
            &["物流对账统计报表 账号 dz_r1 原因是客户要对账"],
        );
        let offered = f.say(summary.session, &["客户要核对物流费用"]);
        assert!(offered.file.is_none());
        assert!(text(&offered.reply).contains("改成"), "{:?}", offered.reply);
        let changed = f.say(offered.session.clone(), &["是", "确认"]);
        assert_eq!(
            reason_filed(&changed).as_deref(),
            Some("客户要核对物流费用")
        );
        let kept = f.say(offered.session, &["否", "确认"]);
        assert_eq!(reason_filed(&kept).as_deref(), Some("客户要对账"));
    }

    #[test]
    fn a_queued_request_started_by_its_reason_leaves_the_queue() {
        let f = fixture();
        let first = f.say(
            Session::default(),
            &[
                "sh_q1 要开物流追踪和超期订单预警",
                "客户要看物流轨迹",
                "确认",
            ],
        );
        assert!(first.file.is_some(), "{:?}", first.reply);
        assert_eq!(first.session.queue.len(), 1, "{:?}", first.reply);
        // The reason typed instead of 继续 starts the queued request, with its account.
        let second = f.say(first.session, &["客户要盯发货时效"]);
        let State::Filling { form } = &second.session.state else {
            panic!("the queued form: {:?}", second.reply);
        };
        assert_eq!(form.service, ServiceId(48));
        assert!(
            second.session.queue.is_empty(),
            "{:?}",
            second.session.queue
        );
        assert!(text(&second.reply).contains("sh_q1"), "{:?}", second.reply);
    }

    #[test]
    fn talk_about_the_conversation_is_never_the_reason() {
        let f = fixture();
        for talk in [
            "点错了 是对的",
            "不对不对 按错了 没问题 提交",
            "CK003 打错了 CK030",
        ] {
            let out = f.say(Session::default(), &["物流追踪 账号 wl_t1", talk]);
            let State::Filling { form } = &out.session.state else {
                panic!("{talk}: {:?}", out.reply);
            };
            assert!(
                !form.answers.keys().any(|k| k.as_str() == "reason"),
                "{talk}: {:?}",
                form.answers
            );
            assert!(
                !text(&out.reply).contains("卖家账号」不用"),
                "{talk}: {:?}",
                out.reply
            );
        }
    }

    #[test]
    fn only_these_options_set_the_list_and_taking_one_back_keeps_the_form() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["hz_l1 开明文打印 tb jd ks 都要", "快手不要了 只要淘宝京东"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("the form stays: {:?}", out.reply);
        };
        let platforms = form
            .answers
            .iter()
            .find(|(k, _)| k.as_str() == "plaintext_platforms")
            .map(|(_, v)| v.display(false));
        assert_eq!(platforms.as_deref(), Some("淘宝、京东"), "{:?}", out.reply);
    }

    #[test]
    fn an_unoffered_platform_said_by_its_nickname_is_answered() {
        let f = fixture();
        let out = f.say(Session::default(), &["hz_l2 明文打印 pdd和tb都要"]);
        assert!(text(&out.reply).contains("拼多多"), "{:?}", out.reply);
    }

    #[test]
    fn a_yes_no_answer_after_a_correction_is_the_answer() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["wh_c1 开发货单回传SN码", "wms不支持 哦不对 点错了 是支持的"],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("not refused: {:?}", out.reply);
        };
        assert!(
            form.answers.values().any(|v| v.display(false) == "是"),
            "{:?}",
            form.answers
        );
    }

    #[test]
    fn a_why_question_at_a_number_prompt_gets_the_named_fields_help() {
        let f = fixture();
        let out = f.say(
            Session::default(),
            &["hz_w1 批量补发上限调整", "为啥要免责声明"],
        );
        assert!(text(&out.reply).contains("免责声明"), "{:?}", out.reply);
        let State::Filling { form } = &out.session.state else {
            panic!("{:?}", out.reply);
        };
        assert!(matches!(&form.step, Step::Ask(k) if k.as_str() != "disclaimer"));
    }

    #[test]
    fn surprises_from_the_fifth_seed_only_set() {
        let f = fixture();
        let shown = |out: &Outcome| -> Vec<String> {
            match &out.session.state {
                State::Filling { form } => {
                    form.answers.values().map(|v| v.display(false)).collect()
                }
                other => panic!("a form: {other:?} {:?}", out.reply),
            }
        };
        // A correction pointing at the first request by its place corrects that one's account,
        // and the words before the second customer are the first one's reason.
        let out = f.say(
            Session::default(),
            &["第一个sh_q 店铺仓库数量上限加到350 开了太多分销店 第二个gz_mb按货品属性拆分上限调到300 组合装太多拆不过来 等下第一个店写错了 是sh_q01"],
        );
        assert!(
            shown(&out).contains(&"sh_q01".to_owned()),
            "{:?}",
            out.reply
        );
        assert!(
            text(&out.reply).contains("开了太多分销店"),
            "{:?}",
            out.reply
        );
        let queued = &out.session.queue;
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(queued[0].account.as_deref(), Some("gz_mb"));
        // A number corrected with the old one written out is that number's.
        let out = f.say(
            Session::default(),
            &["同名未合并最大数量两个店都要调 wh_l调到120 cq_h调到200 原因都是同一个买家拍好几单没合上 不是120是150"],
        );
        assert!(shown(&out).contains(&"150".to_owned()), "{:?}", out.reply);
        assert!(
            out.session.queue[0]
                .text
                .as_deref()
                .is_some_and(|t| t.contains("200")),
            "{:?}",
            out.session.queue
        );
        // Cancel words one after another, then why: the form is given up, not given a reason.
        let out = f.say(
            Session::default(),
            &[
                "相同货品多行明细合并推送到外仓 账号tz_fw",
                "算了不弄了 客户说再考虑下",
            ],
        );
        assert!(matches!(out.session.state, State::Idle), "{:?}", out.reply);
        // "行 都提了吧" where a reason is asked is talk, not the reason.
        let out = f.say(
            Session::default(),
            &["zz_b 赠品策略上限1500", "行 都提了吧"],
        );
        assert!(
            !shown(&out).iter().any(|v| v.contains("提了")),
            "{:?}",
            out.reply
        );
        // "店不开了" is why a shop is unbound, not a withdrawal of the request.
        let out = f.say(
            Session::default(),
            &["yw_x1要解绑一个店 店铺编号SP0012 pdd的 店不开了 顺便开个抖店云仓 店铺编号SP0015 哦云仓那个店铺编号是SP0016"],
        );
        assert!(
            matches!(&out.session.state, State::Filling { form } if form.service == ServiceId(23)),
            "{:?}",
            out.reply
        );
        // A code's label said again restates the code; it never becomes the account.
        let queued = &out.session.queue;
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(queued[0].account.as_deref(), Some("yw_x1"), "{queued:?}");
        let out = f.say(
            Session::default(),
            &["yw_x2 开个抖店云仓 店铺编号SP0015 哦 店铺编号是SP0016"],
        );
        let values = shown(&out);
        assert!(values.contains(&"SP0016".to_owned()), "{values:?}");
        assert!(!values.contains(&"SP0015".to_owned()), "{values:?}");
        assert!(
            text(&out.reply).contains("SP0015"),
            "the replaced code is told: {:?}",
            out.reply
        );
        // A correction naming a near-duplicate in full switches to it at once, account kept.
        let out = f.say(
            Session::default(),
            &[
                "sy_d1超期订单预警开一下",
                "等等看错了 预警他们已经有了 要的是那个超期订单预警的汇总看板",
            ],
        );
        let State::Filling { form } = &out.session.state else {
            panic!("a form: {:?}", out.reply);
        };
        assert_eq!(form.service, ServiceId(77), "{:?}", out.reply);
        assert!(shown(&out).contains(&"sy_d1".to_owned()));
        // "能试用吗" after the request is a question, answered with the service's warnings;
        // never part of the reason.
        let out = f.say(
            Session::default(),
            &["开电子发票 账号 fp_s9 客户要给买家开票 能试用吗"],
        );
        let said = text(&out.reply);
        assert!(
            said.contains("能试用吗") && said.contains("不支持试用"),
            "{said}"
        );
        assert!(
            !said.contains("申请原因是 客户要给买家开票 能试用吗"),
            "{said}"
        );
        // Asked where a reason is asked, the same answer, and the question comes again.
        let out = f.say(Session::default(), &["帮 fp_s8 开电子发票", "有风险吗"]);
        let said = text(&out.reply);
        assert!(said.contains("无法撤回"), "{said}");
        assert!(matches!(out.session.state, State::Filling { .. }), "{said}");
        // "原因一样" after a second account is no reason of its own (never refused as too
        // short); the first customer's reason is offered.
        let out = f.say(
            Session::default(),
            &["帮 km_t1 开个顺丰子母单聚合打印 客户嫌子母单打出来太乱 还有 km_t2 也要 原因一样"],
        );
        let said = text(&out.reply);
        assert!(said.contains("申请原因是 客户嫌子母单打出来太乱"), "{said}");
        assert!(!said.contains("一样 没有填入"), "{said}");
        // The request sent again where its reason is asked is no reason.
        let out = f.say(
            Session::default(),
            &[
                "sh_b2 开物流追踪 客户要看轨迹",
                "sh_b2 开物流追踪 客户要看轨迹",
            ],
        );
        assert!(
            !shown(&out).iter().any(|v| v.contains("开物流追踪")),
            "{:?}",
            out.reply
        );
    }
}
