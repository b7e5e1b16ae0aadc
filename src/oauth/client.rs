//! The OAuth calls devauth makes — device authorization (RFC 8628 §3.1), device-code polling
//! (§3.4), the authorization code exchange (RFC 6749 §4.1.3 with PKCE), refresh (RFC 6749 §6),
//! revocation (RFC 7009), userinfo and OIDC discovery — built as requests, sent through a [`Transport`], and their answers classified.
//!
//! Classification is where "the server said X", "the network failed" and "the answer was
//! garbage" are kept apart: polling decides by the body's `error` field, never by the HTTP
//! status alone (GitHub sends errors with 200, Google sends `authorization_pending` with 428).

use crate::net::transport::{Request, Response, Transport, TransportError, redact_url};
use crate::net::wire::{self, DeviceAuthorization, Discovery, Fields, OAuthError, TokenResponse};
use crate::oauth::dpop::{self, Dpop};
use crate::oauth::flow::{Failure, PollAnswer};
use crate::oauth::jwt::{CLIENT_ASSERTION_TYPE, ClientAssertion};
use crate::secret::Secret;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// RFC 8628 §3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Who we are to the authorization server.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// HTTP Basic (RFC 6749 §2.3.1) instead of form fields.
    pub basic_auth: bool,
    /// `private_key_jwt` (RFC 7523 §2.2): a signed assertion instead of a secret.
    pub assertion: Option<Arc<ClientAssertion>>,
}

/// The endpoints, resolved (from a preset, the config or discovery).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    pub device_authorization: String,
    pub token: String,
    pub revocation: Option<String>,
    pub userinfo: Option<String>,
    /// RFC 6749 §3.1, from discovery (the code grant); configured ones live in the config.
    pub authorization: Option<String>,
    /// The discovery document lists ES256 in `dpop_signing_alg_values_supported` (RFC 9449
    /// §5.1): what `dpop = "auto"` decides by. False without discovery.
    pub dpop_es256: bool,
}

/// A token endpoint answer with the server's clock reading, to anchor expiry.
#[derive(Debug)]
pub struct Grant {
    pub tokens: TokenResponse,
    /// The server's `Date` header as Unix seconds, when sent and plausible.
    pub server_date: Option<i64>,
}

/// Why a call other than polling failed.
#[derive(Debug)]
pub enum CallError {
    /// No usable HTTP answer (network, TLS, timeout...).
    Transport(TransportError),
    /// The server answered with an OAuth error.
    Server {
        endpoint: String,
        status: u16,
        error: OAuthError,
        /// The answer's `Retry-After` (429, 503: when to ask again).
        retry_after: Option<Duration>,
    },
    /// The server answered something else we cannot use.
    Unexpected {
        endpoint: String,
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// A client assertion or DPoP proof could not be made (key, TPM, randomness, clock):
    /// nothing was sent.
    Signing(String),
}

impl CallError {
    /// Worth retrying later (network trouble, 5xx, 429) as opposed to a definite answer.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(e) => e.is_transient(),
            CallError::Server { status, error, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        error.error.as_str(),
                        "temporarily_unavailable" | "server_error"
                    )
            }
            CallError::Unexpected { status, .. } => *status >= 500 || *status == 429,
            CallError::Signing(_) => false,
        }
    }

    /// How long the server asked us to wait before asking again (RFC 9110 §10.2.3), if it
    /// answered at all and said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Transport(_) | CallError::Signing(_) => None,
            CallError::Server { retry_after, .. } | CallError::Unexpected { retry_after, .. } => {
                *retry_after
            }
        }
    }

    /// The OAuth error code, when the server sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            CallError::Server { error, .. } => Some(&error.error),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(e) => e.fmt(f),
            CallError::Server {
                endpoint,
                status,
                error,
                ..
            } => write!(f, "{endpoint}: HTTP {status}: {error}"),
            CallError::Unexpected {
                endpoint,
                status,
                detail,
                ..
            } => write!(f, "{endpoint}: HTTP {status}: {detail}"),
            CallError::Signing(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for CallError {}

impl From<TransportError> for CallError {
    fn from(e: TransportError) -> Self {
        CallError::Transport(e)
    }
}

/// RFC 8693 §2.1's grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the token type URI of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An OAuth client bound to one provider and one transport.
pub struct OAuthClient<T> {
    pub transport: T,
    pub endpoints: Endpoints,
    pub identity: ClientIdentity,
    pub scopes: Vec<String>,
    /// Extra form parameters for the device authorization request (e.g. Auth0's `audience`).
    pub extra_params: Vec<(String, String)>,
    /// Checks a URL the server sends before it is shown or followed.
    pub allow_http_loopback: bool,
    /// RFC 9449 proofs on token and revocation requests (and on userinfo with a DPoP token);
    /// `None`: no proofs, Bearer tokens.
    pub dpop: Option<Arc<Dpop>>,
}

impl<T: Transport> OAuthClient<T> {
    /// Sends an authenticated request to the authorization server, with a DPoP proof when
    /// `proof` and DPoP is on. A server that answers `use_dpop_nonce` with a new `DPoP-Nonce`
    /// (RFC 9449 §8) gets the request once more, with a new proof (and a new assertion).
    fn send_to_server(&self, base: &Request, proof: bool) -> Result<Response, CallError> {
        let dpop = self.dpop.as_deref().filter(|_| proof);
        let mut retried = false;
        loop {
            let req = to_server(&self.identity, &self.endpoints.token, dpop, base)?;
            let resp = self.transport.send(&req)?;
            if nonce_retry(dpop, &req.url, &resp, &mut retried) {
                continue;
            }
            return Ok(resp);
        }
    }

    fn url_check(&self) -> impl Fn(&str) -> Result<(), String> + '_ {
        move |u: &str| crate::net::transport::check_scheme(u, self.allow_http_loopback)
    }

    /// RFC 8628 §3.1: ask for a device code and user code.
    pub fn request_device_code(&self) -> Result<DeviceAuthorization, Failure> {
        let mut req = Request::post_form(&self.endpoints.device_authorization);
        if !self.scopes.is_empty() {
            req = req.field("scope", self.scopes.join(" "));
        }
        for (k, v) in &self.extra_params {
            req = req.field(k, v.as_str());
        }
        let endpoint = redact_url(&self.endpoints.device_authorization);
        // The device authorization request carries no proof (RFC 9449 covers token requests).
        let resp = self.send_to_server(&req, false).map_err(call_failure)?;
        let fields = match Fields::parse(&resp.body, resp.content_type.as_deref()) {
            Ok(f) => f,
            Err(e) => return Err(unusable(&endpoint, &resp, &e.to_string(), true)),
        };
        if let Some(err) = OAuthError::parse(&fields) {
            return Err(server_failure(&endpoint, &resp, err));
        }
        if !(200..300).contains(&resp.status) {
            return Err(unusable(
                &endpoint,
                &resp,
                "no error code in the body",
                true,
            ));
        }
        let check = self.url_check();
        DeviceAuthorization::parse(&fields, &check)
            .map_err(|e| Failure::Fatal(format!("{endpoint}: HTTP {}: {e}", resp.status)))
    }

    /// RFC 8628 §3.4: one poll of the token endpoint.
    pub fn poll(&self, device_code: &Secret) -> Result<(PollAnswer, Option<i64>), Failure> {
        let req = Request::post_form(&self.endpoints.token)
            .field("grant_type", DEVICE_CODE_GRANT)
            .secret_field("device_code", device_code);
        let endpoint = redact_url(&self.endpoints.token);
        let resp = self.send_to_server(&req, true).map_err(call_failure)?;
        let fields = match Fields::parse(&resp.body, resp.content_type.as_deref()) {
            Ok(f) => f,
            // A 2xx we cannot read may have carried tokens: polling again would redeem the
            // code twice (some servers then revoke the grant), so only non-2xx is retried.
            Err(e) => {
                let retry = !(200..300).contains(&resp.status);
                return Err(unusable(&endpoint, &resp, &e.to_string(), retry));
            }
        };
        if let Some(mut err) = OAuthError::parse(&fields) {
            err.status = Some(resp.status);
            // Transient server trouble is retried; every real OAuth answer goes to the flow.
            // The device-flow answers (RFC 8628 §3.5) go to the flow whatever the status (Google
            // sends 428, GitHub 200); any other error with a 5xx/429 status, or one that says
            // so, is server trouble worth retrying.
            let flow_answer = matches!(
                err.error.as_str(),
                "authorization_pending"
                    | "slow_down"
                    | "access_denied"
                    | "authorization_declined"
                    | "expired_token"
            );
            let trouble = resp.status >= 500
                || resp.status == 429
                || matches!(
                    err.error.as_str(),
                    "server_error" | "temporarily_unavailable"
                );
            if trouble && !flow_answer {
                return Err(Failure::Transient {
                    reason: format!("{endpoint}: HTTP {}: {err}", resp.status),
                    retry_after: retry_after(&resp),
                });
            }
            return Ok((PollAnswer::Error(err), None));
        }
        if !(200..300).contains(&resp.status) {
            return Err(unusable(
                &endpoint,
                &resp,
                "no error code in the body",
                true,
            ));
        }
        let tokens = TokenResponse::parse(&fields)
            .map_err(|e| Failure::Fatal(format!("{endpoint}: HTTP {}: {e}", resp.status)))?;
        check_token_type(&tokens, self.dpop.is_some())
            .map_err(|e| Failure::Fatal(format!("{endpoint}: HTTP {}: {e}", resp.status)))?;
        Ok((PollAnswer::Tokens(tokens), server_date(&resp)))
    }

    /// RFC 6749 §6: a new access token from a refresh token.
    pub fn refresh(&self, refresh_token: &Secret) -> Result<Grant, CallError> {
        let req = Request::post_form(&self.endpoints.token)
            .field("grant_type", "refresh_token")
            .secret_field("refresh_token", refresh_token);
        self.token_call(&req, true)
    }

    /// RFC 6749 §6 with `scope`: an access token with fewer scopes than the grant holds (the
    /// server may ignore the request; its answer's `scope` says what it granted, §5.1).
    pub fn refresh_narrowed(
        &self,
        refresh_token: &Secret,
        scope: &str,
    ) -> Result<Grant, CallError> {
        let req = Request::post_form(&self.endpoints.token)
            .field("grant_type", "refresh_token")
            .secret_field("refresh_token", refresh_token)
            .field("scope", scope);
        self.token_call(&req, true)
    }

    /// RFC 8693 §2.1: `subject` (an access token of this grant) exchanged for an access token
    /// with `scope`.
    pub fn exchange_token(&self, subject: &Secret, scope: &str) -> Result<Grant, CallError> {
        let req = Request::post_form(&self.endpoints.token)
            .field("grant_type", TOKEN_EXCHANGE_GRANT)
            .secret_field("subject_token", subject)
            .field("subject_token_type", ACCESS_TOKEN_TYPE)
            .field("requested_token_type", ACCESS_TOKEN_TYPE)
            .field("scope", scope);
        self.token_call(&req, true)
    }

    /// RFC 6749 §4.1.3 + RFC 7636 §4.5: the authorization code for tokens. `redirect_uri` must
    /// be the one the authorization URL carried; the verifier proves this client started it.
    pub fn exchange_code(
        &self,
        code: &Secret,
        redirect_uri: &str,
        code_verifier: &Secret,
    ) -> Result<Grant, CallError> {
        let req = Request::post_form(&self.endpoints.token)
            .field("grant_type", "authorization_code")
            .secret_field("code", code)
            .field("redirect_uri", redirect_uri)
            .secret_field("code_verifier", code_verifier);
        self.token_call(&req, true)
    }

    /// RFC 7523 §2.1: an access token for a signed JWT assertion (service accounts). Client
    /// authentication is optional in this grant (Google's service accounts send none): it is
    /// added only when `client_auth` (a `client_id` was configured). `scope` is the form
    /// parameter; Google wants the scopes inside the assertion instead.
    pub fn jwt_bearer(
        &self,
        assertion: &Secret,
        scope: Option<&str>,
        client_auth: bool,
    ) -> Result<Grant, CallError> {
        let mut req = Request::post_form(&self.endpoints.token)
            .field("grant_type", crate::oauth::jwt::JWT_BEARER_GRANT)
            .secret_field("assertion", assertion);
        if let Some(scope) = scope {
            req = req.field("scope", scope);
        }
        if client_auth {
            return self.token_call(&req, true);
        }
        let resp = self
            .transport
            .send(&req.header("Accept", "application/json"))?;
        self.token_answer(resp)
    }

    /// RFC 7009: revoke one token. `Ok(false)` when the provider has no revocation endpoint.
    pub fn revoke(&self, token: &Secret, hint: &str) -> Result<bool, CallError> {
        let Some(url) = &self.endpoints.revocation else {
            return Ok(false);
        };
        let req = Request::post_form(url)
            .secret_field("token", token)
            .field("token_type_hint", hint);
        let resp = self.send_to_server(&req, true)?;
        // §2.2: 200 whether or not the token was valid. An error body names the reason.
        if (200..300).contains(&resp.status) {
            return Ok(true);
        }
        Err(error_from(&redact_url(url), &resp))
    }

    /// The userinfo endpoint (OIDC Core §5.3), for the account name. A DPoP-bound token
    /// (`token_type` DPoP) goes with a proof carrying its hash (RFC 9449 §7.1).
    pub fn userinfo(
        &self,
        access_token: &Secret,
        token_type: &str,
    ) -> Result<Option<Fields>, CallError> {
        let Some(url) = &self.endpoints.userinfo else {
            return Ok(None);
        };
        let dpop = self
            .dpop
            .as_deref()
            .filter(|_| token_type.eq_ignore_ascii_case("dpop"));
        let mut retried = false;
        let resp = loop {
            let req = to_resource(url, access_token, dpop)?;
            let resp = self.transport.send(&req)?;
            if nonce_retry(dpop, url, &resp, &mut retried) {
                continue;
            }
            break resp;
        };
        let (_, fields) = answer(resp, url)?;
        Ok(Some(fields))
    }

    /// A token endpoint call whose 2xx answer must carry tokens.
    fn token_call(&self, req: &Request, proof: bool) -> Result<Grant, CallError> {
        let resp = self.send_to_server(req, proof)?;
        self.token_answer(resp)
    }

    fn token_answer(&self, resp: Response) -> Result<Grant, CallError> {
        grant_from(resp, &self.endpoints.token, self.dpop.is_some())
    }
}

/// Parses an answer, turning any non-2xx or error body into a `CallError`.
fn answer(resp: Response, url: &str) -> Result<(Response, Fields), CallError> {
    let endpoint = redact_url(url);
    let fields = Fields::parse(&resp.body, resp.content_type.as_deref()).map_err(|e| {
        if (200..300).contains(&resp.status) {
            CallError::Unexpected {
                endpoint: endpoint.clone(),
                status: resp.status,
                detail: e.to_string(),
                retry_after: None,
            }
        } else {
            error_from(&endpoint, &resp)
        }
    })?;
    if let Some(error) = OAuthError::parse(&fields) {
        return Err(CallError::Server {
            endpoint,
            status: resp.status,
            error,
            retry_after: retry_after(&resp),
        });
    }
    if !(200..300).contains(&resp.status) {
        return Err(error_from(&endpoint, &resp));
    }
    Ok((resp, fields))
}

// The client authentication and DPoP parts below take no transport: they are compiled once,
// not once per transport type.

/// `base` authenticated as this client and, with `dpop`, carrying a fresh proof: a request to
/// the authorization server. Every call signs anew (an assertion's and a proof's `jti` are used
/// once, retries included).
fn to_server(
    identity: &ClientIdentity,
    token_endpoint: &str,
    dpop: Option<&Dpop>,
    base: &Request,
) -> Result<Request, CallError> {
    // client_id goes in the body even with Basic: some servers reject a poll without it
    // (RFC 8628 §3.4 requires it for public clients).
    let mut req = base
        .clone()
        .field("client_id", &identity.client_id)
        .header("Accept", "application/json");
    if let Some(assertion) = &identity.assertion {
        // RFC 7523 §2.2.
        let jwt = assertion
            .sign(
                &req.url,
                token_endpoint,
                crate::clock::unix_secs(crate::clock::wall_now()),
            )
            .map_err(CallError::Signing)?;
        req = req
            .field("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .secret_field("client_assertion", &jwt);
    } else if let Some(secret) = &identity.client_secret {
        if identity.basic_auth {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
            let pair = format!(
                "{}:{}",
                wire::form_encode(&identity.client_id),
                wire::form_encode(secret.expose())
            );
            let value = format!("Basic {}", wire::base64_encode(pair.as_bytes()));
            req = req.secret_header("Authorization", Secret::new(value));
        } else {
            req = req.secret_field("client_secret", secret);
        }
    }
    if let Some(d) = dpop {
        let proof = d
            .proof("POST", &req.url, None)
            .map_err(CallError::Signing)?;
        req = req.secret_header("DPoP", proof);
    }
    Ok(req)
}

/// A GET of a resource with `access_token`: `Authorization: DPoP` and a proof carrying the
/// token's hash when `dpop` (RFC 9449 §7.1), else `Bearer`.
fn to_resource(
    url: &str,
    access_token: &Secret,
    dpop: Option<&Dpop>,
) -> Result<Request, CallError> {
    let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
    let mut req = Request::get(url)
        .header("Accept", "application/json")
        .secret_header(
            "Authorization",
            Secret::new(format!("{scheme} {}", access_token.expose())),
        );
    if let Some(d) = dpop {
        let proof = d
            .proof("GET", url, Some(access_token))
            .map_err(CallError::Signing)?;
        req = req.secret_header("DPoP", proof);
    }
    Ok(req)
}

/// Keeps a `DPoP-Nonce` the answer carried and says whether to send the request once more: the
/// server asked for a nonce (an authorization server's `use_dpop_nonce` error, §8, or a
/// resource server's `WWW-Authenticate: DPoP error="use_dpop_nonce"`, §9), gave a new one, and
/// this was the first try.
fn nonce_retry(dpop: Option<&Dpop>, url: &str, resp: &Response, retried: &mut bool) -> bool {
    let (Some(d), Some(nonce)) = (dpop, &resp.dpop_nonce) else {
        return false;
    };
    let new_nonce = d.remember_nonce(url, nonce);
    let asked = match resp.status {
        400 => Fields::parse(&resp.body, resp.content_type.as_deref())
            .ok()
            .and_then(|f| OAuthError::parse(&f))
            .is_some_and(|e| e.error == dpop::USE_DPOP_NONCE),
        401 => resp
            .www_authenticate
            .as_deref()
            .is_some_and(dpop::challenge_wants_nonce),
        _ => false,
    };
    let retry = new_nonce && asked && !*retried;
    *retried |= retry;
    retry
}

/// A bound token needs a proof with every use: one nobody asked for cannot be used.
fn check_token_type(tokens: &TokenResponse, dpop: bool) -> Result<(), String> {
    if tokens.is_dpop() && !dpop {
        return Err(
            "the provider issued a DPoP-bound token although no DPoP proof was sent".into(),
        );
    }
    Ok(())
}

/// The tokens of a token endpoint's answer.
fn grant_from(resp: Response, token_endpoint: &str, dpop: bool) -> Result<Grant, CallError> {
    let (resp, fields) = answer(resp, token_endpoint)?;
    let unexpected = |detail: String| CallError::Unexpected {
        endpoint: redact_url(token_endpoint),
        status: resp.status,
        detail,
        retry_after: None,
    };
    let tokens = TokenResponse::parse(&fields).map_err(|e| unexpected(e.to_string()))?;
    check_token_type(&tokens, dpop).map_err(unexpected)?;
    Ok(Grant {
        tokens,
        server_date: server_date(&resp),
    })
}

/// OIDC discovery (OpenID Connect Discovery 1.0 §4): the endpoints of an issuer.
pub fn discover(
    transport: &impl Transport,
    issuer: &str,
    allow_http_loopback: bool,
    device_flow: bool,
) -> Result<Endpoints, CallError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = transport.send(&Request::get(&url).header("Accept", "application/json"))?;
    let endpoint = redact_url(&url);
    if !(200..300).contains(&resp.status) {
        return Err(error_from(&endpoint, &resp));
    }
    let unexpected = |detail: String| CallError::Unexpected {
        endpoint: endpoint.clone(),
        status: resp.status,
        detail,
        retry_after: None,
    };
    let fields = Fields::parse(&resp.body, resp.content_type.as_deref())
        .map_err(|e| unexpected(e.to_string()))?;
    let doc = Discovery::parse(&fields).map_err(|e| unexpected(e.to_string()))?;
    // OIDC Discovery §4.3: the document must name the issuer it was fetched for, or an
    // attacker-controlled document could redirect the flow to other endpoints.
    if let Some(named) = &doc.issuer {
        if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(unexpected(format!(
                "the document names issuer {}, not the configured {}",
                redact_url(named),
                redact_url(issuer)
            )));
        }
    }
    let check = |name: &str, u: Option<String>| -> Result<Option<String>, CallError> {
        match u {
            None => Ok(None),
            Some(u) => crate::net::transport::check_scheme(&u, allow_http_loopback)
                .map(|()| Some(u))
                .map_err(|reason| unexpected(format!("{name} refused: {reason}"))),
        }
    };
    let device_authorization = check(
        "device_authorization_endpoint",
        doc.device_authorization_endpoint,
    )?;
    // The code grant never uses it: a tenant with the device grant switched off still signs in.
    let device_authorization = match device_authorization {
        Some(d) => d,
        None if !device_flow => String::new(),
        None => {
            return Err(unexpected(
                "the issuer does not advertise a device_authorization_endpoint (device flow \
                 not enabled?); set device_authorization_endpoint and token_endpoint \
                 explicitly, or sign in with grant = \"authorization_code\""
                    .into(),
            ));
        }
    };
    let token = check("token_endpoint", doc.token_endpoint)?
        .ok_or_else(|| unexpected("no token_endpoint in the discovery document".into()))?;
    Ok(Endpoints {
        device_authorization,
        token,
        revocation: check("revocation_endpoint", doc.revocation_endpoint)?,
        userinfo: check("userinfo_endpoint", doc.userinfo_endpoint)?,
        authorization: check("authorization_endpoint", doc.authorization_endpoint)?,
        dpop_es256: doc.dpop_es256,
    })
}

/// A failure to send while polling or asking for a code, for the flow.
fn call_failure(e: CallError) -> Failure {
    match e {
        CallError::Transport(t) => transport_failure(t),
        other => Failure::Fatal(other.to_string()),
    }
}

fn transport_failure(e: TransportError) -> Failure {
    if e.is_transient() {
        Failure::Transient {
            reason: e.to_string(),
            retry_after: None,
        }
    } else {
        Failure::Fatal(e.to_string())
    }
}

/// RFC 9110 §10.2.3: `Retry-After` is delay-seconds or an HTTP-date. A date is taken relative
/// to the answer's own `Date` header, never to the device's clock (which may be unset or off);
/// without a `Date` it cannot be placed and our own backoff applies. A date in the past is 0.
fn retry_after(resp: &Response) -> Option<Duration> {
    let value = resp.retry_after.as_deref()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = wire::parse_http_date(value)?;
    let date = server_date(resp)?;
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(date)).unwrap_or(0),
    ))
}

fn server_date(resp: &Response) -> Option<i64> {
    resp.date.as_deref().and_then(wire::parse_http_date)
}

/// An OAuth error answer while asking for a code or polling (non-`error`-driven paths).
fn server_failure(endpoint: &str, resp: &Response, err: OAuthError) -> Failure {
    let reason = format!("{endpoint}: HTTP {}: {err}", resp.status);
    if resp.status >= 500
        || resp.status == 429
        || matches!(
            err.error.as_str(),
            "server_error" | "temporarily_unavailable" | "slow_down"
        )
    {
        Failure::Transient {
            reason,
            retry_after: retry_after(resp),
        }
    } else {
        Failure::Fatal(reason)
    }
}

/// A body we cannot use: retried when the status (or the caller) says it may be temporary.
fn unusable(endpoint: &str, resp: &Response, detail: &str, retry_ok: bool) -> Failure {
    let detail = redirect_refused(resp).unwrap_or_else(|| detail.to_string());
    let reason = format!("{endpoint}: HTTP {}: {detail}", resp.status);
    let temporary = resp.status >= 500 || resp.status == 429 || resp.status == 408;
    if retry_ok && (temporary || (200..300).contains(&resp.status)) {
        Failure::Transient {
            reason,
            retry_after: retry_after(resp),
        }
    } else {
        Failure::Fatal(reason)
    }
}

/// What to say about a 3xx answer: the transport never follows redirects (an OAuth POST
/// carries secrets), so the target is named (without its query) and refused.
fn redirect_refused(resp: &Response) -> Option<String> {
    if !(300..=399).contains(&resp.status) {
        return None;
    }
    Some(match &resp.location {
        Some(loc) => format!("redirect to {} refused", redact_url(loc)),
        None => "redirect refused".to_string(),
    })
}

fn error_from(endpoint: &str, resp: &Response) -> CallError {
    if let Ok(fields) = Fields::parse(&resp.body, resp.content_type.as_deref()) {
        if let Some(error) = OAuthError::parse(&fields) {
            return CallError::Server {
                endpoint: endpoint.to_string(),
                status: resp.status,
                error,
                retry_after: retry_after(resp),
            };
        }
    }
    let detail = match redirect_refused(resp) {
        Some(d) => d,
        None => match Fields::parse(&resp.body, resp.content_type.as_deref()) {
            Err(e) => e.to_string(),
            Ok(_) => "unexpected answer without an error code".into(),
        },
    };
    CallError::Unexpected {
        endpoint: endpoint.to_string(),
        status: resp.status,
        detail,
        retry_after: retry_after(resp),
    }
}

#[cfg(test)]
mod proof_tests;

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A transport that answers from a script and records what was sent.
    #[derive(Default)]
    pub struct Scripted {
        pub answers: RefCell<Vec<Result<Response, TransportError>>>,
        pub sent: RefCell<Vec<Request>>,
    }

    impl Scripted {
        pub fn new(answers: Vec<Result<Response, TransportError>>) -> Self {
            Scripted {
                answers: RefCell::new(answers.into_iter().rev().collect()),
                sent: RefCell::default(),
            }
        }
    }

    impl Transport for Scripted {
        fn send(&self, req: &Request) -> Result<Response, TransportError> {
            self.sent.borrow_mut().push(req.clone());
            self.answers
                .borrow_mut()
                .pop()
                .unwrap_or_else(|| panic!("unexpected request {req:?}"))
        }
    }

    pub fn json(status: u16, body: &str) -> Result<Response, TransportError> {
        Ok(Response {
            status,
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            ..Response::default()
        })
    }

    fn client(t: Scripted, secret: Option<&str>, basic: bool) -> OAuthClient<Scripted> {
        OAuthClient {
            transport: t,
            endpoints: Endpoints {
                device_authorization: "https://as.example/device".into(),
                token: "https://as.example/token".into(),
                revocation: Some("https://as.example/revoke".into()),
                userinfo: None,
                authorization: None,
                dpop_es256: false,
            },
            identity: ClientIdentity {
                client_id: "tv app".into(),
                client_secret: secret.map(Secret::new),
                basic_auth: basic,
                assertion: None,
            },
            scopes: vec!["openid".into(), "offline_access".into()],
            extra_params: vec![("audience".into(), "https://api".into())],
            allow_http_loopback: false,
            dpop: None,
        }
    }

    const CODE: &str = r#"{"device_code":"dc","user_code":"AB-CD","verification_uri":"https://as.example/d","expires_in":600}"#;

    #[test]
    fn device_request_carries_client_scope_and_extra_params() {
        let c = client(Scripted::new(vec![json(200, CODE)]), Some("s3cret"), false);
        let auth = c.request_device_code().unwrap();
        assert_eq!(auth.user_code, "AB-CD");
        let sent = c.transport.sent.borrow();
        let r = &sent[0];
        assert_eq!(r.form_value("client_id"), Some("tv app"));
        assert_eq!(r.form_value("scope"), Some("openid offline_access"));
        assert_eq!(r.form_value("audience"), Some("https://api"));
        assert_eq!(r.form_value("client_secret"), Some("s3cret"));
        assert_eq!(r.header_value("accept"), Some("application/json"));
    }

    #[test]
    fn basic_auth_form_encodes_then_base64s() {
        let c = client(Scripted::new(vec![json(200, CODE)]), Some("a:b c"), true);
        c.request_device_code().unwrap();
        let sent = c.transport.sent.borrow();
        let auth = sent[0].header_value("authorization").unwrap().to_string();
        let decoded = wire::base64url_decode(auth.trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "tv+app:a%3Ab+c");
        assert_eq!(sent[0].form_value("client_secret"), None);
        assert_eq!(
            sent[0].form_value("client_id"),
            Some("tv app"),
            "client_id still in body"
        );
    }

    #[test]
    fn poll_sends_the_device_code_grant() {
        let c = client(
            Scripted::new(vec![json(400, r#"{"error":"authorization_pending"}"#)]),
            None,
            false,
        );
        let (answer, _) = c.poll(&Secret::new("dc")).unwrap();
        assert!(matches!(answer, PollAnswer::Error(e) if e.error == "authorization_pending"));
        let sent = c.transport.sent.borrow();
        assert_eq!(sent[0].form_value("grant_type"), Some(DEVICE_CODE_GRANT));
        assert_eq!(sent[0].form_value("device_code"), Some("dc"));
        assert_eq!(sent[0].form_value("client_id"), Some("tv app"));
    }

    #[test]
    fn code_exchange_sends_code_verifier_and_redirect_uri() {
        let body = r#"{"access_token":"at","refresh_token":"rt","expires_in":3600}"#;
        let c = client(Scripted::new(vec![json(200, body)]), Some("s3cret"), false);
        let grant = c
            .exchange_code(
                &Secret::new("the-code"),
                "http://127.0.0.1:5/cb",
                &Secret::new("v".repeat(43)),
            )
            .unwrap();
        assert_eq!(grant.tokens.access_token.expose(), "at");
        let sent = c.transport.sent.borrow();
        let r = &sent[0];
        assert_eq!(r.url, "https://as.example/token");
        assert_eq!(r.form_value("grant_type"), Some("authorization_code"));
        assert_eq!(r.form_value("code"), Some("the-code"));
        assert_eq!(r.form_value("redirect_uri"), Some("http://127.0.0.1:5/cb"));
        assert_eq!(r.form_value("code_verifier"), Some("v".repeat(43).as_str()));
        assert_eq!(r.form_value("client_secret"), Some("s3cret"));
    }

    #[test]
    fn code_exchange_error_is_the_servers_error() {
        let body = r#"{"error":"invalid_grant","error_description":"code_verifier mismatch"}"#;
        let c = client(Scripted::new(vec![json(400, body)]), None, false);
        let err = c
            .exchange_code(
                &Secret::new("c"),
                "http://127.0.0.1:5/cb",
                &Secret::new("v"),
            )
            .unwrap_err();
        assert_eq!(err.oauth_error(), Some("invalid_grant"));
        assert_eq!(
            err.to_string(),
            "https://as.example/token: HTTP 400: invalid_grant (code_verifier mismatch)"
        );
    }

    #[test]
    fn poll_decides_by_error_field_not_status() {
        for status in [200, 400, 401, 428] {
            let c = client(
                Scripted::new(vec![json(status, r#"{"error":"slow_down","interval":10}"#)]),
                None,
                false,
            );
            let (answer, _) = c.poll(&Secret::new("dc")).unwrap();
            assert!(
                matches!(answer, PollAnswer::Error(e) if e.error == "slow_down"),
                "{status}"
            );
        }
    }

    #[test]
    fn poll_classifies_failures() {
        let cases: Vec<(Result<Response, TransportError>, bool)> = vec![
            (json(503, "{}"), true),
            (json(500, r#"{"error":"server_error"}"#), true),
            (json(404, "{}"), false),
            (
                Ok(Response {
                    status: 502,
                    content_type: Some("text/html".into()),
                    body: b"<html>bad gateway</html>".to_vec(),
                    ..Response::default()
                }),
                true,
            ),
            // A 200 we cannot read may have carried tokens: never poll again.
            (json(200, r#"{"access_tok"#), false),
            (
                Err(TransportError::Timeout {
                    url: "https://as.example/token".into(),
                }),
                true,
            ),
        ];
        for (answer, transient) in cases {
            let c = client(Scripted::new(vec![answer]), None, false);
            let f = c.poll(&Secret::new("dc")).unwrap_err();
            assert_eq!(matches!(f, Failure::Transient { .. }), transient, "{f:?}");
        }
    }

    #[test]
    fn rate_limits_with_any_error_code_are_retried_but_slow_down_is_not() {
        let c = client(
            Scripted::new(vec![
                json(429, r#"{"error":"rate_limited"}"#),
                json(429, r#"{"error":"slow_down"}"#),
                json(503, r#"{"error":"authorization_pending"}"#),
            ]),
            None,
            false,
        );
        assert!(matches!(
            c.poll(&Secret::new("dc")),
            Err(Failure::Transient { .. })
        ));
        let (a, _) = c.poll(&Secret::new("dc")).unwrap();
        assert!(matches!(a, PollAnswer::Error(e) if e.error == "slow_down"));
        let (a, _) = c.poll(&Secret::new("dc")).unwrap();
        assert!(matches!(a, PollAnswer::Error(e) if e.error == "authorization_pending"));
    }

    #[test]
    fn retry_after_is_read_from_429() {
        let c = client(
            Scripted::new(vec![Ok(Response {
                status: 429,
                content_type: Some("application/json".into()),
                retry_after: Some("7".into()),
                body: b"{}".to_vec(),
                ..Response::default()
            })]),
            None,
            false,
        );
        let f = c.poll(&Secret::new("dc")).unwrap_err();
        assert_eq!(
            f,
            Failure::Transient {
                reason: "https://as.example/token: HTTP 429: no error code in the body".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn a_refused_refresh_carries_its_retry_after_in_seconds_or_as_a_date() {
        let refused = |retry_after: &str, date: Option<&str>| {
            Ok(Response {
                status: 503,
                content_type: Some("application/json".into()),
                retry_after: Some(retry_after.into()),
                date: date.map(str::to_string),
                body: br#"{"error":"temporarily_unavailable"}"#.to_vec(),
                ..Response::default()
            })
        };
        let c = client(
            Scripted::new(vec![
                refused("600", None),
                // An HTTP-date counts from the answer's own Date, not from the device's clock.
                refused(
                    "Sun, 06 Nov 1994 08:59:37 GMT",
                    Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                ),
                refused("Sun, 06 Nov 1994 08:49:37 GMT", None),
                refused(
                    "Sun, 06 Nov 1994 08:40:00 GMT",
                    Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                ),
                refused("soon", None),
                Ok(Response {
                    status: 502,
                    content_type: Some("text/html".into()),
                    retry_after: Some("30".into()),
                    body: b"<html>bad gateway</html>".to_vec(),
                    ..Response::default()
                }),
            ]),
            None,
            false,
        );
        let rt = Secret::new("rt");
        let next = || match c.refresh(&rt) {
            Err(e) => e,
            Ok(_) => panic!("not refused"),
        };
        let e = next();
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
        assert_eq!(next().retry_after(), Some(Duration::from_secs(600)));
        assert_eq!(
            next().retry_after(),
            None,
            "a date without Date: unplaceable"
        );
        assert_eq!(
            next().retry_after(),
            Some(Duration::ZERO),
            "a date in the past"
        );
        assert_eq!(next().retry_after(), None, "garbage");
        let html = next();
        assert!(matches!(html, CallError::Unexpected { status: 502, .. }));
        assert_eq!(html.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn device_request_errors_name_endpoint_status_and_error() {
        let c = client(
            Scripted::new(vec![json(
                401,
                r#"{"error":"invalid_client","error_description":"Unknown client"}"#,
            )]),
            None,
            false,
        );
        let Failure::Fatal(msg) = c.request_device_code().unwrap_err() else {
            panic!()
        };
        assert_eq!(
            msg,
            "https://as.example/device: HTTP 401: invalid_client (Unknown client)"
        );
    }

    #[test]
    fn refresh_and_invalid_grant() {
        let c = client(
            Scripted::new(vec![
                json(
                    200,
                    r#"{"access_token":"at2","token_type":"Bearer","expires_in":60}"#,
                ),
                json(400, r#"{"error":"invalid_grant"}"#),
            ]),
            None,
            false,
        );
        let g = c.refresh(&Secret::new("rt")).unwrap();
        assert_eq!(g.tokens.access_token.expose(), "at2");
        let e = c.refresh(&Secret::new("rt")).unwrap_err();
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert!(!e.is_transient());
        let sent = c.transport.sent.borrow();
        assert_eq!(sent[0].form_value("grant_type"), Some("refresh_token"));
        assert_eq!(sent[0].form_value("refresh_token"), Some("rt"));
    }

    #[test]
    fn narrowed_refresh_and_token_exchange_carry_the_scope() {
        let answer =
            r#"{"access_token":"at-n","token_type":"Bearer","expires_in":60,"scope":"read"}"#;
        let c = client(
            Scripted::new(vec![json(200, answer), json(200, answer)]),
            Some("s3cret"),
            false,
        );
        let g = c.refresh_narrowed(&Secret::new("rt"), "read").unwrap();
        assert_eq!(g.tokens.scopes(), vec!["read".to_string()]);
        c.exchange_token(&Secret::new("at"), "read").unwrap();
        let sent = c.transport.sent.borrow();
        assert_eq!(sent[0].form_value("grant_type"), Some("refresh_token"));
        assert_eq!(sent[0].form_value("scope"), Some("read"));
        assert_eq!(sent[0].form_value("client_secret"), Some("s3cret"));
        let x = &sent[1];
        assert_eq!(x.form_value("grant_type"), Some(TOKEN_EXCHANGE_GRANT));
        assert_eq!(x.form_value("subject_token"), Some("at"));
        assert_eq!(x.form_value("subject_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(
            x.form_value("requested_token_type"),
            Some(ACCESS_TOKEN_TYPE)
        );
        assert_eq!(x.form_value("scope"), Some("read"));
    }

    #[test]
    fn revoke_without_endpoint_is_not_an_error() {
        let mut c = client(Scripted::new(vec![json(200, "")]), None, false);
        assert!(c.revoke(&Secret::new("rt"), "refresh_token").unwrap());
        assert_eq!(
            c.transport.sent.borrow()[0].form_value("token_type_hint"),
            Some("refresh_token")
        );
        c.endpoints.revocation = None;
        assert!(!c.revoke(&Secret::new("rt"), "refresh_token").unwrap());
    }

    #[test]
    fn discovery_for_the_code_grant_needs_no_device_endpoint_and_checks_the_authorization_one() {
        // A discovery document without device_authorization_endpoint, for the code grant.
        let discover_code_grant = |doc: &str| {
            discover(
                &Scripted::new(vec![json(200, doc)]),
                "https://i",
                false,
                false,
            )
        };
        let doc = r#"{"issuer":"https://i","token_endpoint":"https://i/t","authorization_endpoint":"https://i/a"}"#;
        let ep = discover_code_grant(doc).unwrap();
        assert_eq!(ep.authorization.as_deref(), Some("https://i/a"));
        assert_eq!(ep.device_authorization, "");
        let doc = r#"{"issuer":"https://i","token_endpoint":"https://i/t","authorization_endpoint":"http://evil/a"}"#;
        let e = discover_code_grant(doc).unwrap_err();
        assert!(
            e.to_string().contains("authorization_endpoint refused"),
            "{e}"
        );
    }

    #[test]
    fn discovery_requires_device_endpoint_and_checks_urls() {
        let t = Scripted::new(vec![json(
            200,
            r#"{"issuer":"https://i","token_endpoint":"https://i/t"}"#,
        )]);
        let e = discover(&t, "https://i", false, true).unwrap_err();
        assert!(
            e.to_string().contains("device_authorization_endpoint"),
            "{e}"
        );
        let t = Scripted::new(vec![json(
            200,
            r#"{"device_authorization_endpoint":"http://evil/d","token_endpoint":"https://i/t"}"#,
        )]);
        assert!(discover(&t, "https://i/", false, true).is_err());
        let t = Scripted::new(vec![json(
            200,
            r#"{"issuer":"https://evil","device_authorization_endpoint":"https://i/d","token_endpoint":"https://i/t"}"#,
        )]);
        let e = discover(&t, "https://i", false, true).unwrap_err();
        assert!(e.to_string().contains("names issuer"), "{e}");
        let t = Scripted::new(vec![json(
            200,
            r#"{"device_authorization_endpoint":"https://i/d","token_endpoint":"https://i/t","revocation_endpoint":"https://i/r"}"#,
        )]);
        let ep = discover(&t, "https://i/", false, true).unwrap();
        assert_eq!(ep.revocation.as_deref(), Some("https://i/r"));
        assert_eq!(
            t.sent.borrow()[0].url,
            "https://i/.well-known/openid-configuration"
        );
    }
}
