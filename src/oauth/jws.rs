//! JSON Web Signatures as devauth makes them (RFC 7515 compact serialization), the keys that sign
//! them — RS256 (RFC 7518 §3.3) and ES256 (§3.4) — their public JWKs (RFC 7517 / RFC 7518 §6)
//! and JWK thumbprints (RFC 7638). JWT-bearer and client assertions (RFC 7523, `jwt`) and DPoP
//! proofs (RFC 9449, `dpop`) are all signed through here.
//!
//! A key is anything that implements [`JwsSigner`]: the software key here (ring: read from a
//! PEM file, or generated on the device), or a key that never leaves a TPM (the chip signs).
//! This module owns reading and writing private keys as PEM (PKCS#8; PKCS#1 for RSA). It never
//! shows key bytes: errors say what is wrong with a key, never its text.

use crate::secret::Secret;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};

/// The JWS algorithms devauth signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256; the signature is r‖s, 64 bytes (RFC 7518 §3.4).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
}

/// Something that signs JWS input with a private key it may never show (a TPM key, a ring key).
pub trait JwsSigner: Send + Sync {
    fn alg(&self) -> Alg;
    /// The public half, as sent in a DPoP proof's `jwk` header and registered with a provider.
    fn public_jwk(&self) -> Jwk;
    /// The signature over `signing_input` (`base64url(header) "." base64url(claims)`), in the
    /// JWS form of [`alg`](Self::alg). The error says what failed, never key material.
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, String>;
}

/// A public key as a JWK, with only the members RFC 7638 §3.2 requires (values base64url).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwk {
    /// `kty` EC, `crv` P-256: the point's coordinates, 32 bytes each.
    Ec { x: String, y: String },
    /// `kty` RSA: modulus and public exponent, big-endian without leading zeros.
    Rsa { n: String, e: String },
}

impl Jwk {
    /// From an uncompressed SEC1 P-256 point (`04 ‖ x ‖ y`, 65 bytes), as ring and TPMs give it.
    pub fn from_p256_point(point: &[u8]) -> Option<Jwk> {
        match point {
            [4, rest @ ..] if rest.len() == 64 => {
                let (x, y) = rest.split_at(32);
                Some(Jwk::Ec {
                    x: base64url(x),
                    y: base64url(y),
                })
            }
            _ => None,
        }
    }

    /// The required members in lexicographic order (RFC 7638 §3.3).
    fn members(&self) -> Vec<(&'static str, &str)> {
        match self {
            Jwk::Ec { x, y } => vec![("crv", "P-256"), ("kty", "EC"), ("x", x), ("y", y)],
            Jwk::Rsa { n, e } => vec![("e", e), ("kty", "RSA"), ("n", n)],
        }
    }

    /// The JWK as a JSON object: the required members, sorted, no whitespace.
    pub fn to_json(&self) -> JsonObject {
        let mut json = JsonObject::default();
        for (k, v) in self.members() {
            json.str(k, v);
        }
        json
    }

    /// RFC 7638 thumbprint: base64url(SHA-256) of the required members, sorted, no whitespace —
    /// exactly [`to_json`](Self::to_json) (every member value is base64url or a fixed name, so
    /// nothing is escaped).
    pub fn thumbprint(&self) -> String {
        let canonical = self.to_json().finish();
        base64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

/// A compact JSON object written member by member, in the order written: JWS headers and
/// claims and the JWKs printed, without building a serde map. Member names are the caller's
/// constants (not escaped); string values are escaped by serde_json.
#[derive(Clone, Debug, Default)]
pub struct JsonObject {
    text: String,
}

impl JsonObject {
    fn name(&mut self, name: &str) -> &mut JsonObject {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        self.text.push('"');
        self.text.push_str(name);
        self.text.push_str("\":");
        self
    }

    pub fn str(&mut self, name: &str, value: &str) -> &mut JsonObject {
        let value = crate::net::wire::json_string(value);
        self.name(name).text.push_str(&value);
        self
    }

    pub fn int(&mut self, name: &str, value: i64) -> &mut JsonObject {
        let value = value.to_string();
        self.name(name).text.push_str(&value);
        self
    }

    /// A member whose value is another object.
    pub fn object(&mut self, name: &str, value: &JsonObject) -> &mut JsonObject {
        let value = value.finish();
        self.name(name).text.push_str(&value);
        self
    }

    /// The object's text.
    pub fn finish(&self) -> String {
        if self.text.is_empty() {
            return "{}".into();
        }
        format!("{}}}", self.text)
    }
}

/// A private key held in memory by ring: read from a PEM file, or made on the device.
pub struct SoftwareKey {
    key: KeyPairKind,
    rng: SystemRandom,
}

enum KeyPairKind {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    /// A new P-256 key from the system's randomness, and its PKCS#8 PEM to keep.
    pub fn generate_es256() -> Result<(SoftwareKey, Secret), String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "no randomness available to make a key".to_string())?;
        let pem = Secret::new(pem_encode("PRIVATE KEY", pkcs8.as_ref()));
        let key = SoftwareKey::from_pem(&pem)?;
        Ok((key, pem))
    }

    /// A key from PEM text: PKCS#8 (`PRIVATE KEY`, EC P-256 or RSA) or PKCS#1
    /// (`RSA PRIVATE KEY`). RSA keys are 2048..=8192 bits (ring's range).
    pub fn from_pem(pem: &Secret) -> Result<SoftwareKey, String> {
        let rng = SystemRandom::new();
        let key = match pem_private_key(pem.expose())? {
            Der::Pkcs8(der) => {
                match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng) {
                    Ok(k) => KeyPairKind::Ec(k),
                    Err(ec) => match RsaKeyPair::from_pkcs8(&der) {
                        Ok(k) => KeyPairKind::Rsa(k),
                        Err(rsa) => {
                            return Err(format!(
                                "not a usable private key: neither EC P-256 ({ec}) nor RSA \
                                 2048..8192 bit ({rsa})"
                            ));
                        }
                    },
                }
            }
            Der::Pkcs1(der) => KeyPairKind::Rsa(RsaKeyPair::from_der(&der).map_err(|e| {
                format!("not a usable RSA private key ({e}); RS256 needs RSA 2048..8192 bit")
            })?),
        };
        Ok(SoftwareKey { key, rng })
    }

    /// Whether this is an RSA key (jwt-bearer at Google signs RS256 only).
    pub fn is_rsa(&self) -> bool {
        matches!(self.key, KeyPairKind::Rsa(_))
    }
}

impl JwsSigner for SoftwareKey {
    fn alg(&self) -> Alg {
        match self.key {
            KeyPairKind::Ec(_) => Alg::Es256,
            KeyPairKind::Rsa(_) => Alg::Rs256,
        }
    }

    fn public_jwk(&self) -> Jwk {
        match &self.key {
            // ring's P-256 public key is always the 65-byte uncompressed point.
            KeyPairKind::Ec(k) => {
                Jwk::from_p256_point(k.public_key().as_ref()).unwrap_or(Jwk::Ec {
                    x: String::new(),
                    y: String::new(),
                })
            }
            KeyPairKind::Rsa(k) => {
                let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                Jwk::Rsa {
                    n: base64url(strip_zeros(&parts.n)),
                    e: base64url(strip_zeros(&parts.e)),
                }
            }
        }
    }

    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, String> {
        match &self.key {
            KeyPairKind::Ec(k) => k
                .sign(&self.rng, signing_input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "signing with the EC key failed".to_string()),
            KeyPairKind::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input, &mut sig)
                    .map_err(|_| "signing with the RSA key failed".to_string())?;
                Ok(sig)
            }
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or(bytes)
}

/// A JWS header: `alg` from the signer, then `typ`; the caller adds the rest.
pub fn header(signer: &dyn JwsSigner, typ: &str) -> JsonObject {
    let mut header = JsonObject::default();
    header.str("alg", signer.alg().name()).str("typ", typ);
    header
}

/// `header` (made by [`header`] for this signer) and `claims` as a signed compact JWS.
pub fn sign_compact(
    signer: &dyn JwsSigner,
    header: &JsonObject,
    claims: &JsonObject,
) -> Result<Secret, String> {
    let signing_input = format!(
        "{}.{}",
        base64url(header.finish().as_bytes()),
        base64url(claims.finish().as_bytes())
    );
    let signature = signer.sign(signing_input.as_bytes())?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        base64url(&signature)
    )))
}

/// 16 random bytes, base64url: a `jti` (RFC 7519 §4.1.7) no two tokens share.
pub fn random_id() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness available for a jti".to_string())?;
    Ok(base64url(&bytes))
}

/// base64url without padding (RFC 7515 §2).
pub fn base64url(data: &[u8]) -> String {
    crate::net::wire::base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// The private key in DER, and which container it came in.
enum Der {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
}

/// Decodes the first `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) PEM block. The error
/// says what was wrong, never what the text was.
fn pem_private_key(text: &str) -> Result<Der, String> {
    for (label, pkcs8) in [("PRIVATE KEY", true), ("RSA PRIVATE KEY", false)] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = text.find(&begin) else {
            continue;
        };
        let rest = text.get(start + begin.len()..).unwrap_or("");
        let Some(stop) = rest.find(&end) else {
            return Err(format!("the PEM block `{label}` has no END line"));
        };
        let b64: String = rest
            .get(..stop)
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if b64.contains(':') {
            return Err("the key is encrypted (Proc-Type header); decrypt it first".into());
        }
        let der = crate::net::wire::base64url_decode(&b64)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| format!("the PEM block `{label}` is not valid base64"))?;
        return Ok(if pkcs8 {
            Der::Pkcs8(der)
        } else {
            Der::Pkcs1(der)
        });
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("the key is encrypted (ENCRYPTED PRIVATE KEY); decrypt it first".into());
    }
    if text.contains("-----BEGIN EC PRIVATE KEY-----") {
        return Err(
            "an EC key in SEC1 form (EC PRIVATE KEY); convert it to PKCS#8 with \
                    `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`"
                .into(),
        );
    }
    Err("no PEM private key found (expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into())
}

/// DER bytes as a PEM block with 64-character lines (RFC 7468 §2).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = crate::net::wire::base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::Value;

    const RSA_PEM: &str = include_str!("../../tests/fixtures/test-only-jwt-key.pem");
    const RSA_PKCS1: &str = include_str!("../../tests/fixtures/test-only-jwt-key-pkcs1.pem");
    const RSA_PUBLIC: &[u8] =
        include_bytes!("../../tests/fixtures/test-only-jwt-public-key.rsapub.der");

    fn decode(s: &str) -> Vec<u8> {
        crate::net::wire::base64url_decode(s).unwrap()
    }

    #[test]
    fn generated_es256_key_signs_what_its_jwk_verifies_and_reloads_from_its_pem() {
        let (key, pem) = SoftwareKey::generate_es256().unwrap();
        assert_eq!(key.alg(), Alg::Es256);
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let Jwk::Ec { x, y } = key.public_jwk() else {
            panic!("not EC")
        };
        let mut point = vec![4u8];
        point.extend(decode(&x));
        point.extend(decode(&y));
        assert_eq!(point.len(), 65);
        let sig = key.sign(b"a.b").unwrap();
        assert_eq!(sig.len(), 64, "JWS ES256 is r||s");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(b"a.b", &sig)
            .unwrap();
        let again = SoftwareKey::from_pem(&pem).unwrap();
        assert_eq!(again.public_jwk(), key.public_jwk());
        let other = SoftwareKey::generate_es256().unwrap().0;
        assert_ne!(
            other.public_jwk().thumbprint(),
            key.public_jwk().thumbprint()
        );
    }

    #[test]
    fn rsa_keys_give_their_modulus_and_exponent() {
        for pem in [RSA_PEM, RSA_PKCS1] {
            let key = SoftwareKey::from_pem(&Secret::new(pem)).unwrap();
            assert_eq!(key.alg(), Alg::Rs256);
            assert!(key.is_rsa());
            let Jwk::Rsa { n, e } = key.public_jwk() else {
                panic!("not RSA")
            };
            assert_eq!(e, "AQAB");
            assert_eq!(decode(&n).len(), 256);
            let sig = key.sign(b"x.y").unwrap();
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, RSA_PUBLIC)
                .verify(b"x.y", &sig)
                .unwrap();
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1: the example RSA key and its thumbprint.
        let jwk = Jwk::Rsa {
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            jwk.to_json().finish(),
            format!(
                "{{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"{}\"}}",
                match &jwk {
                    Jwk::Rsa { n, .. } => n.clone(),
                    Jwk::Ec { .. } => unreachable!(),
                }
            )
        );
    }

    #[test]
    fn compact_jws_carries_alg_and_verifies() {
        let (key, _) = SoftwareKey::generate_es256().unwrap();
        let mut claims = JsonObject::default();
        claims.int("a", 1).str("b", "q\"\\").int("c", -2);
        let jws = sign_compact(&key, &header(&key, "dpop+jwt"), &claims).unwrap();
        let parts: Vec<&str> = jws.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let h: Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(h["alg"], "ES256");
        assert_eq!(h["typ"], "dpop+jwt");
        let c: Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(c, serde_json::json!({"a": 1, "b": "q\"\\", "c": -2}));
        assert_eq!(JsonObject::default().finish(), "{}");
        assert!(!jws.expose().contains('='));
        assert!(random_id().unwrap() != random_id().unwrap());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for (text, want) in [
            ("hello", "no PEM private key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "no END line"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
                "not valid base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0g=\n-----END PRIVATE KEY-----\n",
                "not a usable private key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nQUJDREVGR0g=\n-----END RSA PRIVATE KEY-----\n",
                "not a usable RSA private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nQUJD\n-----END EC PRIVATE KEY-----\n",
                "openssl pkcs8",
            ),
        ] {
            let e = SoftwareKey::from_pem(&Secret::new(text)).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("QUJD") && !e.contains("AAAA"), "{e}");
        }
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = pem_encode("PRIVATE KEY", &[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PRIVATE KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END PRIVATE KEY-----"));
    }
}
