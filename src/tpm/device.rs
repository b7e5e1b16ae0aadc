//! Carrying command bytes to the TPM and its answer back: the kernel's resource-managed device
//! (`/dev/tpmrm0`: one `write` of the command, one `read` of the whole answer), or a Unix socket
//! speaking the same bytes (swtpm's `--server type=unixio`, for tests and simulators).
//!
//! The resource manager flushes what a process left loaded when its descriptor closes; a socket
//! to a bare TPM simulator has no such thing, so on a socket the transient objects left by a
//! process that died mid-conversation are flushed when devauth connects (the simulator serves
//! one connection at a time, so none of them can be someone else's work in progress).

use super::marshal::{self, HEADER_LEN, MAX_RESPONSE};
use super::{TpmError, commands};
use crate::secret::SecretBytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a socket peer may take to answer one command (a real TPM's slowest commands, key
/// generation, take seconds; the kernel driver bounds the device's own waits).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers that mean "ask again" (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING).
const RETRY_CODES: [u32; 3] = [0x922, 0x908, 0x90A];
const RETRIES: u32 = 5;

enum Link {
    Device(File),
    Socket(UnixStream),
}

/// One open conversation with the TPM. Dropped: the descriptor closes.
pub(super) struct Connection {
    link: Link,
    path: PathBuf,
}

impl Connection {
    pub(super) fn open(path: &Path) -> Result<Connection, TpmError> {
        let is_socket = std::fs::metadata(path)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false);
        let link = if is_socket {
            let s = UnixStream::connect(path).map_err(|e| TpmError::open(path, e))?;
            s.set_read_timeout(Some(SOCKET_TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(SOCKET_TIMEOUT)))
                .map_err(|e| TpmError::open(path, e))?;
            Link::Socket(s)
        } else {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| TpmError::open(path, e))?;
            Link::Device(f)
        };
        let mut c = Connection {
            link,
            path: path.to_path_buf(),
        };
        if is_socket {
            c.flush_leftovers()?;
        }
        Ok(c)
    }

    /// Sends `command` and returns the answer's tag and body (after the header) when the TPM
    /// answered success; retries the "busy, ask again" codes a few times. The body may hold
    /// unsealed data: it is zeroed when dropped.
    pub(super) fn call(
        &mut self,
        name: &'static str,
        command: &[u8],
    ) -> Result<(u16, SecretBytes), TpmError> {
        let mut attempt = 0;
        loop {
            let answer = self.transmit(name, command)?;
            let (tag, rc, body) =
                marshal::split_response(answer.expose()).map_err(|detail| TpmError::Malformed {
                    command: name,
                    detail,
                })?;
            if rc == 0 {
                return Ok((tag, SecretBytes::new(body.to_vec())));
            }
            if RETRY_CODES.contains(&rc) && attempt < RETRIES {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20 << attempt));
                continue;
            }
            return Err(TpmError::Tpm { command: name, rc });
        }
    }

    /// [`call`](Self::call), then reads the answer: its handle when `with_handle` (else 0),
    /// and `read` over exactly its parameters. A malformed answer is an error naming the command.
    pub(super) fn exchange<T>(
        &mut self,
        name: &'static str,
        command: &[u8],
        with_handle: bool,
        read: fn(&mut marshal::Reader<'_>) -> Result<T, marshal::Malformed>,
    ) -> Result<(u32, T), TpmError> {
        let (tag, body) = self.call(name, command)?;
        marshal::parameters(tag, body.expose(), with_handle)
            .and_then(|(handle, mut params)| Ok((handle, read(&mut params)?)))
            .map_err(|detail| TpmError::Malformed {
                command: name,
                detail,
            })
    }

    fn transmit(&mut self, name: &'static str, command: &[u8]) -> Result<SecretBytes, TpmError> {
        let io = |op: &'static str| {
            let path = self.path.clone();
            move |source: io::Error| TpmError::Io {
                path,
                op,
                command: name,
                source,
            }
        };
        let mut answer = vec![0u8; MAX_RESPONSE];
        let len = match &mut self.link {
            Link::Device(f) => {
                f.write_all(command).map_err(io("write"))?;
                // The driver hands over the whole answer in one read.
                loop {
                    match f.read(&mut answer) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other.map_err(io("read"))?,
                    }
                }
            }
            Link::Socket(s) => {
                s.write_all(command).map_err(io("write"))?;
                let mut got = 0;
                let mut want = HEADER_LEN;
                while got < want {
                    let Some(room) = answer.get_mut(got..want) else {
                        break;
                    };
                    let n = s.read(room).map_err(io("read"))?;
                    if n == 0 {
                        return Err(io("read")(io::ErrorKind::UnexpectedEof.into()));
                    }
                    got += n;
                    if got == HEADER_LEN {
                        // The size field says how much follows; beyond the limit, read no more
                        // and let the framing check refuse it.
                        let size = answer
                            .get(2..6)
                            .and_then(|b| <[u8; 4]>::try_from(b).ok())
                            .map(u32::from_be_bytes)
                            .and_then(|s| usize::try_from(s).ok())
                            .unwrap_or(0);
                        want = size.clamp(HEADER_LEN, MAX_RESPONSE);
                    }
                }
                got
            }
        };
        answer.truncate(len);
        Ok(SecretBytes::new(answer))
    }

    /// Flushes every transient object the simulator holds (see the module comment).
    fn flush_leftovers(&mut self) -> Result<(), TpmError> {
        let mut first = commands::TRANSIENT_FIRST;
        // Bounded: a TPM holds a handful of transient objects; a lying one cannot loop us.
        for _ in 0..8 {
            let (_, (handles, more)) = self.exchange(
                "TPM2_GetCapability",
                &commands::get_handles(first),
                false,
                commands::read_handles,
            )?;
            for h in &handles {
                if h & 0xFF00_0000 == commands::TRANSIENT_FIRST {
                    self.flush(*h);
                }
            }
            match handles.last() {
                Some(last) if more => first = last.saturating_add(1),
                _ => break,
            }
        }
        Ok(())
    }

    /// TPM2_FlushContext, best effort: a handle that cannot be flushed goes when the resource
    /// manager closes our descriptor.
    pub(super) fn flush(&mut self, handle: u32) {
        let _ = self.call("TPM2_FlushContext", &commands::flush_context(handle));
    }
}
