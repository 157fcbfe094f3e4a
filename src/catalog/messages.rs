//! The bot's wording (`dialogs/messages.toml`): a flat key → text table and
//! a tiny `{placeholder}` renderer. The code names texts by [`MessageKey`], one list the
//! loader checks: a file that lacks a key the code uses fails at load, never in chat.

use std::collections::BTreeMap;

/// Declares [`MessageKey`]: one variant per text the code asks for, with its key in
/// `messages.toml`, and [`MessageKey::ALL`] built from the same list.
macro_rules! message_keys {
    ($($variant:ident = $key:literal,)*) => {
        /// A text of `dialogs/messages.toml` the code uses. The loader refuses a file that
        /// lacks any of [`MessageKey::ALL`], so [`Messages::get`] always has one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum MessageKey {
            $($variant,)*
        }

        impl MessageKey {
            /// Every key the code uses: what the loader checks.
            pub const ALL: &[MessageKey] = &[$(MessageKey::$variant,)*];

            /// The key as written in `messages.toml`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(MessageKey::$variant => $key,)*
                }
            }
        }
    };
}

message_keys! {
    Greeting = "greeting",
    Help = "help",
    Prompt = "prompt",
    PromptWithExample = "prompt_with_example",
    PromptWithRule = "prompt_with_rule",
    SummaryHeader = "summary_header",
    SummaryWarningsHeader = "summary_warnings_header",
    SummaryPreconditionsHeader = "summary_preconditions_header",
    ConfirmPrompt = "confirm_prompt",
    Confirmed = "confirmed",
    Cancelled = "cancelled",
    CancelUndone = "cancel_undone",
    SameAgain = "same_again",
    SameQueued = "same_queued",
    FiledReceipt = "filed_receipt",
    Busy = "busy",
    FormExpired = "form_expired",
    ChooseCandidates = "choose_candidates",
    ChoiceLabelHandler = "choice_label_handler",
    NothingMatched = "nothing_matched",
    GuidanceFraming = "guidance_framing",
    RefusalFraming = "refusal_framing",
    ApplicantImplementationOnly = "applicant_implementation_only",
    WindowDailyBatch = "window_daily_batch",
    ResourcePlatformHint = "resource_platform_hint",
    SkipNotAllowed = "skip_not_allowed",
    BackDone = "back_done",
    EditWhich = "edit_which",
    FieldHelp = "field_help",
    ErrEmpty = "err_empty",
    ErrSellerAccount = "err_seller_account",
    ErrTextTooShort = "err_text_too_short",
    ErrTextTooLong = "err_text_too_long",
    ErrPattern = "err_pattern",
    ErrEmail = "err_email",
    ErrInteger = "err_integer",
    ErrIntegerMin = "err_integer_min",
    ErrIntegerMax = "err_integer_max",
    ErrIntegerNotAboveDefault = "err_integer_not_above_default",
    ErrIntegerAllowed = "err_integer_allowed",
    ErrMoney = "err_money",
    ErrMoneyMin = "err_money_min",
    ErrMoneyMax = "err_money_max",
    ErrChoice = "err_choice",
    ChoiceOtherRule = "choice_other_rule",
    ErrOtherEmpty = "err_other_empty",
    ErrChoiceAmbiguous = "err_choice_ambiguous",
    ErrYesNo = "err_yes_no",
    ErrAttachment = "err_attachment",
    ErrIdListEmpty = "err_id_list_empty",
    ErrIdListItem = "err_id_list_item",
    ErrIdListTooMany = "err_id_list_too_many",
    ErrDuration = "err_duration",
    ErrDurationMax = "err_duration_max",
    ErrDurationPermanent = "err_duration_permanent",
    ThanksReply = "thanks_reply",
    StartService = "start_service",
    Prefilled = "prefilled",
    SwitchConfirm = "switch_confirm",
    SwitchQueued = "switch_queued",
    SwitchKept = "switch_kept",
    TooManyFailures = "too_many_failures",
    NothingToCancel = "nothing_to_cancel",
    AtFirstStep = "at_first_step",
    QueuedNext = "queued_next",
    QueuedAccount = "queued_account",
    ReceiptHandlerUnnamed = "receipt_handler_unnamed",
    ReceiptChannelEmailUnaddressed = "receipt_channel_email_unaddressed",
    FieldUpdated = "field_updated",
    SummaryWindow = "summary_window",
    SummaryLine = "summary_line",
    ChooseNumber = "choose_number",
    AttachmentUnexpected = "attachment_unexpected",
    OptionalHint = "optional_hint",
    UnknownCommand = "unknown_command",
    CmdList = "cmd_list",
    CmdListServices = "cmd_list_services",
    CmdListStatus = "cmd_list_status",
    CmdListMine = "cmd_list_mine",
    CmdListToday = "cmd_list_today",
    CmdListCancel = "cmd_list_cancel",
    CmdListResubmit = "cmd_list_resubmit",
    CmdListHelp = "cmd_list_help",
    CmdListDone = "cmd_list_done",
    CmdListReject = "cmd_list_reject",
    ConfirmNeeded = "confirm_needed",
    ServicesOverview = "services_overview",
    ServicesFound = "services_found",
    ServicesNone = "services_none",
    WelcomeBack = "welcome_back",
    FilingFailed = "filing_failed",
    ApplicantRuleNote = "applicant_rule_note",
    AttachmentFailed = "attachment_failed",
    NoticeDone = "notice_done",
    NoticeRejected = "notice_rejected",
    NoticePending = "notice_pending",
    NoticeNote = "notice_note",
    CmdStatus = "cmd_status",
    CmdStatusExpected = "cmd_status_expected",
    CmdStatusDue = "cmd_status_due",
    CmdStatusNote = "cmd_status_note",
    CmdStatusUsage = "cmd_status_usage",
    CmdNotFound = "cmd_not_found",
    CmdMineHeader = "cmd_mine_header",
    CmdMineEmpty = "cmd_mine_empty",
    CmdStatusNoneForService = "cmd_status_none_for_service",
    CmdLine = "cmd_line",
    CmdTodayHeader = "cmd_today_header",
    CmdTodayViewOwn = "cmd_today_view_own",
    CmdTodayViewOwnGroup = "cmd_today_view_own_group",
    CmdPage = "cmd_page",
    CmdCancelDone = "cmd_cancel_done",
    CmdNotNow = "cmd_not_now",
    CmdDoneOk = "cmd_done_ok",
    CmdRejectOk = "cmd_reject_ok",
    CmdNotifyNow = "cmd_notify_now",
    CmdNotifyLater = "cmd_notify_later",
    CmdRejectUsage = "cmd_reject_usage",
    CmdDoneUsage = "cmd_done_usage",
    CmdResubmitUsage = "cmd_resubmit_usage",
    CmdResubmitNotRejected = "cmd_resubmit_not_rejected",
    CmdStatusResubmitOf = "cmd_status_resubmit_of",
    CmdNoPermission = "cmd_no_permission",
    ContinuePrivate = "continue_private",
    SlowDown = "slow_down",
    CorrectionTaken = "correction_taken",
    ServiceDisowned = "service_disowned",
    UnreadPart = "unread_part",
    CmdNoneRejected = "cmd_none_rejected",
    QueuedAccountChanged = "queued_account_changed",
    WhatInstead = "what_instead",
    PlanReadBack = "plan_read_back",
    ValueChanged = "value_changed",
    CancelledQueueLeft = "cancelled_queue_left",
    QueueCancelled = "queue_cancelled",
    QueuedWithdrawn = "queued_withdrawn",
    InlineWhen = "inline_when",
    InfoQuestion = "info_question",
    InfoQuestionAbout = "info_question_about",
    MovedToPrivateReminder = "moved_to_private_reminder",
    HandedToPrivateForm = "handed_to_private_form",
    ValueKept = "value_kept",
    ParkedForFile = "parked_for_file",
    ParkedResumed = "parked_resumed",
    ParkedFileKept = "parked_file_kept",
    InlineQuestion = "inline_question",
    EarlierSameRequest = "earlier_same_request",
    DayToday = "day_today",
    ConfirmIrreversible = "confirm_irreversible",
    DaysAgo = "days_ago",
    PlainCommandInForm = "plain_command_in_form",
    BackToForm = "back_to_form",
    FileLater = "file_later",
    AnswerLater = "answer_later",
    NothingFiledInForm = "nothing_filed_in_form",
    TextControlChars = "text_control_chars",
    NothingQueued = "nothing_queued",
    NothingToConfirm = "nothing_to_confirm",
    AlreadyFiled = "already_filed",
    NotAtSummary = "not_at_summary",
    ReplaceAtSummary = "replace_at_summary",
    NotAReason = "not_a_reason",
    FormStillOpen = "form_still_open",
    InlineWarnings = "inline_warnings",
    InlineNoWarnings = "inline_no_warnings",
    FormStillAtSummary = "form_still_at_summary",
    NoticedValue = "noticed_value",
    CorrectedValue = "corrected_value",
    NoticedPlatform = "noticed_platform",
    OfferValue = "offer_value",
    OfferOther = "offer_other",
    OfferChineseAccount = "offer_chinese_account",
    OfferUncued = "offer_uncued",
    ErrNotProse = "err_not_prose",
    NotAName = "not_a_name",
    CarriedSuffix = "carried_suffix",
    ExtraAccountsQueued = "extra_accounts_queued",
    TemplateRefused = "template_refused",
    RefusalRetry = "refusal_retry",
    ResubmitOpened = "resubmit_opened",
    ResubmitPrivate = "resubmit_private",
    ReceiptResubmitOf = "receipt_resubmit_of",
    HandlerBatchOverview = "handler_batch_overview",
    HandlerBatchMore = "handler_batch_more",
    HandlerBatchConsole = "handler_batch_console",
    HandlerCardSource = "handler_card_source",
    HandlerCardDone = "handler_card_done",
    HandlerCardReject = "handler_card_reject",
    HandlerCardConsole = "handler_card_console",
    HandlerOaNew = "handler_oa_new",
    HandlerBatchOverdue = "handler_batch_overdue",
    HandlerCardSourceOverdue = "handler_card_source_overdue",
    HandlerReminder = "handler_reminder",
    HandlerReminderOlder = "handler_reminder_older",
    HandlerReminderMore = "handler_reminder_more",
    HandlerOpenLine = "handler_open_line",
    OverdueMark = "overdue_mark",
    AgeMinutes = "age_minutes",
    AgeHours = "age_hours",
    AgeDays = "age_days",
    AgeDaysHours = "age_days_hours",
    CmdTodayViewQueueTeam = "cmd_today_view_queue_team",
    CmdTodayViewQueueAll = "cmd_today_view_queue_all",
    CmdQueueHeader = "cmd_queue_header",
    CmdQueueEmpty = "cmd_queue_empty",
    CmdStatusFields = "cmd_status_fields",
    CardHandled = "card_handled",
    CardRejectAsk = "card_reject_ask",
    CardRejectCancelled = "card_reject_cancelled",
    TemplateSent = "template_sent",
    TemplateSending = "template_sending",
    TemplateFailed = "template_failed",
}

impl std::fmt::Display for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

    /// The text for `key` (the loader made sure there is one; the key itself otherwise, so a
    /// table built by hand shows a gap visibly rather than as an empty reply).
    pub fn get(&self, key: MessageKey) -> &str {
        self.map
            .get(key.as_str())
            .map_or(key.as_str(), String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// `get(key)` with `{name}` placeholders filled from `args`.
    pub fn render(&self, key: MessageKey, args: &[(&str, &str)]) -> String {
        fill(self.get(key), args)
    }

    /// How long something has waited, in the table's words: minutes under an hour, hours
    /// under a day, then days and hours.
    pub fn age(&self, minutes: i64) -> String {
        let minutes = minutes.max(0);
        let (days, hours) = (minutes / 1440, (minutes % 1440) / 60);
        match (days, hours) {
            (0, 0) => self.render(MessageKey::AgeMinutes, &[("n", &minutes.to_string())]),
            (0, h) => self.render(MessageKey::AgeHours, &[("n", &h.to_string())]),
            (d, 0) => self.render(MessageKey::AgeDays, &[("n", &d.to_string())]),
            (d, h) => self.render(
                MessageKey::AgeDaysHours,
                &[("days", &d.to_string()), ("hours", &h.to_string())],
            ),
        }
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
