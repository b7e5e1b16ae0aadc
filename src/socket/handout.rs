//! What a token request gets, decided on one account's state (the board locked, no I/O): the
//! agent's own token when the caller's grant is the account's whole scope, else a narrowed
//! one — cached and fresh, or still good while its renewal failed, or the wider token where the
//! policy allows it — or the worker is asked and the request waits.

use super::board::{Account, NarrowFailure, Token};
use super::policy::Granted;
use crate::cli::ProofArgs;
use crate::error::Error;
use crate::secret::Secret;
use crate::store::{TimeNow, TokenStore};
use std::path::Path;
use std::time::Duration;

/// Narrowed tokens fetched for requests (renewals aside) per account within [`FETCH_WINDOW`].
pub const MAX_FETCHES: usize = 10;
pub const FETCH_WINDOW: Duration = Duration::from_secs(60);

/// What a token request gets now.
#[derive(Debug)]
pub enum Outcome {
    /// The worker is (or is now to be, `ask`) fetching a narrowed token.
    Wait {
        ask: bool,
    },
    Token {
        token: Token,
        note: &'static str,
    },
    Fail(u16, &'static str, String),
}

/// The token rules, on one account's state (board locked).
pub fn decide(
    a: &mut Account,
    granted: &Granted,
    now: &TimeNow,
    woken: bool,
    margin: impl Fn(&Token) -> Duration,
) -> Outcome {
    let Some(main) = a.token.clone() else {
        return Outcome::Fail(
            503,
            "not_paired",
            "the account is not paired (yet): no token to hand out".into(),
        );
    };
    if main.is_expired(now) {
        return Outcome::Fail(
            503,
            "token_expired",
            "the access token expired and the agent has not renewed it yet".into(),
        );
    }
    if granted.scopes == main.scopes {
        return Outcome::Token {
            token: main,
            note: "",
        };
    }
    let slot = a.slot(&granted.scopes);
    let usable = slot.token.clone().filter(|t| !t.is_expired(now));
    let fresh = usable
        .clone()
        .filter(|t| woken || t.remaining(now).is_none_or(|left| left > margin(t)));
    let wider_refused = || {
        Outcome::Fail(
            502,
            "narrowing_ignored",
            format!(
                "the provider ignored the narrower scope and granted `{}`; {} does not allow a \
                 wider token (allow_wider_token)",
                slot_scopes(&usable),
                granted.by
            ),
        )
    };
    if let Some(t) = fresh {
        if slot.wider && !granted.allow_wider {
            return wider_refused();
        }
        slot.used = true;
        let note = if slot.wider {
            " (wider: the provider ignored the narrower scope)"
        } else {
            " (narrowed)"
        };
        return Outcome::Token { token: t, note };
    }
    let failure = slot
        .failure
        .clone()
        .filter(|(_, until)| woken || *until > now.boottime);
    if let Some((failure, _)) = failure {
        if let (Some(t), false) = (usable.clone(), slot.wider && !granted.allow_wider) {
            // Renewing failed; the narrowed token in hand still works.
            slot.used = true;
            return Outcome::Token {
                token: t,
                note: " (narrowed; renewing it failed)",
            };
        }
        return match failure {
            NarrowFailure::Refused(why) if granted.allow_wider => {
                let _ = why;
                Outcome::Token {
                    token: main,
                    note: " (wider: the provider would not narrow)",
                }
            }
            NarrowFailure::Refused(why) => Outcome::Fail(
                502,
                "narrowing_refused",
                format!(
                    "no token with only `{}` could be had: {why}; {} does not allow a wider token \
                     (allow_wider_token)",
                    granted.scopes, granted.by
                ),
            ),
            NarrowFailure::Unreachable(why) => Outcome::Fail(
                503,
                "provider_unreachable",
                format!(
                    "a token with only `{}` could not be fetched: {why}",
                    granted.scopes
                ),
            ),
        };
    }
    if woken && !slot.fetching && slot.failure.is_none() {
        return Outcome::Fail(
            502,
            "provider_error",
            "the provider's narrowed token was unusable (already expired)".into(),
        );
    }
    if slot.fetching {
        return Outcome::Wait { ask: false };
    }
    // A caller cycling through scope sets would make the provider (and, with rotation, the
    // store's flash) work for each one: a bound per account.
    a.fetches
        .retain(|t| now.boottime.saturating_sub(*t) < FETCH_WINDOW);
    if a.fetches.len() >= MAX_FETCHES {
        return Outcome::Fail(
            503,
            "busy",
            format!(
                "more than {MAX_FETCHES} narrowed tokens asked of the provider in {} s; ask again \
                 later",
                FETCH_WINDOW.as_secs()
            ),
        );
    }
    a.fetches.push_back(now.boottime);
    let slot = a.slot(&granted.scopes);
    slot.fetching = true;
    slot.failure = None;
    Outcome::Wait { ask: true }
}

fn slot_scopes(t: &Option<Token>) -> String {
    t.as_ref().map(|t| t.scopes.to_string()).unwrap_or_default()
}

/// The DPoP proof `POST /v1/dpop-proof` asks for, for the caller's request `asked` with
/// `token` (its `ath`, RFC 9449 §4.2), made with the DPoP key beside the account's `store`.
/// Refusals are (status, stable code, message).
pub fn proof(
    store: &Path,
    token: &Token,
    asked: &ProofArgs,
) -> Result<Secret, (u16, &'static str, String)> {
    if token.token_type != "DPoP" {
        return Err((
            409,
            "not_dpop_bound",
            format!(
                "the token is a {} token, not DPoP-bound: it needs no proof",
                token.token_type
            ),
        ));
    }
    let key = match crate::keys::dpop_key(&TokenStore::new(store)) {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Err((
                500,
                "dpop_key",
                "the DPoP key beside the store is gone".into(),
            ));
        }
        Err(e) => return Err((500, "dpop_key", e.to_string())),
    };
    crate::keys::dpop_proof(
        &key,
        &token.access_token,
        &token.token_type,
        &asked.method,
        &asked.url,
        asked.nonce.as_deref(),
    )
    .map_err(|e| match e {
        Error::Usage(u) => (400, "invalid_request", u.0),
        e => (500, "dpop_proof", e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::socket::policy::ScopeSet;
    use crate::store::Expiry;
    use std::time::SystemTime;

    fn now(boottime: u64) -> TimeNow {
        TimeNow {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            boot_id: Some("b".into()),
            boottime: Duration::from_secs(boottime),
        }
    }

    fn token(name: &str, scopes: &str, lifetime: u64) -> Token {
        Token {
            access_token: Secret::new(name),
            token_type: "Bearer".into(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            expiry: Some(Expiry::new(
                Duration::from_secs(lifetime),
                now(0).wall,
                &now(100),
            )),
        }
    }

    fn account() -> Account {
        Account {
            token: Some(token("main", "a b c", 3600)),
            held: ScopeSet::parse("a b c").unwrap(),
            ..Account::default()
        }
    }

    fn granted(scopes: &str, allow_wider: bool) -> Granted {
        Granted {
            scopes: ScopeSet::parse(scopes).unwrap(),
            allow_wider,
            by: "agent.client[0]".into(),
        }
    }

    const MARGIN: fn(&Token) -> Duration = |_| Duration::from_secs(300);

    fn name(o: &Outcome) -> String {
        match o {
            Outcome::Wait { ask } => format!("wait ask={ask}"),
            Outcome::Token { token, .. } => token.access_token.expose().to_string(),
            Outcome::Fail(status, code, _) => format!("{status} {code}"),
        }
    }

    #[test]
    fn the_whole_scope_is_the_agents_token_and_none_is_503() {
        let mut a = account();
        assert_eq!(
            name(&decide(
                &mut a,
                &granted("a b c", false),
                &now(200),
                false,
                MARGIN
            )),
            "main"
        );
        a.token = None;
        assert_eq!(
            name(&decide(
                &mut a,
                &granted("a b c", false),
                &now(200),
                false,
                MARGIN
            )),
            "503 not_paired"
        );
        let mut a = account();
        assert_eq!(
            name(&decide(
                &mut a,
                &granted("a", false),
                &now(100 + 3600),
                false,
                MARGIN
            )),
            "503 token_expired"
        );
    }

    #[test]
    fn a_narrowed_token_is_asked_once_then_served_from_the_cache() {
        let mut a = account();
        let g = granted("a", false);
        assert_eq!(
            name(&decide(&mut a, &g, &now(200), false, MARGIN)),
            "wait ask=true"
        );
        // A second request while the worker fetches: it waits too, without asking again.
        assert_eq!(
            name(&decide(&mut a, &g, &now(200), false, MARGIN)),
            "wait ask=false"
        );
        let slot = a.slot(&g.scopes);
        slot.fetching = false;
        slot.token = Some(token("narrow", "a", 3600));
        assert_eq!(name(&decide(&mut a, &g, &now(200), true, MARGIN)), "narrow");
        assert!(a.narrowed(&g.scopes).unwrap().used);
        // Within the margin: renewed before it is handed out again (the worker does it).
        assert_eq!(
            name(&decide(&mut a, &g, &now(100 + 3400), false, MARGIN)),
            "wait ask=true"
        );
    }

    #[test]
    fn fetches_for_requests_are_bounded_per_account() {
        let mut a = account();
        for i in 0..MAX_FETCHES {
            let g = granted(&format!("s{i}"), false);
            a.held = ScopeSet::parse(&format!("a b c s{i}")).unwrap();
            assert_eq!(
                name(&decide(&mut a, &g, &now(200), false, MARGIN)),
                "wait ask=true"
            );
        }
        let g = granted("a", false);
        assert_eq!(
            name(&decide(&mut a, &g, &now(200), false, MARGIN)),
            "503 busy"
        );
        assert_eq!(
            name(&decide(&mut a, &g, &now(261), false, MARGIN)),
            "wait ask=true"
        );
    }

    #[test]
    fn a_wider_token_only_where_the_entry_allows_it() {
        let mut a = account();
        let strict = granted("a", false);
        let slot = a.slot(&strict.scopes);
        slot.token = Some(token("wide", "a b c", 3600));
        slot.wider = true;
        assert_eq!(
            name(&decide(&mut a, &strict, &now(200), false, MARGIN)),
            "502 narrowing_ignored"
        );
        assert_eq!(
            name(&decide(
                &mut a,
                &granted("a", true),
                &now(200),
                false,
                MARGIN
            )),
            "wide"
        );
    }

    #[test]
    fn failures_are_believed_for_a_while_and_a_valid_token_outlives_them() {
        let mut a = account();
        let g = granted("a", false);
        a.slot(&g.scopes).failure = Some((
            NarrowFailure::Refused("invalid_scope".into()),
            Duration::from_secs(500),
        ));
        assert_eq!(
            name(&decide(&mut a, &g, &now(200), false, MARGIN)),
            "502 narrowing_refused"
        );
        assert_eq!(
            name(&decide(
                &mut a,
                &granted("a", true),
                &now(200),
                false,
                MARGIN
            )),
            "main"
        );
        // Past its time the provider is asked again.
        assert_eq!(
            name(&decide(&mut a, &g, &now(600), false, MARGIN)),
            "wait ask=true"
        );
        let slot = a.slot(&g.scopes);
        slot.fetching = false;
        slot.failure = Some((
            NarrowFailure::Unreachable("timed out".into()),
            Duration::from_secs(700),
        ));
        assert_eq!(
            name(&decide(&mut a, &g, &now(650), true, MARGIN)),
            "503 provider_unreachable"
        );
        // A narrowed token that still works is handed out while its renewal fails.
        a.slot(&g.scopes).token = Some(token("old", "a", 700));
        assert_eq!(name(&decide(&mut a, &g, &now(650), true, MARGIN)), "old");
    }
}
