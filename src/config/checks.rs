//! The value rules shared by the sections and reused at run time: URLs ([`check_url`]),
//! RFC 6749 scope and VSCHAR characters, and a URL with its userinfo redacted for messages.

use super::*;

/// The URL rule for every URL devauth talks to or shows: configured endpoints, URLs from
/// discovery and the server's `verification_uri`.
///
/// Accepted: absolute `https://host[:port]/...` URLs, and `http://` only when the host is
/// `127.0.0.1`, `[::1]` or `localhost` *and* `allow_http_loopback` is true (the bundled test
/// server). Refused: other schemes, user info (`user:pass@`), fragments, bad ports, spaces and
/// control characters, more than [`MAX_URL_LEN`] bytes. The error is the reason only; it never
/// repeats the URL (which might carry a password), so callers add the value themselves.
pub fn check_url(url: &str, allow_http_loopback: bool) -> Result<(), String> {
    if url.is_empty() {
        return Err("is empty".to_string());
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".to_string());
    }
    // http::Uri silently drops a fragment, so look for it in the text.
    if url.contains('#') {
        return Err("must not contain a fragment (#...)".to_string());
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("is not a valid URL ({e})"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err("is not an absolute URL (expected https://host/...)".to_string());
    };
    if authority.as_str().contains('@') {
        return Err("must not contain a user name or password (user:pass@)".to_string());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    // Whatever follows the host must be ":" and a port 1..=65535 (http::Uri keeps e.g.
    // ":99999" in the authority and just reports no port).
    match authority.as_str().strip_prefix(host) {
        Some("") => {}
        Some(rest) => match rest.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(port)) if port != 0 => {}
            _ => return Err("has an invalid port".to_string()),
        },
        None => return Err("has an invalid host".to_string()),
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("has scheme {scheme:?}; only https is allowed"));
    }
    let loopback = host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost");
    if !loopback {
        return Err(
            "must use https (plain http is only allowed to 127.0.0.1, [::1] or \
             localhost, with allow_http_loopback = true)"
                .to_string(),
        );
    }
    if !allow_http_loopback {
        return Err(
            "uses plain http; that is only allowed with allow_http_loopback = true".to_string(),
        );
    }
    Ok(())
}

/// Client id and secret: RFC 6749 Appendix A (`*VSCHAR`, printable ASCII), non-empty, no
/// surrounding spaces (a pasted space would fail authentication in a confusing way). The
/// reason never contains the value.
pub(super) fn check_vschar(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > MAX_ID_LEN {
        return Err("is longer than 1024 bytes");
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("contains characters other than printable ASCII");
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err("starts or ends with a space");
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(super) fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("is empty".to_string());
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!("longer than {MAX_SCOPE_LEN} bytes"));
    }
    if scope.contains(' ') {
        return Err("must not contain spaces; write each scope as its own string".to_string());
    }
    if !scope
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    {
        return Err(
            "may only contain printable ASCII except '\"' and '\\' (RFC 6749 §3.3)".to_string(),
        );
    }
    Ok(())
}

/// `url` with any `user:pass@` replaced by `***@`, for error messages.
pub(super) fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

/// Whether two URLs are on the same server: the same scheme, host and port (the default port
/// of the scheme when none is written), compared without case. Unparsable URLs are never the
/// same server.
pub(super) fn same_server(a: &str, b: &str) -> bool {
    fn origin(url: &str) -> Option<(String, String, u16)> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        let port = match authority.port_u16() {
            Some(port) => port,
            None if scheme == "https" => 443,
            None if scheme == "http" => 80,
            None => return None,
        };
        Some((scheme, authority.host().to_ascii_lowercase(), port))
    }
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}
