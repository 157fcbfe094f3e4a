//! Template cards (PROTOCOL.md §7): typed shapes serialised to the JSON WeCom reads, for
//! `message/send`, the AI bot's passive replies and `update_template_card`.
//!
//! Owns field names, `card_type` tags and WeCom's text limits ([`TITLE_CHARS`] and its
//! neighbours, the one place they are spelled). Whoever decides what a card says (`channel`,
//! `notify`) makes it fit with [`fits`], splitting what does not fit into text messages; the
//! clipping here is only a guard (logged), so an overlong text never costs a refused card.

use serde::{Deserialize, Serialize};

// WeCom's limits on template card texts, in characters: the field tables of the template card
// in doc 90236 (发送应用消息 · 模板卡片消息) and doc 101032 (智能机器人 · 模板卡片类型), read in
// copies of those tables (web mirrors of 90236 and the field docs of open-source WeCom SDKs),
// next to PROTOCOL.md §7; where copies differ (sub_title_text 112 or 160, jump_list.title 13 or
// 18), the smaller is kept. WeCom words most of them "建议不超过 N 个字" and shortens the display
// beyond them, so they are treated as hard limits: past one, the person would read a cut text.

/// `source.desc`: 「来源图片的描述,建议不超过13个字」.
pub const SOURCE_DESC_CHARS: usize = 13;
/// `main_title.title`: 「一级标题,建议不超过26个字」.
pub const TITLE_CHARS: usize = 26;
/// `main_title.desc`: 「标题辅助信息,建议不超过30个字」.
pub const TITLE_DESC_CHARS: usize = 30;
/// `sub_title_text`: 「二级普通文本,建议不超过112个字」.
pub const SUB_TITLE_CHARS: usize = 112;
/// `horizontal_content_list.keyname`: 「二级标题,建议不超过5个字」.
pub const KEYNAME_CHARS: usize = 5;
/// `horizontal_content_list.value`: 「二级文本,建议不超过26个字」.
pub const VALUE_CHARS: usize = 26;
/// `horizontal_content_list`: 「列表长度不超过6」.
pub const MAX_FIELDS: usize = 6;
/// `jump_list.title`: 「跳转链接样式的文案内容,建议不超过13个字」.
pub const JUMP_TITLE_CHARS: usize = 13;
/// `button_list.text`: 「按钮文案,建议不超过10个字」.
pub const BUTTON_TEXT_CHARS: usize = 10;
/// `button_list`: 「按钮列表,列表长度不超过6」.
pub const MAX_BUTTONS: usize = 6;
/// `button.replace_name` of `update_template_card` (doc 94888) and the app's passive
/// `update_button` (doc 90241): no limit is documented; this is ours, a label that reads whole
/// on a button.
pub const REPLACE_NAME_CHARS: usize = 20;

/// `type` of a card action or jump that opens a URL.
const LINK_URL: u8 = 1;

/// Whether `text` fits a field of `max_chars` characters whole.
#[must_use]
pub fn fits(text: &str, max_chars: usize) -> bool {
    text.chars().nth(max_chars).is_none()
}

/// The guard: cuts on a character boundary, and says so, since a cut here means a caller did
/// not make its text fit.
fn clip(text: &str, max_chars: usize) -> String {
    if fits(text, max_chars) {
        return text.to_owned();
    }
    tracing::warn!(
        max_chars,
        chars = text.chars().count(),
        "card text cut to WeCom's limit"
    );
    text.chars().take(max_chars).collect()
}

/// One `template_card`, tagged by `card_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "card_type", rename_all = "snake_case")]
pub enum TemplateCard {
    /// Buttons whose click comes back as a `template_card_event` with the button's key.
    ButtonInteraction(ButtonInteraction),
    /// A notice without buttons (here: what replaces a clicked card in the AI bot).
    TextNotice(TextNotice),
}

/// `{"title", "desc"}`; `desc` may be absent (text notices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainTitle {
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desc: Option<String>,
}

impl MainTitle {
    /// A title with its grey line below; an empty `desc` is left out.
    #[must_use]
    pub fn new(title: &str, desc: &str) -> Self {
        Self {
            title: clip(title, TITLE_CHARS),
            desc: (!desc.is_empty()).then(|| clip(desc, TITLE_DESC_CHARS)),
        }
    }

    #[must_use]
    pub fn title_only(title: &str) -> Self {
        Self {
            title: clip(title, TITLE_CHARS),
            desc: None,
        }
    }
}

/// `source`: the line above the title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSource {
    desc: String,
}

/// One button: its label, WeCom's style number (1–4; 1 is the default) and the key a click
/// reports as `EventKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    text: String,
    style: u8,
    key: String,
}

impl Button {
    #[must_use]
    pub fn new(text: &str, style: u8, key: impl Into<String>) -> Self {
        Self {
            text: clip(text, BUTTON_TEXT_CHARS),
            style,
            key: key.into(),
        }
    }
}

/// A `keyname: value` line of `horizontal_content_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizontalContent {
    keyname: String,
    value: String,
}

impl HorizontalContent {
    #[must_use]
    pub fn new(keyname: &str, value: &str) -> Self {
        Self {
            keyname: clip(keyname, KEYNAME_CHARS),
            value: clip(value, VALUE_CHARS),
        }
    }
}

/// `card_action`: what tapping the card itself opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAction {
    #[serde(rename = "type")]
    kind: u8,
    url: String,
}

/// One entry of `jump_list`: a titled link under the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jump {
    #[serde(rename = "type")]
    kind: u8,
    title: String,
    url: String,
}

/// A `button_interaction` card. Build with [`ButtonInteraction::new`] and the `with_…` methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonInteraction {
    source: CardSource,
    main_title: MainTitle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub_title_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    horizontal_content_list: Option<Vec<HorizontalContent>>,
    task_id: String,
    button_list: Vec<Button>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card_action: Option<CardAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jump_list: Option<Vec<Jump>>,
}

impl ButtonInteraction {
    /// `task_id` must be unique per app (`[0-9A-Za-z_-@]`, ≤ 128 bytes).
    #[must_use]
    pub fn new(source: &str, main_title: MainTitle, task_id: &str, buttons: Vec<Button>) -> Self {
        Self {
            source: CardSource {
                desc: clip(source, SOURCE_DESC_CHARS),
            },
            main_title,
            sub_title_text: None,
            horizontal_content_list: None,
            task_id: task_id.to_owned(),
            button_list: buttons.into_iter().take(MAX_BUTTONS).collect(),
            card_action: None,
            jump_list: None,
        }
    }

    #[must_use]
    pub fn with_sub_title(mut self, text: &str) -> Self {
        self.sub_title_text = Some(clip(text, SUB_TITLE_CHARS));
        self
    }

    #[must_use]
    pub fn with_fields(mut self, fields: Vec<HorizontalContent>) -> Self {
        self.horizontal_content_list = Some(fields.into_iter().take(MAX_FIELDS).collect());
        self
    }

    /// Tapping the card opens `url`, and a link titled `title` under it does too.
    #[must_use]
    pub fn with_link(mut self, url: &str, title: &str) -> Self {
        self.card_action = Some(CardAction {
            kind: LINK_URL,
            url: url.to_owned(),
        });
        self.jump_list = Some(vec![Jump {
            kind: LINK_URL,
            title: clip(title, JUMP_TITLE_CHARS),
            url: url.to_owned(),
        }]);
        self
    }
}

/// A `text_notice` card: a title and a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextNotice {
    main_title: MainTitle,
    sub_title_text: String,
}

impl TextNotice {
    /// A notice of `text` under `title`; the caller sends a longer text another way.
    #[must_use]
    pub fn new(title: &str, text: &str) -> Self {
        Self {
            main_title: MainTitle::title_only(title),
            sub_title_text: clip(text, SUB_TITLE_CHARS),
        }
    }
}

/// `button` of `update_template_card`: every button of the clicked card now reads
/// `replace_name` and is disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReplacement {
    replace_name: String,
}

impl ButtonReplacement {
    #[must_use]
    pub fn new(replace_name: &str) -> Self {
        Self {
            replace_name: clip(replace_name, REPLACE_NAME_CHARS),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn button_card_serialises_to_wecoms_shape_and_back() {
        let card = TemplateCard::ButtonInteraction(
            ButtonInteraction::new(
                "开通助手 第1/2条",
                MainTitle::new("#7 电子发票", "KT-20260105-0001"),
                "kth_KT-20260105-0001_gail",
                vec![Button::new("完成", 1, "kt_done:KT-20260105-0001")],
            )
            .with_fields(vec![HorizontalContent::new("店铺账号名称", "shop_a1")])
            .with_link("https://kt.example.com", "打开控制台"),
        );
        let wire = serde_json::to_value(&card).unwrap();
        assert_eq!(
            wire,
            json!({
                "card_type": "button_interaction",
                "source": {"desc": "开通助手 第1/2条"},
                "main_title": {"title": "#7 电子发票", "desc": "KT-20260105-0001"},
                "horizontal_content_list": [{"keyname": "店铺账号名", "value": "shop_a1"}],
                "task_id": "kth_KT-20260105-0001_gail",
                "button_list": [{"text": "完成", "style": 1, "key": "kt_done:KT-20260105-0001"}],
                "card_action": {"type": 1, "url": "https://kt.example.com"},
                "jump_list": [{"type": 1, "title": "打开控制台", "url": "https://kt.example.com"}],
            })
        );
        // Queued cards are read back from the outbox.
        assert_eq!(serde_json::from_value::<TemplateCard>(wire).unwrap(), card);
    }

    #[test]
    fn texts_are_clipped_to_wecoms_limits_as_a_guard() {
        let long = "长".repeat(200);
        let card = ButtonInteraction::new(
            "s",
            MainTitle::new(&long, &long),
            "t",
            vec![Button::new(&long, 1, "k")],
        )
        .with_sub_title(&long);
        let wire = serde_json::to_value(TemplateCard::ButtonInteraction(card)).unwrap();
        let chars = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
        assert_eq!(chars(&wire["main_title"]["title"]), 26);
        assert_eq!(chars(&wire["main_title"]["desc"]), 30);
        assert_eq!(chars(&wire["sub_title_text"]), 112);
        assert_eq!(chars(&wire["button_list"][0]["text"]), 10);
        let relabel = serde_json::to_value(ButtonReplacement::new(&long)).unwrap();
        assert_eq!(chars(&relabel["replace_name"]), 20);
    }

    #[test]
    fn text_notice_has_no_title_desc() {
        let wire =
            serde_json::to_value(TemplateCard::TextNotice(TextNotice::new("开通助手", "好")))
                .unwrap();
        assert_eq!(
            wire,
            json!({
                "card_type": "text_notice",
                "main_title": {"title": "开通助手"},
                "sub_title_text": "好",
            })
        );
    }
}
