//! Linux trusted keys as a sealer: the kernel makes a random key and seals it with whatever
//! trust source it was built with (a TPM, OP-TEE, NXP CAAM or DCP), devauth keeps the sealed
//! blob on flash, and a 32-byte data key is derived from the trusted key inside the kernel with
//! AF_ALG `hmac(sha256)` keyed by the key's serial number (`ALG_SET_KEY_BY_KEY_SERIAL`, Linux
//! 6.2 or later). Userspace never sees the trusted key itself: `KEYCTL_READ` of a trusted key
//! gives only its sealed blob.
//!
//! - [`create`]: `add_key("trusted", …, "new 32 <options>")`, read the blob, derive the data key;
//! - [`derive`]: `add_key("trusted", …, "load <hex blob> <options>")`, derive the same data key.
//!
//! Possession: a key is usable by a process only if it can reach it through its own keyrings
//! (a key linked into the user keyring was refused with EACCES where the session keyring did not
//! link it), so the key is added to this process's own keyring, used at once, and invalidated;
//! nothing outlives the call.
//!
//! The system calls go through [`KernelKeys`] so the logic is tested with a fake kernel
//! (`tests.rs`); [`Syscalls`] is the real one (`sys.rs`: raw `add_key`, `keyctl` and AF_ALG
//! through libc, no keyutils library). Debian's kernels are built without trusted keys, so the
//! real path runs only on a kernel built for it (scripts/kernel-test.sh, KERNEL_TEST_TRUSTED=1).

mod sys;

use crate::secret::SecretBytes;
use std::fmt;
use std::io;

pub use sys::Syscalls;

/// The kernel's key and crypto interfaces, as devauth uses them.
pub trait KernelKeys {
    /// `add_key("trusted", description, payload, <this process's keyring>)`: the key's serial.
    fn add_trusted(&self, description: &str, payload: &[u8]) -> io::Result<i32>;
    /// `keyctl(KEYCTL_READ)`: for a trusted key, the hex of its sealed blob.
    fn read(&self, serial: i32) -> io::Result<Vec<u8>>;
    /// HMAC-SHA256 of `message` keyed by the key `serial`, computed by the kernel (AF_ALG).
    fn hmac_sha256(&self, serial: i32, message: &[u8]) -> Result<[u8; 32], KeyringError>;
    /// `keyctl(KEYCTL_INVALIDATE)`: the key is gone from every keyring at once. Best effort.
    fn invalidate(&self, serial: i32);
}

/// The HMAC message the data key is derived with: names what the key is for, so the same
/// trusted key could never yield this key for another purpose.
const DERIVE_LABEL: &[u8] = b"devauth token store data key v1";
/// Largest sealed blob kept (a TPM 2.0 blob is 236 bytes; the other trust sources' are smaller).
pub const MAX_BLOB: usize = 2048;
/// Longest `trusted_key_options` accepted (`keyhandle=… keyauth=… policydigest=…`).
pub const MAX_OPTIONS: usize = 512;

/// Makes a new trusted key (random, 32 bytes, sealed by the kernel's trust source) and derives
/// the data key from it. Returns the sealed blob to store and the data key.
pub fn create(
    keys: &impl KernelKeys,
    options: &str,
) -> Result<(Vec<u8>, SecretBytes), KeyringError> {
    let payload = with_options("new 32".to_string(), options);
    let serial = keys
        .add_trusted(&description(), payload.as_bytes())
        .map_err(|e| KeyringError::new(Step::AddNew, e))?;
    let result = (|| {
        let hex = keys
            .read(serial)
            .map_err(|e| KeyringError::new(Step::Read, e))?;
        let blob = from_hex(&hex).ok_or(KeyringError::BadBlob(
            "the kernel's blob is not hex of a plausible size",
        ))?;
        let key = keys.hmac_sha256(serial, DERIVE_LABEL)?;
        Ok((blob, SecretBytes::new(key.to_vec())))
    })();
    keys.invalidate(serial);
    result
}

/// Loads a stored blob back into the kernel (its trust source unseals it) and derives the same
/// data key as [`create`] did.
pub fn derive(
    keys: &impl KernelKeys,
    blob: &[u8],
    options: &str,
) -> Result<SecretBytes, KeyringError> {
    if blob.is_empty() || blob.len() > MAX_BLOB {
        return Err(KeyringError::BadBlob(
            "the stored blob has an impossible size",
        ));
    }
    let mut payload = String::with_capacity(8 + 2 * blob.len() + options.len());
    payload.push_str("load ");
    for b in blob {
        payload.push_str(&format!("{b:02x}"));
    }
    let payload = with_options(payload, options);
    let serial = keys
        .add_trusted(&description(), payload.as_bytes())
        .map_err(|e| KeyringError::new(Step::AddLoad, e))?;
    let key = keys.hmac_sha256(serial, DERIVE_LABEL);
    keys.invalidate(serial);
    Ok(SecretBytes::new(key?.to_vec()))
}

fn with_options(mut payload: String, options: &str) -> String {
    let options = options.trim();
    if !options.is_empty() {
        payload.push(' ');
        payload.push_str(options);
    }
    payload
}

/// Per process, so two devauth processes never replace each other's key in a shared keyring.
fn description() -> String {
    format!("devauth:tokens:{}", std::process::id())
}

/// Hex text (what `KEYCTL_READ` gives for a trusted key, perhaps NUL- or newline-terminated)
/// to bytes; `None` for anything else or a size out of bounds.
fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text = match text.iter().position(|b| *b == 0 || *b == b'\n') {
        Some(end) => text.get(..end)?,
        None => text,
    };
    if text.is_empty() || text.len() % 2 != 0 || text.len() > 2 * MAX_BLOB {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    text.chunks(2)
        .map(|pair| {
            let hi = digit(*pair.first()?)?;
            let lo = digit(*pair.get(1)?)?;
            u8::try_from(hi << 4 | lo).ok()
        })
        .collect()
}

/// The step of the kernel conversation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    AddNew,
    AddLoad,
    Read,
    AlgSocket,
    AlgBind,
    AlgSetKey,
    AlgAccept,
    AlgHash,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::AddNew => "add_key(trusted, new)",
            Step::AddLoad => "add_key(trusted, load)",
            Step::Read => "keyctl(READ)",
            Step::AlgSocket => "AF_ALG socket",
            Step::AlgBind => "AF_ALG bind hmac(sha256)",
            Step::AlgSetKey => "AF_ALG ALG_SET_KEY_BY_KEY_SERIAL",
            Step::AlgAccept => "AF_ALG accept",
            Step::AlgHash => "AF_ALG hash",
        }
    }
}

/// What went wrong. Never holds key material.
#[derive(Debug)]
pub enum KeyringError {
    /// A system call failed.
    Kernel { step: Step, source: io::Error },
    /// A blob (from the kernel or from flash) is unusable.
    BadBlob(&'static str),
}

impl KeyringError {
    pub(crate) fn new(step: Step, source: io::Error) -> KeyringError {
        KeyringError::Kernel { step, source }
    }

    fn errno(&self) -> Option<i32> {
        match self {
            KeyringError::Kernel { source, .. } => source.raw_os_error(),
            KeyringError::BadBlob(_) => None,
        }
    }

    /// The trust source refused a stored blob: it was sealed on another device, or the TPM
    /// behind it was cleared (a TPM refuses with EPERM, after "TPM error (479)" in the log).
    pub fn is_foreign(&self) -> bool {
        matches!(
            self,
            KeyringError::Kernel {
                step: Step::AddLoad,
                ..
            }
        ) && matches!(
            self.errno(),
            Some(libc::EPERM | libc::EKEYREJECTED | libc::EBADMSG)
        )
    }

    /// This kernel cannot do it at all (no trusted keys, no trust source, no AF_ALG keyed by a
    /// kernel key), as opposed to a failure of something it can do.
    pub fn is_unsupported(&self) -> bool {
        match self {
            KeyringError::Kernel { step, source } => matches!(
                (step, source.raw_os_error()),
                (Step::AddNew | Step::AddLoad, Some(libc::ENODEV))
                    | (Step::AlgSocket, Some(libc::EAFNOSUPPORT))
                    | (Step::AlgBind, Some(libc::ENOENT))
                    | (Step::AlgSetKey, Some(libc::ENOPROTOOPT))
            ),
            KeyringError::BadBlob(_) => false,
        }
    }

    /// What the person can do about it, where the error code says.
    fn hint(&self) -> Option<&'static str> {
        let KeyringError::Kernel { step, .. } = self else {
            return None;
        };
        Some(match (step, self.errno()?) {
            (Step::AddNew | Step::AddLoad, libc::ENODEV) => {
                "this kernel has no trusted keys (CONFIG_TRUSTED_KEYS) or no trust source for \
                 them (TPM, TEE, CAAM, DCP)"
            }
            (Step::AddNew, libc::EINVAL) => {
                "the kernel refused the key's options; with a TPM 2.0 trust source set \
                 [storage] trusted_key_options = \"keyhandle=0x81000001\" (a persistent storage \
                 key)"
            }
            (Step::AddLoad, libc::EPERM | libc::EKEYREJECTED | libc::EBADMSG) => {
                "the trust source refused the stored key: it was sealed on another device, or \
                 the TPM behind it was cleared"
            }
            (Step::AlgSocket, libc::EAFNOSUPPORT) => {
                "this kernel has no AF_ALG (CONFIG_CRYPTO_USER_API_HASH)"
            }
            (Step::AlgBind, libc::ENOENT) => {
                "hmac(sha256) is not offered through AF_ALG (CONFIG_CRYPTO_USER_API_HASH, \
                 module algif_hash)"
            }
            (Step::AlgSetKey, libc::ENOPROTOOPT) => {
                "this kernel cannot key AF_ALG with a kernel key (Linux 6.2 or later)"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringError::Kernel { step, source } => {
                write!(f, "kernel keys: {}: {source}", step.name())?;
                match self.hint() {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            KeyringError::BadBlob(detail) => write!(f, "kernel keys: {detail}"),
        }
    }
}

impl std::error::Error for KeyringError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyringError::Kernel { source, .. } => Some(source),
            KeyringError::BadBlob(_) => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
