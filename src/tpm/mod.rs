//! A TPM 2.0 spoken to directly: raw commands over the kernel's resource-managed device
//! (`/dev/tpmrm0`) or a simulator's Unix socket, no tpm2-tss C stack. It owns two things:
//!
//! - **sealing** a few bytes (the token store's data key) to this TPM: [`Tpm::seal`] returns a
//!   blob to keep on flash, [`Tpm::unseal`] gives the bytes back, on this TPM only, and only
//!   while its owner hierarchy has not been cleared;
//! - an **ECC P-256 signing key** that never leaves the TPM ([`Tpm::create_signing_key`],
//!   [`Tpm::sign`]; DPoP proofs and client assertions use it), kept on flash as a blob that only
//!   this TPM can load.
//!
//! Every object lives under a storage primary key that is derived again from the owner seed at
//! each use (TPM2_CreatePrimary with a fixed template, `commands.rs`), so nothing is written to
//! the TPM's NV memory and no persistent handle is taken. Each operation opens the device,
//! creates the primary, loads the object, does its work and flushes what it loaded.
//!
//! What it does not protect against (README, "Protecting the tokens"): anyone who can open the
//! TPM on the running device — root, or devauth's user — can unseal or sign, since the objects
//! have no password and no PCR policy; and the unsealed bytes cross the bus to the TPM in clear
//! (no parameter encryption), so a probe on its SPI/LPC/I²C lines sees them.
//!
//! Files: this one (the API and [`TpmError`]), `commands.rs` (each command's bytes and its
//! answer's parser, pure), `marshal.rs` (byte order, framing, the bounded reader), `device.rs`
//! (the device node or socket).

mod commands;
mod device;
mod marshal;

use crate::secret::SecretBytes;
use commands::Child;
use device::Connection;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel's TPM device with its resource manager (Linux 4.12 and later).
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";

/// The TPM at one path: the device node, or a Unix socket speaking TPM commands (swtpm's
/// `socket --server type=unixio,path=…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm {
    path: PathBuf,
}

/// An ECC P-256 signing key held by the TPM: the blob to keep (only this TPM can load it) and its
/// public point, read from the blob without the TPM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    blob: Vec<u8>,
    x: [u8; 32],
    y: [u8; 32],
}

impl SigningKey {
    /// A key stored earlier ([`blob`](Self::blob)): checks its shape and reads the public point.
    pub fn from_blob(blob: Vec<u8>) -> Result<SigningKey, TpmError> {
        let public = commands::split_blob(&blob).map_err(TpmError::Blob)?;
        let (x, y) = commands::read_signing_public(public).map_err(TpmError::Blob)?;
        Ok(SigningKey { blob, x, y })
    }

    /// What to store: the key's `TPM2B_PRIVATE` (encrypted by the TPM for itself) followed by
    /// its `TPM2B_PUBLIC`. Not secret off the device; useless on any other TPM.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The public key's affine coordinates, big-endian (a JWK's `x` and `y`, RFC 7518 §6.2.1).
    pub fn public_xy(&self) -> (&[u8; 32], &[u8; 32]) {
        (&self.x, &self.y)
    }

    /// The public key in SEC1 uncompressed form (`04 ‖ x ‖ y`), as ring's verifiers take it.
    pub fn public_sec1(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = 4;
        out[1..33].copy_from_slice(&self.x);
        out[33..].copy_from_slice(&self.y);
        out
    }
}

impl Tpm {
    pub fn new(path: impl Into<PathBuf>) -> Tpm {
        Tpm { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `data` (at most 128 bytes) to this TPM; returns the blob to store.
    pub fn seal(&self, data: &[u8]) -> Result<Vec<u8>, TpmError> {
        if data.len() > commands::MAX_SEALED_DATA {
            return Err(TpmError::Blob("more than 128 bytes cannot be sealed"));
        }
        self.run(Op::Create(Child::Sealed(data)), &[])
    }

    /// The bytes sealed in `blob`. A blob sealed by another TPM, or before this TPM was cleared,
    /// fails with an error for which [`TpmError::is_foreign`] is true.
    pub fn unseal(&self, blob: &[u8]) -> Result<SecretBytes, TpmError> {
        commands::split_blob(blob).map_err(TpmError::Blob)?;
        self.run(Op::Unseal, blob).map(SecretBytes::new)
    }

    /// Makes a new ECC P-256 signing key inside the TPM (its private part never leaves it).
    pub fn create_signing_key(&self) -> Result<SigningKey, TpmError> {
        let blob = self.run(Op::Create(Child::SigningKey), &[])?;
        SigningKey::from_blob(blob).map_err(|e| match e {
            TpmError::Blob(detail) => TpmError::Malformed {
                command: "TPM2_Create",
                detail,
            },
            other => other,
        })
    }

    /// ECDSA over a SHA-256 `digest` with `key`: r‖s, 64 bytes (JWS ES256's form).
    pub fn sign(&self, key: &SigningKey, digest: &[u8; 32]) -> Result<Vec<u8>, TpmError> {
        self.run(Op::Sign(digest), &key.blob)
    }

    /// Whether this TPM can load `key`, i.e. made it since its last clear (TPM2_Load, then
    /// flush; nothing is signed). A key from another TPM fails with [`TpmError::is_foreign`].
    pub fn check_key(&self, key: &SigningKey) -> Result<(), TpmError> {
        self.run(Op::Check, &key.blob).map(drop)
    }

    /// Opens the TPM, creates the storage primary, does `op` under it (loading `blob` first for
    /// the operations on a stored object), flushes what it loaded. One non-generic path for
    /// every operation: the binary holds the command sequence once.
    fn run(&self, op: Op<'_>, blob: &[u8]) -> Result<Vec<u8>, TpmError> {
        let mut c = Connection::open(&self.path)?;
        let (primary, ()) = c.exchange(
            "TPM2_CreatePrimary",
            &commands::create_primary(),
            true,
            |_| Ok(()),
        )?;
        let result = under_primary(&mut c, primary, op, blob);
        c.flush(primary);
        result
    }
}

/// What [`Tpm::run`] does under the primary.
enum Op<'a> {
    /// TPM2_Create: the new object's blob.
    Create(Child<'a>),
    /// TPM2_Unseal of the loaded blob: the sealed bytes.
    Unseal,
    /// TPM2_Sign of a digest with the loaded key: r‖s.
    Sign(&'a [u8; 32]),
    /// TPM2_Load only: nothing.
    Check,
}

fn under_primary(
    c: &mut Connection,
    primary: u32,
    op: Op<'_>,
    blob: &[u8],
) -> Result<Vec<u8>, TpmError> {
    if let Op::Create(child) = op {
        // The command carries the data to seal: zeroed once sent.
        let command = SecretBytes::new(commands::create(primary, child));
        return c
            .exchange(
                "TPM2_Create",
                command.expose(),
                false,
                commands::read_created,
            )
            .map(|(_, blob)| blob);
    }
    let (item, ()) = c.exchange(
        "TPM2_Load",
        &commands::load(primary, blob),
        true,
        commands::read_loaded,
    )?;
    let result = match op {
        Op::Unseal => c.exchange(
            "TPM2_Unseal",
            &commands::unseal(item),
            false,
            commands::read_unsealed,
        ),
        Op::Sign(digest) => c.exchange(
            "TPM2_Sign",
            &commands::sign(item, digest),
            false,
            commands::read_signature,
        ),
        Op::Create(_) | Op::Check => Ok((0, Vec::new())),
    };
    c.flush(item);
    result.map(|(_, out)| out)
}

/// What went wrong talking to the TPM. Never holds sealed data or key material.
#[derive(Debug)]
pub enum TpmError {
    /// There is no TPM at the path (no such node, no driver, nothing listening).
    NoDevice { path: PathBuf, source: io::Error },
    /// The TPM is there but could not be opened (permission, busy).
    Open { path: PathBuf, source: io::Error },
    /// Reading or writing a command failed.
    Io {
        path: PathBuf,
        op: &'static str,
        command: &'static str,
        source: io::Error,
    },
    /// The TPM refused a command with this response code (TPM 2.0 Library, Part 2 §6.6).
    Tpm { command: &'static str, rc: u32 },
    /// The TPM's answer was not well formed.
    Malformed {
        command: &'static str,
        detail: &'static str,
    },
    /// A stored blob is not one this module wrote.
    Blob(&'static str),
}

/// `TPM_RC_INTEGRITY` (format-one code 0x1F): the blob's integrity check failed under this
/// TPM's storage key, i.e. another TPM (or this one before a clear) sealed it.
const RC_INTEGRITY: u32 = 0x1F;

impl TpmError {
    pub(crate) fn open(path: &Path, source: io::Error) -> TpmError {
        let path = path.to_path_buf();
        match source.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO | libc::ECONNREFUSED) => {
                TpmError::NoDevice { path, source }
            }
            _ => TpmError::Open { path, source },
        }
    }

    /// This device has no TPM (at the configured path).
    pub fn is_missing(&self) -> bool {
        matches!(self, TpmError::NoDevice { .. })
    }

    /// The TPM refused a stored blob as not its own: the blob was made by another TPM (flash
    /// moved to another board), or this TPM was cleared since (a new owner seed).
    pub fn is_foreign(&self) -> bool {
        matches!(self, TpmError::Tpm { command: "TPM2_Load", rc } if format_one(*rc) == Some(RC_INTEGRITY))
    }
}

/// The error number of a format-one response code (bit 7 set), else `None`.
fn format_one(rc: u32) -> Option<u32> {
    (rc & 0x80 != 0).then_some(rc & 0x3F)
}

/// A name and, where one helps, what to do, for the codes a device is likely to meet.
fn rc_meaning(rc: u32) -> Option<&'static str> {
    Some(match format_one(rc) {
        Some(RC_INTEGRITY) => {
            "TPM_RC_INTEGRITY: sealed by another TPM, or this TPM was cleared since"
        }
        Some(0x0E) | Some(0x22) => {
            "TPM_RC_AUTH_FAIL/BAD_AUTH: the owner hierarchy has a password; devauth uses the \
             empty owner authorization"
        }
        Some(0x05) => "TPM_RC_HIERARCHY: the owner hierarchy is disabled",
        Some(_) => return None,
        None => match rc {
            0x100 => "TPM_RC_INITIALIZE: the TPM was not started (TPM2_Startup)",
            0x101 => "TPM_RC_FAILURE: the TPM is in failure mode",
            0x120 => "TPM_RC_DISABLED",
            0x902 => "TPM_RC_OBJECT_MEMORY: the TPM has no room for another object",
            0x921 => "TPM_RC_LOCKOUT: the TPM is in dictionary-attack lockout",
            0x922 | 0x908 | 0x90A => "the TPM stayed busy (TPM_RC_RETRY/YIELDED/TESTING)",
            _ => return None,
        },
    })
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::NoDevice { path, source } => {
                write!(f, "no TPM at {}: {source}", path.display())
            }
            TpmError::Open { path, source } => {
                write!(f, "TPM {}: cannot open it: {source}", path.display())
            }
            TpmError::Io {
                path,
                op,
                command,
                source,
            } => write!(f, "TPM {}: {command}: {op}: {source}", path.display()),
            TpmError::Tpm { command, rc } => match rc_meaning(*rc) {
                Some(m) => write!(f, "TPM refused {command}: {m} (0x{rc:03x})"),
                None => write!(f, "TPM refused {command}: response code 0x{rc:03x}"),
            },
            TpmError::Malformed { command, detail } => {
                write!(f, "TPM answer to {command} unusable: {detail}")
            }
            TpmError::Blob(detail) => write!(f, "TPM object: {detail}"),
        }
    }
}

impl std::error::Error for TpmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TpmError::NoDevice { source, .. }
            | TpmError::Open { source, .. }
            | TpmError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
