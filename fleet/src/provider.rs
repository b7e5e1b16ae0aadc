//! The simulated provider: one client_id shared by the whole fleet, as a real fleet has.
//!
//! - Token endpoint (refresh and device-code polls) and device authorization endpoint, each
//!   behind a token bucket per client_id (what Okta, Auth0 and API gateways apply). A refresh or
//!   a code request over the limit gets 429 with `Retry-After` = the seconds until the bucket
//!   holds a token again (at least 1); a poll over the limit gets `slow_down` (RFC 8628 §3.5: the
//!   protocol's own "poll less often").
//! - An outage: every request in [start, end) gets this status and `Retry-After`.
//! - The device flow per RFC 8628: a code lives `code_lifetime` with a 5 s interval; a poll
//!   sooner than the code's interval after the previous one gets `slow_down` and the code's
//!   interval grows by 5 s (the server remembers, as GitHub's does); the person approves at a
//!   time the scenario drew, whatever code is on screen then.
//!
//! Refused requests do not drain a bucket. Every request is recorded in a
//! [`Recorder`](crate::metrics::Recorder) together with whether it came before the Retry-After
//! its sender had been given ran out.

use crate::metrics::{Answer, Recorder};
use std::time::Duration;

/// A token bucket's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_sec: f64,
    /// Requests that can come at once after a quiet spell.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub start: Duration,
    pub end: Duration,
    pub status: u16,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub token_limit: Limit,
    /// From this time on, the token endpoint's limit is this one instead.
    pub token_limit_from: Option<(Duration, Limit)>,
    /// From this time on, `token_limit` again (the lower limit was lifted).
    pub token_limit_until: Option<Duration>,
    pub code_limit: Limit,
    pub outage: Option<Outage>,
    pub token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub code_interval: Duration,
}

#[derive(Debug, Clone)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    at: Duration,
}

impl Bucket {
    fn new(limit: Limit) -> Bucket {
        Bucket {
            limit,
            tokens: limit.burst,
            at: Duration::ZERO,
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Duration) -> Result<(), Duration> {
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.limit.per_sec).min(self.limit.burst);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.limit.per_sec,
            ))
        }
    }

    fn set_limit(&mut self, limit: Limit) {
        self.limit = limit;
        self.tokens = self.tokens.min(limit.burst);
    }
}

/// A refused request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Tokens { lifetime: Duration },
    Refused(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRequest {
    Issued {
        code: u64,
        expires_in: Duration,
        interval: Duration,
    },
    Refused(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Pending,
    SlowDown,
    Expired,
    Tokens { lifetime: Duration },
    Refused(Refusal),
}

#[derive(Debug, Clone)]
struct Code {
    id: u64,
    expires: Duration,
    interval: Duration,
    last: Duration,
}

pub struct Provider {
    spec: Spec,
    token_bucket: Bucket,
    code_bucket: Bucket,
    /// Per device: the end of the last Retry-After it was given.
    not_before: Vec<Duration>,
    /// Per device: its live code.
    codes: Vec<Option<Code>>,
    next_code: u64,
    /// Per device: when the person approves (device flow); `None`: never.
    approve_at: Vec<Option<Duration>>,
    pub rec: Recorder,
}

impl Provider {
    pub fn new(spec: Spec, devices: usize, run: Duration) -> Provider {
        Provider {
            token_bucket: Bucket::new(spec.token_limit),
            code_bucket: Bucket::new(spec.code_limit),
            spec,
            not_before: vec![Duration::ZERO; devices],
            codes: vec![None; devices],
            next_code: 1,
            approve_at: vec![None; devices],
            rec: Recorder::new(devices, run),
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn set_approval(&mut self, device: usize, at: Option<Duration>) {
        if let Some(a) = self.approve_at.get_mut(device) {
            *a = at;
        }
    }

    fn early(&self, device: usize, now: Duration) -> bool {
        self.not_before.get(device).is_some_and(|&nb| now < nb)
    }

    fn tick_limit(&mut self, now: Duration) {
        if let Some((from, lower)) = self.spec.token_limit_from {
            let lifted = self.spec.token_limit_until.is_some_and(|u| now >= u);
            let limit = if now >= from && !lifted {
                lower
            } else {
                self.spec.token_limit
            };
            if self.token_bucket.limit != limit {
                self.token_bucket.set_limit(limit);
            }
        }
    }

    /// The outage's answer, if one is going on.
    fn outage(&self, now: Duration) -> Option<Refusal> {
        self.spec
            .outage
            .filter(|o| now >= o.start && now < o.end)
            .map(|o| Refusal {
                status: o.status,
                retry_after: o.retry_after,
            })
    }

    /// Records a refusal and remembers its Retry-After. A refused refresh starts a wait (a
    /// pairing's wait starts when the person approves, see `scenario`).
    fn refuse(&mut self, device: usize, now: Duration, r: Refusal, early: bool) -> Refusal {
        self.rec.request(device, now, Answer::Refused, early);
        if let Some(ra) = r.retry_after {
            self.rec.retry_after_handed_out(now, now + ra);
            if let Some(nb) = self.not_before.get_mut(device) {
                *nb = (*nb).max(now + ra);
            }
        }
        r
    }

    fn over_limit(wait: Duration) -> Refusal {
        Refusal {
            status: 429,
            // Delta-seconds, rounded up (RFC 9110 §10.2.3).
            retry_after: Some(Duration::from_secs(
                wait.as_secs_f64().ceil().max(1.0) as u64
            )),
        }
    }

    /// A refresh (RFC 6749 §6).
    pub fn refresh(&mut self, device: usize, now: Duration) -> Refresh {
        self.tick_limit(now);
        let early = self.early(device, now);
        let refusal = self
            .outage(now)
            .or_else(|| self.token_bucket.take(now).err().map(Self::over_limit));
        if let Some(r) = refusal {
            self.rec.waiting_from(device, now);
            return Refresh::Refused(self.refuse(device, now, r, early));
        }
        self.rec.request(device, now, Answer::Useful, early);
        self.rec.served(device, now);
        let lifetime = self.spec.token_lifetime;
        self.rec.token_issued(device, now, lifetime);
        Refresh::Tokens { lifetime }
    }

    /// A device authorization request (RFC 8628 §3.1).
    pub fn request_code(&mut self, device: usize, now: Duration) -> CodeRequest {
        let early = self.early(device, now);
        if let Some(r) = self.outage(now) {
            return CodeRequest::Refused(self.refuse(device, now, r, early));
        }
        if let Err(wait) = self.code_bucket.take(now) {
            return CodeRequest::Refused(self.refuse(device, now, Self::over_limit(wait), early));
        }
        self.rec.request(device, now, Answer::Useful, early);
        let id = self.next_code;
        self.next_code += 1;
        let code = Code {
            id,
            expires: now + self.spec.code_lifetime,
            interval: self.spec.code_interval,
            last: now,
        };
        if let Some(slot) = self.codes.get_mut(device) {
            *slot = Some(code);
        }
        CodeRequest::Issued {
            code: id,
            expires_in: self.spec.code_lifetime,
            interval: self.spec.code_interval,
        }
    }

    /// A device-code poll (RFC 8628 §3.4, §3.5).
    pub fn poll(&mut self, device: usize, code: u64, now: Duration) -> Poll {
        self.tick_limit(now);
        let early = self.early(device, now);
        if let Some(r) = self.outage(now) {
            return Poll::Refused(self.refuse(device, now, r, early));
        }
        let approve_at = self.approve_at.get(device).copied().flatten();
        let Some(live) = self
            .codes
            .get_mut(device)
            .and_then(Option::as_mut)
            .filter(|c| c.id == code)
        else {
            // Only a device's latest code is ever polled; an older one counts as expired.
            self.rec.request(device, now, Answer::Refused, early);
            return Poll::Expired;
        };
        if now >= live.expires {
            self.rec.request(device, now, Answer::Useful, early);
            return Poll::Expired;
        }
        let too_soon = now < live.last + live.interval;
        live.last = now;
        if too_soon || self.token_bucket.take(now).is_err() {
            // §3.5: slow_down, and "the interval MUST be increased by 5 seconds for this and
            // all subsequent requests" — the server holds the client to it.
            live.interval += Duration::from_secs(5);
            self.rec.request(device, now, Answer::Refused, early);
            return Poll::SlowDown;
        }
        self.rec.request(device, now, Answer::Useful, early);
        if approve_at.is_some_and(|a| now >= a) {
            if let Some(slot) = self.codes.get_mut(device) {
                *slot = None;
            }
            self.rec.served(device, now);
            self.rec.pairing(now, -1);
            let lifetime = self.spec.token_lifetime;
            self.rec.token_issued(device, now, lifetime);
            return Poll::Tokens { lifetime };
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn spec() -> Spec {
        Spec {
            token_limit: Limit {
                per_sec: 1.0,
                burst: 2.0,
            },
            token_limit_from: None,
            token_limit_until: None,
            code_limit: Limit {
                per_sec: 1.0,
                burst: 1.0,
            },
            outage: None,
            token_lifetime: S(3600),
            code_lifetime: S(900),
            code_interval: S(5),
        }
    }

    #[test]
    fn the_bucket_refuses_with_the_time_until_a_token() {
        let mut p = Provider::new(spec(), 3, S(100));
        assert!(matches!(p.refresh(0, S(10)), Refresh::Tokens { .. }));
        assert!(matches!(p.refresh(1, S(10)), Refresh::Tokens { .. }));
        assert_eq!(
            p.refresh(2, S(10)),
            Refresh::Refused(Refusal {
                status: 429,
                retry_after: Some(S(1))
            })
        );
        // Asking again before the Retry-After ran out is counted.
        assert!(matches!(p.refresh(2, S(10)), Refresh::Refused(_)));
        assert_eq!(Recorder::sum(&p.rec.early, S(0), S(100)), 1);
        assert!(matches!(p.refresh(2, S(11)), Refresh::Tokens { .. }));
        assert_eq!(p.rec.episodes.len(), 1);
        assert_eq!(p.rec.episodes[0].since, S(10));
        assert_eq!(p.rec.episodes[0].served, S(11));
    }

    #[test]
    fn a_lower_limit_applies_from_its_start_until_it_is_lifted() {
        let mut s = spec();
        s.token_limit = Limit {
            per_sec: 10.0,
            burst: 10.0,
        };
        let lower = Limit {
            per_sec: 0.1,
            burst: 1.0,
        };
        s.token_limit_from = Some((S(100), lower));
        s.token_limit_until = Some(S(200));
        let mut p = Provider::new(s, 1, S(300));
        for t in 0..5 {
            assert!(matches!(p.refresh(0, S(10 + t)), Refresh::Tokens { .. }));
        }
        assert!(matches!(p.refresh(0, S(100)), Refresh::Tokens { .. }));
        // One every ten seconds now: a second later a tenth of a token is back, 9 s to go.
        assert_eq!(
            p.refresh(0, S(101)),
            Refresh::Refused(Refusal {
                status: 429,
                retry_after: Some(S(9))
            })
        );
        assert!(matches!(p.refresh(0, S(150)), Refresh::Tokens { .. }));
        assert!(matches!(p.refresh(0, S(151)), Refresh::Refused(_)));
        // Lifted: ten a second again.
        for t in 0..5 {
            assert!(matches!(p.refresh(0, S(210 + t)), Refresh::Tokens { .. }));
        }
    }

    #[test]
    fn an_outage_refuses_everything_with_its_retry_after() {
        let mut s = spec();
        s.outage = Some(Outage {
            start: S(10),
            end: S(20),
            status: 503,
            retry_after: Some(S(600)),
        });
        let mut p = Provider::new(s, 1, S(2000));
        assert!(matches!(p.refresh(0, S(9)), Refresh::Tokens { .. }));
        assert!(matches!(p.refresh(0, S(10)), Refresh::Refused(r) if r.status == 503));
        assert!(matches!(p.request_code(0, S(19)), CodeRequest::Refused(_)));
        assert_eq!(Recorder::sum(&p.rec.early, S(0), S(2000)), 1);
        assert!(matches!(p.refresh(0, S(611)), Refresh::Tokens { .. }));
    }

    #[test]
    fn early_polls_get_slow_down_and_a_longer_interval() {
        let mut p = Provider::new(spec(), 1, S(2000));
        let CodeRequest::Issued { code, .. } = p.request_code(0, S(0)) else {
            panic!()
        };
        assert_eq!(p.poll(0, code, S(3)), Poll::SlowDown); // interval now 10 s
        assert_eq!(p.poll(0, code, S(9)), Poll::SlowDown); // 6 s after: too soon; now 15 s
        assert_eq!(p.poll(0, code, S(24)), Poll::Pending);
        p.set_approval(0, Some(S(30)));
        assert_eq!(p.poll(0, code, S(39)), Poll::Tokens { lifetime: S(3600) });
        assert_eq!(p.poll(0, code, S(60)), Poll::Expired); // redeemed: gone
        let CodeRequest::Issued { code, .. } = p.request_code(0, S(100)) else {
            panic!()
        };
        assert_eq!(p.poll(0, code, S(1000)), Poll::Expired);
    }
}
