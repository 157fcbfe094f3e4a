//! Every store key scheme, one typed builder each: the only place a key string is spelled.
//!
//! Owns the spelling of keys (and of the outbox item ids that become part of keys). The
//! strings are a stored format: records written by earlier versions must still be found, so a
//! builder's output never changes (the tests pin each one). It must not read or write the
//! store, nor decide what a record means; callers pass plain values or domain ids.

use crate::domain::{ChannelKind, Conversation, RequestId, UserId};

// --- channel: retry de-duplication, AI-bot streams, template media ---

/// The de-duplication record of an app message, by its MsgId, per corp and agent.
#[must_use]
pub fn dedupe_app_message(corp_id: &str, agent_id: &str, msg_id: &str) -> String {
    format!("idem:app:{corp_id}:{agent_id}:msg:{msg_id}")
}

/// The de-duplication record of an app event, which has no MsgId: WeCom's own rule
/// (sender + CreateTime + Event), with the card click's task and key.
#[must_use]
pub fn dedupe_app_event(
    corp_id: &str,
    agent_id: &str,
    from: &str,
    create_time: &str,
    event: &str,
    task_id: &str,
    event_key: &str,
) -> String {
    format!("idem:app:{corp_id}:{agent_id}:evt:{from}:{create_time}:{event}:{task_id}:{event_key}")
}

/// The de-duplication record of an AI-bot message, by its msgid, per bot.
#[must_use]
pub fn dedupe_aibot_message(aibot_id: &str, msg_id: &str) -> String {
    format!("idem:aibot:{aibot_id}:{msg_id}")
}

/// The text of an AI-bot stream reply, fetched by the stream's refresh callbacks.
#[must_use]
pub fn aibot_stream(stream_id: &str) -> String {
    format!("stream:{stream_id}")
}

/// The cached `media_id` of an uploaded blank template, by the SHA-256 of its bytes.
#[must_use]
pub fn template_media(sha256: &[u8]) -> String {
    format!("media:template:{}", hex::encode(sha256))
}

// --- dialog: sessions and the reason a 驳回 click waits for ---

/// One person's session in one chat on one channel.
#[must_use]
pub fn session(channel: ChannelKind, conversation: &Conversation, user: &UserId) -> String {
    let conversation = match conversation {
        Conversation::Direct => "direct".to_owned(),
        Conversation::Group(id) => format!("group:{id}"),
    };
    format!("session:{}:{conversation}:{user}", channel.as_str())
}

/// A handler's pending 驳回: the next message is the reason.
#[must_use]
pub fn reason_wanted(user: &UserId) -> String {
    format!("reason_wanted:{user}")
}

// --- requests: the ledger, its indexes and attachment blobs ---

/// The bytes of an attachment answer, by the form that holds it and the field's key.
#[must_use]
pub fn attachment_blob(form_id: &str, field: &str) -> String {
    format!("attachment:{form_id}:{field}")
}

/// The day's request counter (`local_date` as `YYYYMMDD`).
#[must_use]
pub fn request_seq(local_date: &str) -> String {
    format!("seq:{local_date}")
}

/// A filed request.
#[must_use]
pub fn request(id: &RequestId) -> String {
    format!("request:{id}")
}

/// Every filed request: the prefix of [`request`].
pub const REQUESTS: &str = "request:";

/// The receipt of a filed form, by the form's id: filing the same form twice files once.
#[must_use]
pub fn filed_form(form_id: &str) -> String {
    format!("form:{form_id}")
}

/// A request's entry in its batch day's index (`day` as the batch day prints).
#[must_use]
pub fn batch_entry(day: &str, id: &RequestId) -> String {
    format!("{}{id}", batch_index(day))
}

/// The prefix of one batch day's index.
#[must_use]
pub fn batch_index(day: &str) -> String {
    format!("batch:{day}:")
}

/// A request's entry in its requester's index.
#[must_use]
pub fn requester_entry(channel: ChannelKind, user: &UserId, id: &RequestId) -> String {
    format!("{}{id}", requester_index(channel, user))
}

/// The prefix of one requester's index.
#[must_use]
pub fn requester_index(channel: ChannelKind, user: &UserId) -> String {
    format!("mine:{}:{user}:", channel.as_str())
}

/// A still-open request's entry in the open-work index (removed when it becomes final).
#[must_use]
pub fn open_entry(id: &RequestId) -> String {
    format!("{OPEN_INDEX}{id}")
}

/// The open-work index: the prefix of [`open_entry`].
pub const OPEN_INDEX: &str = "openwork:";

/// Written once every request filed before the open-work index existed has been indexed.
#[must_use]
pub fn open_index_built() -> String {
    "index:openwork:built".to_owned()
}

/// The request an index entry (`batch_entry`, `requester_entry`, `open_entry`) under `index`
/// points to.
#[must_use]
pub fn indexed_request(index: &str, key: &str) -> Option<RequestId> {
    key.strip_prefix(index).and_then(RequestId::parse)
}

// --- notify: the outbox and the daily jobs ---

/// An item waiting to be sent by the transport of `kind`.
#[must_use]
pub fn outbox_pending(kind: &str, id: &str) -> String {
    format!("{}{id}", outbox_pending_of(kind))
}

/// The prefix of the items waiting for the transport of `kind`.
#[must_use]
pub fn outbox_pending_of(kind: &str) -> String {
    format!("{OUTBOX_PENDING}{kind}:")
}

/// Every waiting item, all kinds.
pub const OUTBOX_PENDING: &str = "outbox:pending:";

/// An item given up after its last attempt.
#[must_use]
pub fn outbox_failed(kind: &str, id: &str) -> String {
    format!("{OUTBOX_FAILED}{kind}:{id}")
}

/// Every item given up, all kinds.
pub const OUTBOX_FAILED: &str = "outbox:failed:";

/// Sent or given up: makes enqueueing an id idempotent.
#[must_use]
pub fn outbox_done(id: &str) -> String {
    format!("outbox:done:{id}")
}

/// One sender at a time for an item, across instances.
#[must_use]
pub fn outbox_lease(id: &str) -> String {
    format!("outbox:lease:{id}")
}

/// A daily job's done record for one batch day.
#[must_use]
pub fn day_job_done(job: &str, day: &str) -> String {
    format!("job:{job}:{day}:done")
}

/// When the store was last restored from a backup (`kaitong store restore`): a daily job due
/// before it ran on the store the backup was taken from, and is not run again.
#[must_use]
pub fn store_restored_at() -> String {
    "store:restored_at".to_owned()
}

/// A daily job's lease for one batch day (one instance runs it).
#[must_use]
pub fn day_job_lease(job: &str, day: &str) -> String {
    format!("job:{job}:{day}:lease")
}

// --- outbox item ids: stored as part of the outbox keys above, so spelled here too ---

/// The requester's notice of a request's final status (`done`, `rejected`).
#[must_use]
pub fn notice_final(id: &RequestId, status: &str) -> String {
    format!("notice:{id}:{status}")
}

/// The 17:30 push for a request still open at done-by time.
#[must_use]
pub fn notice_pending(id: &RequestId) -> String {
    format!("notice:{id}:pending")
}

/// A hand-off of a newly filed request to the transport of `kind`.
#[must_use]
pub fn handoff_filed(kind: &str, id: &RequestId) -> String {
    format!("handoff:{kind}:{id}")
}

/// A hand-off of a request's change to `status`.
#[must_use]
pub fn handoff_status(kind: &str, id: &RequestId, status: &str) -> String {
    format!("handoff:{kind}:{id}:{status}")
}

/// A new OA ticket's announcement to one of its handlers.
#[must_use]
pub fn handoff_announce(id: &RequestId, handler: &UserId) -> String {
    format!("handoff:announce:{id}:{handler}")
}

/// A handler's cut-off overview for one batch day.
#[must_use]
pub fn handler_card_overview(day: &str, handler: &UserId) -> String {
    format!("handler_card:{day}:{handler}:overview")
}

/// A handler's cut-off card for one request.
#[must_use]
pub fn handler_card(day: &str, handler: &UserId, id: &RequestId) -> String {
    format!("handler_card:{day}:{handler}:{id}")
}

/// A handler's reminder at a batch day's done-by time about their open requests.
#[must_use]
pub fn handler_reminder(day: &str, handler: &UserId) -> String {
    format!("reminder:{day}:{handler}")
}

/// The request an outbox item is about, read from its id (the schemes above that name one);
/// `None` for items about no single request (a handler's overview).
#[must_use]
pub fn request_of_item(id: &str) -> Option<RequestId> {
    let mut parts = id.split(':');
    match parts.next()? {
        "notice" => RequestId::parse(parts.next()?),
        "handoff" => RequestId::parse(parts.nth(1)?),
        "handler_card" => RequestId::parse(parts.nth(2)?),
        _ => None,
    }
}

// --- WeCom contacts cache ---

/// A member's contact as `user/get` gave it (or the marker that WeCom would not say).
#[must_use]
pub fn contact(user: &UserId) -> String {
    format!("contact:user:{user}")
}

/// The department names `department/list` gave, by id.
#[must_use]
pub fn contact_departments() -> String {
    "contact:departments".to_owned()
}

// --- WeCom approvals (the OA hand-off) ---

/// The request a WeCom approval (`sp_no`) was filed for.
#[must_use]
pub fn approval(sp_no: &str) -> String {
    format!("approval:{sp_no}")
}

/// The WeCom approval a request was filed as (its `sp_no`).
#[must_use]
pub fn approval_of_request(id: &RequestId) -> String {
    format!("approval_of:{id}")
}

// --- embed and console ---

/// A cached sentence vector: `kind` ("q" query, "p" passage) and a digest of model and text.
#[must_use]
pub fn embedding_cache(kind: &str, digest: &[u8]) -> String {
    format!("embcache:{kind}:{}", hex::encode(digest))
}

/// A console login session, by the hash of its id.
#[must_use]
pub fn console_session(id_hash: &str) -> String {
    format!("{CONSOLE_SESSIONS}{id_hash}")
}

/// Every console login session.
pub const CONSOLE_SESSIONS: &str = "console:session:";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Existing stores hold these exact strings; a change here loses their records.
    #[test]
    fn every_scheme_keeps_its_stored_spelling() {
        let user = UserId::parse("zhangsan").unwrap();
        let id = RequestId::parse("KT-20261128-0007").unwrap();
        let group = Conversation::Group("wrkXYZ".into());
        let pinned = [
            (
                dedupe_app_message("ww1", "1000002", "m1"),
                "idem:app:ww1:1000002:msg:m1",
            ),
            (
                dedupe_app_event("ww1", "1000002", "zs", "1700000000", "click", "t1", "k1"),
                "idem:app:ww1:1000002:evt:zs:1700000000:click:t1:k1",
            ),
            (dedupe_aibot_message("bot1", "m2"), "idem:aibot:bot1:m2"),
            (aibot_stream("kt00ff"), "stream:kt00ff"),
            (template_media(&[0xab, 0x01]), "media:template:ab01"),
            (
                session(ChannelKind::App, &Conversation::Direct, &user),
                "session:app:direct:zhangsan",
            ),
            (
                session(ChannelKind::AiBot, &group, &user),
                "session:aibot:group:wrkXYZ:zhangsan",
            ),
            (reason_wanted(&user), "reason_wanted:zhangsan"),
            (attachment_blob("f1", "license"), "attachment:f1:license"),
            (request_seq("20261128"), "seq:20261128"),
            (request(&id), "request:KT-20261128-0007"),
            (REQUESTS.to_owned(), "request:"),
            (filed_form("f1"), "form:f1"),
            (
                batch_entry("2026-11-28", &id),
                "batch:2026-11-28:KT-20261128-0007",
            ),
            (batch_index("2026-11-28"), "batch:2026-11-28:"),
            (
                requester_entry(ChannelKind::AiBot, &user, &id),
                "mine:aibot:zhangsan:KT-20261128-0007",
            ),
            (
                requester_index(ChannelKind::App, &user),
                "mine:app:zhangsan:",
            ),
            (outbox_pending("wecom", "n1"), "outbox:pending:wecom:n1"),
            (outbox_pending_of("email"), "outbox:pending:email:"),
            (OUTBOX_PENDING.to_owned(), "outbox:pending:"),
            (outbox_failed("oa", "n1"), "outbox:failed:oa:n1"),
            (OUTBOX_FAILED.to_owned(), "outbox:failed:"),
            (outbox_done("n1"), "outbox:done:n1"),
            (outbox_lease("n1"), "outbox:lease:n1"),
            (
                day_job_done("batch_push", "2026-11-28"),
                "job:batch_push:2026-11-28:done",
            ),
            (
                day_job_lease("batch_push", "2026-11-28"),
                "job:batch_push:2026-11-28:lease",
            ),
            (store_restored_at(), "store:restored_at"),
            (notice_final(&id, "done"), "notice:KT-20261128-0007:done"),
            (notice_pending(&id), "notice:KT-20261128-0007:pending"),
            (
                handoff_filed("webhook", &id),
                "handoff:webhook:KT-20261128-0007",
            ),
            (
                handoff_status("webhook", &id, "processing"),
                "handoff:webhook:KT-20261128-0007:processing",
            ),
            (
                handler_card_overview("2026-11-28", &user),
                "handler_card:2026-11-28:zhangsan:overview",
            ),
            (
                handler_card("2026-11-28", &user, &id),
                "handler_card:2026-11-28:zhangsan:KT-20261128-0007",
            ),
            (open_entry(&id), "openwork:KT-20261128-0007"),
            (OPEN_INDEX.to_owned(), "openwork:"),
            (open_index_built(), "index:openwork:built"),
            (
                handler_reminder("2026-11-28", &user),
                "reminder:2026-11-28:zhangsan",
            ),
            (embedding_cache("q", &[0x0f, 0xa0]), "embcache:q:0fa0"),
            (console_session("abc"), "console:session:abc"),
            (CONSOLE_SESSIONS.to_owned(), "console:session:"),
            (contact(&user), "contact:user:zhangsan"),
            (contact_departments(), "contact:departments"),
            (approval("202611280001"), "approval:202611280001"),
            (
                handoff_announce(&id, &user),
                "handoff:announce:KT-20261128-0007:zhangsan",
            ),
            (approval_of_request(&id), "approval_of:KT-20261128-0007"),
        ];
        for (built, stored) in pinned {
            assert_eq!(built, stored);
        }
    }

    #[test]
    fn index_entries_point_back_to_their_request() {
        let user = UserId::parse("zhangsan").unwrap();
        let id = RequestId::parse("KT-20261128-0007").unwrap();
        let index = requester_index(ChannelKind::App, &user);
        let entry = requester_entry(ChannelKind::App, &user, &id);
        assert_eq!(indexed_request(&index, &entry), Some(id));
        assert_eq!(
            indexed_request(&index, "mine:app:other:KT-20261128-0007"),
            None
        );
    }
}
