//! `[provider] grant = "jwt-bearer"`: the service-account keys, read and checked at load
//! (the key must parse as an RSA key) into the JWT signer's [`JwtBearerConfig`].

use super::*;

impl Cx<'_> {
    /// `[provider]` with `grant = "jwt-bearer"` (RFC 7523 service account).
    pub(super) fn jwt_provider(
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
        // A person's sign-in keys were refused by `refuse_other_grant_keys` (grant_keys.rs).

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
        if client_auth == ClientAuth::PrivateKeyJwt {
            let span = p.client_auth.as_ref().map(|v| v.span());
            return Err(self.invalid(
                "provider.client_auth",
                span,
                "\"private_key_jwt\" is not used with grant = \"jwt-bearer\" (the assertion \
                 itself is signed with the service account's key)",
            ));
        }

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
            narrowing: self.narrowing(p)?,
            dpop: DpopMode::Off,
            client_key: None,
            client_file: None,
        })
    }

    /// Reads a key file (bounded), relative to the config's directory.
    pub(super) fn key_file(&self, key: &str, v: &Str) -> Result<(PathBuf, Vec<u8>), ConfigError> {
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
}
