//! The clock a pairing sleeps on in `devauth run`: while one account shows its code, each of
//! its waits first runs the other accounts' due work ([`Background`], given by the driver), and
//! a SIGUSR2 ends the pairing only when the pairing account's own store changed. Shared by the
//! driver (which builds the background work) and the service (which pairs on this clock).

use crate::clock::{Clock, Instant};
use crate::signals::{Signal, SignalClock, Signals};
use crate::store::{TokenSet, TokenStore};
use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// The other accounts' work in a pairing's waits: the signals (for their hooks) and a SIGUSR2
/// that came meanwhile, for the accounts whose store it was. True when another account waits
/// to pair.
pub type Background<'b> = dyn FnMut(&mut Signals, Option<Signal>) -> bool + 'b;

/// Whether `store` holds other tokens than `current` (none where there are none).
pub(super) fn store_moved(store: &TokenStore, current: Option<&TokenSet>) -> bool {
    let stored = store.load().ok().flatten().map(|s| s.tokens.access_token);
    stored.as_ref() != current.map(|t| &t.access_token)
}

/// The clock a pairing sleeps on in the agent: the [`SignalClock`], and in each of its waits
/// the other accounts' due work first (`background`, given the signals for their hooks). A
/// SIGUSR2 ends the pairing only when the pairing account's own `store` changed (another
/// command paired it); otherwise it goes to the other accounts.
pub struct PairingClock<'c, 'b> {
    inner: SignalClock<'c>,
    background: RefCell<&'b mut Background<'b>>,
    store: TokenStore,
    /// Another account waits to pair (as the last background run found).
    others_waiting: std::cell::Cell<bool>,
}

impl<'c, 'b> PairingClock<'c, 'b> {
    pub fn new(
        inner: SignalClock<'c>,
        background: &'b mut Background<'b>,
        store: TokenStore,
    ) -> PairingClock<'c, 'b> {
        PairingClock {
            inner,
            background: RefCell::new(background),
            store,
            others_waiting: std::cell::Cell::new(false),
        }
    }

    fn run_background(&self, sig: Option<Signal>) {
        if let Ok(mut background) = self.background.try_borrow_mut() {
            let waiting = self
                .inner
                .with_signals(|signals| (*background)(signals, sig));
            self.others_waiting.set(waiting);
        }
    }

    /// Another account waits for the screen.
    pub fn others_waiting(&self) -> bool {
        self.others_waiting.get()
    }

    /// The stop or reload signal that came while sleeping, if any.
    pub fn got(&self) -> Option<Signal> {
        self.inner.got()
    }

    /// Puts a signal back for the next wait.
    pub fn defer(&self, s: Signal) {
        self.inner.defer(s);
    }
}

impl Clock for PairingClock<'_, '_> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, d: Duration) {
        let start = self.inner.now();
        if self.inner.got().is_none() {
            self.run_background(None);
        }
        if let Some(rest) = d.checked_sub(self.inner.now().saturating_sub(start)) {
            self.inner.sleep(rest);
        }
        if self.inner.got() == Some(Signal::StoreChanged) && !store_moved(&self.store, None) {
            self.inner.take_got();
            self.run_background(Some(Signal::StoreChanged));
        }
    }

    fn wall(&self) -> SystemTime {
        self.inner.wall()
    }
}
