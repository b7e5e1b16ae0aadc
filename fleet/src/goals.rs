//! The figures of a run and the goals of issue 22, checked against them.
//!
//! - **Disturbance** and **recovery window**: the disturbance is the scenario's event (power
//!   coming back over a minute, the ten-minute outage, the first minute of the pairing herd); the
//!   recovery window runs from its end until the last device that had to wait was served. The two
//!   steady scenarios (a day; a rate limit that stays) are measured whole.
//! - **Peak / mean**: requests per second in `bin`-long bins (10 s for the recoveries, 60 s for
//!   the long steady runs, whose rate would make 10-s bins mostly noise), the highest bin
//!   against the mean over the recovery window. For the device flow, requests per second per
//!   device still pairing: the fleet's rate falls as people approve, whatever the client does.
//! - **Next round**: the same in 60-s bins over the token lifetime after the recovery: a fleet
//!   that recovered in lockstep renews in lockstep an hour later.
//! - **Wasted**: refused requests (429, 503, `slow_down`) whose sender's previous answer had
//!   been a refusal too — the retry policy's doing. The first refusal is the price of finding
//!   out, which no client avoids; all refusals are reported as well. Counted against the useful
//!   requests (tokens, codes, `authorization_pending`) from the disturbance to the end of the
//!   recovery.
//! - **Early**: requests sent while the sender's last Retry-After had not run out.
//! - **Last served**: the end of the last wait that began in the scenario's window (the
//!   disturbance and any Retry-After it handed out; for the device flow, until the last person
//!   approved — a wait then runs from the approval), against the window's end plus one backoff
//!   cap (devauth's: 300 s for renewals, 60 s for pairing) and the last answer's round trip
//!   (a device counts a Retry-After from when it got it), and nobody still waiting at the end.

use crate::metrics::Recorder;
use crate::scenario::{Kind, LIFETIME, Run, Scenario};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Summary {
    pub requests: u64,
    pub useful: u64,
    pub refused: u64,
    pub wasted: u64,
    pub most_refused_in_a_row: u32,
    pub early: u64,
    /// Absolute.
    pub recovery: (Duration, Duration),
    /// Peak (per-bin) request rate during the disturbance itself.
    pub disturbance_peak: f64,
    pub peak: f64,
    pub mean: f64,
    pub next_peak: f64,
    pub next_mean: f64,
    /// From the disturbance to the end of the recovery.
    pub useful_in_window: u64,
    pub wasted_in_window: u64,
    /// Relative to the origin: the end of the last wait that began in the window.
    pub last_served: Option<Duration>,
    /// Relative to the origin.
    pub window_end: Duration,
    pub longest_wait: Duration,
    pub unserved: usize,
    pub lost: u32,
    /// Per device, mean seconds without a valid access token after the origin.
    pub without_token: f64,
}

impl Summary {
    pub fn ratio(&self) -> f64 {
        self.peak / self.mean.max(f64::MIN_POSITIVE)
    }

    pub fn next_ratio(&self) -> f64 {
        self.next_peak / self.next_mean.max(f64::MIN_POSITIVE)
    }

    pub fn wasted_pct(&self) -> f64 {
        100.0 * self.wasted_in_window as f64 / self.useful_in_window.max(1) as f64
    }
}

/// Peak and mean per bin of requests per device-second, `per` devices being there each second.
fn peak_mean_per(
    v: &[u32],
    per: &[u32],
    from: Duration,
    to: Duration,
    bin: Duration,
) -> (f64, f64) {
    let to = to.max(from + bin);
    let reqs = Recorder::rate(v, from, to, bin);
    let devs = Recorder::rate(per, from, to, bin);
    let peak = reqs
        .iter()
        .zip(&devs)
        .filter(|(_, d)| d.1 > 0.0)
        .map(|(r, d)| r.1 / d.1)
        .fold(0.0, f64::max);
    let mean = Recorder::sum(v, from, to) as f64 / Recorder::sum(per, from, to).max(1) as f64;
    (peak, mean)
}

fn peak_mean(v: &[u32], from: Duration, to: Duration, bin: Duration) -> (f64, f64) {
    let to = to.max(from + bin);
    let rates = Recorder::rate(v, from, to, bin);
    let peak = rates.iter().map(|&(_, r)| r).fold(0.0, f64::max);
    let total = Recorder::sum(v, from, to);
    let mean = total as f64 / (to - from).as_secs_f64();
    (peak, mean)
}

pub fn summarize(s: &Scenario, run: &Run) -> Summary {
    let rec = &run.provider.rec;
    let in_window = |since: Duration| since >= s.origin && since <= run.window_end;
    let waits: Vec<_> = rec.episodes.iter().filter(|e| in_window(e.since)).collect();
    let last = waits.iter().map(|e| e.served).max();
    let longest_wait = waits
        .iter()
        .map(|e| e.served - e.since)
        .max()
        .unwrap_or_default();
    let recovery = match s.kind {
        Kind::RateLimit | Kind::SteadyDay => (s.origin, s.end),
        _ => {
            let from = s.disturbance_end;
            let to = last.unwrap_or(from).max(from + s.bin).min(s.end);
            (from, to)
        }
    };
    let (disturbance_peak, _) = peak_mean(&rec.sent, s.origin, s.disturbance_end, s.bin);
    // Pairing devices leave as they pair, so the fleet's rate falls whatever the client does:
    // a herd shows in the rate per device still pairing.
    let (peak, mean) = match s.kind {
        Kind::Pairing => {
            let per = rec.pairing_devices();
            peak_mean_per(&rec.sent, &per, recovery.0, recovery.1, s.bin)
        }
        _ => peak_mean(&rec.sent, recovery.0, recovery.1, s.bin),
    };
    let next_to = (recovery.1 + LIFETIME).min(s.end);
    let (next_peak, next_mean) = if next_to >= recovery.1 + LIFETIME / 2 {
        peak_mean(&rec.sent, recovery.1, next_to, Duration::from_secs(60))
    } else {
        (0.0, 0.0)
    };
    let n = rec.without_token.len().max(1) as f64;
    let total = |v: &[u32]| Recorder::sum(v, s.origin, s.end);
    Summary {
        requests: total(&rec.sent),
        useful: total(&rec.useful),
        refused: total(&rec.refused),
        wasted: total(&rec.wasted),
        most_refused_in_a_row: rec.most_refused_in_a_row,
        early: total(&rec.early),
        recovery,
        disturbance_peak,
        peak,
        mean,
        next_peak,
        next_mean,
        useful_in_window: Recorder::sum(&rec.useful, s.origin, recovery.1),
        wasted_in_window: Recorder::sum(&rec.wasted, s.origin, recovery.1),
        last_served: last.map(|t| t.saturating_sub(s.origin)),
        window_end: run.window_end.saturating_sub(s.origin),
        longest_wait,
        unserved: run.unserved,
        lost: rec.lost,
        without_token: rec.without_token.iter().sum::<f64>() / n,
    }
}

/// One goal's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub goal: &'static str,
    pub value: String,
    pub pass: bool,
}

pub fn verdicts(s: &Scenario, m: &Summary) -> Vec<Verdict> {
    let ratio = m.ratio();
    // A device counts a Retry-After from when the answer reached it: one round trip later.
    let limit = m.window_end + s.backoff_cap + crate::sim::MAX_LATENCY;
    vec![
        Verdict {
            goal: "peak ≤ 2 × mean over the recovery window",
            value: format!("{ratio:.2}"),
            pass: ratio <= 2.0,
        },
        Verdict {
            goal: "no request before a Retry-After ends",
            value: m.early.to_string(),
            pass: m.early == 0,
        },
        Verdict {
            goal: "wasted ≤ 10 % of useful",
            value: format!("{:.1} %", m.wasted_pct()),
            pass: m.wasted_pct() <= 10.0,
        },
        Verdict {
            goal: "last served ≤ window + one backoff cap",
            value: match (m.last_served, m.unserved) {
                (_, u) if u > 0 => format!("{u} never served"),
                (Some(t), _) => {
                    format!("{:.1} s (≤ {:.1} s)", t.as_secs_f64(), limit.as_secs_f64())
                }
                (None, _) => "nobody waited".into(),
            },
            pass: m.unserved == 0 && m.last_served.is_none_or(|t| t <= limit),
        },
    ]
}
