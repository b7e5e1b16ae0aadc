//! The commands: each builds the real parts from the config (through [`crate::setup`]), runs
//! the work and returns an [`Error`] that `main` turns into a message and an exit code. One file
//! per subcommand; nothing here parses network bytes or makes protocol decisions.

pub mod api;
mod clock_wait;
mod pair;
pub mod render;
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

pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Version => {
            println!("devauth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Help(text) => {
            print!("{text}");
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
            let config = Config::load_with_grant(&path, grant)?;
            match command {
                Command::Pair { json } if config.provider.grant.code_grant().is_some() => {
                    sign_in::pair(&config, json)
                }
                Command::Pair { json } => pair::pair(&config, json),
                Command::SignIn(args) => match sign_in::mode(&config, &args)? {
                    Some(mode) => sign_in::pair_with(&config, args.json, mode),
                    None => pair::pair(&config, args.json),
                },
                Command::Token { header } => token::token(&config, header),
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
}
