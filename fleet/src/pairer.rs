//! The devices of the device-flow scenario: devauth's pairing ([`FlowDevice`], the real
//! `oauth::flow` machine with its real backoff and jitter) and the naive client
//! ([`NaivePairer`]). Both are shown a code and poll until the person approves it.
//!
//! `FlowDevice` plays the part of `pairing::run` and `oauth::client`: the provider's answers
//! become the inputs the real client would give the machine (a 429 or 503 is a transient
//! failure carrying its Retry-After, as `oauth::client` classifies it).

use crate::provider::{CodeRequest, Poll};
use crate::sim::{Device, World};
use devauth::net::wire::{DeviceAuthorization, OAuthError, TokenResponse};
use devauth::oauth::flow::{Action, Failure, Flow, Input, Outcome, Policy, PollAnswer};
use devauth::secret::Secret;
use std::time::Duration;

fn authorization(code: u64, expires_in: Duration, interval: Duration) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: Secret::new(format!("device-code-{code}")),
        user_code: "WDJB-MJHT".into(),
        verification_uri: "https://provider.example/device".into(),
        verification_uri_complete: None,
        expires_in: expires_in.as_secs(),
        interval: Some(interval.as_secs()),
        message: None,
    }
}

fn oauth_error(code: &str) -> Input {
    Input::PollAnswered(PollAnswer::Error(OAuthError {
        error: code.into(),
        description: None,
        interval: None,
        status: Some(400),
    }))
}

pub struct FlowDevice {
    flow: Option<Flow>,
    input: Option<Input>,
    code: u64,
}

impl FlowDevice {
    pub fn new(policy: Policy, now: Duration, seed: u64) -> FlowDevice {
        FlowDevice {
            flow: Some(Flow::new(policy, now, seed)),
            input: None,
            code: 0,
        }
    }
}

impl Device for FlowDevice {
    fn wake(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration> {
        let input = self.input.take().unwrap_or(Input::Tick);
        let (flow, step) = self.flow.take()?.step(input, now);
        let answer = match step.action {
            Action::WaitUntil(t) => {
                self.flow = Some(flow);
                return Some(t);
            }
            Action::Finish => {
                if !matches!(flow.into_outcome(), Some(Outcome::Paired(_))) {
                    world.provider.rec.lost += 1;
                }
                return None;
            }
            Action::RequestCode => match world.provider.request_code(world.device, now) {
                CodeRequest::Issued {
                    code,
                    expires_in,
                    interval,
                } => {
                    self.code = code;
                    Input::CodeIssued(authorization(code, expires_in, interval))
                }
                CodeRequest::Refused(r) => Input::CodeFailed(Failure::Transient {
                    reason: format!("HTTP {}", r.status),
                    retry_after: r.retry_after,
                }),
            },
            Action::Poll => match world.provider.poll(world.device, self.code, now) {
                Poll::Pending => oauth_error("authorization_pending"),
                Poll::SlowDown => oauth_error("slow_down"),
                Poll::Expired => oauth_error("expired_token"),
                Poll::Tokens { lifetime } => {
                    Input::PollAnswered(PollAnswer::Tokens(TokenResponse {
                        access_token: Secret::new("access"),
                        token_type: "Bearer".into(),
                        expires_in: Some(lifetime.as_secs()),
                        refresh_token: Some(Secret::new("refresh")),
                        scope: None,
                        id_token: None,
                    }))
                }
                Poll::Refused(r) => Input::PollFailed(Failure::Transient {
                    reason: format!("HTTP {}", r.status),
                    retry_after: r.retry_after,
                }),
            },
        };
        // The answer arrives after the round trip; the machine gets it then.
        self.flow = Some(flow);
        self.input = Some(answer);
        Some(now + world.latency())
    }

    fn restart(&mut self, now: Duration, _world: &mut World<'_>) -> Option<Duration> {
        Some(now)
    }
}

#[derive(Debug, Clone, Copy)]
struct Live {
    code: u64,
    deadline: Duration,
    interval: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Code(CodeRequest),
    Poll(Poll),
}

/// The naive client: polls every `interval` (adding 5 s on `slow_down`, as RFC 8628 requires),
/// gets a new code when the old one dies, and retries anything refused after a fixed `retry`,
/// with no jitter and no regard for Retry-After.
pub struct NaivePairer {
    live: Option<Live>,
    pending: Option<Pending>,
    retry: Duration,
    done: bool,
}

impl NaivePairer {
    pub fn new(retry: Duration) -> NaivePairer {
        NaivePairer {
            live: None,
            pending: None,
            retry,
            done: false,
        }
    }
}

impl Device for NaivePairer {
    fn wake(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration> {
        if self.done {
            return None;
        }
        match self.pending.take() {
            Some(Pending::Code(CodeRequest::Issued {
                code,
                expires_in,
                interval,
            })) => {
                self.live = Some(Live {
                    code,
                    deadline: now + expires_in,
                    interval,
                });
                return Some(now + interval);
            }
            Some(Pending::Code(CodeRequest::Refused(_)))
            | Some(Pending::Poll(Poll::Refused(_))) => {
                return Some(now + self.retry);
            }
            Some(Pending::Poll(Poll::Pending)) => {
                return self.live.map(|l| now + l.interval);
            }
            Some(Pending::Poll(Poll::SlowDown)) => {
                if let Some(l) = &mut self.live {
                    l.interval += Duration::from_secs(5);
                }
                return self.live.map(|l| now + l.interval);
            }
            Some(Pending::Poll(Poll::Tokens { .. })) => {
                self.done = true;
                return None;
            }
            Some(Pending::Poll(Poll::Expired)) => self.live = None,
            None => {}
        }
        let latency = world.latency();
        match self.live {
            Some(l) if now < l.deadline => {
                self.pending = Some(Pending::Poll(world.provider.poll(
                    world.device,
                    l.code,
                    now,
                )));
            }
            _ => {
                self.live = None;
                self.pending = Some(Pending::Code(
                    world.provider.request_code(world.device, now),
                ));
            }
        }
        Some(now + latency)
    }

    fn restart(&mut self, now: Duration, _world: &mut World<'_>) -> Option<Duration> {
        Some(now)
    }
}
