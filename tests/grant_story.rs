//! One story across `status`, `token`, `unpair`, `pair` and `run` (issue 23, items 4-9): a
//! revoked grant is remembered, `unpair` takes the published token away and tells the agent,
//! `pair` on a paired device does not pair twice, the agent says at start that it is paired,
//! an unwritable store is exit 9 for every command, and the hook never claims a token file that
//! is not there.

mod common;

use common::agent::{AgentEnv, fast};
use common::*;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Tests of the story's decisions run natively only; under qemu (`DEVAUTH_TEST_RUNNER`) the ones
/// that touch the OS run: SIGUSR2 to the pid in the agent lock, the store's errno, the group
/// lookup, a token file that cannot be written.
fn decisions_only() -> bool {
    if under_runner() {
        eprintln!("skipped under DEVAUTH_TEST_RUNNER: the same decisions ran natively");
    }
    under_runner()
}

/// Paired with access tokens that live `lifetime` seconds.
fn paired(lifetime: u64) -> Env {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(lifetime))
        .start();
    env.pair();
    env
}

// --- item 4: status after the grant is revoked -----------------------------------------------

#[test]
fn status_says_pairing_is_needed_once_the_provider_refused_the_grant() {
    if decisions_only() {
        return;
    }
    let env = paired(2);
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("Paired as")
        .stdout_has("refresh token: held");
    env.server().revoke_all();
    std::thread::sleep(MS(1100)); // the access token is due for renewal
    env.run(&["token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("invalid_grant");
    let refused = env.store_json().unwrap()["grant_refused"].clone();
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{refused}"
    );
    // The command: status no longer says "Paired".
    let out = env.run(&["status"]);
    out.code(exit::PAIR_AGAIN)
        .stdout_has("Pairing needed again")
        .stdout_has("invalid_grant")
        .stdout_has("Run `devauth pair`");
    assert!(!out.stdout.contains("Paired as"), "{}", out.show());
    assert!(!out.stdout.contains("expires expired"), "{}", out.show());
    let v = env.run(&["status", "--json"]).code(exit::PAIR_AGAIN).json();
    assert_eq!(v["paired"], false, "{v}");
    assert_eq!(v["pairing_needed"], true, "{v}");
    assert!(v["grant_refused"]["unix"].as_i64().unwrap() > 1_700_000_000);
    // Written once: the next `token` asks nobody and rewrites nothing (flash wear).
    let before = std::fs::metadata(&env.store).unwrap();
    let bytes = std::fs::read(&env.store).unwrap();
    let refreshes = env.server().stats().refreshes;
    env.run(&["token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("refused");
    env.run(&["api", &format!("{}/userinfo", env.base())])
        .code(exit::PAIR_AGAIN);
    assert_eq!(env.server().stats().refreshes, refreshes);
    let after = std::fs::metadata(&env.store).unwrap();
    assert_eq!(
        (after.ino(), after.mtime_nsec()),
        (before.ino(), before.mtime_nsec())
    );
    assert_eq!(std::fs::read(&env.store).unwrap(), bytes);
    // Pairing again needs no --force, and leaves a store without the refusal.
    env.pair();
    assert!(env.store_json().unwrap().get("grant_refused").is_none());
    env.run(&["status"]).code(exit::OK).stdout_has("Paired as");
}

#[test]
fn status_of_an_expired_token_reads_right() {
    if decisions_only() {
        return;
    }
    let env = paired(1);
    std::thread::sleep(MS(1100));
    let out = env.run(&["status"]);
    out.code(exit::OK)
        .stdout_has("access token:  expired (renewed on next use)");
    assert!(!out.stdout.contains("expires expired"), "{}", out.show());
    // A store written before the refusal field existed reads as it always did.
    let v = env.store_json().unwrap();
    assert!(v.get("grant_refused").is_none(), "{v}");
}

#[test]
fn the_agent_starts_pairing_on_a_store_that_records_a_refusal() {
    if decisions_only() {
        return;
    }
    let a = AgentEnv::new(fast(2));
    // Paired with `devauth pair`, then refused (revoked, `token` learned it).
    let out = a.devauth(&["pair", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    a.srv.revoke_all();
    std::thread::sleep(MS(1100));
    assert_eq!(a.devauth(&["token"]).status.code(), Some(exit::PAIR_AGAIN));
    let agent = a.start_agent();
    agent.wait_count("pairing_required", 1);
    let first = &agent.events()[0];
    assert_eq!(first["event"], "pairing_required");
    assert!(
        first["reason"].as_str().unwrap().contains("refused"),
        "{first}"
    );
    agent.wait_count("paired", 1);
    assert!(a.published().is_some());
}

// --- item 5: unpair takes the published token away and tells the agent ----------------------

#[test]
fn unpair_removes_the_token_file_and_the_running_agent_learns_of_it() {
    let a = AgentEnv::new(fast(3600));
    let agent = a.start_agent();
    agent.wait_count("paired", 1);
    a.wait_hooks(2); // pairing-required, paired
    assert!(a.published().is_some());
    let out = a.devauth(&["unpair"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Gone when `unpair` returns, not at the agent's next renewal.
    assert_eq!(a.published(), None);
    agent.wait_count("unpaired", 1);
    let unpaired = agent
        .events()
        .into_iter()
        .find(|e| e["event"] == "unpaired")
        .unwrap();
    assert_eq!(unpaired["revoked"], serde_json::Value::Null);
    agent.wait_count("pairing_required", 2);
    let hooks = a.wait_hooks_until(|h| h.iter().any(|e| e == "unpaired"));
    assert!(hooks.contains(&"unpaired".to_string()), "{hooks:?}");
    // And the agent pairs again (the test server approves at once).
    agent.wait_count("paired", 2);
    assert!(a.published().is_some());
}

#[test]
fn unpair_without_an_agent_removes_the_token_file_it_left() {
    if decisions_only() {
        return;
    }
    let a = AgentEnv::new(fast(3600));
    let mut agent = a.start_agent();
    agent.wait_count("paired", 1);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit().success());
    // Kept across an agent stop (by design: programs keep working over a restart)...
    let token = a
        .published()
        .expect("the token file is kept when the agent stops");
    assert!(a.srv.live_access_tokens().contains(&token));
    // ...but not across `unpair`, which revoked it.
    assert_eq!(a.devauth(&["unpair"]).status.code(), Some(0));
    assert_eq!(a.published(), None);
    assert!(!a.srv.live_access_tokens().contains(&token));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// --- item 6: pair while paired ---------------------------------------------------------------

#[test]
fn pair_while_paired_does_nothing_without_force() {
    if decisions_only() {
        return;
    }
    let env = paired(3600);
    let before = std::fs::read(&env.store).unwrap();
    let codes = env.server().stats().device_codes_issued;
    let out = env.run(&["pair", "--json"]);
    out.code(exit::OK)
        .stderr_has("already paired as")
        .stderr_has("--force");
    assert_eq!(out.event_names(), ["already_paired"]);
    assert_eq!(out.events()[0]["account"], EMAIL);
    assert_eq!(
        env.server().stats().device_codes_issued,
        codes,
        "no code shown"
    );
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
    env.run(&["pair"])
        .code(exit::OK)
        .stderr_has("already paired");
}

#[test]
fn pair_force_revokes_the_old_grant_once_the_new_one_is_stored() {
    if decisions_only() {
        return;
    }
    // Without userinfo the accounts are unknown: the old grant is revoked.
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.id_token = false)
        .start();
    let userinfo = format!("userinfo_endpoint = \"{}/userinfo\"\n", env.base());
    env.write_config(&env.config_file().replace(&userinfo, ""));
    env.pair();
    let old_refresh = env.stored("refresh_token").unwrap();
    assert!(env.server().live_refresh_tokens().contains(&old_refresh));
    let out = env.run(&["pair", "--json", "--force"]);
    out.code(exit::OK).stderr_has("previous grant was revoked");
    assert_eq!(out.event_names().last().unwrap(), "paired");
    let new_refresh = env.stored("refresh_token").unwrap();
    assert_ne!(new_refresh, old_refresh);
    let live = env.server().live_refresh_tokens();
    assert!(!live.contains(&old_refresh), "the old grant is still live");
    assert!(live.contains(&new_refresh), "the new grant was revoked too");
    env.token();
}

#[test]
fn pair_force_keeps_the_old_grant_of_the_same_account() {
    if decisions_only() {
        return;
    }
    let env = paired(3600);
    let old_refresh = env.stored("refresh_token").unwrap();
    let revocations = env.server().stats().revocations;
    env.run(&["pair", "--force"])
        .code(exit::OK)
        .stderr_has("same account");
    assert_eq!(env.server().stats().revocations, revocations);
    assert_ne!(env.stored("refresh_token").unwrap(), old_refresh);
    env.token();
}

#[test]
fn pair_force_that_fails_leaves_the_old_pairing() {
    if decisions_only() {
        return;
    }
    let env = paired(3600);
    let before = std::fs::read(&env.store).unwrap();
    env.server().set_behavior(|b| b.auto_deny = true);
    env.run(&["pair", "--force"]).code(exit::DENIED);
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
    assert_eq!(env.server().stats().revocations, 0);
    env.token();
}

// --- item 7: run says at start that it is paired ---------------------------------------------

#[test]
fn run_announces_the_stored_pairing_at_start() {
    let a = AgentEnv::new(fast(3600));
    assert_eq!(a.devauth(&["pair"]).status.code(), Some(0));
    let agent = a.start_agent();
    agent.wait_count("paired", 1);
    let first = &agent.events()[0];
    assert_eq!(first["event"], "paired", "{:?}", agent.names());
    assert_eq!(first["at_start"], true);
    assert_eq!(first["account"], EMAIL);
    assert!(first["expires_in"].as_u64().unwrap() > 3000, "{first}");
    assert_eq!(agent.count("pairing_required"), 0);
    // The hook heard it, after the token file was written.
    assert_eq!(a.wait_hooks(1), ["paired"]);
    // (The hook writes its log line first, then its environment.)
    let env_path = format!("{}.env", a.hook_log.display());
    let env_log = || std::fs::read_to_string(&env_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || env_log()
            .contains("DEVAUTH_AT_START=1")),
        "{}",
        env_log()
    );
    let env_log = env_log();
    assert!(
        env_log.contains(&format!("DEVAUTH_TOKEN_FILE={}", a.token_file.display())),
        "{env_log}"
    );
    assert!(a.published().is_some());
}

#[test]
fn run_with_an_expired_stored_token_announces_after_renewing() {
    if decisions_only() {
        return;
    }
    let a = AgentEnv::new(fast(1));
    assert_eq!(a.devauth(&["pair"]).status.code(), Some(0));
    std::thread::sleep(MS(1100));
    a.srv.set_behavior(|b| b.token_lifetime = Some(3600));
    let agent = a.start_agent();
    agent.wait_count("paired", 1);
    assert_eq!(agent.names()[0], "paired");
    assert_eq!(agent.count("refreshed"), 0);
    assert_eq!(a.srv.stats().refreshes, 1);
    assert_eq!(a.wait_hooks(1), ["paired"]);
}

// --- item 8: one exit code and wording for an unwritable store -------------------------------

#[test]
fn an_unwritable_store_is_exit_9_with_the_same_words_for_run_and_pair() {
    let env = Env::generic();
    let text = env.config_file().replace(
        &env.store.display().to_string(),
        "/proc/devauth/tokens.json",
    );
    env.write_config(&text);
    let pair = env.run(&["pair"]);
    pair.code(exit::STORE);
    let run = env.run(&["run"]);
    run.code(exit::STORE);
    let said = |o: &Output| {
        o.stderr
            .lines()
            .find(|l| l.contains("token store"))
            .unwrap_or_else(|| panic!("{}", o.show()))
            .to_string()
    };
    assert_eq!(said(&pair), said(&run));
    assert!(said(&run).contains("/proc/devauth"), "{}", run.show());
    assert!(!run.stderr.contains("agent lock"), "{}", run.show());
}

// --- item 9: token_file_group ----------------------------------------------------------------

#[test]
fn a_token_file_group_that_does_not_exist_is_a_config_error_at_start() {
    let a = AgentEnv::new(fast(3600));
    a.write_config(&format!(
        "hook = \"{}/hook.sh\"\ntoken_file_group = \"nosuchgroup-devauth\"\n",
        a.dir.path().display()
    ));
    let out = a.devauth(&["run", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(exit::CONFIG),
        "{}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(err.contains("agent.token_file_group"), "{err}");
    assert!(err.contains("nosuchgroup-devauth"), "{err}");
    let line = std::fs::read_to_string(&a.config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("token_file_group"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("{}:{line}:", a.config.display())),
        "{err}"
    );
    assert!(a.hook_events().is_empty(), "no hook ran");
    assert_eq!(a.srv.stats().requests, 0);
    // The other commands never look the group up.
    assert_eq!(a.devauth(&["status"]).status.code(), Some(exit::NOT_PAIRED));
}

#[test]
fn the_hook_is_not_told_of_a_token_file_that_could_not_be_written() {
    let a = AgentEnv::new(fast(3600));
    // A hook that keeps each event's environment apart.
    let hook = a.dir.path().join("env-hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\nd=$(dirname \"$0\")\nenv > \"$d/env.tmp\" && mv \"$d/env.tmp\" \"$d/env-$1\"\n",
    )
    .unwrap();
    common::agent::set_mode(&hook, 0o755);
    a.write_config(&format!("hook = \"{}\"\n", hook.display()));
    // The token file in a directory that cannot be created.
    let config = std::fs::read_to_string(&a.config).unwrap().replace(
        &a.token_file.display().to_string(),
        "/proc/devauth-test/access_token",
    );
    std::fs::write(&a.config, config).unwrap();
    let agent = a.start_agent();
    agent.wait_count("paired", 1);
    let paired_env = a.dir.path().join("env-paired");
    assert!(
        wait_until(Duration::from_secs(30), || paired_env.exists()),
        "{}",
        agent.stderr()
    );
    let env = std::fs::read_to_string(&paired_env).unwrap();
    assert!(
        !env.contains("DEVAUTH_TOKEN_FILE="),
        "the hook was told of a file that is not there:\n{env}"
    );
    assert!(env.contains("DEVAUTH_TOKEN_FILE_ERROR="), "{env}");
    assert!(
        agent.stderr().contains("/proc/devauth-test"),
        "{}",
        agent.stderr()
    );
}
