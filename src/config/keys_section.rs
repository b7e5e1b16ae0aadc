//! The `[provider]` keys about the device's own keys: `dpop` (RFC 9449 proof of possession) and
//! the per-device client credentials of `client_auth = "private_key_jwt"` (RFC 7523 §2.2):
//! `client_key_file`, `client_key_id`, `client_assertion_audience`. The key file itself is not
//! read here: it may not exist yet (`devauth keygen` makes it on the device), and a TPM key is
//! only usable at run time.

use super::*;
use crate::oauth::jwt::AssertionAudience;

/// `provider.dpop`: whether tokens are bound to a device key (RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// Bearer tokens (the default: a bound token breaks every program that sends
    /// `devauth token` output as a Bearer token).
    #[default]
    Off,
    /// Always send proofs.
    On,
    /// Send proofs when the discovery document lists ES256 in
    /// `dpop_signing_alg_values_supported` (RFC 9449 §5.1); without discovery, off.
    Auto,
}

impl DpopMode {
    pub fn name(self) -> &'static str {
        match self {
            DpopMode::Off => "off",
            DpopMode::On => "on",
            DpopMode::Auto => "auto",
        }
    }

    /// Whether a pairing binds its tokens, given whether discovery listed ES256.
    pub fn wanted(self, discovered_es256: bool) -> bool {
        match self {
            DpopMode::Off => false,
            DpopMode::On => true,
            DpopMode::Auto => discovered_es256,
        }
    }
}

/// `client_auth = "private_key_jwt"`: the device's client key and how its assertions are
/// addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyConfig {
    /// A PEM private key (EC P-256: ES256; RSA: RS256), 0600; with [`tpm`](Self::tpm), the
    /// blob of a key the TPM holds. It need not exist when the config is loaded: `devauth
    /// keygen` creates it.
    pub file: PathBuf,
    /// `client_key_file = "tpm:PATH"` (or `"tpm"`: the blob beside the token store, as
    /// `client-key.tpm`): the key is made in and used by the TPM (`[storage] tpm_device`).
    pub tpm: bool,
    /// `kid` of the assertions; `None`: the key's RFC 7638 thumbprint.
    pub key_id: Option<String>,
    pub audience: AssertionAudience,
}

impl Cx<'_> {
    /// `provider.dpop`.
    pub(super) fn dpop(&self, p: &RawProvider) -> Result<DpopMode, ConfigError> {
        match &p.dpop {
            None => Ok(DpopMode::Off),
            Some(v) => self.choice(
                "provider.dpop",
                v,
                &[
                    ("off", DpopMode::Off),
                    ("on", DpopMode::On),
                    ("auto", DpopMode::Auto),
                ],
            ),
        }
    }

    /// The client key settings; `None` unless `client_auth = "private_key_jwt"`, which needs
    /// `client_key_file`. `issuer` is the configured issuer (for
    /// `client_assertion_audience = "issuer"`).
    pub(super) fn client_key(
        &self,
        section: Range<usize>,
        p: &RawProvider,
        auth: ClientAuth,
        issuer: Option<&str>,
        allow_http: bool,
    ) -> Result<Option<ClientKeyConfig>, ConfigError> {
        if auth != ClientAuth::PrivateKeyJwt {
            for (key, v) in [
                ("provider.client_key_file", &p.client_key_file),
                ("provider.client_key_id", &p.client_key_id),
                (
                    "provider.client_assertion_audience",
                    &p.client_assertion_audience,
                ),
            ] {
                if let Some(v) = v {
                    return Err(self.at(
                        key,
                        v,
                        "only used with client_auth = \"private_key_jwt\"",
                    ));
                }
            }
            return Ok(None);
        }
        let Some(file) = &p.client_key_file else {
            return Err(self.invalid(
                "provider.client_key_file",
                Some(section),
                "missing: client_auth = \"private_key_jwt\" needs the device's private key \
                 (`devauth keygen` creates it)",
            ));
        };
        let key_file = |value: &Str| -> Result<PathBuf, ConfigError> {
            Ok(self.resolve(&self.path("provider.client_key_file", value, false)?))
        };
        let (tpm, file) = match file.get_ref().strip_prefix("tpm") {
            // Beside the token store: `Config::parse` fills it in once `[storage]` is read.
            Some("") => (true, PathBuf::new()),
            Some(rest) if rest.starts_with(':') => {
                let path = Spanned::new(file.span(), rest[1..].to_string());
                (true, key_file(&path)?)
            }
            _ => (false, key_file(file)?),
        };
        let key_id = match &p.client_key_id {
            None => None,
            Some(v) => {
                let kid = v.get_ref();
                check_vschar(kid).map_err(|why| {
                    self.at("provider.client_key_id", v, format!("{kid:?}: {why}"))
                })?;
                Some(kid.clone())
            }
        };
        let audience = match &p.client_assertion_audience {
            None => AssertionAudience::TokenEndpoint,
            Some(v) => match v.get_ref().as_str() {
                "token_endpoint" => AssertionAudience::TokenEndpoint,
                "endpoint" => AssertionAudience::Endpoint,
                "issuer" => match issuer {
                    Some(i) => AssertionAudience::Fixed(i.to_string()),
                    None => {
                        return Err(self.at(
                            "provider.client_assertion_audience",
                            v,
                            "\"issuer\" needs provider.issuer; write the issuer URL instead",
                        ));
                    }
                },
                _ => AssertionAudience::Fixed(
                    self.url("provider.client_assertion_audience", v, allow_http)
                        .map_err(|_| {
                            self.at(
                        "provider.client_assertion_audience",
                        v,
                        "expected \"token_endpoint\", \"endpoint\", \"issuer\" or an https URL",
                    )
                        })?,
                ),
            },
        };
        Ok(Some(ClientKeyConfig {
            file,
            tpm,
            key_id,
            audience,
        }))
    }
}
