//! The listening socket: the one systemd passed (socket activation, `LISTEN_PID` and
//! `LISTEN_FDS`, sd_listen_fds(3)), else one bound at `[agent] socket` with the configured mode
//! and group. A stale socket file left by a killed agent is replaced; a live one (another
//! agent answers) or anything that is not a socket is not.

use super::peer;
use crate::config::SocketConfig;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Pending connections the kernel keeps before the server accepts them (a boot storm of apps).
const BACKLOG: i32 = 1024;
/// sd_listen_fds(3): the first passed descriptor.
const SD_LISTEN_FDS_START: RawFd = 3;

/// A socket being listened on, and what to clean up when the agent stops.
pub struct Listening {
    pub listener: UnixListener,
    /// The socket file this agent created (removed at stop if it is still ours): path, device
    /// and inode.
    created: Option<(PathBuf, u64, u64)>,
    /// Said in the agent's start line.
    pub describe: String,
}

impl Listening {
    /// Removes the socket file this agent created, unless something else replaced it.
    pub fn remove(&self) {
        if let Some((path, dev, ino)) = &self.created {
            let ours = fs::symlink_metadata(path).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino);
            if ours {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// The socket to serve on; `None` when `[agent] socket = ""`.
pub fn listen(config: &SocketConfig) -> Result<Option<Listening>, String> {
    let Some(path) = &config.path else {
        return Ok(None);
    };
    if let Some(fd) = activated()? {
        // SAFETY: systemd passed this descriptor to this process (LISTEN_PID) for us to own;
        // it was checked to be a listening Unix stream socket.
        let listener = unsafe { UnixListener::from_raw_fd(fd) };
        let name = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "an abstract address".into());
        return Ok(Some(Listening {
            listener,
            created: None,
            describe: format!("socket {name} (from systemd)"),
        }));
    }
    bind(path, config).map(Some)
}

/// The descriptor systemd passed, checked; `None` without socket activation.
fn activated() -> Result<Option<RawFd>, String> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !ours || count < 1 {
        return Ok(None);
    }
    if count > 1 {
        eprintln!(
            "devauth: systemd passed {count} sockets; serving on the first (fd {SD_LISTEN_FDS_START})"
        );
    }
    let fd = SD_LISTEN_FDS_START;
    let int_opt = |opt: i32| -> Option<i32> {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: `v` is a writable int of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut i32).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    // SAFETY: a zeroed sockaddr_storage is a valid out-parameter of its own size.
    let family = unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let rc = libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        );
        (rc == 0).then_some(i32::from(addr.ss_family))
    };
    if family != Some(libc::AF_UNIX)
        || int_opt(libc::SO_TYPE) != Some(libc::SOCK_STREAM)
        || int_opt(libc::SO_ACCEPTCONN) != Some(1)
    {
        return Err(format!(
            "systemd passed fd {fd}, which is not a listening Unix stream socket (check the \
             .socket unit: ListenStream= with a path)"
        ));
    }
    // Not for the hook or anything else the agent starts.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    Ok(Some(fd))
}

fn bind(path: &Path, config: &SocketConfig) -> Result<Listening, String> {
    let name = path.display();
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            // Whoever may connect must be able to reach the socket; its own mode guards it.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| format!("socket {name}: creating {}: {e}", dir.display()))?;
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "socket {name}: another agent is serving on it (set [agent] socket to \
                     another path)"
                ));
            }
            // Nobody listens: left by an agent that was killed.
            Err(_) => fs::remove_file(path)
                .map_err(|e| format!("socket {name}: removing the stale socket: {e}"))?,
        },
        Ok(_) => {
            return Err(format!(
                "socket {name}: exists and is not a socket; not replacing it"
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("socket {name}: {e}")),
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("socket {name}: bind: {e}"))?;
    // SAFETY: listen(2) on our socket, raising std's backlog.
    unsafe {
        libc::listen(listener.as_raw_fd(), BACKLOG);
    }
    let setup = || -> Result<(), String> {
        if let Some(group) = &config.group {
            let gid = peer::gid_of(group).ok_or_else(|| {
                format!("[agent] socket_group: no group `{group}` on this system")
            })?;
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| format!("socket {name}: chown to group {group}: {e}"))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(config.mode))
            .map_err(|e| format!("socket {name}: chmod {:o}: {e}", config.mode))
    };
    if let Err(e) = setup() {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    let meta = fs::symlink_metadata(path).map_err(|e| format!("socket {name}: {e}"))?;
    Ok(Listening {
        listener,
        created: Some((path.to_path_buf(), meta.dev(), meta.ino())),
        describe: format!(
            "socket {name} (mode {:04o}{})",
            config.mode,
            config
                .group
                .as_ref()
                .map(|g| format!(", group {g}"))
                .unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &Path) -> SocketConfig {
        SocketConfig {
            path: Some(path.to_path_buf()),
            mode: 0o660,
            ..SocketConfig::default()
        }
    }

    #[test]
    fn binds_with_the_mode_replaces_a_stale_socket_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/devauth.sock");
        let l = listen(&config(&path)).unwrap().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // A second agent on the same path is refused while the first listens.
        let e = listen(&config(&path)).err().unwrap();
        assert!(e.contains("another agent"), "{e}");
        // Killed without cleaning up: the next one replaces the stale file.
        drop(l);
        let l = listen(&config(&path)).unwrap().unwrap();
        l.remove();
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devauth.sock");
        fs::write(&path, "keep me").unwrap();
        let e = listen(&config(&path)).err().unwrap();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn no_path_no_socket_and_an_unknown_group_is_an_error() {
        let off = SocketConfig {
            path: None,
            ..SocketConfig::default()
        };
        assert!(listen(&off).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devauth.sock");
        let mut c = config(&path);
        c.group = Some("no-such-group-devauth".into());
        let e = listen(&c).err().unwrap();
        assert!(e.contains("no group"), "{e}");
        assert!(!path.exists());
    }
}
