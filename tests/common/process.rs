//! Running the binary: which one (`DEVAUTH_TEST_BIN`, `DEVAUTH_TEST_RUNNER`), the time bounds
//! ([`slow_factor`]), a command with a hard timeout and its collected output.

#![allow(dead_code)]

use super::*;
use std::ffi::OsString;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The binary and timing.
// ---------------------------------------------------------------------------------------------

/// The program to run and the arguments that come before devauth's own.
pub fn program() -> (OsString, Vec<OsString>) {
    let bin = std::env::var_os("DEVAUTH_TEST_BIN")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| OsString::from(env!("CARGO_BIN_EXE_devauth")));
    let runner: Vec<OsString> = std::env::var("DEVAUTH_TEST_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(OsString::from)
        .collect();
    match runner.split_first() {
        None => (bin, Vec::new()),
        Some((first, rest)) => {
            let mut args = rest.to_vec();
            args.push(bin);
            (first.clone(), args)
        }
    }
}

/// Whether the binary runs through `DEVAUTH_TEST_RUNNER` (qemu-user in CI). Tests of decisions
/// the native run already covers may skip there; what touches the OS (signals, locks, errno,
/// the libc's lookups, timing) runs on every target.
pub fn under_runner() -> bool {
    std::env::var("DEVAUTH_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty())
}

/// How much slower than native the binary may be (qemu-user: 5-10x on CPU-bound work; most
/// of a test is waiting, so 4 is generous for timeouts and upper bounds).
pub fn slow_factor() -> u32 {
    if let Some(f) = std::env::var("DEVAUTH_TEST_SLOW_FACTOR")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        return f.max(1);
    }
    if under_runner() { 4 } else { 1 }
}

/// `d` scaled for a slow binary (for timeouts and upper bounds only).
pub fn scaled(d: Duration) -> Duration {
    d * slow_factor()
}

/// Polls `f` every 10 ms until it holds (true) or `timeout` (scaled) passed (false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + scaled(timeout);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Running a command.
// ---------------------------------------------------------------------------------------------

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Output {
    pub args: Vec<String>,
    /// `None`: killed by a signal (or by the harness on timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "devauth {:?}: exit {:?}{} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.args,
            self.code,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code (and that the binary did not panic); shows everything otherwise.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n{}",
            self.describe()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked\n{}",
            self.describe()
        );
        self
    }

    /// Asserts `needle` is in stdout.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// Asserts `needle` is in stderr.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// `pair --json` events: every stdout line must be one JSON object with an `event`.
    #[track_caller]
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.describe())
                });
                assert!(
                    v.get("event").and_then(Value::as_str).is_some(),
                    "JSON line without an event: {l}\n{}",
                    self.describe()
                );
                v
            })
            .collect()
    }

    /// The `event` names, in order.
    #[track_caller]
    pub fn event_names(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Asserts that the `--json` events begin with `first` and end with `last`.
    #[track_caller]
    pub fn events_from_to(&self, first: &str, last: &str) -> &Self {
        let names = self.event_names();
        assert_eq!(
            names.first().map(String::as_str),
            Some(first),
            "{}",
            self.describe()
        );
        assert_eq!(
            names.last().map(String::as_str),
            Some(last),
            "{}",
            self.describe()
        );
        self
    }

    /// The events named `name`.
    #[track_caller]
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    /// stdout as one JSON value (`status --json`).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e})\n{}", self.describe()))
    }

    /// stdout without the trailing newline.
    pub fn line(&self) -> &str {
        self.stdout.trim_end_matches('\n')
    }

    /// Shows the whole run (for assertion messages).
    pub fn show(&self) -> String {
        self.describe()
    }
}

/// A devauth command line, ready to run.
pub struct TestCommand<'a> {
    pub(super) env: Option<&'a Env>,
    pub(super) args: Vec<String>,
    pub(super) vars: Vec<(String, OsString)>,
    pub(super) timeout: Duration,
    /// Written to the child's stdin, which is then closed; `None`: stdin is /dev/null.
    pub(super) stdin: Option<Vec<u8>>,
    /// Where stdout goes instead of a pipe the harness reads (`/dev/full`, a closed pipe).
    pub(super) stdout: Option<Stdio>,
}

impl<'a> TestCommand<'a> {
    /// A command outside any [`Env`] (no config, nothing recorded).
    pub fn bare(args: &[&str]) -> TestCommand<'static> {
        TestCommand {
            env: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
            stdout: None,
        }
    }

    /// Sends stdout to `out` instead of the harness (`Output::stdout` stays empty).
    pub fn stdout(mut self, out: Stdio) -> Self {
        self.stdout = Some(out);
        self
    }

    /// Feeds `text` to the command's stdin (then end of file).
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Self {
        self.vars.push((k.to_string(), v.into()));
        self
    }

    /// Hard timeout before [`slow_factor`].
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Starts it; [`Running::wait`] collects the output.
    #[track_caller]
    pub fn spawn(mut self) -> Running<'a> {
        let (prog, pre) = program();
        let mut cmd = Command::new(&prog);
        cmd.args(&pre)
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(self.stdout.take().unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped());
        for v in PROXY_VARS {
            cmd.env_remove(v);
        }
        cmd.env_remove("DEVAUTH_CONFIG");
        // The screens speak the language these name ([display] language = "auto"): a test
        // that wants one sets it.
        for v in ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"] {
            cmd.env_remove(v);
        }
        if let Some(env) = self.env {
            cmd.current_dir(env.dir())
                .env("DEVAUTH_CONFIG", &env.config);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {prog:?} {pre:?}: {e}"));
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&bytes);
            });
        }
        // Read both pipes on threads so a chatty child never blocks on a full pipe.
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        Running {
            env: self.env,
            args: self.args,
            child,
            out,
            err,
            started,
            deadline: started + scaled(self.timeout),
        }
    }

    /// Runs it to the end (or the timeout, which fails the test).
    #[track_caller]
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// A started command.
pub struct Running<'a> {
    pub(super) env: Option<&'a Env>,
    pub(super) args: Vec<String>,
    pub(super) child: Child,
    pub(super) out: JoinHandle<Vec<u8>>,
    pub(super) err: JoinHandle<Vec<u8>>,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
}

impl Running<'_> {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it now (the test has seen enough of a command that would go on, e.g. `pair`
    /// retrying); [`Running::wait`] then returns at once with `code: None`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to it.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) with our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits for the exit (killing it at the deadline, which fails the test).
    #[track_caller]
    pub fn wait(mut self) -> Output {
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= self.deadline => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for devauth {:?}: {e}", self.args),
            }
        };
        let elapsed = self.started.elapsed();
        let text = |h: JoinHandle<Vec<u8>>| {
            String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
        };
        let output = Output {
            args: self.args,
            code: if timed_out {
                None
            } else {
                status.and_then(|s| s.code())
            },
            stdout: text(self.out),
            stderr: text(self.err),
            elapsed,
            timed_out,
        };
        if let Some(env) = self.env {
            env.record(&output);
        }
        assert!(
            !timed_out,
            "devauth did not finish in time and was killed\n{}",
            output.describe()
        );
        output
    }
}
