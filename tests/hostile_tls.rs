//! Hostile and broken TLS servers, end to end: the real binary against the loopback test server
//! speaking HTTPS with the test-only certificates in `tests/fixtures/tls/`.
//!
//! - a certificate from a CA devauth does not know: refused, with a TLS error naming the
//!   endpoint and the reason, and never retried over plain http;
//! - the same server with `ca_file` = that CA: pairing, refresh and revocation all pass;
//! - a certificate for another name, or a self-signed one, with the CA trusted: refused;
//! - a `ca_file` that holds no certificate: a config error before any connection.
//!
//! Each test also checks: no panic (the exit code is a documented one or the test stopped a
//! retrying `pair`), no secret in any output (the harness, when the `Env` drops), and the token
//! store unchanged when it existed before.

mod common;

use common::*;
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn identity(name: &str) -> TlsIdentity {
    TlsIdentity::from_files(
        fixture(&format!("{name}.pem")),
        fixture(&format!("{name}.key")),
    )
    .expect("test TLS identity")
}

fn ca_file_line() -> String {
    format!("ca_file = \"{}\"", fixture("ca.pem"))
}

/// Runs `pair --json` against a server whose certificate devauth must refuse: waits until the
/// server saw `handshakes` refused handshakes (each attempt is retried with backoff, since an
/// unsynced clock makes every certificate look bad), stops it and checks what it said.
fn refused_pairing(env: &Env, handshakes: usize, reason_has: &str) -> Output {
    refused_pairing_with(env, &["pair", "--json"], handshakes, reason_has)
}

fn refused_pairing_with(env: &Env, args: &[&str], handshakes: usize, reason_has: &str) -> Output {
    let requests_before = env.server().stats().requests;
    let mut run = env.cmd(args).spawn();
    let seen = wait_until(S(20), || env.server().tls_errors().len() >= handshakes);
    // The server counts a refused handshake as soon as it happens; devauth reports it (the
    // `retrying` event) a moment later — a long moment under qemu. Let it speak first.
    std::thread::sleep(scaled(Duration::from_millis(300)));
    run.kill();
    let out = run.wait();
    assert!(
        seen,
        "expected {handshakes} refused handshakes, saw {:?}\n{}",
        env.server().tls_errors(),
        out.show()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.show());
    let retrying = out.events_named("retrying");
    assert!(!retrying.is_empty(), "{}", out.show());
    for e in &retrying {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("{}/device/code: TLS error", env.base()))
                && reason.contains(reason_has),
            "reason {reason:?} should name the endpoint, TLS and {reason_has:?}"
        );
    }
    assert!(
        out.event_names().iter().all(|n| n == "retrying"),
        "no code may be shown: {}",
        out.show()
    );
    // Nothing got through: no HTTP request was read, and every failed handshake is the client
    // hanging up after seeing the certificate (ureq drops the connection without flushing
    // rustls' alert), never plain text sent to the TLS port (rustls would call that a corrupt
    // message).
    assert_eq!(env.server().stats().requests, requests_before);
    for e in env.server().tls_errors() {
        assert!(
            e.contains("unexpected end of file") || e.contains("received fatal alert"),
            "{e}"
        );
    }
    out
}

#[test]
fn tls_unknown_issuer_is_refused_and_never_falls_back_to_http() {
    let env = Setup::new(Provider::Generic)
        .tls(identity("server"))
        .approve_after_polls(0)
        .start();
    assert!(env.base().starts_with("https://127.0.0.1:"));
    refused_pairing(&env, 2, "UnknownIssuer");
    assert!(env.store_json().is_none());
}

#[test]
fn tls_ca_file_makes_the_private_ca_trusted_for_every_call() {
    let env = Setup::new(Provider::Generic)
        .tls(identity("server"))
        .provider_toml(&ca_file_line())
        .approve_after_polls(1)
        .behavior(|b| b.token_lifetime = Some(2))
        .start();
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "pending", "paired"]);
    assert!(env.server().tls_errors().is_empty());
    // Refresh over TLS (the margin is capped at half of 2 s).
    std::thread::sleep(Duration::from_millis(1100));
    let t = env.token();
    assert_eq!(env.server().stats().refreshes, 1);
    assert!(env.server().live_access_tokens().contains(&t));
    // Revocation over TLS.
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    assert_eq!(env.server().stats().revocations, 2);
    assert!(env.store_json().is_none());
    assert!(env.server().tls_errors().is_empty());
}

#[test]
fn tls_refresh_without_the_ca_fails_clearly_and_keeps_the_store() {
    // Paired while the CA was trusted; then the config loses ca_file.
    let env = Setup::new(Provider::Generic)
        .tls(identity("server"))
        .provider_toml(&ca_file_line())
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .start();
    env.pair();
    let before = std::fs::read(&env.store).unwrap();
    let text = env.config_file().replace(&ca_file_line(), "");
    env.write_config(&text);
    std::thread::sleep(Duration::from_millis(2100));
    let out = env.run(&["token"]);
    out.code(exit::NETWORK)
        .stderr_has(&format!("{}/token: TLS error", env.base()))
        .stderr_has("UnknownIssuer");
    assert_eq!(out.stdout, "");
    assert_eq!(std::fs::read(&env.store).unwrap(), before, "store changed");
    assert_eq!(env.server().stats().refreshes, 0);
    // Trusting the CA again: the same refresh token still works, nothing was lost.
    env.write_config(&text.replace("[provider]\n", &format!("[provider]\n{}\n", ca_file_line())));
    env.token();
    assert_eq!(env.server().stats().refreshes, 1);
}

#[test]
fn tls_wrong_name_is_refused_even_with_the_ca_trusted() {
    let env = Setup::new(Provider::Generic)
        .tls(identity("wrong-name"))
        .provider_toml(&ca_file_line())
        .approve_after_polls(0)
        .start();
    refused_pairing(&env, 1, "not valid for name \"127.0.0.1\"");
    assert!(env.store_json().is_none());
}

#[test]
fn tls_self_signed_is_refused_even_with_the_ca_trusted() {
    let env = Setup::new(Provider::Generic)
        .tls(identity("self-signed"))
        .provider_toml(&ca_file_line())
        .approve_after_polls(0)
        .start();
    refused_pairing(&env, 1, "UnknownIssuer");
}

#[test]
fn tls_failure_while_pairing_again_keeps_the_old_tokens() {
    // Paired over TLS with the CA; pairing again after the CA was dropped fails and the tokens
    // from the first pairing stay as they were.
    let env = Setup::new(Provider::Generic)
        .tls(identity("server"))
        .provider_toml(&ca_file_line())
        .approve_after_polls(0)
        .start();
    env.pair();
    let before = std::fs::read(&env.store).unwrap();
    env.write_config(&env.config_file().replace(&ca_file_line(), ""));
    // --force: pairing again while paired.
    refused_pairing_with(&env, &["pair", "--json", "--force"], 1, "UnknownIssuer");
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
}

#[test]
fn tls_ca_file_without_a_certificate_is_a_config_error() {
    let env = Setup::new(Provider::Generic)
        .tls(identity("server"))
        .provider_toml(&format!("ca_file = \"{}\"", fixture("ca.key")))
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::CONFIG)
        .stderr_has("ca.key")
        .stderr_has("no PEM certificate");
    assert_eq!(env.server().stats().requests, 0);
    assert!(env.server().tls_errors().is_empty(), "nothing was sent");
}
