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
//! also reads `client_json_file`), `grant_keys.rs` (which keys go with which grant, and
//! `pair --grant`), `board.rs` (`[display]` and
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
pub use code_section::{
    ClientFileEndpoints, CodeGrantConfig, DEFAULT_BROWSER_COMMAND, DEFAULT_LOGIN_TIMEOUT_SECS,
};
use embedded_graphics::prelude::Size;
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
    /// Which of the file's accounts this is (`[accounts.NAME]`; `default` for the top level).
    pub account: AccountConfig,
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
    /// keys and rules are checked as if the file said it; the file is checked as written too,
    /// so whatever this accepts, [`Config::load`] accepts (grant_keys.rs).
    pub fn load_with_grant(path: &Path, grant: Option<&str>) -> Result<Config, ConfigError> {
        Config::load_account(path, grant, None)
    }

    /// [`Config::load_with_grant`] for the account `account` (`None`: the default one).
    pub fn load_account(
        path: &Path,
        grant: Option<&str>,
        account: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let text = Config::read(path)?;
        Config::parse_account(&text, path, grant, account)
    }

    /// Every account of the file at `path`, read once, each resolved as `load_account` would.
    pub fn load_accounts(path: &Path) -> Result<Vec<Config>, ConfigError> {
        let text = Config::read(path)?;
        let first = Config::parse_account(&text, path, None, None)?;
        let mut all = Vec::with_capacity(first.account.all.len());
        for name in first.account.all.iter().skip(1) {
            all.push(Config::parse_account(&text, path, None, Some(name))?);
        }
        all.insert(0, first);
        Ok(all)
    }

    /// The config file's text (at most [`MAX_CONFIG_BYTES`], UTF-8).
    fn read(path: &Path) -> Result<String, ConfigError> {
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
        Ok(text)
    }

    /// Parses and validates `text`; `source` names the file in errors, and relative
    /// `client_secret_file` / `ca_file` paths are resolved against its directory (the secret
    /// file is read and the CA file checked here).
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        Config::parse_account(text, source, None, None)
    }

    /// [`Config::parse`] for one account of the file, with `[provider] grant` replaced.
    pub fn parse_account(
        text: &str,
        source: &Path,
        grant: Option<&str>,
        account: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let cx = Cx { text, source };
        let mut raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(e))?;
        let storage = cx.storage(raw.storage)?;
        let mut agent = cx.agent(raw.agent, &storage)?;
        let chosen = cx.accounts(raw.accounts, account, &storage.path, &agent.token_file)?;
        let storage = match chosen.paths {
            None => storage,
            Some((path, token_file)) => {
                agent.token_file = token_file;
                StorageConfig { path, ..storage }
            }
        };
        // The account's own [provider] (a top-level one must be there all the same).
        let own_provider = chosen.provider.is_some() && raw.provider.is_some();
        if let (Some(own), true) = (chosen.provider, own_provider) {
            raw.provider = Some(own);
        }
        // Its mistakes are named where they are: `accounts.NAME.provider.KEY`.
        let named = |e: ConfigError| match own_provider {
            true => accounts::in_account(e, &chosen.account.name),
            false => e,
        };
        if let (Some(grant), Some(p)) = (grant, raw.provider.as_mut()) {
            if let Some(file_grant) = cx.replace_grant(p, grant)? {
                // Every other command reads the file as written: check it that way too, so
                // what this sign-in accepts they accept (grant_keys.rs).
                let as_written: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(e))?;
                if let Some(p) = as_written.provider {
                    cx.provider(p)
                        .map_err(|e| grant_keys::as_written(e, file_grant))?;
                }
            }
        }
        let mut provider = match raw.provider {
            Some(p) => cx.provider(p).map_err(named)?,
            None => {
                return Err(cx.invalid(
                    "provider",
                    None,
                    "missing section [provider] (at least client_id must be set)",
                ));
            }
        };
        if let Some(ck) = provider.client_key.as_mut() {
            if ck.file.as_os_str().is_empty() {
                ck.file = storage.path.with_file_name(CLIENT_KEY_IN_TPM);
            }
        }
        let display = cx.display(raw.display)?;
        let network = cx.network(raw.network)?;
        Ok(Config {
            source: source.to_path_buf(),
            provider,
            storage,
            display,
            network,
            agent,
            account: chosen.account,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written: one field per key. These doc comments are the key reference.
// ---------------------------------------------------------------------------------------------

#[macro_use]
mod table_reader;
mod accounts;
mod board;
mod checks;
mod code_section;
mod error;
mod grant_keys;
mod jwt_section;
mod keys_section;
mod provider_section;
mod raw;
mod sections;
mod socket_section;

use accounts::RawAccounts;
pub use accounts::{AccountConfig, MAX_ACCOUNTS, valid_account_name};
pub use board::*;
pub use checks::*;
use code_section::GrantChoice;
pub use error::*;
pub use keys_section::{ClientKeyConfig, DpopMode};
pub use provider_section::*;
use raw::*;
pub use sections::*;
pub use socket_section::*;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod code_tests;

#[cfg(test)]
mod keys_tests;

#[cfg(test)]
mod grant_keys_tests;
#[cfg(test)]
mod socket_tests;

#[cfg(test)]
mod storage_tests;
