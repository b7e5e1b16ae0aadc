//! Hostile and broken servers at the HTTP level, end to end (the real binary against the
//! loopback test server): oversized bodies, bodies that never end (trickling or flooding),
//! servers that accept and never answer, redirects to another host, HTML error pages and
//! `http://` URLs off loopback.
//!
//! Each case must end in a clear error (naming the endpoint, never a query string or a secret)
//! or a safe retry; never a panic; and a token store that existed before is left as it was
//! (nothing lost). The harness checks every output for secrets when the `Env` drops.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

/// `[network]` with short timeouts, so silent servers cost seconds.
const SHORT_TIMEOUTS: &str = "[network]\ntimeout_secs = 2\nconnect_timeout_secs = 1\n";

/// Paired with tokens living 2 s and waited until they expired, with `toml` extras: `token`
/// must refresh and has no valid token to fall back on.
fn paired_stale(toml: &str) -> (Env, Vec<u8>) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .toml(toml)
        .start();
    env.pair();
    std::thread::sleep(MS(2100));
    let store = std::fs::read(&env.store).expect("store written by pair");
    (env, store)
}

/// `token` must fail with `code`, name the token endpoint and `has`, print no token, leave the
/// store byte for byte as it was, and the same refresh token must still work afterwards.
fn refresh_fails_cleanly(env: &Env, store_before: &[u8], code: i32, has: &str) -> Output {
    let out = env.run(&["token"]);
    out.code(code)
        .stderr_has(&format!("{}/token", env.base()))
        .stderr_has(has);
    assert_eq!(out.stdout, "", "no token may be printed");
    assert_eq!(
        std::fs::read(&env.store).unwrap(),
        store_before,
        "the store changed"
    );
    // Nothing lost: the stored refresh token is still good once the server behaves.
    let rt = env.stored("refresh_token").unwrap();
    assert!(env.server().live_refresh_tokens().contains(&rt));
    env.token();
    out
}

// --- oversized and endless bodies ---------------------------------------------------------------

#[test]
fn oversized_poll_answer_is_capped_and_retried() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml("[network]\nmax_body_bytes = 1024\n")
        .start();
    env.server().inject(Endpoint::Token, Fault::Oversized(4096));
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "retrying", "paired"]);
    let reason = out.events()[1]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&format!("{}/token", env.base()))
            && reason.contains("larger than 1024 bytes"),
        "{reason}"
    );
}

#[test]
fn flooding_answers_are_capped_not_read_forever() {
    // A body that never ends and comes as fast as it is read: the cap ends it at once.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Flood);
    let start = Instant::now();
    let out = env.pair();
    assert_eq!(out.event_names(), ["retrying", "code", "paired"]);
    let reason = out.events()[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("larger than 65536 bytes"), "{reason}");
    assert!(start.elapsed() < scaled(S(15)), "{:?}", start.elapsed());
}

#[test]
fn flooding_refresh_answer_fails_cleanly_and_keeps_the_store() {
    let (env, before) = paired_stale("");
    env.server().inject(Endpoint::Token, Fault::Flood);
    let start = Instant::now();
    refresh_fails_cleanly(&env, &before, exit::NETWORK, "larger than 65536 bytes");
    assert!(start.elapsed() < scaled(S(10)));
}

#[test]
fn trickling_refresh_answer_hits_the_timeout_and_keeps_the_store() {
    // Headers, then a byte every 50 ms forever: under the cap for a long time, so the
    // whole-request timeout must end it.
    let (env, before) = paired_stale(SHORT_TIMEOUTS);
    env.server().inject(Endpoint::Token, Fault::Endless);
    let start = Instant::now();
    refresh_fails_cleanly(&env, &before, exit::NETWORK, "timed out");
    let took = start.elapsed();
    assert!(took >= S(2) && took < scaled(S(8)), "{took:?}");
}

// --- servers that never answer ------------------------------------------------------------------

#[test]
fn server_that_reads_and_never_answers_times_out_and_keeps_the_store() {
    let (env, before) = paired_stale(SHORT_TIMEOUTS);
    env.server().inject(Endpoint::Token, Fault::Hang);
    let start = Instant::now();
    refresh_fails_cleanly(&env, &before, exit::NETWORK, "timed out");
    let took = start.elapsed();
    assert!(took >= S(2) && took < scaled(S(8)), "{took:?}");
}

/// A port whose connections the kernel accepts (listen backlog) but nobody ever reads from.
fn silent_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind")
}

#[test]
fn server_that_accepts_and_never_reads_times_out_http_and_https() {
    // The revocation endpoint points at a port that never answers, plain and TLS (the TLS
    // handshake never completes). unpair still deletes locally and says what failed.
    let silent = silent_port();
    let port = silent.local_addr().unwrap().port();
    for scheme in ["http", "https"] {
        let env = Setup::new(Provider::Generic)
            .approve_after_polls(0)
            .toml(SHORT_TIMEOUTS)
            .start();
        env.pair();
        let text = env.config_file().replace(
            &format!("{}/revoke", env.base()),
            &format!("{scheme}://127.0.0.1:{port}/revoke"),
        );
        env.write_config(&text);
        let start = Instant::now();
        let out = env.run(&["unpair"]);
        let took = start.elapsed();
        out.code(exit::OK)
            .stdout_has("Unpaired locally")
            .stdout_has(&format!("{scheme}://127.0.0.1:{port}/revoke: timed out"));
        // Refresh token, then access token: two requests of at most 2 s each.
        assert!(took >= S(2) && took < scaled(S(10)), "{scheme}: {took:?}");
        assert!(env.store_json().is_none());
    }
    drop(silent);
}

#[test]
fn silent_device_endpoint_is_retried_with_the_timeout_as_reason() {
    let silent = silent_port();
    let port = silent.local_addr().unwrap().port();
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml("[network]\ntimeout_secs = 1\nconnect_timeout_secs = 1\n")
        .start();
    env.write_config(&env.config_file().replace(
        &format!("{}/device/code", env.base()),
        &format!("http://127.0.0.1:{port}/device/code"),
    ));
    let mut run = env.cmd(&["pair", "--json"]).spawn();
    // First attempt times out at 1 s, the retry comes about 1 s later and times out 1 s after.
    std::thread::sleep(scaled(S(5)));
    run.kill();
    let out = run.wait();
    assert!(!out.stderr.contains("panicked"), "{}", out.show());
    let retrying = out.events_named("retrying");
    assert!(retrying.len() >= 2, "{}", out.show());
    for e in retrying {
        assert_eq!(
            e["reason"],
            format!("http://127.0.0.1:{port}/device/code: timed out")
        );
    }
    drop(silent);
}

// --- redirects ----------------------------------------------------------------------------------

/// A second server on another port: the redirect target. It must never see a request.
fn other_server() -> TestServer {
    TestServer::start(Behavior::generic()).expect("second server")
}

#[test]
fn redirect_of_the_device_request_is_refused_not_followed() {
    let other = other_server();
    let env = Setup::new(Provider::Generic).start();
    for status in [301, 302, 303, 307, 308] {
        env.server().inject(
            Endpoint::DeviceAuthorization,
            Fault::Redirect {
                status,
                location: other.url("/device/code?user_code=LEAKED"),
            },
        );
        let out = env.run(&["pair", "--json"]);
        out.code(exit::PROVIDER)
            .stderr_has(&format!("{}/device/code", env.base()))
            .stderr_has(&format!("HTTP {status}"))
            .stderr_has("redirect");
        assert!(!out.stderr.contains("LEAKED"), "{}", out.show());
        assert_eq!(out.event_names(), ["error"]);
    }
    assert_eq!(other.stats().requests, 0, "a redirect was followed");
}

#[test]
fn redirect_of_a_poll_is_refused_and_keeps_the_old_tokens() {
    let other = other_server();
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.pair();
    let before = std::fs::read(&env.store).unwrap();
    env.server().inject(
        Endpoint::Token,
        Fault::Redirect {
            status: 307,
            location: "https://evil.example/token".into(),
        },
    );
    // --force: pairing again while paired (the old tokens must survive the failure).
    let out = env.run(&["pair", "--json", "--force"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/token", env.base()))
        .stderr_has("HTTP 307")
        .stderr_has("redirect");
    assert_eq!(out.event_names(), ["code", "error"]);
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
    assert_eq!(other.stats().requests, 0);
}

#[test]
fn redirect_of_a_refresh_is_refused_and_keeps_the_store() {
    let other = other_server();
    let (env, before) = paired_stale("");
    env.server().inject(
        Endpoint::Token,
        Fault::Redirect {
            status: 302,
            location: other.url("/token"),
        },
    );
    let out = refresh_fails_cleanly(&env, &before, exit::PROVIDER, "HTTP 302");
    assert!(out.stderr.contains("redirect"), "{}", out.show());
    assert_eq!(other.stats().requests, 0);
}

// --- HTML error pages ---------------------------------------------------------------------------

#[test]
fn html_page_instead_of_a_poll_answer_is_retried() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server().inject(Endpoint::Token, Fault::Html(502));
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "retrying", "paired"]);
    let reason = out.events()[1]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("HTTP 502") && reason.contains("HTML page"),
        "{reason}"
    );
}

#[test]
fn html_page_instead_of_a_refresh_answer_fails_cleanly_and_keeps_the_store() {
    let (env, before) = paired_stale("");
    env.server().inject(Endpoint::Token, Fault::Html(503));
    refresh_fails_cleanly(&env, &before, exit::NETWORK, "HTML page");
}

#[test]
fn captive_portal_page_with_200_stops_pairing_clearly() {
    // A 200 the client cannot read may have carried tokens: it is not polled again (a second
    // redemption can revoke the grant); the message says what came instead.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server().inject(
        Endpoint::Token,
        Fault::Raw {
            status: 200,
            content_type: "text/html".into(),
            body: "<html><body>Log in to the hotel Wi-Fi</body></html>".into(),
        },
    );
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/token: HTTP 200", env.base()))
        .stderr_has("HTML page");
    assert_eq!(out.event_names(), ["code", "error"]);
}

// --- http:// off loopback -----------------------------------------------------------------------

#[test]
fn http_urls_off_loopback_are_refused_before_any_request() {
    let env = Env::generic();
    let original = env.config_file();
    for url in [
        "http://auth.example.com/token",
        "http://127.0.0.1.example.com/token",
        "http://user@127.0.0.1/token",
        "http://10.0.0.1/token",
        "ftp://127.0.0.1/token",
    ] {
        env.write_config(&original.replace(&format!("{}/token", env.base()), url));
        env.run(&["pair", "--json"])
            .code(exit::CONFIG)
            .stderr_has("provider.token_endpoint");
    }
    assert_eq!(env.server().stats().requests, 0);
}

#[test]
fn discovery_naming_http_endpoints_off_loopback_is_refused() {
    let env = Setup::new(Provider::Discovery).start();
    let b = env.base();
    env.server().inject(
        Endpoint::Discovery,
        Fault::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: format!(
                r#"{{"issuer":"{b}","device_authorization_endpoint":"{b}/device/code","token_endpoint":"http://tokens.example.net/token"}}"#
            ),
        },
    );
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has("token_endpoint refused")
        .stderr_has("plain http");
    assert_eq!(env.server().stats().device_codes_issued, 0);
}

#[test]
fn http_verification_uri_complete_off_loopback_is_dropped_not_drawn() {
    // The plain URI and the code still work; the QR falls back to the plain URI.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    let b = env.base().to_string();
    env.server().inject(
        Endpoint::DeviceAuthorization,
        Fault::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: format!(
                r#"{{"device_code":"dc-0123456789abcdef","user_code":"ABCD-EFGH","verification_uri":"{b}/device","verification_uri_complete":"http://phish.example/device?user_code=ABCD-EFGH","expires_in":600,"interval":1}}"#
            ),
        },
    );
    let out = env.run(&["pair", "--json"]);
    // The raw answer's device code is unknown to the server: its poll gets invalid_grant.
    out.code(exit::PROVIDER).stderr_has("invalid_grant");
    assert!(!out.stdout.contains("phish") && !out.stderr.contains("phish"));
    let code = &out.events_named("code")[0];
    assert_eq!(code["verification_uri"], format!("{b}/device"));
    assert!(code["verification_uri_complete"].is_null(), "{code}");
}
