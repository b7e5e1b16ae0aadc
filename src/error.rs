//! Error types: one enum per boundary, wrapped by one [`Error`] that `main` turns into a message
//! and an exit code. Messages are lowercase "context: detail" and never contain a secret.

use std::fmt;

/// Re-exported: a display backend's failure is the screen's own type.
pub use crate::screen::error::DisplayError;

/// Everything that can stop a command, each with its documented exit code (see `cli::USAGE`).
#[derive(Debug)]
pub enum Error {
    Usage(crate::cli::UsageError),
    Config(crate::config::ConfigError),
    Store(crate::store::StoreError),
    Display(DisplayError),
    /// No tokens are stored.
    NotPaired {
        store: std::path::PathBuf,
    },
    /// The stored tokens belong to another client or provider than the config names.
    OtherClient {
        store: std::path::PathBuf,
        detail: String,
    },
    /// The grant is gone (refresh answered `invalid_grant`, or expired without a refresh
    /// token): pairing is needed again.
    GrantGone {
        detail: String,
    },
    /// The person refused access during pairing.
    Denied,
    /// `devauth pair` was stopped by a signal before the device was paired.
    Stopped(crate::signals::Signal),
    /// A browser sign-in's redirect did not come within `login_timeout_secs`.
    LoginTimeout(String),
    /// `exchange`: no pending web-server sign-in matches the answer, or it expired.
    NoPendingSignIn(String),
    /// The provider could not be reached (after retries where retrying made sense).
    Network(String),
    /// The provider answered with an error we cannot recover from.
    Provider(String),
    /// A local I/O problem outside the store (e.g. writing to stdout).
    Io(String),
    /// A setting that only fails when used (e.g. an unreadable `ca_file`).
    Setup(String),
    /// `devauth api`: the server answered with a status other than 2xx (the body was printed).
    HttpStatus {
        status: u16,
        url: String,
    },
    /// The agent's token service refused this caller (its `[[agent.client]]` policy, or an
    /// account it does not have): the `error` code and message it sent.
    AgentRefused {
        code: String,
        message: String,
    },
    /// Already shown to the person (e.g. by `status`); only the exit code remains.
    Reported(Box<Error>),
}

impl Error {
    /// Whether the message was already shown, so `main` prints nothing more.
    pub fn already_reported(&self) -> bool {
        matches!(self, Error::Reported(_))
    }

    /// What a person in front of the screen is told went wrong (one plain sentence each; the
    /// message itself goes to the log).
    pub fn problem(&self) -> crate::screen::Problem {
        use crate::screen::Problem;
        match self {
            Error::Reported(inner) => inner.problem(),
            Error::Network(_) => Problem::Network,
            Error::Provider(_) | Error::GrantGone { .. } | Error::OtherClient { .. } => {
                Problem::Service
            }
            Error::Store(_) => Problem::Storage,
            Error::Config(_) | Error::Setup(_) | Error::Usage(_) => Problem::Setup,
            _ => Problem::Other,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Reported(inner) => inner.exit_code(),
            Error::Usage(_) => 2,
            Error::NotPaired { .. } | Error::OtherClient { .. } => 3,
            Error::GrantGone { .. } => 4,
            // Sealed on another board, or the TPM was cleared: pair again, as for a dead grant.
            Error::Store(e) if e.needs_pairing() => 4,
            Error::Denied => 5,
            // The shell's convention for "ended by signal N": 143 for SIGTERM, 130 for Ctrl-C.
            Error::Stopped(sig) => 128 + sig.number(),
            Error::LoginTimeout(_) => 13,
            Error::NoPendingSignIn(_) => 14,
            Error::AgentRefused { .. } => 15,
            Error::Config(_) | Error::Setup(_) => 6,
            Error::Network(_) => 7,
            Error::Provider(_) => 8,
            Error::Store(_) => 9,
            Error::Display(_) | Error::Io(_) => 1,
            Error::HttpStatus { status, .. } => match status {
                300..=399 => 10,
                400..=499 => 11,
                500..=599 => 12,
                _ => 1,
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
            Error::Store(e) => e.fmt(f),
            Error::Display(e) => e.fmt(f),
            Error::NotPaired { store } => write!(
                f,
                "not paired: no tokens in {} (run `devauth pair`)",
                store.display()
            ),
            Error::OtherClient { store, detail } => write!(
                f,
                "not paired with this provider: the tokens in {} {detail} (run `devauth pair`)",
                store.display()
            ),
            Error::GrantGone { detail } => {
                write!(f, "pairing needed again: {detail} (run `devauth pair`)")
            }
            Error::Denied => f.write_str("access was denied on the provider's page"),
            Error::Stopped(sig) => write!(
                f,
                "pairing stopped by {} before the device was paired; the code that was shown is \
                 no longer in use",
                sig.name()
            ),
            Error::LoginTimeout(m) | Error::NoPendingSignIn(m) => f.write_str(m),
            Error::Network(m) => write!(f, "network: {m}"),
            Error::Provider(m) => write!(f, "provider: {m}"),
            Error::Io(m) => f.write_str(m),
            Error::Setup(m) => write!(f, "config: {m}"),
            Error::HttpStatus { status, url } => write!(f, "{url}: HTTP {status}"),
            Error::AgentRefused { code, message } => {
                write!(f, "the agent refused: {message} ({code})")
            }
            Error::Reported(inner) => inner.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::cli::UsageError> for Error {
    fn from(e: crate::cli::UsageError) -> Self {
        Error::Usage(e)
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<DisplayError> for Error {
    fn from(e: DisplayError) -> Self {
        Error::Display(e)
    }
}

impl From<crate::oauth::CallError> for Error {
    fn from(e: crate::oauth::CallError) -> Self {
        if e.is_transient() {
            Error::Network(e.to_string())
        } else {
            Error::Provider(e.to_string())
        }
    }
}

impl From<crate::net::transport::TransportError> for Error {
    fn from(e: crate::net::transport::TransportError) -> Self {
        match e {
            crate::net::transport::TransportError::CaFile { .. }
            | crate::net::transport::TransportError::ProxySetting(_) => Error::Setup(e.to_string()),
            crate::net::transport::TransportError::Refused { .. } => Error::Provider(e.to_string()),
            _ => Error::Network(e.to_string()),
        }
    }
}
