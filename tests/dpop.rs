//! DPoP (RFC 9449) end to end: the real binary against the test server, which verifies every
//! proof (signature, typ, jwk, htm/htu, iat, jti replay, nonce, ath) and binds public clients'
//! refresh tokens to the key. Pairing, refresh, `api`, `token --dpop-proof`, unpairing, a
//! replayed proof, a token file copied to a device with another key, the nonce dance, `auto`.

mod common;

use common::socket::raw_get;
use common::*;
use std::time::Duration;

/// A server with DPoP (`policy`) and a config with `dpop = "<mode>"`; codes approved at once.
fn dpop_env(mode: &str, policy: Option<DpopPolicy>) -> Env {
    Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.dpop = policy)
        .provider_toml(&format!("dpop = \"{mode}\""))
        .start()
}

/// Pairs with a 2 s access token (later ones live an hour): [`stale`] makes it due.
fn pair_short(env: &Env) {
    env.server().set_behavior(|b| b.token_lifetime = Some(2));
    env.pair();
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
}

/// Waits until the 2 s token of [`pair_short`] is due for a refresh (the margin is capped at
/// half its lifetime).
fn stale() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// The claims of a compact JWS (tests read what devauth sent).
fn claims(jws: &str) -> Value {
    let part = jws.split('.').nth(1).unwrap();
    let bytes = devauth::net::wire::base64url_decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn dpop_pairing_refresh_api_proof_and_unpair() {
    let env = dpop_env("on", Some(DpopPolicy::default()));
    pair_short(&env);
    assert_eq!(env.stored("token_type").as_deref(), Some("DPoP"));
    let key = env.dpop_key_path();
    assert_eq!(Env::mode(&key), 0o600, "the proof key is private");
    let polls = env.polls();
    assert!(!polls.is_empty());
    for p in &polls {
        let proof = claims(p.header("dpop").expect("every poll carries a proof"));
        assert_eq!(proof["htm"], "POST");
        assert_eq!(proof["htu"], format!("{}/token", env.base()));
    }
    let s = env.server().stats();
    assert_eq!((s.dpop_bound_tokens, s.dpop_refusals), (1, 0), "{s:?}");
    env.run(&["status"]).code(exit::OK).stdout_has("DPoP");

    // Refresh: the bound refresh token works with the same key's proof.
    stale();
    let before = env.stored("access_token").unwrap();
    let token = env.token();
    assert_ne!(token, before);
    assert_eq!(env.refreshes().len(), 1);
    assert!(env.refreshes()[0].header("dpop").is_some());
    assert_eq!(env.server().stats().dpop_key_mismatches, 0);

    // `api`: Authorization: DPoP, a proof with the token's hash.
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["api", &userinfo])
        .code(exit::OK)
        .stdout_has("user@example.test");
    let req = env.server().requests_to(Endpoint::UserInfo).pop().unwrap();
    assert_eq!(
        req.header("authorization"),
        Some(format!("DPoP {token}").as_str())
    );
    assert!(claims(req.header("dpop").unwrap()).get("ath").is_some());

    // `token --header --dpop-proof`: another program sends the two lines; a replay fails.
    let out = env.run(&["token", "--header", "--dpop-proof", "GET", &userinfo]);
    out.code(exit::OK);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.show());
    assert_eq!(lines[0], format!("DPoP {token}"));
    let headers = [("Authorization", lines[0]), ("DPoP", lines[1])];
    assert_eq!(raw_get(&userinfo, &headers), 200);
    assert_eq!(
        raw_get(&userinfo, &headers),
        401,
        "a replayed proof is refused"
    );
    assert!(
        env.server()
            .dpop_refusals()
            .last()
            .unwrap()
            .contains("replayed")
    );
    // The same token as a Bearer token is refused too.
    let bearer = format!("Bearer {token}");
    assert_eq!(raw_get(&userinfo, &[("Authorization", &bearer)]), 401);

    // Unpair: the refresh token is revoked with a proof, and the key goes with the tokens.
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    assert!(env.server().stats().dpop_revocations >= 1);
    assert!(!key.exists() && !env.store.exists());
    assert!(env.server().live_refresh_tokens().is_empty());
}

#[test]
fn a_token_file_copied_to_a_device_with_another_key_is_refused() {
    let env = dpop_env("on", Some(DpopPolicy::default()));
    pair_short(&env);
    // A second device (its own store and key) against the same server.
    let other_store = env.dir().join("other/tokens.json");
    let other_config = env.dir().join("other.toml");
    let text = env.config_file().replace(
        &env.store.display().to_string(),
        &other_store.display().to_string(),
    );
    std::fs::write(&other_config, text).unwrap();
    let cfg = other_config.display().to_string();
    env.run(&["--config", &cfg, "pair", "--json"])
        .code(exit::OK);
    let mut other_key = other_store.as_os_str().to_os_string();
    other_key.push(".dpop-key");
    env.secret_key_file(std::path::Path::new(&other_key));
    // The first device's token file, copied over the second's: its key stays behind.
    std::fs::copy(&env.store, &other_store).unwrap();
    let stolen_rt = env.stored("refresh_token").unwrap();
    // Its access token is refused at the resource (the proof is by the wrong key) and renewing
    // is refused (the refresh token is bound to the first key): pairing needed, exit 4.
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["--config", &cfg, "api", &userinfo])
        .code(exit::PAIR_AGAIN);
    stale();
    env.run(&["--config", &cfg, "token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("pairing needed again");
    // `api` met the refusal at the server; `token` repeats the remembered refusal without
    // asking again (the store keeps the provider's invalid_grant).
    let s = env.server().stats();
    assert_eq!(s.dpop_key_mismatches, 1, "{s:?}");
    // The real device is unharmed: its refresh token still works with its own key.
    assert!(env.server().live_refresh_tokens().contains(&stolen_rt));
    env.token();
}

#[test]
fn the_nonce_dance_at_the_token_endpoint_and_the_resource() {
    let env = dpop_env(
        "on",
        Some(DpopPolicy {
            require_nonce: true,
            ..DpopPolicy::default()
        }),
    );
    pair_short(&env);
    let challenges = || env.server().stats().dpop_nonce_challenges;
    let after_pairing = challenges();
    assert!(after_pairing >= 1, "the first poll was asked for a nonce");
    // The authorization server: a new process, a rotated nonce, one challenge, one retry.
    env.server().rotate_dpop_nonce();
    stale();
    env.token();
    assert_eq!(challenges(), after_pairing + 1);
    // The resource server: 401 with `DPoP error="use_dpop_nonce"`, then the retry.
    env.server().rotate_dpop_nonce();
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["api", &userinfo]).code(exit::OK);
    let s = env.server().stats();
    assert_eq!(s.dpop_nonce_challenges, after_pairing + 2, "{s:?}");
    assert_eq!((s.userinfo_unauthorized, s.userinfo_ok), (1, 1));
    assert_eq!(s.dpop_refusals, 0, "{:?}", env.server().dpop_refusals());
    // `--dpop-nonce`: the caller passes the nonce the resource asked for.
    let nonce = env.server().dpop_nonce();
    let out = env.run(&[
        "token",
        "--header",
        "--dpop-proof",
        "GET",
        &userinfo,
        "--dpop-nonce",
        &nonce,
    ]);
    out.code(exit::OK);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(claims(lines[1])["nonce"], nonce.as_str());
    assert_eq!(
        raw_get(
            &userinfo,
            &[("Authorization", lines[0]), ("DPoP", lines[1])]
        ),
        200
    );
    env.run(&[
        "token",
        "--dpop-proof",
        "GET",
        &userinfo,
        "--dpop-nonce",
        "a b",
    ])
    .code(exit::USAGE);
}

#[test]
fn auto_follows_the_discovery_document() {
    for (server_has_dpop, want) in [(true, "DPoP"), (false, "Bearer")] {
        let env = Setup::new(Provider::Discovery)
            .approve_after_polls(0)
            .behavior(|b| b.dpop = server_has_dpop.then(DpopPolicy::default))
            .provider_toml("dpop = \"auto\"")
            .start();
        env.pair();
        assert_eq!(env.stored("token_type").as_deref(), Some(want));
        assert_eq!(env.dpop_key_path().exists(), server_has_dpop);
        env.token();
    }
}

#[test]
fn dpop_on_against_a_server_without_it_gives_bearer_tokens_and_no_proofs_to_print() {
    let env = dpop_env("on", None);
    env.pair();
    assert_eq!(env.stored("token_type").as_deref(), Some("Bearer"));
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["api", &userinfo]).code(exit::OK);
    let req = env.server().requests_to(Endpoint::UserInfo).pop().unwrap();
    assert!(req.header("authorization").unwrap().starts_with("Bearer "));
    env.run(&["token", "--dpop-proof", "GET", &userinfo])
        .code(exit::CONFIG)
        .stderr_has("not DPoP-bound");
}

#[test]
fn bound_tokens_keep_their_key_when_dpop_is_turned_off_and_without_it_need_pairing() {
    let env = dpop_env("on", Some(DpopPolicy::default()));
    env.pair();
    // `dpop = "off"` now: a bound token is still no Bearer token; renewing takes its key.
    env.write_config(&env.config_file().replace("dpop = \"on\"", "dpop = \"off\""));
    env.server().expire_access_tokens();
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["api", &userinfo]).code(exit::OK);
    assert_eq!(
        env.server().stats().refreshes,
        1,
        "renewed after the 401, with a proof"
    );
    assert_eq!(env.stored("token_type").as_deref(), Some("DPoP"));
    assert_eq!(env.server().stats().dpop_refusals, 0);
    // Without the key nothing can use or renew the tokens: a clear error, exit 4.
    std::fs::remove_file(env.dpop_key_path()).unwrap();
    env.run(&["token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("tokens.json.dpop-key");
}

#[test]
fn the_agent_publishes_a_bound_token_with_its_scheme() {
    let run = tempfile::tempdir().unwrap();
    let published = run.path().join("access_token");
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.dpop = Some(DpopPolicy::default()))
        .provider_toml("dpop = \"on\"")
        .toml(&format!(
            "[display]\nbackend = \"none\"\n[agent]\ntoken_file = \"{}\"\npaired_screen_secs = 0\n",
            published.display()
        ))
        .start();
    let agent = env
        .cmd(&["run", "--json"])
        .timeout(scaled(Duration::from_secs(60)))
        .spawn();
    assert!(
        wait_until(scaled(Duration::from_secs(30)), || {
            std::fs::read_to_string(&published).is_ok_and(|t| t.starts_with("DPoP "))
        }),
        "no DPoP token published"
    );
    let content = std::fs::read_to_string(&published).unwrap();
    assert_eq!(
        content,
        format!("DPoP {}", env.stored("access_token").unwrap())
    );
    agent.signal(libc::SIGTERM);
    agent.wait().code(exit::OK);
}
