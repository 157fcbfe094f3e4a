//! Where a request's hand-off to its handling side stands, for the console's request page and
//! the API: delivered (when), waiting (how often tried, the last error), failed (why), not
//! configured here, or not needed (an e-mail service the seed names no address for).

use chrono::{DateTime, Utc};

use crate::catalog::FilingRoute;
use crate::notify::delivery::DeliveryKind;
use crate::notify::outbox::{ItemState, Outbox};
use crate::requests::Request;
use crate::store::{StoreError, keys};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffState {
    Delivered {
        at: DateTime<Utc>,
    },
    Waiting {
        attempts: u32,
        error: Option<String>,
    },
    Failed {
        error: String,
    },
    NotConfigured,
    /// Nothing to hand off to by design (no address in the catalog).
    NotNeeded,
    /// Not queued and not recorded (filed before this was kept, or a transport switched on
    /// since).
    Unknown,
}

impl HandoffState {
    /// The API's word for it.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Waiting { .. } => "waiting",
            Self::Failed { .. } => "failed",
            Self::NotConfigured => "not_configured",
            Self::NotNeeded => "not_needed",
            Self::Unknown => "unknown",
        }
    }
}

/// The transport a request's route hands it to.
#[must_use]
pub fn kind_of(request: &Request) -> Option<DeliveryKind> {
    match &request.form.routing {
        FilingRoute::ResourcePlatform => Some(DeliveryKind::Webhook),
        FilingRoute::OaTicket => Some(DeliveryKind::Oa),
        FilingRoute::Email { address: Some(_) } => Some(DeliveryKind::Email),
        FilingRoute::Email { address: None } => None,
    }
}

/// Where the filing hand-off of `request` stands.
pub async fn handoff_state(outbox: &Outbox, request: &Request) -> Result<HandoffState, StoreError> {
    let Some(kind) = kind_of(request) else {
        return Ok(HandoffState::NotNeeded);
    };
    let item = keys::handoff_filed(kind.as_str(), &request.id);
    if let Some(delivered) = request.deliveries.iter().find(|d| d.item == item) {
        return Ok(HandoffState::Delivered { at: delivered.at });
    }
    Ok(match outbox.state(kind, &item).await? {
        ItemState::Pending(item) => HandoffState::Waiting {
            attempts: item.attempts,
            error: item.last_error,
        },
        ItemState::Failed(item) => HandoffState::Failed {
            error: item.last_error.unwrap_or_default(),
        },
        ItemState::Absent if outbox.is_configured(kind) == Some(false) => {
            HandoffState::NotConfigured
        }
        ItemState::Absent => HandoffState::Unknown,
    })
}
