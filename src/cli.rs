//! Command line → a typed [`Cli`]. Validation only: no file or network access here.

use std::ffi::OsString;
use std::path::PathBuf;

mod api;
mod keys;
pub use api::{ApiArgs, DataSource};
use api::{api_data, api_header, api_method};
pub use keys::{KEYGEN_HELP, ProofArgs, proof_args};

pub const USAGE: &str = "\
devauth — pair this device with an OAuth 2.0 account (RFC 8628 device flow) and keep its tokens

Usage: devauth [--config PATH] <COMMAND> [OPTIONS]

Commands:
  pair [--json]        Show a code and QR, wait for approval, store the tokens
  token [--header]     Print a valid access token (refreshing it first when needed)
        [--dpop-proof M URL]   ... and a DPoP proof for that request (DPoP-bound tokens)
  status [--json]      Show whether the device is paired, as whom, and until when
  unpair               Revoke the tokens at the provider (when possible) and delete them
  render               Draw the pairing screen of a board into a PNG (sample data, no network)
  run [--json]         The agent: pair when needed, keep tokens fresh, publish them (a service)
  api [OPTIONS] URL    One HTTPS request with the access token; the body goes to stdout
  authorize-url --redirect-uri URI   Web-server sign-in, step 1: print the sign-in URL
  exchange --redirect-url URL        Web-server sign-in, step 2: store the tokens
  keygen [--public]    Make the device's client key (private_key_jwt), print its public JWK

Options:
  -c, --config PATH    Config file (else $DEVAUTH_CONFIG, else /etc/devauth/devauth.toml)
  --account NAME       The config's [accounts.NAME] (pair, token, status, unpair, api, ...;
                       default: the top-level account; `status` then lists every account)
  -h, --help           Show help (also `devauth <COMMAND> --help`)
  -V, --version        Show the version

Exit codes:
  0  success
  1  unexpected error, or stdout could not be written
  2  bad command line
  3  not paired (run `devauth pair`)
  4  pairing needed again: the grant was revoked or has expired (invalid_grant)
  5  the person denied access on the provider's page
  6  configuration error
  7  network error: the provider could not be reached (timeout, DNS, TLS)
  8  the provider refused the request (an OAuth error such as invalid_client)
  9  token store error (unreadable, corrupt or not writable)
  10/11/12  `api` only: the server answered 3xx / 4xx / 5xx
  13 a browser sign-in (grant = \"authorization_code\") got no redirect in login_timeout_secs
  14 `exchange`: no pending sign-in for this answer, or it expired (run `authorize-url` again)
";

pub const PAIR_HELP: &str = "\
devauth pair — run the device flow until this device is paired

Usage: devauth pair [--json] [--timeout SECS] [--force] [--grant GRANT] [--no-browser | --paste]

Asks the provider for a code, shows the verification URL, the code and a QR code, waits for
the person to approve on their phone or computer, then stores the tokens. Expired codes are
replaced automatically; network trouble is retried with backoff, for at most --timeout.
On a device that is already paired it does nothing (exit 0) unless --force is given.

Options:
  --json    Print one JSON event per line on stdout for a device UI to draw its own screen:
            code, pending, slow_down, expired, retrying, then paired, denied or error.
            Human text goes to stderr.
  --timeout SECS  Give up (exit 7, with the last error) when the provider could not be reached
                for SECS: no answer, DNS, TLS, timeouts, 5xx, 429. Default [network]
                pair_timeout_secs (120); 0 retries for ever, as `devauth run` always does.
  --force       Pair again although the device is paired; once the new tokens are stored the
                old grant is revoked (not when the new pairing is for the same account).
  --grant G     Use this grant instead of [provider] grant: device_code or
                authorization_code. The file is checked for G and as written, so
                what pairs here, `token` and the others accept too.
  --no-browser  authorization_code: launch nothing; the URL is shown on the screen (text +
                QR) and in the `authorize` event, for the device's own UI to open.
  --paste       authorization_code: the browser is elsewhere; paste the address it was sent
                to (or just the code) on stdin. A malformed paste may be corrected twice.

With grant = \"authorization_code\" it signs in through a browser instead: it listens on
127.0.0.1 (or ::1), runs browser_command with the sign-in URL (the `authorize` event on
--json), checks the redirect's state, exchanges the code with PKCE and stores the tokens.

SIGTERM, SIGINT and SIGHUP take the code off the screen (\"Pairing stopped\", the `stopped`
event) and exit with 128 + the signal (143, 130, 129).

Exit codes: 0 paired (or already paired), 5 denied, 6 config, 7 network (after --timeout),
8 provider refused, 9 store, 13 no redirect from the browser in time, 129/130/143 stopped by
a signal.
";

pub const AUTHORIZE_URL_HELP: &str = "\
devauth authorize-url — start a web-server sign-in (step 1 of 2)

Usage: devauth authorize-url --redirect-uri URI [--state STATE] [--json]

For a device with its own web UI, or a server that signs users in: prints the provider's
sign-in URL (authorization code grant with PKCE S256) for the browser to open, and keeps the
request (state, PKCE verifier, redirect URI) in <storage path>.pending, mode 0600, for
login_timeout_secs. The provider sends the browser to URI with ?code=...&state=...; hand
that address to `devauth exchange`. The verifier never leaves the device.

Options:
  --redirect-uri URI  Where the provider sends the browser (registered with the provider)
  --state STATE       Name the request yourself (22-256 of A-Z a-z 0-9 - . _ ~): several
                      named requests may wait at once. Without it, a new request replaces
                      the last unnamed one.
  --json              Print {\"event\":\"authorize\",\"url\",\"state\",\"expires_in\"} on stdout

Uses [provider] as grant = \"authorization_code\" does, whatever grant the file names.
";

pub const EXCHANGE_HELP: &str = "\
devauth exchange — finish a web-server sign-in (step 2 of 2)

Usage: devauth exchange (--redirect-url URL | --code CODE [--state STATE]) [--json]

Checks the answer's state against the requests `authorize-url` keeps, exchanges the code with
that request's PKCE verifier and stores the tokens, as `pair` does. The request is used up
whatever the outcome (a code works once): after an error, start again with authorize-url.

Options:
  --redirect-url URL  The address the provider sent the browser to (- reads it from stdin,
                      which keeps the code out of the process list)
  --code CODE         Only the code (- reads it from stdin); with --state STATE, or alone
                      when exactly one request is pending
  --json              Print the `paired` event (or `denied`/`error`) on stdout

Exit codes: 0 stored, 2 malformed answer, 5 denied, 7 network, 8 provider refused (a
wrong verifier, a used or expired code), 9 store, 14 no pending request or it expired.
";

pub const TOKEN_HELP: &str = "\
devauth token — print a valid access token

Usage: devauth token [--header] [--scope 'SCOPE ...'] [--dpop-proof METHOD URL [--dpop-nonce NONCE]]

While `devauth run` serves [agent] socket, the token comes from the agent, as its policy
grants it to the caller (so the store and its lock can be root-only). Without the agent:
refreshes first when the token expires within the refresh margin ([agent] refresh_margin_secs,
at most half the token's lifetime). Safe to call from many processes at once: refreshes are
serialised by a lock, so a provider that rotates refresh tokens never sees one twice.

Options:
  --header              Print `Bearer <token>`, or `DPoP <token>` for a DPoP-bound token
                        (ready for an Authorization header)
  --scope SCOPES        A token with only these scopes (space-separated); needs the agent
  --dpop-proof M URL    A DPoP-bound token (RFC 9449) needs a proof with each request: print
                        one for METHOD URL on a second line, bound to the printed token. Send
                        `Authorization: DPoP <token>` and `DPoP: <proof>`; one proof, one request.
  --dpop-nonce NONCE    The nonce the resource server asked for (its DPoP-Nonce header)

Exit codes: 0 ok, 3 not paired, 4 pairing needed again (or the DPoP key is gone), 6 --dpop-proof
with a token that is not DPoP-bound, 7 network, 8 provider refused, 9 store,
15 the agent refused (policy).
";

pub const STATUS_HELP: &str = "\
devauth status — show the pairing state (never prints a secret)

Usage: devauth status [--json]

Shows whether the device is paired, the account, scopes, access token expiry, whether a
refresh token is held, and where the store is. After the provider refused the grant
(invalid_grant, remembered by `token`, `api` and `run`) it says that pairing is needed.

Exit codes: 0 paired, 3 not paired, 4 pairing needed again (the provider refused the grant:
revoked, expired), 9 store unreadable.
";

pub const UNPAIR_HELP: &str = "\
devauth unpair — sign this device out

Usage: devauth unpair

Revokes the refresh token, then the access token, at the provider's revocation endpoint
(RFC 7009) when it has one, then deletes the stored tokens and the access-token file of
`devauth run` ([agent] token_file), and tells a running agent (SIGUSR2), which then shows the
pairing screen. Without network access (or without a revocation endpoint) the tokens are
still deleted locally and devauth says that they could not be revoked.

Exit codes: 0 done (also when nothing was paired), 6 config, 9 store.
";

pub const RENDER_HELP: &str = "\
devauth render — draw the pairing screen into a PNG, with sample data and no network

Usage: devauth render (--board NAME | --size WxH) --state STATE --out FILE.png
                      [--size WxH] [--rotate DEG] [--language TAG]

Options:
  --board NAME   A board profile: boards/NAME.toml next to the config, else
                 /usr/share/devauth/boards/NAME.toml, else the built-in one (tv-1080p, tv-720p,
                 pi-st7789-240x240, pi-ili9341-320x240, pi-ssd1306-128x64, pi-fb1-480x320)
  --size WxH     The panel size (overrides the board's), e.g. 1920x1080
  --rotate DEG   0, 90, 180 or 270 (overrides the board's)
  --state STATE  code (waiting for the person), renewed (new code issued), clock (waiting for
                 network time), retrying, paired, denied, error
  --out FILE     The PNG to write (replaced atomically)
  --language TAG The screen's language: a BCP 47 tag (ar, de, pt-BR, zh-Hant, ...) or auto
                 (from LANGUAGE, LC_ALL, LC_MESSAGES, LANG); default: [display] language of
                 the config, else auto. A language without a pack here falls back as the
                 device would (region to language to English) and says so.

Without --board and --size, the [display] section of the config is used.

Exit codes: 0 written, 1 could not write, 2 bad command line, 6 config or board error.
";

/// The screen `devauth render` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderState {
    Code,
    Renewed,
    Clock,
    Retrying,
    Paired,
    Denied,
    Error,
}

impl RenderState {
    pub const ALL: [RenderState; 7] = [
        RenderState::Code,
        RenderState::Renewed,
        RenderState::Clock,
        RenderState::Retrying,
        RenderState::Paired,
        RenderState::Denied,
        RenderState::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RenderState::Code => "code",
            RenderState::Renewed => "renewed",
            RenderState::Clock => "clock",
            RenderState::Retrying => "retrying",
            RenderState::Paired => "paired",
            RenderState::Denied => "denied",
            RenderState::Error => "error",
        }
    }
}

/// `devauth render`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderArgs {
    pub board: Option<String>,
    /// Width and height.
    pub size: Option<(u32, u32)>,
    pub rotate: Option<u32>,
    pub state: RenderState,
    pub out: PathBuf,
    /// `--language`: a BCP 47 tag or `auto`, checked by the command.
    pub language: Option<String>,
}
pub const RUN_HELP: &str = "\
devauth run — the agent that owns this device's pairing for its whole life

Usage: devauth run [--json]

Says at start whether the device is paired (the paired event with at_start, or
pairing_required), pairs when there are no usable tokens (pairing screen, then \"Paired as
...\" for [agent] paired_screen_secs), keeps the access token fresh ahead of expiry on a clock that
counts through suspend, retries network and server errors with backoff (never re-pairing for
them), pairs again when the grant is gone, writes the access token to [agent] token_file
(0640, atomically) and runs [agent] hook on paired, refreshed, unpaired, pairing-required.
`devauth token` keeps working meanwhile (one refresh for everyone).

Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the config; SIGUSR1 unpairs (revoking the
tokens) and pairs again; SIGUSR2 re-reads the store (`devauth unpair` and `pair` send it).

Options:
  --json    One JSON event per line on stdout: the pair events (code, pending, slow_down,
            expired, retrying, paired, denied, error) plus refreshed, pairing_required,
            unpaired and waiting_for_clock. Human text goes to stderr.

Exit codes: 0 stopped by a signal, 1 another agent runs, stdout failed or a local error,
6 config (also a token_file_group that does not exist), 9 token store not writable.
";

pub const API_HELP: &str = "\
devauth api — an HTTPS request with the current access token

Usage: devauth api [--method M] [--header 'Name: value']... [--data @FILE|-] URL

Sends `Authorization: Bearer <access token>` (refreshed first when needed). On HTTP 401 the
token is renewed once (under the same lock as `devauth token`) and the request retried. The
response body is written to stdout as it arrives, whatever the status. For example the
provider's userinfo URL answers \"who am I\".

Options:
  -X, --method M       HTTP method (default GET; POST with --data)
  -H, --header H       Extra request header `Name: value`, sent as given (repeatable); not
                       Authorization, which devauth sets
  -d, --data @FILE|-   Request body from FILE or stdin (at most 1 MiB)

Exit codes: 0 2xx, 10 3xx (redirects are not followed), 11 4xx, 12 5xx, 2 bad command line or
URL, 3 not paired, 4 pairing needed again, 6 config, 7 network, 8 provider refused, 9 store.
";

/// Largest `--data` body.
pub const MAX_API_BODY: u64 = 1024 * 1024;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Render(RenderArgs),
    Pair {
        json: bool,
        /// `--timeout SECS`: how long network trouble may last (`None`: the config's).
        timeout: Option<u64>,
        /// `--force`: pair again although paired.
        force: bool,
    },
    /// `pair` with `--grant`, `--no-browser` or `--paste`.
    SignIn(PairArgs),
    Token {
        header: bool,
        /// `--scope`: only these scopes (from the agent).
        scope: Option<String>,
        /// `--dpop-proof METHOD URL`: also print a DPoP proof for that request.
        dpop: Option<ProofArgs>,
    },
    /// `keygen`: make the client key; `--public`: print the existing one's public JWK.
    Keygen {
        public: bool,
    },
    Status {
        json: bool,
    },
    Unpair,
    Run {
        json: bool,
    },
    Api(ApiArgs),
    AuthorizeUrl(AuthorizeUrlArgs),
    Exchange(ExchangeArgs),
    Help(&'static str),
    Version,
}

/// `devauth pair`'s profile options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairArgs {
    pub json: bool,
    /// Replaces `[provider] grant` for this run.
    pub grant: Option<String>,
    /// authorization_code: launch nothing; the URL is shown (screen, `authorize` event).
    pub no_browser: bool,
    /// authorization_code: read the redirected address (or the code) from stdin.
    pub paste: bool,
    /// `--timeout SECS` (device flow only).
    pub timeout: Option<u64>,
    /// `--force`: pair again although paired.
    pub force: bool,
}

/// `devauth authorize-url`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeUrlArgs {
    pub redirect_uri: String,
    /// Chosen by the caller; `None`: a random one, replacing the last unnamed request.
    pub state: Option<String>,
    pub json: bool,
}

/// `devauth exchange`'s arguments: the answer as the browser got it, or its parts. `-` (read
/// from stdin) is resolved by the command, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeArgs {
    pub answer: ExchangeAnswer,
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeAnswer {
    RedirectUrl(String),
    Code { code: String, state: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    /// `--account NAME`: one of the config's `[accounts.NAME]` (`None`: the default one;
    /// `status` then lists them all).
    pub account: Option<String>,
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
    let mut account: Option<String> = None;
    let mut name: Option<String> = None;
    let mut json = false;
    let mut header = false;
    let mut help = false;
    // `render`'s options, checked once the command is known.
    let mut board: Option<String> = None;
    let mut size: Option<String> = None;
    let mut rotate: Option<String> = None;
    let mut state: Option<String> = None;
    let mut out: Option<PathBuf> = None;
    let mut language: Option<String> = None;
    let mut method: Option<String> = None;
    let mut headers = Vec::new();
    let mut data: Option<DataSource> = None;
    let mut positional: Vec<String> = Vec::new();
    let mut grant: Option<String> = None;
    let mut no_browser = false;
    let mut paste = false;
    let mut redirect_uri: Option<String> = None;
    let mut redirect_url: Option<String> = None;
    let mut code: Option<String> = None;
    let mut scope: Option<String> = None;
    let mut timeout: Option<u64> = None;
    let mut force = false;
    let mut dpop_proof: Option<(String, String)> = None;
    let mut dpop_nonce: Option<String> = None;
    let mut public = false;
    let err = |e: lexopt::Error| UsageError(e.to_string());
    let text = |v: std::ffi::OsString, what: &str| {
        v.into_string()
            .map_err(|_| UsageError(format!("--{what} is not valid UTF-8")))
    };
    while let Some(arg) = parser.next().map_err(err)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(err)?));
            }
            // An unknown name is the config's to say (it lists the accounts there are).
            Long("account") => account = Some(text(parser.value().map_err(err)?, "account")?),
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") if name.is_none() => {
                return Ok(Cli {
                    config,
                    account,
                    command: Command::Version,
                });
            }
            Long("json") => json = true,
            Long("grant") => grant = Some(text(parser.value().map_err(err)?, "grant")?),
            Long("no-browser") => no_browser = true,
            Long("paste") => paste = true,
            Long("force") => force = true,
            Long("timeout") => {
                let v = text(parser.value().map_err(err)?, "timeout")?;
                timeout = Some(v.parse::<u64>().ok().filter(|s| *s <= 86_400).ok_or_else(
                    || UsageError(format!("--timeout {v:?}: expected seconds, 0..=86400")),
                )?);
            }
            Long("redirect-uri") => {
                redirect_uri = Some(text(parser.value().map_err(err)?, "redirect-uri")?);
            }
            Long("redirect-url") => {
                redirect_url = Some(text(parser.value().map_err(err)?, "redirect-url")?);
            }
            Long("code") => code = Some(text(parser.value().map_err(err)?, "code")?),
            Long("scope") => scope = Some(text(parser.value().map_err(err)?, "scope")?),
            Long("dpop-proof") => {
                let method = text(parser.value().map_err(err)?, "dpop-proof")?;
                let url = text(parser.value().map_err(err)?, "dpop-proof")?;
                dpop_proof = Some((method, url));
            }
            Long("dpop-nonce") => {
                dpop_nonce = Some(text(parser.value().map_err(err)?, "dpop-nonce")?);
            }
            Long("public") => public = true,
            Long("board") => board = Some(text(parser.value().map_err(err)?, "board")?),
            Long("size") => size = Some(text(parser.value().map_err(err)?, "size")?),
            Long("rotate") => rotate = Some(text(parser.value().map_err(err)?, "rotate")?),
            Long("state") => state = Some(text(parser.value().map_err(err)?, "state")?),
            Long("out") => out = Some(PathBuf::from(parser.value().map_err(err)?)),
            Long("language") => language = Some(text(parser.value().map_err(err)?, "language")?),
            // `--header` alone is `token`'s switch; with a value it is an `api` header.
            Long("header") if name.as_deref() != Some("api") => header = true,
            Short('H') | Long("header") => {
                let v = parser.value().map_err(err)?;
                let v = v
                    .into_string()
                    .map_err(|_| UsageError("--header is not valid UTF-8".into()))?;
                headers.push(api_header(&v)?);
            }
            Short('X') | Long("method") => {
                let v = parser.value().map_err(err)?;
                method = Some(api_method(&v.to_string_lossy())?);
            }
            Short('d') | Long("data") => {
                let v = parser.value().map_err(err)?;
                let v = v
                    .into_string()
                    .map_err(|_| UsageError("--data is not valid UTF-8".into()))?;
                data = Some(api_data(&v)?);
            }
            Value(v) if name.as_deref() == Some("api") => {
                positional.push(
                    v.into_string()
                        .map_err(|_| UsageError("the URL is not valid UTF-8".into()))?,
                );
            }
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
                account,
                command: Command::Help(USAGE),
            });
        }
        return Err(UsageError("no command given".into()));
    };
    let allowed: &[&str] = match name.as_str() {
        "pair" => &["json", "grant", "no-browser", "paste", "timeout", "force"],
        "status" => &["json"],
        "token" => &["header", "scope", "dpop-proof", "dpop-nonce"],
        "keygen" => &["public"],
        "unpair" => &[],
        "render" => &["board", "size", "rotate", "state", "out", "language"],
        "run" => &["json"],
        "api" => &["api"],
        "authorize-url" => &["json", "redirect-uri", "state"],
        "exchange" => &["json", "redirect-url", "code", "state"],
        "help" => {
            return Ok(Cli {
                config,
                account,
                command: Command::Help(USAGE),
            });
        }
        other => return Err(UsageError(format!("unknown command `{other}`"))),
    };
    if account.is_some() && matches!(name.as_str(), "run" | "render") {
        return Err(UsageError(format!(
            "`{name}` does not take --account (`run` serves every account of the config)"
        )));
    }
    for (flag, set) in [
        ("json", json),
        ("header", header),
        ("board", board.is_some()),
        ("size", size.is_some()),
        ("rotate", rotate.is_some()),
        ("state", state.is_some()),
        ("out", out.is_some()),
        ("language", language.is_some()),
        ("grant", grant.is_some()),
        ("no-browser", no_browser),
        ("paste", paste),
        ("redirect-uri", redirect_uri.is_some()),
        ("redirect-url", redirect_url.is_some()),
        ("code", code.is_some()),
        ("scope", scope.is_some()),
        ("timeout", timeout.is_some()),
        ("force", force),
        ("dpop-proof", dpop_proof.is_some()),
        ("dpop-nonce", dpop_nonce.is_some()),
        ("public", public),
    ] {
        if set && !allowed.contains(&flag) {
            return Err(UsageError(format!("`{name}` does not take --{flag}")));
        }
    }
    let api_options = method.is_some() || !headers.is_empty() || data.is_some();
    if api_options && !allowed.contains(&"api") {
        return Err(UsageError(format!(
            "`{name}` does not take --method, --header VALUE or --data"
        )));
    }
    let command = if help {
        Command::Help(match name.as_str() {
            "pair" => PAIR_HELP,
            "token" => TOKEN_HELP,
            "status" => STATUS_HELP,
            "render" => RENDER_HELP,
            "run" => RUN_HELP,
            "api" => API_HELP,
            "authorize-url" => AUTHORIZE_URL_HELP,
            "exchange" => EXCHANGE_HELP,
            "keygen" => KEYGEN_HELP,
            _ => UNPAIR_HELP,
        })
    } else {
        match name.as_str() {
            "pair" if grant.is_some() || no_browser || paste => {
                if no_browser && paste {
                    return Err(UsageError(
                        "--no-browser and --paste exclude each other (--paste launches nothing \
                         either)"
                            .into(),
                    ));
                }
                Command::SignIn(PairArgs {
                    json,
                    grant,
                    no_browser,
                    paste,
                    timeout,
                    force,
                })
            }
            "pair" => Command::Pair {
                json,
                timeout,
                force,
            },
            "token" => Command::Token {
                header,
                scope,
                dpop: proof_args(dpop_proof, dpop_nonce)?,
            },
            "keygen" => Command::Keygen { public },
            "status" => Command::Status { json },
            "render" => Command::Render(render_args(board, size, rotate, state, out, language)?),
            "run" => Command::Run { json },
            "authorize-url" => Command::AuthorizeUrl(AuthorizeUrlArgs {
                redirect_uri: redirect_uri
                    .ok_or_else(|| UsageError("`authorize-url` needs --redirect-uri URI".into()))?,
                state,
                json,
            }),
            "exchange" => Command::Exchange(ExchangeArgs {
                answer: match (redirect_url, code, state) {
                    (Some(url), None, None) => ExchangeAnswer::RedirectUrl(url),
                    (None, Some(code), state) => ExchangeAnswer::Code { code, state },
                    (Some(_), None, Some(_)) => {
                        return Err(UsageError(
                            "--state goes with --code; a redirect URL carries its own".into(),
                        ));
                    }
                    _ => {
                        return Err(UsageError(
                            "`exchange` needs either --redirect-url URL or --code CODE".into(),
                        ));
                    }
                },
                json,
            }),
            "api" => {
                let mut urls = positional.into_iter();
                let (Some(url), None) = (urls.next(), urls.next()) else {
                    return Err(UsageError("`api` takes exactly one URL".into()));
                };
                let method = method
                    .unwrap_or_else(|| if data.is_some() { "POST" } else { "GET" }.to_string());
                Command::Api(ApiArgs {
                    method,
                    headers,
                    data,
                    url,
                })
            }
            _ => Command::Unpair,
        }
    };
    Ok(Cli {
        config,
        account,
        command,
    })
}

fn render_args(
    board: Option<String>,
    size: Option<String>,
    rotate: Option<String>,
    state: Option<String>,
    out: Option<PathBuf>,
    language: Option<String>,
) -> Result<RenderArgs, UsageError> {
    let size = match size {
        None => None,
        Some(s) => {
            let parsed = s
                .split_once(['x', 'X'])
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .filter(|(w, h)| (8..=8192).contains(w) && (8..=8192).contains(h));
            Some(parsed.ok_or_else(|| {
                UsageError(format!(
                    "--size {s:?}: expected WIDTHxHEIGHT, each 8..=8192"
                ))
            })?)
        }
    };
    let rotate = match rotate {
        None => None,
        Some(r) => Some(
            r.parse::<u32>()
                .ok()
                .filter(|d| [0, 90, 180, 270].contains(d))
                .ok_or_else(|| UsageError(format!("--rotate {r:?}: expected 0, 90, 180 or 270")))?,
        ),
    };
    let state = state.ok_or_else(|| UsageError("render needs --state STATE".into()))?;
    let state = RenderState::ALL
        .iter()
        .copied()
        .find(|s| s.name() == state)
        .ok_or_else(|| {
            let names: Vec<&str> = RenderState::ALL.iter().map(|s| s.name()).collect();
            UsageError(format!(
                "--state {state:?}: expected one of {}",
                names.join(", ")
            ))
        })?;
    let out = out.ok_or_else(|| UsageError("render needs --out FILE.png".into()))?;
    Ok(RenderArgs {
        board,
        size,
        rotate,
        state,
        out,
        language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn token_dpop_proof_and_keygen() {
        assert_eq!(
            p(&[
                "token",
                "--dpop-proof",
                "get",
                "https://api/x?y=1",
                "--dpop-nonce",
                "n"
            ])
            .unwrap()
            .command,
            Command::Token {
                header: false,
                scope: None,
                dpop: Some(ProofArgs {
                    method: "GET".into(),
                    url: "https://api/x?y=1".into(),
                    nonce: Some("n".into()),
                }),
            }
        );
        assert_eq!(
            p(&["keygen", "--public"]).unwrap().command,
            Command::Keygen { public: true }
        );
        assert_eq!(
            p(&["keygen"]).unwrap().command,
            Command::Keygen { public: false }
        );
        for bad in [
            &["token", "--dpop-proof", "GET"][..],
            &["token", "--dpop-proof", "FETCH", "https://a"],
            &["token", "--dpop-proof", "GET", "ftp://a"],
            &["token", "--dpop-proof", "GET", "https://a b"],
            &["token", "--dpop-nonce", "n"],
            &["status", "--dpop-proof", "GET", "https://a"],
            &["pair", "--public"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn web_server_two_step_flags() {
        assert_eq!(
            p(&[
                "authorize-url",
                "--redirect-uri",
                "https://d.local/cb",
                "--json"
            ])
            .unwrap()
            .command,
            Command::AuthorizeUrl(AuthorizeUrlArgs {
                redirect_uri: "https://d.local/cb".into(),
                state: None,
                json: true,
            })
        );
        assert!(p(&["authorize-url"]).is_err());
        assert!(p(&["authorize-url", "--redirect-uri", "x", "--code", "c"]).is_err());
        assert_eq!(
            p(&["exchange", "--code", "-", "--state", "s"])
                .unwrap()
                .command,
            Command::Exchange(ExchangeArgs {
                answer: ExchangeAnswer::Code {
                    code: "-".into(),
                    state: Some("s".into()),
                },
                json: false,
            })
        );
        assert!(matches!(
            p(&[
                "exchange",
                "--redirect-url",
                "https://d.local/cb?code=c&state=s"
            ])
            .unwrap()
            .command,
            Command::Exchange(ExchangeArgs {
                answer: ExchangeAnswer::RedirectUrl(_),
                ..
            })
        ));
        for bad in [
            &["exchange"][..],
            &["exchange", "--redirect-url", "u", "--code", "c"],
            &["exchange", "--redirect-url", "u", "--state", "s"],
            &["exchange", "--redirect-uri", "u"],
            &["pair", "--code", "c"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            p(&["exchange", "--help"]).unwrap().command,
            Command::Help(EXCHANGE_HELP)
        );
    }

    #[test]
    fn pair_profile_flags() {
        assert_eq!(
            p(&["pair", "--grant", "authorization_code", "--paste"])
                .unwrap()
                .command,
            Command::SignIn(PairArgs {
                json: false,
                grant: Some("authorization_code".into()),
                no_browser: false,
                paste: true,
                timeout: None,
                force: false,
            })
        );
        assert!(matches!(
            p(&["pair", "--no-browser", "--json"]).unwrap().command,
            Command::SignIn(PairArgs {
                json: true,
                no_browser: true,
                ..
            })
        ));
        assert!(p(&["pair", "--no-browser", "--paste"]).is_err());
        assert!(p(&["token", "--paste"]).is_err());
        assert!(p(&["pair", "--grant"]).is_err());
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(
            p(&["pair"]).unwrap().command,
            Command::Pair {
                json: false,
                timeout: None,
                force: false
            }
        );
        assert_eq!(
            p(&["pair", "--json", "--timeout", "30", "--force"])
                .unwrap()
                .command,
            Command::Pair {
                json: true,
                timeout: Some(30),
                force: true
            }
        );
        assert!(p(&["pair", "--timeout", "soon"]).is_err());
        assert!(p(&["token", "--force"]).is_err());
        assert!(p(&["run", "--timeout", "5"]).is_err());
        assert_eq!(
            p(&["token", "--header"]).unwrap().command,
            Command::Token {
                header: true,
                scope: None,
                dpop: None
            }
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
    fn render_arguments() {
        let c = p(&[
            "render",
            "--board",
            "tv-1080p",
            "--state",
            "code",
            "--out",
            "/tmp/x.png",
            "--size",
            "640x480",
            "--rotate",
            "90",
        ])
        .unwrap();
        assert_eq!(
            c.command,
            Command::Render(RenderArgs {
                board: Some("tv-1080p".into()),
                size: Some((640, 480)),
                rotate: Some(90),
                state: RenderState::Code,
                out: PathBuf::from("/tmp/x.png"),
                language: None,
            })
        );
        assert_eq!(
            p(&["render", "--help"]).unwrap().command,
            Command::Help(RENDER_HELP)
        );
        for bad in [
            &["render", "--state", "code"][..],
            &["render", "--out", "x.png"],
            &["render", "--state", "nope", "--out", "x.png"],
            &[
                "render", "--state", "code", "--out", "x.png", "--size", "10",
            ],
            &[
                "render", "--state", "code", "--out", "x.png", "--size", "0x10",
            ],
            &[
                "render", "--state", "code", "--out", "x.png", "--rotate", "45",
            ],
            &["pair", "--board", "x"],
            &["status", "--out", "x"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn run_and_api() {
        assert_eq!(p(&["run"]).unwrap().command, Command::Run { json: false });
        assert_eq!(
            p(&["run", "--json"]).unwrap().command,
            Command::Run { json: true }
        );
        assert_eq!(
            p(&["run", "--help"]).unwrap().command,
            Command::Help(RUN_HELP)
        );
        assert_eq!(p(&["api", "-h"]).unwrap().command, Command::Help(API_HELP));
        assert_eq!(
            p(&["api", "https://x/me"]).unwrap().command,
            Command::Api(ApiArgs {
                method: "GET".into(),
                headers: vec![],
                data: None,
                url: "https://x/me".into()
            })
        );
        assert_eq!(
            p(&[
                "-c",
                "/c.toml",
                "api",
                "--method",
                "put",
                "--header",
                "Content-Type: application/json",
                "-H",
                "X-A:b",
                "--data",
                "@/tmp/body.json",
                "https://x/y",
            ])
            .unwrap(),
            Cli {
                config: Some(PathBuf::from("/c.toml")),
                account: None,
                command: Command::Api(ApiArgs {
                    method: "PUT".into(),
                    headers: vec![
                        ("Content-Type".into(), "application/json".into()),
                        ("X-A".into(), "b".into())
                    ],
                    data: Some(DataSource::File(PathBuf::from("/tmp/body.json"))),
                    url: "https://x/y".into()
                })
            }
        );
        // --data defaults the method to POST; - is stdin.
        let Command::Api(a) = p(&["api", "-d", "-", "https://x"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            (a.method.as_str(), a.data),
            ("POST", Some(DataSource::Stdin))
        );
        // `token --header` still is the switch.
        assert_eq!(
            p(&["token", "--header"]).unwrap().command,
            Command::Token {
                header: true,
                scope: None,
                dpop: None
            }
        );
        assert_eq!(
            p(&["token", "--scope", "read write"]).unwrap().command,
            Command::Token {
                header: false,
                scope: Some("read write".into()),
                dpop: None
            }
        );
        assert!(p(&["status", "--scope", "x"]).is_err());
    }

    #[test]
    fn account_is_for_every_command_but_run_and_render() {
        for cmd in ["pair", "token", "status", "unpair", "keygen"] {
            let cli = p(&[cmd, "--account", "kids"]).unwrap();
            assert_eq!(cli.account.as_deref(), Some("kids"), "{cmd}");
        }
        assert_eq!(
            p(&["--account", "kids", "status"])
                .unwrap()
                .account
                .as_deref(),
            Some("kids")
        );
        assert_eq!(p(&["status"]).unwrap().account, None);
        for cmd in ["run", "render"] {
            let e = p(&[cmd, "--account", "kids"]).unwrap_err();
            assert!(e.0.contains("--account"), "{cmd}: {e}");
        }
    }

    #[test]
    fn api_mistakes() {
        for args in [
            &["api"][..],
            &["api", "https://a", "https://b"],
            &["api", "--method", "FROB", "https://a"],
            &["api", "--header", "NoColon", "https://a"],
            &["api", "--header", "Authorization: Bearer x", "https://a"],
            &["api", "--header", "Bad Name: x", "https://a"],
            &["api", "--data", "inline body", "https://a"],
            &["api", "--data", "@", "https://a"],
            &["run", "extra"],
            &["run", "--header"],
            &["status", "--method", "GET"],
            &["pair", "-d", "-"],
        ] {
            let e = p(args).unwrap_err();
            assert!(!e.0.contains("Bearer x"), "{e}");
        }
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
