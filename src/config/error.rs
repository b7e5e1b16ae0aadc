//! [`ConfigError`]: every configuration failure, naming the file, the line and the key.

use super::*;

/// Why a config could not be used. `Display` is `config <path>:<line>: <key>: <message>`; no
/// variant ever holds a client secret.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The config file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge { path: PathBuf, size: u64 },
    /// Not valid TOML (or not UTF-8).
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Valid TOML, but a key is unknown, missing, of the wrong type or has a bad value.
    Invalid {
        path: PathBuf,
        /// Dotted key, e.g. `provider.client_id` or `provider.scopes[1]`.
        key: String,
        line: Option<usize>,
        message: String,
    },
}

impl ConfigError {
    /// The 1-based line the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } => Some(*line),
            ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => None,
        }
    }

    /// `self` with an `Invalid`'s key and message changed by `f` (other kinds as they are):
    /// for callers that know more about where a mistake is or why it matters.
    pub(super) fn map_invalid(self, f: impl FnOnce(&mut String, &mut String)) -> ConfigError {
        match self {
            ConfigError::Invalid {
                path,
                mut key,
                line,
                mut message,
            } => {
                f(&mut key, &mut message);
                ConfigError::Invalid {
                    path,
                    key,
                    line,
                    message,
                }
            }
            e => e,
        }
    }

    /// The offending key, for `Invalid`.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "config {}: {source}", path.display())
            }
            ConfigError::TooLarge { path, size } => write!(
                f,
                "config {}: file is {size} bytes, more than the {MAX_CONFIG_BYTES}-byte limit",
                path.display()
            ),
            ConfigError::Syntax {
                path,
                line,
                message,
            } => write!(f, "config {}:{line}: {message}", path.display()),
            ConfigError::Invalid {
                path,
                key,
                line: Some(line),
                message,
            } => write!(f, "config {}:{line}: {key}: {message}", path.display()),
            // Not from a file (`render --board` without a config).
            ConfigError::Invalid {
                path,
                key,
                line: None,
                message,
            } if path.as_os_str().is_empty() => write!(f, "{key}: {message}"),
            ConfigError::Invalid {
                path,
                key,
                line: None,
                message,
            } => write!(f, "config {}: {key}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
