//! `devauth pair` on a device that is already paired. Without `--force` it does not pair again
//! (exit 0, "already paired as …"): a boot script or a person typing `pair` on a working device
//! must not put a code on the screen and end up with a second live grant on the account. With
//! `--force` it pairs, and once the new tokens are stored it revokes the old grant (RFC 7009;
//! refresh token first) — after, not before, so that a pairing nobody completes leaves the
//! device as it was.
//!
//! One exception: when the new pairing is for the same account, the old grant is not revoked.
//! Some providers (Google among them) end the account's whole consent for the client on a
//! revocation, which would end the new grant too; the provider keeps at most one consent per
//! account anyway. Either way a running agent is told that the store changed (SIGUSR2).

use crate::config::Config;
use crate::setup::emit;
use crate::store::{StoredTokens, TimeNow};
use serde_json::json;

/// What pairing replaces: the grant to revoke once the new one is stored.
pub(crate) struct Previous(Option<StoredTokens>);

/// Whether to pair: `None` when the device is already paired and `force` is off (said on
/// stderr, and as `already_paired` with `--json`); else what the new pairing replaces.
pub(crate) fn before(config: &Config, force: bool, json: bool) -> Option<Previous> {
    let store = config.storage.token_store();
    // Unreadable, another client's, refused or expired beyond renewal: nothing worth keeping
    // (pairing replaces it as before).
    let usable = store.load().ok().flatten().filter(|s| {
        let now = TimeNow::read(&crate::clock::SystemClock);
        s.client_id == config.provider.client_id
            && s.grant_refused.is_none()
            && (s.tokens.refresh_token.is_some()
                || crate::grant::is_fresh(&s.tokens, std::time::Duration::ZERO, &now))
    });
    match usable {
        Some(old) if !force => {
            let account = old.tokens.account.as_deref();
            eprintln!(
                "devauth: already paired{} (tokens in {}); nothing to do. `devauth pair --force` \
                 pairs again and then revokes this grant; `devauth unpair` signs out.",
                account.map(|a| format!(" as {a}")).unwrap_or_default(),
                store.path().display()
            );
            if json {
                emit(&json!({
                    "event": "already_paired",
                    "account": account,
                    "scopes": old.tokens.scopes,
                }));
            }
            None
        }
        old => Some(Previous(old)),
    }
}

/// After a pairing that stored new tokens: the old grant is revoked (unless it is the same
/// account's) and a running agent told. Problems are said on stderr; the pairing stands.
pub(crate) fn after(config: &Config, previous: Previous) {
    let store = config.storage.token_store();
    super::notify_agent(&store);
    let Previous(Some(old)) = previous else {
        return;
    };
    let new_account = store.load().ok().flatten().and_then(|s| s.tokens.account);
    let old_account = old.tokens.account.as_deref();
    if old_account.is_some() && old_account == new_account.as_deref() {
        eprintln!(
            "devauth: the previous grant was for the same account and is not revoked (at some \
             providers that would end the new one too)"
        );
        return;
    }
    let problems = super::unpair::revoke_stored(config, &old);
    let who = old_account.map(|a| format!(" ({a})")).unwrap_or_default();
    if problems.is_empty() {
        eprintln!("devauth: the previous grant{who} was revoked at the provider");
    }
    for p in problems {
        eprintln!("devauth: the previous grant{who} was not revoked: {p}");
    }
}
