//! `devauth token`: prints a fresh access token (renewing it first when due).

use crate::config::Config;
use crate::error::Error;
use crate::setup;
use std::io::Write;

pub(crate) fn token(config: &Config, header: bool) -> Result<(), Error> {
    let tokens = setup::stored_grant(config)?.tokens;
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
