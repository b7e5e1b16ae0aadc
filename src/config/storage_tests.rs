//! Unit tests of `[storage]`'s sealing keys: `seal`, `require_sealed`, `tpm_device`,
//! `trusted_key_options`.

use super::*;
use crate::store::{SealChoice, Sealing};

const SRC: &str = "/etc/devauth/devauth.toml";
const HEAD: &str = "[provider]\nclient_id = \"x\"\ndevice_authorization_endpoint = \
                    \"https://a.example/device\"\ntoken_endpoint = \"https://a.example/token\"\n\
                    [storage]\n";

fn parse(storage: &str) -> Result<Config, ConfigError> {
    Config::parse(&format!("{HEAD}{storage}"), Path::new(SRC))
}

/// The error for `storage`, which must name `key` on the storage section's line `line` (1 is
/// the first line after `[storage]`).
fn err_at(storage: &str, key: &str, line: usize) -> String {
    let e = parse(storage).expect_err("an error");
    let shown = e.to_string();
    assert_eq!(e.key(), Some(key), "{shown}");
    assert_eq!(e.line(), Some(HEAD.lines().count() + line), "{shown}");
    shown
}

#[test]
fn sealing_defaults_to_auto_with_the_kernel_tpm_device() {
    let c = parse("").unwrap();
    assert_eq!(c.storage.sealing, Sealing::auto());
    assert_eq!(c.storage.sealing.tpm_device, Path::new("/dev/tpmrm0"));
    assert!(!c.storage.sealing.require_sealed);
    let store = c.storage.token_store();
    assert_eq!(store.sealing(), &Sealing::auto());
}

#[test]
fn every_sealing_key_is_read() {
    let c = parse(
        "seal = \"kernel\"\nrequire_sealed = true\ntpm_device = \"/tmp/swtpm.sock\"\n\
         trusted_key_options = \" keyhandle=0x81000001 hash=sha256 \"\n",
    )
    .unwrap();
    let s = &c.storage.sealing;
    assert_eq!(s.choice, SealChoice::Kernel);
    assert!(s.require_sealed);
    assert_eq!(s.tpm_device, Path::new("/tmp/swtpm.sock"));
    assert_eq!(s.trusted_key_options, "keyhandle=0x81000001 hash=sha256");
    for (name, choice) in [
        ("auto", SealChoice::Auto),
        ("tpm2", SealChoice::Tpm2),
        ("none", SealChoice::None),
    ] {
        let c = parse(&format!("seal = \"{name}\"\n")).unwrap();
        assert_eq!(c.storage.sealing.choice, choice);
    }
}

#[test]
fn bad_sealing_values_name_key_and_line() {
    let e = err_at("seal = \"tpm\"\n", "storage.seal", 1);
    assert!(
        e.contains("\"tpm\" is not one of \"auto\", \"tpm2\", \"kernel\", \"none\""),
        "{e}"
    );
    let e = err_at(
        "seal = \"none\"\nrequire_sealed = true\n",
        "storage.require_sealed",
        2,
    );
    assert!(e.contains("no token could ever be stored"), "{e}");
    let e = err_at("tpm_device = \"tpmrm0\"\n", "storage.tpm_device", 1);
    assert!(e.contains("must be an absolute path"), "{e}");
    let e = err_at(
        "trusted_key_options = \"keyhandle=1\\nload x\"\n",
        "storage.trusted_key_options",
        1,
    );
    assert!(e.contains("letters, digits, spaces"), "{e}");
    err_at("require_sealed = \"yes\"\n", "storage.require_sealed", 1);
}

#[test]
fn storage_keys_are_checked_as_the_derived_reader_checked_them() {
    // `[storage]` is read by `table_reader!`: an unknown key and a wrong type are named as
    // the derived reader named them, with the line and the keys it knows.
    let shown = err_at(
        "path = \"/data/t.json\"\nsael = \"tpm2\"\n",
        "storage.sael",
        2,
    );
    assert!(shown.contains("unknown key"), "{shown}");
    for key in [
        "`path`",
        "`seal`",
        "`require_sealed`",
        "`tpm_device`",
        "`trusted_key_options`",
    ] {
        assert!(shown.contains(key), "{shown}");
    }
    let shown = err_at("require_sealed = \"yes\"\n", "storage.require_sealed", 1);
    assert!(
        shown.ends_with("invalid type: string \"yes\", expected a boolean"),
        "{shown}"
    );
    let e = Config::parse(
        &format!("storage = 5\n{}", HEAD.replace("[storage]\n", "")),
        Path::new(SRC),
    )
    .expect_err("not a table");
    assert!(
        e.to_string()
            .ends_with("storage: invalid type: integer `5`, expected a table"),
        "{e}"
    );
    let c = parse("seal = \"none\"\n").unwrap();
    assert_eq!(c.storage.sealing.choice, SealChoice::None);
    assert_eq!(c.storage.path, Path::new("/var/lib/devauth/tokens.json"));
}
