//! `[storage]`, `[network]` and `[agent]`: their resolved types, defaults and checks.

use super::*;
use crate::net::proxy::{ProxyConfig, check_no_proxy_entry, parse_proxy_url};
use crate::store::{SealChoice, Sealing, TokenStore};

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The token store file (refresh token included): absolute.
    pub path: PathBuf,
    /// What seals the store's data key (`seal`, `require_sealed`, `tpm_device`,
    /// `trusted_key_options`).
    pub sealing: Sealing,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from(DEFAULT_STORAGE_PATH),
            sealing: Sealing::auto(),
        }
    }
}

impl StorageConfig {
    /// The token store these settings describe.
    pub fn token_store(&self) -> TokenStore {
        TokenStore::with_sealing(&self.path, self.sealing.clone())
    }
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// TCP + TLS connect bound.
    pub connect_timeout: Duration,
    /// Whole-request bound (connect, send, receive).
    pub timeout: Duration,
    /// Largest response body read.
    pub max_body_bytes: usize,
    /// How long `devauth pair` keeps retrying an unreachable provider (`None`: for ever).
    pub pair_timeout: Option<Duration>,
    /// `proxy` and `no_proxy`: the environment's proxy, none, or the configured one.
    pub proxy: ProxyConfig,
}

/// Default `[network] pair_timeout_secs`: a person at a shell learns within two minutes that
/// the provider cannot be reached; a Wi-Fi reconnect or a DHCP lease fits in it.
pub const DEFAULT_PAIR_TIMEOUT_SECS: u64 = 120;

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 65536,
            proxy: ProxyConfig::Environment,
            pair_timeout: Some(Duration::from_secs(DEFAULT_PAIR_TIMEOUT_SECS)),
        }
    }
}

impl NetworkConfig {
    /// `pair --timeout SECS` over `pair_timeout_secs`; 0 means never give up.
    pub fn pair_timeout_with(&self, cli: Option<u64>) -> Option<Duration> {
        match cli {
            Some(0) => None,
            Some(s) => Some(Duration::from_secs(s)),
            None => self.pair_timeout,
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
    /// The token service: its socket and who may have which tokens.
    pub socket: SocketConfig,
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
            socket: SocketConfig::default(),
        }
    }
}

impl Cx<'_> {
    pub(super) fn storage(
        &self,
        raw: Option<Spanned<RawStorage>>,
    ) -> Result<StorageConfig, ConfigError> {
        let mut out = StorageConfig::default();
        let Some(raw) = raw else { return Ok(out) };
        let raw = raw.get_ref();
        if let Some(v) = &raw.path {
            out.path = self.path("storage.path", v, true)?;
        }
        let sealing = &mut out.sealing;
        if let Some(v) = &raw.seal {
            sealing.choice = self.choice(
                "storage.seal",
                v,
                &[
                    ("auto", SealChoice::Auto),
                    ("tpm2", SealChoice::Tpm2),
                    ("kernel", SealChoice::Kernel),
                    ("none", SealChoice::None),
                ],
            )?;
        }
        if let Some(v) = &raw.tpm_device {
            sealing.tpm_device = self.path("storage.tpm_device", v, true)?;
        }
        if let Some(v) = &raw.trusted_key_options {
            let o = v.get_ref();
            // What the kernel's trusted-key options are made of (`keyhandle=0x81000001
            // hash=sha256 policydigest=…`): nothing that could end the command early.
            let ok = o.len() <= crate::keyring::MAX_OPTIONS
                && o.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'=' | b'_' | b'-' | b'.' | b',' | b':' | b' ')
                });
            if !ok {
                return Err(self.at(
                    "storage.trusted_key_options",
                    v,
                    format!(
                        "{o:?}: options are up to {} characters of letters, digits, spaces and \
                         = _ - . , :",
                        crate::keyring::MAX_OPTIONS
                    ),
                ));
            }
            sealing.trusted_key_options = o.trim().to_string();
        }
        if let Some(v) = &raw.require_sealed {
            sealing.require_sealed = *v.get_ref();
            if sealing.require_sealed && sealing.choice == SealChoice::None {
                return Err(self.invalid(
                    "storage.require_sealed",
                    Some(v.span()),
                    "true with seal = \"none\": no token could ever be stored (use seal = \
                     \"auto\", \"tpm2\" or \"kernel\")",
                ));
            }
        }
        Ok(out)
    }

    pub(super) fn network(
        &self,
        raw: Option<Spanned<RawNetwork>>,
    ) -> Result<NetworkConfig, ConfigError> {
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
        if let Some(v) = &raw.pair_timeout_secs {
            let secs = self.int("network.pair_timeout_secs", v, 0, 86_400)?;
            out.pair_timeout = (secs > 0).then(|| Duration::from_secs(secs));
        }
        out.proxy = self.proxy(raw)?;
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

    /// `network.proxy` and `network.no_proxy`. The URL may hold a password: errors name the
    /// key and line, never the value.
    fn proxy(&self, raw: &RawNetwork) -> Result<ProxyConfig, ConfigError> {
        let no_proxy = match &raw.no_proxy {
            None => Vec::new(),
            Some(list) => {
                let mut out = Vec::new();
                for entry in list.get_ref() {
                    check_no_proxy_entry(entry.get_ref()).map_err(|why| {
                        self.at(
                            "network.no_proxy",
                            entry,
                            format!("{:?} {why}", entry.get_ref()),
                        )
                    })?;
                    out.push(entry.get_ref().trim().to_string());
                }
                out
            }
        };
        let Some(value) = &raw.proxy else {
            if let Some(list) = &raw.no_proxy {
                return Err(self.at(
                    "network.no_proxy",
                    list,
                    "applies to a configured proxy only: set network.proxy too (without it \
                     the environment's NO_PROXY is used)",
                ));
            }
            return Ok(ProxyConfig::Environment);
        };
        let url = value.get_ref().trim();
        if url.eq_ignore_ascii_case("none") {
            if raw.no_proxy.is_some() {
                return Err(self.at(
                    "network.no_proxy",
                    value,
                    "has no use with proxy = \"none\"",
                ));
            }
            return Ok(ProxyConfig::Direct);
        }
        parse_proxy_url(url, "network.proxy").map_err(|e| {
            self.at(
                "network.proxy",
                value,
                format!("\"none\" or a proxy URL expected; {}", e.reason),
            )
        })?;
        Ok(ProxyConfig::Url {
            url: Secret::new(url),
            no_proxy,
        })
    }

    pub(super) fn agent(
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
        out.socket = self.socket(&[
            ("[storage] path", &storage.path),
            ("agent.token_file", &out.token_file),
        ])?;
        Ok(out)
    }

    // --- toml's own errors ----------------------------------------------------------------------
}

/// `[agent] token_file_group` against this system's groups, for `devauth run` at start and on
/// SIGHUP (the only command that writes the token file; the others never look the group up, so
/// a config made on a build host still renders and checks). A group that does not exist is a
/// config error naming the file, the line and the key, instead of a token file that is never
/// written. `exists` is the lookup (`store::tokenfile::group_id`).
pub fn check_token_file_group(
    config: &Config,
    exists: impl Fn(&str) -> Result<bool, String>,
) -> Result<(), ConfigError> {
    let Some(group) = &config.agent.token_file_group else {
        return Ok(());
    };
    let message = match exists(group) {
        Ok(true) => return Ok(()),
        Ok(false) => format!(
            "{group:?}: no such group on this system (the access-token file is made readable \
             by it; create the group or remove the key)"
        ),
        Err(e) => format!("{group:?}: the group could not be looked up: {e}"),
    };
    // The line, from the file as it is now (the resolved config keeps values, not places).
    let line = read_capped(&config.source, MAX_CONFIG_BYTES)
        .ok()
        .and_then(|c| match c {
            Capped::Fits(bytes) => String::from_utf8(bytes).ok(),
            Capped::TooLarge(_) => None,
        })
        .and_then(|text| {
            let raw: RawFile = toml::from_str(&text).ok()?;
            let span = raw.agent?.into_inner().token_file_group?.span();
            Some(line_of(text.as_bytes(), span.start))
        });
    Err(ConfigError::Invalid {
        path: config.source.clone(),
        key: "agent.token_file_group".to_string(),
        line,
        message,
    })
}
