//! Proxies from the environment, end to end: loopback is always reached directly.
//!
//! The harness removes every proxy variable from the commands it runs; these tests set them on
//! purpose, pointing at a "proxy" that refuses every CONNECT, so a request that wrongly went
//! through it would fail.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A proxy on 127.0.0.1 that answers every request with 403 and counts the connections.
fn refusing_proxy() -> (String, Arc<AtomicUsize>) {
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
fn loopback_provider_is_reached_directly_whatever_the_proxy_variables_say() {
    let (proxy, hits) = refusing_proxy();
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
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a loopback request went to the proxy"
    );
}
