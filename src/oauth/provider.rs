//! Provider presets as data: each supported authorization server's endpoints, default scopes,
//! configuration rules and a one-paragraph setup hint.
//!
//! This module owns *what is known about a provider* before any network traffic. It does not
//! read the config file (that is `config/`, which applies these presets and the user's
//! overrides), does not perform OIDC discovery (done at run time with the issuer kept in
//! `config::EndpointSource::Discover`) and does not handle a provider's wire quirks (Google's
//! `verification_url`, GitHub's form-encoded answers: `net/wire.rs`; errors with odd HTTP statuses:
//! `oauth/flow.rs`). The quirks are listed in `/work/shared/notes/providers.md`.

use std::fmt;

/// Microsoft's default (public cloud) authority. National clouds use another one, e.g.
/// `https://login.microsoftonline.us` (US Government) or `https://login.chinacloudapi.cn`.
pub const MICROSOFT_DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Microsoft's default tenant: work/school and personal accounts alike.
pub const MICROSOFT_DEFAULT_TENANT: &str = "common";

/// The scope Microsoft needs before it issues a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A supported provider family. `Generic` covers any RFC 8628 server (Keycloak, Auth0, Okta,
/// Authentik, ...) found through OIDC discovery or configured with explicit endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Google, with an OAuth client of type "TVs and Limited Input devices".
    Google,
    /// Microsoft Entra ID (v2.0 endpoints), any tenant, any national cloud.
    Microsoft,
    /// GitHub OAuth apps and GitHub Apps with "Enable Device Flow" ticked.
    Github,
    /// Any other server: OIDC discovery from `issuer`, or explicit endpoints.
    Generic,
}

/// Where a preset's own endpoints are. Every value is an absolute https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetEndpoints {
    /// RFC 8628 §3.1 device authorization endpoint.
    pub device_authorization: String,
    /// RFC 6749 §3.2 token endpoint (device-code polling and refresh).
    pub token: String,
    /// RFC 7009 revocation endpoint, when the provider has one a device may call.
    pub revocation: Option<String>,
    /// OIDC userinfo (or equivalent) endpoint, used to name the paired account.
    pub userinfo: Option<String>,
}

/// Microsoft's two URL parameters: the authority (cloud) and the tenant. Validated by
/// `config/` (authority with [`crate::config::check_url`], tenant with [`check_tenant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftTenancy {
    /// Scheme and host (optionally a path) without a trailing slash.
    pub authority: String,
    /// `common`, `organizations`, `consumers`, a directory (tenant) GUID or a verified domain.
    pub tenant: String,
}

impl Default for MicrosoftTenancy {
    fn default() -> Self {
        MicrosoftTenancy {
            authority: MICROSOFT_DEFAULT_AUTHORITY.to_string(),
            tenant: MICROSOFT_DEFAULT_TENANT.to_string(),
        }
    }
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::Google,
        Preset::Microsoft,
        Preset::Github,
        Preset::Generic,
    ];

    /// The name used in the config file (`preset = "..."`) and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::Microsoft => "microsoft",
            Preset::Github => "github",
            Preset::Generic => "generic",
        }
    }

    /// The preset called `name` (exact, lowercase).
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The preset's fixed endpoints, or `None` for `Generic` (which has none: discovery or
    /// explicit endpoints). `microsoft` is only used by the Microsoft preset.
    pub fn endpoints(self, microsoft: &MicrosoftTenancy) -> Option<PresetEndpoints> {
        match self {
            Preset::Google => Some(PresetEndpoints {
                // Configured explicitly rather than discovered: Google's discovery document has
                // not always advertised device_authorization_endpoint.
                device_authorization: "https://oauth2.googleapis.com/device/code".to_string(),
                token: "https://oauth2.googleapis.com/token".to_string(),
                revocation: Some("https://oauth2.googleapis.com/revoke".to_string()),
                userinfo: Some("https://openidconnect.googleapis.com/v1/userinfo".to_string()),
            }),
            Preset::Microsoft => {
                // The tenant must be the same on both calls, so both come from one template.
                let base = microsoft_base(microsoft);
                Some(PresetEndpoints {
                    device_authorization: format!("{base}/devicecode"),
                    token: format!("{base}/token"),
                    // Entra ID has no RFC 7009 endpoint; grants are revoked by the user (My
                    // Account) or an admin. Unpairing can only delete the local tokens.
                    revocation: None,
                    userinfo: Some("https://graph.microsoft.com/oidc/userinfo".to_string()),
                })
            }
            Preset::Github => Some(PresetEndpoints {
                device_authorization: "https://github.com/login/device/code".to_string(),
                token: "https://github.com/login/oauth/access_token".to_string(),
                // GitHub has no RFC 7009 endpoint: revoking a token goes through the REST API
                // (DELETE /applications/{client_id}/token) authenticated with the client
                // secret, which a device must not hold. Unpairing deletes locally and says so.
                revocation: None,
                userinfo: Some("https://api.github.com/user".to_string()),
            }),
            Preset::Generic => None,
        }
    }

    /// Scopes requested when the config has no `scopes` key.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Preset::Google => &["openid", "email", "profile"],
            Preset::Microsoft => &["openid", "profile", OFFLINE_ACCESS],
            // GitHub: no scope means read-only access to public information, which is enough
            // to name the account.
            Preset::Github => &[],
            Preset::Generic => &["openid"],
        }
    }

    /// Scopes always added (after the configured ones) when missing.
    ///
    /// Microsoft issues a refresh token only when `offline_access` is requested; without one
    /// the device would have to be paired again every hour. MSAL adds it the same way.
    pub fn required_scopes(self) -> &'static [&'static str] {
        match self {
            Preset::Microsoft => &[OFFLINE_ACCESS],
            Preset::Google | Preset::Github | Preset::Generic => &[],
        }
    }

    /// The scopes to request: the configured ones (or the defaults when `None`), deduplicated
    /// in order, plus [`Preset::required_scopes`].
    pub fn resolve_scopes(self, configured: Option<&[String]>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let base: Vec<String> = match configured {
            Some(list) => list.to_vec(),
            None => self
                .default_scopes()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let required = self.required_scopes().iter().map(|s| s.to_string());
        for scope in base.into_iter().chain(required) {
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        out
    }

    /// Whether the provider refuses the device flow without a client secret. Google does:
    /// its "TVs and Limited Input devices" clients get a secret and the token endpoint
    /// requires it even though such a client cannot keep it secret.
    pub fn requires_client_secret(self) -> bool {
        matches!(self, Preset::Google)
    }

    /// Why [`Preset::requires_client_secret`] holds, for the error message.
    pub fn client_secret_reason(self) -> Option<&'static str> {
        match self {
            Preset::Google => Some(
                "google requires the client secret of an OAuth client of type \
                 \"TVs and Limited Input devices\" (set client_secret or client_secret_file)",
            ),
            Preset::Microsoft | Preset::Github | Preset::Generic => None,
        }
    }

    /// A short human hint on how to register the client with this provider.
    pub fn setup_hint(self) -> &'static str {
        match self {
            Preset::Google => {
                "Google Cloud console > APIs & Services > Credentials > Create credentials > \
                 OAuth client ID, application type \"TVs and Limited Input devices\". Put its \
                 client ID and client secret in the config. Only a limited set of scopes is \
                 allowed with this client type (openid, email, profile and a few APIs); refresh \
                 tokens of apps left in \"Testing\" status die after about 7 days."
            }
            Preset::Microsoft => {
                "Microsoft Entra admin center > App registrations > New registration. Under \
                 Authentication, set \"Allow public client flows\" to Yes. Use the Application \
                 (client) ID as client_id and set tenant to your directory ID or domain (or \
                 keep \"common\"). Conditional Access can forbid the device-code flow \
                 (AADSTS53003)."
            }
            Preset::Github => {
                "GitHub > Settings > Developer settings > OAuth Apps (or GitHub Apps) > your \
                 app: tick \"Enable Device Flow\". Use its Client ID; no client secret is \
                 needed. OAuth-app tokens do not expire; GitHub-App user tokens expire after \
                 8 hours and come with a refresh token."
            }
            Preset::Generic => {
                "Register a public (native) client that may use the device-code grant \
                 (urn:ietf:params:oauth:grant-type:device_code) and set issuer to the server's \
                 issuer URL, e.g. Keycloak https://HOST/realms/REALM (enable \"OAuth 2.0 Device \
                 Authorization Grant\" on the client), Okta https://ORG.okta.com/oauth2/default, \
                 Auth0 https://TENANT.auth0.com/ (enable the Device Code grant; set \
                 extra_params.audience to select the API). Add offline_access to scopes to get \
                 a refresh token."
            }
        }
    }
}

/// The code grant's data (RFC 6749 §4.1 with PKCE): where the browser goes, what each provider
/// needs added to the URL, and whether a refresh token must come back.
impl Preset {
    /// The authorization endpoint, or `None` for `Generic` (discovery or explicit).
    pub fn authorization_endpoint(self, microsoft: &MicrosoftTenancy) -> Option<String> {
        match self {
            Preset::Google => Some("https://accounts.google.com/o/oauth2/v2/auth".to_string()),
            Preset::Microsoft => Some(format!("{}/authorize", microsoft_base(microsoft))),
            Preset::Github => Some("https://github.com/login/oauth/authorize".to_string()),
            Preset::Generic => None,
        }
    }

    /// Parameters added to the authorization URL. Google issues a refresh token only with
    /// `access_type=offline`, and on a second sign-in only with `prompt=consent` (without it a
    /// re-consent returns an access token alone, which dies within the hour).
    pub fn authorization_extras(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::Google => &[("access_type", "offline"), ("prompt", "consent")],
            Preset::Microsoft | Preset::Github | Preset::Generic => &[],
        }
    }

    /// Whether a code exchange without a refresh token is refused. Google and Microsoft give
    /// one when asked (offline access, `offline_access`), so its absence means the request or
    /// the client registration is wrong and the grant would die within the hour. GitHub OAuth
    /// apps never give one (their tokens do not expire), as in the device flow; a generic
    /// server may have a policy either way, so its answer is accepted as the device flow does.
    pub fn code_grant_requires_refresh_token(self) -> bool {
        matches!(self, Preset::Google | Preset::Microsoft)
    }

    /// What to change when [`Preset::code_grant_requires_refresh_token`] refused an answer.
    pub fn missing_refresh_token_hint(self) -> &'static str {
        match self {
            Preset::Google => {
                "Google sends a refresh token only with access_type=offline and prompt=consent \
                 (devauth adds both); remove devauth's access under myaccount.google.com > \
                 Security > Third-party access and sign in again"
            }
            Preset::Microsoft => {
                "Microsoft sends a refresh token only for the offline_access scope (devauth adds \
                 it); check that the app registration allows it and sign in again"
            }
            Preset::Github | Preset::Generic => {
                "ask the provider for offline access (often the offline_access scope)"
            }
        }
    }
}

/// `{authority}/{tenant}/oauth2/v2.0`: every Microsoft endpoint of one tenant starts here.
fn microsoft_base(microsoft: &MicrosoftTenancy) -> String {
    format!(
        "{}/{}/oauth2/v2.0",
        microsoft.authority.trim_end_matches('/'),
        microsoft.tenant
    )
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The OIDC discovery document's URL for `issuer` (OpenID Connect Discovery 1.0 §4: the issuer
/// with any trailing `/` removed, then `/.well-known/openid-configuration`).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Checks a Microsoft tenant: `common`, `organizations`, `consumers`, a GUID or a domain name,
/// i.e. 1..=253 ASCII letters, digits, `-` and `.`, not starting or ending with `-` or `.`.
/// The tenant becomes a URL path segment, so nothing else may pass. The error is the reason.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() {
        return Err("is empty".to_string());
    }
    if tenant.len() > 253 {
        return Err("is longer than 253 characters".to_string());
    }
    if !tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(
            "may only contain letters, digits, '-' and '.' (common, organizations, consumers, \
             a tenant GUID or a domain)"
                .to_string(),
        );
    }
    if tenant.starts_with(['-', '.']) || tenant.ends_with(['-', '.']) || tenant.contains("..") {
        return Err("is not a tenant GUID or a domain name".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Preset::from_name("Google"), None);
        assert_eq!(Preset::from_name("okta"), None);
    }

    #[test]
    fn google_endpoints() {
        let e = Preset::Google
            .endpoints(&MicrosoftTenancy::default())
            .unwrap();
        assert_eq!(
            e.device_authorization,
            "https://oauth2.googleapis.com/device/code"
        );
        assert_eq!(e.token, "https://oauth2.googleapis.com/token");
        assert_eq!(
            e.revocation.as_deref(),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert_eq!(
            e.userinfo.as_deref(),
            Some("https://openidconnect.googleapis.com/v1/userinfo")
        );
    }

    #[test]
    fn microsoft_endpoints_substitute_authority_and_tenant() {
        let e = Preset::Microsoft
            .endpoints(&MicrosoftTenancy::default())
            .unwrap();
        assert_eq!(
            e.device_authorization,
            "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"
        );
        assert_eq!(
            e.token,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(e.revocation, None);
        assert_eq!(
            e.userinfo.as_deref(),
            Some("https://graph.microsoft.com/oidc/userinfo")
        );

        let us = MicrosoftTenancy {
            authority: "https://login.microsoftonline.us/".to_string(),
            tenant: "contoso.onmicrosoft.com".to_string(),
        };
        let e = Preset::Microsoft.endpoints(&us).unwrap();
        assert_eq!(
            e.device_authorization,
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
        );
        assert_eq!(
            e.token,
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn github_endpoints_have_no_revocation() {
        let e = Preset::Github
            .endpoints(&MicrosoftTenancy::default())
            .unwrap();
        assert_eq!(
            e.device_authorization,
            "https://github.com/login/device/code"
        );
        assert_eq!(e.token, "https://github.com/login/oauth/access_token");
        assert_eq!(e.revocation, None);
        assert_eq!(e.userinfo.as_deref(), Some("https://api.github.com/user"));
        assert_eq!(
            Preset::Generic.endpoints(&MicrosoftTenancy::default()),
            None
        );
    }

    #[test]
    fn default_and_required_scopes() {
        assert_eq!(
            Preset::Google.resolve_scopes(None),
            ["openid", "email", "profile"]
        );
        assert_eq!(
            Preset::Microsoft.resolve_scopes(None),
            ["openid", "profile", "offline_access"]
        );
        assert!(Preset::Github.resolve_scopes(None).is_empty());
        assert_eq!(Preset::Generic.resolve_scopes(None), ["openid"]);

        let mine = vec!["User.Read".to_string(), "User.Read".to_string()];
        assert_eq!(
            Preset::Microsoft.resolve_scopes(Some(&mine)),
            ["User.Read", "offline_access"]
        );
        assert!(Preset::Generic.resolve_scopes(Some(&[])).is_empty());
    }

    #[test]
    fn only_google_requires_a_secret() {
        for p in Preset::ALL {
            assert_eq!(p.requires_client_secret(), p == Preset::Google);
            assert_eq!(p.client_secret_reason().is_some(), p == Preset::Google);
            assert!(!p.setup_hint().is_empty());
        }
        assert!(
            Preset::Google
                .client_secret_reason()
                .unwrap()
                .contains("TVs and Limited Input devices")
        );
    }

    #[test]
    fn discovery_url_strips_trailing_slash() {
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://kc.example/realms/dev"),
            "https://kc.example/realms/dev/.well-known/openid-configuration"
        );
    }

    #[test]
    fn tenant_rules() {
        for ok in [
            "common",
            "organizations",
            "consumers",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
        ] {
            assert_eq!(check_tenant(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a b",
            "common?x=1",
            "../x",
            ".contoso.com",
            "contoso-",
            "a..b",
            "tenant%2f",
            "ténant",
        ] {
            assert!(check_tenant(bad).is_err(), "{bad:?}");
        }
        assert!(check_tenant(&"a".repeat(254)).is_err());
    }

    #[test]
    fn code_grant_endpoints_and_extras() {
        let tenancy = MicrosoftTenancy {
            authority: "https://login.microsoftonline.us/".to_string(),
            tenant: "contoso.example".to_string(),
        };
        assert_eq!(
            Preset::Microsoft
                .authorization_endpoint(&tenancy)
                .as_deref(),
            Some("https://login.microsoftonline.us/contoso.example/oauth2/v2.0/authorize")
        );
        assert_eq!(
            Preset::Google
                .authorization_endpoint(&MicrosoftTenancy::default())
                .as_deref(),
            Some("https://accounts.google.com/o/oauth2/v2/auth")
        );
        assert_eq!(
            Preset::Github
                .authorization_endpoint(&MicrosoftTenancy::default())
                .as_deref(),
            Some("https://github.com/login/oauth/authorize")
        );
        assert_eq!(
            Preset::Generic.authorization_endpoint(&MicrosoftTenancy::default()),
            None
        );
        assert_eq!(
            Preset::Google.authorization_extras(),
            &[("access_type", "offline"), ("prompt", "consent")]
        );
        assert!(Preset::Github.authorization_extras().is_empty());
        assert!(Preset::Google.code_grant_requires_refresh_token());
        assert!(Preset::Microsoft.code_grant_requires_refresh_token());
        assert!(!Preset::Github.code_grant_requires_refresh_token());
        assert!(!Preset::Generic.code_grant_requires_refresh_token());
    }
}
