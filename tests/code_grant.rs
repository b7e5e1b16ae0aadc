//! `grant = "authorization_code"`: the browser sign-in end to end — the real binary's loopback
//! listener, the test server's authorization endpoint and its test browser, PKCE at the token
//! endpoint, and the paired tokens used by `token`, `status` and `unpair`.

mod common;

use common::browser::{fake_browser, launched_url};
use common::*;
use std::time::Duration;

/// exit code of a sign-in whose redirect never came (README's table).
const LOGIN_TIMEOUT: i32 = 13;

/// A generic-preset environment with the code grant, its browser command the fake one.
fn code_env(provider: Provider, extra: &str) -> Env {
    let env = Setup::new(provider).start();
    let browser = fake_browser(env.dir());
    let b = env.base().to_string();
    let text = env.config_text(
        TEST_CLIENT_ID,
        &format!(
            "grant = \"authorization_code\"\nauthorization_endpoint = \"{b}/authorize\"\n\
             browser_command = \"{}\"\n{extra}\n",
            browser.display()
        ),
        "",
    );
    env.write_config(&text);
    env
}

#[test]
fn browser_sign_in_pairs_then_token_status_and_unpair_work() {
    let env = code_env(Provider::Generic, "");
    let running = env.cmd(&["pair", "--json"]).spawn();
    let url = launched_url(&env);
    assert!(url.contains("response_type=code"), "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let page = env
        .server()
        .sign_in(&url, true)
        .expect("the redirect reaches devauth");
    assert_eq!(page.status, 200, "{}", page.body);
    let out = running.wait();
    out.code(exit::OK);
    out.events_from_to("authorize", "paired");
    let authorize = &out.events_named("authorize")[0];
    assert_eq!(authorize["url"], Value::String(url.clone()));
    assert_eq!(authorize["expires_in"], 300);

    // The exchange carried the verifier and the same redirect_uri.
    let exchanges = env.code_exchanges();
    let exchange = exchanges.first().expect("a code exchange");
    let verifier = exchange.form_value("code_verifier").unwrap_or_default();
    assert!((43..=128).contains(&verifier.len()), "verifier length");
    assert!(
        !url.contains(verifier),
        "the verifier never goes in the URL"
    );

    assert!(!env.token().is_empty());
    env.run(&["status", "--json"]).code(exit::OK);
    env.run(&["unpair"]).code(exit::OK);
    env.run(&["token"]).code(exit::NOT_PAIRED);
}

#[test]
fn replayed_redirect_after_success_reaches_nothing() {
    let env = code_env(Provider::Generic, "");
    let running = env.cmd(&["pair"]).spawn();
    let url = launched_url(&env);
    env.server().sign_in(&url, true).expect("sign in");
    running.wait().code(exit::OK);
    let redirect = env.server().last_redirect().expect("a redirect");
    assert!(
        devauth_testserver::visit(&redirect).is_err(),
        "the listener closed after the first valid redirect"
    );
}

#[test]
fn access_denied_exits_5_and_stores_nothing() {
    let env = code_env(Provider::Generic, "");
    let running = env.cmd(&["pair", "--json"]).spawn();
    let url = launched_url(&env);
    let page = env
        .server()
        .sign_in(&url, false)
        .expect("the redirect reaches devauth");
    assert_eq!(page.status, 200);
    let out = running.wait();
    out.code(exit::DENIED);
    assert_eq!(out.event_names().last().map(String::as_str), Some("denied"));
    assert!(env.store_json().is_none(), "nothing stored");
}

#[test]
fn a_foreign_redirect_is_refused_and_the_real_one_still_pairs() {
    let env = code_env(Provider::Generic, "");
    let running = env.cmd(&["pair"]).spawn();
    let url = launched_url(&env);
    let redirect = env.server().authorization_redirect(&url, true).unwrap();
    let (base, _) = redirect.split_once('?').unwrap();
    // Wrong and missing state: 400, nothing stored, still listening.
    let wrong = devauth_testserver::visit(&format!("{base}?code=forged&state=not-ours")).unwrap();
    assert_eq!(wrong.status, 400);
    let missing = devauth_testserver::visit(&format!("{base}?code=forged")).unwrap();
    assert_eq!(missing.status, 400);
    let other_path = base.rsplit_once('/').map(|(b, _)| b).unwrap().to_string();
    let favicon = devauth_testserver::visit(&format!("{other_path}/favicon.ico")).unwrap();
    assert_eq!(favicon.status, 404);
    assert!(env.store_json().is_none(), "nothing stored");
    let page = devauth_testserver::visit(&redirect).unwrap();
    assert_eq!(page.status, 200);
    running.wait().code(exit::OK);
    assert!(env.store_json().is_some());
}

#[test]
fn no_redirect_within_the_login_timeout_exits_13() {
    let env = code_env(Provider::Generic, "login_timeout_secs = 1");
    let out = env.run(&["pair"]);
    out.code(LOGIN_TIMEOUT);
    out.stderr_has("sign-in timed out");
    assert!(env.store_json().is_none());
}

/// Runs `pair` with the fake browser and the test browser's approval; returns the output.
fn sign_in_pair(env: &Env) -> Output {
    let running = env.cmd(&["pair", "--json"]).spawn();
    let url = launched_url(env);
    let _ = env.server().sign_in(&url, true);
    running.wait()
}

#[test]
fn google_profile_asks_for_offline_access_and_keeps_the_refresh_token() {
    let env = code_env(Provider::Google, "");
    env.server().set_behavior(|b| b.token_lifetime = Some(2));
    let out = sign_in_pair(&env);
    out.code(exit::OK);
    let url = launched_url(&env);
    assert!(url.contains("access_type=offline"), "{url}");
    assert!(url.contains("prompt=consent"), "{url}");
    assert!(
        env.stored("refresh_token").is_some(),
        "refresh token stored"
    );
    // A refresh works on the result: with a 2 s token the refresh margin is 1 s.
    let first = env.stored("access_token").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let renewed = env.token();
    assert_ne!(renewed, first);
    assert_eq!(env.refreshes().len(), 1);
}

#[test]
fn google_answer_without_a_refresh_token_is_refused_and_nothing_stored() {
    let env = code_env(Provider::Google, "");
    env.server().set_behavior(|b| b.issue_refresh_token = false);
    let out = sign_in_pair(&env);
    out.code(exit::PROVIDER);
    out.stderr_has("no refresh token");
    out.stderr_has("prompt=consent");
    assert!(env.store_json().is_none(), "nothing stored");
}

#[test]
fn github_profile_accepts_tokens_without_a_refresh_token() {
    let env = code_env(Provider::GitHub, "");
    sign_in_pair(&env).code(exit::OK);
    assert!(env.stored("refresh_token").is_none());
    assert!(!env.token().is_empty());
    env.run(&["api", &format!("{}/userinfo", env.base())])
        .code(exit::OK);
}

/// `devauth ARGS` with piped stdin and stdout, read as it comes (the harness's commands have
/// no stdin). Returns the child and a channel of stdout lines.
fn spawn_piped(
    env: &Env,
    args: &[&str],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    use std::io::{BufRead, Read};
    let (prog, pre) = program();
    let mut child = std::process::Command::new(prog)
        .args(pre)
        .args(args)
        .current_dir(env.dir())
        .env("DEVAUTH_CONFIG", &env.config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start devauth");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (child, rx, err)
}

/// The `authorize` event's URL from a `--json` stdout.
fn authorize_event_url(lines: &std::sync::mpsc::Receiver<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(scaled(Duration::from_secs(10)))
            .expect("an authorize event");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "authorize" {
            return v["url"].as_str().unwrap().to_string();
        }
    }
}

#[test]
fn paste_of_a_malformed_address_gets_a_second_chance_then_pairs() {
    use std::io::Write;
    let env = code_env(Provider::Generic, "");
    let (mut child, lines, err) = spawn_piped(&env, &["pair", "--paste", "--json"]);
    let url = authorize_event_url(&lines);
    // The person signs in on another machine; its browser cannot reach the redirect.
    let redirect = env.server().authorization_redirect(&url, true).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "http://127.0.0.1:1/cb").unwrap();
    writeln!(stdin, "{redirect}").unwrap();
    let status = child.wait().unwrap();
    let stderr = err.join().unwrap();
    assert_eq!(status.code(), Some(exit::OK), "{stderr}");
    assert!(stderr.contains("that paste cannot be used"), "{stderr}");
    assert!(stderr.contains("try again"), "{stderr}");
    assert!(!env.browser_ran(), "--paste launches nothing");
    assert!(env.store_json().is_some());
}

#[test]
fn paste_with_a_foreign_state_is_refused_and_stdin_end_stops() {
    use std::io::Write;
    let env = code_env(Provider::Generic, "");
    let (mut child, lines, err) = spawn_piped(&env, &["pair", "--paste", "--json"]);
    let url = authorize_event_url(&lines);
    let redirect = env.server().authorization_redirect(&url, true).unwrap();
    let (base, _) = redirect.split_once('?').unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{base}?code=x&state=someone-elses").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let stderr = err.join().unwrap();
    assert_eq!(status.code(), Some(exit::USAGE), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
    assert!(env.store_json().is_none());
}

#[test]
fn no_browser_launches_nothing_and_the_device_ui_opens_the_url() {
    let env = code_env(Provider::Generic, "");
    let (mut child, lines, err) = spawn_piped(&env, &["pair", "--no-browser", "--json"]);
    let url = authorize_event_url(&lines);
    let page = env
        .server()
        .sign_in(&url, true)
        .expect("the listener answers");
    assert_eq!(page.status, 200);
    let status = child.wait().unwrap();
    let stderr = err.join().unwrap();
    assert_eq!(status.code(), Some(exit::OK), "{stderr}");
    assert!(!env.browser_ran(), "--no-browser launches nothing");
    // The terminal screen shows the URL.
    assert!(squash(&stderr).contains(&squash(&url)[..40]), "{stderr}");
}

#[test]
fn pair_grant_overrides_the_config_and_checks_its_keys() {
    // The file says device_code; --grant authorization_code on the github preset signs in.
    let env = Setup::new(Provider::GitHub).start();
    let out = env.run(&["pair", "--grant", "authorization_code", "--paste"]);
    // No stdin: the paste ends at once, after the URL was printed for github's endpoint.
    out.code(exit::USAGE);
    out.stderr_has("https://github.com/login/oauth/authorize?response_type=code");
    let out = env.run(&["pair", "--grant", "implicit"]);
    out.code(exit::CONFIG);
    out.stderr_has("RFC 9700");
}

trait BrowserRan {
    fn browser_ran(&self) -> bool;
}

impl BrowserRan for Env {
    fn browser_ran(&self) -> bool {
        self.dir().join("url.txt").exists()
    }
}
