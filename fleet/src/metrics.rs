//! What a simulated fleet did to its provider, second by second: requests sent, answered
//! usefully, refused, and sent before a Retry-After the device had been given ran out; plus, per
//! device, the stretches it spent waiting to be served and without a valid access token.
//!
//! The provider ([`crate::provider`]) records into it; [`crate::goals`] reads it.

use std::time::Duration;

/// One answer class, as the provider gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// What was asked for: tokens, a device code, or a poll answered `authorization_pending`
    /// (the protocol's own pace, not a refusal).
    Useful,
    /// 429, 503 or `slow_down`: the request did nothing but load the provider.
    Refused,
}

/// A device waited from `since` (it first asked, or first needed a token) until `served`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub device: usize,
    pub since: Duration,
    pub served: Duration,
}

/// Per-second counters for one run, plus per-device bookkeeping.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub sent: Vec<u32>,
    pub useful: Vec<u32>,
    pub refused: Vec<u32>,
    /// Refused requests whose sender had been refused before and got nothing useful since: the
    /// retry policy sent them into a provider it knew was refusing. (The first refusal is the
    /// price of finding out, which no client can avoid.)
    pub wasted: Vec<u32>,
    /// Per device: refusals since its last useful answer.
    refused_in_a_row: Vec<u32>,
    /// The most refusals in a row any device had.
    pub most_refused_in_a_row: u32,
    /// Requests sent while the sender's last Retry-After had not run out.
    pub early: Vec<u32>,
    /// Finished waits (first refusal, or the scenario's "needs a token from", to success).
    pub episodes: Vec<Episode>,
    /// Per device: waiting since (an open episode).
    waiting: Vec<Option<Duration>>,
    /// Per device: when its current access token expires (`None`: it never had one).
    expires: Vec<Option<Duration>>,
    /// Per device: seconds without a valid token, counted from `validity_from`.
    pub without_token: Vec<f64>,
    validity_from: Duration,
    /// Devices that lost their grant (the agent went back to pairing) or gave up.
    pub lost: u32,
    /// Per second: the latest end of a Retry-After handed out in that second.
    ra_ends: Vec<Duration>,
    /// Per second: devices that began (+1) or finished (−1) pairing then.
    pairing_delta: Vec<i32>,
}

impl Recorder {
    pub fn new(devices: usize, run: Duration) -> Recorder {
        let secs = run.as_secs() as usize + 1;
        Recorder {
            sent: vec![0; secs],
            useful: vec![0; secs],
            refused: vec![0; secs],
            wasted: vec![0; secs],
            refused_in_a_row: vec![0; devices],
            most_refused_in_a_row: 0,
            early: vec![0; secs],
            episodes: Vec::new(),
            waiting: vec![None; devices],
            expires: vec![None; devices],
            without_token: vec![0.0; devices],
            validity_from: Duration::ZERO,
            lost: 0,
            ra_ends: vec![Duration::ZERO; secs],
            pairing_delta: vec![0; secs],
        }
    }

    fn slot(v: &mut [u32], at: Duration) {
        let i = (at.as_secs() as usize).min(v.len().saturating_sub(1));
        if let Some(x) = v.get_mut(i) {
            *x += 1;
        }
    }

    pub fn request(&mut self, device: usize, at: Duration, answer: Answer, early: bool) {
        Self::slot(&mut self.sent, at);
        let mut refused_before = false;
        if let Some(n) = self.refused_in_a_row.get_mut(device) {
            refused_before = *n > 0;
            *n = match answer {
                Answer::Refused => *n + 1,
                Answer::Useful => 0,
            };
            self.most_refused_in_a_row = self.most_refused_in_a_row.max(*n);
        }
        match answer {
            Answer::Useful => Self::slot(&mut self.useful, at),
            Answer::Refused => {
                Self::slot(&mut self.refused, at);
                if refused_before {
                    Self::slot(&mut self.wasted, at);
                }
            }
        }
        if early {
            Self::slot(&mut self.early, at);
        }
    }

    pub fn retry_after_handed_out(&mut self, at: Duration, until: Duration) {
        let i = (at.as_secs() as usize).min(self.ra_ends.len().saturating_sub(1));
        if let Some(e) = self.ra_ends.get_mut(i) {
            *e = (*e).max(until);
        }
    }

    /// The latest end of a Retry-After handed out in [from, to).
    pub fn retry_after_ends(&self, from: Duration, to: Duration) -> Option<Duration> {
        let a = (from.as_secs() as usize).min(self.ra_ends.len());
        let b = (to.as_secs() as usize).min(self.ra_ends.len()).max(a);
        self.ra_ends
            .get(a..b)
            .and_then(|s| s.iter().copied().max())
            .filter(|e| !e.is_zero())
    }

    /// A device began (`+1`) or finished (`−1`) pairing at `at`.
    pub fn pairing(&mut self, at: Duration, delta: i32) {
        let i = (at.as_secs() as usize).min(self.pairing_delta.len().saturating_sub(1));
        if let Some(d) = self.pairing_delta.get_mut(i) {
            *d += delta;
        }
    }

    /// Per second: how many devices were pairing.
    pub fn pairing_devices(&self) -> Vec<u32> {
        let mut n = 0i64;
        self.pairing_delta
            .iter()
            .map(|&d| {
                n += i64::from(d);
                n.max(0) as u32
            })
            .collect()
    }

    /// The device needs something from `at` on (if it is not waiting already).
    pub fn waiting_from(&mut self, device: usize, at: Duration) {
        if let Some(w) = self.waiting.get_mut(device) {
            w.get_or_insert(at);
        }
    }

    /// The device got what it waited for.
    pub fn served(&mut self, device: usize, at: Duration) {
        if let Some(since) = self.waiting.get_mut(device).and_then(Option::take) {
            self.episodes.push(Episode {
                device,
                since,
                served: at,
            });
        }
    }

    /// Devices still waiting at the end, with when they started.
    pub fn still_waiting(&self) -> Vec<(usize, Duration)> {
        self.waiting
            .iter()
            .enumerate()
            .filter_map(|(d, w)| w.map(|s| (d, s)))
            .collect()
    }

    /// From `from` on, time without a valid token is counted per device.
    pub fn count_validity_from(&mut self, from: Duration) {
        self.validity_from = from;
    }

    /// A token valid for `lifetime` was issued to `device` at `at`.
    pub fn token_issued(&mut self, device: usize, at: Duration, lifetime: Duration) {
        if let (Some(e), Some(w)) = (
            self.expires.get_mut(device),
            self.without_token.get_mut(device),
        ) {
            let gap_from = e.unwrap_or(Duration::ZERO).max(self.validity_from);
            if at > gap_from {
                *w += (at - gap_from).as_secs_f64();
            }
            *e = Some(at + lifetime);
        }
    }

    /// Closes the validity count at the end of the run.
    pub fn finish(&mut self, end: Duration) {
        for (e, w) in self.expires.iter().zip(self.without_token.iter_mut()) {
            let gap_from = e.unwrap_or(Duration::ZERO).max(self.validity_from);
            if end > gap_from {
                *w += (end - gap_from).as_secs_f64();
            }
        }
    }

    /// Sums of a per-second series over [from, to).
    pub fn sum(v: &[u32], from: Duration, to: Duration) -> u64 {
        let a = (from.as_secs() as usize).min(v.len());
        let b = (to.as_secs() as usize).min(v.len()).max(a);
        v.get(a..b)
            .map(|s| s.iter().map(|&x| u64::from(x)).sum())
            .unwrap_or(0)
    }

    /// Requests per second averaged over bins of `bin`, from `from` to `to`: (bin start, rate).
    pub fn rate(v: &[u32], from: Duration, to: Duration, bin: Duration) -> Vec<(Duration, f64)> {
        let step = bin.as_secs().max(1);
        let mut out = Vec::new();
        let mut t = from.as_secs();
        while t < to.as_secs() {
            let end = (t + step).min(to.as_secs());
            let n = Self::sum(v, Duration::from_secs(t), Duration::from_secs(end));
            out.push((Duration::from_secs(t), n as f64 / (end - t) as f64));
            t = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rates_are_averaged_per_bin() {
        let mut r = Recorder::new(1, S(100));
        for s in 0..10 {
            r.request(0, S(s), Answer::Useful, false);
        }
        r.request(0, S(15), Answer::Refused, true);
        let rate = Recorder::rate(&r.sent, S(0), S(20), S(10));
        assert_eq!(rate, vec![(S(0), 1.0), (S(10), 0.1)]);
        assert_eq!(Recorder::sum(&r.refused, S(0), S(100)), 1);
        assert_eq!(Recorder::sum(&r.early, S(0), S(100)), 1);
    }

    #[test]
    fn a_refusal_is_wasted_when_the_last_answer_was_a_refusal_too() {
        let mut r = Recorder::new(2, S(100));
        r.request(0, S(1), Answer::Refused, false); // finding out
        r.request(1, S(1), Answer::Refused, false); // another device finding out
        r.request(0, S(2), Answer::Refused, false); // wasted
        r.request(0, S(3), Answer::Refused, false); // wasted
        r.request(0, S(4), Answer::Useful, false);
        r.request(0, S(5), Answer::Refused, false); // a new finding out
        assert_eq!(Recorder::sum(&r.refused, S(0), S(100)), 5);
        assert_eq!(Recorder::sum(&r.wasted, S(0), S(100)), 2);
        assert_eq!(r.most_refused_in_a_row, 3);
    }

    #[test]
    fn waits_are_episodes_from_the_first_need() {
        let mut r = Recorder::new(2, S(100));
        r.waiting_from(1, S(5));
        r.waiting_from(1, S(9)); // already waiting: the first counts
        r.served(1, S(20));
        r.served(0, S(30)); // was not waiting: nothing
        assert_eq!(
            r.episodes,
            vec![Episode {
                device: 1,
                since: S(5),
                served: S(20)
            }]
        );
        assert!(r.still_waiting().is_empty());
    }

    #[test]
    fn time_without_a_token_counts_gaps_after_the_start_of_counting() {
        let mut r = Recorder::new(1, S(1000));
        r.count_validity_from(S(100));
        r.token_issued(0, S(50), S(100)); // before counting; valid until 150
        r.token_issued(0, S(170), S(100)); // 20 s without
        r.finish(S(300)); // valid until 270: 30 s without
        assert_eq!(r.without_token[0], 50.0);
    }
}
