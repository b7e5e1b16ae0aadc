//! The machine while it holds tokens: a hold made for a new token, its renewal placed
//! (`timing.rs` says where), a failed renewal's retry, and what comes next — renewing, probing,
//! releasing the paired screen, or waiting for the clock TLS needs.

use super::timing::{self, Cause, Retries, Spread};
use super::*;

impl Agent {
    /// `spread`: how to place the renewal of `info` (see `reschedule`).
    pub(super) fn new_hold(
        &mut self,
        info: TokenInfo,
        now: Instant,
        release_at: Option<Instant>,
        spread: Spread,
    ) -> Hold {
        let mut hold = Hold {
            due: None,
            threshold: Duration::ZERO,
            slack: Duration::ZERO,
            retries: Retries::default(),
            release_at,
            probe: if self.policy.can_probe && self.mode == Mode::DeviceFlow {
                ProbeState::Untested
            } else {
                ProbeState::Useless
            },
            probe_pending: false,
            rejected: false,
            recheck_at: None,
            clock_noted: false,
        };
        hold.probe_pending = hold.probe != ProbeState::Useless;
        self.reschedule(&mut hold, info, now, spread);
        hold
    }

    /// A renewal failed in a way worth retrying: back off (honouring a `Retry-After`), keep the
    /// tokens.
    pub(super) fn renewal_failed(
        &mut self,
        mut hold: Hold,
        reason: String,
        cause: Cause,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        let r = self.random_fraction();
        let delay = hold.retries.failed(&self.policy, cause, now, r);
        hold.due = Some(now + delay);
        fx.push(Effect::Notify(Note::Retrying {
            reason,
            in_secs: delay.as_secs().max(1),
        }));
        self.hold_next(hold, now, wall_ok, fx)
    }

    /// Sets the next renewal from the token's remaining time (`timing::renewal`).
    pub(super) fn reschedule(
        &mut self,
        hold: &mut Hold,
        info: TokenInfo,
        now: Instant,
        spread: Spread,
    ) {
        let Some(remaining) = info.remaining else {
            hold.due = None;
            hold.threshold = Duration::ZERO;
            hold.slack = Duration::ZERO;
            return;
        };
        let lifetime = info.lifetime.unwrap_or(remaining);
        let r = self.random_fraction();
        let w = timing::renewal(&self.policy, remaining, lifetime, spread, r);
        hold.retries.lifetime = Some(lifetime);
        hold.threshold = w.threshold;
        hold.slack = w.slack;
        hold.due = Some(now + remaining.saturating_sub(hold.threshold));
        hold.recheck_at = None;
    }

    /// The next thing to do while holding tokens.
    pub(super) fn hold_next(
        &mut self,
        mut hold: Hold,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        if hold.release_at.is_some_and(|t| now >= t) {
            fx.push(Effect::ReleaseDisplay);
            hold.release_at = None;
        }
        let renew_due = hold.due.is_some_and(|d| now >= d);
        let probe_due = hold.probe != ProbeState::Useless
            && (hold.probe_pending || hold.recheck_at.is_some_and(|t| now >= t));
        if (renew_due || probe_due) && !wall_ok {
            // TLS would fail: wait for network time instead (no display here: the display
            // belongs to the device's UI while paired).
            if !hold.clock_noted {
                fx.push(Effect::Notify(Note::WaitingForClock));
                hold.clock_noted = true;
            }
            let until = now + self.policy.clock_poll;
            let until = hold.release_at.map_or(until, |r| r.min(until));
            return (State::Holding(hold), Next::Wait(until));
        }
        hold.clock_noted = false;
        if renew_due {
            let want = Want::AtMost(hold.threshold + hold.slack);
            return (State::Renewing { hold, want }, Next::Renew(want));
        }
        if probe_due {
            hold.probe_pending = false;
            hold.recheck_at = None;
            return (State::Probing(hold), Next::Probe);
        }
        let wake = [hold.due, hold.release_at, hold.recheck_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + IDLE);
        (State::Holding(hold), Next::Wait(wake))
    }
}
