//! Which hardware holds the token file's data key: the settings (`[storage] seal`,
//! `require_sealed`, the TPM's path, the trusted keys' options), making a new data key at pairing
//! (`auto`: the TPM, else the kernel's trusted keys, else none) and unsealing a stored one.
//!
//! A new key is made only for a new pairing, or to seal a plain file at its next write; a
//! refresh keeps the key of the file it replaces (no TPM command but the unseal at load, no extra
//! flash wear). Unsealing is remembered per [`TokenStore`] (and its clones) by the sealed blob,
//! so the two loads of a refresh (before and under the lock) ask the hardware once.

use super::*;
use crate::keyring::{self, KernelKeys};
use crate::secret::SecretBytes;
use crate::tpm::Tpm;

/// `[storage] seal`: which sealer a new data key goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealChoice {
    /// The TPM if there is one, else the kernel's trusted keys, else none.
    Auto,
    Tpm2,
    Kernel,
    /// The plain token file.
    None,
}

impl SealChoice {
    pub fn name(self) -> &'static str {
        match self {
            SealChoice::Auto => "auto",
            SealChoice::Tpm2 => "tpm2",
            SealChoice::Kernel => "kernel",
            SealChoice::None => "none",
        }
    }
}

/// How a store seals its file (`[storage]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealing {
    pub choice: SealChoice,
    /// Refuse to write the tokens unsealed.
    pub require_sealed: bool,
    /// The TPM: [`crate::tpm::DEFAULT_DEVICE`], or a simulator's socket.
    pub tpm_device: PathBuf,
    /// Appended to the kernel's `new 32` / `load <blob>` (e.g. `keyhandle=0x81000001`).
    pub trusted_key_options: String,
}

impl Sealing {
    /// The plain file, as devauth wrote it before sealing existed (files of any kind are read).
    pub fn none() -> Sealing {
        Sealing {
            choice: SealChoice::None,
            require_sealed: false,
            tpm_device: PathBuf::from(crate::tpm::DEFAULT_DEVICE),
            trusted_key_options: String::new(),
        }
    }

    /// `auto` with the default TPM path: what a config without `[storage] seal` gets.
    pub fn auto() -> Sealing {
        Sealing {
            choice: SealChoice::Auto,
            ..Sealing::none()
        }
    }

    /// `tpm2` with the TPM at `device`.
    pub fn tpm2(device: impl Into<PathBuf>) -> Sealing {
        Sealing {
            choice: SealChoice::Tpm2,
            tpm_device: device.into(),
            ..Sealing::none()
        }
    }
}

/// What holds a sealed file's data key (its `sealed_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealer {
    /// The TPM, through raw TPM 2.0 commands (`crate::tpm`).
    Tpm2,
    /// The kernel's trusted keys (`crate::keyring`).
    Kernel,
}

impl Sealer {
    pub fn name(self) -> &'static str {
        match self {
            Sealer::Tpm2 => "tpm2",
            Sealer::Kernel => "kernel",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Sealer> {
        match name {
            "tpm2" => Some(Sealer::Tpm2),
            "kernel" => Some(Sealer::Kernel),
            _ => None,
        }
    }

    /// For people: what holds the key.
    pub fn holder(self) -> &'static str {
        match self {
            Sealer::Tpm2 => "the TPM",
            Sealer::Kernel => "the kernel's trusted keys",
        }
    }
}

/// How the token file is (or was just) protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Encrypted; the data key sealed by this.
    Sealed(Sealer),
    /// In clear; `why` says why no sealer was used (config, or what each sealer answered).
    Unprotected { why: String },
}

impl Protection {
    /// What `status` shows, and `pair`/the agent say when the file is not sealed.
    pub fn describe(&self) -> String {
        match self {
            Protection::Sealed(sealer) => format!(
                "sealed: AES-256-GCM, the key held by {} ({})",
                sealer.holder(),
                sealer.name()
            ),
            Protection::Unprotected { why } => not_protected(why),
        }
    }
}

/// The plain statement of an unsealed store: what it means, why, and what to do.
pub fn not_protected(why: &str) -> String {
    format!(
        "NOT protected by hardware: the refresh token is stored in clear, so anyone who reads \
         this device's storage (a flash dump, a resold or stolen board) can use the account. \
         Why: {why}. To protect it: give devauth a TPM 2.0 (/dev/tpmrm0) or a kernel with \
         trusted keys and AF_ALG (Linux 6.2 or later), keep [storage] seal = \"auto\"; the file \
         is sealed at its next write. require_sealed = true refuses to store tokens unprotected \
         (README: \"Protecting the tokens\")"
    )
}

/// A data key and its sealed form.
#[derive(Debug)]
pub(super) struct DataKey {
    pub(super) sealer: Sealer,
    pub(super) blob: Vec<u8>,
    pub(super) key: SecretBytes,
}

/// What a store remembers between calls (shared by its clones).
#[derive(Debug, Default)]
pub(super) struct SealState {
    /// The key unsealed last, to be used again for the same blob.
    pub(super) key: Option<Arc<DataKey>>,
    /// What the last key decision of this store was (for `pair` and the agent to report).
    pub(super) last: Option<Protection>,
    /// The data key of that decision (`None`: the plain file): what a DPoP key made for the
    /// same pairing is sealed with (`keyfile.rs`).
    pub(super) decided: Option<Arc<DataKey>>,
}

/// Why a stored data key could not be unsealed.
#[derive(Debug)]
pub enum UnsealFailure {
    /// The hardware refused the key as not its own: sealed on another device (the flash was
    /// moved), or the TPM was cleared since. Only pairing again helps.
    Foreign(String),
    /// The hardware that sealed it is not on this device (no TPM, no trusted keys).
    Missing(String),
    /// Anything else (permissions, a busy or broken TPM): worth retrying.
    Failed(String),
}

const DATA_KEY_LEN: usize = 32;

fn random_key() -> Result<SecretBytes, String> {
    let mut key = vec![0u8; DATA_KEY_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| "no random numbers for the data key".to_string())?;
    Ok(SecretBytes::new(key))
}

/// What [`new_key`] made.
#[derive(Debug)]
pub(super) enum NewKey {
    Sealed(DataKey),
    /// Nothing seals it (`seal = "none"`, or `auto` found nothing): why, for the person.
    Unprotected(String),
}

/// A new data key sealed as `sealing` says. An explicit `tpm2` or `kernel` that fails is an
/// error; `auto` falls through to [`NewKey::Unprotected`] (the caller enforces
/// `require_sealed`).
pub(super) fn new_key(sealing: &Sealing, kernel: &impl KernelKeys) -> Result<NewKey, String> {
    let tpm = || -> Result<DataKey, String> {
        let key = random_key()?;
        let blob = Tpm::new(&sealing.tpm_device)
            .seal(key.expose())
            .map_err(|e| e.to_string())?;
        Ok(DataKey {
            sealer: Sealer::Tpm2,
            blob,
            key,
        })
    };
    let trusted = || -> Result<DataKey, String> {
        let (blob, key) =
            keyring::create(kernel, &sealing.trusted_key_options).map_err(|e| e.to_string())?;
        Ok(DataKey {
            sealer: Sealer::Kernel,
            blob,
            key,
        })
    };
    match sealing.choice {
        SealChoice::None => Ok(NewKey::Unprotected("[storage] seal = \"none\"".to_string())),
        SealChoice::Tpm2 => tpm().map(NewKey::Sealed).map_err(|e| format!("tpm2: {e}")),
        SealChoice::Kernel => trusted()
            .map(NewKey::Sealed)
            .map_err(|e| format!("kernel: {e}")),
        SealChoice::Auto => {
            let tpm_why = match tpm() {
                Ok(k) => return Ok(NewKey::Sealed(k)),
                Err(e) => e,
            };
            let kernel_why = match trusted() {
                Ok(k) => return Ok(NewKey::Sealed(k)),
                Err(e) => e,
            };
            Ok(NewKey::Unprotected(format!(
                "seal = \"auto\" found nothing to seal with (tpm2: {tpm_why}; {kernel_why})"
            )))
        }
    }
}

/// The data key sealed in `blob` by `sealer`.
pub(super) fn unseal(
    sealing: &Sealing,
    kernel: &impl KernelKeys,
    sealer: Sealer,
    blob: &[u8],
) -> Result<SecretBytes, UnsealFailure> {
    // What each sealer's error says about the cause: refused as foreign, or hardware missing.
    let failure = |foreign: bool, missing: bool, why: String| match (foreign, missing) {
        (true, _) => UnsealFailure::Foreign(why),
        (_, true) => UnsealFailure::Missing(why),
        _ => UnsealFailure::Failed(why),
    };
    let key = match sealer {
        Sealer::Tpm2 => Tpm::new(&sealing.tpm_device)
            .unseal(blob)
            .map_err(|e| failure(e.is_foreign(), e.is_missing(), e.to_string()))?,
        Sealer::Kernel => keyring::derive(kernel, blob, &sealing.trusted_key_options)
            .map_err(|e| failure(e.is_foreign(), e.is_unsupported(), e.to_string()))?,
    };
    if key.len() != DATA_KEY_LEN {
        return Err(UnsealFailure::Failed(format!(
            "the unsealed data key is {} bytes, not {DATA_KEY_LEN}",
            key.len()
        )));
    }
    Ok(key)
}

#[cfg(test)]
pub(super) mod tests;
