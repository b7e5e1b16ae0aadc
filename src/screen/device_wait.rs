//! Waiting for a display's device node. At boot devauth's service often starts before the
//! display driver has probed (a module udev loads, a deferred SPI probe), and the node appears a
//! moment later: a bounded wait turns that race into a short delay instead of an exit.

use crate::clock::Clock;
use std::path::Path;
use std::time::Duration;

/// How often the nodes are looked for: udev creates them within milliseconds of the probe.
const POLL: Duration = Duration::from_millis(100);

/// Waits until every one of `nodes` exists, for at most `limit`. `notify` hears, once, the first
/// missing node when the wait starts. Returns whether they all exist; the caller then opens the
/// device as usual, so a node that never came gives the same error as without a wait.
pub fn wait_for_nodes(
    nodes: &[&Path],
    limit: Duration,
    clock: &impl Clock,
    exists: impl Fn(&Path) -> bool,
    notify: &mut dyn FnMut(&Path),
) -> bool {
    let start = clock.now();
    let mut told = false;
    loop {
        let Some(missing) = nodes.iter().copied().find(|n| !exists(n)) else {
            return true;
        };
        let waited = clock.now().saturating_sub(start);
        if waited >= limit {
            return false;
        }
        if !told {
            notify(missing);
            told = true;
        }
        clock.sleep(POLL.min(limit - waited));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::fake::FakeClock;
    use std::cell::Cell;

    #[test]
    fn a_node_already_there_is_not_waited_for() {
        let clock = FakeClock::new();
        let mut told = Vec::new();
        let ok = wait_for_nodes(
            &[Path::new("/dev/fb0")],
            Duration::from_secs(5),
            &clock,
            |_| true,
            &mut |p| told.push(p.to_path_buf()),
        );
        assert!(ok && told.is_empty());
        assert_eq!(clock.slept.get(), Duration::ZERO);
    }

    #[test]
    fn a_node_that_appears_ends_the_wait_early() {
        let clock = FakeClock::new();
        let start = clock.now();
        let polls = Cell::new(0);
        let mut told = Vec::new();
        // The gpio chip is there at once; the SPI node after 1.2 s.
        let ok = wait_for_nodes(
            &[Path::new("/dev/gpiochip0"), Path::new("/dev/spidev0.0")],
            Duration::from_secs(5),
            &clock,
            |p| {
                polls.set(polls.get() + 1);
                p == Path::new("/dev/gpiochip0")
                    || clock.now() - start >= Duration::from_millis(1200)
            },
            &mut |p| told.push(p.to_path_buf()),
        );
        assert!(ok);
        assert_eq!(told, vec![Path::new("/dev/spidev0.0").to_path_buf()]);
        assert_eq!(clock.slept.get(), Duration::from_millis(1200));
    }

    #[test]
    fn a_node_that_never_comes_is_given_up_at_the_limit() {
        let clock = FakeClock::new();
        let mut told = 0;
        let ok = wait_for_nodes(
            &[Path::new("/dev/fb0")],
            Duration::from_millis(2050),
            &clock,
            |_| false,
            &mut |_| told += 1,
        );
        assert!(!ok);
        assert_eq!(told, 1);
        assert_eq!(clock.slept.get(), Duration::from_millis(2050));
    }

    #[test]
    fn no_wait_configured_means_one_look() {
        let clock = FakeClock::new();
        let mut told = 0;
        let ok = wait_for_nodes(
            &[Path::new("/dev/fb0")],
            Duration::ZERO,
            &clock,
            |_| false,
            &mut |_| told += 1,
        );
        assert!(!ok);
        assert_eq!((told, clock.slept.get()), (0, Duration::ZERO));
    }
}
