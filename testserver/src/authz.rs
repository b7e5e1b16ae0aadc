//! The authorization server proper: its state (device codes, grants, access and refresh
//! tokens, statistics, recorded requests, queued faults) and the OAuth logic of every endpoint
//! (RFC 8628 device grant, RFC 6749 token/refresh, RFC 7009 revocation, OIDC discovery and
//! userinfo, the verification page and the control API). Runs under the server's lock and
//! never sleeps or does I/O: delays are returned to `server.rs`, which owns the sockets.

mod client_jwt;
mod code;
mod dpop;
mod narrow;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::behavior::{Behavior, DpopPolicy, Flavor, IntervalField};
use crate::codec;
use crate::http::{Request, Response};
use crate::{Endpoint, Fault, Recorded, Stats};

/// RFC 8628 §3.4 grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 7523 §2.1 grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `sub` of the one test user.
pub const SUBJECT: &str = "devauth-test-user";
/// `email` of the test user.
pub const EMAIL: &str = "user@example.test";
/// `preferred_username` of the test user.
pub const USERNAME: &str = "testuser";

/// Tolerance for the interval check: a poll this much early still counts as on time, so
/// scheduling jitter of a correct client never earns a `slow_down`.
const INTERVAL_TOLERANCE: Duration = Duration::from_millis(100);
/// RFC 8628 §3.5: each `slow_down` adds 5 seconds.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What the request path selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Root,
    Discovery,
    DeviceCode,
    Token,
    Revoke,
    UserInfo,
    DevicePage,
    TestApprove,
    TestDeny,
    TestRevokeAll,
    TestStats,
    TestLatest,
    TestExpireAccessTokens,
    /// RFC 6749 §4.1.1 authorization endpoint (GET; POST from its consent page).
    Authorize,
    TestAuthorize,
    NotFound,
}

/// A routed request path.
#[derive(Clone, Debug)]
pub struct Routed {
    pub route: Route,
    pub endpoint: Option<Endpoint>,
    /// Microsoft `{tenant}` path segment.
    pub tenant: Option<String>,
}

/// Maps a path to its route. All flavors' paths are served at once.
pub fn route(path: &str) -> Routed {
    let plain = |route, endpoint| Routed {
        route,
        endpoint,
        tenant: None,
    };
    match path {
        "/" => plain(Route::Root, None),
        "/.well-known/openid-configuration" => plain(Route::Discovery, Some(Endpoint::Discovery)),
        "/device/code" | "/login/device/code" => {
            plain(Route::DeviceCode, Some(Endpoint::DeviceAuthorization))
        }
        "/token" | "/login/oauth/access_token" => plain(Route::Token, Some(Endpoint::Token)),
        "/revoke" => plain(Route::Revoke, Some(Endpoint::Revocation)),
        "/userinfo" => plain(Route::UserInfo, Some(Endpoint::UserInfo)),
        "/device" => plain(Route::DevicePage, None),
        "/test/approve" => plain(Route::TestApprove, None),
        "/test/deny" => plain(Route::TestDeny, None),
        "/test/revoke-all" => plain(Route::TestRevokeAll, None),
        "/test/stats" => plain(Route::TestStats, None),
        "/test/latest" => plain(Route::TestLatest, None),
        "/test/expire-access-tokens" => plain(Route::TestExpireAccessTokens, None),
        "/authorize" | "/o/oauth2/v2/auth" | "/o/oauth2/auth" | "/login/oauth/authorize" => {
            plain(Route::Authorize, Some(Endpoint::Authorization))
        }
        "/test/authorize" => plain(Route::TestAuthorize, None),
        _ => {
            // Microsoft Entra: /{tenant}/oauth2/v2.0/devicecode and .../token.
            let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                [tenant, "oauth2", "v2.0", last] if !tenant.is_empty() => {
                    let (route, endpoint) = match *last {
                        "devicecode" => (Route::DeviceCode, Endpoint::DeviceAuthorization),
                        "token" => (Route::Token, Endpoint::Token),
                        "authorize" => (Route::Authorize, Endpoint::Authorization),
                        _ => return plain(Route::NotFound, None),
                    };
                    Routed {
                        route,
                        endpoint: Some(endpoint),
                        tenant: Some(codec::percent_decode(tenant, false)),
                    }
                }
                _ => plain(Route::NotFound, None),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
}

struct DeviceCode {
    user_code: String,
    client_id: String,
    scope: String,
    tenant: Option<String>,
    issued: Instant,
    /// `None`: `expires_in` too large to represent; never expires.
    deadline: Option<Instant>,
    /// The interval the server currently enforces for this code (grows on `slow_down`).
    interval: Duration,
    /// When the code was last polled (initially: when issued).
    last_poll: Instant,
    pending_answers: u32,
    decision: Decision,
    /// One of the first `expire_codes` codes: dead at its first poll.
    force_expire: bool,
    /// Already answered `expired_token`.
    expired_answered: bool,
    /// The grant issued when this code was redeemed.
    redeemed: Option<usize>,
}

impl DeviceCode {
    fn dead(&self, now: Instant) -> bool {
        self.expired_answered || self.deadline.is_some_and(|d| now >= d)
    }
}

struct Grant {
    client_id: String,
    scope: String,
    revoked: bool,
    /// RFC 9449 §5: the DPoP key thumbprint the refresh tokens of a public client are bound to.
    jkt: Option<String>,
}

struct AccessToken {
    grant: usize,
    expires: Option<Instant>,
    revoked: bool,
    /// What this token may do: its grant's scope, or less (a narrowed token).
    scope: String,
    /// The DPoP key this token is bound to (`cnf.jkt`); `None`: a Bearer token.
    jkt: Option<String>,
}

enum RefreshStatus {
    Active,
    /// Rotated out at `at`; `answer` is what that rotation returned (for `reuse_grace`).
    Rotated {
        at: Instant,
        answer: Map<String, Value>,
    },
    Revoked,
}

struct RefreshToken {
    grant: usize,
    expires: Option<Instant>,
    status: RefreshStatus,
}

/// An OAuth error answer before encoding.
struct OAuthError {
    status: u16,
    code: String,
    description: String,
    extra: Map<String, Value>,
}

fn oerr(status: u16, code: &str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status,
        code: code.to_string(),
        description: description.into(),
        extra: Map::new(),
    }
}

/// Form parameters with RFC 6749 §3.1 semantics: empty values count as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// First parameter sent more than once (RFC 6749 §3.1: MUST NOT).
    fn repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            self.0
                .get(..i)
                .is_some_and(|before| before.iter().any(|(b, _)| b == k))
                .then_some(k.as_str())
        })
    }
}

/// Per-request view used to encode answers.
struct Ctx<'a> {
    b: &'a Behavior,
    req: &'a Request,
    base: &'a str,
    /// Device or token endpoint: `errors_with_200` and `form_unless_accept_json` apply.
    oauth_endpoint: bool,
}

impl Ctx<'_> {
    fn num(&self, n: u64) -> Value {
        if self.b.numbers_as_strings {
            Value::String(n.to_string())
        } else {
            json!(n)
        }
    }

    fn encode(&self, status: u16, obj: Map<String, Value>) -> Response {
        if self.oauth_endpoint && self.b.form_unless_accept_json && !self.req.accepts_json() {
            let pairs: Vec<(String, String)> = obj
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::Null => None,
                    Value::String(s) => Some((k, s)),
                    other => Some((k, other.to_string())),
                })
                .collect();
            let body =
                codec::form_encode_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            Response::new(
                status,
                "application/x-www-form-urlencoded; charset=utf-8",
                body,
            )
            .no_store()
        } else {
            Response::json(status, &Value::Object(obj))
        }
    }

    fn error(&self, e: OAuthError) -> Response {
        let mut obj = Map::new();
        obj.insert("error".into(), Value::String(e.code));
        obj.insert("error_description".into(), Value::String(e.description));
        obj.extend(e.extra);
        let status = if self.oauth_endpoint && self.b.errors_with_200 {
            200
        } else {
            e.status
        };
        let resp = self.encode(status, obj);
        // RFC 6749 §5.2: 401 invalid_client answers name the scheme the client tried.
        if e.status == 401 && self.req.basic_auth().is_some() {
            resp.with_header("WWW-Authenticate", "Basic realm=\"devauth-testserver\"")
        } else {
            resp
        }
    }

    fn invalid_client_name(&self) -> &'static str {
        match self.b.flavor {
            Flavor::GitHub => "incorrect_client_credentials",
            _ => "invalid_client",
        }
    }

    fn unknown_device_code_name(&self) -> &'static str {
        match self.b.flavor {
            Flavor::GitHub => "incorrect_device_code",
            Flavor::Microsoft => "bad_verification_code",
            _ => "invalid_grant",
        }
    }
}

/// What the connection thread should do with a handled request.
pub struct Handled {
    pub response: Response,
    /// Wait this long (without the lock) before answering.
    pub delay: Duration,
}

impl From<Response> for Handled {
    fn from(response: Response) -> Handled {
        Handled {
            response,
            delay: Duration::ZERO,
        }
    }
}

/// Everything the server knows.
#[derive(Default)]
pub struct State {
    pub behavior: Behavior,
    pub stats: Stats,
    pub recorded: Vec<Recorded>,
    pub faults: HashMap<Endpoint, VecDeque<Fault>>,
    codes: Vec<DeviceCode>,
    by_device_code: HashMap<String, usize>,
    grants: Vec<Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    /// Polls that reached the timing check (for `slow_down_polls`).
    live_polls: u32,
    /// `jti`s of accepted JWT bearer assertions (replays are refused).
    seen_jti: HashSet<String>,
    /// Authorization requests that passed validation, in order (code grant).
    auth_requests: Vec<code::AuthRequest>,
    /// Issued authorization codes.
    auth_codes: HashMap<String, code::AuthCode>,
    /// Clients that got a code grant already (Google's refresh token on first consent only).
    consented: HashSet<String>,
    /// The last redirect URL a decision produced (for replays in tests).
    pub last_redirect: Option<String>,
    /// DPoP nonce and seen proof `jti`s.
    dpop: dpop::DpopState,
    /// The `jkt` of the proof of the request being handled (token endpoint).
    request_jkt: Option<String>,
    /// Why DPoP proofs were refused, in order (for tests).
    pub dpop_refusals: Vec<String>,
    /// `jti`s of accepted client assertions (replays are refused).
    seen_assertions: HashSet<String>,
    /// Why client assertions were refused, in order (for tests).
    pub assertion_refusals: Vec<String>,
}

impl State {
    pub fn new(behavior: Behavior) -> State {
        State {
            behavior,
            dpop: dpop::DpopState::new(),
            ..State::default()
        }
    }

    /// The DPoP nonce proofs must carry now.
    pub fn dpop_nonce(&self) -> String {
        self.dpop.nonce().to_string()
    }

    /// A new DPoP nonce: proofs with the old one are answered `use_dpop_nonce`.
    pub fn rotate_dpop_nonce(&mut self) {
        self.dpop.rotate();
    }

    /// A public client (no secret, no registered keys): its refresh tokens are bound to the
    /// DPoP key (RFC 9449 §5).
    fn public_client(b: &Behavior) -> bool {
        b.client_secret.is_none() && b.client_keys.is_empty()
    }

    /// The DPoP proof of a request to the authorization server (token, revocation): `Ok(None)`
    /// when the server has no DPoP or the request no proof (unless proofs are required); the
    /// error to answer when the proof is refused or lacks the nonce.
    fn server_proof(&mut self, ctx: &Ctx<'_>) -> Result<Option<String>, OAuthError> {
        let Some(policy) = ctx.b.dpop.clone() else {
            return Ok(None);
        };
        let headers = ctx.req.headers_named("dpop");
        if headers.is_empty() {
            if policy.required {
                self.stats.dpop_refusals += 1;
                self.dpop_refusals.push("no DPoP proof".into());
                return Err(oerr(400, "invalid_dpop_proof", "a DPoP proof is required"));
            }
            return Ok(None);
        }
        let url = format!("{}{}", ctx.base, ctx.req.path);
        self.check_proof(&policy, &headers, &ctx.req.method, &url, None)
            .map(Some)
            .map_err(|(code, why)| oerr(400, code, why))
    }

    /// Checks a proof, counting the outcome: `Err((error code, description))`.
    fn check_proof(
        &mut self,
        policy: &DpopPolicy,
        headers: &[&str],
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, (&'static str, String)> {
        let expect = dpop::Expect {
            method,
            url,
            access_token,
            now: unix_now(),
            window: i64::try_from(policy.iat_window.as_secs()).unwrap_or(60),
            require_nonce: policy.require_nonce,
        };
        match self.dpop.check(headers, &expect) {
            Ok(jkt) => {
                self.stats.dpop_proofs += 1;
                Ok(jkt)
            }
            Err(dpop::ProofError::NeedNonce) => {
                self.stats.dpop_nonce_challenges += 1;
                Err(("use_dpop_nonce", "a DPoP nonce is required".into()))
            }
            Err(dpop::ProofError::Invalid(why)) => {
                self.stats.dpop_refusals += 1;
                self.dpop_refusals.push(why.clone());
                Err(("invalid_dpop_proof", why))
            }
        }
    }

    /// Statistics with the derived counters filled in.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        let now = Instant::now();
        s.active_refresh_tokens = self
            .refresh
            .values()
            .filter(|r| self.refresh_usable(r, now))
            .count() as u32;
        s
    }

    fn refresh_usable(&self, r: &RefreshToken, now: Instant) -> bool {
        matches!(r.status, RefreshStatus::Active)
            && r.expires.is_none_or(|e| now < e)
            && self.grants.get(r.grant).is_some_and(|g| !g.revoked)
    }

    fn access_usable(&self, t: &AccessToken, now: Instant) -> bool {
        !t.revoked
            && t.expires.is_none_or(|e| now < e)
            && self.grants.get(t.grant).is_some_and(|g| !g.revoked)
    }

    /// Live access tokens.
    pub fn live_access_tokens(&self) -> Vec<String> {
        let now = Instant::now();
        self.access
            .iter()
            .filter(|(_, t)| self.access_usable(t, now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Live (active, not rotated out) refresh tokens.
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        let now = Instant::now();
        self.refresh
            .iter()
            .filter(|(_, r)| self.refresh_usable(r, now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn latest_user_code(&self) -> Option<String> {
        self.codes.last().map(|c| c.user_code.clone())
    }

    /// Approves or denies a code (`None`: the latest). Returns its user code, or `None` when
    /// unknown, expired or already redeemed.
    pub fn decide(&mut self, user_code: Option<&str>, approve: bool) -> Option<String> {
        let now = Instant::now();
        let idx = match user_code {
            Some(c) => {
                let want = codec::normalize_user_code(c);
                if want.is_empty() {
                    return None;
                }
                self.codes
                    .iter()
                    .rposition(|d| codec::normalize_user_code(&d.user_code) == want)?
            }
            None => self.codes.len().checked_sub(1)?,
        };
        let code = self.codes.get_mut(idx)?;
        if code.redeemed.is_some() || code.dead(now) {
            return None;
        }
        code.decision = if approve {
            self.stats.approvals += 1;
            Decision::Approved
        } else {
            self.stats.denials += 1;
            Decision::Denied
        };
        Some(code.user_code.clone())
    }

    /// The user revoked the grant at the provider: every token dies.
    pub fn revoke_all(&mut self) {
        for g in &mut self.grants {
            g.revoked = true;
        }
    }

    /// Every access token issued so far counts as expired (refresh tokens stay valid).
    pub fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for t in self.access.values_mut() {
            t.expires = Some(now);
        }
    }

    fn revoke_grant(&mut self, grant: usize) {
        if let Some(g) = self.grants.get_mut(grant) {
            g.revoked = true;
        }
    }

    /// Handles one routed request.
    pub fn handle(&mut self, base: &str, req: &Request, routed: &Routed) -> Handled {
        let allowed: &[&str] = match routed.route {
            Route::Root
            | Route::Discovery
            | Route::UserInfo
            | Route::TestStats
            | Route::TestLatest => &["GET"],
            Route::DevicePage | Route::Authorize => &["GET", "POST"],
            Route::NotFound => &[],
            _ => &["POST"],
        };
        if routed.route == Route::NotFound {
            return Response::json(404, &json!({"error": "not_found", "path": req.path})).into();
        }
        let method_ok = allowed.contains(&req.method.as_str())
            || (req.method == "HEAD" && allowed.contains(&"GET"));
        if !method_ok {
            return Response::json(405, &json!({"error": "method_not_allowed"}))
                .with_header("Allow", &allowed.join(", "))
                .into();
        }
        let b = self.behavior.clone();
        let ctx = Ctx {
            b: &b,
            req,
            base,
            oauth_endpoint: matches!(routed.route, Route::DeviceCode | Route::Token),
        };
        let mut handled = self.route(&ctx, routed);
        let wants_nonce = b.dpop.as_ref().is_some_and(|p| p.require_nonce);
        if wants_nonce && matches!(routed.route, Route::Token | Route::Revoke | Route::UserInfo) {
            // §8.2, §9: every answer tells the client the nonce to use next.
            handled.response = handled
                .response
                .with_header("DPoP-Nonce", &self.dpop_nonce());
        }
        handled
    }

    fn route(&mut self, ctx: &Ctx<'_>, routed: &Routed) -> Handled {
        let (base, req, ctx) = (ctx.base, ctx.req, ctx);
        match routed.route {
            Route::Root => root_page(base).into(),
            Route::Discovery => discovery(ctx).into(),
            Route::DeviceCode => self
                .device_authorization(ctx, routed.tenant.as_deref())
                .unwrap_or_else(|e| ctx.error(e))
                .into(),
            Route::Token => self.token(ctx, routed.tenant.as_deref()),
            Route::Revoke => self.revoke(ctx).unwrap_or_else(|e| ctx.error(e)).into(),
            Route::UserInfo => self.userinfo(ctx).into(),
            Route::DevicePage => self.device_page(req).into(),
            Route::Authorize => self.authorize(ctx).into(),
            Route::TestAuthorize => self.test_authorize(ctx).into(),
            Route::TestApprove | Route::TestDeny => {
                let approve = routed.route == Route::TestApprove;
                let form = req.form();
                let code = form
                    .iter()
                    .chain(req.query.iter())
                    .find(|(k, v)| k == "user_code" && !v.is_empty())
                    .map(|(_, v)| v.clone());
                match self.decide(code.as_deref(), approve) {
                    Some(c) => Response::json(200, &json!({"ok": true, "user_code": c})),
                    None => Response::json(
                        404,
                        &json!({"ok": false, "error": "unknown_user_code", "user_code": code}),
                    ),
                }
                .into()
            }
            Route::TestRevokeAll => {
                self.revoke_all();
                Response::json(200, &json!({"ok": true})).into()
            }
            Route::TestExpireAccessTokens => {
                self.expire_access_tokens();
                Response::json(200, &json!({"ok": true})).into()
            }
            Route::TestStats => Response::json(200, &self.stats().to_json()).into(),
            Route::TestLatest => {
                Response::json(200, &json!({"user_code": self.latest_user_code()})).into()
            }
            Route::NotFound => Response::empty(404).into(),
        }
    }

    /// Client authentication (RFC 6749 §2.3.1): `client_id` from the form or HTTP Basic;
    /// the secret, when the server has one, from `client_secret` or Basic.
    fn client_auth(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
        require_secret: bool,
    ) -> Result<String, OAuthError> {
        let basic = ctx.req.basic_auth();
        let form_id = form.get("client_id");
        let form_secret = form.get("client_secret");
        let invalid = ctx.invalid_client_name();
        if form.get("client_assertion").is_some() || !ctx.b.client_keys.is_empty() {
            return self.client_assertion(ctx, form);
        }
        let (id, secret) = match &basic {
            Some((bid, bsecret)) => {
                if form_secret.is_some() {
                    return Err(oerr(
                        400,
                        "invalid_request",
                        "more than one client authentication method (Basic and client_secret)",
                    ));
                }
                if form_id.is_some_and(|f| f != bid) {
                    return Err(oerr(
                        401,
                        invalid,
                        "client_id differs between Basic and form",
                    ));
                }
                (Some(bid.as_str()), Some(bsecret.as_str()))
            }
            None => (form_id, form_secret),
        };
        let Some(id) = id else {
            return Err(oerr(400, "invalid_request", "missing client_id"));
        };
        if id != ctx.b.client_id {
            return Err(oerr(401, invalid, format!("unknown client: {id}")));
        }
        if let Some(expected) = &ctx.b.client_secret {
            match secret {
                Some(s) if s == expected => {}
                Some(_) => return Err(oerr(401, invalid, "wrong client secret")),
                None if require_secret => {
                    return Err(oerr(401, invalid, "client authentication required"));
                }
                None => {}
            }
        }
        Ok(id.to_string())
    }

    /// `private_key_jwt` (RFC 7523 §2.2): the one authentication method when keys are
    /// registered; a secret beside it, or no assertion, is refused.
    fn client_assertion(&mut self, ctx: &Ctx<'_>, form: &Params) -> Result<String, OAuthError> {
        let invalid = ctx.invalid_client_name();
        let mut refuse = |why: String| {
            self.stats.client_assertion_refusals += 1;
            self.assertion_refusals.push(why.clone());
            oerr(401, invalid, why)
        };
        if form.get("client_secret").is_some() || ctx.req.basic_auth().is_some() {
            return Err(refuse("more than one client authentication method".into()));
        }
        let Some(assertion) = form.get("client_assertion") else {
            return Err(refuse(
                "client authentication required: a private_key_jwt client_assertion".into(),
            ));
        };
        let audiences = [
            ctx.base.to_string(),
            format!("{}/token", ctx.base),
            format!("{}{}", ctx.base, ctx.req.path),
        ];
        let expect = client_jwt::Expect {
            keys: &ctx.b.client_keys,
            audiences: &audiences,
            now: unix_now(),
        };
        let checked = client_jwt::verify(
            form.get("client_assertion_type"),
            assertion,
            &expect,
            &mut self.seen_assertions,
        );
        let client = match checked {
            Ok(c) => c,
            Err(why) => {
                self.stats.client_assertion_refusals += 1;
                self.assertion_refusals.push(why.clone());
                return Err(oerr(401, invalid, why));
            }
        };
        if form.get("client_id").is_some_and(|id| id != client) || client != ctx.b.client_id {
            self.stats.client_assertion_refusals += 1;
            self.assertion_refusals
                .push("the assertion names another client".into());
            return Err(oerr(401, invalid, format!("unknown client: {client}")));
        }
        self.stats.client_assertions += 1;
        Ok(client)
    }

    /// RFC 8628 §3.1/§3.2.
    fn device_authorization(
        &mut self,
        ctx: &Ctx<'_>,
        tenant: Option<&str>,
    ) -> Result<Response, OAuthError> {
        let b = ctx.b;
        let form = Params(ctx.req.form());
        if let Some(name) = form.repeated() {
            return Err(oerr(
                400,
                "invalid_request",
                format!("repeated parameter {name}"),
            ));
        }
        let client_id = self.client_auth(ctx, &form, b.require_secret_for_device_code)?;
        let scope = form.get("scope").unwrap_or("").to_string();

        let device_code = codec::random_token(32);
        let user_code = loop {
            let c = codec::random_user_code();
            if !self.codes.iter().any(|d| d.user_code == c) {
                break c;
            }
        };
        let now = Instant::now();
        let force_expire = self.stats.device_codes_issued < b.expire_codes;
        self.stats.device_codes_issued += 1;
        self.by_device_code
            .insert(device_code.clone(), self.codes.len());
        self.codes.push(DeviceCode {
            user_code: user_code.clone(),
            client_id,
            scope,
            tenant: tenant.map(str::to_string),
            issued: now,
            deadline: now.checked_add(Duration::from_secs(b.expires_in)),
            interval: Duration::from_secs(b.interval.seconds()),
            last_poll: now,
            pending_answers: 0,
            decision: Decision::Pending,
            force_expire,
            expired_answered: false,
            redeemed: None,
        });

        let verification_uri = format!("{}/device", ctx.base);
        let mut obj = Map::new();
        obj.insert("device_code".into(), json!(device_code));
        obj.insert("user_code".into(), json!(user_code));
        let uri_field = if b.verification_url_field {
            "verification_url"
        } else {
            "verification_uri"
        };
        obj.insert(uri_field.into(), json!(verification_uri));
        if !b.omit_complete_uri {
            obj.insert(
                "verification_uri_complete".into(),
                json!(format!(
                    "{verification_uri}?user_code={}",
                    codec::form_encode(&user_code)
                )),
            );
        }
        obj.insert("expires_in".into(), ctx.num(b.expires_in));
        match b.interval {
            IntervalField::Number(n) => {
                obj.insert("interval".into(), ctx.num(n));
            }
            IntervalField::String(n) => {
                obj.insert("interval".into(), json!(n.to_string()));
            }
            IntervalField::Null => {
                obj.insert("interval".into(), Value::Null);
            }
            IntervalField::Absent => {}
        }
        if let Some(m) = &b.message {
            let m = m
                .replace("{verification_uri}", &verification_uri)
                .replace("{user_code}", &user_code);
            obj.insert("message".into(), json!(m));
        }
        Ok(ctx.encode(200, obj))
    }

    /// RFC 6749 §5 token endpoint: device_code and refresh_token grants.
    fn token(&mut self, ctx: &Ctx<'_>, tenant: Option<&str>) -> Handled {
        let form = Params(ctx.req.form());
        let grant_type = form.get("grant_type").map(str::to_string);
        let is_poll = grant_type.as_deref() == Some(DEVICE_GRANT);
        let is_refresh = grant_type.as_deref() == Some("refresh_token");
        if is_poll {
            self.stats.polls += 1;
        }
        self.request_jkt = match self.server_proof(ctx) {
            Ok(jkt) => jkt,
            Err(e) => {
                if is_refresh {
                    self.stats.refresh_failures += 1;
                }
                return ctx.error(e).into();
            }
        };
        if grant_type.as_deref() == Some(JWT_BEARER_GRANT) && ctx.b.jwt_bearer.is_some() {
            return match self.jwt_bearer(ctx, &form) {
                Ok(obj) => ctx.encode(200, obj).into(),
                Err(e) => {
                    self.stats.jwt_rejections += 1;
                    if e.code == "invalid_grant" {
                        self.stats.invalid_grants += 1;
                    }
                    ctx.error(e).into()
                }
            };
        }
        let result = (|| {
            if let Some(name) = form.repeated() {
                return Err(oerr(
                    400,
                    "invalid_request",
                    format!("repeated parameter {name}"),
                ));
            }
            let client_id = self.client_auth(ctx, &form, ctx.b.client_secret.is_some())?;
            match grant_type.as_deref() {
                None => Err(oerr(400, "invalid_request", "missing grant_type")),
                Some(DEVICE_GRANT) => self.poll(ctx, &form, &client_id, tenant),
                Some("refresh_token") => self.refresh(ctx, &form, &client_id),
                Some("authorization_code") => self.redeem_code(ctx, &form, &client_id),
                Some(narrow::TOKEN_EXCHANGE_GRANT) if ctx.b.token_exchange => {
                    self.token_exchange(ctx, &form, &client_id)
                }
                Some(other) => Err(oerr(
                    400,
                    "unsupported_grant_type",
                    format!("unsupported grant_type {other}"),
                )),
            }
        })();
        match result {
            Ok(obj) => {
                let delay = if is_refresh {
                    ctx.b.refresh_delay
                } else {
                    Duration::ZERO
                };
                Handled {
                    response: ctx.encode(200, obj),
                    delay,
                }
            }
            Err(e) => {
                if is_refresh {
                    self.stats.refresh_failures += 1;
                }
                if e.code == "invalid_grant" {
                    self.stats.invalid_grants += 1;
                }
                let delay = if is_refresh {
                    ctx.b.refresh_delay
                } else {
                    Duration::ZERO
                };
                Handled {
                    response: ctx.error(e),
                    delay,
                }
            }
        }
    }

    /// RFC 8628 §3.4/§3.5: one poll.
    fn poll(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
        client_id: &str,
        tenant: Option<&str>,
    ) -> Result<Map<String, Value>, OAuthError> {
        let b = ctx.b;
        let now = Instant::now();
        let Some(device_code) = form.get("device_code") else {
            return Err(oerr(400, "invalid_request", "missing device_code"));
        };
        let unknown = ctx.unknown_device_code_name();
        let Some(&idx) = self.by_device_code.get(device_code) else {
            // `token()` counts `invalid_grant` answers; count the flavors' equivalents here.
            if unknown != "invalid_grant" {
                self.stats.invalid_grants += 1;
            }
            return Err(oerr(400, unknown, "unknown device_code"));
        };
        let Some(code) = self.codes.get_mut(idx) else {
            return Err(oerr(400, unknown, "unknown device_code"));
        };
        if code.client_id != client_id {
            return Err(oerr(
                400,
                "invalid_grant",
                "device_code was issued to another client",
            ));
        }
        if let (Some(issued_at), Some(asked_at)) = (code.tenant.as_deref(), tenant) {
            if issued_at != asked_at {
                return Err(oerr(
                    400,
                    "invalid_grant",
                    format!("device_code was issued for tenant {issued_at}, not {asked_at}"),
                ));
            }
        }
        if let Some(grant) = code.redeemed {
            // oidc-provider: a second redemption is a replay; revoke what was issued.
            self.stats.replays += 1;
            self.revoke_grant(grant);
            return Err(oerr(400, "invalid_grant", "device_code already redeemed"));
        }
        if code.expired_answered && b.expired_then_invalid_grant {
            return Err(oerr(400, "invalid_grant", "device_code expired"));
        }
        if code.force_expire || code.dead(now) {
            code.expired_answered = true;
            self.stats.expired_answers += 1;
            return Err(oerr(400, "expired_token", "device_code expired"));
        }

        // RFC 8628 §3.5: too early → slow_down, and this code's interval grows by 5 s.
        let since = now.saturating_duration_since(code.last_poll);
        code.last_poll = now;
        let early = since + INTERVAL_TOLERANCE < code.interval;
        if early {
            self.stats.polls_early += 1;
        }
        self.live_polls += 1;
        if (early && b.enforce_interval) || self.live_polls <= b.slow_down_polls {
            code.interval += SLOW_DOWN_STEP;
            self.stats.slow_downs += 1;
            let mut e = oerr(400, "slow_down", "polling too fast");
            if b.slow_down_includes_interval {
                e.extra
                    .insert("interval".into(), ctx.num(code.interval.as_secs()));
            }
            return Err(e);
        }

        if code.decision == Decision::Pending {
            let by_time = b
                .auto_approve_after
                .is_some_and(|d| now.saturating_duration_since(code.issued) >= d);
            let by_polls = b
                .auto_approve_after_polls
                .is_some_and(|n| code.pending_answers >= n);
            if by_time || by_polls {
                if b.auto_deny {
                    code.decision = Decision::Denied;
                    self.stats.denials += 1;
                } else {
                    code.decision = Decision::Approved;
                    self.stats.approvals += 1;
                }
            }
        }

        match code.decision {
            Decision::Pending => {
                code.pending_answers += 1;
                self.stats.pending_answers += 1;
                Err(oerr(
                    b.pending_status,
                    "authorization_pending",
                    "the user has not yet approved",
                ))
            }
            Decision::Denied => {
                self.stats.denied_answers += 1;
                Err(oerr(400, &b.denial_error, "the user denied the request"))
            }
            Decision::Approved => {
                let requested = code.scope.clone();
                let grant_scope = b.scope_granted.clone().unwrap_or_else(|| requested.clone());
                let with_refresh = b.issue_refresh_token
                    && b.refresh_token_requires_scope
                        .as_deref()
                        .is_none_or(|need| requested.split(' ').any(|s| s == need));
                let grant = self.grants.len();
                code.redeemed = Some(grant);
                let jkt = self.request_jkt.clone().filter(|_| Self::public_client(b));
                self.grants.push(Grant {
                    client_id: client_id.to_string(),
                    scope: grant_scope,
                    revoked: false,
                    jkt,
                });
                self.stats.tokens_issued += 1;
                Ok(self.issue_tokens(ctx, grant, with_refresh))
            }
        }
    }

    /// A token answer for `grant`: a new access token, optionally a new refresh token.
    fn issue_tokens(
        &mut self,
        ctx: &Ctx<'_>,
        grant: usize,
        with_refresh: bool,
    ) -> Map<String, Value> {
        let b = ctx.b;
        let now = Instant::now();
        let access = format!("at-{}", codec::random_token(24));
        let (client_id, scope) = self
            .grants
            .get(grant)
            .map(|g| (g.client_id.clone(), g.scope.clone()))
            .unwrap_or_default();
        let jkt = self.request_jkt.clone();
        self.access.insert(
            access.clone(),
            AccessToken {
                grant,
                expires: b
                    .token_lifetime
                    .and_then(|s| now.checked_add(Duration::from_secs(s))),
                revoked: false,
                scope: scope.clone(),
                jkt: jkt.clone(),
            },
        );
        let mut obj = Map::new();
        obj.insert("access_token".into(), json!(access));
        let token_type = if jkt.is_some() {
            // RFC 9449 §5: a token bound to the proof's key.
            self.stats.dpop_bound_tokens += 1;
            "DPoP"
        } else if b.flavor == Flavor::GitHub {
            "bearer"
        } else {
            "Bearer"
        };
        obj.insert("token_type".into(), json!(token_type));
        if let Some(s) = b.token_lifetime {
            obj.insert("expires_in".into(), ctx.num(s));
        }
        if !scope.is_empty() {
            obj.insert("scope".into(), json!(scope));
        }
        if with_refresh {
            let rt = format!("rt-{}", codec::random_token(32));
            self.refresh.insert(
                rt.clone(),
                RefreshToken {
                    grant,
                    expires: b.refresh_token_lifetime.and_then(|d| now.checked_add(d)),
                    status: RefreshStatus::Active,
                },
            );
            obj.insert("refresh_token".into(), json!(rt));
        }
        if b.id_token {
            obj.insert("id_token".into(), json!(id_token(ctx.base, &client_id, b)));
        }
        obj
    }

    /// RFC 7523 §2.1/§3: checks the assertion and issues an access token (no refresh token).
    fn jwt_bearer(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
    ) -> Result<Map<String, Value>, OAuthError> {
        let Some(cfg) = ctx.b.jwt_bearer.clone() else {
            return Err(oerr(
                400,
                "unsupported_grant_type",
                "jwt-bearer is not enabled",
            ));
        };
        if let Some(name) = form.repeated() {
            return Err(oerr(
                400,
                "invalid_request",
                format!("repeated parameter {name}"),
            ));
        }
        // Client authentication is optional in this grant (RFC 7523 §3.1); checked when sent.
        if form.get("client_id").is_some() || ctx.req.basic_auth().is_some() {
            self.client_auth(ctx, form, false)?;
        }
        let Some(assertion) = form.get("assertion") else {
            return Err(oerr(400, "invalid_request", "missing assertion"));
        };
        let bad = |why: &str| oerr(400, "invalid_grant", format!("Invalid JWT: {why}"));
        let JwtParts {
            header,
            claims,
            signing_input,
            signature,
        } = jwt_parts(assertion).ok_or_else(|| bad("not three base64url JSON parts"))?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(bad("alg is not RS256"));
        }
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &cfg.public_key_der,
        );
        if key.verify(signing_input.as_bytes(), &signature).is_err() {
            return Err(oerr(400, "invalid_grant", "Invalid JWT Signature."));
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        if text("iss") != Some(cfg.issuer.as_str()) {
            return Err(bad("unknown iss"));
        }
        let want_aud = cfg
            .audience
            .clone()
            .unwrap_or_else(|| format!("{}/token", ctx.base));
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == want_aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&want_aud)),
            _ => false,
        };
        if !aud_ok {
            return Err(bad(&format!("aud must be {want_aud}")));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let leeway = cfg.leeway.as_secs() as i64;
        let (Some(iat), Some(exp)) = (
            claims.get("iat").and_then(Value::as_i64),
            claims.get("exp").and_then(Value::as_i64),
        ) else {
            return Err(bad("iat and exp must be numbers"));
        };
        if exp <= iat || exp - iat > cfg.max_lifetime.as_secs() as i64 {
            return Err(bad(
                "Token must be a short-lived token and in a reasonable timeframe (exp - iat)",
            ));
        }
        if iat > now + leeway || exp + leeway < now {
            return Err(bad(
                "Token must be a short-lived token and in a reasonable timeframe",
            ));
        }
        if let Some(jti) = text("jti") {
            if !self.seen_jti.insert(jti.to_string()) {
                return Err(bad("jti already used"));
            }
        }
        let scope = text("scope")
            .or_else(|| form.get("scope"))
            .unwrap_or("")
            .to_string();
        let grant = self.grants.len();
        self.grants.push(Grant {
            client_id: cfg.issuer.clone(),
            scope,
            revoked: false,
            jkt: None,
        });
        self.stats.jwt_grants += 1;
        let mut obj = self.issue_tokens(ctx, grant, false);
        obj.remove("id_token");
        Ok(obj)
    }

    /// RFC 6749 §6 refresh, with rotation, reuse detection and grace.
    fn refresh(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
        client_id: &str,
    ) -> Result<Map<String, Value>, OAuthError> {
        let b = ctx.b;
        let now = Instant::now();
        let Some(presented) = form.get("refresh_token") else {
            return Err(oerr(400, "invalid_request", "missing refresh_token"));
        };
        let Some(rt) = self.refresh.get(presented) else {
            return Err(oerr(400, "invalid_grant", "unknown refresh_token"));
        };
        let grant = rt.grant;
        let Some(g) = self.grants.get(grant) else {
            return Err(oerr(400, "invalid_grant", "unknown refresh_token"));
        };
        if g.client_id != client_id {
            return Err(oerr(
                400,
                "invalid_grant",
                "refresh_token was issued to another client",
            ));
        }
        if g.revoked {
            return Err(oerr(400, "invalid_grant", "grant revoked"));
        }
        if let Some(bound) = &g.jkt {
            // RFC 9449 §5: a public client's refresh token works only with its key's proofs.
            if self.request_jkt.as_ref() != Some(bound) {
                self.stats.dpop_key_mismatches += 1;
                let why = if self.request_jkt.is_some() {
                    "the refresh token is bound to another DPoP key"
                } else {
                    "the refresh token is DPoP-bound; a proof with its key is required"
                };
                return Err(oerr(400, "invalid_grant", why));
            }
        }
        if rt.expires.is_some_and(|e| now >= e) {
            return Err(oerr(400, "invalid_grant", "refresh_token expired"));
        }
        match &rt.status {
            RefreshStatus::Revoked => Err(oerr(400, "invalid_grant", "refresh_token revoked")),
            RefreshStatus::Rotated { at, answer } => {
                let within_grace =
                    !b.reuse_grace.is_zero() && now.saturating_duration_since(*at) <= b.reuse_grace;
                if within_grace {
                    self.stats.refreshes += 1;
                    return Ok(answer.clone());
                }
                if b.reuse_detection {
                    // Auth0/Okta/Keycloak: reuse of a rotated-out token kills the grant.
                    self.stats.reuse_detected += 1;
                    self.revoke_grant(grant);
                    return Err(oerr(
                        400,
                        "invalid_grant",
                        "refresh_token reused; grant revoked",
                    ));
                }
                Err(oerr(400, "invalid_grant", "refresh_token was rotated"))
            }
            RefreshStatus::Active => {
                let rotate = b.rotate_refresh_tokens;
                // RFC 6749 §6: `scope` may ask for less; checked before anything rotates.
                let narrowed = self.narrowed_scope(ctx, grant, form.get("scope"))?;
                let mut answer = self.issue_tokens(ctx, grant, rotate);
                if let Some(scope) = narrowed {
                    self.narrow_answer(&mut answer, &scope);
                }
                if rotate {
                    if let Some(old) = self.refresh.get_mut(presented) {
                        old.status = RefreshStatus::Rotated {
                            at: now,
                            answer: answer.clone(),
                        };
                    }
                }
                self.stats.refreshes += 1;
                Ok(answer)
            }
        }
    }

    /// RFC 7009 revocation. Always 200 for an authenticated client.
    fn revoke(&mut self, ctx: &Ctx<'_>) -> Result<Response, OAuthError> {
        let form = Params(ctx.req.form());
        if let Some(name) = form.repeated() {
            return Err(oerr(
                400,
                "invalid_request",
                format!("repeated parameter {name}"),
            ));
        }
        let client_id = self.client_auth(ctx, &form, ctx.b.client_secret.is_some())?;
        if self.server_proof(ctx)?.is_some() {
            self.stats.dpop_revocations += 1;
        }
        let Some(token) = form.get("token") else {
            return Err(oerr(400, "invalid_request", "missing token"));
        };
        let owner =
            |grants: &Vec<Grant>, g: usize| grants.get(g).is_some_and(|g| g.client_id == client_id);
        if let Some(rt) = self.refresh.get_mut(token) {
            if owner(&self.grants, rt.grant) {
                // Revoking a refresh token revokes its grant (RFC 7009 §2.1).
                rt.status = RefreshStatus::Revoked;
                let g = rt.grant;
                self.revoke_grant(g);
            }
        } else if let Some(at) = self.access.get_mut(token) {
            if owner(&self.grants, at.grant) {
                at.revoked = true;
            }
        }
        self.stats.revocations += 1;
        Ok(Response::empty(200).no_store())
    }

    /// OIDC userinfo with a Bearer access token (RFC 6750 §3 errors), or a DPoP-bound one
    /// with its proof (RFC 9449 §7: `Authorization: DPoP`, `ath`, the key it is bound to).
    fn userinfo(&mut self, ctx: &Ctx<'_>) -> Response {
        let req = ctx.req;
        let unauthorized = |scheme: &str, error: &str, why: &str| {
            Response::json(401, &json!({"error": error, "error_description": why})).with_header(
                "WWW-Authenticate",
                &format!("{scheme} realm=\"devauth-testserver\", error=\"{error}\""),
            )
        };
        let Some((scheme, token)) = req.authorization_token() else {
            self.stats.userinfo_unauthorized += 1;
            return Response::json(401, &json!({"error": "invalid_request"}))
                .with_header("WWW-Authenticate", "Bearer realm=\"devauth-testserver\"");
        };
        let dpop_scheme = scheme.eq_ignore_ascii_case("dpop");
        let shown = if dpop_scheme { "DPoP" } else { "Bearer" };
        let now = Instant::now();
        let bound = match self.access.get(token) {
            Some(t) if self.access_usable(t, now) => t.jkt.clone(),
            _ => {
                self.stats.userinfo_unauthorized += 1;
                return unauthorized(shown, "invalid_token", "token expired, revoked or unknown");
            }
        };
        match (bound, dpop_scheme, ctx.b.dpop.clone()) {
            (None, false, _) => {}
            (Some(jkt), true, Some(policy)) => {
                let url = format!("{}{}", ctx.base, req.path);
                let headers = req.headers_named("dpop");
                match self.check_proof(&policy, &headers, &req.method, &url, Some(token)) {
                    Ok(proof_jkt) if proof_jkt == jkt => {}
                    Ok(_) => {
                        self.stats.userinfo_unauthorized += 1;
                        self.stats.dpop_key_mismatches += 1;
                        return unauthorized(
                            "DPoP",
                            "invalid_token",
                            "the token is bound to another DPoP key",
                        );
                    }
                    Err((code, why)) => {
                        self.stats.userinfo_unauthorized += 1;
                        return unauthorized("DPoP", code, &why);
                    }
                }
            }
            (Some(_), _, _) => {
                self.stats.userinfo_unauthorized += 1;
                return unauthorized(
                    "DPoP",
                    "invalid_token",
                    "a DPoP-bound token needs Authorization: DPoP and a proof",
                );
            }
            (None, true, _) => {
                self.stats.userinfo_unauthorized += 1;
                return unauthorized("DPoP", "invalid_token", "the token is not DPoP-bound");
            }
        }
        self.stats.userinfo_ok += 1;
        Response::json(
            200,
            &json!({"sub": SUBJECT, "email": EMAIL, "preferred_username": USERNAME}),
        )
    }

    /// The page a human (or the demo) uses to approve or deny.
    fn device_page(&mut self, req: &Request) -> Response {
        if req.method == "POST" {
            let form = req.form();
            let get = |k: &str| {
                form.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            let code = get("user_code");
            let approve = get("action") != "deny";
            return match self.decide(Some(code), approve) {
                Some(c) => {
                    let what = if approve { "approved" } else { "denied" };
                    page(
                        200,
                        &format!(
                            "<p>Code <b>{}</b> {what}. You can return to your device.</p>",
                            codec::html_escape(&c)
                        ),
                    )
                }
                None => page(
                    400,
                    &format!(
                        "<p>Unknown, expired or already used code <b>{}</b>.</p>{}",
                        codec::html_escape(code),
                        device_form(code)
                    ),
                ),
            };
        }
        let prefill = req
            .query
            .iter()
            .find(|(k, _)| k == "user_code")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        page(
            200,
            &format!(
                "<p>Enter the code shown on your device.</p>{}",
                device_form(prefill)
            ),
        )
    }
}

fn page(status: u16, content: &str) -> Response {
    Response::html(
        status,
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>devauth test server</title></head>\n<body><h1>Device sign-in (devauth test server)</h1>\n{content}\n</body></html>\n"
        ),
    )
}

fn device_form(prefill: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/device\">\n<label>Code <input name=\"user_code\" value=\"{}\" autocomplete=\"off\" autofocus></label>\n<button name=\"action\" value=\"approve\">Approve</button>\n<button name=\"action\" value=\"deny\">Deny</button>\n</form>",
        codec::html_escape(prefill)
    )
}

fn root_page(base: &str) -> Response {
    page(
        200,
        &format!(
            "<p>Loopback OAuth 2.0 test server. Approve codes at <a href=\"/device\">{0}/device</a>; discovery at <a href=\"/.well-known/openid-configuration\">/.well-known/openid-configuration</a>; stats at <a href=\"/test/stats\">/test/stats</a>.</p>",
            codec::html_escape(base)
        ),
    )
}

fn discovery(ctx: &Ctx<'_>) -> Response {
    let base = ctx.base;
    let mut obj = Map::new();
    obj.insert("issuer".into(), json!(base));
    if !ctx.b.omit_device_authorization_endpoint {
        obj.insert(
            "device_authorization_endpoint".into(),
            json!(format!("{base}/device/code")),
        );
    }
    obj.insert(
        "authorization_endpoint".into(),
        json!(format!("{base}/authorize")),
    );
    obj.insert("token_endpoint".into(), json!(format!("{base}/token")));
    obj.insert(
        "revocation_endpoint".into(),
        json!(format!("{base}/revoke")),
    );
    obj.insert(
        "userinfo_endpoint".into(),
        json!(format!("{base}/userinfo")),
    );
    let mut grants = vec![
        json!(DEVICE_GRANT),
        json!("authorization_code"),
        json!("refresh_token"),
    ];
    if ctx.b.jwt_bearer.is_some() {
        grants.push(json!(JWT_BEARER_GRANT));
    }
    obj.insert("grant_types_supported".into(), Value::Array(grants));
    obj.insert("response_types_supported".into(), json!(["code"]));
    let methods = if ctx.b.require_pkce {
        json!(["S256"])
    } else {
        json!(["S256", "plain"])
    };
    obj.insert("code_challenge_methods_supported".into(), methods);
    let mut auth_methods = vec!["none", "client_secret_post", "client_secret_basic"];
    if !ctx.b.client_keys.is_empty() {
        auth_methods.push("private_key_jwt");
        obj.insert(
            "token_endpoint_auth_signing_alg_values_supported".into(),
            json!(["ES256", "RS256"]),
        );
    }
    obj.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!(auth_methods),
    );
    if ctx.b.dpop.is_some() {
        obj.insert("dpop_signing_alg_values_supported".into(), json!(["ES256"]));
    }
    Response::json(200, &Value::Object(obj))
}

/// Unix seconds now (the server's clock: proofs and assertions are compared with it).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A JWT taken apart (not verified).
#[derive(Clone, Debug)]
pub struct JwtParts {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `<header>.<claims>` as sent: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// `jwt` taken apart; `None` when it is not three base64url parts with JSON objects in the
/// first two. No verification.
pub fn jwt_parts(jwt: &str) -> Option<JwtParts> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let object = |part: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&codec::b64_decode(part)?).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    Some(JwtParts {
        header: object(h)?,
        claims: object(c)?,
        signing_input: format!("{h}.{c}"),
        signature: codec::b64_decode(sig)?,
    })
}

/// An unsigned-looking JWT: real header and claims (`name` and `email` as the behaviour says),
/// random signature bytes.
fn id_token(issuer: &str, audience: &str, b: &Behavior) -> String {
    let lifetime = b.token_lifetime;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "devauth-testserver"});
    let mut claims = json!({
        "iss": issuer,
        "aud": audience,
        "sub": SUBJECT,
        "email": b.id_token_email.as_deref().unwrap_or(EMAIL),
        "email_verified": true,
        "preferred_username": USERNAME,
        "iat": now,
        "exp": now.saturating_add(lifetime.unwrap_or(3600)),
    });
    if let (Some(name), Some(obj)) = (&b.id_token_name, claims.as_object_mut()) {
        obj.insert("name".into(), json!(name));
    }
    format!(
        "{}.{}.{}",
        codec::b64url_encode(header.to_string().as_bytes()),
        codec::b64url_encode(claims.to_string().as_bytes()),
        codec::random_token(64)
    )
}
