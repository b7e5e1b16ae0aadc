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
