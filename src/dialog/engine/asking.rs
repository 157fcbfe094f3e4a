//! Starting a form with what the first message carries, and asking its fields one at a time:
//! after every change the form is advanced (refusal, guidance, next field or summary).

use super::{Engine, Say, Turn};
use crate::catalog::MessageKey;
use crate::catalog::{FieldKey, FieldKind, FieldValue, Service, ServiceField};
use crate::dialog::session::{Form, Offer, Queued, State, Step};
use crate::dialog::slots::{Corrected, Extraction};
use crate::dialog::text::fold;
use crate::dialog::understand::Verdict;
use crate::domain::{ChoiceOption, ServiceId};

impl Engine<'_> {
    /// Whether `text` still means `id` once the pieces of `said` are taken out.
    fn understood_without(&self, id: ServiceId, text: &str, said: &str) -> bool {
        let mut rest = text.to_owned();
        for piece in said.split('，') {
            rest = rest.replace(piece, " ");
        }
        // Words alone (the message's vector is of the whole text): the service must still
        // come first, clearly or in a close call.
        match self.matcher.understand_with(&rest, None).verdict {
            Verdict::Service(s) => s == id,
            Verdict::Ambiguous(close) => close.first() == Some(&id),
            Verdict::Nothing => false,
        }
    }

    /// Starts a form for `id` with what `text` already carries; `carried` is the seller account
    /// of the request this one follows (a switch, a queued service), used when `text` has none.
    pub(super) fn start(
        &self,
        id: ServiceId,
        text: &str,
        carried: Option<String>,
        t: &mut Turn,
    ) -> State {
        let Some(service) = self.catalog.service(id) else {
            t.say.push(self.m().get(MessageKey::NothingMatched));
            return State::Idle;
        };
        let m = self.m();
        let found = self.extract(service, text);
        let explained =
            crate::dialog::slots::explanation(service, &self.tuning().slots, text, &found);
        let Extraction {
            mut answers,
            noticed,
            extra_accounts,
            corrected,
            unsure,
            ..
        } = found;
        t.say.push(m.render(
            MessageKey::StartService,
            &[("id", &service.id.to_string()), ("name", &service.name)],
        ));
        if service.applicant == crate::catalog::ApplicantRule::ImplementationStaff {
            t.say.push(m.render(
                MessageKey::ApplicantRuleNote,
                &[("rule", m.get(MessageKey::ApplicantImplementationOnly))],
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
                        line.push_str(m.get(MessageKey::CarriedSuffix));
                    }
                    Some(line)
                })
                .collect::<Vec<_>>()
                .join(", ");
            t.say
                .push(m.render(MessageKey::Prefilled, &[("values", &values)]));
        }
        self.say_corrected(&corrected, t);
        // Nothing recognised is dropped without a word.
        let mut offers = Vec::new();
        for n in &noticed {
            match &n.offer {
                Some(value) => offers.push(self.cap_offer(&n.key, &n.raw, &n.why, value.clone())),
                None => t.say.push(m.render(
                    MessageKey::NoticedValue,
                    &[("label", &n.label), ("raw", &n.raw), ("why", &n.why)],
                )),
            }
        }
        // A number given without a cue is asked about, never filled in.
        for u in unsure {
            let question = m.render(
                MessageKey::OfferUncued,
                &[("label", &u.label), ("value", &u.raw)],
            );
            offers.push(Offer {
                key: u.key,
                value: u.value,
                question,
            });
        }
        // "账号hz_tea01 仓库重新规划货区": the words that say why are offered as the reason.
        if let Some(field) = service.fields.iter().find(|f| f.spec.prose && f.asked)
            && !answers.contains_key(field.key())
            && !offers.iter().any(|o: &Offer| &o.key == field.key())
            && !noticed.iter().any(|n| &n.key == field.key())
            && let Some(said) = explained
            // "帮忙取消几个未付款订单" describes the request itself: only where the service was
            // named, or is still understood without them ("要用jd沧海的库存做自流转 … 他们货都
            // 在沧海仓"), are the other words why it is wanted.
            && (self.matcher.names_fully(service.id, text)
                || self.understood_without(service.id, text, &said))
            && let Ok(value) = field.spec.parse_answer(&said)
        {
            offers.push(Offer {
                key: field.key().clone(),
                value,
                question: m.render(
                    MessageKey::OfferUncued,
                    &[("label", &field.spec.label), ("value", &said)],
                ),
            });
        }
        if !extra_accounts.is_empty() {
            t.say.push(m.render(
                MessageKey::ExtraAccountsQueued,
                &[
                    ("accounts", &extra_accounts.join("、")),
                    ("name", &service.name),
                ],
            ));
            let at = 0;
            t.queue.splice(
                at..at,
                extra_accounts.into_iter().map(|a| Queued {
                    service: id,
                    account: Some(a),
                    text: None,
                    parked: None,
                }),
            );
        }
        let mut form = Form::prefilled(service, answers, t.now.timestamp());
        form.offers = offers;
        self.advance(form, t)
    }

    /// Which value a message that corrected itself was taken at ("不用 shopA").
    pub(super) fn say_corrected(&self, corrected: &[Corrected], t: &mut Turn) {
        for c in corrected {
            t.say.push(self.m().render(
                MessageKey::CorrectedValue,
                &[("label", &c.label), ("was", &c.was)],
            ));
        }
    }

    /// After any change: refuse, guide, ask the next field, or show the summary.
    pub(super) fn advance(&self, mut form: Form, t: &mut Turn) -> State {
        let Some(service) = self.catalog.service(form.service) else {
            return State::Idle;
        };
        if let Some(refusal) = service.refusal_for(&form.answers) {
            t.say.push(
                self.m()
                    .render(MessageKey::RefusalFraming, &[("message", &refusal.message)]),
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
                t.say.push(self.m().get(MessageKey::RefusalRetry));
            } else {
                return State::Idle;
            }
        }
        if let Some(guidance) = service.guidance_for(&form.answers) {
            t.say.push(self.m().render(
                MessageKey::GuidanceFraming,
                &[("message", &guidance.message)],
            ));
            return State::Idle;
        }
        // Answers to fields no longer asked (a condition flipped) are dropped.
        let active: Vec<_> = service
            .active_fields(&form.answers)
            .map(|f| f.key().clone())
            .collect();
        form.answers.retain(|k, _| active.contains(k));
        form.order.retain(|k| active.contains(k));
        let open = |f: &&ServiceField| {
            f.asked
                && f.is_active(&form.answers)
                && !form.answers.contains_key(f.key())
                && !form.skipped.contains(f.key())
        };
        // A file that comes later is asked once everything else is answered.
        let next = service
            .fields
            .iter()
            .filter(open)
            .find(|f| !form.deferred.contains(f.key()))
            .or_else(|| service.fields.iter().find(open));
        match next {
            Some(field)
                if self.in_group
                    && (field.spec.sensitive
                        || matches!(field.spec.kind, FieldKind::Attachment { .. })) =>
            {
                form.step = Step::Ask(field.key().clone());
                t.say.push(
                    self.m()
                        .render(MessageKey::ContinuePrivate, &[("label", &field.spec.label)]),
                );
                t.say.move_to_private = true;
            }
            Some(field) => {
                form.step = Step::Ask(field.key().clone());
                self.ask_first(field, &form, &mut t.say);
            }
            None => {
                form.step = Step::Summary;
                self.summary(service, &form, &mut t.say, t.now);
            }
        }
        State::Filling { form }
    }

    /// The cap offered instead of an over-cap number, with the question that offers it.
    pub(super) fn cap_offer(&self, key: &FieldKey, raw: &str, why: &str, cap: FieldValue) -> Offer {
        let question = self.m().render(
            MessageKey::OfferValue,
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
    pub(super) fn ask_first(&self, field: &ServiceField, form: &Form, say: &mut Say) {
        if let FieldKind::Attachment {
            template: Some(template),
        } = &field.spec.kind
        {
            say.template = Some(template.clone());
        }
        self.ask(field, form, say);
    }

    pub(super) fn ask(&self, field: &ServiceField, form: &Form, say: &mut Say) {
        let mut prompt = field.spec.render_prompt();
        if !field.required {
            prompt.push('\n');
            prompt.push_str(self.m().get(MessageKey::OptionalHint));
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

    pub(super) fn reask(&self, form: Form, say: &mut Say) -> State {
        if let (Step::Ask(key), Some(service)) = (&form.step, self.service(&form))
            && let Some(field) = service.field(key)
        {
            self.ask(field, &form, say);
        } else if form.step == Step::Summary {
            say.push(self.m().get(MessageKey::ConfirmNeeded));
        } else if form.step == Step::PickEdit
            && let Some(service) = self.service(&form)
        {
            say.push(self.m().render(
                MessageKey::EditWhich,
                &[("fields", &self.editable_list(service, &form))],
            ));
        }
        State::Filling { form }
    }

    pub(super) fn editable_fields<'s>(
        &self,
        service: &'s Service,
        form: &Form,
    ) -> Vec<&'s ServiceField> {
        service
            .fields
            .iter()
            .filter(|f| f.is_active(&form.answers) && form.answers.contains_key(f.key()))
            .collect()
    }

    pub(super) fn editable_list(&self, service: &Service, form: &Form) -> String {
        self.editable_fields(service, form)
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{}. {}", i + 1, f.spec.label))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Finds a field of the form by what the user called it ("卖家账号", "账号", "原因").
    pub(super) fn find_field<'s>(
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
}
