//! The wait for a plausible wall clock before pairing or signing in: a device without an RTC
//! boots at 1970 until NTP sets its clock, and TLS cannot check a certificate's dates before then.
//! Shared by `pair` (the device flow) and the browser sign-in.

use crate::clock::Clock;
use crate::screen::{Screen, View};
use serde_json::json;
use std::time::Duration;

/// Waits (showing "waiting for network time") while the wall clock is certainly wrong: TLS
/// cannot check a certificate's dates before then. Tells `notify` `waiting_for_clock` when it
/// starts waiting and `clock_set` (with the Unix time) when the wait ends, so a supervisor
/// reading `--json` knows why nothing else happens. False when `stop` said to stop first.
pub(crate) fn wait_for_clock(
    clock: &impl Clock,
    screen: &mut dyn Screen,
    notify: &mut dyn FnMut(serde_json::Value),
    stop: &dyn Fn() -> bool,
) -> bool {
    let mut shown = false;
    loop {
        let now = crate::clock::unix_secs(clock.wall());
        if now >= crate::clock::MIN_PLAUSIBLE_UNIX {
            if shown {
                eprintln!("devauth: the clock is set; pairing");
                notify(json!({"event": "clock_set", "unix": now}));
            }
            return true;
        }
        if !shown {
            let _ = screen.show(&View::WaitingForClock);
            eprintln!("devauth: the clock is not set yet; waiting for network time");
            notify(json!({"event": "waiting_for_clock"}));
            shown = true;
        }
        clock.sleep(Duration::from_secs(2));
        if stop() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Instant;
    use crate::clock::fake::FakeClock;
    use crate::screen::error::DisplayError;
    use std::cell::Cell;
    use std::time::SystemTime;

    /// A device without an RTC: the wall clock reads 1970 until NTP sets it after `set_after`
    /// sleeps.
    struct RtcLess {
        inner: FakeClock,
        sleeps: Cell<u32>,
        set_after: u32,
    }

    impl RtcLess {
        fn at_1970(set_after: u32) -> RtcLess {
            let clock = RtcLess {
                inner: FakeClock::new(),
                sleeps: Cell::new(0),
                set_after,
            };
            clock.inner.wall.set(SystemTime::UNIX_EPOCH);
            clock
        }
    }

    impl Clock for RtcLess {
        fn now(&self) -> Instant {
            self.inner.now()
        }
        fn sleep(&self, d: Duration) {
            self.inner.sleep(d);
            self.sleeps.set(self.sleeps.get() + 1);
            let wall = if self.sleeps.get() >= self.set_after {
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
            } else {
                SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(self.sleeps.get()) * 2)
            };
            self.inner.wall.set(wall);
        }
        fn wall(&self) -> SystemTime {
            self.inner.wall()
        }
    }

    #[derive(Default)]
    struct Shown(Vec<View>);

    impl Screen for Shown {
        fn show(&mut self, view: &View) -> Result<(), DisplayError> {
            self.0.push(view.clone());
            Ok(())
        }
    }

    /// Runs the wait; what it returned, showed and told.
    fn wait(clock: &impl Clock, stop: &dyn Fn() -> bool) -> (bool, Shown, Vec<serde_json::Value>) {
        let mut screen = Shown::default();
        let mut events = Vec::new();
        let done = wait_for_clock(clock, &mut screen, &mut |e| events.push(e), stop);
        (done, screen, events)
    }

    #[test]
    fn a_clock_at_1970_is_waited_for_and_both_ends_are_told() {
        let clock = RtcLess::at_1970(3);
        let (done, screen, events) = wait(&clock, &|| false);
        assert!(done);
        assert_eq!(clock.sleeps.get(), 3);
        assert_eq!(screen.0, vec![View::WaitingForClock]);
        assert_eq!(
            events,
            vec![
                json!({"event": "waiting_for_clock"}),
                json!({"event": "clock_set", "unix": 1_800_000_000}),
            ]
        );
    }

    #[test]
    fn a_stop_during_the_clock_wait_ends_it_without_clock_set() {
        let clock = RtcLess::at_1970(100);
        let stop = || clock.sleeps.get() >= 2;
        let (done, _, events) = wait(&clock, &stop);
        assert!(!done);
        assert_eq!(
            clock.sleeps.get(),
            2,
            "stopped at once, not after the clock came"
        );
        assert_eq!(events, vec![json!({"event": "waiting_for_clock"})]);
    }

    #[test]
    fn a_plausible_clock_says_nothing() {
        let clock = FakeClock::new();
        let (done, screen, events) = wait(&clock, &|| false);
        assert!(done);
        assert!(screen.0.is_empty() && events.is_empty());
        assert_eq!(clock.slept.get(), Duration::ZERO);
    }
}
