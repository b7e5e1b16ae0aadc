//! JWT bearer assertions (RFC 7523) for the service-account profile: no user, no screen. The
//! device holds an RSA private key (a Google service-account JSON key, or a PEM key), signs a
//! short-lived RS256 JWT and exchanges it at the token endpoint for an access token
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523 §2.1).
//!
//! The same claims (RFC 7523 §3) authenticate a client with its own key instead of a secret:
//! [`ClientAssertion`], `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9).
//!
//! This module owns the Google JSON key format, the claims of both kinds of assertion and when
//! they are signed; keys, PEM and the JWS itself are `jws`'s. It does not send anything
//! (`oauth::client`), decide when to re-sign (`grant`: under the store lock, like a refresh) or
//! read the config (`config` hands over a checked [`JwtBearerConfig`]). The private key is a
//! [`Secret`] until it becomes a ring key pair; no message ever contains key bytes.
//!
//! Claims (RFC 7523 §3, Google "Using OAuth 2.0 for Server to Server Applications"):
//! `iss` (the service account's e-mail or the configured issuer), `sub` (optional; Google: the
//! user to impersonate with domain-wide delegation), `aud` (the token endpoint unless
//! configured), `iat` (now), `exp` (iat + 1 h: Google's maximum), `jti` (random, so a server can
//! refuse replays) and, for Google, `scope` (space-separated). Header: `alg` RS256 (ES256 for
//! an EC P-256 key), `typ` JWT, `kid` when the key file names its key id.

pub use crate::oauth::jws::base64url;
use crate::oauth::jws::{JsonObject, JwsSigner, SoftwareKey, header, random_id, sign_compact};
use crate::secret::Secret;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The service account of `grant = "jwt-bearer"`, from `service_account_file` or
/// `private_key_file` + `jwt_issuer`, checked at load (the key parses as an RSA key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerConfig {
    /// The file the key came from (its permissions are checked when the key is used).
    pub key_file: PathBuf,
    /// The private key as PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub private_key_pem: Secret,
    /// `kid` header: the service-account file's `private_key_id`.
    pub key_id: Option<String>,
    /// `iss`: `jwt_issuer`, else the service-account file's `client_email`.
    pub issuer: String,
    /// `sub`: `jwt_subject`; with `private_key_file` it defaults to the issuer (RFC 7523 §3
    /// requires one), with a Google service account it is only sent when set (impersonation).
    pub subject: Option<String>,
    /// `aud`: `jwt_audience`, else the token endpoint.
    pub audience: String,
    /// Scopes go into the assertion's `scope` claim (Google) instead of a `scope` form
    /// parameter (RFC 7523 §2.1).
    pub scope_in_claims: bool,
    /// `client_id` (and a secret, if any) is sent with the exchange: only when configured.
    pub client_auth: bool,
}

/// RFC 7523 §2.1.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion: Google refuses more than one hour.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Largest key file read (a 4096-bit key in Google's JSON is about 3.3 KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The signing key of a PEM private key: RSA (RS256; ring accepts 2048..=8192 bits) or EC
/// P-256 (ES256). Google's service accounts are RSA.
pub fn key_pair(pem: &Secret) -> Result<SoftwareKey, String> {
    SoftwareKey::from_pem(pem)
}

/// What a Google service-account key file (`"type": "service_account"`) provides.
#[derive(Debug)]
pub struct ServiceAccountKey {
    pub private_key: Secret,
    pub private_key_id: Option<String>,
    pub client_email: Option<String>,
    pub token_uri: Option<String>,
}

/// Parses a service-account JSON key. Messages name the field, never a value of the key.
pub fn parse_service_account(bytes: &[u8]) -> Result<ServiceAccountKey, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a JSON service-account key (line {})", e.line()))?;
    let Value::Object(map) = value else {
        return Err("not a JSON object".into());
    };
    let text = |field: &str| -> Result<Option<String>, String> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field `{field}` is not a string")),
        }
    };
    if let Some(t) = text("type")? {
        if t != "service_account" {
            return Err(format!(
                "`type` is {:?}, not \"service_account\"",
                t.chars().take(40).collect::<String>()
            ));
        }
    }
    let private_key = text("private_key")?.ok_or("no `private_key` field")?;
    Ok(ServiceAccountKey {
        private_key: Secret::new(private_key),
        private_key_id: text("private_key_id")?,
        client_email: text("client_email")?,
        token_uri: text("token_uri")?,
    })
}

/// Whether a key file can be read by others than its owner (group or world bits set).
pub fn key_file_exposed(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Signs assertions for one configured service account.
pub struct Signer {
    key: SoftwareKey,
    key_id: Option<String>,
    issuer: String,
    subject: Option<String>,
    audience: String,
    scope: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `cfg`; `scope` is the `scope` claim (Google), `None` to leave it out.
    pub fn new(cfg: &JwtBearerConfig, scope: Option<String>) -> Result<Signer, String> {
        Ok(Signer {
            key: key_pair(&cfg.private_key_pem)?,
            key_id: cfg.key_id.clone(),
            issuer: cfg.issuer.clone(),
            subject: cfg.subject.clone(),
            audience: cfg.audience.clone(),
            scope,
        })
    }

    /// The header and claims of an assertion issued at `now_unix` (exposed for tests).
    pub fn claims(&self, now_unix: i64, jti: &str) -> (JsonObject, JsonObject) {
        let claims = Claims {
            issuer: &self.issuer,
            subject: self.subject.as_deref(),
            audience: &self.audience,
            now_unix,
            lifetime_secs: ASSERTION_LIFETIME_SECS,
            jti,
        };
        let mut claims = claims.to_json();
        if let Some(scope) = &self.scope {
            claims.str("scope", scope);
        }
        (jwt_header(&self.key, self.key_id.as_deref()), claims)
    }

    /// A signed assertion issued at `now_unix` (wall clock: the server compares it with its
    /// own, so the device clock must be set).
    pub fn assertion(&self, now_unix: i64) -> Result<Secret, String> {
        let jti = random_id()?;
        let (header, claims) = self.claims(now_unix, &jti);
        sign_compact(&self.key, &header, &claims)
            .map_err(|e| format!("signing the assertion failed: {e}"))
    }
}

/// The registered claims of an RFC 7523 §3 assertion, for both of its uses.
struct Claims<'a> {
    issuer: &'a str,
    subject: Option<&'a str>,
    audience: &'a str,
    now_unix: i64,
    lifetime_secs: i64,
    jti: &'a str,
}

impl Claims<'_> {
    fn to_json(&self) -> JsonObject {
        let mut claims = JsonObject::default();
        claims.str("iss", self.issuer);
        if let Some(sub) = self.subject {
            claims.str("sub", sub);
        }
        claims
            .str("aud", self.audience)
            .int("iat", self.now_unix)
            .int("exp", self.now_unix.saturating_add(self.lifetime_secs))
            .str("jti", self.jti);
        claims
    }
}

/// `typ` JWT and, when known, the `kid` the server finds the key by (`alg` comes with the
/// signature).
fn jwt_header(key: &dyn JwsSigner, key_id: Option<&str>) -> JsonObject {
    let mut header = header(key, "JWT");
    if let Some(kid) = key_id {
        header.str("kid", kid);
    }
    header
}

/// RFC 7523 §2.2: the `client_assertion_type` of `private_key_jwt` client authentication.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion: one request, plus the clock skew servers allow.
pub const CLIENT_ASSERTION_LIFETIME_SECS: i64 = 120;

/// The `aud` of client assertions (RFC 7523 §3 point 3: "identifies the authorization server").
/// Servers differ: OIDC Core §9 says the token endpoint (Keycloak, oidc-provider), Okta wants
/// the URL of the endpoint called, Auth0 its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionAudience {
    /// The token endpoint, whatever the request (the default).
    TokenEndpoint,
    /// The URL of the endpoint the request goes to (token, device authorization, revocation).
    Endpoint,
    /// This value (an issuer URL).
    Fixed(String),
}

/// `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): each request to the
/// authorization server carries a fresh assertion with `iss` = `sub` = the client id, signed
/// with the device's own key (a file, or a TPM key).
pub struct ClientAssertion {
    pub key: std::sync::Arc<dyn JwsSigner>,
    pub client_id: String,
    /// `kid`: configured, else the key's RFC 7638 thumbprint (what `devauth keygen` prints).
    pub key_id: String,
    pub audience: AssertionAudience,
}

impl std::fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertion")
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ClientAssertion {
    /// An assertion for a request to `endpoint`, issued at `now_unix`.
    pub fn sign(
        &self,
        endpoint: &str,
        token_endpoint: &str,
        now_unix: i64,
    ) -> Result<Secret, String> {
        let audience = match &self.audience {
            AssertionAudience::TokenEndpoint => token_endpoint,
            AssertionAudience::Endpoint => endpoint,
            AssertionAudience::Fixed(aud) => aud.as_str(),
        };
        let jti = random_id()?;
        let claims = Claims {
            issuer: &self.client_id,
            subject: Some(&self.client_id),
            audience,
            now_unix,
            lifetime_secs: CLIENT_ASSERTION_LIFETIME_SECS,
            jti: &jti,
        };
        let key = self.key.as_ref();
        sign_compact(key, &jwt_header(key, Some(&self.key_id)), &claims.to_json())
            .map_err(|e| format!("signing the client assertion failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const PEM: &str = include_str!("../../tests/fixtures/test-only-jwt-key.pem");
    const PKCS1: &str = include_str!("../../tests/fixtures/test-only-jwt-key-pkcs1.pem");
    const PUBLIC: &[u8] =
        include_bytes!("../../tests/fixtures/test-only-jwt-public-key.rsapub.der");
    const SA: &str = include_str!("../../tests/fixtures/test-only-service-account.json");

    fn cfg() -> JwtBearerConfig {
        JwtBearerConfig {
            key_file: "/k".into(),
            private_key_pem: Secret::new(PEM),
            key_id: Some("kid-1".into()),
            issuer: "sa@example.iam".into(),
            subject: None,
            audience: "https://as/token".into(),
            scope_in_claims: true,
            client_auth: false,
        }
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&crate::net::wire::base64url_decode(part).unwrap()).unwrap()
    }

    #[test]
    fn assertion_is_a_valid_rs256_jwt_with_the_claims() {
        let s = Signer::new(&cfg(), Some("a b".into())).unwrap();
        let jwt = s.assertion(1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "kid-1");
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "sa@example.iam");
        assert_eq!(claims["aud"], "https://as/token");
        assert_eq!(claims["iat"], 1_800_000_000);
        assert_eq!(claims["exp"], 1_800_003_600);
        assert_eq!(claims["scope"], "a b");
        assert!(claims.get("sub").is_none());
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
        let sig = crate::net::wire::base64url_decode(parts[2]).unwrap();
        let msg = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, PUBLIC)
            .verify(msg.as_bytes(), &sig)
            .unwrap();
        // Every assertion has its own jti.
        let again = s.assertion(1_800_000_000).unwrap();
        let jti2 = decode(again.expose().split('.').nth(1).unwrap())["jti"].clone();
        assert_ne!(claims["jti"], jti2);
    }

    #[test]
    fn pkcs1_keys_work_too_and_sub_is_sent_when_set() {
        let mut c = cfg();
        c.private_key_pem = Secret::new(PKCS1);
        c.subject = Some("user@example.com".into());
        c.key_id = None;
        let s = Signer::new(&c, None).unwrap();
        let (header, claims) = s.claims(5, "j");
        let parse = |o: JsonObject| serde_json::from_str::<Value>(&o.finish()).unwrap();
        let (header, claims) = (parse(header), parse(claims));
        assert_eq!(header["alg"], "RS256");
        assert!(header.get("kid").is_none());
        assert_eq!(claims["sub"], "user@example.com");
        assert!(claims.get("scope").is_none());
        s.assertion(1_800_000_000).unwrap();
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for (text, want) in [
            ("hello", "no PEM private key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "no END line"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
                "not valid base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0g=\n-----END PRIVATE KEY-----\n",
                "not a usable private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
        ] {
            let e = key_pair(&Secret::new(text)).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("QUJD") && !e.contains("AAAA"), "{e}");
        }
    }

    #[test]
    fn google_service_account_file_parses() {
        let k = parse_service_account(SA.as_bytes()).unwrap();
        assert_eq!(
            k.client_email.as_deref(),
            Some("devauth-test@devauth-test-only.iam.gserviceaccount.com")
        );
        assert_eq!(
            k.token_uri.as_deref(),
            Some("https://oauth2.googleapis.com/token")
        );
        assert!(k.private_key_id.is_some());
        key_pair(&k.private_key).unwrap();
        assert!(parse_service_account(b"[]").is_err());
        assert!(parse_service_account(b"{\"type\":\"authorized_user\"}").is_err());
        let e = parse_service_account(b"{\"private_key\": 5}").unwrap_err();
        assert!(e.contains("private_key"), "{e}");
        assert!(parse_service_account(b"{").unwrap_err().contains("line 1"));
    }

    #[test]
    fn client_assertion_names_the_client_and_its_audience() {
        use crate::oauth::jws::{JwsSigner, SoftwareKey};
        use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        let (key, _) = SoftwareKey::generate_es256().unwrap();
        let key: std::sync::Arc<dyn JwsSigner> = std::sync::Arc::new(key);
        let kid = key.public_jwk().thumbprint();
        let mut a = ClientAssertion {
            key: key.clone(),
            client_id: "tv-42".into(),
            key_id: kid.clone(),
            audience: AssertionAudience::TokenEndpoint,
        };
        let jwt = a
            .sign("https://as/device", "https://as/token", 1_800_000_000)
            .unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], kid.as_str());
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "tv-42");
        assert_eq!(claims["sub"], "tv-42");
        assert_eq!(claims["aud"], "https://as/token");
        assert_eq!(
            claims["exp"],
            1_800_000_000 + CLIENT_ASSERTION_LIFETIME_SECS
        );
        let crate::oauth::jws::Jwk::Ec { x, y } = key.public_jwk() else {
            panic!()
        };
        let mut point = vec![4u8];
        point.extend(crate::net::wire::base64url_decode(&x).unwrap());
        point.extend(crate::net::wire::base64url_decode(&y).unwrap());
        let msg = format!("{}.{}", parts[0], parts[1]);
        let sig = crate::net::wire::base64url_decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(msg.as_bytes(), &sig)
            .unwrap();
        a.audience = AssertionAudience::Endpoint;
        let jwt = a.sign("https://as/device", "https://as/token", 5).unwrap();
        assert_eq!(
            decode(jwt.expose().split('.').nth(1).unwrap())["aud"],
            "https://as/device"
        );
        a.audience = AssertionAudience::Fixed("https://as/".into());
        let jwt = a.sign("https://as/device", "https://as/token", 5).unwrap();
        let claims = decode(jwt.expose().split('.').nth(1).unwrap());
        assert_eq!(claims["aud"], "https://as/");
        let again = a.sign("https://as/device", "https://as/token", 5).unwrap();
        assert_ne!(
            claims["jti"],
            decode(again.expose().split('.').nth(1).unwrap())["jti"]
        );
    }

    #[test]
    fn base64url_has_no_padding_or_plus_slash() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(b""), "");
    }
}
