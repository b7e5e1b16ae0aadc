//! Error types: one enum per boundary, wrapped by one [`Error`] that `main` turns into a message
//! and an exit code. Messages are lowercase "context: detail" and never contain a secret.

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
