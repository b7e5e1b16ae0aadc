//! `devauth token`: prints a fresh access token — the agent's, through its socket, when
//! `devauth run` serves one; else from the store (renewing it first when due) — and, with
//! `--dpop-proof METHOD URL`, a DPoP proof (RFC 9449) for one request with it on the next line.

use crate::cli::ProofArgs;
use crate::config::{Config, DEFAULT_ACCOUNT};
use crate::error::Error;
use crate::secret::Secret;
use crate::setup;
use crate::socket::client::{self, Asked};
use std::time::Duration;

/// What is printed: the token, its type and the proof asked for.
struct Printed {
    access_token: Secret,
    token_type: String,
    proof: Option<Secret>,
}

pub(crate) fn token(
    config: &Config,
    header: bool,
    scope: Option<&str>,
    dpop: Option<&ProofArgs>,
) -> Result<(), Error> {
    let printed = match from_agent(config, scope, dpop)? {
        Some(p) => p,
        None if scope.is_some() => {
            return Err(Error::Setup(format!(
                "--scope needs `devauth run` serving [agent] socket ({}); it fetches and caches \
                 the narrowed tokens",
                config
                    .agent
                    .socket
                    .path
                    .as_ref()
                    .map_or("none configured".into(), |p| p.display().to_string())
            )));
        }
        None => from_store(config, dpop)?,
    };
    let mut text = if header {
        let scheme = if printed.token_type == "DPoP" {
            "DPoP"
        } else {
            "Bearer"
        };
        format!("{scheme} {}", printed.access_token.expose())
    } else {
        printed.access_token.expose().to_string()
    };
    if let Some(proof) = &printed.proof {
        text.push('\n');
        text.push_str(proof.expose());
    }
    // A failed write is `main`'s to report (exit 1; quietly for a closed pipe).
    let _ = crate::stdout::line(&text);
    Ok(())
}

/// The token from the store, renewed when due, and its proof.
fn from_store(config: &Config, dpop: Option<&ProofArgs>) -> Result<Printed, Error> {
    let grant = setup::stored_grant(config)?;
    let tokens = grant.tokens;
    // The proof is made for the token printed with it (its `ath`): both come from this one
    // renewal, so a refresh by another process in between cannot separate them.
    let proof = match dpop {
        None => None,
        Some(req) => {
            let key = grant.client.dpop.as_deref().ok_or_else(|| {
                Error::Setup(
                    "--dpop-proof: the tokens are not bound to a DPoP key ([provider] dpop is \
                     off, or the provider issued Bearer tokens)"
                        .into(),
                )
            })?;
            Some(crate::keys::dpop_proof(
                key,
                &tokens.access_token,
                &tokens.token_type,
                &req.method,
                &req.url,
                req.nonce.as_deref(),
            )?)
        }
    };
    Ok(Printed {
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        proof,
    })
}

/// The agent's answer; `None` when no agent serves the socket.
fn from_agent(
    config: &Config,
    scope: Option<&str>,
    dpop: Option<&ProofArgs>,
) -> Result<Option<Printed>, Error> {
    let Some(path) = &config.agent.socket.path else {
        return Ok(None);
    };
    // The agent may have to ask the provider for a narrowed token first.
    let timeout = config.network.timeout + Duration::from_secs(10);
    // A single-account config asks as it always did (no `account=`).
    let account = Some(config.account.name.as_str()).filter(|a| *a != DEFAULT_ACCOUNT);
    match client::token(path, account, scope, dpop, timeout).map_err(Error::Io)? {
        Asked::NoAgent => Ok(None),
        Asked::Token {
            access_token,
            token_type,
            dpop_proof,
        } => Ok(Some(Printed {
            access_token,
            token_type,
            proof: dpop_proof,
        })),
        Asked::Refused {
            status,
            code,
            message,
        } => Err(match (status, code.as_str()) {
            (403 | 404, _) => Error::AgentRefused { code, message },
            (_, "not_paired") => Error::NotPaired {
                store: config.storage.path.clone(),
            },
            (409, "not_dpop_bound") => Error::Setup(format!("--dpop-proof: {message}")),
            (400, "invalid_request") => Error::Usage(crate::cli::UsageError(message)),
            (502, _) => Error::Provider(format!("{message} ({code})")),
            (503 | 504, _) => Error::Network(format!("{message} ({code})")),
            _ => Error::Io(format!("the agent answered {status}: {message} ({code})")),
        }),
    }
}
