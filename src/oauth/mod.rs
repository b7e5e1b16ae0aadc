//! OAuth 2.0 as devauth speaks it: the client calls ([`client`]: device authorization, polling,
//! refresh, revocation, userinfo, discovery), the provider presets ([`provider`]), the pure
//! RFC 8628 polling machine ([`flow`]) and RFC 7523 JWT bearer assertions ([`jwt`]). Uses the
//! network layer; never the store, the screen or the configuration file.

pub mod client;
pub mod flow;
pub mod jwt;
pub mod provider;

pub use client::*;
