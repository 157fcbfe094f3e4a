//! Why a hand-off transport could not be built from `[handoff]`: one error type the transports
//! share, in a file of its own so they import it from a sibling and never from the parent that
//! imports them.

/// A hand-off transport could not be built from the settings (start-up should stop on this).
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// Never includes the URL itself: it may carry credentials.
    #[error("invalid {what} URL: {reason}")]
    InvalidUrl { what: &'static str, reason: String },
    #[error("{what} is set but its secret is empty: requests would go out unsigned")]
    MissingSecret { what: &'static str },
    #[error("invalid mail_from {0:?}: {1}")]
    MailFrom(String, String),
    #[error("could not build the {what} client: {reason}")]
    Client { what: &'static str, reason: String },
    #[error("OA approvals: {0}")]
    Approval(String),
}
