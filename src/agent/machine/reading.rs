//! The machine's reading of the token store: at start (the state is announced: `paired`, or
//! `pairing_required`), after SIGHUP (quietly) and after SIGUSR2 — another command changed the
//! store (`devauth unpair` emptied it, `devauth pair` filled it) and the agent must not go on
//! publishing tokens that are gone, or show a code for a pairing that is done.

use super::*;

/// Why the store is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    Start,
    /// After SIGHUP: quietly, as before.
    Reload,
    /// After SIGUSR2: `held` whether tokens were held when it came.
    Changed {
        held: bool,
    },
}

impl Agent {
    /// The store was read.
    pub(super) fn loaded(
        &mut self,
        loaded: Loaded,
        now: Instant,
        wall_ok: bool,
        fx: &mut Vec<Effect>,
    ) -> (State, Next) {
        let reading = std::mem::replace(&mut self.reading, Reading::Reload);
        match loaded {
            Loaded::Tokens(info) => {
                // An expired (or, after a reboot without a set clock, unverifiable) token is not
                // published: the renewal that follows at once publishes its successor, and
                // announces the state at start (`announce_at_start`).
                let usable = info.remaining != Some(Duration::ZERO);
                if usable {
                    fx.push(Effect::Publish);
                }
                match reading {
                    Reading::Start if usable => fx.push(Effect::Notify(Note::PairedAtStart)),
                    Reading::Start => self.announce_at_start = true,
                    Reading::Changed { .. } => fx.push(Effect::Notify(Note::Paired)),
                    Reading::Reload => {}
                }
                // Tokens another command just obtained (`devauth pair` told us): a pairing, and
                // whole fleets pair in the same hour, so its renewal is spread wide as our own
                // pairings' are. A token found expired spreads its successor's renewal instead.
                let spread = match reading {
                    Reading::Changed { .. } => Spread::Wide,
                    Reading::Start | Reading::Reload => Spread::Usual,
                };
                let mut hold = self.new_hold(info, now, None, spread);
                hold.retries.spread_next = !usable;
                self.hold_next(hold, now, wall_ok, fx)
            }
            // The tokens it held were removed by another command: signed out.
            Loaded::Nothing | Loaded::Unusable(_)
                if reading == (Reading::Changed { held: true }) =>
            {
                fx.push(Effect::Unpublish);
                fx.push(Effect::Notify(Note::Unpaired { revoked: None }));
                self.no_tokens("unpaired".into(), now, wall_ok, fx)
            }
            Loaded::Nothing => self.no_tokens("not paired".into(), now, wall_ok, fx),
            Loaded::Unusable(why) => self.no_tokens(why, now, wall_ok, fx),
        }
    }

    /// SIGUSR2: read the store again. A pairing under way stops (the store may now hold what
    /// it was for): its code leaves the screen.
    pub(super) fn store_changed(&mut self, state: &State, fx: &mut Vec<Effect>) -> (State, Next) {
        let held = matches!(state, State::Holding(_));
        match state {
            State::Holding(h) if h.release_at.is_some() => fx.push(Effect::ReleaseDisplay),
            State::Pairing | State::AwaitClock => fx.push(Effect::BlankDisplay),
            _ => {}
        }
        self.announce_at_start = false;
        self.reading = Reading::Changed { held };
        (State::Loading, Next::LoadStore)
    }
}
