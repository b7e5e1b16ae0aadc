//! The configuration file: TOML text -> typed, validated [`Config`], with every error naming the
//! key and the line.
//!
//! This module owns the file format, the defaults, the validation rules (including the URL rule,
//! [`check_url`], which the rest of devauth reuses for URLs learned at run time) and reading the
//! small files the config points at (`client_secret_file`; `ca_file` is only checked to exist).
//! It does not know provider facts (endpoints, default scopes, rules: `oauth/provider.rs`), does not
//! perform OIDC discovery (the issuer is kept in [`EndpointSource::Discover`] for the run-time
//! code) and does not parse command lines (`cli.rs` hands over `--config PATH`).
//!
//! Parsing has two stages. serde (with `deny_unknown_fields` and `toml::Spanned`) turns the text
//! into private `Raw*` structs that mirror the file one-to-one and remember where each value
//! was; then plain code applies defaults, presets and rules, so every message can say
//! `config <path>:<line>: <key>: <message>`. The `Raw*` structs' doc comments are the key
//! reference (key, type, default, meaning).
//!
//! Files: `raw.rs` (the TOML as written, the span-to-line reader, the `file:line:key` error
//! locator), `provider_section.rs` + `jwt_section.rs` + `code_section.rs` (`[provider]`; the last
//! also reads `client_json_file`), `board.rs` (`[display]` and
//! board files), `sections.rs` (`[storage]`, `[network]`, `[agent]`), `checks.rs` (URL and scope
//! rules), `error.rs` ([`ConfigError`]). Everything is resolved once, in [`Config::load`]: the
//! board profile, presets and key files. The rest of devauth receives resolved values; the
//! screen's and the JWT signer's settings are their own types ([`DisplayConfig`],
//! [`JwtBearerConfig`]), re-exported here, so those layers never depend on the config.

/// Re-exported: the resolved `grant = "jwt-bearer"` settings are the JWT signer's own type.
pub use crate::oauth::jwt::JwtBearerConfig;
use crate::oauth::provider::{self, MicrosoftTenancy, Preset};
use crate::screen::canvas::{PixelFormat, Rotation};
use crate::screen::layout::Theme;
/// Re-exported: `[display]` resolves to the screen's own settings type.
pub use crate::screen::settings::{
    ColorOrder, ConsoleTty, Controller, DEFAULT_DRM_DEVICE, DEFAULT_FB_DEVICE, DisplayBackend,
    DisplayConfig, SpiSettings,
};
use crate::secret::Secret;
pub use code_section::{CodeGrantConfig, DEFAULT_BROWSER_COMMAND, DEFAULT_LOGIN_TIMEOUT_SECS};
use embedded_graphics::prelude::Size;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where the config is when neither `--config` nor `DEVAUTH_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/devauth/devauth.toml";
/// The environment variable naming the config file.
pub const CONFIG_PATH_ENV: &str = "DEVAUTH_CONFIG";
/// The config file is read whole; anything larger is refused rather than parsed.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// A client secret file larger than this is certainly not just a secret.
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;
/// Longest URL accepted anywhere (the same bound `net/wire.rs` applies to server-sent URLs).
pub const MAX_URL_LEN: usize = 2048;
/// The blob of `client_key_file = "tpm"`, beside the token store.
pub const CLIENT_KEY_IN_TPM: &str = "client-key.tpm";

/// Default `[storage] path`.
pub const DEFAULT_STORAGE_PATH: &str = "/var/lib/devauth/tokens.json";
/// Default `[agent] token_file`.
pub const DEFAULT_TOKEN_FILE: &str = "/run/devauth/access_token";
/// `extra_params` names devauth sends itself; letting the config set them would change the
/// protocol (RFC 8628 §3.1, §3.4) or leak the secret into the wrong place.
pub const RESERVED_EXTRA_PARAMS: [&str; 5] = [
    "client_id",
    "client_secret",
    "scope",
    "grant_type",
    "device_code",
];

const MAX_ID_LEN: usize = 1024;
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 256;
const MAX_EXTRA_PARAMS: usize = 32;
const MAX_PARAM_NAME_LEN: usize = 64;
const MAX_PARAM_VALUE_LEN: usize = 1024;
const MAX_PATH_LEN: usize = 4096;
const MAX_HOOK_LEN: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Resolved types: what the rest of devauth uses.
// ---------------------------------------------------------------------------------------------

/// A loaded, validated configuration. Every preset, default and override is already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this came from (relative paths in it were resolved against its directory).
    pub source: PathBuf,
    pub provider: ProviderConfig,
    pub storage: StorageConfig,
    pub display: DisplayConfig,
    pub network: NetworkConfig,
    pub agent: AgentConfig,
}

/// The config file to use: `--config PATH`, else `$DEVAUTH_CONFIG` (when set and non-empty),
/// else [`DEFAULT_CONFIG_PATH`].
pub fn config_path(cli: Option<&Path>) -> PathBuf {
    config_path_from(cli, std::env::var_os(CONFIG_PATH_ENV))
}

fn config_path_from(cli: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (cli, env) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        (None, _) => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

impl Config {
    /// Reads (at most [`MAX_CONFIG_BYTES`]) and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_grant(path, None)
    }

    /// [`Config::load`] with `[provider] grant` replaced (`pair --grant`), so the chosen grant's
    /// keys and rules are checked as if the file said it.
    pub fn load_with_grant(path: &Path, grant: Option<&str>) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = match read_capped(path, MAX_CONFIG_BYTES).map_err(read_err)? {
            Capped::Fits(bytes) => bytes,
            Capped::TooLarge(size) => {
                return Err(ConfigError::TooLarge {
                    path: path.to_path_buf(),
                    size,
                });
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    line: line_of(e.as_bytes(), valid),
                    message: "not valid UTF-8".to_string(),
                });
            }
        };
        Config::parse_with_grant(&text, path, grant)
    }

    /// Parses and validates `text`; `source` names the file in errors, and relative
    /// `client_secret_file` / `ca_file` paths are resolved against its directory (the secret
    /// file is read and the CA file checked here).
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_grant(text, source, None)
    }

    fn parse_with_grant(
        text: &str,
        source: &Path,
        grant: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let cx = Cx { text, source };
        let mut raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(e))?;
        if let (Some(grant), Some(p)) = (grant, raw.provider.as_mut()) {
            let span = p.span();
            p.get_mut().grant = Some(Spanned::new(span, grant.to_string()));
        }
        let mut provider = match raw.provider {
            Some(p) => cx.provider(p)?,
            None => {
                return Err(cx.invalid(
                    "provider",
                    None,
                    "missing section [provider] (at least client_id must be set)",
                ));
            }
        };
        let storage = cx.storage(raw.storage)?;
        if let Some(ck) = provider.client_key.as_mut() {
            if ck.file.as_os_str().is_empty() {
                ck.file = storage.path.with_file_name(CLIENT_KEY_IN_TPM);
            }
        }
        let display = cx.display(raw.display)?;
        let network = cx.network(raw.network)?;
        let agent = cx.agent(raw.agent, &storage)?;
        Ok(Config {
            source: source.to_path_buf(),
            provider,
            storage,
            display,
            network,
            agent,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written: one field per key. These doc comments are the key reference.
// ---------------------------------------------------------------------------------------------

mod board;
mod checks;
mod code_section;
mod error;
mod jwt_section;
mod keys_section;
mod provider_section;
mod raw;
mod sections;

pub use board::*;
pub use checks::*;
use code_section::GrantChoice;
pub use error::*;
pub use keys_section::{ClientKeyConfig, DpopMode};
pub use provider_section::*;
use raw::*;
pub use sections::*;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod code_tests;

#[cfg(test)]
mod keys_tests;
#[cfg(test)]
mod storage_tests;
