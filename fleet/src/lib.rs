//! devauth-fleet: what a fleet of devauth devices does to its provider, simulated.
//!
//! The devices run devauth's real decision code — the agent's machine (`agent::machine`) and
//! the RFC 8628 flow machine (`oauth::flow`), with their real jitter and backoff — on a
//! simulated clock, against a simulated provider with a rate limit per client_id. Each scenario
//! also runs a naive client for comparison. A bench tool: never part of the device binary.

pub mod goals;
pub mod metrics;
pub mod pairer;
pub mod plot;
pub mod provider;
pub mod refresher;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
