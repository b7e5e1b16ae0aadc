//! The fuzz targets' entry points (`fuzz/harness.rs`, included as is) in the normal test suite:
//!
//! - every committed seed (`fuzz/corpus/<target>/`) and every crash regression
//!   (`fuzz/regressions/<target>/`) is fed to its target: none may panic;
//! - a seeded, deterministic mutator (byte flips, inserts, deletes, splices and "interesting"
//!   tokens such as huge numbers, control characters and duplicate keys) derives more inputs
//!   from the seeds, so parser changes meet hostile bytes on every `cargo test`, not only when
//!   someone runs the fuzzer (`DEVAUTH_FUZZ_ITERS` per seed, default 300);
//! - the realistic seeds really parse, so the corpus keeps exercising the success paths.
//!
//! The real coverage-guided runs are `scripts/fuzz.sh` (docs/fuzzing.md).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none when the directory does not exist).
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs `f` on `data`, turning a panic into a test failure that names the input.
fn run(target: &str, what: &str, f: fn(&[u8]), data: &[u8]) {
    let result = std::panic::catch_unwind(|| f(data));
    if result.is_err() {
        let shown: String = String::from_utf8_lossy(data).chars().take(2000).collect();
        panic!(
            "fuzz target {target} panicked on {what} ({} bytes):\n{shown:?}",
            data.len()
        );
    }
}

#[test]
fn every_seed_and_regression_runs_without_panicking() {
    for (target, f) in harness::TARGETS {
        let seeds = inputs("corpus", target);
        assert!(
            seeds.len() >= 5,
            "fuzz/corpus/{target} has only {} seeds",
            seeds.len()
        );
        for (path, data) in seeds.iter().chain(inputs("regressions", target).iter()) {
            run(target, &path.display().to_string(), f, data);
        }
    }
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that have broken parsers before: numbers at and past the limits, control and bidi
/// characters, escapes, duplicate and conflicting keys, structure characters.
const INTERESTING: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-1",
    "1e309",
    "0.5",
    "null",
    "true",
    "[]",
    "{}",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\u202e",
    "\u{202e}",
    "\u{1b}[2J",
    "\r\n",
    "\u{0}",
    "\u{85}",
    "%",
    "%zz",
    "%00",
    "%C3%A9",
    "+",
    "&",
    "=",
    ".",
    ",\"error\":\"slow_down\",\"interval\":99999999999",
    ",\"access_token\":\"conflicting-access-token\"",
    ",\"user_code\":\"DUPLICATE\"",
    "&error=access_denied",
    "\nclient_secret = \"x\"\n",
    "\n[network]\ntimeout_secs = 0\n",
    "\n[[storage]]\n",
    "'''",
    "\"\"\"",
    "<html>",
];

fn mutate(rng: &mut Rng, input: &[u8], others: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next() as u8),
            2 if !out.is_empty() => {
                let end = (at + rng.below(32)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                // Repeat a slice: long strings, many scopes, deep nesting.
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(64)).min(out.len());
                let piece = out[start..end].to_vec();
                let times = 1 + rng.below(200);
                for _ in 0..times {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 if !others.is_empty() => {
                let other = &others[rng.below(others.len())].1;
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            _ => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, token.bytes());
            }
        }
        // Keep the content-type byte of wire inputs meaningful most of the time.
        if let (Some(first), Some(orig)) = (out.first_mut(), input.first()) {
            if rng.below(8) != 0 {
                *first = *orig;
            }
        }
    }
    out
}

#[test]
fn seeded_mutations_of_the_seeds_run_without_panicking() {
    let iters: usize = std::env::var("DEVAUTH_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for (target, f) in harness::TARGETS {
        let seeds = inputs("corpus", target);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
        for (path, seed) in &seeds {
            for i in 0..iters {
                let data = mutate(&mut rng, seed, &seeds);
                run(
                    target,
                    &format!("mutation {i} of {}", path.display()),
                    f,
                    &data,
                );
            }
        }
    }
}

#[test]
fn realistic_seeds_parse() {
    use devauth::net::transport::check_scheme;
    use devauth::net::wire::{DeviceAuthorization, Fields, OAuthError, TokenResponse};
    let body = |target: &str, name: &str| -> (Option<&'static str>, Vec<u8>) {
        let data = std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap();
        let ct = match data[0] {
            b'j' | b'J' => Some("application/json"),
            b'f' => Some("application/x-www-form-urlencoded"),
            _ => None,
        };
        (ct, data[1..].to_vec())
    };
    let https = |u: &str| check_scheme(u, false);
    for name in [
        "rfc8628-example.json",
        "google.json",
        "microsoft.json",
        "github-form.txt",
        "github-json-no-ct.json",
        "strings-and-null.json",
    ] {
        let (ct, b) = body("device_authorization", name);
        let f = Fields::parse(&b, ct).unwrap_or_else(|e| panic!("{name}: {e}"));
        DeviceAuthorization::parse(&f, &https).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in [
        "google.json",
        "microsoft.json",
        "github-form.txt",
        "github-app.json",
        "rfc6749-refresh.json",
    ] {
        let (ct, b) = body("token_response", name);
        let f = Fields::parse(&b, ct).unwrap_or_else(|e| panic!("{name}: {e}"));
        TokenResponse::parse(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in [
        "pending-google-428.json",
        "slow-down-github.txt",
        "expired.json",
    ] {
        let (ct, b) = body("token_response", name);
        assert!(OAuthError::parse(&Fields::parse(&b, ct).unwrap()).is_some());
    }
    for name in ["google.json", "github-no-expiry.json", "nulls.json"] {
        let data = std::fs::read(fuzz_dir().join("corpus/store_file").join(name)).unwrap();
        devauth::store::parse_bytes(&data, Path::new(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    for name in ["google-tpm2.json", "github-kernel.json", "nulls-tpm2.json"] {
        let data = std::fs::read(fuzz_dir().join("corpus/sealed_file").join(name)).unwrap();
        devauth::store::open_sealed_bytes(&data, &harness::FUZZ_DATA_KEY, Path::new(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The same target reads its input as a DPoP key file too.
    for name in ["dpop-key-sealed.json", "dpop-key-tpm2.json"] {
        let data = std::fs::read(fuzz_dir().join("corpus/sealed_file").join(name)).unwrap();
        devauth::store::keyfile::open_key_bytes(&data, &harness::FUZZ_DATA_KEY, Path::new(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in [
        "google.toml",
        "microsoft.toml",
        "github.toml",
        "e2e-generic.toml",
    ] {
        let text = std::fs::read_to_string(fuzz_dir().join("corpus/config").join(name)).unwrap();
        devauth::config::Config::parse(&text, Path::new("/etc/devauth/devauth.toml"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
