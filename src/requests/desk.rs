//! The handlers' desk: the actions on a filed request (start, complete, reject, note, the
//! requester's own cancel), with who may do what, shared by the console, the JSON API and the
//! chat commands.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Ledger, LedgerError, Request, RequestId, Status};
use crate::catalog::Team;
use crate::channel::{ChannelKind, UserId};
use crate::config::HandlerAccount;

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

/// The configured handler accounts, looked up by token hash or WeCom userid.
#[derive(Debug, Clone, Default)]
pub struct HandlerDirectory {
    accounts: Vec<(HandlerAccount, TeamScope)>,
}

impl HandlerDirectory {
    #[must_use]
    pub fn new(accounts: &[HandlerAccount]) -> Self {
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
        }
    }

    /// The handler whose token this is; compared by hash in constant time.
    #[must_use]
    pub fn by_token(&self, token: &str) -> Option<Handler> {
        use subtle::ConstantTimeEq;
        let hash = token_hash(token);
        self.accounts
            .iter()
            .find(|(a, _)| {
                let stored = a.token_sha256.to_ascii_lowercase();
                stored.len() == hash.len() && bool::from(stored.as_bytes().ct_eq(hash.as_bytes()))
            })
            .map(|(a, scope)| Handler {
                name: a.name.clone(),
                scope: *scope,
            })
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
        let directory = HandlerDirectory::new(&settings.handlers.accounts);
        let handler = directory
            .by_token("demo-handler-token")
            .expect("demo account");
        assert_eq!(handler.scope, TeamScope::All);
        assert!(directory.by_token("wrong").is_none());
        assert!(directory.by_token("").is_none());
    }

    #[test]
    fn a_team_scope_covers_only_its_team() {
        assert!(TeamScope::Team(Team::Ops).covers(Team::Ops));
        assert!(!TeamScope::Team(Team::Ops).covers(Team::Rnd));
        assert!(TeamScope::All.covers(Team::Mailbox));
    }
}
