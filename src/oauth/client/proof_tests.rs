//! The client's DPoP proofs (RFC 9449) and `private_key_jwt` assertions (RFC 7523 §2.2), against
//! a scripted transport: what each request carries, the `use_dpop_nonce` retry, bound tokens.

use super::tests::{Scripted, json};
use super::*;
use crate::oauth::jws::{JwsSigner, SoftwareKey};
use crate::oauth::jwt::AssertionAudience;
use serde_json::Value;

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&wire::base64url_decode(part).unwrap()).unwrap()
}

fn with_nonce(
    status: u16,
    body: &str,
    nonce: &str,
) -> Result<Response, crate::net::transport::TransportError> {
    let mut r = json(status, body).unwrap();
    r.dpop_nonce = Some(nonce.into());
    Ok(r)
}

fn client(t: Scripted, dpop: bool, assertion: bool) -> OAuthClient<Scripted> {
    let key: Arc<dyn JwsSigner> = Arc::new(SoftwareKey::generate_es256().unwrap().0);
    OAuthClient {
        transport: t,
        endpoints: Endpoints {
            device_authorization: "https://as.example/device".into(),
            token: "https://as.example/token".into(),
            revocation: Some("https://as.example/revoke".into()),
            userinfo: Some("https://as.example/userinfo".into()),
            ..Endpoints::default()
        },
        identity: ClientIdentity {
            client_id: "tv-1".into(),
            client_secret: None,
            basic_auth: false,
            assertion: assertion.then(|| {
                Arc::new(ClientAssertion {
                    key: key.clone(),
                    client_id: "tv-1".into(),
                    key_id: "kid-1".into(),
                    audience: AssertionAudience::TokenEndpoint,
                })
            }),
        },
        scopes: vec!["openid".into()],
        extra_params: vec![],
        allow_http_loopback: false,
        dpop: dpop.then(|| {
            let k: Arc<dyn JwsSigner> = Arc::new(SoftwareKey::generate_es256().unwrap().0);
            Arc::new(Dpop::new(k).unwrap())
        }),
    }
}

const DPOP_TOKENS: &str =
    r#"{"access_token":"at-1","token_type":"DPoP","expires_in":60,"refresh_token":"rt-2"}"#;
const NONCE_PLEASE: &str = r#"{"error":"use_dpop_nonce","error_description":"nonce"}"#;

#[test]
fn a_refresh_carries_a_proof_for_the_token_endpoint() {
    let c = client(Scripted::new(vec![json(200, DPOP_TOKENS)]), true, false);
    let g = c.refresh(&Secret::new("rt-1")).unwrap();
    assert!(g.tokens.is_dpop());
    let sent = c.transport.sent.borrow();
    let proof = claims(sent[0].header_value("dpop").unwrap());
    assert_eq!(proof["htm"], "POST");
    assert_eq!(proof["htu"], "https://as.example/token");
    assert!(proof.get("ath").is_none() && proof.get("nonce").is_none());
}

#[test]
fn use_dpop_nonce_is_answered_once_with_the_new_nonce_which_is_then_kept() {
    let c = client(
        Scripted::new(vec![
            with_nonce(400, NONCE_PLEASE, "n-1"),
            json(200, DPOP_TOKENS),
            json(200, ""),
        ]),
        true,
        true,
    );
    let g = c.refresh(&Secret::new("rt-1")).unwrap();
    assert_eq!(g.tokens.access_token.expose(), "at-1");
    assert!(c.revoke(&Secret::new("rt-2"), "refresh_token").unwrap());
    let sent = c.transport.sent.borrow();
    assert_eq!(sent.len(), 3);
    let first = claims(sent[0].header_value("dpop").unwrap());
    let second = claims(sent[1].header_value("dpop").unwrap());
    let third = claims(sent[2].header_value("dpop").unwrap());
    assert!(first.get("nonce").is_none());
    assert_eq!(second["nonce"], "n-1");
    assert_ne!(first["jti"], second["jti"]);
    // The revocation goes straight out with the kept nonce.
    assert_eq!(third["nonce"], "n-1");
    assert_eq!(third["htu"], "https://as.example/revoke");
    // The retry has a new client assertion too (a jti is used once).
    let a1 = claims(sent[0].form_value("client_assertion").unwrap());
    let a2 = claims(sent[1].form_value("client_assertion").unwrap());
    assert_ne!(a1["jti"], a2["jti"]);
}

#[test]
fn a_second_nonce_demand_is_the_servers_answer_not_a_loop() {
    let c = client(
        Scripted::new(vec![
            with_nonce(400, NONCE_PLEASE, "n-1"),
            with_nonce(400, NONCE_PLEASE, "n-2"),
        ]),
        true,
        false,
    );
    let e = c.refresh(&Secret::new("rt-1")).unwrap_err();
    assert_eq!(e.oauth_error(), Some("use_dpop_nonce"));
    assert_eq!(c.transport.sent.borrow().len(), 2);
}

#[test]
fn polls_meet_the_nonce_demand_and_the_flow_sees_only_the_tokens() {
    let c = client(
        Scripted::new(vec![
            with_nonce(400, NONCE_PLEASE, "n-1"),
            json(200, DPOP_TOKENS),
        ]),
        true,
        false,
    );
    let (answer, _) = c.poll(&Secret::new("dc")).unwrap();
    assert!(matches!(answer, PollAnswer::Tokens(t) if t.is_dpop()));
}

#[test]
fn a_bound_token_nobody_asked_for_is_refused_and_no_proof_without_dpop() {
    let c = client(Scripted::new(vec![json(200, DPOP_TOKENS)]), false, false);
    let e = c.refresh(&Secret::new("rt-1")).unwrap_err();
    assert!(e.to_string().contains("DPoP-bound"), "{e}");
    assert!(c.transport.sent.borrow()[0].header_value("dpop").is_none());
}

#[test]
fn private_key_jwt_replaces_the_secret_on_every_authorization_server_request() {
    let code = r#"{"device_code":"dc","user_code":"AB-CD","verification_uri":"https://as.example/d","expires_in":600}"#;
    let c = client(
        Scripted::new(vec![json(200, code), json(200, "")]),
        false,
        true,
    );
    c.request_device_code().unwrap();
    c.revoke(&Secret::new("rt"), "refresh_token").unwrap();
    for r in c.transport.sent.borrow().iter() {
        assert_eq!(
            r.form_value("client_assertion_type"),
            Some(CLIENT_ASSERTION_TYPE)
        );
        assert_eq!(r.form_value("client_id"), Some("tv-1"));
        assert!(r.form_value("client_secret").is_none());
        let a = claims(r.form_value("client_assertion").unwrap());
        assert_eq!(a["iss"], "tv-1");
        assert_eq!(a["aud"], "https://as.example/token");
        // No proofs on the device authorization request; DPoP is off here anyway.
        assert!(r.header_value("dpop").is_none());
    }
}

#[test]
fn userinfo_with_a_bound_token_sends_dpop_and_the_token_hash_and_meets_a_nonce_challenge() {
    let mut challenge = json(401, r#"{"error":"use_dpop_nonce"}"#).unwrap();
    challenge.dpop_nonce = Some("rs-n".into());
    challenge.www_authenticate = Some("DPoP error=\"use_dpop_nonce\"".into());
    let c = client(
        Scripted::new(vec![
            Ok(challenge),
            json(200, r#"{"sub":"u","email":"u@x"}"#),
        ]),
        true,
        false,
    );
    let fields = c.userinfo(&Secret::new("at-1"), "DPoP").unwrap().unwrap();
    assert_eq!(wire::account_from_claims(&fields).as_deref(), Some("u@x"));
    let sent = c.transport.sent.borrow();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].header_value("authorization"), Some("DPoP at-1"));
    let proof = claims(sent[1].header_value("dpop").unwrap());
    assert_eq!(proof["htm"], "GET");
    assert_eq!(proof["nonce"], "rs-n");
    assert_eq!(
        proof["ath"],
        crate::oauth::dpop::ath(&Secret::new("at-1")).as_str()
    );
    // A Bearer token stays a Bearer token, without a proof.
    let c = client(
        Scripted::new(vec![json(200, r#"{"sub":"u"}"#)]),
        true,
        false,
    );
    c.userinfo(&Secret::new("at-2"), "Bearer").unwrap();
    let sent = c.transport.sent.borrow();
    assert_eq!(sent[0].header_value("authorization"), Some("Bearer at-2"));
    assert!(sent[0].header_value("dpop").is_none());
}

#[test]
fn discovery_says_whether_the_server_signs_es256_proofs() {
    for (algs, want) in [
        (
            r#""dpop_signing_alg_values_supported":["RS256","ES256"],"#,
            true,
        ),
        (r#""dpop_signing_alg_values_supported":["EdDSA"],"#, false),
        (r#""dpop_signing_alg_values_supported":"ES256","#, false),
        ("", false),
    ] {
        let doc = format!(
            r#"{{{algs}"issuer":"https://i","device_authorization_endpoint":"https://i/d","token_endpoint":"https://i/t"}}"#
        );
        let ep = discover(
            &Scripted::new(vec![json(200, &doc)]),
            "https://i",
            false,
            true,
        )
        .unwrap();
        assert_eq!(ep.dpop_es256, want, "{algs}");
    }
}
