//! PKCE (RFC 7636) and the `state` value of the authorization code grant: random values from
//! the operating system (ring's `SystemRandom`, i.e. getrandom), the S256 challenge, and the
//! constant-time comparison used to check a returned `state`.
//!
//! Owns the secrets a browser sign-in starts with. Does not build URLs (`oauth/authorize.rs`)
//! and never sends anything.

use crate::oauth::jwt::base64url;
use crate::secret::Secret;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

/// Random bytes behind a verifier: 32 bytes give 43 base64url characters, the RFC 7636 §4.1
/// minimum, with 256 bits of entropy (the RFC recommends 32 octets).
const VERIFIER_BYTES: usize = 32;
/// Random bytes behind a `state`: 128 bits, so it cannot be guessed (RFC 6749 §10.12).
const STATE_BYTES: usize = 16;
/// RFC 7636 §4.1 verifier length bounds.
pub const VERIFIER_MIN_LEN: usize = 43;
pub const VERIFIER_MAX_LEN: usize = 128;
/// The longest `state` devauth accepts back (its own are 22 characters; a `--state` given by
/// the user may be longer).
pub const MAX_STATE_LEN: usize = 256;

/// The operating system's random generator failed (no getrandom, no /dev/urandom).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomUnavailable;

impl fmt::Display for RandomUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system random generator failed (getrandom); cannot start a sign-in")
    }
}

impl std::error::Error for RandomUnavailable {}

/// What one sign-in starts with: the `code_verifier` (kept), its S256 challenge (sent) and the
/// `state` (sent, and compared when the redirect comes back).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
    pub state: Secret,
}

impl Pkce {
    /// Fresh random verifier and state.
    pub fn generate() -> Result<Pkce, RandomUnavailable> {
        let rng = SystemRandom::new();
        let verifier = random_base64url(&rng, VERIFIER_BYTES)?;
        let state = random_base64url(&rng, STATE_BYTES)?;
        Ok(Pkce::from_parts(Secret::new(verifier), Secret::new(state)))
    }

    /// A verifier and state chosen elsewhere (a pending request read back from the store).
    pub fn from_parts(verifier: Secret, state: Secret) -> Pkce {
        let challenge = s256_challenge(&verifier);
        Pkce {
            verifier,
            challenge,
            state,
        }
    }
}

fn random_base64url(rng: &SystemRandom, len: usize) -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; VERIFIER_BYTES];
    let buf = bytes.get_mut(..len).ok_or(RandomUnavailable)?;
    rng.fill(buf).map_err(|_| RandomUnavailable)?;
    Ok(base64url(buf))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256_challenge(verifier: &Secret) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.expose().as_bytes());
    base64url(digest.as_ref())
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (VERIFIER_MIN_LEN..=VERIFIER_MAX_LEN).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub use crate::secret::constant_time_eq;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_challenge() {
        let verifier = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            s256_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_values_are_valid_random_and_long_enough() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        assert!(
            is_valid_verifier(a.verifier.expose()),
            "verifier charset/length"
        );
        assert_eq!(a.verifier.expose().len(), 43);
        // 16 random bytes -> 22 base64url characters = 128 bits.
        assert_eq!(a.state.expose().len(), 22);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, b.state);
        assert_eq!(a.challenge, s256_challenge(&a.verifier));
        assert_ne!(a.challenge, a.verifier.expose());
    }

    #[test]
    fn verifier_rules() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(is_valid_verifier(&format!("{}-._~", "a".repeat(43))));
    }

    #[test]
    fn debug_does_not_show_the_verifier_or_state() {
        let p = Pkce::from_parts(Secret::new("v".repeat(43)), Secret::new("s".repeat(22)));
        let shown = format!("{p:?}");
        assert!(!shown.contains("vvvv"), "{shown}");
        assert!(!shown.contains("ssss"), "{shown}");
    }
}
