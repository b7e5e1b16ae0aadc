//! The device's own keys, as the commands and the agent use them: the DPoP proof key kept
//! beside the token file (RFC 9449), and the client key of `client_auth = "private_key_jwt"`
//! (RFC 7523 §2.2) that `devauth keygen` makes and the factory registers.
//!
//! This module owns when a key is made, loaded or forgotten, where it lives, and the messages
//! about it. The files are `store::keyfile`'s, the signing and the proofs `oauth::jws`'s and
//! `oauth::dpop`'s. A key is a software key (ring) or a key the TPM holds (`tpm_key.rs`, a
//! [`JwsSigner`] whose signatures are TPM2_Sign's):
//!
//! - the DPoP key of a pairing whose tokens the TPM seals (`seal = "tpm2"`, or `auto` finding a
//!   TPM) is made in the TPM; otherwise it is a software key sealed with the tokens (the kernel's
//!   trusted keys), or a 0600 file when nothing seals them (`store::keyfile` keeps it so);
//! - the client key is a PEM file, or a key in the TPM with `client_key_file = "tpm:PATH"`
//!   (`devauth keygen` makes it there; PATH keeps its blob).
//!
//! [`dpop_proof`] is the one way to make a proof for another program's request: `devauth token
//! --dpop-proof` and the agent's socket both call it.

mod tpm_key;

use crate::config::{ClientKeyConfig, Config};
use crate::error::Error;
use crate::oauth::dpop::Dpop;
use crate::oauth::jws::{Jwk, JwsSigner, SoftwareKey};
use crate::oauth::jwt::ClientAssertion;
use crate::secret::Secret;
use crate::store::keyfile::{KeyFile, KeyProtection, StoredKey};
use crate::store::{Protection, Sealer, StoreError, TokenStore};
use crate::tpm::Tpm;
use std::path::Path;
use std::sync::Arc;
pub use tpm_key::TpmKey;

/// The assertion signer of `client_auth = "private_key_jwt"`; `None` with any other method.
pub fn client_assertion(config: &Config) -> Result<Option<Arc<ClientAssertion>>, Error> {
    let Some(ck) = &config.provider.client_key else {
        return Ok(None);
    };
    let key = client_key(ck, &config.storage.sealing.tpm_device)?;
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

/// The client key in `client_key_file` (its TPM at `tpm`). A missing file says how to make
/// one; a software key readable by others draws a warning (it is the device's identity at the
/// provider); with `tpm:` the file must hold a TPM key, never a software one.
fn client_key(ck: &ClientKeyConfig, tpm: &Path) -> Result<Arc<dyn JwsSigner>, Error> {
    let file = KeyFile::at(&ck.file);
    let setup = |e: String| {
        Error::Setup(format!(
            "provider.client_key_file {}: {e}",
            ck.file.display()
        ))
    };
    let Some(key) = file.load()? else {
        return Err(setup("no key; make one with `devauth keygen`".into()));
    };
    if let StoredKey::Software(_) = key {
        if ck.tpm {
            return Err(setup(
                "holds a software key, but \"tpm:\" asks for a key in the TPM (delete it and \
                 run `devauth keygen`, then register the new public key)"
                    .into(),
            ));
        }
        if let Some(mode) = file.exposed_mode() {
            eprintln!(
                "devauth: warning: the client key {} is readable by others (mode {mode:o}); chmod 600 it",
                ck.file.display()
            );
        }
    }
    signer(key, tpm, CLIENT_KEY_LOST).map_err(setup)
}

/// The one place a stored key becomes a signer: a PEM private key (a ring software key), or
/// the blob of a key the TPM at `tpm` holds (the TPM signs; `when_lost`: what to do when it
/// cannot load the key).
fn signer(
    key: StoredKey,
    tpm: &Path,
    when_lost: &'static str,
) -> Result<Arc<dyn JwsSigner>, String> {
    Ok(match key {
        StoredKey::Software(pem) => Arc::new(SoftwareKey::from_pem(&pem)?),
        StoredKey::Tpm(blob) => {
            Arc::new(TpmKey::from_blob(Tpm::new(tpm), blob)?.when_lost(when_lost))
        }
    })
}

/// What to do about a client key another TPM made.
const CLIENT_KEY_LOST: &str = "a new client key is needed: delete client_key_file, run `devauth \
                               keygen` and register the new public key";

/// The one place a new key is made (`keygen`, a first DPoP pairing): an ES256 key and the PEM
/// to keep it in.
fn new_key() -> Result<(Arc<dyn JwsSigner>, Secret), Error> {
    let (key, pem) = SoftwareKey::generate_es256().map_err(Error::Io)?;
    Ok((Arc::new(key), pem))
}

/// `devauth keygen`: makes a new ES256 client key (never replacing one) and returns its public
/// JWK: in `client_key_file`, or with `tpm:` in the TPM, its blob in the file. The private key
/// never leaves the file, or the TPM.
pub fn generate_client_key(config: &Config) -> Result<PublicKey, Error> {
    let ck = keygen_target(config)?;
    let file = KeyFile::at(&ck.file);
    if file.protection()?.is_some() {
        return Err(Error::Setup(format!(
            "provider.client_key_file {} already holds a key (`keygen --public` prints it)",
            ck.file.display()
        )));
    }
    if ck.tpm {
        let tpm = Tpm::new(&config.storage.sealing.tpm_device);
        let made = tpm
            .create_signing_key()
            .map_err(|e| Error::Setup(format!("keygen: the TPM could not make the key: {e}")))?;
        file.create_tpm(made.blob())?;
        return Ok(public_key(ck, &TpmKey::new(tpm, made)));
    }
    let (key, pem) = new_key()?;
    file.create(&pem)?;
    Ok(public_key(ck, key.as_ref()))
}

/// `devauth keygen --public`: the public JWK of the key in `client_key_file`.
pub fn client_public_key(config: &Config) -> Result<PublicKey, Error> {
    let ck = keygen_target(config)?;
    let key = client_key(ck, &config.storage.sealing.tpm_device)?;
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
    pub fn to_json(&self) -> String {
        let mut jwk = self.jwk.to_json();
        jwk.str("kid", &self.kid)
            .str("alg", self.alg)
            .str("use", "sig");
        jwk.finish()
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

/// The DPoP key kept beside `store`, when there is one (a sealed one is unsealed here).
pub fn dpop_key(store: &TokenStore) -> Result<Option<Arc<Dpop>>, Error> {
    let file = KeyFile::dpop_for(store);
    let Some(key) = file.load()? else {
        return Ok(None);
    };
    let signer = signer(key, &store.sealing().tpm_device, tpm_key::DPOP_KEY_LOST);
    dpop_with(&file, signer).map(Some)
}

fn dpop_with(
    file: &KeyFile,
    signer: Result<Arc<dyn JwsSigner>, String>,
) -> Result<Arc<Dpop>, Error> {
    let bad = |detail: String| {
        Error::Store(StoreError::Corrupt {
            path: file.path().to_path_buf(),
            detail,
        })
    };
    Ok(Arc::new(Dpop::new(signer.map_err(bad)?).map_err(bad)?))
}

/// The DPoP key for a pairing whose store was prepared ([`TokenStore::prepare_pairing`]): the
/// one kept beside `store` (the tokens it replaces are bound to it: `pair --force` revokes them
/// with it), else a new one, written durably before any proof is made with it. A kept key this
/// device can never use (sealed or made on another board, a cleared TPM) is replaced.
///
/// A new key goes where the pairing's tokens go: into the TPM when the TPM seals them, else
/// sealed with them, else a 0600 file.
pub fn dpop_key_for_pairing(store: &TokenStore) -> Result<Arc<Dpop>, Error> {
    let file = KeyFile::dpop_for(store);
    let tpm = Tpm::new(&store.sealing().tpm_device);
    let lost = match file.load() {
        Ok(Some(StoredKey::Tpm(blob))) => {
            let key = TpmKey::from_blob(tpm.clone(), blob);
            match key.as_ref().map(TpmKey::check) {
                Ok(Ok(())) => {
                    let key = key.map(|k| Arc::new(k) as Arc<dyn JwsSigner>);
                    return dpop_with(&file, key);
                }
                Ok(Err(e)) if e.is_foreign() || e.is_missing() => e.to_string(),
                Ok(Err(e)) => {
                    return Err(Error::Io(tpm_key::sign_error(&e, tpm_key::DPOP_KEY_LOST)));
                }
                Err(e) => return dpop_with(&file, Err(e.clone())),
            }
        }
        Ok(Some(key)) => {
            return dpop_with(&file, signer(key, tpm.path(), tpm_key::DPOP_KEY_LOST));
        }
        Ok(None) => String::new(),
        Err(e) if e.needs_pairing() => e.to_string(),
        Err(e) => return Err(e.into()),
    };
    if !lost.is_empty() {
        eprintln!(
            "devauth: the DPoP key {} cannot be used on this device; a new one is made ({lost})",
            file.path().display()
        );
        file.delete()?;
    }
    if store.last_protection() == Some(Protection::Sealed(Sealer::Tpm2)) {
        match tpm.create_signing_key() {
            Ok(made) => {
                file.create_tpm(made.blob())?;
                let key: Arc<dyn JwsSigner> = Arc::new(TpmKey::new(tpm, made));
                return Dpop::new(key).map(Arc::new).map_err(Error::Io);
            }
            Err(e) => eprintln!(
                "devauth: warning: the TPM could not make the DPoP key ({e}); a software key \
                 sealed with the tokens is used instead"
            ),
        }
    }
    let (key, pem) = new_key()?;
    file.create_sealed_as_tokens(&pem)?;
    Dpop::new(key).map(Arc::new).map_err(Error::Io)
}

/// How the DPoP key of `store` is kept, when there is one (nothing is unsealed).
pub fn dpop_key_protection(store: &TokenStore) -> Option<KeyProtection> {
    KeyFile::dpop_for(store).protection().ok().flatten()
}

/// What `pair` and the agent say about the DPoP key of a pairing just stored: where it is kept
/// (a warning when nothing protects it, as for the tokens); `None` without one.
pub fn dpop_key_line(store: &TokenStore) -> Option<String> {
    let file = KeyFile::dpop_for(store);
    match file.protection().ok().flatten()? {
        p @ KeyProtection::Clear => Some(format!(
            "warning: the DPoP key {} is {}",
            file.path().display(),
            p.describe()
        )),
        p => Some(format!("DPoP key {}", p.describe())),
    }
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
    fn a_tpm_sealed_pairing_makes_its_dpop_key_in_the_tpm_and_replaces_a_foreign_one() {
        use devauth_testserver::swtpm::{self, Swtpm};
        if !swtpm::usable_or_skip(
            "a_tpm_sealed_pairing_makes_its_dpop_key_in_the_tpm_and_replaces_a_foreign_one",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let a = Swtpm::start(&dir.path().join("a")).unwrap();
        let store = TokenStore::with_sealing(&path, crate::store::Sealing::tpm2(a.socket()));
        let _prepared = store.prepare_pairing().unwrap();
        let first = dpop_key_for_pairing(&store).unwrap();
        assert_eq!(dpop_key_protection(&store), Some(KeyProtection::Tpm));
        assert!(dpop_key_line(&store).unwrap().contains("held by the TPM"));
        // Another process finds the same key and signs with the TPM.
        let again = TokenStore::with_sealing(&path, crate::store::Sealing::tpm2(a.socket()));
        let loaded = dpop_key(&again).unwrap().unwrap();
        assert_eq!(loaded.thumbprint(), first.thumbprint());
        loaded
            .proof("POST", "https://as.example/token", None)
            .unwrap();
        // A pairing on another TPM: the key is of no use there and is replaced.
        let b = Swtpm::start(&dir.path().join("b")).unwrap();
        let moved = TokenStore::with_sealing(&path, crate::store::Sealing::tpm2(b.socket()));
        let e = dpop_key(&moved)
            .unwrap()
            .unwrap()
            .proof("POST", "https://as.example/t", None);
        assert!(e.unwrap_err().contains("made by another TPM"));
        let _prepared = moved.prepare_pairing().unwrap();
        let fresh = dpop_key_for_pairing(&moved).unwrap();
        assert_ne!(fresh.thumbprint(), first.thumbprint());
        fresh
            .proof("POST", "https://as.example/token", None)
            .unwrap();
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
