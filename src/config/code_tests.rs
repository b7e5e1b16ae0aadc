//! Unit tests of `grant = "authorization_code"`, `client_json_file` and the implicit refusal.

use super::*;
use std::net::IpAddr;

const SRC: &str = "/etc/devauth/devauth.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(SRC))
}

fn code(c: &Config) -> &CodeGrantConfig {
    c.provider.grant.code_grant().expect("code grant")
}

const GOOGLE: &str = "[provider]\npreset = \"google\"\ngrant = \"authorization_code\"\n\
                      client_id = \"x.apps.googleusercontent.com\"\nclient_secret = \"GOCSPX-s\"\n";

#[test]
fn google_code_grant_defaults() {
    let c = parse(GOOGLE).unwrap();
    let g = code(&c);
    assert_eq!(c.provider.grant.name(), "authorization_code");
    assert_eq!(
        g.authorization_endpoint.as_deref().unwrap_or_default(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(g.redirect_host, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(g.redirect_port, 0);
    assert_eq!(g.browser_command, None);
    assert_eq!(g.login_timeout, Duration::from_secs(300));
    assert!(g.requires_refresh_token);
    assert_eq!(
        g.authorization_extras,
        vec![
            ("access_type".to_string(), "offline".to_string()),
            ("prompt".to_string(), "consent".to_string())
        ]
    );
    assert!(c.provider.grant.jwt_bearer().is_none());
}

#[test]
fn code_grant_keys_are_read_and_checked() {
    let c = parse(&format!(
        "{GOOGLE}redirect_host = \"::1\"\nredirect_port = 8085\nbrowser_command = \"/usr/bin/cog\"\n\
         login_timeout_secs = 60\nsuccess_text = \"Done.\"\nfailure_text = \"Oops.\"\n"
    ))
    .unwrap();
    let g = code(&c);
    assert_eq!(g.redirect_host, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(g.redirect_port, 8085);
    assert_eq!(g.browser_command.as_deref(), Some("/usr/bin/cog"));
    assert_eq!(g.login_timeout, Duration::from_secs(60));
    assert_eq!(g.success_text.as_deref(), Some("Done."));
    assert_eq!(g.failure_text.as_deref(), Some("Oops."));

    for (extra, key, why) in [
        (
            "redirect_host = \"localhost\"",
            "provider.redirect_host",
            "RFC 8252",
        ),
        (
            "redirect_port = 70000",
            "provider.redirect_port",
            "out of range",
        ),
        (
            "login_timeout_secs = 0",
            "provider.login_timeout_secs",
            "out of range",
        ),
        (
            "browser_command = \"\"",
            "provider.browser_command",
            "program",
        ),
        (
            "success_text = \"a\\u0007\"",
            "provider.success_text",
            "control",
        ),
    ] {
        let e = parse(&format!("{GOOGLE}{extra}\n")).unwrap_err();
        assert_eq!(e.key(), Some(key), "{e}");
        assert_eq!(e.line(), Some(6), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
}

#[test]
fn microsoft_and_github_presets_carry_their_authorization_endpoints() {
    let c = parse(
        "[provider]\npreset = \"microsoft\"\ngrant = \"authorization_code\"\nclient_id = \"m\"\ntenant = \"contoso.example\"\n",
    )
    .unwrap();
    assert_eq!(
        code(&c)
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default(),
        "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize"
    );
    assert!(c.provider.scopes.contains(&"offline_access".to_string()));
    let c = parse(
        "[provider]\npreset = \"github\"\ngrant = \"authorization_code\"\nclient_id = \"g\"\n",
    )
    .unwrap();
    assert_eq!(
        code(&c)
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default(),
        "https://github.com/login/oauth/authorize"
    );
    assert!(!code(&c).requires_refresh_token);
}

#[test]
fn generic_code_grant_needs_authorization_and_token_endpoints() {
    let c = parse(
        "[provider]\ngrant = \"authorization_code\"\nclient_id = \"c\"\n\
         authorization_endpoint = \"https://as.example/authorize\"\ntoken_endpoint = \"https://as.example/token\"\n",
    )
    .unwrap();
    assert_eq!(
        code(&c)
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default(),
        "https://as.example/authorize"
    );
    match &c.provider.endpoints {
        EndpointSource::Explicit { token, .. } => assert_eq!(token, "https://as.example/token"),
        other => panic!("{other:?}"),
    }
    let e = parse(
        "[provider]\ngrant = \"authorization_code\"\nclient_id = \"c\"\ntoken_endpoint = \"https://as.example/token\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("provider.authorization_endpoint"), "{e}");
}

#[test]
fn a_generic_issuer_leaves_the_authorization_endpoint_to_discovery() {
    let c = parse(
        "[provider]\ngrant = \"authorization_code\"\nclient_id = \"c\"\nissuer = \"https://idp.example\"\n",
    )
    .unwrap();
    assert_eq!(code(&c).authorization_endpoint, None);
    assert!(matches!(
        c.provider.endpoints,
        EndpointSource::Discover { .. }
    ));
}

#[test]
fn implicit_grant_is_refused_with_the_reason_and_the_replacement() {
    for name in ["implicit", "token"] {
        let e = parse(&format!(
            "[provider]\npreset = \"github\"\nclient_id = \"g\"\ngrant = \"{name}\"\n"
        ))
        .unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.key(), Some("provider.grant"), "{shown}");
        assert_eq!(e.line(), Some(4), "{shown}");
        assert!(shown.contains("RFC 9700"), "{shown}");
        assert!(shown.contains("grant = \"authorization_code\""), "{shown}");
    }
}

const INSTALLED: &str = r#"{"installed":{"client_id":"123-abc.apps.googleusercontent.com",
  "project_id":"p","auth_uri":"https://accounts.google.com/o/oauth2/auth",
  "token_uri":"https://oauth2.googleapis.com/token","client_secret":"GOCSPX-fromjson",
  "redirect_uris":["http://localhost"]}}"#;

fn with_client_file(content: &str, text: &str) -> (Result<Config, ConfigError>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client_secret_1.json"), content).unwrap();
    let src = dir.path().join("devauth.toml");
    (Config::parse(text, &src), dir)
}

const WITH_FILE: &str = "[provider]\npreset = \"google\"\ngrant = \"authorization_code\"\n\
                         client_json_file = \"client_secret_1.json\"\n";

#[test]
fn client_json_file_supplies_id_secret_and_endpoints() {
    let (c, _dir) = with_client_file(INSTALLED, WITH_FILE);
    let c = c.unwrap();
    assert_eq!(c.provider.client_id, "123-abc.apps.googleusercontent.com");
    assert_eq!(
        c.provider.client_secret.as_ref().map(Secret::expose),
        Some("GOCSPX-fromjson")
    );
    assert_eq!(
        code(&c)
            .authorization_endpoint
            .as_deref()
            .unwrap_or_default(),
        "https://accounts.google.com/o/oauth2/auth"
    );
    let web = INSTALLED.replace("\"installed\"", "\"web\"");
    let (c, _dir) = with_client_file(&web, WITH_FILE);
    assert_eq!(
        c.unwrap().provider.client_id,
        "123-abc.apps.googleusercontent.com"
    );
}

#[test]
fn broken_client_json_file_names_the_file_the_line_and_the_field() {
    let (e, _dir) = with_client_file(&INSTALLED.replace("\"client_id\"", "\"id\""), WITH_FILE);
    let e = e.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.key(), Some("provider.client_json_file"), "{shown}");
    assert_eq!(e.line(), Some(4), "{shown}");
    assert!(shown.contains("client_secret_1.json"), "{shown}");
    assert!(
        shown.contains("`installed.client_id` is missing"),
        "{shown}"
    );
    assert!(!shown.contains("GOCSPX"), "{shown}");

    let (e, _dir) = with_client_file(INSTALLED, &format!("{WITH_FILE}client_id = \"x\"\n"));
    assert!(e.unwrap_err().to_string().contains("client_id is also set"));

    let (e, dir) = with_client_file(INSTALLED, WITH_FILE);
    drop(e);
    std::fs::remove_file(dir.path().join("client_secret_1.json")).unwrap();
    let e = Config::parse(WITH_FILE, &dir.path().join("devauth.toml")).unwrap_err();
    assert!(e.to_string().contains("No such file"), "{e}");
}
