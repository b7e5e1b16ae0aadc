//! The token service's server thread: one `poll` over the bell, the listening socket and every
//! client, non-blocking I/O, a small state per connection. Nothing here blocks: a narrowed
//! token is asked of the worker (`narrow.rs`) and the connection waits, parked, for the bell.
//!
//! Bounds (a slow or hostile client costs itself, never the agent or another client):
//! - the request head must arrive within [`REQUEST_TIME`] of `accept` and fit
//!   `http::MAX_HEAD_BYTES`; bodies are refused unread; the response must be taken within
//!   [`WRITE_TIME`];
//! - at most [`MAX_CONNECTIONS`] at once; when full, the connection that has waited longest
//!   without finishing its request is dropped for the new one (so a flood of connections that
//!   send nothing cannot keep a real client out), and when none can be dropped the rest wait
//!   in the kernel's backlog;
//! - at most [`MAX_STREAMS`] event streams, each buffering at most [`MAX_STREAM_BUFFER`]
//!   bytes for a reader that does not keep up (then it is closed).
//!
//! With no client and nothing to renew, `poll` waits without a timeout: no wake-ups.

use super::board::{Board, Job};
use super::handout::{self, Outcome, decide};
use super::http::{self, HttpError, Parsed, Request};
use super::narrow;
use super::peer::{self, Peer};
use super::policy::{Granted, ScopeSet};
use crate::cli::ProofArgs;
use crate::clock::{self, Instant};
use crate::config::DEFAULT_ACCOUNT;
use crate::store::TimeNow;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most event streams at once.
pub const MAX_STREAMS: usize = 16;
/// From `accept` to the end of the request head.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);
/// To take the whole response.
pub const WRITE_TIME: Duration = Duration::from_secs(5);
/// Unsent event bytes a stream may hold before it is closed.
pub const MAX_STREAM_BUFFER: usize = 64 * 1024;
/// Bytes a stream's reader may send us (ignored) before it is closed.
const MAX_STREAM_INPUT: usize = 4096;

enum Phase {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Waiting for the worker's narrowed token.
    Waiting {
        account: String,
        granted: Granted,
        /// `POST /v1/dpop-proof`: the proof to make with the token.
        proof: Option<Box<ProofArgs>>,
    },
    /// Sending a response, then closing.
    Writing {
        out: Vec<u8>,
        sent: usize,
    },
    /// An event stream: sending what is pending, then waiting for more.
    Streaming {
        out: Vec<u8>,
        sent: usize,
        sse: bool,
        input: usize,
    },
    Closed,
}

struct Conn {
    stream: UnixStream,
    peer: Peer,
    accepted: Instant,
    /// When this phase must end (`None`: a stream, no end).
    deadline: Option<Instant>,
    phase: Phase,
}

impl Conn {
    fn interest(&self) -> libc::c_short {
        match &self.phase {
            Phase::Reading(_) => libc::POLLIN,
            Phase::Waiting { .. } | Phase::Closed => 0,
            Phase::Writing { .. } => libc::POLLOUT,
            Phase::Streaming { out, sent, .. } if *sent < out.len() => libc::POLLIN | libc::POLLOUT,
            Phase::Streaming { .. } => libc::POLLIN,
        }
    }

    fn respond(&mut self, out: Vec<u8>) {
        self.deadline = Some(clock::boottime() + WRITE_TIME);
        self.phase = Phase::Writing { out, sent: 0 };
        self.flush();
    }

    fn error(&mut self, status: u16, code: &str, message: &str) {
        self.respond(http::error_response(status, code, message, &[]));
    }

    /// Sends what can be sent now.
    fn flush(&mut self) {
        let fd = self.stream.as_raw_fd();
        let (out, sent) = match &mut self.phase {
            Phase::Writing { out, sent } | Phase::Streaming { out, sent, .. } => (out, sent),
            _ => return,
        };
        while *sent < out.len() {
            let rest = out.get(*sent..).unwrap_or_default();
            // SAFETY: sends from a live slice; MSG_NOSIGNAL: a gone reader is EPIPE, not a signal.
            let n = unsafe {
                libc::send(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                    return;
                }
                self.phase = Phase::Closed;
                return;
            }
            *sent += n as usize;
        }
        match &mut self.phase {
            Phase::Writing { .. } => self.phase = Phase::Closed,
            Phase::Streaming { out, sent, .. } => {
                out.clear();
                *sent = 0;
            }
            _ => {}
        }
    }
}

pub struct Server {
    listener: UnixListener,
    board: Arc<Board>,
    conns: Vec<Conn>,
    boot_id: Option<String>,
}

impl Server {
    pub fn new(listener: UnixListener, board: Arc<Board>) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            board,
            conns: Vec::new(),
            boot_id: clock::boot_id(),
        })
    }

    fn now(&self) -> TimeNow {
        TimeNow {
            wall: clock::wall_now(),
            boot_id: self.boot_id.clone(),
            boottime: clock::boottime(),
        }
    }

    /// Serves until the board says stop.
    pub fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        loop {
            if self.board.lock().stopping {
                return;
            }
            fds.clear();
            fds.push(pollfd(self.board.bell().as_raw_fd(), libc::POLLIN));
            let accepting = self.conns.len() < MAX_CONNECTIONS || self.evictable().is_some();
            fds.push(pollfd(
                self.listener.as_raw_fd(),
                if accepting { libc::POLLIN } else { 0 },
            ));
            for c in &self.conns {
                fds.push(pollfd(c.stream.as_raw_fd(), c.interest()));
            }
            let timeout = self.timeout_ms();
            // SAFETY: `fds` is a live array of `fds.len()` pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue; // EINTR
            }
            let polled = self.conns.len();
            for (i, fd) in fds.iter().skip(2).take(polled).enumerate() {
                if fd.revents != 0 {
                    self.ready(i, fd.revents);
                }
            }
            if fds.first().is_some_and(|f| f.revents != 0) {
                self.board.bell().drain();
                self.board_changed();
            }
            if fds.get(1).is_some_and(|f| f.revents != 0) {
                self.accept_all();
            }
            self.expire();
            self.conns.retain(|c| !matches!(c.phase, Phase::Closed));
        }
    }

    /// Milliseconds to the nearest deadline, -1 for none.
    fn timeout_ms(&self) -> libc::c_int {
        let now = clock::boottime();
        self.conns
            .iter()
            .filter_map(|c| c.deadline)
            .min()
            .map(|d| {
                let left = d.saturating_sub(now) + Duration::from_millis(1);
                libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX)
            })
            .unwrap_or(-1)
    }

    /// The connection to drop for a new one when full: the oldest still sending its request.
    fn evictable(&self) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.phase, Phase::Reading(_)))
            .min_by_key(|(_, c)| c.accepted)
            .map(|(i, _)| i)
    }

    fn accept_all(&mut self) {
        loop {
            if self.conns.len() >= MAX_CONNECTIONS {
                let Some(i) = self.evictable() else { return };
                if let Some(c) = self.conns.get_mut(i) {
                    c.error(
                        503,
                        "busy",
                        "too many connections; this one sent no request in time",
                    );
                    c.phase = Phase::Closed;
                }
                self.conns.retain(|c| !matches!(c.phase, Phase::Closed));
            }
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: leave the rest in the backlog until a slot frees.
                    eprintln!("devauth: socket: accept: {e}");
                    return;
                }
            };
            let peer = match stream
                .set_nonblocking(true)
                .and_then(|()| peer::peer_of(&stream))
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("devauth: socket: who is calling: {e}");
                    continue;
                }
            };
            let now = clock::boottime();
            self.conns.push(Conn {
                stream,
                peer,
                accepted: now,
                deadline: Some(now + REQUEST_TIME),
                phase: Phase::Reading(Vec::new()),
            });
            // Most clients have sent their request already.
            let last = self.conns.len() - 1;
            self.ready(last, libc::POLLIN);
        }
    }

    fn ready(&mut self, i: usize, revents: libc::c_short) {
        let request = {
            let Some(c) = self.conns.get_mut(i) else {
                return;
            };
            match &mut c.phase {
                Phase::Reading(buf) => match read_head(&mut c.stream, buf) {
                    Some(r) => Some(r),
                    None if buf.is_empty() && revents & libc::POLLHUP != 0 => {
                        c.phase = Phase::Closed;
                        None
                    }
                    None => None,
                },
                Phase::Waiting { .. } => {
                    if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                        c.phase = Phase::Closed; // it gave up waiting
                    }
                    None
                }
                Phase::Writing { .. } => {
                    c.flush();
                    None
                }
                Phase::Streaming { input, .. } => {
                    if revents & libc::POLLIN != 0 {
                        let mut chunk = [0u8; 512];
                        match c.stream.read(&mut chunk) {
                            Ok(0) => c.phase = Phase::Closed,
                            Ok(n) => {
                                *input += n;
                                if *input > MAX_STREAM_INPUT {
                                    c.phase = Phase::Closed;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => c.phase = Phase::Closed,
                        }
                    }
                    if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                        c.phase = Phase::Closed;
                    } else if revents & libc::POLLOUT != 0 {
                        c.flush();
                    }
                    None
                }
                Phase::Closed => None,
            }
        };
        match request {
            None => {}
            Some(Err(Gone)) => {
                if let Some(c) = self.conns.get_mut(i) {
                    c.phase = Phase::Closed;
                }
            }
            Some(Ok(Err(e))) => {
                if let Some(c) = self.conns.get_mut(i) {
                    log_refusal(&c.peer, "(unparsed)", &e.to_string());
                    c.error(e.status(), e.code(), &e.to_string());
                }
            }
            Some(Ok(Ok(req))) => self.route(i, &req),
        }
    }

    fn route(&mut self, i: usize, req: &Request) {
        let policy = self.board.lock().policy.clone();
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let known = ["/v1/token", "/v1/status", "/v1/events", "/v1/dpop-proof"];
        if !known.contains(&req.path.as_str()) {
            c.error(
                404,
                "not_found",
                &format!(
                    "no route {}; see /v1/token, /v1/status, /v1/events, /v1/dpop-proof",
                    req.path
                ),
            );
            return;
        }
        let method = if req.path == "/v1/dpop-proof" {
            "POST"
        } else {
            "GET"
        };
        if req.method != method {
            c.respond(http::error_response(
                405,
                "method_not_allowed",
                &format!("{} takes {method}", req.path),
                &[("Allow", method)],
            ));
            return;
        }
        if let Err(refusal) = policy.caller(&c.peer) {
            log_refusal(&c.peer, &req.path, &refusal.to_string());
            c.error(403, refusal.code(), &refusal.to_string());
            return;
        }
        match req.path.as_str() {
            "/v1/token" | "/v1/dpop-proof" => self.token_request(i, req),
            "/v1/status" => self.status(i),
            _ => self.events(i, req),
        }
    }

    // --- GET /v1/token ---------------------------------------------------------------------

    fn token_request(&mut self, i: usize, req: &Request) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let params = (|| -> Result<(String, Option<ScopeSet>), HttpError> {
            let account = req.param("account")?.unwrap_or(DEFAULT_ACCOUNT).to_string();
            let scopes = match req.param("scope")? {
                None => None,
                Some(s) => Some(ScopeSet::parse(s).map_err(|_| HttpError::BadQuery("bad scope"))?),
            };
            Ok((account, scopes))
        })();
        let proof = match proof_asked(req) {
            Ok(p) => p,
            Err(message) => {
                c.error(400, "invalid_request", &message);
                return;
            }
        };
        let (account, requested) = match params {
            Ok(p) => p,
            Err(HttpError::BadQuery(_)) => {
                let why = req
                    .param("scope")
                    .ok()
                    .flatten()
                    .map(|s| ScopeSet::parse(s).err().unwrap_or_default())
                    .unwrap_or_default();
                c.error(400, "invalid_scope", &format!("scope: {why}"));
                return;
            }
            Err(e) => {
                c.error(e.status(), e.code(), &e.to_string());
                return;
            }
        };
        let decided = {
            let s = self.board.lock();
            match s.account(&account) {
                None => Err((404, "unknown_account", format!("no account `{account}`"))),
                Some(a) => s
                    .policy
                    .token(&c.peer, &account, requested.as_ref(), &a.held)
                    .map_err(|r| (403, r.code(), r.to_string())),
            }
        };
        match decided {
            Err((status, code, message)) => {
                log_refusal(&c.peer, &format!("/v1/token account {account}"), &message);
                c.error(status, code, &message);
            }
            Ok(granted) => {
                c.phase = Phase::Waiting {
                    account,
                    granted,
                    proof,
                };
                self.answer(i, false);
            }
        }
    }

    /// Answers a waiting token request from the board, or leaves it waiting for the worker.
    /// `woken`: the worker has answered once since the request came.
    fn answer(&mut self, i: usize, woken: bool) {
        let now = self.now();
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let Phase::Waiting {
            account,
            granted,
            proof,
        } = &c.phase
        else {
            return;
        };
        let (account, granted, proof) = (account.clone(), granted.clone(), proof.clone());
        let outcome = {
            let mut s = self.board.lock();
            let config = s.config_of(&account);
            match s.account_mut(&account) {
                None => Outcome::Fail(404, "unknown_account", format!("no account `{account}`")),
                Some(a) => decide(a, &granted, &now, woken, |t| narrow::margin(&config, t)),
            }
        };
        match outcome {
            Outcome::Wait { ask } => {
                if ask {
                    self.board.ask(Job {
                        account,
                        scopes: granted.scopes.clone(),
                    });
                }
                if !woken {
                    let wait = self.board.lock().config.network.timeout + Duration::from_secs(5);
                    c.deadline = Some(clock::boottime() + wait);
                }
            }
            Outcome::Token { token, note } => {
                let expires_in = token.remaining(&now).map(|d| d.as_secs());
                let proof = match proof {
                    None => None,
                    Some(asked) => {
                        let store = self.board.lock().config_of(&account).storage.path.clone();
                        match handout::proof(&store, &token, &asked) {
                            Ok(p) => Some(p),
                            Err((status, code, message)) => {
                                log_refusal(
                                    &c.peer,
                                    &format!("/v1/dpop-proof account {account}"),
                                    &message,
                                );
                                c.error(status, code, &message);
                                return;
                            }
                        }
                    }
                };
                eprintln!(
                    "devauth: token{} for {} by {}: account {account}, scopes {}{note}",
                    if proof.is_some() {
                        " and DPoP proof"
                    } else {
                        ""
                    },
                    c.peer,
                    granted.by,
                    token.scopes
                );
                let proof = proof.map_or(String::new(), |p| {
                    format!(",\"dpop_proof\":{}", http::json_string(p.expose()))
                });
                let body = format!(
                    "{{\"access_token\":{},\"token_type\":{},\"expires_in\":{},\"scope\":{}{proof}}}",
                    http::json_string(token.access_token.expose()),
                    http::json_string(&token.token_type),
                    expires_in.map_or("null".to_string(), |s| s.to_string()),
                    http::json_string(&token.scopes.to_string()),
                );
                c.respond(http::json_response(200, &body, &[]));
            }
            Outcome::Fail(status, code, message) => {
                log_refusal(&c.peer, &format!("/v1/token account {account}"), &message);
                let retry = [("Retry-After", "5")];
                let extra: &[(&str, &str)] = if status == 503 { &retry } else { &[] };
                c.respond(http::error_response(status, code, &message, extra));
            }
        }
    }

    // --- GET /v1/status --------------------------------------------------------------------

    fn status(&mut self, i: usize) {
        let body = self.status_json().to_string();
        if let Some(c) = self.conns.get_mut(i) {
            c.respond(http::json_response(200, &body, &[]));
        }
    }

    /// What `devauth status --json` says, for every account the agent serves.
    fn status_json(&self) -> serde_json::Value {
        let configs: Vec<Arc<crate::config::Config>> = {
            let s = self.board.lock();
            s.accounts.iter().map(|(n, _)| s.config_of(n)).collect()
        };
        let refs: Vec<&crate::config::Config> = configs.iter().map(|c| &**c).collect();
        crate::setup::status_all(&refs, &self.now())
    }

    // --- GET /v1/events --------------------------------------------------------------------

    fn events(&mut self, i: usize, req: &Request) {
        let streams = self
            .conns
            .iter()
            .filter(|c| matches!(c.phase, Phase::Streaming { .. }))
            .count();
        let sse = req
            .accept
            .as_ref()
            .is_some_and(|a| a.contains("text/event-stream"));
        let status = self.status_json();
        let codes: Vec<String> = self
            .board
            .lock()
            .accounts
            .iter()
            .filter_map(|(_, a)| a.pairing_code.clone())
            .collect();
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if streams >= MAX_STREAMS {
            c.error(
                503,
                "busy",
                &format!("at most {MAX_STREAMS} event streams at once"),
            );
            return;
        }
        let content_type = if sse {
            "text/event-stream"
        } else {
            "application/x-ndjson"
        };
        let mut out = http::head(200, content_type, None, &[]);
        frame(
            &mut out,
            &format!("{{\"event\":\"status\",\"status\":{status}}}"),
            sse,
        );
        for code in &codes {
            frame(&mut out, code, sse);
        }
        c.deadline = None;
        c.phase = Phase::Streaming {
            out,
            sent: 0,
            sse,
            input: 0,
        };
        c.flush();
    }

    // --- the bell --------------------------------------------------------------------------

    fn board_changed(&mut self) {
        let events = std::mem::take(&mut self.board.lock().events);
        if !events.is_empty() {
            for c in &mut self.conns {
                if let Phase::Streaming { out, sse, .. } = &mut c.phase {
                    for e in &events {
                        frame(out, e, *sse);
                    }
                    if out.len() > MAX_STREAM_BUFFER {
                        c.phase = Phase::Closed; // a reader that does not keep up
                    } else {
                        c.flush();
                    }
                }
            }
        }
        for i in 0..self.conns.len() {
            if self
                .conns
                .get(i)
                .is_some_and(|c| matches!(c.phase, Phase::Waiting { .. }))
            {
                self.answer(i, true);
            }
        }
    }

    fn expire(&mut self) {
        let now = clock::boottime();
        for c in &mut self.conns {
            if c.deadline.is_none_or(|d| d > now) {
                continue;
            }
            match c.phase {
                Phase::Reading(_) => {
                    log_refusal(
                        &c.peer,
                        "(no request)",
                        "the request did not arrive in time",
                    );
                    c.error(
                        408,
                        "request_timeout",
                        &format!(
                            "the request must arrive within {} s",
                            REQUEST_TIME.as_secs()
                        ),
                    );
                    c.phase = Phase::Closed;
                }
                Phase::Waiting { .. } => {
                    c.error(
                        504,
                        "provider_timeout",
                        "the provider did not answer in time; ask again",
                    );
                }
                Phase::Writing { .. } | Phase::Streaming { .. } | Phase::Closed => {
                    c.phase = Phase::Closed;
                }
            }
        }
    }
}

/// The peer closed (or broke) the connection before its request was complete.
struct Gone;

/// Reads what has arrived; `None` while the head is incomplete.
fn read_head(
    stream: &mut UnixStream,
    buf: &mut Vec<u8>,
) -> Option<Result<Result<Request, HttpError>, Gone>> {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Some(Err(Gone)),
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if buf.len() > http::MAX_HEAD_BYTES {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(Err(Gone)),
        }
    }
    match http::parse(buf) {
        Ok(Parsed::Incomplete) => None,
        Ok(Parsed::Done(req)) => Some(Ok(Ok(req))),
        Err(e) => Some(Ok(Err(e))),
    }
}

/// One event on a stream: a JSON line, or a server-sent event.
fn frame(out: &mut Vec<u8>, event: &str, sse: bool) {
    if sse {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\n\n");
    } else {
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// The proof a `POST /v1/dpop-proof` asks for (`method`, `url`, `nonce`), checked as
/// `devauth token --dpop-proof` checks its arguments; `None` for `GET /v1/token`.
fn proof_asked(req: &Request) -> Result<Option<Box<ProofArgs>>, String> {
    if req.path != "/v1/dpop-proof" {
        return Ok(None);
    }
    let param = |name| req.param(name).map_err(|e| e.to_string());
    let (Some(method), Some(url)) = (param("method")?, param("url")?) else {
        return Err("/v1/dpop-proof needs method= and url= (the request the proof is for)".into());
    };
    let nonce = param("nonce")?.map(str::to_string);
    crate::cli::proof_args(Some((method.to_string(), url.to_string())), nonce)
        .map(|p| p.map(Box::new))
        .map_err(|e| {
            e.0.replace("--dpop-proof: ", "")
                .replace("--dpop-nonce", "nonce")
        })
}

fn log_refusal(peer: &Peer, what: &str, why: &str) {
    eprintln!("devauth: refused {peer}: {what}: {why}");
}
