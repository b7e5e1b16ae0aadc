//! The loopback redirect listener of a browser sign-in (RFC 8252 §7.3): a one-shot HTTP server
//! on 127.0.0.1 or [::1] that waits for the provider's redirect to the expected path, answers
//! the browser with a short page and hands back the checked code.
//!
//! The decision about a request is a pure function of its bytes ([`answer`]): the expected
//! path only, GET only, bounded size (413), `state` checked in constant time; anything else is
//! answered (404, 405, 400) and the listener keeps waiting. The socket loop ([`Loopback::wait`])
//! is thin: accept with a deadline, read a bounded request, write the answer, stop after the
//! first valid redirect. Closing the socket then is what makes a replayed redirect harmless.
//! It does not exchange the code (`oauth/client.rs`) nor launch a browser (`pairing`).

use crate::oauth::authorize::{self, Authorized, RedirectError};
use crate::secret::Secret;
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The largest request accepted: the redirect's request line with a long code, plus the
/// browser's headers. Larger is answered 413.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Requests that are not the redirect (favicon, probes, forged redirects) before giving up.
pub const MAX_REQUESTS: usize = 64;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the page may take to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the listener behaves (from the config: `redirect_host`, `redirect_port`, the login
/// timeout and the page texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackSettings {
    /// 127.0.0.1 or ::1 (RFC 8252 §8.3: a loopback IP literal, not `localhost`).
    pub host: IpAddr,
    /// 0 = an ephemeral port chosen by the system.
    pub port: u16,
    /// The redirect's path, e.g. `/`.
    pub path: String,
    /// How long to wait for the redirect in all.
    pub timeout: Duration,
    pub success_text: String,
    pub failure_text: String,
}

impl Default for LoopbackSettings {
    fn default() -> Self {
        LoopbackSettings {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            path: "/".to_string(),
            timeout: Duration::from_secs(300),
            success_text: "Signed in. You can close this page and return to the device."
                .to_string(),
            failure_text: "Sign-in failed. You can close this page; the device says why."
                .to_string(),
        }
    }
}

/// Why no code came back.
#[derive(Debug)]
pub enum LoopbackError {
    /// The port could not be opened (in use, not allowed).
    Bind { addr: SocketAddr, detail: String },
    /// Accepting or polling failed.
    Io(String),
    /// No valid redirect within the login timeout.
    TimedOut { secs: u64 },
    /// Too many requests that were not the redirect.
    TooManyRequests,
}

impl fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopbackError::Bind { addr, detail } => write!(
                f,
                "redirect listener: cannot listen on {addr}: {detail} (choose another \
                 redirect_port, or 0 for any free port)"
            ),
            LoopbackError::Io(m) => write!(f, "redirect listener: {m}"),
            LoopbackError::TimedOut { secs } => write!(
                f,
                "sign-in timed out: no redirect from the browser within {secs} s \
                 (login_timeout); run `devauth pair` again"
            ),
            LoopbackError::TooManyRequests => write!(
                f,
                "redirect listener: {MAX_REQUESTS} requests that were not the sign-in's \
                 redirect; stopped"
            ),
        }
    }
}

impl std::error::Error for LoopbackError {}

/// What to do with the bytes read so far from one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The request's head is not complete yet and is within bounds.
    ReadMore,
    /// Write `response` and close the connection; `outcome` is `Some` when this was the
    /// redirect (the listener then stops).
    Reply {
        response: Vec<u8>,
        outcome: Option<Authorized>,
    },
}

/// The pure decision about one request.
pub fn answer(
    bytes: &[u8],
    settings: &LoopbackSettings,
    expected_state: &Secret,
    complete: bool,
) -> Step {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    if head_end.is_none() && bytes.len() > MAX_REQUEST_BYTES {
        return reply(413, "Request too large.", None);
    }
    let Some(end) = head_end else {
        if complete {
            return reply(400, "Incomplete request.", None);
        }
        return Step::ReadMore;
    };
    if end > MAX_REQUEST_BYTES {
        return reply(413, "Request too large.", None);
    }
    let head = bytes.get(..end).unwrap_or_default();
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(head.get(..line_end).unwrap_or_default()) else {
        return reply(400, "Bad request.", None);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(_version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return reply(400, "Bad request.", None);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != settings.path {
        return reply(404, "Not found.", None);
    }
    if method != "GET" {
        return reply(405, "Method not allowed.", None);
    }
    let checked =
        authorize::parse_query(query).and_then(|a| authorize::check(a, expected_state, true));
    match checked {
        Ok(outcome @ Authorized::Code(_)) => reply(200, &settings.success_text, Some(outcome)),
        Ok(outcome @ Authorized::Refused(_)) => reply(200, &settings.failure_text, Some(outcome)),
        // A redirect that does not answer this sign-in (wrong or missing state, no code) is
        // refused but does not end it: the real redirect may still come.
        Err(e) => reply(
            400,
            &format!("{} {}", settings.failure_text, reason(&e)),
            None,
        ),
    }
}

fn reason(e: &RedirectError) -> String {
    // The page shows no value from the request (never a code), only what was wrong.
    e.to_string()
}

fn reply(status: u16, text: &str, outcome: Option<Authorized>) -> Step {
    let title = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        _ => "Error",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>devauth</title></head>\
         <body><p>{}</p></body></html>\n",
        html_escape(text)
    );
    let response = format!(
        "HTTP/1.1 {status} {title}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    Step::Reply {
        response: response.into_bytes(),
        outcome,
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An open listener. Dropping it closes the port.
pub struct Loopback {
    listener: TcpListener,
    settings: LoopbackSettings,
    redirect_uri: String,
}

impl Loopback {
    pub fn bind(settings: LoopbackSettings) -> Result<Loopback, LoopbackError> {
        let addr = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(addr).map_err(|e| LoopbackError::Bind {
            addr,
            detail: e.to_string(),
        })?;
        // Non-blocking, so a client that leaves between poll and accept cannot hang the wait.
        listener
            .set_nonblocking(true)
            .map_err(|e| LoopbackError::Io(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| LoopbackError::Io(e.to_string()))?
            .port();
        let host = match settings.host {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let redirect_uri = format!("http://{host}:{port}{}", settings.path);
        Ok(Loopback {
            listener,
            settings,
            redirect_uri,
        })
    }

    /// The `redirect_uri` to put in the authorization URL (and the code exchange).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect that answers `expected_state`, until the login timeout.
    pub fn wait(self, expected_state: &Secret) -> Result<Authorized, LoopbackError> {
        let deadline = Instant::now() + self.settings.timeout;
        let mut others = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LoopbackError::TimedOut {
                    secs: self.settings.timeout.as_secs(),
                });
            }
            if !self.readable_within(left)? {
                continue;
            }
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                // The client may have gone between poll and accept.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(LoopbackError::Io(format!("accept: {e}"))),
            };
            // A connection that fails mid-way is one more request that was not the redirect.
            if let Some(outcome) = self.serve(stream, expected_state) {
                return Ok(outcome);
            }
            others += 1;
            if others >= MAX_REQUESTS {
                return Err(LoopbackError::TooManyRequests);
            }
        }
    }

    fn serve(&self, mut stream: TcpStream, expected_state: &Secret) -> Option<Authorized> {
        if stream.set_nonblocking(false).is_err() {
            return None;
        }
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let mut bytes = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        // A client trickling bytes must not hold the listener past one read timeout in all.
        let give_up = Instant::now() + READ_TIMEOUT;
        let step = loop {
            if Instant::now() > give_up {
                return None;
            }
            let (n, complete) = match stream.read(&mut buf) {
                Ok(0) => (0, true),
                Ok(n) => (n, false),
                Err(_) => return None,
            };
            bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
            match answer(&bytes, &self.settings, expected_state, complete) {
                Step::ReadMore => continue,
                step => break step,
            }
        };
        let Step::Reply { response, outcome } = step else {
            return None;
        };
        // The outcome stands even if the browser went away before reading the page.
        let _ = stream.write_all(&response);
        let _ = stream.flush();
        outcome
    }

    /// Whether a connection is waiting within `within` (poll(2), so the wait needs no thread
    /// and no busy loop). `false` on timeout or a signal; the caller checks the deadline.
    fn readable_within(&self, within: Duration) -> Result<bool, LoopbackError> {
        let mut pfd = libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(within.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call; the fd is owned by
        // `self.listener`, which outlives it.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(LoopbackError::Io(format!("poll: {err}")));
        }
        Ok(rc > 0)
    }
}

#[cfg(test)]
mod tests;
