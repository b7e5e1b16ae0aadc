//! `devauth-testserver`: a loopback OAuth 2.0 authorization server for devauth's end-to-end
//! tests (in-process, as a library) and its demo (the `devauth-testserver` binary).
//!
//! It speaks the Device Authorization Grant (RFC 8628), token refresh with rotation and reuse
//! detection (RFC 6749 §6, OAuth 2.0 Security BCP), revocation (RFC 7009), OIDC discovery and
//! userinfo, and imitates Google, Microsoft Entra and GitHub quirks (see `Behavior`). Tests can
//! approve/deny codes, revoke grants, inspect every request and inject network faults.
//!
//! This file owns the public API (`TestServer`, `Recorded`, `Endpoint`, `Fault`, `Stats`).
//! It does not own the HTTP parsing (`http.rs`), the OAuth logic (`authz.rs`) or the sockets
//! (`server.rs`). Listens on 127.0.0.1 (or an address the test chose: `start_tls_named`).
//! Never part of the device binary. `proxy.rs` is an HTTP CONNECT proxy for the tests.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod authz;
mod behavior;
mod browser;
mod codec;
mod http;
pub mod proxy;
mod server;
pub mod swtpm;
mod tls;

use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use authz::{DEVICE_GRANT, EMAIL, JWT_BEARER_GRANT, JwtParts, SUBJECT, USERNAME, jwt_parts};
pub use behavior::{
    Behavior, DpopPolicy, Flavor, IntervalField, JwtBearer, MICROSOFT_MESSAGE, Narrowing,
    RedirectState, TEST_CLIENT_ID, TEST_CLIENT_SECRET,
};
pub use browser::Visit;
pub use codec::{USER_CODE_ALPHABET, b64_encode, form_encode, form_encode_pairs};
pub use proxy::{ProxyOptions, ProxyRecord, TestProxy};
pub use tls::TlsIdentity;

use server::{Shared, lock};

/// How long the test browser waits for a connection or an answer.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(10);

/// One authorization request as the server accepted it (code grant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    /// `S256` or `plain` when a challenge was sent.
    pub code_challenge_method: Option<String>,
    /// Every query pair as sent (provider extras such as `access_type`, `prompt`).
    pub query: Vec<(String, String)>,
    /// Approved or denied already.
    pub decided: bool,
}

impl AuthorizationRequest {
    /// First query value with this name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain-HTTP GET of a loopback URL, as a browser sends it; no redirects followed.
pub fn visit(url: &str) -> Result<Visit, String> {
    browser::get(url, BROWSER_TIMEOUT)
}

/// The endpoints faults can be injected into. Each flavor's paths map to the same endpoint
/// (`/token`, `/login/oauth/access_token` and `/{tenant}/oauth2/v2.0/token` are all `Token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    DeviceAuthorization,
    Token,
    Revocation,
    UserInfo,
    Discovery,
    /// The authorization endpoint of the code grant (`/authorize` and the flavors' paths).
    Authorization,
}

/// A network or server failure to serve instead of (or around) the normal answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `{"error":"server_error"}` with this status; 429 adds `Retry-After: 1`.
    Status(u16),
    /// `{"error":"temporarily_unavailable"}` with this status and `Retry-After: <secs>`.
    RetryAfter { status: u16, secs: u64 },
    /// Read the request, never answer until the server stops.
    Hang,
    /// Close the connection without answering.
    Close,
    /// 200, `application/json`, body `{"access_tok`.
    Malformed,
    /// A `text/html` error page (a proxy or captive portal) with this status.
    Html(u16),
    /// 200 JSON answer of exactly this many bytes (with that `Content-Length`).
    Oversized(usize),
    /// 200 chunked answer that trickles a byte every 50 ms until the server stops.
    Endless,
    /// Exactly this answer.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Process the request normally (codes are redeemed, tokens rotated), then close without
    /// answering: the answer was lost on the way back.
    LoseResponse,
    /// Process normally and answer after this extra delay.
    Delay(Duration),
    /// An empty answer with this (3xx) status and `Location` header.
    Redirect { status: u16, location: String },
    /// 200 chunked JSON answer written as fast as the client reads, until it leaves.
    Flood,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without query, as sent (Microsoft paths show the tenant).
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// Decoded form pairs (empty unless the body is `application/x-www-form-urlencoded`).
    pub form: Vec<(String, String)>,
    /// Decoded HTTP Basic credentials.
    pub basic_auth: Option<(String, String)>,
    pub endpoint: Option<Endpoint>,
    pub at: Instant,
    /// The `{tenant}` of a Microsoft path.
    pub tenant: Option<String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// First form value with this name.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `grant_type` of a token request.
    pub fn grant_type(&self) -> Option<&str> {
        self.form_value("grant_type")
    }
}

/// Counters. `active_refresh_tokens` is computed when the snapshot is taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every request read (all paths).
    pub requests: u32,
    /// Device authorization answers with a new code.
    pub device_codes_issued: u32,
    /// Token requests with the device_code grant type (valid or not).
    pub polls: u32,
    /// Polls sooner than the code's interval after the previous poll or the issue.
    pub polls_early: u32,
    /// `authorization_pending` answers.
    pub pending_answers: u32,
    /// `slow_down` answers.
    pub slow_downs: u32,
    /// Successful device_code grants.
    pub tokens_issued: u32,
    /// Successful refreshes (including grace-period repeats).
    pub refreshes: u32,
    /// Failed refresh requests (any error).
    pub refresh_failures: u32,
    /// `invalid_grant` answers (and the flavors' equivalents for unknown device codes).
    pub invalid_grants: u32,
    /// Answered revocation requests.
    pub revocations: u32,
    /// Second redemptions of a device code.
    pub replays: u32,
    /// Rotated-out refresh tokens presented again (outside the grace period).
    pub reuse_detected: u32,
    /// Userinfo answered 200.
    pub userinfo_ok: u32,
    /// Userinfo answered 401.
    pub userinfo_unauthorized: u32,
    /// Refresh tokens that would work now.
    pub active_refresh_tokens: u32,
    /// `expired_token` answers.
    pub expired_answers: u32,
    /// Denial answers (`access_denied` / `authorization_declined`).
    pub denied_answers: u32,
    /// Codes approved (by API, page, control API or automatically).
    pub approvals: u32,
    /// Codes denied.
    pub denials: u32,
    /// Requests that got an injected fault.
    pub faults_served: u32,
    /// Access tokens issued for JWT bearer assertions (RFC 7523).
    pub jwt_grants: u32,
    /// JWT bearer assertions refused (signature, claims, replay).
    pub jwt_rejections: u32,
    /// Authorization endpoint GETs (code grant), valid or not.
    pub authorization_requests: u32,
    /// Authorization requests refused (with a page or an error redirect).
    pub authorization_errors: u32,
    /// Access tokens issued with less than their grant's scope (a refresh with `scope`, or a
    /// token exchange).
    pub narrowed_tokens: u32,
    /// RFC 8693 token exchanges answered with a token.
    pub token_exchanges: u32,
    /// Authorization codes issued (approved requests).
    pub authorization_codes_issued: u32,
    /// Authorization requests denied (`error=access_denied` redirects).
    pub authorization_denials: u32,
    /// Successful `authorization_code` grants.
    pub code_grants: u32,
    /// Second redemptions of an authorization code (the grant is revoked).
    pub code_replays: u32,
    /// Code redemptions refused for PKCE (missing, malformed or wrong `code_verifier`).
    pub pkce_failures: u32,
    /// Code redemptions whose `redirect_uri` differed from the request's.
    pub redirect_mismatches: u32,
    /// DPoP proofs that passed every check (RFC 9449 §4.3).
    pub dpop_proofs: u32,
    /// DPoP proofs refused (signature, typ, jwk, htm/htu, iat, replayed jti, ath; or none
    /// where one was required).
    pub dpop_refusals: u32,
    /// `use_dpop_nonce` answers (a proof without the current nonce).
    pub dpop_nonce_challenges: u32,
    /// Tokens issued as DPoP-bound.
    pub dpop_bound_tokens: u32,
    /// Bound refresh or access tokens presented with another key's proof (or none).
    pub dpop_key_mismatches: u32,
    /// Revocation requests with a good DPoP proof.
    pub dpop_revocations: u32,
    /// Client assertions (`private_key_jwt`) accepted.
    pub client_assertions: u32,
    /// Client assertions refused, or missing where keys are registered.
    pub client_assertion_refusals: u32,
}

impl Stats {
    /// The counters as a JSON object (what `GET /test/stats` returns).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "device_codes_issued": self.device_codes_issued,
            "polls": self.polls,
            "polls_early": self.polls_early,
            "pending_answers": self.pending_answers,
            "slow_downs": self.slow_downs,
            "tokens_issued": self.tokens_issued,
            "refreshes": self.refreshes,
            "refresh_failures": self.refresh_failures,
            "invalid_grants": self.invalid_grants,
            "revocations": self.revocations,
            "replays": self.replays,
            "reuse_detected": self.reuse_detected,
            "userinfo_ok": self.userinfo_ok,
            "userinfo_unauthorized": self.userinfo_unauthorized,
            "active_refresh_tokens": self.active_refresh_tokens,
            "expired_answers": self.expired_answers,
            "denied_answers": self.denied_answers,
            "approvals": self.approvals,
            "denials": self.denials,
            "faults_served": self.faults_served,
            "jwt_grants": self.jwt_grants,
            "jwt_rejections": self.jwt_rejections,
            "authorization_requests": self.authorization_requests,
            "authorization_errors": self.authorization_errors,
            "authorization_codes_issued": self.authorization_codes_issued,
            "authorization_denials": self.authorization_denials,
            "code_grants": self.code_grants,
            "code_replays": self.code_replays,
            "pkce_failures": self.pkce_failures,
            "redirect_mismatches": self.redirect_mismatches,
            "narrowed_tokens": self.narrowed_tokens,
            "token_exchanges": self.token_exchanges,
            "dpop_proofs": self.dpop_proofs,
            "dpop_refusals": self.dpop_refusals,
            "dpop_nonce_challenges": self.dpop_nonce_challenges,
            "dpop_bound_tokens": self.dpop_bound_tokens,
            "dpop_key_mismatches": self.dpop_key_mismatches,
            "dpop_revocations": self.dpop_revocations,
            "client_assertions": self.client_assertions,
            "client_assertion_refusals": self.client_assertion_refusals,
        })
    }
}

/// A running server on 127.0.0.1. Dropping it stops it: the listener closes, open
/// connections are cut and every thread is joined.
///
/// ```
/// use devauth_testserver::{Behavior, Endpoint, Fault, TestServer};
/// let srv = TestServer::start(Behavior::github()).unwrap();
/// assert!(srv.base_url().starts_with("http://127.0.0.1:"));
/// assert_eq!(srv.latest_user_code(), None);
/// srv.inject(Endpoint::Token, Fault::Status(503));
/// assert_eq!(srv.stats().requests, 0);
/// ```
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub fn start(behavior: Behavior) -> std::io::Result<TestServer> {
        TestServer::start_on_port(0, behavior)
    }

    /// Starts on 127.0.0.1:`port` (0: ephemeral).
    pub fn start_on_port(port: u16, behavior: Behavior) -> std::io::Result<TestServer> {
        TestServer::start_with(port, behavior, None)
    }

    /// Starts an HTTPS server on an ephemeral port of 127.0.0.1 (`base_url()` is
    /// `https://127.0.0.1:PORT`): every connection must complete a TLS handshake with
    /// `identity` first. Failed handshakes are kept in [`TestServer::tls_errors`].
    pub fn start_tls(behavior: Behavior, identity: TlsIdentity) -> std::io::Result<TestServer> {
        TestServer::start_with(0, behavior, Some(identity))
    }

    /// Starts an HTTPS server listening on `bind` (127.0.0.1, or an address of a network
    /// namespace the test made; port 0: ephemeral) whose `base_url()` is
    /// `https://HOST:PORT`, for tests that reach it by a name: through a proxy's host map, or
    /// a hosts file.
    pub fn start_tls_named(
        bind: SocketAddr,
        host: &str,
        behavior: Behavior,
        identity: TlsIdentity,
    ) -> std::io::Result<TestServer> {
        TestServer::start_at(bind, Some(host), behavior, Some(identity))
    }

    fn start_with(
        port: u16,
        behavior: Behavior,
        tls: Option<TlsIdentity>,
    ) -> std::io::Result<TestServer> {
        TestServer::start_at((Ipv4Addr::LOCALHOST, port).into(), None, behavior, tls)
    }

    fn start_at(
        bind: SocketAddr,
        host: Option<&str>,
        behavior: Behavior,
        tls: Option<TlsIdentity>,
    ) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{}:{}", host.unwrap_or("127.0.0.1"), addr.port());
        let mut shared = Shared::new(authz::State::new(behavior), base_url);
        shared.tls = tls;
        let shared = Arc::new(shared);
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("testserver-accept".into())
            .spawn(move || server::accept_loop(sh, listener))?;
        Ok(TestServer {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `base_url() + path`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.shared.base_url, path)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the behavior; takes effect with the next request.
    pub fn set_behavior(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut lock(&self.shared.state).behavior);
    }

    /// A copy of the current behavior.
    pub fn behavior(&self) -> Behavior {
        lock(&self.shared.state).behavior.clone()
    }

    /// Log one line per request (method, path, status) to stderr. Off by default.
    pub fn set_logging(&self, on: bool) {
        self.shared.log.store(on, Ordering::Relaxed);
    }

    /// The user code of the most recently issued device code.
    pub fn latest_user_code(&self) -> Option<String> {
        lock(&self.shared.state).latest_user_code()
    }

    /// The user approves `user_code` (compared ignoring case, dashes and spaces). False when
    /// the code is unknown, expired or already redeemed.
    pub fn approve(&self, user_code: &str) -> bool {
        lock(&self.shared.state)
            .decide(Some(user_code), true)
            .is_some()
    }

    /// The user denies `user_code`. False when unknown, expired or already redeemed.
    pub fn deny(&self, user_code: &str) -> bool {
        lock(&self.shared.state)
            .decide(Some(user_code), false)
            .is_some()
    }

    /// Approves the latest code.
    pub fn approve_latest(&self) -> bool {
        lock(&self.shared.state).decide(None, true).is_some()
    }

    /// Denies the latest code.
    pub fn deny_latest(&self) -> bool {
        lock(&self.shared.state).decide(None, false).is_some()
    }

    /// The user revoked the grant at the provider: every access and refresh token dies.
    pub fn revoke_all(&self) {
        lock(&self.shared.state).revoke_all();
    }

    /// The DPoP nonce proofs must carry now (when the behavior requires nonces).
    pub fn dpop_nonce(&self) -> String {
        lock(&self.shared.state).dpop_nonce()
    }

    /// A new DPoP nonce: the next proof with the old one is answered `use_dpop_nonce`.
    pub fn rotate_dpop_nonce(&self) {
        lock(&self.shared.state).rotate_dpop_nonce();
    }

    /// Why DPoP proofs were refused so far, in order.
    pub fn dpop_refusals(&self) -> Vec<String> {
        lock(&self.shared.state).dpop_refusals.clone()
    }

    /// Why client assertions were refused so far, in order.
    pub fn assertion_refusals(&self) -> Vec<String> {
        lock(&self.shared.state).assertion_refusals.clone()
    }

    /// Every access token issued so far is expired from now on (refresh tokens stay valid):
    /// tests refresh paths without waiting for `token_lifetime`.
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.state).expire_access_tokens();
    }

    /// Access tokens that work now.
    pub fn live_access_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).live_access_tokens()
    }

    /// The scope an access token was issued with (`None`: no such token). A narrowed token's
    /// is less than its grant's.
    pub fn access_token_scope(&self, token: &str) -> Option<String> {
        lock(&self.shared.state).scope_of(token)
    }

    /// Refresh tokens that work now (active, not rotated out, grant not revoked).
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).live_refresh_tokens()
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.state).stats()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.state).recorded.clone()
    }

    /// The requests to one endpoint, in order.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<Recorded> {
        lock(&self.shared.state)
            .recorded
            .iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    /// Queues `fault` for the next request to `endpoint` (queue several for several).
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.shared.state)
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// The TLS handshakes that failed so far (HTTPS servers only), as rustls described them:
    /// e.g. `received fatal alert: UnknownCA` when the client refused the certificate.
    pub fn tls_errors(&self) -> Vec<String> {
        lock(&self.shared.tls_errors).clone()
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults.clear();
    }

    /// The server goes away as if stopped: the listener closes (connections are refused) and
    /// open connections are cut. Its state — codes, grants, tokens, stats — is kept for
    /// [`resume`](Self::resume). Tests use it for "the server was down for a while".
    pub fn pause(&mut self) {
        self.shut_down();
        self.shared.stop.store(false, Ordering::SeqCst);
    }

    /// Listens again on the same port after [`pause`](Self::pause), with the same state.
    pub fn resume(&mut self) -> std::io::Result<()> {
        if self.accept.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)?;
        let sh = Arc::clone(&self.shared);
        self.accept = Some(
            thread::Builder::new()
                .name("testserver-accept".into())
                .spawn(move || server::accept_loop(sh, listener))?,
        );
        Ok(())
    }

    fn shut_down(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            // Wake the blocking accept so it sees `stop` and drops the listener.
            let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
            if woke {
                let _ = h.join();
            }
        }
        let (streams, handles) = self.shared.take_conns();
        for s in streams {
            let _ = s.shutdown(Shutdown::Both);
        }
        for h in handles {
            let _ = h.join();
        }
    }

    /// Every authorization request that passed validation, in order.
    pub fn authorization_requests(&self) -> Vec<AuthorizationRequest> {
        lock(&self.shared.state).authorization_requests()
    }

    /// Approves (a code is issued) or denies the latest undecided authorization request
    /// and returns the redirect URL, without visiting it (a person copying the address bar,
    /// or a device's own web UI). `None` when nothing is pending.
    pub fn decide_authorization(&self, approve: bool) -> Option<String> {
        let mut st = lock(&self.shared.state);
        let b = st.behavior.clone();
        st.decide_authorization(&b, None, approve)
    }

    /// The browser opens `authorization_url` (a GET to this server), the user approves or
    /// denies on the consent page, and the redirect URL the browser is sent to is returned,
    /// not visited. Err when the server refused with a page (bad client or redirect URI)
    /// or the URL does not answer.
    pub fn authorization_redirect(
        &self,
        authorization_url: &str,
        approve: bool,
    ) -> Result<String, String> {
        let page = browser::get(authorization_url, BROWSER_TIMEOUT)?;
        match page.status {
            302 | 303 => page
                .header("location")
                .map(str::to_string)
                .ok_or_else(|| "authorization endpoint: redirect without Location".into()),
            200 => {
                // The consent page names its request; decide that one, as its form would.
                let idx = page
                    .body
                    .split("name=\"request\" value=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|n| n.parse::<usize>().ok());
                let mut st = lock(&self.shared.state);
                let b = st.behavior.clone();
                idx.and_then(|i| st.decide_authorization(&b, Some(i), approve))
                    .ok_or_else(|| "authorization endpoint: no pending request on the page".into())
            }
            s => Err(format!(
                "authorization endpoint answered {s}: {}",
                page.body
            )),
        }
    }

    /// [`authorization_redirect`](Self::authorization_redirect), then the browser follows
    /// the redirect (a GET to the client's redirect URI, e.g. devauth's loopback listener).
    /// Returns what that listener answered.
    pub fn sign_in(&self, authorization_url: &str, approve: bool) -> Result<Visit, String> {
        let to = self.authorization_redirect(authorization_url, approve)?;
        browser::get(&to, BROWSER_TIMEOUT)
    }

    /// The last redirect URL an approval or denial produced (to replay it).
    pub fn last_redirect(&self) -> Option<String> {
        lock(&self.shared.state).last_redirect.clone()
    }

    /// Polls the stats every 10 ms until `pred` holds (true) or `timeout` passed (false).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Stats) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if pred(&self.stats()) {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}
