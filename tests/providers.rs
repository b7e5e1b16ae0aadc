//! Provider presets against a server imitating each provider's quirks: Google, Microsoft Entra,
//! GitHub and generic OIDC discovery.

mod common;

use common::*;
use std::time::Duration;

/// Recorded requests to the device and token endpoints.
fn oauth_requests(env: &Env) -> Vec<Recorded> {
    env.server()
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Some(Endpoint::DeviceAuthorization) | Some(Endpoint::Token)
            )
        })
        .collect()
}

// --- Google -----------------------------------------------------------------------------------

#[test]
fn pair_google_verification_url_428_and_client_secret_in_form() {
    let env = Setup::new(Provider::Google).approve_after_polls(1).start();
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "pending", "paired"]);
    // `verification_url` (Google's spelling) is read; there is no complete URI.
    let code = &out.events()[0];
    assert_eq!(code["verification_uri"], format!("{}/device", env.base()));
    assert!(code["verification_uri_complete"].is_null(), "{code}");
    // authorization_pending came with HTTP 428 and was taken as pending.
    let stats = env.server().stats();
    assert_eq!(stats.pending_answers, 1);
    assert_eq!(stats.polls_early, 0);
    // The secret goes in the form, on the device request and on every poll.
    let reqs = oauth_requests(&env);
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(
            r.form_value("client_id"),
            Some(TEST_CLIENT_ID),
            "{}",
            r.path
        );
        assert_eq!(
            r.form_value("client_secret"),
            Some(TEST_CLIENT_SECRET),
            "{}",
            r.path
        );
        assert!(r.basic_auth.is_none());
    }
    assert_eq!(
        reqs[0].form_value("scope"),
        Some("openid email profile"),
        "Google's default scopes"
    );
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has(&format!("Paired as {EMAIL}"));
}

#[test]
fn pair_google_qr_carries_the_plain_url() {
    let env = Setup::new(Provider::Google).approve_after_polls(0).start();
    let out = env.run(&["pair"]);
    out.code(exit::OK);
    assert_eq!(
        decode_screen_qr(&out.stdout),
        format!("{}/device", env.base())
    );
}

#[test]
fn pair_google_client_auth_basic() {
    let env = Setup::new(Provider::Google)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .provider_toml("client_auth = \"basic\"")
        .start();
    env.pair();
    // A refresh and the revocations authenticate the same way.
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    std::thread::sleep(Duration::from_millis(1100));
    env.token();
    assert_eq!(env.server().stats().refreshes, 1);
    env.run(&["unpair"]).code(exit::OK);
    assert_eq!(env.server().stats().revocations, 2);
    let reqs: Vec<Recorded> = env
        .server()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint != Some(Endpoint::UserInfo))
        .collect();
    assert_eq!(reqs.len(), 5, "device, poll, refresh, 2 revocations");
    for r in &reqs {
        assert_eq!(
            r.basic_auth,
            Some((TEST_CLIENT_ID.to_string(), TEST_CLIENT_SECRET.to_string())),
            "{}",
            r.path
        );
        assert_eq!(r.form_value("client_secret"), None, "{}", r.path);
        // client_id stays in the body (RFC 8628 §3.4).
        assert_eq!(
            r.form_value("client_id"),
            Some(TEST_CLIENT_ID),
            "{}",
            r.path
        );
    }
}

#[test]
fn pair_google_wrong_secret_is_fatal() {
    let env = Setup::new(Provider::Google)
        .behavior(|b| b.client_secret = Some("the-real-secret-differs".into()))
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has("HTTP 401")
        .stderr_has("invalid_client");
}

// --- Microsoft --------------------------------------------------------------------------------

#[test]
fn pair_microsoft_tenant_paths_offline_access_and_message() {
    let env = Setup::new(Provider::Microsoft)
        .approve_after_polls(1)
        .start();
    // Without --json: the terminal screen goes to stdout.
    let out = env.run(&["pair"]);
    out.code(exit::OK);
    let user_code = env.server().latest_user_code().unwrap();
    let message = MICROSOFT_MESSAGE
        .replace("{verification_uri}", &format!("{}/device", env.base()))
        .replace("{user_code}", &user_code);
    assert!(
        squash(&out.stdout).contains(&squash(&message)),
        "the provider's message is not on the screen\n{}",
        out.show()
    );
    assert!(out.stdout.contains(&user_code), "{}", out.show());
    assert!(!out.stdout.contains('\x1b'), "escape codes on a pipe");

    let device = env.server().requests_to(Endpoint::DeviceAuthorization);
    let token = env.server().requests_to(Endpoint::Token);
    assert_eq!(device.len(), 1);
    assert_eq!(token.len(), 2);
    assert_eq!(device[0].path, "/contoso/oauth2/v2.0/devicecode");
    for t in &token {
        assert_eq!(t.path, "/contoso/oauth2/v2.0/token");
        assert_eq!(t.tenant.as_deref(), Some("contoso"));
    }
    let scope = device[0]
        .form_value("scope")
        .unwrap_or_default()
        .to_string();
    assert!(
        scope.split(' ').any(|s| s == "offline_access"),
        "scope {scope:?}"
    );
    // offline_access got us a refresh token.
    let status = env.run(&["status", "--json"]).code(exit::OK).json();
    assert_eq!(status["paired"], true);
    assert_eq!(status["refresh_token"], true, "{status}");
    assert_eq!(
        status["token_endpoint"],
        format!("{}/contoso/oauth2/v2.0/token", env.base())
    );
    // Entra has no revocation endpoint: unpair deletes locally and says so.
    let unpair = env.run(&["unpair"]);
    unpair.code(exit::OK).stdout_has("not revoked");
    assert!(!env.store.exists());
    assert_eq!(env.server().stats().revocations, 0);
}

#[test]
fn pair_microsoft_explicit_scopes_still_get_offline_access() {
    let env = Setup::new(Provider::Microsoft)
        .approve_after_polls(0)
        .provider_toml("scopes = [\"User.Read\"]")
        .start();
    let out = env.pair();
    let device = env.server().requests_to(Endpoint::DeviceAuthorization);
    assert_eq!(
        device[0].form_value("scope"),
        Some("User.Read offline_access")
    );
    let paired = out.events_named("paired").remove(0);
    assert_eq!(
        paired["scopes"],
        serde_json::json!(["User.Read", "offline_access"])
    );
    assert!(env.stored("refresh_token").is_some());
}

#[test]
fn pair_microsoft_authorization_declined_exits_5() {
    let env = Setup::new(Provider::Microsoft)
        .behavior(|b| b.auto_deny = true)
        .approve_after_polls(0)
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::DENIED);
    assert_eq!(out.event_names(), ["code", "denied"]);
    // The message travels in the code event for a device UI.
    let code = &out.events()[0];
    assert!(
        code["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("To sign in")),
        "{code}"
    );
    assert!(env.store_json().is_none());
}

// --- GitHub -----------------------------------------------------------------------------------

#[test]
fn pair_github_accept_json_errors_with_200_and_form_answers() {
    let env = Setup::new(Provider::GitHub).approve_after_polls(1).start();
    // The first poll is answered form-encoded (what GitHub does without Accept: json).
    env.server().inject(
        Endpoint::Token,
        Fault::Raw {
            status: 200,
            content_type: "application/x-www-form-urlencoded; charset=utf-8".into(),
            body: "error=authorization_pending&error_description=the+user+has+not+yet+approved"
                .into(),
        },
    );
    let out = env.pair();
    assert_eq!(out.event_names(), ["code", "pending", "pending", "paired"]);
    let reqs = oauth_requests(&env);
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        let accept = r.header("accept").unwrap_or_default();
        assert!(
            accept.contains("application/json"),
            "{}: {accept:?}",
            r.path
        );
    }
    assert_eq!(reqs[0].path, "/login/device/code");
    assert_eq!(reqs[1].path, "/login/oauth/access_token");
    // GitHub's default: no scope parameter at all.
    assert_eq!(reqs[0].form_value("scope"), None);
    let stats = env.server().stats();
    assert_eq!(stats.pending_answers, 1, "the server's own pending (200)");
    assert_eq!(stats.polls_early, 0);
}

#[test]
fn pair_github_token_without_expiry_or_refresh_token() {
    let env = Setup::new(Provider::GitHub).approve_after_polls(0).start();
    let out = env.pair();
    let paired = out.events_named("paired").remove(0);
    assert!(paired["expires_in"].is_null(), "{paired}");
    // No id_token: the account comes from the userinfo endpoint, asked with the new token.
    assert_eq!(paired["account"], EMAIL);
    let userinfo = env.server().requests_to(Endpoint::UserInfo);
    assert_eq!(userinfo.len(), 1);
    let at = env.stored("access_token").unwrap();
    assert_eq!(
        userinfo[0].header("authorization"),
        Some(format!("Bearer {at}").as_str())
    );
    let status = env.run(&["status"]);
    status
        .code(exit::OK)
        .stdout_has("does not expire")
        .stdout_has("refresh token: none");
    let json = env.run(&["status", "--json"]).code(exit::OK).json();
    assert_eq!(json["access_token_expires"], false);
    assert_eq!(json["refresh_token"], false);
    let t1 = env.token();
    let t2 = env.token();
    assert_eq!(t1, t2);
    assert!(env.server().live_access_tokens().contains(&t1));
    let stats = env.server().stats();
    assert_eq!(stats.refreshes, 0);
    assert_eq!(stats.refresh_failures, 0);
    assert_eq!(env.refreshes().len(), 0);
    // No revocation endpoint: local delete, and it says so.
    env.run(&["unpair"])
        .code(exit::OK)
        .stdout_has("not revoked");
    assert!(!env.store.exists());
}

#[test]
fn pair_github_app_token_expiring_without_refresh_token() {
    // A GitHub App user token that expires, but no refresh token came with it.
    let env = Setup::new(Provider::GitHub)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .start();
    env.pair();
    let at = env.stored("access_token").unwrap();
    assert_eq!(env.stored("refresh_token"), None);
    // Within the margin but still valid: handed out as it is.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(env.token(), at);
    // Expired: nothing can renew it, pairing is needed again.
    std::thread::sleep(Duration::from_millis(1000));
    env.run(&["token"])
        .code(exit::PAIR_AGAIN)
        .stderr_has("pairing needed again")
        .stderr_has("no refresh token");
    assert!(env.refreshes().is_empty());
}

#[test]
fn pair_github_device_flow_disabled_is_fatal_with_the_description() {
    let env = Setup::new(Provider::GitHub).start();
    env.server().inject(
        Endpoint::DeviceAuthorization,
        Fault::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"error":"device_flow_disabled","error_description":"Device Flow must be explicitly enabled for this App"}"#.into(),
        },
    );
    env.run(&["pair", "--json"])
        .code(exit::PROVIDER)
        .stderr_has("/login/device/code")
        .stderr_has("device_flow_disabled")
        .stderr_has("must be explicitly enabled");
}

// --- Generic OIDC discovery -------------------------------------------------------------------

#[test]
fn pair_discovery_finds_the_endpoints() {
    let env = Setup::new(Provider::Discovery)
        .approve_after_polls(0)
        .behavior(|b| b.token_lifetime = Some(2))
        .start();
    env.pair();
    let reqs = env.server().requests();
    assert_eq!(reqs[0].path, "/.well-known/openid-configuration");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        env.stored("token_endpoint").as_deref(),
        Some(format!("{}/token", env.base()).as_str())
    );
    // `token` refreshes at the stored token endpoint without a discovery round trip.
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    std::thread::sleep(Duration::from_millis(1100));
    let before = env.server().requests_to(Endpoint::Discovery).len();
    let token = env.token();
    assert!(env.server().live_access_tokens().contains(&token));
    assert_eq!(env.server().stats().refreshes, 1);
    assert_eq!(env.server().requests_to(Endpoint::Discovery).len(), before);
    // unpair revokes at the discovered revocation endpoint.
    env.run(&["unpair"])
        .code(exit::OK)
        .stdout_has("tokens revoked at the provider");
    assert_eq!(env.server().stats().revocations, 2);
}

#[test]
fn pair_discovery_without_device_endpoint_is_a_clear_error() {
    let env = Setup::new(Provider::Discovery)
        .behavior(|b| b.omit_device_authorization_endpoint = true)
        .start();
    let out = env.run(&["pair", "--json"]);
    out.code(exit::PROVIDER)
        .stderr_has("/.well-known/openid-configuration")
        .stderr_has("device_authorization_endpoint");
    assert_eq!(out.event_names(), ["error"]);
    assert_eq!(env.server().stats().device_codes_issued, 0);
}
