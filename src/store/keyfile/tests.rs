//! Key files: clear, sealed with the tokens (the fake kernel of `keyring`'s tests as the
//! sealer), held by the TPM; following the token file's sealing; hostile files.

use super::*;
use crate::keyring::tests::FakeKernel;
use crate::store::seal::tests::{install_kernel, tokens};

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n";

fn kernel_sealing() -> Sealing {
    Sealing {
        choice: SealChoice::Kernel,
        ..Sealing::none()
    }
}

fn software(key: Option<StoredKey>) -> String {
    match key {
        Some(StoredKey::Software(pem)) => pem.expose().to_string(),
        other => panic!("not a software key: {other:?}"),
    }
}

#[test]
fn a_key_file_is_private_never_replaced_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("state").join("tokens.json"));
    let key = KeyFile::dpop_for(&store);
    assert!(key.path().ends_with("tokens.json.dpop-key"));
    assert!(key.load().unwrap().is_none());
    let pem = Secret::new(PEM);
    key.create(&pem).unwrap();
    assert_eq!(software(key.load().unwrap()), PEM);
    assert_eq!(key.protection().unwrap(), Some(KeyProtection::Clear));
    let mode = fs::metadata(key.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    assert_eq!(key.exposed_mode(), None);
    let e = key.create(&Secret::new("other")).unwrap_err();
    assert!(e.to_string().contains("never replaced"), "{e}");
    let e = key.create_tpm(&[1, 2, 3]).unwrap_err();
    assert!(e.to_string().contains("never replaced"), "{e}");
    assert_eq!(software(key.load().unwrap()), PEM);
    fs::set_permissions(key.path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(key.exposed_mode(), Some(0o644));
    assert!(key.delete().unwrap());
    assert!(!key.delete().unwrap());
    assert!(key.load().unwrap().is_none());
}

#[test]
fn a_binary_key_file_is_named_without_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyFile::at(dir.path().join("k.pem"));
    fs::write(key.path(), [0xff, 0xfe, 0x00]).unwrap();
    let e = key.load().unwrap_err().to_string();
    assert!(e.contains("not a PEM text file"), "{e}");
}

#[test]
fn a_dpop_key_of_a_sealed_pairing_is_sealed_under_the_tokens_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let kernel = install_kernel(FakeKernel::new(*b"device-A"));
    let store = TokenStore::with_sealing(&path, kernel_sealing());
    let prepared = store.prepare_pairing().unwrap();
    let key = KeyFile::dpop_for(&store);
    assert_eq!(
        key.create_sealed_as_tokens(&Secret::new(PEM)).unwrap(),
        KeyProtection::Sealed(Sealer::Kernel)
    );
    prepared.commit(&tokens("a1", "r1")).unwrap();
    let text = fs::read_to_string(key.path()).unwrap();
    assert!(!text.contains("SECRET"), "the key is readable:\n{text}");
    assert!(text.contains("\"kind\": \"sealed\""), "{text}");
    // The same data key as the tokens: one unseal serves both.
    let key_blob = match parse(text.as_bytes()) {
        Ok(Content::Sealed { sealed_key, .. }) => sealed_key,
        _ => panic!("not sealed"),
    };
    let tokens_envelope = sealed::parse_envelope(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(key_blob, tokens_envelope.sealed_key);
    assert_eq!(
        key.protection().unwrap(),
        Some(KeyProtection::Sealed(Sealer::Kernel))
    );
    // Another process (nothing remembered) reads it back through the kernel.
    let again = TokenStore::with_sealing(&path, kernel_sealing());
    assert_eq!(software(KeyFile::dpop_for(&again).load().unwrap()), PEM);
    assert!(
        kernel
            .payloads
            .borrow()
            .iter()
            .all(|p| !p.contains("SECRET"))
    );

    // A refresh keeps both as they are: the key file is not rewritten.
    let before = fs::read(key.path()).unwrap();
    again.load().unwrap();
    again.save(&tokens("a2", "r2")).unwrap();
    assert_eq!(fs::read(key.path()).unwrap(), before);

    // The storage moved to another board: the key is out of reach like the tokens.
    install_kernel(FakeKernel::new(*b"device-B"));
    let moved = TokenStore::with_sealing(&path, kernel_sealing());
    let err = KeyFile::dpop_for(&moved).load().unwrap_err();
    assert!(err.needs_pairing(), "{err}");
    assert!(err.to_string().contains("tokens.json.dpop-key"), "{err}");
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[test]
fn a_pairing_that_nothing_seals_keeps_the_key_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::with_sealing(dir.path().join("tokens.json"), Sealing::none());
    let _prepared = store.prepare_pairing().unwrap();
    let key = KeyFile::dpop_for(&store);
    assert_eq!(
        key.create_sealed_as_tokens(&Secret::new(PEM)).unwrap(),
        KeyProtection::Clear
    );
    assert_eq!(fs::read_to_string(key.path()).unwrap(), PEM);
}

#[test]
fn a_clear_key_is_sealed_at_the_next_write_and_unsealed_when_sealing_is_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    // An earlier version: plain tokens, a clear key.
    TokenStore::new(&path).save(&tokens("a1", "r1")).unwrap();
    let key = KeyFile::dpop_for(&TokenStore::new(&path));
    key.create(&Secret::new(PEM)).unwrap();

    install_kernel(FakeKernel::new(*b"device-A"));
    let store = TokenStore::with_sealing(&path, kernel_sealing());
    // Loading changes nothing; the next write seals both.
    store.load().unwrap();
    assert_eq!(fs::read_to_string(key.path()).unwrap(), PEM);
    store
        .prepare_save()
        .unwrap()
        .commit(&tokens("a2", "r2"))
        .unwrap();
    let text = fs::read_to_string(key.path()).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    let key = KeyFile::dpop_for(&store);
    assert_eq!(
        key.protection().unwrap(),
        Some(KeyProtection::Sealed(Sealer::Kernel))
    );
    assert_eq!(software(key.load().unwrap()), PEM);
    assert_eq!(mode(key.path()), 0o600);

    // A new pairing (a new data key) reseals the kept key under it.
    let old = fs::read(key.path()).unwrap();
    store.save_pairing(&tokens("a3", "r3")).unwrap();
    let now = fs::read(key.path()).unwrap();
    assert_ne!(now, old);
    let tokens_key = sealed::parse_envelope(&fs::read(&path).unwrap())
        .unwrap()
        .sealed_key;
    assert!(matches!(
        parse(&now),
        Ok(Content::Sealed { sealed_key, .. }) if sealed_key == tokens_key
    ));

    // `seal = "none"`: the next write is plain, and so is the key.
    TokenStore::with_sealing(&path, Sealing::none())
        .save(&tokens("a4", "r4"))
        .unwrap();
    assert_eq!(fs::read_to_string(key.path()).unwrap(), PEM);
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_tpm_key_file_holds_the_blob_and_never_follows_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = TokenStore::new(&path);
    let key = KeyFile::dpop_for(&store);
    key.create_tpm(&[7; 200]).unwrap();
    assert!(matches!(key.load().unwrap(), Some(StoredKey::Tpm(b)) if b == vec![7; 200]));
    assert_eq!(key.protection().unwrap(), Some(KeyProtection::Tpm));
    let before = fs::read(key.path()).unwrap();
    install_kernel(FakeKernel::new(*b"device-A"));
    TokenStore::with_sealing(&path, kernel_sealing())
        .save_pairing(&tokens("a1", "r1"))
        .unwrap();
    store.save(&tokens("a2", "r2")).unwrap();
    assert_eq!(fs::read(key.path()).unwrap(), before);
}

#[test]
fn hostile_key_files_are_errors_that_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyFile::at(dir.path().join("k"));
    let nonce = crate::net::wire::base64_encode(&[0; 12]);
    let sealed = |extra: &str| {
        format!(
            "{{\"format\":\"devauth-key\",\"version\":1,\"kind\":\"sealed\",\"sealed_by\":\"tpm2\",\
             \"sealed_key\":\"AAAA\",\"nonce\":\"{nonce}\"{extra}}}"
        )
    };
    for (text, want) in [
        ("{".to_string(), "malformed key file at line 1"),
        ("{\"format\":\"x\"}".to_string(), "field `format`"),
        (
            "{\"format\":\"devauth-key\",\"version\":7}".to_string(),
            "version 7",
        ),
        (
            "{\"format\":\"devauth-key\",\"version\":1,\"kind\":\"hsm\"}".to_string(),
            "field `kind`",
        ),
        (
            "{\"format\":\"devauth-key\",\"version\":1,\"kind\":\"tpm2\",\"blob\":\"%%\"}"
                .to_string(),
            "blob",
        ),
        (
            format!(
                "{{\"format\":\"devauth-key\",\"version\":1,\"kind\":\"tpm2\",\"blob\":\"{}\"}}",
                crate::net::wire::base64_encode(&[1; 2000])
            ),
            "blob",
        ),
        (sealed(""), "ciphertext"),
        (sealed(",\"ciphertext\":\"AAAA\""), "shorter than its"),
        (
            sealed(",\"ciphertext\":\"AAAA\"").replace("tpm2", "hsm"),
            "sealed_by",
        ),
    ] {
        fs::write(key.path(), &text).unwrap();
        let e = key.load().unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Corrupt { .. } | StoreError::UnsupportedVersion { .. }
            ),
            "{text}: {e}"
        );
        assert!(e.to_string().contains(want), "{text}: {e}");
    }
    // A sealed key whose data key cannot be unsealed (no TPM at the default path here) is an
    // unseal error, never a panic or a clear key.
    fs::write(
        key.path(),
        sealed(&format!(
            ",\"ciphertext\":\"{}\"",
            crate::net::wire::base64_encode(&[9; 40])
        )),
    )
    .unwrap();
    let tpm_store = TokenStore::with_sealing(
        dir.path().join("t.json"),
        Sealing::tpm2(dir.path().join("no-tpm")),
    );
    let e = KeyFile::dpop_for(&tpm_store);
    fs::copy(key.path(), e.path()).unwrap();
    let err = e.load().unwrap_err();
    assert!(matches!(err, StoreError::Unsealable { .. }), "{err}");
}
