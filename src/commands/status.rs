//! `devauth status`: what the store holds (paired, expiry, scopes), for people or `--json`.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::Error;
use crate::setup::{self, emit};
use crate::store::{Protection, SealChoice, TimeNow, TokenStore};
use std::path::Path;

/// `status` without `--account` in a file with several accounts: every account, each as
/// `status --account NAME` says it; the exit code is the first account's that is not 0.
pub(crate) fn status_all(path: &Path, json: bool) -> Result<(), Error> {
    let configs = Config::load_accounts(path)?;
    if json {
        // The same object the agent's `GET /v1/status` answers.
        let refs: Vec<&Config> = configs.iter().collect();
        emit(&setup::status_all(&refs, &TimeNow::read(&SystemClock)));
    }
    let mut first_error = None;
    for config in &configs {
        if !json {
            let a = &config.account;
            crate::stdout::outln!(
                "Account {}{}:",
                a.name,
                a.label
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            );
        }
        if let Err(e) = status_of(config, !json) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

pub(crate) fn status(config: &Config, json: bool) -> Result<(), Error> {
    if json {
        // The same object the agent's `GET /v1/status` answers.
        emit(&setup::status_of(config, &TimeNow::read(&SystemClock)));
    }
    status_of(config, !json)
}

/// One account's status as text (when `text`), and its exit code.
fn status_of(config: &Config, text: bool) -> Result<(), Error> {
    let json = !text;
    let pair = pair_command(config);
    let store = config.storage.token_store();
    let path = store.path().display().to_string();
    let loaded = store.load();
    let stored = match loaded {
        Ok(s) => s,
        Err(e) => {
            if !json {
                crate::stdout::outln!("Not paired: the token store is unusable: {e}");
                crate::stdout::outln!("`{pair}` replaces it.");
            }
            return Err(Error::Reported(Box::new(Error::Store(e))));
        }
    };
    let Some(stored) = stored else {
        if let Some(j) = config.provider.grant.jwt_bearer() {
            // A service account is never "paired"; it just has no token cached yet.
            if !json {
                crate::stdout::outln!(
                    "Service account {} (jwt-bearer): no access token cached yet; `devauth token` gets one.",
                    j.issuer
                );
            }
            return Ok(());
        }
        if !json {
            crate::stdout::outln!("Not paired (no tokens in {path}). Run `{pair}`.");
        }
        return Err(Error::Reported(Box::new(Error::NotPaired {
            store: store.path().to_path_buf(),
        })));
    };
    let owner_ok = stored.client_id == config.provider.client_id;
    let refused = stored.grant_refused.as_ref().filter(|_| owner_ok);
    let protection = protection(config, &store);
    let t = &stored.tokens;
    let now = TimeNow::read(&SystemClock);
    let remaining = t.expiry.as_ref().map(|e| e.remaining(&now));
    let expires_in: Option<u64> = remaining.flatten().map(|d| d.as_secs());
    if !json {
        let as_account = t
            .account
            .as_ref()
            .map(|a| format!(" as {a}"))
            .unwrap_or_default();
        let mut text = match (owner_ok, refused) {
            (false, _) => format!(
                "Not paired with this client: the stored tokens belong to client `{}`\n",
                stored.client_id
            ),
            (true, Some(r)) => format!(
                "Pairing needed again: the provider refused the grant{}{} ({}). Run `{pair}`.\n",
                t.account
                    .as_ref()
                    .map(|a| format!(" of {a}"))
                    .unwrap_or_default(),
                ago(r.unix, &now),
                r.reason
            ),
            (true, None) => format!("Paired{as_account}\n"),
        };
        let scopes = if t.scopes.is_empty() {
            "(none reported)".to_string()
        } else {
            t.scopes.join(" ")
        };
        let renewed = if refused.is_some() {
            "cannot be renewed"
        } else if t.refresh_token.is_some() {
            "renewed on next use"
        } else {
            "no refresh token to renew it"
        };
        let access = match (&t.expiry, expires_in) {
            (None, _) => "does not expire".to_string(),
            (Some(_), Some(0)) => format!("expired ({renewed})"),
            (Some(_), Some(s)) => format!("expires in {}", human_duration(s)),
            (Some(_), None) => format!("expiry unknown: the clock is not trusted ({renewed})"),
        };
        let refresh = match (&t.refresh_token, refused) {
            (None, _) => "none",
            (Some(_), Some(_)) => "held, refused by the provider",
            (Some(_), None) => "held",
        };
        let token_type = if t.is_dpop() {
            let key = crate::store::keyfile::KeyFile::dpop_for(&store);
            let kept = match crate::keys::dpop_key_protection(&store) {
                Some(p) => p.describe(),
                None => "missing: the tokens cannot be renewed; pair again".to_string(),
            };
            format!(
                "  token type:    DPoP (bound to the key in {}; send a proof with each use)\n  \
                 DPoP key:      {kept}\n",
                key.path().display()
            )
        } else {
            String::new()
        };
        let protection = protection.describe();
        text.push_str(&format!(
            "  scopes:        {scopes}\n  access token:  {access}\n  refresh token: {refresh}\n{token_type}  protection:    {protection}\n  \
             provider:      {} ({})\n  store:         {path}",
            stored.token_endpoint, stored.client_id
        ));
        crate::stdout::outln!("{text}");
    }
    match (owner_ok, refused) {
        (true, None) => Ok(()),
        (true, Some(r)) => Err(Error::Reported(Box::new(Error::GrantGone {
            detail: crate::grant::refused_detail(r),
        }))),
        (false, _) => Err(Error::Reported(Box::new(Error::OtherClient {
            store: store.path().to_path_buf(),
            detail: format!("were issued to client `{}`", stored.client_id),
        }))),
    }
}

/// " 5 min ago", or nothing when the clock cannot say (not set, or set back since).
fn ago(unix: i64, now: &TimeNow) -> String {
    let now = crate::clock::unix_secs(now.wall);
    match u64::try_from(now.saturating_sub(unix)) {
        Ok(secs) if unix >= crate::clock::MIN_PLAUSIBLE_UNIX => {
            format!(" {} ago", human_duration(secs))
        }
        _ => String::new(),
    }
}

/// How the file just read is protected; for a plain one, why as far as the config tells.
fn protection(config: &Config, store: &TokenStore) -> Protection {
    match store.protection() {
        Ok(Some(p @ Protection::Sealed(_))) => p,
        _ => Protection::Unprotected {
            why: match config.storage.sealing.choice {
                SealChoice::None => "[storage] seal = \"none\"".to_string(),
                choice => format!(
                    "the file was written unsealed (by an earlier devauth, or where seal = \
                     \"{}\" found nothing usable); `devauth pair` and the agent say what each \
                     sealer answered",
                    choice.name()
                ),
            },
        },
    }
}

/// `devauth pair`, with `--account NAME` for an account other than the default one.
fn pair_command(config: &Config) -> String {
    match config.account.name.as_str() {
        crate::config::DEFAULT_ACCOUNT => "devauth pair".into(),
        name => format!("devauth pair --account {name}"),
    }
}

pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}
