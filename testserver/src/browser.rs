//! A test "browser": one plain-HTTP GET on std::net to a loopback URL, as a browser would send
//! it after an authorization server's redirect (`GET /path?code=..&state=.. HTTP/1.1`), and
//! the answer it got. It follows nothing by itself; `TestServer::sign_in` chains the steps.
//! Loopback only (127.0.0.1, [::1], localhost): tests stay offline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest answer read (the rest is cut off).
const MAX_ANSWER: usize = 1 << 20;

/// What a GET got back.
#[derive(Clone, Debug)]
pub struct Visit {
    /// The URL requested.
    pub url: String,
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl Visit {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `http://host:port/path?q#frag` into a loopback socket address, the `Host` header
/// value and the request target (without the fragment, which browsers never send).
fn split(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("browser: only http:// URLs: {url}"))?;
    let rest = rest.split('#').next().unwrap_or("");
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(cut);
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else if target.is_empty() {
        "/".to_string()
    } else {
        target.to_string()
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("browser: bad port in {url}"))?,
        ),
        _ => (authority, 80),
    };
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return Err(format!("browser: not a loopback URL: {url}"));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("browser: {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("browser: {host} has no address"))?;
    Ok((addr, authority.to_string(), target))
}

/// GETs `url` (loopback, plain HTTP) and reads the answer until the peer closes or `timeout`.
pub fn get(url: &str, timeout: Duration) -> Result<Visit, String> {
    let (addr, host, target) = split(url)?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("browser: connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: devauth-testserver-browser\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("browser: send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let _ = s.take(MAX_ANSWER as u64).read_to_end(&mut raw);
    parse(url, &raw)
}

fn parse(url: &str, raw: &[u8]) -> Result<Visit, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("browser: no HTTP answer from {url}"))?;
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or(&[])).into_owned();
    let body = raw.get(split + 4..).unwrap_or(&[]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("browser: bad status line from {url}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match len {
        Some(n) => body.get(..n.min(body.len())).unwrap_or(body),
        None => body,
    };
    Ok(Visit {
        url: url.to_string(),
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let (a, h, t) = split("http://127.0.0.1:8080/cb?code=x#frag").unwrap();
        assert_eq!(a.port(), 8080);
        assert_eq!(h, "127.0.0.1:8080");
        assert_eq!(t, "/cb?code=x");
        let (a, _, t) = split("http://[::1]:9?x=1").unwrap();
        assert!(a.is_ipv6());
        assert_eq!(t, "/?x=1");
        assert_eq!(split("http://localhost").unwrap().2, "/");
        assert!(split("https://127.0.0.1/").is_err());
        assert!(split("http://example.test/").is_err());
        assert!(split("http://127.0.0.1:x/").is_err());
    }

    #[test]
    fn parses_answers() {
        let v = parse(
            "u",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: b\r\n\r\nnoextra",
        )
        .unwrap();
        assert_eq!(v.status, 404);
        assert_eq!(v.body, "no");
        assert_eq!(v.header("x-a"), Some("b"));
        assert!(parse("u", b"garbage").is_err());
    }
}
