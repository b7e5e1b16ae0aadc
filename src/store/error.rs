//! [`StoreError`]: what went wrong with the token file, naming the path and the operation.

use super::*;

/// Why a token-store operation failed. Never contains a token.
#[derive(Debug)]
pub enum StoreError {
    /// A filesystem step failed; `op` names the step, `path` the file or directory.
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// The file is not a valid token file; `detail` names what is wrong (field, line, column),
    /// never a value from the file.
    Corrupt { path: PathBuf, detail: String },
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge { path: PathBuf, size: u64 },
    /// A token file of a version this build does not know (written by a newer devauth).
    UnsupportedVersion { path: PathBuf, version: u64 },
    /// Another process held the lock for the whole `waited`.
    LockTimeout { path: PathBuf, waited: Duration },
    /// `save` was given tokens the file format cannot hold (a field over its size limit, an
    /// empty access token); nothing was written.
    Invalid { path: PathBuf, detail: String },
    /// The data key of a sealed file could not be unsealed; the file is left as it is.
    Unsealable {
        path: PathBuf,
        sealer: Sealer,
        why: UnsealFailure,
    },
    /// The tokens cannot be sealed as `[storage]` asks (`seal = "tpm2"` or `"kernel"` failing,
    /// `require_sealed` with nothing to seal with); nothing was written.
    NotSealed { path: PathBuf, why: String },
}

impl StoreError {
    /// Only pairing again helps: the file was sealed by other hardware (or the TPM was cleared),
    /// or the hardware that sealed it is not on this device.
    pub fn needs_pairing(&self) -> bool {
        matches!(
            self,
            StoreError::Unsealable {
                why: UnsealFailure::Foreign(_) | UnsealFailure::Missing(_),
                ..
            }
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, op, source } => {
                write!(f, "token store {}: {op}: {source}", path.display())
            }
            StoreError::Corrupt { path, detail } => {
                write!(f, "token store {}: corrupt file: {detail}", path.display())
            }
            StoreError::TooLarge { path, size } => write!(
                f,
                "token store {}: file is {size} bytes, over the {MAX_FILE_BYTES} byte limit",
                path.display()
            ),
            StoreError::UnsupportedVersion { path, version } => write!(
                f,
                "token store {}: file version {version} is not supported (this devauth reads \
                 version {VERSION})",
                path.display()
            ),
            StoreError::LockTimeout { path, waited } => write!(
                f,
                "token store {}: still locked by another process after {:.1}s",
                path.display(),
                waited.as_secs_f64()
            ),
            StoreError::Invalid { path, detail } => {
                write!(
                    f,
                    "token store {}: refusing to write: {detail}",
                    path.display()
                )
            }
            StoreError::Unsealable { path, sealer, why } => {
                let path = path.display();
                let holder = sealer.holder();
                match why {
                    UnsealFailure::Foreign(detail) => write!(
                        f,
                        "token store {path}: the tokens were sealed on another device (storage \
                         moved to another board), or {} since: {detail}; pair again (`devauth \
                         pair`)",
                        match sealer {
                            Sealer::Tpm2 => "this device's TPM was cleared",
                            Sealer::Kernel => {
                                "the trust source of this device's trusted keys was reset (a TPM \
                                 cleared)"
                            }
                        }
                    ),
                    UnsealFailure::Missing(detail) => write!(
                        f,
                        "token store {path}: the tokens are sealed by {holder}, which this \
                         device does not offer ({detail}); was the storage moved to another \
                         board? Pair again (`devauth pair`)"
                    ),
                    UnsealFailure::Failed(detail) => write!(
                        f,
                        "token store {path}: cannot unseal the data key ({}): {detail}",
                        sealer.name()
                    ),
                }
            }
            StoreError::NotSealed { path, why } => write!(
                f,
                "token store {}: cannot seal the tokens as [storage] asks: {why}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err(path: &Path, op: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}
