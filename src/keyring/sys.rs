//! The real [`KernelKeys`]: `add_key(2)` and `keyctl(2)` as raw system calls, and the AF_ALG
//! hash socket keyed by a key serial (`ALG_SET_KEY_BY_KEY_SERIAL`, Linux 6.2).

use super::{KernelKeys, KeyringError, Step};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `KEY_SPEC_PROCESS_KEYRING`: this process's own keyring (created on first use). Keys in it
/// are possessed by this process only.
const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;
const KEYCTL_READ: libc::c_long = 11;
const KEYCTL_INVALIDATE: libc::c_long = 21;
/// `ALG_SET_KEY_BY_KEY_SERIAL` (include/uapi/linux/if_alg.h, Linux 6.2).
const ALG_SET_KEY_BY_KEY_SERIAL: libc::c_int = 7;

/// The running kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syscalls;

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl KernelKeys for Syscalls {
    fn add_trusted(&self, description: &str, payload: &[u8]) -> io::Result<i32> {
        add_key("trusted", description, payload)
    }

    fn read(&self, serial: i32) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 1024];
        // At most two rounds: the first answer says how long the payload is.
        for _ in 0..2 {
            // SAFETY: keyctl writes at most `buf.len()` bytes into `buf`.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_READ,
                    libc::c_long::from(serial),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            let Ok(len) = usize::try_from(rc) else {
                return Err(io::Error::last_os_error());
            };
            if len <= buf.len() {
                buf.truncate(len);
                return Ok(buf);
            }
            if len > 4 * super::MAX_BLOB + 64 {
                return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
            }
            buf = vec![0u8; len];
        }
        Err(io::Error::from_raw_os_error(libc::EMSGSIZE))
    }

    fn hmac_sha256(&self, serial: i32, message: &[u8]) -> Result<[u8; 32], KeyringError> {
        let fail = |step| move |e| KeyringError::new(step, e);
        // SAFETY: plain socket(2); the descriptor is owned right below.
        let fd =
            unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(KeyringError::new(
                Step::AlgSocket,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let tfm = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_alg is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_alg = unsafe { std::mem::zeroed() };
        addr.salg_family = libc::AF_ALG as libc::sa_family_t;
        copy_name(&mut addr.salg_type, b"hash");
        copy_name(&mut addr.salg_name, b"hmac(sha256)");
        let addr_len = std::mem::size_of::<libc::sockaddr_alg>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_alg of `addr_len` bytes.
        let rc = unsafe {
            libc::bind(
                tfm.as_raw_fd(),
                (&addr as *const libc::sockaddr_alg).cast(),
                addr_len,
            )
        };
        if rc != 0 {
            return Err(fail(Step::AlgBind)(io::Error::last_os_error()));
        }
        let serial_value: i32 = serial;
        // SAFETY: the option value is the 4-byte key serial it names.
        let rc = unsafe {
            libc::setsockopt(
                tfm.as_raw_fd(),
                libc::SOL_ALG,
                ALG_SET_KEY_BY_KEY_SERIAL,
                (&serial_value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(fail(Step::AlgSetKey)(io::Error::last_os_error()));
        }
        // SAFETY: accept4 with no peer address; the new descriptor is owned right below.
        let op = unsafe {
            libc::accept4(
                tfm.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if op < 0 {
            return Err(fail(Step::AlgAccept)(io::Error::last_os_error()));
        }
        // SAFETY: `op` is a new descriptor nobody else owns.
        let op = unsafe { OwnedFd::from_raw_fd(op) };
        let hash = fail(Step::AlgHash);
        // SAFETY: write reads `message.len()` bytes from `message`.
        let n = unsafe { libc::write(op.as_raw_fd(), message.as_ptr().cast(), message.len()) };
        if usize::try_from(n).ok() != Some(message.len()) {
            return Err(hash(short_or_last_error()));
        }
        let mut out = [0u8; 32];
        // SAFETY: read writes at most 32 bytes into `out`.
        let n = unsafe { libc::read(op.as_raw_fd(), out.as_mut_ptr().cast(), out.len()) };
        if n != 32 {
            return Err(hash(short_or_last_error()));
        }
        Ok(out)
    }

    fn invalidate(&self, serial: i32) {
        // SAFETY: keyctl on a serial; no memory is passed.
        unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_INVALIDATE,
                libc::c_long::from(serial),
            );
        }
    }
}

/// `add_key(2)` of a key of type `kind` into this process's keyring: its serial.
pub(super) fn add_key(kind: &str, description: &str, payload: &[u8]) -> io::Result<i32> {
    let kind = cstring(kind)?;
    let desc = cstring(description)?;
    // SAFETY: add_key reads two NUL-terminated strings and `payload.len()` bytes from `payload`,
    // all valid for the call; every argument is passed as a full `long`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            kind.as_ptr(),
            desc.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            KEY_SPEC_PROCESS_KEYRING,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    i32::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::ERANGE))
}

/// The last OS error, or "short transfer" when the call succeeded with too few bytes.
fn short_or_last_error() -> io::Error {
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(0) | None => io::Error::from(io::ErrorKind::UnexpectedEof),
        _ => e,
    }
}

/// Copies `name` into a fixed, NUL-padded field (the field is larger than any name used here).
fn copy_name<const N: usize>(field: &mut [u8; N], name: &[u8]) {
    for (dst, src) in field.iter_mut().zip(name.iter().take(N.saturating_sub(1))) {
        *dst = *src;
    }
}
