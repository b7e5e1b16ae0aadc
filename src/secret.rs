//! `Secret`: a string that must never reach a log, an error message or a `--json` event.
//!
//! Access and refresh tokens, device codes, id tokens and client secrets are all held in this
//! newtype. Its `Debug` is redacted and it has no `Display`, so `{}`/`{:?}` cannot leak it by
//! accident; code that really needs the value (the HTTP body, the store file, `devauth token`)
//! calls [`Secret::expose`], which is easy to grep for.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Only for the wire, the store and the one command that prints a token.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-refresh");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2-refresh");
    }
}
