//! The decisions of `devauth run`, as a pure state machine: no I/O, no clock reads, no sleeping,
//! no secrets. The service loop (`service.rs`, beside this file) feeds it what happened — the store was read,
//! pairing ended, a renewal or a probe answered, time passed, a signal arrived — with the
//! current boottime and whether the wall clock is plausible, and gets back a [`Step`]: effects
//! to carry out now (events, the token file, the display) and the one blocking thing to do next.
//!
//! ```text
//!            ┌───────┐ LoadStore ┌─────────┐  tokens   ┌──────────┐ due ┌──────────┐
//!   start ──▶│ Start │──────────▶│ Loading │──────────▶│ Holding  │────▶│ Renewing │
//!            └───────┘           └─────────┘           │ (wait)   │◀────│          │
//!                 ▲ reload            │ none /         └──────────┘ new / └──────────┘
//!                 │                   │ unusable         │  ▲  │ ▲   failed: backoff │
//!                 │                   ▼                  │  │  │ └─────────────────┘ │ gone
//!                 │            ┌──────────────┐  paired  │  │  │ probe ┌─────────┐   │
//!                 │            │   Pairing    │─────────▶┘  │  └──────▶│ Probing │   │
//!                 │            │ (AwaitClock, │◀────────────┼──────────│ (401×2) │   │
//!                 │            │ PairingPause)│◀─── unpair ─┘  gone    └─────────┘   │
//!                 │            └──────────────┘◀──────────────────────────────────────┘
//!   SIGTERM/SIGINT from any state: Exit (a code on screen is blanked first).
//! ```
//!
//! The rules:
//! - Renew ahead of expiry: at `expiry − min(margin, lifetime/2) − jitter`. All times are
//!   CLOCK_BOOTTIME: a suspended box that wakes after its token expired renews at once, because
//!   the driver feeds a `Tick` as soon as it notices the jump. A token obtained when many devices
//!   may have obtained theirs (pairing; at start, the stored one expired) gets a wide jitter; one
//!   obtained late after failures is renewed that much earlier (`timing.rs`, `docs/fleet.md`).
//! - A failed renewal that is not "the grant is gone" keeps the tokens and retries, never
//!   pairs: exponential backoff when the provider was not reached; after a refusal (429, 5xx)
//!   not before its `Retry-After`, then spread over a backoff cap (`timing.rs`).
//! - `invalid_grant` (the grant is gone), or an API (the provider's userinfo, once it has worked
//!   with this grant) answering 401 both before and after a renewal: pairing again, at once.
//! - Before any network call the wall clock must be plausible (TLS needs it); until then the
//!   agent waits, showing "waiting for network time" when it is about to pair.
//! - Service accounts (JWT bearer) never pair: they renew by signing a new assertion.

use crate::clock::Instant;
use crate::signals::Signal;
use std::time::Duration;
use timing::Spread;
pub use timing::{Cause, Retries};

mod timing;

/// Tunables; the defaults are for real devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `[agent] refresh_margin_secs`: renew this long before expiry (capped at half the
    /// token's lifetime).
    pub refresh_margin: Duration,
    /// `[agent] paired_screen_secs`.
    pub paired_screen: Duration,
    /// Largest renewal jitter.
    pub max_jitter: Duration,
    /// First retry delay after a failed renewal, doubled up to `backoff_cap`.
    pub backoff_base: Duration,
    /// Also the window a retry after a refusal (429, 5xx) is spread over.
    pub backoff_cap: Duration,
    /// The longest `Retry-After` believed; a longer one (a misconfigured or hostile server
    /// saying "come back next week") is cut to this.
    pub max_retry_after: Duration,
    /// Pause before pairing again after the person denied access.
    pub after_denied: Duration,
    /// First pause before pairing again after pairing failed, doubled up to `pairing_retry_cap`.
    pub pairing_retry_base: Duration,
    pub pairing_retry_cap: Duration,
    /// How often the wall clock is re-checked while waiting for network time.
    pub clock_poll: Duration,
    /// How often a token that never expires is checked against the provider's userinfo.
    pub recheck_every: Duration,
    /// Whether a userinfo endpoint exists to check the grant with (device flow only).
    pub can_probe: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            refresh_margin: Duration::from_secs(300),
            paired_screen: Duration::from_secs(10),
            max_jitter: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            after_denied: Duration::from_secs(30),
            pairing_retry_base: Duration::from_secs(10),
            pairing_retry_cap: Duration::from_secs(600),
            clock_poll: Duration::from_secs(2),
            recheck_every: Duration::from_secs(3600),
            can_probe: false,
        }
    }
}

/// How the agent obtains tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Device flow: pair with a person, then refresh tokens.
    DeviceFlow,
    /// JWT bearer (service account): no person, no screen; renewing is signing.
    ServiceAccount,
}

/// What the agent knows about the current access token (no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// Time left; `None` when it never expires. An untrusted expiry counts as zero.
    pub remaining: Option<Duration>,
    /// The granted lifetime, `None` when it never expires.
    pub lifetime: Option<Duration>,
}

/// The result of reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Tokens(TokenInfo),
    Nothing,
    /// Corrupt, or issued to another client: pairing replaces it.
    Unusable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingEnd {
    Paired(TokenInfo),
    Denied,
    Failed(String),
    /// A signal stopped pairing (SIGTERM, SIGINT, SIGHUP).
    Interrupted(Signal),
    /// The pairing gave the screen to another account's (its code expired while another
    /// waited); it is still due, after theirs.
    Yielded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalEnd {
    /// Nothing was renewed: the token we hold is still the stored one.
    Current(TokenInfo),
    /// The stored token changed (we renewed, or another process did).
    New(TokenInfo),
    /// Worth retrying (network, server, store, lock): the tokens are kept.
    Failed { reason: String, cause: Cause },
    /// The grant is gone (`invalid_grant`, no refresh token, not paired any more).
    Gone(String),
}

impl RenewalEnd {
    /// A failure worth retrying that was not the provider refusing.
    pub fn failed(reason: impl Into<String>) -> RenewalEnd {
        RenewalEnd::Failed {
            reason: reason.into(),
            cause: Cause::Unreachable,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeEnd {
    /// 2xx: the provider accepts the access token.
    Accepted,
    /// 401: it does not.
    Rejected,
    /// Anything else (network, 5xx, 403): says nothing about the grant.
    Unknown,
}

/// What happened since the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed (a wait ended, or the driver noticed a resume or a clock jump).
    Tick,
    Store(Loaded),
    Pairing(PairingEnd),
    Renewal(RenewalEnd),
    Probe(ProbeEnd),
    Unpaired {
        revoked: bool,
    },
    /// The config was reloaded with this policy (`None`: it could not be, the old one stays).
    Reloaded(Option<Policy>),
    Signal(Signal),
}

/// Something to tell the outside world (JSON event, hook, log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Pairing succeeded (or, after [`Signal::StoreChanged`], the store holds a new pairing).
    Paired,
    /// At start: the stored pairing is in use (the token file is written).
    PairedAtStart,
    Refreshed(TokenInfo),
    /// Signed out: by SIGUSR1 (`Some`: whether the provider confirmed the revocation), or by
    /// another command that removed the stored tokens (`None`: it reported that itself).
    Unpaired {
        revoked: Option<bool>,
    },
    PairingRequired(String),
    Denied,
    PairingFailed(String),
    /// A renewal failed; the next attempt is in `in_secs`.
    Retrying {
        reason: String,
        in_secs: u64,
    },
    WaitingForClock,
    /// The userinfo check cannot be used with this grant (it refused a token it never accepted).
    ProbeUnusable,
}

/// Carried out at once, in order; none produces an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Notify(Note),
    /// Write the current access token to the token file.
    Publish,
    /// Remove the token file.
    Unpublish,
    /// Delete the stored tokens if they still hold the rejected access token.
    ForgetTokens,
    ShowPaired,
    ShowWaitingForClock,
    /// Hand the display back as configured (`release_display`).
    ReleaseDisplay,
    /// Blank the display whatever the config says (never leave a dead code on screen).
    BlankDisplay,
}

/// What renewal is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Renew if no more than this is left (the driver passes it to `grant::Need::Remaining`).
    AtMost(Duration),
    /// The provider refused the current access token: replace it.
    Replace,
}

/// The one blocking thing to do next; each but `Exit` produces the next input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    LoadStore,
    Pair,
    Renew(Want),
    Probe,
    Unpair,
    Reload,
    /// Wait until this instant, or a signal (the driver feeds `Tick` or `Signal`).
    Wait(Instant),
    Exit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub effects: Vec<Effect>,
    pub next: Next,
}

/// Where the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Start,
    Loading,
    /// Pairing is due but the wall clock is not plausible yet.
    AwaitClock,
    Pairing,
    /// Pairing stopped (denied, failed); the next attempt is at `until`.
    PairingPause {
        until: Instant,
    },
    Holding(Hold),
    Renewing {
        hold: Hold,
        want: Want,
    },
    Probing(Hold),
    Unpairing,
    Reloading,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeState {
    /// Never answered 2xx for this grant: a 401 only means userinfo is no use here.
    Untested,
    /// Answered 2xx before: a 401 now means the token is refused.
    Works,
    Useless,
}

/// Paired (or holding a service-account token): keeping it fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// When to renew; `None` for a token that never expires.
    pub due: Option<Instant>,
    /// The remaining time at which `due` was set (margin + jitter).
    pub threshold: Duration,
    /// Slack for the renewal check (so the due check and the store agree).
    pub slack: Duration,
    /// Failed renewals since the last success, and what they mean for the next token.
    pub retries: Retries,
    /// When the "paired" screen goes.
    pub release_at: Option<Instant>,
    pub probe: ProbeState,
    /// A probe is wanted as soon as possible (after pairing, start or a renewal).
    pub probe_pending: bool,
    /// The last probe was refused and the token replaced: a second refusal means gone.
    pub rejected: bool,
    /// Next periodic probe of a token that never expires.
    pub recheck_at: Option<Instant>,
    /// "Waiting for network time" was already said for this wait.
    pub clock_noted: bool,
}

/// Renewals are re-checked at least this long after a renewal that changed nothing.
const MIN_RECHECK: Duration = Duration::from_secs(1);
/// The longest single wait the machine asks for when nothing is scheduled.
const IDLE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct Agent {
    state: State,
    policy: Policy,
    mode: Mode,
    rng: u64,
    /// Consecutive failed pairings (for the pause before the next one).
    pairing_failures: u32,
    /// "Waiting for network time" was shown for the current pairing wait.
    clock_shown: bool,
    /// What the next store read is for.
    reading: Reading,
    /// The state is announced with the first token published after start.
    announce_at_start: bool,
}

impl Agent {
    /// `seed` feeds the jitter (any value; tests pass a constant). Feed `Input::Tick` first.
    pub fn new(policy: Policy, mode: Mode, seed: u64) -> Agent {
        Agent {
            state: State::Start,
            policy,
            mode,
            rng: seed | 1,
            pairing_failures: 0,
            clock_shown: false,
            reading: Reading::Start,
            announce_at_start: false,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One step: `now` is boottime, `wall_ok` whether the wall clock is plausible.
    pub fn step(&mut self, input: Input, now: Instant, wall_ok: bool) -> Step {
        let mut fx = Vec::new();
        let state = std::mem::replace(&mut self.state, State::Stopped);
        let (state, next) = self.advance(state, input, now, wall_ok, &mut fx);
        self.state = state;
        Step { effects: fx, next }
    }

    fn advance(
        &mut self,
        state: State,
        input: Input,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        // Signals first: they mean the same in every state that can receive them.
        if let Input::Signal(sig) = input {
            return self.on_signal(state, sig, now, wall_ok, fx);
        }
        match (state, input) {
            (State::Stopped, _) => (State::Stopped, Next::Exit),

            (State::Start, _) => (State::Loading, Next::LoadStore),

            (State::Loading, Input::Store(loaded)) => self.loaded(loaded, now, wall_ok, fx),

            (State::AwaitClock, Input::Tick) => self.pair(now, wall_ok, fx),

            (State::PairingPause { until }, Input::Tick) => {
                if now >= until {
                    self.pair(now, wall_ok, fx)
                } else {
                    (State::PairingPause { until }, Next::Wait(until))
                }
            }

            (State::Pairing, Input::Pairing(end)) => match end {
                PairingEnd::Paired(info) => {
                    self.pairing_failures = 0;
                    // The token file first (a hook hearing "paired" reads it), the screen before
                    // the hook (which may take its time).
                    fx.push(Effect::Publish);
                    let release_at = if self.policy.paired_screen.is_zero() {
                        fx.push(Effect::ReleaseDisplay);
                        None
                    } else {
                        fx.push(Effect::ShowPaired);
                        Some(now + self.policy.paired_screen)
                    };
                    fx.push(Effect::Notify(Note::Paired));
                    // Whole fleets pair in the same hour (a shop, a reset, a revoked client).
                    let hold = self.new_hold(info, now, release_at, Spread::Wide);
                    self.hold_next(hold, now, wall_ok, fx)
                }
                PairingEnd::Denied => {
                    fx.push(Effect::Notify(Note::Denied));
                    let until = now + self.policy.after_denied;
                    (State::PairingPause { until }, Next::Wait(until))
                }
                PairingEnd::Failed(why) => {
                    fx.push(Effect::Notify(Note::PairingFailed(why)));
                    let exp = self
                        .policy
                        .pairing_retry_base
                        .saturating_mul(1u32 << self.pairing_failures.min(16))
                        .min(self.policy.pairing_retry_cap);
                    self.pairing_failures = self.pairing_failures.saturating_add(1);
                    let until = now + self.equal_jitter(exp);
                    (State::PairingPause { until }, Next::Wait(until))
                }
                PairingEnd::Interrupted(sig) => {
                    self.on_signal(State::Pairing, sig, now, wall_ok, fx)
                }
                PairingEnd::Yielded => (State::Pairing, Next::Pair),
            },

            (State::Holding(hold), Input::Tick) => self.hold_next(hold, now, wall_ok, fx),

            (State::Renewing { mut hold, want }, Input::Renewal(end)) => match end {
                RenewalEnd::New(info) => {
                    fx.push(Effect::Publish);
                    fx.push(Effect::Notify(if self.announce_at_start {
                        Note::PairedAtStart
                    } else {
                        Note::Refreshed(info)
                    }));
                    self.announce_at_start = false;
                    let spread = hold.retries.succeeded(now);
                    self.reschedule(&mut hold, info, now, spread);
                    hold.probe_pending = hold.probe != ProbeState::Useless;
                    // After a replacement the next probe decides: a second 401 means gone.
                    if want != Want::Replace {
                        hold.rejected = false;
                    }
                    self.hold_next(hold, now, wall_ok, fx)
                }
                RenewalEnd::Current(_) if want == Want::Replace => {
                    // The provider refuses the token and there is nothing to renew it with.
                    self.grant_gone(
                        "the provider rejects the access token (HTTP 401) and it cannot be renewed"
                            .into(),
                        true,
                        now,
                        wall_ok,
                        fx,
                    )
                }
                RenewalEnd::Current(info) => {
                    if std::mem::take(&mut self.announce_at_start) {
                        // Still the stored token, and good after all (e.g. the clock is now
                        // trusted): publish it and say so.
                        fx.push(Effect::Publish);
                        fx.push(Effect::Notify(Note::PairedAtStart));
                    }
                    hold.retries = Retries::default();
                    self.reschedule(&mut hold, info, now, Spread::Usual);
                    // Never re-ask at once for what was just declined: no busy loop.
                    hold.due = hold.due.map(|d| d.max(now + MIN_RECHECK));
                    self.hold_next(hold, now, wall_ok, fx)
                }
                RenewalEnd::Gone(why) if self.mode == Mode::DeviceFlow => {
                    self.grant_gone(why, false, now, wall_ok, fx)
                }
                RenewalEnd::Failed { reason, cause } => {
                    self.renewal_failed(hold, reason, cause, now, wall_ok, fx)
                }
                // A service account's refused assertion: the provider refusing, worth retrying.
                RenewalEnd::Gone(reason) => {
                    let cause = Cause::Refused { retry_after: None };
                    self.renewal_failed(hold, reason, cause, now, wall_ok, fx)
                }
            },

            (State::Probing(mut hold), Input::Probe(end)) => {
                match (end, hold.probe) {
                    (ProbeEnd::Accepted, _) => {
                        hold.probe = ProbeState::Works;
                        hold.rejected = false;
                    }
                    (ProbeEnd::Rejected, ProbeState::Works) if hold.rejected => {
                        return self.grant_gone(
                            "the provider rejects new access tokens too (HTTP 401)".into(),
                            true,
                            now,
                            wall_ok,
                            fx,
                        );
                    }
                    (ProbeEnd::Rejected, ProbeState::Works) => {
                        hold.rejected = true;
                        return (
                            State::Renewing {
                                hold,
                                want: Want::Replace,
                            },
                            Next::Renew(Want::Replace),
                        );
                    }
                    (ProbeEnd::Rejected, _) => {
                        hold.probe = ProbeState::Useless;
                        fx.push(Effect::Notify(Note::ProbeUnusable));
                    }
                    (ProbeEnd::Unknown, _) => {}
                }
                if hold.due.is_none() && hold.probe == ProbeState::Works {
                    hold.recheck_at = Some(now + self.policy.recheck_every);
                }
                self.hold_next(hold, now, wall_ok, fx)
            }

            (State::Unpairing, Input::Unpaired { revoked }) => {
                fx.push(Effect::Unpublish);
                fx.push(Effect::Notify(Note::Unpaired {
                    revoked: Some(revoked),
                }));
                self.no_tokens("unpaired".into(), now, wall_ok, fx)
            }

            (State::Reloading, Input::Reloaded(policy)) => {
                if let Some(p) = policy {
                    self.policy = p;
                }
                // Start over from the store: the token file, margin, hook and provider may all
                // have changed. A grant that is still good is kept; pairing restarts if needed.
                (State::Loading, Next::LoadStore)
            }

            // An input that does not fit the state is a driver bug: keep the state and ask again
            // for what it awaits (never panic, never lose the state).
            (state, _) => {
                let next = self.expected(&state, now);
                (state, next)
            }
        }
    }

    fn expected(&self, state: &State, now: Instant) -> Next {
        match state {
            State::Start | State::Loading => Next::LoadStore,
            State::AwaitClock => Next::Wait(now + self.policy.clock_poll),
            State::Pairing => Next::Pair,
            State::PairingPause { until } => Next::Wait(*until),
            State::Holding(h) => Next::Wait(h.due.unwrap_or(now + IDLE)),
            State::Renewing { want, .. } => Next::Renew(*want),
            State::Probing(_) => Next::Probe,
            State::Unpairing => Next::Unpair,
            State::Reloading => Next::Reload,
            State::Stopped => Next::Exit,
        }
    }

    fn on_signal(
        &mut self,
        state: State,
        sig: Signal,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        if sig.is_stop() {
            match &state {
                // A code (or "waiting for network time") must not stay on screen.
                State::AwaitClock | State::Pairing | State::PairingPause { .. } => {
                    fx.push(Effect::BlankDisplay)
                }
                State::Holding(h) | State::Probing(h) | State::Renewing { hold: h, .. }
                    if h.release_at.is_some() =>
                {
                    fx.push(Effect::ReleaseDisplay)
                }
                _ => {}
            }
            return (State::Stopped, Next::Exit);
        }
        match (sig, state) {
            (_, State::Stopped) => (State::Stopped, Next::Exit),
            (Signal::Reload, state) => {
                if let State::Holding(h) = &state {
                    if h.release_at.is_some() {
                        fx.push(Effect::ReleaseDisplay);
                    }
                }
                (State::Reloading, Next::Reload)
            }
            (Signal::Unpair, State::Holding(h)) => {
                if h.release_at.is_some() {
                    fx.push(Effect::ReleaseDisplay);
                }
                (State::Unpairing, Next::Unpair)
            }
            (Signal::StoreChanged, state) => self.store_changed(&state, fx),
            // Not paired (or busy): nothing to unpair; carry on.
            (_, state) => match state {
                State::Pairing => (State::Pairing, Next::Pair),
                State::AwaitClock => self.pair(now, wall_ok, fx),
                other => {
                    let next = self.expected(&other, now);
                    (other, next)
                }
            },
        }
    }

    /// No usable tokens: pair (device flow) or obtain one (service account).
    fn no_tokens(
        &mut self,
        reason: String,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        match self.mode {
            Mode::DeviceFlow => {
                fx.push(Effect::Unpublish);
                fx.push(Effect::Notify(Note::PairingRequired(reason)));
                self.clock_shown = false;
                self.pair(now, wall_ok, fx)
            }
            Mode::ServiceAccount => {
                let hold = self.new_hold(
                    TokenInfo {
                        remaining: Some(Duration::ZERO),
                        lifetime: None,
                    },
                    now,
                    None,
                    Spread::Usual,
                );
                self.hold_next(hold, now, wall_ok, fx)
            }
        }
    }

    fn grant_gone(
        &mut self,
        reason: String,
        forget: bool,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        self.announce_at_start = false;
        if forget {
            fx.push(Effect::ForgetTokens);
        }
        self.no_tokens(reason, now, wall_ok, fx)
    }

    /// Starts pairing, or waits for the wall clock first.
    fn pair(&mut self, now: Instant, wall_ok: bool, fx: &mut Vec<Effect>) -> (State, Next) {
        if !wall_ok {
            if !self.clock_shown {
                fx.push(Effect::ShowWaitingForClock);
                fx.push(Effect::Notify(Note::WaitingForClock));
                self.clock_shown = true;
            }
            return (State::AwaitClock, Next::Wait(now + self.policy.clock_poll));
        }
        self.clock_shown = false;
        (State::Pairing, Next::Pair)
    }

    /// "Equal jitter": half fixed, half random.
    fn equal_jitter(&mut self, d: Duration) -> Duration {
        let half = d / 2;
        half + half.mul_f64(self.random_fraction())
    }

    /// In [0, 1).
    fn random_fraction(&mut self) -> f64 {
        // xorshift64*: jitter needs spread, not secrecy.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % 1000) as f64 / 1000.0
    }
}

mod holding;
mod reading;
use reading::Reading;

#[cfg(test)]
mod tests;
