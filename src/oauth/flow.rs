//! The RFC 8628 device flow as a pure state machine: no I/O, no clock reads, no sleeping.
//!
//! The driver (`pairing`) feeds it what happened — a code was issued, a poll was answered, a
//! request failed, time passed — together with the current monotonic time, and gets back the
//! one thing to do next plus events to show. Every branch is therefore testable without a
//! network or a real clock.
//!
//! ```text
//!                 RequestCode                          code issued
//!   ┌──────────────┐ ───────────▶ (transport) ───────────────────────┐
//!   │  ExpectCode  │ ◀─── transient failure: back off, ask again     │
//!   └──────────────┘ ◀──────────────┐                                ▼
//!        │ fatal                    │ expired_token /     ┌──────────────────┐
//!        ▼                          │ local deadline      │  ExpectApproval  │──┐ pending /
//!   ┌────────┐   denied / fatal     └─────────────────────│  (wait → Poll)   │◀─┘ slow_down /
//!   │  Done  │ ◀─────────────────────────────────────────── └──────────────────┘   backoff
//!   └────────┘ ◀── tokens (stop polling at once: RFC 8628 §3.5, replay protection)
//! ```
//!
//! Polling rules (RFC 8628 §3.4, §3.5 and what servers really do):
//! - wait `interval` (default 5 s) before the first poll and between polls;
//! - `slow_down`: +5 s for this and every later poll, or the server's new interval if larger;
//! - `authorization_pending`: same interval; `access_denied`/`authorization_declined`: stop;
//! - `expired_token` or our own deadline: get a new code and show it;
//! - network errors, 5xx, 429: capped exponential backoff with jitter, never past the code's
//!   deadline, reset after the next good answer;
//! - decisions use the `error` field, never the HTTP status (that is `oauth`'s job upstream).

use crate::clock::Instant;
use crate::net::wire::{DeviceAuthorization, OAuthError, TokenResponse};
use std::time::Duration;

/// Tunables. Defaults follow RFC 8628 and the clamps in the shared notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Interval when the server sends none (RFC 8628 §3.2: 5 s).
    pub default_interval: Duration,
    /// Clamp for a server-sent interval: a server asking for 0 s would make us hammer it.
    pub min_interval: Duration,
    /// Clamp for the interval the server sends with the code.
    pub max_initial_interval: Duration,
    /// Ceiling after repeated `slow_down`s.
    pub max_interval: Duration,
    /// RFC 8628 §3.5: "the interval MUST be increased by 5 seconds".
    pub slow_down_step: Duration,
    /// A code's lifetime is clamped to this; a server claiming a year is not believed.
    pub max_code_lifetime: Duration,
    /// First retry delay after a transient failure, doubled each time up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_interval: Duration::from_secs(5),
            min_interval: Duration::from_secs(1),
            max_initial_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(300),
            slow_down_step: Duration::from_secs(5),
            max_code_lifetime: Duration::from_secs(2 * 3600),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

/// What the driver learned since the last step.
#[derive(Debug)]
pub enum Input {
    /// Begin (or the wait requested by `Action::WaitUntil` is over).
    Tick,
    /// The device authorization endpoint answered with a code.
    CodeIssued(DeviceAuthorization),
    /// Asking for a code failed.
    CodeFailed(Failure),
    /// The token endpoint answered a poll (an error code or tokens).
    PollAnswered(PollAnswer),
    /// A poll did not get a usable answer.
    PollFailed(Failure),
}

#[derive(Debug)]
pub enum PollAnswer {
    Tokens(TokenResponse),
    Error(OAuthError),
}

/// Why a request produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: network, timeout, 5xx, 429, a captive portal's HTML.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (bad client id, invalid scope, refused URL...).
    Fatal(String),
}

/// The one thing the driver must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// POST to the device authorization endpoint now.
    RequestCode,
    /// POST the device_code to the token endpoint now.
    Poll,
    /// Sleep until this instant (or less, to redraw a countdown), then feed `Input::Tick`.
    WaitUntil(Instant),
    /// Stop: the flow is over.
    Finish,
}

/// Something to show or report; `pair --json` prints one line per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new code is live (`renewed`: it replaces an expired one).
    Code {
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        message: Option<String>,
        expires_in: u64,
        interval: u64,
        renewed: bool,
    },
    Pending,
    SlowDown {
        interval: u64,
    },
    /// The code died (server said `expired_token` or our deadline passed); a new one follows.
    Expired,
    Retrying {
        reason: String,
        in_secs: u64,
    },
}

/// How the flow ended.
#[derive(Debug)]
pub enum Outcome {
    Paired(TokenResponse),
    /// The person said no (`access_denied`, Microsoft's `authorization_declined`).
    Denied,
    /// The server answered with an error we cannot recover from.
    ServerError(OAuthError),
    /// A request failed in a way retrying cannot fix.
    Failed(String),
}

/// The live code and the timing around it.
#[derive(Debug)]
pub struct LiveCode {
    pub authorization: DeviceAuthorization,
    pub issued_at: Instant,
    pub deadline: Instant,
    pub interval: Duration,
    pub next_poll_at: Instant,
    pub renewed: bool,
    /// The last poll got no answer: the server may have issued tokens we never saw.
    pub last_poll_lost: bool,
}

impl LiveCode {
    pub fn lifetime(&self) -> Duration {
        self.deadline.saturating_sub(self.issued_at)
    }
    pub fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_sub(now)
    }
}

/// The states, named for what each awaits.
#[derive(Debug)]
pub enum State {
    /// No live code: one must be requested (at `at`, after a backoff).
    ExpectCode {
        at: Instant,
        renewal: bool,
    },
    /// A code request is in flight.
    AwaitingCode {
        renewal: bool,
    },
    /// A code is live; we wait for the person, polling at the server's pace.
    ExpectApproval(LiveCode),
    /// A poll is in flight.
    AwaitingPoll(LiveCode),
    Done(Outcome),
}

/// Result of one step.
#[derive(Debug)]
pub struct Step {
    pub action: Action,
    pub events: Vec<Event>,
}

/// Exponential backoff with jitter, capped; reset after a good answer.
#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    rng: u64,
}

impl Backoff {
    fn next_delay(&mut self, policy: &Policy) -> Duration {
        let exp = policy
            .backoff_base
            .saturating_mul(1u32 << self.failures.min(16))
            .min(policy.backoff_cap);
        self.failures = self.failures.saturating_add(1);
        // "Equal jitter": half fixed, half random, so many devices that lost the network at the
        // same moment do not come back in lockstep, yet each still waits a sensible minimum.
        let half = exp / 2;
        let frac = self.next_random() % 1000;
        half + half.mul_f64(frac as f64 / 1000.0)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }

    /// xorshift64*: jitter needs spread, not secrecy.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The device flow. Build with [`Flow::new`], feed `Input::Tick` first.
#[derive(Debug)]
pub struct Flow {
    state: State,
    policy: Policy,
    backoff: Backoff,
}

impl Flow {
    /// `seed` feeds the jitter (any value; tests pass a constant).
    pub fn new(policy: Policy, now: Instant, seed: u64) -> Flow {
        Flow {
            state: State::ExpectCode {
                at: now,
                renewal: false,
            },
            policy,
            backoff: Backoff {
                failures: 0,
                rng: seed | 1,
            },
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The live code, if one is being shown.
    pub fn live_code(&self) -> Option<&LiveCode> {
        match &self.state {
            State::ExpectApproval(c) | State::AwaitingPoll(c) => Some(c),
            _ => None,
        }
    }

    /// Take the outcome once the flow has finished.
    pub fn into_outcome(self) -> Option<Outcome> {
        match self.state {
            State::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Advance the machine by one input at time `now`.
    pub fn step(self, input: Input, now: Instant) -> (Flow, Step) {
        let Flow {
            state,
            policy,
            mut backoff,
        } = self;
        let mut events = Vec::new();
        let (state, action) = match (state, input) {
            (State::Done(o), _) => (State::Done(o), Action::Finish),

            (State::ExpectCode { at, renewal }, Input::Tick) => {
                if now >= at {
                    (State::AwaitingCode { renewal }, Action::RequestCode)
                } else {
                    (State::ExpectCode { at, renewal }, Action::WaitUntil(at))
                }
            }

            (State::AwaitingCode { renewal }, Input::CodeIssued(auth)) => {
                backoff.reset();
                let code = live_code(&policy, auth, now, renewal);
                events.push(code_event(&code));
                let wake = code.next_poll_at.min(code.deadline);
                (State::ExpectApproval(code), Action::WaitUntil(wake))
            }

            (State::AwaitingCode { renewal }, Input::CodeFailed(failure)) => match failure {
                Failure::Fatal(msg) => (State::Done(Outcome::Failed(msg)), Action::Finish),
                Failure::Transient {
                    reason,
                    retry_after,
                } => {
                    let delay = retry_delay(&mut backoff, &policy, retry_after);
                    events.push(Event::Retrying {
                        reason,
                        in_secs: delay.as_secs().max(1),
                    });
                    let at = now + delay;
                    (State::ExpectCode { at, renewal }, Action::WaitUntil(at))
                }
            },

            (State::ExpectApproval(code), Input::Tick) => {
                if now >= code.deadline {
                    events.push(Event::Expired);
                    renew()
                } else if now >= code.next_poll_at {
                    (State::AwaitingPoll(code), Action::Poll)
                } else {
                    let wake = code.next_poll_at.min(code.deadline);
                    (State::ExpectApproval(code), Action::WaitUntil(wake))
                }
            }

            (State::AwaitingPoll(code), Input::PollAnswered(PollAnswer::Tokens(tokens))) => {
                let _ = code;
                (State::Done(Outcome::Paired(tokens)), Action::Finish)
            }

            (State::AwaitingPoll(code), Input::PollAnswered(PollAnswer::Error(err))) => {
                on_poll_error(&policy, &mut backoff, code, err, now, &mut events)
            }

            (State::AwaitingPoll(mut code), Input::PollFailed(failure)) => match failure {
                Failure::Fatal(msg) => (State::Done(Outcome::Failed(msg)), Action::Finish),
                Failure::Transient {
                    reason,
                    retry_after,
                } => {
                    code.last_poll_lost = true;
                    let delay = retry_delay(&mut backoff, &policy, retry_after).max(code.interval);
                    let at = now + delay;
                    if at >= code.deadline {
                        // Retrying after the code is dead is pointless: wait out the code and
                        // start over with a fresh one (the wait never outlives the code).
                        code.next_poll_at = code.deadline;
                        events.push(Event::Retrying {
                            reason,
                            in_secs: code.remaining(now).as_secs().max(1),
                        });
                        let wake = code.deadline;
                        (State::ExpectApproval(code), Action::WaitUntil(wake))
                    } else {
                        code.next_poll_at = at;
                        events.push(Event::Retrying {
                            reason,
                            in_secs: delay.as_secs().max(1),
                        });
                        (State::ExpectApproval(code), Action::WaitUntil(at))
                    }
                }
            },

            // An input that does not fit the state is a driver bug; re-issue what the state
            // expects rather than panic (no input is ever lost: the state is unchanged).
            (state, _) => {
                let action = expected_action(&state, now);
                (state, action)
            }
        };
        (
            Flow {
                state,
                policy,
                backoff,
            },
            Step { action, events },
        )
    }
}

/// The code is dead: ask for a new one right away (RFC 8628 §3.5 `expired_token`).
fn renew() -> (State, Action) {
    (State::AwaitingCode { renewal: true }, Action::RequestCode)
}

fn expected_action(state: &State, now: Instant) -> Action {
    match state {
        State::ExpectCode { at, .. } if now < *at => Action::WaitUntil(*at),
        State::ExpectCode { .. } | State::AwaitingCode { .. } => Action::RequestCode,
        State::ExpectApproval(c) => Action::WaitUntil(c.next_poll_at.min(c.deadline)),
        State::AwaitingPoll(_) => Action::Poll,
        State::Done(_) => Action::Finish,
    }
}

fn clamp(d: Duration, lo: Duration, hi: Duration) -> Duration {
    d.max(lo).min(hi)
}

fn live_code(policy: &Policy, auth: DeviceAuthorization, now: Instant, renewed: bool) -> LiveCode {
    let interval = clamp(
        auth.interval
            .map(Duration::from_secs)
            .unwrap_or(policy.default_interval),
        policy.min_interval,
        policy.max_initial_interval,
    );
    let lifetime = clamp(
        Duration::from_secs(auth.expires_in),
        Duration::from_secs(1),
        policy.max_code_lifetime,
    );
    LiveCode {
        authorization: auth,
        issued_at: now,
        deadline: now + lifetime,
        interval,
        // RFC 8628 §3.5: wait the interval before the FIRST poll too.
        next_poll_at: now + interval,
        renewed,
        last_poll_lost: false,
    }
}

fn code_event(code: &LiveCode) -> Event {
    let a = &code.authorization;
    Event::Code {
        user_code: a.user_code.clone(),
        verification_uri: a.verification_uri.clone(),
        verification_uri_complete: a.verification_uri_complete.clone(),
        message: a.message.clone(),
        expires_in: code.lifetime().as_secs(),
        interval: code.interval.as_secs(),
        renewed: code.renewed,
    }
}

fn retry_delay(backoff: &mut Backoff, policy: &Policy, retry_after: Option<Duration>) -> Duration {
    let delay = backoff.next_delay(policy);
    match retry_after {
        // Honour Retry-After (429/503), but never let a server park us for more than the cap.
        Some(ra) => delay.max(ra.min(policy.backoff_cap)),
        None => delay,
    }
}

/// RFC 8628 §3.5 error handling for a poll answer.
fn on_poll_error(
    policy: &Policy,
    backoff: &mut Backoff,
    mut code: LiveCode,
    err: OAuthError,
    now: Instant,
    events: &mut Vec<Event>,
) -> (State, Action) {
    backoff.reset();
    match err.error.as_str() {
        "authorization_pending" => {
            events.push(Event::Pending);
            code.next_poll_at = now + code.interval;
        }
        "slow_down" => {
            let stepped = code.interval + policy.slow_down_step;
            let asked = err.interval.map(Duration::from_secs).unwrap_or_default();
            code.interval = stepped.max(asked).min(policy.max_interval);
            code.next_poll_at = now + code.interval;
            events.push(Event::SlowDown {
                interval: code.interval.as_secs(),
            });
        }
        "access_denied" | "authorization_declined" => {
            return (State::Done(Outcome::Denied), Action::Finish);
        }
        "expired_token" => {
            events.push(Event::Expired);
            return renew();
        }
        // Auth0 answers `invalid_grant` for a code that already expired: an expiry. So is it
        // after a poll whose answer was lost: the server may have issued tokens then and now
        // refuses the code as a replay — a fresh code is the only way forward. Otherwise
        // invalid_grant means this code is unusable: stop and report.
        "invalid_grant" if now >= code.deadline || code.last_poll_lost => {
            events.push(Event::Expired);
            return renew();
        }
        _ => return (State::Done(Outcome::ServerError(err)), Action::Finish),
    }
    code.last_poll_lost = false;
    if now >= code.deadline {
        events.push(Event::Expired);
        return renew();
    }
    let wake = code.next_poll_at.min(code.deadline);
    (State::ExpectApproval(code), Action::WaitUntil(wake))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn auth(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: Secret::new("dc"),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://example.com/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
            message: None,
        }
    }

    fn err(code: &str) -> Input {
        Input::PollAnswered(PollAnswer::Error(OAuthError {
            error: code.into(),
            description: None,
            interval: None,
            status: None,
        }))
    }

    fn tokens() -> Input {
        Input::PollAnswered(PollAnswer::Tokens(TokenResponse {
            access_token: Secret::new("at"),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: None,
            scope: None,
            id_token: None,
        }))
    }

    fn transient() -> Input {
        Input::PollFailed(Failure::Transient {
            reason: "connection refused".into(),
            retry_after: None,
        })
    }

    /// A flow with a live code issued at t=100 s.
    fn issued(interval: Option<u64>, expires_in: u64) -> (Flow, Step) {
        let f = Flow::new(Policy::default(), S(100), 42);
        let (f, s) = f.step(Input::Tick, S(100));
        assert_eq!(s.action, Action::RequestCode);
        f.step(Input::CodeIssued(auth(interval, expires_in)), S(100))
    }

    #[test]
    fn first_poll_waits_the_interval() {
        let (_, s) = issued(Some(7), 600);
        assert_eq!(s.action, Action::WaitUntil(S(107)));
        assert!(matches!(
            s.events[0],
            Event::Code {
                interval: 7,
                expires_in: 600,
                renewed: false,
                ..
            }
        ));
    }

    #[test]
    fn missing_interval_defaults_to_five_seconds() {
        let (_, s) = issued(None, 600);
        assert_eq!(s.action, Action::WaitUntil(S(105)));
    }

    #[test]
    fn interval_and_lifetime_are_clamped() {
        let (_, s) = issued(Some(0), 600);
        assert_eq!(
            s.action,
            Action::WaitUntil(S(101)),
            "0 s interval clamped to 1 s"
        );
        let (_, s) = issued(Some(100_000), 600);
        assert_eq!(
            s.action,
            Action::WaitUntil(S(160)),
            "huge interval clamped to 60 s"
        );
        let (f, _) = issued(Some(5), u64::MAX);
        assert_eq!(f.live_code().unwrap().deadline, S(100 + 7200));
    }

    #[test]
    fn tick_before_poll_time_keeps_waiting() {
        let (f, _) = issued(Some(5), 600);
        let (_, s) = f.step(Input::Tick, S(103));
        assert_eq!(s.action, Action::WaitUntil(S(105)));
    }

    #[test]
    fn pending_keeps_the_same_interval() {
        let (f, _) = issued(Some(5), 600);
        let (f, s) = f.step(Input::Tick, S(105));
        assert_eq!(s.action, Action::Poll);
        let (f, s) = f.step(err("authorization_pending"), S(105));
        assert_eq!(s.events, vec![Event::Pending]);
        assert_eq!(s.action, Action::WaitUntil(S(110)));
        assert_eq!(f.live_code().unwrap().interval, S(5));
    }

    #[test]
    fn slow_down_adds_five_seconds_for_all_later_polls() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(err("slow_down"), S(105));
        assert_eq!(s.events, vec![Event::SlowDown { interval: 10 }]);
        assert_eq!(s.action, Action::WaitUntil(S(115)));
        let (f, _) = f.step(Input::Tick, S(115));
        let (f, s) = f.step(err("authorization_pending"), S(115));
        assert_eq!(
            s.action,
            Action::WaitUntil(S(125)),
            "the slower pace sticks"
        );
        let (f, _) = f.step(Input::Tick, S(125));
        let (_, s) = f.step(err("slow_down"), S(125));
        assert_eq!(
            s.events,
            vec![Event::SlowDown { interval: 15 }],
            "cumulative"
        );
    }

    #[test]
    fn slow_down_takes_the_servers_interval_when_larger() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let answer = Input::PollAnswered(PollAnswer::Error(OAuthError {
            error: "slow_down".into(),
            description: None,
            interval: Some(30),
            status: None,
        }));
        let (f, s) = f.step(answer, S(105));
        assert_eq!(s.events, vec![Event::SlowDown { interval: 30 }]);
        // ...and a smaller server value does not undo the +5 s rule.
        let (f, _) = f.step(Input::Tick, S(135));
        let answer = Input::PollAnswered(PollAnswer::Error(OAuthError {
            error: "slow_down".into(),
            description: None,
            interval: Some(2),
            status: None,
        }));
        let (_, s) = f.step(answer, S(135));
        assert_eq!(s.events, vec![Event::SlowDown { interval: 35 }]);
    }

    #[test]
    fn slow_down_is_capped() {
        let policy = Policy {
            max_code_lifetime: S(100_000),
            ..Policy::default()
        };
        let (f, _) = Flow::new(policy.clone(), S(0), 1).step(Input::Tick, S(0));
        let (mut f, _) = f.step(Input::CodeIssued(auth(Some(5), 100_000)), S(0));
        let mut now = S(0);
        for _ in 0..80 {
            now += f.live_code().unwrap().interval;
            let (g, s) = f.step(Input::Tick, now);
            assert_eq!(s.action, Action::Poll);
            let (g, _) = g.step(err("slow_down"), now);
            f = g;
        }
        assert_eq!(f.live_code().map(|c| c.interval), Some(policy.max_interval));
    }

    #[test]
    fn tokens_finish_at_once() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(tokens(), S(105));
        assert_eq!(s.action, Action::Finish);
        // Any further input changes nothing: no second redemption.
        let (f, s) = f.step(Input::Tick, S(200));
        assert_eq!(s.action, Action::Finish);
        assert!(matches!(f.into_outcome(), Some(Outcome::Paired(_))));
    }

    #[test]
    fn denial_finishes_with_denied_for_both_spellings() {
        for code in ["access_denied", "authorization_declined"] {
            let (f, _) = issued(Some(5), 600);
            let (f, _) = f.step(Input::Tick, S(105));
            let (f, s) = f.step(err(code), S(105));
            assert_eq!(s.action, Action::Finish);
            assert!(matches!(f.into_outcome(), Some(Outcome::Denied)), "{code}");
        }
    }

    #[test]
    fn expired_token_requests_a_new_code_shown_as_renewed() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(err("expired_token"), S(105));
        assert_eq!(s.events, vec![Event::Expired]);
        assert_eq!(s.action, Action::RequestCode);
        let (f, s) = f.step(Input::CodeIssued(auth(Some(5), 600)), S(106));
        assert!(matches!(s.events[0], Event::Code { renewed: true, .. }));
        assert_eq!(s.action, Action::WaitUntil(S(111)));
        assert!(f.live_code().unwrap().renewed);
    }

    #[test]
    fn local_deadline_renews_without_polling() {
        let (f, _) = issued(Some(5), 12);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(err("authorization_pending"), S(105));
        assert_eq!(s.action, Action::WaitUntil(S(110)));
        let (f, _) = f.step(Input::Tick, S(110));
        let (f, s) = f.step(err("authorization_pending"), S(110));
        assert_eq!(
            s.action,
            Action::WaitUntil(S(112)),
            "never wait past the deadline"
        );
        let (_, s) = f.step(Input::Tick, S(112));
        assert_eq!(s.events, vec![Event::Expired]);
        assert_eq!(s.action, Action::RequestCode);
    }

    #[test]
    fn auth0_invalid_grant_after_expiry_is_an_expiry() {
        let (f, _) = issued(Some(5), 10);
        let (f, _) = f.step(Input::Tick, S(110));
        // Polled right at the deadline; the server already forgot the code.
        let (_, s) = f.step(err("invalid_grant"), S(110));
        assert_eq!(s.action, Action::RequestCode);
        // ...but before the deadline it is a real error.
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(err("invalid_grant"), S(105));
        assert_eq!(s.action, Action::Finish);
        assert!(
            matches!(f.into_outcome(), Some(Outcome::ServerError(e)) if e.error == "invalid_grant")
        );
    }

    #[test]
    fn invalid_grant_after_a_lost_poll_answer_renews_the_code() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        // The answer to this poll (maybe the tokens) is lost on the way back...
        let (f, s) = f.step(transient(), S(105));
        let Action::WaitUntil(at) = s.action else {
            panic!()
        };
        let (f, _) = f.step(Input::Tick, at);
        // ...and the server now treats the code as redeemed: start over with a new code.
        let (_, s) = f.step(err("invalid_grant"), at);
        assert_eq!(s.events, vec![Event::Expired]);
        assert_eq!(s.action, Action::RequestCode);
        // A good answer in between clears the doubt: invalid_grant is then an error.
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(transient(), S(105));
        let Action::WaitUntil(at) = s.action else {
            panic!()
        };
        let (f, _) = f.step(Input::Tick, at);
        let (f, s) = f.step(err("authorization_pending"), at);
        let Action::WaitUntil(at) = s.action else {
            panic!()
        };
        let (f, _) = f.step(Input::Tick, at);
        let (_, s) = f.step(err("invalid_grant"), at);
        assert_eq!(s.action, Action::Finish);
    }

    #[test]
    fn unknown_errors_stop_with_the_servers_error() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, _) = f.step(err("invalid_client"), S(105));
        assert!(
            matches!(f.into_outcome(), Some(Outcome::ServerError(e)) if e.error == "invalid_client")
        );
    }

    #[test]
    fn transient_poll_failures_back_off_exponentially_with_jitter_and_cap() {
        let (mut f, _) = issued(Some(1), 7200);
        let mut now = S(101);
        let mut delays = Vec::new();
        for _ in 0..12 {
            let (g, s) = f.step(Input::Tick, now);
            assert_eq!(s.action, Action::Poll);
            let (g, s) = g.step(transient(), now);
            let Action::WaitUntil(at) = s.action else {
                panic!("{s:?}")
            };
            assert!(matches!(s.events[0], Event::Retrying { .. }));
            delays.push(at - now);
            now = at;
            f = g;
        }
        let p = Policy::default();
        // Equal jitter: delay in [exp/2, exp], exp doubling from base up to the cap.
        for (i, d) in delays.iter().enumerate() {
            let exp = p.backoff_base.saturating_mul(1 << i).min(p.backoff_cap);
            assert!(
                *d >= (exp / 2).max(S(1)) && *d <= exp.max(S(1)),
                "#{i}: {d:?} vs {exp:?}"
            );
        }
        assert!(delays.iter().all(|d| *d <= p.backoff_cap));
        // A good answer resets the backoff.
        let (g, _) = f.step(Input::Tick, now);
        let (g, _) = g.step(err("authorization_pending"), now);
        now += S(1);
        let (g, _) = g.step(Input::Tick, now);
        let (_, s) = g.step(transient(), now);
        let Action::WaitUntil(at) = s.action else {
            panic!()
        };
        assert!(
            at - now <= p.backoff_base,
            "backoff restarted: {:?}",
            at - now
        );
    }

    #[test]
    fn jitter_spreads_devices() {
        let p = Policy::default();
        let a: Vec<_> = (0..5)
            .map(|_| ())
            .scan(
                Backoff {
                    failures: 3,
                    rng: 1,
                },
                |b, _| {
                    b.failures = 3;
                    Some(b.next_delay(&p))
                },
            )
            .collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]), "{a:?}");
    }

    #[test]
    fn backoff_never_outlives_the_code() {
        let (f, _) = issued(Some(5), 20);
        let (f, _) = f.step(Input::Tick, S(118));
        let (f, s) = f.step(transient(), S(118));
        // interval (5 s) would take us past the deadline at 120: wait for the deadline instead.
        assert_eq!(s.action, Action::WaitUntil(S(120)));
        let (_, s) = f.step(Input::Tick, S(120));
        assert_eq!(s.events, vec![Event::Expired]);
        assert_eq!(s.action, Action::RequestCode);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let (f, _) = issued(Some(5), 7200);
        let (f, _) = f.step(Input::Tick, S(105));
        let (_, s) = f.step(
            Input::PollFailed(Failure::Transient {
                reason: "HTTP 429".into(),
                retry_after: Some(S(30)),
            }),
            S(105),
        );
        assert_eq!(s.action, Action::WaitUntil(S(135)));
        let (f, _) = issued(Some(5), 7200);
        let (f, _) = f.step(Input::Tick, S(105));
        let (_, s) = f.step(
            Input::PollFailed(Failure::Transient {
                reason: "HTTP 503".into(),
                retry_after: Some(S(86_400)),
            }),
            S(105),
        );
        assert_eq!(s.action, Action::WaitUntil(S(165)), "capped at 60 s");
    }

    #[test]
    fn code_request_failures_retry_or_stop() {
        let f = Flow::new(Policy::default(), S(0), 7);
        let (f, _) = f.step(Input::Tick, S(0));
        let (f, s) = f.step(
            Input::CodeFailed(Failure::Transient {
                reason: "timed out".into(),
                retry_after: None,
            }),
            S(0),
        );
        let Action::WaitUntil(at) = s.action else {
            panic!()
        };
        assert!(at >= S(1) && at <= S(2));
        let (f, s) = f.step(Input::Tick, at);
        assert_eq!(s.action, Action::RequestCode);
        let (f, s) = f.step(
            Input::CodeFailed(Failure::Fatal("invalid_client".into())),
            at,
        );
        assert_eq!(s.action, Action::Finish);
        assert!(matches!(f.into_outcome(), Some(Outcome::Failed(m)) if m == "invalid_client"));
    }

    #[test]
    fn fatal_poll_failure_stops() {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(
            Input::PollFailed(Failure::Fatal("bad certificate".into())),
            S(105),
        );
        assert_eq!(s.action, Action::Finish);
        assert!(matches!(f.into_outcome(), Some(Outcome::Failed(_))));
    }

    #[test]
    fn out_of_order_inputs_do_not_panic_or_lose_state() {
        let (f, _) = issued(Some(5), 600);
        // A poll answer while no poll is in flight: ignored, keep waiting.
        let (f, s) = f.step(tokens(), S(101));
        assert_eq!(s.action, Action::WaitUntil(S(105)));
        assert!(f.live_code().is_some());
        let (f, s) = f.step(Input::CodeIssued(auth(Some(5), 600)), S(102));
        assert_eq!(s.action, Action::WaitUntil(S(105)));
        assert!(matches!(f.state(), State::ExpectApproval(_)));
    }
}
