//! `devauth run`: the pure decision machine ([`machine`]), the one loop that carries out its
//! effects ([`service`]) and the `[agent] hook` command ([`hook`]).

pub mod hook;
pub mod machine;
pub mod service;

pub use machine::*;
