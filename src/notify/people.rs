//! Who a requester is: their WeCom contact (`user/get`: name, departments, e-mail; department
//! names from `department/list`), cached in the store with a TTL so one person costs one call a
//! day, looked up in the background after filing (never on the reply path) and recorded on the
//! request (`Ledger::set_contact`), where the console, the JSON API, the CSV, handler cards,
//! webhooks and e-mails read it.
//!
//! WeCom may not say: a member outside the app's visible range answers 60011, an unknown one
//! 60111. Either is remembered for an hour (`UNKNOWN_TTL`) and the request keeps showing the
//! userid; nothing fails. A transport failure is not remembered: the next lookup asks again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::requests::{Contact, Ledger, Request, Status, Watcher};
use crate::store::{Store, StoreError, keys};
use crate::wecom::api::WecomApi;

/// How long "WeCom will not say" is remembered before asking again.
const UNKNOWN_TTL: Duration = Duration::from_secs(3600);

/// A cache record: the contact, or that WeCom would not give it (and why).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Cached {
    Known { contact: Contact },
    Unknown { cause: String },
}

/// The contacts lookup with its store cache.
#[derive(Clone)]
pub struct People {
    api: Arc<WecomApi>,
    store: Arc<dyn Store>,
    ttl: Duration,
}

impl People {
    #[must_use]
    pub fn new(api: Arc<WecomApi>, store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { api, store, ttl }
    }

    /// The member's contact, from the cache or WeCom; `None` when WeCom will not or cannot
    /// say (the caller shows the userid).
    pub async fn lookup(&self, user: &UserId) -> Option<Contact> {
        let key = keys::contact(user);
        match self.store.get(&key).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Cached>(&bytes) {
                Ok(Cached::Known { contact }) => return Some(contact),
                Ok(Cached::Unknown { .. }) => return None,
                // An unreadable record is asked for again (and overwritten).
                Err(e) => tracing::warn!(%user, error = %e, "unreadable contact record"),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%user, error = %e, "contact cache unavailable; asking WeCom");
            }
        }
        let member = match self.api.user_get(user.as_str()).await {
            Ok(member) => member,
            Err(e) if e.errcode().is_some() => {
                // 60011 (outside the app's visible range), 60111 (no such member), …: WeCom's
                // answer, remembered a while; the request shows the userid.
                tracing::info!(%user, cause = %e.cause(), "requester not readable in WeCom contacts; shown by userid");
                self.remember(&key, &Cached::Unknown { cause: e.cause() }, UNKNOWN_TTL)
                    .await;
                return None;
            }
            Err(e) => {
                tracing::warn!(%user, cause = %e.cause(), error = %e, "contacts lookup failed; shown by userid for now");
                return None;
            }
        };
        let (names, complete) = self.department_names().await;
        let name = member.name.trim();
        let contact = Contact {
            name: if name.is_empty() {
                user.as_str().to_owned()
            } else {
                name.to_owned()
            },
            departments: member
                .departments()
                .iter()
                .filter_map(|id| names.get(id).cloned())
                .collect(),
            email: member.mail().map(str::to_owned),
        };
        // Without the department names this time, ask again sooner.
        let ttl = if complete { self.ttl } else { UNKNOWN_TTL };
        self.remember(
            &key,
            &Cached::Known {
                contact: contact.clone(),
            },
            ttl,
        )
        .await;
        Some(contact)
    }

    /// Department names by id, cached like contacts; `false` when they could not be had.
    async fn department_names(&self) -> (HashMap<u64, String>, bool) {
        let key = keys::contact_departments();
        if let Ok(Some(bytes)) = self.store.get(&key).await
            && let Ok(names) = serde_json::from_slice::<HashMap<u64, String>>(&bytes)
        {
            return (names, true);
        }
        match self.api.department_list().await {
            Ok(list) => {
                let names: HashMap<u64, String> = list
                    .into_iter()
                    .filter(|d| !d.name.trim().is_empty())
                    .map(|d| (d.id, d.name.trim().to_owned()))
                    .collect();
                let bytes = serde_json::to_vec(&names).unwrap_or_default();
                if let Err(e) = self.store.put(&key, &bytes, Some(self.ttl)).await {
                    tracing::warn!(error = %e, "department names not cached");
                }
                (names, true)
            }
            Err(e) => {
                tracing::info!(cause = %e.cause(), "department names not readable; contacts shown without them");
                (HashMap::new(), false)
            }
        }
    }

    async fn remember(&self, key: &str, record: &Cached, ttl: Duration) {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        if let Err(e) = self.store.put(key, &bytes, Some(ttl)).await {
            tracing::warn!(error = %e, "contact not cached");
        }
    }
}

/// The requester of an outbox item, for the transports that name them (webhook payloads,
/// e-mails): the contact recorded on the request, else a lookup (the cache, else WeCom — the
/// outbox worker runs apart from any reply).
#[derive(Clone)]
pub struct Requesters {
    people: People,
    ledger: Arc<dyn Ledger>,
}

impl std::fmt::Debug for Requesters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requesters").finish_non_exhaustive()
    }
}

impl Requesters {
    #[must_use]
    pub fn new(people: People, ledger: Arc<dyn Ledger>) -> Self {
        Self { people, ledger }
    }

    /// The contact of `user`.
    pub async fn contact(&self, user: &UserId) -> Option<Contact> {
        self.people.lookup(user).await
    }

    /// The contact of the requester of the request the item `item_id` is about.
    pub async fn of_item(&self, item_id: &str) -> Option<Contact> {
        let id = keys::request_of_item(item_id)?;
        let request = match self.ledger.get(&id).await {
            Ok(Some(request)) => request,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%id, error = %e, "request not readable for its requester's contact");
                return None;
            }
        };
        match request.contact {
            Some(contact) => Some(contact),
            None => self.people.lookup(&request.form.requester.user).await,
        }
    }
}

/// The lookups running in the background, so shutdown can end them: each holds the store, and
/// a lookup outliving the server would keep the embedded store's file locked.
#[derive(Clone, Default)]
pub struct Lookups(Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>);

impl Lookups {
    fn spawn(&self, lookup: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Finished lookups are let go here, so the set holds only running ones.
        while set.try_join_next().is_some() {}
        set.spawn(lookup);
    }

    /// Ends every running lookup (shutdown); the request keeps its userid until the next one.
    pub async fn stop(&self) {
        let mut set = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
}

/// Looks a new request's requester up in the background and records the contact on the
/// request: filing answers at once, the name follows a moment later.
pub struct ContactWatcher {
    people: People,
    /// The plain ledger: recording a contact is no change anyone is told about.
    ledger: Arc<dyn Ledger>,
    lookups: Lookups,
}

impl ContactWatcher {
    #[must_use]
    pub fn new(people: People, ledger: Arc<dyn Ledger>, lookups: Lookups) -> Self {
        Self {
            people,
            ledger,
            lookups,
        }
    }
}

#[async_trait::async_trait]
impl Watcher for ContactWatcher {
    async fn changed(&self, request: &Request, _now: DateTime<Utc>) -> Result<(), StoreError> {
        if request.contact.is_some() || request.status() != Status::Submitted {
            return Ok(());
        }
        let people = self.people.clone();
        let ledger = Arc::clone(&self.ledger);
        let id = request.id.clone();
        let user = request.form.requester.user.clone();
        self.lookups.spawn(async move {
            let Some(contact) = people.lookup(&user).await else {
                return;
            };
            if let Err(e) = ledger.set_contact(&id, contact).await {
                tracing::warn!(%id, error = %e, "requester's contact not recorded on the request");
            }
        });
        Ok(())
    }
}
