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
use crate::net::transport::Transport;
use crate::net::wire::{self, TokenResponse};
use crate::oauth::OAuthClient;
use crate::secret::Secret;
use crate::store::{Expiry, GrantRefused, StoredTokens, TimeNow, TokenSet, TokenStore};
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
/// What a pairing (any grant's first token response) leaves in the store: the tokens, with the
/// account from the ID token or userinfo, bound to this client and its token endpoint.
pub fn paired<T: Transport>(
    client: &OAuthClient<T>,
    client_id: &str,
    resp: TokenResponse,
    server_date: Option<i64>,
    now: &TimeNow,
) -> StoredTokens {
    let account = account_for(client, &resp);
    StoredTokens {
        client_id: client_id.to_string(),
        token_endpoint: client.endpoints.token.clone(),
        tokens: token_set(resp, None, server_date, now, account),
        grant_refused: None,
    }
}

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
        .userinfo(&resp.access_token, &resp.token_type)
        .ok()
        .flatten()
        .and_then(|fields| wire::account_from_claims(&fields))
}

/// The person's name from the stored ID token's `name` claim, for the paired screen's greeting
/// (never for a decision: the token's signature is not checked, see `wire::id_token_claims`).
pub fn person_name(tokens: &crate::store::TokenSet) -> Option<String> {
    let id = tokens.id_token.as_ref()?;
    wire::id_token_claims(id)
        .ok()
        .and_then(|claims| wire::name_from_claims(&claims))
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

/// How new tokens are obtained when the stored ones will not do.
#[derive(Debug)]
pub enum Renewal {
    /// RFC 6749 §6 with the stored refresh token (after device-flow pairing).
    RefreshToken,
    /// RFC 7523 §2.1: a freshly signed assertion (service accounts); nothing stored is needed.
    JwtBearer(Box<JwtRenewal>),
}

/// What a JWT-bearer renewal needs.
#[derive(Debug)]
pub struct JwtRenewal {
    pub signer: crate::oauth::jwt::Signer,
    /// The `scope` form parameter (generic servers); `None` when the scopes are in the claims.
    pub scope_param: Option<String>,
    /// Send `client_id` (and secret) with the exchange.
    pub client_auth: bool,
}

impl Renewal {
    /// The renewal the config asks for. For a service account this loads the key and warns on
    /// stderr when its file is readable by group or others.
    pub fn for_config(p: &crate::config::ProviderConfig) -> Result<Renewal, Error> {
        let Some(j) = p.grant.jwt_bearer() else {
            return Ok(Renewal::RefreshToken);
        };
        if let Some(mode) = crate::oauth::jwt::key_file_exposed(&j.key_file) {
            eprintln!(
                "devauth: warning: the private key file {} is readable by others (mode {mode:o}); \
                 chmod 600 it",
                j.key_file.display()
            );
        }
        let scope = p.scope_param();
        let (claim, param) = if j.scope_in_claims {
            (scope, None)
        } else {
            (None, scope)
        };
        let signer = crate::oauth::jwt::Signer::new(j, claim)
            .map_err(|e| Error::Setup(format!("{}: {e}", j.key_file.display())))?;
        Ok(Renewal::JwtBearer(Box::new(JwtRenewal {
            signer,
            scope_param: param,
            client_auth: j.client_auth,
        })))
    }

    fn is_jwt(&self) -> bool {
        matches!(self, Renewal::JwtBearer(_))
    }
}

/// When the stored access token must be replaced.
#[derive(Debug, Clone, Copy)]
pub enum Need<'a> {
    /// `devauth token`: when it expires within this margin (capped at half its lifetime).
    Margin(Duration),
    /// The agent at its due time: when no more than this is left.
    Remaining(Duration),
    /// An API refused this access token (HTTP 401): replace it, unless the store already holds
    /// another one (someone renewed meanwhile), so many 401s cause one renewal.
    Replace(&'a Secret),
}

/// What [`renew`] did.
#[derive(Debug)]
pub enum Renewed {
    /// The stored tokens were good enough (perhaps another process had just renewed them).
    Current(TokenSet),
    /// New tokens, already stored durably.
    New(TokenSet),
    /// Renewing failed in a way worth retrying (network, 5xx, an unusable answer, the clock, a
    /// store that cannot be written yet — full or read-only, found before anything was sent):
    /// the stored tokens are kept.
    Failed {
        current: Option<TokenSet>,
        /// The current access token is not expired (by the best clock we have).
        still_valid: bool,
        error: Error,
        /// The provider answered and refused (429, 5xx), as opposed to not being reached.
        refused: bool,
        /// Its `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
}

/// What to do with the stored tokens when the grant turns out to be gone (`invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGone {
    /// Leave them (`devauth token`: the person sees exit 4 until someone pairs again).
    Keep,
    /// Delete them, under the same lock (the agent: it pairs again at once).
    Forget,
}

/// A usable access token for `devauth token`: the stored one if fresh, else renewed under the
/// lock; when renewing fails transiently, the current token while it is still valid.
pub fn fresh_tokens<T: Transport, C: Clock>(
    store: &TokenStore,
    client: &OAuthClient<T>,
    clock: &C,
    how: &Renewal,
    margin: Duration,
) -> Result<TokenSet, Error> {
    match renew(
        store,
        client,
        clock,
        how,
        Need::Margin(margin),
        OnGone::Keep,
    )? {
        Renewed::Current(t) | Renewed::New(t) => Ok(t),
        Renewed::Failed {
            current: Some(current),
            still_valid: true,
            error,
            ..
        } => {
            // The token still works for a while: hand it out and refresh next time.
            eprintln!("devauth: refresh failed, using the current token until it expires: {error}");
            Ok(current)
        }
        Renewed::Failed { error, .. } => Err(error),
    }
}

/// Renews the stored tokens when `need` says so, under the store's exclusive lock.
///
/// The store is read without the lock first (the common case: fresh, nothing to do), then
/// again once the lock is held, because another process may have renewed meanwhile: its refresh
/// token is the only valid one now, and ours may already be dead (rotation).
pub fn renew<T: Transport, C: Clock>(
    store: &TokenStore,
    client: &OAuthClient<T>,
    clock: &C,
    how: &Renewal,
    need: Need<'_>,
    on_gone: OnGone,
) -> Result<Renewed, Error> {
    let load = || -> Result<Option<StoredTokens>, Error> {
        let Some(stored) = store.load()? else {
            if how.is_jwt() {
                return Ok(None); // nothing cached yet: sign and exchange
            }
            return Err(Error::NotPaired {
                store: store.path().to_path_buf(),
            });
        };
        check_owner(
            &stored,
            &client.identity.client_id,
            &client.endpoints.token,
            store,
        )?;
        // The provider already said this grant is gone: say it again without asking.
        if let Some(refused) = &stored.grant_refused {
            return Err(Error::GrantGone {
                detail: refused_detail(refused),
            });
        }
        if stored.tokens.is_dpop() && client.dpop.is_none() && !how.is_jwt() {
            // RFC 9449: the refresh token is bound to the key; without it nothing can renew.
            return Err(Error::GrantGone {
                detail: format!(
                    "the tokens are bound to the DPoP key {}, which is gone",
                    crate::store::keyfile::KeyFile::dpop_for(store)
                        .path()
                        .display()
                ),
            });
        }
        Ok(Some(stored))
    };
    let unlocked = load()?;
    let unlocked_now = TimeNow::read(clock);
    if let Some(stored) = &unlocked {
        if !needs_renewal(&stored.tokens, need, &unlocked_now) {
            return Ok(Renewed::Current(stored.tokens.clone()));
        }
    }
    // A lock that cannot be had (on a read-only store even its file cannot be opened for
    // writing; another process renewing for over a minute) is worth retrying, and no reason to
    // withhold a token that still works.
    let _lock = match store.lock(LOCK_TIMEOUT) {
        Ok(lock) => lock,
        Err(e) => {
            let current = unlocked.map(|s| s.tokens);
            return Ok(Renewed::Failed {
                still_valid: still_valid(current.as_ref(), &unlocked_now),
                current,
                error: Error::Store(e),
                refused: false,
                retry_after: None,
            });
        }
    };
    let stored = load()?;
    let now = TimeNow::read(clock);
    if let Some(stored) = &stored {
        if !needs_renewal(&stored.tokens, need, &now) {
            return Ok(Renewed::Current(stored.tokens.clone()));
        }
    }
    let current = stored.as_ref().map(|s| s.tokens.clone());
    let still_valid = still_valid(current.as_ref(), &now);
    let failed_after = |error: Error, refused: bool, retry_after| Renewed::Failed {
        current: current.clone(),
        still_valid,
        error,
        refused,
        retry_after,
    };
    let failed = |error: Error| failed_after(error, false, None);
    // Everything of the save that does not need the answer is done just before the request,
    // so that a read-only or full store is reported while the old refresh token still works
    // (at a provider with strict rotation, failing after the answer would cost the grant), and
    // once the answer is here only parse, write, fsync and rename remain.
    let prepare = || store.prepare_save().map_err(Error::Store);
    let (prepared, answer) = match how {
        Renewal::RefreshToken => {
            let Some(stored) = &stored else {
                return Err(Error::NotPaired {
                    store: store.path().to_path_buf(),
                });
            };
            let Some(refresh_token) = &stored.tokens.refresh_token else {
                if still_valid || matches!(need, Need::Replace(_)) {
                    // Nothing to renew with; the caller sees the same token again.
                    return Ok(Renewed::Current(stored.tokens.clone()));
                }
                return gone(
                    store,
                    on_gone,
                    "the access token expired and the provider issued no refresh token".into(),
                );
            };
            let prepared = match prepare() {
                Ok(p) => p,
                Err(e) => return Ok(failed(e)),
            };
            (prepared, client.refresh(refresh_token))
        }
        Renewal::JwtBearer(j) => {
            let wall = crate::clock::unix_secs(now.wall);
            if wall < crate::clock::MIN_PLAUSIBLE_UNIX {
                return Ok(failed(Error::Network(
                    "the clock is not set yet; a service-account assertion needs the time \
                     (waiting for network time)"
                        .into(),
                )));
            }
            let assertion = j.signer.assertion(wall).map_err(Error::Setup)?;
            let prepared = match prepare() {
                Ok(p) => p,
                Err(e) => return Ok(failed(e)),
            };
            let answer = client.jwt_bearer(&assertion, j.scope_param.as_deref(), j.client_auth);
            (prepared, answer)
        }
    };
    match answer {
        Ok(grant) => {
            let now = now.again(clock);
            let account = match how {
                Renewal::JwtBearer(_) => Some(client.identity.client_id.clone()),
                Renewal::RefreshToken => None,
            };
            let tokens = token_set(
                grant.tokens,
                current.as_ref(),
                grant.server_date,
                &now,
                account,
            );
            let updated = StoredTokens {
                client_id: client.identity.client_id.clone(),
                token_endpoint: client.endpoints.token.clone(),
                tokens,
                grant_refused: None,
            };
            // Durable before handed out: once the rename is done the rotated refresh token is
            // on flash. A power cut between the server's answer and the rename loses the
            // answer: harmless where the old refresh token keeps working (no rotation, or a
            // reuse grace period), the grant itself at a provider with strict rotation and
            // reuse detection. That window is kept to parse + write + fsync + rename
            // (docs/powercut.md measures it).
            prepared.commit(&updated)?;
            Ok(Renewed::New(updated.tokens))
        }
        Err(e) if e.oauth_error() == Some("invalid_grant") => match how {
            Renewal::RefreshToken => {
                let reason = e.to_string();
                if on_gone == OnGone::Keep {
                    // Remembered for `status`, the agent and the next `token` (we hold the lock).
                    let refused = GrantRefused::new(crate::clock::unix_secs(now.wall), &reason);
                    let marked = stored
                        .as_ref()
                        .and_then(|s| s.tokens.refresh_token.as_ref())
                        .map(|rt| store.mark_grant_refused(rt, refused));
                    if let Some(Err(err)) = marked {
                        eprintln!("devauth: could not record the refusal in the store: {err}");
                    }
                }
                gone(
                    store,
                    on_gone,
                    format!("the provider no longer accepts the refresh token ({reason})"),
                )
            }
            // No pairing can fix a refused assertion (wrong key, deleted service account,
            // clock far off): it is the provider refusing, and retrying later may help.
            Renewal::JwtBearer(_) => Err(Error::Provider(format!(
                "the service-account assertion was refused: {e}"
            ))),
        },
        Err(e) if e.is_transient() => {
            let refused = !matches!(e, crate::oauth::CallError::Transport(_));
            let retry_after = e.retry_after();
            Ok(failed_after(Error::from(e), refused, retry_after))
        }
        Err(e) => Err(Error::from(e)),
    }
}

/// What `token`, `api` and the agent say about a grant the store records as refused.
pub fn refused_detail(refused: &GrantRefused) -> String {
    format!(
        "the provider refused the stored grant ({}); recorded in the token store",
        refused.reason
    )
}

/// Whether `tokens` hold an access token that has not expired (by the best clock we have).
fn still_valid(tokens: Option<&TokenSet>, now: &TimeNow) -> bool {
    tokens
        .and_then(|t| t.expiry.as_ref())
        .and_then(|e| e.remaining(now))
        .is_some_and(|left| left > Duration::ZERO)
}

/// The grant is gone: forget the tokens if asked (we hold the lock), and say so.
fn gone(store: &TokenStore, on_gone: OnGone, detail: String) -> Result<Renewed, Error> {
    if on_gone == OnGone::Forget {
        if let Err(e) = store.delete() {
            eprintln!("devauth: could not delete the dead tokens: {e}");
        }
    }
    Err(Error::GrantGone { detail })
}

fn needs_renewal(tokens: &TokenSet, need: Need<'_>, now: &TimeNow) -> bool {
    match need {
        Need::Margin(margin) => !is_fresh(tokens, margin, now),
        Need::Remaining(at_most) => match &tokens.expiry {
            None => false,
            Some(exp) => exp.remaining(now).is_none_or(|left| left <= at_most),
        },
        Need::Replace(rejected) => tokens.access_token == *rejected,
    }
}

/// Deletes the stored tokens if they still hold `access_token` (the one an API keeps refusing),
/// under the lock: someone may have paired again meanwhile.
pub fn forget_if_current(store: &TokenStore, access_token: &Secret) -> Result<bool, Error> {
    let _lock = store.lock(LOCK_TIMEOUT)?;
    match store.load() {
        Ok(Some(s)) if s.tokens.access_token == *access_token => Ok(store.delete()?),
        Ok(_) => Ok(false),
        Err(e) => Err(Error::Store(e)),
    }
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

    /// What `renew` makes of one refresh answer, with an expired token in the store.
    fn renewal_failure(
        answer: Result<crate::net::transport::Response, crate::net::transport::TransportError>,
    ) -> (bool, Option<Duration>) {
        use crate::oauth::client::tests::Scripted;
        use crate::oauth::{ClientIdentity, Endpoints};
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens.json"));
        let clock = crate::clock::fake::FakeClock::new();
        let tokens = token_set(
            resp(Some(60), Some("refresh")),
            None,
            None,
            &TimeNow::read(&clock),
            None,
        );
        let token = "https://as.example/token".to_string();
        store
            .save(&StoredTokens {
                client_id: "tv".into(),
                token_endpoint: token.clone(),
                tokens,
                grant_refused: None,
            })
            .unwrap();
        clock.advance(Duration::from_secs(120));
        let client = OAuthClient {
            transport: Scripted::new(vec![answer]),
            endpoints: Endpoints {
                device_authorization: String::new(),
                token,
                revocation: None,
                userinfo: None,
                authorization: None,
                dpop_es256: false,
            },
            identity: ClientIdentity {
                client_id: "tv".into(),
                client_secret: None,
                basic_auth: false,
                assertion: None,
            },
            scopes: Vec::new(),
            extra_params: Vec::new(),
            allow_http_loopback: false,
            dpop: None,
        };
        let need = Need::Remaining(Duration::from_secs(30));
        match renew(
            &store,
            &client,
            &clock,
            &Renewal::RefreshToken,
            need,
            OnGone::Keep,
        ) {
            Ok(Renewed::Failed {
                refused,
                retry_after,
                still_valid: false,
                current: Some(_),
                ..
            }) => (refused, retry_after),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_refresh_says_so_with_its_retry_after_and_an_unreachable_one_does_not() {
        use crate::net::transport::{Response, TransportError};
        let refused = |status: u16, retry_after: Option<&str>| {
            Ok(Response {
                status,
                content_type: Some("application/json".into()),
                retry_after: retry_after.map(str::to_string),
                body: br#"{"error":"temporarily_unavailable"}"#.to_vec(),
                ..Response::default()
            })
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            renewal_failure(refused(503, Some("600"))),
            (true, secs(600))
        );
        assert_eq!(renewal_failure(refused(429, Some("7"))), (true, secs(7)));
        assert_eq!(renewal_failure(refused(500, None)), (true, None));
        let down = Err(TransportError::Timeout {
            url: "https://as.example/token".into(),
        });
        assert_eq!(renewal_failure(down), (false, None));
    }
}
