//! Hostile and broken values from servers, end to end (the real binary against the loopback test
//! server answering exactly what each test scripts): duplicate and conflicting JSON keys, huge,
//! negative and absurd `interval` / `expires_in`, user codes with control characters or of
//! absurd length, and other text that would be drawn.
//!
//! Each case ends in a clear error naming the field (never quoting a secret or drawing the raw
//! value) or a safe clamp that the `--json` events show; never a panic; and tokens stored before
//! stay as they were (nothing lost). The harness checks every output for secrets when the `Env`
//! drops.

mod common;

use common::*;
use std::time::Duration;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Paired once (store written); returns the store's bytes.
fn paired() -> (Env, Vec<u8>) {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.pair();
    let store = std::fs::read(&env.store).unwrap();
    (env, store)
}

fn raw(status: u16, body: impl Into<String>) -> Fault {
    Fault::Raw {
        status,
        content_type: "application/json".into(),
        body: body.into(),
    }
}

/// A device answer around `fields` (JSON members, no braces) with a usable rest.
fn device_answer(env: &Env, fields: &str) -> String {
    let b = env.base();
    let mut body = String::from("{");
    for (k, v) in [
        ("device_code", "\"dc-0123456789abcdef\"".to_string()),
        ("user_code", "\"ABCD-EFGH\"".to_string()),
        ("verification_uri", format!("\"{b}/device\"")),
        ("expires_in", "600".to_string()),
        ("interval", "1".to_string()),
    ] {
        if !fields.contains(&format!("\"{k}\"")) {
            body.push_str(&format!("\"{k}\":{v},"));
        }
    }
    body.push_str(fields);
    body.push('}');
    body
}

/// `pair --json` that must stop with exit 8, naming `field` and `has`, showing no code, drawing
/// no control character, and leaving the store as `before`.
fn refused_device_answer(env: &Env, before: &[u8], body: &str, field: &str, has: &str) -> Output {
    env.server()
        .inject(Endpoint::DeviceAuthorization, raw(200, body));
    // --force: the device is paired; the old tokens must survive the refused answer.
    let out = env.run(&["pair", "--json", "--force"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/device/code", env.base()))
        .stderr_has(field)
        .stderr_has(has);
    assert_eq!(out.event_names(), ["error"], "{body}");
    assert_no_control_chars(&out);
    assert_eq!(std::fs::read(&env.store).unwrap(), before, "store changed");
    out
}

/// Nothing a server sent may reach the terminal raw: no control characters (newlines aside)
/// and no bidi overrides in stdout or stderr.
#[track_caller]
fn assert_no_control_chars(out: &Output) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(bad.is_empty(), "{name} has {bad:?}\n{}", out.show());
    }
}

/// Starts `pair --json`, lets it run until the server answered `requests` device requests and
/// `extra` more passed, then stops it (the code's interval would make the test wait).
fn pair_briefly(env: &Env, requests: usize, extra: Duration) -> Output {
    let mut run = env.cmd(&["pair", "--json"]).spawn();
    let ok = wait_until(Duration::from_secs(10), || {
        env.server()
            .requests_to(Endpoint::DeviceAuthorization)
            .len()
            >= requests
    });
    std::thread::sleep(scaled(extra));
    run.kill();
    let out = run.wait();
    assert!(ok, "no device request\n{}", out.show());
    assert!(!out.stderr.contains("panicked"), "{}", out.show());
    assert_no_control_chars(&out);
    out
}

// --- duplicate and conflicting keys -------------------------------------------------------------

#[test]
fn duplicate_keys_in_a_device_answer_are_refused_and_retried() {
    // Asking for a code again is harmless, so an unusable device answer is retried (with the
    // reason shown) and the next, good one pairs. JSON and form-encoded alike.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    let b = env.base().to_string();
    let json_body = format!(
        r#"{{"device_code":"dc-0123456789abcdef","user_code":"ABCD-EFGH","user_code":"EVIL-CODE","verification_uri":"{b}/device","expires_in":600}}"#
    );
    let form_body = format!(
        "device_code=dc-0123456789abcdef&user_code=ABCD-EFGH&verification_uri={}&expires_in=600&expires_in=1",
        devauth_testserver::form_encode(&format!("{b}/device"))
    );
    for (content_type, body, field) in [
        ("application/json", json_body, "user_code"),
        ("application/x-www-form-urlencoded", form_body, "expires_in"),
    ] {
        env.server().inject(
            Endpoint::DeviceAuthorization,
            Fault::Raw {
                status: 200,
                content_type: content_type.into(),
                body,
            },
        );
        // --force: the second round pairs a paired device again.
        let out = env.run(&["pair", "--json", "--force"]);
        out.code(exit::OK);
        assert_eq!(out.event_names(), ["retrying", "code", "paired"]);
        let reason = out.events()[0]["reason"].as_str().unwrap().to_string();
        assert!(
            reason.contains(&format!("{b}/device/code"))
                && reason.contains(&format!("`{field}` appears twice")),
            "{reason}"
        );
        assert!(!out.stdout.contains("EVIL") && !out.stderr.contains("EVIL"));
        assert_ne!(out.events()[1]["user_code"], "ABCD-EFGH");
        assert_no_control_chars(&out);
    }
}

#[test]
fn duplicate_keys_in_a_token_answer_are_refused_and_the_old_tokens_kept() {
    let (env, before) = paired();
    env.server().inject(
        Endpoint::Token,
        raw(
            200,
            r#"{"access_token":"first-access-token-123456","token_type":"Bearer","access_token":"second-access-token-654321"}"#,
        ),
    );
    let out = env.run(&["pair", "--json", "--force"]);
    out.code(exit::PROVIDER)
        .stderr_has(&format!("{}/token", env.base()))
        .stderr_has("`access_token` appears twice");
    assert_eq!(out.event_names(), ["code", "error"]);
    for t in ["first-access-token-123456", "second-access-token-654321"] {
        assert!(
            !out.stdout.contains(t) && !out.stderr.contains(t),
            "{t} shown"
        );
    }
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
}

#[test]
fn duplicate_keys_in_a_refresh_answer_are_refused_and_the_store_kept() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(1))
        .start();
    env.pair();
    let before = std::fs::read(&env.store).unwrap();
    std::thread::sleep(MS(1100));
    env.server().inject(
        Endpoint::Token,
        raw(
            200,
            r#"{"access_token":"dup-access-token-123456","token_type":"Bearer","expires_in":3600,"expires_in":0}"#,
        ),
    );
    env.run(&["token"])
        .code(exit::PROVIDER)
        .stderr_has("`expires_in` appears twice");
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
    // The refresh token was never spent: the next refresh works.
    env.token();
}

#[test]
fn an_error_beside_tokens_wins_and_those_tokens_are_never_stored() {
    // Conflicting fields: a poll answer that says both "pending" and carries a token. The
    // error decides (RFC 8628 §3.5); the token in it is not used; pairing goes on.
    let env = Setup::new(Provider::Generic).approve_after_polls(1).start();
    env.server().inject(
        Endpoint::Token,
        raw(
            400,
            r#"{"error":"authorization_pending","access_token":"conflicting-token-0123456789","token_type":"Bearer"}"#,
        ),
    );
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "pending", "pending", "paired"]);
    let stored = env.stored("access_token").unwrap();
    assert_ne!(stored, "conflicting-token-0123456789");
    assert!(env.server().live_access_tokens().contains(&stored));
}

#[test]
fn verification_uri_wins_over_googles_verification_url() {
    let env = Env::generic();
    let b = env.base().to_string();
    env.server().inject(
        Endpoint::DeviceAuthorization,
        raw(
            200,
            device_answer(
                &env,
                &format!(r#""verification_uri":"{b}/device","verification_url":"{b}/other""#),
            ),
        ),
    );
    let out = pair_briefly(&env, 1, MS(800));
    let code = &out.events_named("code")[0];
    assert_eq!(code["verification_uri"], format!("{b}/device"));
}

// --- interval and expires_in --------------------------------------------------------------------

#[test]
fn huge_interval_and_expires_in_are_clamped() {
    let env = Env::generic();
    env.server().inject(
        Endpoint::DeviceAuthorization,
        raw(
            200,
            device_answer(
                &env,
                r#""expires_in":18446744073709551615,"interval":99999999999999"#,
            ),
        ),
    );
    let out = pair_briefly(&env, 1, MS(1500));
    let code = &out.events_named("code")[0];
    assert_eq!(code["interval"], 60, "{code}");
    assert_eq!(code["expires_in"], 7200, "{code}");
    assert!(env.polls().is_empty(), "polled before the clamped interval");
}

#[test]
fn zero_null_negative_or_garbage_interval_is_clamped_or_defaulted() {
    for (interval, shown) in [
        ("0", 1),
        ("null", 5),
        ("-5", 5),
        ("\"soon\"", 5),
        ("4.9", 4),
    ] {
        let env = Env::generic();
        env.server().inject(
            Endpoint::DeviceAuthorization,
            raw(
                200,
                device_answer(&env, &format!(r#""interval":{interval}"#)),
            ),
        );
        let out = pair_briefly(&env, 1, MS(800));
        let code = &out.events_named("code")[0];
        assert_eq!(code["interval"], shown, "interval {interval}: {code}");
    }
}

#[test]
fn negative_or_absurd_code_lifetime_is_refused() {
    let (env, before) = paired();
    for (expires_in, has) in [
        ("-1", "negative value -1"),
        ("\"-600\"", "negative value -600"),
        ("1e300", "out of range"),
        ("\"18446744073709551616\"", "not a number"),
        ("{}", "expected a number"),
    ] {
        let body = device_answer(&env, &format!(r#""expires_in":{expires_in}"#));
        refused_device_answer(&env, &before, &body, "expires_in", has);
    }
}

#[test]
fn slow_down_asking_for_an_absurd_interval_is_capped() {
    let env = Setup::new(Provider::Generic).start();
    env.server().inject(
        Endpoint::Token,
        raw(
            400,
            r#"{"error":"slow_down","interval":1000000000000}"#.to_string(),
        ),
    );
    let mut run = env.cmd(&["pair", "--json"]).spawn();
    assert!(wait_until(Duration::from_secs(10), || !env
        .polls()
        .is_empty()));
    std::thread::sleep(scaled(MS(500)));
    run.kill();
    let out = run.wait();
    assert_eq!(out.event_names(), ["code", "slow_down"], "{}", out.show());
    assert_eq!(out.events_named("slow_down")[0]["interval"], 300);
    assert_eq!(env.polls().len(), 1);
}

#[test]
fn huge_token_lifetime_is_clamped_and_shown_clamped() {
    let env = Setup::new(Provider::Generic).start();
    env.server().inject(
        Endpoint::Token,
        raw(
            200,
            r#"{"access_token":"huge-lifetime-access-0123456789","token_type":"Bearer","expires_in":18446744073709551615}"#,
        ),
    );
    let out = env.pair();
    let paired = &out.events_named("paired")[0];
    assert_eq!(paired["expires_in"], 366 * 24 * 3600, "{paired}");
    let status = env.run(&["status", "--json"]).code(exit::OK).json();
    let left = status["access_token_expires_in"].as_u64().unwrap();
    assert!(
        left <= 366 * 24 * 3600 && left > 365 * 24 * 3600,
        "{status}"
    );
}

#[test]
fn negative_token_lifetime_keeps_the_tokens_as_expiring_now() {
    // A refresh answer whose expires_in is unusable: the server has rotated the refresh token
    // by then, so refusing the answer would lose the grant. It is kept, as expiring now.
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(1))
        .start();
    env.pair();
    std::thread::sleep(MS(1100));
    env.server().inject(
        Endpoint::Token,
        raw(
            200,
            r#"{"access_token":"negative-lifetime-access-0123","token_type":"Bearer","expires_in":-3600,"refresh_token":"rotated-refresh-token-0123456789"}"#,
        ),
    );
    let out = env.run(&["token"]);
    out.code(exit::OK);
    assert_eq!(out.line(), "negative-lifetime-access-0123");
    assert_eq!(
        env.stored("refresh_token").as_deref(),
        Some("rotated-refresh-token-0123456789")
    );
    let status = env.run(&["status", "--json"]).code(exit::OK).json();
    assert_eq!(status["access_token_expires_in"], 0, "{status}");
}

// --- user codes and other drawn text ------------------------------------------------------------

#[test]
fn user_codes_with_control_characters_are_refused_and_never_drawn() {
    let (env, before) = paired();
    for code in [
        r"AB\u001b[2JCD",
        r"ABCD\u0000EFGH",
        r"ABCD\u0007",
        r"ABCD\r\nEFGH",
        r"ABCD\u007fEFGH",
        r"AB\u009b31mCD",
        r"\u202eHGFE-DCBA",
        r"AB\u2066CD",
    ] {
        let body = device_answer(&env, &format!(r#""user_code":"{code}""#));
        refused_device_answer(&env, &before, &body, "user_code", "control characters");
    }
}

#[test]
fn absurdly_long_user_code_and_uri_are_refused_without_echoing_them() {
    let (env, before) = paired();
    let long_code = "A".repeat(10 * 1024);
    let body = device_answer(&env, &format!(r#""user_code":"{long_code}""#));
    let out = refused_device_answer(&env, &before, &body, "user_code", "10240 bytes long");
    assert!(!out.stderr.contains(&"A".repeat(41)), "{}", out.show());
    let long_uri = format!("{}/device?{}", env.base(), "x".repeat(4000));
    let body = device_answer(&env, &format!(r#""verification_uri":"{long_uri}""#));
    let out = refused_device_answer(&env, &before, &body, "verification_uri", "bytes long");
    assert!(!out.stderr.contains(&"x".repeat(41)));
    assert!(out.stdout.len() + out.stderr.len() < 4096, "{}", out.show());
}

#[test]
fn provider_message_with_control_characters_is_cleaned_not_refused() {
    let env = Env::generic();
    env.server().inject(
        Endpoint::DeviceAuthorization,
        raw(
            200,
            device_answer(
                &env,
                r#""message":"Enter the code\u001b[2J at \u202eevil\u0007 now""#,
            ),
        ),
    );
    let out = pair_briefly(&env, 1, MS(800));
    let message = out.events_named("code")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.starts_with("Enter the code"), "{message}");
    assert!(!message.chars().any(|c| c.is_control() || c == '\u{202e}'));
}

#[test]
fn every_scope_a_server_grants_is_stored() {
    // Regression (token_response fuzz target): 400 granted scopes, one of them 600 bytes long,
    // used to fail the save with exit 9 after the provider had issued the tokens.
    let mut scopes: Vec<String> = (0..399).map(|i| format!("s{i}")).collect();
    scopes.push(format!("https://api.example.com/{}", "x".repeat(576)));
    let granted = scopes.join(" ");
    assert!(granted.len() <= 4096);
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.scope_granted = Some(granted.clone()))
        .start();
    let out = env.pair();
    assert_eq!(
        out.events_named("paired")[0]["scopes"]
            .as_array()
            .unwrap()
            .len(),
        400
    );
    let stored = env.store_json().unwrap();
    assert_eq!(stored["scopes"].as_array().unwrap().len(), 400);
    env.token();
}
