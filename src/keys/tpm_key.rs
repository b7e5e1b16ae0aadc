//! A key the TPM holds, as a [`JwsSigner`]: ES256 (RFC 7518 §3.4) signatures made by TPM2_Sign
//! over the SHA-256 of the JWS signing input. The private key never leaves the TPM; what devauth
//! keeps is the blob only that TPM can load (`store::keyfile`), and the public point read from
//! it. Each signature is one TPM round (CreatePrimary, Load, Sign, flushes: `crate::tpm`).

use crate::oauth::jws::{Alg, Jwk, JwsSigner};
use crate::tpm::{SigningKey, Tpm, TpmError};

/// An ECC P-256 key in the TPM at one path.
#[derive(Debug)]
pub struct TpmKey {
    tpm: Tpm,
    key: SigningKey,
    /// What to do when this TPM cannot load the key (it is another TPM's): said in the error.
    when_lost: &'static str,
}

/// What to do about a DPoP key another TPM made: a new pairing makes a new key.
pub const DPOP_KEY_LOST: &str = "pair again (`devauth pair`): it makes a new key";

impl TpmKey {
    pub fn new(tpm: Tpm, key: SigningKey) -> TpmKey {
        TpmKey {
            tpm,
            key,
            when_lost: DPOP_KEY_LOST,
        }
    }

    /// A key stored earlier as `blob`: its shape is checked, the TPM is not asked.
    pub fn from_blob(tpm: Tpm, blob: Vec<u8>) -> Result<TpmKey, String> {
        let key = SigningKey::from_blob(blob).map_err(|e| e.to_string())?;
        Ok(TpmKey::new(tpm, key))
    }

    /// The same key, with `advice` said when the TPM cannot load it.
    pub fn when_lost(self, advice: &'static str) -> TpmKey {
        TpmKey {
            when_lost: advice,
            ..self
        }
    }

    /// Whether this TPM can use the key (see [`Tpm::check_key`]).
    pub fn check(&self) -> Result<(), TpmError> {
        self.tpm.check_key(&self.key)
    }
}

/// What a failed TPM signature means for the person (`when_lost`: what to do about a key
/// this TPM cannot load), never key material.
pub fn sign_error(e: &TpmError, when_lost: &str) -> String {
    if e.is_foreign() {
        format!(
            "the key was made by another TPM (storage moved to another board) or before this \
             TPM was cleared; {when_lost}: {e}"
        )
    } else {
        format!("the TPM could not sign: {e}")
    }
}

impl JwsSigner for TpmKey {
    fn alg(&self) -> Alg {
        Alg::Es256
    }

    fn public_jwk(&self) -> Jwk {
        let (x, y) = self.key.public_xy();
        Jwk::Ec {
            x: crate::oauth::jws::base64url(x),
            y: crate::oauth::jws::base64url(y),
        }
    }

    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, String> {
        let digest = ring::digest::digest(&ring::digest::SHA256, signing_input);
        let digest: [u8; 32] = digest
            .as_ref()
            .try_into()
            .map_err(|_| "SHA-256 gave no 32-byte digest".to_string())?;
        self.tpm
            .sign(&self.key, &digest)
            .map_err(|e| sign_error(&e, self.when_lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::jws::{JsonObject, header, sign_compact};
    use devauth_testserver::swtpm::{self, Swtpm};
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn a_tpm_key_signs_jws_its_jwk_verifies_only_on_its_tpm() {
        if !swtpm::usable_or_skip("a_tpm_key_signs_jws_its_jwk_verifies_only_on_its_tpm") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sim = Swtpm::start(&dir.path().join("a")).unwrap();
        let tpm = Tpm::new(sim.socket());
        let made = tpm.create_signing_key().unwrap();
        let key = TpmKey::from_blob(tpm.clone(), made.blob().to_vec()).unwrap();
        key.check().unwrap();
        let mut claims = JsonObject::default();
        claims.str("jti", "1");
        let jws = sign_compact(&key, &header(&key, "JWT"), &claims).unwrap();
        let parts: Vec<&str> = jws.expose().split('.').collect();
        let signature = crate::net::wire::base64url_decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64, "JWS ES256 is r||s");
        let Jwk::Ec { x, y } = key.public_jwk() else {
            panic!("not EC")
        };
        let mut point = vec![4u8];
        point.extend(crate::net::wire::base64url_decode(&x).unwrap());
        point.extend(crate::net::wire::base64url_decode(&y).unwrap());
        let input = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &signature)
            .expect("the JWK verifies the TPM's signature");

        let other = Swtpm::start(&dir.path().join("b")).unwrap();
        let moved = TpmKey::from_blob(Tpm::new(other.socket()), made.blob().to_vec()).unwrap();
        assert!(moved.check().unwrap_err().is_foreign());
        let e = moved.sign(b"a.b").unwrap_err();
        assert!(e.contains("made by another TPM"), "{e}");
        assert!(e.contains("pair again"), "{e}");
        let client = TpmKey::from_blob(Tpm::new(other.socket()), made.blob().to_vec())
            .unwrap()
            .when_lost("run keygen");
        assert!(client.sign(b"a.b").unwrap_err().contains("; run keygen: "));
    }

    #[test]
    fn a_blob_that_is_no_signing_key_is_refused_without_the_tpm() {
        let e = TpmKey::from_blob(Tpm::new("/nonexistent"), vec![0, 2, 1]).unwrap_err();
        assert!(e.starts_with("TPM object:"), "{e}");
    }
}
