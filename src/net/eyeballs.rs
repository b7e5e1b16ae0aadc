//! Happy Eyeballs (RFC 8305) as pure rules: in which order a host's addresses are tried and
//! when the next attempt starts, so that a name with AAAA and A records still connects quickly
//! when one address family is broken (a home router with dead IPv6 is the common case).
//!
//! Owns the decisions only — no sockets, no clock: the caller (`net::tcp`) reports the time
//! since the race began and the attempts that failed, and does what [`Race::step`] says.
//! Name resolution is not raced (RFC 8305 §3): devauth asks `getaddrinfo` once, which queries
//! both families and sorts the answers by RFC 6724.
//!
//! ```text
//!   addresses ──interleave──▶ [v6₁ v4₁ v6₂ v4₂ …]
//!   t=0      start v6₁
//!   t=250ms  v6₁ not connected yet ─▶ start v4₁   (v6₁ keeps running)
//!   v4₁ fails at once (refused)     ─▶ start v6₂ now, no waiting
//!   first attempt to connect wins; the others are closed
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// RFC 8305 §5 "Connection Attempt Delay": how long an attempt runs alone before the next
/// address is tried too. 250 ms is the RFC's recommended value (its floor is 100 ms).
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// RFC 8305 §4: the addresses with the two families interleaved, starting with the family of
/// the resolver's first answer (the one RFC 6724 sorting preferred), each family in its own
/// order ("First Address Family Count" of 1).
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let preferred_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == preferred_v6);
    let mut out = Vec::with_capacity(addrs.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start a connection attempt to this address (the others keep running).
    Start(SocketAddr),
    /// Wait for an attempt to end, but no longer than this: then ask again.
    WaitAtMost(Duration),
    /// Every address has been tried: wait for a running attempt to end (or the deadline).
    WaitForAny,
    /// Every attempt failed.
    Exhausted,
}

/// The state of one race: which addresses were started and how many are still running.
#[derive(Debug)]
pub struct Race {
    order: Vec<SocketAddr>,
    next: usize,
    running: usize,
    last_start: Duration,
    delay: Duration,
}

impl Race {
    /// A race over `addrs` (already in the resolver's order; interleaved here).
    pub fn new(addrs: &[SocketAddr], delay: Duration) -> Race {
        Race {
            order: interleave(addrs),
            next: 0,
            running: 0,
            last_start: Duration::ZERO,
            delay,
        }
    }

    /// The next step, `elapsed` after the race began.
    pub fn step(&mut self, elapsed: Duration) -> Step {
        if let Some(&addr) = self.order.get(self.next) {
            // RFC 8305 §5: the next attempt starts when the delay has passed since the last
            // one started, or at once when no attempt is running (the last one failed).
            let due = self.last_start.saturating_add(self.delay);
            if self.running == 0 || elapsed >= due {
                self.next += 1;
                self.running += 1;
                self.last_start = elapsed;
                return Step::Start(addr);
            }
            return Step::WaitAtMost(due.saturating_sub(elapsed));
        }
        if self.running > 0 {
            Step::WaitForAny
        } else {
            Step::Exhausted
        }
    }

    /// A started attempt failed (refused, unreachable...).
    pub fn failed(&mut self) {
        self.running = self.running.saturating_sub(1);
    }
}

/// How one address fared, for the log line and the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub addr: SocketAddr,
    /// `None`: still no answer when the race ended.
    pub failure: Option<String>,
    /// From the start of its attempt to its end (or to the end of the race).
    pub took: Duration,
}

/// `"[2001:db8::1]:443 no answer after 250 ms; 192.0.2.1:443 connection refused"`.
pub fn describe(tried: &[Tried]) -> String {
    let mut out = String::new();
    for (i, t) in tried.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let ms = t.took.as_millis();
        let _ = match &t.failure {
            None => write!(out, "{} no answer after {ms} ms", t.addr),
            Some(why) => write!(out, "{} {why} after {ms} ms", t.addr),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn families_are_interleaved_starting_with_the_resolvers_first() {
        let v6 = [a("[2001:db8::1]:443"), a("[2001:db8::2]:443")];
        let v4 = [a("192.0.2.1:443"), a("192.0.2.2:443"), a("192.0.2.3:443")];
        assert_eq!(
            interleave(&[v6[0], v6[1], v4[0], v4[1], v4[2]]),
            [v6[0], v4[0], v6[1], v4[1], v4[2]]
        );
        assert_eq!(
            interleave(&[v4[0], v4[1], v6[0], v4[2], v6[1]]),
            [v4[0], v6[0], v4[1], v6[1], v4[2]]
        );
        assert_eq!(interleave(&v4), v4);
        assert!(interleave(&[]).is_empty());
    }

    #[test]
    fn a_silent_address_gets_company_after_the_delay() {
        let v6 = a("[2001:db8::1]:443");
        let v4 = a("192.0.2.1:443");
        let mut race = Race::new(&[v6, v4], ATTEMPT_DELAY);
        assert_eq!(race.step(MS(0)), Step::Start(v6));
        assert_eq!(race.step(MS(0)), Step::WaitAtMost(MS(250)));
        assert_eq!(race.step(MS(100)), Step::WaitAtMost(MS(150)));
        assert_eq!(race.step(MS(250)), Step::Start(v4));
        // Both running, nothing left to start: wait for either.
        assert_eq!(race.step(MS(260)), Step::WaitForAny);
        race.failed();
        assert_eq!(race.step(MS(300)), Step::WaitForAny);
        race.failed();
        assert_eq!(race.step(MS(400)), Step::Exhausted);
    }

    #[test]
    fn a_refused_attempt_starts_the_next_one_at_once() {
        let addrs = [
            a("[2001:db8::1]:443"),
            a("[2001:db8::2]:443"),
            a("192.0.2.1:443"),
        ];
        let mut race = Race::new(&addrs, ATTEMPT_DELAY);
        assert_eq!(race.step(MS(0)), Step::Start(addrs[0]));
        race.failed();
        // Interleaved: the IPv4 address comes second.
        assert_eq!(race.step(MS(3)), Step::Start(addrs[2]));
        assert_eq!(race.step(MS(4)), Step::WaitAtMost(MS(249)));
        race.failed();
        assert_eq!(race.step(MS(5)), Step::Start(addrs[1]));
        race.failed();
        assert_eq!(race.step(MS(6)), Step::Exhausted);
    }

    #[test]
    fn no_address_is_exhausted_at_once() {
        assert_eq!(Race::new(&[], ATTEMPT_DELAY).step(MS(0)), Step::Exhausted);
    }

    #[test]
    fn the_description_names_every_address_and_what_happened() {
        let d = describe(&[
            Tried {
                addr: a("[2001:db8::1]:443"),
                failure: None,
                took: MS(251),
            },
            Tried {
                addr: a("192.0.2.1:443"),
                failure: Some("connection refused".into()),
                took: MS(1),
            },
        ]);
        assert_eq!(
            d,
            "[2001:db8::1]:443 no answer after 251 ms; 192.0.2.1:443 connection refused after 1 ms"
        );
    }
}
