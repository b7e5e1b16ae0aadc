//! Unit tests of the grant-key rule (grant_keys.rs), `pair --grant` against the file as
//! written, and `client_json_file`'s endpoints beside `issuer`.

use super::*;

const SRC: &str = "/etc/devauth/devauth.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(SRC))
}

fn parse_as(text: &str, grant: &str) -> Result<Config, ConfigError> {
    Config::parse_account(text, Path::new(SRC), Some(grant), None)
}

/// A generic device-flow config (explicit endpoints) plus `extra`.
fn device(extra: &str) -> String {
    format!(
        "[provider]\nclient_id = \"c\"\ndevice_authorization_endpoint = \"https://as.example/device\"\n\
         token_endpoint = \"https://as.example/token\"\n{extra}"
    )
}

const BROWSER_KEYS: &str = "authorization_endpoint = \"https://as.example/authorize\"\n\
     browser_command = \"/usr/bin/kiosk-open\"\nredirect_host = \"::1\"\nredirect_port = 8085\n\
     login_timeout_secs = 60\nsuccess_text = \"ok\"\nfailure_text = \"no\"\n";

#[test]
fn browser_keys_wait_with_device_code_for_pair_grant() {
    // The issue's config: device_code plus browser keys. `token` (the file) and
    // `pair --grant authorization_code` both accept it.
    let text = device(BROWSER_KEYS);
    let file = parse(&text).unwrap();
    assert_eq!(file.provider.grant.name(), "device_code");
    let signed_in = parse_as(&text, "authorization_code").unwrap();
    let code = signed_in.provider.grant.code_grant().expect("code grant");
    assert_eq!(code.browser_command.as_deref(), Some("/usr/bin/kiosk-open"));
    assert_eq!(code.redirect_port, 8085);
    assert_eq!(code.login_timeout, Duration::from_secs(60));
    // Same endpoints for the refreshes either way.
    assert_eq!(file.provider.endpoints, signed_in.provider.endpoints);
}

#[test]
fn browser_key_values_are_checked_with_device_code_too() {
    for (line, key) in [
        ("redirect_host = \"localhost\"\n", "provider.redirect_host"),
        ("redirect_port = 70000\n", "provider.redirect_port"),
        ("login_timeout_secs = 0\n", "provider.login_timeout_secs"),
        ("browser_command = \" \"\n", "provider.browser_command"),
        (
            "authorization_endpoint = \"http://as.example/a\"\n",
            "provider.authorization_endpoint",
        ),
    ] {
        for grant in [None, Some("authorization_code")] {
            let text = device(line);
            let e = match grant {
                None => parse(&text),
                Some(g) => parse_as(&text, g),
            }
            .unwrap_err();
            assert_eq!(e.key(), Some(key), "{grant:?}: {e}");
            assert_eq!(e.line(), Some(5), "{grant:?}: {e}");
        }
    }
}

#[test]
fn a_person_sign_in_key_with_jwt_bearer_is_an_error_naming_it() {
    for (line, key) in [
        ("browser_command = \"x\"\n", "provider.browser_command"),
        (
            "authorization_endpoint = \"https://a/z\"\n",
            "provider.authorization_endpoint",
        ),
        ("redirect_port = 1\n", "provider.redirect_port"),
        ("login_timeout_secs = 5\n", "provider.login_timeout_secs"),
        ("success_text = \"x\"\n", "provider.success_text"),
        ("failure_text = \"x\"\n", "provider.failure_text"),
        ("redirect_host = \"::1\"\n", "provider.redirect_host"),
        (
            "client_json_file = \"c.json\"\n",
            "provider.client_json_file",
        ),
        ("issuer = \"https://a\"\n", "provider.issuer"),
        (
            "device_authorization_endpoint = \"https://a/d\"\n",
            "provider.device_authorization_endpoint",
        ),
        ("tenant = \"contoso\"\n", "provider.tenant"),
        ("authority = \"https://a\"\n", "provider.authority"),
        ("dpop = \"on\"\n", "provider.dpop"),
        ("client_key_file = \"k.pem\"\n", "provider.client_key_file"),
        ("client_key_id = \"k1\"\n", "provider.client_key_id"),
        (
            "client_assertion_audience = \"issuer\"\n",
            "provider.client_assertion_audience",
        ),
        (
            "[provider.extra_params]\nx = \"y\"\n",
            "provider.extra_params",
        ),
    ] {
        let text = format!(
            "[provider]\ngrant = \"jwt-bearer\"\nservice_account_file = \"sa.json\"\n{line}"
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key(), Some(key), "{e}");
        assert_eq!(e.line(), Some(4), "{e}");
        assert!(e.to_string().contains("a service account"), "{e}");
    }
}

#[test]
fn a_service_account_key_with_a_person_grant_is_an_error_naming_it() {
    for key in [
        "service_account_file",
        "private_key_file",
        "jwt_issuer",
        "jwt_subject",
        "jwt_audience",
    ] {
        for grant in ["device_code", "authorization_code"] {
            let text = device(&format!(
                "grant = \"{grant}\"\nauthorization_endpoint = \"https://a/z\"\n{key} = \"x\"\n"
            ));
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key(), Some(format!("provider.{key}").as_str()), "{e}");
            assert_eq!(e.line(), Some(7), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("this config has grant = \"{grant}\"")),
                "{e}"
            );
            // The same error from `pair --grant` of the other person grant.
            let other = if grant == "device_code" {
                "authorization_code"
            } else {
                "device_code"
            };
            assert_eq!(parse_as(&text, other).unwrap_err().key(), e.key());
        }
    }
}

#[test]
fn pair_grant_also_checks_the_file_as_written() {
    // The file's grant is device_code but it has no device endpoint: the code grant alone
    // would do, `token` would not. Refused before pairing, naming why the file's grant counts.
    let text = "[provider]\nclient_id = \"c\"\ntoken_endpoint = \"https://as.example/token\"\n\
                authorization_endpoint = \"https://as.example/authorize\"\n";
    let e = parse_as(text, "authorization_code").unwrap_err();
    assert_eq!(
        e.key(),
        Some("provider.device_authorization_endpoint"),
        "{e}"
    );
    assert!(
        e.to_string().contains("file's grant = \"device_code\""),
        "{e}"
    );
    assert_eq!(parse(text).unwrap_err().key(), e.key());
    // And the other way: a code-grant file without its authorization endpoint.
    let text = device("grant = \"authorization_code\"\n");
    let e = parse_as(&text, "device_code").unwrap_err();
    assert_eq!(e.key(), Some("provider.authorization_endpoint"), "{e}");
    assert_eq!(parse(&text).unwrap_err().key(), e.key());
}

#[test]
fn a_service_account_file_has_no_pair_grant() {
    let text = "[provider]\ngrant = \"jwt-bearer\"\ntoken_endpoint = \"https://a/t\"\n\
                private_key_file = \"k.pem\"\njwt_issuer = \"me\"\n";
    for grant in ["device_code", "authorization_code"] {
        let e = parse_as(text, grant).unwrap_err();
        assert_eq!(e.key(), Some("provider.grant"), "{e}");
        assert_eq!(e.line(), Some(2), "{e}");
        assert!(e.to_string().contains("nothing to pair"), "{e}");
    }
    let e = parse_as(&device(""), "jwt-bearer").unwrap_err();
    assert_eq!(e.key(), Some("provider.grant"), "{e}");
    assert!(e.to_string().contains("--grant takes"), "{e}");
}

/// The issue's rule as a property: over many combinations of keys, whatever `pair --grant G`
/// accepts, the file as written (what `token` reads) accepts too, and their errors are the
/// same key.
#[test]
fn whatever_pair_grant_accepts_every_other_command_accepts() {
    let lines = [
        "grant = \"authorization_code\"\n",
        "device_authorization_endpoint = \"https://as.example/device\"\n",
        "token_endpoint = \"https://as.example/token\"\n",
        "issuer = \"https://as.example\"\n",
        "authorization_endpoint = \"https://as.example/authorize\"\n",
        "browser_command = \"open\"\n",
        "redirect_port = 8085\n",
        "jwt_issuer = \"me\"\n",
    ];
    let mut accepted = 0;
    for mask in 0u32..(1 << lines.len()) {
        let mut text = "[provider]\nclient_id = \"c\"\n".to_string();
        for (i, line) in lines.iter().enumerate() {
            if mask & (1 << i) != 0 {
                text.push_str(line);
            }
        }
        let file = parse(&text);
        for grant in ["device_code", "authorization_code"] {
            match (parse_as(&text, grant), &file) {
                (Ok(_), Ok(_)) => accepted += 1,
                (Ok(_), Err(e)) => {
                    panic!("pair --grant {grant} accepted what token refuses: {e}\n{text}")
                }
                (Err(_), _) => {}
            }
        }
    }
    assert!(
        accepted > 50,
        "the combinations exercise accepted configs too ({accepted})"
    );
}

const INSTALLED: &str = r#"{"installed":{"client_id":"123-abc.apps.googleusercontent.com",
  "project_id":"p","auth_uri":"https://idp.example/o/oauth2/auth",
  "token_uri":"https://idp.example/token","client_secret":"GOCSPX-fromjson",
  "redirect_uris":["http://localhost"]}}"#;

fn with_client_file(content: &str, text: &str) -> (Result<Config, ConfigError>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.json"), content).unwrap();
    (Config::parse(text, &dir.path().join("devauth.toml")), dir)
}

const ISSUER_AND_FILE: &str = "[provider]\ngrant = \"authorization_code\"\n\
                               issuer = \"https://idp.example\"\nclient_json_file = \"client.json\"\n";

#[test]
fn issuer_with_a_client_file_discovers_and_keeps_the_files_endpoints_to_check() {
    let (c, dir) = with_client_file(INSTALLED, ISSUER_AND_FILE);
    let c = c.unwrap();
    assert_eq!(
        c.provider.endpoints,
        EndpointSource::Discover {
            issuer: "https://idp.example".into()
        }
    );
    let code = c.provider.grant.code_grant().unwrap();
    assert_eq!(code.authorization_endpoint, None, "discovery's is used");
    let file = c.provider.client_file.as_ref().unwrap();
    assert_eq!(file.file, dir.path().join("client.json"));
    assert_eq!(file.line, Some(4));
    assert_eq!(file.token_uri, "https://idp.example/token");
    // The device flow too.
    let (c, _dir) = with_client_file(
        INSTALLED,
        &ISSUER_AND_FILE.replace("authorization_code", "device_code"),
    );
    assert!(matches!(
        c.unwrap().provider.endpoints,
        EndpointSource::Discover { .. }
    ));
}

#[test]
fn an_endpoint_written_by_hand_beside_issuer_is_still_refused() {
    let (e, _dir) = with_client_file(
        INSTALLED,
        &format!("{ISSUER_AND_FILE}token_endpoint = \"https://idp.example/token\"\n"),
    );
    let e = e.unwrap_err();
    assert_eq!(e.key(), Some("provider.issuer"), "{e}");
    assert!(e.to_string().contains("not both"), "{e}");
}

#[test]
fn without_issuer_the_client_files_endpoints_are_used() {
    let text = "[provider]\ngrant = \"authorization_code\"\nclient_json_file = \"client.json\"\n";
    let (c, _dir) = with_client_file(INSTALLED, text);
    let c = c.unwrap();
    assert_eq!(
        c.provider.endpoints,
        EndpointSource::Explicit {
            device_authorization: String::new(),
            token: "https://idp.example/token".into()
        }
    );
    assert_eq!(
        c.provider
            .grant
            .code_grant()
            .unwrap()
            .authorization_endpoint
            .as_deref(),
        Some("https://idp.example/o/oauth2/auth")
    );
    // A hand-written token endpoint wins over the file's.
    let (c, _dir) = with_client_file(
        INSTALLED,
        &format!("{text}token_endpoint = \"https://other.example/t\"\n"),
    );
    match c.unwrap().provider.endpoints {
        EndpointSource::Explicit { token, .. } => assert_eq!(token, "https://other.example/t"),
        other => panic!("{other:?}"),
    }
    // The device flow needs its endpoint; the message says the file does not give it.
    let (e, _dir) = with_client_file(
        INSTALLED,
        &text.replace("authorization_code", "device_code"),
    );
    let e = e.unwrap_err();
    assert_eq!(
        e.key(),
        Some("provider.device_authorization_endpoint"),
        "{e}"
    );
    assert!(e.to_string().contains("client_json_file gives only"), "{e}");
}

#[test]
fn a_client_file_url_that_fails_the_url_rule_names_the_field() {
    let (e, _dir) = with_client_file(
        &INSTALLED.replace("https://idp.example/token", "http://idp.example/token"),
        ISSUER_AND_FILE,
    );
    let e = e.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.key(), Some("provider.client_json_file"), "{shown}");
    assert!(shown.contains("client.json"), "{shown}");
    assert!(shown.contains("`installed.token_uri`"), "{shown}");
    assert!(!shown.contains("GOCSPX"), "{shown}");
}

#[test]
fn the_client_file_must_be_on_the_discovered_server() {
    let (c, dir) = with_client_file(INSTALLED, ISSUER_AND_FILE);
    let c = c.unwrap();
    let file = c.provider.client_file.as_ref().unwrap();
    let config = dir.path().join("devauth.toml");
    // Same server, another path (Google's v1 auth_uri beside discovery's v2): fine.
    file.check_discovered(
        &config,
        "https://idp.example",
        "https://IDP.example:443/token",
        Some("https://idp.example/o/oauth2/v2/auth"),
    )
    .unwrap();
    // No authorization endpoint discovered: only token_uri is compared.
    file.check_discovered(
        &config,
        "https://idp.example",
        "https://idp.example/t",
        None,
    )
    .unwrap();
    let e = file
        .check_discovered(
            &config,
            "https://idp.example",
            "https://tokens.elsewhere.example/token",
            None,
        )
        .unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.key(), Some("provider.client_json_file"), "{shown}");
    assert_eq!(e.line(), Some(4), "{shown}");
    assert!(
        shown.contains(&dir.path().join("client.json").display().to_string()),
        "{shown}"
    );
    assert!(shown.contains("`installed.token_uri`"), "{shown}");
    assert!(
        shown.contains("https://tokens.elsewhere.example/token"),
        "{shown}"
    );
    let e = file
        .check_discovered(
            &config,
            "https://idp.example",
            "https://idp.example/token",
            Some("https://idp.example:8443/auth"),
        )
        .unwrap_err();
    assert!(e.to_string().contains("`installed.auth_uri`"), "{e}");
}

#[test]
fn same_server_compares_scheme_host_and_port() {
    assert!(same_server(
        "https://a.example/x",
        "https://A.example:443/y"
    ));
    assert!(same_server("http://127.0.0.1:80/x", "http://127.0.0.1/y"));
    assert!(!same_server("https://a.example/x", "http://a.example/x"));
    assert!(!same_server(
        "https://a.example/x",
        "https://a.example:8443/x"
    ));
    assert!(!same_server("https://a.example/x", "https://b.example/x"));
    assert!(!same_server("not a url", "not a url"));
}
