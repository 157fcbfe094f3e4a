//! [`ConsoleSession`]: who a console page is for. The type sits below both `auth` (which
//! checks the cookie and CSRF token and builds it) and `html` (which draws the header and forms
//! with it), so neither of those imports the other's page logic.

use crate::requests::Handler;

/// A logged-in handler, with the session's CSRF token for the forms.
#[derive(Clone)]
pub(crate) struct ConsoleSession {
    pub handler: Handler,
    pub csrf: String,
    /// The store key of the session record (the hash of its id), for logout.
    pub(super) key: String,
}
