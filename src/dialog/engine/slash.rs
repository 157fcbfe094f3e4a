//! The slash commands a turn answers itself: `/help`, `/cancel`, `/services [keyword]`.

use super::{Engine, Say};
use crate::catalog::MessageKey;
use crate::dialog::session::State;
use crate::dialog::text::fold;
use crate::domain::ServiceId;

impl Engine<'_> {
    pub(super) fn slash(&self, state: State, name: &str, args: &str, say: &mut Say) -> State {
        match name {
            "help" | "帮助" => {
                say.push(self.help_text());
                state
            }
            "cancel" | "取消" if args.is_empty() => {
                if matches!(state, State::Idle) {
                    say.push(self.m().get(MessageKey::NothingToCancel));
                } else {
                    say.push(self.m().get(MessageKey::Cancelled));
                }
                State::Idle
            }
            "services" | "服务" => {
                say.push(self.services(args));
                state
            }
            _ => {
                say.push(self.m().render(
                    MessageKey::UnknownCommand,
                    &[("commands", &crate::dialog::commands::command_list(self.m()))],
                ));
                state
            }
        }
    }

    /// `/help`, with the command list built from the one list of commands.
    pub(super) fn help_text(&self) -> String {
        self.m().render(
            MessageKey::Help,
            &[("commands", &crate::dialog::commands::command_list(self.m()))],
        )
    }

    pub(super) fn services(&self, keyword: &str) -> String {
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
                MessageKey::ServicesOverview,
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
            return m.render(MessageKey::ServicesNone, &[("keyword", keyword)]);
        }
        let list = ids
            .iter()
            .filter_map(|id| self.catalog.service(*id))
            .map(|s| format!("#{} {}", s.id, s.name))
            .collect::<Vec<_>>()
            .join("\n");
        m.render(MessageKey::ServicesFound, &[("services", &list)])
    }
}
