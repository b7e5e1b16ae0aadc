//! `[provider] grant = "authorization_code"`: the browser sign-in's keys (authorization
//! endpoint, loopback redirect, browser command, login timeout, page texts), Google's
//! `client_json_file` (read once, at load: the client id and secret, and its endpoints kept
//! apart as [`ClientFileEndpoints`], checked against discovery beside `issuer`), and the
//! refusal of the implicit grant. Which grant a key goes with is `grant_keys.rs`'s.

use super::*;
use crate::oauth::client_json::ClientJson;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Default `login_timeout_secs`: five minutes, as the issue and InstalledAppFlow users expect.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: u64 = 300;
/// Default `browser_command` (used when it is on `PATH`).
pub const DEFAULT_BROWSER_COMMAND: &str = "xdg-open";
const MAX_PAGE_TEXT_LEN: usize = 500;
/// Google's client files are under 1 KiB.
const MAX_CLIENT_JSON_FILE_BYTES: u64 = 64 * 1024;

/// The resolved browser sign-in settings (RFC 6749 §4.1 with PKCE, RFC 8252 loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrantConfig {
    /// RFC 6749 §3.1 authorization endpoint; `None`: the one the issuer's discovery document
    /// names (generic preset with `issuer`).
    pub authorization_endpoint: Option<String>,
    /// 127.0.0.1 (default) or ::1.
    pub redirect_host: IpAddr,
    /// 0 = ephemeral (default).
    pub redirect_port: u16,
    /// Program run with the URL as its one argument; `None`: the default (`xdg-open` when
    /// on PATH, else nothing is launched and the URL is only shown).
    pub browser_command: Option<String>,
    pub login_timeout: Duration,
    pub success_text: Option<String>,
    pub failure_text: Option<String>,
    /// Parameters the preset adds to the authorization URL (Google's offline access).
    pub authorization_extras: Vec<(String, String)>,
    /// Refuse an answer without a refresh token (Google, Microsoft).
    pub requires_refresh_token: bool,
}

/// The endpoints a `client_json_file` names. They do not count as written by hand: an endpoint
/// key written by hand wins over them, a preset's endpoints give way to them, and with
/// `issuer` discovery's endpoints are used and these are only checked against them
/// ([`ClientFileEndpoints::check_discovered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFileEndpoints {
    /// The file, resolved.
    pub file: PathBuf,
    /// The `client_json_file` line of the config.
    pub line: Option<usize>,
    /// `installed` or `web`: the file's section, for messages (`installed.token_uri`).
    pub section: &'static str,
    pub auth_uri: String,
    pub token_uri: String,
}

impl ClientFileEndpoints {
    /// With `issuer`: the file's `token_uri` and `auth_uri` must be on the server that the
    /// issuer's discovery document names for `token_endpoint` and `authorization_endpoint`
    /// (same scheme, host and port); the discovered endpoints are then the ones used. Google's
    /// files name `…/o/oauth2/auth` where discovery names `…/o/oauth2/v2/auth`: both work, so
    /// the path may differ. Another server means the file belongs to another provider (or the
    /// issuer is wrong): the error names the config, the file and the field.
    pub fn check_discovered(
        &self,
        config: &Path,
        issuer: &str,
        token_endpoint: &str,
        authorization_endpoint: Option<&str>,
    ) -> Result<(), ConfigError> {
        let pairs = [
            (
                "token_uri",
                &self.token_uri,
                "token_endpoint",
                Some(token_endpoint),
            ),
            (
                "auth_uri",
                &self.auth_uri,
                "authorization_endpoint",
                authorization_endpoint,
            ),
        ];
        for (field, ours, name, discovered) in pairs {
            let Some(discovered) = discovered else {
                continue;
            };
            if same_server(ours, discovered) {
                continue;
            }
            return Err(ConfigError::Invalid {
                path: config.to_path_buf(),
                key: "provider.client_json_file".to_string(),
                line: self.line,
                message: format!(
                    "{}: `{}.{field}` is {:?}, but the discovery document of issuer {} names \
                     {name} {:?}, on another server; this client file is not for that issuer \
                     (download the right one, or fix issuer)",
                    self.file.display(),
                    self.section,
                    redact_userinfo(ours),
                    redact_userinfo(issuer),
                    redact_userinfo(discovered),
                ),
            });
        }
        Ok(())
    }
}

/// What `grant` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrantChoice {
    DeviceCode,
    JwtBearer,
    AuthorizationCode,
}

impl Cx<'_> {
    /// `provider.grant`, refusing the implicit grant with the reason.
    pub(super) fn grant_choice(&self, p: &RawProvider) -> Result<GrantChoice, ConfigError> {
        let Some(v) = &p.grant else {
            return Ok(GrantChoice::DeviceCode);
        };
        if matches!(v.get_ref().as_str(), "implicit" | "token") {
            return Err(self.at(
                "provider.grant",
                v,
                format!(
                    "{:?} is refused: the implicit grant returns tokens in the URL, where \
                     browsers, logs and other apps can read them, and OAuth 2.1 / RFC 9700 \
                     §2.1.2 removed it; use grant = \"authorization_code\" (with PKCE) instead",
                    v.get_ref()
                ),
            ));
        }
        self.choice(
            "provider.grant",
            v,
            &[
                ("device_code", GrantChoice::DeviceCode),
                ("jwt-bearer", GrantChoice::JwtBearer),
                ("authorization_code", GrantChoice::AuthorizationCode),
            ],
        )
    }

    /// Reads `client_json_file`: fills `client_id` and `client_secret` (also writing those by
    /// hand is refused, so there is never a doubt which is used) and returns the file's
    /// endpoints, which stay apart from the endpoint keys: they never count as written by hand
    /// ([`ClientFileEndpoints`]).
    pub(super) fn apply_client_json(
        &self,
        p: &mut RawProvider,
        allow_http: bool,
    ) -> Result<Option<ClientFileEndpoints>, ConfigError> {
        const KEY: &str = "provider.client_json_file";
        let Some(v) = p.client_json_file.take() else {
            return Ok(None);
        };
        for (key, present) in [
            ("client_id", p.client_id.is_some()),
            ("client_secret", p.client_secret.is_some()),
            ("client_secret_file", p.client_secret_file.is_some()),
        ] {
            if present {
                return Err(self.at(
                    KEY,
                    &v,
                    format!("{key} is also set; the client file already holds it, keep one"),
                ));
            }
        }
        let path = self.resolve(&self.path(KEY, &v, false)?);
        let fail = |why: String| self.at(KEY, &v, format!("{}: {why}", path.display()));
        let bytes = match read_capped(&path, MAX_CLIENT_JSON_FILE_BYTES) {
            Ok(Capped::Fits(bytes)) => bytes,
            Ok(Capped::TooLarge(_)) => {
                return Err(fail(format!(
                    "larger than {MAX_CLIENT_JSON_FILE_BYTES} bytes; not an OAuth client file"
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        let client = ClientJson::parse(&bytes, &path).map_err(|e| fail(e.detail))?;
        let section = client.kind.name();
        for (field, url) in [
            ("auth_uri", &client.auth_uri),
            ("token_uri", &client.token_uri),
        ] {
            check_url(url, allow_http).map_err(|why| {
                fail(format!(
                    "`{section}.{field}` {:?}: {why}",
                    redact_userinfo(url)
                ))
            })?;
        }
        // The filled values point at the client_json_file line, so their errors name it.
        let span = v.span();
        let spanned = |s: String| Spanned::new(span.clone(), s);
        p.client_id = Some(spanned(client.client_id));
        p.client_secret = Some(spanned(client.client_secret.expose().to_string()));
        Ok(Some(ClientFileEndpoints {
            file: path,
            line: Some(self.line(span.start)),
            section,
            auth_uri: client.auth_uri,
            token_uri: client.token_uri,
        }))
    }

    /// The browser sign-in's settings, values checked. `needed`: the config's grant is the code
    /// grant, so its authorization endpoint must be known; otherwise the keys are only checked
    /// for a later `pair --grant authorization_code` (grant_keys.rs).
    /// `client_file`: the `client_json_file`'s endpoints; its `auth_uri` is used unless the
    /// endpoint is written by hand or discovered (`issuer`).
    pub(super) fn code_grant(
        &self,
        section: Range<usize>,
        p: &RawProvider,
        (preset, tenancy): (Preset, &MicrosoftTenancy),
        client_file: Option<&ClientFileEndpoints>,
        allow_http: bool,
        needed: bool,
    ) -> Result<CodeGrantConfig, ConfigError> {
        let from_file = client_file
            .filter(|_| p.issuer.is_none())
            .map(|f| f.auth_uri.clone());
        let authorization_endpoint = match &p.authorization_endpoint {
            Some(v) => Some(self.url("provider.authorization_endpoint", v, allow_http)?),
            None => match from_file.or_else(|| preset.authorization_endpoint(tenancy)) {
                Some(fixed) => Some(fixed),
                // Discovery names it (`authorization_endpoint` is REQUIRED there, OIDC §3).
                None if p.issuer.is_some() || !needed => None,
                None => {
                    return Err(self.invalid(
                        "provider.authorization_endpoint",
                        Some(section.clone()),
                        "missing: grant = \"authorization_code\" with the generic preset needs \
                         issuer (OIDC discovery) or authorization_endpoint (or client_json_file)",
                    ));
                }
            },
        };
        let redirect_host = match &p.redirect_host {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => match v.get_ref().as_str() {
                "127.0.0.1" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                "::1" | "[::1]" => IpAddr::V6(Ipv6Addr::LOCALHOST),
                other => {
                    return Err(self.at(
                        "provider.redirect_host",
                        v,
                        format!(
                            "{other:?}: must be \"127.0.0.1\" or \"::1\" (RFC 8252 §8.3: a \
                             loopback address, not a name such as localhost that may resolve \
                             elsewhere)"
                        ),
                    ));
                }
            },
        };
        let redirect_port = match &p.redirect_port {
            None => 0,
            Some(v) => u16::try_from(self.int("provider.redirect_port", v, 0, 65535)?)
                .map_err(|_| self.at("provider.redirect_port", v, "out of range"))?,
        };
        let browser_command = match &p.browser_command {
            None => None,
            Some(v) => {
                let cmd = v.get_ref();
                if cmd.trim().is_empty()
                    || cmd.len() > MAX_HOOK_LEN
                    || cmd.contains(char::is_control)
                {
                    return Err(self.at(
                        "provider.browser_command",
                        v,
                        "must be a program path or name without control characters",
                    ));
                }
                Some(cmd.clone())
            }
        };
        let login_timeout = match &p.login_timeout_secs {
            None => Duration::from_secs(DEFAULT_LOGIN_TIMEOUT_SECS),
            Some(v) => Duration::from_secs(self.int("provider.login_timeout_secs", v, 1, 3600)?),
        };
        let page_text = |key: &str, v: &Option<Str>| -> Result<Option<String>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            let s = v.get_ref();
            if s.len() > MAX_PAGE_TEXT_LEN || s.contains(char::is_control) {
                return Err(self.at(
                    key,
                    v,
                    format!("at most {MAX_PAGE_TEXT_LEN} bytes, without control characters"),
                ));
            }
            Ok(Some(s.clone()))
        };
        Ok(CodeGrantConfig {
            authorization_endpoint,
            redirect_host,
            redirect_port,
            browser_command,
            login_timeout,
            success_text: page_text("provider.success_text", &p.success_text)?,
            failure_text: page_text("provider.failure_text", &p.failure_text)?,
            authorization_extras: preset
                .authorization_extras()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            requires_refresh_token: preset.code_grant_requires_refresh_token(),
        })
    }
}
