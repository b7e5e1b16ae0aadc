//! The agent's part of the harness (`devauth run`, `devauth api`, JWT bearer tests): an
//! [`AgentEnv`] whose config has an `[agent]` section with a recording hook and a token file,
//! and a running agent whose `--json` events and stderr are collected as they come. The binary
//! and its runner are [`super::program`]'s.
//!
//! Waits poll the server's stats or the agent's events with generous deadlines (the binary may
//! run under qemu); nothing sleeps a fixed time to "let things happen".

#![allow(dead_code)]

use devauth_testserver::{Behavior, TestServer};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deadline of any single wait; generous for qemu, never reached when things work.
pub const LONG: Duration = Duration::from_secs(90);

/// The devauth binary through its runner, as [`super::TestCommand`] starts it.
pub fn command() -> Command {
    let (prog, pre) = super::program();
    let mut c = Command::new(prog);
    c.args(pre);
    // English screens whatever the test machine's locale (see TestCommand::spawn).
    for v in ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"] {
        c.env_remove(v);
    }
    c
}

/// A server, a temp dir and a config file pointing at the server.
pub struct AgentEnv {
    pub srv: TestServer,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub store: PathBuf,
    pub token_file: PathBuf,
    pub hook_log: PathBuf,
}

/// A behavior for agent tests: short tokens, codes approved at the first poll, 1 s interval.
pub fn fast(token_lifetime: u64) -> Behavior {
    Behavior {
        token_lifetime: Some(token_lifetime),
        auto_approve_after_polls: Some(0),
        ..Behavior::default()
    }
}

impl AgentEnv {
    pub fn new(behavior: Behavior) -> AgentEnv {
        AgentEnv::with(behavior, "")
    }

    /// `extra_agent` is appended to the `[agent]` section.
    pub fn with(behavior: Behavior, extra_agent: &str) -> AgentEnv {
        let srv = TestServer::start(behavior).expect("start the test server");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("state/tokens.json");
        let token_file = dir.path().join("run/devauth/access_token");
        let hook_log = dir.path().join("hook.log");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n# Records the event, the variables devauth sets, and the whole env.\n\
                 echo \"$1 $DEVAUTH_EVENT ${{DEVAUTH_REASON:-}}\" >> {log}\n\
                 env >> {log}.env\n",
                log = hook_log.display()
            ),
        )
        .unwrap();
        set_mode(&hook, 0o755);
        let config = dir.path().join("devauth.toml");
        let env = AgentEnv {
            srv,
            dir,
            config,
            store,
            token_file,
            hook_log,
        };
        env.write_config(&format!("hook = \"{}\"\n{extra_agent}", hook.display()));
        env
    }

    pub fn base(&self) -> String {
        self.srv.base_url()
    }

    /// The agent's socket (`[agent] socket`), in this test's dir (beside, not in, the token
    /// file's directory, whose mode the tests check).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/devauth.sock")
    }

    /// (Re)writes the config with this `[agent]` body (besides token_file and paired_screen).
    pub fn write_config(&self, agent: &str) {
        let b = self.base();
        let text = format!(
            "[provider]\nclient_id = \"devauth-test\"\nallow_http_loopback = true\n\
             device_authorization_endpoint = \"{b}/device/code\"\ntoken_endpoint = \"{b}/token\"\n\
             revocation_endpoint = \"{b}/revoke\"\nuserinfo_endpoint = \"{b}/userinfo\"\n\
             scopes = [\"openid\", \"offline_access\"]\n\
             [storage]\npath = \"{store}\"\ntpm_device = \"{no_tpm}\"\n\
             [display]\nbackend = \"none\"\n\
             [network]\nconnect_timeout_secs = 5\ntimeout_secs = 10\n\
             [agent]\ntoken_file = \"{tf}\"\npaired_screen_secs = 1\n{socket}{agent}",
            store = self.store.display(),
            no_tpm = super::no_tpm(self.dir.path()).display(),
            tf = self.token_file.display(),
            // Never the system's /run/devauth: tests run side by side.
            socket = if agent.contains("socket =") {
                String::new()
            } else {
                format!("socket = \"{}\"\n", self.socket().display())
            },
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Runs `devauth -c <config> args...` to completion.
    pub fn devauth(&self, args: &[&str]) -> Output {
        command()
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run devauth")
    }

    /// Starts `devauth run --json`.
    pub fn start_agent(&self) -> Agent {
        Agent::start(
            command()
                .arg("-c")
                .arg(&self.config)
                .args(["run", "--json"]),
        )
    }

    /// The token file's content, if there is one.
    pub fn published(&self) -> Option<String> {
        std::fs::read_to_string(&self.token_file).ok()
    }

    /// Hook lines (`<arg> <DEVAUTH_EVENT> <reason>`), in order.
    pub fn hook_events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.hook_log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    }

    /// Waits until the hook ran at least `n` times (the hook runs after the JSON event).
    pub fn wait_hooks(&self, n: usize) -> Vec<String> {
        self.wait_hooks_until(|h| h.len() >= n)
    }

    /// Waits until the hook events so far satisfy `pred`.
    pub fn wait_hooks_until(&self, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let events = self.hook_events();
            if pred(&events) {
                return events;
            }
            assert!(start.elapsed() < LONG, "hook events: {events:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_stats(&self, what: &str, pred: impl Fn(&devauth_testserver::Stats) -> bool) {
        assert!(
            self.srv.wait_for(LONG, pred),
            "timed out waiting for {what}; stats {:?}",
            self.srv.stats()
        );
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A running `devauth run --json`; killed (SIGKILL) when dropped.
pub struct Agent {
    pub child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    exit: Option<ExitStatus>,
}

impl Agent {
    pub fn start(cmd: &mut Command) -> Agent {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start devauth run");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let ev = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                ev.lock().unwrap().push(v);
            }
        });
        let err = child.stderr.take().unwrap();
        let se = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = se.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Agent {
            child,
            events,
            stderr,
            exit: None,
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The `event` names so far.
    pub fn names(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.names().iter().filter(|n| *n == name).count()
    }

    /// A number field of every `event` so far (`retrying` → `in_secs`), in order.
    pub fn numbers(&self, event: &str, field: &str) -> Vec<u64> {
        self.events()
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| {
                e[field]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{event}.{field}: {e}"))
            })
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `pred(events)` holds.
    pub fn wait_events(&self, what: &str, pred: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        while start.elapsed() < LONG {
            if pred(&self.events()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {what}; events {:?}\nstderr:\n{}",
            self.names(),
            self.stderr()
        );
    }

    /// Waits until there are at least `n` events called `name`.
    pub fn wait_count(&self, name: &str, n: usize) {
        self.wait_events(&format!("{n} × {name}"), |ev| {
            ev.iter().filter(|e| e["event"] == name).count() >= n
        });
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: signals our own child.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill");
    }

    /// Waits for the process to exit (at most `LONG`).
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(s) = self.exit {
            return s;
        }
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.exit = Some(s);
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return s;
            }
            assert!(
                start.elapsed() < LONG,
                "the agent did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Process CPU time (user + system) of `pid`, from /proc/<pid>/stat, in clock ticks.
pub fn cpu_ticks(pid: libc::pid_t) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After "pid (comm)": state is field 3, utime 14, stime 15 (1-based) → indexes 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
