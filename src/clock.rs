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
        wall_now()
    }
}

/// The wall clock (CLOCK_REALTIME), read through the libc crate rather than `SystemTime::now()`.
/// Why: the std of the 32-bit musl release builds (-Zbuild-std, scripts/cross-env.sh) has a
/// 32-bit `time_t`, so its `SystemTime::now()` fails after 2038-01-19 and std then panics; the
/// libc crate devauth calls is built with musl's 64-bit `time_t` (`--cfg
/// libc_unstable_musl_v1_2`), which links `__clock_gettime64`. Elsewhere it is the same call std
/// makes. A clock that cannot be read reads as 1970, which every caller treats as "not set".
pub fn wall_now() -> SystemTime {
    match read_raw(libc::CLOCK_REALTIME) {
        Some((secs, nanos)) => system_time_at(secs, nanos),
        None => SystemTime::UNIX_EPOCH,
    }
}

/// The SystemTime `secs` seconds plus `nanos` (< 1e9) nanoseconds after (negative: before) the
/// Unix epoch, saturating at the epoch where SystemTime cannot hold it.
pub fn system_time_at(secs: i64, nanos: u32) -> SystemTime {
    let epoch = SystemTime::UNIX_EPOCH;
    let t = if secs >= 0 {
        epoch.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        epoch
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
    };
    t.unwrap_or(epoch)
}

/// A libc timespec holding `d` (seconds saturating at time_t's maximum). Built zeroed, then set:
/// with 64-bit time on 32-bit musl the struct has private padding, so a literal cannot name
/// every field.
pub fn timespec(d: Duration) -> libc::timespec {
    // SAFETY: timespec is plain integers, for which all-zero bytes are a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    // Below 1e9: fits the 32-bit c_long of 32-bit ARM too.
    ts.tv_nsec = d.subsec_nanos() as libc::c_long;
    ts
}

/// CLOCK_BOOTTIME as a Duration since boot. Falls back to CLOCK_MONOTONIC where BOOTTIME is
/// missing (very old kernels), which only loses the suspend time.
pub fn boottime() -> Duration {
    read_clock(libc::CLOCK_BOOTTIME)
        .or_else(|| read_clock(libc::CLOCK_MONOTONIC))
        .unwrap_or_default()
}

fn read_clock(id: libc::clockid_t) -> Option<Duration> {
    let (secs, nanos) = read_raw(id)?;
    Some(Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// clock_gettime(id) as (seconds, nanoseconds below 1e9); None when the call fails.
fn read_raw(id: libc::clockid_t) -> Option<(i64, u32)> {
    let mut ts = timespec(Duration::ZERO);
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    let nanos = u32::try_from(ts.tv_nsec)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    #[allow(clippy::useless_conversion)] // time_t is i32 on 32-bit glibc
    let secs = i64::from(ts.tv_sec);
    (rc == 0).then_some((secs, nanos))
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

    #[test]
    fn system_time_at_holds_dates_past_2038_and_before_1970() {
        // 2039-09-19: past the signed 32-bit time_t limit (2038-01-19).
        let t = system_time_at(2_200_000_000, 7);
        assert_eq!(unix_secs(t), 2_200_000_000);
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since.subsec_nanos(), 7);
        assert_eq!(unix_secs(system_time_at(-5, 0)), -5);
        // -5 s + 0.5 s = 4.5 s before the epoch (whole seconds toward zero).
        assert_eq!(unix_secs(system_time_at(-5, 500_000_000)), -4);
    }

    #[test]
    fn timespec_carries_seconds_and_nanos_and_saturates() {
        let ts = timespec(Duration::new(3, 500_000_000));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (3, 500_000_000));
        let ts = timespec(Duration::MAX);
        assert_eq!(ts.tv_sec, libc::time_t::MAX);
        assert_eq!(ts.tv_nsec, 999_999_999);
    }

    #[test]
    fn wall_now_agrees_with_std() {
        let ours = unix_secs(wall_now());
        let std_now = unix_secs(SystemTime::now());
        assert!(
            (ours - std_now).abs() <= 2,
            "wall_now {ours}, SystemTime::now {std_now}"
        );
    }
}
