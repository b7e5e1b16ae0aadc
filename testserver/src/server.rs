//! The socket side: the accept loop, one thread per connection, recording requests, applying
//! queued faults and writing answers. Never holds the state lock while sleeping or doing I/O.
//! The OAuth logic is in `authz.rs`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::authz::{self, Handled, State};
use crate::http::{self, ReadError, Response};
use crate::tls::{Conn, TlsIdentity};
use crate::{Fault, Recorded};

/// How often stopping is checked while hanging, trickling or delaying.
const STOP_POLL: Duration = Duration::from_millis(50);
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections, so `Drop` can cut them and wait for their threads.
#[derive(Default)]
pub struct Conns {
    next: u64,
    streams: HashMap<u64, TcpStream>,
    handles: Vec<JoinHandle<()>>,
}

/// Everything the threads share.
pub struct Shared {
    pub state: Mutex<State>,
    pub stop: AtomicBool,
    pub log: AtomicBool,
    pub base_url: String,
    pub conns: Mutex<Conns>,
    /// Serve TLS with this identity (`TestServer::start_tls`); plain HTTP when `None`.
    pub tls: Option<TlsIdentity>,
    /// Failed TLS handshakes, as rustls described them.
    pub tls_errors: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(state: State, base_url: String) -> Shared {
        Shared {
            state: Mutex::new(state),
            stop: AtomicBool::new(false),
            log: AtomicBool::new(false),
            base_url,
            conns: Mutex::new(Conns::default()),
            tls: None,
            tls_errors: Mutex::new(Vec::new()),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d` in slices; returns false when the server stopped meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            thread::sleep(STOP_POLL.min(end - now));
        }
    }

    /// Takes the open streams and the connection threads (for `Drop`).
    pub fn take_conns(&self) -> (Vec<TcpStream>, Vec<JoinHandle<()>>) {
        let mut c = lock(&self.conns);
        let streams = c.streams.drain().map(|(_, s)| s).collect();
        (streams, std::mem::take(&mut c.handles))
    }
}

/// Locks, ignoring poisoning: a panicking test thread must not wedge the server.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts until `stop` is set (the stopper then connects once to wake this loop).
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // e.g. out of file descriptors: do not spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut conns = lock(&shared.conns);
        conns.handles.retain(|h| !h.is_finished());
        let id = conns.next;
        conns.next += 1;
        if let Ok(clone) = stream.try_clone() {
            conns.streams.insert(id, clone);
        }
        let sh = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("testserver-conn".into())
            .spawn(move || {
                let conn = match &sh.tls {
                    None => Ok(Conn::Plain(stream)),
                    Some(identity) => identity.accept(stream),
                };
                if let Ok(conn) = conn {
                    serve(&sh, conn);
                }
                lock(&sh.conns).streams.remove(&id);
            });
        match spawned {
            Ok(h) => conns.handles.push(h),
            Err(_) => {
                conns.streams.remove(&id);
            }
        }
    }
}

fn log(shared: &Shared, method: &str, path: &str, status: &str) {
    if shared.log.load(Ordering::Relaxed) {
        // Path only: queries may carry codes; never bodies or headers (secrets).
        eprintln!("{method} {path} {status}");
    }
}

/// Reads and discards what the client still sends (so closing does not reset the
/// connection before it read our answer), bounded in bytes and time.
fn drain(stream: &mut Conn) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16384];
    let mut total = 0usize;
    while total < 4 * http::MAX_BODY {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Serves one connection: one request, one answer (or a fault).
fn serve(shared: &Shared, mut stream: Conn) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_nodelay(true);
    if let Err(e) = stream.handshake() {
        log(shared, "-", "-", &format!("- (TLS handshake failed: {e})"));
        lock(&shared.tls_errors).push(e);
        return;
    }
    let req = match http::read_request(&mut stream) {
        Ok(r) => r,
        Err(ReadError::Closed) | Err(ReadError::Io) => return,
        Err(e) => {
            let (status, why) = match e {
                ReadError::HeadTooLarge => (431, "request head too large"),
                ReadError::BodyTooLarge => (413, "request body larger than 1 MiB"),
                ReadError::Bad(why) => (400, why),
                ReadError::Closed | ReadError::Io => (400, "unreadable request"),
            };
            let resp = Response::json(
                status,
                &serde_json::json!({"error": "invalid_request", "error_description": why}),
            );
            log(shared, "-", "-", &status.to_string());
            let _ = http::write_response(&mut stream, &resp);
            drain(&mut stream);
            return;
        }
    };

    let routed = authz::route(&req.path);
    let (fault, handled) = {
        let mut st = lock(&shared.state);
        st.stats.requests += 1;
        let form = req.form();
        st.recorded.push(Recorded {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            form,
            basic_auth: req.basic_auth(),
            endpoint: routed.endpoint,
            at: Instant::now(),
            tenant: routed.tenant.clone(),
            body: req.body.clone(),
        });
        let fault = routed
            .endpoint
            .and_then(|e| st.faults.get_mut(&e).and_then(|q| q.pop_front()));
        if fault.is_some() {
            st.stats.faults_served += 1;
        }
        let processes = matches!(
            fault,
            None | Some(Fault::LoseResponse) | Some(Fault::Delay(_))
        );
        let handled = processes.then(|| st.handle(&shared.base_url, &req, &routed));
        (fault, handled)
    };

    match (fault, handled) {
        (None, Some(h)) => answer(shared, &mut stream, &req, h),
        (Some(Fault::Delay(d)), Some(mut h)) => {
            h.delay += d;
            answer(shared, &mut stream, &req, h)
        }
        (Some(Fault::LoseResponse), Some(h)) => {
            shared.sleep(h.delay);
            log(shared, &req.method, &req.path, "- (fault: response lost)");
            let _ = stream.shutdown(Shutdown::Both);
        }
        (Some(fault), _) => apply_fault(shared, &mut stream, &req, fault),
        (None, None) => {}
    }
}

fn answer(shared: &Shared, stream: &mut Conn, req: &http::Request, h: Handled) {
    if !shared.sleep(h.delay) {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let mut resp = h.response;
    // Log first: once the client has the answer, the line is already out.
    log(shared, &req.method, &req.path, &resp.status.to_string());
    if req.method == "HEAD" {
        // Keep the length of the GET answer, send no body.
        let len = resp.body.len();
        let head = http::head(resp.status, &resp.headers, Some(len));
        let _ = stream.write_all(head.as_bytes());
        resp.body.clear();
    } else {
        let _ = http::write_response(stream, &resp);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

fn apply_fault(shared: &Shared, stream: &mut Conn, req: &http::Request, fault: Fault) {
    let simple = |resp: Response, stream: &mut Conn| {
        log(
            shared,
            &req.method,
            &req.path,
            &format!("{} (fault)", resp.status),
        );
        let _ = http::write_response(stream, &resp);
        let _ = stream.shutdown(Shutdown::Write);
    };
    match fault {
        Fault::Status(status) => {
            let mut resp = Response::json(status, &serde_json::json!({"error": "server_error"}));
            if status == 429 {
                resp = resp.with_header("Retry-After", "1");
            }
            simple(resp, stream);
        }
        Fault::RetryAfter { status, secs } => {
            let body = serde_json::json!({"error": "temporarily_unavailable"});
            let resp = Response::json(status, &body).with_header("Retry-After", &secs.to_string());
            simple(resp, stream);
        }
        Fault::Hang => {
            log(shared, &req.method, &req.path, "- (fault: hang)");
            while shared.sleep(STOP_POLL) {}
            let _ = stream.shutdown(Shutdown::Both);
        }
        Fault::Close => {
            log(shared, &req.method, &req.path, "- (fault: close)");
            let _ = stream.shutdown(Shutdown::Both);
        }
        Fault::Malformed => {
            simple(
                Response::new(200, "application/json", b"{\"access_tok".to_vec()),
                stream,
            );
        }
        Fault::Html(status) => {
            let body = format!(
                "<!DOCTYPE html>\n<html><head><title>{status} {0}</title></head><body><h1>{status} {0}</h1><p>The proxy could not reach the upstream server.</p></body></html>\n",
                http::reason(status)
            );
            simple(Response::html(status, body), stream);
        }
        Fault::Raw {
            status,
            content_type,
            body,
        } => simple(
            Response::new(status, &content_type, body.into_bytes()),
            stream,
        ),
        Fault::Oversized(n) => {
            log(shared, &req.method, &req.path, "200 (fault: oversized)");
            oversized(shared, stream, n);
        }
        Fault::Endless => {
            log(shared, &req.method, &req.path, "200 (fault: endless)");
            endless(shared, stream);
        }
        Fault::Redirect { status, location } => {
            simple(
                Response::empty(status).with_header("Location", &location),
                stream,
            );
        }
        Fault::Flood => {
            log(shared, &req.method, &req.path, "200 (fault: flood)");
            flood(shared, stream);
        }
        Fault::LoseResponse | Fault::Delay(_) => {}
    }
}

/// A 200 JSON answer of exactly `n` bytes (valid JSON when `n >= 10`), written in pieces.
fn oversized(shared: &Shared, stream: &mut Conn, n: usize) {
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if stream
        .write_all(http::head(200, &headers, Some(n)).as_bytes())
        .is_err()
    {
        return;
    }
    let (prefix, suffix): (&[u8], &[u8]) = if n >= 10 {
        (b"{\"pad\":\"", b"\"}")
    } else {
        (b"", b"")
    };
    let _ = stream.write_all(prefix);
    let mut left = n - prefix.len() - suffix.len();
    let piece = [b'x'; 65536];
    while left > 0 && !shared.stopped() {
        let k = left.min(piece.len());
        if stream.write_all(piece.get(..k).unwrap_or(&[])).is_err() {
            return;
        }
        left -= k;
    }
    let _ = stream.write_all(suffix);
    let _ = stream.shutdown(Shutdown::Write);
}

/// A chunked 200 answer that never ends: one byte every 50 ms until stop or the peer leaves.
fn endless(shared: &Shared, stream: &mut Conn) {
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Transfer-Encoding".to_string(), "chunked".to_string()),
    ];
    let mut out = http::head(200, &headers, None).into_bytes();
    out.extend_from_slice(b"11\r\n{\"access_token\":\"\r\n");
    if stream.write_all(&out).is_err() {
        return;
    }
    while shared.sleep(STOP_POLL) {
        if stream.write_all(b"1\r\na\r\n").is_err() {
            return;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A chunked 200 answer that never ends and comes as fast as the client reads: 16 KiB chunks
/// until stop or the peer leaves (a body cap must end it, not a timeout).
fn flood(shared: &Shared, stream: &mut Conn) {
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Transfer-Encoding".to_string(), "chunked".to_string()),
    ];
    let mut out = http::head(200, &headers, None).into_bytes();
    out.extend_from_slice(b"8\r\n{\"pad\":\"\r\n");
    if stream.write_all(&out).is_err() {
        return;
    }
    let mut chunk = b"4000\r\n".to_vec();
    chunk.extend_from_slice(&[b'x'; 0x4000]);
    chunk.extend_from_slice(b"\r\n");
    while !shared.stopped() {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
