//! `devauth pair`: waits for a plausible clock, runs the device flow once with the configured
//! screen and saves the tokens. Network trouble is retried for at most `--timeout` (default
//! `[network] pair_timeout_secs`), then it exits 7 with the last error: a person at a shell
//! needs an end, where the agent (`devauth run`) retries for ever.
//!
//! SIGTERM, SIGINT and SIGHUP stop it as they stop `devauth run`: they are blocked and taken
//! while pairing sleeps ([`SignalClock`]), the code leaves the screen for a "Pairing stopped"
//! screen, `--json` says `stopped`, and the exit code is 128 + the signal's number (143, 130,
//! 129). A killed `pair` would leave a live-looking code that a person could still approve with
//! nobody polling.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::grant;
use crate::oauth::flow::{Event, Outcome, Policy};
use crate::pairing;
use crate::screen::profiled::Profiled;
use crate::screen::{Screen, View};
use crate::setup::{self, emit};
use crate::signals::{Signal, SignalClock, Signals};
use crate::store::TimeNow;
use serde_json::json;

/// The end of a `pair` stopped by a signal: the code leaves the screen (the stop screen says it
/// no longer works, when one was shown); `stopped` on `--json`.
fn stopped(screen: &mut dyn Screen, sig: Signal, json: bool, code_shown: bool) -> Error {
    let _ = screen.show(&View::Stopped { code_shown });
    eprintln!("devauth: {} received; pairing stopped", sig.name());
    if json {
        emit(&json!({"event": "stopped", "signal": sig.name()}));
    }
    Error::Stopped(sig)
}

/// The end of a `pair` whose stdout failed (`main` reports it): no code stays on a display.
fn output_lost(screen: &mut dyn Screen, code_shown: bool) -> Error {
    let _ = screen.show(&View::Stopped { code_shown });
    Error::Io("standard output failed; pairing stopped".into())
}

/// `timeout`: `pair --timeout SECS` (`None`: `[network] pair_timeout_secs`).
pub(crate) fn pair(config: &Config, json: bool, timeout: Option<u64>) -> Result<(), Error> {
    if config.provider.grant.jwt_bearer().is_some() {
        return Err(Error::Setup(
            "provider.grant = \"jwt-bearer\" is a service account: there is nothing to pair \
             (`devauth token` gets a token, `devauth run` keeps one fresh)"
                .into(),
        ));
    }
    // Before anything else, while no other thread exists: from here on SIGTERM, SIGINT and
    // SIGHUP wait in the kernel until pairing sleeps, instead of killing the process with the
    // code on the screen.
    let mut signals =
        Signals::block().map_err(|e| Error::Io(format!("blocking signals for pairing: {e}")))?;
    let clock = SignalClock::new(&mut signals);
    // A stdout nobody can read any more (events, or the terminal screen) ends pairing too.
    let stop = || clock.got().is_some() || crate::stdout::failed();
    let store = config.storage.token_store();
    let (mut screen, language) = setup::open_screen(config, json)?;
    let fail = |screen: &mut Box<dyn Screen>, e: Error| -> Result<(), Error> {
        let _ = screen.show(&View::Error {
            problem: e.problem(),
        });
        if json {
            emit(&json!({"event": "error", "message": e.to_string()}));
        }
        Err(e)
    };
    let clock_ok = super::clock_wait::wait_for_clock(
        &clock,
        screen.as_mut(),
        &mut |event| {
            if json {
                emit(&event);
            }
        },
        &stop,
    );
    if !clock_ok {
        return Err(match clock.got() {
            Some(sig) => stopped(screen.as_mut(), sig, json, false),
            None => output_lost(screen.as_mut(), false),
        });
    }
    // Make room for the tokens before asking for a code: a full or read-only store must stop
    // pairing here, not after the person approved and the code was redeemed.
    let prepared = match store.prepare_pairing() {
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
    let client = match setup::pairing_client(config, &store, &transport, endpoints) {
        Ok(c) => c,
        Err(e) => return fail(&mut screen, e),
    };
    let code_shown = std::cell::Cell::new(false);
    let mut on_event = |event: &Event| {
        if matches!(event, Event::Code { .. }) {
            code_shown.set(true);
        }
        if json {
            emit(&pairing::event_json(event, &language));
        }
    };
    // The agent's pairing runs the same code (one copy of it in the binary).
    let result = pairing::run_until(
        &client,
        &clock as &dyn Clock,
        &mut Profiled {
            inner: screen.as_mut(),
            profile: config.account.profile(),
        },
        &mut on_event,
        Policy {
            give_up_after: config.network.pair_timeout_with(timeout),
            ..Policy::default()
        },
        setup::jitter_seed(),
        &mut || stop(),
    );
    let Some(result) = result else {
        return Err(match clock.got() {
            Some(sig) => stopped(screen.as_mut(), sig, json, code_shown.get()),
            None => output_lost(screen.as_mut(), code_shown.get()),
        });
    };
    match result.outcome {
        Outcome::Paired(resp) => {
            let stored = grant::paired(
                &client,
                &config.provider.client_id,
                resp,
                result.server_date,
                &TimeNow::read(&clock),
            );
            if let Err(e) = prepared.commit(&stored) {
                return fail(&mut screen, Error::Store(e));
            }
            let _ = screen.show(&View::Paired {
                account: stored.tokens.account.clone(),
                name: grant::person_name(&stored.tokens),
            });
            crate::commands::announce_paired(json, "paired", &stored, &store);
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
        Outcome::Unreachable(reason) => {
            let secs = config
                .network
                .pair_timeout_with(timeout)
                .map_or(0, |d| d.as_secs());
            fail(
                &mut screen,
                Error::Network(format!(
                    "{reason} (gave up after {secs} s without an answer; `pair --timeout SECS` \
                     or [network] pair_timeout_secs waits longer, 0 for ever)"
                )),
            )
        }
    }
}
