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
