//! Email hand-offs (kind `email`): one message per request to the address the catalog routes
//! the service to, with every answer in a plain-text body and the attachments attached.
//!
//! The subject and body are rendered when the hand-off is queued (a snapshot of what was filed;
//! secrets masked as in the form's summary). Attachment bytes are loaded at send time from where
//! the request keeps them ([`crate::requests::attachments`]).
//!
//! `smtp_url`: `smtps://user:pass@host:465` = implicit TLS; `smtp://user:pass@host:587` =
//! STARTTLS required; `smtp://host:25` without credentials = plain (a local relay or a
//! loopback test server). `?tls=required|opportunistic` overrides for `smtp://`.
//!
//! SMTP answers: 5xx is permanent (the item is listed as failed); 4xx, timeouts, connection
//! and TLS trouble are retried by the outbox.

use std::sync::Arc;
use std::time::Duration;

use super::error::HandoffError;
use crate::catalog::{FieldValue, Window};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::{ChannelKind, Conversation};
use crate::notify::delivery::{Delivery, DeliveryKind};
use crate::notify::outbox::{DeliveryError, OutboxItem, Transport};
use crate::notify::people::Requesters;
// What the outbox keeps for one e-mail; re-exported where it has always been named.
pub use crate::notify::delivery::{AttachmentRef, EmailJob};
use crate::requests::Request;
use crate::requests::attachments::{self, BlobRef};
use crate::secret::Secret;
use crate::store::Store;

const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

// The shape is `notify::delivery`'s (the outbox stores it); how a request becomes a mail is this
// module's, so the constructor lives here.
impl EmailJob {
    /// Renders the email for `request`, sent to `to` under the idempotency key `key`.
    #[must_use]
    pub fn of(request: &Request, to: &str, key: &str) -> Self {
        let attachments = attachments_of(request);
        Self {
            to: to.trim().to_owned(),
            subject: subject(request),
            body: body(request, &attachments),
            message_id: message_id(key),
            attachments,
        }
    }
}

/// `[开通申请] KT-20261128-0007 #7 电子发票 (卖家账号 abc)`: the account in the subject lets
/// the mailbox team find a request by shop; without a seller account the first answer stands
/// in, and without answers the parenthesis is left out.
fn subject(request: &Request) -> String {
    let form = &request.form;
    let mut subject = format!(
        "[开通申请] {} #{} {}",
        request.id, form.service, form.service_name
    );
    let key_field = form
        .summary
        .iter()
        .find(|(label, _)| label.contains("卖家账号"))
        .or_else(|| form.summary.first());
    if let Some((label, value)) = key_field {
        subject.push_str(&format!(" ({label} {value})"));
    }
    subject
}

fn body(request: &Request, attachments: &[AttachmentRef]) -> String {
    let form = &request.form;
    let submitted = request
        .submitted_at
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M");
    let channel = match form.requester.channel {
        ChannelKind::App => "企业微信自建应用",
        ChannelKind::AiBot => "企业微信智能机器人",
    };
    let conversation = match &form.requester.conversation {
        Conversation::Direct => "",
        Conversation::Group(_) => ", 群聊",
    };
    let window = match &form.window {
        Window::DailyBatch => "每日批次 (16:00 截止, 17:30 前完成)".to_owned(),
        Window::Custom(text) => text.clone(),
    };
    let mut out = String::new();
    out.push_str(&format!("开通申请 {}\n\n", request.id));
    out.push_str(&format!("申请单号: {}\n", request.id));
    out.push_str(&format!("服务: #{} {}\n", form.service, form.service_name));
    out.push_str(&format!("处理人: {}\n", form.team.label()));
    out.push_str(&format!("处理时效: {window}\n"));
    out.push_str(&format!("批次日: {}\n", request.batch));
    out.push_str(&format!("提交时间: {submitted} (北京时间)\n"));
    out.push_str(&format!(
        "申请人: {} ({channel}{conversation})\n",
        form.requester.user.as_str()
    ));
    out.push_str("\n申请内容:\n");
    for (label, value) in &form.summary {
        out.push_str(&format!("  {label}: {value}\n"));
    }
    if !attachments.is_empty() {
        out.push_str(&format!(
            "\n附件 ({} 个, 见本邮件附件):\n",
            attachments.len()
        ));
        for a in attachments {
            out.push_str(&format!("  {}\n", a.file_name));
        }
    }
    out.push_str(
        "\n此邮件由开通助手自动发送。敏感信息已打码, 完整内容请向申请人索取; 处理结果请在系统中更新。\n",
    );
    out
}

/// The body with the requester's name, departments and e-mail after its `申请人:` line (or
/// first, if a body of an older version has none).
fn with_requester_line(body: &str, contact: &crate::requests::Contact) -> String {
    let mut line = format!("申请人姓名: {}", contact.name);
    if !contact.departments.is_empty() {
        line.push_str(&format!(" · 部门: {}", contact.departments.join("、")));
    }
    if let Some(email) = &contact.email {
        line.push_str(&format!(" · 邮箱: {email}"));
    }
    let mut out = String::with_capacity(body.len() + line.len() + 1);
    let mut placed = false;
    for part in body.split_inclusive('\n') {
        out.push_str(part);
        if !placed && part.starts_with("申请人: ") {
            out.push_str(&line);
            out.push('\n');
            placed = true;
        }
    }
    if placed {
        out
    } else {
        format!("{line}\n{body}")
    }
}

/// `<handoff.email.KT-20261128-0007@kaitong>`: only characters a msg-id allows.
fn message_id(key: &str) -> String {
    let left: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{left}@kaitong>")
}

/// MIME type from the file's extension; the handling side opens the file by it.
#[must_use]
pub fn mime_for(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xls" => "application/vnd.ms-excel",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "doc" => "application/msword",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "ppt" => "application/vnd.ms-powerpoint",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "zip" => "application/zip",
        "rar" => "application/vnd.rar",
        "7z" => "application/x-7z-compressed",
        "gz" => "application/gzip",
        "mp4" => "video/mp4",
        "amr" => "audio/amr",
        _ => "application/octet-stream",
    }
}

/// Mails email hand-offs through one SMTP server.
pub struct EmailTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// For logs and error messages: never the credentials.
    host: String,
    store: Arc<dyn Store>,
    /// Names the requester (and answers them by Reply-To) from WeCom's contacts.
    requesters: Option<Requesters>,
}

impl std::fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTransport")
            .field("host", &self.host)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailTransport {
    pub fn new(
        smtp_url: &Secret,
        mail_from: &str,
        store: Arc<dyn Store>,
    ) -> Result<Self, HandoffError> {
        let invalid = |reason: String| HandoffError::InvalidUrl {
            what: "smtp",
            reason,
        };
        let raw = smtp_url.expose().trim();
        // Errors below never quote `raw`: it carries the password.
        let url = reqwest::Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host".into()))?
            .to_owned();
        let has_tls_param = url.query_pairs().any(|(k, _)| k == "tls");
        let builder = match url.scheme() {
            "smtps" => AsyncSmtpTransport::<Tokio1Executor>::from_url(raw),
            "smtp" if has_tls_param => AsyncSmtpTransport::<Tokio1Executor>::from_url(raw),
            // Credentials never cross the network in clear: with a user, STARTTLS is required.
            "smtp" if !url.username().is_empty() => {
                let mut with_tls = url.clone();
                with_tls.query_pairs_mut().append_pair("tls", "required");
                AsyncSmtpTransport::<Tokio1Executor>::from_url(with_tls.as_str())
            }
            "smtp" => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                if !is_loopback(bare) {
                    tracing::warn!(host = %host, "smtp_url has no credentials: mail goes out without TLS");
                }
                Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(bare)
                    .port(url.port().unwrap_or(25)))
            }
            other => {
                return Err(invalid(format!(
                    "scheme {other:?}: expected smtp or smtps"
                )));
            }
        }
        .map_err(|e| invalid(e.to_string()))?;
        let mailer = builder.timeout(Some(SMTP_TIMEOUT)).build();
        let from: Mailbox =
            mail_from
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| {
                    HandoffError::MailFrom(mail_from.to_owned(), e.to_string())
                })?;
        Ok(Self {
            mailer,
            from,
            host,
            store,
            requesters: None,
        })
    }

    /// Names the requester in each mail from WeCom's contacts, with Reply-To their address.
    #[must_use]
    pub fn naming(mut self, requesters: Option<Requesters>) -> Self {
        self.requesters = requesters;
        self
    }

    /// The SMTP host (for logs and start-up messages).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Builds the message, loading attachment bytes from the store.
    async fn compose(&self, item: &OutboxItem) -> Result<Message, DeliveryError> {
        let Delivery::Email(job) = &item.delivery else {
            return Err(item.unexpected(DeliveryKind::Email));
        };
        let to: Mailbox = job
            .to
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("bad recipient {:?}: {e}", job.to)))?;
        let mut body = job.body.clone();
        // Looked up at sending (the worker runs apart from any reply), not when queued.
        let contact = match &self.requesters {
            Some(requesters) => requesters.of_item(&item.id).await,
            None => None,
        };
        let mut reply_to = None;
        if let Some(contact) = &contact {
            body = with_requester_line(&body, contact);
            reply_to = contact.email.as_deref().and_then(|email| {
                format!("{} <{}>", contact.name, email.trim())
                    .parse::<Mailbox>()
                    .or_else(|_| email.trim().parse::<Mailbox>())
                    .inspect_err(|e| {
                        tracing::warn!(id = %item.id, error = %e, "requester's e-mail unusable as Reply-To");
                    })
                    .ok()
            });
        }
        let mut files = Vec::new();
        for attachment in &job.attachments {
            match attachments::load_blob(self.store.as_ref(), &attachment.blob).await {
                Ok(Some(bytes)) => {
                    let content_type = ContentType::parse(mime_for(&attachment.file_name))
                        .unwrap_or(ContentType::TEXT_PLAIN);
                    files.push(
                        Attachment::new(attachment.file_name.clone()).body(bytes, content_type),
                    );
                }
                // Gone for good (retrying cannot bring it back): send the rest and say so, so
                // the request is not held up and the handler knows to ask for the file.
                Ok(None) => {
                    tracing::error!(id = %item.id, file = %attachment.file_name, "attachment bytes missing; mailing without it");
                    body.push_str(&format!(
                        "\n注意: 附件「{}」未能找到, 请向申请人索取。\n",
                        attachment.file_name
                    ));
                }
                Err(e) => {
                    return Err(DeliveryError::retry(format!(
                        "attachment {} unavailable: {e}",
                        attachment.file_name
                    )));
                }
            }
        }
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body));
        for file in files {
            parts = parts.singlepart(file);
        }
        let mut builder = Message::builder().from(self.from.clone()).to(to);
        if let Some(reply_to) = reply_to {
            builder = builder.reply_to(reply_to);
        }
        builder
            .subject(job.subject.clone())
            .message_id(Some(job.message_id.clone()))
            .date_now()
            .multipart(parts)
            .map_err(|e| DeliveryError::permanent(format!("message not buildable: {e}")))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[async_trait::async_trait]
impl Transport for EmailTransport {
    fn kind(&self) -> DeliveryKind {
        DeliveryKind::Email
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let message = self.compose(item).await?;
        match self.mailer.send(message).await {
            Ok(_) => {
                tracing::info!(kind = DeliveryKind::Email.as_str(), host = %self.host, id = %item.id, "hand-off mailed");
                Ok(())
            }
            Err(e) => {
                let cause = match e.status() {
                    Some(code) => format!("SMTP {code}"),
                    None if e.is_timeout() => "timeout".to_owned(),
                    None if e.is_tls() => "TLS".to_owned(),
                    None => crate::wecom::api::transport_cause(&e).to_owned(),
                };
                let message = format!(
                    "smtp {}: {cause}: {}",
                    self.host,
                    crate::wecom::api::source_chain(&e)
                );
                // Only a 5xx answer is final; 4xx, connection, timeout and TLS trouble may pass.
                Err(if e.is_permanent() {
                    DeliveryError::permanent(message)
                } else {
                    DeliveryError::retry(message)
                }
                .with_cause(cause))
            }
        }
    }
}

/// The attachments of a request: file name and where their bytes are kept.
fn attachments_of(request: &Request) -> Vec<AttachmentRef> {
    request
        .form
        .answers
        .iter()
        .filter_map(|(field, value)| match value {
            FieldValue::Attachment { file_name, .. } => Some(AttachmentRef {
                file_name: file_name.clone(),
                blob: BlobRef::of(&request.form.form_id, field.as_str()),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mime_types_follow_the_extension() {
        assert_eq!(mime_for("报价单.PDF"), "application/pdf");
        assert_eq!(
            mime_for("a.b.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }

    #[test]
    fn message_ids_are_valid() {
        assert_eq!(
            message_id("handoff:email:KT-20261128-0007"),
            "<handoff.email.KT-20261128-0007@kaitong>"
        );
    }

    #[test]
    fn smtp_urls_are_checked_without_quoting_them() {
        // The transport only keeps the store for attachments; a real one in a temp dir will do.
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            crate::store::EmbeddedStore::open(dir.path().join("k.db")).expect("embedded store"),
        );
        let url = |s: &str| Secret::from(s);
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://user:pa55@mail.example.com:587",
            "smtps://user:pa55@mail.example.com",
            "smtp://mail.example.com?tls=opportunistic",
        ] {
            EmailTransport::new(
                &url(ok),
                "开通助手 <kaitong@example.com>",
                Arc::clone(&store),
            )
            .unwrap();
        }
        let err = EmailTransport::new(
            &url("imap://user:pa55@mail.example.com"),
            "a@b.c",
            Arc::clone(&store),
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("pa55"), "{err}");
        assert!(EmailTransport::new(&url("smtp://127.0.0.1:25"), "not an address", store).is_err());
    }
}
