//! A message while a form is open, one step at a time: the asked field's own words, an
//! offered value, a conversation command, small talk, another service named (switch?), and
//! the step's answer.

use std::ops::ControlFlow;

use super::command::FormCommand;
use super::{Engine, Say, Turn, pick_number};
use crate::catalog::MessageKey;
use crate::catalog::value::code_shape;
use crate::catalog::{FieldKey, FieldKind, FieldValue, Service, ServiceField};
use crate::dialog::session::{Form, Offer, State, Step};
use crate::dialog::text::fold;
use crate::dialog::understand::{SmallTalk, Tuning, Verdict};
use crate::domain::{ChoiceOption, ServiceId};

impl Engine<'_> {
    /// A message while a form is open: the field's own words first, then an offered value, a
    /// command, small talk, another service, and only then the step's answer.
    pub(super) fn filling(
        &self,
        form: Form,
        text: &str,
        command: Option<FormCommand>,
        t: &mut Turn,
    ) -> State {
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        let current = match &form.step {
            Step::Ask(key) => service.field(key),
            _ => None,
        };
        // "wms不支持 哦不对 点错了 是支持的" at a yes/no: the answer after the last correction.
        if let Some(f) = current
            && f.spec.kind.is_closed()
            && let Some((_, tail)) =
                crate::dialog::slots::split_correction(text, &self.tuning().slots)
            && f.spec.parse_answer(&tail).is_ok()
        {
            return self.answer(form, &tail, t);
        }
        // A yes/no or option question reads its own words first: "没有" is 否 there, not 跳过.
        if let Some(f) = current
            && f.spec.kind.is_closed()
            && !command
                .as_ref()
                .is_some_and(FormCommand::steers_a_closed_question)
            && f.spec.parse_answer(text).is_ok()
        {
            return self.answer(form, text, t);
        }
        let form = match self.take_offer(form, current, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        // "算了快手不要了": options taken back from a list already answered.
        let form = match self.remove_options(form, service, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        // "账号写错了 应该是 X" at any step before filing changes the value it names.
        let form = match self.correct_answered(form, service, current, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        let form = match self.withdraw(form, service, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        let form = match self.disown(form, service, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        let form = match command {
            Some(command) => match self.steer(form, service, text, command, t) {
                ControlFlow::Break(state) => return state,
                ControlFlow::Continue(form) => form,
            },
            None => form,
        };
        match self.tuning().small_talk(text) {
            Some(SmallTalk::Greeting) if form.step != Step::Summary => {
                t.say.push(
                    self.m()
                        .render(MessageKey::WelcomeBack, &[("name", &service.name)]),
                );
                return self.reask(form, &mut t.say);
            }
            Some(SmallTalk::Thanks) if form.step != Step::Summary => {
                t.say.push(self.m().get(MessageKey::ThanksReply));
                return self.reask(form, &mut t.say);
            }
            _ => {}
        }
        let folded = fold(text);
        // "等下发" at a file question: nothing to check yet; the form waits for the file.
        // No text is a file, so the words may stand anywhere in the message.
        if let Some(f) = current
            && matches!(f.spec.kind, FieldKind::Attachment { .. })
            && self
                .tuning()
                .commands
                .file_later
                .iter()
                .any(|w| folded.contains(w.as_str()))
        {
            let mut form = form;
            let already = form.deferred.contains(f.key());
            if !already {
                form.deferred.push(f.key().clone());
            }
            // Only files are left and other requests wait: this one is put aside until its
            // file comes, and the next one starts ("先办第二个吧").
            let only_files_left = service
                .active_fields(&form.answers)
                .filter(|g| {
                    g.asked
                        && !form.answers.contains_key(g.key())
                        && !form.skipped.contains(g.key())
                })
                .all(|g| form.deferred.contains(g.key()));
            if only_files_left && let Some(at) = t.queue.iter().position(|q| q.parked.is_none()) {
                let next = t.queue.remove(at);
                let name = self.service_label(form.service).unwrap_or_default();
                let next_name = self.service_label(next.service).unwrap_or_default();
                tracing::info!(service = %form.service, "form parked while it waits for a file");
                t.say.push(self.m().render(
                    MessageKey::ParkedForFile,
                    &[("name", &name), ("next", &next_name)],
                ));
                t.queue.push(crate::dialog::session::Queued {
                    service: form.service,
                    account: self.seller_account(&form),
                    text: None,
                    parked: Some(Box::new(form)),
                });
                return self.start_queued(next, t);
            }
            t.say.push(
                self.m()
                    .render(MessageKey::FileLater, &[("label", &f.spec.label)]),
            );
            if already {
                return State::Filling { form };
            }
            // The other questions go first; the file is asked again at the end.
            return self.advance(form, t);
        }
        // "客户要对物流费用" at the summary: a new reason, never a switch and never lost.
        let form = match self.new_reason_at_summary(form, service, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        // A message that names another service is never taken as a field value.
        if let Some(target) = self.names_other_service(service, &form, text) {
            return self.switch_prompt(form, target, text.to_owned(), &mut t.say);
        }
        // "等下 我问下客户要几台" at any other question (naming no other service): no
        // answer; the form waits for it.
        if let Some(f) = current
            && !matches!(f.spec.kind, FieldKind::Attachment { .. })
            && (f.spec.prose || f.spec.parse_answer(text).is_err())
            && self
                .tuning()
                .commands
                .answer_later
                .iter()
                .any(|w| folded.contains(w.as_str()))
        {
            tracing::info!(field = %f.key(), "the person will answer later: the form waits");
            t.say.push(
                self.m()
                    .render(MessageKey::AnswerLater, &[("label", &f.spec.label)]),
            );
            return State::Filling { form };
        }
        match form.step.clone() {
            Step::PickEdit => self.pick_edit(form, service, text, &mut t.say),
            Step::Summary => {
                // A plain yes (好的/ok/可以) confirms what can be undone; a service whose
                // warnings say it cannot be needs the word 「确认」, and the person hears why.
                let words = &self.tuning().commands;
                let plain_yes = Tuning::is(&words.yes, text)
                    || Tuning::is(&words.plain_yes, text)
                    || self.tuning().small_talk(text) == Some(SmallTalk::Acknowledgement);
                let irreversible = service.warnings.iter().any(|w| {
                    words
                        .irreversible_markers
                        .iter()
                        .any(|m| w.contains(m.as_str()))
                });
                if plain_yes && !irreversible {
                    t.file = Some(form);
                    t.say.push(self.m().get(MessageKey::Confirmed));
                    return State::Idle;
                }
                if plain_yes {
                    t.say.push(
                        self.m()
                            .render(MessageKey::ConfirmIrreversible, &[("name", &service.name)]),
                    );
                } else {
                    t.say.push(self.m().get(MessageKey::ConfirmNeeded));
                }
                State::Filling { form }
            }
            Step::Ask(_) => self.answer(form, text, t),
        }
    }

    /// Options taken back from a list already answered ("算了快手不要了", "去掉快手"): an
    /// option of the list, as the field's question reads it (`slots::option_forms`), right
    /// before a removal word (`[slots] option_removals`) or right after a negation
    /// (`option_negations`) leaves the list, when something is left and the message does not
    /// say the whole list again (只要淘宝京东).
    fn remove_options(
        &self,
        form: Form,
        service: &Service,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let words = &self.tuning().slots;
        let folded = fold(text);
        if words
            .list_set_words
            .iter()
            .any(|w| folded.contains(w.as_str()))
        {
            return ControlFlow::Continue(form);
        }
        let taken_back = |form_of: &str| {
            folded.match_indices(form_of).any(|(at, _)| {
                let after = folded[at + form_of.len()..].trim_start();
                let before = folded[..at].trim_end();
                words
                    .option_removals
                    .iter()
                    .any(|r| after.starts_with(r.as_str()))
                    || words
                        .option_negations
                        .iter()
                        .any(|r| before.ends_with(r.as_str()))
            })
        };
        let changed = service.fields.iter().find_map(|f| {
            let Some(FieldValue::Choices(list)) = form.answers.get(f.key()) else {
                return None;
            };
            let kept: Vec<String> = list
                .iter()
                .filter(|o| {
                    !crate::dialog::slots::option_forms(&f.spec, o)
                        .iter()
                        .any(|said| !said.is_empty() && taken_back(said))
                })
                .cloned()
                .collect();
            (!kept.is_empty() && kept.len() < list.len()).then_some((f, FieldValue::Choices(kept)))
        });
        let Some((f, now)) = changed else {
            return ControlFlow::Continue(form);
        };
        tracing::info!(field = %f.key(), "options taken back from a list");
        ControlFlow::Break(self.change_value(form, f, now, t))
    }

    /// Puts `now` in `f`'s place, says what it replaced, and goes on where the form was (the
    /// summary is shown again; at a question the same question follows).
    fn change_value(
        &self,
        mut form: Form,
        f: &ServiceField,
        now: FieldValue,
        t: &mut Turn,
    ) -> State {
        let was = form
            .answers
            .get(f.key())
            .map(|v| f.spec.display_value(v))
            .unwrap_or_default();
        t.say.push(self.m().render(
            MessageKey::ValueChanged,
            &[
                ("label", &f.spec.label),
                ("was", &was),
                ("now", &f.spec.display_value(&now)),
            ],
        ));
        form.answers.insert(f.key().clone(), now);
        form.failures = 0;
        self.advance(form, t)
    }

    /// A correction of a value already given ("账号写错了 应该是 abc132", "刚才数量说错了 改成
    /// 180", "仓库编号改成 CK03"): the message holds a correction marker and names an answered
    /// field by its label or a cue; the value after the marker, read as that field's, replaces
    /// the old one, the person hears what changed, and the form goes on where it was.
    pub(super) fn correct_answered(
        &self,
        form: Form,
        service: &Service,
        current: Option<&ServiceField>,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let Some(tail) = crate::dialog::slots::corrected_tail(text, &self.tuning().slots) else {
            return ControlFlow::Continue(form);
        };
        // "哦第二个账号写错了 是sy_med02": an account close to a queued request's account, and
        // not to this form's, mends the queued one.
        let token = Some(tail.as_str()).filter(|t| {
            !t.contains(char::is_whitespace) && crate::catalog::value::is_seller_account(t)
        });
        let own_account = self.seller_account(&form);
        if let Some(token) = token
            && !own_account
                .as_deref()
                .is_some_and(|a| close_spelling(token, a))
            && let Some(q) = t.queue.iter_mut().find(|q| {
                q.account
                    .as_deref()
                    .is_some_and(|a| close_spelling(token, a))
            })
        {
            let was = q.account.replace(token.to_owned()).unwrap_or_default();
            // The queued words are read again when it starts: they must say the mended one.
            if let Some(words) = q.text.as_mut() {
                *words = words.replace(&was, token);
            }
            let name = self.service_label(q.service).unwrap_or_default();
            t.say.push(self.m().render(
                MessageKey::QueuedAccountChanged,
                &[("name", &name), ("now", token), ("was", &was)],
            ));
            return ControlFlow::Break(self.reask(form, &mut t.say));
        }
        let folded = fold(text);
        let tail_folded = fold(&tail);
        // "不对 改成450": a number after the marker, with the form's one number answered.
        let numbers: Vec<&FieldKey> = service
            .fields
            .iter()
            .filter(|f| matches!(f.spec.kind, FieldKind::Integer { .. }))
            .map(ServiceField::key)
            .filter(|k| form.answers.contains_key(*k))
            .collect();
        // Only a number standing for itself ("改成450", "要 1万"), not digits in an account.
        let bare = tail
            .trim_start_matches(|c: char| crate::catalog::value::is_han(c) || c.is_whitespace());
        let first = bare.split_whitespace().next().unwrap_or_default();
        let a_number = first.starts_with(|c: char| c.is_ascii_digit())
            && first
                .chars()
                .all(|c| c.is_ascii_digit() || crate::catalog::value::is_han(c));
        let lone_number = match numbers.as_slice() {
            [k] if a_number => Some((*k).clone()),
            _ => None,
        };
        // "不对不对 是WH-BJ03": a lone code written the way exactly one answered value is
        // written (same letters, digits and marks in the same places) names that field.
        let lone_code = bare
            .split_whitespace()
            .next()
            .filter(|c| {
                c.len() == bare.trim_end().len()
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
                    && c.chars().any(|ch| ch.is_ascii_digit())
            })
            .map(code_shape);
        let same_shape: Vec<&FieldKey> = service
            .fields
            .iter()
            .filter(|f| {
                lone_code.is_some()
                    && form
                        .answers
                        .get(f.key())
                        .is_some_and(|v| Some(code_shape(&v.display(false))) == lone_code)
            })
            .map(ServiceField::key)
            .collect();
        let shaped = match same_shape.as_slice() {
            [k] => Some((*k).clone()),
            _ => None,
        };
        let mut changes = Vec::new();
        let mut unchanged = Vec::new();
        for f in &service.fields {
            let Some(was) = form.answers.get(f.key()) else {
                continue;
            };
            if f.spec.prose || current.is_some_and(|c| c.key() == f.key()) {
                continue;
            }
            // A yes/no or a choice is also named by its own words after the marker
            // ("打错了 是多仓的" names 是否多仓; "选错了 要关闭" names 开通或关闭).
            let own_words = || {
                let options = match &f.spec.kind {
                    FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options } => {
                        options.as_slice()
                    }
                    _ => &[],
                };
                f.spec
                    .yes_phrases
                    .iter()
                    .chain(&f.spec.no_phrases)
                    .chain(options)
                    .chain(f.spec.synonyms.iter().map(|(word, _)| word))
                    .any(|w| w.chars().count() >= 2 && tail_folded.contains(&fold(w)))
            };
            // "不对不对 是lyf_store 打错了": an account-shaped value close to the account given
            // (a typo mended) names the seller account without the word 账号.
            let mended_account = || {
                service
                    .seller_account_field()
                    .is_some_and(|s| s.key() == f.key())
                    && token.is_some_and(|v| close_spelling(v, &was.display(false)))
            };
            let named = std::iter::once(&f.spec.label)
                .chain(f.spec.cues.iter())
                .any(|w| !w.is_empty() && folded.contains(&fold(w)))
                || own_words()
                || mended_account()
                || lone_number.as_ref() == Some(f.key())
                || shaped.as_ref() == Some(f.key());
            if !named {
                continue;
            }
            let labelled = format!("{} {tail}", f.spec.label);
            let found = self.extract(service, &labelled);
            match found.answers.get(f.key()) {
                Some(now) if now != was => changes.push((f, now.clone())),
                Some(_) => unchanged.push((f, was)),
                None => {}
            }
        }
        // "不对 pdd不行的话就只开淘宝" where the reason is asked: the correction names a value
        // already taken; it says so and is no answer to the question.
        if let ([], [(f, was)]) = (changes.as_slice(), unchanged.as_slice()) {
            tracing::info!(field = %f.key(), "a correction that keeps the value");
            t.say.push(self.m().render(
                MessageKey::ValueKept,
                &[
                    ("label", &f.spec.label),
                    ("now", &f.spec.display_value(was)),
                ],
            ));
            return ControlFlow::Break(self.advance(form, t));
        }
        let Ok([(f, now)]) = <[_; 1]>::try_from(changes) else {
            return ControlFlow::Continue(form);
        };
        ControlFlow::Break(self.change_value(form, f, now, t))
    }

    /// The form's own service disowned at any step ("搞错了 不是电子发票 是导出要看完整手机号
    /// 那个"): the form is dropped, the person hears so, and what follows the disowned name is
    /// read as the request they meant, with the form's seller account carried over. Nothing
    /// understood after it: the person is asked what they meant instead.
    /// "超期订单预警不要了": a withdrawal (data: `[reading] withdrawals`) that names the form's
    /// own service drops the form and goes on with what the person queued; one that names a
    /// queued service takes it out of the queue and repeats the question. Never a field value.
    pub(super) fn withdraw(
        &self,
        form: Form,
        service: &Service,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let folded = fold(text);
        let withdraws = self
            .tuning()
            .reading
            .withdrawals
            .iter()
            .any(|w| folded.contains(w.as_str()));
        if !withdraws {
            return ControlFlow::Continue(form);
        }
        let label = |id| self.service_label(id).unwrap_or_default();
        // "客户说先不开了" names nothing: a short message is about the form itself (a longer
        // one may be a reason that tells a story, "之前不用了现在又要").
        let queued_at = t
            .queue
            .iter()
            .position(|q| self.matcher.names_fully(q.service, text));
        // "快手不要了 只要淘宝京东" takes back a value, not the form.
        // "店不开了" where #23's reason is asked says why; it has a subject of its own.
        let reading = &self.tuning().reading;
        let short = text.chars().filter(|c| !c.is_whitespace()).count()
            <= reading.bare_withdrawal_max_chars
            && crate::dialog::reading::withdraws_alone(reading, &folded)
            && self.extract(service, text).answers.is_empty();
        // "200不够 客户说不够就先不弄了": the last words withdraw on their own, whatever came
        // before them (a value there is why).
        let ends_withdrawn = text
            .rsplit(|c: char| c.is_whitespace() || "，,。!！".contains(c))
            .find(|p| !p.is_empty())
            .is_some_and(|last| {
                last != text.trim() && crate::dialog::reading::withdraws_alone(reading, &fold(last))
            });
        let short = short || ends_withdrawn;
        // "那透视的先不提了 只提报表延长": the words that withdraw name one request by a part
        // of its name (the form's own, or a queued one).
        let by_part = {
            let piece = text
                .split(|c: char| c.is_whitespace() || "，,。!！;；".contains(c))
                .map(fold)
                .find(|p| reading.withdrawals.iter().any(|w| p.contains(w.as_str())));
            let services: Vec<ServiceId> = std::iter::once(service.id)
                .chain(t.queue.iter().map(|q| q.service))
                .collect();
            piece.and_then(|p| crate::dialog::reading::named_by_part(self.catalog, &p, &services))
        };
        let queued_at = queued_at.or(by_part.and_then(|k| k.checked_sub(1)));
        if self.matcher.names_fully(service.id, text)
            || by_part == Some(0)
            || (short && queued_at.is_none())
        {
            tracing::info!(service = %service.id, "form withdrawn by name");
            t.say.push(
                self.m()
                    .render(MessageKey::ServiceDisowned, &[("name", &label(service.id))]),
            );
            if t.queue.is_empty() {
                return ControlFlow::Break(State::Idle);
            }
            let next = t.queue.remove(0);
            return ControlFlow::Break(self.start_queued(next, t));
        }
        if let Some(at) = queued_at {
            let gone = t.queue.remove(at);
            tracing::info!(service = %gone.service, "queued request withdrawn by name");
            t.say.push(self.m().render(
                MessageKey::QueuedWithdrawn,
                &[("name", &label(gone.service))],
            ));
            return ControlFlow::Break(self.reask(form, &mut t.say));
        }
        ControlFlow::Continue(form)
    }

    pub(super) fn disown(
        &self,
        form: Form,
        service: &Service,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let (folded, map) = crate::dialog::text::fold_mapped(text);
        let names: Vec<String> = std::iter::once(&service.name)
            .chain(&service.aliases)
            .map(|n| fold(n))
            .filter(|n| n.chars().count() >= 2)
            .collect();
        let disowned_end = self.tuning().reading.negations.iter().find_map(|neg| {
            folded.match_indices(neg.as_str()).find_map(|(at, _)| {
                let after = &folded[at + neg.len()..];
                names
                    .iter()
                    .filter(|n| after.starts_with(n.as_str()))
                    .map(|n| at + neg.len() + n.len())
                    .max()
            })
        });
        let Some(end) = disowned_end else {
            return self.corrected_to_another(form, service, text, t);
        };
        let rest = text[crate::dialog::text::typed_offset(text, &map, end)..].trim();
        // "不是电子发票 是导出…": the 是 that opens the rest says what is meant; it is no value.
        let rest = rest
            .strip_prefix("而是")
            .or_else(|| rest.strip_prefix('是'))
            .or_else(|| rest.strip_prefix("要"))
            .unwrap_or(rest)
            .trim();
        let understood = self.matcher.understand_with(rest, self.meaning);
        let dropped = self.service_label(service.id).unwrap_or_default();
        match understood.verdict {
            Verdict::Service(id) if id != service.id => {
                ControlFlow::Break(self.correct_to(&form, id, rest, t))
            }
            Verdict::Ambiguous(options) if !options.contains(&service.id) => {
                t.say.push(
                    self.m()
                        .render(MessageKey::ServiceDisowned, &[("name", &dropped)]),
                );
                t.say.push(
                    self.m()
                        .render(MessageKey::ChooseCandidates, &[("candidates", "")])
                        .trim_end(),
                );
                self.offer(&options, &mut t.say);
                // The account rides along in the words the chosen service reads.
                let text = match &self.seller_account(&form) {
                    Some(a) => format!("{rest} 卖家账号 {a}"),
                    None => rest.to_owned(),
                };
                ControlFlow::Break(State::Choosing { options, text })
            }
            _ if !t.queue.is_empty() => {
                t.say.push(self.m().render(
                    MessageKey::CancelledQueueLeft,
                    &[("name", &dropped), ("queued", &self.queued_names(&t.queue))],
                ));
                ControlFlow::Break(State::Idle)
            }
            _ => {
                t.say.push(
                    self.m()
                        .render(MessageKey::ServiceDisowned, &[("name", &dropped)]),
                );
                t.say.push(self.m().get(MessageKey::WhatInstead));
                ControlFlow::Break(State::Idle)
            }
        }
    }

    /// "等等看错了 预警他们已经有了 要的是那个超期订单预警的汇总看板": a correction marker, then
    /// another service named in full (and the form's own not named after it) is a change of
    /// mind at any step, even to a near-duplicate: the form is dropped and the named service
    /// starts with the form's seller account and what was said after the marker.
    fn corrected_to_another(
        &self,
        form: Form,
        service: &Service,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let (folded, map) = crate::dialog::text::fold_mapped(text);
        let Some(end) = self
            .tuning()
            .correction_markers
            .iter()
            .filter_map(|m| folded.rfind(m.as_str()).map(|at| at + m.len()))
            .max()
        else {
            return ControlFlow::Continue(form);
        };
        let rest = text[crate::dialog::text::typed_offset(text, &map, end)..].trim();
        if self.matcher.names_fully(service.id, rest) {
            return ControlFlow::Continue(form);
        }
        let Some(id) = self
            .matcher
            .rank_words(rest)
            .iter()
            .map(|s| s.id)
            .find(|&id| id != service.id && self.matcher.names_fully(id, rest))
        else {
            return ControlFlow::Continue(form);
        };
        tracing::info!(from = %service.id, to = %id, "form corrected to another service");
        ControlFlow::Break(self.correct_to(&form, id, rest, t))
    }

    /// The form given up for `id`, which starts with `rest` and the form's seller account; the
    /// person hears which was dropped for which.
    fn correct_to(&self, form: &Form, id: ServiceId, rest: &str, t: &mut Turn) -> State {
        let label = |id| self.service_label(id).unwrap_or_default();
        t.say.push(self.m().render(
            MessageKey::CorrectionTaken,
            &[("dropped", &label(form.service)), ("wanted", &label(id))],
        ));
        self.start(id, rest, self.seller_account(form), t)
    }

    /// A value the bot proposed for the asked field (a cap, "其他: …", a Chinese account read
    /// back) is taken on a yes.
    pub(super) fn take_offer(
        &self,
        mut form: Form,
        current: Option<&ServiceField>,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        // The offered value typed again says yes too ("卖家账号是「义乌小商品批发」吗?" answered
        // with 义乌小商品批发 once more).
        // Any plain yes takes it ("好的", "ok", "确认" too: the person agrees with what was read
        // back; the summary still comes before anything is filed).
        let words = &self.tuning().commands;
        let agrees = Tuning::is(&words.yes, text)
            || Tuning::is(&words.plain_yes, text)
            || Tuning::is(&words.confirm, text)
            || self.tuning().small_talk(text) == Some(SmallTalk::Acknowledgement);
        if let Some(f) = current
            && let Some(i) = form.offers.iter().position(|o| {
                &o.key == f.key() && (agrees || fold(&o.value.display(false)) == fold(text))
            })
        {
            let offer = form.offers.remove(i);
            form.answers.insert(offer.key.clone(), offer.value);
            if !form.order.contains(&offer.key) {
                form.order.push(offer.key);
            }
            form.failures = 0;
            return ControlFlow::Break(self.advance(form, t));
        }
        // "否" to a value proposed for a field that holds one already: it keeps its value.
        if let Some(f) = current
            && Tuning::is(&words.no, text)
            && form.answers.contains_key(f.key())
            && form.offers.iter().any(|o| &o.key == f.key())
        {
            form.offers.retain(|o| &o.key != f.key());
            return ControlFlow::Break(self.advance(form, t));
        }
        ControlFlow::Continue(form)
    }

    /// At the summary, words that only explain why ("客户要对物流费用") are a new reason: the
    /// bot asks whether to replace the one in the form (an offer, taken on a yes; a no keeps
    /// the form as it was). Filed as typed, the old reason would go out unseen.
    fn new_reason_at_summary(
        &self,
        mut form: Form,
        service: &Service,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        if form.step != Step::Summary {
            return ControlFlow::Continue(form);
        }
        let prose: Vec<&ServiceField> = service
            .active_fields(&form.answers)
            .filter(|f| f.spec.prose && matches!(f.spec.kind, FieldKind::Text { .. }))
            .collect();
        let [field] = prose.as_slice() else {
            return ControlFlow::Continue(form);
        };
        if !self.only_explains(service.id, text) {
            return ControlFlow::Continue(form);
        }
        let Ok(value) = field.spec.parse_answer(text.trim()) else {
            return ControlFlow::Continue(form);
        };
        if form.answers.get(field.key()) == Some(&value) {
            return ControlFlow::Continue(form);
        }
        tracing::info!(field = %field.key(), "new free text at the summary: offered to replace");
        let question = self.m().render(
            MessageKey::ReplaceAtSummary,
            &[
                ("label", &field.spec.label),
                ("value", &field.spec.display_value(&value)),
            ],
        );
        t.say.push(question.clone());
        form.offers.retain(|o| o.key != *field.key());
        form.offers.push(Offer {
            key: field.key().clone(),
            value,
            question,
        });
        form.step = Step::Ask(field.key().clone());
        ControlFlow::Break(State::Filling { form })
    }

    /// A conversation command inside a form. `Continue` hands the form back when the command
    /// does not apply here (跳过 at the summary, 修改 naming no field), so the message is read
    /// on as an answer.
    pub(super) fn steer(
        &self,
        mut form: Form,
        service: &Service,
        text: &str,
        command: FormCommand,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        let m = self.m();
        let state = match command {
            FormCommand::Cancel if !t.queue.is_empty() => {
                t.recent = Some(crate::dialog::session::Recent {
                    form: form.clone(),
                    cancelled: true,
                    at: t.now.timestamp(),
                });
                // Only this request is dropped: the ones queued behind it are named, and wait.
                t.say.push(m.render(
                    MessageKey::CancelledQueueLeft,
                    &[
                        ("name", &service.name),
                        ("queued", &self.queued_names(&t.queue)),
                    ],
                ));
                State::Idle
            }
            FormCommand::Cancel => {
                t.recent = Some(crate::dialog::session::Recent {
                    form: form.clone(),
                    cancelled: true,
                    at: t.now.timestamp(),
                });
                t.say.push(m.get(MessageKey::Cancelled));
                State::Idle
            }
            FormCommand::Help => self.field_help(form, service, &mut t.say),
            FormCommand::Back => self.step_back(form, service, &mut t.say),
            FormCommand::Skip => match &form.step {
                Step::Ask(key) if service.field(key).is_some() => self.skip(form, service, t),
                _ => return ControlFlow::Continue(form),
            },
            FormCommand::Confirm if form.step == Step::Summary => {
                t.file = Some(form);
                t.say.push(m.get(MessageKey::Confirmed));
                State::Idle
            }
            FormCommand::Confirm => {
                // 确认 is never a field value ("确认" as a seller account).
                t.say.push(m.get(MessageKey::NotAtSummary));
                self.reask(form, &mut t.say)
            }
            FormCommand::Resume => self.reask(form, &mut t.say),
            FormCommand::Edit(None) => {
                form.step = Step::PickEdit;
                t.say.push(m.render(
                    MessageKey::EditWhich,
                    &[("fields", &self.editable_list(service, &form))],
                ));
                State::Filling { form }
            }
            FormCommand::Edit(Some(name)) => match self.find_field(service, &form, &name) {
                Some(f) => {
                    form.step = Step::Ask(f.key().clone());
                    form.failures = 0;
                    self.ask_first(f, &form, &mut t.say);
                    State::Filling { form }
                }
                // "修改 条数改成400": what follows the edit word is read as if sent alone (it
                // is shorter, so this ends).
                None if name.chars().count() < text.chars().count() => {
                    let command = self.command(&name);
                    self.filling(form, &name, command, t)
                }
                None => return ControlFlow::Continue(form),
            },
            FormCommand::Correct { field, value } => {
                match self.find_field(service, &form, &field) {
                    Some(f) => self.correct(form, f, &value, t),
                    None => return ControlFlow::Continue(form),
                }
            }
            FormCommand::Service(id, _) if id != form.service => {
                self.switch_prompt(form, id, text.to_owned(), &mut t.say)
            }
            FormCommand::Service(..) => self.reask(form, &mut t.say),
            FormCommand::Slash { name, args } => {
                match self.slash(State::Filling { form }, &name, &args, &mut t.say) {
                    State::Filling { form } => self.reask(form, &mut t.say),
                    other => other,
                }
            }
        };
        ControlFlow::Break(state)
    }

    /// 帮助 inside a form: the asked field's help (or its prompt), else the general help.
    pub(super) fn field_help(&self, form: Form, service: &Service, say: &mut Say) -> State {
        match &form.step {
            Step::Ask(key) => {
                if let Some(f) = service.field(key) {
                    let help = if f.spec.help.is_empty() {
                        f.spec.render_prompt()
                    } else {
                        f.spec.help.clone()
                    };
                    say.push(self.m().render(
                        MessageKey::FieldHelp,
                        &[("label", &f.spec.label), ("help", &help)],
                    ));
                }
            }
            _ => say.push(self.help_text()),
        }
        self.reask(form, say)
    }

    /// 返回: the last answer is taken back and its question asked again.
    pub(super) fn step_back(&self, mut form: Form, service: &Service, say: &mut Say) -> State {
        form.failures = 0;
        let Some(key) = form.order.pop() else {
            say.push(self.m().get(MessageKey::AtFirstStep));
            return self.reask(form, say);
        };
        form.answers.remove(&key);
        form.skipped.retain(|k| *k != key);
        say.push(self.m().get(MessageKey::BackDone));
        form.step = Step::Ask(key.clone());
        if let Some(f) = service.field(&key) {
            self.ask(f, &form, say);
        }
        State::Filling { form }
    }

    /// 跳过 the asked field: only an optional one.
    pub(super) fn skip(&self, mut form: Form, service: &Service, t: &mut Turn) -> State {
        let Step::Ask(key) = &form.step else {
            return self.reask(form, &mut t.say);
        };
        let Some(f) = service.field(key) else {
            return self.reask(form, &mut t.say);
        };
        if f.required {
            t.say.push(
                self.m()
                    .render(MessageKey::SkipNotAllowed, &[("label", &f.spec.label)]),
            );
            return self.reask(form, &mut t.say);
        }
        form.skipped.push(key.clone());
        form.failures = 0;
        self.advance(form, t)
    }

    /// "卖家账号改成 xyz": the named field takes the value if its parser does.
    pub(super) fn correct(
        &self,
        mut form: Form,
        f: &ServiceField,
        value: &str,
        t: &mut Turn,
    ) -> State {
        match f.spec.parse_answer(value) {
            Ok(parsed) => {
                t.say.push(self.m().render(
                    MessageKey::FieldUpdated,
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
                self.advance(form, t)
            }
            Err(e) => {
                t.say.push(e.message);
                self.reask(form, &mut t.say)
            }
        }
    }

    /// 修改 asked which item: a number from the list or the item's name.
    pub(super) fn pick_edit(
        &self,
        mut form: Form,
        service: &Service,
        text: &str,
        say: &mut Say,
    ) -> State {
        let fields = self.editable_fields(service, &form);
        let chosen = pick_number(text, fields.len())
            .map(|n| fields[n])
            .or_else(|| self.find_field(service, &form, text));
        match chosen {
            Some(f) => {
                form.step = Step::Ask(f.key().clone());
                self.ask_first(f, &form, say);
            }
            None => say.push(self.m().render(
                MessageKey::EditWhich,
                &[("fields", &self.editable_list(service, &form))],
            )),
        }
        State::Filling { form }
    }

    /// Another service named clearly enough to be a switch, not an answer. Never one of the
    /// service's `related` near-duplicates (#5 and #47 are both 支付宝数据透视): their words are
    /// this service's words too, so naming them is no change of mind.
    pub(super) fn names_other_service(
        &self,
        service: &Service,
        form: &Form,
        text: &str,
    ) -> Option<ServiceId> {
        let other = |id: ServiceId| id != service.id && !service.related.contains(&id);
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
        // Values the message gives this form's fields are no names of another service
        // ("平台拼多多" is a platform here, not 淘宝/拼多多 多包裹).
        let own = self.extract(service, text);
        let mut unvalued = text.to_owned();
        for key in &own.cued {
            if let Some(source) = own.sources.get(key) {
                unvalued = unvalued.replacen(source.as_str(), " ", 1);
            }
        }
        // A service named in full, except inside a free-text answer that does not ask for it
        // ("客户做活动 一单多包裹赠品多" is a reason that mentions 多包裹) or correct to it
        // ("额 不对 是电子发票" is a change of mind, not a reason).
        if let Some(id) = ranked
            .iter()
            .map(|s| s.id)
            .find(|&id| other(id) && self.matcher.names_fully(id, &unvalued))
            && (!free_text
                || asks_for(&tuning.interrupt_markers)
                || asks_for(&tuning.correction_markers)
                || asks_for(&tuning.request_markers) && folded.chars().count() <= 16)
        {
            return Some(id);
        }
        // A valid answer to a closed question ("调到3000" for a number) is an answer; only a
        // service named in full (above) beats it.
        if !free_text
            && let Step::Ask(key) = &form.step
            && let Some(f) = service.field(key)
            && (f.spec.parse_answer(text).is_ok() || own.answers.contains_key(key))
        {
            return None;
        }
        let ranked = self.matcher.rank_words(&unvalued);
        // A clear winner asked for in so many words: "等下 先帮我开个物流对账报表". In a free-text
        // answer only an interruption counts, since reasons mention features all the time.
        let markers = if free_text {
            &tuning.interrupt_markers
        } else {
            &tuning.request_markers
        };
        let asks = asks_for(markers);
        match self.matcher.verdict(&ranked) {
            Verdict::Service(id) if other(id) && asks => Some(id),
            _ => None,
        }
    }

    pub(super) fn switch_prompt(
        &self,
        form: Form,
        target: ServiceId,
        text: String,
        say: &mut Say,
    ) -> State {
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
            MessageKey::SwitchConfirm,
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
}

/// Whether `a` reads as a mistyped `b`: at most two single-character edits (a swap of two
/// neighbours is one), on strings of four or more characters.
fn close_spelling(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    a != b && a.chars().count().min(b.chars().count()) >= 4 && strsim::osa_distance(&a, &b) <= 2
}
