//! The life of a grant after pairing: turning a token response into a stored [`TokenSet`],
//! deciding when an access token needs refreshing, and refreshing it safely when many
//! processes ask at once.
//!
//! Rotation safety (RFC 6749 §10.4, OAuth 2.0 Security BCP §4.14): a refresh runs only under
//! the store's exclusive lock, re-reads the store after taking it (another process may have
//! refreshed meanwhile), and writes the new refresh token durably BEFORE the new access token
//! is handed out. A refresh answer without `refresh_token` keeps the old one.

use crate::clock::Clock;
use crate::error::Error;
use crate::oauth::{CallError, OAuthClient};
use crate::secret::Secret;
use crate::store::{Expiry, StoredTokens, TimeNow, TokenSet, TokenStore};
use crate::transport::Transport;
use crate::wire::{self, TokenResponse};
use std::time::{Duration, SystemTime};

/// Longest access-token lifetime we believe; a server claiming more is capped.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// How long `token` waits for another process's refresh to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The stored form of a token response. `previous` supplies the refresh token when the server
/// did not rotate it (RFC 6749 §6: "MAY issue a new refresh token").
pub fn token_set(
    resp: TokenResponse,
    previous: Option<&TokenSet>,
    server_date: Option<i64>,
    now: &TimeNow,
    account: Option<String>,
) -> TokenSet {
    let scopes = match (resp.scopes(), previous) {
        // §5.1: scope may be omitted when identical to the one requested/held before.
        (s, Some(prev)) if s.is_empty() => prev.scopes.clone(),
        (s, _) => s,
    };
    let obtained = server_date
        .and_then(|secs| u64::try_from(secs).ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap_or(now.wall);
    let expiry = resp.expires_in.map(|secs| {
        Expiry::new(
            Duration::from_secs(secs).min(MAX_TOKEN_LIFETIME),
            obtained,
            now,
        )
    });
    TokenSet {
        refresh_token: resp
            .refresh_token
            .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        id_token: resp
            .id_token
            .or_else(|| previous.and_then(|p| p.id_token.clone())),
        account: account.or_else(|| previous.and_then(|p| p.account.clone())),
        access_token: resp.access_token,
        token_type: resp.token_type,
        scopes,
        expiry,
    }
}

/// The account to show: from the id_token's claims, else from the userinfo endpoint.
/// Failures here never fail pairing: the name is a convenience.
pub fn account_for<T: Transport>(client: &OAuthClient<T>, resp: &TokenResponse) -> Option<String> {
    if let Some(id) = &resp.id_token {
        if let Some(name) = wire::id_token_claims(id)
            .ok()
            .and_then(|claims| wire::account_from_claims(&claims))
        {
            return Some(name);
        }
    }
    client
        .userinfo(&resp.access_token)
        .ok()
        .flatten()
        .and_then(|fields| wire::account_from_claims(&fields))
}

/// How far ahead of expiry to refresh: the configured margin, but never more than half the
/// token's lifetime (a 60 s token with a 300 s margin would otherwise refresh on every call).
pub fn refresh_margin(configured: Duration, expiry: &Expiry) -> Duration {
    configured.min(Duration::from_secs(expiry.lifetime_secs / 2))
}

/// Whether `tokens` can be handed out as they are.
pub fn is_fresh(tokens: &TokenSet, margin: Duration, now: &TimeNow) -> bool {
    match &tokens.expiry {
        None => true, // never expires (GitHub OAuth apps)
        // None from remaining(): the clock cannot be trusted → refresh now.
        Some(exp) => exp
            .remaining(now)
            .is_some_and(|left| left > refresh_margin(margin, exp)),
    }
}

/// Checks that the stored tokens were issued to the configured client.
pub fn check_owner(
    stored: &StoredTokens,
    client_id: &str,
    token_endpoint: &str,
    store: &TokenStore,
) -> Result<(), Error> {
    if stored.client_id != client_id {
        return Err(Error::OtherClient {
            store: store.path().to_path_buf(),
            detail: format!(
                "were issued to client `{}`, the config names `{client_id}`",
                stored.client_id
            ),
        });
    }
    if stored.token_endpoint != token_endpoint {
        return Err(Error::OtherClient {
            store: store.path().to_path_buf(),
            detail: format!(
                "came from {}, the config uses {token_endpoint}",
                stored.token_endpoint
            ),
        });
    }
    Ok(())
}

/// A usable access token: the stored one if fresh, else refreshed under the lock.
pub fn fresh_tokens<T: Transport, C: Clock>(
    store: &TokenStore,
    client: &OAuthClient<T>,
    clock: &C,
    margin: Duration,
) -> Result<TokenSet, Error> {
    let load = || -> Result<StoredTokens, Error> {
        let stored = store.load()?.ok_or_else(|| Error::NotPaired {
            store: store.path().to_path_buf(),
        })?;
        check_owner(
            &stored,
            &client.identity.client_id,
            &client.endpoints.token,
            store,
        )?;
        Ok(stored)
    };
    let stored = load()?;
    if is_fresh(&stored.tokens, margin, &TimeNow::read(clock)) {
        return Ok(stored.tokens);
    }
    let _lock = store.lock(LOCK_TIMEOUT)?;
    // Another process may have refreshed while we waited for the lock: its refresh token is
    // the only valid one now, and ours may already be dead (rotation).
    let stored = load()?;
    let now = TimeNow::read(clock);
    if is_fresh(&stored.tokens, margin, &now) {
        return Ok(stored.tokens);
    }
    let still_valid = stored
        .tokens
        .expiry
        .as_ref()
        .and_then(|e| e.remaining(&now))
        .is_some_and(|left| left > Duration::ZERO);
    let Some(refresh_token) = stored.tokens.refresh_token.clone() else {
        if still_valid {
            return Ok(stored.tokens);
        }
        return Err(Error::GrantGone {
            detail: "the access token expired and the provider issued no refresh token".into(),
        });
    };
    match client.refresh(&refresh_token) {
        Ok(grant) => {
            let now = TimeNow::read(clock);
            let tokens = token_set(
                grant.tokens,
                Some(&stored.tokens),
                grant.server_date,
                &now,
                None,
            );
            let updated = StoredTokens { tokens, ..stored };
            // Durable before handed out: if we die after this line, the rotated refresh token
            // is on flash; if we die before it, the server's answer is lost but so is the
            // access token, and nothing was used.
            store.save(&updated)?;
            Ok(updated.tokens)
        }
        Err(e) if e.oauth_error() == Some("invalid_grant") => Err(Error::GrantGone {
            detail: format!("the provider no longer accepts the refresh token ({e})"),
        }),
        Err(e) if e.is_transient() && still_valid => {
            // The token still works for a while: hand it out and refresh next time.
            eprintln!("devauth: refresh failed, using the current token until it expires: {e}");
            Ok(stored.tokens)
        }
        Err(e) => Err(refresh_error(e)),
    }
}

fn refresh_error(e: CallError) -> Error {
    Error::from(e)
}

/// Revokes what can be revoked (refresh token first: revoking it ends the whole grant at most
/// providers, RFC 7009 §2.1), returning a human summary of what could not be done.
pub fn revoke_all<T: Transport>(client: &OAuthClient<T>, tokens: &TokenSet) -> Vec<String> {
    let mut problems = Vec::new();
    if client.endpoints.revocation.is_none() {
        problems.push("the provider has no revocation endpoint; the grant stays valid at the provider until it expires or is removed in the account's settings".into());
        return problems;
    }
    let mut revoke = |token: &Secret, hint: &str| match client.revoke(token, hint) {
        Ok(_) => {}
        Err(e) => problems.push(format!("could not revoke the {hint}: {e}")),
    };
    if let Some(rt) = &tokens.refresh_token {
        revoke(rt, "refresh_token");
    }
    revoke(&tokens.access_token, "access_token");
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> TimeNow {
        TimeNow {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            boot_id: Some("boot".into()),
            boottime: Duration::from_secs(500),
        }
    }

    fn resp(expires_in: Option<u64>, rt: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: Secret::new("at"),
            token_type: "Bearer".into(),
            expires_in,
            refresh_token: rt.map(Secret::new),
            scope: None,
            id_token: None,
        }
    }

    #[test]
    fn refresh_without_refresh_token_keeps_the_old_one() {
        let first = token_set(
            resp(Some(60), Some("rt1")),
            None,
            None,
            &now(),
            Some("a".into()),
        );
        let second = token_set(resp(Some(60), None), Some(&first), None, &now(), None);
        assert_eq!(second.refresh_token.unwrap().expose(), "rt1");
        assert_eq!(second.account.as_deref(), Some("a"));
        let rotated = token_set(
            resp(Some(60), Some("rt2")),
            Some(&first),
            None,
            &now(),
            None,
        );
        assert_eq!(rotated.refresh_token.unwrap().expose(), "rt2");
    }

    #[test]
    fn margin_is_capped_at_half_the_lifetime() {
        let t = token_set(resp(Some(60), None), None, None, &now(), None);
        let exp = t.expiry.clone().unwrap();
        assert_eq!(
            refresh_margin(Duration::from_secs(300), &exp),
            Duration::from_secs(30)
        );
        assert!(is_fresh(&t, Duration::from_secs(300), &now()));
        let mut later = now();
        later.boottime += Duration::from_secs(31);
        assert!(!is_fresh(&t, Duration::from_secs(300), &later));
    }

    #[test]
    fn tokens_without_expiry_are_always_fresh() {
        let t = token_set(resp(None, None), None, None, &now(), None);
        assert!(t.expiry.is_none());
        assert!(is_fresh(&t, Duration::from_secs(300), &now()));
    }

    #[test]
    fn absurd_lifetimes_are_capped() {
        let t = token_set(resp(Some(u64::MAX / 2), None), None, None, &now(), None);
        assert_eq!(
            t.expiry.unwrap().lifetime_secs,
            MAX_TOKEN_LIFETIME.as_secs()
        );
    }

    #[test]
    fn server_date_anchors_the_expiry() {
        let t = token_set(
            resp(Some(3600), None),
            None,
            Some(1_700_000_000),
            &now(),
            None,
        );
        assert_eq!(t.expiry.unwrap().obtained_unix, 1_700_000_000);
    }
}
