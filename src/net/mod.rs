//! The network edge: the [`transport::Transport`] trait and its ureq implementation, the rustls
//! connector, the TCP connector racing a host's addresses ([`tcp`], rules in [`eyeballs`]), the
//! proxy choice ([`proxy`]), and [`wire`], the one place where untrusted bytes from the network
//! become values.
//! Knows nothing of OAuth flows, the store or the configuration file.

pub mod eyeballs;
pub mod proxy;
pub mod tcp;
pub mod tls;
pub mod transport;
pub mod wire;
