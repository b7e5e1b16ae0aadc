//! When tokens expire, on two clocks: boottime for this boot (`TimeNow`) and the wall clock
//! across reboots, with the skew rule that decides which one to trust ([`Expiry`]).

use super::*;

/// When an access token was obtained and for how long it was granted, anchored to both clocks so
/// that the answer survives a wrong wall clock within a boot and a reboot with a good one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// `expires_in` as granted (already clamped by the caller).
    pub lifetime_secs: u64,
    /// Wall-clock seconds when obtained (the server's `Date` header when present).
    pub obtained_unix: i64,
    /// `/proc/sys/kernel/random/boot_id` at that moment.
    pub boot_id: Option<String>,
    /// CLOCK_BOOTTIME at that moment, in milliseconds.
    pub obtained_boottime_ms: u64,
}

/// One reading of everything [`Expiry`] needs to know about "now".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeNow {
    pub wall: SystemTime,
    pub boot_id: Option<String>,
    pub boottime: Duration,
}

impl TimeNow {
    /// Reads the clock and the current boot id.
    pub fn read(clock: &impl Clock) -> TimeNow {
        TimeNow {
            wall: clock.wall(),
            boot_id: clock::boot_id(),
            boottime: clock.now(),
        }
    }

    /// A later reading of the clocks, keeping this reading's boot id (a process never outlives
    /// its boot). Used right after a token answer arrives, where every syscall saved narrows the
    /// window in which a power cut loses a rotated refresh token.
    pub fn again(&self, clock: &impl Clock) -> TimeNow {
        TimeNow {
            wall: clock.wall(),
            boot_id: self.boot_id.clone(),
            boottime: clock.now(),
        }
    }
}

impl Expiry {
    /// A token granted for `lifetime`, issued at `obtained_wall` (the server's `Date` when it sent
    /// one, else the local wall clock) and received at `now`.
    pub fn new(lifetime: Duration, obtained_wall: SystemTime, now: &TimeNow) -> Expiry {
        Expiry {
            lifetime_secs: lifetime.as_secs(),
            obtained_unix: clock::unix_secs(obtained_wall),
            boot_id: now.boot_id.clone(),
            obtained_boottime_ms: duration_ms(now.boottime),
        }
    }

    /// Time left, or `None` when it cannot be trusted (the caller then refreshes now).
    ///
    /// - Same boot (both boot ids known and equal) and boottime has not gone backwards:
    ///   lifetime minus elapsed CLOCK_BOOTTIME, which counts through suspend and ignores the wall
    ///   clock entirely, so a clock set or jumped meanwhile changes nothing.
    /// - Otherwise only the wall clock links the two moments. It is trusted only if both readings
    ///   are plausible (not before [`MIN_PLAUSIBLE_UNIX`]) and now is not earlier than the anchor
    ///   by more than [`WALL_CLOCK_SKEW`]; a clock that went back is `None`, a clock that jumped
    ///   forward makes the token look expired (`Some(0)`), which is the safe direction.
    ///
    /// The result never exceeds the granted lifetime.
    pub fn remaining(&self, now: &TimeNow) -> Option<Duration> {
        let lifetime = Duration::from_secs(self.lifetime_secs);
        let same_boot = matches!((&self.boot_id, &now.boot_id), (Some(a), Some(b)) if a == b);
        let now_ms = duration_ms(now.boottime);
        if same_boot && now_ms >= self.obtained_boottime_ms {
            let elapsed = Duration::from_millis(now_ms.saturating_sub(self.obtained_boottime_ms));
            return Some(lifetime.saturating_sub(elapsed));
        }
        let now_unix = clock::unix_secs(now.wall);
        if now_unix < MIN_PLAUSIBLE_UNIX || self.obtained_unix < MIN_PLAUSIBLE_UNIX {
            return None;
        }
        let elapsed = i128::from(now_unix) - i128::from(self.obtained_unix);
        if elapsed < -i128::from(WALL_CLOCK_SKEW.as_secs()) {
            return None;
        }
        // Within the skew allowance the token counts as just obtained, never as younger.
        let elapsed = u64::try_from(elapsed.max(0)).unwrap_or(u64::MAX);
        Some(Duration::from_secs(
            self.lifetime_secs.saturating_sub(elapsed),
        ))
    }
}

pub(super) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
