//! What a newcomer does first (issue 23, items 1, 2 and 12): the demo config by hand as its
//! header says, `pair` against a provider it cannot reach (it ends, exit 7), and `render` and a
//! display backend without the setup they assume.

mod common;

use common::*;
use devauth_testserver::Behavior;
use std::time::{Duration, Instant};

const S: fn(u64) -> Duration = Duration::from_secs;

/// Under qemu (`DEVAUTH_TEST_RUNNER`) only what touches the OS runs (a refused connection, the
/// give-up timing, the display device wait): the rest is the same code natively.
fn decisions_only() -> bool {
    if under_runner() {
        eprintln!("skipped under DEVAUTH_TEST_RUNNER: the same decisions ran natively");
    }
    under_runner()
}

// --- item 1: the demo config -----------------------------------------------------------------

/// The commands the demo config's header tells a person to type, without their `#`.
fn documented_commands(config: &str) -> (Vec<String>, Vec<String>) {
    let mut server = None;
    let mut devauth = None;
    for line in config.lines() {
        let Some(cmd) = line.strip_prefix("#     ") else {
            continue;
        };
        let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        if let Some(rest) = cmd.strip_prefix("cargo run -p devauth-testserver -- ") {
            server = Some(rest.split_whitespace().map(str::to_string).collect());
        } else if cmd.starts_with("cargo run -- ") {
            devauth = Some(words.into_iter().skip(3).collect());
        }
    }
    (
        server.expect("the header names the server command"),
        devauth.expect("the header names the devauth command"),
    )
}

#[test]
fn the_demo_config_works_as_its_header_says() {
    if decisions_only() {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let config_path = format!("{root}/config/loopback-demo.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let (server_args, devauth_args) = documented_commands(&text);
    // The server as documented: its default behavior (the binary's), then the flags.
    let mut behavior = Behavior::generic();
    let mut port = 0;
    let mut args = server_args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().expect("every documented flag has a value");
        match flag.as_str() {
            "--port" => port = value.parse().unwrap(),
            "--auto-approve-after" => {
                behavior.auto_approve_after = Some(S(value.parse().unwrap()));
            }
            other => panic!("the test does not know the documented flag {other}"),
        }
    }
    assert_eq!(
        devauth_args,
        ["--config", "config/loopback-demo.toml", "pair"],
        "the documented devauth command"
    );
    // The port the config's URLs name; another run of this test may hold it for a moment.
    let start = Instant::now();
    let server = loop {
        match TestServer::start_on_port(port, behavior.clone()) {
            Ok(s) => break s,
            Err(e) if start.elapsed() < S(30) => {
                eprintln!("port {port}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("port {port} stays busy: {e}"),
        }
    };
    assert!(text.contains(&format!("\"{}/token\"", server.base_url())));
    // Everything as written but the store: the test keeps it out of the shared /tmp.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("loopback-demo.toml");
    assert!(text.contains("/tmp/devauth-demo/"));
    std::fs::write(
        &copy,
        text.replace("/tmp/devauth-demo/", &format!("{}/", dir.path().display())),
    )
    .unwrap();
    let copy = copy.display().to_string();
    let run = |args: &[&str]| {
        let args: Vec<&str> = ["--config", copy.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        TestCommand::bare(&args).timeout(S(60)).run()
    };
    let out = run(&["pair"]);
    out.code(exit::OK).stderr_has("paired as user@example.test");
    run(&["status"])
        .code(exit::OK)
        .stdout_has("Paired as user@example.test");
    assert!(!run(&["token"]).code(exit::OK).line().is_empty());
}

// --- item 2: pair ends on a network error ----------------------------------------------------

/// An address where nothing listens (a server's port, after it stopped).
fn refused_port_env(extra: &str) -> Env {
    let mut env = Setup::new(Provider::Generic).toml(extra).start();
    env.stop_server();
    env
}

#[test]
fn pair_gives_up_on_a_refused_port_after_its_timeout() {
    let env = refused_port_env("");
    let out = env.run(&["pair", "--json", "--timeout", "2"]);
    out.code(exit::NETWORK).stderr_has("gave up after 2 s");
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "{}",
        out.show()
    );
    let events = out.events();
    assert!(events.len() >= 3, "{}", out.show());
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e["event"] == "retrying")
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error", "{}", out.show());
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("connection refused")
    );
    // It waited the time given, and not a backoff step more.
    assert!(out.elapsed >= S(2), "{:?}", out.elapsed);
    assert!(out.elapsed < scaled(S(15)), "{:?}", out.elapsed);
}

#[test]
fn pair_gives_up_after_the_configured_default() {
    if decisions_only() {
        return;
    }
    let env = refused_port_env("[network]\npair_timeout_secs = 1");
    let out = env.run(&["pair"]);
    out.code(exit::NETWORK).stderr_has("gave up after 1 s");
    assert!(out.elapsed >= S(1), "{:?}", out.elapsed);
}

#[test]
fn pair_gives_up_on_tls_to_a_plain_http_port() {
    if decisions_only() {
        return;
    }
    // https:// to the test server, which speaks plain http: every handshake fails.
    let env = Setup::new(Provider::Generic).start();
    let text = env
        .config_file()
        .replace("http://127.0.0.1", "https://127.0.0.1");
    env.write_config(&text);
    let out = env.run(&["pair", "--timeout", "1"]);
    out.code(exit::NETWORK).stderr_has("gave up after 1 s");
    assert!(env.server().stats().device_codes_issued == 0);
}

#[test]
fn pair_timeout_0_keeps_retrying() {
    if decisions_only() {
        return;
    }
    let env = refused_port_env("[network]\npair_timeout_secs = 1");
    let mut run = env.cmd(&["pair", "--json", "--timeout", "0"]).spawn();
    std::thread::sleep(S(2));
    assert!(run.running(), "gave up although --timeout 0 says never");
    run.kill();
    let out = run.wait();
    assert!(
        out.event_names().iter().all(|e| e == "retrying"),
        "{}",
        out.show()
    );
}

// --- item 12: render and backends ------------------------------------------------------------

#[test]
fn render_an_unknown_board_without_a_config_names_no_config() {
    if decisions_only() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png").display().to_string();
    let out = TestCommand::bare(&[
        "render", "--board", "nope", "--state", "code", "--out", &png,
    ])
    .run();
    out.code(exit::CONFIG)
        .stderr_has("--board")
        .stderr_has("no board \"nope\"")
        .stderr_has("tv-1080p");
    assert!(
        !out.stderr.contains("/etc/devauth/devauth.toml"),
        "{}",
        out.show()
    );
}

#[test]
fn a_backend_is_checked_against_the_build_before_its_device_is_waited_for() {
    let env = Setup::new(Provider::Generic)
        .toml(
            "[display]\nboard = \"pi-st7789-240x240\"\nspi_device = \"/dev/spidev-devauth-none\"\n\
             wait_secs = 1",
        )
        .start();
    let out = env.run(&["pair"]);
    if cfg!(feature = "spi") {
        // In the build: the missing device is waited for, then named.
        out.code(1)
            .stderr_has("waiting up to 1 s")
            .stderr_has("/dev/spidev-devauth-none");
        assert!(out.elapsed >= S(1), "{:?}", out.elapsed);
    } else {
        // Not in the build: said at once, no wait for a device it could not drive anyway.
        out.code(1).stderr_has("not in this build");
        assert!(!out.stderr.contains("waiting"), "{}", out.show());
        assert!(out.elapsed < S(1), "{:?}", out.elapsed);
    }
    assert_eq!(env.server().stats().requests, 0);
}
