//! Proxies, end to end, against a real proxy the tests start (`devauth_testserver::TestProxy`:
//! HTTP CONNECT on 127.0.0.1, with a TLS front for `https://` proxies, counting every tunnel it
//! opens).
//!
//! The provider is `https://provider.devauth.test:PORT` (TLS with the test-only certificate for
//! `*.devauth.test`, trusted through `ca_file`): not loopback, so devauth sends it to the proxy,
//! and the proxy's own host map sends the tunnel to the test server on 127.0.0.1. No DNS is
//! involved. Tests that need devauth itself to resolve that name (going direct: `NO_PROXY`,
//! `proxy = "none"`) run in a network namespace with their own hosts file (`common::netns`).
//!
//! The harness removes every proxy variable from the commands it runs; these tests set them on
//! purpose. A proxy password must never show in any output.

mod common;

use common::netns::Netns;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const NAME: &str = "provider.devauth.test";
const PASSWORD: &str = "p@ss:w0rd/x";
/// `PASSWORD` percent-encoded for a URL's userinfo.
const PASSWORD_IN_URL: &str = "p%40ss%3Aw0rd%2Fx";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The provider at `https://provider.devauth.test:PORT`, listening on `bind`.
fn provider_at(bind: &str, behavior: Behavior) -> TestServer {
    let identity =
        TlsIdentity::from_files(fixture("names.pem"), fixture("names.key")).expect("names.pem");
    TestServer::start_tls_named(bind.parse().expect("bind"), NAME, behavior, identity)
        .expect("test server")
}

fn approving() -> Behavior {
    Behavior {
        auto_approve_after_polls: Some(0),
        ..Behavior::generic()
    }
}

/// A proxy that tunnels `provider.devauth.test` to the server.
fn proxy_for(server: &TestServer, options: ProxyOptions) -> TestProxy {
    TestProxy::start(options.host(NAME, server.addr())).expect("test proxy")
}

/// The environment: the server, `ca_file`, and `network` lines (the proxy keys) if any.
fn env_with(server: TestServer, network: &str) -> Env {
    Setup::new(Provider::Generic)
        .server(server)
        .provider_toml(&format!("ca_file = \"{}\"", fixture("ca.pem")))
        .toml(&format!("[network]\nconnect_timeout_secs = 5\n{network}"))
        .start()
}

fn target(env: &Env) -> String {
    format!("{NAME}:{}", env.server().port())
}

/// No output of any run shows the proxy password (raw or encoded).
fn assert_password_hidden(outputs: &[&Output]) {
    for out in outputs {
        for secret in [PASSWORD, PASSWORD_IN_URL] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "the proxy password leaked:\n{}",
                out.show()
            );
        }
    }
}

#[test]
fn pairing_refresh_and_revocation_over_tls_through_a_connect_proxy() {
    let server = provider_at(
        "127.0.0.1:0",
        Behavior {
            token_lifetime: Some(2),
            ..approving()
        },
    );
    let proxy = proxy_for(&server, ProxyOptions::default());
    let env = env_with(server, "");
    let url = format!("http://{}", proxy.host_port());
    let pair = env.cmd(&["pair", "--json"]).env("HTTPS_PROXY", &url).run();
    pair.code(exit::OK);
    assert_eq!(
        pair.event_names().last().map(String::as_str),
        Some("paired")
    );
    let after_pair = proxy.tunnels_to(&target(&env));
    assert!(after_pair >= 1, "{:?}", proxy.records());
    // Refresh (the margin is capped at half of 2 s), then revocation: each through a tunnel.
    std::thread::sleep(Duration::from_millis(1100));
    let token = env.cmd(&["token"]).env("https_proxy", &url).run();
    token.code(exit::OK);
    assert_eq!(env.server().stats().refreshes, 1);
    let after_refresh = proxy.tunnels_to(&target(&env));
    assert!(after_refresh > after_pair, "{:?}", proxy.records());
    let unpair = env.cmd(&["unpair"]).env("ALL_PROXY", &url).run();
    unpair.code(exit::OK).stdout_has("revoked");
    assert_eq!(env.server().stats().revocations, 2);
    assert!(proxy.tunnels_to(&target(&env)) > after_refresh);
    // Every request was a tunnel to the provider, without credentials; TLS went end to end.
    for r in proxy.records() {
        assert_eq!(
            (r.target.as_str(), r.credentials.as_deref(), r.status),
            (target(&env).as_str(), None, 200)
        );
    }
    assert!(env.server().tls_errors().is_empty());
}

#[test]
fn configured_proxy_with_credentials_is_used_and_the_environment_ignored() {
    let server = provider_at("127.0.0.1:0", approving());
    let proxy = proxy_for(
        &server,
        ProxyOptions {
            credentials: Some(("dev".into(), PASSWORD.into())),
            ..ProxyOptions::default()
        },
    );
    let (decoy, decoy_hits) = refusing_listener();
    let env = env_with(
        server,
        &format!(
            "proxy = \"http://dev:{PASSWORD_IN_URL}@{}\"\n",
            proxy.host_port()
        ),
    );
    let out = env
        .cmd(&["pair", "--json"])
        .env("HTTPS_PROXY", &decoy)
        .run();
    out.code(exit::OK);
    assert!(
        proxy.tunnels_to(&target(&env)) >= 1,
        "{:?}",
        proxy.records()
    );
    for r in proxy.records() {
        assert_eq!(r.credentials.as_deref(), Some(&*format!("dev:{PASSWORD}")));
    }
    assert_eq!(decoy_hits.load(Ordering::SeqCst), 0, "HTTPS_PROXY was used");
    let status = env.run(&["status"]);
    assert_password_hidden(&[&out, &status]);
}

#[test]
fn socks_proxies_are_refused_naming_the_setting_never_the_password() {
    // SOCKS is not supported (docs/size.md): said at once, never silently going direct.
    let server = provider_at("127.0.0.1:0", approving());
    let env = env_with(server, "");
    let url = format!("socks5h://dev:{PASSWORD_IN_URL}@127.0.0.1:1080");
    let out = env.cmd(&["pair", "--json"]).env("ALL_PROXY", &url).run();
    out.code(exit::CONFIG).stderr_has(
        "ALL_PROXY: not a usable proxy URL: socks5h proxies are not supported: devauth talks to \
         HTTP proxies",
    );
    let mut text = env.config_file();
    text.push_str(&format!("proxy = \"{url}\"\n"));
    env.write_config(&text);
    let config = env.run(&["pair", "--json"]);
    config
        .code(exit::CONFIG)
        .stderr_has("network.proxy: \"none\" or a proxy URL expected; socks5h proxies");
    assert_password_hidden(&[&out, &config]);
    assert_eq!(env.server().stats().requests, 0);
}

#[test]
fn https_proxy_tls_to_the_proxy_then_tls_to_the_provider_inside() {
    let server = provider_at("127.0.0.1:0", approving());
    let proxy = proxy_for(
        &server,
        ProxyOptions {
            credentials: Some(("dev".into(), PASSWORD.into())),
            ..ProxyOptions::default()
        },
    );
    // The proxy's certificate names 127.0.0.1 and comes from the same test CA (`ca_file`).
    let identity =
        TlsIdentity::from_files(fixture("server.pem"), fixture("server.key")).expect("server.pem");
    let front = proxy.tls_front(identity).expect("TLS front");
    let env = env_with(server, "");
    let url = format!("https://dev:{PASSWORD_IN_URL}@{}", front.host_port());
    let out = env.cmd(&["pair", "--json"]).env("HTTPS_PROXY", &url).run();
    out.code(exit::OK);
    assert!(
        proxy.tunnels_to(&target(&env)) >= 1,
        "{:?}",
        proxy.records()
    );
    assert_password_hidden(&[&out]);
}

/// Runs `pair --json` with `HTTPS_PROXY` = `proxy_url` until the proxy has been asked twice
/// (the first attempt and a retry), then stops it: every `retrying` reason must name the
/// endpoint and the proxy, and contain `says`; no code may be shown.
fn refused_through(env: &Env, proxy_url: &str, label: &str, asked: impl Fn() -> usize, says: &str) {
    let mut run = env
        .cmd(&["pair", "--json"])
        .env("HTTPS_PROXY", proxy_url)
        .spawn();
    let retried = wait_until(scaled(Duration::from_secs(20)), || asked() >= 2);
    // The retry's `retrying` event comes a moment after the proxy saw it.
    std::thread::sleep(scaled(Duration::from_millis(300)));
    run.kill();
    let out = run.wait();
    assert!(retried, "not retried\n{}", out.show());
    let retrying = out.events_named("retrying");
    assert!(!retrying.is_empty(), "{}", out.show());
    let expected = format!("{}/device/code: proxy {label}: ", env.base());
    for e in &retrying {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&expected) && reason.contains(says),
            "reason {reason:?} should start with {expected:?} and say {says:?}"
        );
    }
    assert!(
        out.event_names().iter().all(|n| n == "retrying"),
        "{}",
        out.show()
    );
    assert_password_hidden(&[&out]);
    assert_eq!(env.server().stats().requests, 0);
}

fn refusing_proxy_case(options: ProxyOptions, userinfo: &str, says: &str) {
    let server = provider_at("127.0.0.1:0", approving());
    let proxy = proxy_for(&server, options);
    let env = env_with(server, "");
    let url = format!("http://{userinfo}{}", proxy.host_port());
    let label = format!("{} (from HTTPS_PROXY)", proxy.host_port());
    refused_through(&env, &url, &label, || proxy.records().len(), says);
    assert_eq!(proxy.tunnels_to(&target(&env)), 0);
}

#[test]
fn proxy_wanting_credentials_is_named_with_407() {
    refusing_proxy_case(
        ProxyOptions {
            credentials: Some(("dev".into(), PASSWORD.into())),
            ..ProxyOptions::default()
        },
        "",
        "wants a user and password (407 Proxy Authentication Required)",
    );
}

#[test]
fn proxy_refusing_the_credentials_is_named_with_407() {
    refusing_proxy_case(
        ProxyOptions {
            credentials: Some(("dev".into(), "another".into())),
            ..ProxyOptions::default()
        },
        &format!("dev:{PASSWORD_IN_URL}@"),
        "refused the user and password (407 Proxy Authentication Required)",
    );
}

#[test]
fn proxy_refusing_the_tunnel_is_named_with_403() {
    refusing_proxy_case(
        ProxyOptions {
            refuse_with: Some(403),
            ..ProxyOptions::default()
        },
        "",
        "refused the tunnel (403 Forbidden)",
    );
}

#[test]
fn proxy_failing_to_reach_the_provider_is_named_with_502_and_exits_as_a_network_error() {
    let server = provider_at(
        "127.0.0.1:0",
        Behavior {
            token_lifetime: Some(1),
            ..approving()
        },
    );
    let good = proxy_for(&server, ProxyOptions::default());
    let bad = proxy_for(
        &server,
        ProxyOptions {
            refuse_with: Some(502),
            ..ProxyOptions::default()
        },
    );
    let env = env_with(server, "");
    let bad_url = format!("http://{}", bad.host_port());
    let label = format!("{} (from HTTPS_PROXY)", bad.host_port());
    refused_through(
        &env,
        &bad_url,
        &label,
        || bad.records().len(),
        "could not reach the provider (502 Bad Gateway)",
    );
    // A one-shot command: paired through the good proxy, the token expired, the refresh
    // through the bad one is a network error (exit 7) that names the proxy.
    let good_url = format!("http://{}", good.host_port());
    env.cmd(&["pair", "--json"])
        .env("HTTPS_PROXY", &good_url)
        .run()
        .code(exit::OK);
    std::thread::sleep(Duration::from_millis(1200));
    let out = env.cmd(&["token"]).env("HTTPS_PROXY", &bad_url).run();
    out.code(exit::NETWORK)
        .stderr_has(&format!("proxy {label}: could not reach the provider (502"));
}

#[test]
fn proxy_that_is_down_is_named() {
    let server = provider_at("127.0.0.1:0", approving());
    let env = env_with(server, "");
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = format!("http://{closed}");
    let label = format!("{closed} (from HTTPS_PROXY)");
    // Nothing answers there to count attempts: give it time for the first try and a retry.
    let mut run = env
        .cmd(&["pair", "--json"])
        .env("HTTPS_PROXY", &url)
        .spawn();
    std::thread::sleep(scaled(Duration::from_millis(2500)));
    run.kill();
    let out = run.wait();
    let retrying = out.events_named("retrying");
    assert!(retrying.len() >= 2, "not retried\n{}", out.show());
    for e in &retrying {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!(
                "{}/device/code: proxy {label}: cannot be reached: ",
                env.base()
            )) && reason.contains(&format!("{closed} connection refused")),
            "{reason:?}"
        );
    }
}

/// A "proxy" that answers every connection with 403 and counts the connections.
fn refusing_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut conn = conn;
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, hits)
}

#[test]
fn loopback_provider_is_reached_directly_whatever_the_proxy_settings_say() {
    let (proxy, hits) = refusing_listener();
    let env = Setup::new(Provider::Generic).approve_after_polls(1).start();
    let mut cmd = env.cmd(&["pair", "--json"]);
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd = cmd.env(var, proxy.as_str());
    }
    let out = cmd.run();
    out.code(exit::OK);
    assert_eq!(out.event_names().last().map(String::as_str), Some("paired"));
    let token = env
        .cmd(&["token"])
        .env("ALL_PROXY", proxy.as_str())
        .env("HTTP_PROXY", proxy.as_str())
        .run();
    token.code(exit::OK);
    // A configured proxy does not take loopback either.
    let mut text = env.config_file();
    text.push_str(&format!("[network]\nproxy = \"{proxy}\"\n"));
    env.write_config(&text);
    env.run(&["unpair"]).code(exit::OK);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a loopback request went to the proxy"
    );
}

/// Inside a network namespace where `provider.devauth.test` is 192.0.2.10 (hosts file): with
/// a proxy in the environment that would tunnel there too, `NO_PROXY` (by domain, and by
/// network for an address URL), `proxy = "none"` and the config's `no_proxy` all go direct —
/// the proxy sees nothing — while without them the same request goes through it.
#[test]
fn no_proxy_and_proxy_none_go_direct() {
    let ns = Netns::new().address("192.0.2.10").host("192.0.2.10", NAME);
    if !ns.enter("no_proxy_and_proxy_none_go_direct") {
        return;
    }
    let server = provider_at("192.0.2.10:0", approving());
    let addr: SocketAddr = server.addr();
    let proxy = proxy_for(&server, ProxyOptions::default());
    let url = format!("http://{}", proxy.host_port());
    let env = env_with(server, "");
    let pair = |vars: &[(&str, &str)]| {
        let mut cmd = env.cmd(&["pair", "--json"]);
        for (k, v) in vars {
            cmd = cmd.env(k, *v);
        }
        let out = cmd.run();
        out.code(exit::OK);
        out
    };
    // Control: through the proxy.
    pair(&[("HTTPS_PROXY", &url)]);
    let through = proxy.records().len();
    assert!(through >= 1, "the control pairing did not use the proxy");
    // NO_PROXY by domain (curl: a domain matches its subdomains), both spellings.
    pair(&[
        ("HTTPS_PROXY", &url),
        ("NO_PROXY", "localhost,devauth.test"),
    ]);
    pair(&[("https_proxy", &url), ("no_proxy", ".devauth.test")]);
    // proxy = "none" in the config: the environment is ignored.
    let base_config = env.config_file();
    env.write_config(&format!("{base_config}proxy = \"none\"\n"));
    pair(&[("HTTPS_PROXY", &url)]);
    // A configured proxy with the config's no_proxy.
    env.write_config(&format!(
        "{base_config}proxy = \"{url}\"\nno_proxy = [\"*.devauth.test\"]\n"
    ));
    pair(&[]);
    assert_eq!(proxy.records().len(), through, "{:?}", proxy.records());
    // An address URL and a NO_PROXY network (CIDR, curl 7.86+): the certificate names
    // 192.0.2.10 too.
    let by_address = base_config.replace(NAME, &addr.ip().to_string());
    env.write_config(&by_address);
    pair(&[("HTTPS_PROXY", &url), ("NO_PROXY", "192.0.2.0/24")]);
    assert_eq!(proxy.records().len(), through, "{:?}", proxy.records());
    println!("direct: 5 pairings without the proxy; {through} tunnel(s) in the control run");
}
