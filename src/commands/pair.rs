//! `devauth pair`: waits for a plausible clock, runs the device flow once with the configured
//! screen and saves the tokens.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::oauth::flow::{Event, Outcome, Policy};
use crate::pairing;
use crate::screen::{Screen, View};
use crate::setup::{self, emit};
use crate::store::{StoredTokens, TimeNow, TokenStore};
use serde_json::json;
use std::time::Duration;

/// Waits (showing "waiting for network time") while the wall clock is certainly wrong.
pub(crate) fn wait_for_clock(clock: &impl Clock, screen: &mut dyn Screen) {
    let mut shown = false;
    while crate::clock::unix_secs(clock.wall()) < crate::clock::MIN_PLAUSIBLE_UNIX {
        if !shown {
            let _ = screen.show(&View::WaitingForClock);
            eprintln!("devauth: the clock is not set yet; waiting for network time");
            shown = true;
        }
        clock.sleep(Duration::from_secs(2));
    }
}

pub(crate) fn pair(config: &Config, json: bool) -> Result<(), Error> {
    if config.provider.grant.jwt_bearer().is_some() {
        return Err(Error::Setup(
            "provider.grant = \"jwt-bearer\" is a service account: there is nothing to pair \
             (`devauth token` gets a token, `devauth run` keeps one fresh)"
                .into(),
        ));
    }
    let clock = SystemClock;
    let store = TokenStore::new(&config.storage.path);
    let mut screen = setup::open_screen(config, json)?;
    let fail = |screen: &mut Box<dyn Screen>, e: Error| -> Result<(), Error> {
        let _ = screen.show(&View::Error {
            message: e.to_string(),
        });
        if json {
            emit(&json!({"event": "error", "message": e.to_string()}));
        }
        Err(e)
    };
    wait_for_clock(&clock, screen.as_mut());
    // Make room for the tokens before asking for a code: a full or read-only store must stop
    // pairing here, not after the person approved and the code was redeemed.
    let prepared = match store.prepare_save() {
        Ok(p) => p,
        Err(e) => return fail(&mut screen, Error::Store(e)),
    };
    let transport = match setup::transport(config) {
        Ok(t) => t,
        Err(e) => return fail(&mut screen, e),
    };
    let endpoints = match setup::resolve_endpoints(config, &transport) {
        Ok(e) => e,
        Err(e) => return fail(&mut screen, e),
    };
    let client = setup::client_with(config, transport, endpoints);
    let mut on_event = |event: &Event| {
        if json {
            emit(&pairing::event_json(event));
        }
    };
    let result = pairing::run(
        &client,
        &clock,
        screen.as_mut(),
        &mut on_event,
        Policy::default(),
        setup::jitter_seed(),
    );
    match result.outcome {
        Outcome::Paired(resp) => {
            let account = grant::account_for(&client, &resp);
            let tokens = grant::token_set(
                resp,
                None,
                result.server_date,
                &TimeNow::read(&clock),
                account.clone(),
            );
            let scopes = tokens.scopes.clone();
            // The lifetime as kept (clamped), not as sent.
            let expires_in = tokens.expiry.as_ref().map(|e| e.lifetime_secs);
            let stored = StoredTokens {
                client_id: config.provider.client_id.clone(),
                token_endpoint: client.endpoints.token.clone(),
                tokens,
            };
            if let Err(e) = prepared.commit(&stored) {
                return fail(&mut screen, Error::Store(e));
            }
            let _ = screen.show(&View::Paired {
                account: account.clone(),
            });
            if json {
                emit(&json!({
                    "event": "paired",
                    "scopes": scopes,
                    "expires_in": expires_in,
                    "account": account,
                }));
            } else {
                eprintln!(
                    "devauth: paired{}; tokens stored in {}",
                    account.map(|a| format!(" as {a}")).unwrap_or_default(),
                    store.path().display()
                );
            }
            Ok(())
        }
        Outcome::Denied => {
            let _ = screen.show(&View::Denied);
            if json {
                emit(&json!({"event": "denied"}));
            }
            Err(Error::Denied)
        }
        Outcome::ServerError(err) => {
            let endpoint = crate::net::transport::redact_url(&client.endpoints.token);
            let status = err
                .status
                .map(|s| format!("HTTP {s}: "))
                .unwrap_or_default();
            fail(
                &mut screen,
                Error::Provider(format!("{endpoint}: {status}{err}")),
            )
        }
        Outcome::Failed(msg) => fail(&mut screen, Error::Provider(msg)),
    }
}
