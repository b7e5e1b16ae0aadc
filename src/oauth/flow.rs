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
//!   deadline, reset after the next good answer; a `Retry-After` is honoured (no request before
//!   it ends, up to `max_retry_after`), with a random share of the backoff step after it; with
//!   `give_up_after` (`devauth pair`), the last attempt is made when the provider has been
//!   unreachable that long (a longer `Retry-After` does not move it), and if it fails too the
//!   flow ends `Unreachable` (`devauth run` never gives up);
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
    /// The longest `Retry-After` believed (a longer one is cut to this). A code that dies
    /// meanwhile is replaced when the wait is over, as always.
    pub max_retry_after: Duration,
    /// Stop retrying when no request got a usable answer for this long (`None`: never).
    pub give_up_after: Option<Duration>,
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
            max_retry_after: Duration::from_secs(3600),
            give_up_after: None,
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
    /// The provider could not be reached for `Policy::give_up_after`; the last failure's reason.
    Unreachable(String),
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
    /// When the failures in a row began (for `Policy::give_up_after`).
    since: Option<Instant>,
}

impl Backoff {
    /// The delay after one more failure; `retry_after` is the server's, if it sent one.
    fn next_delay(&mut self, policy: &Policy, retry_after: Option<Duration>) -> Duration {
        let exp = policy
            .backoff_base
            .saturating_mul(1u32 << self.failures.min(16))
            .min(policy.backoff_cap);
        self.failures = self.failures.saturating_add(1);
        let frac = (self.next_random() % 1000) as f64 / 1000.0;
        match retry_after {
            // "Equal jitter": half fixed, half random, so many devices that lost the network at
            // the same moment do not come back in lockstep, yet each still waits a sensible
            // minimum.
            None => exp / 2 + (exp / 2).mul_f64(frac),
            // RFC 9110 §10.2.3, RFC 6585 §4: not before the server said, then a random share of
            // the step so that devices told the same thing do not all come back in one second.
            Some(ra) => ra.min(policy.max_retry_after) + exp.mul_f64(frac),
        }
    }

    fn reset(&mut self) {
        self.failures = 0;
        self.since = None;
    }

    /// When to give up, given a failure `now`: `None` to keep retrying for ever.
    fn give_up_at(&mut self, policy: &Policy, now: Instant) -> Option<Instant> {
        let since = *self.since.get_or_insert(now);
        policy.give_up_after.map(|limit| since + limit)
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
                since: None,
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
                    let give_up = backoff.give_up_at(&policy, now);
                    if give_up.is_some_and(|g| now >= g) {
                        return done(Outcome::Unreachable(reason), policy, backoff);
                    }
                    let delay = until_give_up(
                        retry_delay(&mut backoff, &policy, retry_after),
                        give_up,
                        now,
                    );
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
                    let give_up = backoff.give_up_at(&policy, now);
                    if give_up.is_some_and(|g| now >= g) {
                        return done(Outcome::Unreachable(reason), policy, backoff);
                    }
                    let delay = until_give_up(
                        retry_delay(&mut backoff, &policy, retry_after).max(code.interval),
                        give_up,
                        now,
                    );
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

/// The flow ends now with `outcome`.
fn done(outcome: Outcome, policy: Policy, backoff: Backoff) -> (Flow, Step) {
    let flow = Flow {
        state: State::Done(outcome),
        policy,
        backoff,
    };
    let step = Step {
        action: Action::Finish,
        events: Vec::new(),
    };
    (flow, step)
}

/// A retry delay cut so that the last attempt happens when the give-up time comes.
fn until_give_up(delay: Duration, give_up: Option<Instant>, now: Instant) -> Duration {
    match give_up {
        Some(at) => delay.min(at.saturating_sub(now)),
        None => delay,
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
    backoff.next_delay(policy, retry_after)
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
mod tests;
