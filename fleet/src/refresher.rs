//! The devices of the refresh scenarios: devauth's agent ([`AgentDevice`], the real
//! `agent::machine` with its real policy and jitter) and the naive client it is compared with
//! ([`NaiveRefresher`]).
//!
//! `AgentDevice` plays the part of `agent::service` and `grant::renew` for the machine: the
//! store holds one token; a renewal the machine asks for is skipped when the stored token still
//! has more than the machine's threshold left (as `grant::Need::Remaining` does), otherwise it
//! is one refresh at the provider, answered after the network latency.

use crate::provider::Refresh;
use crate::rng::Rng;
use crate::sim::{Device, World};
use devauth::agent::{
    Agent, Cause, Input, Loaded, Mode, Next, Policy, ProbeEnd, RenewalEnd, TokenInfo, Want,
};
use std::time::Duration;

/// The seed devauth gives a process's jitter: boot-time nanoseconds mixed with the pid. Devices
/// of one model boot the same way, so the pid is the same on all of them; the nanoseconds differ.
fn device_seed(rng: &mut Rng) -> u64 {
    let nanos = (rng.next_u64() % 1_000_000_000) as u32;
    devauth::setup::jitter_seed_from(nanos, 412)
}

pub struct AgentDevice {
    agent: Agent,
    policy: Policy,
    input: Option<Input>,
    /// When the stored access token expires (simulated boottime).
    expires: Duration,
    lifetime: Duration,
    seeds: Rng,
}

impl AgentDevice {
    /// A device whose store holds a token expiring at `expires`.
    pub fn new(
        policy: Policy,
        expires: Duration,
        lifetime: Duration,
        mut seeds: Rng,
    ) -> AgentDevice {
        AgentDevice {
            agent: Agent::new(policy.clone(), Mode::DeviceFlow, device_seed(&mut seeds)),
            policy,
            input: None,
            expires,
            lifetime,
            seeds,
        }
    }

    fn info(&self, now: Duration) -> TokenInfo {
        TokenInfo {
            remaining: Some(self.expires.saturating_sub(now)),
            lifetime: Some(self.lifetime),
        }
    }
}

impl Device for AgentDevice {
    fn wake(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration> {
        let mut input = self.input.take().unwrap_or(Input::Tick);
        // The machine never asks for more than a few steps without a wait or a request; more
        // would be a busy loop, which the simulation reports rather than spins on.
        for _ in 0..16 {
            let step = self.agent.step(input, now, true);
            input = match step.next {
                Next::LoadStore => Input::Store(Loaded::Tokens(self.info(now))),
                Next::Wait(until) => return Some(until),
                Next::Renew(want) => {
                    let left = self.expires.saturating_sub(now);
                    let needed = match want {
                        Want::AtMost(at_most) => left <= at_most,
                        Want::Replace => true,
                    };
                    if !needed {
                        Input::Renewal(RenewalEnd::Current(self.info(now)))
                    } else {
                        let latency = world.latency();
                        let end = match world.provider.refresh(world.device, now) {
                            Refresh::Tokens { lifetime } => {
                                self.expires = now + latency + lifetime;
                                self.lifetime = lifetime;
                                RenewalEnd::New(TokenInfo {
                                    remaining: Some(lifetime),
                                    lifetime: Some(lifetime),
                                })
                            }
                            Refresh::Refused(r) => RenewalEnd::Failed {
                                reason: format!("HTTP {}", r.status),
                                cause: Cause::Refused {
                                    retry_after: r.retry_after,
                                },
                            },
                        };
                        self.input = Some(Input::Renewal(end));
                        return Some(now + latency);
                    }
                }
                Next::Probe => Input::Probe(ProbeEnd::Unknown),
                // Refresh scenarios never lose the grant: pairing again would be a lost pairing.
                Next::Pair | Next::Unpair | Next::Reload | Next::Exit => {
                    world.provider.rec.lost += 1;
                    return None;
                }
            };
        }
        panic!(
            "device {}: the agent machine did not wait or ask for anything in 16 steps",
            world.device
        );
    }

    fn restart(&mut self, now: Duration, _world: &mut World<'_>) -> Option<Duration> {
        self.agent = Agent::new(
            self.policy.clone(),
            Mode::DeviceFlow,
            device_seed(&mut self.seeds),
        );
        self.input = None;
        Some(now)
    }
}

/// The naive client: refreshes a fixed `margin` before expiry, and after any failure retries
/// every `retry`, with no jitter and no regard for Retry-After.
pub struct NaiveRefresher {
    expires: Duration,
    margin: Duration,
    retry: Duration,
    pending: Option<Refresh>,
}

impl NaiveRefresher {
    pub fn new(expires: Duration, margin: Duration, retry: Duration) -> NaiveRefresher {
        NaiveRefresher {
            expires,
            margin,
            retry,
            pending: None,
        }
    }
}

impl Device for NaiveRefresher {
    fn wake(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration> {
        match self.pending.take() {
            Some(Refresh::Tokens { lifetime }) => {
                self.expires = now + lifetime;
                return Some(self.expires.saturating_sub(self.margin).max(now));
            }
            Some(Refresh::Refused(_)) => return Some(now + self.retry),
            None => {}
        }
        let due = self.expires.saturating_sub(self.margin);
        if now < due {
            return Some(due);
        }
        let latency = world.latency();
        self.pending = Some(world.provider.refresh(world.device, now));
        Some(now + latency)
    }

    fn restart(&mut self, now: Duration, _world: &mut World<'_>) -> Option<Duration> {
        self.pending = None;
        Some(now)
    }
}
