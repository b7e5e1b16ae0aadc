//! TCP for ureq: connects by racing a host's addresses (Happy Eyeballs, the rules in
//! `net::eyeballs`) over non-blocking sockets and poll(2), and carries the connected socket as
//! a ureq transport.
//!
//! Why not ureq's own `TcpConnector`: it tries the addresses one after the other, splitting the
//! connect timeout between them (the first of two gets two thirds: 6.7 s of the default 10 s),
//! so a name whose IPv6 path is silently broken took seconds to fall back to IPv4. Here the
//! next address starts 250 ms after the previous one (at once when it fails), the first to
//! connect wins and the others are closed.
//!
//! When an address other than the first one tried wins, one line on stderr says which address
//! worked and what the others did; errors name every address tried. No threads, no DNS (the
//! addresses come from ureq's resolver), no TLS (that is `net::tls`, chained after this).

use crate::net::eyeballs::{self, Race, Step, Tried};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

/// The connector in ureq's chain where its `TcpConnector` would be.
#[derive(Debug, Default)]
pub struct RacingConnector;

impl<In: Transport> Connector<In> for RacingConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        // A proxy connector earlier in the chain already made the connection.
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let budget = details.timeout.not_zero().map(|t| *t);
        let host = details.uri.host().unwrap_or("");
        let stream = match race(&details.addrs, budget, eyeballs::ATTEMPT_DELAY) {
            Ok(won) => {
                if let Some(line) = won.log_line(host) {
                    eprintln!("devauth: {line}");
                }
                won.stream
            }
            Err(RaceError::TimedOut) => return Err(ureq::Error::Timeout(details.timeout.reason)),
            Err(RaceError::Failed { kind, message }) => {
                return Err(ureq::Error::Io(io::Error::new(kind, message)));
            }
        };
        // The race needed a non-blocking socket; the transport's reads block with a timeout.
        stream.set_nonblocking(false)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            read_timeout: None,
            write_timeout: None,
        };
        // So that ureq can cut a blocked read when the agent shuts down.
        (details.register_shutdown)(Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(Either::B(transport)))
    }
}

/// The winner of a race and how the others fared.
struct Won {
    stream: TcpStream,
    addr: SocketAddr,
    took: Duration,
    /// The attempts that did not win: the failed ones as they failed, then those abandoned.
    others: Vec<Tried>,
    /// Whether the winner was the first address tried.
    first: bool,
}

impl Won {
    /// The log line, when the first address tried did not win (a broken family or address).
    fn log_line(&self, host: &str) -> Option<String> {
        if self.first {
            return None;
        }
        Some(format!(
            "{host}: connected to {} in {} ms ({})",
            self.addr,
            self.took.as_millis(),
            eyeballs::describe(&self.others)
        ))
    }
}

#[derive(Debug)]
enum RaceError {
    /// The connect budget ran out with attempts still unanswered.
    TimedOut,
    /// Every address failed; `message` names each one and why.
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

/// One connection attempt in flight.
struct Attempt {
    fd: OwnedFd,
    addr: SocketAddr,
    started: Instant,
}

/// Races `addrs` (RFC 8305 §5) within `budget` (`None`: no limit).
fn race(addrs: &[SocketAddr], budget: Option<Duration>, delay: Duration) -> Result<Won, RaceError> {
    let began = Instant::now();
    let mut plan = Race::new(addrs, delay);
    let mut running: Vec<Attempt> = Vec::new();
    let mut failed: Vec<Tried> = Vec::new();
    let mut last_error: Option<io::Error> = None;
    let mut first_addr: Option<SocketAddr> = None;
    loop {
        let elapsed = began.elapsed();
        let left = budget.map(|b| b.saturating_sub(elapsed));
        if left == Some(Duration::ZERO) {
            return Err(RaceError::TimedOut);
        }
        let wait = match plan.step(elapsed) {
            Step::Start(addr) => {
                first_addr.get_or_insert(addr);
                match start_connect(addr) {
                    Ok((fd, true)) => {
                        let attempt = Attempt {
                            fd,
                            addr,
                            started: Instant::now(),
                        };
                        return Ok(won(attempt, running, failed, first_addr, began));
                    }
                    Ok((fd, false)) => running.push(Attempt {
                        fd,
                        addr,
                        started: Instant::now(),
                    }),
                    Err(e) => {
                        failed.push(tried(addr, Duration::ZERO, &e));
                        last_error = Some(e);
                        plan.failed();
                    }
                }
                continue;
            }
            Step::WaitAtMost(d) => Some(d),
            Step::WaitForAny => None,
            Step::Exhausted => {
                let kind = last_error
                    .as_ref()
                    .map(io::Error::kind)
                    .unwrap_or(io::ErrorKind::NotFound);
                let message = if failed.is_empty() {
                    "no address to connect to".to_string()
                } else {
                    eyeballs::describe(&failed)
                };
                return Err(RaceError::Failed { kind, message });
            }
        };
        let wait = match (wait, left) {
            (Some(w), Some(l)) => Some(w.min(l)),
            (w, l) => w.or(l),
        };
        // Highest index first: `swap_remove` then moves only attempts that are still running.
        for index in ready(&running, wait) {
            if index >= running.len() {
                continue;
            }
            let attempt = running.swap_remove(index);
            match socket_error(&attempt.fd) {
                Ok(()) => return Ok(won(attempt, running, failed, first_addr, began)),
                Err(e) => {
                    // Dropping the attempt closes its socket.
                    failed.push(tried(attempt.addr, attempt.started.elapsed(), &e));
                    last_error = Some(e);
                    plan.failed();
                }
            }
        }
    }
}

fn won(
    attempt: Attempt,
    running: Vec<Attempt>,
    mut others: Vec<Tried>,
    first_addr: Option<SocketAddr>,
    began: Instant,
) -> Won {
    // The losers still running are dropped here, which closes their sockets.
    others.extend(running.iter().map(|a| Tried {
        addr: a.addr,
        failure: None,
        took: a.started.elapsed(),
    }));
    Won {
        stream: TcpStream::from(attempt.fd),
        addr: attempt.addr,
        took: began.elapsed(),
        others,
        first: first_addr == Some(attempt.addr),
    }
}

fn tried(addr: SocketAddr, took: Duration, e: &io::Error) -> Tried {
    Tried {
        addr,
        failure: Some(short(e)),
        took,
    }
}

/// The error as a few lowercase words (`connection refused`), without "(os error 111)".
fn short(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

/// Opens a non-blocking socket and starts connecting: `(fd, true)` when connected at once.
fn start_connect(addr: SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain syscall; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let (storage, len) = sockaddr(&addr);
    // SAFETY: `storage` holds a sockaddr_in/sockaddr_in6 of `len` bytes and outlives the call.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&raw const storage).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc == 0 {
        return Ok((fd, true));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok((fd, false))
    } else {
        Err(err)
    }
}

/// The C socket address of `addr`. Built field by field on zeroed memory (no struct literals:
/// the C libraries differ in padding fields, as with `timespec` on 32-bit musl).
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid value of these plain C structs.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: as above.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            // s_addr is in network byte order: the octets as they are.
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // Both sizes are a few dozen bytes.
    (storage, len as libc::socklen_t)
}

/// Waits until at least one attempt has finished (connected or failed) or `wait` passed
/// (`None`: no limit); the indices of those that finished. A signal ends the wait early with
/// none, and the caller asks again.
fn ready(running: &[Attempt], wait: Option<Duration>) -> Vec<usize> {
    let mut fds: Vec<libc::pollfd> = running
        .iter()
        .map(|a| libc::pollfd {
            fd: a.fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    // Round up, so a wait of 0.4 ms does not spin at 0 ms.
    let ms = match wait {
        None => -1,
        Some(w) => libc::c_int::try_from(w.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd for the duration of the call, each
    // fd owned by an attempt in `running`, which outlives it.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc <= 0 {
        return Vec::new();
    }
    fds.iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .map(|(i, _)| i)
        .rev() // highest first, so swap_remove by the caller leaves the others in place
        .collect()
}

/// The outcome of a finished non-blocking connect (SO_ERROR).
fn socket_error(fd: &OwnedFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(err))
    }
}

/// A connected TCP socket as a ureq transport (what ureq's own `TcpTransport` does, which is
/// not public): socket timeouts set from ureq's deadlines, reads retried after a signal.
pub struct TcpTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The remaining time of a ureq deadline as a socket timeout; an exhausted one is ureq's
/// timeout error.
fn socket_timeout(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| *t))
}

/// A socket timeout shows up as WouldBlock (SO_RCVTIMEO) or TimedOut: ureq's timeout error.
fn io_result<T>(r: io::Result<T>, timeout: NextTimeout) -> Result<T, ureq::Error> {
    r.map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ureq::Error::Timeout(timeout.reason),
        _ => ureq::Error::Io(e),
    })
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let t = socket_timeout(timeout)?;
        if t != self.write_timeout {
            self.stream.set_write_timeout(t)?;
            self.write_timeout = t;
        }
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or(ureq::Error::ConnectionFailed)?;
        io_result((&*self.stream).write_all(output), timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let t = socket_timeout(timeout)?;
        if t != self.read_timeout {
            self.stream.set_read_timeout(t)?;
            self.read_timeout = t;
        }
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                // A signal (SO_RCVTIMEO reads are not restarted): go on with what is left.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let left = t.map(|t| t.saturating_sub(started.elapsed()));
                    if left == Some(Duration::ZERO) {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    self.stream.set_read_timeout(left)?;
                    self.read_timeout = left;
                }
                r => break io_result(r, timeout)?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // A pooled connection is reusable when reading would block: no EOF, no stray bytes.
        let stream = &*self.stream;
        if stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let open = matches!(
            (&*self.stream).read(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).is_ok() && open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn connects_to_a_listening_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let won = race(&[addr], Some(MS(2000)), MS(250)).unwrap();
        assert_eq!(won.addr, addr);
        won.stream.set_nonblocking(false).unwrap();
        assert_eq!(won.stream.peer_addr().unwrap(), addr);
        assert!(won.first && won.log_line("h").is_none());
        let (mut server, _) = listener.accept().unwrap();
        (&won.stream).write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[test]
    fn a_refused_address_falls_through_to_the_next_at_once() {
        // A port nothing listens on (bound, then closed), then a listening one.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        // A long delay: only the refusal can make the second attempt start early.
        let won = race(&[closed, open], Some(MS(5000)), MS(3000)).unwrap();
        assert_eq!(won.addr, open);
        assert!(won.took < MS(2000), "{:?}", won.took);
        let line = won.log_line("example.test").unwrap();
        assert!(
            line.starts_with(&format!("example.test: connected to {open} in "))
                && line.contains(&format!("{closed} connection refused after")),
            "{line}"
        );
    }

    #[test]
    fn every_address_refused_names_each_one() {
        let a = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let b = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let Err(RaceError::Failed { kind, message }) = race(&[a, b], Some(MS(2000)), MS(250))
        else {
            panic!("connected to closed ports")
        };
        assert_eq!(kind, io::ErrorKind::ConnectionRefused);
        assert!(
            message.contains(&format!("{a} connection refused"))
                && message.contains(&format!("{b} connection refused")),
            "{message}"
        );
        assert!(matches!(
            race(&[], Some(MS(10)), MS(250)),
            Err(RaceError::Failed { .. })
        ));
    }

    #[test]
    fn ipv6_loopback_works_when_the_host_has_it() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("no ::1 here; skipped");
            return;
        };
        let addr = listener.local_addr().unwrap();
        let won = race(&[addr], Some(MS(2000)), MS(250)).unwrap();
        assert_eq!(won.stream.peer_addr().unwrap(), addr);
    }
}
