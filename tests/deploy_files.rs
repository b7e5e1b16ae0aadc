//! The files that start devauth on a device do what they say (issue 23, items 10 and 11): the
//! SysV script under BusyBox sh with a fake daemon (the config from its defaults file, `reload`
//! as SIGHUP), and the systemd unit checked by `systemd-analyze verify` and quoted by the docs.
//!
//! The tools come from Debian (`busybox`, `systemd`); `scripts/install-test-tools.sh` installs
//! them where CI runs and sets `DEVAUTH_REQUIRE_TEST_TOOLS=1`, which turns a missing tool into
//! a failure instead of a skip. Neither test runs the devauth binary's code paths (the unit's
//! check only needs an executable at ExecStart), so both skip under `DEVAUTH_TEST_RUNNER`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `name` on PATH (or in /usr/sbin, /sbin), `None` (with a note) when the test should skip.
fn tool(name: &str) -> Option<PathBuf> {
    if under_runner() {
        eprintln!("skipped under DEVAUTH_TEST_RUNNER: this test does not run devauth's code");
        return None;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("DEVAUTH_REQUIRE_TEST_TOOLS").is_none(),
            "{name} is missing (scripts/install-test-tools.sh installs it)"
        );
        eprintln!("skipped: {name} is not installed (scripts/install-test-tools.sh)");
    }
    found
}

// --- item 10: the SysV script ----------------------------------------------------------------

struct Sysv {
    dir: tempfile::TempDir,
    busybox: PathBuf,
    script: PathBuf,
}

impl Sysv {
    fn new(busybox: PathBuf) -> Sysv {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Only BusyBox's applets on PATH: the script must not lean on anything else.
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let installed = Command::new(&busybox)
            .args(["--install", "-s"])
            .arg(&bin)
            .status()
            .unwrap();
        assert!(installed.success() && bin.join("sh").exists());
        // The fake daemon: says how it was started and which signals it got.
        let daemon = d.join("fake-devauth");
        std::fs::write(
            &daemon,
            format!(
                // The traps before the start line: a SIGHUP sent as soon as the test sees
                // "start" must find its handler (the default action would end the daemon).
                "#!{bb} sh\nlog={log}\n\
                 trap 'echo \"hup $$\" >> \"$log\"' HUP\n\
                 trap 'echo \"term $$\" >> \"$log\"; exit 0' TERM\n\
                 echo \"start $$ $*\" >> \"$log\"\n\
                 while :; do sleep 1 & wait $!; done\n",
                bb = busybox.display(),
                log = d.join("daemon.log").display()
            ),
        )
        .unwrap();
        common::agent::set_mode(&daemon, 0o755);
        std::fs::write(
            d.join("devauth.toml"),
            "# the config the script must pass on\n",
        )
        .unwrap();
        // Everything the script writes stays in the temp dir.
        std::fs::write(
            d.join("defaults"),
            format!(
                "DAEMON={d}/fake-devauth\nCONFIG={d}/devauth.toml\nSTATE_DIR={d}/state\n\
                 RUN_DIR={d}/run\nPIDFILE={d}/devauth.pid\nDEVAUTH_LOG={d}/supervisor.log\n\
                 BACKOFF_MIN=1\n",
                d = d.display()
            ),
        )
        .unwrap();
        let script = d.join("S90devauth");
        std::fs::copy(format!("{ROOT}/dist/sysv/S90devauth"), &script).unwrap();
        Sysv {
            dir,
            busybox,
            script,
        }
    }

    /// `busybox sh S90devauth ACTION`, as rcS would run it.
    fn run(&self, action: &str) -> std::process::Output {
        Command::new(&self.busybox)
            .arg("sh")
            .arg(&self.script)
            .arg(action)
            .env_clear()
            .env("PATH", self.dir.path().join("bin"))
            .env("DEVAUTH_DEFAULTS", self.dir.path().join("defaults"))
            .output()
            .unwrap()
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("daemon.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_log(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        assert!(
            wait_until(Duration::from_secs(20), || pred(&self.log())),
            "waiting for {what}: daemon log {:?}\nsupervisor log:\n{}",
            self.log(),
            std::fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default()
        );
        self.log()
    }
}

/// A test that fails half way must not leave the supervisor and its daemon running (they would
/// outlive the test run, holding whatever descriptors they inherited).
impl Drop for Sysv {
    fn drop(&mut self) {
        let _ = Command::new(&self.busybox)
            .arg("sh")
            .arg(&self.script)
            .arg("stop")
            .env_clear()
            .env("PATH", self.dir.path().join("bin"))
            .env("DEVAUTH_DEFAULTS", self.dir.path().join("defaults"))
            .output();
    }
}

#[test]
fn sysv_script_passes_config_and_reloads_with_sighup_under_busybox() {
    let Some(busybox) = tool("busybox") else {
        return;
    };
    let s = Sysv::new(busybox);
    let d = s.dir.path().display().to_string();
    let out = s.run("start");
    assert!(out.status.success(), "{out:?}");
    let log = s.wait_log("the daemon's start", |l| !l.is_empty());
    // The config from the defaults file, not /etc/devauth/devauth.toml.
    let (pid, args) = log[0]
        .strip_prefix("start ")
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(args, format!("--config {d}/devauth.toml run"));
    // The supervisor runs under BusyBox's shell too.
    let supervisor = std::fs::read_to_string(format!("{d}/devauth.pid")).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", supervisor.trim())).unwrap();
    assert!(exe.ends_with("busybox"), "{exe:?}");
    // reload: SIGHUP to the same devauth; no stop, no second start (no new code on screen).
    let out = s.run("reload");
    assert!(out.status.success(), "{out:?}");
    let log = s.wait_log("the SIGHUP", |l| l.iter().any(|e| e.starts_with("hup")));
    assert_eq!(log, [format!("start {pid} {args}"), format!("hup {pid}")]);
    let status = s.run("status");
    assert!(status.status.success(), "{status:?}");
    // A second reload reaches it as well: the supervisor kept waiting for the same devauth.
    assert!(s.run("force-reload").status.success());
    s.wait_log("the second SIGHUP", |l| l.len() == 3);
    // stop: SIGTERM, the supervisor gone, the pid file removed.
    assert!(s.run("stop").status.success());
    let log = s.log();
    assert_eq!(log.last().unwrap(), &format!("term {pid}"), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("start")).count(), 1);
    assert!(!Path::new(&format!("{d}/devauth.pid")).exists());
    assert_eq!(s.run("status").status.code(), Some(3));
    assert_eq!(
        s.run("reload").status.code(),
        Some(7),
        "reload of a stopped service"
    );
}

// --- item 11: the systemd unit ---------------------------------------------------------------

fn unit() -> String {
    std::fs::read_to_string(format!("{ROOT}/dist/systemd/devauth.service")).unwrap()
}

/// The unit's settings: its lines without comments and blank lines.
fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `systemd-analyze verify` on the unit in `dir` (with whatever drop-ins are beside it):
/// everything it said.
fn verify(analyze: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(dir.join("devauth.service"))
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said.trim().to_string())
}

/// The installed systemd's version (`systemd 252 (252.39-1~deb12u2)`).
fn systemd_version(analyze: &Path) -> u32 {
    let out = Command::new(analyze).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("systemd-analyze --version names a version")
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    // verify wants ExecStart to be executable: the built binary stands in for
    // /usr/bin/devauth, nothing else changes. The file keeps its name (the unit's name).
    let dir = tempfile::tempdir().unwrap();
    let bin = program().0;
    let text = unit();
    assert!(text.contains("ExecStart=/usr/bin/devauth run"));
    std::fs::write(
        dir.path().join("devauth.service"),
        text.replace(
            "ExecStart=/usr/bin/devauth ",
            &format!("ExecStart={} ", Path::new(&bin).display()),
        ),
    )
    .unwrap();
    // Any warning counts: an unknown key is only a warning to systemd, and ignored.
    let (ok, said) = verify(&analyze, dir.path());
    assert!(ok && said.is_empty(), "{said}");
    // The restart backoff drop-in: clean where systemd knows its keys (254+); on older ones
    // (Debian 12: 252) those two keys are all that is unknown, which is why they are not in
    // the unit.
    let dropin = dir.path().join("devauth.service.d");
    std::fs::create_dir(&dropin).unwrap();
    std::fs::copy(
        format!("{ROOT}/dist/systemd/devauth.service.d/restart-backoff.conf"),
        dropin.join("restart-backoff.conf"),
    )
    .unwrap();
    let (ok, said) = verify(&analyze, dir.path());
    assert!(ok, "{said}");
    if systemd_version(&analyze) >= 254 {
        assert!(said.is_empty(), "{said}");
    } else {
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines.len(), 2, "{said}");
        assert!(lines[0].contains("Unknown key 'RestartSteps'"), "{said}");
        assert!(
            lines[1].contains("Unknown key 'RestartMaxDelaySec'"),
            "{said}"
        );
    }
}

#[test]
fn the_docs_quote_the_shipped_unit() {
    let shipped = directives(&unit());
    let agent_md = std::fs::read_to_string(format!("{ROOT}/docs/agent.md")).unwrap();
    // The ```ini block under "### systemd".
    let section = agent_md
        .split_once("### systemd\n")
        .map(|(_, rest)| rest)
        .expect("docs/agent.md has a systemd section");
    let block = section
        .split_once("```ini\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("an ini block");
    assert_eq!(
        directives(block),
        shipped,
        "docs/agent.md quotes another unit"
    );
    // What the prose says the unit does, checked against the unit.
    let has = |d: &str| shipped.iter().any(|l| l == d);
    for doc in ["README.md", "docs/deploy.md", "docs/agent.md"] {
        let text = std::fs::read_to_string(format!("{ROOT}/{doc}")).unwrap();
        assert!(
            !text.contains("no capabilities"),
            "{doc} says no capabilities"
        );
        if text.contains("CAP_SYS_TTY_CONFIG") {
            assert!(has("AmbientCapabilities=CAP_SYS_TTY_CONFIG"));
        }
        if text.contains("RuntimeDirectoryMode=0750") {
            panic!("{doc} names a RuntimeDirectoryMode the unit does not have");
        }
    }
    assert!(has("RuntimeDirectoryMode=0755"));
    assert!(has("ExecReload=/bin/kill -HUP $MAINPID"));
}
