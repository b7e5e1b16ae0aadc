//! Least privilege: tokens with fewer scopes than the account holds, fetched and kept fresh by
//! one worker thread so that neither the agent's loop nor the server's waits on the provider.
//!
//! How a narrower token is obtained (`[provider] narrowing`):
//! - `"refresh"` (default): a refresh request with the narrower `scope` (RFC 6749 §6). It runs
//!   under the store's lock like every refresh, and a rotated refresh token is stored durably
//!   before anything else (§6: its scope stays the grant's, so the agent's own renewals are
//!   unaffected). The narrowed access token itself lives in memory only.
//! - `"token_exchange"`: the agent's access token exchanged for one with the narrower `scope`
//!   (RFC 8693 §2.1); nothing stored changes.
//! - `"off"`: never asked; only the account's own token exists.
//!
//! A service account (`grant = "jwt-bearer"`) has no refresh token to narrow with: its entries
//! get its whole token or, without `allow_wider_token`, nothing.
//!
//! The answer's `scope` (RFC 6749 §5.1: present whenever it differs from the request) says
//! what was granted; more than asked for means the provider ignored the narrowing, and the
//! policy decides whether that wider token may be handed out. Each narrowed token is renewed
//! ahead of expiry, like the agent's, as long as someone asked for it since it was fetched;
//! one nobody asked for again is dropped when it expires.

use super::board::{Board, NarrowFailure, Narrowed, State, Token};
use super::policy::ScopeSet;
use crate::clock::{self, SystemClock};
use crate::config::{Config, Narrowing};
use crate::error::Error;
use crate::grant;
use crate::oauth::{CallError, Grant};
use crate::secret::Secret;
use crate::setup;
use crate::store::TimeNow;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a refusal is believed before the provider is asked again.
const REFUSED_FOR: Duration = Duration::from_secs(300);
/// How long an unreachable provider is left alone before the next request retries.
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Starts the worker; it waits on the board's condition variable for jobs
/// ([`Board::ask`]) and for the next narrowed token due, and ends at [`Board::stop`].
pub fn spawn(board: Arc<Board>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("devauth-narrow".into())
        .stack_size(512 * 1024)
        .spawn(move || work(&board))
}

fn work(board: &Board) {
    let mut s = board.lock();
    loop {
        if s.stopping {
            return;
        }
        if let Some(job) = s.jobs.pop_front() {
            drop(s);
            narrow(board, &job.account, &job.scopes);
            s = board.lock();
            continue;
        }
        let due = next_due(&s);
        let (guard, timed_out) = board.wait_for_work(s, due);
        s = guard;
        if timed_out {
            drop(s);
            renew_due(board);
            s = board.lock();
        }
    }
}

/// Fetches one narrowed token and puts the result on the board.
fn narrow(board: &Board, account: &str, scopes: &ScopeSet) {
    let (config, subject) = {
        let s = board.lock();
        let subject = s
            .account(account)
            .and_then(|a| a.token.as_ref())
            .map(|t| t.access_token.clone());
        (s.config_of(account), subject)
    };
    let result = fetch(&config, subject.as_ref(), scopes);
    let now = clock::boottime();
    board.update(|s| {
        let slot = s.account_entry(account).slot(scopes);
        slot.fetching = false;
        match result {
            Ok((token, wider)) => {
                slot.token = Some(token);
                slot.wider = wider;
                slot.failure = None;
                slot.used = false;
            }
            Err(failure) => {
                let believed = match failure {
                    NarrowFailure::Refused(_) => REFUSED_FOR,
                    NarrowFailure::Unreachable(_) => UNREACHABLE_FOR,
                };
                slot.failure = Some((failure, now + believed));
            }
        }
    });
}

/// The margin ahead of expiry at which a narrowed token is renewed (the agent's rule).
pub fn margin(config: &Config, token: &Token) -> Duration {
    token
        .expiry
        .as_ref()
        .map(|e| grant::refresh_margin(config.agent.refresh_margin, e))
        .unwrap_or_default()
}

/// When the next narrowed token is due (for renewal if it was handed out since it was fetched,
/// else to be dropped); `None`: no token is kept.
fn next_due(s: &State) -> Option<Duration> {
    let now = TimeNow::read(&SystemClock);
    s.accounts
        .iter()
        .flat_map(|(_, a)| a.narrowed.iter().map(|(_, n)| n))
        .filter(|n| !n.fetching)
        .filter_map(|n| n.token.as_ref())
        .filter_map(|t| Some(t.remaining(&now)?.saturating_sub(margin(&s.config, t))))
        .min()
}

/// Renews the narrowed tokens that are due and were handed out since they were fetched;
/// drops those that are due and were not (a request would fetch a fresh one anyway), and
/// failures nobody waits for.
fn renew_due(board: &Board) {
    let now = TimeNow::read(&SystemClock);
    let due: Vec<(String, ScopeSet)> = board.update(|s| {
        let config = s.config.clone();
        let is_due = |n: &Narrowed| {
            n.token.as_ref().is_some_and(|t| {
                t.remaining(&now)
                    .is_some_and(|left| left <= margin(&config, t))
            })
        };
        let mut due = Vec::new();
        for (name, a) in &mut s.accounts {
            a.narrowed
                .retain(|(_, n)| n.fetching || (n.token.is_some() && (n.used || !is_due(n))));
            for (scopes, n) in &mut a.narrowed {
                if !n.fetching && is_due(n) {
                    n.fetching = true;
                    due.push((name.clone(), scopes.clone()));
                }
            }
        }
        due
    });
    for (account, scopes) in due {
        narrow(board, &account, &scopes);
    }
}

/// Asks the provider for a token with `scopes`; the token and whether it came wider.
pub fn fetch(
    config: &Config,
    subject: Option<&Secret>,
    scopes: &ScopeSet,
) -> Result<(Token, bool), NarrowFailure> {
    let scope = scopes.to_string();
    let unreachable = |e: Error| NarrowFailure::Unreachable(e.to_string());
    let grant = match config.provider.narrowing {
        Narrowing::Off => {
            return Err(NarrowFailure::Refused(
                "narrowing is off ([provider] narrowing = \"off\")".into(),
            ));
        }
        Narrowing::TokenExchange => {
            let Some(subject) = subject else {
                return Err(NarrowFailure::Unreachable(
                    "the agent holds no token to exchange yet".into(),
                ));
            };
            let store = config.storage.token_store();
            let stored = store.load().ok().flatten();
            let transport = setup::transport(config).map_err(unreachable)?;
            let client =
                setup::token_client(config, transport, stored.as_ref()).map_err(unreachable)?;
            client.exchange_token(subject, &scope)
        }
        Narrowing::Refresh => refresh(config, &scope)?,
    };
    let grant = grant.map_err(|e| classify(&e))?;
    let now = TimeNow::read(&SystemClock);
    let granted = match grant.tokens.scopes() {
        // §5.1: left out when it is what was asked for.
        s if s.is_empty() => scopes.clone(),
        s => ScopeSet::new(s),
    };
    let wider = !granted.is_subset(scopes);
    let set = grant::token_set(grant.tokens, None, grant.server_date, &now, None);
    Ok((
        Token {
            access_token: set.access_token,
            token_type: set.token_type,
            scopes: granted,
            expiry: set.expiry,
        },
        wider,
    ))
}

/// RFC 6749 §6 with `scope`, under the store's lock; a rotated refresh token is stored before
/// anything else happens.
fn refresh(config: &Config, scope: &str) -> Result<Result<Grant, CallError>, NarrowFailure> {
    let unreachable = |e: Error| NarrowFailure::Unreachable(e.to_string());
    let store = config.storage.token_store();
    let not_paired = || NarrowFailure::Unreachable("not paired".into());
    let stored = store
        .load()
        .map_err(|e| unreachable(e.into()))?
        .ok_or_else(not_paired)?;
    let transport = setup::transport(config).map_err(unreachable)?;
    let client = setup::token_client(config, transport, Some(&stored)).map_err(unreachable)?;
    let _lock = store
        .lock(grant::LOCK_TIMEOUT)
        .map_err(|e| unreachable(e.into()))?;
    // Again under the lock: another refresh may have rotated the refresh token meanwhile.
    let stored = store
        .load()
        .map_err(|e| unreachable(e.into()))?
        .ok_or_else(not_paired)?;
    grant::check_owner(
        &stored,
        &client.identity.client_id,
        &client.endpoints.token,
        &store,
    )
    .map_err(unreachable)?;
    let Some(refresh_token) = stored.tokens.refresh_token.clone() else {
        return Err(NarrowFailure::Refused(
            "the provider issued no refresh token to narrow with".into(),
        ));
    };
    // Prepared before the request, as for every refresh: a store that cannot be written is
    // found while the old refresh token still works.
    let prepared = store.prepare_save().map_err(|e| unreachable(e.into()))?;
    let answer = client.refresh_narrowed(&refresh_token, scope);
    if let Ok(g) = &answer {
        if let Some(rotated) = &g.tokens.refresh_token {
            if *rotated != refresh_token {
                let mut updated = stored.clone();
                updated.tokens.refresh_token = Some(rotated.clone());
                prepared
                    .commit(&updated)
                    .map_err(|e| unreachable(e.into()))?;
            }
        }
    }
    Ok(answer)
}

/// A failed call as the service reports it.
fn classify(e: &CallError) -> NarrowFailure {
    if e.is_transient() {
        NarrowFailure::Unreachable(e.to_string())
    } else {
        NarrowFailure::Refused(e.to_string())
    }
}
