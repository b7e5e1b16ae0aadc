//! `devauth token`: prints a fresh access token (renewing it first when due).

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::setup::{self};
use crate::store::TokenStore;
use std::io::Write;

pub(crate) fn token(config: &Config, header: bool) -> Result<(), Error> {
    let store = TokenStore::new(&config.storage.path);
    let (client, how) = setup::token_parts(config, &store)?;
    let tokens = grant::fresh_tokens(
        &store,
        &client,
        &SystemClock,
        &how,
        config.agent.refresh_margin,
    )?;
    let mut out = std::io::stdout().lock();
    let line = if header {
        format!("Bearer {}", tokens.access_token.expose())
    } else {
        tokens.access_token.expose().to_string()
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("writing the token to stdout: {e}")))
}
