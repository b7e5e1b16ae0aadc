//! `devauth api` end to end: requests with the access token, renewal and retry on 401, the
//! body on stdout and the exit code by status class.

mod common;

use common::agent::*;
use devauth_testserver::{Behavior, Endpoint, Fault};
use std::io::Write;
use std::process::Stdio;

/// An env that is already paired (through `devauth pair`).
fn paired() -> AgentEnv {
    let env = AgentEnv::new(Behavior {
        token_lifetime: Some(3600),
        auto_approve_after_polls: Some(0),
        ..Behavior::default()
    });
    let out = env.devauth(&["pair"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn who_am_i_prints_the_body_and_exits_0() {
    let env = paired();
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["email"], "user@example.test");
    // The request carried the stored access token as a Bearer token.
    let req = env.srv.requests_to(Endpoint::UserInfo).pop().unwrap();
    let auth = req.header("authorization").unwrap().to_string();
    assert!(auth.starts_with("Bearer at-"), "{auth}");
    assert!(!text(&out.stderr).contains(&auth[7..]));
}

#[test]
fn a_401_renews_once_and_retries() {
    let env = paired();
    env.srv.expire_access_tokens(); // the store still believes its token is fresh
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = env.srv.stats();
    assert_eq!(s.refreshes, 1, "{s:?}");
    assert_eq!(s.userinfo_unauthorized, 1);
    assert_eq!(s.userinfo_ok, 1);
    // `token` now hands out the renewed token without another refresh.
    let t = env.devauth(&["token"]);
    assert!(t.status.success());
    assert_eq!(env.srv.stats().refreshes, 1);
}

#[test]
fn a_dead_grant_exits_4_and_a_persistent_401_exits_11() {
    let env = paired();
    env.srv.revoke_all();
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // 401 again after a successful renewal: the body of the second answer, exit 11.
    let env = paired();
    env.srv.inject(
        Endpoint::UserInfo,
        Fault::Raw {
            status: 401,
            content_type: "application/json".into(),
            body: "{\"error\":\"invalid_token\",\"n\":1}".into(),
        },
    );
    env.srv.inject(
        Endpoint::UserInfo,
        Fault::Raw {
            status: 401,
            content_type: "application/json".into(),
            body: "{\"error\":\"invalid_token\",\"n\":2}".into(),
        },
    );
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"n\":2"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(env.srv.stats().refreshes, 1);
}

#[test]
fn exit_codes_by_status_class_with_the_body_on_stdout() {
    let env = paired();
    let out = env.devauth(&["api", &env.srv.url("/nowhere")]);
    assert_eq!(out.status.code(), Some(11));
    assert!(text(&out.stdout).contains("not_found"));
    assert!(
        text(&out.stderr).contains("HTTP 404"),
        "{}",
        text(&out.stderr)
    );
    env.srv.inject(Endpoint::UserInfo, Fault::Status(503));
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(12));
    env.srv.inject(
        Endpoint::UserInfo,
        Fault::Raw {
            status: 302,
            content_type: "text/plain".into(),
            body: "moved".into(),
        },
    );
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(10));
    // Unreachable: network error.
    env.srv.inject(Endpoint::UserInfo, Fault::Close);
    let out = env.devauth(&["api", &env.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
}

#[test]
fn data_and_headers_are_sent_as_given() {
    let env = paired();
    let body = env.dir.path().join("body");
    std::fs::write(&body, "user_code=NOPE&action=approve").unwrap();
    let out = env.devauth(&[
        "api",
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
        "-H",
        "X-Device: tv-42",
        "--data",
        &format!("@{}", body.display()),
        &env.srv.url("/device"),
    ]);
    // The test server's page refuses the unknown code with 400.
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    let req = env
        .srv
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/device")
        .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.body, b"user_code=NOPE&action=approve");
    assert_eq!(req.header("x-device"), Some("tv-42"));
    assert!(req.header("authorization").unwrap().starts_with("Bearer "));
    // Body from stdin, explicit method.
    let mut child = command()
        .arg("-c")
        .arg(&env.config)
        .args(["api", "-X", "put", "-d", "-", &env.srv.url("/userinfo")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(11)); // 405 from the test server
    let req = env.srv.requests().pop().unwrap();
    assert_eq!(
        (req.method.as_str(), req.body.as_slice()),
        ("PUT", &b"{}"[..])
    );
}

#[test]
fn refused_urls_and_not_paired() {
    let env = paired();
    let out = env.devauth(&["api", "http://example.com/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = env.devauth(&["api", "ftp://127.0.0.1/x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.devauth(&[
        "api",
        "--header",
        "Authorization: x",
        &env.srv.url("/userinfo"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let fresh = AgentEnv::new(Behavior::default());
    let out = fresh.devauth(&["api", &fresh.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(3));
}
