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
mod tests;
