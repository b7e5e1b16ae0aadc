//! DPoP (RFC 9449) as the test server checks it. Every proof is verified in full (§4.3): one
//! `DPoP` header, a JWS with `typ` `dpop+jwt`, `alg` ES256, a public `jwk` (EC P-256, never a
//! private member) whose signature holds, `htm` and `htu` naming this request, `iat` within
//! the window, a `jti` not seen before, the server's current nonce when it wants nonces (§8,
//! §9) and, at a resource, `ath` = the hash of the access token presented. A good proof yields
//! the key's RFC 7638 thumbprint (`jkt`), which tokens are bound to. Pure: no I/O, the caller
//! passes the time.

use std::collections::HashMap;

use ring::digest;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::jwt_parts;
use crate::codec;

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// `invalid_dpop_proof` (§5, §7.1), with the reason.
    Invalid(String),
    /// The proof lacks the current nonce: `use_dpop_nonce` and a `DPoP-Nonce` header.
    NeedNonce,
}

/// What the proof must say about the request it came with.
pub struct Expect<'a> {
    pub method: &'a str,
    /// The URL the request was received at, without query.
    pub url: &'a str,
    /// At a resource: the access token presented (`ath` must be its hash).
    pub access_token: Option<&'a str>,
    pub now: i64,
    /// Largest accepted `|iat − now|`, in seconds.
    pub window: i64,
    pub require_nonce: bool,
}

/// The server's DPoP memory: its nonce and the `jti`s of recent proofs.
#[derive(Default)]
pub struct DpopState {
    nonce: String,
    /// `jti` → `iat` of accepted proofs; entries older than twice the window are dropped.
    seen: HashMap<String, i64>,
}

impl DpopState {
    pub fn new() -> DpopState {
        DpopState {
            nonce: format!("n-{}", codec::random_token(16)),
            seen: HashMap::new(),
        }
    }

    /// The nonce proofs must carry now.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// A new nonce; proofs with the old one get `use_dpop_nonce` from now on.
    pub fn rotate(&mut self) {
        self.nonce = format!("n-{}", codec::random_token(16));
    }

    /// Checks the `DPoP` header values of one request. `Ok(jkt)` when the one proof is good.
    pub fn check(&mut self, headers: &[&str], e: &Expect<'_>) -> Result<String, ProofError> {
        let bad = |why: &str| Err(ProofError::Invalid(why.to_string()));
        let proof = match headers {
            [one] => *one,
            [] => return bad("no DPoP proof"),
            _ => return bad("more than one DPoP header"),
        };
        let Some(parts) = jwt_parts(proof) else {
            return bad("not a JWS of three base64url JSON parts");
        };
        let text =
            |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        if text(&parts.header, "typ").as_deref() != Some("dpop+jwt") {
            return bad("typ is not dpop+jwt");
        }
        if text(&parts.header, "alg").as_deref() != Some("ES256") {
            return bad("alg is not ES256 (none, symmetric and other algorithms are refused)");
        }
        let Some(Value::Object(jwk)) = parts.header.get("jwk") else {
            return bad("no jwk header");
        };
        if jwk.contains_key("d") {
            return bad("the jwk holds a private key");
        }
        let Some((point, jkt)) = p256_key(jwk) else {
            return bad("the jwk is not an EC P-256 public key");
        };
        if UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(parts.signing_input.as_bytes(), &parts.signature)
            .is_err()
        {
            return bad("the signature does not verify with the jwk");
        }
        let c = &parts.claims;
        if text(c, "htm").as_deref() != Some(e.method) {
            return bad("htm does not match the request method");
        }
        match text(c, "htu") {
            Some(htu) if same_uri(&htu, e.url) => {}
            _ => return bad("htu does not match the request URL"),
        }
        let Some(iat) = c.get("iat").and_then(Value::as_i64) else {
            return bad("iat is not a number");
        };
        if (iat - e.now).abs() > e.window {
            return bad("iat is outside the accepted window");
        }
        let Some(jti) = text(c, "jti").filter(|j| !j.is_empty() && j.len() <= 256) else {
            return bad("no usable jti");
        };
        match (c.get("ath"), e.access_token) {
            (_, Some(token)) => {
                let want = codec::b64url_encode(
                    digest::digest(&digest::SHA256, token.as_bytes()).as_ref(),
                );
                if text(c, "ath").as_deref() != Some(want.as_str()) {
                    return bad("ath is not the hash of the access token presented");
                }
            }
            (Some(_), None) => return bad("ath on a request without an access token"),
            (None, None) => {}
        }
        if e.require_nonce && text(c, "nonce").as_deref() != Some(self.nonce.as_str()) {
            return Err(ProofError::NeedNonce);
        }
        let horizon = e.now - 2 * e.window;
        self.seen.retain(|_, t| *t >= horizon);
        if self.seen.contains_key(&jti) {
            return bad("jti already used (a replayed proof)");
        }
        self.seen.insert(jti, iat);
        Ok(jkt)
    }
}

/// The point (`04 ‖ x ‖ y`) and RFC 7638 thumbprint of an EC P-256 JWK.
fn p256_key(jwk: &Map<String, Value>) -> Option<(Vec<u8>, String)> {
    let field = |k: &str| jwk.get(k).and_then(Value::as_str);
    if field("kty")? != "EC" || field("crv")? != "P-256" {
        return None;
    }
    let (x, y) = (field("x")?, field("y")?);
    let (xb, yb) = (codec::b64_decode(x)?, codec::b64_decode(y)?);
    if xb.len() != 32 || yb.len() != 32 {
        return None;
    }
    let mut point = vec![4u8];
    point.extend(xb);
    point.extend(yb);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let jkt = codec::b64url_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref());
    Some((point, jkt))
}

/// §4.3 point 9: the same URI ignoring query and fragment; scheme and host compare without
/// case (RFC 3986 §6.2.2.1).
fn same_uri(htu: &str, url: &str) -> bool {
    let strip = |u: &str| u.split(['?', '#']).next().unwrap_or("").to_string();
    let (a, b) = (strip(htu), strip(url));
    let split = |u: &str| -> (String, String) {
        match u.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (
                    format!("{scheme}://{authority}").to_ascii_lowercase(),
                    path.to_string(),
                )
            }
            None => (String::new(), u.to_string()),
        }
    };
    split(&a) == split(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_compare_without_query_and_with_case_insensitive_host() {
        assert!(same_uri(
            "http://127.0.0.1:5/token",
            "http://127.0.0.1:5/token"
        ));
        assert!(same_uri("HTTP://Example.COM/a?x#y", "http://example.com/a"));
        assert!(!same_uri("http://example.com/A", "http://example.com/a"));
        assert!(!same_uri(
            "http://example.com/token",
            "http://example.com/revoke"
        ));
        assert!(!same_uri("https://example.com/a", "http://example.com/a"));
    }

    #[test]
    fn garbage_and_missing_proofs_are_invalid() {
        let mut s = DpopState::new();
        let e = Expect {
            method: "POST",
            url: "http://h/token",
            access_token: None,
            now: 1_800_000_000,
            window: 60,
            require_nonce: false,
        };
        for headers in [&[][..], &["a.b.c"], &["x", "y"]] {
            assert!(matches!(s.check(headers, &e), Err(ProofError::Invalid(_))));
        }
    }
}
