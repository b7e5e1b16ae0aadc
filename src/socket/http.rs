//! The token service's HTTP/1.1: reading one request head from a client's bytes and writing
//! one response. Pure: bytes in, a [`Request`] or an [`HttpError`] out, no I/O.
//!
//! Every byte from a client is hostile. The head is bounded ([`MAX_HEAD_BYTES`], at most
//! [`MAX_HEADERS`] header lines), the request target is origin-form ASCII, bodies are not read
//! (a request that announces one beyond [`MAX_BODY_BYTES`] is refused before a byte of it is
//! taken) and `Transfer-Encoding` is refused. Lines may end in CRLF or a bare LF (RFC 9112
//! §2.2). Every response closes the connection (`Connection: close`): one request per
//! connection keeps the server's state per client to one small buffer.

use std::fmt;

/// Longest request head (request line + headers + the empty line).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 32;
/// Largest request body announced; the service's routes take none.
pub const MAX_BODY_BYTES: u64 = 0;
/// Longest request target (path and query).
const MAX_TARGET_LEN: usize = 2048;
/// Most query parameters.
const MAX_QUERY_PARAMS: usize = 16;

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded.
    pub path: String,
    /// The query's parameters in order, decoded (`+` is a space, as HTML forms send it).
    pub query: Vec<(String, String)>,
    /// The `Accept` header (the only one the routes look at), trimmed.
    pub accept: Option<String>,
}

impl Request {
    /// The value of a query parameter; a parameter given twice is an error.
    pub fn param(&self, name: &str) -> Result<Option<&str>, HttpError> {
        let mut found = self.query.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(HttpError::RepeatedParameter(name.to_string()));
        }
        Ok(first)
    }
}

/// What a request's bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head has not ended yet (and is within its bounds): read more.
    Incomplete,
    Done(Request),
}

/// A request the service refuses; each has a status and a stable `error` code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    HeadTooLarge,
    TooManyHeaders,
    BadRequestLine(&'static str),
    BadHeader(&'static str),
    UnsupportedVersion,
    BodyTooLarge,
    TransferEncoding,
    BadQuery(&'static str),
    RepeatedParameter(String),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UnsupportedVersion => 505,
            HttpError::BodyTooLarge => 413,
            HttpError::TransferEncoding => 501,
            HttpError::BadRequestLine(_)
            | HttpError::BadHeader(_)
            | HttpError::BadQuery(_)
            | HttpError::RepeatedParameter(_) => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            HttpError::HeadTooLarge => "request_too_large",
            HttpError::TooManyHeaders => "too_many_headers",
            HttpError::UnsupportedVersion => "unsupported_http_version",
            HttpError::BodyTooLarge => "body_not_allowed",
            HttpError::TransferEncoding => "transfer_encoding_not_supported",
            HttpError::BadRequestLine(_) | HttpError::BadHeader(_) => "bad_request",
            HttpError::BadQuery(_) | HttpError::RepeatedParameter(_) => "bad_query",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => {
                write!(f, "the request head is longer than {MAX_HEAD_BYTES} bytes")
            }
            HttpError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header lines"),
            HttpError::BadRequestLine(why) => write!(f, "bad request line: {why}"),
            HttpError::BadHeader(why) => write!(f, "bad header: {why}"),
            HttpError::UnsupportedVersion => write!(f, "only HTTP/1.0 and HTTP/1.1 are spoken"),
            HttpError::BodyTooLarge => write!(f, "these routes take no request body"),
            HttpError::TransferEncoding => write!(f, "Transfer-Encoding is not supported"),
            HttpError::BadQuery(why) => write!(f, "bad query: {why}"),
            HttpError::RepeatedParameter(name) => write!(f, "query parameter `{name}` given twice"),
        }
    }
}

/// Where the head ends in `buf`: the index just past the empty line.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Parses the bytes received so far.
pub fn parse(buf: &[u8]) -> Result<Parsed, HttpError> {
    let Some(end) = head_end(buf) else {
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HttpError::HeadTooLarge);
        }
        // Header lines are counted before the head ends, so an endless stream of short
        // headers is refused without waiting for the byte bound.
        if buf.iter().filter(|&&b| b == b'\n').count() > MAX_HEADERS + 1 {
            return Err(HttpError::TooManyHeaders);
        }
        return Ok(Parsed::Incomplete);
    };
    if end > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    let head = buf.get(..end).unwrap_or_default();
    let text = std::str::from_utf8(head).map_err(|_| HttpError::BadHeader("not ASCII"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = request_line_parts(request_line)?;
    let mut length: Option<u64> = None;
    let mut accept = None;
    for (n, line) in lines.filter(|l| !l.is_empty()).enumerate() {
        if n == MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case("accept") {
            accept = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse().ok())
                .flatten()
                .ok_or(HttpError::BadHeader("Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadHeader("two different Content-Length values"));
            }
            length = Some(n);
        }
    }
    if length.unwrap_or(0) > MAX_BODY_BYTES {
        return Err(HttpError::BodyTooLarge);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    Ok(Parsed::Done(Request {
        method: method.to_string(),
        path: decode(path, false).ok_or(HttpError::BadRequestLine("bad percent-encoding"))?,
        query: parse_query(query)?,
        accept,
    }))
}

fn request_line_parts(line: &str) -> Result<(&str, &str), HttpError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequestLine("expected METHOD /path HTTP/1.1"));
    };
    if method.is_empty() || method.len() > 16 || !method.bytes().all(is_token_byte) {
        return Err(HttpError::BadRequestLine("bad method"));
    }
    if !target.starts_with('/') || target.len() > MAX_TARGET_LEN {
        return Err(HttpError::BadRequestLine(
            "the target must be a path (origin-form) of at most 2048 bytes",
        ));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::BadRequestLine(
            "the target must be printable ASCII",
        ));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => Ok((method, target)),
        v if v.starts_with("HTTP/") => Err(HttpError::UnsupportedVersion),
        _ => Err(HttpError::BadRequestLine("no HTTP version")),
    }
}

/// RFC 9110 §5.6.2 tchar.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header(line: &str) -> Result<(&str, &str), HttpError> {
    if line.starts_with([' ', '\t']) {
        // RFC 9112 §5.2: obsolete line folding may be refused.
        return Err(HttpError::BadHeader("folded header line"));
    }
    let (name, value) = line
        .split_once(':')
        .ok_or(HttpError::BadHeader("a header line without ':'"))?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(HttpError::BadHeader("bad header name"));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(HttpError::BadHeader("control character in a header value"));
    }
    Ok((name, value))
}

/// `a=1&b=x+y` into pairs, percent-decoded.
fn parse_query(q: &str) -> Result<Vec<(String, String)>, HttpError> {
    let mut out = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_QUERY_PARAMS {
            return Err(HttpError::BadQuery("too many parameters"));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = HttpError::BadQuery("bad percent-encoding or not UTF-8");
        out.push((
            decode(k, true).ok_or(bad.clone())?,
            decode(v, true).ok_or(bad)?,
        ));
    }
    Ok(out)
}

/// Percent-decoding (RFC 3986 §2.1); `plus` turns `+` into a space (query strings). `None` on
/// a malformed escape, invalid UTF-8 or a control character.
fn decode(s: &str, plus: bool) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// The reason phrase of the statuses the service sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A whole response with a JSON body. `no-store`: a token must not be cached (RFC 6749 §5.1),
/// and nothing here is worth caching.
pub fn json_response(status: u16, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = head(status, "application/json", Some(body.len()), extra);
    out.extend_from_slice(body.as_bytes());
    out
}

/// A response head; `length` `None` for a stream that ends when the connection closes.
pub fn head(
    status: u16,
    content_type: &str,
    length: Option<usize>,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n",
        reason(status)
    );
    if let Some(n) = length {
        s.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (name, value) in extra {
        s.push_str(&format!("{name}: {value}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

pub use crate::net::wire::json_string;

/// An error response: `{"error": code, "message": text}`.
pub fn error_response(status: u16, code: &str, message: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let body = format!(
        "{{\"error\":{},\"message\":{}}}",
        json_string(code),
        json_string(message)
    );
    json_response(status, &body, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(bytes: &[u8]) -> Request {
        match parse(bytes) {
            Ok(Parsed::Done(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_curl_request_is_read() {
        let r = done(
            b"GET /v1/token?scope=a%20b+c&account=default HTTP/1.1\r\nHost: localhost\r\n\
              User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v1/token");
        assert_eq!(r.param("scope").unwrap(), Some("a b c"));
        assert_eq!(r.param("account").unwrap(), Some("default"));
        assert_eq!(r.param("other").unwrap(), None);
        assert_eq!(r.accept.as_deref(), Some("*/*"));
    }

    #[test]
    fn bare_lf_and_http_1_0_are_accepted() {
        let r = done(b"GET /v1/status HTTP/1.0\n\n");
        assert_eq!(r.path, "/v1/status");
        assert!(r.query.is_empty() && r.accept.is_none());
    }

    #[test]
    fn an_unfinished_head_asks_for_more() {
        assert_eq!(
            parse(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"\r\n"), Ok(Parsed::Incomplete));
    }

    #[test]
    fn bounds_are_enforced_before_the_head_ends() {
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse(&endless), Err(HttpError::HeadTooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS + 1 {
            many.extend_from_slice(b"X: y\r\n");
        }
        assert_eq!(parse(&many), Err(HttpError::TooManyHeaders));
        let mut complete_many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            complete_many.extend_from_slice(b"X: y\r\n");
        }
        complete_many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&complete_many), Err(HttpError::TooManyHeaders));
    }

    #[test]
    fn bodies_and_transfer_encodings_are_refused() {
        let e = parse(b"POST /v1/token HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n").unwrap_err();
        assert_eq!((e.status(), e.code()), (413, "body_not_allowed"));
        let e = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 501);
        assert!(parse(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_ok());
        let e = parse(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
        let e =
            parse(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        for bytes in [
            &b"\x00\x01\x02\n\n"[..],
            b"GET\n\n",
            b"GET http://example.com/ HTTP/1.1\n\n",
            b"GET /a b HTTP/1.1\n\n",
            b"G(T / HTTP/1.1\n\n",
            b"GET / SPDY/3\n\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\n\r\n",
            b"GET /?a=%ff HTTP/1.1\r\n\r\n",
            b"GET /?a=%0a HTTP/1.1\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
        ] {
            let e = parse(bytes).unwrap_err();
            assert_eq!(e.status(), 400, "{bytes:?}: {e}");
        }
        assert_eq!(parse(b"GET / HTTP/2.0\n\n").unwrap_err().status(), 505);
    }

    #[test]
    fn a_parameter_given_twice_is_refused_when_asked_for() {
        let r = done(b"GET /v1/token?scope=a&scope=b HTTP/1.1\r\n\r\n");
        assert_eq!(
            r.param("scope"),
            Err(HttpError::RepeatedParameter("scope".into()))
        );
        let many = format!("GET /?{} HTTP/1.1\r\n\r\n", "a=1&".repeat(17));
        assert_eq!(parse(many.as_bytes()).unwrap_err().code(), "bad_query");
    }

    #[test]
    fn responses_close_and_are_not_cached() {
        let r = String::from_utf8(error_response(403, "client_not_allowed", "no", &[])).unwrap();
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{r}");
        assert!(r.contains("\r\nConnection: close\r\n") && r.contains("Cache-Control: no-store"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "client_not_allowed");
    }
}
