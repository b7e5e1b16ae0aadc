//! The sealed store end to end inside the library: with swtpm as the TPM (skipped with a note
//! where swtpm is missing; CI requires it), and with the fake kernel of `keyring`'s tests as the
//! trusted-key sealer (installed per test thread through [`kernel_keys`]).

use super::*;
use crate::keyring::tests::FakeKernel;
use crate::keyring::{KeyringError, Step};
use devauth_testserver::swtpm::{self, Swtpm};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

thread_local! {
    static FAKE_KERNEL: RefCell<Option<Rc<FakeKernel>>> = const { RefCell::new(None) };
}

/// The kernel the store uses in unit tests: this thread's fake if one is installed, else one
/// without trusted keys (ENODEV), as on Debian's kernels and most test machines.
pub(in crate::store) struct TestKernel(Option<Rc<FakeKernel>>);

pub(in crate::store) fn kernel_keys() -> TestKernel {
    TestKernel(FAKE_KERNEL.with(|k| k.borrow().clone()))
}

pub(in crate::store) fn install_kernel(kernel: FakeKernel) -> Rc<FakeKernel> {
    let kernel = Rc::new(kernel);
    FAKE_KERNEL.with(|k| *k.borrow_mut() = Some(kernel.clone()));
    kernel
}

impl KernelKeys for TestKernel {
    fn add_trusted(&self, description: &str, payload: &[u8]) -> io::Result<i32> {
        match &self.0 {
            Some(k) => k.add_trusted(description, payload),
            None => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        }
    }
    fn read(&self, serial: i32) -> io::Result<Vec<u8>> {
        match &self.0 {
            Some(k) => k.read(serial),
            None => Err(io::Error::from_raw_os_error(libc::ENOKEY)),
        }
    }
    fn hmac_sha256(&self, serial: i32, message: &[u8]) -> Result<[u8; 32], KeyringError> {
        match &self.0 {
            Some(k) => k.hmac_sha256(serial, message),
            None => Err(KeyringError::new(
                Step::AlgSetKey,
                io::Error::from_raw_os_error(libc::ENOKEY),
            )),
        }
    }
    fn invalidate(&self, serial: i32) {
        if let Some(k) = &self.0 {
            k.invalidate(serial)
        }
    }
}

pub(in crate::store) fn tokens(access: &str, refresh: &str) -> StoredTokens {
    StoredTokens {
        client_id: "client-123".into(),
        token_endpoint: "https://oauth2.example.com/token".into(),
        tokens: TokenSet {
            access_token: Secret::new(access),
            token_type: "Bearer".into(),
            refresh_token: Some(Secret::new(refresh)),
            id_token: None,
            scopes: vec!["openid".into()],
            account: Some("user@example.com".into()),
            expiry: None,
        },
        grant_refused: None,
    }
}

const ACCESS: &str = "at-SECRET-9f8e7d6c5b4a";
const REFRESH: &str = "rt-SECRET-0a1b2c3d4e5f";

fn envelope_of(path: &Path) -> sealed::Envelope {
    sealed::parse_envelope(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_tpm_sealed_file_hides_the_tokens_and_reads_back_after_a_restart() {
    if !swtpm::usable_or_skip("a_tpm_sealed_file_hides_the_tokens_and_reads_back_after_a_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let t = tokens(ACCESS, REFRESH);
    {
        let sim = Swtpm::start(&dir.path().join("tpm")).unwrap();
        let store = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
        assert_eq!(store.save_pairing(&t).unwrap(), SaveOutcome::Written);
        assert_eq!(
            store.last_protection(),
            Some(Protection::Sealed(Sealer::Tpm2))
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"format\": \"devauth-sealed-tokens\""),
            "{text}"
        );
        assert!(text.contains("\"sealed_by\": \"tpm2\""), "{text}");
        assert!(
            !text.contains("SECRET"),
            "a token is readable in the sealed file:\n{text}"
        );
        assert_eq!(store.load().unwrap(), Some(t.clone()));
        assert_eq!(
            store.protection().unwrap(),
            Some(Protection::Sealed(Sealer::Tpm2))
        );
    }
    // A new process after a reboot: same TPM state, a store with nothing remembered.
    let sim = Swtpm::start(&dir.path().join("tpm")).unwrap();
    let store = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
    assert_eq!(store.load().unwrap(), Some(t));
}

#[test]
fn a_refresh_keeps_the_data_key_and_writes_a_new_nonce() {
    if !swtpm::usable_or_skip("a_refresh_keeps_the_data_key_and_writes_a_new_nonce") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let sim = Swtpm::start(&dir.path().join("tpm")).unwrap();
    let store = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
    store
        .prepare_pairing()
        .unwrap()
        .commit(&tokens("a1", "r1"))
        .unwrap();
    let first = envelope_of(&path);
    // A refresh in another process: load (unseal), prepare, commit.
    let other = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
    other.load().unwrap();
    other
        .prepare_save()
        .unwrap()
        .commit(&tokens("a2", "r2"))
        .unwrap();
    let second = envelope_of(&path);
    assert_eq!(
        second.sealed_key, first.sealed_key,
        "a refresh must not re-seal"
    );
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(other.load().unwrap(), Some(tokens("a2", "r2")));
    // The same tokens again: nothing is written.
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(
        other.save(&tokens("a2", "r2")).unwrap(),
        SaveOutcome::Unchanged
    );
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert_eq!(envelope_of(&path).nonce, second.nonce);
    // A new pairing: a new data key.
    store.save_pairing(&tokens("a3", "r3")).unwrap();
    assert_ne!(envelope_of(&path).sealed_key, first.sealed_key);
}

#[test]
fn the_two_loads_of_a_refresh_unseal_once() {
    if !swtpm::usable_or_skip("the_two_loads_of_a_refresh_unseal_once") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let sim = Swtpm::start(&dir.path().join("tpm")).unwrap();
    TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()))
        .save_pairing(&tokens("a1", "r1"))
        .unwrap();
    let store = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
    store.load().unwrap();
    drop(sim); // the TPM is gone: only the remembered key can serve what follows
    let clone = store.clone();
    assert_eq!(clone.load().unwrap(), Some(tokens("a1", "r1")));
    clone
        .prepare_save()
        .unwrap()
        .commit(&tokens("a2", "r2"))
        .unwrap();
    assert_eq!(store.load().unwrap(), Some(tokens("a2", "r2")));
}

#[test]
fn another_tpm_a_cleared_tpm_or_none_needs_pairing_again() {
    if !swtpm::usable_or_skip("another_tpm_a_cleared_tpm_or_none_needs_pairing_again") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let sim = Swtpm::start(&dir.path().join("a")).unwrap();
    TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()))
        .save_pairing(&tokens(ACCESS, REFRESH))
        .unwrap();
    let sealed_bytes = fs::read(&path).unwrap();

    let other = Swtpm::start(&dir.path().join("b")).unwrap();
    let err = TokenStore::with_sealing(&path, Sealing::tpm2(other.socket()))
        .load()
        .unwrap_err();
    assert!(err.needs_pairing(), "{err}");
    assert!(
        matches!(
            err,
            StoreError::Unsealable {
                why: UnsealFailure::Foreign(_),
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("sealed on another device"), "{text}");
    assert!(text.contains("0x1df"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");

    sim.clear().unwrap();
    let err = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()))
        .load()
        .unwrap_err();
    assert!(err.needs_pairing(), "{err}");

    let err = TokenStore::with_sealing(&path, Sealing::tpm2(dir.path().join("no-tpm")))
        .load()
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unsealable {
                why: UnsealFailure::Missing(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("which this device does not offer"),
        "{err}"
    );
    // Nothing of this touched the file.
    assert_eq!(fs::read(&path).unwrap(), sealed_bytes);
}

#[test]
fn a_plain_file_is_sealed_at_its_next_write() {
    if !swtpm::usable_or_skip("a_plain_file_is_sealed_at_its_next_write") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    TokenStore::new(&path).save(&tokens("a1", "r1")).unwrap();
    let sim = Swtpm::start(&dir.path().join("tpm")).unwrap();
    let store = TokenStore::with_sealing(&path, Sealing::tpm2(sim.socket()));
    assert!(matches!(
        store.protection().unwrap(),
        Some(Protection::Unprotected { .. })
    ));
    assert_eq!(store.load().unwrap(), Some(tokens("a1", "r1")));
    // The same tokens: still written, because the file must become sealed.
    assert_eq!(
        store.save(&tokens("a1", "r1")).unwrap(),
        SaveOutcome::Written
    );
    assert_eq!(
        store.protection().unwrap(),
        Some(Protection::Sealed(Sealer::Tpm2))
    );
    assert_eq!(store.load().unwrap(), Some(tokens("a1", "r1")));
    // And `seal = "none"` reads a sealed file and writes it plain again.
    let plain = TokenStore::with_sealing(
        &path,
        Sealing {
            tpm_device: sim.socket().to_path_buf(),
            ..Sealing::none()
        },
    );
    assert_eq!(plain.load().unwrap(), Some(tokens("a1", "r1")));
    plain.save(&tokens("a2", "r2")).unwrap();
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("\"format\": \"devauth-tokens\"")
    );
}

#[test]
fn auto_falls_through_to_the_kernel_then_to_none_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let auto = Sealing {
        tpm_device: dir.path().join("no-tpm"),
        ..Sealing::auto()
    };
    // No TPM, a kernel without trusted keys: the plain file, and why.
    let store = TokenStore::with_sealing(&path, auto.clone());
    store.save_pairing(&tokens(ACCESS, REFRESH)).unwrap();
    let Some(Protection::Unprotected { why }) = store.last_protection() else {
        panic!("{:?}", store.last_protection());
    };
    assert!(why.contains("tpm2: no TPM at "), "{why}");
    assert!(why.contains("CONFIG_TRUSTED_KEYS"), "{why}");
    assert!(fs::read_to_string(&path).unwrap().contains(ACCESS));

    // require_sealed: refused, nothing written, the old file kept.
    let before = fs::read(&path).unwrap();
    let strict = TokenStore::with_sealing(
        &path,
        Sealing {
            require_sealed: true,
            ..auto.clone()
        },
    );
    let err = strict.prepare_pairing().unwrap_err();
    assert!(matches!(err, StoreError::NotSealed { .. }), "{err}");
    assert!(err.to_string().contains("require_sealed"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);

    // A kernel with trusted keys: sealed by it.
    let kernel = install_kernel(FakeKernel::new(*b"device-A"));
    let store = TokenStore::with_sealing(&path, auto.clone());
    store.save_pairing(&tokens(ACCESS, REFRESH)).unwrap();
    assert_eq!(
        store.last_protection(),
        Some(Protection::Sealed(Sealer::Kernel))
    );
    assert!(!fs::read_to_string(&path).unwrap().contains("SECRET"));
    assert_eq!(
        TokenStore::with_sealing(&path, auto.clone())
            .load()
            .unwrap(),
        Some(tokens(ACCESS, REFRESH))
    );
    assert!(
        kernel
            .payloads
            .borrow()
            .iter()
            .all(|p| !p.contains("SECRET"))
    );

    // The flash moved to another board: its kernel refuses the blob.
    install_kernel(FakeKernel::new(*b"device-B"));
    let err = TokenStore::with_sealing(&path, auto).load().unwrap_err();
    assert!(err.needs_pairing(), "{err}");
    assert!(
        err.to_string()
            .contains("this device's trusted keys was reset"),
        "{err}"
    );
}

#[test]
fn an_explicit_sealer_that_fails_is_an_error_not_a_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = TokenStore::with_sealing(&path, Sealing::tpm2(dir.path().join("no-tpm")));
    let err = store.save_pairing(&tokens(ACCESS, REFRESH)).unwrap_err();
    assert!(err.to_string().contains("tpm2: no TPM at"), "{err}");
    assert!(!path.exists());
    let kernel = TokenStore::with_sealing(
        &path,
        Sealing {
            choice: SealChoice::Kernel,
            ..Sealing::none()
        },
    );
    let err = kernel.prepare_pairing().unwrap_err();
    assert!(
        err.to_string().contains("kernel: kernel keys: add_key"),
        "{err}"
    );
    assert!(!path.exists());
}

#[test]
fn a_changed_sealed_file_is_corrupt_and_names_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    install_kernel(FakeKernel::new(*b"device-A"));
    let sealing = Sealing {
        choice: SealChoice::Kernel,
        ..Sealing::none()
    };
    let store = TokenStore::with_sealing(&path, sealing.clone());
    store.save_pairing(&tokens(ACCESS, REFRESH)).unwrap();
    let good = fs::read_to_string(&path).unwrap();
    // The client in clear changed: the associated data no longer matches.
    let other_client = good.replace("\"client-123\"", "\"client-999\"");
    fs::write(&path, &other_client).unwrap();
    let err = TokenStore::with_sealing(&path, sealing.clone())
        .load()
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("changed after it was written"),
        "{err}"
    );
    // A flipped ciphertext character.
    let env = sealed::parse_envelope(good.as_bytes()).unwrap();
    let mut ct = env.ciphertext.clone();
    ct[5] ^= 1;
    let flipped = good.replace(
        &crate::net::wire::base64_encode(&env.ciphertext),
        &crate::net::wire::base64_encode(&ct),
    );
    assert_ne!(flipped, good);
    fs::write(&path, &flipped).unwrap();
    let err = TokenStore::with_sealing(&path, sealing).load().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!err.to_string().contains("SECRET"), "{err}");
}
