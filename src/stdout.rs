//! Standard output, written through one module so that a failing stdout ends every command the
//! same way: a full or failing output (`> /dev/full`, ENOSPC, EIO) is exit 1 with one line on
//! stderr, a reader that went away (EPIPE: `| head -1`, a UI that quit) is exit 1 without a word
//! (the reader knows it stopped reading). Never a panic — `println!` panics on a write error —
//! and never exit 0, so a script learns that the output it relied on is missing.
//!
//! The first failure is remembered for the process; `main` asks [`failure`] after the command
//! and picks the exit code. Long-running commands (`pair`, `run`: `--json` events, or the
//! terminal screen on stdout) ask [`failed`] and stop, since nobody reads what they print.
//!
//! It owns no formatting of what is printed, and keeps nothing it wrote (`devauth token` writes
//! the token through it).

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

/// Why standard output could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reader closed its end (EPIPE): said nothing about, the exit code is enough.
    pub closed: bool,
    /// The system's reason, e.g. "No space left on device (os error 28)".
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.detail)
    }
}

static FAILURE: OnceLock<Failure> = OnceLock::new();

/// The first failure to write standard output, if there was one.
pub fn failure() -> Option<&'static Failure> {
    FAILURE.get()
}

/// Whether writing standard output has failed (long-running commands then stop).
pub fn failed() -> bool {
    FAILURE.get().is_some()
}

fn record(e: &io::Error) {
    let _ = FAILURE.set(Failure {
        closed: e.kind() == io::ErrorKind::BrokenPipe,
        detail: e.to_string(),
    });
}

/// Writes `bytes` and flushes, so a reader sees each line as it comes and a failure is known at
/// once. After a failure nothing more is written (the output would have a hole in it).
pub fn write_all(bytes: &[u8]) -> io::Result<()> {
    Stdout.write_all(bytes).and_then(|()| Stdout.flush())
}

/// Writes `text` and a newline (see [`write_all`]).
pub fn line(text: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write_all(&bytes)
}

/// Flushes what is buffered (before `main` decides the exit code).
pub fn flush() {
    let _ = Stdout.flush();
}

/// Standard output as a [`Write`] that records the first failure (for the terminal screen and
/// `devauth api`'s streamed body). Unbuffered beyond std's own line buffer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Stdout {
    fn after_failure() -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "standard output failed before; nothing more is written",
        )
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if failed() {
            return Err(Stdout::after_failure());
        }
        io::stdout().lock().write(buf).inspect_err(record)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if failed() {
            return Err(Stdout::after_failure());
        }
        io::stdout().lock().write_all(buf).inspect_err(record)
    }

    fn flush(&mut self) -> io::Result<()> {
        if failed() {
            return Err(Stdout::after_failure());
        }
        io::stdout().lock().flush().inspect_err(record)
    }
}

/// `println!` through [`line`]: a failed write is remembered for `main`, never a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = $crate::stdout::line(&::std::format!($($arg)*));
    }};
}
pub(crate) use outln;
