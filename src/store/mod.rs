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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// When an access token was obtained and for how long it was granted, anchored to both clocks so
/// that the answer survives a wrong wall clock within a boot and a reboot with a good one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// `expires_in` as granted (already clamped by the caller).
    pub lifetime_secs: u64,
    /// Wall-clock seconds when obtained (the server's `Date` header when present).
    pub obtained_unix: i64,
    /// `/proc/sys/kernel/random/boot_id` at that moment.
    pub boot_id: Option<String>,
    /// CLOCK_BOOTTIME at that moment, in milliseconds.
    pub obtained_boottime_ms: u64,
}

/// One reading of everything [`Expiry`] needs to know about "now".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeNow {
    pub wall: SystemTime,
    pub boot_id: Option<String>,
    pub boottime: Duration,
}

impl TimeNow {
    /// Reads the clock and the current boot id.
    pub fn read(clock: &impl Clock) -> TimeNow {
        TimeNow {
            wall: clock.wall(),
            boot_id: clock::boot_id(),
            boottime: clock.now(),
        }
    }

    /// A later reading of the clocks, keeping this reading's boot id (a process never outlives
    /// its boot). Used right after a token answer arrives, where every syscall saved narrows the
    /// window in which a power cut loses a rotated refresh token.
    pub fn again(&self, clock: &impl Clock) -> TimeNow {
        TimeNow {
            wall: clock.wall(),
            boot_id: self.boot_id.clone(),
            boottime: clock.now(),
        }
    }
}

impl Expiry {
    /// A token granted for `lifetime`, issued at `obtained_wall` (the server's `Date` when it sent
    /// one, else the local wall clock) and received at `now`.
    pub fn new(lifetime: Duration, obtained_wall: SystemTime, now: &TimeNow) -> Expiry {
        Expiry {
            lifetime_secs: lifetime.as_secs(),
            obtained_unix: clock::unix_secs(obtained_wall),
            boot_id: now.boot_id.clone(),
            obtained_boottime_ms: duration_ms(now.boottime),
        }
    }

    /// Time left, or `None` when it cannot be trusted (the caller then refreshes now).
    ///
    /// - Same boot (both boot ids known and equal) and boottime has not gone backwards:
    ///   lifetime minus elapsed CLOCK_BOOTTIME, which counts through suspend and ignores the wall
    ///   clock entirely, so a clock set or jumped meanwhile changes nothing.
    /// - Otherwise only the wall clock links the two moments. It is trusted only if both readings
    ///   are plausible (not before [`MIN_PLAUSIBLE_UNIX`]) and now is not earlier than the anchor
    ///   by more than [`WALL_CLOCK_SKEW`]; a clock that went back is `None`, a clock that jumped
    ///   forward makes the token look expired (`Some(0)`), which is the safe direction.
    ///
    /// The result never exceeds the granted lifetime.
    pub fn remaining(&self, now: &TimeNow) -> Option<Duration> {
        let lifetime = Duration::from_secs(self.lifetime_secs);
        let same_boot = matches!((&self.boot_id, &now.boot_id), (Some(a), Some(b)) if a == b);
        let now_ms = duration_ms(now.boottime);
        if same_boot && now_ms >= self.obtained_boottime_ms {
            let elapsed = Duration::from_millis(now_ms.saturating_sub(self.obtained_boottime_ms));
            return Some(lifetime.saturating_sub(elapsed));
        }
        let now_unix = clock::unix_secs(now.wall);
        if now_unix < MIN_PLAUSIBLE_UNIX || self.obtained_unix < MIN_PLAUSIBLE_UNIX {
            return None;
        }
        let elapsed = i128::from(now_unix) - i128::from(self.obtained_unix);
        if elapsed < -i128::from(WALL_CLOCK_SKEW.as_secs()) {
            return None;
        }
        // Within the skew allowance the token counts as just obtained, never as younger.
        let elapsed = u64::try_from(elapsed.max(0)).unwrap_or(u64::MAX);
        Some(Duration::from_secs(
            self.lifetime_secs.saturating_sub(elapsed),
        ))
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The content of the token file: the tokens and whose they are, so that a config pointing at
/// another client or provider is detected instead of sending one provider's token to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTokens {
    pub client_id: String,
    pub token_endpoint: String,
    pub tokens: TokenSet,
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

fn io_err(path: &Path, op: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The token file at one path.
#[derive(Clone, Debug)]
pub struct TokenStore {
    path: PathBuf,
}

/// An exclusive lock on the store, across processes; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl StoreLock {
    /// The lock file (`<token file>.lock`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first also covers a descriptor
        // that was duplicated somewhere.
        // SAFETY: flock on a descriptor we own; no memory is involved.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, "open lock file", e))?;
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

impl PreparedSave {
    /// Writes `t` into the prepared temp file, cuts off the reserved room, fsyncs, renames it
    /// over the token file and fsyncs the directory. Unlike [`TokenStore::save`] it does not read
    /// the current file to skip an identical write: a save is prepared because new tokens are
    /// coming. On any failure before the rename the old file is left as it was.
    pub fn commit(self, t: &StoredTokens) -> Result<SaveOutcome, StoreError> {
        self.commit_with(t, no_fault)
    }

    fn commit_with(self, t: &StoredTokens, fault: Fault) -> Result<SaveOutcome, StoreError> {
        let PreparedSave {
            path,
            dir,
            file,
            temp,
        } = self;
        let bytes = encode(t).map_err(|detail| StoreError::Invalid {
            path: path.clone(),
            detail,
        })?;
        finish_write(&path, &dir, file, temp, &bytes, true, fault)?;
        Ok(SaveOutcome::Written)
    }
}

/// Write, fsync, rename, fsync the directory: the steps of a save once the temp file exists.
/// `reserved`: the file holds reserved room past `bytes.len()` that must be cut off. The temp
/// file is removed on every failure before the rename, so the old file stays as it was.
fn finish_write(
    path: &Path,
    dir: &Path,
    file: File,
    temp: TempFile,
    bytes: &[u8],
    reserved: bool,
    fault: Fault,
) -> Result<(), StoreError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    fault(OP_WRITE_TEMP)
        .and_then(|()| file.write_all_at(bytes, 0))
        .and_then(|()| if reserved { file.set_len(len) } else { Ok(()) })
        .map_err(|e| io_err(path, OP_WRITE_TEMP, e))?;
    // One fsync of the file (data and size) and one of the directory: nothing is synced twice.
    fault(OP_FSYNC_TEMP)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(path, OP_FSYNC_TEMP, e))?;
    drop(file);
    fault(OP_RENAME)
        .and_then(|()| fs::rename(&temp.path, path))
        .map_err(|e| io_err(path, OP_RENAME, e))?;
    temp.renamed();
    // The new file is in place from here on; a failure only means it may not survive a
    // power cut, which the caller should hear about.
    fault(OP_FSYNC_DIR)
        .and_then(|()| sync_dir(dir))
        .map_err(|e| io_err(dir, OP_FSYNC_DIR, e))
}

/// Makes sure `len` bytes can be written to the (empty) `file` without running out of space.
fn reserve_space(file: &File, len: u64) -> io::Result<()> {
    let Ok(off_len) = libc::off_t::try_from(len) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: fallocate on a descriptor owned by `file`; no memory is involved.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, off_len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    ) {
        return Err(err);
    }
    // No fallocate (UBIFS, JFFS2): write the room, with filler that does not compress so that
    // a compressing filesystem really sets aside that much space.
    let filler = filler(usize::try_from(len).unwrap_or(0));
    file.write_all_at(&filler, 0)
}

/// `len` pseudo-random bytes (xorshift64): cheap, and nothing a filesystem can compress away.
fn filler(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Distinguishes the temp files of concurrent saves within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Names of temp files this process is writing right now, so cleanup by another thread leaves
/// them alone. Names embed our pid and a process-wide counter, so they are unique.
static IN_FLIGHT: Mutex<Vec<OsString>> = Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<OsString>> {
    // A panic while holding this lock cannot leave the list inconsistent; keep going.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temp file being written: registered as in flight, removed on drop unless renamed.
struct TempFile {
    path: PathBuf,
    name: OsString,
    created: bool,
}

impl TempFile {
    fn register(path: PathBuf, name: OsString) -> TempFile {
        in_flight().push(name.clone());
        TempFile {
            path,
            name,
            created: false,
        }
    }

    /// The file now lives under the target name; nothing to remove.
    fn renamed(mut self) {
        self.created = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_file(&self.path);
        }
        let mut list = in_flight();
        if let Some(i) = list.iter().position(|n| *n == self.name) {
            list.swap_remove(i);
        }
    }
}

/// Whether a temp file named `name` (`suffix` is what follows this store's prefix, normally
/// `<pid>.<n>`) was left behind by a writer that is gone.
fn temp_is_stale(name: &OsStr, suffix: &[u8]) -> bool {
    let pid = std::str::from_utf8(suffix)
        .ok()
        .and_then(|s| s.split('.').next())
        .and_then(|p| p.parse::<libc::pid_t>().ok());
    let Some(pid) = pid.filter(|p| *p > 0) else {
        // Our prefix but not our pattern: nothing of ours is writing it.
        return true;
    };
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        return !in_flight().iter().any(|n| n == name);
    }
    // SAFETY: signal 0 only checks that the process exists; `pid` > 0 so it never addresses a
    // process group.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Creates `dir` and its missing parents with mode 0700, fsyncing each new entry's parent.
/// Existing directories are left as they are (they may be a system's /var/lib).
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    for a in dir.ancestors() {
        if a.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(a) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                let e = io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(io_err(a, OP_CREATE_DIR, e));
            }
            // ENOTDIR: an ancestor is a file; keep walking so the error names that file.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                missing.push(a)
            }
            Err(e) => return Err(io_err(a, OP_CREATE_DIR, e)),
        }
    }
    for a in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o700).create(a) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && a.is_dir() => continue,
            Err(e) => return Err(io_err(a, OP_CREATE_DIR, e)),
        }
        let parent = match a.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent).map_err(|e| io_err(parent, OP_FSYNC_DIR, e))?;
    }
    Ok(())
}

/// fsync a directory so a rename or new entry in it is durable. Filesystems that cannot fsync a
/// directory say EINVAL; there is nothing more to do on those.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// The file as written: `format` and `version` first, then the fields.
#[derive(Serialize)]
struct FileV1<'a> {
    format: &'static str,
    version: u64,
    client_id: &'a str,
    token_endpoint: &'a str,
    token_type: &'a str,
    access_token: &'a Secret,
    refresh_token: Option<&'a Secret>,
    id_token: Option<&'a Secret>,
    scopes: &'a [String],
    account: Option<&'a str>,
    expiry: Option<&'a Expiry>,
}

/// The bytes `save` writes, or why `t` cannot be stored. The bytes are parsed back with the same
/// code `load` uses, so whatever is written can be read again (no limit enforced on one side only).
fn encode(t: &StoredTokens) -> Result<Vec<u8>, String> {
    let tk = &t.tokens;
    let file = FileV1 {
        format: FORMAT,
        version: VERSION,
        client_id: &t.client_id,
        token_endpoint: &t.token_endpoint,
        token_type: &tk.token_type,
        access_token: &tk.access_token,
        refresh_token: tk.refresh_token.as_ref(),
        id_token: tk.id_token.as_ref(),
        scopes: &tk.scopes,
        account: tk.account.as_deref(),
        expiry: tk.expiry.as_ref(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&file).map_err(|_| "cannot serialize the tokens".to_string())?;
    bytes.push(b'\n');
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "the file would be {size} bytes, over the {MAX_FILE_BYTES} byte limit"
        ));
    }
    match parse(&bytes) {
        Ok(back) if back == *t => Ok(bytes),
        Ok(_) => Err("the tokens do not survive a round trip through the file".to_string()),
        Err(Bad::Corrupt(detail)) => Err(detail),
        Err(Bad::Version(v)) => Err(format!("wrote version {v} but read another")),
    }
}

/// Parses token-file bytes exactly as [`TokenStore::load`] does, without touching the
/// filesystem (the fuzz targets and their corpus replay use it). `path` only names the file in
/// errors.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<StoredTokens, StoreError> {
    parse(bytes).map_err(|bad| match bad {
        Bad::Corrupt(detail) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        Bad::Version(version) => StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        },
    })
}

/// The bytes [`TokenStore::save`] would write for `t`, or why it would refuse (fuzzing: what
/// was read must be writable again).
pub fn encode_bytes(t: &StoredTokens, path: &Path) -> Result<Vec<u8>, StoreError> {
    encode(t).map_err(|detail| StoreError::Invalid {
        path: path.to_path_buf(),
        detail,
    })
}

/// Why file bytes are not a token file this build can use.
#[derive(Debug)]
enum Bad {
    Corrupt(String),
    Version(u64),
}

fn corrupt(detail: impl Into<String>) -> Bad {
    Bad::Corrupt(detail.into())
}

/// Parses a token file. Error details name fields, lines and columns, never values: serde's own
/// messages can quote the offending value, which may be a token, so they are not used.
fn parse(bytes: &[u8]) -> Result<StoredTokens, Bad> {
    if bytes.is_empty() {
        return Err(corrupt("the file is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        corrupt(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Eof => "truncated JSON",
            Category::Syntax => "malformed JSON",
            Category::Data => "unexpected JSON data",
            Category::Io => "unreadable JSON",
        };
        corrupt(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    let Value::Object(obj) = value else {
        return Err(corrupt("not a JSON object"));
    };
    match obj.get("format") {
        Some(Value::String(s)) if s == FORMAT => {}
        None => {
            return Err(corrupt(
                "field `format` is missing: not a devauth token file",
            ));
        }
        Some(_) => {
            return Err(corrupt(format!(
                "field `format` is not \"{FORMAT}\": not a devauth token file"
            )));
        }
    }
    let version = match obj.get("version") {
        None => return Err(corrupt("field `version` is missing")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| corrupt("field `version` is not an unsigned integer"))?,
    };
    if version != VERSION {
        return Err(Bad::Version(version));
    }

    let top = Fields { obj: &obj, at: "" };
    let client_id = top.string("client_id", MAX_ID_BYTES)?;
    let token_endpoint = top.string("token_endpoint", MAX_URL_BYTES)?;
    let access_token = top.string("access_token", MAX_TOKEN_BYTES)?;
    let token_type = top.string("token_type", MAX_TOKEN_TYPE_BYTES)?;
    for (key, value) in [
        ("client_id", &client_id),
        ("token_endpoint", &token_endpoint),
        ("access_token", &access_token),
    ] {
        if value.is_empty() {
            return Err(corrupt(format!("field `{key}` is empty")));
        }
    }
    let refresh_token = top.opt_string("refresh_token", MAX_TOKEN_BYTES)?;
    let id_token = top.opt_string("id_token", MAX_TOKEN_BYTES)?;
    let account = top.opt_string("account", MAX_ID_BYTES)?;
    let scopes = top.scopes("scopes")?;
    let expiry = match top.get("expiry") {
        None => None,
        Some(Value::Object(e)) => {
            let f = Fields {
                obj: e,
                at: "expiry.",
            };
            Some(Expiry {
                lifetime_secs: f.u64("lifetime_secs")?,
                obtained_unix: f.i64("obtained_unix")?,
                boot_id: f.opt_string("boot_id", MAX_BOOT_ID_BYTES)?,
                obtained_boottime_ms: f.u64("obtained_boottime_ms")?,
            })
        }
        Some(_) => return Err(corrupt("field `expiry` is not an object")),
    };
    Ok(StoredTokens {
        client_id,
        token_endpoint,
        tokens: TokenSet {
            access_token: Secret::new(access_token),
            token_type,
            refresh_token: refresh_token.map(Secret::new),
            id_token: id_token.map(Secret::new),
            scopes,
            account,
            expiry,
        },
    })
}

/// Typed, bounded access to one JSON object's fields; errors name the field (prefixed with `at`
/// for nested objects), never its value. `null` counts as absent.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    at: &'static str,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &str, what: &str) -> Bad {
        Bad::Corrupt(format!("field `{}{key}` {what}", self.at))
    }

    fn required(&self, key: &str) -> Result<&'a Value, Bad> {
        self.get(key).ok_or_else(|| self.bad(key, "is missing"))
    }

    fn string(&self, key: &str, max: usize) -> Result<String, Bad> {
        self.str_value(key, self.required(key)?, max)
    }

    fn opt_string(&self, key: &str, max: usize) -> Result<Option<String>, Bad> {
        self.get(key)
            .map(|v| self.str_value(key, v, max))
            .transpose()
    }

    fn str_value(&self, key: &str, v: &Value, max: usize) -> Result<String, Bad> {
        let s = v.as_str().ok_or_else(|| self.bad(key, "is not a string"))?;
        if s.len() > max {
            return Err(self.bad(key, &format!("is longer than {max} bytes")));
        }
        Ok(s.to_string())
    }

    fn u64(&self, key: &str) -> Result<u64, Bad> {
        self.required(key)?
            .as_u64()
            .ok_or_else(|| self.bad(key, "is not an unsigned integer"))
    }

    fn i64(&self, key: &str) -> Result<i64, Bad> {
        self.required(key)?
            .as_i64()
            .ok_or_else(|| self.bad(key, "is not an integer"))
    }

    /// A list of strings; absent means none.
    fn scopes(&self, key: &str) -> Result<Vec<String>, Bad> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let list = v.as_array().ok_or_else(|| self.bad(key, "is not a list"))?;
        if list.len() > MAX_SCOPES {
            return Err(self.bad(key, &format!("has more than {MAX_SCOPES} entries")));
        }
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s
                    .as_str()
                    .ok_or_else(|| self.bad(&format!("{key}[{i}]"), "is not a string"))?;
                if s.len() > MAX_SCOPE_BYTES {
                    return Err(self.bad(
                        &format!("{key}[{i}]"),
                        &format!("is longer than {MAX_SCOPE_BYTES} bytes"),
                    ));
                }
                Ok(s.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fake::FakeClock;
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    const SECRET: &str = "ya29.SECRET-do-not-leak-7f3a";
    const T0: i64 = 1_800_000_000; // 2027-01-15, what FakeClock starts at

    fn sample() -> StoredTokens {
        StoredTokens {
            client_id: "client-123".into(),
            token_endpoint: "https://oauth2.example.com/token".into(),
            tokens: TokenSet {
                access_token: Secret::new(SECRET),
                token_type: "Bearer".into(),
                refresh_token: Some(Secret::new("1//refresh-secret")),
                id_token: Some(Secret::new("eyJhbGciOi.id.token")),
                scopes: vec!["openid".into(), "email".into()],
                account: Some("user@example.com".into()),
                expiry: Some(Expiry {
                    lifetime_secs: 3600,
                    obtained_unix: T0,
                    boot_id: Some("boot-a".into()),
                    obtained_boottime_ms: 1_000_000,
                }),
            },
        }
    }

    fn minimal() -> StoredTokens {
        StoredTokens {
            client_id: "Iv1.github".into(),
            token_endpoint: "https://github.com/login/oauth/access_token".into(),
            tokens: TokenSet {
                access_token: Secret::new("gho_abc"),
                token_type: "bearer".into(),
                refresh_token: None,
                id_token: None,
                scopes: vec![],
                account: None,
                expiry: None,
            },
        }
    }

    fn store_in(dir: &tempfile::TempDir) -> TokenStore {
        TokenStore::new(dir.path().join("tokens.json"))
    }

    fn temps(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tokens.json.tmp."))
            .collect();
        names.sort();
        names
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    // ---- expiry ----

    fn wall(unix: i64) -> SystemTime {
        if unix >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(unix as u64)
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
        }
    }

    fn now(wall_unix: i64, boot_id: Option<&str>, boottime_secs: u64) -> TimeNow {
        TimeNow {
            wall: wall(wall_unix),
            boot_id: boot_id.map(str::to_string),
            boottime: Duration::from_secs(boottime_secs),
        }
    }

    /// Granted for an hour at T0, boot "a", 1000 s after boot.
    fn granted() -> Expiry {
        Expiry::new(
            Duration::from_secs(3600),
            wall(T0),
            &now(T0, Some("a"), 1000),
        )
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn expiry_new_records_both_clocks() {
        let n = TimeNow {
            wall: wall(T0 + 5),
            boot_id: Some("a".into()),
            boottime: Duration::from_millis(1_000_500),
        };
        // The server's Date (T0) is the anchor, not the local clock; lifetime rounds down.
        let e = Expiry::new(Duration::from_millis(3_600_900), wall(T0), &n);
        assert_eq!(
            e,
            Expiry {
                lifetime_secs: 3600,
                obtained_unix: T0,
                boot_id: Some("a".into()),
                obtained_boottime_ms: 1_000_500,
            }
        );
    }

    #[test]
    fn time_now_reads_the_clock_and_boot_id() {
        let c = FakeClock::new();
        let n = TimeNow::read(&c);
        assert_eq!(n.wall, c.wall.get());
        assert_eq!(n.boottime, c.now.get());
        assert_eq!(n.boot_id, clock::boot_id());
    }

    #[test]
    fn same_boot_counts_boottime() {
        assert_eq!(
            granted().remaining(&now(T0 + 600, Some("a"), 1600)),
            secs(3000)
        );
        // Boottime counts through suspend: the wall clock not having moved changes nothing.
        assert_eq!(granted().remaining(&now(T0, Some("a"), 1600)), secs(3000));
    }

    #[test]
    fn same_boot_ignores_a_wrong_wall_clock() {
        // NTP stepped the clock back to 1970, or forward by decades: boottime decides.
        assert_eq!(granted().remaining(&now(0, Some("a"), 1600)), secs(3000));
        assert_eq!(
            granted().remaining(&now(T0 + 3_000_000_000, Some("a"), 1600)),
            secs(3000)
        );
    }

    #[test]
    fn same_boot_expired_saturates_at_zero() {
        assert_eq!(
            granted().remaining(&now(T0, Some("a"), 1000 + 3600)),
            secs(0)
        );
        assert_eq!(
            granted().remaining(&now(T0, Some("a"), 1000 + 99_999)),
            secs(0)
        );
    }

    #[test]
    fn boottime_going_backwards_falls_back_to_the_wall_clock() {
        // Same boot id but boottime below the anchor cannot happen honestly; do not trust it.
        assert_eq!(
            granted().remaining(&now(T0 + 600, Some("a"), 500)),
            secs(3000)
        );
        assert_eq!(granted().remaining(&now(30, Some("a"), 500)), None);
    }

    #[test]
    fn reboot_with_a_1970_clock_is_untrusted() {
        assert_eq!(granted().remaining(&now(30, Some("b"), 20)), None);
        assert_eq!(granted().remaining(&now(-5, Some("b"), 20)), None);
    }

    #[test]
    fn reboot_with_a_clock_behind_the_anchor_is_untrusted() {
        assert_eq!(granted().remaining(&now(T0 - 3600, Some("b"), 20)), None);
        let skew = WALL_CLOCK_SKEW.as_secs() as i64;
        assert_eq!(
            granted().remaining(&now(T0 - skew - 1, Some("b"), 20)),
            None
        );
    }

    #[test]
    fn reboot_within_skew_counts_as_just_obtained_never_more() {
        let skew = WALL_CLOCK_SKEW.as_secs() as i64;
        assert_eq!(
            granted().remaining(&now(T0 - skew, Some("b"), 20)),
            secs(3600)
        );
        assert_eq!(granted().remaining(&now(T0 - 1, Some("b"), 20)), secs(3600));
    }

    #[test]
    fn reboot_with_a_synced_clock_uses_the_wall_clock() {
        assert_eq!(
            granted().remaining(&now(T0 + 600, Some("b"), 20)),
            secs(3000)
        );
        assert_eq!(granted().remaining(&now(T0 + 3600, Some("b"), 20)), secs(0));
    }

    #[test]
    fn reboot_with_a_clock_jumped_forward_means_expired() {
        let ten_years = 10 * 365 * 86_400;
        assert_eq!(
            granted().remaining(&now(T0 + ten_years, Some("b"), 20)),
            secs(0)
        );
    }

    #[test]
    fn unknown_boot_ids_use_the_wall_clock() {
        let mut e = granted();
        e.boot_id = None;
        // Boottime alone would say 3000 s left; without a boot id it cannot be compared.
        assert_eq!(e.remaining(&now(T0 + 3500, Some("a"), 1600)), secs(100));
        assert_eq!(e.remaining(&now(T0 + 3500, None, 1600)), secs(100));
        assert_eq!(granted().remaining(&now(T0 + 3500, None, 1600)), secs(100));
        assert_eq!(e.remaining(&now(30, None, 1600)), None);
    }

    #[test]
    fn an_anchor_taken_with_an_unsynced_clock_is_untrusted_after_reboot() {
        // Obtained at "1970 + 100 s" (no Date header, clock not yet set), read back after a
        // reboot still in 1970: the two wall readings say nothing about the time between them.
        let e = Expiry::new(
            Duration::from_secs(3600),
            wall(100),
            &now(100, Some("a"), 10),
        );
        assert_eq!(e.remaining(&now(160, Some("b"), 10)), None);
        // Within that boot, boottime still works.
        assert_eq!(e.remaining(&now(160, Some("a"), 70)), secs(3540));
    }

    #[test]
    fn remaining_never_exceeds_lifetime_even_at_the_extremes() {
        let anchors = [i64::MIN, -1, 0, MIN_PLAUSIBLE_UNIX, T0, i64::MAX];
        let walls = [i64::MIN / 2, 0, MIN_PLAUSIBLE_UNIX, T0, i64::MAX / 2];
        for lifetime in [0, 1, 3600, u64::MAX] {
            for obtained_unix in anchors {
                for ms in [0, 1_000_000, u64::MAX] {
                    let e = Expiry {
                        lifetime_secs: lifetime,
                        obtained_unix,
                        boot_id: Some("a".into()),
                        obtained_boottime_ms: ms,
                    };
                    for w in walls {
                        for boot in [Some("a"), Some("b"), None] {
                            for bt in [Duration::ZERO, Duration::from_secs(1000), Duration::MAX] {
                                let n = TimeNow {
                                    wall: wall(w),
                                    boot_id: boot.map(str::to_string),
                                    boottime: bt,
                                };
                                if let Some(r) = e.remaining(&n) {
                                    assert!(r <= Duration::from_secs(lifetime));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- file format ----

    #[test]
    fn round_trip_full_and_minimal() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        assert_eq!(store.load().unwrap(), None);
        for t in [sample(), minimal()] {
            assert_eq!(store.save(&t).unwrap(), SaveOutcome::Written);
            assert_eq!(store.load().unwrap(), Some(t));
        }
        assert_eq!(store.path(), dir.path().join("tokens.json"));
    }

    #[test]
    fn file_starts_with_format_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(
            text.starts_with("{\n  \"format\": \"devauth-tokens\",\n  \"version\": 1,\n"),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["access_token"], SECRET);
        assert_eq!(v["expiry"]["obtained_boottime_ms"], 1_000_000);
        assert_eq!(v["refresh_token"], "1//refresh-secret");
    }

    #[test]
    fn debug_output_redacts_tokens() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains(SECRET));
        assert!(!shown.contains("refresh-secret"));
        assert!(shown.contains("user@example.com"));
    }

    #[test]
    fn load_accepts_absent_and_null_optional_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let json = r#"{"format":"devauth-tokens","version":1,"client_id":"c",
            "token_endpoint":"https://t","access_token":"a","token_type":"Bearer",
            "refresh_token":null,"expiry":null,"some_future_field":[1,2]}"#;
        fs::write(store.path(), json).unwrap();
        let t = store.load().unwrap().unwrap();
        assert_eq!(t.tokens.refresh_token, None);
        assert_eq!(t.tokens.expiry, None);
        assert!(t.tokens.scopes.is_empty());
    }

    // ---- write path ----

    #[test]
    fn file_is_0600_and_created_directories_are_0700() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("a/b/tokens.json"));
        store.save(&sample()).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        store_in(&dir).save(&sample()).unwrap();
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn unchanged_save_does_not_touch_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        let before = fs::metadata(store.path()).unwrap();
        assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
        let after = fs::metadata(store.path()).unwrap();
        assert_eq!(
            (before.ino(), before.mtime(), before.mtime_nsec()),
            (after.ino(), after.mtime(), after.mtime_nsec())
        );
        assert_eq!(
            (before.ctime(), before.ctime_nsec()),
            (after.ctime(), after.ctime_nsec())
        );

        let mut changed = sample();
        changed.tokens.access_token = Secret::new("ya29.next");
        assert_eq!(store.save(&changed).unwrap(), SaveOutcome::Written);
        assert_ne!(fs::metadata(store.path()).unwrap().ino(), before.ino());
        assert_eq!(store.load().unwrap(), Some(changed));
        assert!(temps(dir.path()).is_empty());
    }

    #[test]
    fn unchanged_save_puts_a_loosened_mode_back_to_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn a_file_that_differs_only_in_formatting_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        let compact: Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        fs::write(store.path(), serde_json::to_vec(&compact).unwrap()).unwrap();
        assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Written);
    }

    #[test]
    fn stale_temps_are_removed_on_load_and_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let own = std::process::id();
        let stale = [
            ".tokens.json.tmp.2147483647.0".to_string(), // no such process (above pid_max)
            format!(".tokens.json.tmp.{own}.999999"),    // ours, but no thread writes it
            ".tokens.json.tmp.garbage".to_string(),
            ".tokens.json.tmp.0.1".to_string(),
        ];
        let kept = [
            ".tokens.json.tmp.1.0",         // pid 1 is alive: may be mid-write
            ".other.json.tmp.2147483647.0", // another store's
            "tokens.json.lock",
            "tokens.json.bak",
        ];
        let plant = || {
            for n in stale.iter().map(String::as_str).chain(kept) {
                fs::write(dir.path().join(n), "x").unwrap();
            }
        };
        plant();
        assert_eq!(store.load().unwrap(), None);
        assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
        for n in kept {
            assert!(dir.path().join(n).exists(), "{n}");
        }
        plant();
        assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Written);
        assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
        plant();
        assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
        assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
    }

    #[test]
    fn a_temp_file_being_written_by_this_process_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let name = OsString::from(format!(".tokens.json.tmp.{}.888888", std::process::id()));
        let path = dir.path().join(&name);
        let temp = TempFile::register(path.clone(), name);
        fs::write(&path, "partial").unwrap();
        store.load().unwrap();
        assert!(path.exists(), "an in-flight temp file was removed");
        drop(temp); // not marked created: the guard leaves the file, cleanup now may take it
        store.load().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn save_refuses_what_load_would_reject() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let mut big = sample();
        big.tokens.access_token = Secret::new(SECRET.repeat(MAX_TOKEN_BYTES / SECRET.len() + 1));
        let err = store.save(&big).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("field `access_token` is longer than 16384 bytes")
        );
        assert!(!err.to_string().contains(SECRET));

        let mut empty = sample();
        empty.tokens.access_token = Secret::new("");
        let err = store.save(&empty).unwrap_err();
        assert!(
            err.to_string().contains("field `access_token` is empty"),
            "{err}"
        );

        let mut scopes = sample();
        scopes.tokens.scopes = vec!["s".into(); MAX_SCOPES + 1];
        assert!(matches!(
            store.save(&scopes),
            Err(StoreError::Invalid { .. })
        ));
        assert!(!store.path().exists());
        assert!(temps(dir.path()).is_empty());
    }

    fn fail_at(op: &'static str, step: &'static str) -> io::Result<()> {
        if op == step {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            Ok(())
        }
    }

    #[test]
    fn a_failure_before_the_rename_keeps_the_old_file_and_removes_the_temp() {
        let faults: [(&str, Fault); 4] = [
            (OP_CREATE_TEMP, |op| fail_at(op, OP_CREATE_TEMP)),
            (OP_WRITE_TEMP, |op| fail_at(op, OP_WRITE_TEMP)),
            (OP_FSYNC_TEMP, |op| fail_at(op, OP_FSYNC_TEMP)),
            (OP_RENAME, |op| fail_at(op, OP_RENAME)),
        ];
        for (step, fault) in faults {
            let dir = tempfile::tempdir().unwrap();
            let store = store_in(&dir);
            store.save(&minimal()).unwrap();
            let err = store.save_with(&sample(), fault).unwrap_err();
            match &err {
                StoreError::Io { path, op, source } => {
                    assert_eq!((path.as_path(), *op), (store.path(), step));
                    assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
                }
                other => panic!("{step}: {other}"),
            }
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!("token store {}: {step}: ", store.path().display()))
            );
            assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
            assert!(
                temps(dir.path()).is_empty(),
                "{step}: {:?}",
                temps(dir.path())
            );
        }
    }

    #[test]
    fn a_directory_fsync_failure_is_reported_after_the_new_file_is_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let err = store
            .save_with(&sample(), |op| fail_at(op, OP_FSYNC_DIR))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: OP_FSYNC_DIR, path, .. } if path == dir.path()),
            "{err}"
        );
        assert_eq!(store.load().unwrap(), Some(sample()));
        assert!(temps(dir.path()).is_empty());
    }

    // ---- prepared saves ----

    #[test]
    fn a_prepared_save_reserves_room_then_commits_exactly_the_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let old_len = fs::metadata(store.path()).unwrap().len();
        let prepared = store.prepare_save().unwrap();
        // The temp file exists, 0600, with the room reserved; the token file is untouched.
        let names = temps(dir.path());
        assert_eq!(names.len(), 1, "{names:?}");
        let temp = dir.path().join(&names[0]);
        assert_eq!(mode(&temp), 0o600);
        assert_eq!(
            fs::metadata(&temp).unwrap().len(),
            2 * old_len + RESERVE_SLACK
        );
        assert_eq!(store.load().unwrap(), Some(minimal()));
        assert!(
            temp.exists(),
            "load removed an in-flight prepared temp file"
        );
        assert_eq!(prepared.commit(&sample()).unwrap(), SaveOutcome::Written);
        assert_eq!(fs::read(store.path()).unwrap(), encode(&sample()).unwrap());
        assert_eq!(store.load().unwrap(), Some(sample()));
        assert_eq!(mode(store.path()), 0o600);
        assert!(temps(dir.path()).is_empty());
    }

    #[test]
    fn a_dropped_prepared_save_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("state/tokens.json"));
        let prepared = store.prepare_save().unwrap();
        // A missing directory is created (0700) at preparation.
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        drop(prepared);
        assert!(temps(&dir.path().join("state")).is_empty());
        assert!(!store.path().exists());
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_failed_preparation_keeps_the_old_file_and_names_the_step() {
        let faults: [(&str, Fault); 2] = [
            (OP_CREATE_TEMP, |op| fail_at(op, OP_CREATE_TEMP)),
            (OP_RESERVE, |op| fail_at(op, OP_RESERVE)),
        ];
        for (step, fault) in faults {
            let dir = tempfile::tempdir().unwrap();
            let store = store_in(&dir);
            store.save(&minimal()).unwrap();
            let err = store.prepare_save_with(fault).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("token store {}: {step}: ", store.path().display())),
                "{err}"
            );
            assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
            assert!(temps(dir.path()).is_empty(), "{step}");
        }
    }

    #[test]
    fn a_failed_commit_keeps_the_old_file_and_removes_the_temp() {
        for step in [OP_WRITE_TEMP, OP_FSYNC_TEMP, OP_RENAME] {
            let dir = tempfile::tempdir().unwrap();
            let store = store_in(&dir);
            store.save(&minimal()).unwrap();
            let prepared = store.prepare_save().unwrap();
            let fault: Fault = match step {
                OP_WRITE_TEMP => |op| fail_at(op, OP_WRITE_TEMP),
                OP_FSYNC_TEMP => |op| fail_at(op, OP_FSYNC_TEMP),
                _ => |op| fail_at(op, OP_RENAME),
            };
            let err = prepared.commit_with(&sample(), fault).unwrap_err();
            assert!(
                matches!(&err, StoreError::Io { op, .. } if *op == step),
                "{step}: {err}"
            );
            assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
            assert!(temps(dir.path()).is_empty(), "{step}");
        }
        // Content the format refuses is refused at commit, and nothing changes either.
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let mut empty = sample();
        empty.tokens.access_token = Secret::new("");
        let err = store.prepare_save().unwrap().commit(&empty).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert_eq!(store.load().unwrap(), Some(minimal()));
        assert!(temps(dir.path()).is_empty());
    }

    #[test]
    fn reserving_allocates_and_the_fallback_filler_does_not_compress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        reserve_space(&file, 1000).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 1000);
        assert!(reserve_space(&file, u64::MAX).is_err());
        // The filler written where fallocate is missing: exact length, no repeated 8-byte word
        // (so neither LZO nor zlib on UBIFS/JFFS2 can shrink it much).
        let f = filler(4099);
        assert_eq!(f.len(), 4099);
        let words: std::collections::HashSet<&[u8]> = f.chunks(8).collect();
        assert_eq!(words.len(), 4099usize.div_ceil(8));
    }

    #[test]
    fn time_again_keeps_the_boot_id_and_rereads_the_clock() {
        let clock = FakeClock::new();
        let first = TimeNow::read(&clock);
        clock.sleep(Duration::from_secs(7));
        let later = first.again(&clock);
        assert_eq!(later.boot_id, first.boot_id);
        assert_eq!(later.boottime, first.boottime + Duration::from_secs(7));
    }

    const EFBIG_CHILD_ENV: &str = "DEVAUTH_STORE_EFBIG_CHILD";

    /// A real write failure the kernel enforces even for root: RLIMIT_FSIZE makes write(2) fail
    /// with EFBIG part-way through the temp file (like ENOSPC on a full partition). It runs in a
    /// child process because the limit is process-wide.
    #[test]
    fn a_real_write_failure_keeps_the_old_file_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::tests::efbig_child", "--test-threads=1"])
            .env(EFBIG_CHILD_ENV, store.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(store.load().unwrap(), Some(minimal()));
        assert!(temps(dir.path()).is_empty());
    }

    /// The child half of the test above; does nothing when run normally.
    #[test]
    fn efbig_child() {
        let Some(path) = std::env::var_os(EFBIG_CHILD_ENV) else {
            return;
        };
        // SAFETY: plain libc calls on this (child) process; `lim` is a valid rlimit.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
            lim.rlim_cur = 512;
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let mut big = sample();
        big.tokens.access_token = Secret::new("x".repeat(4096));
        let err = TokenStore::new(path).save(&big).unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: OP_WRITE_TEMP, source, .. }
                if source.raw_os_error() == Some(libc::EFBIG)),
            "{err}"
        );
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error_naming_path_and_step() {
        // Root ignores chmod, so "cannot write here" is made with a file where a directory
        // should be.
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "x").unwrap();
        let store = TokenStore::new(blocker.join("sub/tokens.json"));
        let err = store.save(&sample()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: OP_CREATE_DIR, path, .. } if *path == blocker),
            "{err}"
        );
        assert!(
            err.to_string().contains("not-a-dir: create directory: "),
            "{err}"
        );
        assert!(matches!(
            store.load(),
            Err(StoreError::Io { op: "open", .. })
        ));
        assert!(matches!(
            store.lock(Duration::ZERO),
            Err(StoreError::Io { .. })
        ));
        assert_eq!(fs::read_to_string(&blocker).unwrap(), "x");
    }

    #[test]
    fn a_directory_at_the_path_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        fs::create_dir(store.path()).unwrap();
        let err = store.load().unwrap_err();
        assert!(
            err.to_string()
                .ends_with("corrupt file: not a regular file"),
            "{err}"
        );
        let err = store.save(&sample()).unwrap_err();
        assert!(matches!(err, StoreError::Io { op: OP_RENAME, .. }), "{err}");
        assert!(temps(dir.path()).is_empty());
        assert!(store.path().is_dir());
    }

    #[test]
    fn a_fifo_at_the_path_does_not_hang_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let c = std::ffi::CString::new(store.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        let store = TokenStore::new("/");
        assert!(matches!(
            store.save(&sample()),
            Err(StoreError::Io {
                op: "resolve path",
                ..
            })
        ));
    }

    #[test]
    fn delete_removes_the_file_and_keeps_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        assert!(!store.delete().unwrap());
        store.save(&sample()).unwrap();
        drop(store.lock(Duration::ZERO).unwrap());
        assert!(store.delete().unwrap());
        assert!(!store.path().exists());
        assert!(dir.path().join("tokens.json.lock").exists());
        assert_eq!(store.load().unwrap(), None);
        assert!(!store.delete().unwrap());
    }

    // ---- corrupt files ----

    fn load_bytes(bytes: &[u8]) -> StoreError {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        fs::write(store.path(), bytes).unwrap();
        let err = store.load().unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET), "secret leaked: {shown}");
        assert!(!shown.contains("SECRET"), "secret leaked: {shown}");
        err
    }

    fn corrupt_detail(bytes: &[u8]) -> String {
        match load_bytes(bytes) {
            StoreError::Corrupt { detail, .. } => detail,
            other => panic!("not Corrupt: {other}"),
        }
    }

    /// A valid file with `field` replaced by the raw JSON `value`.
    fn with_field(field: &str, value: &str) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&encode(&sample()).unwrap()).unwrap();
        let (outer, inner) = field.split_once('.').unwrap_or((field, ""));
        let replacement: Value = serde_json::from_str(value).unwrap();
        if inner.is_empty() {
            v[outer] = replacement;
        } else {
            v[outer][inner] = replacement;
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn empty_truncated_and_garbage_files_are_corrupt() {
        assert_eq!(corrupt_detail(b""), "the file is empty");
        let full = encode(&sample()).unwrap();
        let detail = corrupt_detail(&full[..full.len() / 2]);
        assert!(detail.starts_with("truncated JSON at line "), "{detail}");
        let detail = corrupt_detail(&[0x7b, 0xff, 0xfe, 0x00, 0x13]);
        assert_eq!(detail, "not UTF-8 text (invalid byte at offset 1)");
        let detail = corrupt_detail(b"hello world");
        assert_eq!(detail, "malformed JSON at line 1 column 1");
        assert_eq!(
            corrupt_detail(b"   \n"),
            "truncated JSON at line 2 column 0"
        );
        assert_eq!(corrupt_detail(b"[1, 2]"), "not a JSON object");
    }

    #[test]
    fn a_syntax_error_right_after_a_token_does_not_quote_it() {
        let text =
            format!(r#"{{"format":"devauth-tokens","version":1,"access_token":"{SECRET}" x}}"#);
        let detail = corrupt_detail(text.as_bytes());
        assert!(
            detail.starts_with("malformed JSON at line 1 column "),
            "{detail}"
        );
    }

    #[test]
    fn a_huge_file_is_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        File::create(store.path())
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        match store.load() {
            Err(StoreError::TooLarge { size, .. }) => assert_eq!(size, MAX_FILE_BYTES + 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn format_and_version_are_checked() {
        let detail = corrupt_detail(&with_field("format", r#""something-else""#));
        assert!(detail.contains("`format`"), "{detail}");
        let no_format = br#"{"version":1,"access_token":"x"}"#;
        assert!(corrupt_detail(no_format).contains("`format` is missing"));
        match load_bytes(&with_field("version", "2")) {
            StoreError::UnsupportedVersion { version: 2, .. } => {}
            other => panic!("{other}"),
        }
        let detail = corrupt_detail(&with_field("version", r#""1""#));
        assert_eq!(detail, "field `version` is not an unsigned integer");
        assert!(corrupt_detail(&with_field("version", "-1")).contains("`version`"));
        // A newer file's message tells the user what happened.
        let err = load_bytes(&with_field("version", "7"));
        assert!(
            err.to_string().contains("file version 7 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_token_in_a_wrong_typed_field_never_reaches_the_error() {
        let s = format!("\"{SECRET}\"");
        let cases = [
            ("scopes", s.clone(), "field `scopes` is not a list"),
            (
                "scopes",
                format!("[\"a\", [{s}]]"),
                "field `scopes[1]` is not a string",
            ),
            (
                "token_type",
                format!("[{s}]"),
                "field `token_type` is not a string",
            ),
            (
                "access_token",
                format!("{{\"v\": {s}}}"),
                "field `access_token` is not a string",
            ),
            (
                "refresh_token",
                format!("[{s}]"),
                "field `refresh_token` is not a string",
            ),
            ("expiry", s.clone(), "field `expiry` is not an object"),
            (
                "expiry.lifetime_secs",
                s.clone(),
                "field `expiry.lifetime_secs` is not an unsigned integer",
            ),
            (
                "expiry.obtained_unix",
                s.clone(),
                "field `expiry.obtained_unix` is not an integer",
            ),
            (
                "expiry.boot_id",
                format!("{{\"x\": {s}}}"),
                "field `expiry.boot_id` is not a string",
            ),
            ("account", "true".into(), "field `account` is not a string"),
            (
                "version",
                s.clone(),
                "field `version` is not an unsigned integer",
            ),
        ];
        for (field, value, want) in cases {
            assert_eq!(corrupt_detail(&with_field(field, &value)), want, "{field}");
        }
        let detail = corrupt_detail(&with_field("format", &s));
        assert!(detail.contains("not a devauth token file"), "{detail}");
    }

    #[test]
    fn missing_empty_and_oversized_fields_are_corrupt() {
        let long = format!("\"{}\"", SECRET.repeat(MAX_TOKEN_BYTES / SECRET.len() + 1));
        let cases = [
            ("access_token", "null", "field `access_token` is missing"),
            ("access_token", "\"\"", "field `access_token` is empty"),
            ("client_id", "\"\"", "field `client_id` is empty"),
            (
                "token_endpoint",
                "null",
                "field `token_endpoint` is missing",
            ),
            (
                "expiry.lifetime_secs",
                "null",
                "field `expiry.lifetime_secs` is missing",
            ),
            (
                "expiry.obtained_boottime_ms",
                "-5",
                "field `expiry.obtained_boottime_ms` is not an unsigned integer",
            ),
            (
                "access_token",
                long.as_str(),
                "field `access_token` is longer than 16384 bytes",
            ),
            (
                "id_token",
                long.as_str(),
                "field `id_token` is longer than 16384 bytes",
            ),
        ];
        for (field, value, want) in cases {
            assert_eq!(corrupt_detail(&with_field(field, value)), want, "{field}");
        }
    }

    // ---- lock ----

    #[test]
    fn the_lock_excludes_a_second_locker_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let held = store.lock(Duration::ZERO).unwrap();
        assert_eq!(held.path(), dir.path().join("tokens.json.lock"));
        assert_eq!(mode(held.path()), 0o600);

        // A second open of the lock file is a second lock owner (flock is per open file), just
        // as another process would be. The fake clock makes the wait instant.
        let clock = FakeClock::new();
        let err = store
            .lock_with_clock(Duration::from_secs(5), &clock)
            .unwrap_err();
        match &err {
            StoreError::LockTimeout { path, waited } => {
                assert_eq!(path, held.path());
                assert_eq!(*waited, Duration::from_secs(5));
            }
            other => panic!("{other}"),
        }
        assert_eq!(clock.slept.get(), Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains("still locked by another process after 5.0s")
        );

        drop(held);
        assert!(store.lock(Duration::ZERO).is_ok());
    }

    #[test]
    fn the_lock_works_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let other = store.clone();
        let t = std::thread::spawn(move || {
            let lock = other.lock(Duration::ZERO).unwrap();
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(lock);
        });
        locked_rx.recv().unwrap();
        assert!(matches!(
            store.lock(Duration::ZERO),
            Err(StoreError::LockTimeout { .. })
        ));
        release_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(store.lock(Duration::ZERO).is_ok());
    }

    #[test]
    fn the_lock_excludes_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let lock_path = dir.path().join("tokens.json.lock");
        let try_flock = || {
            Command::new("flock")
                .arg("--nonblock")
                .arg(&lock_path)
                .arg("true")
                .status()
        };
        let held = store.lock(Duration::ZERO).unwrap();
        let Ok(status) = try_flock() else {
            eprintln!("skipped: flock(1) from util-linux is not installed");
            return;
        };
        assert!(!status.success(), "another process took a held lock");
        drop(held);
        assert!(try_flock().unwrap().success());
    }

    #[test]
    fn lock_creates_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("state/tokens.json"));
        let _lock = store.lock(Duration::ZERO).unwrap();
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        store.save(&sample()).unwrap();
    }
}
