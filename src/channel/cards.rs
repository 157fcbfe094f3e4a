//! Template cards for questions with options: tappable buttons instead of typed numbers.
//! WeCom allows at most 6 buttons on a button_interaction card; longer lists stay numbered text.
//! What the card says is decided here; its wire shape is `wecom::cards`.

use crate::domain::{ChoiceOption, UserId};
use crate::wecom::cards::{Button, ButtonInteraction, MAX_BUTTONS, MainTitle, TemplateCard};

/// A fresh task id (`[0-9A-Za-z_-]`, unique per app) for a card.
#[must_use]
pub fn task_id() -> String {
    format!("kt_{:016x}", rand::random::<u64>())
}

/// A button_interaction card asking `question`; each button's key is the option's key, which
/// comes back as the click's EventKey and is read like a typed answer. `None` when the options
/// do not fit on one card.
#[must_use]
pub fn button_card(
    task_id: &str,
    question: &str,
    options: &[ChoiceOption],
) -> Option<TemplateCard> {
    if options.is_empty() || options.len() > MAX_BUTTONS {
        return None;
    }
    let (title, desc) = match question.split_once('\n') {
        Some((first, rest)) => (first, rest),
        None => (question, ""),
    };
    let buttons = options
        .iter()
        .map(|o| Button::new(&o.label, 1, o.key.as_str()))
        .collect();
    Some(TemplateCard::ButtonInteraction(
        ButtonInteraction::new("开通助手", MainTitle::new(title, desc), task_id, buttons)
            .with_sub_title(question),
    ))
}

/// Relabels a card someone clicked, so everyone who got it sees it was handled and by whom.
#[async_trait::async_trait]
pub trait CardUpdater: Send + Sync + 'static {
    /// Replaces the buttons of the card behind `response_code` (single use, 72 h) with `label`.
    async fn relabel(
        &self,
        user: &UserId,
        response_code: &str,
        label: &str,
    ) -> Result<(), crate::wecom::api::ApiError>;
}

#[async_trait::async_trait]
impl CardUpdater for crate::wecom::api::WecomApi {
    async fn relabel(
        &self,
        user: &UserId,
        response_code: &str,
        label: &str,
    ) -> Result<(), crate::wecom::api::ApiError> {
        self.update_template_card(&[user.as_str()], response_code, label)
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn options(n: usize) -> Vec<ChoiceOption> {
        (1..=n)
            .map(|i| ChoiceOption {
                key: format!("k{i}"),
                label: format!("选项{i}"),
            })
            .collect()
    }

    #[test]
    fn up_to_six_options_become_buttons_with_their_keys() {
        let card = button_card("t1", "店铺属于哪个平台?\n例如: 京东", &options(6)).unwrap();
        let card = serde_json::to_value(card).unwrap();
        assert_eq!(card["button_list"].as_array().unwrap().len(), 6);
        assert_eq!(card["button_list"][2]["key"], "k3");
        assert_eq!(card["main_title"]["title"], "店铺属于哪个平台?");
        assert!(button_card("t1", "q", &options(7)).is_none());
        assert!(button_card("t1", "q", &[]).is_none());
    }

    #[test]
    fn the_card_is_the_json_wecom_reads() {
        let card = button_card("t1", "店铺属于哪个平台?\n例如: 京东", &options(2)).unwrap();
        assert_eq!(
            serde_json::to_value(card).unwrap(),
            serde_json::json!({
                "card_type": "button_interaction",
                "source": {"desc": "开通助手"},
                "main_title": {"title": "店铺属于哪个平台?", "desc": "例如: 京东"},
                "sub_title_text": "店铺属于哪个平台?\n例如: 京东",
                "task_id": "t1",
                "button_list": [
                    {"text": "选项1", "style": 1, "key": "k1"},
                    {"text": "选项2", "style": 1, "key": "k2"},
                ],
            })
        );
    }
}
