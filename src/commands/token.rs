//! `devauth token`: prints a fresh access token (renewing it first when due) and, with
//! `--dpop-proof METHOD URL`, a DPoP proof (RFC 9449) for one request with it on the next line.

use crate::cli::ProofArgs;
use crate::config::Config;
use crate::error::Error;
use crate::setup;

pub(crate) fn token(config: &Config, header: bool, dpop: Option<&ProofArgs>) -> Result<(), Error> {
    let grant = setup::stored_grant(config)?;
    let tokens = &grant.tokens;
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
                tokens,
                &req.method,
                &req.url,
                req.nonce.as_deref(),
            )?)
        }
    };
    let mut text = if header {
        let scheme = if tokens.is_dpop() { "DPoP" } else { "Bearer" };
        format!("{scheme} {}", tokens.access_token.expose())
    } else {
        tokens.access_token.expose().to_string()
    };
    if let Some(proof) = &proof {
        text.push('\n');
        text.push_str(proof.expose());
    }
    // A failed write is `main`'s to report (exit 1; quietly for a closed pipe).
    let _ = crate::stdout::line(&text);
    Ok(())
}
