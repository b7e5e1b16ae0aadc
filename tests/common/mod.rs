//! The end-to-end harness: a loopback `TestServer` per test, a temp dir with a config and the
//! token store, and the real `devauth` binary run with a hard timeout (ripgrep's TestCommand
//! style).
//!
//! The binary is `CARGO_BIN_EXE_devauth` unless `DEVAUTH_TEST_BIN` names another one (the armv7
//! build in CI), optionally run through `DEVAUTH_TEST_RUNNER` (whitespace-split, e.g.
//! `qemu-arm -L /usr/arm-linux-gnueabihf`). Nothing here assumes the binary is native: it is
//! only ever spawned, fed an environment and read through pipes. Timeouts and upper bounds on
//! durations are multiplied by [`slow_factor`] (4 under a runner, `DEVAUTH_TEST_SLOW_FACTOR`
//! overrides).
//!
//! Every [`Env`] also checks, when it is dropped, that no command's output (the stdout of
//! `token` excepted: printing the token is its job) contains a secret: access, refresh and id
//! tokens, device codes and client secrets, collected from the server's recorded requests, its
//! live token lists and the store file after each run.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// Re-exported for the test files; each uses a different subset.
#[allow(unused_imports)]
pub use devauth_testserver::{
    Behavior, DEVICE_GRANT, EMAIL, Endpoint, Fault, Flavor, IntervalField, MICROSOFT_MESSAGE,
    Recorded, Stats, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TestServer, TlsIdentity,
};
pub use serde_json::Value;

/// Proxy variables that would send loopback requests elsewhere.
const PROXY_VARS: [&str; 7] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
];

/// Default hard timeout of one command (before [`slow_factor`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit codes (`devauth --help`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const NOT_PAIRED: i32 = 3;
    pub const PAIR_AGAIN: i32 = 4;
    pub const DENIED: i32 = 5;
    pub const CONFIG: i32 = 6;
    pub const NETWORK: i32 = 7;
    pub const PROVIDER: i32 = 8;
    pub const STORE: i32 = 9;
}

// ---------------------------------------------------------------------------------------------
// The binary and timing.
// ---------------------------------------------------------------------------------------------

/// The program to run and the arguments that come before devauth's own.
fn program() -> (OsString, Vec<OsString>) {
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

/// How much slower than native the binary may be (qemu-user: 5-10x on CPU-bound work; most
/// of a test is waiting, so 4 is generous for timeouts and upper bounds).
pub fn slow_factor() -> u32 {
    if let Some(f) = std::env::var("DEVAUTH_TEST_SLOW_FACTOR")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        return f.max(1);
    }
    let under_runner = std::env::var("DEVAUTH_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty());
    if under_runner { 4 } else { 1 }
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
    env: Option<&'a Env>,
    args: Vec<String>,
    vars: Vec<(String, OsString)>,
    timeout: Duration,
}

impl<'a> TestCommand<'a> {
    /// A command outside any [`Env`] (no config, nothing recorded).
    pub fn bare(args: &[&str]) -> TestCommand<'static> {
        TestCommand {
            env: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
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
    pub fn spawn(self) -> Running<'a> {
        let (prog, pre) = program();
        let mut cmd = Command::new(&prog);
        cmd.args(&pre)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for v in PROXY_VARS {
            cmd.env_remove(v);
        }
        cmd.env_remove("DEVAUTH_CONFIG");
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
    env: Option<&'a Env>,
    args: Vec<String>,
    child: Child,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
    started: Instant,
    deadline: Instant,
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

// ---------------------------------------------------------------------------------------------
// The test environment: server + temp dir + config + store.
// ---------------------------------------------------------------------------------------------

/// Which kind of config to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `preset = "generic"` with explicit endpoints.
    Generic,
    /// `preset = "google"` with the endpoints pointed at the server and the client secret.
    Google,
    /// `preset = "microsoft"`, `authority` = the server, `tenant = "contoso"`.
    Microsoft,
    /// `preset = "github"` with GitHub's paths on the server.
    GitHub,
    /// `preset = "generic"` with only `issuer` = the server (OIDC discovery).
    Discovery,
}

/// What to start: the server's behavior and the config's extras.
pub struct Setup {
    provider: Provider,
    behavior: Behavior,
    client_id: String,
    provider_toml: String,
    toml: String,
    tls: Option<TlsIdentity>,
}

impl Setup {
    /// The provider's config against a server with that provider's `Behavior` preset.
    pub fn new(provider: Provider) -> Setup {
        let behavior = match provider {
            Provider::Generic | Provider::Discovery => Behavior::generic(),
            Provider::Google => Behavior::google(),
            Provider::Microsoft => Behavior::microsoft(),
            Provider::GitHub => Behavior::github(),
        };
        Setup {
            provider,
            behavior,
            client_id: TEST_CLIENT_ID.to_string(),
            provider_toml: String::new(),
            toml: String::new(),
            tls: None,
        }
    }

    /// Serve HTTPS with this identity (the config's URLs become `https://127.0.0.1:PORT`).
    pub fn tls(mut self, identity: TlsIdentity) -> Setup {
        self.tls = Some(identity);
        self
    }

    /// Changes the server's behavior.
    pub fn behavior(mut self, f: impl FnOnce(&mut Behavior)) -> Setup {
        f(&mut self.behavior);
        self
    }

    /// The server approves each code at its (n+1)-th poll (n `authorization_pending` first).
    pub fn approve_after_polls(self, n: u32) -> Setup {
        self.behavior(|b| b.auto_approve_after_polls = Some(n))
    }

    /// The `client_id` the config names (the server keeps `TEST_CLIENT_ID`).
    pub fn client_id(mut self, id: &str) -> Setup {
        self.client_id = id.to_string();
        self
    }

    /// Extra lines in `[provider]`.
    pub fn provider_toml(mut self, lines: &str) -> Setup {
        self.provider_toml.push_str(lines);
        self.provider_toml.push('\n');
        self
    }

    /// Extra TOML after `[storage]` (whole sections: `[network]`, `[agent]`...).
    pub fn toml(mut self, text: &str) -> Setup {
        self.toml.push_str(text);
        self.toml.push('\n');
        self
    }

    #[track_caller]
    pub fn start(self) -> Env {
        let server = match self.tls {
            None => TestServer::start(self.behavior),
            Some(identity) => TestServer::start_tls(self.behavior, identity),
        }
        .expect("start the test server");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("devauth.toml");
        // The store's directory does not exist yet: devauth creates it (0700).
        let store = dir.path().join("state").join("tokens.json");
        let env = Env {
            base: server.base_url(),
            server: Some(server),
            dir,
            config,
            store,
            provider: self.provider,
            client_secret: matches!(self.provider, Provider::Google)
                .then(|| TEST_CLIENT_SECRET.to_string()),
            runs: Mutex::new(Vec::new()),
            secrets: Mutex::new(BTreeSet::new()),
        };
        let text = env.config_text(&self.client_id, &self.provider_toml, &self.toml);
        env.write_config(&text);
        env
    }
}

/// One test's world. Dropping it checks that no output leaked a secret, then stops the server
/// and removes the temp dir.
pub struct Env {
    server: Option<TestServer>,
    dir: tempfile::TempDir,
    /// The config file (also in `DEVAUTH_CONFIG` of every command).
    pub config: PathBuf,
    /// The token store (`[storage] path`).
    pub store: PathBuf,
    pub provider: Provider,
    base: String,
    client_secret: Option<String>,
    runs: Mutex<Vec<Output>>,
    secrets: Mutex<BTreeSet<String>>,
}

impl Env {
    /// A generic-preset environment with a default server.
    pub fn generic() -> Env {
        Setup::new(Provider::Generic).start()
    }

    pub fn server(&self) -> &TestServer {
        self.server
            .as_ref()
            .expect("the server was stopped by this test")
    }

    /// `http://127.0.0.1:PORT` (still known after the server stopped).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config text for this provider.
    pub fn config_text(&self, client_id: &str, provider_toml: &str, toml: &str) -> String {
        let b = &self.base;
        let provider = match self.provider {
            Provider::Generic => format!(
                "preset = \"generic\"\n\
                 device_authorization_endpoint = \"{b}/device/code\"\n\
                 token_endpoint = \"{b}/token\"\n\
                 revocation_endpoint = \"{b}/revoke\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Google => format!(
                "preset = \"google\"\n\
                 client_secret = \"{TEST_CLIENT_SECRET}\"\n\
                 device_authorization_endpoint = \"{b}/device/code\"\n\
                 token_endpoint = \"{b}/token\"\n\
                 revocation_endpoint = \"{b}/revoke\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Microsoft => format!(
                "preset = \"microsoft\"\n\
                 authority = \"{b}\"\n\
                 tenant = \"contoso\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::GitHub => format!(
                "preset = \"github\"\n\
                 device_authorization_endpoint = \"{b}/login/device/code\"\n\
                 token_endpoint = \"{b}/login/oauth/access_token\"\n\
                 userinfo_endpoint = \"{b}/userinfo\"\n"
            ),
            Provider::Discovery => format!("preset = \"generic\"\nissuer = \"{b}\"\n"),
        };
        format!(
            "# devauth end-to-end test config\n\
             [provider]\n\
             client_id = \"{client_id}\"\n\
             allow_http_loopback = true\n\
             {provider}{provider_toml}\n\
             [storage]\n\
             path = \"{}\"\n\
             {toml}",
            self.store.display()
        )
    }

    /// Replaces the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The config file's text.
    pub fn config_file(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read config")
    }

    /// `devauth ARGS` with this environment's config.
    pub fn cmd(&self, args: &[&str]) -> TestCommand<'_> {
        TestCommand {
            env: Some(self),
            args: args.iter().map(|s| s.to_string()).collect(),
            vars: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Runs `devauth ARGS` to the end.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }

    /// `pair --json`, which must succeed (exit 0, last event `paired`).
    #[track_caller]
    pub fn pair(&self) -> Output {
        let out = self.run(&["pair", "--json"]);
        out.code(exit::OK);
        assert_eq!(
            out.event_names().last().map(String::as_str),
            Some("paired"),
            "{}",
            out.show()
        );
        out
    }

    /// `token`, which must succeed; returns the printed token.
    #[track_caller]
    pub fn token(&self) -> String {
        let out = self.run(&["token"]);
        out.code(exit::OK);
        let t = out.line().to_string();
        assert!(
            !t.is_empty() && !t.contains(char::is_whitespace),
            "{}",
            out.show()
        );
        t
    }

    /// The store file parsed, `None` when absent.
    pub fn store_json(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.store).ok()?;
        Some(serde_json::from_str(&text).expect("the store is JSON"))
    }

    /// A string field of the store (`access_token`, `refresh_token`...).
    #[track_caller]
    pub fn stored(&self, field: &str) -> Option<String> {
        self.store_json()
            .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_string))
    }

    /// Writes raw bytes at the store path (creating its directory 0700).
    pub fn write_store(&self, bytes: &[u8]) {
        let dir = self.store.parent().expect("store dir");
        std::fs::create_dir_all(dir).expect("create store dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::write(&self.store, bytes).expect("write store");
    }

    /// Permission bits of a path.
    pub fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o7777
    }

    /// The device-code polls the server received, in order.
    pub fn polls(&self) -> Vec<Recorded> {
        self.server()
            .requests_to(Endpoint::Token)
            .into_iter()
            .filter(|r| r.grant_type() == Some(DEVICE_GRANT))
            .collect()
    }

    /// The refresh requests the server received, in order.
    pub fn refreshes(&self) -> Vec<Recorded> {
        self.server()
            .requests_to(Endpoint::Token)
            .into_iter()
            .filter(|r| r.grant_type() == Some("refresh_token"))
            .collect()
    }

    /// Stops the server now (the port refuses connections afterwards). Secrets it knew are
    /// kept for the leak check.
    pub fn stop_server(&mut self) {
        self.collect_secrets();
        self.server = None;
    }

    /// Adds a run's output to the leak check (every run through this `Env` already is).
    pub fn record(&self, output: &Output) {
        self.collect_secrets();
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(output.clone());
    }

    /// Everything secret that exists now: the server's live tokens, every secret the client
    /// sent (device codes, refresh tokens, tokens revoked, bearer tokens, client secrets) and
    /// what the store holds.
    fn collect_secrets(&self) {
        let mut found: Vec<String> = Vec::new();
        if let Some(server) = &self.server {
            found.extend(server.live_access_tokens());
            found.extend(server.live_refresh_tokens());
            for r in server.requests() {
                for (k, v) in &r.form {
                    if matches!(
                        k.as_str(),
                        "device_code" | "refresh_token" | "token" | "client_secret"
                    ) {
                        found.push(v.clone());
                    }
                }
                if let Some((_, secret)) = &r.basic_auth {
                    found.push(secret.clone());
                }
                if let Some(auth) = r.header("authorization") {
                    if let Some(t) = auth.strip_prefix("Bearer ") {
                        found.push(t.trim().to_string());
                    }
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(&self.store) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                for k in ["access_token", "refresh_token", "id_token"] {
                    if let Some(s) = v.get(k).and_then(Value::as_str) {
                        found.push(s.to_string());
                    }
                }
            }
        }
        found.push(TEST_CLIENT_SECRET.to_string());
        found.extend(self.client_secret.clone());
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        // Very short values could match by accident; real secrets here are long and random.
        secrets.extend(found.into_iter().filter(|s| s.len() >= 12));
    }

    /// Fails when any recorded output contains a secret (`token`'s stdout excepted).
    #[track_caller]
    pub fn check_no_secret_leaked(&self) {
        self.collect_secrets();
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        for run in runs.iter() {
            let is_token = run.args.iter().any(|a| a == "token");
            for secret in secrets.iter() {
                let shown = |s: &str| s.replace(secret.as_str(), "<SECRET>");
                assert!(
                    !run.stderr.contains(secret.as_str()),
                    "a secret leaked into stderr of devauth {:?}:\n{}",
                    run.args,
                    shown(&run.stderr)
                );
                if !is_token {
                    assert!(
                        !run.stdout.contains(secret.as_str()),
                        "a secret leaked into stdout of devauth {:?}:\n{}",
                        run.args,
                        shown(&run.stdout)
                    );
                }
            }
        }
    }

    /// The number of commands run so far.
    pub fn runs(&self) -> usize {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.check_no_secret_leaked();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions on timing.
// ---------------------------------------------------------------------------------------------

/// Asserts consecutive instants are at least `min` apart (minus 50 ms for scheduling).
#[track_caller]
pub fn assert_gaps_at_least(what: &str, at: &[Instant], min: Duration) {
    let min = min.saturating_sub(Duration::from_millis(50));
    for (i, w) in at.windows(2).enumerate() {
        let gap = w[1].saturating_duration_since(w[0]);
        assert!(
            gap >= min,
            "{what}: gap {i} is {gap:?}, less than {min:?} (all gaps: {:?})",
            gaps(at)
        );
    }
}

/// The gaps between consecutive instants.
pub fn gaps(at: &[Instant]) -> Vec<Duration> {
    at.windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect()
}

/// Collapses all whitespace runs to one space (to find wrapped text on a screen).
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// The QR code on a plain (non-tty) terminal screen.
// ---------------------------------------------------------------------------------------------

/// Decodes the first QR code in a plain-mode terminal screen (`pair` without `--json`, stdout
/// a pipe). Plain mode draws like `qrencode -t UTF8` for a light-on-dark terminal: a full
/// block is two light pixels, `▀`/`▄` light on top/bottom, a space two dark ones.
#[track_caller]
pub fn decode_screen_qr(screen: &str) -> String {
    let is_qr_row = |l: &str| {
        !l.trim().is_empty()
            && l.chars().any(|c| c == '█')
            && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
    };
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !is_qr_row(l))
        .take_while(|l| is_qr_row(l))
        .collect();
    assert!(rows.len() > 10, "no QR code on the screen:\n{screen}");
    const PX: usize = 4;
    const MARGIN: usize = 8;
    let cols = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let (w, h) = (cols * PX + 2 * MARGIN, rows.len() * 2 * PX + 2 * MARGIN);
    let mut img = vec![0u8; w * h];
    for (ty, row) in rows.iter().enumerate() {
        for (x, c) in row.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            for (half, light) in [(0, top), (1, bottom)] {
                for py in 0..PX {
                    for px in 0..PX {
                        let yy = MARGIN + (2 * ty + half) * PX + py;
                        let xx = MARGIN + x * PX + px;
                        img[yy * w + xx] = if light { 255 } else { 0 };
                    }
                }
            }
        }
    }
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "expected one QR code on the screen:\n{screen}"
    );
    grids[0]
        .decode()
        .unwrap_or_else(|e| panic!("the QR code does not decode ({e:?}):\n{screen}"))
        .1
}
