//! The bot's wording (`dialogs/messages.toml`): a flat key → text table and
//! a tiny `{placeholder}` renderer. The loader refuses a file that lacks any
//! key listed in [`REQUIRED_KEYS`], so `get` never comes back empty-handed
//! for those.

use std::collections::BTreeMap;

/// Keys the code relies on; the loader fails when one is missing.
pub const REQUIRED_KEYS: &[&str] = &[
    "cmd_list_resubmit",
    "cmd_resubmit_usage",
    "cmd_resubmit_not_rejected",
    "cmd_status_resubmit_of",
    "resubmit_opened",
    "resubmit_private",
    "receipt_resubmit_of",
    "handler_batch_overview",
    "handler_batch_more",
    "handler_batch_console",
    "handler_card_source",
    "handler_card_done",
    "handler_card_reject",
    "handler_card_console",
    "card_handled",
    "card_reject_ask",
    "card_reject_cancelled",
    "template_sent",
    "greeting",
    "help",
    "prompt",
    "prompt_with_example",
    "prompt_with_rule",
    "switch_queued",
    "queued_account",
    "text_control_chars",
    "plain_command_in_form",
    "correction_taken",
    "cmd_status_expected",
    "cmd_status_due",
    "several_queued",
    "nothing_to_confirm",
    "not_at_summary",
    "noticed_value",
    "noticed_platform",
    "offer_value",
    "offer_other",
    "choice_other_rule",
    "err_other_empty",
    "offer_chinese_account",
    "carried_suffix",
    "extra_accounts_queued",
    "template_refused",
    "refusal_retry",
    "err_integer_not_above_default",
    "summary_header",
    "summary_warnings_header",
    "summary_preconditions_header",
    "confirm_prompt",
    "confirmed",
    "cancelled",
    "filed_receipt",
    "receipt_handler_unnamed",
    "receipt_channel_email_unaddressed",
    "busy",
    "form_expired",
    "choose_candidates",
    "nothing_matched",
    "guidance_framing",
    "refusal_framing",
    "applicant_implementation_only",
    "window_daily_batch",
    "resource_platform_hint",
    "legacy_process_notice",
    "skip_not_allowed",
    "err_empty",
    "err_seller_account",
    "err_text_too_short",
    "err_text_too_long",
    "err_pattern",
    "err_email",
    "err_integer",
    "err_integer_min",
    "err_integer_max",
    "err_integer_allowed",
    "err_money",
    "err_money_min",
    "err_money_max",
    "err_choice",
    "err_choice_ambiguous",
    "err_yes_no",
    "err_attachment",
    "err_id_list_empty",
    "err_id_list_item",
    "err_id_list_too_many",
    "err_duration",
    "err_duration_max",
    "err_duration_permanent",
    "thanks_reply",
    "start_service",
    "prefilled",
    "switch_confirm",
    "switch_kept",
    "too_many_failures",
    "nothing_to_cancel",
    "at_first_step",
    "queued_next",
    "field_updated",
    "summary_window",
    "summary_line",
    "choose_number",
    "attachment_unexpected",
    "optional_hint",
    "unknown_command",
    "confirm_needed",
    "field_not_found",
    "services_overview",
    "services_found",
    "services_none",
    "welcome_back",
    "filing_failed",
    "applicant_rule_note",
    "attachment_failed",
    "notice_done",
    "notice_rejected",
    "notice_pending",
    "notice_note",
    "cmd_status",
    "cmd_status_note",
    "cmd_status_usage",
    "cmd_not_found",
    "cmd_mine_header",
    "cmd_mine_empty",
    "cmd_line",
    "cmd_today_header",
    "cmd_list",
    "cmd_list_services",
    "cmd_list_status",
    "cmd_list_mine",
    "cmd_list_today",
    "cmd_list_cancel",
    "cmd_list_help",
    "cmd_list_done",
    "cmd_list_reject",
    "cmd_today_view_team",
    "cmd_today_view_all",
    "cmd_today_view_own",
    "cmd_today_view_own_group",
    "cmd_page",
    "cmd_cancel_usage",
    "cmd_cancel_done",
    "cmd_not_now",
    "cmd_done_ok",
    "cmd_reject_ok",
    "cmd_notify_now",
    "cmd_notify_later",
    "cmd_reject_usage",
    "cmd_done_usage",
    "cmd_no_permission",
    "continue_private",
    "slow_down",
];

/// Wording table.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Messages {
    map: BTreeMap<String, String>,
}

// Every `FieldSpec` holds the table; printing all texts in each debug dump
// would drown the interesting part.
impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("keys", &self.map.len())
            .finish()
    }
}

impl Messages {
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self { map }
    }

    /// The raw text for `key`; the key itself when absent so a typo in an
    /// optional key shows up visibly rather than as an empty reply.
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.map.get(key).map(String::as_str).unwrap_or(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// `get(key)` with `{name}` placeholders filled from `args`.
    pub fn render(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.get(key), args)
    }
}

/// Replaces each `{name}` in `template` with its value from `args`;
/// unknown placeholders are left as they are.
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match args.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_and_keeps_unknown() {
        assert_eq!(
            fill(
                "请提供{label}, 例如: {example} {x}",
                &[("label", "卖家账号"), ("example", "a1")]
            ),
            "请提供卖家账号, 例如: a1 {x}"
        );
        assert_eq!(fill("no close {brace", &[]), "no close {brace");
    }
}
