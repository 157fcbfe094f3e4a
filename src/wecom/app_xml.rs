//! XML shapes of the self-built app (自建应用) channel: the encrypted envelope, the inner
//! message or event, and the passive reply. Parsing is by element name; order does not matter.

use serde::Deserialize;

use super::TEXT_LIMIT_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(#[source] quick_xml::DeError),
    #[error("missing element {0}")]
    Missing(&'static str),
}

/// The outer POST body: `<xml><ToUserName/><AgentID/><Encrypt/></xml>`.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "ToUserName")]
    pub to_user_name: Option<String>,
    #[serde(rename = "AgentID")]
    pub agent_id: Option<String>,
    #[serde(rename = "Encrypt")]
    pub encrypt: Option<String>,
}

impl Envelope {
    /// Returns the ciphertext of a well-formed envelope.
    pub fn parse(body: &str) -> Result<String, XmlError> {
        let envelope: Envelope = quick_xml::de::from_str(body).map_err(XmlError::Malformed)?;
        envelope
            .encrypt
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .ok_or(XmlError::Missing("Encrypt"))
    }
}

/// The decrypted inner message or event; every element optional so unknown kinds still parse.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InnerMessage {
    #[serde(rename = "ToUserName")]
    pub to_user_name: String,
    #[serde(rename = "FromUserName")]
    pub from_user_name: String,
    #[serde(rename = "CreateTime")]
    pub create_time: String,
    #[serde(rename = "MsgType")]
    pub msg_type: String,
    #[serde(rename = "MsgId")]
    pub msg_id: Option<String>,
    #[serde(rename = "AgentID")]
    pub agent_id: Option<String>,
    #[serde(rename = "Content")]
    pub content: Option<String>,
    #[serde(rename = "PicUrl")]
    pub pic_url: Option<String>,
    #[serde(rename = "MediaId")]
    pub media_id: Option<String>,
    #[serde(rename = "Format")]
    pub format: Option<String>,
    #[serde(rename = "ThumbMediaId")]
    pub thumb_media_id: Option<String>,
    #[serde(rename = "FileName")]
    pub file_name: Option<String>,
    #[serde(rename = "Location_X")]
    pub location_x: Option<String>,
    #[serde(rename = "Location_Y")]
    pub location_y: Option<String>,
    #[serde(rename = "Scale")]
    pub scale: Option<String>,
    #[serde(rename = "Label")]
    pub label: Option<String>,
    #[serde(rename = "Title")]
    pub title: Option<String>,
    #[serde(rename = "Description")]
    pub description: Option<String>,
    #[serde(rename = "Url")]
    pub url: Option<String>,
    #[serde(rename = "Event")]
    pub event: Option<String>,
    #[serde(rename = "EventKey")]
    pub event_key: Option<String>,
    #[serde(rename = "TaskId")]
    pub task_id: Option<String>,
    #[serde(rename = "CardType")]
    pub card_type: Option<String>,
    #[serde(rename = "ResponseCode")]
    pub response_code: Option<String>,
    #[serde(rename = "SelectedItems")]
    pub selected_items: Option<SelectedItems>,
    /// `sys_approval_change`'s approval.
    #[serde(rename = "ApprovalInfo")]
    pub approval_info: Option<ApprovalInfo>,
}

/// `ApprovalInfo` of a `sys_approval_change` event (审批申请状态变化回调通知).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApprovalInfo {
    #[serde(rename = "SpNo")]
    pub sp_no: String,
    #[serde(rename = "SpName")]
    pub sp_name: String,
    /// 1 审批中, 2 已通过, 3 已驳回, 4 已撤销, 6 通过后撤销, 7 已删除, 10 已支付.
    #[serde(rename = "SpStatus")]
    pub sp_status: String,
    #[serde(rename = "TemplateId")]
    pub template_id: String,
    #[serde(rename = "StatuChangeEvent")]
    pub status_change_event: String,
    #[serde(rename = "SpRecord")]
    pub records: Vec<SpRecord>,
}

/// One approval step (`SpRecord`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpRecord {
    #[serde(rename = "SpStatus")]
    pub sp_status: String,
    #[serde(rename = "Details")]
    pub details: Vec<SpDetail>,
}

/// One approver's decision in a step (`Details`): 1 审批中, 2 已同意, 3 已驳回, 4 已转审.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpDetail {
    #[serde(rename = "Approver")]
    pub approver: Option<Approver>,
    #[serde(rename = "Speech")]
    pub speech: String,
    #[serde(rename = "SpStatus")]
    pub sp_status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Approver {
    #[serde(rename = "UserId")]
    pub user_id: String,
}

impl ApprovalInfo {
    /// The approval's status code; 0 when missing or not a number.
    #[must_use]
    pub fn status(&self) -> u32 {
        self.sp_status.trim().parse().unwrap_or(0)
    }

    /// The last decision matching the approval's status (who approved or rejected it, and
    /// their comment): the step's approver whose own `SpStatus` is the approval's.
    #[must_use]
    pub fn decision(&self) -> Option<&SpDetail> {
        let status = self.sp_status.trim();
        self.records
            .iter()
            .flat_map(|record| &record.details)
            .rfind(|detail| detail.sp_status.trim() == status)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SelectedItems {
    #[serde(rename = "SelectedItem", default)]
    pub items: Vec<SelectedItem>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SelectedItem {
    #[serde(rename = "QuestionKey", default)]
    pub question_key: String,
    #[serde(rename = "OptionIds", default)]
    pub option_ids: Option<OptionIds>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OptionIds {
    #[serde(rename = "OptionId", default)]
    pub ids: Vec<String>,
}

impl InnerMessage {
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        let msg: InnerMessage = quick_xml::de::from_str(xml).map_err(XmlError::Malformed)?;
        if msg.msg_type.trim().is_empty() {
            return Err(XmlError::Missing("MsgType"));
        }
        if msg.from_user_name.trim().is_empty() {
            return Err(XmlError::Missing("FromUserName"));
        }
        Ok(msg)
    }
}

/// Wraps text in CDATA, splitting any `]]>` so the section cannot be closed early.
#[must_use]
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// The encrypted passive reply body WeCom expects (template of the official samples).
#[must_use]
pub fn reply_envelope(encrypt: &str, signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml>\n<Encrypt>{}</Encrypt>\n<MsgSignature>{}</MsgSignature>\n<TimeStamp>{}</TimeStamp>\n<Nonce>{}</Nonce>\n</xml>",
        cdata(encrypt),
        cdata(signature),
        timestamp,
        cdata(nonce)
    )
}

/// Inner plaintext of a passive text reply. WeCom truncates passive text beyond
/// [`TEXT_LIMIT_BYTES`], possibly inside a character; the channel splits longer text before
/// (the rest goes through `message/send`), so the cut here (between sentences) is only a guard.
#[must_use]
pub fn text_reply(to_user: &str, from_corp: &str, create_time: i64, content: &str) -> String {
    let first = super::text::split_text(content, TEXT_LIMIT_BYTES)
        .into_iter()
        .next()
        .unwrap_or_default();
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime><MsgType>{}</MsgType><Content>{}</Content></xml>",
        cdata(to_user),
        cdata(from_corp),
        create_time,
        cdata("text"),
        cdata(&first)
    )
}

/// Inner plaintext of a passive reply that relabels the clicked card button.
#[must_use]
pub fn update_button_reply(
    to_user: &str,
    from_corp: &str,
    create_time: i64,
    replace_name: &str,
) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime><MsgType>{}</MsgType><Button><ReplaceName>{}</ReplaceName></Button></xml>",
        cdata(to_user),
        cdata(from_corp),
        create_time,
        cdata("update_button"),
        cdata(replace_name)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envelope_elements_parse_in_any_order() {
        let body = "<xml><Encrypt><![CDATA[abc]]></Encrypt><AgentID><![CDATA[218]]></AgentID><ToUserName><![CDATA[wx]]></ToUserName></xml>";
        assert_eq!(Envelope::parse(body).unwrap(), "abc");
    }

    #[test]
    fn envelope_without_encrypt_is_an_error() {
        assert!(matches!(
            Envelope::parse("<xml><ToUserName>x</ToUserName></xml>"),
            Err(XmlError::Missing("Encrypt"))
        ));
        assert!(Envelope::parse("<xml><Encrypt>").is_err());
        assert!(Envelope::parse("not xml at all").is_err());
    }

    #[test]
    fn an_approval_change_parses_with_the_deciding_approver_and_comment() {
        let xml = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1571732272</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[sys_approval_change]]></Event><AgentID>3010040</AgentID><ApprovalInfo><SpNo>201910220021</SpNo><SpName><![CDATA[开库工单]]></SpName><SpStatus>3</SpStatus><TemplateId><![CDATA[3TkaH5KFbrG9heEQ]]></TemplateId><ApplyTime>1571728713</ApplyTime><Applyer><UserId><![CDATA[xiaoming]]></UserId><Party><![CDATA[1]]></Party></Applyer><SpRecord><SpStatus>2</SpStatus><ApproverAttr>1</ApproverAttr><Details><Approver><UserId><![CDATA[zhangsan]]></UserId></Approver><Speech><![CDATA[]]></Speech><SpStatus>2</SpStatus><SpTime>1571728800</SpTime></Details></SpRecord><SpRecord><SpStatus>3</SpStatus><ApproverAttr>1</ApproverAttr><Details><Approver><UserId><![CDATA[lisi]]></UserId></Approver><Speech><![CDATA[库存不足]]></Speech><SpStatus>3</SpStatus><SpTime>1571732272</SpTime></Details></SpRecord><StatuChangeEvent>3</StatuChangeEvent></ApprovalInfo></xml>";
        let msg = InnerMessage::parse(xml).unwrap();
        let info = msg.approval_info.unwrap();
        assert_eq!(info.sp_no, "201910220021");
        assert_eq!(info.status(), 3);
        assert_eq!(info.records.len(), 2);
        let decision = info.decision().unwrap();
        assert_eq!(decision.approver.as_ref().unwrap().user_id, "lisi");
        assert_eq!(decision.speech, "库存不足");
    }

    #[test]
    fn template_card_event_with_selected_items_parses() {
        let xml = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey><TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[vote_interaction]]></CardType><ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID><SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey><OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]></OptionId></OptionIds></SelectedItem><SelectedItem><QuestionKey><![CDATA[QuestionKey2]]></QuestionKey><OptionIds><OptionId><![CDATA[OptionId3]]></OptionId><OptionId><![CDATA[OptionId4]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>";
        let msg = InnerMessage::parse(xml).unwrap();
        assert_eq!(msg.event.as_deref(), Some("template_card_event"));
        let items = msg.selected_items.unwrap().items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].question_key, "QuestionKey2");
        assert_eq!(
            items[1].option_ids.as_ref().unwrap().ids,
            vec!["OptionId3", "OptionId4"]
        );
    }

    #[test]
    fn cdata_cannot_be_closed_by_content() {
        let wrapped = cdata("a]]>b");
        let xml = format!(
            "<xml><MsgType>text</MsgType><FromUserName>u</FromUserName><Content>{wrapped}</Content></xml>"
        );
        assert_eq!(InnerMessage::parse(&xml).unwrap().content.unwrap(), "a]]>b");
    }

    #[test]
    fn an_overlong_passive_text_keeps_whole_characters() {
        let text = "开".repeat(1000); // 3000 bytes
        let xml = text_reply("u", "c", 1, &text);
        let content = InnerMessage::parse(&xml).unwrap().content.unwrap();
        assert!(content.len() <= TEXT_LIMIT_BYTES);
        assert_eq!(content.chars().count(), 682);
    }
}
