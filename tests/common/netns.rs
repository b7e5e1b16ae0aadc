//! Network namespaces a test makes for itself: the test runs again inside new network and
//! mount namespaces (`unshare(1)`), where `ip(8)` gives loopback the addresses it needs and a
//! hosts file of its own is bind-mounted over /etc/hosts. Nothing outside the test changes:
//! the namespaces die with the inner run.
//!
//! Needs root (CI runs as root); otherwise the test says why and passes without running.
//! Works the same under `DEVAUTH_TEST_RUNNER` (qemu-user runs inside the namespaces too).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

/// The environment variable that marks the inner run (its value: the test's name).
const INNER: &str = "DEVAUTH_NETNS_TEST";

/// What the namespace holds besides a loopback interface that is up.
#[derive(Default)]
pub struct Netns {
    /// `ip` command lines, e.g. `-6 addr add 2001:db8::10/128 dev lo nodad`.
    ip: Vec<String>,
    /// `/etc/hosts` lines after the localhost ones: `address name`.
    hosts: Vec<String>,
    /// Bind-mount a gai.conf preferring IPv4 (glibc; musl orders by RFC 6724 alone).
    prefer_ipv4: bool,
}

impl Netns {
    pub fn new() -> Netns {
        Netns::default()
    }

    /// An `ip` command run inside, e.g. `"addr add 192.0.2.10/32 dev lo"`.
    pub fn ip(mut self, args: &str) -> Netns {
        self.ip.push(args.to_string());
        self
    }

    /// An address on loopback (IPv6 ones without duplicate address detection).
    pub fn address(self, addr: &str) -> Netns {
        if addr.contains(':') {
            self.ip(&format!("-6 addr add {addr}/128 dev lo nodad"))
        } else {
            self.ip(&format!("addr add {addr}/32 dev lo"))
        }
    }

    /// A hosts file line: `name` resolves to `addr`.
    pub fn host(mut self, addr: &str, name: &str) -> Netns {
        self.hosts.push(format!("{addr} {name}"));
        self
    }

    /// glibc's getaddrinfo sorts IPv4 before IPv6 (a gai.conf with IPv4's precedence raised).
    pub fn prefer_ipv4(mut self) -> Netns {
        self.prefer_ipv4 = true;
        self
    }

    /// Runs the test named `test` (its function name) again inside new namespaces set up as
    /// described. Returns `true` inside, where the caller goes on with the test's body, and
    /// `false` outside, where the caller returns: the inner run passed (else this panics with
    /// its output), or the test cannot run here and said why.
    #[track_caller]
    pub fn enter(self, test: &str) -> bool {
        if std::env::var(INNER).as_deref() == Ok(test) {
            self.set_up();
            return true;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("{test}: skipped: needs root for its own network namespace (unshare, ip)");
            return false;
        }
        let probe = Command::new(find("unshare"))
            .args(["--net", "--mount", "true"])
            .output();
        match probe {
            Err(e) => panic!("{test}: cannot run unshare(1) (util-linux): {e}"),
            Ok(out) if !out.status.success() => {
                eprintln!(
                    "{test}: skipped: this machine does not allow new namespaces: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return false;
            }
            Ok(_) => {}
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = Command::new(find("unshare"))
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .arg(&exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(INNER, test)
            .output()
            .expect("run the test inside unshare");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The inner run's lines (times to connect among them) in this test's output.
        println!("{stdout}");
        eprintln!("{stderr}");
        assert!(
            out.status.success(),
            "{test} failed inside its network namespace ({})",
            out.status
        );
        assert!(
            stdout.contains("1 passed"),
            "{test} did not run inside its network namespace"
        );
        false
    }

    /// Inside: loopback up, the `ip` commands, the hosts file (and gai.conf).
    fn set_up(&self) {
        run("ip", "link set lo up");
        for line in &self.ip {
            run("ip", line);
        }
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for line in &self.hosts {
            hosts.push_str(line);
            hosts.push('\n');
        }
        bind_file(&hosts, "/etc/hosts");
        if self.prefer_ipv4 && std::path::Path::new("/etc/gai.conf").exists() {
            // Any precedence line replaces glibc's whole table: all of it, IPv4 raised.
            bind_file(
                "precedence ::1/128 50\nprecedence ::/0 40\nprecedence 2002::/16 30\n\
                 precedence ::/96 20\nprecedence ::ffff:0:0/96 100\n",
                "/etc/gai.conf",
            );
        }
    }
}

/// `program` from PATH, or from the sbin directories a non-login root shell may lack.
fn find(program: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.into())
}

#[track_caller]
fn run(program: &str, args: &str) {
    let out = Command::new(find(program))
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} {args}: {e} (scripts/install-test-tools.sh installs it)")
        });
    assert!(
        out.status.success(),
        "{program} {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bind-mounts a file holding `text` over `target` (this mount namespace only). The source
/// file is removed at once: the mount keeps it alive for as long as the namespace lives.
fn bind_file(text: &str, target: &str) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), text).expect("write");
    run(
        "mount",
        &format!("--bind {} {target}", file.path().display()),
    );
}

/// A port that never answers: a listener whose accept queue is full, so the kernel drops
/// every new SYN and connecting there times out — a silently broken path, without a firewall.
pub struct SilentPort {
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
    pub addr: SocketAddr,
}

impl SilentPort {
    /// On `addr` (an address of the namespace; its port may be another server's, on another
    /// address). Checks that a connect there really times out.
    #[track_caller]
    pub fn bind(addr: SocketAddr) -> SilentPort {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        // std listens with a backlog of 128; listen(2) again on a listening socket only sets
        // the backlog: 0, so one queued connection fills it.
        // SAFETY: a valid listening socket owned by `listener`.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(0): {}", std::io::Error::last_os_error());
        let mut queued = Vec::new();
        for _ in 0..5 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return SilentPort {
                        _listener: listener,
                        _queued: queued,
                        addr,
                    };
                }
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
        }
        panic!("{addr}: connects still answered with a full accept queue");
    }
}
