//! Unit tests of `config`.

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
        format!("[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \" {S}\"\n"),
        format!(
            "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\\u0001\"\n"
        ),
        "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret_file = \"bad\"\n"
            .to_string(),
        "[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = 4242424242\n"
            .to_string(),
        format!("[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = [\"{S}\"]\n"),
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
        &format!("[provider]\npreset = \"google\"\nclient_id = \"x\"\nclient_secret = \"{S}\"\n"),
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
    let e = Config::parse(&text.replace("ca.pem", dir.path().to_str().unwrap()), &cfg).unwrap_err();
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
             pair_timeout_secs = 45\n\
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
            max_body_bytes: 1_048_576,
            pair_timeout: Some(Duration::from_secs(45)),
            proxy: crate::net::proxy::ProxyConfig::Environment,
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
            socket: SocketConfig::default(),
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
    assert_eq!(c.display.tty, ConsoleTty::Active);
    // drm: its own default device; width/height pick the mode.
    let c = ok(&format!("{MIN}[display]\nbackend = \"drm\"\n"));
    assert_eq!(c.display.backend, DisplayBackend::Drm);
    assert_eq!(c.display.device, PathBuf::from(DEFAULT_DRM_DEVICE));
    let c = ok(&format!(
        "{MIN}[display]\nbackend = \"drm\"\ndevice = \"/dev/dri/card1\"\nwidth = 1280\nheight = 720\n"
    ));
    assert_eq!(c.display.device, PathBuf::from("/dev/dri/card1"));
    assert_eq!(c.display.size(), Some(Size::new(1280, 720)));
    assert_eq!(
        ok(&format!("{MIN}[display]\nbackend = \"framebuffer\"\n"))
            .display
            .device,
        PathBuf::from(DEFAULT_FB_DEVICE)
    );
    for (value, tty) in [
        ("none", ConsoleTty::Off),
        ("auto", ConsoleTty::Active),
        ("/dev/tty3", ConsoleTty::Path("/dev/tty3".into())),
    ] {
        let c = ok(&format!(
            "{MIN}[display]\nbackend = \"framebuffer\"\ntty = \"{value}\"\n"
        ));
        assert_eq!(c.display.tty, tty, "{value}");
    }
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
        ("[display]\ntty = \"tty1\"\n", "display.tty", 5),
        ("[display]\ntty = 1\n", "display.tty", 5),
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
fn the_google_browser_example_reads_its_client_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let c = Config::load(&dir.join("google-browser.toml")).unwrap();
    assert_eq!(c.provider.preset, Preset::Google);
    assert!(
        c.provider
            .client_id
            .ends_with(".apps.googleusercontent.com")
    );
    let code = c.provider.grant.code_grant().expect("the code grant");
    assert_eq!(
        code.authorization_endpoint.as_deref(),
        Some("https://accounts.google.com/o/oauth2/auth")
    );
}

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
        (
            "browser-sign-in.toml",
            include_str!("../../config/browser-sign-in.toml"),
        ),
    ];
    for (name, text) in examples {
        let c = Config::parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        match name {
            "google.toml" => assert_eq!(c.provider.preset, Preset::Google),
            "microsoft.toml" => assert_eq!(c.provider.preset, Preset::Microsoft),
            "github.toml" => assert_eq!(c.provider.preset, Preset::Github),
            "browser-sign-in.toml" => {
                let code = c.provider.grant.code_grant().expect("the code grant");
                assert_eq!(code.authorization_endpoint, None, "from discovery");
            }
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

#[test]
fn pair_timeout_default_zero_and_override() {
    let c = ok(MIN);
    assert_eq!(c.network.pair_timeout, Some(Duration::from_secs(120)));
    assert_eq!(
        c.network.pair_timeout_with(Some(7)),
        Some(Duration::from_secs(7))
    );
    assert_eq!(c.network.pair_timeout_with(Some(0)), None);
    let never = ok(&format!("{MIN}[network]\npair_timeout_secs = 0\n"));
    assert_eq!(never.network.pair_timeout, None);
    assert_eq!(never.network.pair_timeout_with(None), None);
    assert_eq!(
        never.network.pair_timeout_with(Some(30)),
        Some(Duration::from_secs(30))
    );
    let e = Config::parse(
        &format!("{MIN}[network]\npair_timeout_secs = -1\n"),
        Path::new("/etc/devauth/devauth.toml"),
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("network.pair_timeout_secs"));
}

#[test]
fn display_theme_text_scale_and_device_name() {
    let dir = tempfile::tempdir().unwrap();
    let load = |display: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[provider]\nclient_id = \"x\"\ndevice_authorization_endpoint = \"https://a.example/d\"\ntoken_endpoint = \"https://a.example/t\"\n[display]\n{display}"),
        )
        .unwrap();
        Config::load(&path)
    };
    let c =
        load("theme = \"high-contrast\"\ntext_scale = 2\ndevice_name = \"Küchen-TV\"\n").unwrap();
    assert_eq!(c.display.theme, crate::screen::layout::Theme::HighContrast);
    assert_eq!(c.display.text_percent, 200);
    assert_eq!(c.display.device_name.as_deref(), Some("Küchen-TV"));
    assert_eq!(c.display.profile().text_percent, 200);
    assert_eq!(
        load("text_scale = 1.5\n").unwrap().display.text_percent,
        150
    );
    let d = load("").unwrap().display;
    assert_eq!(
        (d.theme, d.text_percent, d.device_name),
        (crate::screen::layout::Theme::Dark, 100, None)
    );
    for (bad, want) in [
        ("theme = \"blue\"\n", "display.theme"),
        ("text_scale = 0.5\n", "display.text_scale"),
        ("text_scale = 4\n", "display.text_scale"),
        ("device_name = \"\"\n", "display.device_name"),
        ("device_name = \"a\\nb\"\n", "display.device_name"),
    ] {
        let e = load(bad).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(":6:"), "{bad}: {e}");
    }
}

#[test]
fn display_language_and_locale_dir() {
    use crate::locale::choose::LanguageSetting;
    let dir = tempfile::tempdir().unwrap();
    let load = |display: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[provider]\nclient_id = \"x\"\ndevice_authorization_endpoint = \"https://a.example/d\"\ntoken_endpoint = \"https://a.example/t\"\n[display]\n{display}"),
        )
        .unwrap();
        Config::load(&path)
    };
    let d = load("").unwrap().display;
    assert_eq!(d.language, LanguageSetting::Auto);
    assert_eq!(
        d.locale_dir,
        std::path::Path::new("/usr/share/devauth/locales")
    );
    // Loading a config reads no pack: the language is resolved when a screen opens.
    assert_eq!(d.resolved_language.tag(), "en");
    let d = load("language = \"pt-br\"\nlocale_dir = \"packs\"\n")
        .unwrap()
        .display;
    assert_eq!(d.language, LanguageSetting::Tag("pt-BR".into()));
    assert_eq!(d.locale_dir, dir.path().join("packs"));
    assert_eq!(
        load("language = \"auto\"\n").unwrap().display.language,
        LanguageSetting::Auto
    );
    for bad in ["language = \"Deutsch!\"\n", "language = \"\"\n"] {
        let e = load(bad).unwrap_err().to_string();
        assert!(
            e.contains("display.language") && e.contains(":6:") && e.contains("BCP 47"),
            "{bad}: {e}"
        );
    }
}

// --- [network] proxy ------------------------------------------------------------------------

#[test]
fn proxy_keys() {
    use crate::net::proxy::ProxyConfig;
    assert_eq!(ok(MIN).network.proxy, ProxyConfig::Environment);
    let c = ok(&format!("{MIN}[network]\nproxy = \"none\"\n"));
    assert_eq!(c.network.proxy, ProxyConfig::Direct);
    let c = ok(&format!(
        "{MIN}[network]\nproxy = \"http://dev:s3cr%40t@proxy.corp:3128\"\n\
         no_proxy = [\"intranet.corp\", \"10.0.0.0/8\", \"fd00::/8\"]\n"
    ));
    assert_eq!(
        c.network.proxy,
        ProxyConfig::Url {
            url: crate::secret::Secret::new("http://dev:s3cr%40t@proxy.corp:3128"),
            no_proxy: vec![
                "intranet.corp".into(),
                "10.0.0.0/8".into(),
                "fd00::/8".into()
            ],
        }
    );
    // The password is in no Debug output of the config.
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cr") && shown.contains("proxy.corp:3128"),
        "{shown}"
    );
}

#[test]
fn proxy_key_errors_name_the_key_never_the_password() {
    for (value, why) in [
        (
            "socks4://dev:s3cret@p:1080",
            "socks4 proxies are not supported",
        ),
        (
            "socks5h://dev:s3cret@p:1080",
            "socks5h proxies are not supported",
        ),
        ("http://dev:s3cret@:3128", "has no host"),
        ("http://dev:s3cret@p:70000", "port"),
        ("ftp://dev:s3cret@p", "is not supported"),
    ] {
        let shown = err_at(
            &format!("{MIN}[network]\nproxy = \"{value}\"\n"),
            "network.proxy",
            5,
        );
        assert!(shown.contains(why), "{value}: {shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    let shown = err_at(
        &format!("{MIN}[network]\nproxy = \"http://p:1\"\nno_proxy = [\"10.0.0.0/40\"]\n"),
        "network.no_proxy",
        6,
    );
    assert!(shown.contains("10.0.0.0/40"), "{shown}");
    // no_proxy without a configured proxy would silently do nothing: refused.
    err_at(
        &format!("{MIN}[network]\nno_proxy = [\"a.corp\"]\n"),
        "network.no_proxy",
        5,
    );
    err_at(
        &format!("{MIN}[network]\nproxy = \"none\"\nno_proxy = [\"a.corp\"]\n"),
        "network.no_proxy",
        5,
    );
}
