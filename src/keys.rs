//! The device's own keys, as the commands and the agent use them: the DPoP proof key kept
//! beside the token file (RFC 9449), and the client key of `client_auth = "private_key_jwt"`
//! (RFC 7523 §2.2) that `devauth keygen` makes and the factory registers.
//!
//! This module owns when a key is made, loaded or forgotten, and the messages about it. The
//! files are `store::keyfile`'s, the signing and the proofs `oauth::jws`'s and `oauth::dpop`'s.
//! Keys are software keys (ring) in 0600 files for now; a TPM key plugs in as another
//! [`JwsSigner`].
//!
//! [`dpop_proof`] is the one way to make a proof for another program's request: `devauth token
//! --dpop-proof` and the agent's socket both call it.

use crate::config::{ClientKeyConfig, Config};
use crate::error::Error;
use crate::oauth::dpop::Dpop;
use crate::oauth::jws::{Jwk, JwsSigner, SoftwareKey};
use crate::oauth::jwt::ClientAssertion;
use crate::secret::Secret;
use crate::store::keyfile::KeyFile;
use crate::store::{StoreError, TokenStore};
use std::sync::Arc;

/// The assertion signer of `client_auth = "private_key_jwt"`; `None` with any other method.
pub fn client_assertion(config: &Config) -> Result<Option<Arc<ClientAssertion>>, Error> {
    let Some(ck) = &config.provider.client_key else {
        return Ok(None);
    };
    let key = client_key(ck)?;
    let key_id = ck
        .key_id
        .clone()
        .unwrap_or_else(|| key.public_jwk().thumbprint());
    Ok(Some(Arc::new(ClientAssertion {
        key,
        client_id: config.provider.client_id.clone(),
        key_id,
        audience: ck.audience.clone(),
    })))
}

/// The client key in `client_key_file`. A missing file says how to make one; a file readable
/// by others draws a warning (it is the device's identity at the provider).
fn client_key(ck: &ClientKeyConfig) -> Result<Arc<dyn JwsSigner>, Error> {
    let file = KeyFile::at(&ck.file);
    let Some(pem) = file.load()? else {
        return Err(Error::Setup(format!(
            "provider.client_key_file {}: no key; make one with `devauth keygen`",
            ck.file.display()
        )));
    };
    if let Some(mode) = file.exposed_mode() {
        eprintln!(
            "devauth: warning: the client key {} is readable by others (mode {mode:o}); chmod 600 it",
            ck.file.display()
        );
    }
    signer(&pem).map_err(|e| {
        Error::Setup(format!(
            "provider.client_key_file {}: {e}",
            ck.file.display()
        ))
    })
}

/// The one place a stored key becomes a signer. A key file holds a PEM private key (a ring
/// software key); a TPM-held key (its wrapped blob in the file, the chip signing) is the other
/// kind a [`JwsSigner`] can be.
fn signer(pem: &Secret) -> Result<Arc<dyn JwsSigner>, String> {
    Ok(Arc::new(SoftwareKey::from_pem(pem)?))
}

/// The one place a new key is made (`keygen`, a first DPoP pairing): an ES256 key and the PEM
/// to keep it in.
fn new_key() -> Result<(Arc<dyn JwsSigner>, Secret), Error> {
    let (key, pem) = SoftwareKey::generate_es256().map_err(Error::Io)?;
    Ok((Arc::new(key), pem))
}

/// `devauth keygen`: makes a new ES256 client key in `client_key_file` (never replacing one)
/// and returns its public JWK. The private key never leaves the file.
pub fn generate_client_key(config: &Config) -> Result<PublicKey, Error> {
    let ck = keygen_target(config)?;
    let file = KeyFile::at(&ck.file);
    if file.load()?.is_some() {
        return Err(Error::Setup(format!(
            "provider.client_key_file {} already holds a key (`keygen --public` prints it)",
            ck.file.display()
        )));
    }
    let (key, pem) = new_key()?;
    file.create(&pem)?;
    Ok(public_key(ck, key.as_ref()))
}

/// `devauth keygen --public`: the public JWK of the key in `client_key_file`.
pub fn client_public_key(config: &Config) -> Result<PublicKey, Error> {
    let ck = keygen_target(config)?;
    let key = client_key(ck)?;
    Ok(public_key(ck, key.as_ref()))
}

fn keygen_target(config: &Config) -> Result<&ClientKeyConfig, Error> {
    config.provider.client_key.as_ref().ok_or_else(|| {
        Error::Setup("keygen needs client_auth = \"private_key_jwt\" and client_key_file".into())
    })
}

/// A client's public key as the provider registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub jwk: Jwk,
    pub alg: &'static str,
    /// The `kid` the assertions carry.
    pub kid: String,
}

impl PublicKey {
    /// The JWK with `kid`, `alg` and `use` (RFC 7517 §4), one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut jwk = self.jwk.to_json();
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), self.kid.clone().into());
            map.insert("alg".into(), self.alg.into());
            map.insert("use".into(), "sig".into());
        }
        jwk
    }
}

fn public_key(ck: &ClientKeyConfig, key: &dyn JwsSigner) -> PublicKey {
    let jwk = key.public_jwk();
    PublicKey {
        kid: ck.key_id.clone().unwrap_or_else(|| jwk.thumbprint()),
        alg: key.alg().name(),
        jwk,
    }
}

/// The DPoP key kept beside `store`, when there is one.
pub fn dpop_key(store: &TokenStore) -> Result<Option<Arc<Dpop>>, Error> {
    let file = KeyFile::dpop_for(store);
    let Some(pem) = file.load()? else {
        return Ok(None);
    };
    let bad = |detail: String| {
        Error::Store(StoreError::Corrupt {
            path: file.path().to_path_buf(),
            detail,
        })
    };
    let dpop = Dpop::new(signer(&pem).map_err(bad)?).map_err(bad)?;
    Ok(Some(Arc::new(dpop)))
}

/// The DPoP key for a pairing: the one kept beside `store`, else a new one, written (0600,
/// durably) before any proof is made with it.
pub fn dpop_key_for_pairing(store: &TokenStore) -> Result<Arc<Dpop>, Error> {
    if let Some(dpop) = dpop_key(store)? {
        return Ok(dpop);
    }
    let (key, pem) = new_key()?;
    KeyFile::dpop_for(store).create(&pem)?;
    Dpop::new(key).map(Arc::new).map_err(Error::Io)
}

/// Forgets the DPoP key of `store` (unpairing: the next owner's tokens get a new key).
pub fn forget_dpop_key(store: &TokenStore) -> Result<bool, Error> {
    Ok(KeyFile::dpop_for(store).delete()?)
}

/// A DPoP proof for another program's request `method url` with the access token of
/// `tokens` (its `ath`, RFC 9449 §4.2) — what `devauth token --dpop-proof` prints and the agent
/// serves. `nonce`: the resource server's `DPoP-Nonce`, when it asked for one (§9); otherwise
/// the last nonce that server gave this process, if any. Tokens that are not DPoP-bound need no
/// proof: that is an error, so a caller never sends a useless one.
pub fn dpop_proof(
    dpop: &Dpop,
    access_token: &Secret,
    token_type: &str,
    method: &str,
    url: &str,
    nonce: Option<&str>,
) -> Result<Secret, Error> {
    if token_type != "DPoP" {
        return Err(Error::Setup(format!(
            "the access token is a {token_type} token, not DPoP-bound: it needs no proof"
        )));
    }
    if nonce.is_some_and(|n| !crate::oauth::dpop::valid_nonce(n)) {
        return Err(Error::Usage(crate::cli::UsageError(
            "--dpop-nonce: not a nonce (RFC 9449 §8.1: printable ASCII without quotes or \
             backslashes)"
                .into(),
        )));
    }
    let nonce = nonce.map(str::to_string).or_else(|| dpop.nonce_for(url));
    dpop.proof_with_nonce(method, url, Some(access_token), nonce.as_deref())
        .map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pairing_makes_the_dpop_key_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens.json"));
        assert!(dpop_key(&store).unwrap().is_none());
        let first = dpop_key_for_pairing(&store).unwrap();
        let again = dpop_key_for_pairing(&store).unwrap();
        assert_eq!(first.thumbprint(), again.thumbprint());
        assert_eq!(
            dpop_key(&store).unwrap().unwrap().thumbprint(),
            first.thumbprint()
        );
        assert!(forget_dpop_key(&store).unwrap());
        let fresh = dpop_key_for_pairing(&store).unwrap();
        assert_ne!(fresh.thumbprint(), first.thumbprint());
    }

    #[test]
    fn a_broken_dpop_key_is_a_store_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens.json"));
        std::fs::write(dir.path().join("tokens.json.dpop-key"), "garbage").unwrap();
        let e = dpop_key(&store).unwrap_err();
        assert_eq!(e.exit_code(), 9);
        assert!(e.to_string().contains("tokens.json.dpop-key"), "{e}");
    }
}
