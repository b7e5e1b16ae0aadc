//! `[provider]`: the resolved provider types (endpoints, client identity, grant) and the
//! checks that build them from the raw section, presets applied.

use super::*;

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
    /// How the token service narrows a token to fewer scopes.
    pub narrowing: Narrowing,
    /// Bind the tokens to a device key (RFC 9449).
    pub dpop: DpopMode,
    /// `client_auth = "private_key_jwt"`: the device's client key.
    pub client_key: Option<ClientKeyConfig>,
    /// `client_json_file`'s endpoints; with [`EndpointSource::Discover`] checked against the
    /// discovery document at run time ([`ClientFileEndpoints::check_discovered`]).
    pub client_file: Option<ClientFileEndpoints>,
}

/// `provider.grant`: how devauth obtains tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantConfig {
    /// RFC 8628 device flow once, then refresh tokens (RFC 6749 §6). The default.
    DeviceCode,
    /// RFC 7523 §2.1: an RS256 assertion signed with a service-account key is exchanged for an
    /// access token whenever one is needed. No user, no pairing, no refresh token.
    JwtBearer(JwtBearerConfig),
    /// RFC 6749 §4.1 with PKCE (RFC 7636): a browser sign-in once, then refresh tokens.
    AuthorizationCode(CodeGrantConfig),
}

impl GrantConfig {
    /// The name used in the config file.
    pub fn name(&self) -> &'static str {
        match self {
            GrantConfig::DeviceCode => "device_code",
            GrantConfig::JwtBearer(_) => "jwt-bearer",
            GrantConfig::AuthorizationCode(_) => "authorization_code",
        }
    }

    pub fn code_grant(&self) -> Option<&CodeGrantConfig> {
        match self {
            GrantConfig::AuthorizationCode(c) => Some(c),
            GrantConfig::DeviceCode | GrantConfig::JwtBearer(_) => None,
        }
    }

    pub fn jwt_bearer(&self) -> Option<&JwtBearerConfig> {
        match self {
            GrantConfig::JwtBearer(j) => Some(j),
            GrantConfig::DeviceCode | GrantConfig::AuthorizationCode(_) => None,
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

/// How the client authenticates at the authorization server (RFC 6749 §2.3.1). `Post` and
/// `Basic` only matter when there is a client secret; a public client always sends `client_id`
/// in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form fields (client_secret_post).
    Post,
    /// HTTP Basic with the form-urlencoded id and secret (client_secret_basic).
    Basic,
    /// A JWT signed with the device's own key (RFC 7523 §2.2, OIDC `private_key_jwt`).
    PrivateKeyJwt,
}

impl ClientAuth {
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Post => "post",
            ClientAuth::Basic => "basic",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl Cx<'_> {
    pub(super) fn provider(
        &self,
        raw: Spanned<RawProvider>,
    ) -> Result<ProviderConfig, ConfigError> {
        let section = raw.span();
        let mut p = raw.into_inner();

        let preset = match &p.preset {
            None => Preset::Generic,
            Some(v) => {
                let options: Vec<(&str, Preset)> =
                    Preset::ALL.iter().map(|p| (p.name(), *p)).collect();
                self.choice("provider.preset", v, &options)?
            }
        };
        let allow_http = p.allow_http_loopback.as_ref().is_some_and(|b| *b.get_ref());

        let grant = self.grant_choice(&p)?;
        // The one rule for keys of another grant (grant_keys.rs).
        self.refuse_other_grant_keys(&p, grant)?;
        if grant == GrantChoice::JwtBearer {
            return self.jwt_provider(section, &p, preset, allow_http);
        }
        let code_grant = grant == GrantChoice::AuthorizationCode;
        let client_file = self.apply_client_json(&mut p, allow_http)?;

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

        // The client file's token_uri stands in for token_endpoint unless it is written by hand
        // or discovered; it never counts as written by hand (so never clashes with issuer).
        let file_token = client_file
            .as_ref()
            .filter(|_| issuer.is_none() && token.is_none())
            .map(|f| f.token_uri.clone());
        let token_from_file = file_token.is_some();
        let token = token.or(file_token);
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
                    // The code grant has no device authorization endpoint; the field is
                    // never used with it.
                    (None, None, Some(token)) if code_grant => EndpointSource::Explicit {
                        device_authorization: String::new(),
                        token,
                    },
                    (None, None, Some(_)) => {
                        let why = if token_from_file {
                            "missing: the device flow needs it (client_json_file gives only the \
                             token and authorization endpoints); set it, or issuer for OIDC \
                             discovery, or grant = \"authorization_code\""
                        } else {
                            "missing: token_endpoint is set, so \
                                 device_authorization_endpoint is needed too"
                        };
                        return Err(self.invalid(
                            "provider.device_authorization_endpoint",
                            Some(section),
                            why,
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
        let issuer = match &endpoints {
            EndpointSource::Discover { issuer } => Some(issuer.as_str()),
            EndpointSource::Explicit { .. } => None,
        };
        let client_key = self.client_key(section.clone(), &p, client_auth, issuer, allow_http)?;
        let dpop = self.dpop(&p)?;

        // Checked with either person grant, used with the code grant (grant_keys.rs).
        let browser = self.code_grant(
            section,
            &p,
            (preset, &tenancy),
            client_file.as_ref(),
            allow_http,
            code_grant,
        )?;

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
            grant: if code_grant {
                GrantConfig::AuthorizationCode(browser)
            } else {
                GrantConfig::DeviceCode
            },
            narrowing: self.narrowing(&p)?,
            dpop,
            client_key,
            client_file,
        })
    }

    pub(super) fn client_auth(
        &self,
        p: &RawProvider,
        has_secret: bool,
    ) -> Result<ClientAuth, ConfigError> {
        let Some(v) = &p.client_auth else {
            return Ok(ClientAuth::Post);
        };
        let auth = self.choice(
            "provider.client_auth",
            v,
            &[
                ("post", ClientAuth::Post),
                ("basic", ClientAuth::Basic),
                ("private_key_jwt", ClientAuth::PrivateKeyJwt),
            ],
        )?;
        if auth == ClientAuth::Basic && !has_secret {
            return Err(self.at(
                "provider.client_auth",
                v,
                "\"basic\" needs a client secret (client_secret or client_secret_file)",
            ));
        }
        if auth == ClientAuth::PrivateKeyJwt && has_secret {
            return Err(self.at(
                "provider.client_auth",
                v,
                "\"private_key_jwt\" authenticates with the device's key instead of a secret; \
                 remove the client secret",
            ));
        }
        Ok(auth)
    }

    /// The `scopes` key as written (checked), `None` when absent.
    pub(super) fn scope_list(&self, p: &RawProvider) -> Result<Option<Vec<String>>, ConfigError> {
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

    pub(super) fn ca_file(&self, p: &RawProvider) -> Result<Option<PathBuf>, ConfigError> {
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

    pub(super) fn only_for(
        &self,
        key: &str,
        value: &Str,
        wanted: &str,
        preset: Preset,
    ) -> ConfigError {
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
    pub(super) fn client_secret(&self, p: &RawProvider) -> Result<Option<Secret>, ConfigError> {
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

    pub(super) fn extra_params(
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
}
