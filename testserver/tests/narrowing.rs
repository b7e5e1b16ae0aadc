//! Narrower tokens: a refresh with `scope` (RFC 6749 §6) honoured, ignored or refused as the
//! behavior says, and RFC 8693 token exchange; each token's own scope is what the server
//! remembers.

mod common;

use common::*;
use devauth_testserver::{Behavior, Narrowing, TEST_CLIENT_ID, TestServer};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

fn refresh_with(base: &str, rt: &str, scope: &str) -> Resp {
    post_form(
        base,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", TEST_CLIENT_ID),
            ("scope", scope),
        ],
    )
}

fn server(narrowing: Narrowing) -> (TestServer, String, String) {
    let srv = TestServer::start(Behavior {
        narrowing,
        token_exchange: true,
        enforce_interval: false,
        ..Behavior::default()
    })
    .unwrap();
    let t = pair(&srv);
    let (at, rt) = (
        str_of(&t, "access_token").to_string(),
        str_of(&t, "refresh_token").to_string(),
    );
    (srv, at, rt)
}

#[test]
fn a_narrower_refresh_is_honoured_and_the_token_remembers_it() {
    let (srv, at, rt) = server(Narrowing::Honour);
    let base = srv.base_url();
    assert_eq!(srv.access_token_scope(&at).as_deref(), Some(SCOPE));
    let r = refresh_with(&base, &rt, "profile openid");
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert_eq!(str_of(&t, "scope"), "openid profile");
    assert_eq!(
        srv.access_token_scope(str_of(&t, "access_token"))
            .as_deref(),
        Some("openid profile")
    );
    assert_eq!(srv.stats().narrowed_tokens, 1);
    // The rotated refresh token still holds the whole grant (§6).
    let again = refresh(&base, str_of(&t, "refresh_token")).json();
    assert_eq!(str_of(&again, "scope"), SCOPE);
    // More than was granted is refused, and nothing rotates.
    let rt = str_of(&again, "refresh_token");
    let r = refresh_with(&base, rt, "openid admin");
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_scope"));
    assert_eq!(refresh(&base, rt).status, 200);
}

#[test]
fn ignored_and_refused_narrowing() {
    let (srv, _, rt) = server(Narrowing::Ignore);
    let t = refresh_with(&srv.base_url(), &rt, "openid").json();
    assert_eq!(str_of(&t, "scope"), SCOPE);
    assert_eq!(
        srv.access_token_scope(str_of(&t, "access_token"))
            .as_deref(),
        Some(SCOPE)
    );
    let (srv, _, rt) = server(Narrowing::Refuse);
    let r = refresh_with(&srv.base_url(), &rt, "openid");
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_scope"));
    // The whole scope is still fine.
    assert_eq!(refresh_with(&srv.base_url(), &rt, SCOPE).status, 200);
}

#[test]
fn token_exchange_narrows_an_access_token() {
    let (srv, at, _) = server(Narrowing::Honour);
    let base = srv.base_url();
    let exchange = |subject: &str, scope: &str| {
        post_form(
            &base,
            "/token",
            &[
                ("grant_type", EXCHANGE),
                ("client_id", TEST_CLIENT_ID),
                ("subject_token", subject),
                ("subject_token_type", ACCESS),
                ("requested_token_type", ACCESS),
                ("scope", scope),
            ],
        )
    };
    let r = exchange(&at, "openid");
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert_eq!(str_of(&t, "issued_token_type"), ACCESS);
    assert!(t.get("refresh_token").is_none());
    assert_eq!(
        srv.access_token_scope(str_of(&t, "access_token"))
            .as_deref(),
        Some("openid")
    );
    assert_eq!(srv.stats().token_exchanges, 1);
    assert_eq!(exchange(&at, "openid admin").error(), "invalid_scope");
    assert_eq!(exchange("at-unknown", "openid").error(), "invalid_grant");
    // Off by default.
    let plain = TestServer::start(Behavior {
        enforce_interval: false,
        ..Behavior::default()
    })
    .unwrap();
    let t = pair(&plain);
    let r = post_form(
        &plain.base_url(),
        "/token",
        &[
            ("grant_type", EXCHANGE),
            ("client_id", TEST_CLIENT_ID),
            ("subject_token", str_of(&t, "access_token")),
            ("subject_token_type", ACCESS),
        ],
    );
    assert_eq!(r.error(), "unsupported_grant_type");
}
