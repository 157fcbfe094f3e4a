//! Template cards for questions with options: tappable buttons instead of typed numbers.
//! WeCom allows at most 6 buttons on a button_interaction card; longer lists stay numbered text.

use serde_json::{Value, json};

use crate::domain::{ChoiceOption, UserId};

pub const MAX_BUTTONS: usize = 6;

/// A fresh task id (`[0-9A-Za-z_-]`, unique per app) for a card.
#[must_use]
pub fn task_id() -> String {
    format!("kt_{:016x}", rand::random::<u64>())
}

/// WeCom caps card texts; keep within them on character boundaries.
pub(crate) fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A button_interaction card asking `question`; each button's key is the option's key, which
/// comes back as the click's EventKey and is read like a typed answer. `None` when the options
/// do not fit on one card.
#[must_use]
pub fn button_card(task_id: &str, question: &str, options: &[ChoiceOption]) -> Option<Value> {
    if options.is_empty() || options.len() > MAX_BUTTONS {
        return None;
    }
    let (title, desc) = match question.split_once('\n') {
        Some((first, rest)) => (first, rest),
        None => (question, ""),
    };
    Some(json!({
        "card_type": "button_interaction",
        "source": {"desc": "开通助手"},
        "main_title": {"title": clip(title, 26), "desc": clip(desc, 30)},
        "sub_title_text": clip(question, 100),
        "task_id": task_id,
        "button_list": options
            .iter()
            .map(|o| json!({"text": clip(&o.label, 10), "style": 1, "key": o.key}))
            .collect::<Vec<_>>(),
    }))
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
        self.update_template_card(&[user.as_str()], response_code, &clip(label, 20))
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
        assert_eq!(card["button_list"].as_array().unwrap().len(), 6);
        assert_eq!(card["button_list"][2]["key"], "k3");
        assert_eq!(card["main_title"]["title"], "店铺属于哪个平台?");
        assert!(button_card("t1", "q", &options(7)).is_none());
        assert!(button_card("t1", "q", &[]).is_none());
    }
}
