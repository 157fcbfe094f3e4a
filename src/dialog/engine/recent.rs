//! The form that just left the conversation, read again: a cancel undone right after
//! ("点错了 不取消"), and the same request filed again for another customer ("一样的 给 X
//! 也开"). Only from idle, only soon after, and only with the words for it (`[commands]
//! undo_cancel`, `same_again`).

use super::{Engine, Turn};
use crate::catalog::{FieldKind, MessageKey};
use crate::dialog::session::{Form, State};
use crate::dialog::text::fold;
use crate::dialog::understand::{Tuning, Verdict};

/// A misclicked 取消 is undone this long after (seconds).
const UNDO_WINDOW_SECS: i64 = 600;
/// "一样的 给 X 也开" repeats a request filed this long ago at most (seconds).
const AGAIN_WINDOW_SECS: i64 = 3600;

impl Engine<'_> {
    /// The recent form read again, when the message asks for that; `None` otherwise.
    pub(super) fn again(
        &self,
        text: &str,
        command: Option<&super::command::FormCommand>,
        t: &mut Turn,
    ) -> Option<State> {
        let recent = t.recent.as_ref()?;
        let age = t.now.timestamp() - recent.at;
        let words = &self.tuning().commands;
        let folded = fold(text);
        if recent.cancelled {
            let short = text.chars().count() <= 12;
            let undo = Tuning::is(&words.undo_cancel, text)
                || (short
                    && words
                        .undo_cancel
                        .iter()
                        .any(|w| folded.contains(w.as_str())));
            if !(undo && age <= UNDO_WINDOW_SECS && command.is_none()) {
                return None;
            }
            let form = t.recent.take()?.form;
            let name = self.service_label(form.service).unwrap_or_default();
            tracing::info!(service = %form.service, "a misclicked cancel undone");
            t.say.push(
                self.m()
                    .render(MessageKey::CancelUndone, &[("name", &name)]),
            );
            return Some(self.reask(form, &mut t.say));
        }
        if age > AGAIN_WINDOW_SECS
            || command.is_some()
            || !words.same_again.iter().any(|w| folded.contains(w.as_str()))
        {
            return None;
        }
        let service = self.catalog.service(recent.form.service)?;
        // Another service named is a request of its own, not this one again.
        if let Verdict::Service(id) = self.matcher.understand_with(text, self.meaning).verdict
            && id != service.id
        {
            return None;
        }
        let account_field = service.seller_account_field()?;
        let found = self.extract(service, text);
        let account = found.answers.get(account_field.key())?.clone();
        if recent.form.answers.get(account_field.key()) == Some(&account) {
            return None;
        }
        // What says why and what is wanted is kept; what belongs to the other customer (its
        // codes, names, files) is asked again.
        let kept_kind = |kind: &FieldKind| {
            matches!(
                kind,
                FieldKind::SingleChoice { .. }
                    | FieldKind::MultiChoice { .. }
                    | FieldKind::YesNo
                    | FieldKind::Integer { .. }
                    | FieldKind::Duration { .. }
                    | FieldKind::Money { .. }
            )
        };
        let mut answers = crate::catalog::Answers::new();
        let mut kept = Vec::new();
        for f in &service.fields {
            let Some(value) = recent.form.answers.get(f.key()) else {
                continue;
            };
            if f.spec.prose || kept_kind(&f.spec.kind) {
                kept.push(format!("{} {}", f.spec.label, f.spec.display_value(value)));
                answers.insert(f.key().clone(), value.clone());
            }
        }
        // Values said now win over the kept ones.
        for (key, value) in found.answers {
            answers.insert(key, value);
        }
        // A new form shows its summary first; `advance` asks what the other customer lacks.
        let form = Form::prefilled(service, answers, t.now.timestamp());
        let name = self.service_label(service.id).unwrap_or_default();
        tracing::info!(service = %service.id, "the same request again for another account");
        t.say.push(self.m().render(
            MessageKey::SameAgain,
            &[
                ("name", &name),
                ("account", &account.display(false)),
                ("kept", &kept.join("; ")),
            ],
        ));
        Some(self.advance(form, t))
    }
}
