//! The RFC 7523 JWT bearer grant of the test server (checked with the repository's test-only
//! key) and pausing/resuming the server.

mod common;

use common::*;
use devauth_testserver::{Behavior, JWT_BEARER_GRANT, JwtBearer, TestServer, jwt_parts};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/test-only-jwt-public-key.rsapub.der");
const PEM: &str = include_str!("../../tests/fixtures/test-only-jwt-key.pem");
const ISS: &str = "svc@devauth.test";

fn key() -> RsaKeyPair {
    let b64: String = PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = devauth_testserver_b64(&b64);
    RsaKeyPair::from_pkcs8(&der).unwrap()
}

/// Standard base64 decoding for the fixture (tests only).
fn devauth_testserver_b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn b64url(data: &[u8]) -> String {
    devauth_testserver::b64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let k = key();
    let mut sig = vec![0u8; k.public().modulus_len()];
    k.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64url(&sig))
}

fn claims(srv: &TestServer, jti: &str) -> Value {
    json!({"iss": ISS, "aud": srv.url("/token"), "iat": now(), "exp": now() + 3600, "jti": jti, "scope": "api"})
}

fn server() -> TestServer {
    TestServer::start(Behavior {
        jwt_bearer: Some(JwtBearer::new(PUBLIC.to_vec(), ISS)),
        token_lifetime: Some(60),
        ..Behavior::default()
    })
    .unwrap()
}

fn exchange(srv: &TestServer, assertion: &str) -> Resp {
    post_form(
        &srv.base_url(),
        "/token",
        &[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)],
    )
}

#[test]
fn a_signed_assertion_gets_an_access_token_without_refresh_token() {
    let srv = server();
    let jwt = sign(json!({"alg": "RS256", "typ": "JWT"}), claims(&srv, "j1"));
    let r = exchange(&srv, &jwt);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["access_token"].as_str().unwrap().starts_with("at-"));
    assert_eq!(v["expires_in"], 60);
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none());
    assert_eq!(v["scope"], "api");
    assert_eq!(srv.stats().jwt_grants, 1);
    // The token works at userinfo.
    assert_eq!(
        userinfo(&srv.base_url(), v["access_token"].as_str().unwrap()).status,
        200
    );
    // The helper decodes what was sent.
    let parts = jwt_parts(&jwt).unwrap();
    assert_eq!(parts.header["alg"], "RS256");
    assert_eq!(parts.claims["iss"], ISS);
    assert_eq!(parts.signature.len(), 256);
}

#[test]
fn bad_assertions_are_refused_with_invalid_grant() {
    let srv = server();
    let h = json!({"alg": "RS256", "typ": "JWT"});
    let mut cases: Vec<(String, &str)> = Vec::new();
    // Replay of the same jti.
    let ok = sign(h.clone(), claims(&srv, "same"));
    assert_eq!(exchange(&srv, &ok).status, 200);
    cases.push((ok, "jti"));
    // Wrong issuer, audience, lifetime, expired, future.
    let mut c = claims(&srv, "a");
    c["iss"] = json!("someone@else");
    cases.push((sign(h.clone(), c), "iss"));
    let mut c = claims(&srv, "b");
    c["aud"] = json!("https://elsewhere/token");
    cases.push((sign(h.clone(), c), "aud"));
    let mut c = claims(&srv, "c");
    c["exp"] = json!(now() + 7200);
    cases.push((sign(h.clone(), c), "exp - iat"));
    let mut c = claims(&srv, "d");
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3700);
    cases.push((sign(h.clone(), c), "timeframe"));
    // alg none / HS256 and a tampered payload.
    cases.push((sign(json!({"alg": "HS256"}), claims(&srv, "e")), "alg"));
    let good = sign(h.clone(), claims(&srv, "f"));
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims(&srv, "f");
    forged["iss"] = json!(ISS);
    forged["scope"] = json!("admin");
    let forged_part = b64url(forged.to_string().as_bytes());
    parts[1] = &forged_part;
    cases.push((parts.join("."), "Signature"));
    cases.push(("not.a.jwt".into(), "base64url"));
    for (jwt, why) in &cases {
        let r = exchange(&srv, jwt);
        assert_eq!(r.status, 400, "{why}: {}", r.text());
        assert_eq!(r.error(), "invalid_grant", "{why}");
        let desc = r.json()["error_description"].as_str().unwrap().to_string();
        assert!(desc.contains(why), "{why}: {desc}");
    }
    assert_eq!(srv.stats().jwt_grants, 1);
    assert_eq!(srv.stats().jwt_rejections as usize, cases.len());
}

#[test]
fn the_grant_type_is_unsupported_unless_configured() {
    let srv = TestServer::start(Behavior::default()).unwrap();
    let r = post_form(
        &srv.base_url(),
        "/token",
        &[
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", "x.y.z"),
            ("client_id", "devauth-test"),
        ],
    );
    assert_eq!(r.error(), "unsupported_grant_type");
}

#[test]
fn pause_refuses_connections_and_resume_keeps_the_state() {
    let mut srv = TestServer::start(Behavior {
        enforce_interval: false,
        ..Behavior::default()
    })
    .unwrap();
    let tokens = pair(&srv);
    let base = srv.base_url();
    srv.pause();
    assert!(std::net::TcpStream::connect_timeout(&srv.addr(), Duration::from_secs(1)).is_err());
    srv.resume().unwrap();
    let r = refresh(&base, str_of(&tokens, "refresh_token"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(srv.stats().refreshes, 1);
}
