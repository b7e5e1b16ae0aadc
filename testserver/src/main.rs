//! `devauth-testserver` binary: runs the loopback test authorization server for the demo and
//! for non-Rust scripts. Owns only argument parsing and startup; the server is the library.
//! Prints `listening http://127.0.0.1:PORT` on stdout, then serves until killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use devauth_testserver::{Behavior, DpopPolicy, Flavor, IntervalField, JwtBearer, TestServer};

const USAGE: &str = "\
devauth-testserver: loopback OAuth 2.0 device-grant test server (127.0.0.1 only)

USAGE: devauth-testserver [OPTIONS]

OPTIONS:
  --port N                  port on 127.0.0.1 (default 0: ephemeral)
  --flavor F                generic|google|microsoft|github (default generic)
  --auto-approve-after SECS approve each code SECS after it was issued
  --auto-deny               the automatic decision denies instead
  --interval SECS           polling interval sent and enforced (default 1)
  --token-lifetime SECS     access token lifetime (default 3600; 0: no expires_in)
  --expires-in SECS         device code lifetime (default 600; github 900)
  --client-id ID            accepted client id (default devauth-test)
  --client-secret SECRET    require this client secret
  --jwt-public-key FILE     accept RFC 7523 JWT bearer assertions signed by this RSA key
                            (PKCS#1 RSAPublicKey DER) ...
  --jwt-issuer ISS          ... from this issuer (both flags together)
  --dpop                    require DPoP proofs (RFC 9449) with the server's nonce on token
                            requests; tokens are bound to the proof's key
  -h, --help                this text

Prints `listening http://127.0.0.1:PORT` when ready; logs one line per request to stderr.
Approve codes at /device (browser) or with `POST /test/approve`; counters at `GET /test/stats`.
";

/// A change to the flavor's preset, applied after all flags are read.
type Override = Box<dyn FnOnce(&mut Behavior)>;

struct Args {
    port: u16,
    behavior: Behavior,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let v = value.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: not a valid number: {v}"))
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut it = argv.into_iter();
    let mut port = 0u16;
    let mut flavor = Flavor::Generic;
    let mut overrides: Vec<Override> = Vec::new();
    let mut jwt_key: Option<Vec<u8>> = None;
    let mut jwt_issuer: Option<String> = None;
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next());
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => port = number(&flag, value())?,
            "--flavor" => {
                let v = value().ok_or("--flavor needs a value")?;
                flavor = Flavor::parse(&v).ok_or_else(|| {
                    format!("--flavor: unknown flavor {v} (generic|google|microsoft|github)")
                })?;
            }
            "--auto-approve-after" => {
                let s: f64 = number(&flag, value())?;
                if !(s.is_finite() && s >= 0.0) {
                    return Err(format!("{flag}: must be a non-negative number"));
                }
                overrides.push(Box::new(move |b| {
                    b.auto_approve_after = Some(Duration::from_secs_f64(s))
                }));
            }
            "--auto-deny" => overrides.push(Box::new(|b| b.auto_deny = true)),
            "--interval" => {
                let s: u64 = number(&flag, value())?;
                overrides.push(Box::new(move |b| b.interval = IntervalField::Number(s)));
            }
            "--token-lifetime" => {
                let s: u64 = number(&flag, value())?;
                overrides.push(Box::new(move |b| {
                    b.token_lifetime = (s > 0).then_some(s);
                }));
            }
            "--expires-in" => {
                let s: u64 = number(&flag, value())?;
                overrides.push(Box::new(move |b| b.expires_in = s));
            }
            "--client-id" => {
                let v = value().ok_or("--client-id needs a value")?;
                overrides.push(Box::new(move |b| b.client_id = v));
            }
            "--client-secret" => {
                let v = value().ok_or("--client-secret needs a value")?;
                overrides.push(Box::new(move |b| b.client_secret = Some(v)));
            }
            "--jwt-public-key" => {
                let v = value().ok_or("--jwt-public-key needs a value")?;
                jwt_key = Some(std::fs::read(&v).map_err(|e| format!("{flag} {v}: {e}"))?);
            }
            "--jwt-issuer" => jwt_issuer = Some(value().ok_or("--jwt-issuer needs a value")?),
            "--dpop" => overrides.push(Box::new(|b| {
                b.dpop = Some(DpopPolicy {
                    required: true,
                    require_nonce: true,
                    ..DpopPolicy::default()
                })
            })),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    match (jwt_key, jwt_issuer) {
        (Some(key), Some(iss)) => overrides.push(Box::new(move |b| {
            b.jwt_bearer = Some(JwtBearer::new(key, iss))
        })),
        (None, None) => {}
        _ => return Err("--jwt-public-key and --jwt-issuer go together".into()),
    }
    let mut behavior = Behavior::for_flavor(flavor);
    for f in overrides {
        f(&mut behavior);
    }
    Ok(Some(Args { port, behavior }))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("devauth-testserver: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match TestServer::start_on_port(args.port, args.behavior) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "devauth-testserver: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            return ExitCode::from(1);
        }
    };
    server.set_logging(true);
    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening {}", server.base_url())
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    drop(out);
    // Serve until killed (default SIGTERM/SIGINT handling ends the process).
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Option<Args>, String> {
        parse(s.iter().map(|x| x.to_string()))
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--port",
            "8080",
            "--flavor=google",
            "--auto-approve-after",
            "2.5",
            "--interval",
            "3",
            "--token-lifetime",
            "0",
            "--expires-in",
            "30",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.port, 8080);
        assert_eq!(a.behavior.flavor, Flavor::Google);
        assert_eq!(a.behavior.pending_status, 428);
        assert_eq!(
            a.behavior.auto_approve_after,
            Some(Duration::from_millis(2500))
        );
        assert_eq!(a.behavior.interval, IntervalField::Number(3));
        assert_eq!(a.behavior.token_lifetime, None);
        assert_eq!(a.behavior.expires_in, 30);
        assert!(a.behavior.dpop.is_none());
        let d = args(&["--dpop"]).unwrap().unwrap().behavior.dpop.unwrap();
        assert!(d.required && d.require_nonce);
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "99999"]).is_err());
        assert!(args(&["--flavor", "okta"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--auto-approve-after", "-1"]).is_err());
    }
}
