//! devauth: pair an embedded Linux device with an OAuth 2.0 account through the Device
//! Authorization Grant (RFC 8628) and keep that account's tokens usable for the device's life.
//!
//! The binary (`main.rs`) is thin; this library holds the parts so tests can reach them.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod agent;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod grant;
pub mod keyring;
pub mod keys;
pub mod locale;
pub mod net;
pub mod oauth;
pub mod pairing;
pub mod screen;
pub mod secret;
pub mod setup;
pub mod signals;
pub mod socket;
pub mod stdout;
pub mod store;
pub mod tpm;
