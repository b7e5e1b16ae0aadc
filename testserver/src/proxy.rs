//! `TestProxy`: a small forward proxy on 127.0.0.1 for devauth's proxy tests, speaking HTTP
//! CONNECT (RFC 9110 §9.3.6, credentials as `Proxy-Authorization: Basic`, RFC 7617).
//!
//! It can demand a user and password, refuse every tunnel with a chosen status, and it records
//! each request: who asked for which target, with which credentials, and how it answered, so a
//! test can prove that a request went through it. It resolves names only from its own host
//! map — a test names the provider `provider.devauth.test` (not loopback, so devauth sends it to
//! the proxy) and the map sends the tunnel to the test server's 127.0.0.1 port — and otherwise
//! tunnels only to loopback addresses: it never connects off the machine.
//!
//! [`TestProxy::tls_front`] puts a TLS listener in front of it, for `https://` proxy URLs (TLS
//! to the proxy, then CONNECT, then the client's own TLS to the provider inside).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::codec::b64_decode;
use crate::server::lock;
use crate::tls::TlsIdentity;

/// How long a client may take to send its request, and the proxy to reach a target.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest CONNECT request head read.
const MAX_HEAD: usize = 8192;

/// How the proxy behaves.
#[derive(Clone, Debug, Default)]
pub struct ProxyOptions {
    /// The user and password it requires; without them (or others): 407.
    pub credentials: Option<(String, String)>,
    /// Refuse every tunnel with this status (403, 502...).
    pub refuse_with: Option<u16>,
    /// Names it resolves itself (no DNS here): `host` → address.
    pub hosts: Vec<(String, SocketAddr)>,
}

impl ProxyOptions {
    /// Resolve `host` (a name without port) to `addr`'s IP; the port is the client's.
    pub fn host(mut self, host: &str, addr: SocketAddr) -> ProxyOptions {
        self.hosts.push((host.to_ascii_lowercase(), addr));
        self
    }
}

/// One request the proxy answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRecord {
    /// `host:port` as the client asked for it.
    pub target: String,
    /// `user:password` the client sent (decoded), if any.
    pub credentials: Option<String>,
    /// The status it answered (200 when the tunnel opened).
    pub status: u16,
}

struct Shared {
    options: ProxyOptions,
    stop: AtomicBool,
    records: Mutex<Vec<ProxyRecord>>,
    connections: Mutex<usize>,
    streams: Mutex<Vec<TcpStream>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; stops (and cuts its tunnels) when dropped.
pub struct TestProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl TestProxy {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub fn start(options: ProxyOptions) -> io::Result<TestProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            stop: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
            streams: Mutex::new(Vec::new()),
            handles: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("testproxy-accept".into())
            .spawn(move || accept_loop(&sh, &listener))?;
        Ok(TestProxy {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` of the proxy (`127.0.0.1:PORT`).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request answered so far, in order.
    pub fn records(&self) -> Vec<ProxyRecord> {
        lock(&self.shared.records).clone()
    }

    /// How many tunnels to `target` (`host:port`) were opened.
    pub fn tunnels_to(&self, target: &str) -> usize {
        lock(&self.shared.records)
            .iter()
            .filter(|r| r.status == 200 && r.target.eq_ignore_ascii_case(target))
            .count()
    }

    /// TCP connections accepted (each request, also refused ones).
    pub fn connections(&self) -> usize {
        *lock(&self.shared.connections)
    }

    /// A TLS listener on another port of 127.0.0.1 that hands each connection, decrypted, to
    /// this proxy: the proxy as an `https://` URL. Stops when dropped.
    pub fn tls_front(&self, identity: TlsIdentity) -> io::Result<TlsFront> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (inner, halt) = (self.addr, Arc::clone(&stop));
        let accept = thread::Builder::new()
            .name("testproxy-tls".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if halt.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = conn else {
                        continue;
                    };
                    let identity = identity.clone();
                    thread::spawn(move || terminate_tls(&identity, tcp, inner));
                }
            })?;
        Ok(TlsFront {
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

/// A TLS listener in front of a [`TestProxy`] ([`TestProxy::tls_front`]).
pub struct TlsFront {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// `host:port` (`127.0.0.1:PORT`; the certificate must name 127.0.0.1).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                let _ = h.join();
            }
        }
    }
}

/// Decrypts one client connection and relays it to the plain proxy at `inner`, in one thread
/// taking turns (a rustls stream cannot be read and written from two threads): each side is
/// read with a short timeout.
fn terminate_tls(identity: &TlsIdentity, tcp: TcpStream, inner: SocketAddr) {
    const TURN: Duration = Duration::from_millis(5);
    let Ok(mut client) = identity.accept(tcp) else {
        return;
    };
    if client.handshake().is_err() {
        return;
    }
    let Ok(mut proxy) = TcpStream::connect(inner) else {
        return;
    };
    let _ = client.set_read_timeout(Some(TURN));
    let _ = proxy.set_read_timeout(Some(TURN));
    let mut buf = [0u8; 16 * 1024];
    let idle = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
        )
    };
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if proxy.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => break,
        }
        match proxy.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if client
                    .write_all(&buf[..n])
                    .and_then(|()| client.flush())
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            // Wake the blocking accept so it sees `stop`.
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                let _ = h.join();
            }
        }
        for s in lock(&self.shared.streams).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let handles: Vec<_> = lock(&self.shared.handles).drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        *lock(&shared.connections) += 1;
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.streams).push(clone);
        }
        let sh = Arc::clone(shared);
        if let Ok(h) = thread::Builder::new()
            .name("testproxy-conn".into())
            .spawn(move || serve(&sh, stream))
        {
            let mut handles = lock(&shared.handles);
            handles.retain(|h| !h.is_finished());
            handles.push(h);
        }
    }
}

fn serve(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(TIMEOUT));
    let mut first = [0u8; 1];
    if client.read_exact(&mut first).is_err() {
        return;
    }
    if let Ok(Some((target, leftover))) = connect(shared, &mut client, first[0]) {
        splice(shared, client, target, &leftover);
    }
}

/// An opened tunnel: the connection to the target and bytes the client already sent past the
/// request.
type Tunnel = Option<(TcpStream, Vec<u8>)>;

/// HTTP CONNECT: reads the request head, checks credentials, answers and opens the tunnel.
fn connect(shared: &Shared, client: &mut TcpStream, first: u8) -> io::Result<Tunnel> {
    let mut head = vec![first];
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    };
    let leftover = head.split_off(end);
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let credentials = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization"))
        .and_then(|(_, v)| basic_credentials(v.trim()));
    let mut record = ProxyRecord {
        target: target.to_string(),
        credentials: credentials.clone(),
        status: 200,
    };
    let opened = if method != "CONNECT" {
        Err(405)
    } else if !credentials_ok(&shared.options, credentials.as_deref()) {
        Err(407)
    } else if let Some(status) = shared.options.refuse_with {
        Err(status)
    } else {
        open(&shared.options, target).map_err(|_| 502)
    };
    let answer = match &opened {
        Ok(_) => "HTTP/1.1 200 Connection established\r\n\r\n".to_string(),
        Err(status) => {
            record.status = *status;
            let auth = if *status == 407 {
                "Proxy-Authenticate: Basic realm=\"devauth test proxy\"\r\n"
            } else {
                ""
            };
            let body = format!("test proxy: {status}\n");
            format!(
                "HTTP/1.1 {status} {}\r\n{auth}Content-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                crate::http::reason(*status),
                body.len()
            )
        }
    };
    lock(&shared.records).push(record);
    client.write_all(answer.as_bytes())?;
    Ok(opened.ok().map(|t| (t, leftover)))
}

/// `Basic base64(user:password)` → `user:password`.
fn basic_credentials(value: &str) -> Option<String> {
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    String::from_utf8(b64_decode(b64.trim())?).ok()
}

fn credentials_ok(options: &ProxyOptions, given: Option<&str>) -> bool {
    match &options.credentials {
        None => true,
        Some((user, password)) => given == Some(format!("{user}:{password}").as_str()),
    }
}

/// Connects to `target` (`host:port`): a name from the host map, or a loopback address.
fn open(options: &ProxyOptions, target: &str) -> io::Result<TcpStream> {
    let refused = || io::Error::new(io::ErrorKind::NotFound, "no such host here");
    let (host, port) = target.rsplit_once(':').ok_or_else(refused)?;
    let port: u16 = port.parse().map_err(|_| refused())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let map: HashMap<&str, SocketAddr> = options
        .hosts
        .iter()
        .map(|(h, a)| (h.as_str(), *a))
        .collect();
    let ip = match map.get(host.to_ascii_lowercase().as_str()) {
        Some(addr) => addr.ip(),
        None => match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => ip,
            _ => return Err(refused()),
        },
    };
    TcpStream::connect_timeout(&SocketAddr::new(ip, port), TIMEOUT)
}

/// Copies both ways until either side closes.
fn splice(shared: &Shared, client: TcpStream, target: TcpStream, leftover: &[u8]) {
    let _ = client.set_read_timeout(None);
    if let Ok(clone) = target.try_clone() {
        lock(&shared.streams).push(clone);
    }
    let (Ok(mut client_r), Ok(mut target_w)) = (client.try_clone(), target.try_clone()) else {
        return;
    };
    if target_w.write_all(leftover).is_err() {
        return;
    }
    let up = thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut target_w);
        let _ = target_w.shutdown(Shutdown::Write);
    });
    let (mut target_r, mut client_w) = (target, client);
    let _ = io::copy(&mut target_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}
