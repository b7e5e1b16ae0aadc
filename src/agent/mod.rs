//! `devauth run`: the pure decision machine ([`machine`]), one account's steps that carry out
//! its effects ([`service`]), the one loop over every account ([`driver`]) and the
//! `[agent] hook` command ([`hook`]).

pub mod driver;
pub mod hook;
pub mod machine;
pub mod service;

pub use machine::*;
