//! The sealed token file (`devauth-sealed-tokens` version 1): the plain token file's bytes
//! (`format.rs`) encrypted with AES-256-GCM under a per-pairing data key, with the data key
//! itself sealed by hardware and kept in the same file. One file, so the atomic replace of
//! `write.rs` covers key and tokens together.
//!
//! ```json
//! {
//!   "format": "devauth-sealed-tokens",
//!   "version": 1,
//!   "sealed_by": "tpm2",
//!   "client_id": "…",
//!   "token_endpoint": "https://…/token",
//!   "sealed_key": "<base64: the data key sealed by the TPM or the kernel>",
//!   "nonce": "<base64: 12 random bytes, new at every write>",
//!   "ciphertext": "<base64: AES-256-GCM of the plain token file, tag included>"
//! }
//! ```
//!
//! `client_id` and `token_endpoint` are in clear so that a config naming another client is
//! told apart (exit 3) without unsealing anything; the associated data binds them, the format,
//! version and sealer to the ciphertext, and they must equal the ones inside. A refresh
//! re-encrypts with the same data key and a fresh random nonce (2^32 writes per key stay far
//! inside GCM's limit for random nonces; a device refreshes a few thousand times a year).
//!
//! This file owns the envelope and the cipher; which hardware seals the key is `seal.rs`'s.

use super::format::{Bad, Fields, bad_file, corrupt};
use super::*;
use crate::secret::SecretBytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The `"format"` value of a sealed token file.
pub const SEALED_FORMAT: &str = "devauth-sealed-tokens";
/// The sealed file version this build reads and writes.
pub const SEALED_VERSION: u64 = 1;
/// Largest sealed data key kept (a TPM blob is 208 bytes, a kernel trusted-key blob 236).
const MAX_SEALED_KEY: usize = crate::keyring::MAX_BLOB;
const MAX_CIPHERTEXT: usize = MAX_FILE_BYTES as usize;

/// A sealed file as read, before anything is unsealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub sealer: Sealer,
    pub client_id: String,
    pub token_endpoint: String,
    /// The data key as the hardware sealed it (not secret: useless without that hardware).
    pub sealed_key: Vec<u8>,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// What the cipher authenticates besides the ciphertext: every envelope field a reader relies on
/// before decrypting, each length-prefixed so no two different envelopes share it.
fn associated_data(sealer: Sealer, client_id: &str, token_endpoint: &str) -> Vec<u8> {
    let version = SEALED_VERSION.to_string();
    length_prefixed(&[
        SEALED_FORMAT,
        version.as_str(),
        sealer.name(),
        client_id,
        token_endpoint,
    ])
}

/// `parts`, each preceded by its length (u32, big-endian): associated data no two different
/// lists of parts share.
pub(super) fn length_prefixed(parts: &[&str]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + parts.iter().map(|p| p.len()).sum::<usize>());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn cipher(key: &SecretBytes) -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_256_GCM, key.expose())
        .map(LessSafeKey::new)
        .map_err(|_| "the data key is not 32 bytes".to_string())
}

/// Whether `bytes` look like a sealed file: a JSON object whose `format` says so (parsed with
/// the same JSON reader as every other file here; the file is small and bounded).
pub(super) fn is_sealed(bytes: &[u8]) -> bool {
    matches!(serde_json::from_slice::<Value>(bytes), Ok(Value::Object(obj))
        if obj.get("format").and_then(Value::as_str) == Some(SEALED_FORMAT))
}

/// Encrypts the plain token file `plain` (whose tokens are `t`) under `key` into the bytes of a
/// sealed file.
pub(super) fn seal(t: &StoredTokens, plain: &[u8], key: &DataKey) -> Result<Vec<u8>, String> {
    seal_with_nonce(t, plain, key.sealer, &key.blob, &key.key, random_nonce()?)
}

/// 12 random bytes: a GCM nonce, new at every write.
pub(super) fn random_nonce() -> Result<[u8; NONCE_LEN], String> {
    let mut nonce = [0u8; NONCE_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| "no random numbers for the nonce".to_string())?;
    Ok(nonce)
}

/// AES-256-GCM of `plain` under `key` with `aad`: the ciphertext with its tag appended.
pub(super) fn encrypt_with_nonce(
    key: &SecretBytes,
    aad: &[u8],
    plain: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, String> {
    let mut buffer = Vec::with_capacity(plain.len() + AES_256_GCM.tag_len());
    buffer.extend_from_slice(plain);
    cipher(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .map_err(|_| "the data could not be encrypted".to_string())?;
    Ok(buffer)
}

/// The plaintext of `ciphertext` (tag appended) under `key` and `aad`; `None` when it does not
/// authenticate (changed bytes, another key).
pub(super) fn decrypt_raw(
    key: &SecretBytes,
    aad: &[u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let mut buffer = ciphertext.to_vec();
    let len = cipher(key)
        .ok()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

fn seal_with_nonce(
    t: &StoredTokens,
    plain: &[u8],
    sealer: Sealer,
    sealed_key: &[u8],
    key: &SecretBytes,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, String> {
    let aad = associated_data(sealer, &t.client_id, &t.token_endpoint);
    let buffer = encrypt_with_nonce(key, &aad, plain, nonce)?;
    let b64 = crate::net::wire::base64_encode;
    let bytes = json_file(&[
        ("format", Json::Str(SEALED_FORMAT)),
        ("version", Json::Num(SEALED_VERSION)),
        ("sealed_by", Json::Str(sealer.name())),
        ("client_id", Json::Str(&t.client_id)),
        ("token_endpoint", Json::Str(&t.token_endpoint)),
        ("sealed_key", Json::Str(&b64(sealed_key))),
        ("nonce", Json::Str(&b64(&nonce))),
        ("ciphertext", Json::Str(&b64(&buffer))),
    ]);
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "the sealed file would be {size} bytes, over the {MAX_FILE_BYTES} byte limit"
        ));
    }
    Ok(bytes)
}

/// A value of a file [`json_file`] writes.
pub(super) enum Json<'a> {
    Str(&'a str),
    Num(u64),
}

/// `fields` as a JSON object with a newline after it, laid out as serde_json's pretty printer
/// does (two-space indent, one field a line), the strings escaped by serde_json: the sealed
/// file and the key files, written without a serde value or a derived serializer.
pub(super) fn json_file(fields: &[(&str, Json<'_>)]) -> Vec<u8> {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push_str(if i == 0 { "\n  \"" } else { ",\n  \"" });
        out.push_str(key);
        out.push_str("\": ");
        out.push_str(&match value {
            Json::Str(s) => crate::net::wire::json_string(s),
            Json::Num(n) => n.to_string(),
        });
    }
    out.push_str("\n}\n");
    out.into_bytes()
}

/// The JSON object of a `what` file (`"sealed"`, `"key"`) whose `format` is `format` and
/// `version` is `version`. Details name fields, never values.
pub(super) fn json_head(
    bytes: &[u8],
    what: &str,
    format: &str,
    version: u64,
) -> Result<Map<String, Value>, Bad> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(format!(
            "malformed {what} file at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(obj) = value else {
        return Err(corrupt("not a JSON object"));
    };
    let f = Fields { obj: &obj, at: "" };
    if f.string("format", 64)? != format {
        return Err(corrupt(format!("field `format` is not \"{format}\"")));
    }
    let found = f.u64("version")?;
    if found != version {
        return Err(Bad::Version(found));
    }
    Ok(obj)
}

/// Parses a sealed file's envelope. Details name fields, never values.
pub(super) fn parse_envelope(bytes: &[u8]) -> Result<Envelope, Bad> {
    let obj = json_head(bytes, "sealed", SEALED_FORMAT, SEALED_VERSION)?;
    let f = Fields { obj: &obj, at: "" };
    let sealer = f.string("sealed_by", 16)?;
    let sealer = Sealer::from_name(&sealer)
        .ok_or_else(|| corrupt("field `sealed_by` is not \"tpm2\" or \"kernel\""))?;
    let client_id = f.string("client_id", MAX_ID_BYTES)?;
    let token_endpoint = f.string("token_endpoint", MAX_URL_BYTES)?;
    let sealed_key = binary(&f, "sealed_key", MAX_SEALED_KEY)?;
    let (nonce, ciphertext) = nonce_and_ciphertext(&f, MAX_CIPHERTEXT)?;
    Ok(Envelope {
        sealer,
        client_id,
        token_endpoint,
        sealed_key,
        nonce,
        ciphertext,
    })
}

/// A base64 field of at most `max` bytes, not empty.
pub(super) fn binary(f: &Fields<'_>, key: &str, max: usize) -> Result<Vec<u8>, Bad> {
    let text = f.string(key, max.div_ceil(3) * 4 + 4)?;
    let bytes =
        crate::net::wire::base64url_decode(&text).ok_or_else(|| f.bad(key, "is not base64"))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(f.bad(key, &format!("is empty or longer than {max} bytes")));
    }
    Ok(bytes)
}

/// The `nonce` and `ciphertext` fields (at most `max` bytes, its tag included).
pub(super) fn nonce_and_ciphertext(
    f: &Fields<'_>,
    max: usize,
) -> Result<([u8; NONCE_LEN], Vec<u8>), Bad> {
    let nonce = <[u8; NONCE_LEN]>::try_from(binary(f, "nonce", NONCE_LEN)?)
        .map_err(|_| f.bad("nonce", &format!("is not {NONCE_LEN} bytes")))?;
    let ciphertext = binary(f, "ciphertext", max)?;
    if ciphertext.len() < AES_256_GCM.tag_len() {
        return Err(f.bad("ciphertext", "is shorter than its authentication tag"));
    }
    Ok((nonce, ciphertext))
}

/// The plain token file inside `envelope`, decrypted with the data key `key`.
fn decrypt(envelope: &Envelope, key: &SecretBytes) -> Result<Vec<u8>, Bad> {
    let aad = associated_data(
        envelope.sealer,
        &envelope.client_id,
        &envelope.token_endpoint,
    );
    if key.len() != 32 {
        return Err(corrupt("the data key is not 32 bytes"));
    }
    decrypt_raw(key, &aad, envelope.nonce, &envelope.ciphertext).ok_or_else(|| {
        corrupt(
            "the sealed tokens do not decrypt with the unsealed key: the file was changed \
             after it was written",
        )
    })
}

/// Whether the sealed file `current` already holds `plain` (the encoding of `t`) under `key`:
/// then a save writes nothing.
pub(super) fn holds(current: &[u8], key: &DataKey, t: &StoredTokens, plain: &[u8]) -> bool {
    let Ok(envelope) = parse_envelope(current) else {
        return false;
    };
    envelope.sealer == key.sealer
        && envelope.sealed_key == key.blob
        && envelope.client_id == t.client_id
        && envelope.token_endpoint == t.token_endpoint
        && decrypt(&envelope, &key.key).is_ok_and(|inside| inside == plain)
}

/// Decrypts `envelope` with the data key `key` and parses what is inside as the plain token
/// file, which must be bound to the same client and endpoint as the envelope says.
pub(super) fn open(envelope: &Envelope, key: &SecretBytes) -> Result<StoredTokens, Bad> {
    let plain = decrypt(envelope, key)?;
    let inner = match format::parse(&plain) {
        Ok(t) => t,
        Err(Bad::Corrupt(detail)) => return Err(corrupt(format!("inside the seal: {detail}"))),
        Err(version @ Bad::Version(_)) => return Err(version),
    };
    if inner.client_id != envelope.client_id || inner.token_endpoint != envelope.token_endpoint {
        return Err(corrupt(
            "the sealed tokens belong to another client or endpoint than the file says",
        ));
    }
    Ok(inner)
}

/// Reads sealed-file bytes with a data key given directly (no hardware), exactly as
/// [`TokenStore::load`] reads them once the key is unsealed (the fuzz target and its corpus
/// replay use it). `path` only names the file in errors.
pub fn open_sealed_bytes(
    bytes: &[u8],
    data_key: &[u8; 32],
    path: &Path,
) -> Result<StoredTokens, StoreError> {
    let bad = |b| bad_file(b, path);
    let envelope = parse_envelope(bytes).map_err(bad)?;
    open(&envelope, &SecretBytes::new(data_key.to_vec())).map_err(bad)
}

/// The sealed file [`TokenStore`] would write for `t` under `data_key`, its sealed form
/// `sealed_key` and `sealer` (the fuzz harness: what was read must be writable again).
pub fn seal_bytes(
    t: &StoredTokens,
    sealer: Sealer,
    sealed_key: &[u8],
    data_key: &[u8; 32],
    path: &Path,
) -> Result<Vec<u8>, StoreError> {
    let invalid = |detail| StoreError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let plain = encode(t).map_err(invalid)?;
    let key = DataKey {
        sealer,
        blob: sealed_key.to_vec(),
        key: SecretBytes::new(data_key.to_vec()),
    };
    seal(t, &plain, &key).map_err(invalid)
}

#[cfg(test)]
mod tests;
