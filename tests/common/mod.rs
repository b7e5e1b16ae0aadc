//! The end-to-end harness: a loopback `TestServer` per test, a temp dir with a config and the
//! token store, and the real `devauth` binary run with a hard timeout (ripgrep's TestCommand
//! style).
//!
//! The binary is `CARGO_BIN_EXE_devauth` unless `DEVAUTH_TEST_BIN` names another one (the armv7
//! build in CI), optionally run through `DEVAUTH_TEST_RUNNER` (whitespace-split, e.g.
//! `qemu-arm -L /usr/arm-linux-gnueabihf`). Nothing here assumes the binary is native: it is
//! only ever spawned, fed an environment and read through pipes. Timeouts and upper bounds on
//! durations are multiplied by [`slow_factor`] (4 under a runner, `DEVAUTH_TEST_SLOW_FACTOR`
//! overrides).
//!
//! Every [`Env`] also checks, when it is dropped, that no command's output (the stdout of
//! `token` excepted: printing the token is its job) contains a secret: access, refresh and id
//! tokens, device codes and client secrets, collected from the server's recorded requests, its
//! live token lists and the store file after each run — plus client assertions, DPoP proofs and
//! the lines of private key files (the DPoP key beside the store, client keys a test names).
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

pub mod agent;
pub mod browser;
mod checks;
mod env;
pub mod netns;
mod process;
pub mod socket;
pub mod tpm;

#[allow(unused_imports)]
pub use checks::*;
pub use env::*;
pub use process::*;
pub use tpm::no_tpm;

use std::time::Duration;

// Re-exported for the test files; each uses a different subset.
#[allow(unused_imports)]
pub use devauth_testserver::{
    Behavior, DEVICE_GRANT, DpopPolicy, EMAIL, Endpoint, Fault, Flavor, IntervalField,
    MICROSOFT_MESSAGE, ProxyOptions, ProxyRecord, Recorded, Stats, TEST_CLIENT_ID,
    TEST_CLIENT_SECRET, TestProxy, TestServer, TlsIdentity,
};
pub use serde_json::Value;

/// Proxy variables that would send loopback requests elsewhere.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Default hard timeout of one command (before [`slow_factor`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit codes (`devauth --help`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const NOT_PAIRED: i32 = 3;
    pub const PAIR_AGAIN: i32 = 4;
    pub const DENIED: i32 = 5;
    pub const CONFIG: i32 = 6;
    pub const NETWORK: i32 = 7;
    pub const PROVIDER: i32 = 8;
    pub const STORE: i32 = 9;
}
