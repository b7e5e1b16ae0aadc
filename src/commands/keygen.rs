//! `devauth keygen`: makes the device's own client key (`client_auth = "private_key_jwt"`,
//! RFC 7523 §2.2) in `client_key_file` and prints its public JWK for the factory to register;
//! `--public` prints the public JWK of the key already there. The private key is never printed.

use crate::config::Config;
use crate::error::Error;
use std::io::Write;

pub(crate) fn keygen(config: &Config, public: bool) -> Result<(), Error> {
    let key = if public {
        crate::keys::client_public_key(config)?
    } else {
        let key = crate::keys::generate_client_key(config)?;
        if let Some(ck) = &config.provider.client_key {
            eprintln!(
                "devauth: made a new {} key in {}; register the public key below for client `{}`",
                key.alg,
                ck.file.display(),
                config.provider.client_id
            );
        }
        key
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", key.to_json())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("writing the public key to stdout: {e}")))
}
