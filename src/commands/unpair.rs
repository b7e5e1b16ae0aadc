//! `devauth unpair`: revokes the tokens at the provider when it can, deletes the store and the
//! access-token file the agent publishes, and tells a running agent (SIGUSR2) so that it shows
//! the pairing screen instead of handing out a revoked token until its next renewal.

use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::setup::{self};
use crate::store::tokenfile::TokenFile;
use crate::store::{StoredTokens, TokenStore};

pub(crate) fn unpair(config: &Config) -> Result<(), Error> {
    let store = config.storage.token_store();
    let stored = match store.load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            // A token file left by an agent that is gone (tmpfs keeps it until reboot).
            remove_token_file(config);
            crate::keys::forget_dpop_key(&store)?;
            crate::stdout::outln!("Not paired; nothing to do.");
            return Ok(());
        }
        Err(e) => {
            // A corrupt store holds nothing we could revoke; deleting it is the whole job.
            store.delete()?;
            after_delete(config, &store);
            crate::keys::forget_dpop_key(&store)?;
            crate::stdout::outln!("Deleted an unreadable token store ({e}).");
            return Ok(());
        }
    };
    let problems = if stored.grant_refused.is_some() {
        // The provider said the grant is gone: there is nothing left to revoke.
        Vec::new()
    } else {
        revoke_stored(config, &stored)
    };
    store.delete()?;
    // The key the tokens were bound to goes with them: the next pairing makes a new one.
    crate::keys::forget_dpop_key(&store)?;
    after_delete(config, &store);
    let path = store.path().display();
    if stored.grant_refused.is_some() {
        crate::stdout::outln!(
            "Unpaired: the provider had already refused the grant; deleted from {path}."
        );
    } else if problems.is_empty() {
        crate::stdout::outln!("Unpaired: tokens revoked at the provider and deleted from {path}.");
    } else {
        let mut text = format!("Unpaired locally: tokens deleted from {path}.");
        for p in problems {
            text.push_str(&format!("\n  not revoked: {p}"));
        }
        crate::stdout::outln!("{text}");
    }
    Ok(())
}

/// Revokes a stored grant's tokens (RFC 7009), with the DPoP key they are bound to where they
/// are; what could not be revoked is returned, not raised (the caller deletes anyway).
pub(crate) fn revoke_stored(config: &Config, stored: &StoredTokens) -> Vec<String> {
    let client = setup::transport(config).and_then(|t| {
        let endpoints = setup::resolve_endpoints(config, &t)?;
        let mut client = setup::client_with(config, t, endpoints)?;
        // Revoking a DPoP-bound refresh token takes a proof with its key.
        setup::bind_to_stored(&mut client, config, stored)?;
        Ok(client)
    });
    match client {
        Ok(client) => grant::revoke_all(&client, &stored.tokens),
        Err(e) => vec![format!(
            "could not reach the provider to revoke the tokens: {e}"
        )],
    }
}

/// The store changed under a running agent: its token file goes now, and the agent is told.
fn after_delete(config: &Config, store: &TokenStore) {
    remove_token_file(config);
    super::notify_agent(store);
}

/// The access token the agent published for other programs was just revoked (or belongs to
/// tokens that are gone): it must not stay readable on tmpfs.
fn remove_token_file(config: &Config) {
    let file = TokenFile::new(&config.agent.token_file, None);
    if let Err(e) = file.remove() {
        eprintln!("devauth: {e}");
    }
}
