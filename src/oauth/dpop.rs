//! DPoP (RFC 9449): proofs that whoever sends a request holds the private key the tokens are
//! bound to, so a token copied off the device (or out of a log, or from another program) is
//! useless without that key.
//!
//! A proof is a JWS (`typ` `dpop+jwt`, ES256, the public key in the `jwk` header) over the
//! request's method (`htm`) and URL without query and fragment (`htu`), a fresh `jti`, the time
//! (`iat`), the server's latest nonce when it gave one (`nonce`, §8/§9) and, on a request to a
//! resource server, the hash of the access token (`ath`, §4.2). The authorization server binds
//! the tokens to the key's RFC 7638 thumbprint (`jkt`).
//!
//! This module owns making proofs and remembering nonces (per origin, in memory: nonces change
//! often and writing them to flash would wear it). It does not send requests (`client`, the
//! `api` command) and does not keep the key (a [`JwsSigner`]: a ring key stored beside the
//! token file, or a TPM key).

use crate::oauth::jws::{Alg, JsonObject, JwsSigner, header, random_id, sign_compact};
use crate::secret::Secret;
use std::sync::{Arc, Mutex};

/// The OAuth error an authorization server answers when it wants a (new) nonce (§8).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// Longest nonce kept from a server; longer ones are ignored (a server's nonce is short).
pub const MAX_NONCE_LEN: usize = 512;
/// Servers kept in the nonce cache (a device talks to one provider and a few APIs).
const MAX_NONCE_ORIGINS: usize = 16;

/// The proof key and the nonces servers asked for.
pub struct Dpop {
    key: Arc<dyn JwsSigner>,
    /// `(origin, nonce)`, most recent last.
    nonces: Mutex<Vec<(String, String)>>,
    /// Unix seconds for `iat` (the wall clock; tests fix it).
    now: fn() -> i64,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

fn wall_unix() -> i64 {
    crate::clock::unix_secs(crate::clock::wall_now())
}

impl Dpop {
    /// Proofs signed with `key`, which must be an ES256 key (the one algorithm every DPoP
    /// server supports; RFC 9449 leaves the choice to the server's list).
    pub fn new(key: Arc<dyn JwsSigner>) -> Result<Dpop, String> {
        Dpop::with_clock(key, wall_unix)
    }

    /// [`new`](Self::new) with another source of `iat`.
    pub fn with_clock(key: Arc<dyn JwsSigner>, now: fn() -> i64) -> Result<Dpop, String> {
        if key.alg() != Alg::Es256 {
            return Err(format!(
                "a DPoP key must be EC P-256 (ES256), not {}",
                key.alg().name()
            ));
        }
        Ok(Dpop {
            key,
            nonces: Mutex::new(Vec::new()),
            now,
        })
    }

    /// The key's RFC 7638 thumbprint: what the server binds the tokens to (`cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        self.key.public_jwk().thumbprint()
    }

    /// A proof for `method url`, with the nonce this server gave last (if any) and, for a
    /// resource request, the `ath` of `access_token`.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&Secret>,
    ) -> Result<Secret, String> {
        let nonce = self.nonce_for(url);
        self.proof_with_nonce(method, url, access_token, nonce.as_deref())
    }

    /// A proof with this `nonce` (`devauth token --dpop-proof … --dpop-nonce N`: another
    /// program talks to the resource server and knows its nonce).
    pub fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&Secret>,
        nonce: Option<&str>,
    ) -> Result<Secret, String> {
        let iat = (self.now)();
        if iat < crate::clock::MIN_PLAUSIBLE_UNIX {
            return Err(
                "the clock is not set yet; a DPoP proof carries the time (waiting for network \
                 time)"
                    .into(),
            );
        }
        let key = self.key.as_ref();
        let mut header = header(key, "dpop+jwt");
        header.object("jwk", &key.public_jwk().to_json());
        let mut claims = JsonObject::default();
        claims
            .str("jti", &random_id()?)
            .str("htm", method)
            .str("htu", htu(url))
            .int("iat", iat);
        if let Some(nonce) = nonce {
            claims.str("nonce", nonce);
        }
        if let Some(token) = access_token {
            claims.str("ath", &ath(token));
        }
        sign_compact(key, &header, &claims)
            .map_err(|e| format!("signing the DPoP proof failed: {e}"))
    }

    /// The nonce the server of `url` gave last.
    pub fn nonce_for(&self, url: &str) -> Option<String> {
        let origin = origin(url);
        self.nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find(|(o, _)| *o == origin)
            .map(|(_, n)| n.clone())
    }

    /// Keeps the `DPoP-Nonce` a server of `url` sent (§8.2: on any answer, to be used from
    /// the next request on). Returns whether it differs from the one kept; a malformed nonce
    /// is ignored.
    pub fn remember_nonce(&self, url: &str, nonce: &str) -> bool {
        if !valid_nonce(nonce) {
            return false;
        }
        let origin = origin(url);
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        if nonces.iter().any(|(o, n)| *o == origin && n == nonce) {
            return false;
        }
        nonces.retain(|(o, _)| *o != origin);
        if nonces.len() >= MAX_NONCE_ORIGINS {
            nonces.remove(0);
        }
        nonces.push((origin, nonce.to_string()));
        true
    }
}

/// `htu` (§4.2): the URL without query and fragment. Unlike `redact_url` it is never shortened:
/// the server compares it with the URL it was called at.
pub fn htu(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `ath` (§4.2): base64url of the SHA-256 of the access token's ASCII.
pub fn ath(access_token: &Secret) -> String {
    crate::oauth::jws::base64url(
        ring::digest::digest(&ring::digest::SHA256, access_token.expose().as_bytes()).as_ref(),
    )
}

/// `scheme://authority`, lowercased: the key of the nonce cache (a nonce belongs to a server).
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// §8.1: `nonce = 1*NQCHAR` (printable ASCII without `"` and `\`), bounded here.
pub fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Whether a resource server's `WWW-Authenticate` asks for a nonce (§9: `DPoP error="use_dpop_nonce"`).
pub fn challenge_wants_nonce(www_authenticate: &str) -> bool {
    let lower = www_authenticate.to_ascii_lowercase();
    lower.contains("dpop") && lower.contains(USE_DPOP_NONCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::jws::{Jwk, SoftwareKey};
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use serde_json::Value;

    fn key() -> Arc<dyn JwsSigner> {
        Arc::new(SoftwareKey::generate_es256().unwrap().0)
    }

    fn fixed() -> i64 {
        1_800_000_000
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&crate::net::wire::base64url_decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_names_the_request_and_verifies_with_its_own_jwk() {
        let d = Dpop::with_clock(key(), fixed).unwrap();
        let proof = d
            .proof("POST", "https://as.example/token?x=1#f", None)
            .unwrap();
        let parts: Vec<&str> = proof.expose().split('.').collect();
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none(), "never the private part");
        let claims = decode(parts[1]);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://as.example/token");
        assert_eq!(claims["iat"], 1_800_000_000);
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
        let jwk = Jwk::Ec {
            x: header["jwk"]["x"].as_str().unwrap().into(),
            y: header["jwk"]["y"].as_str().unwrap().into(),
        };
        assert_eq!(jwk.thumbprint(), d.thumbprint());
        let Jwk::Ec { x, y } = jwk else { panic!() };
        let mut point = vec![4u8];
        point.extend(crate::net::wire::base64url_decode(&x).unwrap());
        point.extend(crate::net::wire::base64url_decode(&y).unwrap());
        let sig = crate::net::wire::base64url_decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let again = d.proof("POST", "https://as.example/token", None).unwrap();
        assert_ne!(
            decode(again.expose().split('.').nth(1).unwrap())["jti"],
            claims["jti"]
        );
    }

    #[test]
    fn resource_proofs_carry_the_token_hash() {
        let d = Dpop::with_clock(key(), fixed).unwrap();
        let token = Secret::new("at-123");
        let proof = d
            .proof("GET", "https://api.example/v1/me", Some(&token))
            .unwrap();
        let claims = decode(proof.expose().split('.').nth(1).unwrap());
        // base64url(SHA-256("at-123")), computed independently.
        let want = crate::oauth::jws::base64url(
            ring::digest::digest(&ring::digest::SHA256, b"at-123").as_ref(),
        );
        assert_eq!(claims["ath"], want.as_str());
        assert!(!proof.expose().contains("at-123"));
    }

    #[test]
    fn nonces_are_kept_per_server_and_used_in_the_next_proof() {
        let d = Dpop::with_clock(key(), fixed).unwrap();
        assert!(d.remember_nonce("https://AS.example/token", "n-1"));
        assert!(
            !d.remember_nonce("https://as.example/revoke", "n-1"),
            "same"
        );
        assert!(d.remember_nonce("https://api.example/x", "api-n"));
        let p = d.proof("POST", "https://as.example/token", None).unwrap();
        assert_eq!(
            decode(p.expose().split('.').nth(1).unwrap())["nonce"],
            "n-1"
        );
        assert!(d.remember_nonce("https://as.example/token", "n-2"));
        assert_eq!(
            d.nonce_for("https://as.example/anything").as_deref(),
            Some("n-2")
        );
        assert_eq!(
            d.nonce_for("https://api.example/").as_deref(),
            Some("api-n")
        );
        assert_eq!(d.nonce_for("https://other.example/"), None);
        for bad in [
            "",
            "a\"b",
            "a\\b",
            "a b",
            "é",
            &"n".repeat(MAX_NONCE_LEN + 1),
        ] {
            assert!(!d.remember_nonce("https://as.example/t", bad), "{bad:?}");
        }
        for i in 0..40 {
            d.remember_nonce(&format!("https://h{i}.example/"), "n");
        }
        assert!(d.nonces.lock().unwrap().len() <= MAX_NONCE_ORIGINS);
    }

    #[test]
    fn an_rsa_key_or_an_unset_clock_is_refused() {
        const RSA: &str = include_str!("../../tests/fixtures/test-only-jwt-key.pem");
        let rsa: Arc<dyn JwsSigner> = Arc::new(SoftwareKey::from_pem(&Secret::new(RSA)).unwrap());
        assert!(Dpop::new(rsa).unwrap_err().contains("ES256"));
        fn epoch() -> i64 {
            10
        }
        let d = Dpop::with_clock(key(), epoch).unwrap();
        assert!(
            d.proof("GET", "https://a/", None)
                .unwrap_err()
                .contains("clock")
        );
    }

    #[test]
    fn challenges_asking_for_a_nonce_are_recognised() {
        assert!(challenge_wants_nonce(
            "DPoP error=\"use_dpop_nonce\", error_description=\"x\""
        ));
        assert!(!challenge_wants_nonce("DPoP error=\"invalid_token\""));
        assert!(!challenge_wants_nonce("Bearer realm=\"x\""));
    }
}
