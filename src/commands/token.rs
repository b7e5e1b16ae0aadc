//! `devauth token`: prints a fresh access token — the agent's, through its socket, when
//! `devauth run` serves one; else from the store (renewing it first when due).

use crate::config::Config;
use crate::error::Error;
use crate::secret::Secret;
use crate::setup;
use crate::socket::client::{self, Asked};
use std::io::Write;
use std::time::Duration;

pub(crate) fn token(config: &Config, header: bool, scope: Option<&str>) -> Result<(), Error> {
    let access_token = match from_agent(config, scope)? {
        Some(t) => t,
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
        None => setup::stored_grant(config)?.tokens.access_token,
    };
    let mut out = std::io::stdout().lock();
    let line = if header {
        format!("Bearer {}", access_token.expose())
    } else {
        access_token.expose().to_string()
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("writing the token to stdout: {e}")))
}

/// The agent's answer; `None` when no agent serves the socket.
fn from_agent(config: &Config, scope: Option<&str>) -> Result<Option<Secret>, Error> {
    let Some(path) = &config.agent.socket.path else {
        return Ok(None);
    };
    // The agent may have to ask the provider for a narrowed token first.
    let timeout = config.network.timeout + Duration::from_secs(10);
    match client::token(path, None, scope, timeout).map_err(Error::Io)? {
        Asked::NoAgent => Ok(None),
        Asked::Token { access_token, .. } => Ok(Some(access_token)),
        Asked::Refused {
            status,
            code,
            message,
        } => Err(match (status, code.as_str()) {
            (403 | 404, _) => Error::AgentRefused { code, message },
            (_, "not_paired") => Error::NotPaired {
                store: config.storage.path.clone(),
            },
            (502, _) => Error::Provider(format!("{message} ({code})")),
            (503 | 504, _) => Error::Network(format!("{message} ({code})")),
            _ => Error::Io(format!("the agent answered {status}: {message} ({code})")),
        }),
    }
}
