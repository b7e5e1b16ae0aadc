//! cargo-fuzz target `locale_pack`: see `fuzz/harness.rs` for what it feeds and checks.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::locale_pack(data));
