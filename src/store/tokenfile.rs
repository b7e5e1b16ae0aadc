//! The published access token: the file `devauth run` keeps on tmpfs (default
//! `/run/devauth/access_token`) so that other programs on the device can read the current
//! access token without calling devauth.
//!
//! This module owns writing and removing that file. Rules:
//! - The file holds the access token only, without a trailing newline (ready for
//!   `Authorization: Bearer $(cat …)`); never the refresh token. A DPoP-bound token (RFC 9449)
//!   is written as `DPoP <token>` ([`content`]): the file says the token type, ready for
//!   `Authorization: $(cat …)` beside a proof, and a program that would send it as a Bearer
//!   token fails at once instead of in a confusing way.
//! - Replaced atomically on every write: a temp file created `O_EXCL` with mode 0640 in the same
//!   directory, fchown'ed to `token_file_group` when one is configured, written, fsynced, renamed
//!   over the old one, then the directory fsynced. A reader sees the old token or the new one,
//!   never a partial one.
//! - A missing parent directory is created with mode 0750 (and the group, so the group can reach
//!   the file). An existing directory is left as it is (e.g. systemd's `RuntimeDirectory=`).
//!
//! It does not decide *when* the file is written or removed (that is the agent) and it holds no
//! token: the caller passes it in for the duration of the write.

use crate::secret::Secret;
use std::ffi::{CString, OsString};
use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const FILE_MODE: u32 = 0o640;
const DIR_MODE: u32 = 0o750;
const TEMP_ATTEMPTS: u32 = 16;
// usize, not u64: 32-bit ARMv5 (armv5te) has no 64-bit atomics. A wrap after 2^32 saves is
// harmless: a temp name only has to differ from the temp files that exist at that moment.
static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What the file holds for an access token: the token itself (Bearer), or `DPoP <token>` for a
/// DPoP-bound one (the scheme it must be sent with, RFC 9449 §7.1; a token never contains a
/// space, so the prefix cannot be mistaken for part of it).
pub fn content(access_token: &Secret, dpop_bound: bool) -> Secret {
    if dpop_bound {
        Secret::new(format!("DPoP {}", access_token.expose()))
    } else {
        access_token.clone()
    }
}

/// Why the token file could not be written or removed. Never contains the token.
#[derive(Debug)]
pub enum TokenFileError {
    /// `token_file_group` names no group on this system.
    UnknownGroup(String),
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for TokenFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenFileError::UnknownGroup(g) => {
                write!(
                    f,
                    "token file: group {g:?} (agent.token_file_group) does not exist"
                )
            }
            TokenFileError::Io { path, op, source } => {
                write!(f, "token file {}: {op}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for TokenFileError {}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> TokenFileError + 'a {
    move |source| TokenFileError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The token file at one path, readable by one optional group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFile {
    path: PathBuf,
    group: Option<String>,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>, group: Option<String>) -> TokenFile {
        TokenFile {
            path: path.into(),
            group,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content with `token`, atomically.
    pub fn write(&self, token: &Secret) -> Result<(), TokenFileError> {
        let gid = match &self.group {
            Some(name) => Some(group_id(name)?),
            None => None,
        };
        let dir = self.dir();
        self.ensure_dir(&dir, gid)?;
        self.remove_stale_temps();
        let name = self.path.file_name().map(OsString::from).ok_or_else(|| {
            io_err(&self.path, "resolve path")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        })?;
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..TEMP_ATTEMPTS {
            let mut temp_name = OsString::from(".");
            temp_name.push(&name);
            temp_name.push(format!(
                ".tmp.{}.{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let temp = dir.join(&temp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&temp)
            {
                Ok(file) => {
                    let result = self.fill_and_rename(file, &temp, &dir, gid, token);
                    if result.is_err() {
                        let _ = fs::remove_file(&temp);
                    }
                    return result;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(io_err(&self.path, "create temp file")(e)),
            }
        }
        Err(io_err(&self.path, "create temp file")(last))
    }

    fn fill_and_rename(
        &self,
        mut file: fs::File,
        temp: &Path,
        dir: &Path,
        gid: Option<libc::gid_t>,
        token: &Secret,
    ) -> Result<(), TokenFileError> {
        // The umask may have removed bits from 0640; make the mode exact.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(io_err(&self.path, "set permissions"))?;
        if let Some(gid) = gid {
            std::os::unix::fs::fchown(&file, None, Some(gid))
                .map_err(io_err(&self.path, "change group"))?;
        }
        file.write_all(token.expose().as_bytes())
            .map_err(io_err(&self.path, "write temp file"))?;
        file.sync_all()
            .map_err(io_err(&self.path, "fsync temp file"))?;
        drop(file);
        fs::rename(temp, &self.path).map_err(io_err(&self.path, "rename temp file"))?;
        // On tmpfs a no-op; elsewhere it makes the rename survive a power cut.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes the file; `true` if there was one.
    pub fn remove(&self) -> Result<bool, TokenFileError> {
        self.remove_stale_temps();
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&self.path, "remove")(e)),
        }
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Creates the missing directories (0750, with the group) from the first existing ancestor
    /// down; an existing directory is not touched.
    fn ensure_dir(&self, dir: &Path, gid: Option<libc::gid_t>) -> Result<(), TokenFileError> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        for d in missing.iter().rev() {
            match DirBuilder::new().mode(DIR_MODE).create(d) {
                Ok(()) => {
                    let _ = fs::set_permissions(d, fs::Permissions::from_mode(DIR_MODE));
                    if let Some(gid) = gid {
                        std::os::unix::fs::chown(d, None, Some(gid))
                            .map_err(io_err(d, "change group of directory"))?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(d, "create directory")(e)),
            }
        }
        Ok(())
    }

    /// Temp files left by a crash (ours or an earlier agent's): only one agent writes a token
    /// file (the agent lock), so any temp file that is not being written right now is stale.
    fn remove_stale_temps(&self) {
        let Some(name) = self.path.file_name() else {
            return;
        };
        let mut prefix = b".".to_vec();
        prefix.extend_from_slice(name.as_bytes());
        prefix.extend_from_slice(b".tmp.");
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().as_bytes().starts_with(&prefix)
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// The id of the group called `name` (getgrnam_r; the name was validated by the config).
pub fn group_id(name: &str) -> Result<libc::gid_t, TokenFileError> {
    let unknown = || TokenFileError::UnknownGroup(name.to_string());
    let cname = CString::new(name).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: every pointer is valid for the call; getgrnam_r writes only into `grp`, `buf`
        // (within `buf.len()`) and `result`.
        let (rc, found, gid) = unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            (rc, !result.is_null(), grp.gr_gid)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(TokenFileError::Io {
                path: PathBuf::from("/etc/group"),
                op: "look up group",
                source: io::Error::from_raw_os_error(rc),
            });
        }
        return if found { Ok(gid) } else { Err(unknown()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_dpop_bound_token_is_published_with_its_scheme() {
        let t = Secret::new("at-1");
        assert_eq!(content(&t, false).expose(), "at-1");
        assert_eq!(content(&t, true).expose(), "DPoP at-1");
    }

    fn own_group_name() -> Option<(String, libc::gid_t)> {
        // SAFETY: getgid has no preconditions; getgrgid returns a pointer into static storage
        // that we copy at once (tests only).
        unsafe {
            let gid = libc::getegid();
            let g = libc::getgrgid(gid);
            if g.is_null() {
                return None;
            }
            let name = std::ffi::CStr::from_ptr((*g).gr_name)
                .to_string_lossy()
                .into_owned();
            Some((name, gid))
        }
    }

    #[test]
    fn writes_atomically_with_mode_0640_and_creates_the_directory_0750() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/devauth/access_token");
        let f = TokenFile::new(&path, None);
        f.write(&Secret::new("at-1")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "at-1");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        for d in [tmp.path().join("run"), tmp.path().join("run/devauth")] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o750
            );
        }
        f.write(&Secret::new("at-2")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "at-2");
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("access_token")]);
        assert!(f.remove().unwrap());
        assert!(!f.remove().unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn existing_directory_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
        let f = TokenFile::new(tmp.path().join("t"), None);
        f.write(&Secret::new("x")).unwrap();
        assert_eq!(
            fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777,
            0o711
        );
    }

    #[test]
    fn group_is_applied_to_the_file() {
        let Some((name, gid)) = own_group_name() else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d/t");
        TokenFile::new(&path, Some(name))
            .write(&Secret::new("x"))
            .unwrap();
        assert_eq!(fs::metadata(&path).unwrap().gid(), gid);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().gid(), gid);
    }

    #[test]
    fn unknown_group_is_a_clear_error_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t");
        let e = TokenFile::new(&path, Some("no-such-group-devauth".into()))
            .write(&Secret::new("secret-token"))
            .unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("no-such-group-devauth"), "{shown}");
        assert!(!shown.contains("secret-token"));
        assert!(!path.exists());
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join(".t.tmp.1.2");
        fs::write(&stale, "old").unwrap();
        TokenFile::new(tmp.path().join("t"), None)
            .write(&Secret::new("x"))
            .unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn a_write_failure_leaves_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t");
        let f = TokenFile::new(&path, None);
        f.write(&Secret::new("old")).unwrap();
        // A directory where the file should be: rename fails, the temp file is cleaned up.
        let blocked = TokenFile::new(tmp.path().join("sub"), None);
        fs::create_dir(tmp.path().join("sub")).unwrap();
        fs::write(tmp.path().join("sub/x"), "").unwrap();
        assert!(blocked.write(&Secret::new("new")).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        let temps = fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .as_bytes()
                    .starts_with(b".sub.tmp.")
            })
            .count();
        assert_eq!(temps, 0);
    }
}
