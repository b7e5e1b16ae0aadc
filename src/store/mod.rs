//! The token file on flash: what it holds ([`StoredTokens`]), how it is read without trusting
//! it, how it is replaced atomically and only when its content changed, the lock that keeps two
//! processes from refreshing at once, and how a stored expiry is judged after a reboot.
//!
//! It does not decide *when* to refresh or re-pair (that is the flow's job), does not talk to the
//! network, and never formats a token into an error: file problems are reported by field name,
//! line and column only.
//!
//! Writes follow the flash rules (see the embedded notes): a temp file in the same directory,
//! created `O_EXCL` with mode 0600, written, fsynced, renamed over the target, then the directory
//! fsynced. On UBIFS the fsyncs are what make the rename durable; on JFFS2 a power cut during the
//! rename can leave both names, which is harmless because stale temp files are removed on the
//! next load or save. The file is rewritten only when its bytes would change (flash wear).
//!
//! A refresh splits the write in two ([`TokenStore::prepare_save`], then
//! [`PreparedSave::commit`]): everything that does not need the new tokens (directory, temp
//! file, reserved room) happens before a rotating refresh token is spent, so a full or read-only
//! store fails while the old token still works, and only write, fsync and rename separate the
//! server's answer from a durable store (docs/powercut.md measures that window).
//!
//! The path should name a regular file in a writable directory; a symlink at that path is
//! replaced by a regular file on the first write.
//!
//! Files: this one ([`TokenStore`]: load, save, delete), `format.rs` (the file format and its
//! parser), `write.rs` (the atomic write), `lock.rs`, `expiry.rs`, `error.rs`, and
//! `refusal.rs` (the provider's `invalid_grant`, remembered), and `tokenfile.rs` (the
//! access-token file published on tmpfs for other programs).

mod agent_lock;
pub mod keyfile;
pub mod pending;
pub mod tokenfile;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{self, Clock, SystemClock};
use crate::secret::Secret;

/// The `"format"` value that marks a devauth token file.
pub const FORMAT: &str = "devauth-tokens";
/// The file version this build reads and writes.
pub const VERSION: u64 = 1;
/// Largest token file read or written. Three 16 KiB tokens plus metadata fit with room to spare.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Largest access, refresh or id token stored (JWTs with many claims reach a few KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How far the wall clock may read *before* the moment a token was obtained and still be
/// trusted: the server's `Date` and the device clock disagree by a little even when both are
/// synchronised.
pub const WALL_CLOCK_SKEW: Duration = Duration::from_secs(120);
pub use crate::clock::MIN_PLAUSIBLE_UNIX;

const MAX_ID_BYTES: usize = 1024; // client_id, account
const MAX_URL_BYTES: usize = 4096; // token_endpoint
const MAX_TOKEN_TYPE_BYTES: usize = 64;
// Whatever scope list a token answer may carry must be storable, or a granted pairing would be
// lost at the save (found by the token_response fuzz target): a `scope` the wire accepts splits
// (on spaces and commas) into at most half its length in entries, none longer than itself.
const MAX_SCOPES: usize = crate::net::wire::MAX_SCOPE_LEN / 2;
const MAX_SCOPE_BYTES: usize = crate::net::wire::MAX_SCOPE_LEN;
const MAX_BOOT_ID_BYTES: usize = 64; // clock::boot_id() never returns more
const LOCK_POLL: Duration = Duration::from_millis(50);
const TEMP_ATTEMPTS: u32 = 16;

// Steps of a write, as named in errors (and as the points where tests inject failures).
const OP_CREATE_DIR: &str = "create directory";
const OP_CREATE_TEMP: &str = "create temp file";
const OP_WRITE_TEMP: &str = "write temp file";
const OP_FSYNC_TEMP: &str = "fsync temp file";
const OP_RENAME: &str = "rename temp file over the token file";
const OP_FSYNC_DIR: &str = "fsync directory";
const OP_RESERVE: &str = "reserve space for the new token file";

/// Room reserved by [`TokenStore::prepare_save`] beyond twice the current file's size, for an
/// answer that carries more than the previous one (a first id_token, longer JWTs).
const RESERVE_SLACK: u64 = 4096;

/// The tokens of one grant (RFC 6749 §5.1), as kept on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    /// Usually "Bearer".
    pub token_type: String,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub scopes: Vec<String>,
    /// email / preferred_username / sub, for display only.
    pub account: Option<String>,
    /// `None`: the server gave no `expires_in` (GitHub OAuth apps: tokens never expire).
    pub expiry: Option<Expiry>,
}

impl TokenSet {
    /// The access token is DPoP-bound (RFC 9449 §5): every use needs a proof.
    pub fn is_dpop(&self) -> bool {
        self.token_type == "DPoP"
    }
}

/// The content of the token file: the tokens and whose they are, so that a config pointing at
/// another client or provider is detected instead of sending one provider's token to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTokens {
    pub client_id: String,
    pub token_endpoint: String,
    pub tokens: TokenSet,
    /// The provider refused this grant (`invalid_grant`): pairing is needed again
    /// (`refusal.rs`).
    pub grant_refused: Option<GrantRefused>,
}

/// What [`TokenStore::save`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The file was replaced (atomically, durably).
    Written,
    /// The file already held exactly these bytes; nothing was written (flash wear).
    Unchanged,
}

/// A save made ready before its content exists ([`TokenStore::prepare_save`]): the temp file is
/// created and room for the new content reserved. [`commit`](Self::commit) finishes it; dropping
/// it instead removes the temp file and leaves the token file as it was.
pub struct PreparedSave {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    temp: TempFile,
}

impl fmt::Debug for PreparedSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSave")
            .field("path", &self.path)
            .field("temp", &self.temp.path)
            .finish()
    }
}

/// The token file at one path.
#[derive(Clone, Debug)]
pub struct TokenStore {
    path: PathBuf,
}

/// A failure injected at a named write step (tests only; production passes [`no_fault`]).
type Fault = fn(&'static str) -> io::Result<()>;

fn no_fault(_: &'static str) -> io::Result<()> {
    Ok(())
}

impl TokenStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored tokens, `Ok(None)` when there is no file. Removes stale temp files first
    /// (best effort: a read-only filesystem still loads).
    pub fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.remove_stale_temps();
        let Some(bytes) = self.read_current()? else {
            return Ok(None);
        };
        parse_bytes(&bytes, &self.path).map(Some)
    }

    /// Replaces the file with `t`, atomically and durably, unless it already holds exactly these
    /// bytes. On any failure before the rename the old file is left as it was.
    pub fn save(&self, t: &StoredTokens) -> Result<SaveOutcome, StoreError> {
        self.save_with(t, no_fault)
    }

    /// Removes the token file; `true` if there was one. The lock file is kept: removing it while
    /// another process waits on it would let two processes hold "the" lock. An error after the
    /// removal (fsyncing the directory) means the file is gone but the removal may not survive a
    /// power cut.
    pub fn delete(&self) -> Result<bool, StoreError> {
        self.remove_stale_temps();
        match fs::remove_file(&self.path) {
            Ok(()) => {
                let dir = self.dir();
                sync_dir(&dir).map_err(|e| io_err(&dir, OP_FSYNC_DIR, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&self.path, "remove", e)),
        }
    }

    /// Takes the store's exclusive lock (flock on `<file>.lock`), waiting up to `timeout`.
    /// Held around a refresh so that only one process ever spends a rotating refresh token.
    pub fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.lock_with_clock(timeout, &SystemClock)
    }

    /// [`lock`](Self::lock), measuring and sleeping on `clock`.
    pub fn lock_with_clock(
        &self,
        timeout: Duration,
        clock: &impl Clock,
    ) -> Result<StoreLock, StoreError> {
        let path = self.sibling(".lock")?;
        ensure_dir(&self.dir())?;
        let file = open_lock_file(&path, "open lock file")?;
        let start = clock.now();
        loop {
            // SAFETY: flock on a descriptor owned by `file`; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(StoreLock { file, path });
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => {}
                _ => return Err(io_err(&path, "lock", err)),
            }
            let waited = clock.now().saturating_sub(start);
            if waited >= timeout {
                return Err(StoreError::LockTimeout { path, waited });
            }
            clock.sleep(LOCK_POLL.min(timeout.saturating_sub(waited)));
        }
    }

    fn save_with(&self, t: &StoredTokens, fault: Fault) -> Result<SaveOutcome, StoreError> {
        let bytes = encode(t).map_err(|detail| StoreError::Invalid {
            path: self.path.clone(),
            detail,
        })?;
        self.remove_stale_temps();
        // A file we cannot read or parse is simply replaced; only identical bytes are skipped.
        if let Ok(Some(current)) = self.read_current() {
            if current == bytes {
                self.ensure_private()?;
                return Ok(SaveOutcome::Unchanged);
            }
        }
        let dir = self.dir();
        ensure_dir(&dir)?;
        let (file, temp) = self.create_temp(&dir, fault)?;
        finish_write(&self.path, &dir, file, temp, &bytes, false, fault)?;
        Ok(SaveOutcome::Written)
    }

    /// Does every step of a save that does not need the new content, so that they happen before
    /// a rotating refresh token is spent rather than after: stale temp files are removed, the
    /// directory is created if missing, the temp file is created (`O_EXCL`, 0600) and room is
    /// reserved in it (twice the current file's size plus 4 KiB).
    ///
    /// Two things follow. A read-only or full filesystem is reported here, while the old refresh
    /// token still works, instead of after the server has already rotated it. And once the
    /// answer arrives, only write, fsync and rename remain before the new refresh token is safe:
    /// that is the window in which a power cut (or SIGKILL) loses a grant at a provider with
    /// strict rotation and reuse detection.
    ///
    /// Space is reserved with `fallocate(2)`. Filesystems without it (UBIFS, JFFS2) get the room
    /// written with incompressible filler instead: it stays in the page cache and is overwritten
    /// before the fsync, so it does not reach the flash in the normal case.
    pub fn prepare_save(&self) -> Result<PreparedSave, StoreError> {
        self.prepare_save_with(no_fault)
    }

    fn prepare_save_with(&self, fault: Fault) -> Result<PreparedSave, StoreError> {
        self.remove_stale_temps();
        let dir = self.dir();
        ensure_dir(&dir)?;
        let current = match fs::metadata(&self.path) {
            Ok(m) if m.is_file() => m.len().min(MAX_FILE_BYTES),
            _ => 0,
        };
        let reserve = current
            .saturating_mul(2)
            .saturating_add(RESERVE_SLACK)
            .min(MAX_FILE_BYTES);
        let (file, temp) = self.create_temp(&dir, fault)?;
        fault(OP_RESERVE)
            .and_then(|()| reserve_space(&file, reserve))
            .map_err(|e| io_err(&self.path, OP_RESERVE, e))?;
        Ok(PreparedSave {
            path: self.path.clone(),
            dir,
            file,
            temp,
        })
    }

    /// `.<file>.tmp.<pid>.<n>` in the store's directory, created `O_EXCL` with mode 0600.
    fn create_temp(&self, dir: &Path, fault: Fault) -> Result<(File, TempFile), StoreError> {
        let prefix = self.temp_prefix()?;
        let pid = std::process::id();
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..TEMP_ATTEMPTS {
            let mut name = prefix.clone();
            name.push(format!(
                "{pid}.{}",
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let mut temp = TempFile::register(dir.join(&name), name);
            let opened = fault(OP_CREATE_TEMP).and_then(|()| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temp.path)
            });
            match opened {
                Ok(file) => {
                    temp.created = true;
                    // The umask can only remove bits from 0600; make the mode exact anyway.
                    file.set_permissions(fs::Permissions::from_mode(0o600))
                        .map_err(|e| io_err(&self.path, OP_CREATE_TEMP, e))?;
                    return Ok((file, temp));
                }
                // Someone else's file (a pid reused after a reboot): never touch it, try a new n.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(io_err(&self.path, OP_CREATE_TEMP, e)),
            }
        }
        Err(io_err(&self.path, OP_CREATE_TEMP, last))
    }

    /// The current file's bytes, `None` when there is none; bounded by [`MAX_FILE_BYTES`].
    fn read_current(&self) -> Result<Option<Vec<u8>>, StoreError> {
        // O_NONBLOCK: a FIFO planted at the path must not hang us; no effect on regular files.
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&self.path, "open", e)),
        };
        let meta = file.metadata().map_err(|e| io_err(&self.path, "stat", e))?;
        if !meta.is_file() {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "not a regular file".to_string(),
            });
        }
        let too_large = |size| StoreError::TooLarge {
            path: self.path.clone(),
            size,
        };
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // Read one byte past the cap so a file that grew since fstat is still caught.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&self.path, "read", e))?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > MAX_FILE_BYTES {
            return Err(too_large(size));
        }
        Ok(Some(bytes))
    }

    /// An unchanged file that someone made group/world-readable is put back to 0600 (metadata
    /// only, no data write).
    fn ensure_private(&self) -> Result<(), StoreError> {
        let meta = fs::metadata(&self.path).map_err(|e| io_err(&self.path, "stat", e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600))
                .map_err(|e| io_err(&self.path, "set permissions", e))?;
        }
        Ok(())
    }

    /// Removes this store's temp files left by a crash or power cut: those of processes that no
    /// longer exist, and our own that no thread is writing. Best effort, errors ignored.
    ///
    /// A temp file of a live process is kept even if it is stale (a pid reused after a reboot);
    /// it goes once that pid is gone. A writer in another pid namespace sharing the directory
    /// looks dead: its save would then fail at the rename and leave the old file intact.
    fn remove_stale_temps(&self) {
        let Ok(prefix) = self.temp_prefix() else {
            return;
        };
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(suffix) = name.as_bytes().strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(true);
            if !is_dir && temp_is_stale(&name, suffix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn file_name(&self) -> Result<&OsStr, StoreError> {
        self.path.file_name().ok_or_else(|| {
            io_err(
                &self.path,
                "resolve path",
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            )
        })
    }

    /// `.<file>.tmp.`
    fn temp_prefix(&self) -> Result<OsString, StoreError> {
        let mut prefix = OsString::from(".");
        prefix.push(self.file_name()?);
        prefix.push(".tmp.");
        Ok(prefix)
    }

    /// The path with `suffix` appended to the file name.
    fn sibling(&self, suffix: &str) -> Result<PathBuf, StoreError> {
        let mut name = self.file_name()?.to_os_string();
        name.push(suffix);
        Ok(self.path.with_file_name(name))
    }
}

mod error;
mod expiry;
mod format;
mod lock;
mod refusal;
mod write;

pub use agent_lock::*;
pub use error::*;
pub use expiry::*;
pub use format::*;
pub use lock::*;
pub use refusal::*;
use write::*;

#[cfg(test)]
mod tests;
