//! Time, as devauth needs it: a monotonic clock that keeps counting through suspend, a way to
//! sleep on it, and the (untrusted) wall clock.
//!
//! Everything that measures an interval — the poll interval, a device code's lifetime, backoff,
//! a token's lifetime inside a running process — uses [`Clock::now`], which is CLOCK_BOOTTIME on
//! Linux: std's `Instant` is CLOCK_MONOTONIC and stops while the box is suspended, so a set-top
//! box woken after an hour would think its 15-minute code is still alive. The wall clock is only
//! used to carry expiry across restarts, and is treated as possibly wrong (no RTC: 1970 at boot).
//!
//! Tests use a fake clock whose `sleep` just advances `now`; this module owns only the real one.

use std::time::{Duration, SystemTime};

/// Wall-clock seconds before which the clock is certainly unset (2024-01-01T00:00:00Z, before
/// this code existed): a device without an RTC boots at 1970, every certificate then looks "not
/// yet valid" and any expiry computed from that clock is meaningless.
pub const MIN_PLAUSIBLE_UNIX: i64 = 1_704_067_200;

/// A point on the monotonic (boottime) clock, as time since boot.
pub type Instant = Duration;

pub trait Clock {
    /// Monotonic time that counts through suspend (CLOCK_BOOTTIME).
    fn now(&self) -> Instant;
    /// Block for `d` (real clock) or advance time (test clock).
    fn sleep(&self, d: Duration);
    /// Wall-clock time; may be wildly wrong on devices without an RTC.
    fn wall(&self) -> SystemTime;
}

/// The real clock of a Linux device.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        boottime()
    }

    fn sleep(&self, d: Duration) {
        // std's sleep uses CLOCK_MONOTONIC-relative nanosleep; across a suspend it may wake late,
        // which is harmless: every decision is re-taken against `now()` afterwards.
        std::thread::sleep(d);
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// CLOCK_BOOTTIME as a Duration since boot. Falls back to CLOCK_MONOTONIC where BOOTTIME is
/// missing (very old kernels), which only loses the suspend time.
pub fn boottime() -> Duration {
    read_clock(libc::CLOCK_BOOTTIME)
        .or_else(|| read_clock(libc::CLOCK_MONOTONIC))
        .unwrap_or_default()
}

fn read_clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 || ts.tv_nsec < 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Whether the kernel believes the wall clock is synchronised (NTP/PTP), from adjtimex(2).
/// `None` when the kernel will not say (e.g. a seccomp filter), so callers fall back to a
/// plausibility check of the date itself.
pub fn wall_clock_synced() -> Option<bool> {
    // SAFETY: a zeroed timex with modes = 0 is a read-only query.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

/// The identity of the current boot; two readings with the same id share one CLOCK_BOOTTIME.
pub fn boot_id() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = raw.trim();
    (id.len() <= 64 && !id.is_empty()).then(|| id.to_string())
}

/// Seconds since the Unix epoch for `t`, negative before 1970, saturating far out.
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A clock for tests: `sleep` advances time instantly, and the wall clock can be set.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    pub struct FakeClock {
        pub now: Cell<Duration>,
        pub wall: Cell<SystemTime>,
        pub slept: Cell<Duration>,
    }

    impl FakeClock {
        pub fn new() -> Self {
            FakeClock {
                now: Cell::new(Duration::from_secs(1000)),
                wall: Cell::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                slept: Cell::new(Duration::ZERO),
            }
        }
        pub fn advance(&self, d: Duration) {
            self.now.set(self.now.get() + d);
            self.wall.set(self.wall.get() + d);
        }
    }

    impl Default for FakeClock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.now.get()
        }
        fn sleep(&self, d: Duration) {
            self.slept.set(self.slept.get() + d);
            self.advance(d);
        }
        fn wall(&self) -> SystemTime {
            self.wall.get()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_moves_forward() {
        let a = boottime();
        std::thread::sleep(Duration::from_millis(2));
        assert!(boottime() > a);
    }

    #[test]
    fn unix_secs_handles_both_sides_of_the_epoch() {
        assert_eq!(
            unix_secs(SystemTime::UNIX_EPOCH + Duration::from_secs(5)),
            5
        );
        assert_eq!(
            unix_secs(SystemTime::UNIX_EPOCH - Duration::from_secs(5)),
            -5
        );
    }
}
