//! `devauth status`: what the store holds (paired, expiry, scopes), for people or `--json`.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::Error;
use crate::setup::emit;
use crate::store::{Protection, SealChoice, TimeNow, TokenStore};
use serde_json::json;

pub(crate) fn status(config: &Config, json: bool) -> Result<(), Error> {
    let store = config.storage.token_store();
    let path = store.path().display().to_string();
    let loaded = store.load();
    let stored = match loaded {
        Ok(s) => s,
        Err(e) => {
            if json {
                emit(&json!({"paired": false, "store": path, "store_error": e.to_string()}));
            } else {
                println!("Not paired: the token store is unusable: {e}");
                println!("`devauth pair` replaces it.");
            }
            return Err(Error::Reported(Box::new(Error::Store(e))));
        }
    };
    let Some(stored) = stored else {
        if let Some(j) = config.provider.grant.jwt_bearer() {
            // A service account is never "paired"; it just has no token cached yet.
            if json {
                emit(
                    &json!({"paired": false, "grant": "jwt-bearer", "account": j.issuer, "store": path}),
                );
            } else {
                println!(
                    "Service account {} (jwt-bearer): no access token cached yet; `devauth token` gets one.",
                    j.issuer
                );
            }
            return Ok(());
        }
        if json {
            emit(&json!({"paired": false, "store": path}));
        } else {
            println!("Not paired (no tokens in {path}). Run `devauth pair`.");
        }
        return Err(Error::Reported(Box::new(Error::NotPaired {
            store: store.path().to_path_buf(),
        })));
    };
    let owner_ok = stored.client_id == config.provider.client_id;
    let protection = protection(config, &store);
    let t = &stored.tokens;
    let now = TimeNow::read(&SystemClock);
    let remaining = t.expiry.as_ref().map(|e| e.remaining(&now));
    let expires_in: Option<u64> = remaining.flatten().map(|d| d.as_secs());
    let expiry_trusted = !matches!(remaining, Some(None));
    if json {
        emit(&json!({
            "paired": owner_ok,
            "account": t.account,
            "scopes": t.scopes,
            "access_token_expires_in": expires_in,
            "access_token_expires": t.expiry.is_some(),
            "expiry_trusted": expiry_trusted,
            "refresh_token": t.refresh_token.is_some(),
            "client_id": stored.client_id,
            "token_endpoint": stored.token_endpoint,
            "store": path,
            "protection": match &protection {
                Protection::Sealed(sealer) => sealer.name(),
                Protection::Unprotected { .. } => "none",
            },
        }));
        if let Protection::Unprotected { .. } = &protection {
            eprintln!("devauth: warning: {}", protection.describe());
        }
    } else {
        if owner_ok {
            println!(
                "Paired{}",
                t.account
                    .as_ref()
                    .map(|a| format!(" as {a}"))
                    .unwrap_or_default()
            );
        } else {
            println!(
                "Not paired with this client: the stored tokens belong to client `{}`",
                stored.client_id
            );
        }
        println!(
            "  scopes:        {}",
            if t.scopes.is_empty() {
                "(none reported)".to_string()
            } else {
                t.scopes.join(" ")
            }
        );
        let expiry = match (&t.expiry, expires_in) {
            (None, _) => "does not expire".to_string(),
            (Some(_), Some(0)) => "expired (refreshed on next use)".to_string(),
            (Some(_), Some(s)) => format!("in {}", human_duration(s)),
            (Some(_), None) => "unknown (clock not trusted; refreshed on next use)".to_string(),
        };
        println!("  access token:  expires {expiry}");
        println!(
            "  refresh token: {}",
            if t.refresh_token.is_some() {
                "held"
            } else {
                "none"
            }
        );
        println!("  protection:    {}", protection.describe());
        println!(
            "  provider:      {} ({})",
            stored.token_endpoint, stored.client_id
        );
        println!("  store:         {path}");
    }
    if owner_ok {
        Ok(())
    } else {
        Err(Error::Reported(Box::new(Error::OtherClient {
            store: store.path().to_path_buf(),
            detail: format!("were issued to client `{}`", stored.client_id),
        })))
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

pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}
