//! The web-server sign-in in two processes: `devauth authorize-url` prints the URL and keeps
//! the request, the test server plays the browser and the provider (its redirect goes to the
//! device's own web UI, which nobody runs here: the test takes the address), and a second
//! process, `devauth exchange`, finishes it. Then the usual commands work on the result.

mod common;

use common::*;
use std::path::PathBuf;

/// The device's own web UI, registered with the test server for this client.
const REDIRECT: &str = "https://device.local/oauth/callback";
/// Exit code of `exchange` without a matching pending request (README's table).
const NO_PENDING: i32 = 14;

fn web_env(provider: Provider, extra: &str) -> Env {
    web_env_with(provider, extra, |_| {}, "")
}

fn web_env_with(
    provider: Provider,
    extra: &str,
    behavior: impl FnOnce(&mut Behavior),
    toml: &str,
) -> Env {
    let env = Setup::new(provider)
        .behavior(|b| {
            b.redirect_uris = vec![REDIRECT.to_string()];
            behavior(b);
        })
        .start();
    let endpoint = match provider {
        // Discovery names it.
        Provider::Discovery => String::new(),
        _ => format!("authorization_endpoint = \"{}/authorize\"\n", env.base()),
    };
    let text = env.config_text(
        TEST_CLIENT_ID,
        &format!("grant = \"authorization_code\"\n{endpoint}{extra}"),
        toml,
    );
    env.write_config(&text);
    env
}

fn pending_file(env: &Env) -> PathBuf {
    let mut p = env.store.clone().into_os_string();
    p.push(".pending");
    PathBuf::from(p)
}

/// `authorize-url --json` (plus `more` arguments): the `authorize` event.
#[track_caller]
fn authorize(env: &Env, more: &[&str]) -> Value {
    let mut args = vec!["authorize-url", "--redirect-uri", REDIRECT, "--json"];
    args.extend_from_slice(more);
    let out = env.run(&args);
    out.code(exit::OK);
    let events = out.events_named("authorize");
    assert_eq!(events.len(), 1, "{}", out.show());
    events[0].clone()
}

/// What the provider sends the browser to after the person approves (or refuses).
#[track_caller]
fn provider_redirect(env: &Env, event: &Value, approve: bool) -> String {
    let url = event["url"].as_str().expect("url");
    let to = env
        .server()
        .authorization_redirect(url, approve)
        .expect("the authorization endpoint answers");
    assert!(to.starts_with(REDIRECT), "{to}");
    to
}

#[test]
fn authorize_url_then_exchange_in_another_process_pairs_once() {
    let env = web_env(Provider::Generic, "");
    let event = authorize(&env, &[]);
    let url = event["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/authorize?", env.base())),
        "{url}"
    );
    assert!(url.contains("redirect_uri=https%3A%2F%2Fdevice.local%2Foauth%2Fcallback"));
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert_eq!(event["expires_in"], 300);
    let state = event["state"].as_str().unwrap();
    assert!(url.contains(&format!("state={state}")), "{url}");
    // The request waits in a 0600 file beside the token file; the verifier is not in the URL.
    let pending = pending_file(&env);
    assert_eq!(Env::mode(&pending) & 0o777, 0o600);
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&pending).unwrap()).unwrap();
    let verifier = kept["pending"][0]["code_verifier"].as_str().unwrap();
    assert!(!url.contains(verifier));

    let redirect = provider_redirect(&env, &event, true);
    let out = env.run(&["exchange", "--redirect-url", &redirect, "--json"]);
    out.code(exit::OK);
    assert_eq!(out.event_names(), ["paired"], "{}", out.show());
    // The exchange carried this request's verifier and redirect URI.
    let exchanges = env.code_exchanges();
    let exchange = exchanges.first().expect("a code exchange");
    assert_eq!(exchange.form_value("code_verifier"), Some(verifier));
    assert_eq!(exchange.form_value("redirect_uri"), Some(REDIRECT));
    assert!(!pending.exists(), "the request is used up");

    assert!(!env.token().is_empty());
    env.run(&["status"]).code(exit::OK);
    // The same answer again finds nothing: a request, like its code, works once.
    let again = env.run(&["exchange", "--redirect-url", &redirect]);
    again.code(NO_PENDING);
    again.stderr_has("no sign-in is pending");
    env.run(&["unpair"]).code(exit::OK);
    env.run(&["token"]).code(exit::NOT_PAIRED);
}

#[test]
fn an_expired_request_is_refused_with_what_to_do() {
    let env = web_env(Provider::Generic, "");
    let event = authorize(&env, &[]);
    let redirect = provider_redirect(&env, &event, true);
    // Age the request as time would (the test cannot wait out login_timeout_secs).
    let pending = pending_file(&env);
    let mut kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&pending).unwrap()).unwrap();
    let created = kept["pending"][0]["created"].as_i64().unwrap();
    kept["pending"][0]["expires"] = Value::from(created - 60);
    std::fs::write(&pending, kept.to_string()).unwrap();

    let out = env.run(&["exchange", "--redirect-url", &redirect]);
    out.code(NO_PENDING);
    out.stderr_has("expired")
        .stderr_has("devauth authorize-url");
    assert!(env.store_json().is_none(), "nothing stored");
    assert!(
        env.code_exchanges().is_empty(),
        "an expired request never reaches the provider"
    );
}

#[test]
fn named_requests_wait_side_by_side_and_a_code_comes_on_stdin() {
    let env = web_env(Provider::Generic, "");
    let first = authorize(&env, &["--state", "session-aaaaaaaaaaaaaaaaaaaa"]);
    let second = authorize(&env, &["--state", "session-bbbbbbbbbbbbbbbbbbbb"]);
    assert_eq!(first["state"], "session-aaaaaaaaaaaaaaaaaaaa");
    let redirect = provider_redirect(&env, &first, true);
    let code = redirect
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("a code")
        .to_string();
    // A code without its state is ambiguous with two requests waiting.
    env.cmd(&["exchange", "--code", "-"])
        .stdin(&format!("{code}\n"))
        .run()
        .code(NO_PENDING)
        .stderr_has("--state");
    // That failed lookup used nothing up; with its state the code finishes the first request.
    env.cmd(&[
        "exchange",
        "--code",
        "-",
        "--state",
        "session-aaaaaaaaaaaaaaaaaaaa",
    ])
    .stdin(&format!("{code}\n"))
    .run()
    .code(exit::OK);
    // The second still waits.
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(pending_file(&env)).unwrap()).unwrap();
    assert_eq!(kept["pending"].as_array().unwrap().len(), 1);
    assert_eq!(kept["pending"][0]["state"], second["state"]);
}

#[test]
fn a_forged_state_a_refusal_and_a_wrong_verifier_store_nothing() {
    let env = web_env(Provider::Generic, "");
    let event = authorize(&env, &[]);
    let redirect = provider_redirect(&env, &event, true);
    let (base, _) = redirect.split_once('?').unwrap();
    let forged = env.run(&[
        "exchange",
        "--redirect-url",
        &format!("{base}?code=stolen&state=forged-state-0123456789"),
    ]);
    forged.code(NO_PENDING);
    forged.stderr_has("no pending sign-in has this state");
    env.run(&["exchange", "--redirect-url", "not a url"])
        .code(exit::USAGE)
        .stderr_has("--redirect-url");

    // The person refuses: exit 5, and the request is gone.
    let refused = provider_redirect(&env, &authorize(&env, &[]), false);
    let out = env.run(&["exchange", "--redirect-url", &refused, "--json"]);
    out.code(exit::DENIED);
    assert_eq!(out.event_names(), ["denied"]);
    assert!(!pending_file(&env).exists());

    // A verifier that is not the request's: the provider refuses the code (PKCE), exit 8.
    let event = authorize(&env, &[]);
    let redirect = provider_redirect(&env, &event, true);
    let pending = pending_file(&env);
    let mut kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&pending).unwrap()).unwrap();
    kept["pending"][0]["code_verifier"] = Value::from("x".repeat(43));
    std::fs::write(&pending, kept.to_string()).unwrap();
    let out = env.run(&["exchange", "--redirect-url", &redirect]);
    out.code(exit::PROVIDER);
    out.stderr_has("invalid_grant");
    assert!(env.store_json().is_none(), "nothing stored");
}

#[test]
fn discovery_supplies_the_authorization_endpoint_without_a_device_endpoint() {
    let env = web_env(Provider::Discovery, "");
    env.server()
        .set_behavior(|b| b.omit_device_authorization_endpoint = true);
    let event = authorize(&env, &[]);
    assert!(
        event["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/authorize?", env.base())),
        "{event}"
    );
    let redirect = provider_redirect(&env, &event, true);
    env.run(&["exchange", "--redirect-url", &redirect])
        .code(exit::OK);
    assert!(!env.token().is_empty());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let env = web_env(Provider::Generic, "");
    for (args, says) in [
        (
            &["authorize-url", "--redirect-uri", "device.local/cb"][..],
            "--redirect-uri",
        ),
        (
            &[
                "authorize-url",
                "--redirect-uri",
                REDIRECT,
                "--state",
                "short",
            ],
            "--state",
        ),
        (
            &["exchange", "--code", "c", "--redirect-url", REDIRECT],
            "exchange",
        ),
    ] {
        env.run(args).code(exit::USAGE).stderr_has(says);
    }
    assert!(!pending_file(&env).exists());
}

#[test]
fn the_agent_keeps_a_web_sign_in_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("run/access_token");
    let env = web_env_with(
        Provider::Generic,
        "",
        |b| b.token_lifetime = Some(2),
        &format!(
            "[display]\nbackend = \"none\"\n[agent]\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
    );
    let redirect = provider_redirect(&env, &authorize(&env, &[]), true);
    env.run(&["exchange", "--redirect-url", &redirect])
        .code(exit::OK);
    let first = env.stored("access_token").expect("stored");
    let mut agent = common::agent::Agent::start(
        common::agent::command()
            .current_dir(env.dir())
            .env("DEVAUTH_CONFIG", &env.config)
            .args(["run", "--json"]),
    );
    agent.wait_count("refreshed", 1);
    agent.signal(libc::SIGTERM);
    agent.wait_exit();
    assert_eq!(agent.count("pairing_required"), 0, "{}", agent.stderr());
    let now = env.stored("access_token").expect("still stored");
    assert_ne!(now, first, "the agent refreshed the signed-in grant");
    let published = std::fs::read_to_string(&token_file).expect("published");
    assert_eq!(published.trim(), now);
}

/// A Google-style OAuth client file of `kind` ("installed" or "web") for the test server.
fn client_file(env: &Env, kind: &str, drop_field: Option<&str>) -> PathBuf {
    let b = env.base();
    let mut section = serde_json::json!({
        "client_id": TEST_CLIENT_ID,
        "project_id": "devauth-test",
        "auth_uri": format!("{b}/authorize"),
        "token_uri": format!("{b}/token"),
        "client_secret": TEST_CLIENT_SECRET,
        "redirect_uris": [REDIRECT],
    });
    if let Some(field) = drop_field {
        section.as_object_mut().unwrap().remove(field);
    }
    let path = env.dir().join(format!("client_secret_{kind}.json"));
    std::fs::write(&path, serde_json::json!({ kind: section }).to_string()).unwrap();
    path
}

#[test]
fn google_client_files_of_both_kinds_sign_in_and_broken_ones_are_named() {
    for kind in ["installed", "web"] {
        let env = Setup::new(Provider::Generic)
            .behavior(|b| b.redirect_uris = vec![REDIRECT.to_string()])
            .start();
        let file = client_file(&env, kind, None);
        // Only the file: no client_id, secret or endpoint written by hand.
        let text = format!(
            "[provider]\ngrant = \"authorization_code\"\nallow_http_loopback = true\n\
             client_json_file = \"{}\"\n[storage]\npath = \"{}\"\n",
            file.display(),
            env.store.display()
        );
        env.write_config(&text);
        let redirect = provider_redirect(&env, &authorize(&env, &[]), true);
        env.run(&["exchange", "--redirect-url", &redirect])
            .code(exit::OK);
        assert!(!env.token().is_empty(), "{kind}");
        let exchanges = env.code_exchanges();
        assert_eq!(
            exchanges[0].form_value("client_secret"),
            Some(TEST_CLIENT_SECRET),
            "{kind}: the file's secret is sent"
        );

        let broken = client_file(&env, kind, Some("token_uri"));
        env.write_config(&text.replace(&file.display().to_string(), &broken.display().to_string()));
        env.run(&["authorize-url", "--redirect-uri", REDIRECT])
            .code(exit::CONFIG)
            .stderr_has(&broken.display().to_string())
            .stderr_has(&format!("`{kind}.token_uri` is missing"));
    }
}
