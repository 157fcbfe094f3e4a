//! The dialog bot: loads a person's session, runs one engine turn, files confirmed forms and
//! saves the session back with compare-and-swap, so one person's messages apply in order even
//! across instances (a lost race re-runs the turn on the fresh session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;

use super::commands::RequestCommand;
use super::engine::Engine;
use super::meaning::{SentenceEncoder, Space};
use super::session::{Session, State, Step};
use super::understand::{Matcher, Tuning, TuningError};
use crate::catalog::MessageKey;
use crate::catalog::{Catalog, CatalogHandle};
use crate::domain::{
    AttachmentFetcher, BlankTemplates, Bot, CardRelabeler, Content, HandledLabel, Inbound, Reply,
    RequestId, UserId,
};
use crate::embed::{QueryBatcher, ServerEmbedder};
use crate::requests::{
    BatchSchedule, Desk, DeskAction, DeskError, FiledForm, HandlerDirectory, Ledger, Request,
    RequestFilter, Requester, Status, attachments,
};
use crate::store::{Durability, Store, Versioned, keys};

/// How long after a filing a stray 确认 shows that filing's receipt again.
const RECEIPT_AGAIN_WITHIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

const MAX_ATTEMPTS: usize = 5;
/// Time allowed for downloading an attachment inside a callback.
const FETCH_BUDGET: Duration = Duration::from_millis(2500);
/// A session is kept this long past its TTL so a late message can be told the form expired.
const EXPIRY_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Time allowed for relabelling a clicked card inside a callback.
const CARD_UPDATE_BUDGET: Duration = Duration::from_millis(2500);
/// How long a handler's next message is taken as the reason after clicking 驳回.
const REASON_WAIT: Duration = Duration::from_secs(3600);

/// A handler clicked 驳回 on a card: their next message is the reason.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ReasonWanted {
    request: RequestId,
    /// The click's code for relabelling the card once the request is rejected.
    response_code: Option<String>,
}

/// How long a reply waits for its template to be sent before saying it is on its way.
const TEMPLATE_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

pub struct DialogBot {
    catalog: CatalogHandle,
    /// The matcher built for the current catalog snapshot; rebuilt after a reload.
    index: RwLock<(Arc<Catalog>, Arc<Matcher>)>,
    store: Arc<dyn Store>,
    ledger: Arc<dyn Ledger>,
    schedule: BatchSchedule,
    ttl: Duration,
    /// Serialises one person's turns inside this process (CAS covers other instances).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Downloads attachments so they are kept with the request (WeCom's copies expire).
    fetcher: Option<Arc<dyn AttachmentFetcher>>,
    /// Request commands (/status, /mine, /today, /cancel, /done, /reject); off without a desk.
    desk: Option<Desk>,
    handlers: HandlerDirectory,
    admins: Vec<String>,
    meaning: Arc<MeaningState>,
    /// Relabels a handler's clicked card once the request is handled.
    cards: Option<Arc<dyn CardRelabeler>>,
    /// Blank templates sent as files when a field naming one is asked.
    templates: Option<Arc<dyn BlankTemplates>>,
}

/// What understanding by meaning needs at run time: the in-process encoder and its space for
/// the current catalog, the embedding server and its space (built in the background at start
/// and after each reload, cached in the store), and whether the server is in an outage (so an
/// outage is logged once, not per message).
#[derive(Default)]
pub struct MeaningState {
    encoder: Option<Arc<dyn SentenceEncoder>>,
    static_space: RwLock<Option<(Arc<Catalog>, Arc<Space>)>>,
    server: Option<Arc<ServerEmbedder>>,
    /// People's messages to the server: concurrent ones in one call, repeated ones cached.
    queries: Option<QueryBatcher>,
    server_space: RwLock<Option<(Arc<Catalog>, Arc<Space>)>>,
    building: std::sync::atomic::AtomicBool,
    outage: std::sync::atomic::AtomicBool,
}

/// The space a message is compared in and its vector there.
pub struct MessageMeaning {
    pub space: Arc<Space>,
    pub vector: crate::embed::Vector,
}

impl MeaningState {
    fn static_space(&self, catalog: &Arc<Catalog>) -> Option<Arc<Space>> {
        let encoder = self.encoder.as_ref()?;
        {
            let guard = self
                .static_space
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((c, space)) = guard.as_ref()
                && Arc::ptr_eq(c, catalog)
            {
                return Some(Arc::clone(space));
            }
        }
        let space = Arc::new(Space::encode(catalog, encoder.as_ref()));
        *self
            .static_space
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Arc::clone(catalog), Arc::clone(&space)));
        Some(space)
    }

    /// The server's space for `catalog`; starts building it in the background when missing.
    fn server_space(
        self: &Arc<Self>,
        catalog: &Arc<Catalog>,
        store: &Arc<dyn Store>,
    ) -> Option<Arc<Space>> {
        let server = self.server.as_ref()?;
        {
            let guard = self
                .server_space
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((c, space)) = guard.as_ref()
                && Arc::ptr_eq(c, catalog)
            {
                return Some(Arc::clone(space));
            }
        }
        if !self
            .building
            .swap(true, std::sync::atomic::Ordering::SeqCst)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let state = Arc::clone(self);
            let server = Arc::clone(server);
            let catalog = Arc::clone(catalog);
            let store = Arc::clone(store);
            runtime.spawn(async move {
                let started = std::time::Instant::now();
                // A slow server gets time here: this runs beside the conversation, not in it.
                match Space::from_server(&catalog, &server, Some(store.as_ref())).await {
                    Ok(space) => {
                        crate::metrics::embedding_space_ready(space.len());
                        tracing::info!(model = %space.model, dims = space.dims(), elapsed_ms = started.elapsed().as_millis() as u64, "catalog embedded by the embedding server");
                        *state.server_space.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some((catalog, Arc::new(space)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "catalog could not be embedded by the server; the in-process table answers until it can");
                    }
                }
                state.building.store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
        None
    }

    /// The message's meaning: by the server when it has the catalog and answers in time, else
    /// by the in-process table.
    async fn message(
        self: &Arc<Self>,
        catalog: &Arc<Catalog>,
        store: &Arc<dyn Store>,
        text: &str,
    ) -> Option<MessageMeaning> {
        if let (Some(queries), Some(space)) = (&self.queries, self.server_space(catalog, store)) {
            match queries.embed(text).await {
                Ok(vector) if vector.len() == space.dims() => {
                    if self.outage.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        tracing::info!("embedding server answers again");
                    }
                    return Some(MessageMeaning { space, vector });
                }
                Ok(_) => self.fallback(
                    "dimension",
                    "the embedding server's vectors changed dimension",
                ),
                Err(e) => {
                    let reason = match &e {
                        crate::embed::EmbedError::Unavailable(_) => "unavailable",
                        crate::embed::EmbedError::Status { .. } => "status",
                        crate::embed::EmbedError::TooLarge { .. } => "too_large",
                        _ => "garbage",
                    };
                    self.fallback(reason, &e.to_string());
                }
            }
        }
        let encoder = self.encoder.as_ref()?;
        let space = self.static_space(catalog)?;
        Some(MessageMeaning {
            space,
            vector: encoder.encode(text),
        })
    }

    fn fallback(&self, reason: &str, detail: &str) {
        crate::metrics::embedding_fallback(reason);
        if !self.outage.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tracing::warn!(
                reason,
                detail,
                "embedding server failed; understanding falls back to the in-process table until it answers again"
            );
        }
    }
}

impl DialogBot {
    /// The bot over the current catalog, with the word lists beside it (`understanding.toml`
    /// in the catalog's folder; see [`index`]).
    pub fn new(
        catalog: CatalogHandle,
        store: Arc<dyn Store>,
        ledger: Arc<dyn Ledger>,
        schedule: BatchSchedule,
        ttl: Duration,
    ) -> Result<Self, TuningError> {
        let snapshot = catalog.current();
        let matcher = Arc::new(index(&snapshot)?);
        Ok(Self {
            catalog,
            index: RwLock::new((snapshot, matcher)),
            store,
            ledger,
            schedule,
            ttl,
            locks: Mutex::new(HashMap::new()),
            fetcher: None,
            desk: None,
            handlers: HandlerDirectory::default(),
            admins: Vec::new(),
            meaning: Arc::new(MeaningState::default()),
            cards: None,
            templates: None,
        })
    }

    /// Relabels handlers' cards after a click has been acted on.
    #[must_use]
    pub fn with_card_updates(mut self, cards: Arc<dyn CardRelabeler>) -> Self {
        self.cards = Some(cards);
        self
    }

    /// Sends the blank templates fields name, and recognises them when sent back unchanged.
    #[must_use]
    pub fn with_templates(mut self, templates: Arc<dyn BlankTemplates>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Understanding by meaning: the in-process encoder (the distilled table) and, when
    /// configured, an embedding server (people's messages batched and cached as `settings`
    /// say). The server's catalog space is built in the background.
    #[must_use]
    pub fn with_meaning(
        mut self,
        encoder: Option<Arc<dyn SentenceEncoder>>,
        server: Option<ServerEmbedder>,
        settings: &crate::config::EmbeddingsSection,
    ) -> Self {
        let server = server.map(Arc::new);
        let queries = server
            .as_ref()
            .map(|s| QueryBatcher::for_server(Arc::clone(s), settings));
        self.meaning = Arc::new(MeaningState {
            encoder,
            server,
            queries,
            ..MeaningState::default()
        });
        let (catalog, _) = self.snapshot();
        let _ = self.meaning.server_space(&catalog, &self.store);
        self
    }

    /// Answers the request commands through `desk`; handlers and admins see beyond their own.
    #[must_use]
    pub fn with_commands(
        mut self,
        desk: Desk,
        handlers: HandlerDirectory,
        admins: Vec<String>,
    ) -> Self {
        self.desk = Some(desk);
        self.handlers = handlers;
        self.admins = admins;
        self
    }

    /// Keeps attachments by downloading them when a form asks for one.
    #[must_use]
    pub fn with_fetcher(mut self, fetcher: Arc<dyn AttachmentFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Downloads and keeps an attachment the form is waiting for; returns the content to use
    /// (with the file name WeCom gave the download), or the reply to send on failure.
    async fn keep_attachment(
        &self,
        catalog: &Catalog,
        session: &Session,
        content: &Content,
    ) -> Result<Content, Reply> {
        let (Content::Attachment(attachment), Some(fetcher)) = (content, &self.fetcher) else {
            return Ok(content.clone());
        };
        let State::Filling { form } = &session.state else {
            return Ok(content.clone());
        };
        let Step::Ask(field) = &form.step else {
            return Ok(content.clone());
        };
        let wants_file = catalog
            .service(form.service)
            .and_then(|s| s.field(field))
            .is_some_and(|f| matches!(f.spec.kind, crate::catalog::FieldKind::Attachment { .. }));
        // The blank template itself is refused by the engine; there is nothing to keep.
        let blank_template = catalog
            .service(form.service)
            .and_then(|s| s.field(field))
            .is_some_and(|f| super::engine::is_blank_template(f, attachment.file_name.as_deref()));
        if !wants_file || blank_template {
            return Ok(content.clone());
        }
        let failed = || {
            Reply::Text(
                catalog
                    .messages()
                    .get(MessageKey::AttachmentFailed)
                    .to_owned(),
            )
        };
        // WeCom waits 5 s for our answer: a slow download is given up and the person asked to
        // send the file again, rather than losing the whole reply.
        let media = tokio::time::timeout(FETCH_BUDGET, fetcher.fetch(&attachment.source))
            .await
            .map_err(|_| {
                tracing::warn!("attachment download timed out");
                failed()
            })?
            .map_err(|e| {
                tracing::warn!(error = %e, "attachment could not be fetched");
                failed()
            })?;
        attachments::store_blob(self.store.as_ref(), &form.id, field.as_str(), &media.bytes)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "attachment could not be kept");
                failed()
            })?;
        let mut kept = attachment.clone();
        if kept.file_name.is_none() {
            kept.file_name = media.file_name;
        }
        // The blank template under another name is still the blank template: named as the
        // template, the engine refuses it like the one sent back unrenamed.
        if let Some(template) = self.blank_template_bytes(catalog, form, field).await
            && template == media.bytes
        {
            kept.file_name = Some(template_name(catalog, form, field).unwrap_or_default());
        }
        Ok(Content::Attachment(kept))
    }

    /// The bytes of the blank template the asked field names, when a file is configured.
    async fn blank_template_bytes(
        &self,
        catalog: &Catalog,
        form: &super::session::Form,
        field: &crate::catalog::FieldKey,
    ) -> Option<Vec<u8>> {
        let name = template_name(catalog, form, field)?;
        self.templates.as_ref()?.content(&name).await
    }

    /// Sends the template a just-asked field names, when there is a usable file for it, and says
    /// under the question what became of it (sent, still being sent, or not sent); without a
    /// file the question's own text hint stands. The reply waits at most [`TEMPLATE_WAIT`].
    async fn offer_template(
        &self,
        catalog: &Catalog,
        user: &UserId,
        name: &str,
        reply: Reply,
    ) -> Reply {
        let Some(templates) = &self.templates else {
            return reply;
        };
        if !templates.available(name) {
            return reply;
        }
        let templates = Arc::clone(templates);
        let (user, file) = (user.clone(), name.to_owned());
        let mut sending = tokio::spawn(async move { templates.send(&user, &file).await });
        // Wait a little for the outcome so the reply tells the truth; a slow upload goes on
        // beside the reply (its failure logged), never costing the 5 s answer.
        let key = match tokio::time::timeout(TEMPLATE_WAIT, &mut sending).await {
            Ok(Ok(Ok(()))) => MessageKey::TemplateSent,
            Ok(Ok(Err(e))) => {
                tracing::warn!(template = %name, error = %e, "template not sent");
                MessageKey::TemplateFailed
            }
            Ok(Err(e)) => {
                tracing::warn!(template = %name, error = %e, "template not sent");
                MessageKey::TemplateFailed
            }
            Err(_) => {
                let file = name.to_owned();
                tokio::spawn(async move {
                    match sending.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(template = %file, error = %e, "template not sent");
                        }
                        Err(e) => {
                            tracing::warn!(template = %file, error = %e, "template not sent");
                        }
                    }
                });
                MessageKey::TemplateSending
            }
        };
        match reply {
            Reply::Text(text) => Reply::Text(format!(
                "{text}\n\n{}",
                catalog.messages().render(key, &[("template", name)])
            )),
            other => other,
        }
    }

    /// A rejected request of this person's, for "重新提交 KT-…"; anything else is answered
    /// as `/status` answers it (unknown and others' alike).
    async fn rejected_request(
        &self,
        catalog: &Catalog,
        id: Option<RequestId>,
        user: &UserId,
    ) -> Result<Request, Reply> {
        let m = catalog.messages();
        // Without a number: the person's most recent rejected request, already read whole.
        let id = match id {
            Some(id) => Some(id),
            None => match super::commands::latest_rejected(self.ledger.as_ref(), user).await {
                Ok(Some(request)) => return Ok(request),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "resubmit lookup failed");
                    return Err(Self::busy(catalog));
                }
            },
        };
        let Some(id) = id else {
            return Err(Reply::Text(m.get(MessageKey::CmdResubmitUsage).to_owned()));
        };
        let request = match self.ledger.get(&id).await {
            Ok(Some(r)) if r.form.requester.user == *user => r,
            Ok(_) => return Err(Reply::Text(m.get(MessageKey::CmdNotFound).to_owned())),
            Err(e) => {
                tracing::error!(error = %e, "resubmit lookup failed");
                return Err(Self::busy(catalog));
            }
        };
        if request.status() != Status::Rejected {
            return Err(Reply::Text(m.render(
                MessageKey::CmdResubmitNotRejected,
                &[("id", id.as_str()), ("status", request.status().label())],
            )));
        }
        Ok(request)
    }

    /// A click on a handler's card: 完成 runs `/done`; 驳回 asks for the reason, which the
    /// handler's next message gives (or "驳回 KT-… 原因").
    async fn desk_action(
        &self,
        catalog: &Catalog,
        desk: &Desk,
        action: DeskAction,
        response_code: Option<&str>,
        message: &Inbound,
    ) -> Reply {
        let m = catalog.messages();
        let Some(handler) = self.handlers.by_wecom_user(&message.sender) else {
            return Reply::Text(m.get(MessageKey::CmdNoPermission).to_owned());
        };
        match action {
            DeskAction::Complete(id) => {
                let command = RequestCommand::Done {
                    id: Some(id.clone()),
                    note: String::new(),
                };
                let reply = self.run_command(catalog, desk, command, message).await;
                self.settle_card(catalog, &id, response_code, &message.sender)
                    .await;
                reply
            }
            DeskAction::Reject(id) => match desk.visible(&handler, &id).await {
                Ok(request) if request.status().is_final() => {
                    self.settle_card(catalog, &id, response_code, &message.sender)
                        .await;
                    Reply::Text(m.render(
                        MessageKey::CmdNotNow,
                        &[("id", id.as_str()), ("status", request.status().label())],
                    ))
                }
                Ok(_) => {
                    let wanted = ReasonWanted {
                        request: id.clone(),
                        response_code: response_code.map(str::to_owned),
                    };
                    let bytes = serde_json::to_vec(&wanted).unwrap_or_default();
                    match self
                        .store
                        .put(
                            &keys::reason_wanted(&message.sender),
                            &bytes,
                            Some(REASON_WAIT),
                        )
                        .await
                    {
                        Ok(()) => {
                            Reply::Text(m.render(MessageKey::CardRejectAsk, &[("id", id.as_str())]))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reason request not kept");
                            Self::busy(catalog)
                        }
                    }
                }
                Err(DeskError::NotFound) => Reply::Text(m.get(MessageKey::CmdNotFound).to_owned()),
                Err(e) => {
                    tracing::error!(error = %e, "card action failed");
                    Self::busy(catalog)
                }
            },
        }
    }

    /// A handler who clicked 驳回 and owes a reason: their message is the reason (a command
    /// runs as usual, 取消 withdraws). `None` when no reason is wanted.
    async fn pending_reason(
        &self,
        catalog: &Catalog,
        matcher: &Matcher,
        desk: &Desk,
        command: Option<RequestCommand>,
        text: &str,
        message: &Inbound,
    ) -> Option<Reply> {
        let key = keys::reason_wanted(&message.sender);
        let wanted: ReasonWanted = match self.store.get(&key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok()?,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "store unavailable");
                return Some(Self::busy(catalog));
            }
        };
        let reply = match command {
            Some(command) => self.run_command(catalog, desk, command, message).await,
            None if Tuning::is(&matcher.tuning().commands.cancel, text.trim()) => {
                let _ = self.store.delete(&key).await;
                return Some(Reply::Text(catalog.messages().render(
                    MessageKey::CardRejectCancelled,
                    &[("id", wanted.request.as_str())],
                )));
            }
            None => {
                let command = RequestCommand::Reject {
                    id: Some(wanted.request.clone()),
                    reason: text.trim().to_owned(),
                };
                self.run_command(catalog, desk, command, message).await
            }
        };
        if self
            .settle_card(
                catalog,
                &wanted.request,
                wanted.response_code.as_deref(),
                &message.sender,
            )
            .await
        {
            let _ = self.store.delete(&key).await;
        }
        Some(reply)
    }

    /// Once a request is done or rejected, relabels the clicked card with who handled it.
    /// Returns whether the request is settled. A failed relabel is only logged: the request's
    /// state is in the ledger, the card is a view of it.
    async fn settle_card(
        &self,
        catalog: &Catalog,
        id: &RequestId,
        response_code: Option<&str>,
        user: &UserId,
    ) -> bool {
        let Ok(Some(request)) = self.ledger.get(id).await else {
            return false;
        };
        if !request.status().is_final() {
            return false;
        }
        if let (Some(cards), Some(code)) = (&self.cards, response_code) {
            let by = request
                .history
                .last()
                .map(|c| c.by.clone())
                .unwrap_or_default();
            // A long handler id would not read whole on the button: the channel then shows the
            // status alone.
            let label = HandledLabel {
                full: catalog.messages().render(
                    MessageKey::CardHandled,
                    &[("status", request.status().label()), ("by", &by)],
                ),
                short: request.status().label().to_owned(),
            };
            match tokio::time::timeout(CARD_UPDATE_BUDGET, cards.relabel(user, code, &label)).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(request = %id, error = %e, "card not relabelled"),
                Err(_) => tracing::warn!(request = %id, "card relabel timed out"),
            }
        }
        true
    }

    fn snapshot(&self) -> (Arc<Catalog>, Arc<Matcher>) {
        let current = self.catalog.current();
        {
            let guard = self
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if Arc::ptr_eq(&guard.0, &current) {
                return (Arc::clone(&guard.0), Arc::clone(&guard.1));
            }
        }
        // The catalog was reloaded: index it again with the word lists read again beside it;
        // invalid ones keep the lists in force.
        let matcher = Arc::new(index(&current).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "understanding.toml invalid after reload; keeping the old word lists");
            let guard = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            Matcher::new(&current, guard.1.tuning().clone())
        }));
        let mut guard = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (Arc::clone(&current), Arc::clone(&matcher));
        (current, matcher)
    }

    fn person_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.len() > 10_000 {
            // Drop locks nobody holds; they are recreated on demand.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        Arc::clone(locks.entry(key.to_owned()).or_default())
    }

    /// Answers a command about filed requests (slash or plain words) from the ledger.
    async fn run_command(
        &self,
        catalog: &Catalog,
        desk: &Desk,
        command: RequestCommand,
        message: &Inbound,
    ) -> Reply {
        let commands = super::commands::Commands {
            catalog,
            ledger: self.ledger.as_ref(),
            desk,
            handlers: &self.handlers,
            admins: &self.admins,
            schedule: &self.schedule,
            in_group: message.conversation.is_group(),
        };
        Reply::Text(
            commands
                .run(command, message.channel, &message.sender, Utc::now())
                .await,
        )
    }

    /// The files a rejected request was filed with stay with its resubmission: they are kept
    /// under the form's id, and the reopened form has a new one.
    async fn carry_attachments(
        &self,
        catalog: &Catalog,
        request: &Request,
        outcome: &super::engine::Outcome,
    ) -> Result<(), Reply> {
        let State::Filling { form } = &outcome.session.state else {
            return Ok(());
        };
        for (key, value) in &form.answers {
            if !matches!(value, crate::catalog::FieldValue::Attachment { .. }) {
                continue;
            }
            let carried = attachments::carry_blob(
                self.store.as_ref(),
                &request.form.form_id,
                &form.id,
                key.as_str(),
            )
            .await;
            if let Err(e) = carried {
                tracing::error!(error = %e, "attachment not carried over to the resubmission");
                return Err(Self::busy(catalog));
            }
        }
        Ok(())
    }

    fn busy(catalog: &Catalog) -> Reply {
        Reply::Text(catalog.messages().get(MessageKey::Busy).to_owned())
    }
}

/// The catalog indexed for understanding, with the word lists read from `understanding.toml`
/// in the folder the catalog was loaded from: the one way they are read, at start and after
/// each reload, so catalog and word lists always come from the same folder.
fn index(catalog: &Catalog) -> Result<Matcher, TuningError> {
    Ok(Matcher::new(catalog, Tuning::load(catalog.dir())?))
}

/// A request command said in plain words; a status question or "my requests" that names a
/// service in full ("我昨天提的电子发票开了没") is about that service's latest request, never
/// another's and never a new form.
fn plain_command(matcher: &Matcher, text: &str) -> Option<RequestCommand> {
    let command = super::commands::parse_plain(text, &matcher.tuning().plain_commands)?;
    if !matches!(
        command,
        RequestCommand::LatestStatus | RequestCommand::Mine | RequestCommand::CancelLatest
    ) {
        return Some(command);
    }
    let named = matcher
        .rank(text)
        .iter()
        .map(|s| s.id)
        .find(|&id| matcher.names_fully(id, text));
    // A withdrawal that names a service withdraws that service's latest request, never another.
    Some(match (command, named) {
        (RequestCommand::CancelLatest, Some(id)) => RequestCommand::CancelLatestOf(id),
        (_, Some(id)) => RequestCommand::LatestStatusOf(id),
        (command, None) => command,
    })
}

/// The template file the field asks for, if it names one.
fn template_name(
    catalog: &Catalog,
    form: &super::session::Form,
    field: &crate::catalog::FieldKey,
) -> Option<String> {
    match &catalog.service(form.service)?.field(field)?.spec.kind {
        crate::catalog::FieldKind::Attachment { template } => template.clone(),
        _ => None,
    }
}

/// How far back a request for the same service and customer is pointed out before filing.
const SAME_REQUEST_DAYS: i64 = 7;

/// (form id, service, seller account) of the form a state holds, once it has its customer.
fn form_account(
    catalog: &Catalog,
    state: &State,
) -> Option<(String, crate::domain::ServiceId, String)> {
    let form = match state {
        State::Filling { form } | State::ConfirmSwitch { form, .. } => form,
        _ => return None,
    };
    let field = catalog.service(form.service)?.seller_account_field()?;
    let account = form.answers.get(field.key())?.display(false);
    Some((form.id.clone(), form.service, account))
}

/// `notice` before what the reply says (the question stays last).
/// `reply` without the line `line`.
fn strip_from_reply(reply: Reply, line: &str) -> Reply {
    // Paragraphs are joined by a blank line: the line goes with the break after it.
    let strip = |text: String| {
        text.replace(&format!("{line}\n\n"), "")
            .replace(&format!("{line}\n"), "")
            .replace(line, "")
            .trim_start()
            .to_owned()
    };
    match reply {
        Reply::Text(text) => Reply::Text(strip(text)),
        Reply::Choices { text, options } => Reply::Choices {
            text: strip(text),
            options,
        },
        other => other,
    }
}

fn prepend(reply: Reply, notice: &str) -> Reply {
    match reply {
        Reply::Nothing => Reply::Text(notice.to_owned()),
        Reply::Text(text) => Reply::Text(format!("{notice}\n\n{text}")),
        Reply::Choices { text, options } => Reply::Choices {
            text: format!("{notice}\n\n{text}"),
            options,
        },
    }
}

/// The store key of one person's session in one chat on one channel.
fn session_key(message: &Inbound) -> String {
    keys::session(message.channel, &message.conversation, &message.sender)
}

#[async_trait::async_trait]
impl Bot for DialogBot {
    async fn respond(&self, message: Inbound) -> Reply {
        self.turn(message, Durability::Immediate).await
    }

    /// The callback path: the session is saved without an fsync of its own; the reply record
    /// written right after the turn (durably) carries it to disk before the answer is sent.
    async fn respond_then_persist(&self, message: Inbound) -> Reply {
        self.turn(message, Durability::WithNextImmediate).await
    }
}

impl DialogBot {
    /// One turn: route what needs no session (card clicks, request commands), then under the
    /// person's lock read the session, run the engine, file, and compare-and-swap the session
    /// back (`durability` for that save); a lost race re-runs the turn on the fresh session.
    async fn turn(&self, mut message: Inbound, durability: Durability) -> Reply {
        let (catalog, matcher) = self.snapshot();
        // "帮我查下 /status": the command is read as if the message began with it.
        if let Content::Text(text) = &message.content
            && let Some(command) = super::commands::embedded_command(
                text,
                &matcher.tuning().chat_commands,
                matcher.tuning().plain_commands.max_chars,
            )
        {
            message.content = Content::Text(command);
        }
        let reopen = match self.route(&catalog, &matcher, &message).await {
            Route::Answered(reply) => return self.with_open_form(&catalog, &message, reply).await,
            Route::Reopen(request) => Some(*request),
            Route::Conversation => None,
        };
        let key = session_key(&message);
        let lock = self.person_lock(&key);
        let _turn = lock.lock().await;
        let cx = TurnContext {
            catalog: &catalog,
            matcher: &matcher,
            message: &message,
            key: &key,
            reopen: reopen.as_ref(),
            durability,
        };
        // Looked up once per message, however often a lost race re-runs the turn.
        let mut meaning: Option<Option<MessageMeaning>> = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(&cx, &mut meaning).await {
                Attempt::Done(reply) => return reply,
                Attempt::ForPrivate => {
                    drop(_turn);
                    tracing::info!(key = %key, "a group message handed to the form in the 1:1 chat");
                    let private = Inbound {
                        conversation: crate::domain::Conversation::Direct,
                        ..message.clone()
                    };
                    let reply = Box::pin(self.turn(private, durability)).await;
                    return prepend(
                        reply,
                        catalog.messages().get(MessageKey::HandedToPrivateForm),
                    );
                }
                Attempt::LostRace => {
                    tracing::info!(key = %key, "session changed concurrently; re-running the turn");
                }
            }
        }
        Self::busy(&catalog)
    }

    /// What a message is before any session is read: a click on a handler's card, a request
    /// command (answered from the ledger), a resubmission to reopen, or the conversation.
    async fn route(&self, catalog: &Catalog, matcher: &Matcher, message: &Inbound) -> Route {
        let Some(desk) = &self.desk else {
            return Route::Conversation;
        };
        if let Content::CardAction(card) = &message.content
            && let Some(action) = DeskAction::parse(&card.key)
        {
            let code = card.response_code.as_deref();
            return Route::Answered(self.desk_action(catalog, desk, action, code, message).await);
        }
        let Content::Text(text) = &message.content else {
            return Route::Conversation;
        };
        let command = super::commands::parse(text, &matcher.tuning().chat_commands);
        // "那重新提一个 还是调到150": the latest rejected request is reopened, in any state;
        // with none rejected the words are the conversation's ("还是要重新提一个" as a reason).
        if command.is_none()
            && matches!(
                super::commands::parse_plain(text, &matcher.tuning().plain_commands),
                Some(RequestCommand::ResubmitLatest)
            )
            && let Ok(request) = self.rejected_request(catalog, None, &message.sender).await
        {
            return Route::Reopen(Box::new(request));
        }
        if let Some(RequestCommand::Resubmit(id)) = command {
            return match self.rejected_request(catalog, id, &message.sender).await {
                Ok(request) => Route::Reopen(Box::new(request)),
                Err(reply) => Route::Answered(reply),
            };
        }
        if self.handlers.by_wecom_user(&message.sender).is_some()
            && let Some(reply) = self
                .pending_reason(catalog, matcher, desk, command.clone(), text, message)
                .await
        {
            return Route::Answered(reply);
        }
        // A request number anywhere ("查一下 KT-…", "KT-… 到哪了") is a reference to that
        // request, in every state: never a form of some service, never a field value.
        let command = command.or_else(|| {
            super::reading::references(text)
                .into_iter()
                .next()
                .map(|id| RequestCommand::Status(Some(id)))
        });
        match command {
            Some(command) => {
                Route::Answered(self.run_command(catalog, desk, command, message).await)
            }
            None => Route::Conversation,
        }
    }

    /// The sender's own requests on this channel, oldest first; `None` (logged) when the
    /// ledger cannot be read, so a reminder is left out rather than the turn failing.
    async fn requests_of(&self, message: &Inbound) -> Option<Vec<crate::requests::Request>> {
        let filter = RequestFilter {
            requester: Some((message.channel, message.sender.clone())),
            ..RequestFilter::default()
        };
        self.ledger
            .list(&filter)
            .await
            .map_err(|e| tracing::warn!(error = %e, "could not look up the person's requests"))
            .ok()
    }

    /// A 确认 with nothing left to confirm, minutes after this person filed: they most likely
    /// missed the receipt (answered "busy" when the reply could not be stored, e.g. in a
    /// failover), so it is shown again instead of "nothing to confirm", which reads as lost.
    async fn recent_receipt(
        &self,
        catalog: &Catalog,
        message: &Inbound,
        now: chrono::DateTime<Utc>,
    ) -> Option<Reply> {
        let mine = self.requests_of(message).await?;
        // The ledger lists a person's requests oldest first.
        let latest = mine.last()?;
        (now - latest.submitted_at <= RECEIPT_AGAIN_WITHIN).then(|| {
            Reply::Text(catalog.messages().render(
                MessageKey::AlreadyFiled,
                &[
                    ("id", latest.id.as_str()),
                    ("service", &latest.form.service.to_string()),
                    ("service_name", &latest.form.service_name),
                ],
            ))
        })
    }

    /// One try of the turn on the session as stored now.
    async fn attempt(
        &self,
        cx: &TurnContext<'_>,
        meaning: &mut Option<Option<MessageMeaning>>,
    ) -> Attempt {
        let TurnContext {
            catalog,
            matcher,
            message,
            key,
            reopen,
            durability,
        } = *cx;
        let now = Utc::now();
        let (stored, session) = match self.load_session(catalog, key).await {
            Ok(loaded) => loaded,
            Err(reply) => return Attempt::Done(reply),
        };
        let account_before = form_account(catalog, &session.state);
        // No form in progress: plain-language status questions go to the commands, and a
        // new request whose words are not clear is looked up by meaning.
        // A reopened request is this turn's form: no plain command reads its words.
        let idle = matches!(
            session.state,
            State::Idle | State::Choosing { .. } | State::MovedToPrivate { .. }
        ) && reopen.is_none();
        if let (Content::Text(text), true) = (&message.content, idle) {
            if let Some(desk) = &self.desk
                && let Some(command) = plain_command(matcher, text)
            {
                return Attempt::Done(self.run_command(catalog, desk, command, message).await);
            }
            let words = &matcher.tuning().commands;
            // With requests queued, a 确认 goes on with the next one (the engine's to start).
            if matches!(session.state, State::Idle)
                && session.queue.is_empty()
                && (Tuning::is(&words.confirm, text) || Tuning::is(&words.confirm_like, text))
                && let Some(reply) = self.recent_receipt(catalog, message, now).await
            {
                return Attempt::Done(reply);
            }
            if meaning.is_none() {
                *meaning = Some(if matcher.lexically_clear(&matcher.rank(text)) {
                    None
                } else {
                    let text = super::text::meaning_text(text);
                    self.meaning.message(catalog, &self.store, &text).await
                });
            }
        }
        let engine = Engine {
            catalog,
            matcher,
            schedule: &self.schedule,
            in_group: message.conversation.is_group(),
            meaning: meaning
                .as_ref()
                .and_then(Option::as_ref)
                .map(|m| (m.space.as_ref(), m.vector.as_slice())),
        };
        let ttl_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expired = stored.is_some() && now.timestamp() - session.updated_at > ttl_secs;
        let content = match self
            .keep_attachment(catalog, &session, &message.content)
            .await
        {
            Ok(content) => content,
            Err(reply) => return Attempt::Done(reply),
        };
        let mut outcome = match reopen {
            Some(request) => {
                let reason = request
                    .history
                    .last()
                    .and_then(|c| c.note.clone())
                    .unwrap_or_default();
                let outcome = engine.reopen(
                    session,
                    request.form.service,
                    request.form.answers.clone(),
                    request.id.as_str(),
                    &reason,
                    now,
                );
                if let Err(reply) = self.carry_attachments(catalog, request, &outcome).await {
                    return Attempt::Done(reply);
                }
                outcome
            }
            None => engine.turn(session, expired, &content, now),
        };
        if outcome.for_private {
            return Attempt::ForPrivate;
        }
        let mut reply = std::mem::replace(&mut outcome.reply, Reply::Nothing);
        // "好了没" mid-form is no answer to the question: it is answered from the ledger, and
        // the question follows (the engine knows no ledger; it says it saw a status question).
        let in_form_note = catalog.messages().get(MessageKey::PlainCommandInForm);
        if let (Some(desk), Content::Text(text)) = (&self.desk, &message.content)
            && outcome.ledger_question.is_some()
            && let Some(command) = plain_command(matcher, text)
        {
            let m = catalog.messages();
            let answer = match self.run_command(catalog, desk, command, message).await {
                // "Nothing filed yet, just say what to open" misleads with a form open.
                Reply::Text(t) if t == m.get(MessageKey::CmdMineEmpty) => {
                    Reply::Text(m.get(MessageKey::NothingFiledInForm).to_owned())
                }
                other => other,
            };
            if let Some(answer) = answer.as_text() {
                reply = prepend(
                    strip_from_reply(reply, in_form_note),
                    &format!(
                        "{answer}\n\n{}",
                        catalog.messages().get(MessageKey::BackToForm)
                    ),
                );
            }
        }
        // A form that has just got its customer: the same request filed lately is pointed out
        // before anything is filed twice.
        let account_now = form_account(catalog, &outcome.session.state);
        if let Some((form_id, service, account)) = &account_now
            && account_before
                .as_ref()
                .is_none_or(|(id, _, a)| id != form_id || a != account)
            && let Some(notice) = self
                .earlier_same_request(catalog, message, *service, account, now)
                .await
        {
            reply = prepend(reply, &notice);
        }
        if let Some(form) = &outcome.file {
            match self
                .file(catalog, &engine, form, &outcome, message, now)
                .await
            {
                Ok(receipt) => reply = receipt,
                Err(reply) => return Attempt::Done(reply),
            }
        }
        if outcome.move_to_private
            && let Err(reply) = self.move_to_private(catalog, message, &mut outcome).await
        {
            return Attempt::Done(reply);
        }
        match self
            .save_session(catalog, key, stored.as_ref(), &outcome.session, durability)
            .await
        {
            Ok(true) => Attempt::Done(match &outcome.template {
                Some(name) => {
                    self.offer_template(catalog, &message.sender, name, reply)
                        .await
                }
                None => reply,
            }),
            Ok(false) => Attempt::LostRace,
            Err(reply) => Attempt::Done(reply),
        }
    }

    /// The person's own request for the same service and customer filed in the last 7 days
    /// and not rejected or withdrawn, as a reminder to show before filing again.
    async fn earlier_same_request(
        &self,
        catalog: &Catalog,
        message: &Inbound,
        service: crate::domain::ServiceId,
        account: &str,
        now: chrono::DateTime<Utc>,
    ) -> Option<String> {
        let mine = self.requests_of(message).await?;
        let field = catalog.service(service)?.seller_account_field()?;
        let earlier = mine.iter().rev().find(|r| {
            r.form.service == service
                && now - r.submitted_at <= chrono::Duration::days(SAME_REQUEST_DAYS)
                && !matches!(r.status(), Status::Rejected | Status::Cancelled)
                && r.form
                    .answers
                    .get(field.key())
                    .is_some_and(|v| v.display(false) == account)
        })?;
        let m = catalog.messages();
        let days = (now - earlier.submitted_at).num_days();
        let days = match days {
            0 => m.get(MessageKey::DayToday).to_owned(),
            n => m.render(MessageKey::DaysAgo, &[("n", &n.to_string())]),
        };
        Some(m.render(
            MessageKey::EarlierSameRequest,
            &[
                ("days", &days),
                ("id", earlier.id.as_str()),
                ("service", &service.to_string()),
                ("name", &earlier.form.service_name),
                ("account", account),
                ("status", earlier.status().label()),
            ],
        ))
    }

    /// A reply given beside the conversation (a request number looked up mid-form) reminds
    /// the person of the form that waits and asks its question again, so it is not lost under
    /// the answer.
    async fn with_open_form(&self, catalog: &Catalog, message: &Inbound, reply: Reply) -> Reply {
        // Only what the person typed: a card click (a handler's action) concerns no form, and
        // needs no session read.
        if !matches!(message.content, Content::Text(_)) {
            return reply;
        }
        let Reply::Text(text) = reply else {
            return reply;
        };
        let Ok((_, session)) = self.load_session(catalog, &session_key(message)).await else {
            return Reply::Text(text);
        };
        let super::session::State::Filling { form } = &session.state else {
            return Reply::Text(text);
        };
        let Some(service) = catalog.service(form.service) else {
            return Reply::Text(text);
        };
        let name = format!("#{} {}", service.id, service.name);
        let m = catalog.messages();
        let again = match &form.step {
            super::session::Step::Ask(key) => service.field(key).map(|f| {
                m.render(
                    MessageKey::FormStillOpen,
                    &[("name", &name), ("prompt", &f.spec.render_prompt())],
                )
            }),
            super::session::Step::Summary => {
                Some(m.render(MessageKey::FormStillAtSummary, &[("name", &name)]))
            }
            super::session::Step::PickEdit => None,
        };
        Reply::Text(match again {
            Some(again) => format!("{text}\n\n{again}"),
            None => text,
        })
    }

    /// The person's session as stored (with its version for the save) and as read; an
    /// unreadable one (older format) is reset rather than blocking the person.
    async fn load_session(
        &self,
        catalog: &Catalog,
        key: &str,
    ) -> Result<(Option<Versioned>, Session), Reply> {
        // Versioned: the save swaps on the record as read, in one round trip (on a sealed
        // store a plain compare-and-swap would first read the sealed bytes again).
        let stored = match self.store.get_versioned(key).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "session store unavailable");
                return Err(Self::busy(catalog));
            }
        };
        let session = match stored.as_ref().map(|s| serde_json::from_slice(&s.value)) {
            None => Session::default(),
            Some(Ok(session)) => session,
            Some(Err(e)) => {
                tracing::warn!(error = %e, key = %key, "unreadable session reset");
                Session::default()
            }
        };
        Ok((stored, session))
    }

    /// Files a confirmed form through the ledger; the receipt is the reply. On failure the
    /// form stays at its summary (the session is not saved): nothing is lost, 确认 can be sent
    /// again.
    async fn file(
        &self,
        catalog: &Catalog,
        engine: &Engine<'_>,
        form: &super::session::Form,
        outcome: &super::engine::Outcome,
        message: &Inbound,
        now: chrono::DateTime<Utc>,
    ) -> Result<Reply, Reply> {
        let Some(service) = catalog.service(form.service) else {
            return Err(Self::busy(catalog));
        };
        let filed = FiledForm {
            form_id: form.id.clone(),
            service: form.service,
            service_name: service.name.clone(),
            team: service.team,
            routing: service.route.clone(),
            window: service.window.clone(),
            answers: form.answers.clone(),
            summary: service.summary_lines(&form.answers),
            requester: Requester {
                user: message.sender.clone(),
                channel: message.channel,
                conversation: message.conversation.clone(),
            },
            resubmit_of: form.resubmit_of.as_deref().and_then(RequestId::parse),
        };
        match self.ledger.file(filed, now).await {
            Ok(receipt) => {
                tracing::info!(request = %receipt.id, service = %form.service, user = %message.sender, "request filed");
                let batch = self.schedule.expectation(receipt.batch, now);
                Ok(Reply::Text(engine.receipt(
                    form,
                    receipt.id.as_str(),
                    &batch,
                    &outcome.session.queue,
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "filing failed");
                Err(Reply::Text(
                    catalog.messages().get(MessageKey::FilingFailed).to_owned(),
                ))
            }
        }
    }

    /// The form continues in the person's 1:1 chat with the bot; the group is left idle.
    async fn move_to_private(
        &self,
        catalog: &Catalog,
        message: &Inbound,
        outcome: &mut super::engine::Outcome,
    ) -> Result<(), Reply> {
        let private = Inbound {
            conversation: crate::domain::Conversation::Direct,
            ..message.clone()
        };
        let state = std::mem::take(&mut outcome.session.state);
        // The group remembers where the form went, to point a stray "等下发" there.
        if let State::Filling { form } | State::ConfirmSwitch { form, .. } = &state {
            outcome.session.state = State::MovedToPrivate {
                service: form.service,
            };
        }
        let form_session = Session {
            state,
            queue: std::mem::take(&mut outcome.session.queue),
            updated_at: outcome.session.updated_at,
            recent: None,
        };
        let bytes = serde_json::to_vec(&form_session).unwrap_or_default();
        self.store
            .put(
                &session_key(&private),
                &bytes,
                Some(self.ttl + EXPIRY_MEMORY),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "form could not be moved to the 1:1 chat");
                Self::busy(catalog)
            })
    }

    /// Compare-and-swap of the session against the record as read: `Ok(false)` when another
    /// turn saved first.
    async fn save_session(
        &self,
        catalog: &Catalog,
        key: &str,
        stored: Option<&Versioned>,
        session: &Session,
        durability: Durability,
    ) -> Result<bool, Reply> {
        let bytes = serde_json::to_vec(session).map_err(|e| {
            tracing::error!(error = %e, "session could not be encoded");
            Self::busy(catalog)
        })?;
        self.store
            .compare_and_swap_version(
                key,
                stored.map(|s| s.version.as_slice()),
                &bytes,
                Some(self.ttl + EXPIRY_MEMORY),
                durability,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session could not be saved");
                Self::busy(catalog)
            })
    }
}

/// What a message is before the session is read.
enum Route {
    /// Answered without the conversation (a card click, a request command, a refusal).
    Answered(Reply),
    /// "重新提交 KT-…" of the person's own rejected request.
    Reopen(Box<Request>),
    /// The conversation: the engine's turn.
    Conversation,
}

/// What every try of one turn shares.
#[derive(Clone, Copy)]
struct TurnContext<'a> {
    catalog: &'a Arc<Catalog>,
    matcher: &'a Matcher,
    message: &'a Inbound,
    /// The person's session key, under their lock.
    key: &'a str,
    /// A rejected request being resubmitted, instead of the engine's turn.
    reopen: Option<&'a Request>,
    /// For the session save.
    durability: Durability,
}

/// How one try of a turn ended.
enum Attempt {
    Done(Reply),
    /// A group message meant for the form that went on in the person's 1:1 chat: it is that
    /// form's turn.
    ForPrivate,
    /// Another turn saved the session first: try again on the fresh one.
    LostRace,
}
