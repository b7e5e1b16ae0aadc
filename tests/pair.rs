//! `devauth pair` against the loopback server (generic preset): the RFC 8628 polling rules,
//! expiry, denial, retries of transient failures and the errors that stop pairing.

mod common;

use common::*;
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;

/// Instants of the device-authorization requests and of the polls.
fn timeline(env: &Env) -> (Vec<std::time::Instant>, Vec<std::time::Instant>) {
    let codes = env
        .server()
        .requests_to(Endpoint::DeviceAuthorization)
        .iter()
        .map(|r| r.at)
        .collect();
    let polls = env.polls().iter().map(|r| r.at).collect();
    (codes, polls)
}

#[test]
fn pair_generic_end_to_end() {
    let env = Setup::new(Provider::Generic).approve_after_polls(2).start();
    let out = env.pair();

    // Events: code, pending, pending, paired.
    assert_eq!(
        out.event_names(),
        ["code", "pending", "pending", "paired"],
        "{}",
        out.show()
    );
    let code = &out.events()[0];
    let user_code = env.server().latest_user_code().expect("a code was issued");
    assert_eq!(code["user_code"], user_code.as_str());
    assert_eq!(code["verification_uri"], format!("{}/device", env.base()));
    assert!(
        code["verification_uri_complete"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{}/device?user_code=", env.base()))),
        "{code}"
    );
    assert_eq!(code["interval"], 1);
    assert_eq!(code["expires_in"], 600);
    assert_eq!(code["renewed"], false);
    assert!(code.get("device_code").is_none(), "{code}");
    let paired = out.events_named("paired").remove(0);
    assert_eq!(paired["account"], EMAIL);
    assert_eq!(paired["scopes"], serde_json::json!(["openid"]));
    assert_eq!(paired["expires_in"], 3600);

    // The store: 0600 in a 0700 directory, holding what the server issued.
    assert_eq!(Env::mode(&env.store), 0o600);
    assert_eq!(Env::mode(env.store.parent().unwrap()), 0o700);
    let access = env.stored("access_token").expect("access token stored");
    let refresh = env.stored("refresh_token").expect("refresh token stored");
    assert!(env.server().live_access_tokens().contains(&access));
    assert!(env.server().live_refresh_tokens().contains(&refresh));

    // Polling: never before the interval, exactly one successful poll, no replay.
    let stats = env.server().stats();
    assert_eq!(stats.device_codes_issued, 1);
    assert_eq!(stats.polls, 3, "{stats:?}");
    assert_eq!(stats.pending_answers, 2);
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.polls_early, 0, "{stats:?}");
    assert_eq!(stats.slow_downs, 0);
    assert_eq!(stats.replays, 0);
    let (codes, polls) = timeline(&env);
    let mut all = codes.clone();
    all.extend(&polls);
    assert_gaps_at_least("code request, then polls", &all, S(1));
    // Every poll carries the grant type, the device code and the client id (RFC 8628 §3.4).
    for p in env.polls() {
        assert_eq!(p.form_value("client_id"), Some(TEST_CLIENT_ID));
        assert!(p.form_value("device_code").is_some_and(|c| !c.is_empty()));
    }
    // The device request carried client_id and scope (§3.1).
    let device = env.server().requests_to(Endpoint::DeviceAuthorization);
    assert_eq!(device[0].form_value("client_id"), Some(TEST_CLIENT_ID));
    assert_eq!(device[0].form_value("scope"), Some("openid"));

    // Nothing polls after the exit (a poll would be due after 1 s).
    std::thread::sleep(Duration::from_millis(1200));
    let later = env.server().stats();
    assert_eq!(later.polls, stats.polls);
    assert_eq!(later.replays, 0);
    assert_eq!(later.requests, stats.requests);

    // status, token, token --header.
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has(&format!("Paired as {EMAIL}"));
    let token = env.token();
    assert_eq!(token, access);
    assert!(env.server().live_access_tokens().contains(&token));
    let header = env.run(&["token", "--header"]);
    header.code(exit::OK);
    assert_eq!(header.line(), format!("Bearer {token}"));
    assert_eq!(env.server().stats().refreshes, 0);
}

#[test]
fn pair_terminal_screen_shows_url_code_and_qr_with_the_complete_uri() {
    let env = Setup::new(Provider::Generic).approve_after_polls(1).start();
    let out = env.run(&["pair"]);
    out.code(exit::OK);
    let user_code = env.server().latest_user_code().unwrap();
    out.stdout_has(&format!("{}/device", env.base()))
        .stdout_has(&format!("Code: {user_code}"))
        .stderr_has(&format!("paired as {EMAIL}"));
    assert!(!out.stdout.contains('\x1b'), "escape codes on a pipe");
    // RFC 8628 §3.3.1: the QR carries verification_uri_complete when there is one.
    assert_eq!(
        decode_screen_qr(&out.stdout),
        format!("{}/device?user_code={user_code}", env.base())
    );
}

#[test]
fn pair_first_poll_success_stops_at_once() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "paired"], "{}", out.show());
    let stats = env.server().stats();
    assert_eq!((stats.polls, stats.tokens_issued, stats.replays), (1, 1, 0));
    assert_eq!(stats.polls_early, 0);
    let (codes, polls) = timeline(&env);
    assert!(polls[0] - codes[0] >= S(1) - Duration::from_millis(50));
}

/// An interval sent as `absent` or `null` means 5 s (RFC 8628 §3.2), before the first poll too.
fn default_interval(field: IntervalField) {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.interval = field)
        .approve_after_polls(0)
        .start();
    let out = env.pair();
    assert_eq!(out.events()[0]["interval"], 5, "{field:?}: {}", out.show());
    let (codes, polls) = timeline(&env);
    let first = polls[0] - codes[0];
    assert!(
        first >= S(5) - Duration::from_millis(50),
        "{field:?}: {first:?}"
    );
    assert!(first < scaled(S(8)), "{field:?}: {first:?}");
    assert_eq!(env.server().stats().polls_early, 0, "{field:?}");
}

#[test]
fn pair_interval_absent_or_null_defaults_to_5_seconds() {
    // Both at once: each waits 5 s.
    std::thread::scope(|s| {
        s.spawn(|| default_interval(IntervalField::Absent));
        s.spawn(|| default_interval(IntervalField::Null));
    });
}

#[test]
fn pair_interval_as_string() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.interval = IntervalField::String(2))
        .approve_after_polls(0)
        .start();
    let out = env.pair();
    assert_eq!(out.events()[0]["interval"], 2, "{}", out.show());
    let (codes, polls) = timeline(&env);
    let mut all = codes;
    all.extend(polls);
    assert_gaps_at_least("string interval", &all, S(2));
    assert_eq!(env.server().stats().polls_early, 0);
}

#[test]
fn pair_numbers_as_strings() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| {
            b.numbers_as_strings = true;
            b.interval = IntervalField::Number(1);
            b.expires_in = 300;
            b.token_lifetime = Some(1800);
        })
        .approve_after_polls(0)
        .start();
    let out = env.pair();
    let code = &out.events()[0];
    assert_eq!(code["interval"], 1, "{}", out.show());
    assert_eq!(code["expires_in"], 300);
    assert_eq!(out.events_named("paired")[0]["expires_in"], 1800);
    assert_eq!(env.server().stats().polls_early, 0);
    let status = env.run(&["status", "--json"]).code(exit::OK).json();
    let left = status["access_token_expires_in"].as_u64().unwrap();
    assert!((1700..=1800).contains(&left), "{status}");
}

/// slow_down (RFC 8628 §3.5): +5 s for this and every later poll.
fn slow_down_adds_5_seconds_for_good() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.slow_down_polls = 1)
        .approve_after_polls(1)
        .start();
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["code", "slow_down", "pending", "paired"],
        "{}",
        out.show()
    );
    assert_eq!(out.events_named("slow_down")[0]["interval"], 6);
    let stats = env.server().stats();
    assert_eq!(stats.slow_downs, 1, "{stats:?}");
    assert_eq!(stats.polls_early, 0, "{stats:?}");
    let (_, polls) = timeline(&env);
    assert_eq!(polls.len(), 3);
    // After the slow_down, every poll waits the new 6 s interval.
    assert_gaps_at_least("polls after slow_down", &polls[..], S(6));
}

/// GitHub sends the new interval with slow_down; when it asks for more than +5 s, obey it.
fn slow_down_with_larger_server_interval_is_taken() {
    let env = Setup::new(Provider::GitHub).approve_after_polls(0).start();
    env.server().inject(
        Endpoint::Token,
        Fault::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"error":"slow_down","error_description":"too fast","interval":7}"#.into(),
        },
    );
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["code", "slow_down", "paired"],
        "{}",
        out.show()
    );
    assert_eq!(out.events_named("slow_down")[0]["interval"], 7);
    let polls: Vec<_> = env
        .server()
        .requests_to(Endpoint::Token)
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(polls.len(), 2);
    assert_gaps_at_least("poll after a slow_down asking 7 s", &polls, S(7));
    assert_eq!(env.server().stats().polls_early, 0);
}

#[test]
fn pair_slow_down() {
    // Both at once: each waits long intervals.
    std::thread::scope(|s| {
        s.spawn(slow_down_adds_5_seconds_for_good);
        s.spawn(slow_down_with_larger_server_interval_is_taken);
    });
}

#[test]
fn pair_expired_token_gets_a_new_code() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.expire_codes = 1)
        .approve_after_polls(0)
        .start();
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["code", "expired", "code", "paired"],
        "{}",
        out.show()
    );
    let codes = out.events_named("code");
    assert_eq!(codes[0]["renewed"], false);
    assert_eq!(codes[1]["renewed"], true);
    assert_ne!(codes[0]["user_code"], codes[1]["user_code"]);
    let stats = env.server().stats();
    assert_eq!(stats.device_codes_issued, 2);
    assert_eq!(stats.expired_answers, 1);
    assert_eq!(stats.polls_early, 0);
    // The two device codes polled differ: the dead one is never polled again.
    let polls = env.polls();
    assert_eq!(polls.len(), 2);
    assert_ne!(
        polls[0].form_value("device_code"),
        polls[1].form_value("device_code")
    );
}

#[test]
fn pair_local_deadline_renews_the_code() {
    // A 3 s code nobody approves: devauth's own deadline replaces it, without the server ever
    // answering expired_token. The second code is approved by hand.
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.expires_in = 3)
        .start();
    let run = env.cmd(&["pair", "--json"]).spawn();
    assert!(
        wait_until(S(20), || env.server().stats().device_codes_issued >= 2),
        "no second code: {:?}",
        env.server().stats()
    );
    let second = env.server().latest_user_code().unwrap();
    assert!(env.server().approve(&second));
    let out = run.wait();
    out.code(exit::OK);
    out.events_from_to("code", "paired");
    assert!(
        out.event_names().contains(&"expired".to_string()),
        "{}",
        out.show()
    );
    let codes = out.events_named("code");
    assert_eq!(codes.len(), 2, "{}", out.show());
    assert_eq!(codes[0]["expires_in"], 3);
    assert_eq!(codes[1]["renewed"], true);
    assert_eq!(codes[1]["user_code"], second.as_str());
    let stats = env.server().stats();
    assert_eq!(stats.expired_answers, 0, "{stats:?}");
    assert_eq!(stats.device_codes_issued, 2);
    assert_eq!(stats.polls_early, 0);
}

#[test]
fn pair_denied_access_denied() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.auto_deny = true)
        .approve_after_polls(0)
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::DENIED);
    assert_eq!(out.event_names(), ["code", "denied"]);
    assert!(env.store_json().is_none());
    assert_eq!(env.server().stats().denied_answers, 1);
    assert_eq!(env.server().stats().tokens_issued, 0);
}

#[test]
fn pair_denied_authorization_declined() {
    let env = Setup::new(Provider::Generic)
        .behavior(|b| {
            b.auto_deny = true;
            b.denial_error = "authorization_declined".into();
        })
        .approve_after_polls(0)
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::DENIED);
    assert_eq!(out.event_names(), ["code", "denied"]);
    assert!(env.store_json().is_none());
}

/// One transient fault on the first poll: a `retrying` event with a reason, then pairing
/// succeeds and no poll (before or after the retry) comes sooner than the interval.
fn retried_poll(fault: Fault, toml: &str, reason_has: &str) {
    let what = format!("{fault:?}");
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(2)
        .toml(toml)
        .start();
    env.server().inject(Endpoint::Token, fault);
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["code", "retrying", "pending", "pending", "paired"],
        "{what}: {}",
        out.show()
    );
    let retrying = &out.events()[1];
    let reason = retrying["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(reason_has) && reason.contains(&format!("{}/token", env.base())),
        "{what}: reason {reason:?} should mention {reason_has:?} and the endpoint"
    );
    assert!(
        retrying["in_secs"].as_u64().is_some_and(|s| s >= 1),
        "{what}: {retrying}"
    );
    let stats = env.server().stats();
    assert_eq!(stats.faults_served, 1, "{what}");
    assert_eq!(stats.polls_early, 0, "{what}: {stats:?}");
    assert_eq!(stats.replays, 0, "{what}");
    // Every request to the token endpoint (the failed one included) keeps the interval.
    let at: Vec<_> = env
        .server()
        .requests_to(Endpoint::Token)
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(at.len(), 4, "{what}");
    assert_gaps_at_least(&what, &at, S(1));
}

#[test]
fn pair_retries_transient_token_endpoint_failures() {
    // Five servers at once, each failing the first poll differently.
    std::thread::scope(|s| {
        s.spawn(|| retried_poll(Fault::Status(503), "", "HTTP 503"));
        s.spawn(|| retried_poll(Fault::Status(429), "", "HTTP 429"));
        s.spawn(|| retried_poll(Fault::Close, "", "/token"));
        s.spawn(|| {
            retried_poll(
                Fault::Hang,
                "[network]\ntimeout_secs = 2\nconnect_timeout_secs = 1\n",
                "timed out",
            )
        });
        // Headers, then a body that trickles forever: the whole-request timeout ends it.
        s.spawn(|| {
            retried_poll(
                Fault::Endless,
                "[network]\ntimeout_secs = 2\nconnect_timeout_secs = 1\n",
                "/token",
            )
        });
    });
}

#[test]
fn pair_oversized_device_answer_is_retried() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Oversized(300_000));
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["retrying", "code", "paired"],
        "{}",
        out.show()
    );
    let reason = out.events()[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("/device/code"), "{reason}");
    assert!(reason.contains("larger than 65536 bytes"), "{reason}");
    assert_eq!(env.server().stats().device_codes_issued, 1);
}

#[test]
fn pair_html_error_page_is_retried_with_a_clear_reason() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Html(502));
    let out = env.pair();
    assert_eq!(out.event_names(), ["retrying", "code", "paired"]);
    let reason = out.events()[0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("502") && reason.contains("HTML page"),
        "{reason}"
    );
}

#[test]
fn pair_html_page_with_4xx_stops_with_a_clear_message() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Html(403));
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/device/code", env.base()))
        .stderr_has("403")
        .stderr_has("HTML page");
    assert_eq!(out.event_names(), ["error"]);
    assert_eq!(env.server().stats().device_codes_issued, 0);
}

#[test]
fn pair_malformed_token_answer_stops_without_polling_again() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server().inject(Endpoint::Token, Fault::Malformed);
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/token", env.base()))
        .stderr_has("invalid json");
    assert_eq!(out.event_names(), ["code", "error"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.server().requests_to(Endpoint::Token).len(), 1);
    assert!(env.store_json().is_none());
}

#[test]
fn pair_invalid_client_is_fatal_and_names_endpoint_status_and_error() {
    let env = Setup::new(Provider::Generic)
        .client_id("no-such-client")
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/device/code", env.base()))
        .stderr_has("HTTP 401")
        .stderr_has("invalid_client");
    assert_eq!(out.event_names(), ["error"]);
    assert_eq!(env.server().stats().requests, 1);
}

#[test]
fn pair_invalid_client_while_polling_names_endpoint_status_and_error() {
    // The server wants a client secret on the token endpoint only; the config has none.
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.client_secret = Some("only-the-token-endpoint-knows".into()))
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/token", env.base()))
        .stderr_has("HTTP 401")
        .stderr_has("invalid_client")
        .stderr_has("client authentication required");
    assert_eq!(out.event_names(), ["code", "error"]);
    assert_eq!(env.server().requests_to(Endpoint::Token).len(), 1);
}

#[test]
fn pair_backoff_grows_then_resets_after_a_good_answer() {
    // Two failed code requests: the second wait is longer (exponential, base 2 s with equal
    // jitter: [1, 2) s then [2, 4) s). Then a failed poll starts from the base again.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Status(503));
    env.server()
        .inject(Endpoint::DeviceAuthorization, Fault::Status(503));
    env.server().inject(Endpoint::Token, Fault::Status(503));
    let out = env.pair();
    assert_eq!(
        out.event_names(),
        ["retrying", "retrying", "code", "retrying", "paired"],
        "{}",
        out.show()
    );
    let waits: Vec<u64> = out
        .events_named("retrying")
        .iter()
        .map(|e| e["in_secs"].as_u64().unwrap())
        .collect();
    assert_eq!(waits[0], 1, "{waits:?}");
    assert!((2..4).contains(&waits[1]), "{waits:?}");
    assert_eq!(waits[2], 1, "reset after the code was issued: {waits:?}");
    let device: Vec<_> = env
        .server()
        .requests_to(Endpoint::DeviceAuthorization)
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(device.len(), 3);
    let g = gaps(&device);
    assert!(g[0] >= S(1) - Duration::from_millis(50), "{g:?}");
    assert!(g[1] >= S(2) - Duration::from_millis(50), "{g:?}");
    assert_eq!(env.server().stats().polls_early, 0);
}

#[test]
fn pair_never_polls_a_code_past_its_deadline() {
    // A 4 s code and a token endpoint that keeps failing: the retries back off and stop at
    // the code's deadline; a new code follows.
    let env = Setup::new(Provider::Generic)
        .behavior(|b| b.expires_in = 4)
        .start();
    for _ in 0..10 {
        env.server().inject(Endpoint::Token, Fault::Status(503));
    }
    let run = env.cmd(&["pair", "--json"]).spawn();
    assert!(
        wait_until(S(30), || env.server().stats().device_codes_issued >= 2),
        "no second code: {:?}",
        env.server().stats()
    );
    env.server().clear_faults();
    let second = env.server().latest_user_code().unwrap();
    assert!(env.server().approve(&second));
    let out = run.wait();
    out.code(exit::OK);
    let names = out.event_names();
    assert!(names.contains(&"expired".to_string()), "{}", out.show());
    assert_eq!(out.events_named("code").len(), 2, "{}", out.show());
    let device = env.server().requests_to(Endpoint::DeviceAuthorization);
    let first_deadline = device[0].at + S(4);
    let first_code = env.server().requests_to(Endpoint::Token)[0]
        .form_value("device_code")
        .unwrap()
        .to_string();
    for r in env.server().requests_to(Endpoint::Token) {
        if r.form_value("device_code") == Some(first_code.as_str()) {
            assert!(
                r.at <= first_deadline + scaled(Duration::from_millis(200)),
                "polled {:?} after the code's deadline",
                r.at - first_deadline
            );
        }
    }
    assert!(
        device[1].at >= first_deadline,
        "renewed before the deadline"
    );
    assert_eq!(env.server().stats().polls_early, 0);
}

#[test]
fn pair_refuses_unsafe_values_from_the_server() {
    let env = Env::generic();
    let b = env.base().to_string();
    let cases = [
        (
            r#"{"device_code":"dc-0123456789abcdef","user_code":"ABCD-EFGH","verification_uri":"http://phish.example.com/device","expires_in":600,"interval":1}"#.to_string(),
            "verification_uri",
        ),
        (
            format!(
                r#"{{"device_code":"dc-0123456789abcdef","user_code":"AB\u001b[2JCD","verification_uri":"{b}/device","expires_in":600,"interval":1}}"#
            ),
            "user_code",
        ),
        (
            format!(r#"{{"user_code":"ABCD-EFGH","verification_uri":"{b}/device","expires_in":600}}"#),
            "device_code",
        ),
    ];
    for (body, field) in cases {
        env.server().inject(
            Endpoint::DeviceAuthorization,
            Fault::Raw {
                status: 200,
                content_type: "application/json".into(),
                body: body.clone(),
            },
        );
        let out = env.run(&["pair", "--json"]);
        out.code(exit::PROVIDER).stderr_has(field);
        assert_eq!(out.event_names(), ["error"], "{body}");
        assert!(!out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'));
        assert!(!out.stderr.contains("phish"), "{}", out.show());
    }
    assert!(env.polls().is_empty());
}

/// The server issued tokens but the answer never arrived: the next poll is a replay, which the
/// server refuses with invalid_grant (and revokes what it issued). devauth must not give up: it
/// starts over with a fresh code, which the person approves again.
#[test]
fn pair_lost_token_answer_starts_over_with_a_new_code() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.server().inject(Endpoint::Token, Fault::LoseResponse);
    let out = env.pair();
    out.code(0);
    assert_eq!(
        out.event_names(),
        ["code", "retrying", "expired", "code", "paired"],
        "{}",
        out.show()
    );
    assert_eq!(out.events_named("code")[1]["renewed"], true);
    let stats = env.server().stats();
    assert_eq!(stats.device_codes_issued, 2, "{stats:?}");
    assert_eq!(stats.replays, 1, "{stats:?}");
    // The stored tokens are the second grant's, alive at the server.
    let access = env.stored("access_token").expect("stored");
    assert!(env.server().live_access_tokens().contains(&access));
}

/// `[display]` for a 64x32 RGB565 framebuffer at `device` (a plain file, as in the fbdev tests).
fn late_framebuffer(device: &std::path::Path, wait_secs: u32) -> String {
    format!(
        "[display]\nbackend = \"framebuffer\"\ndevice = \"{}\"\nwidth = 64\nheight = 32\n\
         format = \"rgb565\"\nstride = 128\nwait_secs = {wait_secs}\n",
        device.display()
    )
}

#[test]
fn pair_waits_for_a_framebuffer_that_appears_late() {
    // The boot-order race: devauth starts before the display driver has made /dev/fb0.
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("fb0");
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml(&late_framebuffer(&device, 30))
        .start();
    let run = env.cmd(&["pair", "--json"]).spawn();
    std::thread::sleep(scaled(Duration::from_millis(1500)));
    std::fs::write(&device, vec![0u8; 128 * 32]).unwrap();
    let out = run.wait();
    out.code(exit::OK)
        .stderr_has("is not there yet; waiting up to 30 s for the display driver");
    let waiting = out.events_named("waiting_for_display");
    assert_eq!(waiting.len(), 1, "{}", out.show());
    assert_eq!(waiting[0]["device"], device.display().to_string());
    assert_eq!(waiting[0]["wait_secs"], 30);
    assert_eq!(out.event_names().last().map(String::as_str), Some("paired"));
    // The pairing was drawn on the device once it came.
    let bytes = std::fs::read(&device).unwrap();
    assert!(
        bytes.iter().any(|b| *b != 0),
        "nothing drawn on the framebuffer"
    );
}

#[test]
fn pair_gives_up_on_a_framebuffer_that_never_comes() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("fb0");
    let env = Setup::new(Provider::Generic)
        .toml(&late_framebuffer(&device, 1))
        .start();
    let out = env.run(&["pair", "--json"]);
    // A display that cannot be opened is the generic failure (1), as without a wait.
    out.code(1)
        .stderr_has("waiting up to 1 s for the display driver")
        .stderr_has("opening: No such file or directory");
    assert!(out.elapsed >= Duration::from_secs(1), "{:?}", out.elapsed);
    assert_eq!(out.event_names(), vec!["waiting_for_display".to_string()]);
}

/// `[display]` for a 320x240 XRGB8888 framebuffer at `device` (a plain file).
fn framebuffer_320x240(device: &std::path::Path) -> String {
    std::fs::write(device, vec![0u8; 320 * 240 * 4]).unwrap();
    format!(
        "[display]\nbackend = \"framebuffer\"\ndevice = \"{}\"\nwidth = 320\nheight = 240\n\
         format = \"xrgb8888\"\nstride = 1280\n",
        device.display()
    )
}

/// The QR payloads on a 320x240 XRGB8888 framebuffer file.
fn framebuffer_qrs(device: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(device).unwrap_or_default();
    if bytes.len() < 320 * 240 * 4 {
        return Vec::new();
    }
    decode_qrs(320, 240, |x, y| {
        let at = (y as usize * 320 + x as usize) * 4;
        ((u32::from(bytes[at]) + u32::from(bytes[at + 1]) + u32::from(bytes[at + 2])) / 3) as u8
    })
}

#[test]
fn a_signal_to_pair_takes_the_code_off_the_screen() {
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("fb0");
        // Never approved: the code stays live until the signal.
        let env = Setup::new(Provider::Generic)
            .toml(&framebuffer_320x240(&device))
            .start();
        let run = env.cmd(&["pair", "--json"]).spawn();
        let mut shown = Vec::new();
        assert!(
            wait_until(Duration::from_secs(10), || {
                shown = framebuffer_qrs(&device);
                !shown.is_empty()
            }),
            "{name}: the code never reached the framebuffer"
        );
        assert!(shown[0].contains("user_code="), "{name}: {shown:?}");
        run.signal(sig);
        let out = run.wait();
        out.code(128 + sig)
            .stderr_has(&format!("{name} received; pairing stopped"));
        out.events_from_to("code", "stopped");
        assert_eq!(out.events_named("stopped")[0]["signal"], name);
        assert!(
            framebuffer_qrs(&device).is_empty(),
            "{name}: a QR is still on the screen after pair stopped"
        );
        assert!(env.store_json().is_none());
    }
}
