//! The `devauth-testserver` binary: startup line, flags, request log without secrets.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use devauth_testserver::{DEVICE_GRANT, TEST_CLIENT_ID};

const BIN: &str = env!("CARGO_BIN_EXE_devauth-testserver");

/// Kills the child on drop so a failing test leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn devauth-testserver");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let running = Running(child);
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no startup line");
    let base = line
        .trim_end()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    (running, base)
}

#[test]
fn serves_flavor_and_logs_without_secrets() {
    let (mut running, base) = spawn(&[
        "--flavor",
        "github",
        "--auto-approve-after",
        "0",
        "--interval",
        "0",
        "--port",
        "0",
    ]);
    let json = [("Accept", "application/json")];
    let dc = post_form_h(
        &base,
        "/login/device/code",
        &json,
        &[("client_id", TEST_CLIENT_ID), ("scope", "repo")],
    )
    .json();
    assert_eq!(dc["expires_in"], 900);
    let device_code = str_of(&dc, "device_code").to_string();
    let t = post_form(
        &base,
        "/login/oauth/access_token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", TEST_CLIENT_ID),
        ],
    );
    assert_eq!(t.status, 200);
    assert!(t.text().starts_with("access_token="), "{}", t.text());
    assert_eq!(get(&base, "/test/stats").json()["tokens_issued"], 1);

    let _ = running.0.kill();
    let _ = running.0.wait();
    let mut log = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("POST /login/device/code 200"), "{log}");
    assert!(log.contains("POST /login/oauth/access_token 200"), "{log}");
    assert!(
        !log.contains(&device_code),
        "device code leaked into the log"
    );
    let access = t.text();
    let token = access
        .split('&')
        .next()
        .unwrap()
        .trim_start_matches("access_token=");
    assert!(!log.contains(token), "token leaked into the log");
}

#[test]
fn help_and_bad_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--flavor",
        "--auto-approve-after",
        "--interval",
        "--token-lifetime",
        "--expires-in",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
    let out = Command::new(BIN)
        .args(["--flavor", "okta"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flavor okta"));
}
