//! The token service's part of the harness: asking the agent's socket as this process (root in
//! CI) or as another user (a Python client started with another uid and gid), and the checks
//! the socket tests share.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// uids the clients run as (no passwd entry needed: the kernel only has numbers).
pub const APP_UID: u32 = 65534;
pub const OTHER_UID: u32 = 65533;

/// An answer from the socket.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn token(&self) -> &str {
        assert_eq!(self.status, 200, "{self:?}");
        self.body["access_token"].as_str().unwrap_or("")
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Raw bytes to the socket, the answer read to EOF (bounded by `timeout`).
pub fn raw(socket: &Path, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).expect("connect to the agent's socket");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

pub fn parse(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Reply {
        status,
        body: serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}")),
    }
}

/// `GET target` as this process.
pub fn get(socket: &Path, target: &str) -> Reply {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    parse(&raw(socket, req.as_bytes(), Duration::from_secs(60)))
}

/// The Python the clients run as another user: Debian's, which any uid may execute (a
/// pyenv shim under /root may not be).
pub fn python() -> PathBuf {
    let p = Path::new("/usr/bin/python3");
    let p = if p.exists() {
        p.to_path_buf()
    } else {
        PathBuf::from("python3")
    };
    std::fs::canonicalize(&p).unwrap_or(p)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `GET target` as `uid`:`uid`, through tests/fixtures/socket_get.py.
pub fn get_as(uid: u32, socket: &Path, target: &str) -> Reply {
    request_as(uid, socket, "GET", target)
}

/// `POST target` (no body) as `uid`:`uid`.
pub fn post_as(uid: u32, socket: &Path, target: &str) -> Reply {
    request_as(uid, socket, "POST", target)
}

fn request_as(uid: u32, socket: &Path, method: &str, target: &str) -> Reply {
    let out = Command::new(python())
        .arg(fixture("socket_get.py"))
        .arg(socket)
        .arg(target)
        .arg(method)
        .uid(uid)
        .gid(uid)
        .output()
        .expect("run python3");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: {line:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_ne!(v["status"], 0, "the client could not use the socket: {v}");
    Reply {
        status: v["status"].as_u64().unwrap_or(0) as u16,
        body: v["body"].clone(),
    }
}

/// Lets other users reach files under `dir` (a temp dir is 0700).
pub fn open_dir(dir: &Path) {
    super::agent::set_mode(dir, 0o755);
}

/// Waits until the socket accepts connections.
pub fn wait_socket(socket: &Path) {
    let start = Instant::now();
    while UnixStream::connect(socket).is_err() {
        assert!(
            start.elapsed() < super::agent::LONG,
            "nothing listens on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A GET with these headers, by hand (another program using the token and a proof): the status.
pub fn raw_get(url: &str, headers: &[(&str, &str)]) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

/// The voluntary context switches of every thread of `pid` (its wake-ups).
pub fn wakeups(pid: libc::pid_t) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                total += n.trim().parse::<u64>().unwrap();
            }
        }
    }
    total
}
