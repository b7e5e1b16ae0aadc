//! The one loop that does I/O for the device flow: it runs the pure [`Flow`] machine, performs
//! the actions it asks for through an [`OAuthClient`], sleeps on a [`Clock`], keeps a
//! [`Screen`] up to date (the countdown ticks once a second) and reports [`Event`]s.
//!
//! It owns no policy: every decision (when to poll, when to renew, how long to back off) is
//! the flow's.

use crate::clock::{Clock, Instant};
use crate::net::transport::Transport;
use crate::oauth::OAuthClient;
use crate::oauth::flow::{Action, Event, Flow, Input, LiveCode, Outcome, Policy};
use crate::screen::{CodeScreen, Screen, View};
use std::time::Duration;

/// How the flow ended, with the server's clock reading at the moment tokens were issued.
#[derive(Debug)]
pub struct PairingResult {
    pub outcome: Outcome,
    pub server_date: Option<i64>,
}

/// Longest single sleep, so the countdown on screen stays current.
const TICK: Duration = Duration::from_secs(1);

/// What the screen shows between steps.
enum Shown {
    Nothing,
    Code,
    Retrying { reason: String, until: Instant },
}

pub fn run<T: Transport, C: Clock, S: Screen + ?Sized>(
    client: &OAuthClient<T>,
    clock: &C,
    screen: &mut S,
    on_event: &mut dyn FnMut(&Event),
    policy: Policy,
    seed: u64,
) -> PairingResult {
    run_until(client, clock, screen, on_event, policy, seed, &mut || false).unwrap_or_else(|| {
        PairingResult {
            outcome: Outcome::Failed("internal error: pairing stopped without a reason".into()),
            server_date: None,
        }
    })
}

/// [`run`], but `stop` is asked after every sleep and pairing ends with `None` as soon as it
/// says so (`devauth run`: a signal arrived while waiting for the person). A request in flight
/// is never cut short: stopping waits at most one network timeout.
pub fn run_until<T: Transport, C: Clock + ?Sized, S: Screen + ?Sized>(
    client: &OAuthClient<T>,
    clock: &C,
    screen: &mut S,
    on_event: &mut dyn FnMut(&Event),
    policy: Policy,
    seed: u64,
    stop: &mut dyn FnMut() -> bool,
) -> Option<PairingResult> {
    let mut flow = Flow::new(policy, clock.now(), seed);
    let mut input = Input::Tick;
    let mut shown = Shown::Nothing;
    let mut server_date = None;
    let mut screen_ok = true;
    let mut show = |screen: &mut S, view: &View| {
        // A broken display must not stop pairing (the --json consumer may be the real UI);
        // say so once and carry on.
        if let Err(e) = screen.show(view) {
            // A terminal screen on a stdout that failed: `crate::stdout` remembers it, the
            // caller's stop check ends pairing and `main` reports it once.
            if screen_ok && !crate::stdout::failed() {
                eprintln!("devauth: {e}; continuing without the screen");
            }
            screen_ok = false;
        }
    };
    loop {
        let now = clock.now();
        let (next, step) = flow.step(input, now);
        flow = next;
        for event in &step.events {
            on_event(event);
            match event {
                Event::Code { .. } | Event::Pending | Event::SlowDown { .. } => shown = Shown::Code,
                Event::Retrying { reason, in_secs } => {
                    shown = Shown::Retrying {
                        reason: reason.clone(),
                        until: now + Duration::from_secs(*in_secs),
                    }
                }
                Event::Expired => {}
            }
        }
        input = match step.action {
            Action::Finish => break,
            Action::RequestCode => match client.request_device_code() {
                Ok(auth) => Input::CodeIssued(auth),
                Err(f) => Input::CodeFailed(f),
            },
            Action::Poll => {
                let Some(code) = flow.live_code() else {
                    // Not reachable: the flow asks to poll only with a live code.
                    input = Input::Tick;
                    continue;
                };
                match client.poll(&code.authorization.device_code) {
                    Ok((answer, date)) => {
                        server_date = date;
                        Input::PollAnswered(answer)
                    }
                    Err(f) => Input::PollFailed(f),
                }
            }
            Action::WaitUntil(until) => {
                loop {
                    let now = clock.now();
                    let view = current_view(&shown, flow.live_code(), now);
                    if let Some(view) = view {
                        show(screen, &view);
                    }
                    if now >= until {
                        break;
                    }
                    // Before the sleep too: a screen or stdout that just failed ends it now.
                    if stop() {
                        return None;
                    }
                    clock.sleep((until - now).min(TICK));
                    if stop() {
                        return None;
                    }
                }
                Input::Tick
            }
        };
    }
    let outcome = flow.into_outcome().unwrap_or_else(|| {
        Outcome::Failed("internal error: the device flow stopped without an outcome".into())
    });
    Some(PairingResult {
        outcome,
        server_date,
    })
}

fn current_view(shown: &Shown, live: Option<&LiveCode>, now: Instant) -> Option<View> {
    let code = live.map(|c| code_screen(c, now));
    match shown {
        Shown::Nothing => None,
        Shown::Code => code.map(View::WaitingForUser),
        Shown::Retrying { reason, until } => Some(View::Retrying {
            reason: reason.clone(),
            in_secs: until.saturating_sub(now).as_secs(),
            code,
        }),
    }
}

pub fn code_screen(code: &LiveCode, now: Instant) -> CodeScreen {
    let a = &code.authorization;
    CodeScreen {
        verification_uri: a.verification_uri.clone(),
        qr_payload: a.qr_payload().to_string(),
        user_code: a.user_code.clone(),
        message: a.message.clone(),
        remaining: code.remaining(now),
        lifetime: code.lifetime(),
        renewed: code.renewed,
        profile: None,
    }
}

/// One `pair --json` line for a flow event. The `code` event also names the language of the
/// screen (`language`: `"en"`, `"pt-BR"`, …), for a device UI that localizes itself.
pub fn event_json(event: &Event, language: &str) -> serde_json::Value {
    use serde_json::json;
    match event {
        Event::Code {
            user_code,
            verification_uri,
            verification_uri_complete,
            message,
            expires_in,
            interval,
            renewed,
        } => json!({
            "event": "code",
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": verification_uri_complete,
            "expires_in": expires_in,
            "interval": interval,
            "message": message,
            "renewed": renewed,
            "language": language,
        }),
        Event::Pending => json!({"event": "pending"}),
        Event::SlowDown { interval } => json!({"event": "slow_down", "interval": interval}),
        Event::Expired => json!({"event": "expired"}),
        Event::Retrying { reason, in_secs } => {
            json!({"event": "retrying", "reason": reason, "in_secs": in_secs})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fake::FakeClock;
    use crate::net::transport::TransportError;
    use crate::oauth::tests::{Scripted, json};
    use crate::oauth::{ClientIdentity, Endpoints};

    #[derive(Default)]
    struct Recorder(Vec<View>);
    impl Screen for Recorder {
        fn show(&mut self, view: &View) -> Result<(), crate::error::DisplayError> {
            self.0.push(view.clone());
            Ok(())
        }
    }

    fn client(t: Scripted) -> OAuthClient<Scripted> {
        OAuthClient {
            transport: t,
            endpoints: Endpoints {
                device_authorization: "https://as/device".into(),
                token: "https://as/token".into(),
                revocation: None,
                userinfo: None,
                authorization: None,
                dpop_es256: false,
            },
            identity: ClientIdentity {
                client_id: "c".into(),
                client_secret: None,
                basic_auth: false,
                assertion: None,
            },
            scopes: vec![],
            extra_params: vec![],
            allow_http_loopback: false,
            dpop: None,
        }
    }

    const CODE: &str = r#"{"device_code":"dc","user_code":"AB-CD","verification_uri":"https://as/d","expires_in":30,"interval":5}"#;

    #[test]
    fn full_pairing_waits_polls_and_counts_down() {
        let t = Scripted::new(vec![
            json(200, CODE),
            json(400, r#"{"error":"authorization_pending"}"#),
            Err(TransportError::Timeout {
                url: "https://as/token".into(),
            }),
            json(400, r#"{"error":"slow_down"}"#),
            json(200, r#"{"access_token":"at","token_type":"Bearer"}"#),
        ]);
        let c = client(t);
        let clock = FakeClock::new();
        let start = clock.now();
        let mut screen = Recorder::default();
        let mut events = Vec::new();
        let r = run(
            &c,
            &clock,
            &mut screen,
            &mut |e| events.push(e.clone()),
            Policy::default(),
            3,
        );
        assert!(matches!(r.outcome, Outcome::Paired(_)));
        assert!(matches!(events[0], Event::Code { .. }));
        assert_eq!(events[1], Event::Pending);
        assert!(matches!(events[2], Event::Retrying { .. }));
        assert_eq!(events[3], Event::SlowDown { interval: 10 });
        assert_eq!(events.len(), 4);
        // Every request after the code was preceded by at least the interval.
        let sent = c.transport.sent.borrow();
        assert_eq!(sent.len(), 5);
        // First poll after 5 s, then 5 s, then backoff (>= interval 5 s), then 10 s.
        let elapsed = clock.now() - start;
        assert!(elapsed >= Duration::from_secs(25), "{elapsed:?}");
        // The countdown was shown once a second and never went up within one code.
        let remaining: Vec<_> = screen
            .0
            .iter()
            .filter_map(|v| match v {
                View::WaitingForUser(c) => Some(c.remaining),
                View::Retrying { code: Some(c), .. } => Some(c.remaining),
                _ => None,
            })
            .collect();
        assert!(remaining.len() >= 20, "{}", remaining.len());
        assert!(remaining.windows(2).all(|w| w[1] <= w[0]));
        assert!(screen.0.iter().any(|v| matches!(v, View::Retrying { .. })));
    }

    #[test]
    fn expired_code_is_replaced_and_shown_as_renewed() {
        let t = Scripted::new(vec![
            json(200, CODE),
            json(400, r#"{"error":"expired_token"}"#),
            json(200, CODE),
            json(400, r#"{"error":"access_denied"}"#),
        ]);
        let c = client(t);
        let clock = FakeClock::new();
        let mut screen = Recorder::default();
        let mut events = Vec::new();
        let r = run(
            &c,
            &clock,
            &mut screen,
            &mut |e| events.push(e.clone()),
            Policy::default(),
            3,
        );
        assert!(matches!(r.outcome, Outcome::Denied));
        assert!(events.contains(&Event::Expired));
        assert!(matches!(
            events.last(),
            Some(Event::Code { renewed: true, .. })
        ));
        assert!(
            screen
                .0
                .iter()
                .any(|v| matches!(v, View::WaitingForUser(c) if c.renewed))
        );
    }

    #[test]
    fn stop_ends_pairing_during_a_wait_without_another_request() {
        let t = Scripted::new(vec![
            json(200, CODE),
            json(400, r#"{"error":"authorization_pending"}"#),
        ]);
        let c = client(t);
        let clock = FakeClock::new();
        let start = clock.now();
        let mut screen = Recorder::default();
        // Stop 7 s in: after the first poll (at 5 s), before the second (at 10 s).
        let mut stop = || clock.now() - start >= Duration::from_secs(7);
        let r = run_until(
            &c,
            &clock,
            &mut screen,
            &mut |_| {},
            Policy::default(),
            3,
            &mut stop,
        );
        assert!(r.is_none());
        assert_eq!(c.transport.sent.borrow().len(), 2);
        assert!(clock.now() - start < Duration::from_secs(8));
        // Never asked to stop: the same as `run`.
        let t = Scripted::new(vec![
            json(200, CODE),
            json(200, r#"{"access_token":"at","token_type":"Bearer"}"#),
        ]);
        let c = client(t);
        let r = run_until(
            &c,
            &FakeClock::new(),
            &mut Recorder::default(),
            &mut |_| {},
            Policy::default(),
            3,
            &mut || false,
        );
        assert!(matches!(
            r,
            Some(PairingResult {
                outcome: Outcome::Paired(_),
                ..
            })
        ));
    }

    #[test]
    fn json_events_have_the_documented_shape_and_no_device_code() {
        let e = Event::Code {
            user_code: "AB-CD".into(),
            verification_uri: "https://as/d".into(),
            verification_uri_complete: None,
            message: None,
            expires_in: 600,
            interval: 5,
            renewed: false,
        };
        let v = event_json(&e, "pt-BR");
        assert_eq!(v["event"], "code");
        assert_eq!(v["language"], "pt-BR");
        assert_eq!(v["verification_uri_complete"], serde_json::Value::Null);
        assert_eq!(v["expires_in"], 600);
        assert!(v.get("device_code").is_none());
        assert_eq!(
            event_json(&Event::SlowDown { interval: 10 }, "ar").to_string(),
            r#"{"event":"slow_down","interval":10}"#
        );
    }
}
