//! `devauth run`: the pure decision machine ([`machine`]), one account's steps that carry out
//! its effects ([`service`]), the one loop over every account ([`driver`]), the clock a pairing sleeps on while the
//! other accounts go on ([`pairing_clock`]) and the
//! `[agent] hook` command ([`hook`]).

pub mod driver;
pub mod hook;
pub mod machine;
pub mod pairing_clock;
pub mod service;

pub use machine::*;
