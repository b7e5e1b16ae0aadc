//! Which proxy, if any, a request goes through: `[network] proxy` when the config sets it, else
//! the environment's proxy variables read the way curl reads them; loopback always direct.
//!
//! Owns the choice and the proxy URL's checks; ureq's CONNECT connector does the talking, to
//! `http://` and `https://` (TLS to the proxy) proxies. A proxy URL may
//! hold a user and password: it is a secret, so nothing here shows more than the proxy's host,
//! port and where the setting came from (`127.0.0.1:3128 (from HTTPS_PROXY)`).
//!
//! Why not ureq's own `Proxy::try_from_env`: it takes `ALL_PROXY` first and `HTTP_PROXY` for
//! https too, and sends requests to 127.0.0.1 through the proxy, so a developer or CI machine
//! with a proxy in its environment could not reach the loopback test server.
//!
//! Only `https://` requests are ever proxied: plain http is allowed to loopback only
//! (`transport::check_scheme`), and loopback is never proxied, so `http_proxy` is not read.
//!
//! No SOCKS: ureq's `socks-proxy` connector cost 10,888 bytes of the armv7 binary (it brings
//! its own TCP connect and transport, which `net::tcp` otherwise replaces), for a kind of proxy
//! the networks devices meet seldom require (docs/size.md). `socks5://` and `socks5h://` URLs
//! are refused with a message saying so, never silently ignored.

use crate::secret::Secret;
use std::fmt;
use std::net::IpAddr;

/// `[network] proxy` (and `no_proxy`) as the config resolved them.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ProxyConfig {
    /// No `proxy` key: the environment's variables decide.
    #[default]
    Environment,
    /// `proxy = "none"`: always direct, whatever the environment says.
    Direct,
    /// `proxy = "URL"`: this proxy, and these `no_proxy` entries; the environment is not read.
    Url { url: Secret, no_proxy: Vec<String> },
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyConfig::Environment => f.write_str("Environment"),
            ProxyConfig::Direct => f.write_str("Direct"),
            ProxyConfig::Url { url, no_proxy } => f
                .debug_struct("Url")
                .field("proxy", &shown(url.expose()))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

/// A proxy setting that cannot be used; names where it came from, never shows its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// `HTTPS_PROXY`, `network.proxy`...
    pub source: &'static str,
    pub reason: String,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: not a usable proxy URL: {}",
            self.source, self.reason
        )
    }
}

impl std::error::Error for ProxyError {}

/// The proxy picked for a request.
#[derive(Clone)]
pub struct ChosenProxy {
    proxy: ureq::Proxy,
    /// `127.0.0.1:3128 (from HTTPS_PROXY)`: how messages name it.
    label: String,
}

impl ChosenProxy {
    /// ureq's value, for the request's config.
    pub fn to_ureq(&self) -> ureq::Proxy {
        self.proxy.clone()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn has_credentials(&self) -> bool {
        self.proxy.username().is_some() || self.proxy.password().is_some()
    }
}

impl fmt::Debug for ChosenProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChosenProxy").field(&self.label).finish()
    }
}

/// The proxy settings of one process, read once when the transport is built.
#[derive(Debug, Clone, Default)]
pub struct ProxyRules {
    /// For `https://` URLs.
    https: Option<ChosenProxy>,
    /// Hosts reached directly.
    no_proxy: Vec<NoProxyEntry>,
}

impl ProxyRules {
    /// The rules for `config`, reading the environment through `get` (the process environment
    /// in production) when the config leaves it to the environment.
    pub fn new(
        config: &ProxyConfig,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProxyError> {
        match config {
            ProxyConfig::Direct => Ok(ProxyRules::default()),
            ProxyConfig::Url { url, no_proxy } => Ok(ProxyRules {
                https: Some(parse_proxy_url(url.expose(), "network.proxy")?),
                no_proxy: no_proxy
                    .iter()
                    .filter_map(|e| NoProxyEntry::parse(e))
                    .collect(),
            }),
            ProxyConfig::Environment => Self::from_env(get),
        }
    }

    /// curl's variables for https: `https_proxy`, `HTTPS_PROXY`, then `all_proxy`,
    /// `ALL_PROXY`; `no_proxy`, then `NO_PROXY`. An empty value counts as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ProxyError> {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                get(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|value| (name, value))
            })
        };
        let https = first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
            .map(|(name, url)| parse_proxy_url(&url, name))
            .transpose()?;
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|(_, list)| parse_no_proxy(&list))
            .unwrap_or_default();
        Ok(ProxyRules { https, no_proxy })
    }

    /// The proxy for `url`, or `None` to connect directly.
    pub fn for_url(&self, url: &str) -> Option<&ChosenProxy> {
        let (scheme, host) = scheme_and_host(url);
        if scheme != "https" || host.is_empty() || is_loopback(&host) || self.bypassed(&host) {
            return None;
        }
        self.https.as_ref()
    }

    fn bypassed(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        self.no_proxy.iter().any(|entry| entry.matches(bare, ip))
    }
}

/// What the proxy did, when `e` is the proxy's doing: it refused the tunnel (ureq's CONNECT
/// connector reports the status as `proxy server responded 407/407`), or could not be reached
/// or resolved. `None` when the proxy connected us and the failure came later (the provider's
/// TLS or answer).
pub fn failure(e: &ureq::Error, proxy: &ChosenProxy) -> Option<String> {
    use std::io::ErrorKind;
    match e {
        ureq::Error::ConnectProxyFailed(report) => Some(refusal(report, proxy.has_credentials())),
        // CONNECT leaves the provider's name to the proxy: the one looked up here is the
        // proxy's own.
        ureq::Error::HostNotFound => Some("its host name was not found".into()),
        // Connecting to the proxy and the tunnel through it share the connect timeout.
        ureq::Error::Timeout(ureq::Timeout::Connect) => {
            Some("no tunnel within the connect timeout (the proxy did not answer)".into())
        }
        ureq::Error::Io(io) => match io.kind() {
            // Only the proxy is connected to directly: `net::tcp` names its addresses.
            ErrorKind::ConnectionRefused
            | ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable
            | ErrorKind::AddrNotAvailable => Some(format!("cannot be reached: {io}")),
            _ => None,
        },
        _ => None,
    }
}

/// A CONNECT refusal in words; the status is what the proxy said, the advice what to do.
fn refusal(report: &str, has_credentials: bool) -> String {
    let status = report
        .strip_prefix("proxy server responded ")
        .and_then(|r| r.split('/').next())
        .and_then(|code| code.parse::<u16>().ok());
    let Some(code) = status else {
        if report == "proxy server did not respond" {
            return "closed the connection without answering the CONNECT request".into();
        }
        return report.chars().take(200).collect();
    };
    let phrase = ureq::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let status = format!("{code} {phrase}");
    let status = status.trim_end();
    match code {
        407 if has_credentials => format!("refused the user and password ({status})"),
        407 => format!(
            "wants a user and password ({status}): give them in the proxy URL, \
             http://user:password@host:port"
        ),
        403 => format!("refused the tunnel ({status}): the proxy does not allow this destination"),
        502 | 504 => format!("could not reach the provider ({status})"),
        _ => format!("refused the tunnel ({status})"),
    }
}

/// Checks a proxy URL (`[network] proxy`, or a variable's value) and builds ureq's value.
/// `source` names the setting in errors; the URL itself is never shown.
pub fn parse_proxy_url(url: &str, source: &'static str) -> Result<ChosenProxy, ProxyError> {
    let fail = |reason: &str| ProxyError {
        source,
        reason: reason.to_string(),
    };
    let url = url.trim();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("contains spaces or control characters"));
    }
    // curl: no scheme means http.
    let (scheme, rest) = match url.split_once("://") {
        Some((s, rest)) => (s.to_ascii_lowercase(), rest),
        None => ("http".to_string(), url),
    };
    if scheme.starts_with("socks") {
        return Err(fail(&format!(
            "{scheme} proxies are not supported: devauth talks to HTTP proxies (http:// or \
             https://, the CONNECT method)"
        )));
    }
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(fail(&format!(
            "the scheme {scheme:?} is not supported (http or https)"
        )));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = split_host_port(host_port);
    if host.is_empty() || host == "[]" {
        return Err(fail("has no host"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(fail("the port is not a number 1..=65535"));
        }
    }
    let proxy = ureq::Proxy::new(&format!("{scheme}://{rest}")).map_err(|_| {
        fail("not a valid URL (a user or password must be percent-encoded: @ as %40, : as %3A)")
    })?;
    let label = format!("{}:{} (from {source})", proxy.host(), proxy.port());
    Ok(ChosenProxy { proxy, label })
}

/// `host:port` of an authority (IPv6 in brackets); the port when there is one.
fn split_host_port(host_port: &str) -> (&str, Option<&str>) {
    if host_port.starts_with('[') {
        return match host_port.split_once(']') {
            Some((h, rest)) => (
                host_port.get(..h.len() + 1).unwrap_or(""),
                rest.strip_prefix(':'),
            ),
            None => ("", None),
        };
    }
    match host_port.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    }
}

/// `scheme://user:password@host:port/` → `host:port`, for `Debug` of a configured proxy.
fn shown(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// One `NO_PROXY` entry, as curl reads it (lib/noproxy.c).
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// `*`: every host.
    All,
    /// A domain: the name itself and every name under it (`example.com`, `.example.com`).
    Domain(String),
    /// An IP address or network (`10.0.0.5`, `192.168.0.0/16`, `2001:db8::/32`): matches
    /// hosts written as IP addresses only (names are not resolved to be compared).
    Network { addr: IpAddr, bits: u8 },
}

/// A `NO_PROXY` value: entries separated by commas (and blanks); unusable entries are skipped
/// as curl skips them.
fn parse_no_proxy(list: &str) -> Vec<NoProxyEntry> {
    list.split([',', ' ', '\t'])
        .filter_map(NoProxyEntry::parse)
        .collect()
}

impl NoProxyEntry {
    fn parse(entry: &str) -> Option<NoProxyEntry> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(NoProxyEntry::All);
        }
        let (addr, bits) = match entry.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (entry.as_str(), None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max)?,
            };
            return Some(NoProxyEntry::Network { addr: ip, bits });
        }
        if bits.is_some() {
            return None;
        }
        // Leading and trailing dots are ignored (curl); `*.example.com` is read as
        // `.example.com`, as most other tools do.
        let domain = entry
            .strip_prefix("*.")
            .unwrap_or(&entry)
            .trim_start_matches('.')
            .trim_end_matches('.');
        (!domain.is_empty()).then(|| NoProxyEntry::Domain(domain.to_string()))
    }

    /// `host`: lower case, IPv6 without brackets; `ip`: the host when it is an address.
    fn matches(&self, host: &str, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (NoProxyEntry::All, _) => true,
            (NoProxyEntry::Domain(domain), None) => {
                let host = host.trim_end_matches('.');
                host == domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            (NoProxyEntry::Network { addr, bits }, Some(ip)) => in_network(ip, *addr, *bits),
            _ => false,
        }
    }
}

/// Whether `ip` is in `net`/`bits` (same family only).
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, len): (u128, u128, u32) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a).into(), u32::from(n).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = u32::from(bits).min(len);
    if bits == 0 {
        return true;
    }
    let shift = len - bits;
    (ip >> shift) == (net >> shift)
}

/// Checks one `no_proxy` entry of the config (the environment's bad entries are skipped, as
/// curl skips them; the config's are errors).
pub fn check_no_proxy_entry(entry: &str) -> Result<(), String> {
    if entry.trim().is_empty() {
        return Err("is empty".into());
    }
    if entry.contains([',', ' ', '\t']) {
        return Err("holds a comma or a space: give one host per entry".into());
    }
    NoProxyEntry::parse(entry)
        .map(|_| ())
        .ok_or_else(|| "is neither a host name nor an IP address or network (a.b.c.d/n)".into())
}

/// The scheme and the host (lower case, IPv6 in brackets) of a URL; empty when unparseable.
fn scheme_and_host(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (String::new(), String::new());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let (host, _) = split_host_port(authority);
    (scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// Loopback is never proxied: a proxy elsewhere cannot reach this machine's 127.0.0.1.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
