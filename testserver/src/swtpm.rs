//! A software TPM for the tests: Debian's `swtpm` run on a Unix socket (`swtpm socket --tpm2
//! --server type=unixio`), which devauth reaches through `[storage] tpm_device = "<socket>"`
//! exactly as it reaches `/dev/tpmrm0` (the same command bytes). The TPM's state (its seeds)
//! lives in a directory the test chooses: the same directory after a restart is "the same TPM
//! after a reboot", a fresh one is "another board", [`Swtpm::clear`] is "the owner cleared it".
//!
//! Never part of the device binary.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running swtpm; stopped when dropped.
pub struct Swtpm {
    child: Child,
    socket: PathBuf,
}

/// Whether CI's `DEVAUTH_TEST_REQUIRE_SWTPM=1` asks for the swtpm tests to fail, not skip, when
/// swtpm is missing.
pub fn required() -> bool {
    std::env::var("DEVAUTH_TEST_REQUIRE_SWTPM").is_ok_and(|v| v == "1")
}

/// Whether the `swtpm` program can be run here.
pub fn available() -> bool {
    Command::new("swtpm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when a swtpm test may run; otherwise prints why it is skipped, or fails when swtpm
/// is required ([`required`]).
pub fn usable_or_skip(test: &str) -> bool {
    if available() {
        return true;
    }
    assert!(
        !required(),
        "{test}: swtpm is not installed but DEVAUTH_TEST_REQUIRE_SWTPM=1 (apt-get install swtpm)"
    );
    eprintln!("SKIPPED {test}: swtpm is not installed (apt-get install swtpm)");
    false
}

impl Swtpm {
    /// Starts a TPM whose state is kept in `state_dir` (created if missing), listening on
    /// `state_dir/tpm.sock`, already started up (TPM2_Startup(CLEAR)).
    pub fn start(state_dir: &Path) -> io::Result<Swtpm> {
        std::fs::create_dir_all(state_dir)?;
        let socket = state_dir.join("tpm.sock");
        let _ = std::fs::remove_file(&socket);
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", socket.display()))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(io::Error::other(format!("swtpm exited at start: {status}")));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("swtpm did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The probe connection above was accepted and closed; swtpm serves the next one.
        Ok(Swtpm { child, socket })
    }

    /// The socket to give devauth as `tpm_device`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// TPM2_Clear under the platform hierarchy (empty password in a fresh swtpm): the owner
    /// seed is replaced, so everything sealed under the owner hierarchy before is lost.
    pub fn clear(&self) -> io::Result<()> {
        // tag ST_SESSIONS, size 27, TPM_CC_Clear, TPM_RH_PLATFORM, a password session.
        let mut cmd = vec![0x80, 0x02, 0, 0, 0, 27, 0, 0, 0x01, 0x26, 0x40, 0, 0, 0x0C];
        cmd.extend_from_slice(&[0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0]);
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&cmd)?;
        let mut answer = [0u8; 10];
        s.read_exact(&mut answer)?;
        let rc = u32::from_be_bytes([answer[6], answer[7], answer[8], answer[9]]);
        if rc != 0 {
            return Err(io::Error::other(format!("TPM2_Clear answered 0x{rc:x}")));
        }
        Ok(())
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
