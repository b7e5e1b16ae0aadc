//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9) as the test
//! server checks it, against the public keys registered for the client (what a factory
//! registers from `devauth keygen`): the assertion type, an ES256 or RS256 signature by a
//! registered key (chosen by `kid` when the assertion names one), `iss` = `sub` = the client,
//! an `aud` naming this server, `exp` in the future and at most an hour after `iat`, and a
//! `jti` never seen before. Pure: the caller passes the time and the `jti` memory.

use std::collections::HashSet;

use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::Value;

use super::jwt_parts;
use crate::codec;

/// RFC 7523 §2.2.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock difference tolerated on `iat` and `exp`.
const LEEWAY: i64 = 60;
/// Longest accepted `exp − iat`.
const MAX_LIFETIME: i64 = 3600;

/// What an assertion is checked against.
pub struct Expect<'a> {
    /// Registered public JWKs (EC P-256 or RSA), each with an optional `kid`.
    pub keys: &'a [Value],
    /// `aud` values naming this server: its issuer, token endpoint, the endpoint called.
    pub audiences: &'a [String],
    pub now: i64,
}

/// The client an assertion authenticates, or why it does not.
pub fn verify(
    assertion_type: Option<&str>,
    assertion: &str,
    e: &Expect<'_>,
    seen: &mut HashSet<String>,
) -> Result<String, String> {
    if assertion_type != Some(CLIENT_ASSERTION_TYPE) {
        return Err(format!(
            "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        ));
    }
    let parts = jwt_parts(assertion).ok_or("the assertion is not a JWT")?;
    let text = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).map(str::to_string)
    };
    let alg = text(&parts.header, "alg").unwrap_or_default();
    let kid = text(&parts.header, "kid");
    let candidates = e.keys.iter().filter(|k| match &kid {
        Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
        None => true,
    });
    let mut verified = false;
    for key in candidates {
        let ok = match alg.as_str() {
            "ES256" => ec_point(key).is_some_and(|p| {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &p)
                    .verify(parts.signing_input.as_bytes(), &parts.signature)
                    .is_ok()
            }),
            "RS256" => rsa_parts(key).is_some_and(|(n, e)| {
                RsaPublicKeyComponents { n, e }
                    .verify(
                        &RSA_PKCS1_2048_8192_SHA256,
                        parts.signing_input.as_bytes(),
                        &parts.signature,
                    )
                    .is_ok()
            }),
            _ => return Err(format!("alg {alg:?} is not ES256 or RS256")),
        };
        if ok {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err("the assertion is not signed by a key registered for the client".into());
    }
    let c = &parts.claims;
    let iss = text(c, "iss").filter(|i| !i.is_empty()).ok_or("no iss")?;
    if text(c, "sub").as_deref() != Some(iss.as_str()) {
        return Err("sub must equal iss (the client_id)".into());
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => e.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| e.audiences.iter().any(|w| w == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("aud must be one of {}", e.audiences.join(", ")));
    }
    let exp = c.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
    let iat = c.get("iat").and_then(Value::as_i64).unwrap_or(e.now);
    if exp + LEEWAY < e.now {
        return Err("the assertion has expired".into());
    }
    if iat > e.now + LEEWAY || exp - iat > MAX_LIFETIME || exp <= iat {
        return Err("iat/exp are not a short lifetime around now".into());
    }
    let jti = text(c, "jti").filter(|j| !j.is_empty()).ok_or("no jti")?;
    if !seen.insert(jti) {
        return Err("jti already used (a replayed assertion)".into());
    }
    Ok(iss)
}

fn ec_point(jwk: &Value) -> Option<Vec<u8>> {
    if jwk.get("kty")? != "EC" || jwk.get("crv")? != "P-256" {
        return None;
    }
    let x = codec::b64_decode(jwk.get("x")?.as_str()?)?;
    let y = codec::b64_decode(jwk.get("y")?.as_str()?)?;
    (x.len() == 32 && y.len() == 32).then(|| [&[4u8][..], &x, &y].concat())
}

fn rsa_parts(jwk: &Value) -> Option<(Vec<u8>, Vec<u8>)> {
    if jwk.get("kty")? != "RSA" {
        return None;
    }
    Some((
        codec::b64_decode(jwk.get("n")?.as_str()?)?,
        codec::b64_decode(jwk.get("e")?.as_str()?)?,
    ))
}
