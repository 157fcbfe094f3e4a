//! A rejected request opened again for its requester ("重新提交 KT-…").

use chrono::{DateTime, Utc};

use super::{Engine, Outcome, Say};
use crate::catalog::MessageKey;
use crate::dialog::session::{Form, Session, State, Step};
use crate::domain::ServiceId;

impl Engine<'_> {
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
            say.push(self.m().get(MessageKey::CmdNotFound));
            return Self::outcome(session, say, None);
        };
        let mut form = Form::prefilled(found, answers, now.timestamp());
        form.resubmit_of = Some(rejected.to_owned());
        form.step = Step::PickEdit;
        let m = self.m();
        let fields = found
            .summary_lines(&form.answers)
            .iter()
            .map(|(label, value)| {
                m.render(
                    MessageKey::SummaryLine,
                    &[("label", label), ("value", value)],
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        say.push(m.render(
            MessageKey::ResubmitOpened,
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
            say.push(m.get(MessageKey::ResubmitPrivate));
            say.move_to_private = true;
        } else {
            say.push(m.render(
                MessageKey::EditWhich,
                &[("fields", &self.editable_list(found, &form))],
            ));
        }
        session.state = State::Filling { form };
        Self::outcome(session, say, None)
    }
}
