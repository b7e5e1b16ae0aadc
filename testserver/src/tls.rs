//! The test server's optional TLS listener: a server identity (certificate chain + key, PEM)
//! turned into a rustls `ServerConfig` (ring provider), and [`Conn`], the one connection type
//! the socket code reads and writes, plain or TLS.
//!
//! It exists so end-to-end tests can check devauth's certificate checks (unknown issuer, wrong
//! name, a `ca_file` that makes a private CA trusted) against a real handshake on 127.0.0.1.
//! It does not own the accept loop or HTTP (`server.rs`, `http.rs`). Test-only keys live in
//! `tests/fixtures/tls/` of the devauth repository.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A server certificate chain and its private key.
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity(..)")
    }
}

impl TlsIdentity {
    /// From PEM: `chain` holds the server certificate first (then any intermediates), `key`
    /// its private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> io::Result<TlsIdentity> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let certs = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no certificate in the PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(TlsIdentity {
            config: Arc::new(config),
        })
    }

    /// Reads both PEM files.
    pub fn from_files(
        chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> io::Result<TlsIdentity> {
        TlsIdentity::from_pem(&std::fs::read(chain)?, &std::fs::read(key)?)
    }

    pub(crate) fn accept(&self, tcp: TcpStream) -> io::Result<Conn> {
        let conn = ServerConnection::new(Arc::clone(&self.config))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(Conn::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

/// One accepted connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    /// Runs the TLS handshake to its end (nothing to do for plain connections). The error is
    /// what rustls saw: the client's alert when it refused our certificate, or garbage when
    /// it spoke plain HTTP to a TLS port.
    pub fn handshake(&mut self) -> Result<(), String> {
        let Conn::Tls(s) = self else {
            return Ok(());
        };
        while s.conn.is_handshaking() {
            if let Err(e) = s.conn.complete_io(&mut s.sock) {
                return Err(
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(tls) => tls.to_string(),
                        None => e.to_string(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Like `TcpStream::shutdown`; closing the write side of a TLS connection sends
    /// `close_notify` first so the client sees a clean end of the body.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if let Conn::Tls(s) = self {
            if how != Shutdown::Read {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
        self.tcp().shutdown(how)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
