//! The `[agent] hook`: a command the device's own UI configures to hear about pairing changes.
//!
//! Contract (also in docs/agent.md):
//! - Run as `/bin/sh -c '<hook> "$1"' devauth-hook <event>`: the configured command line with the
//!   event name appended as its last argument. Events: `paired`, `refreshed`, `unpaired`,
//!   `pairing-required`.
//! - Environment: the agent's own, plus `DEVAUTH_EVENT` (the event), `DEVAUTH_TOKEN_FILE` (where
//!   the access token is published), `DEVAUTH_ACCOUNT` (when known) and `DEVAUTH_REASON` (for
//!   `pairing-required`). Never a token: tokens in argv or the environment leak through
//!   `/proc/<pid>/cmdline` and `/proc/<pid>/environ`; read the token file instead.
//! - stdin is /dev/null; the hook's stdout goes to devauth's stderr (stdout of `run --json` is
//!   for events only); stderr is inherited.
//! - One hook at a time, in event order. The agent waits for it, at most 30 s; then the hook's
//!   whole process group is killed (SIGKILL). A failing or hanging hook is logged, never fatal.
//! - The hook runs with SIGTERM/SIGINT/SIGHUP/SIGUSR1 unblocked (the agent blocks them for itself).
//!
//! This module owns starting, bounding and reaping the hook. It does not decide when events
//! happen (that is the agent).

use crate::signals::{ChildMask, Signals};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest single wait for SIGCHLD: a SIGCHLD taken by another thread (tests) or coalesced with
/// an earlier one costs at most this much delay.
const REAP_POLL: Duration = Duration::from_millis(250);

/// An event the hook hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    Paired,
    Refreshed,
    Unpaired,
    PairingRequired,
}

impl HookEvent {
    /// The name passed as the last argument and in `DEVAUTH_EVENT`.
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Paired => "paired",
            HookEvent::Refreshed => "refreshed",
            HookEvent::Unpaired => "unpaired",
            HookEvent::PairingRequired => "pairing-required",
        }
    }
}

/// How a hook run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Exited(i32),
    Signalled(i32),
    /// Still running at the deadline: killed.
    TimedOut,
}

/// The configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub command: String,
    pub timeout: Duration,
}

impl Hook {
    pub fn new(command: impl Into<String>) -> Hook {
        Hook {
            command: command.into(),
            timeout: HOOK_TIMEOUT,
        }
    }

    /// Runs the hook for `event` with the extra environment `env` and waits for it (bounded).
    /// Signals that arrive meanwhile stay queued in `signals`.
    pub fn run(
        &self,
        event: HookEvent,
        env: &[(&str, String)],
        signals: &mut Signals,
    ) -> Result<HookOutcome, String> {
        let mut child = self.spawn(event, env)?;
        let deadline = crate::clock::boottime() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(outcome(status)),
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for the hook: {e}")),
            }
            let left = deadline.saturating_sub(crate::clock::boottime());
            if left.is_zero() {
                kill_group(&child);
                let _ = child.wait();
                return Ok(HookOutcome::TimedOut);
            }
            signals.wait_child(left.min(REAP_POLL));
        }
    }

    fn spawn(&self, event: HookEvent, env: &[(&str, String)]) -> Result<Child, String> {
        // The hook's stdout must not mix with `run --json` events on our stdout.
        let stdout = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mask = ChildMask::new();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{} \"$1\"", self.command))
            .arg("devauth-hook")
            .arg(event.name())
            .env("DEVAUTH_EVENT", event.name())
            .stdin(Stdio::null())
            .stdout(stdout)
            // Its own process group, so a timeout kills whatever the hook started too.
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: the closure only calls sigprocmask (async-signal-safe) on a set built before
        // the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || crate::signals::unblock_in_child(&mask));
        }
        cmd.spawn()
            .map_err(|e| format!("could not start the hook `{}`: {e}", self.command))
    }
}

fn outcome(status: ExitStatus) -> HookOutcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => HookOutcome::Exited(code),
        (None, Some(sig)) => HookOutcome::Signalled(sig),
        (None, None) => HookOutcome::Exited(-1),
    }
}

fn kill_group(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: signals the process group we created for this child (pgid == its pid).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_the_last_argument_and_in_the_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let hook = Hook::new(format!(
            "printf '%s|%s|%s|%s\\n' \"$DEVAUTH_EVENT\" \"$DEVAUTH_ACCOUNT\" >> {}; printf '%s\\n' ",
            out.display()
        ));
        // The appended "$1" goes to the last command of the line: here the second printf.
        let mut signals = Signals::block().unwrap();
        let r = hook
            .run(
                HookEvent::PairingRequired,
                &[("DEVAUTH_ACCOUNT", "a@b".to_string())],
                &mut signals,
            )
            .unwrap();
        assert_eq!(r, HookOutcome::Exited(0));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("pairing-required|a@b|"), "{text}");
    }

    #[test]
    fn argument_reaches_a_plain_command() {
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("hook.sh");
        let out = tmp.path().join("out");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$# $1\" > {}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut signals = Signals::block().unwrap();
        let r = Hook::new(script.display().to_string())
            .run(HookEvent::Refreshed, &[], &mut signals)
            .unwrap();
        assert_eq!(r, HookOutcome::Exited(0));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "1 refreshed\n");
    }

    #[test]
    fn exit_status_is_reported() {
        let mut signals = Signals::block().unwrap();
        let r = Hook::new("exit 3;")
            .run(HookEvent::Paired, &[], &mut signals)
            .unwrap();
        assert_eq!(r, HookOutcome::Exited(3));
    }

    #[test]
    fn a_hanging_hook_is_killed_with_its_children() {
        let mut signals = Signals::block().unwrap();
        let hook = Hook {
            command: "sleep 30 & sleep 30; true".into(),
            timeout: Duration::from_millis(300),
        };
        let start = std::time::Instant::now();
        let r = hook.run(HookEvent::Unpaired, &[], &mut signals).unwrap();
        assert_eq!(r, HookOutcome::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn names() {
        assert_eq!(HookEvent::PairingRequired.name(), "pairing-required");
        assert_eq!(HookEvent::Paired.name(), "paired");
    }
}
