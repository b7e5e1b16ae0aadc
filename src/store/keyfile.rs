//! Private key files devauth writes itself: the DPoP proof key beside the token file
//! (`<token file>.dpop-key`) and the client key `devauth keygen` makes (`client_key_file`).
//!
//! They are written like the token file — a temp file created `O_EXCL` with mode 0600, fsync,
//! rename, fsync of the directory — and read bounded. What a file holds is one of:
//!
//! - a software key as PEM text (PKCS#8): a client key, or the DPoP key of a store that nothing
//!   seals (`seal = "none"`, or `auto` with no TPM and no trusted keys) — a flash dump copies it
//!   along with the tokens;
//! - a **sealed** software key (`devauth-key`, `"kind": "sealed"`): the PEM encrypted with
//!   AES-256-GCM under the token file's data key, whose sealed form the file carries like the
//!   token file does (so either file can be unsealed alone, and once per process serves both:
//!   the unsealed key is remembered per store);
//! - a key **held by the TPM** (`devauth-key`, `"kind": "tpm2"`): the blob of an ECC P-256
//!   signing key the TPM made (its private part encrypted by the TPM for itself, useless on any
//!   other TPM); the TPM signs.
//!
//! ```json
//! { "format": "devauth-key", "version": 1, "kind": "tpm2", "blob": "<base64>" }
//! { "format": "devauth-key", "version": 1, "kind": "sealed", "sealed_by": "tpm2",
//!   "sealed_key": "<base64>", "nonce": "<base64>", "ciphertext": "<base64>" }
//! ```
//!
//! The DPoP key follows its tokens: when the token file is written sealed and the key file is
//! a clear or differently sealed software key, the key file is rewritten sealed under the token
//! file's data key (an earlier version's clear key is sealed at the next write, like its token
//! file); when the token file is written plain, a sealed key is written back as PEM. A key in
//! the TPM stays there. A key file is otherwise never replaced: [`KeyFile::create`] and its
//! siblings refuse when one exists, because tokens (DPoP) or a registration at the provider
//! (client keys) are bound to the key in it.
//!
//! This module never looks inside a PEM text or a TPM blob: turning them into signers is
//! `keys`' job. Errors name the file and the field, never key bytes.

use super::format::{Bad, Fields, bad_file, corrupt};
use super::sealed::{
    Json, binary, decrypt_raw, encrypt_with_nonce, json_file, json_head, length_prefixed,
    nonce_and_ciphertext, random_nonce,
};
use super::*;
use crate::secret::SecretBytes;

/// The `"format"` of a key file that is not plain PEM.
pub const KEY_FORMAT: &str = "devauth-key";
/// The key file version this build reads and writes.
pub const KEY_VERSION: u64 = 1;
/// Largest TPM key blob kept (an ECC P-256 key's is about 220 bytes).
const MAX_TPM_BLOB: usize = 1024;
/// Largest key text sealed (a P-256 PKCS#8 key is about 240 bytes of PEM).
pub const MAX_SEALED_KEY_TEXT: usize = 16 * 1024;
/// Largest ciphertext read: that text and the GCM tag.
const MAX_SEALED_PEM: usize = MAX_SEALED_KEY_TEXT + 16;

/// One key file. A DPoP key file shares its token store's sealing settings and the data key
/// remembered for it.
#[derive(Clone, Debug)]
pub struct KeyFile {
    file: TokenStore,
    /// The token store whose DPoP key this is (its pairing decides how a new key is kept).
    tokens: Option<TokenStore>,
}

/// A key as loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredKey {
    /// A software key's PEM text (from a clear file, or decrypted from a sealed one).
    Software(Secret),
    /// A key held by the TPM: the blob only that TPM can load (not secret).
    Tpm(Vec<u8>),
}

/// How a key file keeps its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyProtection {
    /// In the TPM (TPM2_Sign); only its TPM-encrypted blob is on flash.
    Tpm,
    /// A software key encrypted under the token file's data key, sealed by this.
    Sealed(Sealer),
    /// A software key in a 0600 file.
    Clear,
}

impl KeyProtection {
    /// What `status` and `pair` say about a DPoP key.
    pub fn describe(self) -> String {
        match self {
            KeyProtection::Tpm => "held by the TPM (it signs; only its blob is on flash)".into(),
            KeyProtection::Sealed(sealer) => format!(
                "sealed with the tokens (AES-256-GCM, the key held by {})",
                sealer.holder()
            ),
            KeyProtection::Clear => "NOT protected by hardware: a 0600 file that a flash dump \
                                     copies along with the tokens"
                .into(),
        }
    }

    /// The word `status --json` gives: `tpm2`, `sealed` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            KeyProtection::Tpm => "tpm2",
            KeyProtection::Sealed(_) => "sealed",
            KeyProtection::Clear => "none",
        }
    }
}

/// A key file as read, nothing unsealed.
enum Content {
    Pem(Secret),
    Tpm(Vec<u8>),
    Sealed {
        sealer: Sealer,
        sealed_key: Vec<u8>,
        nonce: [u8; ring::aead::NONCE_LEN],
        ciphertext: Vec<u8>,
    },
}

impl Content {
    fn protection(&self) -> KeyProtection {
        match self {
            Content::Pem(_) => KeyProtection::Clear,
            Content::Tpm(_) => KeyProtection::Tpm,
            Content::Sealed { sealer, .. } => KeyProtection::Sealed(*sealer),
        }
    }
}

/// What the cipher authenticates besides a sealed key's ciphertext.
fn associated_data(sealer: Sealer) -> Vec<u8> {
    let version = KEY_VERSION.to_string();
    length_prefixed(&[KEY_FORMAT, &version, "sealed", sealer.name()])
}

/// The bytes of a key file holding `pem` sealed under `key`.
fn seal_pem(pem: &Secret, key: &DataKey) -> Result<Vec<u8>, String> {
    if pem.expose().len() > MAX_SEALED_KEY_TEXT {
        return Err(format!(
            "the key is over {MAX_SEALED_KEY_TEXT} bytes; it is kept in clear"
        ));
    }
    let nonce = random_nonce()?;
    let ciphertext = encrypt_with_nonce(
        &key.key,
        &associated_data(key.sealer),
        pem.expose().as_bytes(),
        nonce,
    )?;
    let b64 = crate::net::wire::base64_encode;
    Ok(json_file(&[
        ("format", Json::Str(KEY_FORMAT)),
        ("version", Json::Num(KEY_VERSION)),
        ("kind", Json::Str("sealed")),
        ("sealed_by", Json::Str(key.sealer.name())),
        ("sealed_key", Json::Str(&b64(&key.blob))),
        ("nonce", Json::Str(&b64(&nonce))),
        ("ciphertext", Json::Str(&b64(&ciphertext))),
    ]))
}

/// The PEM inside a sealed key, decrypted with the data key `key`.
fn decrypt_pem(
    key: &SecretBytes,
    sealer: Sealer,
    nonce: [u8; ring::aead::NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Secret, String> {
    let plain = decrypt_raw(key, &associated_data(sealer), nonce, ciphertext)
        .map(SecretBytes::new)
        .ok_or(
            "the sealed key does not decrypt with the unsealed data key: the file was changed \
             after it was written",
        )?;
    let text = std::str::from_utf8(plain.expose()).map_err(|_| "the sealed key is not PEM text")?;
    Ok(Secret::new(text))
}

/// Reads key-file bytes with a data key given directly (no hardware), as [`KeyFile::load`]
/// reads them once a sealed key's data key is unsealed (the fuzz harness). `path` only names
/// the file in errors.
pub fn open_key_bytes(
    bytes: &[u8],
    data_key: &[u8; 32],
    path: &Path,
) -> Result<StoredKey, StoreError> {
    let corrupt = |detail| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    Ok(match parse(bytes).map_err(|b| bad_file(b, path))? {
        Content::Pem(pem) => StoredKey::Software(pem),
        Content::Tpm(blob) => StoredKey::Tpm(blob),
        Content::Sealed {
            sealer,
            nonce,
            ciphertext,
            ..
        } => {
            let key = SecretBytes::new(data_key.to_vec());
            StoredKey::Software(decrypt_pem(&key, sealer, nonce, &ciphertext).map_err(corrupt)?)
        }
    })
}

/// The bytes [`KeyFile`] would write for `key`: a software key sealed under `data_key` (its
/// sealed form `sealed_key`, by `sealer`) when one is given, else in clear; a TPM key's blob.
pub fn key_bytes(
    key: &StoredKey,
    sealed: Option<(Sealer, &[u8], &[u8; 32])>,
    path: &Path,
) -> Result<Vec<u8>, StoreError> {
    Ok(match (key, sealed) {
        (StoredKey::Tpm(blob), _) => tpm_key_bytes(blob),
        (StoredKey::Software(pem), None) => pem.expose().as_bytes().to_vec(),
        (StoredKey::Software(pem), Some((sealer, sealed_key, data_key))) => {
            let key = DataKey {
                sealer,
                blob: sealed_key.to_vec(),
                key: SecretBytes::new(data_key.to_vec()),
            };
            seal_pem(pem, &key).map_err(|detail| StoreError::Invalid {
                path: path.to_path_buf(),
                detail,
            })?
        }
    })
}

fn tpm_key_bytes(blob: &[u8]) -> Vec<u8> {
    json_file(&[
        ("format", Json::Str(KEY_FORMAT)),
        ("version", Json::Num(KEY_VERSION)),
        ("kind", Json::Str("tpm2")),
        ("blob", Json::Str(&crate::net::wire::base64_encode(blob))),
    ])
}

/// Parses a key file. Details name fields, never values.
fn parse(bytes: &[u8]) -> Result<Content, Bad> {
    let trimmed = bytes.trim_ascii_start();
    if !trimmed.starts_with(b"{") {
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("not a PEM text file"))?;
        return Ok(Content::Pem(Secret::new(text)));
    }
    let obj = json_head(bytes, "key", KEY_FORMAT, KEY_VERSION)?;
    let f = Fields { obj: &obj, at: "" };
    match f.string("kind", 16)?.as_str() {
        "tpm2" => Ok(Content::Tpm(binary(&f, "blob", MAX_TPM_BLOB)?)),
        "sealed" => {
            let sealer = Sealer::from_name(&f.string("sealed_by", 16)?)
                .ok_or_else(|| corrupt("field `sealed_by` is not \"tpm2\" or \"kernel\""))?;
            let sealed_key = binary(&f, "sealed_key", crate::keyring::MAX_BLOB)?;
            let (nonce, ciphertext) = nonce_and_ciphertext(&f, MAX_SEALED_PEM)?;
            Ok(Content::Sealed {
                sealer,
                sealed_key,
                nonce,
                ciphertext,
            })
        }
        _ => Err(corrupt("field `kind` is not \"tpm2\" or \"sealed\"")),
    }
}

impl KeyFile {
    /// The DPoP key of one token store: `<token file>.dpop-key`, beside it.
    pub fn dpop_for(tokens: &TokenStore) -> KeyFile {
        let mut name = tokens.path().as_os_str().to_os_string();
        name.push(".dpop-key");
        KeyFile {
            file: TokenStore {
                path: PathBuf::from(name),
                sealing: tokens.sealing.clone(),
                state: tokens.state.clone(),
            },
            tokens: Some(tokens.clone()),
        }
    }

    /// A key file at `path` (a client key).
    pub fn at(path: impl Into<PathBuf>) -> KeyFile {
        KeyFile {
            file: TokenStore::new(path),
            tokens: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn read(&self) -> Result<Option<Content>, StoreError> {
        self.file.remove_stale_temps();
        let Some(bytes) = self.file.read_current()? else {
            return Ok(None);
        };
        parse(&bytes)
            .map(Some)
            .map_err(|b| bad_file(b, self.path()))
    }

    /// The key; `None` when there is no file. A sealed key is unsealed here: a key sealed on
    /// another device is the same "pair again" error as its tokens.
    pub fn load(&self) -> Result<Option<StoredKey>, StoreError> {
        match self.read()? {
            None => Ok(None),
            Some(Content::Tpm(blob)) => Ok(Some(StoredKey::Tpm(blob))),
            Some(content) => self
                .software_key(content)
                .map(|pem| Some(StoredKey::Software(pem))),
        }
    }

    /// How the key is kept (nothing is unsealed); `None` when there is no file.
    pub fn protection(&self) -> Result<Option<KeyProtection>, StoreError> {
        Ok(self.read()?.map(|c| c.protection()))
    }

    /// The PEM of a clear or sealed software key.
    fn software_key(&self, content: Content) -> Result<Secret, StoreError> {
        let (sealer, sealed_key, nonce, ciphertext) = match content {
            Content::Pem(pem) => return Ok(pem),
            Content::Tpm(_) => {
                return Err(self.corrupt("holds a TPM key, not a software key".into()));
            }
            Content::Sealed {
                sealer,
                sealed_key,
                nonce,
                ciphertext,
            } => (sealer, sealed_key, nonce, ciphertext),
        };
        let key = self.file.data_key(sealer, &sealed_key)?;
        decrypt_pem(&key.key, sealer, nonce, &ciphertext).map_err(|detail| self.corrupt(detail))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path().to_path_buf(),
            detail,
        }
    }

    /// Writes a new key file holding `pem` in clear (atomically, 0600). An existing file is
    /// never replaced: the error says so.
    pub fn create(&self, pem: &Secret) -> Result<(), StoreError> {
        self.create_bytes(pem.expose().as_bytes())
    }

    /// Writes a new key file for a key the TPM holds: its `blob`.
    pub fn create_tpm(&self, blob: &[u8]) -> Result<(), StoreError> {
        self.create_bytes(&tpm_key_bytes(blob))
    }

    /// Writes a new DPoP key file for `pem`, kept as the tokens of the pairing being prepared
    /// are ([`TokenStore::prepare_pairing`]): sealed under their data key, or in clear when
    /// nothing seals them. Says which.
    pub fn create_sealed_as_tokens(&self, pem: &Secret) -> Result<KeyProtection, StoreError> {
        let key = match &self.tokens {
            Some(tokens) => tokens.pairing_data_key()?,
            None => None,
        };
        match key {
            Some(key) => {
                let bytes = seal_pem(pem, &key).map_err(|detail| self.invalid(detail))?;
                self.create_bytes(&bytes)?;
                Ok(KeyProtection::Sealed(key.sealer))
            }
            None => {
                self.create(pem)?;
                Ok(KeyProtection::Clear)
            }
        }
    }

    fn invalid(&self, detail: String) -> StoreError {
        StoreError::Invalid {
            path: self.path().to_path_buf(),
            detail,
        }
    }

    fn create_bytes(&self, bytes: &[u8]) -> Result<(), StoreError> {
        if fs::symlink_metadata(self.path()).is_ok() {
            return Err(StoreError::Io {
                path: self.path().to_path_buf(),
                op: "create key file",
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a key file is already there; it is never replaced (delete it first)",
                ),
            });
        }
        self.file.prepare_plain()?.commit_bytes(bytes)
    }

    /// Rewrites a software key to match a token file just written with `key` (`None`: plain):
    /// see the module's head. A TPM key, or a key already kept that way, is left alone.
    fn follow(&self, key: Option<&Arc<DataKey>>) -> Result<(), StoreError> {
        let Some(content) = self.read()? else {
            return Ok(());
        };
        match (&content, key) {
            (Content::Tpm(_), _) | (Content::Pem(_), None) => return Ok(()),
            (
                Content::Sealed {
                    sealer, sealed_key, ..
                },
                Some(k),
            ) if *sealer == k.sealer && *sealed_key == k.blob => {
                return Ok(());
            }
            _ => {}
        }
        let pem = self.software_key(content)?;
        let bytes = match key {
            Some(k) => seal_pem(&pem, k).map_err(|detail| self.invalid(detail))?,
            None => pem.expose().as_bytes().to_vec(),
        };
        self.file.prepare_plain()?.commit_bytes(&bytes)
    }

    /// Removes the key file; `true` if there was one.
    pub fn delete(&self) -> Result<bool, StoreError> {
        self.file.delete()
    }

    /// Permission bits a key file should not have (group or other access), when it has them.
    pub fn exposed_mode(&self) -> Option<u32> {
        let mode = fs::metadata(self.path()).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
}

impl TokenStore {
    /// After the token file was written with `key` (`None`: plain): the DPoP key beside it is
    /// kept the same way. Best effort: the tokens are safely written whatever happens here, a
    /// key file left as it was still works, and the next write tries again.
    pub(super) fn key_file_follows(&self, key: Option<&Arc<DataKey>>) {
        let _ = KeyFile::dpop_for(self).follow(key);
    }

    /// The data key of the pairing being prepared (`None`: its tokens are written plain); when
    /// no write was prepared, the one the next write would use.
    fn pairing_data_key(&self) -> Result<Option<Arc<DataKey>>, StoreError> {
        {
            let state = self.seal_state();
            if state.last.is_some() {
                return Ok(state.decided.clone());
            }
        }
        self.key_for_write(Keying::Keep)
    }
}

#[cfg(test)]
mod tests;
