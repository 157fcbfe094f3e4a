//! The store's error: why an operation failed (`StoreError`), with the backend's own error kept
//! as its source when there is one (`Cause`).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached right now (Redis down, timeout); the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The backend answered but failed (corrupt file, protocol error).
    #[error("store failure: {0}")]
    Backend(#[source] Cause),
    /// A store URL of an unknown scheme; holds the scheme only (the rest may hold a password).
    #[error(
        "unsupported store url scheme {0:?}: expected embedded://PATH, redis://HOST:PORT or \
         redis+sentinel://SENTINEL:PORT,…/MASTER"
    )]
    UnsupportedUrl(String),
    /// A store URL of a known kind that cannot be used; says why, never the URL (it may hold
    /// a password).
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// The embedded store's file cannot be used as it is; start-up is refused rather than
    /// starting empty or crashing inside the storage engine.
    #[error(
        "embedded store {path} is damaged ({reason}); restore a backup with `kaitong store restore BACKUP`, \
         or move the file aside to start with an empty store"
    )]
    Damaged { path: String, reason: String },
    /// Another process (usually a running `kaitong serve`) holds the embedded store's file.
    #[error("embedded store {0} is in use by another process (is `kaitong serve` running?)")]
    InUse(String),
    #[error("{0} is not supported by this store")]
    Unsupported(&'static str),
    /// The store answers, but the configured keys open none of its sealed records.
    #[error(
        "store.secret_key 打不开存储里的记录: 抽查的 {sealed} 条加密记录一条也打不开(密钥配错了?换过密钥时旧密钥要放进 store.previous_secret_keys)"
    )]
    WrongKey { sealed: usize },
}

/// What a store failure says, with the backend's own error when there is one (a Redis, redb or
/// file error kept whole), so a log line walks down to it; a failure of our own making (a
/// truncated sealed record, a stopped writer) is a message alone.
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// The backend's error, said as it says itself.
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// The backend's error, after what was being done (`path: error`).
    pub fn within(
        context: impl std::fmt::Display,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: format!("{context}: {error}"),
            source: Some(Box::new(error)),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self {
            message,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_backend_failure_keeps_the_backend_error_as_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let error = StoreError::Backend(Cause::within("/var/lib/kaitong/store.db", io));
        assert_eq!(
            error.to_string(),
            "store failure: /var/lib/kaitong/store.db: denied"
        );
        let cause = error.source().unwrap();
        assert!(
            cause
                .source()
                .unwrap()
                .downcast_ref::<std::io::Error>()
                .is_some()
        );
        // A failure of our own making is its message alone.
        let error = StoreError::Unavailable("connect timed out".into());
        assert!(error.source().unwrap().source().is_none());
    }
}
