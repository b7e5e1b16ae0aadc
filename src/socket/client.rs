//! The client side, for `devauth token`: one `GET /v1/token` (or, for `--dpop-proof`, one
//! `POST /v1/dpop-proof`) to the agent's socket. No agent
//! listening (no socket file, nobody accepting, not permitted to connect) is
//! [`Asked::NoAgent`], and the caller does without; an answer, even a refusal, is the agent's
//! word.

use super::http::MAX_HEAD_BYTES;
use crate::cli::ProofArgs;
use crate::net::wire::form_encode;
use crate::secret::Secret;
use serde_json::Value;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a token response is well under this).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// What the agent said.
#[derive(Debug)]
pub enum Asked {
    /// Nobody serves on the socket.
    NoAgent,
    Token {
        access_token: Secret,
        token_type: String,
        /// The DPoP proof asked for, bound to this token.
        dpop_proof: Option<Secret>,
    },
    /// An error answer: status, `error` code, `message`.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// Asks the agent at `socket` for a token of `account` (`None`: the default) with `scope`
/// (`None`: what this caller is granted) and, with `proof`, a DPoP proof for that request
/// bound to it. `timeout` bounds the whole exchange.
pub fn token(
    socket: &Path,
    account: Option<&str>,
    scope: Option<&str>,
    proof: Option<&ProofArgs>,
    timeout: Duration,
) -> Result<Asked, String> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::PermissionDenied
            ) || e.raw_os_error() == Some(libc::ENOTSOCK) =>
        {
            return Ok(Asked::NoAgent);
        }
        Err(e) => return Err(format!("agent socket {}: {e}", socket.display())),
    };
    let fail = |e: io::Error| format!("agent socket {}: {e}", socket.display());
    stream.set_read_timeout(Some(timeout)).map_err(fail)?;
    stream.set_write_timeout(Some(timeout)).map_err(fail)?;
    let mut query = Vec::new();
    let params = [
        ("account", account),
        ("scope", scope),
        ("method", proof.map(|p| p.method.as_str())),
        ("url", proof.map(|p| p.url.as_str())),
        ("nonce", proof.and_then(|p| p.nonce.as_deref())),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            query.push(format!("{name}={}", form_encode(v)));
        }
    }
    let (method, path) = match proof {
        None => ("GET", "/v1/token"),
        Some(_) => ("POST", "/v1/dpop-proof"),
    };
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .map_err(fail)?;
    parse_answer(&answer).map_err(|why| format!("agent socket {}: {why}", socket.display()))
}

fn parse_answer(answer: &[u8]) -> Result<Asked, String> {
    let split = answer
        .windows(4)
        .take(MAX_HEAD_BYTES)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the agent's answer has no end of head")?;
    let head = std::str::from_utf8(answer.get(..split).unwrap_or_default())
        .map_err(|_| "the agent's answer head is not text")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("the agent's answer has no status")?;
    let body: Value = serde_json::from_slice(answer.get(split + 4..).unwrap_or_default())
        .map_err(|e| format!("the agent's answer is not JSON: {e}"))?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if status == 200 {
        let access_token = text("access_token").ok_or("no access_token in the agent's answer")?;
        return Ok(Asked::Token {
            access_token: Secret::new(access_token),
            token_type: text("token_type").unwrap_or_else(|| "Bearer".into()),
            dpop_proof: text("dpop_proof").map(Secret::new),
        });
    }
    Ok(Asked::Refused {
        status,
        code: text("error").unwrap_or_default(),
        message: text("message").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"expires_in\":5,\"scope\":\"a\"}";
        match parse_answer(ok).unwrap() {
            Asked::Token { access_token, .. } => assert_eq!(access_token.expose(), "at"),
            other => panic!("{other:?}"),
        }
        let no =
            b"HTTP/1.1 403 Forbidden\r\n\r\n{\"error\":\"client_not_allowed\",\"message\":\"no\"}";
        match parse_answer(no).unwrap() {
            Asked::Refused { status, code, .. } => {
                assert_eq!((status, code.as_str()), (403, "client_not_allowed"))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_answer(b"garbage").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\nnot json").is_err());
    }

    #[test]
    fn no_socket_is_no_agent() {
        let dir = tempfile::tempdir().unwrap();
        let r = token(
            &dir.path().join("none.sock"),
            None,
            None,
            None,
            Duration::from_secs(1),
        );
        assert!(matches!(r, Ok(Asked::NoAgent)));
        // A socket file nobody listens on.
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let r = token(&path, None, None, None, Duration::from_secs(1));
        assert!(matches!(r, Ok(Asked::NoAgent)));
    }
}
