//! `status`, `unpair`, a corrupt token store, configuration errors and the command line.

mod common;

use common::*;

fn paired() -> Env {
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.pair();
    env
}

// --- status -----------------------------------------------------------------------------------

#[test]
fn status_json_fields_without_secrets() {
    let env = paired();
    let out = env.run(&["status", "--json"]);
    out.code(exit::OK);
    let v = out.json();
    assert_eq!(v["paired"], true, "{v}");
    assert_eq!(v["account"], EMAIL);
    assert_eq!(v["scopes"], serde_json::json!(["openid"]));
    assert_eq!(v["refresh_token"], true);
    assert_eq!(v["access_token_expires"], true);
    assert!(
        v["access_token_expires_in"]
            .as_u64()
            .is_some_and(|s| (3000..=3600).contains(&s)),
        "{v}"
    );
    assert_eq!(v["client_id"], TEST_CLIENT_ID);
    assert_eq!(v["token_endpoint"], format!("{}/token", env.base()));
    assert_eq!(v["store"], env.store.display().to_string());
    // Booleans, not values: nothing in it looks like a token.
    let text = out.stdout.clone();
    for field in ["access_token", "refresh_token", "id_token"] {
        let secret = env.stored(field).unwrap();
        assert!(!text.contains(&secret), "{field} in status --json");
    }
    let human = env.run(&["status"]);
    human
        .code(exit::OK)
        .stdout_has(&format!("Paired as {EMAIL}"))
        .stdout_has("refresh token: held")
        .stdout_has(&env.store.display().to_string());
}

#[test]
fn status_not_paired() {
    let env = Env::generic();
    env.run(&["status"])
        .code(exit::NOT_PAIRED)
        .stdout_has("Not paired");
    let v = env.run(&["status", "--json"]).code(exit::NOT_PAIRED).json();
    assert_eq!(v["paired"], false);
    assert_eq!(v["store"], env.store.display().to_string());
}

#[test]
fn status_and_token_refuse_tokens_of_another_client() {
    let env = paired();
    let text = env.config_file().replace(
        &format!("client_id = \"{TEST_CLIENT_ID}\""),
        "client_id = \"another-client\"",
    );
    env.write_config(&text);
    env.run(&["status"])
        .code(exit::NOT_PAIRED)
        .stdout_has("Not paired with this client")
        .stdout_has(TEST_CLIENT_ID);
    env.run(&["token"])
        .code(exit::NOT_PAIRED)
        .stderr_has("another-client");
    assert!(env.refreshes().is_empty());
    assert!(env.store.exists());
}

// --- unpair -----------------------------------------------------------------------------------

#[test]
fn unpair_revokes_refresh_then_access_token_and_deletes_the_store() {
    let env = paired();
    let at = env.stored("access_token").unwrap();
    let rt = env.stored("refresh_token").unwrap();
    let out = env.run(&["unpair"]);
    out.code(exit::OK)
        .stdout_has("tokens revoked at the provider");
    let revs = env.server().requests_to(Endpoint::Revocation);
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[0].form_value("token"), Some(rt.as_str()));
    assert_eq!(revs[0].form_value("token_type_hint"), Some("refresh_token"));
    assert_eq!(revs[1].form_value("token"), Some(at.as_str()));
    assert_eq!(revs[1].form_value("token_type_hint"), Some("access_token"));
    for r in &revs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.form_value("client_id"), Some(TEST_CLIENT_ID));
    }
    assert_eq!(env.server().stats().revocations, 2);
    assert!(env.server().live_access_tokens().is_empty());
    assert!(env.server().live_refresh_tokens().is_empty());
    assert!(!env.store.exists());
    env.run(&["token"]).code(exit::NOT_PAIRED);
    env.run(&["status"]).code(exit::NOT_PAIRED);
}

#[test]
fn unpair_with_the_server_gone_still_deletes() {
    let mut env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml("[network]\nconnect_timeout_secs = 1\ntimeout_secs = 2")
        .start();
    env.pair();
    env.stop_server();
    let out = env.run(&["unpair"]);
    out.code(exit::OK)
        .stdout_has("Unpaired locally")
        .stdout_has("not revoked");
    assert!(!env.store.exists());
    env.run(&["token"]).code(exit::NOT_PAIRED);
}

#[test]
fn unpair_when_not_paired() {
    let env = Env::generic();
    env.run(&["unpair"])
        .code(exit::OK)
        .stdout_has("Not paired; nothing to do");
    assert_eq!(env.server().stats().requests, 0);
}

// --- a corrupt store --------------------------------------------------------------------------

fn corrupt_store(content: &[u8]) {
    let what = String::from_utf8_lossy(content).into_owned();
    let env = Setup::new(Provider::Generic).approve_after_polls(0).start();
    env.write_store(content);
    let status = env.run(&["status"]);
    status
        .code(exit::STORE)
        .stdout_has("unusable")
        .stdout_has(&env.store.display().to_string());
    let v = env.run(&["status", "--json"]).code(exit::STORE).json();
    assert_eq!(v["paired"], false, "{what:?}: {v}");
    assert!(v["store_error"].as_str().is_some(), "{what:?}: {v}");
    env.run(&["token"])
        .code(exit::STORE)
        .stderr_has(&env.store.display().to_string());
    // pair replaces it.
    env.pair();
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has(&format!("Paired as {EMAIL}"));
    assert_eq!(Env::mode(&env.store), 0o600);
    let t = env.token();
    assert!(env.server().live_access_tokens().contains(&t));
}

#[test]
fn corrupt_store_garbage() {
    corrupt_store(b"\x00\xffthis is not a token file\n");
}

#[test]
fn corrupt_store_truncated_json() {
    corrupt_store(
        b"{\n  \"format\": \"devauth-tokens\",\n  \"version\": 1,\n  \"client_id\": \"dev",
    );
}

#[test]
fn corrupt_store_empty_file() {
    corrupt_store(b"");
}

#[test]
fn corrupt_store_unpair_deletes_it() {
    let env = Env::generic();
    env.write_store(b"{ not json");
    env.run(&["unpair"])
        .code(exit::OK)
        .stdout_has("Deleted an unreadable token store");
    assert!(!env.store.exists());
    env.run(&["status"]).code(exit::NOT_PAIRED);
}

// --- configuration errors ---------------------------------------------------------------------

/// The line (1-based) of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"))
}

#[test]
fn config_http_off_loopback_is_refused() {
    let env = Env::generic();
    let text = env.config_file().replace(
        &format!("{}/token", env.base()),
        "http://auth.example.com/token",
    );
    env.write_config(&text);
    let line = line_of(&text, "token_endpoint");
    for args in [&["pair", "--json"][..], &["token"], &["status"]] {
        env.run(args)
            .code(exit::CONFIG)
            .stderr_has("provider.token_endpoint")
            .stderr_has(&format!("{}:{line}:", env.config.display()))
            .stderr_has("https");
    }
    assert_eq!(env.server().stats().requests, 0);
}

#[test]
fn config_http_loopback_needs_allow_http_loopback() {
    let env = Env::generic();
    let text = env
        .config_file()
        .replace("allow_http_loopback = true\n", "");
    env.write_config(&text);
    env.run(&["pair", "--json"])
        .code(exit::CONFIG)
        .stderr_has("provider.device_authorization_endpoint")
        .stderr_has("allow_http_loopback");
    assert_eq!(env.server().stats().requests, 0);
}

#[test]
fn config_unknown_key_names_the_line() {
    let env = Env::generic();
    let text = env
        .config_file()
        .replace("[storage]\n", "[storage]\nmode = \"0644\"\n");
    env.write_config(&text);
    let line = line_of(&text, "mode = ");
    env.run(&["status"])
        .code(exit::CONFIG)
        .stderr_has(&format!("{}:{line}:", env.config.display()))
        .stderr_has("mode");
}

#[test]
fn config_missing_file() {
    let env = Env::generic();
    std::fs::remove_file(&env.config).unwrap();
    for args in [
        &["pair", "--json"][..],
        &["token"],
        &["status"],
        &["unpair"],
    ] {
        env.run(args)
            .code(exit::CONFIG)
            .stderr_has(&env.config.display().to_string());
    }
}

#[test]
fn config_path_from_the_command_line_wins() {
    // DEVAUTH_CONFIG names a missing file; -c names the real one.
    let env = paired();
    let real = env.config.display().to_string();
    let out = env
        .cmd(&["status", "-c", &real])
        .env("DEVAUTH_CONFIG", env.dir().join("nope.toml"))
        .run();
    out.code(exit::OK).stdout_has("Paired");
}

// --- command line -----------------------------------------------------------------------------

#[test]
fn cli_version() {
    let out = TestCommand::bare(&["--version"]).run();
    out.code(exit::OK);
    assert_eq!(out.line(), format!("devauth {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn cli_help() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        TestCommand::bare(args)
            .run()
            .code(exit::OK)
            .stdout_has("Usage: devauth")
            .stdout_has("Exit codes:")
            .stdout_has("pair")
            .stdout_has("unpair");
    }
    TestCommand::bare(&["token", "--help"])
        .run()
        .code(exit::OK)
        .stdout_has("devauth token")
        .stdout_has("--header");
}

#[test]
fn cli_mistakes_exit_2() {
    for args in [
        &["frobnicate"][..],
        &[],
        &["token", "--json"],
        &["pair", "--bogus"],
        &["status", "extra"],
    ] {
        let out = TestCommand::bare(args).run();
        out.code(exit::USAGE).stderr_has("--help");
        assert_eq!(out.stdout, "", "{args:?}");
    }
    TestCommand::bare(&["frobnicate"])
        .run()
        .stderr_has("unknown command `frobnicate`");
}

// --- the harness itself -----------------------------------------------------------------------

#[test]
#[should_panic(expected = "a secret leaked into stdout")]
fn harness_catches_a_leaked_secret() {
    let env = Env::generic();
    let secret = "rt-not-a-real-refresh-token-0123456789";
    env.write_store(format!("{{\"refresh_token\": \"{secret}\"}}").as_bytes());
    let mut out = env.run(&["status"]);
    out.stdout.push_str(secret);
    env.record(&out);
    env.check_no_secret_leaked();
}
