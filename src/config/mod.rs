//! The configuration file: TOML text -> typed, validated [`Config`], with every error naming the
//! key and the line.
//!
//! This module owns the file format, the defaults, the validation rules (including the URL rule,
//! [`check_url`], which the rest of devauth reuses for URLs learned at run time) and reading the
//! small files the config points at (`client_secret_file`; `ca_file` is only checked to exist).
//! It does not know provider facts (endpoints, default scopes, rules: `provider.rs`), does not
//! perform OIDC discovery (the issuer is kept in [`EndpointSource::Discover`] for the run-time
//! code) and does not parse command lines (`cli.rs` hands over `--config PATH`).
//!
//! Parsing has two stages. serde (with `deny_unknown_fields` and `toml::Spanned`) turns the text
//! into private `Raw*` structs that mirror the file one-to-one and remember where each value
//! was; then plain code applies defaults, presets and rules, so every message can say
//! `config <path>:<line>: <key>: <message>`. The `Raw*` structs' doc comments are the key
//! reference (key, type, default, meaning).

/// Re-exported: the resolved `grant = "jwt-bearer"` settings are the JWT signer's own type.
pub use crate::oauth::jwt::JwtBearerConfig;
use crate::oauth::provider::{self, MicrosoftTenancy, Preset};
use crate::screen::canvas::{PixelFormat, Rotation};
/// Re-exported: `[display]` resolves to the screen's own settings type.
pub use crate::screen::settings::{
    ColorOrder, Controller, DEFAULT_FB_DEVICE, DisplayBackend, DisplayConfig, SpiSettings,
};
use crate::secret::Secret;
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
/// Longest URL accepted anywhere (the same bound `wire.rs` applies to server-sent URLs).
pub const MAX_URL_LEN: usize = 2048;
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

/// `[provider]`, with the preset applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub preset: Preset,
    pub client_id: String,
    /// From `client_secret` or the contents of `client_secret_file`.
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    /// Final scope list, in order, without duplicates; may be empty (GitHub): then send no
    /// `scope` parameter.
    pub scopes: Vec<String>,
    pub endpoints: EndpointSource,
    /// Explicit, else the preset's. With [`EndpointSource::Discover`] and `None`, take the one
    /// the discovery document advertises (if any).
    pub revocation_endpoint: Option<String>,
    /// Same rule as `revocation_endpoint`.
    pub userinfo_endpoint: Option<String>,
    /// Apply this to URLs learned at run time too ([`check_url`]).
    pub allow_http_loopback: bool,
    /// Absolute, or relative to the current directory only if the config's own path was; the
    /// file existed at load time.
    pub ca_file: Option<PathBuf>,
    /// Sent with the device authorization request, sorted by name.
    pub extra_params: Vec<(String, String)>,
    /// How tokens are obtained: the device flow (default) or signed JWT assertions.
    pub grant: GrantConfig,
}

/// `provider.grant`: how devauth obtains tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantConfig {
    /// RFC 8628 device flow once, then refresh tokens (RFC 6749 §6). The default.
    DeviceCode,
    /// RFC 7523 §2.1: an RS256 assertion signed with a service-account key is exchanged for an
    /// access token whenever one is needed. No user, no pairing, no refresh token.
    JwtBearer(JwtBearerConfig),
}

impl GrantConfig {
    /// The name used in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            GrantConfig::DeviceCode => "device_code",
            GrantConfig::JwtBearer(_) => "jwt-bearer",
        }
    }

    pub fn jwt_bearer(&self) -> Option<&JwtBearerConfig> {
        match self {
            GrantConfig::JwtBearer(j) => Some(j),
            GrantConfig::DeviceCode => None,
        }
    }
}

impl ProviderConfig {
    /// The `scope` parameter (RFC 6749 §3.3: space-separated), `None` when there are no scopes.
    pub fn scope_param(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }
}

/// Where the device authorization and token endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// Known now: from the preset, overridden by the config's explicit URLs.
    Explicit {
        device_authorization: String,
        token: String,
    },
    /// Generic preset with only an issuer: fetch [`provider::discovery_url`]`(issuer)` at run
    /// time, check the document's `issuer` equals this one (OIDC Discovery §4.3) and check
    /// every URL in it with [`check_url`].
    Discover { issuer: String },
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1). Only matters when
/// there is a client secret; a public client always sends `client_id` in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form fields (client_secret_post).
    Post,
    /// HTTP Basic with the form-urlencoded id and secret (client_secret_basic).
    Basic,
}

impl ClientAuth {
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Post => "post",
            ClientAuth::Basic => "basic",
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The token store file (refresh token included): absolute.
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from(DEFAULT_STORAGE_PATH),
        }
    }
}

/// Where installed board profiles live (searched after `boards/` next to the config).
pub const INSTALLED_BOARDS_DIR: &str = "/usr/share/devauth/boards";
/// Board profiles compiled in, searched last, so `devauth render --board` works anywhere.
pub const BUILTIN_BOARDS: [(&str, &str); 6] = [
    ("tv-1080p", include_str!("../../boards/tv-1080p.toml")),
    ("tv-720p", include_str!("../../boards/tv-720p.toml")),
    (
        "pi-st7789-240x240",
        include_str!("../../boards/pi-st7789-240x240.toml"),
    ),
    (
        "pi-ili9341-320x240",
        include_str!("../../boards/pi-ili9341-320x240.toml"),
    ),
    (
        "pi-ssd1306-128x64",
        include_str!("../../boards/pi-ssd1306-128x64.toml"),
    ),
    (
        "pi-fb1-480x320",
        include_str!("../../boards/pi-fb1-480x320.toml"),
    ),
];
const MAX_BOARD_BYTES: u64 = 16 * 1024;

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// TCP + TLS connect bound.
    pub connect_timeout: Duration,
    /// Whole-request bound (connect, send, receive).
    pub timeout: Duration,
    /// Largest response body read.
    pub max_body_bytes: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 65536,
        }
    }
}

/// `[agent]`: settings of the long-running / token-serving side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Where the current access token is written for other programs: absolute.
    pub token_file: PathBuf,
    /// Group that may read `token_file` (mode 0640), by name; unresolved at load.
    pub token_file_group: Option<String>,
    /// Command run after pairing / token changes; how it is run is the agent's business.
    pub hook: Option<String>,
    /// Refresh this long before expiry (capped at half the token's lifetime by the user).
    pub refresh_margin: Duration,
    /// How long the "paired" screen stays up.
    pub paired_screen: Duration,
    /// What happens to the display after the "paired" screen (and when the agent stops while
    /// showing a code).
    pub release_display: ReleaseDisplay,
}

/// `agent.release_display`: how `devauth run` hands the display back to the device's own UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDisplay {
    /// Blank it (an OSD layer over video becomes transparent/black).
    Blank,
    /// Leave the last picture ("Paired as ...") until someone else draws.
    Keep,
}

impl ReleaseDisplay {
    pub fn name(self) -> &'static str {
        match self {
            ReleaseDisplay::Blank => "blank",
            ReleaseDisplay::Keep => "keep",
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            token_file: PathBuf::from(DEFAULT_TOKEN_FILE),
            token_file_group: None,
            hook: None,
            refresh_margin: Duration::from_secs(300),
            paired_screen: Duration::from_secs(10),
            release_display: ReleaseDisplay::Blank,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

/// Why a config could not be used. `Display` is `config <path>:<line>: <key>: <message>`; no
/// variant ever holds a client secret.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The config file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge { path: PathBuf, size: u64 },
    /// Not valid TOML (or not UTF-8).
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Valid TOML, but a key is unknown, missing, of the wrong type or has a bad value.
    Invalid {
        path: PathBuf,
        /// Dotted key, e.g. `provider.client_id` or `provider.scopes[1]`.
        key: String,
        line: Option<usize>,
        message: String,
    },
}

impl ConfigError {
    /// The 1-based line the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } => Some(*line),
            ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } | ConfigError::TooLarge { .. } => None,
        }
    }

    /// The offending key, for `Invalid`.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "config {}: {source}", path.display())
            }
            ConfigError::TooLarge { path, size } => write!(
                f,
                "config {}: file is {size} bytes, more than the {MAX_CONFIG_BYTES}-byte limit",
                path.display()
            ),
            ConfigError::Syntax {
                path,
                line,
                message,
            } => write!(f, "config {}:{line}: {message}", path.display()),
            ConfigError::Invalid {
                path,
                key,
                line: Some(line),
                message,
            } => write!(f, "config {}:{line}: {key}: {message}", path.display()),
            ConfigError::Invalid {
                path,
                key,
                line: None,
                message,
            } => write!(f, "config {}: {key}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public functions.
// ---------------------------------------------------------------------------------------------

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

/// The URL rule for every URL devauth talks to or shows: configured endpoints, URLs from
/// discovery and the server's `verification_uri`.
///
/// Accepted: absolute `https://host[:port]/...` URLs, and `http://` only when the host is
/// `127.0.0.1`, `[::1]` or `localhost` *and* `allow_http_loopback` is true (the bundled test
/// server). Refused: other schemes, user info (`user:pass@`), fragments, bad ports, spaces and
/// control characters, more than [`MAX_URL_LEN`] bytes. The error is the reason only; it never
/// repeats the URL (which might carry a password), so callers add the value themselves.
pub fn check_url(url: &str, allow_http_loopback: bool) -> Result<(), String> {
    if url.is_empty() {
        return Err("is empty".to_string());
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".to_string());
    }
    // http::Uri silently drops a fragment, so look for it in the text.
    if url.contains('#') {
        return Err("must not contain a fragment (#...)".to_string());
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("is not a valid URL ({e})"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err("is not an absolute URL (expected https://host/...)".to_string());
    };
    if authority.as_str().contains('@') {
        return Err("must not contain a user name or password (user:pass@)".to_string());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    // Whatever follows the host must be ":" and a port 1..=65535 (http::Uri keeps e.g.
    // ":99999" in the authority and just reports no port).
    match authority.as_str().strip_prefix(host) {
        Some("") => {}
        Some(rest) => match rest.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(port)) if port != 0 => {}
            _ => return Err("has an invalid port".to_string()),
        },
        None => return Err("has an invalid host".to_string()),
    }
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("has scheme {scheme:?}; only https is allowed"));
    }
    let loopback = host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost");
    if !loopback {
        return Err(
            "must use https (plain http is only allowed to 127.0.0.1, [::1] or \
             localhost, with allow_http_loopback = true)"
                .to_string(),
        );
    }
    if !allow_http_loopback {
        return Err(
            "uses plain http; that is only allowed with allow_http_loopback = true".to_string(),
        );
    }
    Ok(())
}

impl Config {
    /// Reads (at most [`MAX_CONFIG_BYTES`]) and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
        Config::parse(&text, path)
    }

    /// Parses and validates `text`; `source` names the file in errors, and relative
    /// `client_secret_file` / `ca_file` paths are resolved against its directory (the secret
    /// file is read and the CA file checked here).
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        let cx = Cx { text, source };
        let raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(e))?;
        let provider = match raw.provider {
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

type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawFile {
    /// `[provider]`: required.
    provider: Option<Spanned<RawProvider>>,
    /// `[storage]`: optional.
    storage: Option<Spanned<RawStorage>>,
    /// `[display]`: optional.
    display: Option<Spanned<RawDisplay>>,
    /// `[network]`: optional.
    network: Option<Spanned<RawNetwork>>,
    /// `[agent]`: optional.
    agent: Option<Spanned<RawAgent>>,
}

/// No `Debug`: it holds the client secret as a plain string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawProvider {
    /// `preset` (string, default `"generic"`): `"google"`, `"microsoft"`, `"github"` or
    /// `"generic"`. Selects the provider's endpoints, default scopes and rules.
    preset: Option<Str>,
    /// `issuer` (URL, no default; generic preset only): the OIDC issuer. Endpoints are then
    /// discovered at run time from `<issuer>/.well-known/openid-configuration`. Mutually
    /// exclusive with `device_authorization_endpoint`/`token_endpoint`.
    issuer: Option<Str>,
    /// `device_authorization_endpoint` (URL, default: the preset's): RFC 8628 §3.1 endpoint.
    /// Overrides the preset's. The generic preset needs it (with `token_endpoint`) unless
    /// `issuer` is set.
    device_authorization_endpoint: Option<Str>,
    /// `token_endpoint` (URL, default: the preset's): overrides the preset's.
    token_endpoint: Option<Str>,
    /// `revocation_endpoint` (URL, default: the preset's, or discovery's): RFC 7009 endpoint
    /// used by unpair.
    revocation_endpoint: Option<Str>,
    /// `userinfo_endpoint` (URL, default: the preset's, or discovery's): names the account.
    userinfo_endpoint: Option<Str>,
    /// `client_id` (string, required): the OAuth client ID; printable ASCII.
    client_id: Option<Str>,
    /// `client_secret` (string, no default): the client secret, if the provider issued one
    /// (Google requires it). Prefer `client_secret_file`. Not with `client_secret_file`.
    client_secret: Option<Str>,
    /// `client_secret_file` (path, no default): file holding the client secret (trailing
    /// newline ignored); relative paths are relative to the config file's directory.
    client_secret_file: Option<Str>,
    /// `client_auth` (string, default `"post"`): how the secret is sent, `"post"` (form
    /// fields) or `"basic"` (HTTP Basic). `"basic"` needs a secret.
    client_auth: Option<Str>,
    /// `scopes` (array of strings, default: the preset's — google `openid email profile`,
    /// microsoft `openid profile offline_access`, github none, generic `openid`): scopes to
    /// request, one per string. Microsoft always gets `offline_access` added.
    scopes: Option<Spanned<Vec<Str>>>,
    /// `allow_http_loopback` (bool, default `false`): allow `http://` URLs to 127.0.0.1, [::1]
    /// and localhost (test server and demo only).
    allow_http_loopback: Option<Spanned<bool>>,
    /// `ca_file` (path, no default): PEM CA certificates trusted in addition to the bundled
    /// Mozilla roots; must exist; relative to the config file's directory.
    ca_file: Option<Str>,
    /// `extra_params` (table of string = string, default empty): extra form parameters sent
    /// with the device authorization request, e.g. Auth0's `audience`. The names client_id,
    /// client_secret, scope, grant_type and device_code are refused.
    extra_params: Option<Spanned<BTreeMap<Str, Str>>>,
    /// `tenant` (string, default `"common"`; microsoft only): `common`, `organizations`,
    /// `consumers`, a tenant GUID or a domain.
    tenant: Option<Str>,
    /// `authority` (URL, default `"https://login.microsoftonline.com"`; microsoft only): the
    /// cloud, e.g. `https://login.microsoftonline.us`.
    authority: Option<Str>,
    /// `grant` (string, default `"device_code"`): `"device_code"` (RFC 8628 pairing, then
    /// refresh tokens) or `"jwt-bearer"` (RFC 7523 service account: no user, no screen; preset
    /// google or generic). With `"jwt-bearer"`, `client_id` is optional and the device-flow keys
    /// (`issuer`, `device_authorization_endpoint`, `extra_params`) are refused.
    grant: Option<Str>,
    /// `service_account_file` (path, no default; jwt-bearer): a Google-style service-account
    /// JSON key (`private_key`, `client_email`, `private_key_id`, `token_uri`); relative to the
    /// config file. Not with `private_key_file`.
    service_account_file: Option<Str>,
    /// `private_key_file` (path, no default; jwt-bearer): an RSA private key in PEM (PKCS#8 or
    /// PKCS#1); needs `jwt_issuer` and a token endpoint. Not with `service_account_file`.
    private_key_file: Option<Str>,
    /// `jwt_issuer` (string; jwt-bearer): the assertion's `iss`. Default: the service account's
    /// `client_email`. Required with `private_key_file`.
    jwt_issuer: Option<Str>,
    /// `jwt_subject` (string; jwt-bearer): the assertion's `sub`. Google: the user to
    /// impersonate (domain-wide delegation), else left out. With `private_key_file` the
    /// default is `jwt_issuer`.
    jwt_subject: Option<Str>,
    /// `jwt_audience` (string; jwt-bearer): the assertion's `aud`. Default: the token endpoint.
    jwt_audience: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawStorage {
    /// `path` (absolute path, default `/var/lib/devauth/tokens.json`): the token store, on a
    /// writable, persistent partition.
    path: Option<Str>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawDisplay {
    /// `backend` (string, default `"terminal"`): `"terminal"`, `"png"`, `"framebuffer"`,
    /// `"spi"` or `"none"`.
    backend: Option<Str>,
    /// `board` (name, no default): a board profile, `boards/NAME.toml` next to the config,
    /// else in /usr/share/devauth/boards, else the built-in one; keys here override it.
    board: Option<Str>,
    /// `png` (path; png backend): the PNG file to keep up to date.
    png: Option<Str>,
    /// `device` (path, default `/dev/fb0`; framebuffer): the fbdev device or a plain file.
    device: Option<Str>,
    /// `width`, `height` (integer 8..=8192): panel size; framebuffer: overrides the device.
    width: Option<Spanned<i64>>,
    height: Option<Spanned<i64>>,
    /// `format` (string; framebuffer): pixel format override, e.g. `"xrgb8888"`.
    format: Option<Str>,
    /// `stride` (integer; framebuffer): bytes per row override.
    stride: Option<Spanned<i64>>,
    /// `rotation` (0, 90, 180 or 270, default 0): clockwise quarter turns.
    rotation: Option<Spanned<i64>>,
    /// `title_safe_percent` (integer 0..=20, default 0): margin kept free on every side.
    title_safe_percent: Option<Spanned<i64>>,
    /// `controller` (spi): `"st7789"`, `"ili9341"` or `"ssd1306"`.
    controller: Option<Str>,
    /// `spi_device` (path, default `/dev/spidev0.0`).
    spi_device: Option<Str>,
    /// `spi_speed_hz` (integer 100000..=100000000, default 16000000).
    spi_speed_hz: Option<Spanned<i64>>,
    /// `spi_mode` (integer 0..=3, default 0).
    spi_mode: Option<Spanned<i64>>,
    /// `gpio_chip` (path, default `/dev/gpiochip0`).
    gpio_chip: Option<Str>,
    /// `dc_pin`, `reset_pin`, `backlight_pin` (GPIO line offsets on `gpio_chip`).
    dc_pin: Option<Spanned<i64>>,
    reset_pin: Option<Spanned<i64>>,
    backlight_pin: Option<Spanned<i64>>,
    /// `backlight_active_low` (bool, default false).
    backlight_active_low: Option<Spanned<bool>>,
    /// `x_offset`, `y_offset` (integer 0..=320, default 0): where the panel starts in the
    /// controller's memory.
    x_offset: Option<Spanned<i64>>,
    y_offset: Option<Spanned<i64>>,
    /// `color_order` (`"rgb"` or `"bgr"`, default `"rgb"`).
    color_order: Option<Str>,
    /// `invert_colors` (bool, default false): most IPS ST7789 panels need true.
    invert_colors: Option<Spanned<bool>>,
}

/// A board profile file: a description and a `[display]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawBoard {
    /// `description` (string): what the board is, for people.
    #[allow(dead_code)]
    description: Option<Str>,
    display: Option<Spanned<RawDisplay>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawNetwork {
    /// `connect_timeout_secs` (integer 1..=120, default 10): TCP + TLS connect timeout.
    connect_timeout_secs: Option<Spanned<i64>>,
    /// `timeout_secs` (integer 1..=300, default 30): overall timeout of one request; not less
    /// than `connect_timeout_secs`.
    timeout_secs: Option<Spanned<i64>>,
    /// `max_body_bytes` (integer 1024..=1048576, default 65536): largest response body read.
    max_body_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawAgent {
    /// `token_file` (absolute path, default `/run/devauth/access_token`): where the current
    /// access token is published; must differ from `[storage] path`.
    token_file: Option<Str>,
    /// `token_file_group` (group name, no default): group allowed to read `token_file`.
    token_file_group: Option<Str>,
    /// `hook` (command string, no default): run when the token changes or pairing ends.
    hook: Option<Str>,
    /// `refresh_margin_secs` (integer 0..=86400, default 300): `devauth token` refreshes this
    /// long before expiry (capped at half the token's lifetime).
    refresh_margin_secs: Option<Spanned<i64>>,
    /// `paired_screen_secs` (integer 0..=3600, default 10): how long the "paired" screen stays.
    paired_screen_secs: Option<Spanned<i64>>,
    /// `release_display` (string, default `"blank"`): after the "paired" screen, `"blank"` the
    /// display or `"keep"` the last picture, handing it back to the device's own UI.
    release_display: Option<Str>,
}

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

/// The text being parsed and its path: turns spans into lines and builds errors.
struct Cx<'a> {
    text: &'a str,
    source: &'a Path,
}

impl Cx<'_> {
    fn line(&self, offset: usize) -> usize {
        line_of(self.text.as_bytes(), offset)
    }

    fn invalid(
        &self,
        key: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.to_path_buf(),
            key: key.to_string(),
            line: span.map(|s| self.line(s.start)),
            message: message.into(),
        }
    }

    fn at<T>(&self, key: &str, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.invalid(key, Some(value.span()), message)
    }

    /// A path relative to the config file's directory.
    fn resolve(&self, path: &Path) -> PathBuf {
        match self.source.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    // --- value checks -------------------------------------------------------------------------

    fn url(
        &self,
        key: &str,
        value: &Str,
        allow_http_loopback: bool,
    ) -> Result<String, ConfigError> {
        let url = value.get_ref();
        check_url(url, allow_http_loopback)
            .map_err(|why| self.at(key, value, format!("{:?}: {why}", redact_userinfo(url))))?;
        Ok(url.clone())
    }

    fn int(&self, key: &str, value: &Spanned<i64>, min: i64, max: i64) -> Result<u64, ConfigError> {
        let n = *value.get_ref();
        if n < min || n > max {
            return Err(self.at(key, value, format!("{n} is out of range ({min}..={max})")));
        }
        u64::try_from(n).map_err(|_| self.at(key, value, format!("{n} is out of range")))
    }

    fn path(&self, key: &str, value: &Str, absolute: bool) -> Result<PathBuf, ConfigError> {
        let s = value.get_ref();
        let why = if s.is_empty() {
            Some("is empty")
        } else if s.len() > MAX_PATH_LEN {
            Some("is too long")
        } else if s.chars().any(char::is_control) {
            Some("contains control characters")
        } else if absolute && !s.starts_with('/') {
            Some("must be an absolute path")
        } else if s.ends_with('/') {
            Some("names a directory; a file is expected")
        } else {
            None
        };
        match why {
            Some(why) => Err(self.at(key, value, format!("{s:?}: {why}"))),
            None => Ok(PathBuf::from(s)),
        }
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        value: &Str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let s = value.get_ref();
        options
            .iter()
            .find(|(name, _)| name == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                self.at(
                    key,
                    value,
                    format!("{s:?} is not one of {}", names.join(", ")),
                )
            })
    }

    // --- sections -----------------------------------------------------------------------------

    fn provider(&self, raw: Spanned<RawProvider>) -> Result<ProviderConfig, ConfigError> {
        let section = raw.span();
        let p = raw.into_inner();

        let preset = match &p.preset {
            None => Preset::Generic,
            Some(v) => {
                let options: Vec<(&str, Preset)> =
                    Preset::ALL.iter().map(|p| (p.name(), *p)).collect();
                self.choice("provider.preset", v, &options)?
            }
        };
        let allow_http = p.allow_http_loopback.as_ref().is_some_and(|b| *b.get_ref());

        let jwt = match &p.grant {
            None => false,
            Some(v) => self.choice(
                "provider.grant",
                v,
                &[("device_code", false), ("jwt-bearer", true)],
            )?,
        };
        if jwt {
            return self.jwt_provider(section, &p, preset, allow_http);
        }
        for (key, v) in [
            ("provider.service_account_file", &p.service_account_file),
            ("provider.private_key_file", &p.private_key_file),
            ("provider.jwt_issuer", &p.jwt_issuer),
            ("provider.jwt_subject", &p.jwt_subject),
            ("provider.jwt_audience", &p.jwt_audience),
        ] {
            if let Some(v) = v {
                return Err(self.at(
                    key,
                    v,
                    "only used with grant = \"jwt-bearer\" (this config uses the device flow)",
                ));
            }
        }

        let client_id = match &p.client_id {
            None => {
                return Err(self.invalid(
                    "provider.client_id",
                    Some(section),
                    "missing (the OAuth client ID registered with the provider)",
                ));
            }
            Some(v) => {
                let id = v.get_ref();
                check_vschar(id)
                    .map_err(|why| self.at("provider.client_id", v, format!("{id:?}: {why}")))?;
                id.clone()
            }
        };

        let client_secret = self.client_secret(&p)?;
        if client_secret.is_none() && preset.requires_client_secret() {
            let why = preset
                .client_secret_reason()
                .unwrap_or("a client secret is required");
            return Err(self.invalid(
                "provider.client_secret",
                Some(section),
                format!("missing: {why}"),
            ));
        }

        let client_auth = self.client_auth(&p, client_secret.is_some())?;

        let scopes = match self.scope_list(&p)? {
            None => preset.resolve_scopes(None),
            Some(scopes) => preset.resolve_scopes(Some(&scopes)),
        };

        // Microsoft-only keys.
        let mut tenancy = MicrosoftTenancy::default();
        if let Some(v) = &p.tenant {
            if preset != Preset::Microsoft {
                return Err(self.only_for("provider.tenant", v, "microsoft", preset));
            }
            let tenant = v.get_ref();
            provider::check_tenant(tenant)
                .map_err(|why| self.at("provider.tenant", v, format!("{tenant:?}: {why}")))?;
            tenancy.tenant = tenant.clone();
        }
        if let Some(v) = &p.authority {
            if preset != Preset::Microsoft {
                return Err(self.only_for("provider.authority", v, "microsoft", preset));
            }
            let authority = self.url("provider.authority", v, allow_http)?;
            if authority.contains('?') {
                return Err(self.at(
                    "provider.authority",
                    v,
                    format!("{authority:?}: must not contain a query (?...)"),
                ));
            }
            tenancy.authority = authority.trim_end_matches('/').to_string();
        }

        let issuer = match &p.issuer {
            None => None,
            Some(v) => {
                if preset != Preset::Generic {
                    return Err(self.only_for("provider.issuer", v, "generic", preset));
                }
                let issuer = self.url("provider.issuer", v, allow_http)?;
                // OpenID Connect Discovery §3: an issuer has no query and no fragment.
                if issuer.contains('?') {
                    return Err(self.at(
                        "provider.issuer",
                        v,
                        format!("{issuer:?}: an issuer must not contain a query (?...)"),
                    ));
                }
                Some(issuer)
            }
        };
        let opt_url = |key: &str, v: &Option<Str>| -> Result<Option<String>, ConfigError> {
            v.as_ref().map(|v| self.url(key, v, allow_http)).transpose()
        };
        let device = opt_url(
            "provider.device_authorization_endpoint",
            &p.device_authorization_endpoint,
        )?;
        let token = opt_url("provider.token_endpoint", &p.token_endpoint)?;
        let revocation = opt_url("provider.revocation_endpoint", &p.revocation_endpoint)?;
        let userinfo = opt_url("provider.userinfo_endpoint", &p.userinfo_endpoint)?;

        let (endpoints, revocation_endpoint, userinfo_endpoint) = match preset.endpoints(&tenancy) {
            Some(fixed) => (
                EndpointSource::Explicit {
                    device_authorization: device.unwrap_or(fixed.device_authorization),
                    token: token.unwrap_or(fixed.token),
                },
                revocation.or(fixed.revocation),
                userinfo.or(fixed.userinfo),
            ),
            None => {
                let source = match (issuer, device, token) {
                    (Some(issuer), None, None) => EndpointSource::Discover { issuer },
                    (None, Some(device_authorization), Some(token)) => EndpointSource::Explicit {
                        device_authorization,
                        token,
                    },
                    (Some(_), _, _) => {
                        let span = p.issuer.as_ref().map(|v| v.span());
                        return Err(self.invalid(
                            "provider.issuer",
                            span,
                            "set either issuer (OIDC discovery) or \
                                 device_authorization_endpoint and token_endpoint, not both",
                        ));
                    }
                    (None, Some(_), None) => {
                        return Err(self.invalid(
                            "provider.token_endpoint",
                            Some(section),
                            "missing: device_authorization_endpoint is set, so \
                                 token_endpoint is needed too",
                        ));
                    }
                    (None, None, Some(_)) => {
                        return Err(self.invalid(
                            "provider.device_authorization_endpoint",
                            Some(section),
                            "missing: token_endpoint is set, so \
                                 device_authorization_endpoint is needed too",
                        ));
                    }
                    (None, None, None) => {
                        return Err(self.invalid(
                            "provider.issuer",
                            Some(section),
                            "missing: the generic preset needs issuer (for OIDC discovery) \
                                 or both device_authorization_endpoint and token_endpoint \
                                 (or pick a preset: google, microsoft, github)",
                        ));
                    }
                };
                (source, revocation, userinfo)
            }
        };

        let ca_file = self.ca_file(&p)?;

        let extra_params = match &p.extra_params {
            None => Vec::new(),
            Some(table) => self.extra_params(table)?,
        };

        Ok(ProviderConfig {
            preset,
            client_id,
            client_secret,
            client_auth,
            scopes,
            endpoints,
            revocation_endpoint,
            userinfo_endpoint,
            allow_http_loopback: allow_http,
            ca_file,
            extra_params,
            grant: GrantConfig::DeviceCode,
        })
    }

    fn client_auth(&self, p: &RawProvider, has_secret: bool) -> Result<ClientAuth, ConfigError> {
        let Some(v) = &p.client_auth else {
            return Ok(ClientAuth::Post);
        };
        let auth = self.choice(
            "provider.client_auth",
            v,
            &[("post", ClientAuth::Post), ("basic", ClientAuth::Basic)],
        )?;
        if auth == ClientAuth::Basic && !has_secret {
            return Err(self.at(
                "provider.client_auth",
                v,
                "\"basic\" needs a client secret (client_secret or client_secret_file)",
            ));
        }
        Ok(auth)
    }

    /// The `scopes` key as written (checked), `None` when absent.
    fn scope_list(&self, p: &RawProvider) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(list) = &p.scopes else {
            return Ok(None);
        };
        if list.get_ref().len() > MAX_SCOPES {
            return Err(self.at(
                "provider.scopes",
                list,
                format!("more than {MAX_SCOPES} scopes"),
            ));
        }
        let mut scopes: Vec<String> = Vec::new();
        for (i, s) in list.get_ref().iter().enumerate() {
            let scope = s.get_ref();
            check_scope(scope).map_err(|why| {
                self.at(
                    &format!("provider.scopes[{i}]"),
                    s,
                    format!("{scope:?}: {why}"),
                )
            })?;
            scopes.push(scope.clone());
        }
        Ok(Some(scopes))
    }

    fn ca_file(&self, p: &RawProvider) -> Result<Option<PathBuf>, ConfigError> {
        let Some(v) = &p.ca_file else {
            return Ok(None);
        };
        let path = self.resolve(&self.path("provider.ca_file", v, false)?);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(path)),
            Ok(_) => Err(self.at(
                "provider.ca_file",
                v,
                format!("{}: not a regular file", path.display()),
            )),
            Err(e) => Err(self.at("provider.ca_file", v, format!("{}: {e}", path.display()))),
        }
    }

    /// `[provider]` with `grant = "jwt-bearer"` (RFC 7523 service account).
    fn jwt_provider(
        &self,
        section: Range<usize>,
        p: &RawProvider,
        preset: Preset,
        allow_http: bool,
    ) -> Result<ProviderConfig, ConfigError> {
        if !matches!(preset, Preset::Google | Preset::Generic) {
            let span = p.grant.as_ref().map(|v| v.span());
            return Err(self.invalid(
                "provider.grant",
                span,
                format!(
                    "\"jwt-bearer\" works with preset = \"google\" or \"generic\", not \"{}\"",
                    preset.name()
                ),
            ));
        }
        let device_only = [
            ("provider.issuer", &p.issuer),
            (
                "provider.device_authorization_endpoint",
                &p.device_authorization_endpoint,
            ),
            ("provider.tenant", &p.tenant),
            ("provider.authority", &p.authority),
        ];
        for (key, v) in device_only {
            if let Some(v) = v {
                return Err(self.at(
                    key,
                    v,
                    "only used with the device flow (this config has grant = \"jwt-bearer\")",
                ));
            }
        }
        if let Some(v) = &p.extra_params {
            return Err(self.at(
                "provider.extra_params",
                v,
                "only used with the device flow (this config has grant = \"jwt-bearer\")",
            ));
        }

        // The key: exactly one of the two files.
        const SA_KEY: &str = "provider.service_account_file";
        const PEM_KEY: &str = "provider.private_key_file";
        let (key_file, pem, key_id, sa_email, sa_token_uri) =
            match (&p.service_account_file, &p.private_key_file) {
                (Some(_), Some(v)) => {
                    return Err(self.at(
                        PEM_KEY,
                        v,
                        "service_account_file is also set; keep only one of the two",
                    ));
                }
                (None, None) => {
                    return Err(self.invalid(
                        SA_KEY,
                        Some(section.clone()),
                        "missing: grant = \"jwt-bearer\" needs service_account_file (a \
                         Google-style JSON key) or private_key_file (a PEM RSA key) with \
                         jwt_issuer",
                    ));
                }
                (Some(v), None) => {
                    let (path, bytes) = self.key_file(SA_KEY, v)?;
                    let fail =
                        |why: String| self.at(SA_KEY, v, format!("{}: {why}", path.display()));
                    let sa = crate::oauth::jwt::parse_service_account(&bytes).map_err(fail)?;
                    crate::oauth::jwt::key_pair(&sa.private_key)
                        .map_err(|why| fail(format!("private_key: {why}")))?;
                    (
                        path,
                        sa.private_key,
                        sa.private_key_id,
                        sa.client_email,
                        sa.token_uri,
                    )
                }
                (None, Some(v)) => {
                    let (path, bytes) = self.key_file(PEM_KEY, v)?;
                    let fail =
                        |why: String| self.at(PEM_KEY, v, format!("{}: {why}", path.display()));
                    let text = String::from_utf8(bytes)
                        .map_err(|_| fail("not a PEM text file".to_string()))?;
                    let pem = Secret::new(text);
                    crate::oauth::jwt::key_pair(&pem).map_err(fail)?;
                    (path, pem, None, None, None)
                }
            };

        let text_key = |key: &str, v: &Option<Str>| -> Result<Option<String>, ConfigError> {
            v.as_ref()
                .map(|v| {
                    let t = v.get_ref();
                    check_vschar(t)
                        .map(|()| t.clone())
                        .map_err(|why| self.at(key, v, format!("{t:?}: {why}")))
                })
                .transpose()
        };
        let issuer = match (text_key("provider.jwt_issuer", &p.jwt_issuer)?, sa_email) {
            (Some(i), _) => i,
            (None, Some(email)) => {
                check_vschar(&email).map_err(|why| {
                    self.invalid(SA_KEY, Some(section.clone()), format!("client_email {why}"))
                })?;
                email
            }
            (None, None) => {
                return Err(self.invalid(
                    "provider.jwt_issuer",
                    Some(section.clone()),
                    "missing: private_key_file needs jwt_issuer (the assertion's `iss`, e.g. \
                     the client id the server registered the key for)",
                ));
            }
        };
        let subject = match text_key("provider.jwt_subject", &p.jwt_subject)? {
            Some(s) => Some(s),
            // RFC 7523 §3: `sub` is required; Google service accounts send it only to
            // impersonate a user.
            None if p.private_key_file.is_some() => Some(issuer.clone()),
            None => None,
        };

        let token = match (&p.token_endpoint, sa_token_uri, preset) {
            (Some(v), _, _) => self.url("provider.token_endpoint", v, allow_http)?,
            (None, Some(uri), _) => {
                check_url(&uri, allow_http).map_err(|why| {
                    self.invalid(
                        SA_KEY,
                        p.service_account_file.as_ref().map(|v| v.span()),
                        format!("token_uri {:?}: {why}", redact_userinfo(&uri)),
                    )
                })?;
                uri
            }
            (None, None, Preset::Google) => "https://oauth2.googleapis.com/token".to_string(),
            (None, None, _) => {
                return Err(self.invalid(
                    "provider.token_endpoint",
                    Some(section.clone()),
                    "missing: grant = \"jwt-bearer\" with the generic preset needs \
                     token_endpoint (or a service_account_file with token_uri)",
                ));
            }
        };
        let audience =
            text_key("provider.jwt_audience", &p.jwt_audience)?.unwrap_or_else(|| token.clone());

        let client_secret = self.client_secret(p)?;
        let configured_id = text_key("provider.client_id", &p.client_id)?;
        if client_secret.is_some() && configured_id.is_none() {
            return Err(self.invalid(
                "provider.client_id",
                Some(section.clone()),
                "missing: a client secret is set, so client_id is needed to send it",
            ));
        }
        let client_auth = self.client_auth(p, client_secret.is_some())?;

        let scopes = match self.scope_list(p)? {
            Some(list) => preset.resolve_scopes(Some(&list)),
            None if preset == Preset::Google => {
                return Err(self.invalid(
                    "provider.scopes",
                    Some(section.clone()),
                    "missing: a Google service account needs the API scopes, e.g. \
                     [\"https://www.googleapis.com/auth/cloud-platform\"]",
                ));
            }
            None => Vec::new(),
        };
        let opt_url = |key: &str, v: &Option<Str>| -> Result<Option<String>, ConfigError> {
            v.as_ref().map(|v| self.url(key, v, allow_http)).transpose()
        };
        let fixed = preset.endpoints(&MicrosoftTenancy::default());
        let revocation_endpoint = opt_url("provider.revocation_endpoint", &p.revocation_endpoint)?
            .or_else(|| fixed.as_ref().and_then(|f| f.revocation.clone()));
        let userinfo_endpoint = opt_url("provider.userinfo_endpoint", &p.userinfo_endpoint)?
            .or_else(|| fixed.as_ref().and_then(|f| f.userinfo.clone()));

        Ok(ProviderConfig {
            preset,
            // The store names the owner of cached tokens: the client, else the service account.
            client_id: configured_id.clone().unwrap_or_else(|| issuer.clone()),
            client_secret,
            client_auth,
            scopes,
            endpoints: EndpointSource::Explicit {
                device_authorization: String::new(),
                token,
            },
            revocation_endpoint,
            userinfo_endpoint,
            allow_http_loopback: allow_http,
            ca_file: self.ca_file(p)?,
            extra_params: Vec::new(),
            grant: GrantConfig::JwtBearer(JwtBearerConfig {
                key_file,
                private_key_pem: pem,
                key_id,
                issuer,
                subject,
                audience,
                scope_in_claims: preset == Preset::Google,
                client_auth: configured_id.is_some(),
            }),
        })
    }

    /// Reads a key file (bounded), relative to the config's directory.
    fn key_file(&self, key: &str, v: &Str) -> Result<(PathBuf, Vec<u8>), ConfigError> {
        let path = self.resolve(&self.path(key, v, false)?);
        match read_capped(&path, crate::oauth::jwt::MAX_KEY_FILE_BYTES) {
            Ok(Capped::Fits(bytes)) => Ok((path, bytes)),
            Ok(Capped::TooLarge(_)) => Err(self.at(
                key,
                v,
                format!(
                    "{}: larger than {} bytes; expected one key",
                    path.display(),
                    crate::oauth::jwt::MAX_KEY_FILE_BYTES
                ),
            )),
            Err(e) => Err(self.at(key, v, format!("{}: {e}", path.display()))),
        }
    }

    fn only_for(&self, key: &str, value: &Str, wanted: &str, preset: Preset) -> ConfigError {
        self.at(
            key,
            value,
            format!(
                "only used with preset = \"{wanted}\" (this config uses preset = \"{}\")",
                preset.name()
            ),
        )
    }

    /// `client_secret` or the contents of `client_secret_file`. Messages never include the
    /// secret (they name what is wrong with it).
    fn client_secret(&self, p: &RawProvider) -> Result<Option<Secret>, ConfigError> {
        const KEY: &str = "provider.client_secret";
        const FILE_KEY: &str = "provider.client_secret_file";
        match (&p.client_secret, &p.client_secret_file) {
            (None, None) => Ok(None),
            (Some(_), Some(file)) => Err(self.at(
                FILE_KEY,
                file,
                "client_secret is also set; keep only one of the two",
            )),
            (Some(v), None) => {
                check_vschar(v.get_ref())
                    .map_err(|why| self.at(KEY, v, format!("the secret {why}")))?;
                Ok(Some(Secret::new(v.get_ref().clone())))
            }
            (None, Some(v)) => {
                let path = self.resolve(&self.path(FILE_KEY, v, false)?);
                let fail = |why: String| self.at(FILE_KEY, v, format!("{}: {why}", path.display()));
                let bytes = match read_capped(&path, MAX_SECRET_FILE_BYTES) {
                    Ok(Capped::Fits(bytes)) => bytes,
                    Ok(Capped::TooLarge(_)) => {
                        return Err(fail(format!(
                            "larger than {MAX_SECRET_FILE_BYTES} bytes; expected only the secret"
                        )));
                    }
                    Err(e) => return Err(fail(e.to_string())),
                };
                let text = String::from_utf8(bytes)
                    .map_err(|_| fail("the secret is not valid UTF-8".to_string()))?;
                let secret = text.trim_end_matches(['\n', '\r']);
                check_vschar(secret).map_err(|why| fail(format!("the secret {why}")))?;
                Ok(Some(Secret::new(secret)))
            }
        }
    }

    fn extra_params(
        &self,
        table: &Spanned<BTreeMap<Str, Str>>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        if table.get_ref().len() > MAX_EXTRA_PARAMS {
            return Err(self.at(
                "provider.extra_params",
                table,
                format!("more than {MAX_EXTRA_PARAMS} parameters"),
            ));
        }
        let mut out = Vec::new();
        for (name, value) in table.get_ref() {
            let n = name.get_ref();
            let key = format!("provider.extra_params.{n}");
            if RESERVED_EXTRA_PARAMS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(n))
            {
                return Err(self.at(
                    &key,
                    name,
                    format!(
                        "{n:?} is set by devauth itself and cannot be an extra parameter \
                         (reserved: {})",
                        RESERVED_EXTRA_PARAMS.join(", ")
                    ),
                ));
            }
            let name_ok = !n.is_empty()
                && n.len() <= MAX_PARAM_NAME_LEN
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
            if !name_ok {
                return Err(self.at(
                    &key,
                    name,
                    format!(
                        "{n:?}: a parameter name is 1..={MAX_PARAM_NAME_LEN} ASCII letters, \
                         digits, '_', '-', '.' or ':'"
                    ),
                ));
            }
            let v = value.get_ref();
            if v.is_empty() || v.len() > MAX_PARAM_VALUE_LEN || v.chars().any(char::is_control) {
                return Err(self.at(
                    &key,
                    value,
                    format!(
                        "{v:?}: a value is 1..={MAX_PARAM_VALUE_LEN} bytes without control \
                         characters"
                    ),
                ));
            }
            out.push((n.clone(), v.clone()));
        }
        Ok(out)
    }

    fn storage(&self, raw: Option<Spanned<RawStorage>>) -> Result<StorageConfig, ConfigError> {
        let mut out = StorageConfig::default();
        let Some(raw) = raw else { return Ok(out) };
        if let Some(v) = &raw.get_ref().path {
            out.path = self.path("storage.path", v, true)?;
        }
        Ok(out)
    }

    fn display(&self, raw: Option<Spanned<RawDisplay>>) -> Result<DisplayConfig, ConfigError> {
        let Some(raw) = raw else {
            return Ok(DisplayConfig::default());
        };
        let section = raw.span();
        let raw = raw.into_inner();
        let Some(name) = &raw.board else {
            return display_from(&[(self, &raw)], Some(section));
        };
        let board_name = name.get_ref();
        let found = find_board(board_name, Some(self.source))
            .map_err(|why| self.at("display.board", name, why))?;
        let board_cx = Cx {
            text: &found.text,
            source: &found.path,
        };
        let board = parse_board(&board_cx)?;
        let mut out = display_from(&[(self, &raw), (&board_cx, &board)], Some(section))?;
        out.board = Some(board_name.clone());
        Ok(out)
    }

    fn network(&self, raw: Option<Spanned<RawNetwork>>) -> Result<NetworkConfig, ConfigError> {
        let mut out = NetworkConfig::default();
        let Some(raw) = raw else { return Ok(out) };
        let raw = raw.get_ref();
        if let Some(v) = &raw.connect_timeout_secs {
            out.connect_timeout =
                Duration::from_secs(self.int("network.connect_timeout_secs", v, 1, 120)?);
        }
        if let Some(v) = &raw.timeout_secs {
            out.timeout = Duration::from_secs(self.int("network.timeout_secs", v, 1, 300)?);
        }
        if let Some(v) = &raw.max_body_bytes {
            let n = self.int("network.max_body_bytes", v, 1024, 1_048_576)?;
            out.max_body_bytes = usize::try_from(n)
                .map_err(|_| self.at("network.max_body_bytes", v, "too large"))?;
        }
        if out.connect_timeout > out.timeout {
            let span = raw
                .connect_timeout_secs
                .as_ref()
                .or(raw.timeout_secs.as_ref())
                .map(|v| v.span());
            return Err(self.invalid(
                "network.connect_timeout_secs",
                span,
                format!(
                    "{} s is longer than timeout_secs ({} s), which bounds the whole request",
                    out.connect_timeout.as_secs(),
                    out.timeout.as_secs()
                ),
            ));
        }
        Ok(out)
    }

    fn agent(
        &self,
        raw: Option<Spanned<RawAgent>>,
        storage: &StorageConfig,
    ) -> Result<AgentConfig, ConfigError> {
        let mut out = AgentConfig::default();
        let same_file = |out: &AgentConfig, span: Option<Range<usize>>| {
            (out.token_file == storage.path).then(|| {
                self.invalid(
                    "agent.token_file",
                    span,
                    format!(
                        "{:?} is also [storage] path; publishing the access token there would \
                         overwrite the stored refresh token",
                        out.token_file.display().to_string()
                    ),
                )
            })
        };
        let Some(raw) = raw else {
            return same_file(&out, None).map_or(Ok(out), Err);
        };
        let raw = raw.get_ref();
        if let Some(v) = &raw.token_file {
            out.token_file = self.path("agent.token_file", v, true)?;
        }
        if let Some(e) = same_file(&out, raw.token_file.as_ref().map(|v| v.span())) {
            return Err(e);
        }
        if let Some(v) = &raw.token_file_group {
            let g = v.get_ref();
            // POSIX portable user/group names (plus the common '.' use): nothing a shell or
            // chown(1) could misread.
            let ok = !g.is_empty()
                && g.len() <= 32
                && !g.starts_with('-')
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(self.at(
                    "agent.token_file_group",
                    v,
                    format!(
                        "{g:?}: a group name is 1..=32 ASCII letters, digits, '_', '-' or '.', \
                         not starting with '-'"
                    ),
                ));
            }
            out.token_file_group = Some(g.clone());
        }
        if let Some(v) = &raw.hook {
            let h = v.get_ref();
            let why = if h.trim().is_empty() {
                Some("is empty")
            } else if h.len() > MAX_HOOK_LEN {
                Some("is too long")
            } else if h.chars().any(char::is_control) {
                Some("contains control characters (write the command on one line)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self.at("agent.hook", v, format!("{h:?}: {why}")));
            }
            out.hook = Some(h.clone());
        }
        if let Some(v) = &raw.refresh_margin_secs {
            out.refresh_margin =
                Duration::from_secs(self.int("agent.refresh_margin_secs", v, 0, 86_400)?);
        }
        if let Some(v) = &raw.paired_screen_secs {
            out.paired_screen =
                Duration::from_secs(self.int("agent.paired_screen_secs", v, 0, 3600)?);
        }
        if let Some(v) = &raw.release_display {
            out.release_display = self.choice(
                "agent.release_display",
                v,
                &[
                    ("blank", ReleaseDisplay::Blank),
                    ("keep", ReleaseDisplay::Keep),
                ],
            )?;
        }
        Ok(out)
    }

    // --- toml's own errors ----------------------------------------------------------------------

    /// Turns a toml/serde error into a `ConfigError` that names the key and the line. toml only
    /// reports a byte span, so the key is found by walking the document's spanned tree.
    fn toml_error(&self, e: toml::de::Error) -> ConfigError {
        let message = e.message().trim().replace('\n', "; ");
        let Some(span) = e.span() else {
            return self.invalid("(file)", None, message);
        };
        let line = self.line(span.start);
        let doc = match toml::de::DeTable::parse(self.text) {
            Ok(doc) => doc,
            // The text itself is not TOML.
            Err(_) => {
                let message = match key_on_line(self.text, line) {
                    Some(key) => format!("{key}: {message}"),
                    None => message,
                };
                return ConfigError::Syntax {
                    path: self.source.to_path_buf(),
                    line,
                    message,
                };
            }
        };
        let mut best = None;
        locate(doc.get_ref(), "", 0, &span, &mut best);
        let Some(found) = best else {
            return self.invalid("(file)", Some(span), message);
        };
        // `[[storage]]`: toml's complaint about the array element is confusing; say it plainly.
        let section = found.path.split(['.', '[']).next().unwrap_or_default();
        if let Some(v) = doc.get_ref().get(section) {
            if !message.starts_with("unknown field")
                && matches!(v.get_ref(), toml::de::DeValue::Array(_))
            {
                return self.invalid(
                    section,
                    Some(span),
                    format!("expected one [{section}] table, not an array ([[{section}]])"),
                );
            }
        }
        let message = if let Some(rest) = message.strip_prefix("unknown field `") {
            // "unknown field `x`, expected one of `a`, `b`" -> "unknown key (expected ...)".
            let expected = rest
                .split_once("`, ")
                .map(|(_, expected)| format!(" ({expected})"))
                .unwrap_or_default();
            let kind = if found.depth == 0 && found.is_table {
                "section"
            } else {
                "key"
            };
            format!("unknown {kind}{expected}")
        } else if found.path == "provider.client_secret" {
            // serde quotes the offending value; never echo anything typed as a secret.
            "invalid value (expected a string; the value is not shown)".to_string()
        } else {
            message
                .replace("expected i64", "expected an integer")
                .replace("expected a sequence", "expected an array")
                .replace("expected a map", "expected a table")
        };
        self.invalid(&found.path, Some(span), message)
    }
}

/// The key a toml error span points at.
struct Found {
    path: String,
    depth: usize,
    is_table: bool,
    len: usize,
}

/// Finds the innermost key whose name or value contains `target.start`; among equals, the
/// deepest. Spans of arrays and inline tables contain their elements, so the smallest wins.
fn locate(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    depth: usize,
    target: &Range<usize>,
    best: &mut Option<Found>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let is_table = matches!(value.get_ref(), toml::de::DeValue::Table(_));
        for span in [key.span(), value.span()] {
            consider(&path, depth, is_table, &span, target, best);
        }
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => locate(inner, &path, depth + 1, target, best),
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let item_is_table = matches!(item.get_ref(), toml::de::DeValue::Table(_));
                    consider(
                        &item_path,
                        depth + 1,
                        item_is_table,
                        &item.span(),
                        target,
                        best,
                    );
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        locate(inner, &item_path, depth + 1, target, best);
                    }
                }
            }
            _ => {}
        }
    }
}

fn consider(
    path: &str,
    depth: usize,
    is_table: bool,
    span: &Range<usize>,
    target: &Range<usize>,
    best: &mut Option<Found>,
) {
    let hit = span.contains(&target.start) || (span.is_empty() && span.start == target.start);
    if !hit {
        return;
    }
    let len = span.len();
    let better = match best {
        None => true,
        Some(b) => len < b.len || (len == b.len && depth > b.depth),
    };
    if better {
        *best = Some(Found {
            path: path.to_string(),
            depth,
            is_table,
            len,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------

/// Best effort, for syntax errors (when there is no parsed document to ask): the dotted key
/// assigned on 1-based `line`, prefixed by the last `[table]` header above it. `None` when the
/// line is not a plain `key = ...` (e.g. inside a multi-line string or array).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if i + 1 == line {
            let (key, _) = l.split_once('=')?;
            let key: String = key.trim().chars().filter(|c| *c != ' ').collect();
            if key.is_empty() || key.len() > 64 || !key.chars().all(is_key_char) {
                return None;
            }
            return Some(if table.is_empty() {
                key
            } else {
                format!("{table}.{key}")
            });
        }
        if let Some(header) = l.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or_default().trim();
            if name.chars().all(is_key_char) {
                table = name.to_string();
            }
        }
    }
    None
}

/// A board profile's text and where it came from.
pub struct BoardFile {
    pub path: PathBuf,
    pub text: String,
}

/// Finds board `name`: `boards/NAME.toml` next to `config` (when given), then
/// [`INSTALLED_BOARDS_DIR`], then the built-in profiles. The error is the reason only.
pub fn find_board(name: &str, config: Option<&Path>) -> Result<BoardFile, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "{name:?}: a board name is lowercase letters, digits, '-' and '_'"
        ));
    }
    let file = format!("{name}.toml");
    let mut dirs = Vec::new();
    if let Some(dir) = config.and_then(Path::parent) {
        dirs.push(dir.join("boards"));
    }
    dirs.push(PathBuf::from(INSTALLED_BOARDS_DIR));
    for dir in &dirs {
        let path = dir.join(&file);
        match read_capped(&path, MAX_BOARD_BYTES) {
            Ok(Capped::Fits(bytes)) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| format!("{}: not valid UTF-8", path.display()))?;
                return Ok(BoardFile { path, text });
            }
            Ok(Capped::TooLarge(n)) => {
                return Err(format!(
                    "{}: {n} bytes is too large for a board",
                    path.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    match BUILTIN_BOARDS.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok(BoardFile {
            path: PathBuf::from(format!("(built-in)/boards/{file}")),
            text: (*text).to_string(),
        }),
        None => {
            let names: Vec<&str> = BUILTIN_BOARDS.iter().map(|(n, _)| *n).collect();
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Err(format!(
                "no board {name:?} in {} nor built in ({})",
                searched.join(", "),
                names.join(", ")
            ))
        }
    }
}

/// The `[display]` of board `name` alone (for `devauth render --board`).
pub fn board_display(name: &str, config: Option<&Path>) -> Result<DisplayConfig, ConfigError> {
    let found = find_board(name, config).map_err(|why| ConfigError::Invalid {
        path: config.map(Path::to_path_buf).unwrap_or_default(),
        key: "board".to_string(),
        line: None,
        message: why,
    })?;
    let cx = Cx {
        text: &found.text,
        source: &found.path,
    };
    let board = parse_board(&cx)?;
    let mut out = display_from(&[(&cx, &board)], None)?;
    out.board = Some(name.to_string());
    Ok(out)
}

fn parse_board(cx: &Cx) -> Result<RawDisplay, ConfigError> {
    let raw: RawBoard = toml::from_str(cx.text).map_err(|e| cx.toml_error(e))?;
    let display = raw.display.map(Spanned::into_inner).unwrap_or_default();
    if let Some(b) = &display.board {
        return Err(cx.at(
            "display.board",
            b,
            "a board profile cannot name another board",
        ));
    }
    Ok(display)
}

/// The first layer that sets a key wins: the config over the board.
fn pick<'a, T>(
    layers: &'a [(&'a Cx<'a>, &'a RawDisplay)],
    key: impl Fn(&'a RawDisplay) -> &'a Option<T>,
) -> Option<(&'a Cx<'a>, &'a T)> {
    layers
        .iter()
        .find_map(|(cx, raw)| key(raw).as_ref().map(|v| (*cx, v)))
}

/// Validates the merged `[display]` keys. Errors name the file (config or board) the value
/// came from, its line and the key.
fn display_from(
    layers: &[(&Cx, &RawDisplay)],
    section: Option<Range<usize>>,
) -> Result<DisplayConfig, ConfigError> {
    let mut out = DisplayConfig::default();
    let Some((main, _)) = layers.first() else {
        return Ok(out);
    };
    let int = |key: &str, v: Option<(&Cx, &Spanned<i64>)>, min: i64, max: i64| {
        v.map(|(cx, v)| {
            cx.int(&format!("display.{key}"), v, min, max)
                .and_then(|n| u32::try_from(n).map_err(|_| cx.at(key, v, "out of range")))
        })
        .transpose()
    };
    let path = |key: &str, v: Option<(&Cx, &Str)>| {
        v.map(|(cx, v)| {
            cx.path(&format!("display.{key}"), v, false)
                .map(|p| cx.resolve(&p))
        })
        .transpose()
    };
    if let Some((cx, v)) = pick(layers, |r| &r.backend) {
        let options: Vec<(&str, DisplayBackend)> =
            DisplayBackend::ALL.iter().map(|b| (b.name(), *b)).collect();
        out.backend = cx.choice("display.backend", v, &options)?;
    }
    out.png = path("png", pick(layers, |r| &r.png))?;
    if let Some(p) = path("device", pick(layers, |r| &r.device))? {
        out.device = p;
    }
    out.width = int("width", pick(layers, |r| &r.width), 8, 8192)?;
    out.height = int("height", pick(layers, |r| &r.height), 8, 8192)?;
    if let Some((cx, v)) = pick(layers, |r| &r.format) {
        let options: Vec<(&str, PixelFormat)> = PixelFormat::NAMED.to_vec();
        out.format = Some(cx.choice("display.format", v, &options)?);
    }
    out.stride = int("stride", pick(layers, |r| &r.stride), 1, 8192 * 4)?;
    if let Some((cx, v)) = pick(layers, |r| &r.rotation) {
        let deg = u32::try_from(*v.get_ref())
            .ok()
            .and_then(Rotation::from_degrees);
        out.rotation = deg.ok_or_else(|| {
            cx.at(
                "display.rotation",
                v,
                format!("{} is not 0, 90, 180 or 270", v.get_ref()),
            )
        })?;
    }
    if let Some(p) = int(
        "title_safe_percent",
        pick(layers, |r| &r.title_safe_percent),
        0,
        20,
    )? {
        out.title_safe_percent = p;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.controller) {
        let options: Vec<(&str, Controller)> =
            Controller::ALL.iter().map(|c| (c.name(), *c)).collect();
        out.spi.controller = Some(cx.choice("display.controller", v, &options)?);
    }
    if let Some(p) = path("spi_device", pick(layers, |r| &r.spi_device))? {
        out.spi.device = p;
    }
    if let Some(n) = int(
        "spi_speed_hz",
        pick(layers, |r| &r.spi_speed_hz),
        100_000,
        100_000_000,
    )? {
        out.spi.speed_hz = n;
    }
    if let Some(n) = int("spi_mode", pick(layers, |r| &r.spi_mode), 0, 3)? {
        out.spi.mode = u8::try_from(n).unwrap_or(0);
    }
    if let Some(p) = path("gpio_chip", pick(layers, |r| &r.gpio_chip))? {
        out.spi.gpio_chip = p;
    }
    out.spi.dc_pin = int("dc_pin", pick(layers, |r| &r.dc_pin), 0, 1023)?;
    out.spi.reset_pin = int("reset_pin", pick(layers, |r| &r.reset_pin), 0, 1023)?;
    out.spi.backlight_pin = int("backlight_pin", pick(layers, |r| &r.backlight_pin), 0, 1023)?;
    if let Some((_, v)) = pick(layers, |r| &r.backlight_active_low) {
        out.spi.backlight_active_low = *v.get_ref();
    }
    if let Some(n) = int("x_offset", pick(layers, |r| &r.x_offset), 0, 320)? {
        out.spi.x_offset = n;
    }
    if let Some(n) = int("y_offset", pick(layers, |r| &r.y_offset), 0, 320)? {
        out.spi.y_offset = n;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.color_order) {
        out.spi.color_order = cx.choice(
            "display.color_order",
            v,
            &[("rgb", ColorOrder::Rgb), ("bgr", ColorOrder::Bgr)],
        )?;
    }
    if let Some((_, v)) = pick(layers, |r| &r.invert_colors) {
        out.spi.invert_colors = *v.get_ref();
    }

    // Rules across keys; reported against the config's [display] section.
    let missing = |key: &str, why: &str| main.invalid(key, section.clone(), why.to_string());
    if out.width.is_some() != out.height.is_some() {
        let key = if out.width.is_some() {
            "display.height"
        } else {
            "display.width"
        };
        return Err(missing(key, "missing: width and height are set together"));
    }
    match out.backend {
        DisplayBackend::Png => {
            if out.png.is_none() {
                return Err(missing(
                    "display.png",
                    "missing: backend = \"png\" needs png = \"PATH\"",
                ));
            }
            if out.size().is_none() {
                return Err(missing(
                    "display.width",
                    "missing: backend = \"png\" needs width and height (or a board)",
                ));
            }
        }
        DisplayBackend::Spi => {
            let Some(controller) = out.spi.controller else {
                return Err(missing(
                    "display.controller",
                    "missing: backend = \"spi\" needs controller (st7789, ili9341, ssd1306) or a board",
                ));
            };
            if out.spi.dc_pin.is_none() {
                return Err(missing(
                    "display.dc_pin",
                    "missing: an SPI panel needs its data/command GPIO line",
                ));
            }
            match (controller, out.size()) {
                (Controller::Ssd1306, Some(s)) if s != Size::new(128, 64) => {
                    return Err(missing(
                        "display.width",
                        "the ssd1306 driver supports 128x64 only",
                    ));
                }
                (_, None) => {
                    return Err(missing(
                        "display.width",
                        "missing: an SPI panel needs width and height",
                    ));
                }
                _ => {}
            }
        }
        DisplayBackend::Terminal | DisplayBackend::None | DisplayBackend::Framebuffer => {}
    }
    Ok(out)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &[u8], offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    1 + before.iter().filter(|b| **b == b'\n').count()
}

enum Capped {
    Fits(Vec<u8>),
    TooLarge(u64),
}

/// Reads a whole file, but never more than `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> io::Result<Capped> {
    let file = std::fs::File::open(path)?;
    let meta_len = file.metadata()?.len();
    if meta_len > cap {
        return Ok(Capped::TooLarge(meta_len));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > cap {
        return Ok(Capped::TooLarge(read.max(meta_len)));
    }
    Ok(Capped::Fits(bytes))
}

/// Client id and secret: RFC 6749 Appendix A (`*VSCHAR`, printable ASCII), non-empty, no
/// surrounding spaces (a pasted space would fail authentication in a confusing way). The
/// reason never contains the value.
fn check_vschar(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > MAX_ID_LEN {
        return Err("is longer than 1024 bytes");
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("contains characters other than printable ASCII");
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err("starts or ends with a space");
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("is empty".to_string());
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!("longer than {MAX_SCOPE_LEN} bytes"));
    }
    if scope.contains(' ') {
        return Err("must not contain spaces; write each scope as its own string".to_string());
    }
    if !scope
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    {
        return Err(
            "may only contain printable ASCII except '\"' and '\\' (RFC 6749 §3.3)".to_string(),
        );
    }
    Ok(())
}

/// `url` with any `user:pass@` replaced by `***@`, for error messages.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "/etc/devauth/devauth.toml";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(SRC))
    }

    fn ok(text: &str) -> Config {
        match parse(text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the error names `key` on `line` and returns its text.
    fn err_at(text: &str, key: &str, line: usize) -> String {
        let e = err(text);
        let shown = e.to_string();
        assert_eq!(e.key(), Some(key), "{shown}");
        assert_eq!(e.line(), Some(line), "{shown}");
        assert!(
            shown.starts_with(&format!("config {SRC}:{line}: {key}: ")),
            "{shown}"
        );
        shown
    }

    fn explicit(c: &Config) -> (&str, &str) {
        match &c.provider.endpoints {
            EndpointSource::Explicit {
                device_authorization,
                token,
            } => (device_authorization, token),
            other => panic!("not explicit: {other:?}"),
        }
    }

    // --- presets ------------------------------------------------------------------------------

    #[test]
    fn google_preset_resolves() {
        let c = ok(
            "[provider]\npreset = \"google\"\nclient_id = \"x.apps.googleusercontent.com\"\nclient_secret = \"GOCSPX-s3cret\"\n",
        );
        assert_eq!(c.provider.preset, Preset::Google);
        assert_eq!(
            explicit(&c),
            (
                "https://oauth2.googleapis.com/device/code",
                "https://oauth2.googleapis.com/token"
            )
        );
        assert_eq!(
            c.provider.revocation_endpoint.as_deref(),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert_eq!(
            c.provider.userinfo_endpoint.as_deref(),
            Some("https://openidconnect.googleapis.com/v1/userinfo")
        );
        assert_eq!(c.provider.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            c.provider.client_secret.as_ref().map(Secret::expose),
            Some("GOCSPX-s3cret")
        );
        assert_eq!(c.provider.client_auth, ClientAuth::Post);
    }

    #[test]
    fn google_without_secret_is_refused_with_the_client_type() {
        let shown = err_at(
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\n",
            "provider.client_secret",
            1,
        );
        assert!(shown.contains("TVs and Limited Input devices"), "{shown}");
    }

    #[test]
    fn microsoft_preset_defaults_tenant_authority_and_offline_access() {
        let c = ok(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"00000000-1111-2222-3333-444444444444\"\n",
        );
        assert_eq!(
            explicit(&c),
            (
                "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
                "https://login.microsoftonline.com/common/oauth2/v2.0/token"
            )
        );
        assert_eq!(c.provider.revocation_endpoint, None);
        assert_eq!(
            c.provider.userinfo_endpoint.as_deref(),
            Some("https://graph.microsoft.com/oidc/userinfo")
        );
        assert_eq!(c.provider.scopes, ["openid", "profile", "offline_access"]);

        let c = ok(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"a\"\ntenant = \"contoso.onmicrosoft.com\"\nauthority = \"https://login.microsoftonline.us/\"\nscopes = [\"User.Read\"]\n",
        );
        assert_eq!(
            explicit(&c),
            (
                "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
                "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
            )
        );
        assert_eq!(c.provider.scopes, ["User.Read", "offline_access"]);
    }

    #[test]
    fn microsoft_authority_may_be_the_loopback_server() {
        let c = ok(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"a\"\nallow_http_loopback = true\nauthority = \"http://127.0.0.1:8080\"\ntenant = \"organizations\"\n",
        );
        assert_eq!(
            explicit(&c).0,
            "http://127.0.0.1:8080/organizations/oauth2/v2.0/devicecode"
        );
    }

    #[test]
    fn microsoft_bad_tenant_and_authority() {
        err_at(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"a\"\ntenant = \"../evil\"\n",
            "provider.tenant",
            4,
        );
        err_at(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"a\"\nauthority = \"http://login.example\"\n",
            "provider.authority",
            4,
        );
        err_at(
            "[provider]\npreset = \"microsoft\"\nclient_id = \"a\"\nauthority = \"https://login.example/?x=1\"\n",
            "provider.authority",
            4,
        );
    }

    #[test]
    fn tenant_and_authority_belong_to_microsoft() {
        let shown = err_at(
            "[provider]\npreset = \"github\"\nclient_id = \"a\"\ntenant = \"common\"\n",
            "provider.tenant",
            4,
        );
        assert!(shown.contains("microsoft"), "{shown}");
        err_at(
            "[provider]\nclient_id = \"a\"\nissuer = \"https://i\"\nauthority = \"https://login.microsoftonline.us\"\n",
            "provider.authority",
            4,
        );
    }

    #[test]
    fn github_preset_resolves() {
        let c = ok("[provider]\npreset = \"github\"\nclient_id = \"Iv1.0123456789abcdef\"\n");
        assert_eq!(
            explicit(&c),
            (
                "https://github.com/login/device/code",
                "https://github.com/login/oauth/access_token"
            )
        );
        assert_eq!(c.provider.revocation_endpoint, None);
        assert_eq!(
            c.provider.userinfo_endpoint.as_deref(),
            Some("https://api.github.com/user")
        );
        assert!(c.provider.scopes.is_empty());
        assert_eq!(c.provider.scope_param(), None);
        assert_eq!(c.provider.client_secret, None);
    }

    #[test]
    fn generic_with_issuer_discovers() {
        let c = ok(
            "[provider]\nclient_id = \"devauth\"\nissuer = \"https://kc.example/realms/dev\"\nscopes = [\"openid\", \"offline_access\"]\n",
        );
        assert_eq!(c.provider.preset, Preset::Generic);
        assert_eq!(
            c.provider.endpoints,
            EndpointSource::Discover {
                issuer: "https://kc.example/realms/dev".to_string()
            }
        );
        assert_eq!(c.provider.revocation_endpoint, None);
        assert_eq!(
            c.provider.scope_param().as_deref(),
            Some("openid offline_access")
        );
    }

    #[test]
    fn generic_with_explicit_endpoints() {
        let c = ok(
            "[provider]\npreset = \"generic\"\nclient_id = \"d\"\ndevice_authorization_endpoint = \"https://a/device\"\ntoken_endpoint = \"https://a/token\"\nrevocation_endpoint = \"https://a/revoke\"\n",
        );
        assert_eq!(explicit(&c), ("https://a/device", "https://a/token"));
        assert_eq!(
            c.provider.revocation_endpoint.as_deref(),
            Some("https://a/revoke")
        );
        assert_eq!(c.provider.scopes, ["openid"]);
    }

    #[test]
    fn generic_says_what_is_missing() {
        let shown = err_at("[provider]\nclient_id = \"d\"\n", "provider.issuer", 1);
        assert!(shown.contains("device_authorization_endpoint and token_endpoint"));
        err_at(
            "[provider]\nclient_id = \"d\"\ndevice_authorization_endpoint = \"https://a/d\"\n",
            "provider.token_endpoint",
            1,
        );
        err_at(
            "\n[provider]\nclient_id = \"d\"\ntoken_endpoint = \"https://a/t\"\n",
            "provider.device_authorization_endpoint",
            2,
        );
        err_at(
            "[provider]\nclient_id = \"d\"\nissuer = \"https://a\"\ntoken_endpoint = \"https://a/t\"\n",
            "provider.issuer",
            3,
        );
    }

    #[test]
    fn issuer_only_for_generic_and_without_query() {
        err_at(
            "[provider]\npreset = \"google\"\nclient_id = \"d\"\nclient_secret = \"s\"\nissuer = \"https://accounts.google.com\"\n",
            "provider.issuer",
            5,
        );
        err_at(
            "[provider]\nclient_id = \"d\"\nissuer = \"https://a/?realm=x\"\n",
            "provider.issuer",
            3,
        );
    }

    #[test]
    fn explicit_urls_override_every_preset() {
        for (preset, secret) in [
            ("google", "client_secret = \"s\"\n"),
            ("microsoft", ""),
            ("github", ""),
        ] {
            let c = ok(&format!(
                "[provider]\npreset = \"{preset}\"\nclient_id = \"c\"\n{secret}allow_http_loopback = true\n\
                 device_authorization_endpoint = \"http://127.0.0.1:4000/device\"\n\
                 token_endpoint = \"http://127.0.0.1:4000/token\"\n\
                 revocation_endpoint = \"http://127.0.0.1:4000/revoke\"\n\
                 userinfo_endpoint = \"http://127.0.0.1:4000/userinfo\"\n"
            ));
            assert_eq!(
                explicit(&c),
                (
                    "http://127.0.0.1:4000/device",
                    "http://127.0.0.1:4000/token"
                ),
                "{preset}"
            );
            assert_eq!(
                c.provider.revocation_endpoint.as_deref(),
                Some("http://127.0.0.1:4000/revoke")
            );
            assert_eq!(
                c.provider.userinfo_endpoint.as_deref(),
                Some("http://127.0.0.1:4000/userinfo")
            );
        }
        // One override leaves the other endpoint to the preset.
        let c = ok(
            "[provider]\npreset = \"github\"\nclient_id = \"c\"\ntoken_endpoint = \"https://ghe.example/login/oauth/access_token\"\n",
        );
        assert_eq!(
            explicit(&c),
            (
                "https://github.com/login/device/code",
                "https://ghe.example/login/oauth/access_token"
            )
        );
    }

    #[test]
    fn unknown_preset() {
        let shown = err_at(
            "[provider]\npreset = \"okta\"\nclient_id = \"c\"\n",
            "provider.preset",
            2,
        );
        assert!(shown.contains("\"okta\""), "{shown}");
        assert!(shown.contains("\"generic\""), "{shown}");
    }

    // --- URL rule -----------------------------------------------------------------------------

    #[test]
    fn check_url_rules() {
        for good in [
            "https://example.com/device",
            "https://example.com:8443/a?b=c",
            "HTTPS://Example.COM",
        ] {
            assert_eq!(check_url(good, false), Ok(()), "{good}");
        }
        for lo in [
            "http://127.0.0.1:8080/token",
            "http://[::1]:8080/token",
            "http://localhost/x",
            "http://LOCALHOST:1/x",
        ] {
            assert!(check_url(lo, false).is_err(), "{lo} without the switch");
            assert_eq!(check_url(lo, true), Ok(()), "{lo}");
        }
        for bad in [
            "",
            "http://example.com/token",
            "http://127.0.0.2/token",
            "http://[::2]/token",
            "http://localhost.example.com/",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "http://u:p@127.0.0.1/",
            "https://example.com/a#frag",
            "https://example.com:99999/",
            "https://example.com:0/",
            "https://example.com:/",
            "ftp://example.com/",
            "example.com/device",
            "/device",
            "https://exa mple.com/",
            "https://example.com/\n",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad:?}");
        }
        assert!(check_url(&format!("https://a/{}", "x".repeat(MAX_URL_LEN)), false).is_err());
    }

    #[test]
    fn check_url_reasons_never_repeat_the_url() {
        let e = check_url("https://alice:hunter2@example.com/", false).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("user"), "{e}");
    }

    #[test]
    fn http_off_loopback_is_refused_with_key_value_and_line() {
        let shown = err_at(
            "[provider]\nclient_id = \"c\"\nallow_http_loopback = true\ndevice_authorization_endpoint = \"http://auth.example/device\"\ntoken_endpoint = \"https://auth.example/token\"\n",
            "provider.device_authorization_endpoint",
            4,
        );
        assert!(shown.contains("\"http://auth.example/device\""), "{shown}");
        assert!(shown.contains("https"), "{shown}");
    }

    #[test]
    fn http_loopback_needs_the_switch() {
        let text = "[provider]\nclient_id = \"c\"\ndevice_authorization_endpoint = \"http://127.0.0.1:1/d\"\ntoken_endpoint = \"http://127.0.0.1:1/t\"\n";
        let shown = err_at(text, "provider.device_authorization_endpoint", 3);
        assert!(shown.contains("allow_http_loopback"), "{shown}");
        let c = ok(&text.replace("[provider]\n", "[provider]\nallow_http_loopback = true\n"));
        assert!(c.provider.allow_http_loopback);
        assert_eq!(
            explicit(&c),
            ("http://127.0.0.1:1/d", "http://127.0.0.1:1/t")
        );
    }

    #[test]
    fn ipv6_loopback_and_localhost_accepted_when_allowed() {
        let c = ok(
            "[provider]\nclient_id = \"c\"\nallow_http_loopback = true\ndevice_authorization_endpoint = \"http://[::1]:9/d\"\ntoken_endpoint = \"http://localhost:9/t\"\n",
        );
        assert_eq!(explicit(&c), ("http://[::1]:9/d", "http://localhost:9/t"));
        let c = ok(
            "[provider]\nclient_id = \"c\"\nallow_http_loopback = true\nissuer = \"http://localhost:9/realms/x\"\n",
        );
        assert!(matches!(
            c.provider.endpoints,
            EndpointSource::Discover { .. }
        ));
    }

    #[test]
    fn userinfo_in_url_is_refused_and_not_echoed() {
        let shown = err_at(
            "[provider]\nclient_id = \"c\"\nissuer = \"https://admin:hunter2@id.example/\"\n",
            "provider.issuer",
            3,
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***@id.example"), "{shown}");
        err_at(
            "[provider]\npreset = \"github\"\nclient_id = \"c\"\nuserinfo_endpoint = \"https://u@api.example/user\"\n",
            "provider.userinfo_endpoint",
            4,
        );
    }

    #[test]
    fn fragment_in_url_is_refused() {
        err_at(
            "[provider]\npreset = \"github\"\nclient_id = \"c\"\nrevocation_endpoint = \"https://a/revoke#x\"\n",
            "provider.revocation_endpoint",
            4,
        );
    }

    // --- toml-level errors --------------------------------------------------------------------

    #[test]
    fn unknown_key_names_key_and_line() {
        let shown = err_at("[provider]\nclinet_id = \"x\"", "provider.clinet_id", 2);
        assert!(shown.contains("clinet_id"), "{shown}");
        assert!(shown.contains("unknown key"), "{shown}");
        assert!(shown.contains("`client_id`"), "{shown}");
    }

    #[test]
    fn unknown_section_names_section_and_line() {
        let shown = err_at(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n\n[netwrok]\ntimeout_secs = 5\n",
            "netwrok",
            5,
        );
        assert!(shown.contains("unknown section"), "{shown}");
        err_at(
            "[provider]\nclient_id = \"x\"\n[provider.extra]\na = \"b\"\n",
            "provider.extra",
            3,
        );
        err_at("top = 1\n[provider]\n", "top", 1);
        err_at(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n[agent]\nhook = \"x\"\nhoook = \"y\"\n",
            "agent.hoook",
            6,
        );
    }

    #[test]
    fn wrong_types_name_key_and_line() {
        let shown = err_at("[provider]\nclient_id = 5\n", "provider.client_id", 2);
        assert!(shown.contains("expected a string"), "{shown}");
        let shown = err_at(
            "[provider]\nclient_id = \"x\"\n\n[network]\ntimeout_secs = \"30\"\n",
            "network.timeout_secs",
            5,
        );
        assert!(shown.contains("integer"), "{shown}");
        err_at(
            "[provider]\nclient_id = \"x\"\nscopes = [\"openid\", 3]\n",
            "provider.scopes[1]",
            3,
        );
        err_at(
            "[provider]\nclient_id = \"x\"\nscopes = \"openid email\"\n",
            "provider.scopes",
            3,
        );
        err_at(
            "[provider]\nclient_id = \"x\"\nallow_http_loopback = \"yes\"\n",
            "provider.allow_http_loopback",
            3,
        );
        err_at(
            "[provider]\nclient_id = \"x\"\nextra_params = { audience = 1 }\n",
            "provider.extra_params.audience",
            3,
        );
        err_at("provider = 3\n", "provider", 1);
        let shown = err_at(
            "[provider]\nclient_id = \"x\"\n[[storage]]\npath = \"/a\"\n",
            "storage",
            3,
        );
        assert!(shown.contains("[storage]"), "{shown}");
    }

    #[test]
    fn syntax_errors_have_the_line() {
        let e = err("[provider]\nclient_id = \"x\"\nissuer = \n");
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e}");
        let e = err("[provider]\nclient_id = \"a\"\nclient_id = \"b\"\n");
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e}");
        assert!(
            e.to_string().contains("provider.client_id: duplicate key"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(&format!("config {SRC}:3: ")),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_name_the_key_when_they_can() {
        let e = err("[provider]\nclient_id = \"x\"\nclient_secret = \"GOCSPX-abc\\q\"\n");
        let shown = e.to_string();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{shown}");
        assert!(
            shown.starts_with(&format!("config {SRC}:3: provider.client_secret: ")),
            "{shown}"
        );
        assert!(!shown.contains("GOCSPX"), "{shown}");
        let e = err("[provider]\nclient_id = \"x\"\n[agent]\nhook = \"unterminated\n");
        assert!(e.to_string().contains(":4: agent.hook: "), "{e}");
        assert_eq!(key_on_line("[a]\n'q' = 1\n", 2), None);
    }

    #[test]
    fn missing_provider_section_or_client_id() {
        let e = err("[storage]\npath = \"/data/t.json\"\n");
        assert_eq!(e.key(), Some("provider"));
        assert_eq!(
            e.to_string(),
            format!(
                "config {SRC}: provider: missing section [provider] (at least client_id must be set)"
            )
        );
        err_at(
            "# comment\n[provider]\nissuer = \"https://i\"\n",
            "provider.client_id",
            2,
        );
    }

    // --- provider values ----------------------------------------------------------------------

    #[test]
    fn client_id_must_be_printable() {
        err_at(
            "[provider]\nclient_id = \"\"\nissuer = \"https://i\"\n",
            "provider.client_id",
            2,
        );
        err_at(
            "[provider]\nclient_id = \"a\\u0007b\"\nissuer = \"https://i\"\n",
            "provider.client_id",
            2,
        );
        err_at(
            "[provider]\nclient_id = \"caf\u{e9}\"\nissuer = \"https://i\"\n",
            "provider.client_id",
            2,
        );
    }

    #[test]
    fn scopes_are_validated_and_deduplicated() {
        let shown = err_at(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\nscopes = [\"openid\", \"email profile\"]\n",
            "provider.scopes[1]",
            4,
        );
        assert!(shown.contains("own string"), "{shown}");
        err_at(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\nscopes = [\"\"]\n",
            "provider.scopes[0]",
            4,
        );
        err_at(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\nscopes = [\"a\\\"b\"]\n",
            "provider.scopes[0]",
            4,
        );
        let c = ok(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\nscopes = [\"openid\", \"openid\", \"email\"]\n",
        );
        assert_eq!(c.provider.scopes, ["openid", "email"]);
    }

    #[test]
    fn client_auth_values() {
        let base = "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n";
        let c = ok(&format!(
            "{base}client_secret = \"s\"\nclient_auth = \"basic\"\n"
        ));
        assert_eq!(c.provider.client_auth, ClientAuth::Basic);
        err_at(
            &format!("{base}client_auth = \"basic\"\n"),
            "provider.client_auth",
            4,
        );
        err_at(
            &format!("{base}client_secret = \"s\"\nclient_auth = \"jwt\"\n"),
            "provider.client_auth",
            5,
        );
    }

    #[test]
    fn extra_params_kept_and_reserved_names_refused() {
        let base = "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n";
        let c = ok(&format!(
            "{base}[provider.extra_params]\naudience = \"https://api.example\"\norganization = \"org_1\"\n"
        ));
        assert_eq!(
            c.provider.extra_params,
            [
                ("audience".to_string(), "https://api.example".to_string()),
                ("organization".to_string(), "org_1".to_string())
            ]
        );
        for reserved in RESERVED_EXTRA_PARAMS {
            let shown = err_at(
                &format!("{base}extra_params = {{ {reserved} = \"v\" }}\n"),
                &format!("provider.extra_params.{reserved}"),
                4,
            );
            assert!(shown.contains("reserved"), "{shown}");
        }
        err_at(
            &format!("{base}extra_params.Scope = \"v\"\n"),
            "provider.extra_params.Scope",
            4,
        );
        err_at(
            &format!("{base}extra_params = {{ \"a b\" = \"v\" }}\n"),
            "provider.extra_params.a b",
            4,
        );
        err_at(
            &format!("{base}extra_params = {{ audience = \"\" }}\n"),
            "provider.extra_params.audience",
            4,
        );
    }

    #[test]
    fn secret_and_secret_file_together_is_an_error() {
        let shown = err_at(
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"GOCSPX-topsecret\"\nclient_secret_file = \"/etc/devauth/secret\"\n",
            "provider.client_secret_file",
            5,
        );
        assert!(!shown.contains("GOCSPX-topsecret"), "{shown}");
    }

    #[test]
    fn secret_file_is_read_relative_to_the_config_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("google-secret"), "GOCSPX-fromfile\r\n").unwrap();
        let cfg = dir.path().join("devauth.toml");
        std::fs::write(
            &cfg,
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret_file = \"google-secret\"\n",
        )
        .unwrap();
        let c = Config::load(&cfg).unwrap();
        assert_eq!(
            c.provider.client_secret.as_ref().map(Secret::expose),
            Some("GOCSPX-fromfile")
        );
        assert_eq!(c.source, cfg);

        // Missing, empty and oversized files name the key, the line and the path.
        for (content, why) in [
            (None, "No such file"),
            (Some("\n".to_string()), "is empty"),
            (Some("x".repeat(5000)), "larger than"),
        ] {
            let path = dir.path().join("s2");
            let _ = std::fs::remove_file(&path);
            if let Some(content) = content {
                std::fs::write(&path, content).unwrap();
            }
            let e = Config::parse(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret_file = \"s2\"\n",
                &cfg,
            )
            .unwrap_err();
            let shown = e.to_string();
            assert_eq!(e.key(), Some("provider.client_secret_file"), "{shown}");
            assert_eq!(e.line(), Some(4), "{shown}");
            assert!(shown.contains(why), "{shown}");
            assert!(shown.contains("s2"), "{shown}");
        }
    }

    #[test]
    fn error_display_never_contains_the_client_secret() {
        const S: &str = "GOCSPX-hunter2hunter2";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad"), format!("{S}\u{1}\n")).unwrap();
        let cfg = dir.path().join("devauth.toml");
        let cases = [
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\nclient_auth = \"jwt\"\n"
            ),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\nclient_secret_file = \"bad\"\n"
            ),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \" {S}\"\n"
            ),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\\u0001\"\n"
            ),
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret_file = \"bad\"\n"
                .to_string(),
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = 4242424242\n"
                .to_string(),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = [\"{S}\"]\n"
            ),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\ntoken_endpoint = \"http://a/t\"\n"
            ),
            format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\n[network]\ntimeout_secs = 0\n"
            ),
        ];
        for text in &cases {
            let e = Config::parse(text, &cfg).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains("4242424242"), "{shown}");
            }
        }
        // The loaded config's Debug is redacted too.
        let c = Config::parse(
            &format!(
                "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\n"
            ),
            &cfg,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn ca_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let cfg = dir.path().join("devauth.toml");
        let text = "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\nca_file = \"ca.pem\"\n";
        let c = Config::parse(text, &cfg).unwrap();
        assert_eq!(c.provider.ca_file, Some(dir.path().join("ca.pem")));
        let e = Config::parse(&text.replace("ca.pem", "nope.pem"), &cfg).unwrap_err();
        assert_eq!(e.key(), Some("provider.ca_file"));
        assert_eq!(e.line(), Some(4));
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let e =
            Config::parse(&text.replace("ca.pem", dir.path().to_str().unwrap()), &cfg).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    // --- other sections -----------------------------------------------------------------------

    const MIN: &str = "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n";

    #[test]
    fn defaults() {
        let c = ok(MIN);
        assert_eq!(c.source, Path::new(SRC));
        assert_eq!(c.storage, StorageConfig::default());
        assert_eq!(c.storage.path, Path::new("/var/lib/devauth/tokens.json"));
        assert_eq!(c.display.backend, DisplayBackend::Terminal);
        assert_eq!(c.network.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.network.timeout, Duration::from_secs(30));
        assert_eq!(c.network.max_body_bytes, 65536);
        assert_eq!(c.agent.token_file, Path::new("/run/devauth/access_token"));
        assert_eq!(c.agent.token_file_group, None);
        assert_eq!(c.agent.hook, None);
        assert_eq!(c.agent.refresh_margin, Duration::from_secs(300));
        assert_eq!(c.agent.paired_screen, Duration::from_secs(10));
        assert!(!c.provider.allow_http_loopback);
        assert_eq!(c.provider.ca_file, None);
        assert!(c.provider.extra_params.is_empty());
    }

    #[test]
    fn all_sections_set() {
        let c = ok(&format!(
            "{MIN}[storage]\npath = \"/data/devauth/tokens.json\"\n[display]\nbackend = \"none\"\n\
             [network]\nconnect_timeout_secs = 5\ntimeout_secs = 60\nmax_body_bytes = 1048576\n\
             [agent]\ntoken_file = \"/run/x/token\"\ntoken_file_group = \"video\"\n\
             hook = \"/usr/bin/systemctl restart app\"\nrefresh_margin_secs = 0\npaired_screen_secs = 3\n"
        ));
        assert_eq!(c.storage.path, Path::new("/data/devauth/tokens.json"));
        assert_eq!(c.display.backend, DisplayBackend::None);
        assert_eq!(
            c.network,
            NetworkConfig {
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(60),
                max_body_bytes: 1_048_576
            }
        );
        assert_eq!(
            c.agent,
            AgentConfig {
                token_file: PathBuf::from("/run/x/token"),
                token_file_group: Some("video".to_string()),
                hook: Some("/usr/bin/systemctl restart app".to_string()),
                refresh_margin: Duration::ZERO,
                paired_screen: Duration::from_secs(3),
                release_display: ReleaseDisplay::Blank,
            }
        );
    }

    #[test]
    fn release_display_values() {
        let c = ok(&format!("{MIN}[agent]\nrelease_display = \"keep\"\n"));
        assert_eq!(c.agent.release_display, ReleaseDisplay::Keep);
        assert_eq!(ok(MIN).agent.release_display, ReleaseDisplay::Blank);
        let shown = err_at(
            &format!("{MIN}[agent]\nrelease_display = \"off\"\n"),
            "agent.release_display",
            5,
        );
        assert!(shown.contains("\"blank\""), "{shown}");
    }

    // --- grant = "jwt-bearer" -----------------------------------------------------------------

    const SA_JSON: &str = include_str!("../../tests/fixtures/test-only-service-account.json");
    const KEY_PEM: &str = include_str!("../../tests/fixtures/test-only-jwt-key.pem");

    /// Parses `text` as a config file in a temp dir holding `sa.json` and `key.pem`.
    fn parse_with_keys(text: &str) -> (Result<Config, ConfigError>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sa.json"), SA_JSON).unwrap();
        std::fs::write(dir.path().join("key.pem"), KEY_PEM).unwrap();
        let src = dir.path().join("devauth.toml");
        (Config::parse(text, &src), dir)
    }

    #[test]
    fn jwt_bearer_with_a_google_service_account_file() {
        let (c, _dir) = parse_with_keys(
            "[provider]\npreset = \"google\"\ngrant = \"jwt-bearer\"\n\
             service_account_file = \"sa.json\"\n\
             scopes = [\"https://www.googleapis.com/auth/cloud-platform\"]\n",
        );
        let c = c.unwrap();
        let j = c.provider.grant.jwt_bearer().unwrap();
        assert_eq!(
            j.issuer,
            "devauth-test@devauth-test-only.iam.gserviceaccount.com"
        );
        assert_eq!(j.audience, "https://oauth2.googleapis.com/token");
        assert_eq!(j.subject, None);
        assert!(j.scope_in_claims && !j.client_auth);
        assert_eq!(j.key_id.as_deref(), Some("0123456789abcdef-test-only"));
        assert_eq!(c.provider.client_id, j.issuer);
        assert_eq!(c.provider.grant.name(), "jwt-bearer");
        assert_eq!(
            c.provider.scopes,
            vec!["https://www.googleapis.com/auth/cloud-platform".to_string()]
        );
        assert_eq!(explicit(&c).1, "https://oauth2.googleapis.com/token");
        // Debug never shows the key.
        assert!(!format!("{c:?}").contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn jwt_bearer_with_a_pem_key_needs_issuer_and_token_endpoint() {
        let base = "[provider]\ngrant = \"jwt-bearer\"\nprivate_key_file = \"key.pem\"\n";
        let (c, _d) = parse_with_keys(&format!(
            "{base}jwt_issuer = \"device-42\"\ntoken_endpoint = \"https://as.example/token\"\n\
             jwt_audience = \"https://as.example\"\nscopes = [\"api\"]\n"
        ));
        let c = c.unwrap();
        let j = c.provider.grant.jwt_bearer().unwrap();
        assert_eq!(j.issuer, "device-42");
        assert_eq!(j.subject.as_deref(), Some("device-42"));
        assert_eq!(j.audience, "https://as.example");
        assert!(!j.scope_in_claims);
        assert_eq!(c.provider.scopes, vec!["api".to_string()]);

        let (e, _d) = parse_with_keys(&format!(
            "{base}token_endpoint = \"https://as.example/token\"\n"
        ));
        assert_eq!(e.unwrap_err().key(), Some("provider.jwt_issuer"));
        let (e, _d) = parse_with_keys(&format!("{base}jwt_issuer = \"d\"\n"));
        assert_eq!(e.unwrap_err().key(), Some("provider.token_endpoint"));
    }

    #[test]
    fn jwt_bearer_combinations_are_checked_with_key_and_line() {
        let cases: &[(&str, &str, usize)] = &[
            // Both key files.
            (
                "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"sa.json\"\n\
                 private_key_file = \"key.pem\"\n",
                "provider.private_key_file",
                4,
            ),
            // No key file.
            (
                "[provider]\ngrant = \"jwt-bearer\"\ntoken_endpoint = \"https://a/t\"\n",
                "provider.service_account_file",
                1,
            ),
            // Device-flow keys.
            (
                "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"sa.json\"\n\
                 device_authorization_endpoint = \"https://a/d\"\n",
                "provider.device_authorization_endpoint",
                4,
            ),
            (
                "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"sa.json\"\n\
                 issuer = \"https://a\"\n",
                "provider.issuer",
                4,
            ),
            // jwt keys with the device flow.
            (
                "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\njwt_issuer = \"me\"\n",
                "provider.jwt_issuer",
                4,
            ),
            // Unsupported preset.
            (
                "[provider]\npreset = \"github\"\ngrant = \"jwt-bearer\"\n\
                 service_account_file = \"sa.json\"\n",
                "provider.grant",
                3,
            ),
            // Google needs scopes.
            (
                "[provider]\npreset = \"google\"\ngrant = \"jwt-bearer\"\n\
                 service_account_file = \"sa.json\"\n",
                "provider.scopes",
                1,
            ),
            // Unknown grant.
            (
                "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\ngrant = \"password\"\n",
                "provider.grant",
                4,
            ),
            // Missing and unreadable files.
            (
                "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"nope.json\"\n",
                "provider.service_account_file",
                3,
            ),
            (
                "[provider]\ngrant = \"jwt-bearer\"\nprivate_key_file = \"sa.json\"\n\
                 jwt_issuer = \"i\"\ntoken_endpoint = \"https://a/t\"\n",
                "provider.private_key_file",
                3,
            ),
        ];
        for (text, key, line) in cases {
            let (r, _d) = parse_with_keys(text);
            let e = r.unwrap_err();
            assert_eq!(e.key(), Some(*key), "{text}: {e}");
            assert_eq!(e.line(), Some(*line), "{text}: {e}");
            assert!(!e.to_string().contains("MII"), "{e}");
        }
    }

    #[test]
    fn jwt_bearer_key_errors_never_show_the_key() {
        let dir = tempfile::tempdir().unwrap();
        // A service account whose key is not a key.
        std::fs::write(
            dir.path().join("bad.json"),
            r#"{"type":"service_account","private_key":"MIIsecretstuff","client_email":"a@b"}"#,
        )
        .unwrap();
        let e = Config::parse(
            "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"bad.json\"\n\
             token_endpoint = \"https://a/t\"\n",
            &dir.path().join("c.toml"),
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("private_key"), "{shown}");
        assert!(!shown.contains("MIIsecretstuff"), "{shown}");
    }

    #[test]
    fn token_file_must_not_be_the_store() {
        let shown = err_at(
            &format!(
                "{MIN}[storage]\npath = \"/data/t.json\"\n[agent]\ntoken_file = \"/data/t.json\"\n"
            ),
            "agent.token_file",
            7,
        );
        assert!(shown.contains("refresh token"), "{shown}");
        let e = err(&format!(
            "{MIN}[storage]\npath = \"/run/devauth/access_token\"\n"
        ));
        assert_eq!(e.key(), Some("agent.token_file"));
    }

    #[test]
    fn ranges_and_values_in_other_sections() {
        let cases = [
            (
                "[network]\nconnect_timeout_secs = 0\n",
                "network.connect_timeout_secs",
            ),
            (
                "[network]\nconnect_timeout_secs = 121\n",
                "network.connect_timeout_secs",
            ),
            ("[network]\ntimeout_secs = 301\n", "network.timeout_secs"),
            ("[network]\ntimeout_secs = -1\n", "network.timeout_secs"),
            (
                "[network]\nmax_body_bytes = 1023\n",
                "network.max_body_bytes",
            ),
            (
                "[network]\nmax_body_bytes = 1048577\n",
                "network.max_body_bytes",
            ),
            (
                "[network]\nconnect_timeout_secs = 40\n",
                "network.connect_timeout_secs",
            ),
            (
                "[agent]\nrefresh_margin_secs = 86401\n",
                "agent.refresh_margin_secs",
            ),
            (
                "[agent]\npaired_screen_secs = -5\n",
                "agent.paired_screen_secs",
            ),
            ("[agent]\ntoken_file = \"token\"\n", "agent.token_file"),
            (
                "[agent]\ntoken_file = \"/run/devauth/\"\n",
                "agent.token_file",
            ),
            (
                "[agent]\ntoken_file_group = \"-rf\"\n",
                "agent.token_file_group",
            ),
            (
                "[agent]\ntoken_file_group = \"a b\"\n",
                "agent.token_file_group",
            ),
            ("[agent]\nhook = \"  \"\n", "agent.hook"),
            ("[agent]\nhook = \"a\\nb\"\n", "agent.hook"),
            ("[storage]\npath = \"tokens.json\"\n", "storage.path"),
            ("[storage]\npath = \"\"\n", "storage.path"),
            ("[storage]\npath = \"/a\\u0000b\"\n", "storage.path"),
            ("[display]\nbackend = \"fb\"\n", "display.backend"),
        ];
        for (section, key) in cases {
            // MIN is 3 lines; the section header is line 4 and the value line 5.
            err_at(&format!("{MIN}{section}"), key, 5);
        }
        // The timeout ordering names connect_timeout_secs even when only timeout_secs is set.
        err_at(
            &format!("{MIN}[network]\ntimeout_secs = 5\n"),
            "network.connect_timeout_secs",
            5,
        );
        err_at(
            &format!("{MIN}[network]\ntimeout_secs = 99999999999999999999\n"),
            "network.timeout_secs",
            5,
        );
    }

    // --- [display] and board profiles ----------------------------------------------------------

    #[test]
    fn display_keys_and_board_profiles() {
        // A built-in board, with a key of the config over it.
        let c = ok(&format!(
            "{MIN}[display]\nboard = \"pi-st7789-240x240\"\nrotation = 180\n"
        ));
        let d = &c.display;
        assert_eq!(d.backend, DisplayBackend::Spi);
        assert_eq!(d.board.as_deref(), Some("pi-st7789-240x240"));
        assert_eq!(d.rotation, Rotation::R180);
        assert_eq!(d.size(), Some(Size::new(240, 240)));
        assert_eq!(d.spi.controller, Some(Controller::St7789));
        assert_eq!(d.spi.dc_pin, Some(25));
        assert!(d.spi.invert_colors);
        // The board's backend can be overridden: preview a TV as a PNG.
        let c = ok(&format!(
            "{MIN}[display]\nboard = \"tv-1080p\"\nbackend = \"png\"\npng = \"/run/screen.png\"\n"
        ));
        assert_eq!(c.display.backend, DisplayBackend::Png);
        assert_eq!(c.display.png, Some(PathBuf::from("/run/screen.png")));
        assert_eq!(c.display.profile().safe_percent, 5);
        // Framebuffer overrides.
        let c = ok(&format!(
            "{MIN}[display]\nbackend = \"framebuffer\"\ndevice = \"/tmp/fb\"\nwidth = 640\nheight = 480\nformat = \"abgr8888\"\nstride = 2600\n"
        ));
        assert_eq!(c.display.format, Some(PixelFormat::ABGR8888));
        assert_eq!(c.display.stride, Some(2600));
        assert_eq!(c.display.device, PathBuf::from("/tmp/fb"));
        // Every built-in board parses on its own.
        for (name, _) in BUILTIN_BOARDS {
            let d = board_display(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(d.size().is_some(), "{name}");
        }
    }

    #[test]
    fn display_errors_name_key_and_line() {
        for (section, key, line) in [
            ("[display]\nrotation = 45\n", "display.rotation", 5),
            ("[display]\nformat = \"rgb332\"\n", "display.format", 5),
            (
                "[display]\ntitle_safe_percent = 30\n",
                "display.title_safe_percent",
                5,
            ),
            ("[display]\nwidth = 0\nheight = 10\n", "display.width", 5),
            ("[display]\nwidth = 100\n", "display.height", 4),
            (
                "[display]\nbackend = \"png\"\nwidth = 10\nheight = 10\n",
                "display.png",
                4,
            ),
            (
                "[display]\nbackend = \"png\"\npng = \"/x.png\"\n",
                "display.width",
                4,
            ),
            (
                "[display]\nbackend = \"spi\"\nwidth = 10\nheight = 10\n",
                "display.controller",
                4,
            ),
            (
                "[display]\nbackend = \"spi\"\ncontroller = \"st7789\"\ndc_pin = 1\n",
                "display.width",
                4,
            ),
            (
                "[display]\nbackend = \"spi\"\ncontroller = \"ssd1306\"\n",
                "display.dc_pin",
                4,
            ),
            ("[display]\nspi_mode = 4\n", "display.spi_mode", 5),
            (
                "[display]\ncolor_order = \"grb\"\n",
                "display.color_order",
                5,
            ),
            ("[display]\nboard = \"../etc/passwd\"\n", "display.board", 5),
            ("[display]\nboard = \"no-such-board\"\n", "display.board", 5),
            ("[display]\nbogus = 1\n", "display.bogus", 5),
        ] {
            err_at(&format!("{MIN}{section}"), key, line);
        }
    }

    #[test]
    fn boards_next_to_the_config_win_and_their_errors_name_the_board_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boards")).unwrap();
        let cfg = dir.path().join("devauth.toml");
        std::fs::write(
            dir.path().join("boards/tv-1080p.toml"),
            "description = \"mine\"\n[display]\nbackend = \"framebuffer\"\nwidth = 1920\nheight = 1080\ntitle_safe_percent = 3\n",
        )
        .unwrap();
        let c = Config::parse(&format!("{MIN}[display]\nboard = \"tv-1080p\"\n"), &cfg).unwrap();
        assert_eq!(c.display.title_safe_percent, 3);
        std::fs::write(
            dir.path().join("boards/bad.toml"),
            "[display]\nbackend = \"framebuffer\"\n\nrotation = 7\n",
        )
        .unwrap();
        let e = Config::parse(&format!("{MIN}[display]\nboard = \"bad\"\n"), &cfg).unwrap_err();
        assert_eq!(e.key(), Some("display.rotation"));
        assert_eq!(e.line(), Some(4));
        assert!(e.to_string().contains("boards/bad.toml:4"), "{e}");
        std::fs::write(
            dir.path().join("boards/loop.toml"),
            "[display]\nboard = \"x\"\n",
        )
        .unwrap();
        let e = Config::parse(&format!("{MIN}[display]\nboard = \"loop\"\n"), &cfg).unwrap_err();
        assert!(e.to_string().contains("cannot name another board"), "{e}");
    }

    // --- files and paths ----------------------------------------------------------------------

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let e = Config::load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("config {}: ", missing.display()))
        );

        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(70_000)).unwrap();
        let e = Config::load(&big).unwrap_err();
        assert!(
            matches!(e, ConfigError::TooLarge { size: 70_000, .. }),
            "{e}"
        );

        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, b"[provider]\n\n\xff\xfe\n").unwrap();
        let e = Config::load(&bin).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e}");
    }

    #[test]
    fn config_path_precedence() {
        let cli = Path::new("/tmp/cli.toml");
        assert_eq!(
            config_path_from(Some(cli), Some("/tmp/env.toml".into())),
            cli
        );
        assert_eq!(
            config_path_from(None, Some("/tmp/env.toml".into())),
            Path::new("/tmp/env.toml")
        );
        assert_eq!(
            config_path_from(None, Some(OsString::new())),
            Path::new(DEFAULT_CONFIG_PATH)
        );
        assert_eq!(config_path_from(None, None), Path::new(DEFAULT_CONFIG_PATH));
    }

    #[test]
    fn redaction_helper() {
        assert_eq!(redact_userinfo("https://a:b@h/p@q"), "https://***@h/p@q");
        assert_eq!(redact_userinfo("https://h/p"), "https://h/p");
        assert_eq!(redact_userinfo("no scheme"), "no scheme");
    }

    // --- the example configs ------------------------------------------------------------------

    #[test]
    fn example_configs_parse() {
        let examples = [
            ("google.toml", include_str!("../../config/google.toml")),
            (
                "microsoft.toml",
                include_str!("../../config/microsoft.toml"),
            ),
            ("github.toml", include_str!("../../config/github.toml")),
            (
                "generic-oidc.toml",
                include_str!("../../config/generic-oidc.toml"),
            ),
            (
                "loopback-demo.toml",
                include_str!("../../config/loopback-demo.toml"),
            ),
        ];
        for (name, text) in examples {
            let c = Config::parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            match name {
                "google.toml" => assert_eq!(c.provider.preset, Preset::Google),
                "microsoft.toml" => assert_eq!(c.provider.preset, Preset::Microsoft),
                "github.toml" => assert_eq!(c.provider.preset, Preset::Github),
                "generic-oidc.toml" => {
                    assert!(matches!(
                        c.provider.endpoints,
                        EndpointSource::Discover { .. }
                    ));
                    assert!(c.provider.extra_params.iter().any(|(k, _)| k == "audience"));
                }
                _ => {
                    assert!(c.provider.allow_http_loopback);
                    let (d, t) = explicit(&c);
                    assert!(d.starts_with("http://127.0.0.1:"), "{d}");
                    assert!(t.starts_with("http://127.0.0.1:"), "{t}");
                }
            }
        }
    }
}
