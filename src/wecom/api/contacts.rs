//! WeCom contacts, read-only: `user/get` (one member: name, department ids, e-mail) and
//! `department/list` (every department the app may see: id and name). Field names as WeCom's
//! "读取成员" and "获取部门列表" documents spell them. Since 2022-06-20 a newly created self-built
//! app gets no `email`/`biz_mail` from `user/get`, and an app reads only members within its
//! visible range: outside it WeCom answers 60011 (no privilege). Callers treat every failure
//! as "not known" and show the userid.

use serde::Deserialize;

use super::{ApiError, RequestBody, WecomApi};

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
