//! The handlers' desk: the actions on a filed request (start, complete, reject, note, the
//! requester's own cancel), with who may do what, shared by the console, the JSON API and the
//! chat commands.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::ledger::{Ledger, LedgerError};
use super::record::{Request, Status};
use crate::catalog::Team;
use crate::config::{HandlerAccountSettings, HandlersSection};
use crate::domain::{ChannelKind, RequestId, UserId};
use crate::secret::Secret;

/// The actor recorded in a request's history for actions done with `admin.token`. Handler
/// accounts may not take this name ([`HandlerDirectory::from_settings`]), so the history stays unambiguous.
pub const ADMIN_ACTOR: &str = "admin";

/// Which requests a handler sees and acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamScope {
    All,
    Team(Team),
}

impl TeamScope {
    #[must_use]
    pub fn covers(self, team: Team) -> bool {
        match self {
            Self::All => true,
            Self::Team(own) => own == team,
        }
    }
}

/// A handler who proved who they are (token, or configured WeCom userid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub scope: TeamScope,
}

/// The configured handler accounts, looked up by token hash or WeCom userid, plus the admin
/// token (every team's rights).
#[derive(Debug, Clone, Default)]
pub struct HandlerDirectory {
    accounts: Vec<(HandlerAccountSettings, TeamScope)>,
    /// SHA-256 of `admin.token`: only the hash is kept here, as for handler tokens, so the
    /// directory (cloned into the console and the bot) never holds the secret itself.
    admin_sha256: Option<String>,
}

/// A configured handler account that cannot be used; names the account, never its token.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting handlers.accounts: {0}")]
pub struct HandlerAccountError(String);

impl HandlerDirectory {
    /// The configured accounts and the admin token, each account checked: a refusal here stops
    /// start-up.
    pub fn from_settings(
        section: &HandlersSection,
        admin_token: &Secret,
    ) -> Result<Self, HandlerAccountError> {
        let admin_hash = token_hash(admin_token.expose());
        for account in &section.accounts {
            let hex_ok = account.token_sha256.len() == 64
                && account.token_sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_ok {
                return Err(HandlerAccountError(format!(
                    "{}: token_sha256 must be 64 hex characters",
                    account.name
                )));
            }
            // The hash of an empty or blank token is what hashing an unset variable gives
            // (`printf %s "$UNSET" | sha256sum`, or `echo` with its newline): it would let an
            // empty login in, so it is refused rather than left to match.
            if ["", "\n", " ", "\r\n", "\t"].iter().any(|blank| {
                account
                    .token_sha256
                    .eq_ignore_ascii_case(&token_hash(blank))
            }) {
                return Err(HandlerAccountError(format!(
                    "{}: token_sha256 is the hash of an empty token (was the variable unset when it was hashed?)",
                    account.name
                )));
            }
            // The admin token's actions are recorded as "admin"; an account of that name
            // would make the history ambiguous.
            if account.name == ADMIN_ACTOR {
                return Err(HandlerAccountError(format!(
                    "{ADMIN_ACTOR}: the name is reserved for admin.token"
                )));
            }
            // Otherwise one token would be both a handler and the admin, and what the admin
            // does with it would be recorded under the handler's name.
            if account.token_sha256.eq_ignore_ascii_case(&admin_hash) {
                return Err(HandlerAccountError(format!(
                    "{}: token must differ from admin.token",
                    account.name
                )));
            }
            if account.team != "all" && Team::parse(&account.team).is_none() {
                return Err(HandlerAccountError(format!(
                    "{}: unknown team {:?}",
                    account.name, account.team
                )));
            }
        }
        Ok(Self::new(&section.accounts).with_admin_token(admin_token))
    }

    /// The accounts as given, those of an unknown team left out (tests build directories
    /// directly; configured ones go through [`HandlerDirectory::from_settings`]).
    #[must_use]
    pub fn new(accounts: &[HandlerAccountSettings]) -> Self {
        Self {
            accounts: accounts
                .iter()
                .filter_map(|a| {
                    let scope = if a.team == "all" {
                        TeamScope::All
                    } else {
                        TeamScope::Team(Team::parse(&a.team)?)
                    };
                    Some((a.clone(), scope))
                })
                .collect(),
            admin_sha256: None,
        }
    }

    /// Also accepts `admin.token`, as [`ADMIN_ACTOR`] with every team's rights. An empty token
    /// is never accepted (an empty bearer or login field must not become admin).
    #[must_use]
    pub fn with_admin_token(mut self, token: &Secret) -> Self {
        self.admin_sha256 = (!token.expose().trim().is_empty()).then(|| token_hash(token.expose()));
        self
    }

    /// The handler whose token this is (or the admin); compared by hash in constant time. An
    /// empty or blank token is never anyone's.
    #[must_use]
    pub fn by_token(&self, token: &str) -> Option<Handler> {
        // An empty or blank token is nobody's, whatever hash an account holds.
        if token.trim().is_empty() {
            return None;
        }
        let hash = token_hash(token);
        let same = |stored: &str| {
            let stored = stored.to_ascii_lowercase();
            crate::secret::constant_time_eq(hash.as_bytes(), stored.as_bytes())
        };
        // Checked even when an account matched, so the time taken does not tell an admin
        // token from a handler's.
        let admin = self.admin_sha256.as_deref().is_some_and(same);
        let account = self
            .accounts
            .iter()
            .find(|(a, _)| same(&a.token_sha256))
            .map(|(a, scope)| Handler {
                name: a.name.clone(),
                scope: *scope,
            });
        account.or_else(|| {
            admin.then(|| Handler {
                name: ADMIN_ACTOR.to_owned(),
                scope: TeamScope::All,
            })
        })
    }

    /// Every handler with a WeCom account, and that account: who gets the batch at the cut-off.
    #[must_use]
    pub fn in_wecom(&self) -> Vec<(Handler, UserId)> {
        self.accounts
            .iter()
            .filter_map(|(a, scope)| {
                let user = UserId::parse(&a.wecom_userid)?;
                Some((
                    Handler {
                        name: a.name.clone(),
                        scope: *scope,
                    },
                    user,
                ))
            })
            .collect()
    }

    /// The handler configured for this WeCom user, for chat commands.
    #[must_use]
    pub fn by_wecom_user(&self, user: &UserId) -> Option<Handler> {
        self.accounts
            .iter()
            .find(|(a, _)| !a.wecom_userid.is_empty() && a.wecom_userid == user.as_str())
            .map(|(a, scope)| Handler {
                name: a.name.clone(),
                scope: *scope,
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Unknown id, or one the caller may not see: the same answer, so existence does not leak.
    #[error("no such request")]
    NotFound,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("request is {from} and cannot become {to}")]
    NotNow {
        from: &'static str,
        to: &'static str,
    },
    /// A 完成/驳回 is taken back only the same day.
    #[error("handled before today; cannot be reopened")]
    TooLate,
    #[error(transparent)]
    Ledger(LedgerError),
}

impl From<LedgerError> for DeskError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotFound(_) => Self::NotFound,
            LedgerError::InvalidTransition { from, to, .. } => Self::NotNow {
                from: from.label(),
                to: to.label(),
            },
            LedgerError::ReopenTooLate(_) => Self::TooLate,
            other => Self::Ledger(other),
        }
    }
}

/// The actions; every change goes through the ledger, so a `WatchedLedger` hears of it.
#[derive(Clone)]
pub struct Desk {
    ledger: Arc<dyn Ledger>,
}

impl Desk {
    #[must_use]
    pub fn new(ledger: Arc<dyn Ledger>) -> Self {
        Self { ledger }
    }

    #[must_use]
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// A request the handler may see.
    pub async fn visible(&self, handler: &Handler, id: &RequestId) -> Result<Request, DeskError> {
        match self.ledger.get(id).await? {
            Some(r) if handler.scope.covers(r.form.team) => Ok(r),
            _ => Err(DeskError::NotFound),
        }
    }

    async fn move_to(
        &self,
        handler: &Handler,
        id: &RequestId,
        to: Status,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        self.visible(handler, id).await?;
        let request = self
            .ledger
            .transition(id, to, &handler.name, note, now)
            .await?;
        tracing::info!(request = %id, status = to.as_str(), by = %handler.name, "request status changed");
        Ok(request)
    }

    pub async fn start(
        &self,
        handler: &Handler,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        self.move_to(handler, id, Status::Processing, None, now)
            .await
    }

    pub async fn complete(
        &self,
        handler: &Handler,
        id: &RequestId,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        self.move_to(handler, id, Status::Done, note, now).await
    }

    pub async fn reject(
        &self,
        handler: &Handler,
        id: &RequestId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DeskError::ReasonRequired);
        }
        self.move_to(handler, id, Status::Rejected, Some(reason.to_owned()), now)
            .await
    }

    /// Sets the handling side's ticket number (checked with `ticket_problem` by the caller;
    /// trimmed here).
    pub async fn set_ticket(
        &self,
        handler: &Handler,
        id: &RequestId,
        number: &str,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        self.visible(handler, id).await?;
        Ok(self
            .ledger
            .set_external_ticket(
                id,
                super::record::ExternalTicket {
                    number: number.trim().to_owned(),
                    by: handler.name.clone(),
                    at: now,
                },
            )
            .await?)
    }

    /// Takes back a 完成 or 驳回 of today: the request is open (处理中) again, with who did it
    /// in its history.
    pub async fn reopen(
        &self,
        handler: &Handler,
        id: &RequestId,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        self.visible(handler, id).await?;
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let request = self.ledger.reopen(id, &handler.name, note, now).await?;
        tracing::info!(request = %id, by = %handler.name, "request reopened");
        Ok(request)
    }

    pub async fn note(
        &self,
        handler: &Handler,
        id: &RequestId,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        self.visible(handler, id).await?;
        Ok(self
            .ledger
            .add_note(id, &handler.name, text.trim().to_owned(), now)
            .await?)
    }

    /// The requester withdraws their own request before processing starts. Anyone else gets
    /// `NotFound`, exactly as for an unknown id.
    pub async fn cancel_own(
        &self,
        channel: ChannelKind,
        user: &UserId,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<Request, DeskError> {
        match self.ledger.get(id).await? {
            Some(r) if r.form.requester.user == *user && r.form.requester.channel == channel => {}
            _ => return Err(DeskError::NotFound),
        }
        Ok(self
            .ledger
            .transition(id, Status::Cancelled, user.as_str(), None, now)
            .await?)
    }
}

/// What a button on a handler's card does; its key travels through WeCom and comes back as
/// the click's EventKey, so it is parsed like any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskAction {
    Complete(RequestId),
    Reject(RequestId),
}

impl DeskAction {
    const COMPLETE: &'static str = "kt_done:";
    const REJECT: &'static str = "kt_reject:";

    #[must_use]
    pub fn key(&self) -> String {
        match self {
            Self::Complete(id) => format!("{}{id}", Self::COMPLETE),
            Self::Reject(id) => format!("{}{id}", Self::REJECT),
        }
    }

    #[must_use]
    pub fn parse(key: &str) -> Option<Self> {
        if let Some(id) = key.strip_prefix(Self::COMPLETE) {
            return RequestId::parse(id).map(Self::Complete);
        }
        key.strip_prefix(Self::REJECT)
            .and_then(RequestId::parse)
            .map(Self::Reject)
    }

    #[must_use]
    pub fn request(&self) -> &RequestId {
        match self {
            Self::Complete(id) | Self::Reject(id) => id,
        }
    }
}

/// Lower-case hex SHA-256 of a token: only hashes are configured and compared.
#[must_use]
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_handler_token_matches_its_configured_hash() {
        let settings =
            crate::config::Settings::load_with_env(None, Vec::new()).expect("defaults load");
        let directory = HandlerDirectory::from_settings(&settings.handlers, &settings.admin.token)
            .expect("the demo accounts are valid");
        let handler = directory
            .by_token("demo-handler-token")
            .expect("demo account");
        assert_eq!(handler.scope, TeamScope::All);
        assert!(directory.by_token("wrong").is_none());
        assert!(directory.by_token("").is_none());
    }

    #[test]
    fn the_admin_token_is_the_admin_with_every_team_and_an_empty_one_is_nobody() {
        let settings =
            crate::config::Settings::load_with_env(None, Vec::new()).expect("defaults load");
        let directory = HandlerDirectory::from_settings(&settings.handlers, &settings.admin.token)
            .expect("the demo accounts are valid");
        let admin = directory
            .by_token(settings.admin.token.expose())
            .expect("the admin token is accepted");
        assert_eq!(admin.name, ADMIN_ACTOR);
        assert_eq!(admin.scope, TeamScope::All);
        assert_eq!(
            directory
                .by_token("demo-handler-token")
                .map(|h| h.name)
                .as_deref(),
            Some("demo-handler")
        );
        let none = HandlerDirectory::new(&[]).with_admin_token(&Secret::from(""));
        assert!(none.by_token("").is_none());
        assert!(
            HandlerDirectory::new(&[])
                .by_token("demo-admin-token")
                .is_none()
        );
    }

    #[test]
    fn handler_accounts_may_not_be_named_admin_nor_share_the_admin_token() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("local.toml");
        let layer = |name: &str, token: &str| {
            format!(
                "[handlers]\naccounts = [{{ name = \"{name}\", team = \"ops\", token_sha256 = \"{}\" }}]\n",
                token_hash(token)
            )
        };
        let directory = |layer: String| {
            std::fs::write(&path, layer).expect("layer written");
            let settings =
                crate::config::Settings::load_with_env(Some(&path), Vec::new()).expect("loads");
            HandlerDirectory::from_settings(&settings.handlers, &settings.admin.token)
        };
        let err = directory(layer("admin", "some-other-token")).expect_err("reserved name");
        assert!(
            err.to_string().contains("reserved for admin.token"),
            "{err}"
        );
        let err = directory(layer("ops1", "demo-admin-token")).expect_err("the admin's token");
        let text = err.to_string();
        assert!(
            text.contains("ops1: token must differ from admin.token"),
            "{text}"
        );
        assert!(!text.contains("demo-admin-token"), "{text}");
        assert!(directory(layer("ops1", "some-other-token")).is_ok());
    }

    #[test]
    fn card_keys_round_trip_and_other_keys_are_not_desk_actions() {
        let id = RequestId::parse("KT-20261128-0007").expect("id");
        for action in [DeskAction::Complete(id.clone()), DeskAction::Reject(id)] {
            assert_eq!(DeskAction::parse(&action.key()), Some(action));
        }
        assert_eq!(DeskAction::parse("是"), None);
        assert_eq!(DeskAction::parse("kt_done:nonsense"), None);
    }

    #[test]
    fn a_team_scope_covers_only_its_team() {
        assert!(TeamScope::Team(Team::Ops).covers(Team::Ops));
        assert!(!TeamScope::Team(Team::Ops).covers(Team::Rnd));
        assert!(TeamScope::All.covers(Team::Mailbox));
    }
}
