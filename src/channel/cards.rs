//! What a reply becomes on the wire: text messages and at most one button card, each within
//! WeCom's limits, with nothing the person must read cut. Questions with options get tappable
//! buttons instead of typed numbers (WeCom allows at most 6 on a button_interaction card; longer
//! lists stay numbered text). What the card says is decided here; its wire shape is
//! `wecom::cards`.
//!
//! The rule: a text that does not fit a card field is split, never cut. A question whose text
//! fits the card is the card alone (the question as title, the rest under it). Otherwise the
//! full text goes first as text messages (split at paragraphs, lines or sentences) and the card
//! follows as a shortcut, titled with the question's short form. Buttons show the options'
//! names when every name fits whole and no two read the same; otherwise they show the options'
//! numbers and the numbered list is in the text the person reads.

use crate::domain::{
    CardRelabeler, ChoiceOption, HandledLabel, PortError, Reply, UserId, numbered_options,
};
use crate::wecom::cards::{
    BUTTON_TEXT_CHARS, Button, ButtonInteraction, MAX_BUTTONS, MainTitle, REPLACE_NAME_CHARS,
    SUB_TITLE_CHARS, TITLE_CHARS, TITLE_DESC_CHARS, TemplateCard, TextNotice, fits,
};
use crate::wecom::text::message_parts;

/// The card's source line.
const SOURCE: &str = "开通助手";
/// A shortcut card's title when the question has no short form that fits.
const SHORTCUT_TITLE: &str = "请选择";
/// What replaces a clicked AI-bot card when the answer follows as a message of its own.
const ANSWER_FOLLOWS: &str = "回复内容较长, 见下一条消息。";

/// A fresh task id (`[0-9A-Za-z_-]`, unique per app) for a card.
#[must_use]
pub fn task_id() -> String {
    format!("kt_{:016x}", rand::random::<u64>())
}

/// One reply as the person sees it: text messages in this order, then the card.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// Each within the channel's byte limit, cut between paragraphs, lines or sentences.
    pub texts: Vec<String>,
    /// The question with buttons: whole when `texts` is empty, else a shortcut after them.
    pub card: Option<TemplateCard>,
}

/// Renders `reply` for a channel whose text messages hold `text_limit` bytes; `cards` says
/// whether a button card can be sent at all.
#[must_use]
pub fn render(reply: &Reply, task_id: &str, text_limit: usize, cards: bool) -> Rendered {
    match reply {
        Reply::Nothing => Rendered::default(),
        Reply::Text(text) => Rendered {
            texts: message_parts(text, text_limit),
            card: None,
        },
        Reply::Choices { text, options }
            if cards && !options.is_empty() && options.len() <= MAX_BUTTONS =>
        {
            choice_card(text, options, task_id, text_limit)
        }
        Reply::Choices { .. } => Rendered {
            texts: message_parts(&reply.as_text().unwrap_or_default(), text_limit),
            card: None,
        },
    }
}

/// A question with 1..=6 options: the card alone when everything fits it, else the text first
/// and the card as a shortcut.
fn choice_card(text: &str, options: &[ChoiceOption], task_id: &str, text_limit: usize) -> Rendered {
    let named = names_fit(options);
    let buttons = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let label = if named {
                o.label.trim().to_owned()
            } else {
                (i + 1).to_string()
            };
            Button::new(&label, 1, o.key.as_str())
        })
        .collect();
    let list = (!named).then(|| numbered_options(options));
    let question = Question::of(text);
    if let Some((title, sub_title)) = question.whole_on_card(list.as_deref()) {
        let mut card = ButtonInteraction::new(SOURCE, title, task_id, buttons);
        if !sub_title.is_empty() {
            card = card.with_sub_title(&sub_title);
        }
        return Rendered {
            texts: Vec::new(),
            card: Some(TemplateCard::ButtonInteraction(card)),
        };
    }
    let full = match &list {
        Some(list) if !text.trim().is_empty() => format!("{}\n{list}", text.trim_end()),
        Some(list) => list.clone(),
        None => text.to_owned(),
    };
    let card = ButtonInteraction::new(
        SOURCE,
        MainTitle::title_only(question.short_form()),
        task_id,
        buttons,
    );
    Rendered {
        texts: message_parts(&full, text_limit),
        card: Some(TemplateCard::ButtonInteraction(card)),
    }
}

/// Whether every option's name fits a button whole and no two buttons would read the same.
fn names_fit(options: &[ChoiceOption]) -> bool {
    let names: Vec<&str> = options.iter().map(|o| o.label.trim()).collect();
    names
        .iter()
        .all(|name| !name.is_empty() && fits(name, BUTTON_TEXT_CHARS))
        && names
            .iter()
            .enumerate()
            .all(|(i, name)| !names[..i].contains(name))
}

/// A question's text read for a card: the question is the first line of the last paragraph
/// (the engine says the question last); the lines after it in that paragraph belong to it; the
/// paragraphs before are context.
struct Question<'a> {
    line: &'a str,
    rest: Vec<&'a str>,
    context: Vec<&'a str>,
}

impl<'a> Question<'a> {
    fn of(text: &'a str) -> Self {
        let paragraphs: Vec<&str> = text
            .split("\n\n")
            .map(|p| p.trim_matches('\n'))
            .filter(|p| !p.trim().is_empty())
            .collect();
        let Some((last, before)) = paragraphs.split_last() else {
            return Self {
                line: "",
                rest: Vec::new(),
                context: Vec::new(),
            };
        };
        let mut lines = last.lines();
        Self {
            line: lines.next().unwrap_or_default().trim(),
            rest: lines.filter(|l| !l.trim().is_empty()).collect(),
            context: before
                .iter()
                .flat_map(|p| p.lines())
                .filter(|l| !l.trim().is_empty())
                .collect(),
        }
    }

    /// Title and sub-title of a card that holds the whole text (and `list`, the numbered
    /// options when the buttons show numbers), or `None` when some of it would not fit.
    fn whole_on_card(&self, list: Option<&str>) -> Option<(MainTitle, String)> {
        if self.line.is_empty() || !fits(self.line, TITLE_CHARS) {
            return None;
        }
        // One line under the question fits the title's grey line; more go below with the
        // context.
        let (desc, rest) = match self.rest.as_slice() {
            [only] if fits(only, TITLE_DESC_CHARS) => (*only, &[][..]),
            rest => ("", rest),
        };
        let mut lines: Vec<&str> = self.context.clone();
        lines.extend_from_slice(rest);
        if let Some(list) = list {
            lines.push(list);
        }
        let sub_title = lines.join("\n");
        fits(&sub_title, SUB_TITLE_CHARS).then(|| (MainTitle::new(self.line, desc), sub_title))
    }

    /// The title of a shortcut card: the question line, else its first sentence that asks,
    /// else a plain 请选择.
    fn short_form(&self) -> &str {
        if !self.line.is_empty() && fits(self.line, TITLE_CHARS) {
            return self.line;
        }
        self.line
            .char_indices()
            .find(|(_, c)| matches!(c, '?' | '？' | ':' | '：'))
            .map(|(i, c)| self.line[..i + c.len_utf8()].trim())
            .filter(|s| !s.is_empty() && fits(s, TITLE_CHARS))
            .unwrap_or(SHORTCUT_TITLE)
    }
}

/// What replaces a clicked AI-bot card (a click is answered only by updating the card):
/// the reply's card when it carries the whole question, else a card or notice pointing on,
/// with the texts to send after it as messages of their own (`response_url`).
#[must_use]
pub fn render_update(
    reply: &Reply,
    task_id: &str,
    text_limit: usize,
) -> (TemplateCard, Vec<String>) {
    let rendered = render(reply, task_id, text_limit, true);
    if let Some(card) = rendered.card {
        return (card, rendered.texts);
    }
    let text = rendered.texts.join("\n");
    if fits(&text, SUB_TITLE_CHARS) {
        return (
            TemplateCard::TextNotice(TextNotice::new(SOURCE, &text)),
            Vec::new(),
        );
    }
    (
        TemplateCard::TextNotice(TextNotice::new(SOURCE, ANSWER_FOLLOWS)),
        rendered.texts,
    )
}

/// The label a clicked card's buttons become: `full` (who handled it) when it reads whole on a
/// button, else `short` (the status alone).
#[must_use]
pub fn handled_label(full: String, short: &str) -> String {
    if fits(&full, REPLACE_NAME_CHARS) {
        full
    } else {
        short.to_owned()
    }
}

/// The card adapter behind `domain::CardRelabeler`: `update_template_card` with the click's
/// code, the label chosen by what fits a button ([`handled_label`]).
#[async_trait::async_trait]
impl CardRelabeler for crate::wecom::api::WecomApi {
    async fn relabel(
        &self,
        user: &UserId,
        response_code: &str,
        label: &HandledLabel,
    ) -> Result<(), PortError> {
        let label = handled_label(label.full.clone(), &label.short);
        self.update_template_card(&[user.as_str()], response_code, &label)
            .await
            .map_err(|e| PortError::new("card relabel", e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(labels: &[&str]) -> Vec<ChoiceOption> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| ChoiceOption {
                key: format!("k{}", i + 1),
                label: (*l).to_owned(),
            })
            .collect()
    }

    fn choices(text: &str, labels: &[&str]) -> Reply {
        Reply::Choices {
            text: text.to_owned(),
            options: options(labels),
        }
    }

    fn card_json(rendered: &Rendered) -> serde_json::Value {
        serde_json::to_value(rendered.card.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn a_question_that_fits_is_the_card_alone() {
        let reply = choices("店铺属于哪个平台?\n例如: 京东", &["淘宝", "京东"]);
        let rendered = render(&reply, "t1", 2048, true);
        assert!(rendered.texts.is_empty());
        assert_eq!(
            card_json(&rendered),
            serde_json::json!({
                "card_type": "button_interaction",
                "source": {"desc": "开通助手"},
                "main_title": {"title": "店铺属于哪个平台?", "desc": "例如: 京东"},
                "task_id": "t1",
                "button_list": [
                    {"text": "淘宝", "style": 1, "key": "k1"},
                    {"text": "京东", "style": 1, "key": "k2"},
                ],
            })
        );
    }

    #[test]
    fn context_before_the_question_goes_under_it() {
        let reply = choices(
            "好的, 开通「#43 实施助手」。\n\n已识别: 卖家账号 acct_20\n\n这个客户的实施是否已经结项?\n例如: 否",
            &["是", "否"],
        );
        let card = card_json(&render(&reply, "t", 2048, true));
        assert_eq!(card["main_title"]["title"], "这个客户的实施是否已经结项?");
        assert_eq!(card["main_title"]["desc"], "例如: 否");
        assert_eq!(
            card["sub_title_text"],
            "好的, 开通「#43 实施助手」。\n已识别: 卖家账号 acct_20"
        );
    }

    #[test]
    fn a_long_question_goes_first_as_text_and_the_card_is_a_shortcut() {
        let context = format!("已识别: {}", "卖家账号 acct_20, ".repeat(10));
        let reply = choices(
            &format!("{context}\n\n这个客户的实施是否已经结项?"),
            &["是", "否"],
        );
        let rendered = render(&reply, "t", 2048, true);
        assert_eq!(
            rendered.texts,
            vec![format!("{context}\n\n这个客户的实施是否已经结项?")]
        );
        let card = card_json(&rendered);
        assert_eq!(card["main_title"]["title"], "这个客户的实施是否已经结项?");
        assert_eq!(card["button_list"][0]["text"], "是");
    }

    #[test]
    fn names_that_would_be_cut_or_read_the_same_become_numbers_with_the_list_in_text() {
        let reply = choices(
            "你要办的是哪一项? 回复序号:",
            &["#77 运维组 超期订单预警", "#48 产品组 超期订单预警"],
        );
        let rendered = render(&reply, "t", 2048, true);
        let card = card_json(&rendered);
        assert_eq!(card["button_list"][0]["text"], "1");
        assert_eq!(card["button_list"][1]["text"], "2");
        assert_eq!(card["button_list"][1]["key"], "k2");
        // The list fits under the question, so the card holds it all.
        assert!(rendered.texts.is_empty());
        assert_eq!(
            card["sub_title_text"],
            "1. #77 运维组 超期订单预警\n2. #48 产品组 超期订单预警"
        );
        let same = render(&choices("选哪个?", &["同名", "同名"]), "t", 2048, true);
        assert_eq!(card_json(&same)["button_list"][1]["text"], "2");
    }

    #[test]
    fn more_than_six_options_or_no_cards_are_numbered_text() {
        let seven = choices("选一个:", &["a", "b", "c", "d", "e", "f", "g"]);
        let rendered = render(&seven, "t", 2048, true);
        assert!(rendered.card.is_none());
        assert!(rendered.texts[0].ends_with("7. g"));
        let off = render(&choices("选:", &["a"]), "t", 2048, false);
        assert_eq!(off.texts, vec!["选:\n1. a"]);
    }

    #[test]
    fn a_click_on_an_ai_bot_card_is_answered_by_a_notice_or_a_pointer() {
        let (card, rest) = render_update(&Reply::Text("好的".into()), "t", 20480);
        assert!(rest.is_empty());
        assert_eq!(
            serde_json::to_value(card).unwrap()["sub_title_text"],
            "好的"
        );
        let long = "请核对申请信息。".repeat(20);
        let (card, rest) = render_update(&Reply::Text(long.clone()), "t", 20480);
        assert_eq!(rest, vec![long]);
        assert_eq!(
            serde_json::to_value(card).unwrap()["sub_title_text"],
            ANSWER_FOLLOWS
        );
    }
}
