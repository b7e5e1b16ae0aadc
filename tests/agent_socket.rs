//! The token service end to end: `devauth run` serving `[agent] socket`, asked by clients
//! running as other users (the suite runs as root in CI; clients drop to another uid), with
//! the policy, narrowed tokens checked at the test server, `devauth token` through the socket,
//! status and events, hostile clients, systemd socket activation and the idle agent's
//! wake-ups. These also run against the armv7 binary under qemu-arm (SO_PEERCRED's layout on
//! 32-bit ARM), except the wake-up count, which would count the emulator's own threads.

mod common;

use common::agent::*;
use common::socket::*;
use devauth_testserver::{Behavior, DpopPolicy, Narrowing};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// What the test server grants every pairing: more than the agent's config asks for, so there
/// is something to narrow.
const HELD: &str = "openid offline_access video.read music.read";
/// `HELD` as the service reports a scope set (sorted).
const HELD_SORTED: &str = "music.read offline_access openid video.read";

fn behavior(lifetime: u64) -> Behavior {
    Behavior {
        scope_granted: Some(HELD.into()),
        ..fast(lifetime)
    }
}

/// An agent whose socket other users may connect to, with these `[[agent.client]]` entries.
fn env_with(b: Behavior, clients: &str) -> AgentEnv {
    let env = AgentEnv::with(b, &format!("socket_mode = \"0666\"\n{clients}"));
    open_dir(env.dir.path());
    env
}

fn entry(fields: &str) -> String {
    format!("[[agent.client]]\n{fields}\n")
}

macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root to run the clients as other users");
            return;
        }
    };
}

#[test]
fn an_app_gets_its_grant_narrowed_tokens_are_checked_at_the_server_and_strangers_are_refused() {
    needs_root!();
    let env = env_with(
        behavior(60),
        &entry(&format!("user = \"{APP_UID}\"\nscopes = [\"*\"]")),
    );
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);

    // The account's own token: the one the agent publishes.
    let r = get_as(APP_UID, &sock, "/v1/token");
    let main = r.token().to_string();
    assert_eq!(Some(main.clone()), env.published());
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["scope"], HELD_SORTED);
    let left = r.body["expires_in"].as_u64().unwrap();
    assert!(left > 0 && left <= 60, "{left}");
    assert_eq!(env.srv.access_token_scope(&main).as_deref(), Some(HELD));

    // Fewer scopes: another token, which the server says can do only that.
    let r = get_as(APP_UID, &sock, "/v1/token?scope=video.read");
    let narrow = r.token().to_string();
    assert_ne!(narrow, main);
    assert_eq!(r.body["scope"], "video.read");
    assert_eq!(
        env.srv.access_token_scope(&narrow).as_deref(),
        Some("video.read")
    );
    assert!(env.srv.live_access_tokens().contains(&narrow));
    // Asked again (the order of the scopes does not matter): the same token, no new request.
    let again = get_as(APP_UID, &sock, "/v1/token?scope=video.read");
    assert_eq!(again.token(), narrow);
    assert_eq!(env.srv.stats().narrowed_tokens, 1);
    let two = get_as(APP_UID, &sock, "/v1/token?scope=video.read+openid");
    let two_again = get_as(APP_UID, &sock, "/v1/token?scope=openid%20video.read");
    assert_eq!(two.token(), two_again.token());
    assert_eq!(
        env.srv.access_token_scope(two.token()).as_deref(),
        Some("openid video.read")
    );

    // A user no entry names gets nothing, not even the status.
    for path in ["/v1/token", "/v1/status", "/v1/events"] {
        let r = get_as(OTHER_UID, &sock, path);
        assert_eq!((r.status, r.error()), (403, "client_not_allowed"), "{path}");
    }

    // Each hand-out and refusal logged once: who, which account, which scopes; no token.
    let log = agent.stderr();
    let handed = |scopes: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("token for uid {APP_UID} gid {APP_UID} pid "))
                    && l.contains(&format!("account default, scopes {scopes}"))
            })
            .count()
    };
    assert_eq!(handed(HELD_SORTED), 1, "{log}");
    assert_eq!(handed("video.read (narrowed)"), 2, "{log}");
    assert!(log.contains(&python().display().to_string()), "{log}");
    assert!(log.contains(&format!("refused uid {OTHER_UID}")), "{log}");
    assert!(
        !log.contains(&main) && !log.contains(&narrow),
        "a token in the log"
    );
}

#[test]
fn scopes_beyond_the_grant_another_account_and_a_wrong_executable_are_refused() {
    needs_root!();
    let clients = entry(&format!(
        "user = \"{APP_UID}\"\nexe = \"{}\"\nscopes = [\"video.read\"]",
        python().display()
    )) + &entry(&format!(
        "user = \"{OTHER_UID}\"\naccounts = [\"kids\"]\nscopes = [\"*\"]"
    ));
    let env = env_with(behavior(60), &clients);
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);

    let r = get_as(APP_UID, &sock, "/v1/token?scope=music.read");
    assert_eq!((r.status, r.error()), (403, "scope_not_allowed"));
    let r = get_as(APP_UID, &sock, "/v1/token?scope=video.read+music.read");
    assert_eq!((r.status, r.error()), (403, "scope_not_allowed"));
    // Without `scope`, what the entry grants.
    let r = get_as(APP_UID, &sock, "/v1/token");
    assert_eq!(r.body["scope"], "video.read");
    assert_eq!(
        env.srv.access_token_scope(r.token()).as_deref(),
        Some("video.read")
    );

    // Only the account it is granted; an account that does not exist is a 404.
    let r = get_as(OTHER_UID, &sock, "/v1/token");
    assert_eq!((r.status, r.error()), (403, "account_not_allowed"));
    let r = get_as(OTHER_UID, &sock, "/v1/token?account=kids");
    assert_eq!((r.status, r.error()), (404, "unknown_account"));

    // The same user with another executable (devauth itself) matches no entry.
    let out = command()
        .arg("-c")
        .arg(&env.config)
        .arg("token")
        .uid(APP_UID)
        .gid(APP_UID)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("client_not_allowed"), "{err}");
    assert!(out.stdout.is_empty());

    // Root holds everything, but a scope the account does not hold is refused outright.
    let r = get(&sock, "/v1/token?scope=admin");
    assert_eq!((r.status, r.error()), (403, "scope_not_held"));
    let r = get(&sock, "/v1/token?scope=a%22b");
    assert_eq!((r.status, r.error()), (400, "invalid_scope"));
}

use std::os::unix::process::CommandExt;

#[test]
fn devauth_token_asks_the_agent_so_the_store_can_be_root_only() {
    needs_root!();
    let env = env_with(
        behavior(60),
        &entry(&format!("user = \"{APP_UID}\"\nscopes = [\"*\"]")),
    );
    let mut agent = env.start_agent();
    agent.wait_count("paired", 1);
    wait_socket(&env.socket());
    let as_app = |args: &[&str]| {
        command()
            .arg("-c")
            .arg(&env.config)
            .args(args)
            .uid(APP_UID)
            .gid(APP_UID)
            .output()
            .unwrap()
    };
    // The store's directory is 0700 root: the app could never read it.
    let out = as_app(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(Some(token), env.published());
    let out = as_app(&["token", "--scope", "music.read", "--header"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let narrowed = line.trim().strip_prefix("Bearer ").unwrap();
    assert_eq!(
        env.srv.access_token_scope(narrowed).as_deref(),
        Some("music.read")
    );

    // Without the agent: as today (the app cannot read the store; root can).
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0));
    assert!(!env.socket().exists(), "the socket file is removed at stop");
    let out = as_app(&["token"]);
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let out = as_app(&["token", "--scope", "music.read"]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs `devauth run`"));
    let out = env.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn dpop_bound_tokens_come_with_their_proof_from_the_agent() {
    needs_root!();
    let env = env_with(
        Behavior {
            dpop: Some(DpopPolicy::default()),
            ..behavior(60)
        },
        &entry(&format!("user = \"{APP_UID}\"\nscopes = [\"*\"]")),
    );
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace("[provider]\n", "[provider]\ndpop = \"on\"\n"),
    )
    .unwrap();
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    // The app cannot read the store nor the DPoP key beside it: the agent makes the proof.
    let userinfo = format!("{}/userinfo", env.base());
    let out = command()
        .arg("-c")
        .arg(&env.config)
        .args(["token", "--header", "--dpop-proof", "GET", &userinfo])
        .uid(APP_UID)
        .gid(APP_UID)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("DPoP "), "{text}");
    let headers = [("Authorization", lines[0]), ("DPoP", lines[1])];
    assert_eq!(raw_get(&userinfo, &headers), 200);
    assert_eq!(raw_get(&userinfo, &headers), 401, "one proof, one request");
    assert!(
        agent.stderr().contains("token and DPoP proof for"),
        "{}",
        agent.stderr()
    );
    // The route: POST only, and it needs the request the proof is for.
    let r = parse(&raw(
        &sock,
        b"GET /v1/dpop-proof HTTP/1.1\r\n\r\n",
        Duration::from_secs(10),
    ));
    assert_eq!((r.status, r.error()), (405, "method_not_allowed"), "{r:?}");
    let r = post_as(APP_UID, &sock, "/v1/dpop-proof?method=GET");
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{r:?}");
    let r = post_as(
        APP_UID,
        &sock,
        "/v1/dpop-proof?method=GET&url=ftp%3A%2F%2Fx%2F",
    );
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{r:?}");
}

#[test]
fn a_provider_that_ignores_narrowing_gets_the_wider_token_refused_unless_allowed() {
    needs_root!();
    let clients = entry(&format!(
        "user = \"{APP_UID}\"\nscopes = [\"video.read\", \"openid\"]"
    )) + &entry(&format!(
        "user = \"{OTHER_UID}\"\nscopes = [\"video.read\"]\nallow_wider_token = true"
    ));
    let env = env_with(
        Behavior {
            narrowing: Narrowing::Ignore,
            ..behavior(60)
        },
        &clients,
    );
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    let r = get_as(APP_UID, &sock, "/v1/token?scope=video.read");
    assert_eq!((r.status, r.error()), (502, "narrowing_ignored"), "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains(HELD_SORTED));
    // Allowed: the wider token, and its scope says so.
    let r = get_as(OTHER_UID, &sock, "/v1/token");
    assert_eq!(r.body["scope"], HELD_SORTED);
    assert_eq!(env.srv.access_token_scope(r.token()).as_deref(), Some(HELD));
    // The provider was asked once; its answer is remembered.
    assert_eq!(env.srv.stats().refreshes, 1);

    // A provider that refuses the narrower scope outright: the same rule.
    env.srv.set_behavior(|b| b.narrowing = Narrowing::Refuse);
    let r = get_as(APP_UID, &sock, "/v1/token?scope=openid");
    assert_eq!((r.status, r.error()), (502, "narrowing_refused"), "{r:?}");
    let r = get(&sock, "/v1/token?scope=openid");
    assert_eq!(
        r.body["scope"], HELD_SORTED,
        "root may have the wider token"
    );
    drop(agent);
}

#[test]
fn token_exchange_narrows_without_touching_the_store() {
    let env = env_with(
        Behavior {
            token_exchange: true,
            ..behavior(60)
        },
        "",
    );
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replacen(
            "[provider]\n",
            "[provider]\nnarrowing = \"token_exchange\"\n",
            1,
        ),
    )
    .unwrap();
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    let store = std::fs::read(&env.store).unwrap();
    let r = get(&sock, "/v1/token?scope=openid");
    assert_eq!(
        env.srv.access_token_scope(r.token()).as_deref(),
        Some("openid")
    );
    let s = env.srv.stats();
    assert_eq!((s.token_exchanges, s.refreshes), (1, 0), "{s:?}");
    assert_eq!(std::fs::read(&env.store).unwrap(), store);
    drop(agent);
}

#[test]
fn narrowed_tokens_in_use_are_renewed_ahead_of_expiry_and_dropped_when_unused() {
    // 4 s tokens: the margin is 2 s (half the lifetime).
    let env = env_with(behavior(4), "");
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    let first = get(&sock, "/v1/token?scope=openid").token().to_string();
    // Renewed once without being asked (it was handed out since it was fetched) ...
    env.wait_stats("the narrowed token renewed", |s| s.narrowed_tokens >= 2);
    let r = get(&sock, "/v1/token?scope=openid");
    assert_ne!(r.token(), first);
    assert!(
        env.srv
            .live_access_tokens()
            .contains(&r.token().to_string())
    );
    let asked = env.srv.stats().narrowed_tokens;
    // ... then once more (handed out again), and no more while nobody asks: four renewals
    // of the agent's own token later, still only that one.
    let refreshed = agent.count("refreshed");
    agent.wait_count("refreshed", refreshed + 4);
    assert_eq!(env.srv.stats().narrowed_tokens, asked + 1);
}

#[test]
fn status_and_events_tell_a_device_ui_what_to_draw() {
    needs_root!();
    let env = env_with(
        Behavior {
            auto_approve_after_polls: Some(3),
            ..behavior(60)
        },
        &entry(&format!("user = \"{APP_UID}\"\nscopes = [\"openid\"]")),
    );
    let agent = env.start_agent();
    let sock = env.socket();
    wait_socket(&sock);
    // An event stream opened before the code exists, as JSON lines ...
    let mut lines = UnixStream::connect(&sock).unwrap();
    lines
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    lines.set_read_timeout(Some(LONG)).unwrap();
    let mut lines = BufReader::new(lines);
    let mut head = String::new();
    while lines.read_line(&mut head).unwrap() > 2 && !head.ends_with("\r\n\r\n") {}
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/x-ndjson"),
        "{head}"
    );
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e: &serde_json::Value| e["event"] == "paired")
    {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "the stream ended: {events:?}"
        );
        events.push(serde_json::from_str(&line).unwrap());
    }
    assert_eq!(events[0]["event"], "status");
    assert_eq!(events[0]["status"]["paired"], false);
    let code = events.iter().find(|e| e["event"] == "code").unwrap();
    let approved = env.srv.latest_user_code().unwrap();
    assert_eq!(code["user_code"], approved.as_str());
    assert!(events.iter().any(|e| e["event"] == "pending"));
    // The same events `run --json` printed, in the same order (the stream may have missed
    // those before it connected).
    agent.wait_count("paired", 1);
    let names: Vec<_> = events.iter().skip(1).map(|e| e["event"].clone()).collect();
    let printed: Vec<_> = agent.events().iter().map(|e| e["event"].clone()).collect();
    assert!(
        printed.windows(names.len()).any(|w| w == names.as_slice()),
        "streamed {names:?}, printed {printed:?}"
    );

    // The status, for an app its entry allows: what `status --json` says, no secret.
    let r = get_as(APP_UID, &sock, "/v1/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["paired"], true);
    assert_eq!(r.body["account"], "user@example.test");
    let out = env.devauth(&["status", "--json"]);
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "paired",
        "account",
        "scopes",
        "refresh_token",
        "client_id",
        "store",
    ] {
        assert_eq!(r.body[key], cli[key], "{key}");
    }
    let text = r.body.to_string();
    for t in env.srv.live_access_tokens() {
        assert!(!text.contains(&t));
    }

    // Server-sent events: a stream opened now starts with the status, and gets what follows.
    let mut sse = UnixStream::connect(&sock).unwrap();
    sse.write_all(b"GET /v1/events HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    sse.set_read_timeout(Some(LONG)).unwrap();
    let mut sse = BufReader::new(sse);
    let mut got = String::new();
    while !got.contains("\"event\":\"status\"") {
        assert!(sse.read_line(&mut got).unwrap() > 0);
    }
    assert!(got.contains("Content-Type: text/event-stream"), "{got}");
    assert!(got.contains("\r\n\r\ndata: {\"event\":\"status\""), "{got}");
    agent.signal(libc::SIGUSR1); // sign out: unpaired, pairing_required, a new code
    while !got.contains("\"event\":\"code\"") {
        assert!(sse.read_line(&mut got).unwrap() > 0, "{got}");
    }
    assert!(got.contains("data: {\"event\":\"unpaired\""), "{got}");
    assert!(
        got.contains("\n\ndata: {\"event\":\"pairing_required\""),
        "{got}"
    );
}

#[test]
fn hostile_clients_get_errors_and_never_hold_up_the_others() {
    let env = env_with(behavior(60), "");
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    let t = Duration::from_secs(30);

    // Connect and send nothing (kept open), and a head that never ends, half sent.
    let idle = UnixStream::connect(&sock).unwrap();
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.write_all(b"GET /v1/token HTTP/1.1\r\nX-Long: ")
        .unwrap();
    // A 10 MB body, sent by a thread while the answer is read.
    let body_sock = sock.clone();
    let big = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&body_sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = s.write_all(b"POST /v1/token HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            if s.write_all(&chunk).is_err() {
                break; // the server closed: it answered without reading the body
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    });
    // Garbage, a header that never ends (sent whole), too many headers, a bad method.
    let garbage = parse(&raw(
        &sock,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        t,
    ));
    assert_eq!((garbage.status, garbage.error()), (400, "bad_request"));
    let mut endless = b"GET /v1/token HTTP/1.1\r\nX: ".to_vec();
    endless.resize(64 * 1024, b'a');
    let r = parse(&raw(&sock, &endless, t));
    assert_eq!((r.status, r.error()), (431, "request_too_large"));
    let many = format!("GET /v1/token HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(40));
    let r = parse(&raw(&sock, many.as_bytes(), t));
    assert_eq!((r.status, r.error()), (431, "too_many_headers"));
    let r = parse(&raw(&sock, b"DELETE /v1/token HTTP/1.1\r\n\r\n", t));
    assert_eq!((r.status, r.error()), (405, "method_not_allowed"));
    let r = parse(&raw(&sock, b"GET /v2/anything HTTP/1.1\r\n\r\n", t));
    assert_eq!((r.status, r.error()), (404, "not_found"));
    let big = big.join().unwrap();
    let r = parse(&big);
    assert_eq!((r.status, r.error()), (413, "body_not_allowed"));

    // Meanwhile an honest client is served at once, while the silent ones still wait.
    let start = Instant::now();
    assert_eq!(get(&sock, "/v1/token").status, 200);
    idle.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    assert!(
        matches!((&idle).read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the silent client was already dropped: the honest one waited for it"
    );
    let served_in = start.elapsed();

    // The silent ones are answered 408 and closed within the request time.
    idle.set_nonblocking(false).unwrap();
    idle.set_read_timeout(Some(LONG)).unwrap();
    let mut out = Vec::new();
    (&idle).read_to_end(&mut out).unwrap();
    let r = parse(&out);
    assert_eq!((r.status, r.error()), (408, "request_timeout"));
    slow.set_read_timeout(Some(LONG)).unwrap();
    let mut out = Vec::new();
    slow.read_to_end(&mut out).unwrap();
    assert_eq!(parse(&out).status, 408);

    // A flood of silent connections beyond the limit: the oldest make room for new ones, so
    // an honest client still gets in.
    let flood: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    assert_eq!(get(&sock, "/v1/status").status, 200);
    let mut first = Vec::new();
    (&flood[0]).read_to_end(&mut first).unwrap();
    assert_eq!(parse(&first).error(), "busy");
    drop(flood);
    eprintln!("honest client served in {served_in:?} among hostile ones");
    // The agent is unharmed.
    assert!(agent.stderr().contains("refused uid 0"));
    assert_eq!(get(&sock, "/v1/token").status, 200);
}

#[test]
fn the_socket_has_its_mode_a_second_agent_is_refused_and_stop_removes_it() {
    let env = AgentEnv::with(behavior(60), "");
    let mut agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert!(
        agent
            .stderr()
            .contains(&format!("socket {} (mode 0660)", sock.display()))
    );
    // Another agent (another store) on the same socket.
    let other = AgentEnv::with(behavior(60), &format!("socket = \"{}\"\n", sock.display()));
    let out = other.devauth(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another agent is serving"));
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0));
    assert!(!sock.exists());
}

#[test]
fn systemd_socket_activation_is_used() {
    let env = AgentEnv::with(behavior(60), "");
    let path = env.dir.path().join("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let (prog, pre) = common::program();
    let mut cmd = std::process::Command::new("/bin/sh");
    // sd_listen_fds(3): fd 3, LISTEN_FDS=1, LISTEN_PID the pid that runs devauth (exec keeps it).
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
        .arg("sh")
        .arg(prog)
        .args(pre)
        .arg("-c")
        .arg(&env.config)
        .args(["run", "--json"]);
    // SAFETY: dup2 and fcntl are async-signal-safe; the child owns its descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut agent = Agent::start(&mut cmd);
    agent.wait_count("paired", 1);
    assert!(
        agent.stderr().contains("activated.sock (from systemd)"),
        "{}",
        agent.stderr()
    );
    let r = get(&path, "/v1/token");
    assert_eq!(Some(r.token().to_string()), env.published());
    // The configured path was not used; the activated one is systemd's to remove.
    assert!(!env.socket().exists());
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0));
    assert!(path.exists());
}

/// Voluntary context switches of every thread of `pid` (each one is a wake-up).

#[test]
fn an_idle_agent_with_its_socket_open_does_not_wake_up() {
    if std::env::var("DEVAUTH_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!("skipped under an emulator: its own threads wake up");
        return;
    }
    let env = env_with(behavior(3600), "");
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    // A narrowed token in the cache and an event stream open, as on a device.
    get(&sock, "/v1/token?scope=openid");
    let mut stream = UnixStream::connect(&sock).unwrap();
    stream
        .write_all(b"GET /v1/events HTTP/1.1\r\n\r\n")
        .unwrap();
    // Past the paired screen (1 s) and the first userinfo check.
    env.wait_stats("the userinfo check", |s| s.userinfo_ok >= 1);
    std::thread::sleep(Duration::from_secs(2));
    // 3 s on every run; DEVAUTH_IDLE_SECS=60 for the measurement in docs/benchmarks.md.
    let secs: u64 = std::env::var("DEVAUTH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let threads = std::fs::read_dir(format!("/proc/{}/task", agent.pid()))
        .unwrap()
        .count();
    let before = wakeups(agent.pid());
    std::thread::sleep(Duration::from_secs(secs));
    let after = wakeups(agent.pid());
    println!(
        "idle agent, {threads} threads, socket open with an event stream and a narrowed token \
         cached: {} wake-ups (voluntary context switches) in {secs} s",
        after - before
    );
    assert_eq!(after - before, 0, "wake-ups of an idle agent in {secs} s");
}

/// The code blocks of README's "Tokens for the device's apps" with this info string.
fn readme_blocks(lang: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme
        .find("\n## Tokens for the device's apps\n")
        .expect("the section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|rest| rest[..rest.find("\n```").unwrap()].to_string())
        .collect()
}

#[test]
fn the_readme_examples_work_as_another_user() {
    needs_root!();
    let env = env_with(
        behavior(60),
        &entry(&format!("user = \"{APP_UID}\"\nscopes = [\"video.read\"]")),
    );
    let agent = env.start_agent();
    agent.wait_count("paired", 1);
    let sock = env.socket();
    wait_socket(&sock);
    let as_app = |cmd: &mut std::process::Command| {
        let out = cmd
            .env("DEVAUTH_SOCKET", &sock)
            .uid(APP_UID)
            .gid(APP_UID)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let narrowed = |answer: &str| {
        let v: serde_json::Value = serde_json::from_str(answer.trim()).unwrap();
        assert_eq!(v["scope"], "video.read", "{answer}");
        let token = v["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            env.srv.access_token_scope(&token).as_deref(),
            Some("video.read")
        );
    };

    let python_code = readme_blocks("python").remove(0);
    let out = as_app(
        std::process::Command::new(python())
            .arg("-c")
            .arg(&python_code),
    );
    assert!(out.starts_with("a token for video.read, "), "{out}");

    let c_code = readme_blocks("c").remove(0);
    let src = env.dir.path().join("token.c");
    std::fs::write(&src, c_code).unwrap();
    let bin = env.dir.path().join("token-c");
    match std::process::Command::new("cc")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
    {
        Ok(cc) => {
            assert!(cc.status.success(), "{cc:?}");
            narrowed(&as_app(&mut std::process::Command::new(&bin)));
        }
        Err(e) => eprintln!("the C example not run: no cc ({e})"),
    }

    let curl = readme_blocks("sh")
        .into_iter()
        .find(|b| b.starts_with("curl "))
        .unwrap()
        .replace("/run/devauth/devauth.sock", &sock.display().to_string());
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok()
    {
        narrowed(&as_app(
            std::process::Command::new("/bin/sh").arg("-c").arg(&curl),
        ));
    } else {
        eprintln!("the curl example not run: no curl");
    }
}
