//! `devauth token`: prints a fresh access token (renewing it first when due).

use crate::config::Config;
use crate::error::Error;
use crate::setup;

pub(crate) fn token(config: &Config, header: bool) -> Result<(), Error> {
    let tokens = setup::stored_grant(config)?.tokens;
    let line = if header {
        format!("Bearer {}", tokens.access_token.expose())
    } else {
        tokens.access_token.expose().to_string()
    };
    // A failed write is `main`'s to report (exit 1; quietly for a closed pipe).
    let _ = crate::stdout::line(&line);
    Ok(())
}
