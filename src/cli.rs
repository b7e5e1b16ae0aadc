//! Command line → a typed [`Cli`]. Validation only: no file or network access here.

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
devauth — pair this device with an OAuth 2.0 account (RFC 8628 device flow) and keep its tokens

Usage: devauth [--config PATH] <COMMAND> [OPTIONS]

Commands:
  pair [--json]        Show a code and QR, wait for approval, store the tokens
  token [--header]     Print a valid access token (refreshing it first when needed)
  status [--json]      Show whether the device is paired, as whom, and until when
  unpair               Revoke the tokens at the provider (when possible) and delete them

Options:
  -c, --config PATH    Config file (else $DEVAUTH_CONFIG, else /etc/devauth/devauth.toml)
  -h, --help           Show help (also `devauth <COMMAND> --help`)
  -V, --version        Show the version

Exit codes:
  0  success
  1  unexpected error
  2  bad command line
  3  not paired (run `devauth pair`)
  4  pairing needed again: the grant was revoked or has expired (invalid_grant)
  5  the person denied access on the provider's page
  6  configuration error
  7  network error: the provider could not be reached (timeout, DNS, TLS)
  8  the provider refused the request (an OAuth error such as invalid_client)
  9  token store error (unreadable, corrupt or not writable)
";

pub const PAIR_HELP: &str = "\
devauth pair — run the device flow until this device is paired

Usage: devauth pair [--json]

Asks the provider for a code, shows the verification URL, the code and a QR code, waits for
the person to approve on their phone or computer, then stores the tokens. Expired codes are
replaced automatically; network trouble is retried with backoff.

Options:
  --json    Print one JSON event per line on stdout for a device UI to draw its own screen:
            code, pending, slow_down, expired, retrying, then paired, denied or error.
            Human text goes to stderr.

Exit codes: 0 paired, 5 denied, 6 config, 7 network, 8 provider refused, 9 store.
";

pub const TOKEN_HELP: &str = "\
devauth token — print a valid access token

Usage: devauth token [--header]

Refreshes first when the token expires within the refresh margin ([agent] refresh_margin_secs,
at most half the token's lifetime). Safe to call from many processes at once: refreshes are
serialised by a lock, so a provider that rotates refresh tokens never sees one twice.

Options:
  --header  Print `Bearer <token>` (ready for an Authorization header)

Exit codes: 0 ok, 3 not paired, 4 pairing needed again, 7 network, 8 provider refused, 9 store.
";

pub const STATUS_HELP: &str = "\
devauth status — show the pairing state (never prints a secret)

Usage: devauth status [--json]

Shows whether the device is paired, the account, scopes, access token expiry, whether a
refresh token is held, and where the store is.

Exit codes: 0 paired, 3 not paired, 9 store unreadable.
";

pub const UNPAIR_HELP: &str = "\
devauth unpair — sign this device out

Usage: devauth unpair

Revokes the refresh token, then the access token, at the provider's revocation endpoint
(RFC 7009) when it has one, then deletes the stored tokens. Without network access (or
without a revocation endpoint) the tokens are still deleted locally and devauth says that
they could not be revoked.

Exit codes: 0 done (also when nothing was paired), 6 config, 9 store.
";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pair { json: bool },
    Token { header: bool },
    Status { json: bool },
    Unpair,
    Help(&'static str),
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    pub command: Command,
}

/// A command-line mistake, shown with a pointer to --help (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (see `devauth --help`)", self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, UsageError> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut name: Option<String> = None;
    let mut json = false;
    let mut header = false;
    let mut help = false;
    let err = |e: lexopt::Error| UsageError(e.to_string());
    while let Some(arg) = parser.next().map_err(err)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(err)?));
            }
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") if name.is_none() => {
                return Ok(Cli {
                    config,
                    command: Command::Version,
                });
            }
            Long("json") => json = true,
            Long("header") => header = true,
            Value(v) if name.is_none() => {
                name = Some(
                    v.into_string()
                        .map_err(|_| UsageError("command is not valid UTF-8".into()))?,
                );
            }
            Value(v) => {
                return Err(UsageError(format!(
                    "unexpected argument `{}`",
                    v.to_string_lossy()
                )));
            }
            other => return Err(err(other.unexpected())),
        }
    }
    let Some(name) = name else {
        if help {
            return Ok(Cli {
                config,
                command: Command::Help(USAGE),
            });
        }
        return Err(UsageError("no command given".into()));
    };
    let allowed: &[&str] = match name.as_str() {
        "pair" | "status" => &["json"],
        "token" => &["header"],
        "unpair" => &[],
        "help" => {
            return Ok(Cli {
                config,
                command: Command::Help(USAGE),
            });
        }
        other => return Err(UsageError(format!("unknown command `{other}`"))),
    };
    for (flag, set) in [("json", json), ("header", header)] {
        if set && !allowed.contains(&flag) {
            return Err(UsageError(format!("`{name}` does not take --{flag}")));
        }
    }
    let command = if help {
        Command::Help(match name.as_str() {
            "pair" => PAIR_HELP,
            "token" => TOKEN_HELP,
            "status" => STATUS_HELP,
            _ => UNPAIR_HELP,
        })
    } else {
        match name.as_str() {
            "pair" => Command::Pair { json },
            "token" => Command::Token { header },
            "status" => Command::Status { json },
            _ => Command::Unpair,
        }
    };
    Ok(Cli { config, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(p(&["pair"]).unwrap().command, Command::Pair { json: false });
        assert_eq!(
            p(&["pair", "--json"]).unwrap().command,
            Command::Pair { json: true }
        );
        assert_eq!(
            p(&["token", "--header"]).unwrap().command,
            Command::Token { header: true }
        );
        assert_eq!(
            p(&["status", "--json"]).unwrap().command,
            Command::Status { json: true }
        );
        assert_eq!(p(&["unpair"]).unwrap().command, Command::Unpair);
        assert_eq!(p(&["--version"]).unwrap().command, Command::Version);
        assert_eq!(p(&["--help"]).unwrap().command, Command::Help(USAGE));
        assert_eq!(
            p(&["token", "--help"]).unwrap().command,
            Command::Help(TOKEN_HELP)
        );
    }

    #[test]
    fn config_before_or_after_the_command() {
        let a = p(&["--config", "/x.toml", "status"]).unwrap();
        let b = p(&["status", "-c", "/x.toml"]).unwrap();
        let c = p(&["status", "--config=/x.toml"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.config, Some(PathBuf::from("/x.toml")));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(p(&[]).is_err());
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&["token", "--json"]).is_err());
        assert!(p(&["pair", "--header"]).is_err());
        assert!(p(&["pair", "extra"]).is_err());
        assert!(p(&["pair", "--bogus"]).is_err());
        assert!(p(&["--config"]).is_err());
    }
}
