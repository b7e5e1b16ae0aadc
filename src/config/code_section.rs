//! `[provider] grant = "authorization_code"`: the browser sign-in's keys (authorization
//! endpoint, loopback redirect, browser command, login timeout, page texts), Google's
//! `client_json_file` (read once, at load, into the provider keys it stands for), and the
//! refusal of the implicit grant.

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

    /// Reads `client_json_file` and fills the keys it stands for. A key also written by hand
    /// is refused, so there is never a doubt which value is used.
    /// `auth_uri` is used only by the code grant (`code_grant`).
    pub(super) fn apply_client_json(
        &self,
        p: &mut RawProvider,
        code_grant: bool,
    ) -> Result<(), ConfigError> {
        const KEY: &str = "provider.client_json_file";
        let Some(v) = p.client_json_file.take() else {
            return Ok(());
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
        // The filled values point at the client_json_file line, so their errors name it.
        let span = v.span();
        let spanned = |s: String| Spanned::new(span.clone(), s);
        p.client_id = Some(spanned(client.client_id));
        p.client_secret = Some(spanned(client.client_secret.expose().to_string()));
        if code_grant && p.authorization_endpoint.is_none() {
            p.authorization_endpoint = Some(spanned(client.auth_uri));
        }
        if p.token_endpoint.is_none() {
            p.token_endpoint = Some(spanned(client.token_uri));
        }
        Ok(())
    }

    /// Refuses the browser keys when the grant is not `authorization_code`.
    pub(super) fn refuse_code_keys(&self, p: &RawProvider, grant: &str) -> Result<(), ConfigError> {
        let text_keys = [
            ("provider.authorization_endpoint", &p.authorization_endpoint),
            ("provider.browser_command", &p.browser_command),
            ("provider.redirect_host", &p.redirect_host),
            ("provider.success_text", &p.success_text),
            ("provider.failure_text", &p.failure_text),
        ];
        let int_keys = [
            ("provider.redirect_port", &p.redirect_port),
            ("provider.login_timeout_secs", &p.login_timeout_secs),
        ];
        let why = format!(
            "only used with grant = \"authorization_code\" (this config has grant = \"{grant}\")"
        );
        for (key, v) in text_keys {
            if let Some(v) = v {
                return Err(self.at(key, v, why));
            }
        }
        for (key, v) in int_keys {
            if let Some(v) = v {
                return Err(self.at(key, v, why));
            }
        }
        Ok(())
    }

    /// The browser sign-in's settings.
    pub(super) fn code_grant(
        &self,
        section: Range<usize>,
        p: &RawProvider,
        preset: Preset,
        tenancy: &MicrosoftTenancy,
        allow_http: bool,
    ) -> Result<CodeGrantConfig, ConfigError> {
        let authorization_endpoint = match &p.authorization_endpoint {
            Some(v) => Some(self.url("provider.authorization_endpoint", v, allow_http)?),
            None => match preset.authorization_endpoint(tenancy) {
                Some(fixed) => Some(fixed),
                // Discovery names it (`authorization_endpoint` is REQUIRED there, OIDC §3).
                None if p.issuer.is_some() => None,
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
