//! [`Secret`]: a value that must never be printed (app secrets, tokens, keys, SMTP URLs), and
//! [`constant_time_eq`], the one comparison of a given value with a secret one.
//!
//! A leaf: imports nothing from the crate, so settings and the API client share one type
//! without depending on each other.

use serde::Deserialize;

/// Whether `given` equals `expected`, in a time that does not depend on where they differ: a
/// token, signature or CSRF value compared byte by byte would tell a guesser how much of a guess
/// was right. Only the lengths may show in the time (they are not secret). An empty `expected`
/// equals nothing, so an unset secret never lets anyone in.
#[must_use]
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // `ct_eq` on slices of different lengths is false without comparing their bytes.
    !expected.is_empty() && bool::from(given.ct_eq(expected))
}

/// A value that must never be printed; `Debug` shows only whether it is set.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it (a header, a signature, a query).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<unset>" } else { "****" })
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "****");
        assert_eq!(format!("{:?}", Secret::default()), "<unset>");
    }
}
