//! Which `[provider]` keys belong to which grant, and the one rule for a key written for
//! another grant. Every grant-dependent key check of the config is here; the sections only
//! check values.
//!
//! The rule. A config is one file that every command reads, so it must be judged the same by
//! all of them:
//! - The two ways a *person* signs in, `device_code` and `authorization_code`, are
//!   interchangeable for one config: `pair --grant` picks either, and the stored tokens are
//!   refreshed the same way whichever made them. So the keys of both (the browser keys, the
//!   device-flow keys, `client_json_file`) are accepted, and their values checked, with either
//!   grant; the keys of the grant not in use simply wait for `pair --grant`.
//! - A *service account* (`jwt-bearer`) never signs a person in. Its keys with a person's grant,
//!   and a person's sign-in keys with it, are errors.
//! - `pair --grant` (and `authorize-url` / `exchange`, which are the code grant) only switch
//!   between the person grants, and the file is also checked as written
//!   ([`Config::load_with_grant`]); so whatever the sign-in accepted, `token`, `status`, `run`
//!   and `unpair` accept too, and an error is the same error for every command, before pairing.

use super::*;

/// Keys only a person's sign-in uses (either grant): refused with `jwt-bearer`. The device-key
/// keys are among them: a service account's own key signs its assertions.
fn person_keys(p: &RawProvider) -> [(&'static str, Option<Range<usize>>); 17] {
    let span = |v: &Option<Str>| v.as_ref().map(Spanned::span);
    let int_span = |v: &Option<Spanned<i64>>| v.as_ref().map(Spanned::span);
    [
        ("provider.client_json_file", span(&p.client_json_file)),
        ("provider.issuer", span(&p.issuer)),
        (
            "provider.device_authorization_endpoint",
            span(&p.device_authorization_endpoint),
        ),
        ("provider.tenant", span(&p.tenant)),
        ("provider.authority", span(&p.authority)),
        (
            "provider.extra_params",
            p.extra_params.as_ref().map(Spanned::span),
        ),
        (
            "provider.authorization_endpoint",
            span(&p.authorization_endpoint),
        ),
        ("provider.browser_command", span(&p.browser_command)),
        ("provider.redirect_host", span(&p.redirect_host)),
        ("provider.redirect_port", int_span(&p.redirect_port)),
        (
            "provider.login_timeout_secs",
            int_span(&p.login_timeout_secs),
        ),
        ("provider.success_text", span(&p.success_text)),
        ("provider.failure_text", span(&p.failure_text)),
        ("provider.dpop", span(&p.dpop)),
        ("provider.client_key_file", span(&p.client_key_file)),
        ("provider.client_key_id", span(&p.client_key_id)),
        (
            "provider.client_assertion_audience",
            span(&p.client_assertion_audience),
        ),
    ]
}

/// Keys only a service account uses: refused with a person's grant.
fn service_account_keys(p: &RawProvider) -> [(&'static str, Option<Range<usize>>); 5] {
    let span = |v: &Option<Str>| v.as_ref().map(Spanned::span);
    [
        (
            "provider.service_account_file",
            span(&p.service_account_file),
        ),
        ("provider.private_key_file", span(&p.private_key_file)),
        ("provider.jwt_issuer", span(&p.jwt_issuer)),
        ("provider.jwt_subject", span(&p.jwt_subject)),
        ("provider.jwt_audience", span(&p.jwt_audience)),
    ]
}

impl GrantChoice {
    pub(super) fn name(self) -> &'static str {
        match self {
            GrantChoice::DeviceCode => "device_code",
            GrantChoice::JwtBearer => "jwt-bearer",
            GrantChoice::AuthorizationCode => "authorization_code",
        }
    }

    /// A person signs in (`device_code`, `authorization_code`), as opposed to a service account.
    pub(super) fn is_person(self) -> bool {
        self != GrantChoice::JwtBearer
    }
}

impl Cx<'_> {
    /// `pair --grant G` (and `authorize-url` / `exchange`, which are the code grant): replaces
    /// the file's grant with `G`. Only a person's grant may replace a person's grant. Returns
    /// the file's grant when it differs, for [`Config::load_with_grant`] to check the file as
    /// written as well.
    pub(super) fn replace_grant(
        &self,
        p: &mut Spanned<RawProvider>,
        grant: &str,
    ) -> Result<Option<GrantChoice>, ConfigError> {
        let file_grant = self.grant_choice(p.get_ref())?;
        if !file_grant.is_person() {
            let span = p.get_ref().grant.as_ref().map(Spanned::span);
            return Err(self.invalid(
                "provider.grant",
                span,
                "\"jwt-bearer\" is a service account: no person signs in, so there is nothing \
                 to pair or sign in (`devauth token` gets its tokens itself)",
            ));
        }
        let span = p.span();
        p.get_mut().grant = Some(Spanned::new(span, grant.to_string()));
        let chosen = self.grant_choice(p.get_ref())?;
        if !chosen.is_person() {
            return Err(self.invalid(
                "provider.grant",
                None,
                format!(
                    "--grant {grant:?}: a service account is set in the file (grant = \
                     \"jwt-bearer\"), not chosen per pairing; --grant takes \"device_code\" or \
                     \"authorization_code\""
                ),
            ));
        }
        Ok((chosen != file_grant).then_some(file_grant))
    }

    /// The rule of this module for `grant`: the first key written for the other kind of grant
    /// is an error naming it and its line.
    pub(super) fn refuse_other_grant_keys(
        &self,
        p: &RawProvider,
        grant: GrantChoice,
    ) -> Result<(), ConfigError> {
        if grant.is_person() {
            if let Some((key, span)) = first_set(service_account_keys(p)) {
                return Err(self.invalid(
                    key,
                    Some(span),
                    format!(
                        "only used with grant = \"jwt-bearer\" (a service account); this config \
                         has grant = \"{}\", a person's sign-in",
                        grant.name()
                    ),
                ));
            }
            return Ok(());
        }
        if let Some((key, span)) = first_set(person_keys(p)) {
            let hint = match key {
                "provider.client_json_file" => {
                    " (an OAuth client file is for a person's sign-in; a service account uses \
                     service_account_file)"
                }
                "provider.dpop"
                | "provider.client_key_file"
                | "provider.client_key_id"
                | "provider.client_assertion_audience" => {
                    " (the service account's key signs its assertions)"
                }
                _ => "",
            };
            return Err(self.invalid(
                key,
                Some(span),
                format!(
                    "only used when a person signs in (grant = \"device_code\" or \
                     \"authorization_code\"); this config has grant = \"jwt-bearer\", a service \
                     account{hint}"
                ),
            ));
        }
        Ok(())
    }
}

fn first_set(
    keys: impl IntoIterator<Item = (&'static str, Option<Range<usize>>)>,
) -> Option<(&'static str, Range<usize>)> {
    keys.into_iter()
        .find_map(|(key, span)| span.map(|span| (key, span)))
}

/// An error of the file as written, while `pair --grant` chose another grant: says why the
/// file's own grant matters.
pub(super) fn as_written(e: ConfigError, file_grant: GrantChoice) -> ConfigError {
    e.map_invalid(|_, message| {
        *message = format!(
            "{message} (checked for the file's grant = \"{}\", which `token`, `status`, \
             `run` and `unpair` use; --grant only chooses how to sign in)",
            file_grant.name()
        );
    })
}
