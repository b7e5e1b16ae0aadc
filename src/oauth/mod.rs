//! OAuth 2.0 as devauth speaks it: the client calls ([`client`]: device authorization, polling,
//! code exchange, refresh, revocation, userinfo, discovery), the code grant's browser half
//! ([`authorize`]: URL, redirect and paste reading; [`pkce`]: verifier, challenge, state;
//! [`loopback`]: the redirect listener; [`client_json`]: Google's OAuth client file), the
//! provider presets ([`provider`]), the pure RFC 8628 polling machine ([`flow`]) and RFC 7523
//! JWT bearer assertions ([`jwt`]). Uses the network layer; never the store, the screen or the
//! configuration file.

pub mod authorize;
pub mod client;
pub mod client_json;
pub mod dpop;
pub mod flow;
pub mod jws;
pub mod jwt;
pub mod loopback;
pub mod pkce;
pub mod provider;

pub use client::*;
