//! `devauth api`: one HTTPS request with the current access token, for device scripts and for
//! checking a pairing ("who am I": the provider's userinfo URL).
//!
//! A DPoP-bound token (RFC 9449) is sent as `Authorization: DPoP` with a proof for this method
//! and URL that carries the token's hash (`ath`); a resource server's nonce challenge is met
//! once.
//!
//! The pattern of Google's server-side guide: send the request with the access token (fresh by
//! the same rule as `devauth token`); on HTTP 401 renew the token once — under the store lock, and
//! only if nobody else already replaced it ([`grant::Need::Replace`]) — and retry once. The body
//! is copied to stdout as it arrives (any status: it is the user's data; memory stays bounded);
//! the exit code says the status class.
//!
//! This module owns that sequence and the exit-code rule. The request itself goes through
//! `transport` (same TLS, timeouts, no redirects, https only); the token handling is `grant`'s.
//! The token is never printed, logged or put in an error.

use crate::cli::{ApiArgs, DataSource, MAX_API_BODY};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::Error;
use crate::grant::{self, Need, OnGone, Renewed};
use crate::net::transport::{ApiRequest, ApiResponse, TransportError};
use crate::secret::Secret;
use crate::setup;
use crate::store::TokenSet;
use std::io::{Read, Write};

/// Runs `devauth api`.
pub fn run(config: &Config, args: &ApiArgs) -> Result<(), Error> {
    crate::net::transport::check_scheme(&args.url, config.provider.allow_http_loopback).map_err(
        |why| {
            Error::Usage(crate::cli::UsageError(format!(
                "URL {}: {why}",
                crate::net::transport::redact_url(&args.url)
            )))
        },
    )?;
    let body = read_body(args.data.as_ref())?;
    let setup::StoredGrant {
        store,
        client,
        how,
        tokens,
    } = setup::stored_grant(config)?;
    // A DPoP-bound token goes as `Authorization: DPoP` with a proof carrying its hash (RFC 9449
    // §7.1); a server that asks for a nonce (§9: 401, `use_dpop_nonce`, `DPoP-Nonce`) gets the
    // request once more with it.
    let send = |t: &TokenSet| -> Result<ApiResponse, Error> {
        let dpop = match (t.is_dpop(), client.dpop.as_deref()) {
            (false, _) => None,
            (true, Some(d)) => Some(d),
            (true, None) => {
                return Err(Error::GrantGone {
                    detail: "the access token is DPoP-bound and its key is gone".into(),
                });
            }
        };
        let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
        let authorization = Secret::new(format!("{scheme} {}", t.access_token.expose()));
        let mut retried = false;
        loop {
            let proof = match dpop {
                Some(d) => Some(
                    d.proof(&args.method, &args.url, Some(&t.access_token))
                        .map_err(Error::Io)?,
                ),
                None => None,
            };
            let resp = client.transport.send_api(&ApiRequest {
                method: &args.method,
                url: &args.url,
                headers: &args.headers,
                authorization: &authorization,
                dpop_proof: proof.as_ref(),
                body: body.as_deref(),
            })?;
            let new_nonce = match (dpop, &resp.dpop_nonce) {
                (Some(d), Some(n)) => d.remember_nonce(&args.url, n),
                _ => false,
            };
            let wants_nonce = resp.status == 401
                && resp
                    .www_authenticate
                    .as_deref()
                    .is_some_and(crate::oauth::dpop::challenge_wants_nonce);
            if wants_nonce && new_nonce && !retried {
                retried = true;
                continue;
            }
            return Ok(resp);
        }
    };
    let mut resp = send(&tokens)?;
    if resp.status == 401 {
        // Keep the refusal (bounded) in case there is nothing to retry with.
        let first = read_capped(&mut resp.body, config.network.max_body_bytes);
        let renewed = grant::renew(
            &store,
            &client,
            &SystemClock,
            &how,
            Need::Replace(&tokens.access_token),
            OnGone::Keep,
        )?;
        let retry_with = match renewed {
            Renewed::New(t) => Some(t),
            Renewed::Current(t) if t.access_token != tokens.access_token => Some(t),
            Renewed::Current(_) => None,
            Renewed::Failed { error, .. } => {
                eprintln!("devauth: HTTP 401, and renewing the token failed: {error}");
                None
            }
        };
        match retry_with {
            Some(t) => resp = send(&t)?,
            None => {
                write_out(&first)?;
                return status_result(401, None, &args.url);
            }
        }
    }
    copy_body(&mut resp.body)?;
    status_result(resp.status, resp.location.as_deref(), &args.url)
}

/// The exit code rule: 2xx ok; 3xx/4xx/5xx → [`Error::HttpStatus`] (10/11/12).
fn status_result(status: u16, location: Option<&str>, url: &str) -> Result<(), Error> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    if (300..400).contains(&status) {
        if let Some(loc) = location {
            eprintln!(
                "devauth: redirect to {} not followed",
                crate::net::transport::redact_url(loc)
            );
        }
    }
    Err(Error::HttpStatus {
        status,
        url: crate::net::transport::redact_url(url),
    })
}

fn read_body(data: Option<&DataSource>) -> Result<Option<Vec<u8>>, Error> {
    let Some(data) = data else {
        return Ok(None);
    };
    let (what, reader): (String, Box<dyn Read>) = match data {
        DataSource::Stdin => ("stdin".into(), Box::new(std::io::stdin())),
        DataSource::File(path) => (
            path.display().to_string(),
            Box::new(
                std::fs::File::open(path)
                    .map_err(|e| Error::Io(format!("--data {}: {e}", path.display())))?,
            ),
        ),
    };
    let mut body = Vec::new();
    reader
        .take(MAX_API_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Io(format!("--data {what}: {e}")))?;
    if body.len() as u64 > MAX_API_BODY {
        return Err(Error::Usage(crate::cli::UsageError(format!(
            "--data {what}: larger than {MAX_API_BODY} bytes"
        ))));
    }
    Ok(Some(body))
}

/// Reads at most `cap` bytes (the rest is dropped with the connection).
fn read_capped(body: &mut dyn Read, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = body.take(cap as u64).read_to_end(&mut out);
    out
}

fn write_out(bytes: &[u8]) -> Result<(), Error> {
    let mut out = crate::stdout::Stdout;
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("writing the response to stdout: {e}")))
}

/// Streams the body to stdout in 16 KiB pieces; a network error mid-body is a network error.
fn copy_body(body: &mut dyn Read) -> Result<(), Error> {
    let mut out = crate::stdout::Stdout;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.flush();
                return Err(Error::from(TransportError::Network {
                    url: "response body".into(),
                    detail: e.to_string(),
                }));
            }
        };
        out.write_all(buf.get(..n).unwrap_or_default())
            .map_err(|e| Error::Io(format!("writing the response to stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| Error::Io(format!("writing the response to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_map_to_exit_codes() {
        assert!(status_result(200, None, "https://x").is_ok());
        assert!(status_result(204, None, "https://x").is_ok());
        let code = |s| status_result(s, None, "https://x/p?q=secret").unwrap_err();
        assert_eq!(code(301).exit_code(), 10);
        assert_eq!(code(401).exit_code(), 11);
        assert_eq!(code(404).exit_code(), 11);
        assert_eq!(code(500).exit_code(), 12);
        assert_eq!(code(503).exit_code(), 12);
        assert_eq!(code(101).exit_code(), 1);
        let shown = code(404).to_string();
        assert!(
            shown.contains("404") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn data_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"{\"a\":1}").unwrap();
        assert_eq!(
            read_body(Some(&DataSource::File(small))).unwrap(),
            Some(b"{\"a\":1}".to_vec())
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_API_BODY as usize + 1]).unwrap();
        let e = read_body(Some(&DataSource::File(big))).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let missing = read_body(Some(&DataSource::File(dir.path().join("nope")))).unwrap_err();
        assert!(missing.to_string().contains("nope"));
        assert_eq!(read_body(None).unwrap(), None);
    }

    #[test]
    fn capped_read() {
        let mut r: &[u8] = b"0123456789";
        assert_eq!(read_capped(&mut r, 4), b"0123");
    }
}
