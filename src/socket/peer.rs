//! Who is on the other end of a client connection, as the kernel says: `SO_PEERCRED` (uid, gid
//! and pid at `connect` time), `SO_PEERGROUPS` (the supplementary groups, Linux ≥ 4.13; else
//! `/proc/<pid>/status`) and `/proc/<pid>/exe` (the executable). Also the names → ids lookups
//! of the policy's users and groups (`getpwnam_r`, `getgrnam_r`).
//!
//! Nothing here decides anything (that is `policy.rs`). The executable is read when the
//! connection is accepted; a process that passed its connection to another one, or exec'd a
//! different program after connecting, is still judged by what it was then. Reading another
//! user's `/proc/<pid>/exe` needs the agent to run as that user or as root with
//! CAP_SYS_PTRACE; when it cannot be read the executable is unknown and no `exe` entry
//! matches.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Most supplementary groups looked at (NGROUPS_MAX is 65536; real systems use a handful).
const MAX_GROUPS: usize = 256;

/// The caller of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (may include `gid`).
    pub groups: Vec<u32>,
    /// `None` when `/proc/<pid>/exe` could not be read (gone, or not permitted).
    pub exe: Option<PathBuf>,
}

impl Peer {
    /// Whether `gid` is the caller's group or one of its supplementary groups.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} gid {} pid {}", self.uid, self.gid, self.pid)?;
        match &self.exe {
            Some(exe) => write!(f, " ({})", exe.display()),
            None => write!(f, " (executable unknown)"),
        }
    }
}

/// Reads who is connected on `socket` (a connected Unix stream socket).
pub fn peer_of(socket: &impl AsRawFd) -> io::Result<Peer> {
    let fd = socket.as_raw_fd();
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a writable ucred and `len` its size; the kernel writes at most `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::other(format!(
            "SO_PEERCRED returned {len} bytes, expected {}",
            std::mem::size_of::<libc::ucred>()
        )));
    }
    let groups = peer_groups(fd).unwrap_or_else(|| proc_groups(cred.pid));
    let exe = (cred.pid > 0)
        .then(|| std::fs::read_link(format!("/proc/{}/exe", cred.pid)).ok())
        .flatten();
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        groups,
        exe,
    })
}

/// `SO_PEERGROUPS`; `None` where the kernel (or an emulator) does not have it.
fn peer_groups(fd: i32) -> Option<Vec<u32>> {
    let mut groups = vec![0 as libc::gid_t; MAX_GROUPS];
    let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: `groups` has room for `len` bytes; the kernel writes at most that and sets `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    Some(groups)
}

/// The `Groups:` line of `/proc/<pid>/status` (empty when it cannot be read).
fn proc_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|list| {
            list.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .take(MAX_GROUPS)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this process may read `/proc/<pid>/exe` of other users' processes: the kernel asks
/// for CAP_SYS_PTRACE (ptrace access mode READ), which root without it (a sandboxed service)
/// lacks.
pub fn can_read_others_exe() -> bool {
    const CAP_SYS_PTRACE: u32 = 19;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_PTRACE) != 0)
}

/// The uid of a user name (`getpwnam_r`); `None` when there is no such user.
pub fn uid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed passwd is a valid out-parameter; the result points into `pwd` or is null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(pwd.pw_uid)
    }
}

/// The gid of a group name; `None` when there is no such group (the token file's lookup).
pub fn gid_of(name: &str) -> Option<u32> {
    crate::store::tokenfile::group_id(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = peer_of(&a).unwrap();
        assert_eq!(p.pid, std::process::id() as i32);
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!((p.uid, p.gid), (uid, gid));
        assert_eq!(p.exe, std::env::current_exe().ok());
        assert!(p.in_group(gid));
        assert!(
            p.to_string()
                .starts_with(&format!("uid {uid} gid {gid} pid "))
        );
    }

    #[test]
    fn proc_groups_reads_this_process() {
        // Whatever the groups are, /proc agrees with getgroups(2).
        let mut list = vec![0 as libc::gid_t; 256];
        // SAFETY: the buffer holds 256 gids.
        let n = unsafe { libc::getgroups(256, list.as_mut_ptr()) };
        list.truncate(n as usize);
        let mut from_proc = proc_groups(std::process::id() as i32);
        from_proc.sort_unstable();
        list.sort_unstable();
        assert_eq!(from_proc, list);
    }

    #[test]
    fn root_and_unknown_names() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(uid_of("no-such-user-devauth"), None);
        assert_eq!(gid_of("no-such-group-devauth"), None);
        assert_eq!(uid_of("nul\0byte"), None);
    }
}
