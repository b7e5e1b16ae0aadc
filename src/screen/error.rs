//! The one error type of the screen backends (terminal write, framebuffer, SPI, PNG). It lives
//! here, not in `crate::error`, so the screen depends on nothing above it; `crate::error`
//! wraps it.

use std::fmt;

/// A display backend failed (terminal write, framebuffer, SPI).
#[derive(Debug)]
pub enum DisplayError {
    Io {
        what: String,
        source: std::io::Error,
    },
    Unsupported(String),
}

impl fmt::Display for DisplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplayError::Io { what, source } => write!(f, "display: {what}: {source}"),
            DisplayError::Unsupported(what) => write!(f, "display: {what}"),
        }
    }
}

impl std::error::Error for DisplayError {}
