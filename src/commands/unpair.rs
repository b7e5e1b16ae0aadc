//! `devauth unpair`: revokes the tokens at the provider when it can and deletes the store.

use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::setup::{self};
use crate::store::TokenStore;

pub(crate) fn unpair(config: &Config) -> Result<(), Error> {
    let store = TokenStore::new(&config.storage.path);
    let stored = match store.load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            crate::keys::forget_dpop_key(&store)?;
            println!("Not paired; nothing to do.");
            return Ok(());
        }
        Err(e) => {
            // A corrupt store holds nothing we could revoke; deleting it is the whole job.
            store.delete()?;
            crate::keys::forget_dpop_key(&store)?;
            println!("Deleted an unreadable token store ({e}).");
            return Ok(());
        }
    };
    let problems = match setup::transport(config).and_then(|t| {
        let endpoints = setup::resolve_endpoints(config, &t)?;
        let mut client = setup::client_with(config, t, endpoints)?;
        // Revoking a DPoP-bound refresh token takes a proof with its key.
        setup::bind_to_stored(&mut client, config, &stored)?;
        Ok(client)
    }) {
        Ok(client) => grant::revoke_all(&client, &stored.tokens),
        Err(e) => vec![format!(
            "could not reach the provider to revoke the tokens: {e}"
        )],
    };
    store.delete()?;
    // The key the tokens were bound to goes with them: the next pairing makes a new one.
    crate::keys::forget_dpop_key(&store)?;
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
