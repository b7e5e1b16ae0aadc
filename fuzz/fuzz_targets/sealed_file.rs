//! cargo-fuzz target `sealed_file`: see `fuzz/harness.rs` for what it feeds and checks.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::sealed_file(data));
