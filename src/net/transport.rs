//! HTTP as devauth needs it: a small [`Transport`] trait (so the flow can be driven by a
//! scripted fake in tests) and its one real implementation on ureq + rustls (ring provider).
//!
//! What this module guarantees for every request:
//! - TLS is always verified: Mozilla's roots bundled in the binary, plus an optional CA file.
//! - Plain http only to 127.0.0.1, ::1 or localhost, and only when the config allows it.
//! - Connect and overall timeouts; response bodies capped; redirects never followed (an OAuth
//!   POST carries secrets and must not be replayed to wherever a `Location` points).
//! - Errors name the URL (never a query string, which could carry a code) and what failed;
//!   when a proxy is in the way, errors that are the proxy's name the proxy.
//! - Connections race the host's addresses (`net::tcp`), through a proxy when `net::proxy`
//!   picks one (an HTTP CONNECT tunnel, ureq's connector).
//!
//! It does not interpret bodies (that is `wire`) or statuses (that is `oauth`).

use crate::net::proxy::{ChosenProxy, ProxyConfig, ProxyError, ProxyRules};
use crate::secret::Secret;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A form field value; secrets stay wrapped until the body is encoded.
#[derive(Clone)]
pub enum FormValue {
    Plain(String),
    Secret(Secret),
}

impl FormValue {
    fn expose(&self) -> &str {
        match self {
            FormValue::Plain(s) => s,
            FormValue::Secret(s) => s.expose(),
        }
    }
}

/// One HTTP request. `Debug` shows field names only, never values of secrets.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, HeaderValue)>,
    pub form: Vec<(String, FormValue)>,
}

/// A header value; `Authorization` values are secrets.
#[derive(Clone)]
pub enum HeaderValue {
    Plain(String),
    Secret(Secret),
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            form: Vec::new(),
        }
    }

    pub fn post_form(url: impl Into<String>) -> Self {
        Request {
            method: Method::Post,
            ..Request::get(url)
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers
            .push((name.to_string(), HeaderValue::Plain(value.into())));
        self
    }

    pub fn secret_header(mut self, name: &str, value: Secret) -> Self {
        self.headers
            .push((name.to_string(), HeaderValue::Secret(value)));
        self
    }

    pub fn field(mut self, name: &str, value: impl Into<String>) -> Self {
        self.form
            .push((name.to_string(), FormValue::Plain(value.into())));
        self
    }

    pub fn secret_field(mut self, name: &str, value: &Secret) -> Self {
        self.form
            .push((name.to_string(), FormValue::Secret(value.clone())));
        self
    }

    /// The value of a form field (tests use this to check what was sent).
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose())
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| match v {
                HeaderValue::Plain(s) => s.as_str(),
                HeaderValue::Secret(s) => s.expose(),
            })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&str> = self.form.iter().map(|(k, _)| k.as_str()).collect();
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &headers)
            .field("form_fields", &fields)
            .finish()
    }
}

/// A response whose body has been read (within the cap).
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// The server's `Date`, to anchor token expiry to the server's clock.
    pub date: Option<String>,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    /// `DPoP-Nonce` (RFC 9449 §8): the nonce the server wants in the next proof.
    pub dpop_nonce: Option<String>,
    /// `WWW-Authenticate`, for a resource server's DPoP challenge (RFC 9449 §9).
    pub www_authenticate: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request got no HTTP response. Kept apart from "the server said no" on purpose: the
/// retry logic treats these as transient, except where noted.
#[derive(Debug)]
pub enum TransportError {
    /// The URL is refused by policy (http off loopback, bad scheme) — not retried.
    Refused { url: String, reason: String },
    /// No answer within the timeout.
    Timeout { url: String },
    /// DNS, TCP connect, connection reset and similar.
    Network { url: String, detail: String },
    /// TLS handshake or certificate failure. Retried (a clock that is not yet synced makes
    /// every certificate look invalid) but reported distinctly.
    Tls { url: String, detail: String },
    /// The body exceeded the cap.
    TooLarge { url: String, limit: usize },
    /// The answer was not valid HTTP.
    Protocol { url: String, detail: String },
    /// The CA file in the config could not be used — not retried.
    CaFile { path: PathBuf, detail: String },
    /// The proxy refused, failed or could not be reached: retried like a network error, but
    /// named as the proxy's doing, not the provider's.
    Proxy {
        url: String,
        /// `127.0.0.1:3128 (from HTTPS_PROXY)`: never the URL, which may hold a password.
        proxy: String,
        detail: String,
    },
    /// A proxy setting (config or environment) is not a usable proxy URL — not retried.
    ProxySetting(ProxyError),
}

impl TransportError {
    /// Whether trying again later could help.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            TransportError::Refused { .. }
                | TransportError::CaFile { .. }
                | TransportError::ProxySetting(_)
        )
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Refused { url, reason } => write!(f, "{url}: refused: {reason}"),
            TransportError::Timeout { url } => write!(f, "{url}: timed out"),
            TransportError::Network { url, detail } => write!(f, "{url}: network error: {detail}"),
            TransportError::Tls { url, detail } => write!(f, "{url}: TLS error: {detail}"),
            TransportError::TooLarge { url, limit } => {
                write!(f, "{url}: response body larger than {limit} bytes")
            }
            TransportError::Protocol { url, detail } => {
                write!(f, "{url}: bad HTTP answer: {detail}")
            }
            TransportError::CaFile { path, detail } => {
                write!(f, "ca_file {}: {detail}", path.display())
            }
            TransportError::Proxy { url, proxy, detail } => {
                write!(f, "{url}: proxy {proxy}: {detail}")
            }
            TransportError::ProxySetting(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TransportError {}

pub trait Transport {
    fn send(&self, req: &Request) -> Result<Response, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        (**self).send(req)
    }
}

/// Settings of the real transport (from the config's `[network]` and `[provider]`).
#[derive(Debug, Clone)]
pub struct TransportSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub ca_file: Option<PathBuf>,
    pub allow_http_loopback: bool,
    /// `[network] proxy`: the environment's variables unless the config says otherwise.
    pub proxy: ProxyConfig,
}

/// Size of each of ureq's per-connection input and output buffers.
const IO_BUFFER: usize = 16 * 1024;
/// Longest response header value kept (longer ones are cut; a DPoP nonce is far shorter).
const MAX_HEADER_KEPT: usize = 1024;
/// Largest response header block accepted (status line and all headers).
const MAX_RESPONSE_HEADERS: usize = 16 * 1024;

/// ureq + rustls (ring), synchronous. A clone shares the ureq agent (its connections).
#[derive(Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
    max_body_bytes: usize,
    allow_http_loopback: bool,
    proxy: ProxyRules,
}

impl HttpTransport {
    pub fn new(settings: &TransportSettings) -> Result<Self, TransportError> {
        use ureq::unversioned::resolver::DefaultResolver;
        use ureq::unversioned::transport::{ConnectProxyConnector, Connector};

        let ca_error = |path: &Path, detail: String| TransportError::CaFile {
            path: path.to_path_buf(),
            detail,
        };
        let extra = match &settings.ca_file {
            Some(path) => crate::net::tls::read_ca_file(path).map_err(|d| ca_error(path, d))?,
            None => Vec::new(),
        };
        let tls_config =
            crate::net::tls::client_config(&extra).map_err(|d| match &settings.ca_file {
                Some(path) => ca_error(path, d),
                None => TransportError::Tls {
                    url: String::new(),
                    detail: d,
                },
            })?;
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("devauth/", env!("CARGO_PKG_VERSION")))
            // ureq's defaults are 128 KiB per buffer and 64 KiB of response headers; OAuth
            // answers are small (bodies are capped separately), and on a device every 100 KiB
            // of RSS counts. Bodies larger than a buffer still stream through it.
            .input_buffer_size(IO_BUFFER)
            .output_buffer_size(IO_BUFFER)
            .max_response_header_size(MAX_RESPONSE_HEADERS)
            // No agent-wide proxy: each request gets the one `ProxyRules` picks for its URL
            // (ureq's own choice from the environment would proxy loopback too).
            .proxy(None)
            .build();
        // ureq's default chain (CONNECT proxy, TCP, TLS) with ours in the TCP slot (the
        // address race) and the TLS slot. The proxy's own connection runs through the whole
        // chain again (so an https:// proxy gets TLS, and the race too). No SOCKS: see
        // net::proxy.
        let connector = ()
            .chain(ConnectProxyConnector::default())
            .chain(crate::net::tcp::RacingConnector)
            .chain(crate::net::tls::TlsConnector { config: tls_config });
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Ok(HttpTransport {
            agent,
            max_body_bytes: settings.max_body_bytes,
            allow_http_loopback: settings.allow_http_loopback,
            // A malformed proxy setting stops here rather than silently going direct.
            proxy: ProxyRules::new(&settings.proxy, |name| std::env::var(name).ok())
                .map_err(TransportError::ProxySetting)?,
        })
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: &Request) -> Result<Response, TransportError> {
        let shown = redact_url(&req.url);
        check_scheme(&req.url, self.allow_http_loopback).map_err(|reason| {
            TransportError::Refused {
                url: shown.clone(),
                reason,
            }
        })?;
        let chosen = self.proxy.for_url(&req.url);
        let proxy = chosen.map(ChosenProxy::to_ureq);
        let result = match req.method {
            Method::Get => {
                let mut r = self.agent.get(&req.url).config().proxy(proxy).build();
                for (k, v) in &req.headers {
                    r = r.header(k.as_str(), header_str(v));
                }
                r.call()
            }
            Method::Post => {
                let mut r = self.agent.post(&req.url).config().proxy(proxy).build();
                for (k, v) in &req.headers {
                    r = r.header(k.as_str(), header_str(v));
                }
                r.send_form(req.form.iter().map(|(k, v)| (k.as_str(), v.expose())))
            }
        };
        let mut resp = result.map_err(|e| map_error(e, &shown, self.max_body_bytes, chosen))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(MAX_HEADER_KEPT).collect::<String>())
        };
        let status = resp.status().as_u16();
        let content_type = header("content-type");
        let date = header("date");
        let retry_after = header("retry-after");
        let location = header("location");
        let dpop_nonce = header("dpop-nonce");
        let www_authenticate = header("www-authenticate");
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_body_bytes as u64)
            .read_to_vec()
            .map_err(|e| map_error(e, &shown, self.max_body_bytes, chosen))?;
        Ok(Response {
            status,
            content_type,
            date,
            retry_after,
            location,
            dpop_nonce,
            www_authenticate,
            body,
        })
    }
}

/// A request of `devauth api`: any standard method, the caller's headers as given, the
/// `Authorization` value (`Bearer <token>` or `DPoP <token>`), the DPoP proof when the token is
/// bound (RFC 9449 §7.1), an optional body. Not `Debug`: it holds the token.
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub authorization: &'a Secret,
    pub dpop_proof: Option<&'a Secret>,
    pub body: Option<&'a [u8]>,
}

/// The answer to an [`ApiRequest`]; the body is read by the caller, as it arrives.
pub struct ApiResponse {
    pub status: u16,
    pub location: Option<String>,
    /// `DPoP-Nonce` and `WWW-Authenticate`: a resource server asking for a nonce (RFC 9449 §9).
    pub dpop_nonce: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: Box<dyn std::io::Read>,
}

impl HttpTransport {
    /// Sends a `devauth api` request with the same TLS, timeouts and URL rule as every other
    /// request (redirects are not followed: the request carries a token). The response body
    /// is not capped here: the caller streams it.
    pub fn send_api(&self, req: &ApiRequest<'_>) -> Result<ApiResponse, TransportError> {
        let shown = redact_url(req.url);
        let refused = |reason: String| TransportError::Refused {
            url: shown.clone(),
            reason,
        };
        check_scheme(req.url, self.allow_http_loopback).map_err(refused)?;
        let chosen = self.proxy.for_url(req.url);
        let proxy = chosen.map(ChosenProxy::to_ureq);
        let mut builder = ureq::http::Request::builder()
            .method(req.method)
            .uri(req.url);
        for (k, v) in req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder = builder.header("Authorization", req.authorization.expose());
        if let Some(proof) = req.dpop_proof {
            builder = builder.header("DPoP", proof.expose());
        }
        let agent = &self.agent;
        let result = match req.body {
            Some(body) => builder
                .body(body.to_vec())
                .map_err(|e| refused(e.to_string()))
                .map(|r| agent.run(agent.configure_request(r).proxy(proxy).build())),
            None => builder
                .body(())
                .map_err(|e| refused(e.to_string()))
                .map(|r| agent.run(agent.configure_request(r).proxy(proxy).build())),
        }?;
        let resp = result.map_err(|e| map_error(e, &shown, self.max_body_bytes, chosen))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(MAX_HEADER_KEPT).collect::<String>())
        };
        let location = header("location");
        let dpop_nonce = header("dpop-nonce");
        let www_authenticate = header("www-authenticate");
        Ok(ApiResponse {
            status,
            location,
            dpop_nonce,
            www_authenticate,
            body: Box::new(resp.into_body().into_reader()),
        })
    }
}

fn header_str(v: &HeaderValue) -> &str {
    match v {
        HeaderValue::Plain(s) => s,
        HeaderValue::Secret(s) => s.expose(),
    }
}

fn map_error(
    e: ureq::Error,
    url: &str,
    limit: usize,
    proxy: Option<&ChosenProxy>,
) -> TransportError {
    let url = url.to_string();
    let Some(proxy) = proxy else {
        return map_direct_error(e, url, limit);
    };
    if let Some(detail) = crate::net::proxy::failure(&e, proxy) {
        return TransportError::Proxy {
            url,
            proxy: proxy.label().to_string(),
            detail,
        };
    }
    // The proxy connected us: what failed is the provider's, but say which way it went.
    match map_direct_error(e, url, limit) {
        TransportError::Tls { url, detail } if detail.contains("certificate") => {
            TransportError::Tls {
                url,
                detail: format!(
                    "{detail} (through proxy {}; a proxy that inspects TLS needs its CA in \
                     provider.ca_file)",
                    proxy.label()
                ),
            }
        }
        TransportError::Network { url, detail } => TransportError::Network {
            url,
            detail: format!("{detail} (through proxy {})", proxy.label()),
        },
        other => other,
    }
}

fn map_direct_error(e: ureq::Error, url: String, limit: usize) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout { url },
        ureq::Error::BodyExceedsLimit(_) => TransportError::TooLarge { url, limit },
        ureq::Error::HostNotFound => TransportError::Network {
            url,
            detail: "host not found".into(),
        },
        ureq::Error::ConnectionFailed => TransportError::Network {
            url,
            detail: "connection failed".into(),
        },
        ureq::Error::Io(io) => {
            // rustls reports handshake and certificate failures as io errors wrapping a
            // rustls::Error (see tls.rs): name them as TLS trouble.
            if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                TransportError::Tls {
                    url,
                    detail: tls.to_string(),
                }
            } else if io.kind() == std::io::ErrorKind::TimedOut
                || io.kind() == std::io::ErrorKind::WouldBlock
            {
                TransportError::Timeout { url }
            } else {
                TransportError::Network {
                    url,
                    detail: io.to_string(),
                }
            }
        }
        ureq::Error::Tls(e) => TransportError::Tls {
            url,
            detail: e.to_string(),
        },
        ureq::Error::BadUri(u) => TransportError::Refused {
            url,
            reason: format!("bad URL: {}", u.chars().take(80).collect::<String>()),
        },
        ureq::Error::Protocol(p) => TransportError::Protocol {
            url,
            detail: p.to_string(),
        },
        other => TransportError::Protocol {
            url,
            detail: other.to_string(),
        },
    }
}

/// The transport-level URL rule: https anywhere; http only to loopback and only when allowed.
/// (config::check_url applies the same rule to configured URLs with a friendlier message.)
pub fn check_scheme(url: &str, allow_http_loopback: bool) -> Result<(), String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if !lower.starts_with("http://") {
        return Err("only https URLs are used".into());
    }
    let rest = url.get(7..).unwrap_or("");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host_of_authority(authority);
    let loopback = matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost");
    match (loopback, allow_http_loopback) {
        (true, true) => Ok(()),
        (true, false) => Err("plain http to loopback needs allow_http_loopback = true".into()),
        (false, _) => Err("plain http is only allowed to 127.0.0.1, ::1 or localhost".into()),
    }
}

fn host_of_authority(authority: &str) -> String {
    if authority.contains('@') {
        return String::new(); // userinfo in a URL is never accepted
    }
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map(|(h, _)| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    host.to_ascii_lowercase()
}

/// A URL without its query and fragment, for messages (a query may carry a user code).
pub fn redact_url(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rules() {
        assert!(check_scheme("https://example.com/x", false).is_ok());
        assert!(check_scheme("HTTPS://example.com/x", false).is_ok());
        assert!(check_scheme("http://127.0.0.1:8080/x", true).is_ok());
        assert!(check_scheme("http://[::1]:8080/x", true).is_ok());
        assert!(check_scheme("http://localhost/x", true).is_ok());
        assert!(check_scheme("http://127.0.0.1:8080/x", false).is_err());
        assert!(check_scheme("http://example.com/x", true).is_err());
        assert!(check_scheme("http://127.0.0.1.evil.com/x", true).is_err());
        assert!(check_scheme("http://user@127.0.0.1/x", true).is_err());
        assert!(check_scheme("ftp://127.0.0.1/x", true).is_err());
        assert!(check_scheme("javascript:alert(1)", true).is_err());
    }

    #[test]
    fn request_debug_hides_secret_values() {
        let r = Request::post_form("https://x/token?code=123")
            .secret_field("refresh_token", &Secret::new("rt-secret"))
            .secret_header("Authorization", Secret::new("Basic c2VjcmV0"));
        let d = format!("{r:?}");
        assert!(
            !d.contains("rt-secret") && !d.contains("c2VjcmV0") && !d.contains("123"),
            "{d}"
        );
        assert!(d.contains("refresh_token"));
        assert_eq!(r.form_value("refresh_token"), Some("rt-secret"));
    }

    #[test]
    fn proxy_failures_name_the_proxy_and_stay_transient() {
        use crate::net::proxy::parse_proxy_url;
        let plain = parse_proxy_url("http://10.0.0.1:3128", "HTTPS_PROXY").unwrap();
        let with_user = parse_proxy_url("http://u:hunter2@10.0.0.1:3128", "HTTPS_PROXY").unwrap();
        let url = "https://login.example.com/token";
        let shown = |e: ureq::Error, p: &ChosenProxy| {
            let t = map_error(e, url, 1024, Some(p));
            assert!(t.is_transient(), "{t}");
            assert!(!t.to_string().contains("hunter2"), "{t}");
            t.to_string()
        };
        let refused = |code: &str| {
            ureq::Error::ConnectProxyFailed(format!("proxy server responded {code}/{code}"))
        };
        let prefix = "https://login.example.com/token: proxy 10.0.0.1:3128 (from HTTPS_PROXY): ";
        for (e, p, says) in [
            (
                refused("407"),
                &plain,
                "wants a user and password (407 Proxy Authentication Required)",
            ),
            (
                refused("407"),
                &with_user,
                "refused the user and password (407 Proxy Authentication Required)",
            ),
            (refused("403"), &plain, "refused the tunnel (403 Forbidden)"),
            (
                refused("502"),
                &plain,
                "could not reach the provider (502 Bad Gateway)",
            ),
            (
                refused("504"),
                &plain,
                "could not reach the provider (504 Gateway Timeout)",
            ),
            (
                refused("418"),
                &plain,
                "refused the tunnel (418 I'm a teapot)",
            ),
            (
                ureq::Error::ConnectProxyFailed("proxy server did not respond".into()),
                &plain,
                "closed the connection without answering the CONNECT request",
            ),
            (
                ureq::Error::HostNotFound,
                &plain,
                "its host name was not found",
            ),
            (
                ureq::Error::Timeout(ureq::Timeout::Connect),
                &plain,
                "no tunnel within the connect timeout",
            ),
            (
                ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "10.0.0.1:3128 connection refused after 0 ms",
                )),
                &plain,
                "cannot be reached: 10.0.0.1:3128 connection refused after 0 ms",
            ),
        ] {
            let text = shown(e, p);
            assert!(text.starts_with(&format!("{prefix}{says}")), "{text}");
        }
        // After the tunnel: the provider's failures, saying which way they went.
        let tls = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let text = shown(tls, &plain);
        assert!(
            text.starts_with(
                "https://login.example.com/token: TLS error: invalid peer certificate"
            ) && text.ends_with(
                "(through proxy 10.0.0.1:3128 (from HTTPS_PROXY); a proxy that inspects TLS \
                     needs its CA in provider.ca_file)"
            ),
            "{text}"
        );
        let reset = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert_eq!(
            shown(reset, &plain),
            "https://login.example.com/token: network error: reset (through proxy 10.0.0.1:3128 \
             (from HTTPS_PROXY))"
        );
        let timeout = map_error(
            ureq::Error::Timeout(ureq::Timeout::Global),
            url,
            1024,
            Some(&plain),
        );
        assert!(
            matches!(timeout, TransportError::Timeout { .. }),
            "{timeout}"
        );
    }

    #[test]
    fn redact_url_drops_query() {
        assert_eq!(redact_url("https://a/b?user_code=X#f"), "https://a/b");
    }

    #[test]
    fn refused_url_is_not_sent() {
        let t = HttpTransport::new(&TransportSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_body_bytes: 1024,
            ca_file: None,
            allow_http_loopback: false,
            proxy: ProxyConfig::Direct,
        })
        .unwrap();
        let e = t.send(&Request::get("http://127.0.0.1:9/x")).unwrap_err();
        assert!(matches!(e, TransportError::Refused { .. }), "{e}");
        assert!(!e.is_transient());
    }

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |p: PathBuf| TransportSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_body_bytes: 1024,
            ca_file: Some(p),
            allow_http_loopback: false,
            proxy: ProxyConfig::Direct,
        };
        let missing = dir.path().join("nope.pem");
        assert!(matches!(
            HttpTransport::new(&settings(missing)),
            Err(TransportError::CaFile { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello").unwrap();
        let Err(e) = HttpTransport::new(&settings(empty)) else {
            panic!("accepted a file without certificates")
        };
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
