//! WeCom contacts, read-only: `user/get` (one member: name, department ids, e-mail) and
//! `department/list` (every department the app may see: id and name). Field names as WeCom's
//! "读取成员" and "获取部门列表" documents spell them. Since 2022-06-20 a newly created self-built
//! app gets no `email`/`biz_mail` from `user/get`, and an app reads only members within its
//! visible range: outside it WeCom answers 60011 (no privilege). Callers treat every failure
//! as "not known" and show the userid.

use serde::Deserialize;

use super::client::WecomApi;
use super::errors::ApiError;
use super::wire::RequestBody;

/// One member as `user/get` answers (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub userid: String,
    #[serde(default)]
    pub name: String,
    /// Department ids (`department`), main department first when WeCom says which.
    #[serde(default)]
    pub department: Vec<u64>,
    #[serde(default)]
    pub main_department: Option<u64>,
    #[serde(default)]
    pub email: Option<String>,
    /// The corp mailbox (企业邮箱), when WeCom gives one.
    #[serde(default)]
    pub biz_mail: Option<String>,
}

impl Member {
    /// The e-mail to answer the member at: `email`, else `biz_mail`; none when both are empty.
    #[must_use]
    pub fn mail(&self) -> Option<&str> {
        [self.email.as_deref(), self.biz_mail.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|m| !m.is_empty())
    }

    /// Department ids, the main one first.
    #[must_use]
    pub fn departments(&self) -> Vec<u64> {
        let mut ids = self.department.clone();
        if let Some(main) = self.main_department
            && let Some(at) = ids.iter().position(|id| *id == main)
        {
            ids.remove(at);
            ids.insert(0, main);
        }
        ids
    }
}

/// One department as `department/list` answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Department {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub parentid: u64,
}

#[derive(Deserialize)]
struct DepartmentList {
    #[serde(default)]
    department: Vec<Department>,
}

impl WecomApi {
    /// `GET user/get?userid=…`.
    pub async fn user_get(&self, userid: &str) -> Result<Member, ApiError> {
        self.call_json(
            reqwest::Method::GET,
            "user/get",
            &[("userid", userid)],
            RequestBody::Empty,
        )
        .await
    }

    /// `GET department/list`: every department the app may see.
    pub async fn department_list(&self) -> Result<Vec<Department>, ApiError> {
        let list: DepartmentList = self
            .call_json(
                reqwest::Method::GET,
                "department/list",
                &[],
                RequestBody::Empty,
            )
            .await?;
        Ok(list.department)
    }
}

/// One control's value in `oa/applyevent`'s `apply_data.contents`: a text (`Text`/`Textarea`)
/// control by its id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApplyText {
    pub control: String,
    pub id: String,
    pub text: String,
}

#[derive(Deserialize)]
struct Applied {
    #[serde(default)]
    sp_no: String,
}

impl WecomApi {
    /// `POST oa/applyevent` (提交审批申请): files an approval for `creator` on `template_id`,
    /// the template's own approvers deciding (`use_template_approver`: 1), with `texts` in
    /// their controls and `summary` as the approval list's lines. Returns WeCom's `sp_no`.
    pub async fn oa_applyevent(
        &self,
        creator: &str,
        template_id: &str,
        texts: &[ApplyText],
        summary: &[String],
    ) -> Result<String, ApiError> {
        const PATH: &str = "oa/applyevent";
        let body = serde_json::json!({
            "creator_userid": creator,
            "template_id": template_id,
            "use_template_approver": 1,
            "apply_data": {
                "contents": texts.iter().map(|t| serde_json::json!({
                    "control": t.control,
                    "id": t.id,
                    "value": { "text": t.text },
                })).collect::<Vec<_>>(),
            },
            "summary_list": summary.iter().map(|line| serde_json::json!({
                "summary_info": [{ "text": line, "lang": "zh_CN" }],
            })).collect::<Vec<_>>(),
        });
        let applied: Applied = self
            .call_json(
                reqwest::Method::POST,
                PATH,
                &[],
                super::wire::json_body(PATH, &body)?,
            )
            .await?;
        if applied.sp_no.trim().is_empty() {
            return Err(ApiError::InvalidResponse {
                path: PATH,
                reason: "no sp_no".to_owned(),
            });
        }
        Ok(applied.sp_no)
    }
}
