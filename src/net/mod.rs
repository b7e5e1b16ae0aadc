//! The network edge: the [`transport::Transport`] trait and its ureq implementation, the rustls
//! connector, and [`wire`], the one place where untrusted bytes from the network become values.
//! Knows nothing of OAuth flows, the store or the configuration file.

pub mod proxy;
pub mod tls;
pub mod transport;
pub mod wire;
