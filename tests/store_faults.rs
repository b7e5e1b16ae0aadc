//! The token store on a full or read-only filesystem, for real: a small tmpfs is mounted as the
//! store's directory (root is needed; the tests say so and pass without it — root also ignores
//! chmod, which is why mounts are used at all) and then filled up or remounted read-only.
//!
//! What must hold: `devauth token` fails with exit 9 and a message naming the store path and the
//! step that failed; the old tokens are untouched; and — because devauth prepares the write
//! before it spends the refresh token — the server never saw a refresh, so the grant is still
//! good once there is room again, even with strict rotation and reuse detection (the test
//! server's default).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted at a directory for the life of the value.
struct Mount {
    at: PathBuf,
}

impl Mount {
    /// `None` (after saying why) when mounting is not permitted here.
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Mount {
                at: at.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount(8): {e}");
                None
            }
        }
    }

    fn remount(&self, how: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount {how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

/// Fills the filesystem of `dir` until write(2) says ENOSPC; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = [0x5au8; 1024];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    // Whatever is left is smaller than a block: fill it byte by byte.
    while f.write_all(&[0x5a]).is_ok() {}
    path
}

#[test]
fn a_full_disk_fails_before_the_refresh_token_is_spent() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        // expires_in 0: every `token` must refresh. Strict rotation + reuse detection (default).
        .behavior(|b| b.token_lifetime = Some(0))
        .start();
    let dir = env.store.parent().unwrap().to_path_buf();
    let Some(_mount) = Mount::tmpfs(&dir, "64k") else {
        return;
    };
    env.pair();
    let before = std::fs::read(&env.store).unwrap();
    let rt = env.stored("refresh_token").unwrap();
    let filler = fill(&dir);

    let out = env.run(&["token"]);
    out.code(exit::STORE)
        .stderr_has(&format!("token store {}", env.store.display()))
        .stderr_has("reserve space for the new token file")
        .stderr_has("No space left on device");
    assert_eq!(out.stdout, "", "no token printed");
    // Nothing was sent: the refresh token is unspent, the old file untouched, no temp left.
    assert_eq!(env.server().stats().refreshes, 0);
    assert!(env.refreshes().is_empty());
    assert_eq!(std::fs::read(&env.store).unwrap(), before);
    assert_eq!(temps(&dir), Vec::<String>::new());
    env.run(&["status"]).code(exit::OK);

    // Room again: the same grant refreshes, with the refresh token that was stored.
    std::fs::remove_file(&filler).unwrap();
    let token = env.token();
    let refreshes = env.refreshes();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].form_value("refresh_token"), Some(rt.as_str()));
    assert_ne!(env.stored("refresh_token").unwrap(), rt);
    assert_eq!(env.stored("access_token").unwrap(), token);
    assert_eq!(env.server().stats().reuse_detected, 0);
    assert_eq!(temps(&dir), Vec::<String>::new());
}

#[test]
fn a_read_only_store_keeps_serving_a_valid_token_and_fails_clearly_after() {
    // 4 s tokens: the refresh margin is capped at half, so from 2 s on `token` wants to refresh.
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(4))
        .start();
    let dir = env.store.parent().unwrap().to_path_buf();
    let Some(mount) = Mount::tmpfs(&dir, "64k") else {
        return;
    };
    env.pair();
    let paired_at = std::time::Instant::now();
    let before = std::fs::read(&env.store).unwrap();
    let at = env.stored("access_token").unwrap();
    let rt = env.stored("refresh_token").unwrap();
    mount.remount("ro");

    // Fresh: read-only is no obstacle to handing it out.
    assert_eq!(env.token(), at);
    env.run(&["status"]).code(exit::OK).stdout_has("Paired");

    // Due for a refresh but still valid: the store cannot take new tokens, so none are asked
    // for; the current one is handed out with a warning naming the store and the step.
    std::thread::sleep(Duration::from_millis(2200).saturating_sub(paired_at.elapsed()));
    let out = env.run(&["token"]);
    out.code(exit::OK)
        .stderr_has("refresh failed, using the current token until it expires")
        .stderr_has(&format!("token store {}", env.store.display()))
        .stderr_has("Read-only file system");
    assert_eq!(out.line(), at);

    // Expired: exit 9, same clear message, nothing printed.
    std::thread::sleep(Duration::from_millis(4300).saturating_sub(paired_at.elapsed()));
    let out = env.run(&["token"]);
    out.code(exit::STORE)
        .stderr_has(&format!("token store {}", env.store.display()))
        .stderr_has("Read-only file system");
    assert_eq!(out.stdout, "");
    assert_eq!(
        env.server().stats().refreshes,
        0,
        "a refresh token was spent"
    );
    assert_eq!(std::fs::read(&env.store).unwrap(), before);

    // Writable again: the same grant goes on.
    mount.remount("rw");
    let token = env.token();
    assert_ne!(token, at);
    let refreshes = env.refreshes();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].form_value("refresh_token"), Some(rt.as_str()));
    assert!(env.server().live_access_tokens().contains(&token));
    assert_eq!(temps(&dir), Vec::<String>::new());
}

#[test]
fn the_agent_retries_on_a_full_disk_without_spending_the_refresh_token() {
    use common::agent::{AgentEnv, fast};
    // 3 s tokens: the agent wants to renew within a couple of seconds of starting.
    let env = AgentEnv::new(fast(3));
    let dir = env.store.parent().unwrap().to_path_buf();
    let Some(_mount) = Mount::tmpfs(&dir, "64k") else {
        return;
    };
    let out = env.devauth(&["pair", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let filler = fill(&dir);
    let mut agent = env.start_agent();
    agent.wait_events("a retry naming the full store", |ev| {
        ev.iter().any(|e| {
            e["event"] == "retrying"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("No space left on device"))
        })
    });
    let s = env.srv.stats();
    assert_eq!((s.refreshes, s.refresh_failures), (0, 0), "{s:?}");
    // Room again: the next retry renews with the same grant.
    std::fs::remove_file(&filler).unwrap();
    agent.wait_count("refreshed", 1);
    let s = env.srv.stats();
    assert_eq!(s.device_codes_issued, 1, "{s:?}");
    assert_eq!(s.reuse_detected, 0, "{s:?}");
    assert_eq!(agent.count("pairing_required"), 0, "{:?}", agent.names());
    assert_eq!(temps(&dir), Vec::<String>::new());
    agent.signal(libc::SIGTERM);
    agent.wait_exit();
}

/// `pair` makes room for the tokens before it asks for a code: on a full store it stops with a
/// clear error before any device code exists, instead of redeeming a code the person approved
/// and then failing to keep the tokens.
#[test]
fn pair_on_a_full_store_stops_before_asking_for_a_code() {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    let dir = env.store.parent().unwrap().to_path_buf();
    let Some(_mount) = Mount::tmpfs(&dir, "64k") else {
        return;
    };
    let filler = fill(&dir);
    let out = env.cmd(&["pair", "--json"]).run();
    out.code(exit::STORE)
        .stderr_has(&format!("token store {}", env.store.display()))
        .stderr_has("No space left on device");
    assert!(!out.stdout.contains("\"event\":\"code\""), "{}", out.stdout);
    assert_eq!(env.server().stats().device_codes_issued, 0);
    assert_eq!(temps(&dir), Vec::<String>::new());
    // With room again, pairing works.
    std::fs::remove_file(&filler).unwrap();
    env.pair();
    assert!(env.stored("access_token").is_some());
}
