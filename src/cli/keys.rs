//! The command line of the device's keys: `token --dpop-proof METHOD URL [--dpop-nonce N]`
//! (checked here; the nonce's characters are checked where the proof is made) and `keygen`'s
//! help. Validation only, like the rest of `cli`.

use super::UsageError;
use super::api::api_method;

pub const KEYGEN_HELP: &str = "\
devauth keygen — make this device's client key (client_auth = \"private_key_jwt\")

Usage: devauth keygen [--public]

Creates an EC P-256 key (ES256) in [provider] client_key_file, mode 0600, and prints its
public key as one JWK line (kid = its RFC 7638 thumbprint, or client_key_id) for the factory to
register with the provider for this device's client_id. The private key never leaves the
file. An existing key is never replaced.

Options:
  --public  Print the public JWK of the key already in client_key_file (RSA keys too)

Exit codes: 0 done, 6 config (no client_key_file, or a key is already there), 9 store.
";

/// `token --dpop-proof METHOD URL [--dpop-nonce NONCE]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofArgs {
    /// Uppercase standard method.
    pub method: String,
    /// An http(s) URL; its query and fragment are not part of the proof.
    pub url: String,
    pub nonce: Option<String>,
}

/// `--dpop-proof METHOD URL [--dpop-nonce N]` checked (also what the agent checks of
/// `POST /v1/dpop-proof`).
pub fn proof_args(
    proof: Option<(String, String)>,
    nonce: Option<String>,
) -> Result<Option<ProofArgs>, UsageError> {
    let Some((method, url)) = proof else {
        return match nonce {
            Some(_) => Err(UsageError("--dpop-nonce goes with --dpop-proof".into())),
            None => Ok(None),
        };
    };
    let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
    let url_ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= 4096
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !url_ok {
        return Err(UsageError(
            "--dpop-proof: the URL must be an http(s) URL without spaces".into(),
        ));
    }
    Ok(Some(ProofArgs {
        method: api_method(&method)?,
        url,
        nonce,
    }))
}
