//! [`StoreLock`]: the advisory lock held while a command reads, renews and writes the store.

use super::*;

/// An exclusive lock on the store, across processes; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    pub(super) file: File,
    pub(super) path: PathBuf,
}

/// Opens (creating, 0600) a lock file beside the store for `flock`; `op` names the step in errors.
pub(super) fn open_lock_file(path: &Path, op: &'static str) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, op, e))
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
