//! Per-device client credentials end to end: `devauth keygen` makes the key on the device and
//! prints its public JWK, the test server registers it (as a factory would), and every device
//! authorization, token and revocation request then authenticates with a `private_key_jwt`
//! assertion (RFC 7523 §2.2) the server verifies. ES256 from keygen, RS256 from a PEM file.

mod common;

use common::*;

const RSA_PEM: &str = include_str!("fixtures/test-only-jwt-key.pem");

/// A generic env whose config uses `private_key_jwt` with `keys/client.pem` (not made yet).
fn keyed(extra: &str) -> (Env, std::path::PathBuf) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .provider_toml(&format!(
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"keys/client.pem\"\n{extra}"
        ))
        .start();
    let key = env.dir().join("keys/client.pem");
    env.secret_key_file(&key);
    (env, key)
}

/// `devauth keygen`: the public JWK it printed.
fn keygen(env: &Env) -> Value {
    let out = env.run(&["keygen"]);
    out.code(exit::OK).stderr_has("register the public key");
    let jwk = out.json();
    for member in ["kty", "crv", "x", "y", "kid", "alg", "use"] {
        assert!(jwk.get(member).is_some(), "{member} missing from {jwk}");
    }
    assert!(jwk.get("d").is_none(), "never the private key: {jwk}");
    jwk
}

#[test]
fn keygen_makes_a_private_key_once_and_prints_its_public_jwk() {
    let (env, key) = keyed("");
    env.run(&["token"]).code(exit::NOT_PAIRED);
    env.run(&["keygen", "--public"])
        .code(exit::CONFIG)
        .stderr_has("devauth keygen");
    let jwk = keygen(&env);
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert_eq!(Env::mode(&key), 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    // A second keygen never replaces the key (the provider has its public half).
    env.run(&["keygen"])
        .code(exit::CONFIG)
        .stderr_has("already holds a key");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
    assert_eq!(env.run(&["keygen", "--public"]).code(exit::OK).json(), jwk);
}

#[test]
fn every_authorization_server_request_carries_the_devices_assertion() {
    let (env, _) = keyed("");
    let jwk = keygen(&env);
    env.server()
        .set_behavior(|b| b.client_keys = vec![jwk.clone()]);
    env.pair();
    let kid = jwk["kid"].as_str().unwrap();
    for r in env.server().requests() {
        if matches!(
            r.endpoint,
            Some(Endpoint::DeviceAuthorization | Endpoint::Token | Endpoint::Revocation)
        ) {
            let a = r.form_value("client_assertion").expect("an assertion");
            let header = a.split('.').next().unwrap();
            let header: Value =
                serde_json::from_slice(&devauth::net::wire::base64url_decode(header).unwrap())
                    .unwrap();
            assert_eq!(header["kid"], kid);
            assert!(r.form_value("client_secret").is_none());
        }
    }
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    let s = env.server().stats();
    // Device authorization, the poll(s), the two revocations.
    assert!(s.client_assertions >= 4, "{s:?}");
    assert_eq!(
        s.client_assertion_refusals,
        0,
        "{:?}",
        env.server().assertion_refusals()
    );
    assert!(env.server().live_refresh_tokens().is_empty());
}

#[test]
fn a_key_the_provider_does_not_know_is_refused() {
    let (env, _) = keyed("");
    keygen(&env);
    // Registered: some other device's key.
    let other = Setup::new(Provider::Generic)
        .provider_toml("client_auth = \"private_key_jwt\"\nclient_key_file = \"k.pem\"\n")
        .start();
    other.secret_key_file(&other.dir().join("k.pem"));
    let other_jwk = keygen(&other);
    env.server()
        .set_behavior(|b| b.client_keys = vec![other_jwk]);
    env.run(&["pair", "--json"])
        .code(exit::PROVIDER)
        .stdout_has("invalid_client");
    assert!(
        env.server()
            .assertion_refusals()
            .last()
            .unwrap()
            .contains("not signed by a key registered")
    );
}

#[test]
fn an_rsa_key_from_a_file_signs_rs256_with_the_endpoint_as_audience() {
    let (env, key) = keyed("client_assertion_audience = \"endpoint\"\nclient_key_id = \"rsa-1\"\n");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, RSA_PEM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let jwk = env.run(&["keygen", "--public"]).code(exit::OK).json();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["kid"].as_str()),
        (Some("RSA"), Some("rsa-1"))
    );
    assert_eq!(jwk["alg"], "RS256");
    env.server()
        .set_behavior(|b| b.client_keys = vec![jwk.clone()]);
    env.pair();
    let device = env
        .server()
        .requests_to(Endpoint::DeviceAuthorization)
        .pop()
        .unwrap();
    let a = device.form_value("client_assertion").unwrap();
    let claims: Value = serde_json::from_slice(
        &devauth::net::wire::base64url_decode(a.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], format!("{}/device/code", env.base()));
    assert_eq!(env.server().stats().client_assertion_refusals, 0);
}

#[test]
fn private_key_jwt_and_dpop_together() {
    let (env, _) = keyed("dpop = \"on\"\n");
    let jwk = keygen(&env);
    env.server().set_behavior(|b| {
        b.client_keys = vec![jwk.clone()];
        b.dpop = Some(DpopPolicy::default());
    });
    env.pair();
    assert_eq!(env.stored("token_type").as_deref(), Some("DPoP"));
    env.run(&["api", &format!("{}/userinfo", env.base())])
        .code(exit::OK);
    let s = env.server().stats();
    assert_eq!(
        (s.dpop_refusals, s.client_assertion_refusals),
        (0, 0),
        "{s:?}"
    );
}
