//! `devauth unpair`: revokes the tokens at the provider when it can and deletes the store.

use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::setup::{self};

pub(crate) fn unpair(config: &Config) -> Result<(), Error> {
    let store = config.storage.token_store();
    let stored = match store.load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("Not paired; nothing to do.");
            return Ok(());
        }
        Err(e) => {
            // A corrupt store holds nothing we could revoke; deleting it is the whole job.
            store.delete()?;
            println!("Deleted an unreadable token store ({e}).");
            return Ok(());
        }
    };
    let problems = match setup::transport(config).and_then(|t| {
        let endpoints = setup::resolve_endpoints(config, &t)?;
        Ok(setup::client_with(config, t, endpoints))
    }) {
        Ok(client) => grant::revoke_all(&client, &stored.tokens),
        Err(e) => vec![format!(
            "could not reach the provider to revoke the tokens: {e}"
        )],
    };
    store.delete()?;
    if problems.is_empty() {
        println!(
            "Unpaired: tokens revoked at the provider and deleted from {}.",
            store.path().display()
        );
    } else {
        println!(
            "Unpaired locally: tokens deleted from {}.",
            store.path().display()
        );
        for p in problems {
            println!("  not revoked: {p}");
        }
    }
    Ok(())
}
