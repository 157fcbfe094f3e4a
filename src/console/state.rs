//! What every console page and API call is handed (`ConsoleState`): the desk, the handler
//! directory, the store, the outbox, the schedule and the login throttle.

use std::sync::Arc;

use super::throttle::LoginThrottle;
use crate::notify::Outbox;
use crate::requests::{BatchSchedule, Desk, HandlerDirectory};
use crate::store::Store;

/// What the console and the API need; cheap to clone (everything is shared).
#[derive(Clone)]
pub struct ConsoleState {
    pub desk: Desk,
    pub directory: HandlerDirectory,
    pub store: Arc<dyn Store>,
    pub outbox: Outbox,
    pub schedule: BatchSchedule,
    /// Failed console logins and API tokens, per address and token prefix.
    pub login_throttle: Arc<LoginThrottle>,
}
