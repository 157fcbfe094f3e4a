//! The AI bot's `response_url` (doc 101138, PROTOCOL.md §5): each callback names a URL to which
//! the bot may POST one more message — `markdown` or `template_card`, plain JSON without a
//! token — once, within an hour. The AI bot's passive reply is a single message (a stream, a
//! card, or the update of a clicked card); what does not fit in it goes here.

use std::time::Duration;

use super::client::ApiSettings;
use super::errors::ApiError;
use super::wire::Status;

const PATH: &str = "aibot/response";

/// Posts to AI-bot response URLs, only ever under WeCom's API base.
#[derive(Debug, Clone)]
pub struct ResponseUrls {
    http: reqwest::Client,
    /// `api_base` with a trailing `/`: a response URL is WeCom's only when it starts so.
    prefix: String,
}

impl ResponseUrls {
    /// A poster for URLs under `api_base` (`https://qyapi.weixin.qq.com/cgi-bin`).
    pub fn new(api_base: &str) -> Result<Self, ApiError> {
        let settings = ApiSettings {
            request_timeout: Duration::from_secs(5),
            ..ApiSettings::default()
        };
        Ok(Self {
            http: settings.http_client()?,
            prefix: format!("{}/", api_base.trim_end_matches('/')),
        })
    }

    /// Whether `url` is under WeCom's API base: a callback's URL is posted to only then, so a
    /// callback can never point the bot at another host.
    #[must_use]
    pub fn accepts(&self, url: &str) -> bool {
        url.starts_with(&self.prefix) && !url.contains("..")
    }

    /// Posts `body` (a `{"msgtype": "markdown" | "template_card", …}` message) to `url`.
    pub async fn post(&self, url: &str, body: &serde_json::Value) -> Result<(), ApiError> {
        if !self.accepts(url) {
            return Err(ApiError::InvalidRequest {
                path: PATH,
                reason: "response_url is not under the WeCom API base".into(),
            });
        }
        let transport = |source: reqwest::Error| ApiError::Transport {
            path: PATH,
            source: source.without_url(),
        };
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ApiError::Http {
                path: PATH,
                status: status.as_u16(),
            });
        }
        let reply: Status =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidResponse {
                path: PATH,
                reason: e.to_string(),
            })?;
        if reply.errcode != 0 {
            return Err(ApiError::WeCom {
                path: PATH,
                errcode: reply.errcode,
                errmsg: reply.errmsg,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_under_the_api_base_are_posted_to() {
        let urls = ResponseUrls::new("https://qyapi.weixin.qq.com/cgi-bin/").expect("client");
        assert!(urls.accepts("https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x"));
        assert!(!urls.accepts("https://qyapi.weixin.qq.com.evil.example/cgi-bin/aibot/response"));
        assert!(!urls.accepts("https://qyapi.weixin.qq.com/cgi-bin/../x"));
        assert!(!urls.accepts("http://127.0.0.1/response"));
    }
}
