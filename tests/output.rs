//! Standard output that cannot be written, for every command: a full one (`> /dev/full`) is
//! exit 1 with one line on stderr, a closed pipe (the reader went away) exit 1 without a word;
//! never a panic, never exit 0 (issue 23, item 3).
//!
//! The whole sweep runs natively; under `DEVAUTH_TEST_RUNNER` (the armv7 binary under qemu) a
//! small part of it: the handling is the same code on every target, the emulator is slow.

mod common;

use common::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

/// How stdout fails.
#[derive(Clone, Copy, Debug)]
enum Broken {
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader closed its end before devauth wrote: EPIPE.
    Closed,
}

const BOTH: [Broken; 2] = [Broken::Full, Broken::Closed];

/// Whether the whole sweep runs (not under an emulating runner).
fn sweep() -> bool {
    !under_runner()
}

fn stdio(broken: Broken) -> Stdio {
    match broken {
        Broken::Full => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("open /dev/full"),
        ),
        Broken::Closed => {
            let mut fds = [0; 2];
            // SAFETY: pipe2 writes two descriptors into `fds`.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: both descriptors were just created and are owned here; the read end is
            // closed at once, so the child's writes get EPIPE.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            drop(read);
            Stdio::from(write)
        }
    }
}

/// Asserts how a run with a broken stdout ended. `quiet`: the command says nothing else on
/// stderr (the simple commands), so stderr must be exactly the one line (or nothing).
#[track_caller]
fn ended_right(out: &Output, broken: Broken, quiet: bool) {
    out.code(1); // also: no panic
    let failure_lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("cannot write to standard output"))
        .collect();
    match broken {
        Broken::Full => {
            assert_eq!(failure_lines.len(), 1, "{}", out.show());
            assert!(
                failure_lines[0].contains("No space left on device"),
                "{}",
                out.show()
            );
            if quiet {
                assert_eq!(out.stderr.lines().count(), 1, "{}", out.show());
            }
        }
        Broken::Closed => {
            assert!(failure_lines.is_empty(), "{}", out.show());
            if quiet {
                assert_eq!(out.stderr, "", "{}", out.show());
            }
        }
    }
}

fn paired() -> Env {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.pair();
    env
}

const COMMANDS: [&str; 9] = [
    "pair",
    "token",
    "status",
    "unpair",
    "render",
    "run",
    "api",
    "authorize-url",
    "exchange",
];

#[test]
fn help_and_version() {
    let mut lines = vec![vec!["--help"], vec!["--version"]];
    if sweep() {
        lines.extend([vec!["help"], vec!["-V"]]);
        lines.extend(COMMANDS.iter().map(|c| vec![*c, "--help"]));
    }
    for args in &lines {
        for broken in BOTH {
            let out = TestCommand::bare(args).stdout(stdio(broken)).run();
            ended_right(&out, broken, true);
        }
    }
}

#[test]
fn status_token_and_api() {
    let env = paired();
    let userinfo = format!("{}/userinfo", env.base());
    let all = [
        &["status"][..],
        &["token"],
        &["status", "--json"],
        &["token", "--header"],
        &["api", &userinfo],
    ];
    for args in if sweep() { &all[..] } else { &all[..2] } {
        for broken in BOTH {
            let out = env.cmd(args).stdout(stdio(broken)).run();
            ended_right(&out, broken, true);
        }
    }
    // The tokens were not harmed: the same commands work with a working stdout.
    env.run(&["status"]).code(exit::OK);
}

#[test]
fn status_of_an_unpaired_device() {
    if !sweep() {
        return;
    }
    // Its own exit code is 3; output that was lost decides: 1.
    let env = Env::generic();
    for broken in BOTH {
        let out = env.cmd(&["status"]).stdout(stdio(broken)).run();
        ended_right(&out, broken, true);
    }
}

#[test]
fn unpair() {
    if !sweep() {
        return;
    }
    for broken in BOTH {
        let env = paired();
        let out = env.cmd(&["unpair"]).stdout(stdio(broken)).run();
        ended_right(&out, broken, true);
        // The work was done; only its report was lost.
        assert!(!env.store.exists());
        assert_eq!(env.server().stats().revocations, 2);
    }
}

#[test]
fn pair_stops_when_nobody_reads_its_events_or_screen() {
    let all = [&["pair", "--json"][..], &["pair"]];
    for args in if sweep() { &all[..] } else { &all[..1] } {
        for broken in BOTH {
            let env = Env::generic(); // never approves: only the lost output ends it
            let out = env.cmd(args).stdout(stdio(broken)).run();
            ended_right(&out, broken, false);
            assert!(!env.store.exists());
            // It stopped at once instead of polling for a code nobody can see.
            assert!(
                out.elapsed < scaled(std::time::Duration::from_secs(10)),
                "{}",
                out.show()
            );
        }
    }
}

#[test]
fn run_stops_when_nobody_reads_its_events_or_screen() {
    if !sweep() {
        return;
    }
    for args in [&["run", "--json"][..], &["run"]] {
        for broken in BOTH {
            let env = Env::generic();
            let out = env.cmd(args).stdout(stdio(broken)).run();
            ended_right(&out, broken, false);
        }
    }
}

#[test]
fn sign_in_and_the_two_step() {
    if !sweep() {
        return;
    }
    let env = Setup::new(Provider::Generic).start();
    let b = env.base().to_string();
    let text = env.config_text(
        TEST_CLIENT_ID,
        &format!("authorization_endpoint = \"{b}/authorize\"\nlogin_timeout_secs = 1\n"),
        "",
    );
    env.write_config(&text);
    for args in [
        &[
            "pair",
            "--grant",
            "authorization_code",
            "--no-browser",
            "--json",
        ][..],
        &["authorize-url", "--redirect-uri", "https://device.local/cb"],
        &[
            "authorize-url",
            "--redirect-uri",
            "https://device.local/cb",
            "--json",
        ],
        &[
            "exchange",
            "--code",
            "abc",
            "--state",
            "0123456789abcdefghijklmn",
            "--json",
        ],
    ] {
        for broken in BOTH {
            let out = env.cmd(args).stdout(stdio(broken)).run();
            ended_right(&out, broken, args[0] != "pair");
        }
    }
}

#[test]
fn render_writes_no_stdout_and_is_unaffected() {
    if !sweep() {
        return;
    }
    // `render` writes its picture to --out and nothing to stdout: a broken stdout changes
    // nothing (exit 0, the file is there).
    let dir = tempfile::tempdir().unwrap();
    for broken in BOTH {
        let png = dir.path().join("code.png");
        let _ = std::fs::remove_file(&png);
        let png_arg = png.display().to_string();
        let out = TestCommand::bare(&[
            "render", "--board", "tv-720p", "--state", "code", "--out", &png_arg,
        ])
        .stdout(stdio(broken))
        .run();
        out.code(exit::OK);
        assert!(png.exists(), "{}", out.show());
    }
}
