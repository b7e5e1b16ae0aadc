//! One config, every command: the rough edges found while trying the sign-in profiles
//! (issue 21). A config that `pair --grant` accepted stays usable by `token` and the rest,
//! and `client_json_file` beside `issuer` is not taken for endpoints written by hand.

mod common;

use common::browser::{fake_browser, launched_url};
use common::*;
use std::path::PathBuf;

/// The first report: `grant = "device_code"` (the default) with `browser_command`,
/// signed in with `pair --grant authorization_code`, after which every `token` exited 6.
#[test]
fn pair_grant_authorization_code_with_browser_command_then_token_works() {
    let env = Setup::new(Provider::Generic).start();
    let browser = fake_browser(env.dir());
    let b = env.base().to_string();
    let text = env.config_text(
        TEST_CLIENT_ID,
        &format!(
            "grant = \"device_code\"\nauthorization_endpoint = \"{b}/authorize\"\n\
             browser_command = \"{}\"\n",
            browser.display()
        ),
        "",
    );
    env.write_config(&text);
    // Every command accepts the file before anyone signs in.
    env.run(&["status"]).code(exit::NOT_PAIRED);
    // 2 s tokens: the refresh margin is 1 s, so a refresh comes soon.
    env.server().set_behavior(|b| b.token_lifetime = Some(2));

    let running = env
        .cmd(&["pair", "--grant", "authorization_code", "--json"])
        .spawn();
    let url = launched_url(&env);
    assert!(url.starts_with(&format!("{b}/authorize?")), "{url}");
    env.server()
        .sign_in(&url, true)
        .expect("the redirect reaches devauth");
    let out = running.wait();
    out.code(exit::OK);
    out.events_from_to("authorize", "paired");
    assert_eq!(
        env.code_exchanges().len(),
        1,
        "signed in with the code grant"
    );

    // The same file, the file's grant: token, a refresh, status, then unpair.
    let first = env.token();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_ne!(env.token(), first, "renewed");
    assert_eq!(env.refreshes().len(), 1);
    env.run(&["status", "--json"]).code(exit::OK);
    env.run(&["unpair"]).code(exit::OK);
    env.run(&["token"]).code(exit::NOT_PAIRED);
}

/// `pair --grant` refuses before signing in when the file as written cannot serve the other
/// commands, with the same key the others name.
#[test]
fn pair_grant_refuses_a_file_the_other_commands_refuse() {
    let env = Setup::new(Provider::Generic).start();
    let b = env.base().to_string();
    // device_code with the code grant's endpoints only: no device endpoint.
    let text = format!(
        "[provider]\nclient_id = \"{TEST_CLIENT_ID}\"\nallow_http_loopback = true\n\
         token_endpoint = \"{b}/token\"\nauthorization_endpoint = \"{b}/authorize\"\n\
         [storage]\npath = \"{}\"\n",
        env.store.display()
    );
    env.write_config(&text);
    let out = env.run(&["pair", "--grant", "authorization_code", "--paste"]);
    out.code(exit::CONFIG);
    out.stderr_has("provider.device_authorization_endpoint");
    out.stderr_has("the file's grant = \"device_code\"");
    assert!(env.code_exchanges().is_empty() && env.store_json().is_none());
    env.run(&["token"])
        .code(exit::CONFIG)
        .stderr_has("provider.device_authorization_endpoint");
}

/// A Google-style client file for the test server: `auth_uri` and `token_uri` at `server`.
fn client_file(env: &Env, server: &str) -> PathBuf {
    let path = env.dir().join("client_secret_test.json");
    let file = serde_json::json!({ "installed": {
        "client_id": TEST_CLIENT_ID,
        "project_id": "devauth-test",
        "auth_uri": format!("{server}/authorize"),
        "token_uri": format!("{server}/token"),
        "client_secret": TEST_CLIENT_SECRET,
        "redirect_uris": ["http://localhost"],
    }});
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// `issuer` + `client_json_file` (+ `grant`), nothing else in `[provider]` but the browser.
fn issuer_and_file(env: &Env, file: &std::path::Path, grant: &str) -> String {
    let browser = fake_browser(env.dir());
    format!(
        "[provider]\ngrant = \"{grant}\"\nallow_http_loopback = true\nissuer = \"{}\"\n\
         client_json_file = \"{}\"\nbrowser_command = \"{}\"\n[storage]\npath = \"{}\"\n",
        env.base(),
        file.display(),
        browser.display(),
        env.store.display()
    )
}

/// The second report: issuer with a client file whose endpoints are on the issuer's
/// server exited 6 blaming `provider.issuer`.
#[test]
fn issuer_with_a_client_json_file_signs_in_and_token_works() {
    let env = Setup::new(Provider::Discovery).start();
    let file = client_file(&env, env.base());
    // Loads with either person grant (device_code: status says not paired, not exit 6).
    env.write_config(&issuer_and_file(&env, &file, "device_code"));
    env.run(&["status"]).code(exit::NOT_PAIRED);

    env.write_config(&issuer_and_file(&env, &file, "authorization_code"));
    let running = env.cmd(&["pair", "--json"]).spawn();
    let url = launched_url(&env);
    // Discovery's authorization endpoint, with the file's client id.
    assert!(
        url.starts_with(&format!("{}/authorize?", env.base())),
        "{url}"
    );
    assert!(url.contains(TEST_CLIENT_ID), "{url}");
    env.server()
        .sign_in(&url, true)
        .expect("the redirect reaches devauth");
    running.wait().code(exit::OK);
    let exchanges = env.code_exchanges();
    assert_eq!(
        exchanges[0].form_value("client_secret"),
        Some(TEST_CLIENT_SECRET),
        "the file's secret is sent"
    );
    assert!(!env.token().is_empty());
}

/// A client file for another server than the issuer's: refused before signing in, naming the
/// file and the field (exit 6), nothing launched or stored.
#[test]
fn a_client_file_whose_token_uri_disagrees_with_discovery_names_the_file_and_field() {
    let env = Setup::new(Provider::Discovery).start();
    // Loopback, another port: another server (allowed by allow_http_loopback).
    let file = client_file(&env, "http://127.0.0.1:9");
    env.write_config(&issuer_and_file(&env, &file, "authorization_code"));
    let out = env.run(&["pair"]);
    out.code(exit::CONFIG);
    out.stderr_has("provider.client_json_file");
    out.stderr_has(&file.display().to_string());
    out.stderr_has("`installed.token_uri`");
    out.stderr_has("http://127.0.0.1:9/token");
    out.stderr_has(&format!("{}/token", env.base()));
    assert!(
        !env.dir().join("url.txt").exists(),
        "no browser was launched"
    );
    assert!(env.store_json().is_none());
}
