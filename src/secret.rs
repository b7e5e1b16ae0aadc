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

/// Compares two secrets without an early exit, so the time taken says nothing about how much
/// of a guessed `state` was right. Lengths are not secret (devauth's own states all have one).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold back into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// Secret bytes (a data key, an unsealed TPM object, key material): redacted `Debug`, no
/// `Display`, and overwritten with zeros when dropped so the value does not linger in freed heap
/// memory (best effort: copies the compiler made on the stack are out of reach).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes themselves, for the one computation that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: a valid, aligned, exclusive reference; the volatile write keeps the
            // optimiser from dropping stores to memory that is about to be freed.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-refresh");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2-refresh");
    }

    #[test]
    fn secret_bytes_debug_shows_only_the_length() {
        let s = SecretBytes::new(vec![0x41; 32]);
        assert_eq!(format!("{s:?}"), "SecretBytes(<32 bytes redacted>)");
        assert_eq!(s.expose(), &[0x41; 32][..]);
    }
}
