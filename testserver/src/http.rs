//! Minimal HTTP/1.1 for the test server on `std::net`: reads one request (request line,
//! headers, a Content-Length or chunked body capped at 1 MiB) and writes one response with
//! `Connection: close`. One request per connection. No routing or OAuth logic here.

use crate::tls::Conn;
use std::io::{self, Read, Write};

use crate::codec;

/// Largest request body accepted (bigger → 413).
pub const MAX_BODY: usize = 1 << 20;
/// Largest request head (request line + headers) accepted (bigger → 431).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 100;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query, as sent (not percent-decoded).
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Header names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (lowercase name), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The scheme and credentials of `Authorization: <scheme> <token>` (Bearer or DPoP).
    pub fn authorization_token(&self) -> Option<(&str, &str)> {
        let (scheme, rest) = self.header("authorization")?.split_once(' ')?;
        let t = rest.trim();
        (!t.is_empty()).then_some((scheme, t))
    }

    /// Decoded form pairs when the body is `application/x-www-form-urlencoded`, else empty
    /// (a JSON body is not a form: endpoints then see missing parameters).
    pub fn form(&self) -> Vec<(String, String)> {
        let is_form = self.header("content-type").is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        if !is_form {
            return Vec::new();
        }
        codec::parse_urlencoded(&String::from_utf8_lossy(&self.body))
    }

    /// HTTP Basic credentials, each form-urldecoded (RFC 6749 §2.3.1).
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?;
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = codec::b64_decode(rest.trim())?;
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let (id, secret) = decoded.split_once(':')?;
        Some((
            codec::percent_decode(id, true),
            codec::percent_decode(secret, true),
        ))
    }

    /// Whether the client asked for JSON (GitHub's switch).
    pub fn accepts_json(&self) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == "accept")
            .any(|(_, v)| v.to_ascii_lowercase().contains("application/json"))
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed before sending a full request (or sent nothing).
    Closed,
    /// Read failed or timed out.
    Io,
    /// Not HTTP/1.x we understand (→ 400).
    Bad(&'static str),
    /// Head too large (→ 431).
    HeadTooLarge,
    /// Body larger than `MAX_BODY` (→ 413).
    BodyTooLarge,
}

/// Buffered reader that lets us write `100 Continue` between head and body.
struct Reader<'a> {
    stream: &'a mut Conn,
    buf: Vec<u8>,
    pos: usize,
}

impl Reader<'_> {
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut tmp = [0u8; 8192];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(tmp.get(..n).unwrap_or(&[]));
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ReadError::Io),
            }
        }
    }

    /// One line without its `\r\n` (a bare `\n` is accepted), at most `max` bytes.
    fn line(&mut self, max: usize, too_long: ReadError) -> Result<Vec<u8>, ReadError> {
        loop {
            let avail = self.buf.get(self.pos..).unwrap_or(&[]);
            if let Some(nl) = avail.iter().position(|&b| b == b'\n') {
                let mut line = avail.get(..nl).unwrap_or(&[]).to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.pos += nl + 1;
                return Ok(line);
            }
            if avail.len() > max {
                return Err(too_long);
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() - self.pos < n {
            self.fill()?;
        }
        let out = self.buf.get(self.pos..self.pos + n).unwrap_or(&[]).to_vec();
        self.pos += n;
        Ok(out)
    }
}

/// Reads one request from `stream`.
pub fn read_request(stream: &mut Conn) -> Result<Request, ReadError> {
    let mut r = Reader {
        stream,
        buf: Vec::new(),
        pos: 0,
    };
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let mut line = Vec::new();
    for _ in 0..4 {
        line = r.line(MAX_HEAD, ReadError::HeadTooLarge)?;
        if !line.is_empty() {
            break;
        }
    }
    let line = String::from_utf8(line).map_err(|_| ReadError::Bad("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err(ReadError::Bad("malformed request line"));
    }
    // Absolute-form targets (proxies): keep only the path and query.
    let target = match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest.get(i..).unwrap_or("/"),
            None => "/",
        },
        None => target,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, codec::parse_urlencoded(q)),
        None => (target, Vec::new()),
    };

    let mut headers = Vec::new();
    let mut head_bytes = line.len();
    loop {
        let h = r.line(MAX_HEAD, ReadError::HeadTooLarge)?;
        if h.is_empty() {
            break;
        }
        head_bytes += h.len();
        if head_bytes > MAX_HEAD || headers.len() >= MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        let h = String::from_utf8_lossy(&h).into_owned();
        let Some((name, value)) = h.split_once(':') else {
            return Err(ReadError::Bad("header line without colon"));
        };
        if name.is_empty() || name.ends_with(' ') || name.ends_with('\t') {
            return Err(ReadError::Bad("malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }

    fn get<'h>(
        headers: &'h [(String, String)],
        name: &'h str,
    ) -> impl Iterator<Item = &'h String> + 'h {
        headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v)
    }
    let chunked =
        get(&headers, "transfer-encoding").any(|v| v.to_ascii_lowercase().contains("chunked"));
    let lengths: Vec<&String> = get(&headers, "content-length").collect();
    let length = match lengths.first() {
        None => None,
        Some(v) => {
            let n: usize = v
                .parse()
                .map_err(|_| ReadError::Bad("invalid Content-Length"))?;
            if lengths.iter().any(|o| o != v) {
                return Err(ReadError::Bad("conflicting Content-Length"));
            }
            Some(n)
        }
    };
    let expect_continue = get(&headers, "expect").any(|v| v.eq_ignore_ascii_case("100-continue"));

    let body = if chunked {
        if expect_continue {
            write_continue(r.stream)?;
        }
        read_chunked(&mut r)?
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(ReadError::BodyTooLarge);
        }
        if expect_continue && n > 0 {
            write_continue(r.stream)?;
        }
        r.exact(n)?
    } else {
        Vec::new()
    };

    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn write_continue(stream: &mut Conn) -> Result<(), ReadError> {
    stream
        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        .map_err(|_| ReadError::Io)
}

fn read_chunked(r: &mut Reader<'_>) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = r.line(1024, ReadError::Bad("chunk size line too long"))?;
        let line = String::from_utf8_lossy(&line);
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| ReadError::Bad("invalid chunk size"))?;
        if size == 0 {
            // Trailers until the empty line.
            loop {
                if r.line(MAX_HEAD, ReadError::HeadTooLarge)?.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::BodyTooLarge);
        }
        body.extend_from_slice(&r.exact(size)?);
        if !r.line(2, ReadError::Bad("chunk without CRLF"))?.is_empty() {
            return Err(ReadError::Bad("chunk without CRLF"));
        }
    }
}

/// One response. `Content-Length` and `Connection: close` are added when written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    /// JSON with `Cache-Control: no-store` (RFC 6749 §5.1 requires it for token answers).
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string().into_bytes()).no_store()
    }

    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", body.into_bytes())
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn no_store(self) -> Response {
        self.with_header("Cache-Control", "no-store")
            .with_header("Pragma", "no-cache")
    }
}

/// Reason phrase for the status line.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The status line and headers (with `Connection: close`) for `status`; `length` adds
/// `Content-Length`.
pub fn head(status: u16, headers: &[(String, String)], length: Option<usize>) -> String {
    let mut s = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (k, v) in headers {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    if let Some(n) = length {
        s.push_str(&format!("Content-Length: {n}\r\n"));
    }
    s.push_str("Connection: close\r\n\r\n");
    s
}

/// Writes a whole response.
pub fn write_response(stream: &mut Conn, resp: &Response) -> io::Result<()> {
    let mut out = head(resp.status, &resp.headers, Some(resp.body.len())).into_bytes();
    out.extend_from_slice(&resp.body);
    stream.write_all(&out)?;
    stream.flush()
}
