//! When the agent renews a token and when it retries a failed renewal: pure functions of the
//! policy, the token, what went wrong and a random fraction the machine draws. No state, no
//! clock: `machine.rs` applies them.
//!
//! - A renewal comes `margin + jitter` before expiry (`margin = min(refresh_margin,
//!   lifetime/2)`). Usually the jitter is up to a fifth of the margin, at most `max_jitter`.
//!   [`Spread::Wide`] (a token obtained when many devices may have obtained theirs: at start,
//!   or after [`REFUSALS_SPREAD`] refusals in a row) draws it
//!   from three quarters of the usable time (`remaining − margin`); [`Spread::Back`] (a token
//!   obtained late, after failures) adds how late, up to a quarter of the usable time.
//! - A retry after the provider was not reached: exponential from `backoff_base`, capped at
//!   `backoff_cap`, with equal jitter. After the provider refused: its `Retry-After` (RFC 9110
//!   §10.2.3; at most `max_retry_after`), then a uniformly random point of one `backoff_cap` (or
//!   half the token's lifetime, if shorter: a fleet of 60-s tokens is sized for 60 times the
//!   load); from the fourth refusal in a row on, in the last tenth of that window: never later, so
//!   that a device learns within one window that the provider serves again.
//!
//! docs/fleet.md shows what these rules do to a provider with 10,000 and 100,000 devices.

use super::Policy;
use std::time::Duration;

/// Why a renewal failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The provider was not reached (network, DNS, TLS, timeout), or the device failed (store,
    /// lock): retrying soon hurts nobody.
    Unreachable,
    /// The provider answered and refused (429, 5xx): it is overloaded or down, and a fleet
    /// retrying fast keeps it so. `retry_after`: its `Retry-After`, if it sent one.
    Refused { retry_after: Option<Duration> },
}

/// The share of a token's usable time a wide renewal spread is drawn from. Three quarters: a
/// fleet that obtained its tokens in one minute then renews over 41 of the next 55 minutes —
/// well under twice its mean rate at the peak — at the cost of renewing once about 20 minutes
/// earlier than it had to.
pub const SPREAD: f64 = 0.75;

/// The most a renewal is moved earlier after failures held the device back, as a share of the
/// token's usable time: enough for an outage of a quarter hour on hour-long tokens, and a fleet
/// kept waiting for hours by a provider's rate limit renews at most a third more often.
pub const MAX_SET_BACK: f64 = 0.25;

/// Refusals in a row whose retry comes anywhere in the window; later ones come in its last
/// [`LATE_SHARE`]. Three: in a herd five times a provider's limit a few devices are refused three
/// or four times before their turn; the uniform draws spread the herd out, and by the fourth
/// refusal the devices' refusal times are spread too.
pub const REFUSALS_SPREAD: u32 = 3;

/// After [`REFUSALS_SPREAD`] refusals in a row the provider is short of capacity for longer than
/// a herd lasts, and every request is most likely refused: a device then asks once per window,
/// as late as it can, in its last tenth. That is half the requests of a uniform draw (a mean
/// of 285 s against 150 s) with the same bound on how long a device can miss that the provider
/// serves again: one window (docs/fleet.md, scenario 3b). A window wider than the cap would ask
/// still less often, but then a device may wait that long after the limit is lifted: with the
/// window doubling up to an hour, the last device of 10,000 was served 3,494 s after the lift.
/// The tenth keeps apart devices that were refused in the same second.
pub const LATE_SHARE: f64 = 0.1;

/// How a renewal is placed before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// The usual jitter.
    Usual,
    /// Anywhere in the last three quarters of the usable time: for a token obtained when many
    /// devices may have obtained theirs (at start with an expired one; after three refusals in a
    /// row, when the provider serves again).
    Wide,
    /// The usual jitter, this much earlier (failures held the device back this long).
    Back(Duration),
}

/// Where a renewal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Renew when this much is left (margin + jitter).
    pub threshold: Duration,
    /// Slack for the renewal's re-check of the stored token, so that the due check and the
    /// store agree.
    pub slack: Duration,
}

/// Failed renewals since the last success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retries {
    /// Failures in a row (any cause).
    pub failures: u32,
    /// Refusals in a row (429, 5xx).
    pub refusals: u32,
    /// When the first of them happened.
    pub since: Option<Duration>,
    /// The next token replaces one found expired at start: spread its renewal wide.
    pub spread_next: bool,
    /// The lifetime of the token held (sets the window after a refusal).
    pub lifetime: Option<Duration>,
}

impl Retries {
    /// One more failure at `now` (boottime); the wait before retrying.
    pub fn failed(&mut self, policy: &Policy, cause: Cause, now: Duration, r: f64) -> Duration {
        let window = self
            .lifetime
            .map_or(policy.backoff_cap, |l| policy.backoff_cap.min(l / 2));
        let delay = retry_delay(policy, cause, self.failures, self.refusals, window, r);
        self.failures = self.failures.saturating_add(1);
        if matches!(cause, Cause::Refused { .. }) {
            self.refusals = self.refusals.saturating_add(1);
        }
        self.since.get_or_insert(now);
        delay
    }

    /// A new token came at `now`: how to place its renewal. Starts over.
    pub fn succeeded(&mut self, now: Duration) -> Spread {
        let spread = match (self.spread_next, self.since) {
            (true, _) => Spread::Wide,
            (false, Some(_)) if self.refusals >= REFUSALS_SPREAD => Spread::Wide,
            // It came when the failures ended, not when it was due: renew it as much earlier.
            (false, Some(since)) => Spread::Back(now.saturating_sub(since)),
            (false, None) => Spread::Usual,
        };
        *self = Retries::default();
        spread
    }
}

/// The renewal of a token with `remaining` left of `lifetime`; `r` is a random fraction in
/// [0, 1).
pub fn renewal(
    policy: &Policy,
    remaining: Duration,
    lifetime: Duration,
    spread: Spread,
    r: f64,
) -> Renewal {
    let margin = policy.refresh_margin.min(lifetime / 2);
    let usable = remaining.saturating_sub(margin);
    let usual = (margin / 5).min(policy.max_jitter);
    let jitter = match spread {
        Spread::Usual => usual.mul_f64(r),
        Spread::Wide => usable.mul_f64(SPREAD * r),
        Spread::Back(late) => usual.mul_f64(r) + late.min(usable.mul_f64(MAX_SET_BACK)),
    };
    Renewal {
        threshold: margin + jitter,
        // The renewal call re-checks the stored token with `threshold + slack`: enough to
        // absorb scheduling delays, small enough that a token someone else just renewed
        // (lifetime left; threshold ≤ margin + ¾ (lifetime − margin) ≤ ⅞ lifetime, as the
        // margin is at most half the lifetime, and slack ≤ lifetime/10) is never renewed twice.
        slack: Duration::from_secs(1).min(lifetime / 10),
    }
}

/// The wait before retrying a renewal that failed for `cause`, after `failures` failures and
/// `refusals` refusals in a row before this one; a refusal's first `window` is at most the
/// backoff cap; `r` is a random fraction in [0, 1).
pub fn retry_delay(
    policy: &Policy,
    cause: Cause,
    failures: u32,
    refusals: u32,
    window: Duration,
    r: f64,
) -> Duration {
    match cause {
        Cause::Unreachable => {
            let step = policy
                .backoff_base
                .saturating_mul(1u32 << failures.min(16))
                .min(policy.backoff_cap);
            // "Equal jitter": half fixed, half random.
            step / 2 + (step / 2).mul_f64(r)
        }
        // RFC 9110 §10.2.3, RFC 6585 §4: not before the server said; then anywhere in the
        // window, so that a herd the provider refused comes back spread over it (devices told
        // "600" in the same second must not all return in the same second); after a few
        // refusals in a row, at its end.
        Cause::Refused { retry_after } => {
            let window = window.min(policy.backoff_cap);
            let wait = if refusals < REFUSALS_SPREAD {
                window.mul_f64(r)
            } else {
                window.mul_f64(1.0 - LATE_SHARE) + window.mul_f64(LATE_SHARE * r)
            };
            retry_after.map_or(Duration::ZERO, |ra| ra.min(policy.max_retry_after)) + wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const ALMOST_ONE: f64 = 0.999_999;

    fn policy() -> Policy {
        Policy::default()
    }

    /// The range a rule gives over every random fraction: (at r = 0, at r → 1).
    fn range(f: impl Fn(f64) -> Duration) -> (Duration, Duration) {
        (f(0.0), f(ALMOST_ONE))
    }

    fn near(d: Duration, want: Duration) -> bool {
        d.abs_diff(want) < Duration::from_millis(10)
    }

    #[test]
    fn usual_renewal_is_the_margin_plus_up_to_a_fifth_of_it_at_most_a_minute() {
        let p = policy();
        let (lo, hi) = range(|r| renewal(&p, S(3600), S(3600), Spread::Usual, r).threshold);
        assert_eq!(lo, S(300));
        assert!(near(hi, S(360)), "{hi:?}");
        // A 60 s token: margin 30 s (half the lifetime), jitter up to 6 s.
        let (lo, hi) = range(|r| renewal(&p, S(60), S(60), Spread::Usual, r).threshold);
        assert_eq!(lo, S(30));
        assert!(near(hi, S(36)), "{hi:?}");
    }

    #[test]
    fn wide_renewal_covers_three_quarters_of_the_usable_time() {
        let p = policy();
        // Usable: 3600 − 300 = 3300 s; renew when 300 s .. 300 + 2475 s are left, i.e. from
        // 825 s to 3300 s after obtaining the token.
        let (lo, hi) = range(|r| renewal(&p, S(3600), S(3600), Spread::Wide, r).threshold);
        assert_eq!(lo, S(300));
        assert!(near(hi, S(2775)), "{hi:?}");
    }

    #[test]
    fn a_late_token_is_renewed_that_much_earlier_up_to_a_quarter_of_its_usable_time() {
        let p = policy();
        let t = |late, r| renewal(&p, S(3600), S(3600), Spread::Back(S(late)), r).threshold;
        assert_eq!(t(600, 0.0), S(900));
        assert!(near(t(600, ALMOST_ONE), S(960)));
        // Held back for hours: at most 3300 / 4 = 825 s earlier.
        assert_eq!(t(20_000, 0.0), S(1125));
    }

    #[test]
    fn no_spread_lets_a_freshly_renewed_token_look_due() {
        // The re-check after a renewal must never find a token someone else just renewed due
        // again: threshold + slack stays below the lifetime for any margin and lifetime.
        for lifetime in [2, 10, 60, 300, 601, 3600, 86_400] {
            for margin in [0, 1, 30, 300, 3600, 86_400] {
                let p = Policy {
                    refresh_margin: S(margin),
                    ..policy()
                };
                for spread in [Spread::Usual, Spread::Wide, Spread::Back(S(1_000_000))] {
                    let l = S(lifetime);
                    let w = renewal(&p, l, l, spread, ALMOST_ONE);
                    assert!(
                        w.threshold + w.slack < l,
                        "lifetime {lifetime}, margin {margin}, {spread:?}: {w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn retries_count_failures_and_refusals_and_say_how_to_place_the_next_renewal() {
        let p = policy();
        let mut r = Retries::default();
        assert_eq!(r.succeeded(S(5)), Spread::Usual);
        r.failed(&p, Cause::Unreachable, S(100), 0.5);
        r.failed(&p, Cause::Refused { retry_after: None }, S(130), 0.5);
        r.failed(&p, Cause::Refused { retry_after: None }, S(400), 0.5);
        assert_eq!((r.failures, r.refusals, r.since), (3, 2, Some(S(100))));
        assert_eq!(r.succeeded(S(700)), Spread::Back(S(600)));
        assert_eq!(r, Retries::default());
        // A token found expired at start: wide, failures or not.
        r.spread_next = true;
        r.failed(&p, Cause::Unreachable, S(800), 0.5);
        assert_eq!(r.succeeded(S(801)), Spread::Wide);
        assert_eq!(r.succeeded(S(900)), Spread::Usual);
    }

    #[test]
    fn unreachable_backs_off_exponentially_with_equal_jitter_up_to_the_cap() {
        let p = policy();
        for failures in 0..12 {
            let (lo, hi) = range(|r| retry_delay(&p, Cause::Unreachable, failures, 0, S(300), r));
            let step = S(1 << failures).min(S(300));
            assert_eq!(lo, step / 2, "after {failures}");
            assert!(hi < step && near(hi, step), "after {failures}: {hi:?}");
        }
    }

    #[test]
    fn a_refusal_waits_out_retry_after_then_a_random_point_of_one_cap() {
        let p = policy();
        let refused = |ra: Option<u64>| Cause::Refused {
            retry_after: ra.map(S),
        };
        // Even the first refusal: the whole cap, not a short first step.
        assert_eq!(
            range(|r| retry_delay(&p, refused(None), 0, 0, S(300), r)).0,
            S(0)
        );
        assert!(near(
            range(|r| retry_delay(&p, refused(None), 0, 0, S(300), r)).1,
            S(300)
        ));
        let (lo, hi) = range(|r| retry_delay(&p, refused(Some(600)), 0, 0, S(300), r));
        assert_eq!(lo, S(600));
        assert!(near(hi, S(900)));
        // A Retry-After of a day is cut to an hour.
        assert_eq!(
            retry_delay(&p, refused(Some(86_400)), 0, 0, S(300), 0.0),
            S(3600)
        );
        // A window wider than the cap is the cap.
        let wide = retry_delay(&p, refused(None), 0, 0, S(9000), ALMOST_ONE);
        assert!(near(wide, S(300)), "{wide:?}");
    }

    #[test]
    fn after_three_refusals_in_a_row_the_retry_comes_in_the_last_tenth_of_the_window() {
        let p = policy();
        let refused = |ra: Option<u64>| Cause::Refused {
            retry_after: ra.map(S),
        };
        for refusals in [0, 1, 2] {
            let (lo, hi) = range(|r| retry_delay(&p, refused(None), refusals, refusals, S(300), r));
            assert_eq!(lo, S(0), "after {refusals}");
            assert!(near(hi, S(300)), "after {refusals}: {hi:?}");
        }
        // However many refusals: 270..300 s after the Retry-After, never later. A device
        // refused for hours learns within one window that the provider serves again.
        for refusals in [3, 4, 10, 100, u32::MAX] {
            let (lo, hi) = range(|r| retry_delay(&p, refused(None), refusals, refusals, S(300), r));
            assert_eq!(lo, S(270), "after {refusals}");
            assert!(hi < S(300) && near(hi, S(300)), "after {refusals}: {hi:?}");
            let (lo, hi) =
                range(|r| retry_delay(&p, refused(Some(5)), refusals, refusals, S(300), r));
            assert_eq!(lo, S(275));
            assert!(near(hi, S(305)), "{hi:?}");
        }
        // Short tokens: the last tenth of their (shorter) window.
        let (lo, hi) = range(|r| retry_delay(&p, refused(None), 5, 5, S(10), r));
        assert_eq!(lo, S(9));
        assert!(near(hi, S(10)), "{hi:?}");
        // Still spread: devices refused at the same moment come back over 30 s, not at once.
        let draws: Vec<Duration> = (0..10)
            .map(|i| retry_delay(&p, refused(None), 4, 4, S(300), f64::from(i) / 10.0))
            .collect();
        assert!(draws.windows(2).all(|w| w[1] - w[0] >= S(2)), "{draws:?}");
    }

    #[test]
    fn retries_count_refusals_in_a_row_so_the_fourth_retry_comes_late() {
        let p = policy();
        let refused = Cause::Refused { retry_after: None };
        let mut r = Retries::default();
        for _ in 0..3 {
            assert!(r.failed(&p, refused, S(0), 0.0) < S(1));
        }
        assert_eq!(r.failed(&p, refused, S(0), 0.0), S(270));
        // A network failure in between does not count as a refusal, nor start them over.
        assert!(r.failed(&p, Cause::Unreachable, S(0), 0.0) < S(300));
        assert_eq!(r.failed(&p, refused, S(0), 0.0), S(270));
        // A token that came after three refusals or more in a row came when the provider
        // served again, to many devices at once: its renewal is spread wide.
        assert_eq!(r.succeeded(S(1000)), Spread::Wide);
        assert_eq!(r.failed(&p, refused, S(2000), 0.0), S(0));
        r.failed(&p, refused, S(2100), 0.0);
        assert_eq!(r.succeeded(S(2300)), Spread::Back(S(300)));
    }

    #[test]
    fn short_tokens_spread_a_refusal_over_half_their_lifetime() {
        let p = policy();
        let refused = Cause::Refused {
            retry_after: Some(S(3)),
        };
        let widest = |lifetime| {
            let mut r = Retries {
                lifetime: Some(S(lifetime)),
                ..Retries::default()
            };
            r.failed(&p, refused, S(0), ALMOST_ONE)
        };
        assert!(near(widest(20), S(13)), "{:?}", widest(20));
        // Hour-long tokens (and tokens that never expire): the cap.
        assert!(near(widest(3600), S(303)));
        assert!(near(
            Retries::default().failed(&p, refused, S(0), ALMOST_ONE),
            S(303)
        ));
    }
}
