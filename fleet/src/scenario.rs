//! The five scenarios of issue 22 (and a sixth: the third's rate limit lifted after an hour), each run once with devauth's machines and once with the naive
//! client, against the same provider, the same start times and the same people.
//!
//! Common ground: one client_id for the whole fleet; access tokens live an hour (Google,
//! Microsoft, Okta); devauth's default config (`refresh_margin_secs = 300`); a round trip takes
//! 50-400 ms. The fleet's natural refresh rate is `devices / (lifetime − margin)`: what it
//! sends in steady state. Unless a scenario says otherwise the provider allows ten times that
//! per client_id (a token bucket holding ten seconds of it).

use crate::pairer::{FlowDevice, NaivePairer};
use crate::provider::{Limit, Outage, Provider, Spec};
use crate::refresher::{AgentDevice, NaiveRefresher};
use crate::rng::Rng;
use crate::sim::{self, Device};
use devauth::agent::Policy;
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;

pub const LIFETIME: Duration = Duration::from_secs(3600);
/// devauth's default `[agent] refresh_margin_secs`; the naive client uses the same margin.
pub const MARGIN: Duration = Duration::from_secs(300);
/// The naive refresher's fixed retry delay.
pub const NAIVE_RETRY: Duration = Duration::from_secs(10);
/// The naive pairer's fixed retry delay (its polling interval).
pub const NAIVE_POLL_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Devauth,
    Naive,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Devauth => "devauth",
            Client::Naive => "naive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PowerReturns,
    Outage,
    RateLimit,
    RateLimitHour,
    SteadyDay,
    Pairing,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::PowerReturns,
        Kind::Outage,
        Kind::RateLimit,
        Kind::RateLimitHour,
        Kind::SteadyDay,
        Kind::Pairing,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Kind::PowerReturns => "power",
            Kind::Outage => "outage",
            Kind::RateLimit => "ratelimit",
            Kind::RateLimitHour => "ratelimit-hour",
            Kind::SteadyDay => "steady",
            Kind::Pairing => "pairing",
        }
    }

    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// How the devices begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every device starts within this long after 0, its stored access token expired.
    Expired { within: Duration },
    /// A fleet in its steady state: devices installed over one token lifetime long before
    /// `origin` (the run warms up until then).
    Warm,
    /// Every device starts pairing within this long after 0.
    Pairing { within: Duration },
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: Kind,
    pub title: String,
    pub devices: usize,
    pub spec: Spec,
    pub start: Start,
    /// When the disturbance begins: time 0 of the report and the plots.
    pub origin: Duration,
    /// When the disturbance itself is over (power is back everywhere, the outage ended),
    /// absolute: the recovery starts here.
    pub disturbance_end: Duration,
    /// The end of the window the goals allow one backoff cap beyond for the last device,
    /// absolute; any Retry-After handed out during the disturbance extends it (see `run`).
    pub window_end: Duration,
    pub end: Duration,
    /// Plots and peaks are per `bin`.
    pub bin: Duration,
    /// Restarts per device and day (steady state), at random times.
    pub reboots_per_day: f64,
    /// The backoff cap the goals allow beyond the window (devauth's for this kind of request).
    pub backoff_cap: Duration,
    /// What the plot shows (absolute times), and whether its y axis is logarithmic.
    pub plot: (Duration, Duration),
    pub log_y: bool,
}

pub fn natural_rate(devices: usize) -> f64 {
    devices as f64 / (LIFETIME - MARGIN).as_secs_f64()
}

/// Bins of `secs` for 10,000 devices or more; wider for smaller fleets, so that each holds as
/// many requests and a peak is a peak, not noise.
fn bins(secs: u64, devices: usize) -> Duration {
    let scale = (10_000.0 / devices.max(1) as f64).max(1.0);
    Duration::from_secs_f64(secs as f64 * scale).max(S(secs))
}

fn limit(per_sec: f64) -> Limit {
    Limit {
        per_sec,
        burst: (per_sec * 10.0).max(1.0),
    }
}

impl Scenario {
    pub fn new(kind: Kind, devices: usize) -> Scenario {
        let natural = natural_rate(devices);
        let spec = Spec {
            token_limit: limit(10.0 * natural),
            token_limit_from: None,
            token_limit_until: None,
            code_limit: limit(10.0 * natural),
            outage: None,
            token_lifetime: LIFETIME,
            code_lifetime: S(900),
            code_interval: S(5),
        };
        let agent_cap = Policy::default().backoff_cap;
        let warm = 2 * LIFETIME;
        let base = Scenario {
            kind,
            title: String::new(),
            devices,
            spec,
            start: Start::Warm,
            origin: warm,
            disturbance_end: warm,
            window_end: warm,
            end: warm,
            bin: bins(60, devices),
            reboots_per_day: 0.0,
            backoff_cap: agent_cap,
            plot: (S(0), 3 * LIFETIME),
            log_y: true,
        };
        match kind {
            Kind::PowerReturns => Scenario {
                title: "Power returns: every device starts within 60 s, its access token expired"
                    .into(),
                start: Start::Expired { within: S(60) },
                origin: S(0),
                disturbance_end: S(60),
                window_end: S(60),
                end: 3 * LIFETIME,
                bin: bins(10, devices),
                ..base
            },
            Kind::Outage => {
                let outage = Outage {
                    start: warm,
                    end: warm + S(600),
                    status: 503,
                    retry_after: Some(S(600)),
                };
                Scenario {
                    title: "Provider outage: 503 with Retry-After: 600 for ten minutes".into(),
                    spec: Spec {
                        outage: Some(outage),
                        ..base.spec
                    },
                    disturbance_end: outage.end,
                    window_end: outage.end,
                    end: warm + 2 * LIFETIME,
                    bin: bins(10, devices),
                    plot: (warm - S(600), warm + 2 * LIFETIME),
                    ..base
                }
            }
            Kind::RateLimit => Scenario {
                title: "Rate limit at half the fleet's natural refresh rate".into(),
                spec: Spec {
                    token_limit_from: Some((warm, limit(natural / 2.0))),
                    ..base.spec
                },
                disturbance_end: warm + 3 * LIFETIME,
                window_end: warm + 3 * LIFETIME,
                end: warm + 3 * LIFETIME,
                plot: (warm - S(600), warm + 3 * LIFETIME),
                ..base
            },
            // The same limit for one hour, then back to normal: how fast the fleet recovers.
            Kind::RateLimitHour => Scenario {
                title: "Rate limit at half the natural rate for an hour, then lifted".into(),
                spec: Spec {
                    token_limit_from: Some((warm, limit(natural / 2.0))),
                    token_limit_until: Some(warm + LIFETIME),
                    ..base.spec
                },
                disturbance_end: warm + LIFETIME,
                window_end: warm + LIFETIME,
                end: warm + 3 * LIFETIME,
                bin: bins(10, devices),
                plot: (warm - S(600), warm + 3 * LIFETIME),
                ..base
            },
            Kind::SteadyDay => Scenario {
                title: "A day of steady state (each device restarts once a day)".into(),
                disturbance_end: warm + S(24 * 3600),
                window_end: warm + S(24 * 3600),
                end: warm + S(24 * 3600),
                reboots_per_day: 1.0,
                plot: (warm, warm + S(24 * 3600)),
                log_y: false,
                ..base
            },
            Kind::Pairing => {
                // Every device asks for a code within a minute: the device authorization
                // endpoint allows half of that herd's rate, the token endpoint half of the
                // natural polling rate (one poll per device every 5 s), so slow_down comes.
                let poll_rate = devices as f64 / 5.0;
                Scenario {
                    title: "Device flow: every device showing a code and polling, with slow_down"
                        .into(),
                    spec: Spec {
                        token_limit: limit(poll_rate / 2.0),
                        code_limit: limit(devices as f64 / 120.0),
                        ..base.spec
                    },
                    start: Start::Pairing { within: S(60) },
                    origin: S(0),
                    disturbance_end: S(60),
                    // Set from the people's approvals (the last one).
                    window_end: S(0),
                    end: 2 * LIFETIME,
                    bin: bins(10, devices),
                    backoff_cap: devauth::oauth::flow::Policy::default().backoff_cap,
                    plot: (S(0), 2 * LIFETIME),
                    log_y: false,
                    ..base
                }
            }
        }
    }
}

/// One fleet's run.
pub struct Run {
    pub client: Client,
    pub provider: Provider,
    pub events: u64,
    /// Devices that were still waiting for something at the end.
    pub unserved: usize,
    /// The scenario's window end; for the device flow, the last approval.
    pub window_end: Duration,
}

/// Runs `scenario` with `client`'s devices. The same seed gives both clients the same start
/// times, restarts and people.
pub fn run(scenario: &Scenario, client: Client, seed: u64) -> Run {
    let n = scenario.devices;
    let mut world_rng = Rng::new(seed);
    let mut setup = world_rng.fork();
    let mut provider = Provider::new(scenario.spec.clone(), n, scenario.end);
    provider.rec.count_validity_from(scenario.origin);
    let mut last_approval = S(0);
    let mut starts = Vec::with_capacity(n);
    let mut devices: Vec<Box<dyn Device>> = Vec::with_capacity(n);
    for d in 0..n {
        let mut own = setup.fork();
        let start = match scenario.start {
            Start::Expired { within } | Start::Pairing { within } => own.between(S(0), within),
            Start::Warm => own.between(S(0), LIFETIME - MARGIN),
        };
        starts.push(start);
        // Separate streams, so that both clients meet the same people.
        let mut people = own.fork();
        let mut seeds = own.fork();
        let device: Box<dyn Device> = match (scenario.start, client) {
            (Start::Pairing { .. }, Client::Devauth) => {
                let nanos = (seeds.next_u64() % 1_000_000_000) as u32;
                let seed = devauth::setup::jitter_seed_from(nanos, 412);
                Box::new(FlowDevice::new(
                    devauth::oauth::flow::Policy::default(),
                    start,
                    seed,
                ))
            }
            (Start::Pairing { .. }, Client::Naive) => Box::new(NaivePairer::new(NAIVE_POLL_RETRY)),
            (_, Client::Devauth) => Box::new(AgentDevice::new(
                Policy {
                    can_probe: false,
                    ..Policy::default()
                },
                S(0),
                LIFETIME,
                seeds,
            )),
            (_, Client::Naive) => Box::new(NaiveRefresher::new(S(0), MARGIN, NAIVE_RETRY)),
        };
        devices.push(device);
        match scenario.start {
            Start::Expired { .. } => provider.rec.waiting_from(d, start),
            Start::Pairing { .. } => {
                provider.rec.pairing(start, 1);
                // People come to their devices over the next hour or two (median ten minutes,
                // some hours later, after codes expired and were renewed); one in ten never
                // does (nor those who would come in the run's last ten minutes). A wait runs
                // from the approval to the device holding tokens.
                let approve = (people.unit() < 0.9)
                    .then(|| start + S(20) + people.lognormal_secs(600.0, 1.0))
                    .filter(|&t| t + S(600) < scenario.end);
                if let Some(t) = approve {
                    provider.rec.waiting_from(d, t);
                    last_approval = last_approval.max(t);
                }
                provider.set_approval(d, approve);
            }
            Start::Warm => {}
        }
    }
    let mut restarts = Vec::new();
    if scenario.reboots_per_day > 0.0 {
        let span = scenario.end.saturating_sub(scenario.origin);
        let per_device = scenario.reboots_per_day * span.as_secs_f64() / 86_400.0;
        for d in 0..n {
            // The rate's whole part, plus one more with the fraction as its chance; uniform times.
            let mut k = per_device.floor() as u32;
            if setup.unit() < per_device.fract() {
                k += 1;
            }
            for _ in 0..k {
                restarts.push((scenario.origin + setup.between(S(0), span), d));
            }
        }
    }
    let mut sim_rng = world_rng.fork();
    let events = sim::run(
        &mut devices,
        &starts,
        &restarts,
        &mut provider,
        &mut sim_rng,
        scenario.end,
    );
    // The window: the disturbance and every Retry-After it handed out; for the device flow,
    // until the last approval.
    let window_end = match scenario.start {
        Start::Pairing { .. } => last_approval,
        _ => provider
            .rec
            .retry_after_ends(scenario.origin, scenario.disturbance_end)
            .map_or(scenario.window_end, |e| e.max(scenario.window_end)),
    };
    let unserved = provider
        .rec
        .still_waiting()
        .iter()
        .filter(|(_, since)| *since <= window_end)
        .count();
    Run {
        client,
        provider,
        events,
        unserved,
        window_end,
    }
}
