//! The test server's DPoP (RFC 9449) and `private_key_jwt` (RFC 7523 §2.2) checks, with proofs
//! and assertions made by hand: every check refuses what it must, a good proof binds the
//! tokens, bound refresh tokens need the same key, the nonce dance, the resource side.

mod common;

use common::*;
use devauth_testserver::{Behavior, DpopPolicy, TEST_CLIENT_ID, TestServer, b64_encode};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64url(data: &[u8]) -> String {
    b64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jti() -> String {
    let mut b = [0u8; 12];
    SystemRandom::new().fill(&mut b).unwrap();
    b64url(&b)
}

/// An EC P-256 key that makes proofs and assertions.
struct Key {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Key {
    fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Key { pair, rng }
    }

    fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64url(&p[1..33]), "y": b64url(&p[33..65])})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    /// A proof for `method url`; `edit` changes the header or claims first.
    fn proof_with(
        &self,
        method: &str,
        url: &str,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()})
            .as_object()
            .unwrap()
            .clone();
        let mut claims = json!({"jti": jti(), "htm": method, "htu": url, "iat": now()})
            .as_object()
            .unwrap()
            .clone();
        edit(&mut header, &mut claims);
        self.sign(&Value::Object(header), &Value::Object(claims))
    }

    fn proof(&self, method: &str, url: &str) -> String {
        self.proof_with(method, url, |_, _| {})
    }
}

fn ath(token: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

fn server(policy: DpopPolicy) -> TestServer {
    TestServer::start(Behavior {
        enforce_interval: false,
        dpop: Some(policy),
        ..Behavior::generic()
    })
    .unwrap()
}

/// A poll for an approved code with this DPoP header.
fn poll_with(srv: &TestServer, device_code: &Value, proof: &str) -> Resp {
    post_form_h(
        &srv.base_url(),
        "/token",
        &[("DPoP", proof)],
        &[
            ("grant_type", devauth_testserver::DEVICE_GRANT),
            ("device_code", device_code.as_str().unwrap()),
            ("client_id", TEST_CLIENT_ID),
        ],
    )
}

fn refresh_with(srv: &TestServer, rt: &str, proof: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = proof.map(|p| ("DPoP", p)).into_iter().collect();
    post_form_h(
        &srv.base_url(),
        "/token",
        &headers,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", TEST_CLIENT_ID),
        ],
    )
}

/// Pairs with `key`'s proofs: the token answer.
fn dpop_pair(srv: &TestServer, key: &Key) -> Value {
    let dc = device_code(srv);
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let r = poll_with(
        srv,
        &dc["device_code"],
        &key.proof("POST", &srv.url("/token")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn every_check_of_a_proof_refuses_and_a_good_proof_binds_the_tokens() {
    let srv = server(DpopPolicy::default());
    let key = Key::new();
    let other = Key::new();
    let token_url = srv.url("/token");
    let dc = device_code(&srv);
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let cases: Vec<(String, &str)> = vec![
        (
            key.proof_with("POST", &token_url, |h, _| {
                h.insert("typ".into(), json!("JWT"));
            }),
            "typ",
        ),
        (
            key.proof_with("POST", &token_url, |h, _| {
                h.insert("alg".into(), json!("none"));
            }),
            "alg",
        ),
        (
            key.proof_with("POST", &token_url, |h, _| {
                h["jwk"]["d"] = json!("AAAA");
            }),
            "private key",
        ),
        (
            // Signed by another key than the one in its header.
            other.proof_with("POST", &token_url, |h, _| {
                h.insert("jwk".into(), key.jwk());
            }),
            "signature",
        ),
        (key.proof("GET", &token_url), "htm"),
        (key.proof("POST", &srv.url("/revoke")), "htu"),
        (
            key.proof_with("POST", &token_url, |_, c| {
                c.insert("iat".into(), json!(now() - 3600));
            }),
            "iat",
        ),
        (
            key.proof_with("POST", &token_url, |_, c| {
                c.remove("jti");
            }),
            "jti",
        ),
        (
            key.proof_with("POST", &token_url, |_, c| {
                c.insert("ath".into(), json!(ath("x")));
            }),
            "ath",
        ),
        ("not.a.jwt".to_string(), "JWS"),
    ];
    for (proof, why) in &cases {
        let r = poll_with(&srv, &dc["device_code"], proof);
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "invalid_dpop_proof"),
            "{why}: {}",
            r.text()
        );
        let last = srv.dpop_refusals().last().cloned().unwrap_or_default();
        assert!(last.contains(why), "{why}: refused for {last:?}");
    }
    // Two DPoP headers are one too many.
    let two = post_form_h(
        &srv.base_url(),
        "/token",
        &[
            ("DPoP", &key.proof("POST", &token_url)),
            ("DPoP", &key.proof("POST", &token_url)),
        ],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", TEST_CLIENT_ID),
        ],
    );
    assert_eq!(two.error(), "invalid_dpop_proof");
    let good = key.proof("POST", &token_url);
    let r = poll_with(&srv, &dc["device_code"], &good);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    // The same proof again is a replay, refused before anything else is looked at.
    let again = poll_with(&srv, &dc["device_code"], &good);
    assert_eq!(again.error(), "invalid_dpop_proof");
    assert!(srv.dpop_refusals().last().unwrap().contains("replayed"));
    let s = srv.stats();
    assert_eq!(s.dpop_refusals as usize, cases.len() + 2);
    assert_eq!((s.dpop_proofs, s.dpop_bound_tokens), (1, 1));
}

#[test]
fn a_public_clients_bound_refresh_token_needs_the_same_key() {
    let srv = server(DpopPolicy::default());
    let key = Key::new();
    let tokens = dpop_pair(&srv, &key);
    let rt = str_of(&tokens, "refresh_token");
    let token_url = srv.url("/token");
    let none = refresh_with(&srv, rt, None);
    assert_eq!(none.error(), "invalid_grant", "{}", none.text());
    let other = refresh_with(&srv, rt, Some(&Key::new().proof("POST", &token_url)));
    assert_eq!(other.error(), "invalid_grant", "{}", other.text());
    assert_eq!(srv.stats().dpop_key_mismatches, 2);
    let good = refresh_with(&srv, rt, Some(&key.proof("POST", &token_url)));
    assert_eq!(good.status, 200, "{}", good.text());
    assert_eq!(good.json()["token_type"], "DPoP");
}

#[test]
fn a_confidential_clients_refresh_token_is_not_bound_but_its_access_tokens_are() {
    let srv = TestServer::start(Behavior {
        enforce_interval: false,
        dpop: Some(DpopPolicy::default()),
        client_secret: Some("s3cret-s3cret".into()),
        ..Behavior::generic()
    })
    .unwrap();
    let key = Key::new();
    let dc = post_form(
        &srv.base_url(),
        "/device/code",
        &[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", "s3cret-s3cret"),
        ],
    )
    .json();
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let r = post_form_h(
        &srv.base_url(),
        "/token",
        &[("DPoP", &key.proof("POST", &srv.url("/token")))],
        &[
            ("grant_type", devauth_testserver::DEVICE_GRANT),
            ("device_code", dc["device_code"].as_str().unwrap()),
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", "s3cret-s3cret"),
        ],
    );
    assert_eq!(r.json()["token_type"], "DPoP", "{}", r.text());
    let other = Key::new();
    let r2 = post_form_h(
        &srv.base_url(),
        "/token",
        &[("DPoP", &other.proof("POST", &srv.url("/token")))],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_of(&r.json(), "refresh_token")),
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", "s3cret-s3cret"),
        ],
    );
    assert_eq!(r2.status, 200, "{}", r2.text());
}

#[test]
fn the_nonce_dance() {
    let srv = server(DpopPolicy {
        require_nonce: true,
        ..DpopPolicy::default()
    });
    let key = Key::new();
    let dc = device_code(&srv);
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let token_url = srv.url("/token");
    let first = poll_with(&srv, &dc["device_code"], &key.proof("POST", &token_url));
    assert_eq!(first.error(), "use_dpop_nonce", "{}", first.text());
    let nonce = first.header("DPoP-Nonce").unwrap().to_string();
    assert_eq!(nonce, srv.dpop_nonce());
    let with = key.proof_with("POST", &token_url, |_, c| {
        c.insert("nonce".into(), json!(nonce));
    });
    let ok = poll_with(&srv, &dc["device_code"], &with);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("DPoP-Nonce"), Some(nonce.as_str()));
    srv.rotate_dpop_nonce();
    let stale = key.proof_with("POST", &token_url, |_, c| {
        c.insert("nonce".into(), json!(nonce));
    });
    let rt = str_of(&ok.json(), "refresh_token").to_string();
    let r = refresh_with(&srv, &rt, Some(&stale));
    assert_eq!(r.error(), "use_dpop_nonce");
    assert_ne!(r.header("DPoP-Nonce"), Some(nonce.as_str()));
    assert_eq!(srv.stats().dpop_nonce_challenges, 2);
}

#[test]
fn the_resource_wants_the_dpop_scheme_the_token_hash_and_the_bound_key() {
    let srv = server(DpopPolicy::default());
    let key = Key::new();
    let tokens = dpop_pair(&srv, &key);
    let at = str_of(&tokens, "access_token");
    let url = srv.url("/userinfo");
    let call = |scheme: &str, proof: Option<&str>| {
        let auth = format!("{scheme} {at}");
        let mut h = vec![("Authorization", auth.as_str())];
        if let Some(p) = proof {
            h.push(("DPoP", p));
        }
        get_h(&srv.base_url(), "/userinfo", &h)
    };
    assert_eq!(
        call("Bearer", None).status,
        401,
        "a bound token is no Bearer token"
    );
    assert_eq!(call("DPoP", None).status, 401);
    let without_ath = key.proof("GET", &url);
    let r = call("DPoP", Some(&without_ath));
    assert!(
        r.header("WWW-Authenticate")
            .unwrap()
            .contains("invalid_dpop_proof")
    );
    let with_ath = |k: &Key| {
        k.proof_with("GET", &url, |_, c| {
            c.insert("ath".into(), json!(ath(at)));
        })
    };
    assert_eq!(
        call("DPoP", Some(&with_ath(&Key::new()))).status,
        401,
        "another key"
    );
    let good = with_ath(&key);
    let ok = call("DPoP", Some(&good));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(call("DPoP", Some(&good)).status, 401, "a replayed proof");
}

#[test]
fn a_server_without_dpop_ignores_proofs_and_issues_bearer_tokens() {
    let srv = TestServer::start(Behavior {
        enforce_interval: false,
        ..Behavior::generic()
    })
    .unwrap();
    let dc = device_code(&srv);
    assert!(srv.approve(dc["user_code"].as_str().unwrap()));
    let r = poll_with(&srv, &dc["device_code"], "garbage");
    assert_eq!(r.json()["token_type"], "Bearer");
    let disc = get(&srv.base_url(), "/.well-known/openid-configuration").json();
    assert!(disc.get("dpop_signing_alg_values_supported").is_none());
    let srv = server(DpopPolicy::default());
    let disc = get(&srv.base_url(), "/.well-known/openid-configuration").json();
    assert_eq!(disc["dpop_signing_alg_values_supported"], json!(["ES256"]));
}

// --- private_key_jwt --------------------------------------------------------------------------

fn assertion(key: &Key, kid: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let base = now();
    let mut claims = json!({
        "iss": TEST_CLIENT_ID, "sub": TEST_CLIENT_ID, "aud": "", "jti": jti(),
        "iat": base, "exp": base + 120,
    })
    .as_object()
    .unwrap()
    .clone();
    edit(&mut claims);
    key.sign(
        &json!({"alg": "ES256", "typ": "JWT", "kid": kid}),
        &Value::Object(claims),
    )
}

#[test]
fn private_key_jwt_is_checked_against_the_registered_keys() {
    let key = Key::new();
    let mut jwk = key.jwk();
    jwk["kid"] = json!("dev-1");
    // An RSA key registered beside it (the repository's test-only key).
    let rsa_pem = include_str!("../../tests/fixtures/test-only-jwt-key.pem");
    let b64: String = rsa_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let rsa = RsaKeyPair::from_pkcs8(&devauth_b64(&b64)).unwrap();
    let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let rsa_jwk =
        json!({"kty": "RSA", "kid": "dev-rsa", "n": b64url(&parts.n), "e": b64url(&parts.e)});
    let srv = TestServer::start(Behavior {
        client_keys: vec![jwk, rsa_jwk],
        ..Behavior::generic()
    })
    .unwrap();
    let base = srv.base_url();
    let token_aud = srv.url("/token");
    let device = |assertion: Option<&str>, extra: &[(&str, &str)]| {
        let mut form = vec![("client_id", TEST_CLIENT_ID), ("scope", "openid")];
        if let Some(a) = assertion {
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
            form.push(("client_assertion", a));
        }
        form.extend_from_slice(extra);
        post_form(&base, "/device/code", &form)
    };
    assert_eq!(
        device(None, &[]).status,
        401,
        "no assertion where keys are registered"
    );
    let good = assertion(&key, "dev-1", |c| {
        c.insert("aud".into(), json!(token_aud));
    });
    let r = device(Some(&good), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(device(Some(&good), &[]).status, 401, "a replayed assertion");
    let endpoint_aud = assertion(&key, "dev-1", |c| {
        c.insert("aud".into(), json!(srv.url("/device/code")));
    });
    assert_eq!(
        device(Some(&endpoint_aud), &[]).status,
        200,
        "aud = the endpoint called"
    );
    let issuer_aud = assertion(&key, "dev-1", |c| {
        c.insert("aud".into(), json!(base));
    });
    assert_eq!(
        device(Some(&issuer_aud), &[]).status,
        200,
        "aud = the issuer"
    );
    let with_secret = assertion(&key, "dev-1", |c| {
        c.insert("aud".into(), json!(token_aud));
    });
    assert_eq!(
        device(Some(&with_secret), &[("client_secret", "x")]).status,
        401,
        "two methods"
    );
    let refused: Vec<(String, &str)> = vec![
        (
            assertion(&Key::new(), "dev-1", |c| {
                c.insert("aud".into(), json!(token_aud));
            }),
            "not signed by a key registered",
        ),
        (
            assertion(&key, "dev-1", |c| {
                c.insert("aud".into(), json!("https://elsewhere/token"));
            }),
            "aud",
        ),
        (
            assertion(&key, "dev-1", |c| {
                c.insert("aud".into(), json!(token_aud));
                c.insert("iat".into(), json!(now() - 7200));
                c.insert("exp".into(), json!(now() - 3600));
            }),
            "expired",
        ),
        (
            assertion(&key, "dev-1", |c| {
                c.insert("aud".into(), json!(token_aud));
                c.insert("sub".into(), json!("someone-else"));
            }),
            "sub",
        ),
    ];
    for (a, why) in &refused {
        let r = device(Some(a), &[]);
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        let last = srv.assertion_refusals().last().cloned().unwrap_or_default();
        assert!(last.contains(why), "{why}: {last:?}");
    }
    // RS256 with the registered RSA key.
    let claims = json!({"iss": TEST_CLIENT_ID, "sub": TEST_CLIENT_ID, "aud": token_aud,
        "jti": jti(), "iat": now(), "exp": now() + 60});
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "dev-rsa"});
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; rsa.public().modulus_len()];
    rsa.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let rs = format!("{input}.{}", b64url(&sig));
    assert_eq!(device(Some(&rs), &[]).status, 200);
    let s = srv.stats();
    assert_eq!(s.client_assertions, 4);
    let disc = get(&base, "/.well-known/openid-configuration").json();
    assert!(
        disc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
}

/// Standard base64 (the PEM fixture).
fn devauth_b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
