//! Reading the answer to the asked field: values for other fields, the field's own reading,
//! acceptance (a Chinese account read back first) or refusal with why and what is offered.

use std::ops::ControlFlow;

use super::{Engine, Say, Turn};
use crate::catalog::MessageKey;
use crate::catalog::{FieldKey, FieldKind, FieldValue, Service, ServiceField};
use crate::dialog::commands::RequestCommand;
use crate::dialog::session::{Form, Offer, State, Step};
use crate::dialog::slots::{Corrected, Extraction};
use crate::dialog::text::fold;
use crate::dialog::understand::{SmallTalk, Tuning};

impl Engine<'_> {
    /// Reads `text` as the answer to the field being asked.
    pub(super) fn answer(&self, form: Form, text: &str, t: &mut Turn) -> State {
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        let Step::Ask(key) = form.step.clone() else {
            return self.reask(form, &mut t.say);
        };
        let Some(field) = service.field(&key) else {
            return self.advance(form, t);
        };
        // A cued value inside a sentence ("账号是 abc_1", "调到3000吧") wins over reading the
        // whole message as the value; then the whole message.
        let found = self.extract(service, text);
        // Only a correction that changes something is said ("CK003 打错了 CK030" where no
        // account was asked changes no account).
        let applied: Vec<Corrected> = found
            .corrected
            .iter()
            .filter(|c| c.key == key || found.cued.contains(&c.key))
            .cloned()
            .collect();
        self.say_corrected(&applied, t);
        let form = match self.other_fields_only(form, service, &key, &found, text, t) {
            ControlFlow::Break(state) => return state,
            ControlFlow::Continue(form) => form,
        };
        // "shopA 哦不 shopB" as the answer: the value after the correction, said so.
        if !found.answers.contains_key(&key)
            && field.spec.parse_answer(text).is_err()
            && let Some((was, corrected)) =
                crate::dialog::slots::split_correction(text, &self.tuning().slots)
            && let Ok(value) = field.spec.parse_answer(&corrected)
        {
            let taken_back = Corrected {
                key: key.clone(),
                label: field.spec.label.clone(),
                was,
            };
            self.say_corrected(std::slice::from_ref(&taken_back), t);
            return self.accept(form, field, &corrected, value, false, t);
        }
        // "在吗 好了没" where a reason, an account or a code is asked is a question about a
        // request, not an answer: the bot answers it from the ledger and the question stays.
        // At any other question too ("好了没" at a file or a yes/no), when it is no answer.
        if !found.answers.contains_key(&key)
            && (matches!(
                field.spec.kind,
                FieldKind::Text { .. } | FieldKind::SellerAccount | FieldKind::Identifier { .. }
            ) || field.spec.parse_answer(text).is_err())
            && let Some(command) =
                crate::dialog::commands::parse_plain(text, &self.tuning().plain_commands)
                    .filter(|c| !matches!(c, RequestCommand::ResubmitLatest))
        {
            t.say.ledger_question = Some(command);
            t.say.push(self.m().get(MessageKey::PlainCommandInForm));
            t.say.push(field.spec.render_prompt());
            return State::Filling { form };
        }
        // "有哪些服务能开" where a reason is asked is a question, never the reason: answered,
        // and the question stays.
        if !found.answers.contains_key(&key)
            && matches!(field.spec.kind, FieldKind::Text { .. })
            && self.asks_about_catalog(text)
        {
            tracing::info!(field = %key, "a question about the catalog at a text prompt");
            t.say.push(self.services(""));
            t.say.push(field.spec.render_prompt());
            return State::Filling { form };
        }
        // "为啥要免责声明" or "多久能好" where any field is asked is a question, never a
        // value: answered, and the question stays.
        let prose = matches!(field.spec.kind, FieldKind::Text { .. });
        let (rest, questions) =
            crate::dialog::reading::questions_apart(text, &self.tuning().reading);
        if !found.answers.contains_key(&key)
            && !questions.is_empty()
            && (prose || (rest.trim().is_empty() && field.spec.parse_answer(text).is_err()))
        {
            tracing::info!(field = %key, "a question where a field is asked: answered");
            self.answer_field_questions(service, field, &questions, t);
            if rest.trim().is_empty() {
                t.say.push(field.spec.render_prompt());
                return State::Filling { form };
            }
        }
        // Where a reason is asked, the words said besides a question are the answer; "不是
        // 客户要看利润" rejects what was proposed, and the reason is what follows.
        let own;
        let mut text = text;
        if !found.answers.contains_key(&key) && prose {
            own = self.without_rejection(if questions.is_empty() { text } else { &rest });
            text = &own;
            // "一样的 给 wdt_mm02 也开" where a reason is asked: the same request for another
            // customer, queued after this one; never this one's reason.
            if field.spec.prose
                && let Some(other) = self.same_for_another(&form, text)
            {
                tracing::info!(field = %key, "the same service asked for another account mid-form");
                let name = self.service_label(form.service).unwrap_or_default();
                t.say.push(self.m().render(
                    MessageKey::SameQueued,
                    &[("name", &name), ("account", &other)],
                ));
                t.queue.push(crate::dialog::session::Queued {
                    service: form.service,
                    account: Some(other),
                    text: None,
                    parked: None,
                });
                t.say.push(field.spec.render_prompt());
                return State::Filling { form };
            }
            // "sh_bb2 开物流追踪 客户要看轨迹" sent again where the reason is asked: the request
            // itself, restated (the form's service in full, its account), is no reason.
            let restated = self.matcher.names_fully(form.service, text)
                && self
                    .seller_account(&form)
                    .is_some_and(|a| text.contains(a.as_str()));
            if field.spec.prose && (restated || self.only_conversation_talk(text)) {
                tracing::info!(field = %key, "talk about the conversation where a reason is asked");
                t.say.push(
                    self.m()
                        .render(MessageKey::NotAReason, &[("label", &field.spec.label)]),
                );
                t.say.push(field.spec.render_prompt());
                return State::Filling { form };
            }
        }
        match self.read_answer(field, text, &found) {
            Ok((value, cued)) => self.accept(form, field, text, value, cued, t),
            Err(message) => self.refuse(form, field, text, message, &mut t.say),
        }
    }

    /// "一样的 给 wdt_mm02 也开": another account than the form's, with a word asking for the
    /// same again (`[commands] same_again`).
    fn same_for_another(&self, form: &Form, text: &str) -> Option<String> {
        let folded = fold(text);
        if !self
            .tuning()
            .commands
            .same_again
            .iter()
            .any(|w| folded.contains(w.as_str()))
        {
            return None;
        }
        let own = self.seller_account(form);
        let mut others = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
            .filter(|t| {
                t.len() >= 4
                    && t.chars().any(|c| c.is_ascii_alphabetic())
                    && t.chars().any(|c| c.is_ascii_digit() || c == '_')
                    && crate::catalog::value::is_seller_account(t)
                    && own.as_deref() != Some(*t)
            });
        let first = others.next()?;
        // Two other accounts: not read here (asked as the reason's own words are).
        others.next().is_none().then(|| first.to_owned())
    }

    /// "点错了 是对的", "CK003 打错了 CK030", "不对不对 按错了 没问题 提交": words about the
    /// conversation (`[slots] not_reason_words`, corrections) and codes, with fewer than
    /// `explanation_min_han` Chinese characters of anything else. A short reason that holds
    /// none of them ("大促单多") is still a reason.
    fn only_conversation_talk(&self, text: &str) -> bool {
        let words = &self.tuning().slots;
        let mut rest = fold(text);
        let mut talk = false;
        for w in words
            .not_reason_words
            .iter()
            .chain(&words.correction_markers)
        {
            if rest.contains(w.as_str()) {
                talk = true;
                rest = rest.replace(w.as_str(), " ");
            }
        }
        let rest = crate::dialog::slots::without_fillers(&rest, &words.explanation_fillers);
        let han = rest
            .chars()
            .filter(|c| crate::catalog::value::is_han(*c))
            .count();
        // A code alone is the field's own refusal to give ("这像是账号或编号").
        talk && han < words.explanation_min_han.max(1)
    }

    /// Answers questions asked where `field` is asked: one naming a field of the service
    /// ("为啥要免责声明") gets that field's help; a when question the schedule; any other the
    /// asked field's help.
    fn answer_field_questions(
        &self,
        service: &Service,
        field: &ServiceField,
        questions: &[String],
        t: &mut Turn,
    ) {
        let when_words = &self.tuning().reading.when_questions;
        for q in questions {
            let folded = fold(q);
            let named = service.fields.iter().find(|f| {
                std::iter::once(&f.spec.label)
                    .chain(&f.spec.cues)
                    .any(|l| l.chars().count() >= 2 && folded.contains(&fold(l)))
            });
            if named.is_none() && when_words.iter().any(|w| folded.contains(w.as_str())) {
                self.answer_questions(std::slice::from_ref(q), &[service.id], t);
                continue;
            }
            let why = self
                .tuning()
                .reading
                .why_words
                .iter()
                .any(|w| folded.contains(w.as_str()));
            if named.is_none() && !why {
                // "你是机器人吗": said to be one the bot cannot answer.
                self.answer_questions(std::slice::from_ref(q), &[service.id], t);
                continue;
            }
            let about = named.unwrap_or(field);
            let help = if about.spec.help.is_empty() {
                about.spec.render_prompt()
            } else {
                about.spec.help.clone()
            };
            t.say.push(self.m().render(
                MessageKey::FieldHelp,
                &[("label", &about.spec.label), ("help", &help)],
            ));
        }
    }

    /// "不是 客户要看利润" → "客户要看利润": a rejection opening free text is no part of it
    /// (`[slots] rejection_openers`); a message that is only the opener stays as it is.
    fn without_rejection(&self, text: &str) -> String {
        crate::dialog::slots::after_opener(text, &self.tuning().slots.rejection_openers)
            .unwrap_or(text.trim())
            .to_owned()
    }

    /// A message made only of values for other fields ("原始单号 3456…" while the reason is
    /// asked, "抖店和快手" for the platforms) fills those fields; the asked one keeps waiting.
    pub(super) fn other_fields_only(
        &self,
        mut form: Form,
        service: &Service,
        key: &FieldKey,
        found: &Extraction,
        text: &str,
        t: &mut Turn,
    ) -> ControlFlow<State, Form> {
        // "快手不要了 只要淘宝京东", "那就只开淘宝": the options after 只要 are the whole list.
        let folded_text = fold(text);
        let set_from = self
            .tuning()
            .slots
            .list_set_words
            .iter()
            .filter_map(|w| folded_text.rfind(w.as_str()).map(|at| at + w.len()))
            .max();
        let set_lists = set_from
            .map(|at| self.extract(service, &folded_text[at..]))
            .map(|after| {
                after
                    .answers
                    .into_iter()
                    .filter(|(k, _)| {
                        k != key
                            && service.field(k).is_some_and(|f| {
                                matches!(f.spec.kind, FieldKind::MultiChoice { .. })
                            })
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let sets_list = !set_lists.is_empty();
        // Copied only when a list is set, which few messages do.
        let mut found = std::borrow::Cow::Borrowed(found);
        if sets_list {
            let found = found.to_mut();
            for (k, v) in set_lists {
                found.answers.insert(k.clone(), v);
                found.cued.insert(k);
            }
        }
        let found = found.as_ref();
        let others: Vec<_> = found
            .answers
            .iter()
            // A value the form already holds is no news ("某某淘宝店" for the shop name of a
            // 淘宝 shop); only new or changed values count.
            .filter(|(k, v)| {
                *k != key
                    && form.answers.get(*k) != Some(*v)
                    && found.cued.contains(*k)
                    && service.field(k).is_some_and(|f| f.is_active(&form.answers))
            })
            .collect();
        // Where a sentence may be the answer (a reason, a name), a long rest means the message
        // is that answer; a choice is never answered by a sentence, so there the rest is only
        // the person's way of saying it ("哦 是拼多多那个店 编号P003").
        let closed = service.field(key).is_some_and(|f| f.spec.kind.is_closed());
        if found.answers.contains_key(key)
            || others.is_empty()
            || (found.leftover_chars > 4 && !closed && !sets_list)
        {
            return ControlFlow::Continue(form);
        }
        let m = self.m();
        let folded = crate::dialog::text::fold(text);
        let adds = self
            .tuning()
            .slots
            .list_add_words
            .iter()
            .any(|w| folded.contains(w.as_str()));
        for (k, v) in others {
            let mut v = v.clone();
            if let Some(f) = service.field(k) {
                // "单号少写一个 还有TB1003": a list given before grows; it is not replaced.
                if adds
                    && matches!(f.spec.kind, FieldKind::IdList { .. })
                    && let Some(was) = form.answers.get(k)
                    && let Ok(both) = f.spec.parse_answer(&format!(
                        "{}, {}",
                        was.display(false),
                        v.display(false)
                    ))
                {
                    v = both;
                }
                t.say.push(m.render(
                    MessageKey::FieldUpdated,
                    &[
                        ("label", &f.spec.label),
                        ("value", &f.spec.display_value(&v)),
                    ],
                ));
            }
            form.answers.insert(k.clone(), v);
            form.offers.retain(|o| o.key != *k);
            if !form.order.contains(k) {
                form.order.push(k.clone());
            }
        }
        for n in &found.noticed {
            t.say.push(m.render(
                MessageKey::NoticedValue,
                &[("label", &n.label), ("raw", &n.raw), ("why", &n.why)],
            ));
        }
        ControlFlow::Break(self.advance(form, t))
    }

    /// The asked field's value in `text` and whether it was cued, or why there is none.
    pub(super) fn read_answer(
        &self,
        field: &ServiceField,
        text: &str,
        found: &Extraction,
    ) -> Result<(FieldValue, bool), String> {
        let key = field.key();
        let words = &self.tuning().commands;
        let plain_word = Tuning::is(&words.yes, text)
            || Tuning::is(&words.no, text)
            || self.tuning().small_talk(text) == Some(SmallTalk::Acknowledgement);
        // "采购单, 其他: 盘点单" for an assumed list: slot extraction knows only the listed
        // options, so the field's own reading, which keeps the 其他 part, goes first.
        let with_other = field
            .spec
            .other_allowed
            .then(|| field.spec.parse_answer(text).ok())
            .flatten()
            .filter(crate::catalog::value::holds_other);
        match (with_other, found.answers.get(key)) {
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
            (None, None) => match field.spec.parse_answer(text) {
                Ok(value) => Ok((value, false)),
                Err(e) => Err(found
                    .noticed
                    .iter()
                    .find(|n| n.key == *key)
                    .map_or(e.message, |n| n.why.clone())),
            },
        }
    }

    /// The asked field takes `value`; a Chinese seller account typed without a cue is read
    /// back first.
    pub(super) fn accept(
        &self,
        mut form: Form,
        field: &ServiceField,
        text: &str,
        value: FieldValue,
        cued: bool,
        t: &mut Turn,
    ) -> State {
        let key = field.key().clone();
        // "客户上唯品会" where a shop's name is asked is a sentence, not a name.
        if !cued && field.spec.name_like && self.reads_as_sentence(text) {
            form.failures = form.failures.saturating_add(1);
            t.say.push(
                self.m()
                    .render(MessageKey::NotAName, &[("label", &field.spec.label)]),
            );
            t.say.push(field.spec.render_prompt());
            return State::Filling { form };
        }
        if !cued
            && matches!(field.spec.kind, FieldKind::SellerAccount)
            && text.chars().any(crate::catalog::value::is_han)
        {
            // "客户要给买家开票" is a sentence and "好了没" a question, not a shop's
            // account name.
            if self.reads_as_sentence(text)
                || crate::dialog::commands::parse_plain(text, &self.tuning().plain_commands)
                    .is_some()
            {
                form.failures = form.failures.saturating_add(1);
                t.say.push(
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
            let question = self
                .m()
                .render(MessageKey::OfferChineseAccount, &[("value", &shown)]);
            form.offers.retain(|o| o.key != key);
            form.offers.push(Offer {
                key,
                value,
                question: question.clone(),
            });
            t.say.push(question);
            return State::Filling { form };
        }
        form.answers.insert(key.clone(), value);
        form.offers.retain(|o| o.key != key);
        if !form.order.contains(&key) {
            form.order.push(key);
        }
        form.failures = 0;
        self.advance(form, t)
    }

    /// Whether `text` holds words no name has ("客户", "开通", "了"): a sentence, not a shop's
    /// or an account's name.
    fn reads_as_sentence(&self, text: &str) -> bool {
        self.tuning()
            .slots
            .chinese_account_stop_words
            .iter()
            .any(|w| text.contains(w.as_str()))
    }

    /// The asked field refused the message: say why, offer "其他: …" or the cap where that
    /// helps, and after 3 failures a way out.
    pub(super) fn refuse(
        &self,
        mut form: Form,
        field: &ServiceField,
        text: &str,
        message: String,
        say: &mut Say,
    ) -> State {
        let m = self.m();
        let key = field.key().clone();
        form.failures = form.failures.saturating_add(1);
        // Not in an assumed list: offer it as "其他: …", taken on a yes.
        if let Some(value) = field.spec.as_other(text) {
            let question = m.render(
                MessageKey::OfferOther,
                &[("raw", text.trim()), ("value", &value.display(false))],
            );
            say.push(question.clone());
            form.offers.retain(|o| o.key != key);
            form.offers.push(Offer {
                key,
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
                say.push(m.render(MessageKey::TooManyFailures, &[("label", &field.spec.label)]));
            }
            return State::Filling { form };
        }
        say.push(message);
        if form.failures >= 3 {
            form.failures = 0;
            say.push(m.render(MessageKey::TooManyFailures, &[("label", &field.spec.label)]));
        } else if field.spec.kind.is_closed() {
            // The options again, as buttons, without repeating the question text.
            self.ask(field, &form, say);
            say.parts.pop();
        }
        State::Filling { form }
    }
}
