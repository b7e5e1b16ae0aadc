//! `devauth run` end to end: the real binary against the loopback test server with short token
//! lifetimes. Pairing, renewals with rotation, `devauth token` in parallel with the agent,
//! revocation, the server going away, signals, the token file and the hook.

mod common;

use common::agent::*;
use devauth_testserver::Endpoint;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn refresh_tokens_presented(env: &AgentEnv) -> Vec<String> {
    env.srv
        .requests_to(Endpoint::Token)
        .iter()
        .filter(|r| r.grant_type() == Some("refresh_token"))
        .filter_map(|r| r.form_value("refresh_token").map(str::to_string))
        .collect()
}

#[test]
fn pairs_then_renews_with_rotation_several_times_and_the_token_file_stays_valid() {
    let env = AgentEnv::new(fast(3));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    // While the agent renews five times in a row, the published token always works.
    let start = Instant::now();
    let mut reads = 0;
    while env.srv.stats().refreshes < 5 {
        assert!(
            start.elapsed() < LONG,
            "renewals stalled: {:?}",
            env.srv.stats()
        );
        if let Some(token) = env.published() {
            // Read, then ask the server: the token is live (it has ≥ 1 s left when replaced).
            assert!(
                env.srv.live_access_tokens().contains(&token),
                "the token file holds a dead token after {reads} reads"
            );
            reads += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reads > 20, "{reads}");
    agent.wait_count("refreshed", 5);
    let s = env.srv.stats();
    assert_eq!(s.invalid_grants, 0, "{s:?}");
    assert_eq!(s.reuse_detected, 0, "{s:?}");
    assert_eq!(s.device_codes_issued, 1);
    // Every refresh presented a different (the current) refresh token.
    let presented = refresh_tokens_presented(&env);
    let unique: HashSet<_> = presented.iter().collect();
    assert_eq!(
        unique.len(),
        presented.len(),
        "a refresh token was used twice"
    );
    // Mode 0640 on the file, 0750 on the directory the agent created.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.token_file), 0o640);
    assert_eq!(mode(env.token_file.parent().unwrap()), 0o750);
    // Events: pairing_required, code, ..., paired, refreshed × n; never a secret.
    let names = agent.names();
    assert_eq!(names[0], "pairing_required", "{names:?}");
    assert_eq!(names[1], "code", "{names:?}");
    let paired = agent
        .events()
        .into_iter()
        .find(|e| e["event"] == "paired")
        .unwrap();
    assert_eq!(paired["account"], "user@example.test");
    assert_eq!(paired["expires_in"], 3);
    let all = serde_json::to_string(&agent.events()).unwrap();
    assert!(!all.contains("at-") && !all.contains("rt-"), "{all}");
    // The hook heard the same story.
    let hooks = env.wait_hooks(6);
    assert_eq!(&hooks[..2], ["pairing-required", "paired"], "{hooks:?}");
    assert!(
        hooks.iter().filter(|h| *h == "refreshed").count() >= 4,
        "{hooks:?}"
    );
}

#[test]
fn twenty_parallel_token_calls_while_the_agent_renews_cause_no_extra_refresh() {
    let env = AgentEnv::new(fast(2));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    for round in 0..3 {
        let children: Vec<_> = (0..20)
            .map(|_| {
                command()
                    .arg("-c")
                    .arg(&env.config)
                    .arg("token")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let token = String::from_utf8(out.stdout).unwrap();
            assert!(token.trim().starts_with("at-"), "{token}");
        }
        // Let an expiry or two pass between rounds.
        let before = env.srv.stats().refreshes;
        env.wait_stats("a renewal", |s| s.refreshes > before);
    }
    let s = env.srv.stats();
    assert_eq!(s.invalid_grants, 0, "{s:?}");
    assert_eq!(s.reuse_detected, 0, "{s:?}");
    assert_eq!(s.refresh_failures, 0, "{s:?}");
    // One refresh per expiry: each refresh token was presented exactly once, and refreshes
    // were never closer together than a fraction of the 2 s lifetime.
    let presented = refresh_tokens_presented(&env);
    let unique: HashSet<_> = presented.iter().collect();
    assert_eq!(unique.len(), presented.len(), "{presented:?}");
    let times: Vec<Instant> = env
        .srv
        .requests_to(Endpoint::Token)
        .iter()
        .filter(|r| r.grant_type() == Some("refresh_token"))
        .map(|r| r.at)
        .collect();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(500),
            "two refreshes {:?} apart",
            w[1] - w[0]
        );
    }
    drop(agent);
}

#[test]
fn revocation_at_the_server_brings_the_pairing_screen_back_and_a_second_pairing_works() {
    let env = AgentEnv::new(fast(2));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    agent.wait_count("refreshed", 1);
    env.srv.revoke_all();
    agent.wait_events("pairing_required after the revocation", |ev| {
        ev.iter()
            .filter(|e| e["event"] == "pairing_required")
            .count()
            >= 2
    });
    // The second pairing (approved by the server's rule) succeeds, and renewals resume.
    agent.wait_count("paired", 2);
    let before = env.srv.stats().refreshes;
    env.wait_stats("a renewal after re-pairing", |s| s.refreshes > before);
    let events = agent.events();
    let gone = events
        .iter()
        .filter(|e| e["event"] == "pairing_required")
        .nth(1)
        .unwrap();
    assert!(
        gone["reason"].as_str().unwrap().contains("invalid_grant"),
        "{gone}"
    );
    assert_eq!(env.srv.stats().device_codes_issued, 2);
    assert_eq!(agent.count("code"), 2);
    let hooks = env.wait_hooks_until(|h| h.iter().filter(|e| *e == "paired").count() >= 2);
    let second = hooks
        .iter()
        .skip(2)
        .position(|h| h == "pairing-required")
        .map(|i| i + 2)
        .unwrap_or_else(|| panic!("{hooks:?}"));
    assert_eq!(
        hooks.get(second + 1).map(String::as_str),
        Some("paired"),
        "{hooks:?}"
    );
    // The published token is the new grant's.
    let token = env.published().unwrap();
    assert!(env.srv.live_access_tokens().contains(&token));
}

#[test]
fn the_server_going_away_for_a_while_is_retried_without_pairing_again() {
    let mut env = AgentEnv::new(fast(2));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    agent.wait_count("refreshed", 1);
    env.srv.pause();
    // Several failed renewals with growing delays, no busy loop, no pairing.
    agent.wait_count("retrying", 3);
    let retry_delays = agent.numbers("retrying", "in_secs");
    assert!(
        retry_delays.windows(2).all(|w| w[1] >= w[0]),
        "{retry_delays:?}"
    );
    env.srv.resume().unwrap();
    let refreshed = agent.count("refreshed");
    agent.wait_count("refreshed", refreshed + 2);
    let s = env.srv.stats();
    assert_eq!(s.device_codes_issued, 1, "paired again: {s:?}");
    assert_eq!(s.invalid_grants, 0, "{s:?}");
    assert_eq!(agent.count("pairing_required"), 1);
    assert_eq!(agent.count("paired"), 1);
    let token = env.published().unwrap();
    assert!(env.srv.live_access_tokens().contains(&token));
}

#[test]
fn sigterm_stops_cleanly_and_keeps_a_valid_token_file() {
    let env = AgentEnv::new(fast(60));
    let mut agent = env.start_agent();
    agent.wait_count("paired", 1);
    let token = env.published().unwrap();
    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    // Kept on purpose: other programs keep working across an agent restart.
    assert_eq!(env.published().as_deref(), Some(token.as_str()));
    let dir: Vec<_> = std::fs::read_dir(env.token_file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(dir, vec!["access_token".to_string()], "temp files left");
    // The store is intact: `status` says paired.
    assert!(env.devauth(&["status"]).status.success());
    // A restarted agent picks the tokens up without pairing again (it checks them with
    // userinfo at start).
    let before = env.srv.stats().userinfo_ok;
    let agent = env.start_agent();
    env.wait_stats("the restarted agent's check", |s| s.userinfo_ok > before);
    assert_eq!(env.srv.stats().device_codes_issued, 1);
    assert_eq!(agent.count("pairing_required"), 0, "{:?}", agent.names());
}

#[test]
fn sigint_while_waiting_for_the_person_stops_at_once() {
    let env = AgentEnv::new(devauth_testserver::Behavior {
        token_lifetime: Some(60),
        ..devauth_testserver::Behavior::default()
    });
    let mut agent = env.start_agent();
    agent.wait_count("code", 1);
    env.wait_stats("a poll", |s| s.polls >= 1);
    let t = Instant::now();
    agent.signal(libc::SIGINT);
    assert_eq!(agent.wait_exit().code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(env.published().is_none());
}

#[test]
fn sighup_reloads_the_config_and_a_broken_one_is_refused() {
    let env = AgentEnv::new(fast(60));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let old_file = env.token_file.clone();
    assert!(env.published().is_some());
    // Move the token file: after SIGHUP the new one is written and the old one removed.
    let new_file = env.dir.path().join("elsewhere/token");
    std::fs::write(
        &env.config,
        std::fs::read_to_string(&env.config).unwrap().replace(
            &format!("token_file = \"{}\"", old_file.display()),
            &format!("token_file = \"{}\"", new_file.display()),
        ),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    let start = Instant::now();
    while !new_file.exists() {
        assert!(start.elapsed() < LONG, "{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!old_file.exists());
    // A broken config is refused; the agent keeps running with the old one.
    std::fs::write(&env.config, "[provider\n").unwrap();
    agent.signal(libc::SIGHUP);
    let start = Instant::now();
    while !agent.stderr().contains("reload failed") {
        assert!(start.elapsed() < LONG, "{}", agent.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(new_file.exists());
    assert_eq!(env.srv.stats().device_codes_issued, 1);
}

#[test]
fn sigusr1_unpairs_with_revocation_and_pairs_again() {
    let env = AgentEnv::new(fast(60));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let first = env.published().unwrap();
    agent.signal(libc::SIGUSR1);
    agent.wait_count("paired", 2);
    let names = agent.names();
    let unpaired = names.iter().position(|n| n == "unpaired").unwrap();
    assert_eq!(names[unpaired + 1], "pairing_required", "{names:?}");
    assert_eq!(names[unpaired + 2], "code", "{names:?}");
    let ev = agent.events();
    assert_eq!(ev[unpaired]["revoked"], true);
    assert_eq!(ev[unpaired + 1]["reason"], "unpaired");
    let s = env.srv.stats();
    assert!(s.revocations >= 1, "{s:?}");
    assert_eq!(s.device_codes_issued, 2);
    // The old grant is dead at the server; the new token is published.
    assert!(!env.srv.live_access_tokens().contains(&first));
    let second = env.published().unwrap();
    assert_ne!(first, second);
    assert!(env.srv.live_access_tokens().contains(&second));
    assert_eq!(
        env.wait_hooks(5),
        [
            "pairing-required",
            "paired",
            "unpaired",
            "pairing-required",
            "paired"
        ]
    );
}

#[test]
fn the_hook_gets_the_event_and_never_a_token() {
    let env = AgentEnv::new(fast(2));
    let agent = env.start_agent();
    agent.wait_count("refreshed", 2);
    env.wait_hooks(4);
    drop(agent);
    let envs = std::fs::read_to_string(format!("{}.env", env.hook_log.display())).unwrap();
    assert!(envs.contains("DEVAUTH_EVENT=paired"), "{envs}");
    assert!(envs.contains("DEVAUTH_EVENT=refreshed"));
    assert!(envs.contains(&format!("DEVAUTH_TOKEN_FILE={}", env.token_file.display())));
    assert!(envs.contains("DEVAUTH_ACCOUNT=user@example.test"));
    assert!(envs.contains("DEVAUTH_REASON=not paired"));
    assert!(
        !envs.contains("at-") && !envs.contains("rt-"),
        "a token leaked"
    );
    let lines = std::fs::read_to_string(&env.hook_log).unwrap();
    // "$1" and DEVAUTH_EVENT agree.
    for l in lines.lines() {
        let mut w = l.split_whitespace();
        assert_eq!(w.next(), w.next(), "{l}");
    }
}

#[test]
fn idle_agent_uses_no_cpu() {
    let env = AgentEnv::new(fast(3600));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    env.wait_stats("the first userinfo check", |s| s.userinfo_ok >= 1);
    std::thread::sleep(Duration::from_millis(1500)); // the paired screen goes at 1 s
    let before = cpu_ticks(agent.pid()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let after = cpu_ticks(agent.pid()).unwrap();
    // Clock ticks are 10 ms; an idle agent wakes at most every 10 s.
    assert!(after - before <= 1, "{} ticks in 3 s", after - before);
}

#[test]
fn a_second_agent_for_the_same_store_is_refused() {
    let env = AgentEnv::new(fast(60));
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let out = env.devauth(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
