//! `devauth token` after pairing: refresh when the access token is stale, refresh-token rotation
//! (and keeping the old one when the server does not rotate), many processes at once against
//! reuse detection, a revoked grant, the refresh margin cap and transient refresh failures.

mod common;

use common::*;
use std::time::Duration;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Paired with access tokens that live `lifetime` seconds.
fn paired(lifetime: u64, f: impl FnOnce(&mut Behavior)) -> Env {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| {
            b.token_lifetime = Some(lifetime);
            f(b)
        })
        .start();
    env.pair();
    env
}

#[test]
fn token_refreshes_a_stale_token_and_stores_the_rotated_refresh_token() {
    let env = paired(2, |_| {});
    let at0 = env.stored("access_token").unwrap();
    let rt0 = env.stored("refresh_token").unwrap();
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    // The margin is capped at half of 2 s: after 1.1 s the token is stale.
    std::thread::sleep(MS(1100));
    let t1 = env.token();
    assert_ne!(t1, at0);
    assert!(env.server().live_access_tokens().contains(&t1));
    let stats = env.server().stats();
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(stats.refresh_failures, 0);
    let refresh = env.refreshes();
    assert_eq!(refresh.len(), 1);
    assert_eq!(refresh[0].form_value("refresh_token"), Some(rt0.as_str()));
    assert_eq!(refresh[0].form_value("client_id"), Some(TEST_CLIENT_ID));
    // Rotation: the store holds the new refresh token, the old one is dead.
    let rt1 = env.stored("refresh_token").unwrap();
    assert_ne!(rt1, rt0);
    assert_eq!(env.server().live_refresh_tokens(), vec![rt1.clone()]);
    assert_eq!(env.stored("access_token").as_deref(), Some(t1.as_str()));
    assert_eq!(Env::mode(&env.store), 0o600);
    // The new token is fresh: no second refresh. The account survives the refresh.
    assert_eq!(env.token(), t1);
    assert_eq!(env.server().stats().refreshes, 1);
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has(&format!("Paired as {EMAIL}"));
}

#[test]
fn token_keeps_a_refresh_token_the_server_does_not_rotate() {
    let env = paired(2, |b| b.rotate_refresh_tokens = false);
    let rt0 = env.stored("refresh_token").unwrap();
    let mut seen = vec![env.stored("access_token").unwrap()];
    for round in 1..=3 {
        std::thread::sleep(MS(1100));
        let t = env.token();
        assert!(!seen.contains(&t), "round {round}: not refreshed");
        assert!(env.server().live_access_tokens().contains(&t));
        seen.push(t);
        assert_eq!(
            env.stored("refresh_token").as_deref(),
            Some(rt0.as_str()),
            "round {round}"
        );
    }
    let stats = env.server().stats();
    assert_eq!(stats.refreshes, 3, "{stats:?}");
    assert_eq!(stats.refresh_failures, 0);
    for r in env.refreshes() {
        assert_eq!(r.form_value("refresh_token"), Some(rt0.as_str()));
    }
    assert_eq!(env.server().live_refresh_tokens(), vec![rt0]);
}

#[test]
fn token_many_processes_refresh_once_per_expiry() {
    // Rotation with reuse detection and no grace: a second use of a rotated-out refresh token
    // would revoke the whole grant. Tokens issued by refreshes live `life` seconds.
    let life = 4 * u64::from(slow_factor());
    let env = paired(2, |b| {
        b.rotate_refresh_tokens = true;
        b.reuse_detection = true;
        b.reuse_grace = Duration::ZERO;
    });
    env.server().set_behavior(|b| b.token_lifetime = Some(life));
    let mut stale_after = MS(1100);
    for round in 1..=2u32 {
        std::thread::sleep(stale_after);
        let running: Vec<_> = (0..20).map(|_| env.cmd(&["token"]).spawn()).collect();
        let outputs: Vec<Output> = running.into_iter().map(Running::wait).collect();
        let live = env.server().live_access_tokens();
        let stored = env.stored("access_token").unwrap();
        for out in &outputs {
            out.code(exit::OK);
            assert_eq!(out.line(), stored, "round {round}: {}", out.show());
            assert!(live.contains(&stored));
        }
        let stats = env.server().stats();
        assert_eq!(stats.refreshes, round, "round {round}: {stats:?}");
        assert_eq!(stats.reuse_detected, 0, "round {round}: {stats:?}");
        assert_eq!(stats.invalid_grants, 0, "round {round}: {stats:?}");
        assert_eq!(stats.refresh_failures, 0, "round {round}: {stats:?}");
        assert_eq!(stats.active_refresh_tokens, 1);
        stale_after = Duration::from_millis(life * 500 + 100);
    }
    // The grant still works: the stored refresh token is the live one, and it refreshes.
    let rt = env.stored("refresh_token").unwrap();
    assert_eq!(env.server().live_refresh_tokens(), vec![rt]);
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    std::thread::sleep(stale_after);
    let t = env.token();
    assert!(env.server().live_access_tokens().contains(&t));
    assert_eq!(env.server().stats().refreshes, 3);
}

#[test]
fn token_after_the_grant_was_revoked_needs_pairing_again() {
    let env = paired(2, |_| {});
    env.server().revoke_all();
    std::thread::sleep(MS(1100));
    let out = env.run(&["token"]);
    out.code(exit::PAIR_AGAIN)
        .stderr_has("pairing needed again")
        .stderr_has("invalid_grant");
    assert_eq!(out.stdout, "");
    assert_eq!(env.server().stats().invalid_grants, 1);
}

#[test]
fn token_not_paired_exits_3() {
    let env = Env::generic();
    let out = env.run(&["token"]);
    out.code(exit::NOT_PAIRED).stderr_has("not paired");
    assert_eq!(out.stdout, "");
    env.run(&["token", "--header"]).code(exit::NOT_PAIRED);
    assert_eq!(env.server().stats().requests, 0);
}

#[test]
fn token_refresh_margin_is_capped_at_half_the_lifetime() {
    // 300 s margin, 10 s token: without the cap every call would refresh.
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(10))
        .toml("[agent]\nrefresh_margin_secs = 300")
        .start();
    env.pair();
    let at = env.stored("access_token").unwrap();
    assert_eq!(env.token(), at);
    assert_eq!(env.token(), at);
    assert_eq!(env.server().stats().refreshes, 0);
    assert!(env.refreshes().is_empty());
}

#[test]
fn token_transient_refresh_failure_hands_out_the_still_valid_token() {
    let env = paired(4, |_| {});
    let at = env.stored("access_token").unwrap();
    let rt = env.stored("refresh_token").unwrap();
    // Stale (under 2 s left) but still valid: a 503 on refresh is not fatal.
    std::thread::sleep(MS(2100));
    env.server().inject(Endpoint::Token, Fault::Status(503));
    let out = env.run(&["token"]);
    out.code(exit::OK).stderr_has("refresh failed");
    assert_eq!(out.line(), at);
    assert_eq!(env.stored("refresh_token").as_deref(), Some(rt.as_str()));
    // Once expired with the provider unreachable: a network error, not "pair again".
    let mut env = env;
    env.stop_server();
    std::thread::sleep(MS(2000));
    let out = env.run(&["token"]);
    out.code(exit::NETWORK).stderr_has("network");
    assert!(
        env.store.exists(),
        "a network error must not drop the tokens"
    );
}
