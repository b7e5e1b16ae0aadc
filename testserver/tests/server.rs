//! The test server against a raw std::net client: endpoints, flavors, polling rules, token
//! rotation, faults, control API and shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use devauth_testserver::{
    Behavior, DEVICE_GRANT, EMAIL, Endpoint, Fault, Flavor, IntervalField, SUBJECT, TEST_CLIENT_ID,
    TEST_CLIENT_SECRET, TestServer, USERNAME, b64_encode, form_encode,
};
use serde_json::Value;

/// Generic server that does not require waiting between polls.
fn fast() -> Behavior {
    Behavior {
        interval: IntervalField::Number(0),
        ..Behavior::generic()
    }
}

fn start(b: Behavior) -> TestServer {
    TestServer::start(b).expect("start")
}

fn decode_jwt_claims(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let b64 = |s: &str| {
        // base64url without padding → standard with padding for our tiny decoder below.
        let mut t: String = s.replace('-', "+").replace('_', "/");
        while t.len() % 4 != 0 {
            t.push('=');
        }
        t
    };
    let decoded = decode_std_b64(&b64(parts[1]));
    let header = decode_std_b64(&b64(parts[0]));
    let h: Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(h["typ"], "JWT");
    serde_json::from_slice(&decoded).unwrap()
}

fn decode_std_b64(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | alphabet.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn listens_on_loopback_with_ephemeral_port() {
    fn shareable<T: Send + Sync>() {}
    shareable::<TestServer>();
    let srv = start(fast());
    assert!(srv.addr().ip().is_loopback());
    assert_ne!(srv.port(), 0);
    assert_eq!(srv.base_url(), format!("http://127.0.0.1:{}", srv.port()));
    // A second server on the same port cannot start.
    assert!(TestServer::start_on_port(srv.port(), fast()).is_err());
}

#[test]
fn discovery_document() {
    let srv = start(fast());
    let base = srv.base_url();
    let r = get(&base, "/.well-known/openid-configuration");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let d = r.json();
    assert_eq!(d["issuer"], base);
    assert_eq!(
        d["device_authorization_endpoint"],
        format!("{base}/device/code")
    );
    assert_eq!(d["token_endpoint"], format!("{base}/token"));
    assert_eq!(d["revocation_endpoint"], format!("{base}/revoke"));
    assert_eq!(d["userinfo_endpoint"], format!("{base}/userinfo"));

    srv.set_behavior(|b| b.omit_device_authorization_endpoint = true);
    let d = get(&base, "/.well-known/openid-configuration").json();
    assert!(d.get("device_authorization_endpoint").is_none());
    assert_eq!(d["token_endpoint"], format!("{base}/token"));
    assert_eq!(srv.requests_to(Endpoint::Discovery).len(), 2);
}

#[test]
fn generic_flow_end_to_end_and_replay() {
    let srv = start(fast());
    let base = srv.base_url();
    let dc = device_code(&srv);
    let user_code = str_of(&dc, "user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(str_of(&dc, "device_code").len() >= 40);
    assert_eq!(dc["verification_uri"], format!("{base}/device"));
    assert_eq!(
        dc["verification_uri_complete"],
        format!("{base}/device?user_code={user_code}")
    );
    assert_eq!(dc["expires_in"], 600);
    assert_eq!(dc["interval"], 0);
    assert_eq!(srv.latest_user_code().as_deref(), Some(user_code));

    let r = poll(&srv, &dc["device_code"]);
    assert_eq!(
        (r.status, r.error().as_str()),
        (400, "authorization_pending")
    );
    assert!(srv.approve_latest());
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["scope"], SCOPE);
    assert!(str_of(&t, "refresh_token").len() > 20);
    let claims = decode_jwt_claims(str_of(&t, "id_token"));
    assert_eq!(claims["sub"], SUBJECT);
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["preferred_username"], USERNAME);
    assert_eq!(claims["iss"], base);
    assert_eq!(claims["aud"], TEST_CLIENT_ID);
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());

    let s = srv.stats();
    assert_eq!(s.device_codes_issued, 1);
    assert_eq!(s.polls, 2);
    assert_eq!(s.pending_answers, 1);
    assert_eq!(s.tokens_issued, 1);
    assert_eq!(s.active_refresh_tokens, 1);

    let at = str_of(&t, "access_token");
    let u = userinfo(&base, at);
    assert_eq!(u.status, 200);
    assert_eq!(
        u.json(),
        serde_json::json!({"sub": SUBJECT, "email": EMAIL, "preferred_username": USERNAME})
    );
    assert_eq!(srv.live_access_tokens(), vec![at.to_string()]);

    // Second redemption: replay → invalid_grant, and what was issued is revoked.
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_grant"));
    let s = srv.stats();
    assert_eq!(s.replays, 1);
    assert_eq!(s.invalid_grants, 1);
    assert_eq!(s.active_refresh_tokens, 0);
    let u = userinfo(&base, at);
    assert_eq!(u.status, 401);
    assert!(
        u.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert!(
        !srv.approve(user_code),
        "a redeemed code cannot be approved again"
    );
}

#[test]
fn early_polls_get_slow_down_and_interval_grows() {
    let srv = start(Behavior::generic()); // interval 1 s, enforced
    let dc = device_code(&srv);
    assert_eq!(dc["interval"], 1);
    // Immediately after issue: too early.
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!((r.status, r.error().as_str()), (400, "slow_down"));
    assert!(r.json().get("interval").is_none());
    let s = srv.stats();
    assert_eq!((s.polls_early, s.slow_downs, s.pending_answers), (1, 1, 0));

    // Another code, polled on time (within the 100 ms tolerance).
    let dc2 = device_code(&srv);
    thread::sleep(Duration::from_millis(950));
    let r = poll(&srv, &dc2["device_code"]);
    assert_eq!(r.error(), "authorization_pending");
    // The first code's interval is now 6 s: 1 s later is still early.
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!(r.error(), "slow_down");
    assert_eq!(srv.stats().slow_downs, 2);

    // Not enforced: answered normally but still counted as early.
    srv.set_behavior(|b| b.enforce_interval = false);
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!(r.error(), "authorization_pending");
    let s = srv.stats();
    assert_eq!((s.polls_early, s.slow_downs, s.polls), (3, 2, 4));
}

#[test]
fn slow_down_polls_answers_first_polls_slow_down() {
    let srv = start(Behavior {
        slow_down_polls: 2,
        enforce_interval: false,
        ..fast()
    });
    let dc = device_code(&srv);
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "slow_down");
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "slow_down");
    assert_eq!(
        poll(&srv, &dc["device_code"]).error(),
        "authorization_pending"
    );
    assert_eq!(srv.stats().slow_downs, 2);
    // Each slow_down added 5 s to the interval, so the later immediate polls were early
    // (counted, not punished: enforce_interval is off).
    assert_eq!(srv.stats().polls_early, 2);
}

#[test]
fn expired_codes() {
    let srv = start(Behavior {
        expire_codes: 1,
        ..fast()
    });
    let first = device_code(&srv);
    let second = device_code(&srv);
    let r = poll(&srv, &first["device_code"]);
    assert_eq!((r.status, r.error().as_str()), (400, "expired_token"));
    assert_eq!(poll(&srv, &first["device_code"]).error(), "expired_token");
    assert!(!srv.approve(str_of(&first, "user_code")));
    assert_eq!(
        poll(&srv, &second["device_code"]).error(),
        "authorization_pending"
    );
    assert_eq!(srv.stats().expired_answers, 2);

    // Auth0: expired_token once, then invalid_grant.
    srv.set_behavior(|b| {
        b.expire_codes = 3;
        b.expired_then_invalid_grant = true;
    });
    let third = device_code(&srv);
    assert_eq!(poll(&srv, &third["device_code"]).error(), "expired_token");
    assert_eq!(poll(&srv, &third["device_code"]).error(), "invalid_grant");

    // A code whose lifetime passed.
    srv.set_behavior(|b| {
        b.expire_codes = 0;
        b.expires_in = 0;
    });
    let dead = device_code(&srv);
    assert_eq!(dead["expires_in"], 0);
    assert!(!srv.approve(str_of(&dead, "user_code")));
    assert_eq!(poll(&srv, &dead["device_code"]).error(), "expired_token");
}

#[test]
fn denial_and_automatic_decisions() {
    let srv = start(fast());
    let dc = device_code(&srv);
    assert!(srv.deny(&str_of(&dc, "user_code").to_lowercase()));
    let r = poll(&srv, &dc["device_code"]);
    assert_eq!((r.status, r.error().as_str()), (400, "access_denied"));
    assert_eq!(srv.stats().denied_answers, 1);

    srv.set_behavior(|b| b.auto_approve_after_polls = Some(2));
    let dc = device_code(&srv);
    assert_eq!(
        poll(&srv, &dc["device_code"]).error(),
        "authorization_pending"
    );
    assert_eq!(
        poll(&srv, &dc["device_code"]).error(),
        "authorization_pending"
    );
    assert_eq!(poll(&srv, &dc["device_code"]).status, 200);

    srv.set_behavior(|b| {
        b.auto_approve_after_polls = None;
        b.auto_approve_after = Some(Duration::from_millis(100));
    });
    let dc = device_code(&srv);
    assert_eq!(
        poll(&srv, &dc["device_code"]).error(),
        "authorization_pending"
    );
    thread::sleep(Duration::from_millis(120));
    assert_eq!(poll(&srv, &dc["device_code"]).status, 200);

    srv.set_behavior(|b| {
        b.auto_approve_after = Some(Duration::ZERO);
        b.auto_deny = true;
    });
    let dc = device_code(&srv);
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "access_denied");
    let s = srv.stats();
    assert_eq!((s.approvals, s.denials, s.tokens_issued), (2, 2, 2));
}

#[test]
fn refresh_rotation_and_reuse_detection() {
    let srv = start(fast());
    let base = srv.base_url();
    let t0 = pair(&srv);
    let rt0 = str_of(&t0, "refresh_token");
    let r = refresh(&base, rt0);
    assert_eq!(r.status, 200, "{}", r.text());
    let t1 = r.json();
    let rt1 = str_of(&t1, "refresh_token");
    assert_ne!(rt0, rt1);
    assert_ne!(t0["access_token"], t1["access_token"]);
    assert_eq!(t1["expires_in"], 3600);
    assert_eq!(srv.live_refresh_tokens(), vec![rt1.to_string()]);
    assert_eq!(srv.stats().active_refresh_tokens, 1);

    // The old token again: reuse → invalid_grant and the whole grant dies.
    let r = refresh(&base, rt0);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_grant"));
    let s = srv.stats();
    assert_eq!(
        (s.refreshes, s.reuse_detected, s.refresh_failures),
        (1, 1, 1)
    );
    assert_eq!(s.active_refresh_tokens, 0);
    assert_eq!(refresh(&base, rt1).error(), "invalid_grant");
    assert_eq!(userinfo(&base, str_of(&t1, "access_token")).status, 401);

    // Unknown refresh token.
    assert_eq!(refresh(&base, "rt-nope").error(), "invalid_grant");
    assert_eq!(srv.stats().refresh_failures, 3);
}

#[test]
fn reuse_grace_returns_same_pair_and_no_detection_when_off() {
    let srv = start(Behavior {
        reuse_grace: Duration::from_secs(30),
        ..fast()
    });
    let base = srv.base_url();
    let t0 = pair(&srv);
    let rt0 = str_of(&t0, "refresh_token");
    let t1 = refresh(&base, rt0).json();
    let again = refresh(&base, rt0);
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), t1, "within grace: the same new pair");
    assert_eq!(srv.stats().reuse_detected, 0);

    // Without detection a rotated-out token just fails; the grant survives.
    srv.set_behavior(|b| {
        b.reuse_grace = Duration::ZERO;
        b.reuse_detection = false;
    });
    assert_eq!(refresh(&base, rt0).error(), "invalid_grant");
    assert_eq!(refresh(&base, str_of(&t1, "refresh_token")).status, 200);
    assert_eq!(srv.stats().reuse_detected, 0);
}

#[test]
fn refresh_without_rotation_omits_refresh_token() {
    let srv = start(Behavior {
        rotate_refresh_tokens: false,
        ..fast()
    });
    let base = srv.base_url();
    let rt = pair(&srv)["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let r = refresh(&base, &rt);
        assert_eq!(r.status, 200);
        assert!(r.json().get("refresh_token").is_none());
    }
    assert_eq!(srv.stats().refreshes, 2);
    assert_eq!(srv.stats().active_refresh_tokens, 1);
}

#[test]
fn slow_refreshes_race_into_reuse_detection() {
    let srv = start(Behavior {
        refresh_delay: Duration::from_millis(800),
        ..fast()
    });
    let base = srv.base_url();
    let rt = pair(&srv)["refresh_token"].as_str().unwrap().to_string();
    let started = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (b, rt) = (base.clone(), rt.clone());
            thread::spawn(move || refresh(&b, &rt).status)
        })
        .collect();
    // Both refreshes are processed (one rotates, one is reuse) while their answers are
    // still delayed: the delay is not served under the lock.
    assert!(
        srv.wait_for(Duration::from_secs(5), |s| s.refreshes + s.refresh_failures
            == 2)
    );
    if started.elapsed() < Duration::from_millis(700) {
        assert!(
            handles.iter().all(|h| !h.is_finished()),
            "answers were not delayed"
        );
    }
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 400]);
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(srv.stats().reuse_detected, 1);
}

#[test]
fn client_authentication_and_request_errors() {
    let srv = start(fast());
    let base = srv.base_url();
    let r = post_form(&base, "/device/code", &[("client_id", "someone-else")]);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    let r = post_form(&base, "/device/code", &[("scope", "openid")]);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_request"));
    let dc = device_code(&srv);
    let code = str_of(&dc, "device_code");
    // The poll must name the client.
    let r = post_form(
        &base,
        "/token",
        &[("grant_type", DEVICE_GRANT), ("device_code", code)],
    );
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_request"));
    // Repeated parameters are refused (RFC 6749 §3.1).
    let r = post_form(
        &base,
        "/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", code),
            ("device_code", code),
            ("client_id", TEST_CLIENT_ID),
        ],
    );
    assert_eq!(r.error(), "invalid_request");
    let r = post_form(
        &base,
        "/token",
        &[("grant_type", "password"), ("client_id", TEST_CLIENT_ID)],
    );
    assert_eq!(
        (r.status, r.error().as_str()),
        (400, "unsupported_grant_type")
    );
    let r = post_form(&base, "/token", &[("client_id", TEST_CLIENT_ID)]);
    assert_eq!(r.error(), "invalid_request");
    // A JSON body is not a form.
    let r = request(
        &base,
        "POST",
        "/device/code",
        &[("Content-Type", "application/json")],
        br#"{"client_id":"devauth-test"}"#,
    );
    assert_eq!(r.error(), "invalid_request");
    // Unknown device code.
    let r = post_form(
        &base,
        "/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", "nope"),
            ("client_id", TEST_CLIENT_ID),
        ],
    );
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_grant"));
}

#[test]
fn client_secret_via_form_or_basic() {
    let secret = "s3:cr t/+&é";
    let srv = start(Behavior {
        client_secret: Some(secret.to_string()),
        ..fast()
    });
    let base = srv.base_url();
    // Device requests need no secret in the generic flavor.
    let dc = device_code(&srv);
    let code = str_of(&dc, "device_code");
    srv.approve_latest();
    let poll_with = |extra: &[(&str, &str)], headers: &[(&str, &str)]| {
        let mut pairs = vec![("grant_type", DEVICE_GRANT), ("device_code", code)];
        pairs.extend_from_slice(extra);
        post_form_h(&base, "/token", headers, &pairs)
    };
    let r = poll_with(&[("client_id", TEST_CLIENT_ID)], &[]);
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    let r = poll_with(
        &[("client_id", TEST_CLIENT_ID), ("client_secret", "wrong")],
        &[],
    );
    assert_eq!(r.status, 401);
    // RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
    let bad_basic = format!(
        "Basic {}",
        b64_encode(format!("{TEST_CLIENT_ID}:wrong").as_bytes())
    );
    let r = poll_with(&[], &[("Authorization", &bad_basic)]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let basic = format!(
        "Basic {}",
        b64_encode(format!("{}:{}", form_encode(TEST_CLIENT_ID), form_encode(secret)).as_bytes())
    );
    // Two methods at once are refused.
    let r = poll_with(&[("client_secret", secret)], &[("Authorization", &basic)]);
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_request"));
    let r = poll_with(&[], &[("Authorization", &basic)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = srv.requests_to(Endpoint::Token);
    assert_eq!(
        rec.last().unwrap().basic_auth,
        Some((TEST_CLIENT_ID.to_string(), secret.to_string()))
    );
    let rt = str_of(&r.json(), "refresh_token").to_string();
    let r = post_form(
        &base,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", secret),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn google_flavor() {
    let srv = start(Behavior {
        interval: IntervalField::Number(0),
        ..Behavior::google()
    });
    let base = srv.base_url();
    let r = post_form(
        &base,
        "/device/code",
        &[("client_id", TEST_CLIENT_ID), ("scope", "email")],
    );
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_client"));
    let r = post_form(
        &base,
        "/device/code",
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("scope", "email"),
        ],
    );
    assert_eq!(r.status, 200);
    let dc = r.json();
    assert_eq!(dc["verification_url"], format!("{base}/device"));
    assert!(dc.get("verification_uri").is_none());
    assert!(dc.get("verification_uri_complete").is_none());
    let code = str_of(&dc, "device_code");
    let p = |secret: &str| {
        post_form(
            &base,
            "/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", code),
                ("client_id", TEST_CLIENT_ID),
                ("client_secret", secret),
            ],
        )
    };
    let r = p(TEST_CLIENT_SECRET);
    assert_eq!(
        (r.status, r.error().as_str()),
        (428, "authorization_pending")
    );
    assert_eq!(p("wrong").status, 401);
    srv.approve_latest();
    assert_eq!(p(TEST_CLIENT_SECRET).status, 200);
}

#[test]
fn microsoft_flavor() {
    let srv = start(Behavior {
        interval: IntervalField::Number(0),
        ..Behavior::microsoft()
    });
    let base = srv.base_url();
    let issue = |scope: &str| {
        let r = post_form(
            &base,
            "/organizations/oauth2/v2.0/devicecode",
            &[("client_id", TEST_CLIENT_ID), ("scope", scope)],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let ms_poll = |tenant: &str, code: &Value| {
        post_form(
            &base,
            &format!("/{tenant}/oauth2/v2.0/token"),
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", code.as_str().unwrap()),
                ("client_id", TEST_CLIENT_ID),
            ],
        )
    };
    let dc = issue("User.Read offline_access");
    let uc = str_of(&dc, "user_code");
    let msg = str_of(&dc, "message");
    assert!(
        msg.contains(uc) && msg.contains(&format!("{base}/device")),
        "{msg}"
    );
    assert!(dc.get("verification_uri_complete").is_none());
    assert_eq!(dc["verification_uri"], format!("{base}/device"));

    assert_eq!(
        ms_poll("organizations", &dc["device_code"]).error(),
        "authorization_pending"
    );
    // Same tenant on both calls, or the code is not found there.
    assert_eq!(
        ms_poll("common", &dc["device_code"]).error(),
        "invalid_grant"
    );
    srv.approve(uc);
    let t = ms_poll("organizations", &dc["device_code"]);
    assert_eq!(t.status, 200);
    assert!(t.json().get("refresh_token").is_some());
    let rec = srv.requests_to(Endpoint::Token);
    assert_eq!(rec[0].path, "/organizations/oauth2/v2.0/token");
    assert_eq!(rec[0].tenant.as_deref(), Some("organizations"));
    assert_eq!(
        srv.requests_to(Endpoint::DeviceAuthorization)[0]
            .tenant
            .as_deref(),
        Some("organizations")
    );

    // No offline_access: no refresh token.
    let dc = issue("User.Read");
    srv.approve_latest();
    assert!(
        ms_poll("organizations", &dc["device_code"])
            .json()
            .get("refresh_token")
            .is_none()
    );

    let dc = issue("User.Read");
    srv.deny_latest();
    let r = ms_poll("organizations", &dc["device_code"]);
    assert_eq!(
        (r.status, r.error().as_str()),
        (400, "authorization_declined")
    );
    let r = ms_poll("organizations", &Value::from("nope"));
    assert_eq!(r.error(), "bad_verification_code");
}

#[test]
fn github_flavor() {
    let srv = start(Behavior {
        interval: IntervalField::Number(0),
        slow_down_polls: 1,
        ..Behavior::github()
    });
    let base = srv.base_url();
    let json = [("Accept", "application/json")];
    // Form-encoded unless the client asks for JSON.
    let r = post_form(
        &base,
        "/login/device/code",
        &[("client_id", TEST_CLIENT_ID), ("scope", "repo")],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = r
        .text()
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("expires_in").as_deref(), Some("900"));
    assert!(get("verification_uri").unwrap().ends_with("%2Fdevice"));
    assert!(get("verification_uri_complete").is_none());

    let dc = post_form_h(
        &base,
        "/login/device/code",
        &json,
        &[("client_id", TEST_CLIENT_ID), ("scope", "repo")],
    )
    .json();
    let gh_poll = |code: &str, headers: &[(&str, &str)]| {
        post_form_h(
            &base,
            "/login/oauth/access_token",
            headers,
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", code),
                ("client_id", TEST_CLIENT_ID),
            ],
        )
    };
    let code = str_of(&dc, "device_code");
    // Errors come with 200; slow_down carries the new interval.
    let r = gh_poll(code, &json);
    assert_eq!(r.status, 200);
    assert_eq!(r.error(), "slow_down");
    assert_eq!(r.json()["interval"], 5);
    srv.set_behavior(|b| b.enforce_interval = false);
    let r = gh_poll(code, &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("error=authorization_pending"),
        "{}",
        r.text()
    );
    let r = gh_poll("nope", &json);
    assert_eq!(
        (r.status, r.error().as_str()),
        (200, "incorrect_device_code")
    );
    let r = post_form_h(&base, "/login/device/code", &json, &[("client_id", "x")]);
    assert_eq!(
        (r.status, r.error().as_str()),
        (200, "incorrect_client_credentials")
    );

    srv.approve_latest();
    let t = gh_poll(code, &json);
    assert_eq!(t.status, 200);
    let t = t.json();
    assert_eq!(t["token_type"], "bearer");
    assert!(t.get("expires_in").is_none());
    assert!(t.get("refresh_token").is_none());
    assert!(t.get("id_token").is_none());
    assert_eq!(t["scope"], "repo");
}

#[test]
fn response_shape_knobs() {
    let srv = start(Behavior {
        interval: IntervalField::String(5),
        numbers_as_strings: true,
        omit_complete_uri: true,
        message: Some("go to {verification_uri}".into()),
        scope_granted: Some("openid".into()),
        enforce_interval: false,
        id_token: false,
        ..Behavior::generic()
    });
    let dc = device_code(&srv);
    assert_eq!(dc["interval"], "5");
    assert_eq!(dc["expires_in"], "600");
    assert!(dc.get("verification_uri_complete").is_none());
    assert_eq!(dc["message"], format!("go to {}/device", srv.base_url()));
    srv.approve_latest();
    let t = poll(&srv, &dc["device_code"]).json();
    assert_eq!(t["expires_in"], "3600");
    assert_eq!(t["scope"], "openid");
    assert!(t.get("id_token").is_none());

    srv.set_behavior(|b| {
        b.interval = IntervalField::Null;
        b.numbers_as_strings = false;
        b.token_lifetime = None;
        b.issue_refresh_token = false;
    });
    let dc = device_code(&srv);
    assert!(dc["interval"].is_null() && dc.get("interval").is_some());
    srv.approve_latest();
    let t = poll(&srv, &dc["device_code"]).json();
    assert!(t.get("expires_in").is_none());
    assert!(t.get("refresh_token").is_none());

    srv.set_behavior(|b| b.interval = IntervalField::Absent);
    assert!(device_code(&srv).get("interval").is_none());
    // Null/absent interval: the server enforces the RFC default of 5 s.
    srv.set_behavior(|b| b.enforce_interval = true);
    let dc = device_code(&srv);
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "slow_down");
}

#[test]
fn revocation() {
    let srv = start(fast());
    let base = srv.base_url();
    let revoke = |token: &str, client: &str| {
        post_form(
            &base,
            "/revoke",
            &[
                ("token", token),
                ("token_type_hint", "refresh_token"),
                ("client_id", client),
            ],
        )
    };
    // Revoking an access token kills only it.
    let t = pair(&srv);
    let at = str_of(&t, "access_token");
    let r = revoke(at, TEST_CLIENT_ID);
    assert_eq!(r.status, 200);
    assert_eq!(userinfo(&base, at).status, 401);
    let t2 = refresh(&base, str_of(&t, "refresh_token")).json();
    // Revoking the refresh token kills the grant.
    assert_eq!(
        revoke(str_of(&t2, "refresh_token"), TEST_CLIENT_ID).status,
        200
    );
    assert_eq!(userinfo(&base, str_of(&t2, "access_token")).status, 401);
    assert_eq!(
        refresh(&base, str_of(&t2, "refresh_token")).error(),
        "invalid_grant"
    );
    assert_eq!(srv.stats().active_refresh_tokens, 0);
    // Unknown tokens: still 200. Unknown client: 401. No token: 400.
    assert_eq!(revoke("whatever", TEST_CLIENT_ID).status, 200);
    assert_eq!(revoke("whatever", "intruder").status, 401);
    assert_eq!(
        post_form(&base, "/revoke", &[("client_id", TEST_CLIENT_ID)]).status,
        400
    );
    assert_eq!(srv.stats().revocations, 3);
}

#[test]
fn revoke_all_and_access_token_expiry() {
    let srv = start(fast());
    let base = srv.base_url();
    let a = pair(&srv);
    let b = pair(&srv);
    assert_eq!(srv.stats().active_refresh_tokens, 2);

    srv.expire_access_tokens();
    assert_eq!(userinfo(&base, str_of(&a, "access_token")).status, 401);
    let a2 = refresh(&base, str_of(&a, "refresh_token")).json();
    assert_eq!(userinfo(&base, str_of(&a2, "access_token")).status, 200);

    srv.revoke_all();
    assert_eq!(srv.stats().active_refresh_tokens, 0);
    assert_eq!(userinfo(&base, str_of(&a2, "access_token")).status, 401);
    assert_eq!(
        refresh(&base, str_of(&b, "refresh_token")).error(),
        "invalid_grant"
    );

    // Without a bearer token: 401 without an error code (RFC 6750 §3.1).
    let r = get(&base, "/userinfo");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    // A zero lifetime is expired at once.
    srv.set_behavior(|b| b.token_lifetime = Some(0));
    let c = pair(&srv);
    assert_eq!(userinfo(&base, str_of(&c, "access_token")).status, 401);
    let s = srv.stats();
    assert_eq!((s.userinfo_ok, s.userinfo_unauthorized), (1, 4));
}

#[test]
fn faults_status_html_malformed_raw_and_queue() {
    let srv = start(fast());
    let base = srv.base_url();
    srv.inject(Endpoint::Discovery, Fault::Status(503));
    srv.inject(Endpoint::Discovery, Fault::Status(429));
    srv.inject(Endpoint::Discovery, Fault::Html(502));
    srv.inject(Endpoint::Discovery, Fault::Malformed);
    srv.inject(
        Endpoint::Discovery,
        Fault::Raw {
            status: 200,
            content_type: "text/plain".into(),
            body: "hello".into(),
        },
    );
    let path = "/.well-known/openid-configuration";
    let r = get(&base, path);
    assert_eq!((r.status, r.error().as_str()), (503, "server_error"));
    let r = get(&base, path);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = get(&base, path);
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = get(&base, path);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"access_tok"[..]));
    let r = get(&base, path);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    // Queue drained: normal again. Faults only hit their endpoint.
    assert!(get(&base, path).json().get("issuer").is_some());
    srv.inject(Endpoint::Token, Fault::Status(500));
    assert_eq!(device_code(&srv)["expires_in"], 600);
    assert_eq!(srv.stats().faults_served, 5);
    srv.clear_faults();
    assert_eq!(get(&base, "/").status, 200);
}

#[test]
fn faults_close_hang_oversized_endless() {
    let srv = start(fast());
    let base = srv.base_url();
    let ask = |path: &str| {
        let mut s = connect(&base);
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        s
    };
    let path = "/.well-known/openid-configuration";

    srv.inject(Endpoint::Discovery, Fault::Close);
    let mut s = ask(path);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());

    srv.inject(Endpoint::Discovery, Fault::Hang);
    let mut hung = ask(path);
    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut one = [0u8; 1];
    let err = hung.read(&mut one).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));

    srv.inject(Endpoint::Discovery, Fault::Oversized(3 << 20));
    let r = parse(&raw(
        &base,
        format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes(),
    ));
    assert_eq!(r.header("content-length"), Some("3145728"));
    assert_eq!(r.body.len(), 3 << 20);
    assert!(serde_json::from_slice::<Value>(&r.body).is_ok());

    srv.inject(Endpoint::Discovery, Fault::Endless);
    let mut s = ask(path);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    while started.elapsed() < Duration::from_millis(300) {
        match s.read(&mut chunk) {
            Ok(0) => panic!("endless answer ended"),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("Transfer-Encoding: chunked"));

    // Dropping the server ends the hang and the trickle promptly.
    let started = Instant::now();
    drop(srv);
    assert!(started.elapsed() < Duration::from_secs(2));
    hung.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(hung.read(&mut one).unwrap_or(0), 0);
}

#[test]
fn faults_lose_response_and_delay_still_process() {
    let srv = start(fast());
    let dc = device_code(&srv);
    srv.approve_latest();
    srv.inject(Endpoint::Token, Fault::LoseResponse);
    let mut s = connect(&srv.base_url());
    let body = devauth_testserver::form_encode_pairs([
        ("grant_type", DEVICE_GRANT),
        ("device_code", dc["device_code"].as_str().unwrap()),
        ("client_id", TEST_CLIENT_ID),
    ]);
    write!(
        s,
        "POST /token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());
    assert_eq!(
        srv.stats().tokens_issued,
        1,
        "processed although the answer was lost"
    );
    // The client retries: that is a replay.
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "invalid_grant");
    assert_eq!(srv.stats().replays, 1);

    srv.inject(
        Endpoint::Discovery,
        Fault::Delay(Duration::from_millis(200)),
    );
    let started = Instant::now();
    assert_eq!(
        get(&srv.base_url(), "/.well-known/openid-configuration").status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn control_api() {
    let srv = start(fast());
    let base = srv.base_url();
    let a = device_code(&srv);
    let b = device_code(&srv);
    assert_eq!(
        get(&base, "/test/latest").json()["user_code"],
        b["user_code"]
    );
    let r = post_form(
        &base,
        "/test/approve",
        &[("user_code", str_of(&a, "user_code"))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user_code"], a["user_code"]);
    let r = post_form(&base, "/test/deny", &[]);
    assert_eq!(r.json()["user_code"], b["user_code"]);
    assert_eq!(
        post_form(&base, "/test/approve", &[("user_code", "BBBB-BBBB")]).status,
        404
    );
    assert_eq!(poll(&srv, &a["device_code"]).status, 200);
    assert_eq!(poll(&srv, &b["device_code"]).error(), "access_denied");

    let stats = get(&base, "/test/stats").json();
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["active_refresh_tokens"], 1);
    assert_eq!(stats["device_codes_issued"], 2);
    assert_eq!(post_form(&base, "/test/revoke-all", &[]).status, 200);
    assert_eq!(get(&base, "/test/stats").json()["active_refresh_tokens"], 0);
    assert_eq!(
        post_form(&base, "/test/expire-access-tokens", &[]).status,
        200
    );
    assert_eq!(get(&base, "/test/revoke-all").status, 405);
}

#[test]
fn verification_page() {
    let srv = start(fast());
    let base = srv.base_url();
    let dc = device_code(&srv);
    let uc = str_of(&dc, "user_code");
    let r = get(&base, &format!("/device?user_code={uc}"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains(&format!("value=\"{uc}\"")));
    assert!(
        get(&base, "/device?user_code=%3Cscript%3E")
            .text()
            .contains("&lt;script&gt;")
    );
    // Typed sloppily: lower case with a space.
    let typed = uc.to_lowercase().replace('-', " ");
    let r = post_form(
        &base,
        "/device",
        &[("user_code", &typed), ("action", "approve")],
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("approved"));
    assert_eq!(poll(&srv, &dc["device_code"]).status, 200);

    let dc = device_code(&srv);
    let r = post_form(
        &base,
        "/device",
        &[("user_code", str_of(&dc, "user_code")), ("action", "deny")],
    );
    assert!(r.text().contains("denied"));
    assert_eq!(poll(&srv, &dc["device_code"]).error(), "access_denied");
    assert_eq!(
        post_form(&base, "/device", &[("user_code", "XXXX-XXXX")]).status,
        400
    );
}

#[test]
fn http_edges_and_recording() {
    let srv = start(fast());
    let base = srv.base_url();
    assert_eq!(get(&base, "/nope").status, 404);
    let r = get(&base, "/token");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // Body over 1 MiB.
    let big = vec![b'a'; (1 << 20) + 1];
    let r = request(
        &base,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &big,
    );
    assert_eq!(r.status, 413);
    // Garbage.
    assert_eq!(parse(&raw(&base, b"HELLO\r\n\r\n")).status, 400);
    // Chunked request body, percent-encoded query, header names lowercased.
    let body = "client_id=devauth-test&scope=a+b%20c";
    let req = format!(
        "POST /device/code?x=%41+b HTTP/1.1\r\nX-Custom: Yes\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let r = parse(&raw(&base, req.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    let rec = srv.requests();
    let last = rec.last().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, "/device/code");
    assert_eq!(last.query, vec![("x".to_string(), "A b".to_string())]);
    assert_eq!(last.header("X-CUSTOM"), Some("Yes"));
    assert!(last.headers.iter().any(|(k, _)| k == "x-custom"));
    assert_eq!(last.form_value("scope"), Some("a b c"));
    assert_eq!(last.endpoint, Some(Endpoint::DeviceAuthorization));
    assert!(rec.windows(2).all(|w| w[0].at <= w[1].at));
    // The 413 and the garbage request were not parsed, so neither recorded nor counted.
    assert_eq!(srv.stats().requests as usize, rec.len());
    assert_eq!(rec.len(), 3);
}

#[test]
fn wait_for_sees_progress_and_times_out() {
    let srv = start(fast());
    let base = srv.base_url();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        get(&base, "/.well-known/openid-configuration").status
    });
    assert!(srv.wait_for(Duration::from_secs(5), |s| s.requests >= 1));
    assert_eq!(t.join().unwrap(), 200);
    let started = Instant::now();
    assert!(!srv.wait_for(Duration::from_millis(50), |s| s.tokens_issued > 0));
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn drop_stops_the_server() {
    let srv = start(fast());
    let addr = srv.addr();
    assert_eq!(get(&srv.base_url(), "/").status, 200);
    drop(srv);
    assert!(
        TcpStream::connect(addr).is_err(),
        "port still accepting after drop"
    );
}

#[test]
fn flavor_presets() {
    assert_eq!(Behavior::default().flavor, Flavor::Generic);
    let g = Behavior::google();
    assert_eq!(g.pending_status, 428);
    assert_eq!(g.client_secret.as_deref(), Some(TEST_CLIENT_SECRET));
    let m = Behavior::microsoft();
    assert_eq!(m.denial_error, "authorization_declined");
    assert!(m.message.is_some());
    let h = Behavior::github();
    assert!(h.errors_with_200 && h.form_unless_accept_json && h.slow_down_includes_interval);
    assert_eq!((h.token_lifetime, h.issue_refresh_token), (None, false));
    assert_eq!(Flavor::parse("github"), Some(Flavor::GitHub));
}
