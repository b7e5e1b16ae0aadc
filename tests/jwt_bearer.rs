//! The service-account profile end to end: `[provider] grant = "jwt-bearer"` against the test
//! server, which verifies the RS256 signature with the public half of the repository's
//! test-only key (tests/fixtures/README.md).

mod common;

use common::agent::*;
use devauth_testserver::{Behavior, Endpoint, JwtBearer, TestServer, jwt_parts};
use std::path::PathBuf;
use std::process::Output;

const PUBLIC: &[u8] = include_bytes!("fixtures/test-only-jwt-public-key.rsapub.der");
const SA_JSON: &str = include_str!("fixtures/test-only-service-account.json");
const KEY_PEM: &str = include_str!("fixtures/test-only-jwt-key.pem");
const EMAIL: &str = "devauth-test@devauth-test-only.iam.gserviceaccount.com";

struct Sa {
    srv: TestServer,
    dir: tempfile::TempDir,
    config: PathBuf,
    token_file: PathBuf,
    key: PathBuf,
}

fn behavior(issuer: &str, lifetime: u64) -> Behavior {
    Behavior {
        jwt_bearer: Some(JwtBearer::new(PUBLIC.to_vec(), issuer)),
        token_lifetime: Some(lifetime),
        ..Behavior::default()
    }
}

/// A service-account config; `provider` is the key-specific part of `[provider]`.
fn setup(b: Behavior, provider: &str) -> Sa {
    let srv = TestServer::start(b).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.json");
    std::fs::write(&sa, SA_JSON).unwrap();
    set_mode(&sa, 0o600);
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, KEY_PEM).unwrap();
    set_mode(&pem, 0o600);
    let token_file = dir.path().join("run/token");
    let config = dir.path().join("devauth.toml");
    let base = srv.base_url();
    std::fs::write(
        &config,
        format!(
            "[provider]\ngrant = \"jwt-bearer\"\nallow_http_loopback = true\n\
             token_endpoint = \"{base}/token\"\nuserinfo_endpoint = \"{base}/userinfo\"\n\
             {provider}\n\
             [storage]\npath = \"{store}\"\n[display]\nbackend = \"none\"\n\
             [agent]\ntoken_file = \"{tf}\"\nsocket = \"{sock}\"\n",
            store = dir.path().join("state/tokens.json").display(),
            tf = token_file.display(),
            sock = dir.path().join("run/devauth.sock").display(),
        ),
    )
    .unwrap();
    Sa {
        srv,
        config,
        token_file,
        key: sa,
        dir,
    }
}

const GENERIC_SA: &str = "service_account_file = \"sa.json\"\nscopes = [\"api\", \"read\"]";

impl Sa {
    fn devauth(&self, args: &[&str]) -> Output {
        command()
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn assertions(&self) -> Vec<devauth_testserver::JwtParts> {
        self.srv
            .requests_to(Endpoint::Token)
            .iter()
            .filter_map(|r| r.form_value("assertion").and_then(jwt_parts))
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn token_signs_an_assertion_caches_the_answer_and_status_shows_it() {
    let sa = setup(behavior(EMAIL, 3600), GENERIC_SA);
    let st = sa.devauth(&["status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    assert!(text(&st.stdout).contains("no access token cached yet"));
    let out = sa.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(sa.srv.live_access_tokens().contains(&token));
    // Cached: a second call does not sign again.
    let again = sa.devauth(&["token"]);
    assert_eq!(text(&again.stdout).trim(), token);
    assert_eq!(sa.srv.stats().jwt_grants, 1);
    // The assertion: RFC 7523 claims, Google's lifetime, the key id, scopes as a form
    // parameter (generic preset), no client authentication.
    let req = sa.srv.requests_to(Endpoint::Token).pop().unwrap();
    assert_eq!(req.form_value("scope"), Some("api read"));
    assert_eq!(req.form_value("client_id"), None);
    let a = &sa.assertions()[0];
    assert_eq!(a.header["alg"], "RS256");
    assert_eq!(a.header["kid"], "0123456789abcdef-test-only");
    assert_eq!(a.claims["iss"], EMAIL);
    assert_eq!(a.claims["aud"], sa.srv.url("/token"));
    let (iat, exp) = (
        a.claims["iat"].as_i64().unwrap(),
        a.claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!(a.claims["jti"].as_str().unwrap().len() >= 16);
    assert!(a.claims.get("sub").is_none() && a.claims.get("scope").is_none());
    // status now shows the cached token as the service account's.
    let st = sa.devauth(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["paired"], true);
    assert_eq!(v["account"], EMAIL);
    assert_eq!(v["refresh_token"], false);
    // `api` works the same way.
    let out = sa.devauth(&["api", &sa.srv.url("/userinfo")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // No pairing for a service account.
    assert_eq!(sa.devauth(&["pair"]).status.code(), Some(6));
}

#[test]
fn google_style_puts_the_scopes_in_the_assertion() {
    let sa = setup(
        behavior(EMAIL, 3600),
        "preset = \"google\"\nservice_account_file = \"sa.json\"\n\
         scopes = [\"https://www.googleapis.com/auth/cloud-platform\"]\n\
         jwt_subject = \"admin@example.com\"",
    );
    let out = sa.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let req = sa.srv.requests_to(Endpoint::Token).pop().unwrap();
    assert_eq!(req.form_value("scope"), None);
    let a = &sa.assertions()[0];
    assert_eq!(
        a.claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(a.claims["sub"], "admin@example.com");
}

#[test]
fn a_pem_key_with_an_issuer_works_and_sub_defaults_to_the_issuer() {
    let sa = setup(
        behavior("device-42", 3600),
        "private_key_file = \"key.pem\"\njwt_issuer = \"device-42\"",
    );
    let out = sa.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let a = &sa.assertions()[0];
    assert_eq!(a.claims["iss"], "device-42");
    assert_eq!(a.claims["sub"], "device-42");
    assert!(a.header.get("kid").is_none());
}

#[test]
fn a_refused_assertion_exits_8_and_never_shows_the_key() {
    let sa = setup(behavior("someone-else@example.iam", 3600), GENERIC_SA);
    let out = sa.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("assertion was refused"), "{err}");
    assert!(!err.contains("PRIVATE") && !err.contains("MII"), "{err}");
    assert_eq!(sa.srv.stats().jwt_rejections, 1);
}

#[test]
fn a_key_file_readable_by_others_is_warned_about() {
    let sa = setup(behavior(EMAIL, 3600), GENERIC_SA);
    let quiet = sa.devauth(&["token"]);
    assert!(!text(&quiet.stderr).contains("readable by others"));
    set_mode(&sa.key, 0o644);
    let out = sa.devauth(&["token"]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("readable by others") && err.contains("644"),
        "{err}"
    );
    assert!(err.contains(&sa.key.display().to_string()));
}

#[test]
fn the_agent_keeps_a_service_account_token_fresh_without_pairing() {
    let sa = setup(behavior(EMAIL, 2), GENERIC_SA);
    let agent = Agent::start(command().arg("-c").arg(&sa.config).args(["run", "--json"]));
    agent.wait_count("refreshed", 4);
    let names = agent.names();
    assert!(
        names.iter().all(|n| n == "refreshed"),
        "{names:?}\n{}",
        agent.stderr()
    );
    let s = sa.srv.stats();
    assert!(s.jwt_grants >= 4 && s.jwt_rejections == 0, "{s:?}");
    let token = std::fs::read_to_string(&sa.token_file).unwrap();
    assert!(sa.srv.live_access_tokens().contains(&token));
    // Each assertion had its own jti (the server refuses replays).
    let jtis: std::collections::HashSet<String> = sa
        .assertions()
        .iter()
        .map(|a| a.claims["jti"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(jtis.len(), sa.assertions().len());
    let _ = &sa.dir;
}
