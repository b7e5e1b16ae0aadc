//! The commands: each builds the real parts from the config (through [`crate::setup`]), runs
//! the work and returns an [`Error`] that `main` turns into a message and an exit code. One file
//! per subcommand; nothing here parses network bytes or makes protocol decisions.

pub mod api;
mod clock_wait;
mod keygen;
mod pair;
pub mod render;
mod replace;
mod run;
mod sign_in;
mod status;
mod token;
mod two_step;
mod unpair;

pub use status::human_duration;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::Error;
use crate::store::TokenStore;

pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        // A failed write is `main`'s to report (crate::stdout).
        Command::Version => {
            let _ = crate::stdout::line(&format!("devauth {}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        Command::Help(text) => {
            let _ = crate::stdout::write_all(text.as_bytes());
            Ok(())
        }
        Command::Render(args) => crate::commands::render::command(cli.config.as_deref(), &args),
        command => {
            let path = crate::config::config_path(cli.config.as_deref());
            // `pair --grant` replaces the file's grant before its rules are checked.
            // The web-server two-step is the code grant whatever the file's grant says.
            let grant = match &command {
                Command::SignIn(args) => args.grant.as_deref(),
                Command::AuthorizeUrl(_) | Command::Exchange(_) => Some("authorization_code"),
                _ => None,
            };
            let config = Config::load_account(&path, grant, cli.account.as_deref())?;
            match command {
                Command::Pair {
                    json,
                    timeout,
                    force,
                } => pair_guarded(&config, json, force, || {
                    if config.provider.grant.code_grant().is_some() {
                        sign_in::pair(&config, json)
                    } else {
                        pair::pair(&config, json, timeout)
                    }
                }),
                Command::SignIn(args) => {
                    let mode = sign_in::mode(&config, &args)?;
                    pair_guarded(&config, args.json, args.force, || match mode {
                        Some(mode) => sign_in::pair_with(&config, args.json, mode),
                        None => pair::pair(&config, args.json, args.timeout),
                    })
                }
                Command::Token {
                    header,
                    scope,
                    dpop,
                } => token::token(&config, header, scope.as_deref(), dpop.as_ref()),
                Command::Keygen { public } => keygen::keygen(&config, public),
                Command::Status { json } if cli.account.is_none() && config.account.several() => {
                    status::status_all(&path, json)
                }
                Command::Status { json } => status::status(&config, json),
                Command::Unpair => unpair::unpair(&config),
                Command::Run { json } => run::run(&path, config, json),
                Command::Api(args) => crate::commands::api::run(&config, &args),
                Command::AuthorizeUrl(args) => two_step::authorize_url(&config, &args),
                Command::Exchange(args) => two_step::exchange(&config, &args),
                Command::Version | Command::Help(_) | Command::Render(_) => Ok(()),
            }
        }
    }
}

/// `pair` on a paired device does nothing without `--force` ([`replace`]); a pairing that
/// stored tokens replaces the old grant and tells a running agent.
fn pair_guarded(
    config: &Config,
    json: bool,
    force: bool,
    pair: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    if config.provider.grant.jwt_bearer().is_some() {
        return pair(); // a service account: `pair` says there is nothing to pair
    }
    let Some(previous) = replace::before(config, force, json) else {
        return Ok(());
    };
    pair()?;
    replace::after(config, previous);
    Ok(())
}

/// Says that the tokens are stored: the `paired` event on `--json`, else one line on stderr.
/// `done` is what happened ("paired", "signed in"). The lifetime is the one kept (clamped).
pub(crate) fn announce_paired(
    json: bool,
    done: &str,
    stored: &crate::store::StoredTokens,
    store: &crate::store::TokenStore,
) {
    let account = &stored.tokens.account;
    if json {
        crate::setup::emit(&serde_json::json!({
            "event": "paired",
            "scopes": stored.tokens.scopes,
            "expires_in": stored.tokens.expiry.as_ref().map(|e| e.lifetime_secs),
            "account": account,
        }));
    } else {
        eprintln!(
            "devauth: {done}{}; tokens stored in {}",
            account
                .as_ref()
                .map(|a| format!(" as {a}"))
                .unwrap_or_default(),
            store.path().display()
        );
    }
    match store.last_protection() {
        Some(p @ crate::store::Protection::Unprotected { .. }) => {
            eprintln!("devauth: warning: {}", p.describe());
        }
        Some(p) => eprintln!("devauth: tokens {}", p.describe()),
        None => {}
    }
    if stored.tokens.is_dpop() {
        if let Some(line) = crate::keys::dpop_key_line(store) {
            eprintln!("devauth: {line}");
        }
    }
}

/// Tells the `devauth run` of this store, if one runs, that the store changed (SIGUSR2): it
/// reads it again at once (tokens gone: `unpaired` and the pairing screen; new tokens: held
/// and announced) instead of at its next renewal.
pub(crate) fn notify_agent(store: &TokenStore) {
    let Some(pid) = store.running_agent() else {
        return;
    };
    // SAFETY: kill(2) with a pid read from the agent lock, which that agent holds.
    if unsafe { libc::kill(pid, libc::SIGUSR2) } != 0 {
        eprintln!(
            "devauth: could not tell the running agent (pid {pid}): {}; it notices at its next \
             renewal",
            std::io::Error::last_os_error()
        );
    }
}
