//! IPv6, end to end, each test in network and mount namespaces of its own (`common::netns`:
//! `unshare`, `ip`, a hosts file bind-mounted over /etc/hosts; root only, skipped otherwise):
//!
//! - an IPv6-only network (loopback without 127.0.0.1, the provider's name with an AAAA record
//!   only): pairing, refresh and revocation;
//! - dual stack with one family broken — silently (SYNs dropped: a listener with a full accept
//!   queue) or loudly (connection refused) — for each family in turn: the pairing connects
//!   through the other family within about a second (RFC 8305's 250 ms attempt delay, not the
//!   10 s connect timeout), and devauth's log line names the address that worked.
//!
//! The provider speaks TLS with the test-only certificate for `*.devauth.test`
//! (tests/fixtures/tls/names.pem), trusted through `ca_file`. Each test prints the time to
//! connect that devauth logged (`cargo test --test ipv6 -- --nocapture` shows it).

mod common;

use common::netns::{Netns, SilentPort};
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

const V6: &str = "2001:db8::10";
/// A unique local address: RFC 6724 ranks it below IPv4, so IPv4 is tried first.
const V6_ULA: &str = "fd00::10";
const V4: &str = "192.0.2.10";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn names_identity() -> TlsIdentity {
    TlsIdentity::from_files(fixture("names.pem"), fixture("names.key")).expect("names.pem")
}

/// The provider at `https://NAME:PORT`, listening on `ip` (port: ephemeral, or `port`).
fn provider(name: &str, ip: &str, port: u16, behavior: Behavior) -> TestServer {
    let bind = SocketAddr::new(ip.parse().expect("ip"), port);
    TestServer::start_tls_named(bind, name, behavior, names_identity()).expect("test server")
}

fn setup(server: TestServer) -> Env {
    Setup::new(Provider::Generic)
        .server(server)
        .provider_toml(&format!("ca_file = \"{}\"", fixture("ca.pem")))
        // The default; said here because the tests' point is that fallback beats it.
        .toml("[network]\nconnect_timeout_secs = 10\n")
        .start()
}

/// The `connected to ADDR in N ms (...)` line devauth wrote, as (address, ms, whole line).
fn connect_line(out: &Output) -> Option<(String, u64, String)> {
    out.stderr.lines().find_map(|line| {
        let rest = line.split(": connected to ").nth(1)?;
        let (addr, rest) = rest.split_once(" in ")?;
        let ms = rest.split_once(" ms")?.0.parse().ok()?;
        Some((addr.to_string(), ms, line.to_string()))
    })
}

#[test]
fn ipv6_only_pairing_refresh_and_revocation() {
    let ns = Netns::new()
        .ip("addr del 127.0.0.1/8 dev lo")
        .address(V6)
        .host(V6, "v6only.devauth.test");
    if !ns.enter("ipv6_only_pairing_refresh_and_revocation") {
        return;
    }
    // No IPv4 left at all: connecting to an IPv4 address fails at once.
    assert!(std::net::TcpStream::connect(("127.0.0.1", 9)).is_err());
    let behavior = Behavior {
        auto_approve_after_polls: Some(1),
        token_lifetime: Some(2),
        ..Behavior::generic()
    };
    let env = setup(provider("v6only.devauth.test", V6, 0, behavior));
    assert!(env.base().starts_with("https://v6only.devauth.test:"));
    let started = std::time::Instant::now();
    env.pair();
    println!(
        "IPv6 only: pairing over [{V6}] took {} ms",
        started.elapsed().as_millis()
    );
    // Refresh (the margin is capped at half of the 2 s lifetime).
    std::thread::sleep(Duration::from_millis(1100));
    let token = env.token();
    assert_eq!(env.server().stats().refreshes, 1);
    assert!(env.server().live_access_tokens().contains(&token));
    // Revocation.
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    assert_eq!(env.server().stats().revocations, 2);
    assert!(env.store_json().is_none());
    assert!(env.server().tls_errors().is_empty());
}

/// One family broken (`broken`: its address, silent or refusing), the other (`working`)
/// serving: pairing must connect through `working` within about a second, first trying
/// `broken` (the resolver's first choice), and say so on stderr.
fn pairs_around_a_broken_family(name: &str, working: &str, broken: &str, silent: bool) {
    let behavior = Behavior {
        auto_approve_after_polls: Some(0),
        ..Behavior::generic()
    };
    let server = provider(name, working, 0, behavior);
    let port = server.port();
    let broken_addr = SocketAddr::new(broken.parse().expect("ip"), port);
    // Silent: SYNs dropped. Refusing: nothing listens there (an RST).
    let _silent = silent.then(|| SilentPort::bind(broken_addr));
    let env = setup(server);
    let out = env.pair();
    let Some((addr, ms, line)) = connect_line(&out) else {
        panic!(
            "no `connected to ADDR in N ms` line: devauth did not report connecting past the \
             broken address {broken_addr}\n{}",
            out.show()
        );
    };
    let how = if silent { "silent" } else { "refusing" };
    println!("{name}: {how} {broken_addr} -> connected to {addr} in {ms} ms");
    println!("  devauth said: {line}");
    let working_addr = SocketAddr::new(working.parse().expect("ip"), port);
    assert_eq!(addr, working_addr.to_string(), "{line}");
    assert!(line.contains(&broken_addr.to_string()), "{line}");
    let limit = u64::try_from(scaled(Duration::from_secs(1)).as_millis()).unwrap_or(u64::MAX);
    assert!(ms <= limit, "{ms} ms to connect (limit {limit} ms): {line}");
    if silent {
        // The silent address got its 250 ms alone before the other family was tried.
        assert!(ms >= 250, "{line}");
        assert!(line.contains("no answer after"), "{line}");
    } else {
        assert!(line.contains("connection refused after"), "{line}");
    }
    assert_eq!(env.server().stats().tokens_issued, 1);
}

/// `dual.devauth.test`: a global IPv6 address and an IPv4 one; RFC 6724 puts IPv6 first.
fn ipv6_first() -> Netns {
    Netns::new()
        .address(V6)
        .address(V4)
        .host(V6, "dual.devauth.test")
        .host(V4, "dual.devauth.test")
}

/// `ula.devauth.test`: a unique local IPv6 address and an IPv4 one, IPv4 first (musl by RFC
/// 6724's table, glibc by the namespace's gai.conf).
fn ipv4_first() -> Netns {
    Netns::new()
        .address(V6_ULA)
        .address(V4)
        .host(V6_ULA, "ula.devauth.test")
        .host(V4, "ula.devauth.test")
        .prefer_ipv4()
}

#[test]
fn dual_stack_with_silent_ipv6_pairs_over_ipv4_within_a_second() {
    if ipv6_first().enter("dual_stack_with_silent_ipv6_pairs_over_ipv4_within_a_second") {
        pairs_around_a_broken_family("dual.devauth.test", V4, V6, true);
    }
}

#[test]
fn dual_stack_with_refusing_ipv6_pairs_over_ipv4_at_once() {
    if ipv6_first().enter("dual_stack_with_refusing_ipv6_pairs_over_ipv4_at_once") {
        pairs_around_a_broken_family("dual.devauth.test", V4, V6, false);
    }
}

#[test]
fn dual_stack_with_silent_ipv4_pairs_over_ipv6_within_a_second() {
    if ipv4_first().enter("dual_stack_with_silent_ipv4_pairs_over_ipv6_within_a_second") {
        pairs_around_a_broken_family("ula.devauth.test", V6_ULA, V4, true);
    }
}

#[test]
fn dual_stack_with_refusing_ipv4_pairs_over_ipv6_at_once() {
    if ipv4_first().enter("dual_stack_with_refusing_ipv4_pairs_over_ipv6_at_once") {
        pairs_around_a_broken_family("ula.devauth.test", V6_ULA, V4, false);
    }
}
