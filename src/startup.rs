//! Builds the application from settings and runs it until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::MessageKey;
use crate::catalog::{CatalogError, CatalogHandle};
use crate::channel::media::{WecomMediaFetcher, WecomTemplateFiles};
use crate::channel::{AiBotChannel, AppChannel, ChannelSettings, ReplyCache};
use crate::config::{ConfigError, Settings};
use crate::console::LoginThrottle;
use crate::dialog::DialogBot;
use crate::dialog::understand::TuningError;
use crate::domain::{Bot, CardRelabeler};
use crate::http::serve::ConnectionLimits;
use crate::http::{AppState, admin_router, public_router};
use crate::notify::handoff::HandoffWatcher;
use crate::notify::{
    BatchPush, ContactWatcher, DailyJob, DeliveryKind, HandlerCards, HandlerReminders, Lookups,
    Notifier, OaAnnouncer, Outbox, People, Requesters, RetryPolicy, Transport, WecomTransport,
};
use crate::requests::{
    BatchSchedule, Desk, HandlerAccountError, HandlerDirectory, Ledger, LedgerError, RequestFilter,
    ScheduleError, StoreLedger, WatchedLedger, Watcher, queue_counts,
};
use crate::store::{self, SealKeySettingError, Sealer, Store, StoreError};
use crate::supervisor::Supervisor;
use crate::wecom::api::{ResponseUrls, WecomApi};
use crate::wecom::{AesKeySettingError, MsgCrypt};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    AesKey(#[from] AesKeySettingError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    HandlerAccount(#[from] HandlerAccountError),
    #[error(transparent)]
    SealKey(#[from] SealKeySettingError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("understanding: {0}")]
    Tuning(#[from] TuningError),
    #[error("WeCom API client: {0}")]
    Api(#[from] crate::wecom::api::ApiError),
    #[error("hand-off: {0}")]
    Handoff(#[from] crate::notify::HandoffError),
    #[error("embeddings: {0}")]
    Embeddings(#[from] crate::embed::EmbedError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The settings a binary runs with, kept for taking their secrets out of its last line.
static LOADED: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

/// For a binary's `main` (`kaitong`, `kaitong-dev`): the settings layered from `config`, and
/// checked as `serve` would build them. A refusal is one line naming `program` and the process
/// ends with status 2, before anything is opened.
#[must_use]
pub fn settings_or_exit(program: &str, config: Option<&std::path::Path>) -> Settings {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(2);
        }
    };
    // The settings other modules build from (keys, schedule, accounts) are refused alike.
    let _ = LOADED.set(settings.clone());
    if let Err(e) = check_settings(&settings) {
        eprintln!("{program}: {}", settings.redact_secrets(&e.to_string()));
        std::process::exit(2);
    }
    settings
}

/// For a binary's `main`: a failed command as one line (operators read it in journald, where
/// a multi-line chain is split across entries), the loaded settings' secrets taken out; the
/// process ends with status 1.
pub fn exit_with_error(program: &str, error: &(dyn std::error::Error + 'static)) -> ! {
    let line = crate::telemetry::one_line(error);
    let line = match LOADED.get() {
        Some(settings) => settings.redact_secrets(&line),
        None => line,
    };
    eprintln!("{program}: {line}");
    std::process::exit(1);
}

/// Builds, and drops, every value another module makes from its settings section (the
/// channels' crypto, the batch schedule, the handler accounts, the seal keys), so a bad one
/// refuses start-up with its setting named before anything is opened or served.
pub fn check_settings(settings: &Settings) -> Result<(), StartupError> {
    MsgCrypt::for_app(&settings.wecom)?;
    MsgCrypt::for_aibot(&settings.aibot)?;
    BatchSchedule::from_settings(&settings.schedule)?;
    HandlerDirectory::from_settings(&settings.handlers, &settings.admin.token)?;
    Sealer::from_settings(&settings.store)?;
    Ok(())
}

/// A built, bound server that has not started serving yet.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    local_addr: SocketAddr,
    /// The console, API, metrics and admin routes, on `server.admin_listen` (none when empty).
    admin: Option<AdminListener>,
    store: Arc<dyn Store>,
    grace: Duration,
    limits: ConnectionLimits,
    /// How every route's body is bounded (deadline and the small cap outside the callbacks).
    bodies: crate::http::BodyLimits,
    catalog: CatalogHandle,
    background: Option<Background>,
    /// Background contact lookups, ended at shutdown (they hold the store).
    lookups: Option<Lookups>,
    /// Runs the background work while serving, restarts a loop that panics, stops it all at
    /// shutdown.
    supervisor: Supervisor,
}

/// The second listener and what it serves.
struct AdminListener {
    listener: TcpListener,
    router: axum::Router,
    local_addr: SocketAddr,
}

/// The pieces of the conversation, built from settings.
pub struct Parts {
    pub catalog: CatalogHandle,
    pub store: Arc<dyn Store>,
    /// The ledger as everyone uses it: changes reach the notifier (and hand-offs).
    pub ledger: Arc<dyn Ledger>,
    pub desk: Desk,
    pub handlers: HandlerDirectory,
    pub bot: Arc<dyn Bot>,
    /// The self-built app's outbound API client (pushes, media).
    pub api: Arc<WecomApi>,
    pub outbox: Outbox,
    pub notifier: Notifier,
    pub schedule: BatchSchedule,
    /// Outbox transports by kind.
    pub transports: HashMap<DeliveryKind, Arc<dyn Transport>>,
    /// Contact lookups running in the background, ended at shutdown.
    pub lookups: Lookups,
}

impl Parts {
    /// The catalog, ledger, outbox, notifier and dialog bot over `store`.
    pub fn build(settings: &Settings, store: Arc<dyn Store>) -> Result<Self, StartupError> {
        let catalog = CatalogHandle::load(&settings.dialogs.dir)?;
        let schedule = BatchSchedule::from_settings(&settings.schedule)?;
        let api = WecomApi::new(
            settings.wecom.api_base.clone(),
            settings.wecom.corp_id.clone(),
            settings.wecom.secret.expose().to_owned(),
            settings.wecom.agent_id,
        )
        .map(Arc::new)?;
        let outbox = Outbox::new(Arc::clone(&store))
            .with_policy(RetryPolicy {
                give_up_after: Duration::from_secs(
                    settings
                        .notify
                        .give_up_after_hours
                        .max(1)
                        .saturating_mul(3600),
                ),
                ..RetryPolicy::default()
            })
            // Deliveries are recorded on the plain ledger: a record is no change to tell anyone.
            .with_history(Arc::new(StoreLedger::new(Arc::clone(&store), schedule)));
        let notifier = Notifier::new(outbox.clone(), catalog.clone(), schedule);
        let handoff = HandoffWatcher::new(outbox.clone(), &settings.handoff);
        let mut watchers: Vec<Arc<dyn Watcher>> =
            vec![Arc::new(notifier.clone()), Arc::new(handoff)];
        // Recording a contact is no change to tell anyone about: the plain ledger.
        let plain_ledger: Arc<dyn Ledger> =
            Arc::new(StoreLedger::new(Arc::clone(&store), schedule));
        let people = (settings.wecom.contacts_cache_hours > 0).then(|| {
            People::new(
                Arc::clone(&api),
                Arc::clone(&store),
                Duration::from_secs(settings.wecom.contacts_cache_hours.saturating_mul(3600)),
            )
        });
        let lookups = Lookups::default();
        if let Some(people) = &people {
            watchers.push(Arc::new(ContactWatcher::new(
                people.clone(),
                Arc::clone(&plain_ledger),
                lookups.clone(),
            )));
        }
        let handlers = HandlerDirectory::from_settings(&settings.handlers, &settings.admin.token)?;
        watchers.push(Arc::new(OaAnnouncer::new(
            outbox.clone(),
            catalog.clone(),
            &handlers,
            &settings.console.public_url,
        )));
        let ledger: Arc<dyn Ledger> = Arc::new(WatchedLedger::new(
            Arc::new(StoreLedger::new(Arc::clone(&store), schedule)),
            watchers,
        ));
        let desk = Desk::new(Arc::clone(&ledger));
        let mut transports: HashMap<DeliveryKind, Arc<dyn Transport>> = HashMap::new();
        let wecom: Arc<dyn Transport> = Arc::new(WecomTransport::new(Arc::clone(&api)));
        transports.insert(wecom.kind(), wecom);
        for transport in crate::notify::handoff::transports_naming(
            &settings.handoff,
            Arc::clone(&store),
            people.map(|people| Requesters::new(people, Arc::clone(&plain_ledger))),
            Some(Arc::clone(&api)),
            Some(Arc::clone(&plain_ledger)),
        )? {
            transports.insert(transport.kind(), transport);
        }
        outbox.set_configured(transports.keys().copied());
        let fetcher = WecomMediaFetcher::new(
            Arc::clone(&api),
            MsgCrypt::for_aibot(&settings.aibot)?.key().clone(),
        );
        let mut dialog = DialogBot::new(
            catalog.clone(),
            Arc::clone(&store),
            Arc::clone(&ledger),
            schedule,
            settings.session_ttl(),
        )?
        .with_fetcher(Arc::new(fetcher))
        .with_meaning(
            static_encoder(settings),
            crate::embed::ServerEmbedder::from_settings(&settings.embeddings)?,
            &settings.embeddings,
        )
        .with_commands(
            desk.clone(),
            handlers.clone(),
            settings.handlers.admins.clone(),
        )
        .with_card_updates(Arc::clone(&api) as Arc<dyn CardRelabeler>);
        if !settings.dialogs.templates_dir.as_os_str().is_empty() {
            dialog = dialog.with_templates(Arc::new(WecomTemplateFiles::new(
                Arc::clone(&api),
                Arc::clone(&store),
                settings.dialogs.templates_dir.clone(),
            )));
        }
        let bot: Arc<dyn Bot> = Arc::new(dialog);
        Ok(Self {
            catalog,
            store,
            ledger,
            desk,
            handlers,
            bot,
            api,
            outbox,
            notifier,
            schedule,
            transports,
            lookups,
        })
    }

    /// The background work: the outbox worker, the cut-off cards and the daily push.
    #[must_use]
    pub fn background(&self, settings: &Settings) -> Background {
        Background {
            outbox: self.outbox.clone(),
            transports: self.transports.clone(),
            tick: Duration::from_millis(settings.notify.tick_millis.max(10)),
            push: DailyJob::new(
                Arc::new(BatchPush::new(
                    self.notifier.clone(),
                    Arc::clone(&self.ledger),
                )),
                Arc::clone(&self.store),
                self.schedule,
                3,
            ),
            // Only today's cut-off is worth catching up on: yesterday's batch is past its
            // done-by time and already in the console.
            cutoff: DailyJob::new(
                Arc::new(self.handler_cards(settings)),
                Arc::clone(&self.store),
                self.schedule,
                0,
            ),
            // As the cut-off: a reminder of yesterday's overdue work is today's cut-off's job.
            reminder: DailyJob::new(
                Arc::new(HandlerReminders::new(self.handler_cards(settings))),
                Arc::clone(&self.store),
                self.schedule,
                0,
            ),
            ledger: Arc::clone(&self.ledger),
            schedule: self.schedule,
        }
    }

    fn handler_cards(&self, settings: &Settings) -> HandlerCards {
        HandlerCards::new(
            self.outbox.clone(),
            self.catalog.clone(),
            Arc::clone(&self.ledger),
            &self.handlers,
            &settings.console.public_url,
            self.schedule,
        )
    }
}

/// Work that runs beside the HTTP server until shutdown.
pub struct Background {
    pub outbox: Outbox,
    pub transports: HashMap<DeliveryKind, Arc<dyn Transport>>,
    pub tick: Duration,
    /// The 17:30 push to requesters.
    pub push: DailyJob,
    /// The 16:00 cards to handlers.
    pub cutoff: DailyJob,
    /// The 17:30 reminder to handlers of what is still open.
    pub reminder: DailyJob,
    /// For the open and overdue gauges.
    pub ledger: Arc<dyn Ledger>,
    pub schedule: BatchSchedule,
}

impl Background {
    /// Starts the outbox worker, the daily jobs and the gauges under `supervisor`, each by
    /// name; they stop when it shuts down.
    pub fn spawn(self, supervisor: &Supervisor) {
        let Self {
            outbox,
            transports,
            tick,
            push,
            cutoff,
            reminder,
            ledger,
            schedule,
        } = self;
        let transports = Arc::new(transports);
        supervisor.spawn("outbox", move |stop| {
            let (outbox, transports) = (outbox.clone(), Arc::clone(&transports));
            async move { outbox.run(&transports, tick, stop).await }
        });
        let every = tick.max(Duration::from_secs(1));
        for job in [push, cutoff, reminder] {
            let job = Arc::new(job);
            supervisor.spawn(job.name(), move |stop| {
                let job = Arc::clone(&job);
                async move { job.run(every, stop).await }
            });
        }
        supervisor.spawn("queue_gauges", move |stop| {
            queue_gauges(Arc::clone(&ledger), schedule, QUEUE_GAUGES_EVERY, stop)
        });
    }
}

/// Services routed to a hand-off `[handoff]` leaves unconfigured, logged once at start-up.
fn handoff_warnings(catalog: &CatalogHandle, settings: &Settings) -> Vec<String> {
    let warnings = crate::notify::handoff::unconfigured(&catalog.current(), &settings.handoff);
    for warning in &warnings {
        tracing::warn!(warning = %warning, "hand-off not configured");
    }
    warnings
}

/// How often the open and overdue gauges are recounted (one listing of the open queue).
const QUEUE_GAUGES_EVERY: Duration = Duration::from_secs(30);

/// Sets the open and overdue gauges per team from the open queue now.
pub async fn refresh_queue_gauges(
    ledger: &dyn Ledger,
    schedule: &BatchSchedule,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), LedgerError> {
    let open = ledger.list(&RequestFilter::open()).await?;
    for (team, open, overdue) in queue_counts(&open, schedule, now) {
        crate::metrics::open_requests(team.key(), open, overdue);
    }
    Ok(())
}

/// Recounts the gauges every `every` until `stop` is cancelled; a failed count keeps the last
/// numbers (logged, the store being down is already reported by `/readyz`).
async fn queue_gauges(
    ledger: Arc<dyn Ledger>,
    schedule: BatchSchedule,
    every: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(e) = refresh_queue_gauges(ledger.as_ref(), &schedule, chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "open and overdue gauges not refreshed");
                }
            }
            () = stop.cancelled() => break,
        }
    }
}

impl Application {
    /// Builds with the store from `store.url` and the dialog bot.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let store = store::open(&settings.store.url, &settings.store.redis_prefix).await?;
        let store = match Sealer::from_settings(&settings.store)? {
            Some(sealer) => store::Sealed::wrap(store, sealer),
            None => {
                tracing::warn!(
                    "store.secret_key is empty: values at rest, sensitive answers included, are stored in plain text"
                );
                store
            }
        };
        let parts = Parts::build(settings, store)?;
        Self::build_from(settings, parts).await
    }

    /// Builds from already assembled parts; the app channel sends the rest of long replies
    /// through the app's API, and questions with options as cards when `wecom.cards` is on.
    pub async fn build_from(settings: &Settings, parts: Parts) -> Result<Self, StartupError> {
        let background = settings.notify.enabled.then(|| parts.background(settings));
        let lookups = parts.lookups.clone();
        let console = crate::console::router(crate::console::ConsoleState {
            desk: parts.desk.clone(),
            directory: parts.handlers.clone(),
            store: Arc::clone(&parts.store),
            outbox: parts.outbox.clone(),
            schedule: parts.schedule,
            login_throttle: Arc::new(LoginThrottle::from_settings(&settings.console)),
        });
        // Approval callbacks move requests only when OA tickets are filed as approvals.
        let approvals = (!settings.handoff.oa_approval_template_id.trim().is_empty()).then(|| {
            Arc::new(crate::notify::handoff::approval::ApprovalDesk::new(
                Arc::clone(&parts.store),
                Arc::clone(&parts.ledger),
            )) as Arc<dyn crate::domain::ApprovalSink>
        });
        let mut app = Self::assemble(
            settings,
            parts.store,
            parts.bot,
            parts.catalog,
            Some(parts.api),
            settings.wecom.cards,
            approvals,
        )
        .await?;
        if let Some(admin) = app.admin.as_mut() {
            admin.router = std::mem::take(&mut admin.router).merge(console);
        }
        app.background = background;
        app.lookups = Some(lookups);
        Ok(app)
    }

    /// Builds with an explicit store and bot (tests and `kaitong-dev chat` use this).
    pub async fn build_with(
        settings: &Settings,
        store: Arc<dyn Store>,
        bot: Arc<dyn Bot>,
    ) -> Result<Self, StartupError> {
        let catalog = CatalogHandle::load(&settings.dialogs.dir)?;
        Self::assemble(settings, store, bot, catalog, None, false, None).await
    }

    /// Like [`Application::build_with`], with an outbound API for cards and long replies.
    pub async fn build_with_api(
        settings: &Settings,
        store: Arc<dyn Store>,
        bot: Arc<dyn Bot>,
        api: Arc<WecomApi>,
    ) -> Result<Self, StartupError> {
        let catalog = CatalogHandle::load(&settings.dialogs.dir)?;
        Self::assemble(settings, store, bot, catalog, Some(api), true, None).await
    }

    async fn assemble(
        settings: &Settings,
        store: Arc<dyn Store>,
        bot: Arc<dyn Bot>,
        catalog: CatalogHandle,
        api: Option<Arc<WecomApi>>,
        cards: bool,
        approvals: Option<Arc<dyn crate::domain::ApprovalSink>>,
    ) -> Result<Self, StartupError> {
        let channel_settings = ChannelSettings {
            timestamp_window: settings.timestamp_window(),
            busy_text: catalog
                .current()
                .messages()
                .get(MessageKey::Busy)
                .to_owned(),
            slow_down_text: catalog
                .current()
                .messages()
                .get(MessageKey::SlowDown)
                .to_owned(),
            limiter: Arc::new(crate::channel::limit::RateLimiter::new(
                settings.server.per_user_per_minute,
            )),
        };
        let replies = ReplyCache::new(
            Arc::clone(&store),
            Duration::from_secs(settings.idempotency.reply_ttl_secs),
        );
        let mut app = AppChannel::new(
            MsgCrypt::for_app(&settings.wecom)?,
            settings.wecom.agent_id.to_string(),
            Arc::clone(&bot),
            replies.clone(),
            channel_settings.clone(),
        );
        if let Some(api) = api {
            app = app.with_api(api, cards);
        }
        app = app.with_approvals(approvals);
        let aibot = AiBotChannel::new(
            MsgCrypt::for_aibot(&settings.aibot)?,
            bot,
            replies,
            Arc::clone(&store),
            channel_settings,
        )
        .with_response_urls(ResponseUrls::new(&settings.wecom.api_base)?);
        let state = AppState {
            app: Arc::new(app),
            aibot: Arc::new(aibot),
            store: Arc::clone(&store),
            max_body_bytes: settings.server.max_body_bytes,
            body_read_timeout: settings.body_read_timeout(),
            admin_token: settings.admin.token.clone(),
            admin_throttle: Arc::new(LoginThrottle::from_settings(&settings.console)),
            warnings: Arc::new(handoff_warnings(&catalog, settings)),
        };
        let addr = settings.listen_addr()?;
        let (listener, local_addr) = bind(addr).await?;
        let admin = match settings.admin_listen_addr()? {
            Some(addr) => {
                let (listener, local_addr) = bind(addr).await?;
                Some(AdminListener {
                    listener,
                    router: admin_router(state.clone(), crate::config::REQUEST_TIMEOUT),
                    local_addr,
                })
            }
            None => None,
        };
        Ok(Self {
            listener,
            router: public_router(state, crate::config::REQUEST_TIMEOUT),
            local_addr,
            admin,
            store,
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
            limits: ConnectionLimits::from(&settings.server),
            bodies: crate::http::BodyLimits {
                deadline: settings.body_read_timeout(),
                small_bytes: crate::http::SMALL_BODY_BYTES,
            },
            catalog,
            background: None,
            lookups: None,
            supervisor: Supervisor::default(),
        })
    }

    /// The store the application runs on (sealed when `store.secret_key` is set).
    #[must_use]
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address (console, API, metrics, admin), when one is configured.
    #[must_use]
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr)
    }

    /// The supervisor of the background work. A task started on it before or while the
    /// application runs is restarted after a panic like the application's own loops and
    /// stopped with them at shutdown.
    #[must_use]
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (bounded by the
    /// configured grace period).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(
            addr = %self.local_addr,
            admin_addr = %self.admin.as_ref().map_or_else(|| "none".to_owned(), |a| a.local_addr.to_string()),
            store = %self.store.describe(),
            max_connections = self.limits.max_connections,
            "kaitong listening"
        );
        let supervisor = self.supervisor;
        // The admin listener stops accepting with the public one; the rest of the background
        // work keeps going (the outbox sends what the last callbacks queued) until the public
        // listener is done. Started first: if its socket cannot be handed over, nothing else
        // has started yet.
        let stop_admin = supervisor.token();
        if let Some(admin) = self.admin {
            spawn_admin(
                &supervisor,
                admin,
                self.bodies,
                self.limits,
                stop_admin.clone(),
            )?;
        }
        let purge_store = Arc::clone(&self.store);
        supervisor.spawn("purger", move |stop| {
            let store = Arc::clone(&purge_store);
            async move {
                stop.run_until_cancelled(async {
                    let mut tick = tokio::time::interval(Duration::from_secs(60));
                    loop {
                        tick.tick().await;
                        if let Err(e) = store.purge_expired().await {
                            tracing::warn!(error = %e, "purging expired records failed");
                        }
                    }
                })
                .await;
            }
        });
        let catalog = self.catalog.clone();
        supervisor.spawn("catalog_reload", move |stop| {
            let catalog = catalog.clone();
            async move {
                stop.run_until_cancelled(crate::catalog::reload_on_sighup(catalog))
                    .await;
            }
        });
        let lookups = self.lookups;
        if let Some(background) = self.background {
            background.spawn(&supervisor);
        }
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let grace = self.grace;
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested; finishing in-flight callbacks");
            let _ = stopped_tx.send(());
            stop_admin.cancel();
        };
        let router = crate::http::bounded(self.router, self.bodies, crate::config::REQUEST_TIMEOUT);
        let server = crate::http::serve::serve(self.listener, router, self.limits, signal);
        let result = tokio::select! {
            () = server => Ok(()),
            () = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; stopping anyway");
                Ok(())
            }
        };
        // A worker finishes the item it is sending and stops before the next one.
        supervisor.shutdown(BACKGROUND_GRACE).await;
        if let Some(lookups) = lookups {
            lookups.stop().await;
        }
        tracing::info!("kaitong stopped");
        result
    }
}

/// How long the background work gets to stop at shutdown before it is aborted.
const BACKGROUND_GRACE: Duration = Duration::from_secs(5);

/// How long a console page still loading gets once the background work is told to stop.
const ADMIN_GRACE: Duration = Duration::from_secs(1);

/// Serves the admin listener as the supervised task `admin_listener`: it stops accepting when
/// `stop` is cancelled (with the public listener), and what is still open a moment after the
/// supervisor's shutdown is dropped. A restart after a panic serves a duplicate of the same
/// socket, so the address stays the same and nothing is re-bound.
fn spawn_admin(
    supervisor: &Supervisor,
    admin: AdminListener,
    bodies: crate::http::BodyLimits,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // The console's login and the API get the same body deadline and cap.
    let router = crate::http::bounded(admin.router, bodies, crate::config::REQUEST_TIMEOUT);
    let socket = admin.listener.into_std()?;
    supervisor.spawn("admin_listener", move |shutdown| {
        let listener = socket.try_clone().and_then(TcpListener::from_std);
        let (router, stop) = (router.clone(), stop.clone());
        async move {
            let listener = match listener {
                Ok(listener) => listener,
                Err(e) => {
                    // Out of descriptors, most likely: worth another try after the backoff.
                    panic!("the admin listener's socket cannot be served again: {e}");
                }
            };
            let serve = crate::http::serve::serve(listener, router, limits, stop.cancelled_owned());
            let cut = async {
                shutdown.cancelled().await;
                tokio::time::sleep(ADMIN_GRACE).await;
            };
            tokio::select! {
                () = serve => {}
                () = cut => {}
            }
        }
    });
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, local_addr))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The in-process sentence encoder (the distilled table under `dialogs/`), when one is there.
#[must_use]
pub fn static_encoder(
    settings: &Settings,
) -> Option<std::sync::Arc<dyn crate::dialog::meaning::SentenceEncoder>> {
    let table = if settings.embeddings.table.is_empty() {
        "embeddings/zh-static.kvec"
    } else {
        settings.embeddings.table.as_str()
    };
    let path = settings.dialogs.dir.join(table);
    match crate::embed::static_table::StaticTable::load(&path) {
        Ok(table) => Some(std::sync::Arc::new(table)),
        Err(e) => {
            // Without the table the bot still understands by words; say so once, at start.
            tracing::warn!(error = %e, "no in-process embedding table; understanding by words only");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn api_and_handoff_errors_keep_their_cause() {
        let error = StartupError::from(crate::wecom::api::ApiError::InvalidRequest {
            path: "gettoken",
            reason: "bad base".to_owned(),
        });
        assert_eq!(
            error.to_string(),
            "WeCom API client: WeCom API gettoken: invalid request: bad base"
        );
        assert!(
            error
                .source()
                .is_some_and(|s| { s.downcast_ref::<crate::wecom::api::ApiError>().is_some() })
        );
        let error = StartupError::from(crate::notify::HandoffError::MissingSecret {
            what: "platform webhook",
        });
        assert!(
            error
                .to_string()
                .starts_with("hand-off: platform webhook is set")
        );
        assert!(
            error
                .source()
                .is_some_and(|s| { s.downcast_ref::<crate::notify::HandoffError>().is_some() })
        );
    }
}
