//! The sealed token store through the real binary: pairing seals the store with the TPM
//! (swtpm on a socket, `[storage] tpm_device`), `token` works after the TPM restarts, a store
//! sealed by another TPM or before a TPM clear is a clear "pair again" (exit 4) and never a
//! crash, `pair` replaces it and the agent shows a fresh code; without a TPM, `pair`, `status`
//! and the agent say the refresh token is not protected, and `require_sealed` refuses to pair;
//! a plain store from an earlier version is sealed at its next refresh; 20 processes at once
//! still refresh once.
//!
//! The swtpm tests are skipped (with a note) where swtpm is not installed; CI installs it and
//! sets DEVAUTH_TEST_REQUIRE_SWTPM=1 so they cannot skip there.

mod common;

use common::agent::{AgentEnv, fast};
use common::tpm::{Swtpm, usable_or_skip, use_tpm};
use common::*;
use std::time::Duration;

/// A paired-ready environment whose access tokens live `lifetime` s, sealing with a fresh
/// swtpm whose state is in `<temp dir>/tpm-a`.
fn sealed_env(lifetime: u64) -> (Env, Swtpm) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(lifetime))
        .start();
    let sim = Swtpm::start(&env.dir().join("tpm-a")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), "tpm2", "");
    (env, sim)
}

fn store_text(env: &Env) -> String {
    std::fs::read_to_string(&env.store).expect("read the store")
}

/// The base64 of a string field of the sealed store.
fn sealed_field(env: &Env, field: &str) -> String {
    let v: Value = serde_json::from_str(&store_text(env)).expect("the store is JSON");
    v[field].as_str().expect("a string field").to_string()
}

/// Points the config at another swtpm socket (the line `use_tpm` wrote).
fn switch_tpm(env: &Env, from: &Swtpm, to: &Swtpm) {
    let text = env.config_file().replace(
        &from.socket().display().to_string(),
        &to.socket().display().to_string(),
    );
    env.write_config(&text);
}

#[test]
fn pairing_seals_the_store_and_token_works_after_the_tpm_restarts() {
    if !usable_or_skip("pairing_seals_the_store_and_token_works_after_the_tpm_restarts") {
        return;
    }
    let (env, sim) = sealed_env(2);
    let out = env.pair();
    out.stderr_has("sealed: AES-256-GCM, the key held by the TPM (tpm2)");
    let text = store_text(&env);
    assert!(
        text.contains("\"format\": \"devauth-sealed-tokens\""),
        "{text}"
    );
    let at0 = env.server().live_access_tokens();
    for t in env.server().live_refresh_tokens().iter().chain(&at0) {
        assert!(
            !text.contains(t.as_str()),
            "a token is readable in the sealed store"
        );
    }
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("protection:    sealed: AES-256-GCM, the key held by the TPM (tpm2)");
    let status = env.run(&["status", "--json"]);
    let s: Value = serde_json::from_str(status.line()).unwrap();
    assert_eq!(s["protection"], "tpm2", "{}", status.show());

    // A refresh re-encrypts with the same sealed key (no new TPM object) and a new nonce.
    let key0 = sealed_field(&env, "sealed_key");
    let nonce0 = sealed_field(&env, "nonce");
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    std::thread::sleep(Duration::from_millis(1100));
    let t1 = env.token();
    assert!(env.server().live_access_tokens().contains(&t1));
    assert_eq!(env.server().stats().refreshes, 1);
    assert_eq!(sealed_field(&env, "sealed_key"), key0);
    assert_ne!(sealed_field(&env, "nonce"), nonce0);

    // The device reboots: the same TPM state, a new swtpm process.
    let state = env.dir().join("tpm-a");
    drop(sim);
    let _sim = Swtpm::start(&state).expect("restart swtpm");
    assert_eq!(env.token(), t1);
    assert_eq!(
        env.server().stats().device_codes_issued,
        1,
        "no new pairing"
    );
}

#[test]
fn a_store_sealed_by_another_or_a_cleared_tpm_means_pair_again() {
    if !usable_or_skip("a_store_sealed_by_another_or_a_cleared_tpm_means_pair_again") {
        return;
    }
    let (env, sim_a) = sealed_env(3600);
    env.pair();
    let sealed = store_text(&env);
    // The flash moved to another board: another TPM.
    let sim_b = Swtpm::start(&env.dir().join("tpm-b")).expect("start swtpm");
    switch_tpm(&env, &sim_a, &sim_b);
    let out = env.run(&["token"]);
    out.code(exit::PAIR_AGAIN)
        .stderr_has("the tokens were sealed on another device")
        .stderr_has("TPM_RC_INTEGRITY")
        .stderr_has("pair again");
    assert!(out.stdout.is_empty(), "{}", out.show());
    env.run(&["status"])
        .code(exit::PAIR_AGAIN)
        .stdout_has("sealed on another device");
    assert_eq!(
        store_text(&env),
        sealed,
        "nothing may rewrite or delete the store"
    );
    // `pair` replaces it, sealed by this board's TPM.
    env.pair();
    assert_eq!(env.server().stats().device_codes_issued, 2);
    let t = env.token();
    assert!(env.server().live_access_tokens().contains(&t));

    // The owner clears this TPM: the same story.
    sim_b.clear().expect("TPM2_Clear");
    env.run(&["token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("or this device's TPM was cleared since");
}

#[test]
fn without_a_tpm_pair_and_status_say_the_tokens_are_not_protected() {
    // The default `seal = "auto"`, no TPM at tpm_device, and (on test machines) a kernel
    // without trusted keys.
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    let out = env.pair();
    out.stderr_has("NOT protected by hardware")
        .stderr_has("seal = \"auto\" found nothing to seal with (tpm2: no TPM at ")
        .stderr_has("require_sealed = true");
    assert!(store_text(&env).contains("\"format\": \"devauth-tokens\""));
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("protection:    NOT protected by hardware");
    let status = env.run(&["status", "--json"]);
    let s: Value = serde_json::from_str(status.line()).unwrap();
    assert_eq!(s["protection"], "none", "{}", status.show());
    // The JSON says it; stderr stays quiet for programs that poll.
    assert!(
        !status.stderr.contains("NOT protected"),
        "{}",
        status.show()
    );
}

#[test]
fn require_sealed_without_a_tpm_refuses_before_a_code_is_shown() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml("require_sealed = true")
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::STORE)
        .stderr_has("cannot seal the tokens as [storage] asks: require_sealed is set");
    assert!(
        env.server()
            .requests_to(Endpoint::DeviceAuthorization)
            .is_empty(),
        "a code was requested: {}",
        out.show()
    );
    assert!(!env.store.exists());
}

#[test]
fn a_plain_store_from_an_earlier_version_is_sealed_at_its_next_refresh() {
    if !usable_or_skip("a_plain_store_from_an_earlier_version_is_sealed_at_its_next_refresh") {
        return;
    }
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .start();
    env.pair(); // no TPM: the plain file, as an earlier devauth wrote it
    assert!(store_text(&env).contains("\"format\": \"devauth-tokens\""));
    let sim = Swtpm::start(&env.dir().join("tpm")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), "auto", "");
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("NOT protected by hardware");
    std::thread::sleep(Duration::from_millis(1100));
    let t = env.token();
    assert!(store_text(&env).contains("\"sealed_by\": \"tpm2\""));
    assert_eq!(env.token(), t);
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("the key held by the TPM (tpm2)");
}

#[test]
fn many_processes_refresh_once_with_a_sealed_store() {
    if !usable_or_skip("many_processes_refresh_once_with_a_sealed_store") {
        return;
    }
    // As tests/tokens.rs's race, sealed: rotation with reuse detection and no grace, so a
    // second use of a rotated-out refresh token would revoke the grant.
    let (env, _sim) = sealed_env(2);
    env.server().set_behavior(|b| {
        b.rotate_refresh_tokens = true;
        b.reuse_detection = true;
        b.reuse_grace = Duration::ZERO;
    });
    env.pair();
    env.server()
        .set_behavior(|b| b.token_lifetime = Some(4 * u64::from(slow_factor())));
    std::thread::sleep(Duration::from_millis(1100));
    let running: Vec<_> = (0..20).map(|_| env.cmd(&["token"]).spawn()).collect();
    let outputs: Vec<Output> = running.into_iter().map(Running::wait).collect();
    let live = env.server().live_access_tokens();
    let first = outputs[0].line().to_string();
    for out in &outputs {
        out.code(exit::OK);
        assert_eq!(out.line(), first, "{}", out.show());
    }
    assert!(live.contains(&first));
    let stats = env.server().stats();
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(stats.reuse_detected, 0, "{stats:?}");
    assert!(store_text(&env).contains("\"sealed_by\": \"tpm2\""));
}

#[test]
fn the_agent_shows_a_fresh_code_when_the_store_was_sealed_elsewhere() {
    if !usable_or_skip("the_agent_shows_a_fresh_code_when_the_store_was_sealed_elsewhere") {
        return;
    }
    let env = AgentEnv::new(fast(3600));
    let sim_a = Swtpm::start(&env.dir.path().join("tpm-a")).expect("start swtpm");
    use_tpm(&env.config, env.dir.path(), sim_a.socket(), "tpm2", "");
    let out = env.devauth(&["pair", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let sim_b = Swtpm::start(&env.dir.path().join("tpm-b")).expect("start swtpm");
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        &sim_a.socket().display().to_string(),
        &sim_b.socket().display().to_string(),
    );
    std::fs::write(&env.config, text).unwrap();

    let mut agent = env.start_agent();
    agent.wait_events("a new pairing", |e| {
        e.iter().any(|v| v["event"] == "paired")
    });
    let events = agent.events();
    let required = events
        .iter()
        .find(|v| v["event"] == "pairing_required")
        .unwrap_or_else(|| panic!("no pairing_required: {events:?}"));
    let reason = required["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("sealed on another device"), "{reason}");
    let names = agent.names();
    let code_at = names.iter().position(|n| n == "code").expect("a code");
    let paired_at = names.iter().position(|n| n == "paired").expect("paired");
    assert!(code_at < paired_at, "{names:?}");
    assert_eq!(env.srv.stats().device_codes_issued, 2);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit().success());
    // Sealed again, by this board's TPM.
    let stored = std::fs::read_to_string(&env.store).unwrap();
    assert!(stored.contains("\"sealed_by\": \"tpm2\""));
    let status = env.devauth(&["status"]);
    assert!(status.status.success(), "{status:?}");
}

#[test]
fn the_agent_logs_that_unsealed_tokens_are_not_protected() {
    let env = AgentEnv::new(fast(3600));
    let says_not_protected = |agent: &mut common::agent::Agent| {
        assert!(
            wait_until(scaled(Duration::from_secs(20)), || agent
                .stderr()
                .contains("NOT protected by hardware")),
            "{}",
            agent.stderr()
        );
        agent.signal(libc::SIGTERM);
        assert!(agent.wait_exit().success());
    };
    let mut agent = env.start_agent();
    agent.wait_events("paired", |e| e.iter().any(|v| v["event"] == "paired"));
    says_not_protected(&mut agent);
    // Started again with the plain store: said once more, at the first load.
    says_not_protected(&mut env.start_agent());
}

#[test]
fn the_agent_seals_a_plain_store_at_its_next_refresh_and_says_so() {
    if !usable_or_skip("the_agent_seals_a_plain_store_at_its_next_refresh_and_says_so") {
        return;
    }
    let env = AgentEnv::new(fast(2));
    let out = env.devauth(&["pair", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let plain = std::fs::read_to_string(&env.store).unwrap();
    assert!(plain.contains("\"format\": \"devauth-tokens\""), "{plain}");
    // The device gains a TPM (say, a firmware update enabled it): `auto` finds it.
    let sim = Swtpm::start(&env.dir.path().join("tpm")).expect("start swtpm");
    use_tpm(&env.config, env.dir.path(), sim.socket(), "auto", "");
    let mut agent = env.start_agent();
    agent.wait_events("a renewal", |e| e.iter().any(|v| v["event"] == "refreshed"));
    assert!(
        wait_until(scaled(Duration::from_secs(20)), || agent.stderr().contains(
            "tokens sealed: AES-256-GCM, the key held by the TPM (tpm2)"
        )),
        "{}",
        agent.stderr()
    );
    let stderr = agent.stderr();
    let warned = stderr
        .find("NOT protected by hardware")
        .expect("the warning at start");
    let sealed = stderr.find("tokens sealed").unwrap();
    assert!(warned < sealed, "{stderr}");
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit().success());
    let stored = std::fs::read_to_string(&env.store).unwrap();
    assert!(stored.contains("\"sealed_by\": \"tpm2\""), "{stored}");
    assert_eq!(env.srv.stats().device_codes_issued, 1, "no new pairing");
}

#[test]
fn the_agent_with_require_sealed_and_nothing_to_seal_shows_why_and_no_code() {
    let env = AgentEnv::new(fast(3600));
    let nothing = common::tpm::no_tpm(env.dir.path());
    use_tpm(
        &env.config,
        env.dir.path(),
        &nothing,
        "auto",
        "require_sealed = true\n",
    );
    let mut agent = env.start_agent();
    agent.wait_events("the error", |e| e.iter().any(|v| v["event"] == "error"));
    let events = agent.events();
    let error = events.iter().find(|v| v["event"] == "error").unwrap();
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("require_sealed is set"), "{message}");
    assert!(!agent.names().iter().any(|n| n == "code"), "{events:?}");
    assert_eq!(env.srv.stats().device_codes_issued, 0);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit().success());
    assert!(!env.store.exists());
}
