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
//! Sealing (README, "Protecting the tokens"): where the settings and the hardware allow, the
//! bytes written are the plain file encrypted under a per-pairing data key that the TPM or the
//! kernel's trusted keys seal, in one sealed file (`sealed.rs`, `seal.rs`). Sealing changes
//! what is written, not how: the same temp file, fsyncs, rename and rotation rules. A new key is
//! made only for a new pairing ([`TokenStore::prepare_pairing`], [`TokenStore::save_pairing`])
//! or to seal a plain file; a refresh keeps the key of the file it replaces.
//!
//! Files: this one ([`TokenStore`]: load, save, delete), `format.rs` (the file format and its
//! parser), `sealed.rs` (the sealed file and its parser), `seal.rs` (which hardware holds the
//! data key), `write.rs` (the atomic write), `lock.rs`, `expiry.rs`, `error.rs`,
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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
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
    /// The data key the tokens are sealed with; `None`: the plain file.
    key: Option<Arc<DataKey>>,
    /// The store whose token file this writes (its DPoP key file follows the tokens' sealing,
    /// `keyfile.rs`); `None` for files that are not a token file.
    tokens_of: Option<TokenStore>,
}

impl fmt::Debug for PreparedSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSave")
            .field("path", &self.path)
            .field("temp", &self.temp.path)
            .finish()
    }
}

/// The token file at one path, and how it is sealed.
#[derive(Clone, Debug)]
pub struct TokenStore {
    path: PathBuf,
    sealing: Sealing,
    /// Shared by clones: the last unsealed key, the last sealing decision.
    state: Arc<Mutex<SealState>>,
}

/// Which data key a write uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keying {
    /// The key of the file being replaced (a refresh); a new one if that file is plain.
    Keep,
    /// A new key (a new pairing).
    New,
}

/// A failure injected at a named write step (tests only; production passes [`no_fault`]).
type Fault = fn(&'static str) -> io::Result<()>;

fn no_fault(_: &'static str) -> io::Result<()> {
    Ok(())
}

impl TokenStore {
    /// The store at `path`, writing the plain file ([`Sealing::none`]); it reads sealed files
    /// too, with the TPM at its default path.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenStore::with_sealing(path, Sealing::none())
    }

    /// The store at `path`, sealing as `sealing` says.
    pub fn with_sealing(path: impl Into<PathBuf>, sealing: Sealing) -> Self {
        TokenStore {
            path: path.into(),
            sealing,
            state: Arc::new(Mutex::new(SealState::default())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    /// The stored tokens, `Ok(None)` when there is no file. Removes stale temp files first
    /// (best effort: a read-only filesystem still loads). A sealed file is unsealed and
    /// decrypted, whatever this store's own sealing setting.
    pub fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        self.remove_stale_temps();
        let Some(bytes) = self.read_current()? else {
            return Ok(None);
        };
        if !sealed::is_sealed(&bytes) {
            return parse_bytes(&bytes, &self.path).map(Some);
        }
        let envelope = sealed::parse_envelope(&bytes).map_err(|b| self.bad(b))?;
        let key = self.data_key(envelope.sealer, &envelope.sealed_key)?;
        sealed::open(&envelope, &key.key)
            .map(Some)
            .map_err(|b| self.bad(b))
    }

    /// How the file on flash is protected (its envelope only: nothing is unsealed); `None`
    /// when there is no file.
    pub fn protection(&self) -> Result<Option<Protection>, StoreError> {
        let Some(bytes) = self.read_current()? else {
            return Ok(None);
        };
        if !sealed::is_sealed(&bytes) {
            return Ok(Some(Protection::Unprotected {
                why: "the file is not sealed".to_string(),
            }));
        }
        let envelope = sealed::parse_envelope(&bytes).map_err(|b| self.bad(b))?;
        Ok(Some(Protection::Sealed(envelope.sealer)))
    }

    /// What this store (or a clone) decided at its last write or prepared write: sealed by
    /// what, or why not.
    pub fn last_protection(&self) -> Option<Protection> {
        self.seal_state().last.clone()
    }

    /// Replaces the file with `t`, atomically and durably, unless it already holds exactly these
    /// tokens. On any failure before the rename the old file is left as it was. A sealed file
    /// keeps its data key; a plain one is sealed now if the settings ask for it.
    pub fn save(&self, t: &StoredTokens) -> Result<SaveOutcome, StoreError> {
        self.save_with(t, Keying::Keep, no_fault)
    }

    /// [`save`](Self::save) for a new pairing: a new data key, sealed as the settings say.
    pub fn save_pairing(&self, t: &StoredTokens) -> Result<SaveOutcome, StoreError> {
        self.save_with(t, Keying::New, no_fault)
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

    fn save_with(
        &self,
        t: &StoredTokens,
        keying: Keying,
        fault: Fault,
    ) -> Result<SaveOutcome, StoreError> {
        let plain = encode(t).map_err(|detail| self.invalid(detail))?;
        self.remove_stale_temps();
        let key = self.key_for_write(keying)?;
        // A file we cannot read or parse is simply replaced; only the same content is skipped
        // (for a sealed file: the same key, client and plain bytes under a new nonce).
        if let Ok(Some(current)) = self.read_current() {
            let same = match &key {
                None => current == plain,
                Some(k) => keying == Keying::Keep && sealed::holds(&current, k, t, &plain),
            };
            if same {
                self.ensure_private()?;
                return Ok(SaveOutcome::Unchanged);
            }
        }
        let bytes = match &key {
            None => plain,
            Some(k) => sealed::seal(t, &plain, k).map_err(|detail| self.invalid(detail))?,
        };
        let dir = self.dir();
        ensure_dir(&dir)?;
        let (file, temp) = self.create_temp(&dir, fault)?;
        finish_write(&self.path, &dir, file, temp, &bytes, false, fault)?;
        self.key_file_follows(key.as_ref());
        Ok(SaveOutcome::Written)
    }

    /// The data key the next write uses (`None`: the plain file), and the decision recorded for
    /// [`last_protection`](Self::last_protection).
    fn key_for_write(&self, keying: Keying) -> Result<Option<Arc<DataKey>>, StoreError> {
        if keying == Keying::Keep && self.sealing.choice != SealChoice::None {
            if let Ok(Some(bytes)) = self.read_current() {
                if sealed::is_sealed(&bytes) {
                    let envelope = sealed::parse_envelope(&bytes).map_err(|b| self.bad(b))?;
                    let key = self.data_key(envelope.sealer, &envelope.sealed_key)?;
                    let mut state = self.seal_state();
                    state.last = Some(Protection::Sealed(key.sealer));
                    state.decided = Some(key.clone());
                    return Ok(Some(key));
                }
            }
        }
        let not_sealed = |why| StoreError::NotSealed {
            path: self.path.clone(),
            why,
        };
        match seal::new_key(&self.sealing, &kernel_keys()).map_err(not_sealed)? {
            NewKey::Sealed(key) => {
                let key = Arc::new(key);
                let mut state = self.seal_state();
                state.last = Some(Protection::Sealed(key.sealer));
                state.key = Some(key.clone());
                state.decided = Some(key.clone());
                Ok(Some(key))
            }
            NewKey::Unprotected(why) if self.sealing.require_sealed => Err(not_sealed(format!(
                "require_sealed is set and nothing can seal them: {why}"
            ))),
            NewKey::Unprotected(why) => {
                let mut state = self.seal_state();
                state.last = Some(Protection::Unprotected { why });
                state.decided = None;
                Ok(None)
            }
        }
    }

    /// The data key sealed as `blob` by `sealer` (a sealed file's `sealed_key`): unsealed by its
    /// hardware, or remembered from the last time.
    fn data_key(&self, sealer: Sealer, blob: &[u8]) -> Result<Arc<DataKey>, StoreError> {
        if let Some(key) = &self.seal_state().key {
            if key.sealer == sealer && key.blob == blob {
                return Ok(key.clone());
            }
        }
        let key = seal::unseal(&self.sealing, &kernel_keys(), sealer, blob).map_err(|why| {
            StoreError::Unsealable {
                path: self.path.clone(),
                sealer,
                why,
            }
        })?;
        let key = Arc::new(DataKey {
            sealer,
            blob: blob.to_vec(),
            key,
        });
        self.seal_state().key = Some(key.clone());
        Ok(key)
    }

    fn seal_state(&self) -> std::sync::MutexGuard<'_, SealState> {
        // Nothing can be left half-updated in it by a panic; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn invalid(&self, detail: String) -> StoreError {
        StoreError::Invalid {
            path: self.path.clone(),
            detail,
        }
    }

    fn bad(&self, bad: Bad) -> StoreError {
        bad_file(bad, &self.path)
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
    ///
    /// A refresh keeps the data key of the file it replaces (a plain file gets a new one if the
    /// settings seal); unsealing it, if not done at the load before, happens here too.
    pub fn prepare_save(&self) -> Result<PreparedSave, StoreError> {
        self.prepare_save_with(Keying::Keep, no_fault)
    }

    /// [`prepare_save`](Self::prepare_save) for a new pairing: a new data key is made and sealed
    /// now (before a code is shown), so that a sealer that fails, or `require_sealed` with
    /// nothing to seal with, stops the pairing before anyone approves it.
    pub fn prepare_pairing(&self) -> Result<PreparedSave, StoreError> {
        self.prepare_save_with(Keying::New, no_fault)
    }

    fn prepare_save_with(&self, keying: Keying, fault: Fault) -> Result<PreparedSave, StoreError> {
        self.remove_stale_temps();
        let key = self.key_for_write(keying)?;
        let mut prepared = self.prepare_bytes(key, fault)?;
        prepared.tokens_of = Some(self.clone());
        Ok(prepared)
    }

    /// [`prepare_save`](Self::prepare_save) of a file written as given, never sealed (the key
    /// files: they seal their own content).
    pub(super) fn prepare_plain(&self) -> Result<PreparedSave, StoreError> {
        self.remove_stale_temps();
        self.prepare_bytes(None, no_fault)
    }

    /// The temp file and reserved room of a save whose bytes are `key`'s sealed file (`None`:
    /// written as given, the key files and pending sign-ins).
    fn prepare_bytes(
        &self,
        key: Option<Arc<DataKey>>,
        fault: Fault,
    ) -> Result<PreparedSave, StoreError> {
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
            key,
            tokens_of: None,
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

/// The kernel's keys, as the sealers reach them (a fake in unit tests, see `seal/tests.rs`).
#[cfg(not(test))]
fn kernel_keys() -> crate::keyring::Syscalls {
    crate::keyring::Syscalls
}

#[cfg(test)]
use seal::tests::kernel_keys;

mod error;
mod expiry;
mod format;
mod lock;
mod refusal;
mod seal;
mod sealed;
mod status;
mod write;

pub use agent_lock::*;
pub use error::*;
pub use expiry::*;
pub use format::*;
pub use lock::*;
pub use refusal::*;
use seal::{DataKey, NewKey, SealState};
pub use seal::{Protection, SealChoice, Sealer, Sealing, UnsealFailure, not_protected};
pub use sealed::{Envelope, SEALED_FORMAT, SEALED_VERSION, open_sealed_bytes, seal_bytes};
pub use status::status_json;
use write::*;

#[cfg(test)]
mod tests;
