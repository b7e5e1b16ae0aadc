//! The authorization code grant with PKCE against a raw client: the authorization endpoint's
//! checks, the browser hook that follows the redirect to a loopback listener, S256 at the
//! token endpoint, single-use codes, provider refresh-token rules and the fault knobs.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use devauth_testserver::{
    Behavior, Endpoint, Fault, RedirectState, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestServer,
    form_encode_pairs, visit,
};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn start(b: Behavior) -> TestServer {
    TestServer::start(b).expect("start")
}

/// A one-shot loopback "client": answers the first request with 200 "signed in" and hands
/// its request target to the test.
struct Listener {
    uri: String,
    got: mpsc::Receiver<String>,
}

fn listener() -> Listener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://127.0.0.1:{}/cb", l.local_addr().unwrap().port());
    let (tx, got) = mpsc::channel();
    thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsigned in",
            );
            let _ = tx.send(target);
        }
    });
    Listener { uri, got }
}

fn auth_url(srv: &TestServer, pairs: &[(&str, &str)]) -> String {
    format!(
        "{}?{}",
        srv.url("/authorize"),
        form_encode_pairs(pairs.iter().copied())
    )
}

/// The pairs of a correct S256 request to `redirect_uri`.
fn good<'a>(redirect_uri: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", TEST_CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("state", state),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

/// Query pairs of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("%2B", "+").replace("%2F", "/").replace('+', " "),
            )
        })
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn redeem(srv: &TestServer, code: &str, redirect_uri: &str, verifier: Option<&str>) -> Resp {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", TEST_CLIENT_ID),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    post_form(&srv.base_url(), "/token", &pairs)
}

#[test]
fn sign_in_redirects_to_the_listener_and_the_code_redeems_once() {
    let srv = start(Behavior::generic());
    let l = listener();
    let url = auth_url(&srv, &good(&l.uri, "st-1"));
    let v = srv.sign_in(&url, true).expect("sign in");
    assert_eq!(v.status, 200);
    assert_eq!(v.body, "signed in");
    let target = l.got.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(target.starts_with("/cb?code=ac-"), "{target}");
    assert_eq!(param(&target, "state").as_deref(), Some("st-1"));
    let code = param(&target, "code").unwrap();

    let req = &srv.authorization_requests()[0];
    assert_eq!(req.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(req.code_challenge_method.as_deref(), Some("S256"));
    assert!(req.decided);

    let r = redeem(&srv, &code, &l.uri, Some(VERIFIER));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let access = j["access_token"].as_str().unwrap().to_string();
    assert!(j["refresh_token"].as_str().unwrap().starts_with("rt-"));
    assert!(srv.live_access_tokens().contains(&access));

    // RFC 6749 §4.1.2: the second redemption fails and revokes what the first issued.
    let again = redeem(&srv, &code, &l.uri, Some(VERIFIER));
    assert_eq!(again.status, 400);
    assert_eq!(again.error(), "invalid_grant");
    assert!(!srv.live_access_tokens().contains(&access));
    let s = srv.stats();
    assert_eq!(
        (s.authorization_codes_issued, s.code_grants, s.code_replays),
        (1, 1, 1)
    );
}

#[test]
fn deny_redirects_with_access_denied_and_the_state() {
    let srv = start(Behavior::generic());
    let l = listener();
    let v = srv
        .sign_in(&auth_url(&srv, &good(&l.uri, "st-2")), false)
        .unwrap();
    assert_eq!(v.status, 200);
    let target = l.got.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(param(&target, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&target, "state").as_deref(), Some("st-2"));
    assert_eq!(param(&target, "code"), None);
    assert_eq!(srv.stats().authorization_denials, 1);
}

#[test]
fn pkce_is_verified_at_the_token_endpoint() {
    let srv = start(Behavior::generic());
    let uri = "http://127.0.0.1:9/cb";
    for (verifier, why) in [
        (Some("x".repeat(43)), "PKCE verification failed"),
        (None, "missing code_verifier"),
        (Some("short".to_string()), "malformed code_verifier"),
    ] {
        let to = srv
            .authorization_redirect(&auth_url(&srv, &good(uri, "s")), true)
            .unwrap();
        let code = param(&to, "code").unwrap();
        let r = redeem(&srv, &code, uri, verifier.as_deref());
        assert_eq!(r.status, 400);
        assert_eq!(r.error(), "invalid_grant");
        assert_eq!(r.json()["error_description"], why);
        // A failed attempt does not use the code up: the right verifier still works.
        let ok = redeem(&srv, &code, uri, Some(VERIFIER));
        assert_eq!(ok.status, 200, "{}", ok.text());
    }
    assert_eq!(srv.stats().pkce_failures, 3);
}

#[test]
fn redirect_uri_must_match_at_the_token_endpoint() {
    let srv = start(Behavior::generic());
    let uri = "http://127.0.0.1:9/cb";
    let to = srv
        .authorization_redirect(&auth_url(&srv, &good(uri, "s")), true)
        .unwrap();
    let code = param(&to, "code").unwrap();
    let r = redeem(&srv, &code, "http://127.0.0.1:9/other", Some(VERIFIER));
    assert_eq!(r.error(), "invalid_grant");
    assert_eq!(srv.stats().redirect_mismatches, 1);
    assert_eq!(redeem(&srv, &code, uri, Some(VERIFIER)).status, 200);
}

#[test]
fn authorization_requests_without_s256_are_refused_by_redirect() {
    let srv = start(Behavior::generic());
    let uri = "http://127.0.0.1:9/cb";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            good(uri, "s")
                .into_iter()
                .filter(|(k, _)| !k.starts_with("code_challenge"))
                .collect(),
            "invalid_request",
        ),
        (
            good(uri, "s")
                .into_iter()
                .map(|(k, v)| {
                    if k == "code_challenge_method" {
                        (k, "plain")
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            "invalid_request",
        ),
        (
            good(uri, "s")
                .into_iter()
                .map(|(k, v)| {
                    if k == "response_type" {
                        (k, "token")
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            "unsupported_response_type",
        ),
    ];
    for (pairs, want) in cases {
        let to = srv
            .authorization_redirect(&auth_url(&srv, &pairs), true)
            .unwrap();
        assert!(to.starts_with(uri), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some(want), "{to}");
        assert_eq!(param(&to, "state").as_deref(), Some("s"));
        assert_eq!(param(&to, "code"), None);
    }
    assert!(srv.authorization_requests().is_empty());
    assert_eq!(srv.stats().authorization_errors, 3);
}

#[test]
fn bad_client_or_redirect_uri_gets_a_page_not_a_redirect() {
    let srv = start(Behavior::generic());
    let bad_client: Vec<(&str, &str)> = good("http://127.0.0.1:9/cb", "s")
        .into_iter()
        .map(|(k, v)| {
            if k == "client_id" {
                (k, "evil")
            } else {
                (k, v)
            }
        })
        .collect();
    for pairs in [bad_client, good("https://evil.test/cb", "s")] {
        let e = srv
            .authorization_redirect(&auth_url(&srv, &pairs), true)
            .unwrap_err();
        assert!(e.contains("answered 400"), "{e}");
    }
    let v = visit(&auth_url(&srv, &good("http://127.0.0.1.evil.test/cb", "s"))).unwrap();
    assert_eq!(v.status, 400);
    assert!(v.header("location").is_none());
    assert!(v.body.contains("redirect_uri_mismatch"), "{}", v.body);
}

#[test]
fn registered_non_loopback_redirect_is_accepted() {
    let srv = start(Behavior {
        redirect_uris: vec!["https://device.test/oauth/cb".into()],
        ..Behavior::generic()
    });
    let to = srv
        .authorization_redirect(
            &auth_url(&srv, &good("https://device.test/oauth/cb", "s")),
            true,
        )
        .unwrap();
    assert!(
        to.starts_with("https://device.test/oauth/cb?code=ac-"),
        "{to}"
    );
}

#[test]
fn wrong_or_missing_state_fault() {
    let srv = start(Behavior {
        redirect_state: RedirectState::Replace("forged".into()),
        ..Behavior::generic()
    });
    let uri = "http://127.0.0.1:9/cb";
    let to = srv
        .authorization_redirect(&auth_url(&srv, &good(uri, "mine")), true)
        .unwrap();
    assert_eq!(param(&to, "state").as_deref(), Some("forged"));
    srv.set_behavior(|b| b.redirect_state = RedirectState::Omit);
    let to = srv
        .authorization_redirect(&auth_url(&srv, &good(uri, "mine")), true)
        .unwrap();
    assert_eq!(param(&to, "state"), None);
    assert!(param(&to, "code").is_some());
}

#[test]
fn replayed_redirect_reaches_the_listener_again() {
    let srv = start(Behavior::generic());
    let l = listener();
    srv.sign_in(&auth_url(&srv, &good(&l.uri, "s")), true)
        .unwrap();
    let first = l.got.recv_timeout(Duration::from_secs(5)).unwrap();
    let last = srv.last_redirect().unwrap();
    assert!(last.ends_with(&first), "{last} vs {first}");
    // The one-shot listener is gone: a replay finds nobody (devauth's listener closes too).
    assert!(visit(&last).is_err());
}

#[test]
fn codes_expire() {
    let srv = start(Behavior {
        code_lifetime: Duration::from_millis(50),
        ..Behavior::generic()
    });
    let uri = "http://127.0.0.1:9/cb";
    let to = srv
        .authorization_redirect(&auth_url(&srv, &good(uri, "s")), true)
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let r = redeem(&srv, &param(&to, "code").unwrap(), uri, Some(VERIFIER));
    assert_eq!(r.error(), "invalid_grant");
    assert_eq!(r.json()["error_description"], "authorization code expired");
}

#[test]
fn auto_authorize_answers_with_the_redirect() {
    let srv = start(Behavior {
        auto_authorize: Some(true),
        ..Behavior::generic()
    });
    let v = visit(&auth_url(&srv, &good("http://127.0.0.1:9/cb", "s"))).unwrap();
    assert_eq!(v.status, 302);
    assert!(v.header("location").unwrap().contains("code=ac-"));
    srv.set_behavior(|b| b.auto_authorize = Some(false));
    let v = visit(&auth_url(&srv, &good("http://127.0.0.1:9/cb", "s"))).unwrap();
    assert!(
        v.header("location")
            .unwrap()
            .contains("error=access_denied")
    );
}

#[test]
fn consent_page_form_and_control_api_decide() {
    let srv = start(Behavior::generic());
    let base = srv.base_url();
    let url = auth_url(&srv, &good("http://127.0.0.1:9/cb", "s"));
    let page = visit(&url).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Allow"), "{}", page.body);
    let r = post_form(
        &base,
        "/authorize",
        &[("request", "0"), ("action", "approve")],
    );
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().contains("code=ac-"));
    // Decided once only.
    let r = post_form(&base, "/authorize", &[("request", "0"), ("action", "deny")]);
    assert_eq!(r.status, 400);

    visit(&url).unwrap();
    let r = post_form(&base, "/test/authorize", &[("action", "deny")]);
    assert_eq!(r.status, 200);
    assert!(
        r.json()["redirect_url"]
            .as_str()
            .unwrap()
            .contains("error=access_denied")
    );
    let r = post_form(&base, "/test/authorize", &[("action", "approve")]);
    assert_eq!(r.status, 404);
}

#[test]
fn google_refresh_token_needs_offline_and_first_consent() {
    let srv = start(Behavior::google());
    let uri = "http://127.0.0.1:9/cb";
    let get_tokens = |extra: &[(&str, &str)]| {
        let mut pairs = good(uri, "s");
        pairs.extend_from_slice(extra);
        let to = srv
            .authorization_redirect(&auth_url(&srv, &pairs), true)
            .unwrap();
        // Google's redirect carries extras a client must ignore.
        assert_eq!(param(&to, "authuser").as_deref(), Some("0"));
        let code = param(&to, "code").unwrap();
        let r = post_form(
            &srv.base_url(),
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", uri),
                ("client_id", TEST_CLIENT_ID),
                ("client_secret", TEST_CLIENT_SECRET),
                ("code_verifier", VERIFIER),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    assert!(get_tokens(&[]).get("refresh_token").is_none());
    assert!(
        get_tokens(&[("access_type", "offline")])
            .get("refresh_token")
            .is_none(),
        "consented already: no refresh token without prompt=consent"
    );
    let j = get_tokens(&[("access_type", "offline"), ("prompt", "consent")]);
    assert!(j["refresh_token"].is_string());

    // And the secret is required.
    let to = srv
        .authorization_redirect(&auth_url(&srv, &good(uri, "s")), true)
        .unwrap();
    let r = redeem(&srv, &param(&to, "code").unwrap(), uri, Some(VERIFIER));
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "invalid_client");
}

#[test]
fn github_accepts_requests_without_pkce_and_issues_no_refresh_token() {
    let srv = start(Behavior::github());
    let uri = "http://127.0.0.1:9/cb";
    let pairs: Vec<(&str, &str)> = good(uri, "s")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let url = format!(
        "{}?{}",
        srv.url("/login/oauth/authorize"),
        form_encode_pairs(pairs.iter().copied())
    );
    let to = srv.authorization_redirect(&url, true).unwrap();
    let code = param(&to, "code").unwrap();
    let r = post_form_h(
        &srv.base_url(),
        "/login/oauth/access_token",
        &[("Accept", "application/json")],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", uri),
            ("client_id", TEST_CLIENT_ID),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert!(j["access_token"].is_string());
    assert!(j.get("refresh_token").is_none());
    assert!(j.get("expires_in").is_none());
}

#[test]
fn microsoft_tenant_path_and_discovery() {
    let srv = start(Behavior::microsoft());
    let uri = "http://127.0.0.1:9/cb";
    let url = format!(
        "{}?{}",
        srv.url("/organizations/oauth2/v2.0/authorize"),
        form_encode_pairs(good(uri, "s").iter().copied())
    );
    let to = srv.authorization_redirect(&url, true).unwrap();
    assert!(param(&to, "code").is_some());
    let d = get(&srv.base_url(), "/.well-known/openid-configuration").json();
    assert_eq!(d["authorization_endpoint"], srv.url("/authorize"));
    assert_eq!(d["code_challenge_methods_supported"][0], "S256");
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "authorization_code")
    );
}

#[test]
fn slow_authorization_endpoint_fault() {
    let srv = start(Behavior::generic());
    srv.inject(
        Endpoint::Authorization,
        Fault::Delay(Duration::from_millis(300)),
    );
    let t = Instant::now();
    let v = visit(&auth_url(&srv, &good("http://127.0.0.1:9/cb", "s"))).unwrap();
    assert_eq!(v.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(srv.stats().faults_served, 1);
}
