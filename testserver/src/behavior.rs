//! `Behavior`: every knob that makes the test server act like one real authorization server or
//! another (RFC 8628 generic, Google, Microsoft Entra, GitHub, Auth0-like quirks). Pure data with
//! presets; the code that reads the knobs lives in `authz.rs`.

use std::time::Duration;

/// Which provider the server imitates. Most quirks are separate knobs (set by the presets);
/// the flavor itself only selects error names and the `token_type` spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Flavor {
    /// RFC 8628 / RFC 6749 names.
    #[default]
    Generic,
    /// Google: same names as generic.
    Google,
    /// Microsoft Entra: unknown device code is `bad_verification_code`.
    Microsoft,
    /// GitHub: `incorrect_client_credentials`, `incorrect_device_code`, `token_type: "bearer"`.
    GitHub,
}

impl Flavor {
    /// Parses `generic|google|microsoft|github` (the binary's `--flavor`).
    pub fn parse(s: &str) -> Option<Flavor> {
        match s {
            "generic" => Some(Flavor::Generic),
            "google" => Some(Flavor::Google),
            "microsoft" => Some(Flavor::Microsoft),
            "github" => Some(Flavor::GitHub),
            _ => None,
        }
    }
}

/// How the `interval` field of the device authorization response is sent (RFC 8628 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalField {
    /// `"interval": 5`
    Number(u64),
    /// `"interval": "5"` (seen in the wild).
    String(u64),
    /// `"interval": null`; the server enforces the RFC default of 5 s.
    Null,
    /// No `interval` field; the server enforces the RFC default of 5 s.
    Absent,
}

impl IntervalField {
    /// The interval the server enforces for a fresh code: the value sent, or 5 s when none
    /// is sent (RFC 8628 §3.2 default).
    pub fn seconds(self) -> u64 {
        match self {
            IntervalField::Number(n) | IntervalField::String(n) => n,
            IntervalField::Null | IntervalField::Absent => 5,
        }
    }
}

/// The client secret the `google()` preset requires.
pub const TEST_CLIENT_SECRET: &str = "devauth-test-secret";
/// The default client id of every preset.
pub const TEST_CLIENT_ID: &str = "devauth-test";
/// The `message` the `microsoft()` preset sends; `{verification_uri}` and `{user_code}` are
/// replaced in any `message`.
pub const MICROSOFT_MESSAGE: &str = "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate.";

/// Everything configurable. `Default` is a plain RFC 8628 server (same as `Behavior::generic()`).
/// Change it while running with `TestServer::set_behavior`; most knobs take effect on the next
/// request (code-level values such as the interval are fixed when a code is issued).
#[derive(Clone, Debug)]
pub struct Behavior {
    /// Error-name vocabulary and `token_type` spelling.
    pub flavor: Flavor,
    /// The only client id accepted; any other → 401 `invalid_client`.
    pub client_id: String,
    /// When set, token and revocation requests must authenticate with it (form
    /// `client_secret` or HTTP Basic); missing or wrong → 401 `invalid_client`.
    pub client_secret: Option<String>,
    /// Device authorization requests must carry the secret too (Google).
    pub require_secret_for_device_code: bool,
    /// Device code lifetime in seconds (`expires_in`); a poll after it → `expired_token`.
    pub expires_in: u64,
    /// How `interval` is sent; also the interval enforced for new codes.
    pub interval: IntervalField,
    /// Send `expires_in` / `interval` (device and token responses) as JSON strings.
    pub numbers_as_strings: bool,
    /// Do not send `verification_uri_complete`.
    pub omit_complete_uri: bool,
    /// Send `verification_url` instead of `verification_uri` (Google).
    pub verification_url_field: bool,
    /// Human text sent as `message` (Microsoft); `{verification_uri}`/`{user_code}` replaced.
    pub message: Option<String>,
    /// Leave `device_authorization_endpoint` out of the discovery document.
    pub omit_device_authorization_endpoint: bool,
    /// Approve a code on the poll after it got this many `authorization_pending` answers
    /// (`Some(0)`: the first poll already succeeds).
    pub auto_approve_after_polls: Option<u32>,
    /// Approve a code this long after it was issued (checked when it is polled).
    pub auto_approve_after: Option<Duration>,
    /// The automatic decisions above deny instead of approve.
    pub auto_deny: bool,
    /// A poll sooner than the code's current interval after the previous poll (or after the
    /// code was issued), with 100 ms tolerance, is answered `slow_down` and the code's interval
    /// grows by 5 s (RFC 8628 §3.5). Early polls are counted in `Stats::polls_early` either way.
    pub enforce_interval: bool,
    /// The first N polls of live codes are answered `slow_down` regardless of timing (each
    /// also adds 5 s to that code's interval).
    pub slow_down_polls: u32,
    /// `slow_down` answers carry the new `interval` (GitHub).
    pub slow_down_includes_interval: bool,
    /// The first N codes issued answer `expired_token` on their first poll.
    pub expire_codes: u32,
    /// After a code answered `expired_token` once, further polls get `invalid_grant` (Auth0).
    pub expired_then_invalid_grant: bool,
    /// HTTP status of `authorization_pending` (400; Google 428).
    pub pending_status: u16,
    /// Every OAuth error of the device and token endpoints comes with HTTP 200 (GitHub).
    pub errors_with_200: bool,
    /// Device and token endpoints answer `application/x-www-form-urlencoded` unless the
    /// request has `Accept: application/json` (GitHub).
    pub form_unless_accept_json: bool,
    /// The error for a denied code (`access_denied`; Microsoft `authorization_declined`).
    pub denial_error: String,
    /// Access token lifetime in seconds; `None`: no `expires_in`, the token never expires.
    pub token_lifetime: Option<u64>,
    /// Issue a refresh token with the device grant.
    pub issue_refresh_token: bool,
    /// A refresh token is only issued when the requested scope contains this one
    /// (Microsoft: `offline_access`).
    pub refresh_token_requires_scope: Option<String>,
    /// Refresh token lifetime; `None`: they live until revoked or rotated out.
    pub refresh_token_lifetime: Option<Duration>,
    /// A refresh returns a new refresh token and the old one is rotated out.
    /// Otherwise the refresh response omits `refresh_token` and the old one keeps working.
    pub rotate_refresh_tokens: bool,
    /// Presenting a rotated-out refresh token (outside `reuse_grace`) → `invalid_grant` and the
    /// whole grant (all its access and refresh tokens) is revoked.
    pub reuse_detection: bool,
    /// Within this time after a rotation the old refresh token still works and returns the
    /// same answer (same new pair) again. Zero: no grace.
    pub reuse_grace: Duration,
    /// Refresh answers are sent this long after the refresh was processed (the rotation has
    /// already happened when the client is still waiting).
    pub refresh_delay: Duration,
    /// The scope granted; `None`: the scope requested with the device code.
    pub scope_granted: Option<String>,
    /// Include an `id_token` (unsigned-looking JWT) in token responses.
    pub id_token: bool,
    /// The id_token's `name` claim (OIDC Core §5.1), when set: the paired screen greets by it.
    pub id_token_name: Option<String>,
    /// The id_token's `email` claim instead of the test user's.
    pub id_token_email: Option<String>,
    /// Accept the RFC 7523 JWT bearer grant (service accounts) with this key; `None`: the
    /// grant type is unsupported.
    pub jwt_bearer: Option<JwtBearer>,
    /// Authorization code grant (RFC 6749 §4.1): authorization requests must carry an S256
    /// `code_challenge` (RFC 7636); `plain` or none → `invalid_request`. Off (GitHub OAuth
    /// apps): a request without a challenge is accepted, and `plain` is verified as plain.
    pub require_pkce: bool,
    /// Redirect URIs registered besides loopback ones: `http://127.0.0.1:*`, `http://[::1]:*`
    /// and `http://localhost:*` with any port and path are always accepted (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// How long an authorization code can be redeemed (RFC 6749 §4.1.2: 10 minutes at most).
    pub code_lifetime: Duration,
    /// What the redirect carries as `state` (`Echo`: the request's, as a correct server does).
    pub redirect_state: RedirectState,
    /// The authorization endpoint decides at once and answers with the redirect (302):
    /// `Some(true)` approves, `Some(false)` denies. `None`: it shows the consent page and waits
    /// for [`TestServer::sign_in`](crate::TestServer::sign_in) or a POST of that page.
    pub auto_authorize: Option<bool>,
    /// Code grants get a refresh token only when the request had `access_type=offline` (Google).
    pub refresh_token_requires_offline: bool,
    /// Code grants get a refresh token only on the client's first consent, or when the
    /// request had `prompt=consent` (Google re-consent).
    pub refresh_token_only_on_first_consent: bool,
    /// What a refresh with a narrower `scope` (RFC 6749 §6) gets.
    pub narrowing: Narrowing,
    /// Accept RFC 8693 token exchange (an access token for one with a narrower `scope`).
    pub token_exchange: bool,
    /// DPoP (RFC 9449). `None` (the default): a server without DPoP — proofs are ignored,
    /// tokens are Bearer, discovery lists no DPoP algorithms.
    pub dpop: Option<DpopPolicy>,
    /// Public JWKs registered for the client (`private_key_jwt`, RFC 7523 §2.2; what a factory
    /// registers from `devauth keygen`). When not empty, every request that authenticates the
    /// client must carry an assertion signed by one of them, and a secret is refused.
    pub client_keys: Vec<serde_json::Value>,
}

/// How the token endpoint treats a refresh request's `scope` (RFC 6749 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Narrowing {
    /// An access token with exactly that scope (Okta, Auth0, Keycloak since 24).
    #[default]
    Honour,
    /// The parameter is ignored: the grant's whole scope, and the answer says so (Microsoft
    /// Entra: every consented scope of the resource).
    Ignore,
    /// `invalid_scope` unless it names the grant's whole scope (FusionAuth before 1.50).
    Refuse,
}

/// How the server does DPoP (RFC 9449). Every proof it receives is verified in full; tokens
/// issued with a proof are `token_type` DPoP and bound to its key (refresh tokens only for a
/// public client, §5); the userinfo endpoint then wants `Authorization: DPoP` and a proof.
#[derive(Clone, Debug)]
pub struct DpopPolicy {
    /// Token requests without a proof are refused (`invalid_dpop_proof`) instead of getting
    /// Bearer tokens.
    pub required: bool,
    /// Proofs must carry the server's current nonce (§8, §9); answers carry `DPoP-Nonce`.
    pub require_nonce: bool,
    /// Largest accepted difference between a proof's `iat` and the server's clock.
    pub iat_window: Duration,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            required: false,
            require_nonce: false,
            iat_window: Duration::from_secs(60),
        }
    }
}

/// The `state` of the redirect after an authorization request (a fault knob).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RedirectState {
    /// The request's `state`, unchanged (RFC 6749 §4.1.2).
    #[default]
    Echo,
    /// This value instead (a forged or mixed-up redirect).
    Replace(String),
    /// No `state` at all.
    Omit,
}

/// How the server checks RFC 7523 JWT bearer assertions (`grant_type=urn:ietf:params:oauth:
/// grant-type:jwt-bearer`, `assertion=<JWT>`): an RS256 signature by this key, `iss`, `aud`,
/// `iat`/`exp` (lifetime at most `max_lifetime`, within `leeway` of now) and a `jti` never seen
/// before. Answers carry an access token (`token_lifetime`) and never a refresh token. Client
/// authentication is optional (Google sends none); when a `client_id` is sent it is checked.
#[derive(Clone, Debug)]
pub struct JwtBearer {
    /// The RSA public key as PKCS#1 `RSAPublicKey` DER (`openssl rsa -pubout
    /// -RSAPublicKey_out -outform DER`).
    pub public_key_der: Vec<u8>,
    /// The only accepted `iss`.
    pub issuer: String,
    /// The accepted `aud`; `None`: the server's own token URL (`<base>/token`).
    pub audience: Option<String>,
    /// Longest accepted `exp − iat` (Google: one hour).
    pub max_lifetime: Duration,
    /// Clock difference tolerated on `iat` and `exp`.
    pub leeway: Duration,
}

impl JwtBearer {
    /// Accepts assertions from `issuer` signed by `public_key_der`, with Google's limits.
    pub fn new(public_key_der: Vec<u8>, issuer: impl Into<String>) -> JwtBearer {
        JwtBearer {
            public_key_der,
            issuer: issuer.into(),
            audience: None,
            max_lifetime: Duration::from_secs(3600),
            leeway: Duration::from_secs(60),
        }
    }
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            flavor: Flavor::Generic,
            client_id: TEST_CLIENT_ID.to_string(),
            client_secret: None,
            require_secret_for_device_code: false,
            expires_in: 600,
            interval: IntervalField::Number(1),
            numbers_as_strings: false,
            omit_complete_uri: false,
            verification_url_field: false,
            message: None,
            omit_device_authorization_endpoint: false,
            auto_approve_after_polls: None,
            auto_approve_after: None,
            auto_deny: false,
            enforce_interval: true,
            slow_down_polls: 0,
            slow_down_includes_interval: false,
            expire_codes: 0,
            expired_then_invalid_grant: false,
            pending_status: 400,
            errors_with_200: false,
            form_unless_accept_json: false,
            denial_error: "access_denied".to_string(),
            token_lifetime: Some(3600),
            issue_refresh_token: true,
            refresh_token_requires_scope: None,
            refresh_token_lifetime: None,
            rotate_refresh_tokens: true,
            reuse_detection: true,
            reuse_grace: Duration::ZERO,
            refresh_delay: Duration::ZERO,
            scope_granted: None,
            id_token: true,
            id_token_name: None,
            id_token_email: None,
            jwt_bearer: None,
            require_pkce: true,
            redirect_uris: Vec::new(),
            code_lifetime: Duration::from_secs(600),
            redirect_state: RedirectState::Echo,
            auto_authorize: None,
            refresh_token_requires_offline: false,
            refresh_token_only_on_first_consent: false,
            narrowing: Narrowing::Honour,
            token_exchange: false,
            dpop: None,
            client_keys: Vec::new(),
        }
    }
}

impl Behavior {
    /// A plain RFC 8628 server (the default).
    pub fn generic() -> Behavior {
        Behavior::default()
    }

    /// Google: `verification_url`, no complete URI, `authorization_pending` with HTTP 428,
    /// client secret (`TEST_CLIENT_SECRET`) required on device and token requests; code
    /// grants get a refresh token only with `access_type=offline` on the first consent (or
    /// with `prompt=consent`).
    pub fn google() -> Behavior {
        Behavior {
            refresh_token_requires_offline: true,
            refresh_token_only_on_first_consent: true,
            flavor: Flavor::Google,
            client_secret: Some(TEST_CLIENT_SECRET.to_string()),
            require_secret_for_device_code: true,
            verification_url_field: true,
            omit_complete_uri: true,
            pending_status: 428,
            ..Behavior::default()
        }
    }

    /// Microsoft Entra v2.0: `message`, no complete URI, denial `authorization_declined`,
    /// refresh token only with scope `offline_access`, rotating refresh tokens.
    pub fn microsoft() -> Behavior {
        Behavior {
            flavor: Flavor::Microsoft,
            message: Some(MICROSOFT_MESSAGE.to_string()),
            omit_complete_uri: true,
            denial_error: "authorization_declined".to_string(),
            refresh_token_requires_scope: Some("offline_access".to_string()),
            ..Behavior::default()
        }
    }

    /// GitHub OAuth app: form-encoded answers unless `Accept: application/json`, errors with
    /// HTTP 200, `slow_down` carries `interval`, codes live 900 s, tokens without `expires_in`,
    /// no refresh token, no id_token, no complete URI, PKCE optional.
    pub fn github() -> Behavior {
        Behavior {
            require_pkce: false,
            flavor: Flavor::GitHub,
            expires_in: 900,
            omit_complete_uri: true,
            form_unless_accept_json: true,
            errors_with_200: true,
            slow_down_includes_interval: true,
            token_lifetime: None,
            issue_refresh_token: false,
            id_token: false,
            ..Behavior::default()
        }
    }

    /// The preset for a flavor.
    pub fn for_flavor(flavor: Flavor) -> Behavior {
        match flavor {
            Flavor::Generic => Behavior::generic(),
            Flavor::Google => Behavior::google(),
            Flavor::Microsoft => Behavior::microsoft(),
            Flavor::GitHub => Behavior::github(),
        }
    }
}
