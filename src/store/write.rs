//! The atomic write: reserve space, write a temp file, fsync, rename over the store, fsync the
//! directory; temp files in flight and stale ones left by a power cut.

use super::*;

impl PreparedSave {
    /// Writes `t` into the prepared temp file, cuts off the reserved room, fsyncs, renames it
    /// over the token file and fsyncs the directory. Unlike [`TokenStore::save`] it does not read
    /// the current file to skip an identical write: a save is prepared because new tokens are
    /// coming. On any failure before the rename the old file is left as it was.
    pub fn commit(self, t: &StoredTokens) -> Result<SaveOutcome, StoreError> {
        self.commit_with(t, no_fault)
    }

    /// [`commit`](Self::commit) of bytes that are not a token file (the pending sign-ins).
    pub(super) fn commit_bytes(self, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_bytes(bytes, no_fault)
    }

    pub(super) fn commit_with(
        self,
        t: &StoredTokens,
        fault: Fault,
    ) -> Result<SaveOutcome, StoreError> {
        let invalid = |detail| StoreError::Invalid {
            path: self.path.clone(),
            detail,
        };
        let plain = encode(t).map_err(invalid)?;
        let bytes = match &self.key {
            None => plain,
            Some(key) => sealed::seal(t, &plain, key).map_err(invalid)?,
        };
        let (tokens_of, key) = (self.tokens_of.clone(), self.key.clone());
        self.write_bytes(&bytes, fault)?;
        if let Some(store) = tokens_of {
            store.key_file_follows(key.as_ref());
        }
        Ok(SaveOutcome::Written)
    }

    fn write_bytes(self, bytes: &[u8], fault: Fault) -> Result<(), StoreError> {
        let PreparedSave {
            path,
            dir,
            file,
            temp,
            key: _,
            tokens_of: _,
        } = self;
        finish_write(&path, &dir, file, temp, bytes, true, fault)
    }
}

/// Write, fsync, rename, fsync the directory: the steps of a save once the temp file exists.
/// `reserved`: the file holds reserved room past `bytes.len()` that must be cut off. The temp
/// file is removed on every failure before the rename, so the old file stays as it was.
pub(super) fn finish_write(
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
pub(super) fn reserve_space(file: &File, len: u64) -> io::Result<()> {
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
pub(super) fn filler(len: usize) -> Vec<u8> {
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

/// Distinguishes the temp files of concurrent saves within one process. usize, not u64: 32-bit
/// ARMv5 (armv5te) has no 64-bit atomics; a wrap after 2^32 saves is harmless, as a temp name only
/// has to differ from the temp files that exist at that moment.
pub(super) static TEMP_COUNTER: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Names of temp files this process is writing right now, so cleanup by another thread leaves
/// them alone. Names embed our pid and a process-wide counter, so they are unique.
pub(super) static IN_FLIGHT: Mutex<Vec<OsString>> = Mutex::new(Vec::new());

pub(super) fn in_flight() -> std::sync::MutexGuard<'static, Vec<OsString>> {
    // A panic while holding this lock cannot leave the list inconsistent; keep going.
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temp file being written: registered as in flight, removed on drop unless renamed.
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) name: OsString,
    pub(super) created: bool,
}

impl TempFile {
    pub(super) fn register(path: PathBuf, name: OsString) -> TempFile {
        in_flight().push(name.clone());
        TempFile {
            path,
            name,
            created: false,
        }
    }

    /// The file now lives under the target name; nothing to remove.
    pub(super) fn renamed(mut self) {
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
pub(super) fn temp_is_stale(name: &OsStr, suffix: &[u8]) -> bool {
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
pub(super) fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
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
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}
