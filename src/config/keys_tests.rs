//! Unit tests of `dpop`, `client_auth = "private_key_jwt"` and its `client_key_*` keys.

use super::*;
use crate::oauth::jwt::AssertionAudience;

const SRC: &str = "/etc/devauth/devauth.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(SRC))
}

const GENERIC: &str = "[provider]\nclient_id = \"tv-1\"\n\
                       device_authorization_endpoint = \"https://as.example/device\"\n\
                       token_endpoint = \"https://as.example/token\"\n";

fn err(extra: &str) -> String {
    parse(&format!("{GENERIC}{extra}")).unwrap_err().to_string()
}

#[test]
fn dpop_is_off_unless_asked_for() {
    assert_eq!(parse(GENERIC).unwrap().provider.dpop, DpopMode::Off);
    for (v, want) in [
        ("off", DpopMode::Off),
        ("on", DpopMode::On),
        ("auto", DpopMode::Auto),
    ] {
        let c = parse(&format!("{GENERIC}dpop = \"{v}\"\n")).unwrap();
        assert_eq!(c.provider.dpop, want);
        assert_eq!(want.name(), v);
    }
    let e = err("dpop = \"yes\"\n");
    assert!(
        e.contains(":5: provider.dpop") && e.contains("\"auto\""),
        "{e}"
    );
    assert!(!DpopMode::Auto.wanted(false));
    assert!(DpopMode::Auto.wanted(true));
    assert!(DpopMode::On.wanted(false));
    assert!(!DpopMode::Off.wanted(true));
}

#[test]
fn private_key_jwt_reads_its_keys_relative_to_the_config() {
    let c = parse(&format!(
        "{GENERIC}client_auth = \"private_key_jwt\"\nclient_key_file = \"keys/client.pem\"\n"
    ))
    .unwrap();
    assert_eq!(c.provider.client_auth, ClientAuth::PrivateKeyJwt);
    let ck = c.provider.client_key.unwrap();
    assert_eq!(ck.file, PathBuf::from("/etc/devauth/keys/client.pem"));
    assert_eq!(ck.key_id, None);
    assert_eq!(ck.audience, AssertionAudience::TokenEndpoint);
    let c = parse(&format!(
        "{GENERIC}client_auth = \"private_key_jwt\"\nclient_key_file = \"/k.pem\"\n\
         client_key_id = \"dev-7\"\nclient_assertion_audience = \"endpoint\"\n"
    ))
    .unwrap();
    let ck = c.provider.client_key.unwrap();
    assert_eq!(ck.key_id.as_deref(), Some("dev-7"));
    assert_eq!(ck.audience, AssertionAudience::Endpoint);
    let c = parse(&format!(
        "{GENERIC}client_auth = \"private_key_jwt\"\nclient_key_file = \"/k.pem\"\n\
         client_assertion_audience = \"https://tenant.example/\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.provider.client_key.unwrap().audience,
        AssertionAudience::Fixed("https://tenant.example/".into())
    );
    let issuer = "[provider]\nclient_id = \"tv-1\"\nissuer = \"https://id.example\"\n\
                  client_auth = \"private_key_jwt\"\nclient_key_file = \"/k.pem\"\n\
                  client_assertion_audience = \"issuer\"\n";
    assert_eq!(
        parse(issuer).unwrap().provider.client_key.unwrap().audience,
        AssertionAudience::Fixed("https://id.example".into())
    );
}

#[test]
fn private_key_jwt_mistakes_name_the_key() {
    for (extra, want) in [
        (
            "client_auth = \"private_key_jwt\"\n",
            "client_key_file: missing",
        ),
        (
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"/k\"\nclient_secret = \"s\"\n",
            "remove the client secret",
        ),
        (
            "client_key_file = \"/k\"\n",
            "only used with client_auth = \"private_key_jwt\"",
        ),
        ("client_key_id = \"k\"\n", "client_key_id: only used"),
        (
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"/k\"\n\
             client_assertion_audience = \"issuer\"\n",
            "needs provider.issuer",
        ),
        (
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"/k\"\n\
             client_assertion_audience = \"somewhere\"\n",
            "\"token_endpoint\", \"endpoint\", \"issuer\" or an https URL",
        ),
    ] {
        let e = err(extra);
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    // The key file need not exist yet: `devauth keygen` makes it.
    assert!(
        parse(&format!(
            "{GENERIC}client_auth = \"private_key_jwt\"\nclient_key_file = \"/nonexistent/k.pem\"\n"
        ))
        .is_ok()
    );
}

#[test]
fn a_service_account_takes_none_of_the_device_key_settings() {
    let sa = "[provider]\ngrant = \"jwt-bearer\"\nprivate_key_file = \"../../tests/fixtures/test-only-jwt-key.pem\"\n\
              jwt_issuer = \"svc\"\ntoken_endpoint = \"https://as.example/token\"\n";
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/devauth.toml");
    assert!(Config::parse(sa, &src).is_ok());
    for extra in [
        "dpop = \"on\"\n",
        "client_key_file = \"/k\"\n",
        "client_auth = \"private_key_jwt\"\n",
    ] {
        let e = Config::parse(&format!("{sa}{extra}"), &src)
            .unwrap_err()
            .to_string();
        assert!(e.contains("jwt-bearer"), "{extra:?}: {e}");
    }
}

#[test]
fn a_client_key_in_the_tpm_keeps_its_blob_where_asked_or_beside_the_store() {
    let jwt = "client_auth = \"private_key_jwt\"\n";
    let key = |line: &str, storage: &str| {
        let c = parse(&format!("{GENERIC}{jwt}{line}\n{storage}")).unwrap();
        let ck = c.provider.client_key.unwrap();
        (ck.tpm, ck.file)
    };
    assert_eq!(
        key("client_key_file = \"tpm:keys/client.tpm\"", ""),
        (true, PathBuf::from("/etc/devauth/keys/client.tpm"))
    );
    assert_eq!(
        key("client_key_file = \"tpm:/factory/client.tpm\"", ""),
        (true, PathBuf::from("/factory/client.tpm"))
    );
    assert_eq!(
        key(
            "client_key_file = \"tpm\"",
            "[storage]\npath = \"/data/devauth/tokens.json\"\n"
        ),
        (true, PathBuf::from("/data/devauth/client-key.tpm"))
    );
    assert_eq!(
        key("client_key_file = \"tpm\"", "").1,
        PathBuf::from(DEFAULT_STORAGE_PATH).with_file_name(CLIENT_KEY_IN_TPM)
    );
    // A file whose name merely starts with "tpm" is a file.
    assert_eq!(
        key("client_key_file = \"tpmkey.pem\"", ""),
        (false, PathBuf::from("/etc/devauth/tpmkey.pem"))
    );
    let e = err(&format!("{jwt}client_key_file = \"tpm:\"\n"));
    assert!(
        e.contains("provider.client_key_file") && e.contains("is empty"),
        "{e}"
    );
}

#[test]
fn the_device_keys_example_parses() {
    let c = parse(include_str!("../../config/device-keys.toml")).unwrap();
    assert_eq!(c.provider.client_auth, ClientAuth::PrivateKeyJwt);
    assert_eq!(c.provider.dpop, DpopMode::Auto);
    let ck = c.provider.client_key.unwrap();
    assert_eq!(ck.file, PathBuf::from("/var/lib/devauth/client-key.pem"));
    assert_eq!(ck.audience, AssertionAudience::TokenEndpoint);
}
