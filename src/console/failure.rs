//! Why a console page cannot be shown, and the page that says so: `PageError` names the
//! reasons, `PageFailure` (the error with the session it happened in) is what a page handler
//! fails with, and its `IntoResponse` is the one place each reason gets its status and page
//! and the one place a failure of our side is logged, with its whole cause chain.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::html;
use super::session::ConsoleSession;
use crate::requests::{DeskError, LedgerError};
use crate::store::StoreError;
use crate::telemetry::one_line;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// An unknown request, or one of another team: the same answer, so existence does not leak.
    #[error("request not visible")]
    NotFound,
    /// An unknown outbox item, or one about another team's request.
    #[error("no such delivery")]
    NoSuchDelivery,
    #[error("desk failed")]
    Desk(#[source] DeskError),
    #[error("ledger failed")]
    Ledger(#[from] LedgerError),
    #[error("store failed")]
    Store(#[from] StoreError),
}

impl From<DeskError> for PageError {
    fn from(error: DeskError) -> Self {
        match error {
            DeskError::NotFound => Self::NotFound,
            other => Self::Desk(other),
        }
    }
}

impl PageError {
    /// This error, shown to the handler of `session`.
    pub(crate) fn on(self, session: &ConsoleSession) -> PageFailure {
        PageFailure(Box::new((self, session.clone())))
    }
}

/// A [`PageError`] with the session whose page it replaces (the page keeps the handler's
/// navigation). Not `Debug`: the session holds its CSRF token. Boxed, so a page handler's
/// `Result` stays a pointer wide on its error side.
pub(crate) struct PageFailure(Box<(PageError, ConsoleSession)>);

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        let (error, session) = *self.0;
        let handler = &session.handler.name;
        let session = Some(&session);
        match &error {
            PageError::NotFound => html::message_page(
                StatusCode::NOT_FOUND,
                session,
                "找不到该申请",
                "单号不存在，或不属于你的处理组。",
            ),
            PageError::NoSuchDelivery => html::message_page(
                StatusCode::NOT_FOUND,
                session,
                "找不到该投递",
                "它可能已被重新排队，或不属于你的处理组。",
            ),
            PageError::Desk(_) | PageError::Ledger(_) | PageError::Store(_) => {
                tracing::error!(error = %one_line(&error), handler = %handler, "console: ledger or store failed");
                html::message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    session,
                    "暂时无法处理",
                    "存储暂时不可用，请稍后重试。",
                )
            }
        }
    }
}

/// `result?` in a page handler: its error shown to the handler of `session`.
pub(crate) trait OnPage<T> {
    fn on(self, session: &ConsoleSession) -> Result<T, PageFailure>;
}

impl<T, E: Into<PageError>> OnPage<T> for Result<T, E> {
    fn on(self, session: &ConsoleSession) -> Result<T, PageFailure> {
        self.map_err(|e| e.into().on(session))
    }
}
