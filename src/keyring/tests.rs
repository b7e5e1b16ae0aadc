//! The trusted-key logic against a fake kernel that behaves as the measured one does
//! (/work/shared/notes/sealing.md): `new 32` makes a random key sealed to "this device",
//! `KEYCTL_READ` gives the blob's hex and never the key, `load` on another device fails with
//! EPERM, HMAC keyed by serial; and any step can be made to fail with a chosen errno.

use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// A fake kernel with a trust source bound to `device` (any 8 bytes).
pub(crate) struct FakeKernel {
    device: [u8; 8],
    keys: RefCell<HashMap<i32, [u8; 32]>>,
    next: RefCell<i32>,
    /// Steps that fail, with the errno they fail with.
    pub(crate) failing: RefCell<HashMap<Step, i32>>,
    /// Payloads `add_trusted` was given (to check options and that no key material is sent).
    pub(crate) payloads: RefCell<Vec<String>>,
    pub(crate) invalidated: RefCell<Vec<i32>>,
}

impl FakeKernel {
    pub(crate) fn new(device: [u8; 8]) -> FakeKernel {
        FakeKernel {
            device,
            keys: RefCell::new(HashMap::new()),
            next: RefCell::new(100),
            failing: RefCell::new(HashMap::new()),
            payloads: RefCell::new(Vec::new()),
            invalidated: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn fail(&self, step: Step, errno: i32) {
        self.failing.borrow_mut().insert(step, errno);
    }

    fn check(&self, step: Step) -> io::Result<()> {
        match self.failing.borrow().get(&step) {
            Some(errno) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }

    /// The "sealing" of this fake trust source: the key XORed with a pad derived from the
    /// device, after the device's tag (so another device can tell the blob is not its own).
    fn seal(&self, key: &[u8; 32]) -> Vec<u8> {
        let pad = ring::digest::digest(&ring::digest::SHA256, &self.device);
        let mut blob = self.device.to_vec();
        blob.extend(key.iter().zip(pad.as_ref()).map(|(k, p)| k ^ p));
        blob
    }

    fn unseal(&self, blob: &[u8]) -> io::Result<[u8; 32]> {
        if blob.len() != 40 || blob[..8] != self.device {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let pad = ring::digest::digest(&ring::digest::SHA256, &self.device);
        let mut key = [0u8; 32];
        for (i, (b, p)) in blob[8..].iter().zip(pad.as_ref()).enumerate() {
            key[i] = b ^ p;
        }
        Ok(key)
    }
}

impl KernelKeys for FakeKernel {
    fn add_trusted(&self, _description: &str, payload: &[u8]) -> io::Result<i32> {
        let text = String::from_utf8(payload.to_vec()).unwrap();
        self.payloads.borrow_mut().push(text.clone());
        let key = if let Some(rest) = text.strip_prefix("new 32") {
            self.check(Step::AddNew)?;
            assert!(rest.is_empty() || rest.starts_with(' '));
            let mut key = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).unwrap();
            key
        } else if let Some(rest) = text.strip_prefix("load ") {
            self.check(Step::AddLoad)?;
            let hex = rest.split(' ').next().unwrap();
            let blob =
                from_hex(hex.as_bytes()).ok_or(io::Error::from_raw_os_error(libc::EINVAL))?;
            self.unseal(&blob)?
        } else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let serial = *self.next.borrow();
        *self.next.borrow_mut() += 1;
        self.keys.borrow_mut().insert(serial, key);
        Ok(serial)
    }

    fn read(&self, serial: i32) -> io::Result<Vec<u8>> {
        self.check(Step::Read)?;
        let key = *self
            .keys
            .borrow()
            .get(&serial)
            .ok_or(io::Error::from_raw_os_error(libc::ENOKEY))?;
        let hex: String = self.seal(&key).iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{hex}\n").into_bytes())
    }

    fn hmac_sha256(&self, serial: i32, message: &[u8]) -> Result<[u8; 32], KeyringError> {
        for step in [
            Step::AlgSocket,
            Step::AlgBind,
            Step::AlgSetKey,
            Step::AlgHash,
        ] {
            self.check(step).map_err(|e| KeyringError::new(step, e))?;
        }
        let key = *self.keys.borrow().get(&serial).ok_or(KeyringError::new(
            Step::AlgSetKey,
            io::Error::from_raw_os_error(libc::ENOKEY),
        ))?;
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            message,
        );
        Ok(tag.as_ref().try_into().unwrap())
    }

    fn invalidate(&self, serial: i32) {
        self.keys.borrow_mut().remove(&serial);
        self.invalidated.borrow_mut().push(serial);
    }
}

#[test]
fn a_created_key_is_derived_again_from_its_blob_on_the_same_device_only() {
    let kernel = FakeKernel::new(*b"device-A");
    let (blob, key) = create(&kernel, "keyhandle=0x81000001").unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(blob.len(), 40);
    assert_eq!(
        kernel.payloads.borrow()[0],
        "new 32 keyhandle=0x81000001",
        "the options follow the command"
    );
    // Used, then gone: nothing stays in the keyring.
    assert!(kernel.keys.borrow().is_empty());
    assert_eq!(kernel.invalidated.borrow().len(), 1);

    let again = derive(&kernel, &blob, "keyhandle=0x81000001").unwrap();
    assert_eq!(again.expose(), key.expose());
    let load = kernel.payloads.borrow()[1].clone();
    assert!(
        load.starts_with("load ") && load.ends_with(" keyhandle=0x81000001"),
        "{load}"
    );
    assert!(kernel.keys.borrow().is_empty());

    let other = FakeKernel::new(*b"device-B");
    let err = derive(&other, &blob, "keyhandle=0x81000001").unwrap_err();
    assert!(err.is_foreign(), "{err}");
    assert!(
        err.to_string().contains("sealed on another device"),
        "{err}"
    );
}

#[test]
fn the_data_key_is_not_the_trusted_key() {
    // The kernel keeps the trusted key; what devauth gets is an HMAC of a label under it.
    let kernel = FakeKernel::new(*b"device-A");
    let (blob, key) = create(&kernel, "").unwrap();
    let trusted = kernel.unseal(&blob).unwrap();
    assert_ne!(key.expose(), &trusted);
    assert_eq!(kernel.payloads.borrow()[0], "new 32");
}

#[test]
fn unsupported_kernels_are_told_apart_from_failures() {
    let cases = [
        (Step::AddNew, libc::ENODEV, true, "CONFIG_TRUSTED_KEYS"),
        (Step::AlgSocket, libc::EAFNOSUPPORT, true, "no AF_ALG"),
        (Step::AlgBind, libc::ENOENT, true, "algif_hash"),
        (
            Step::AlgSetKey,
            libc::ENOPROTOOPT,
            true,
            "Linux 6.2 or later",
        ),
        (Step::AddNew, libc::EINVAL, false, "keyhandle=0x81000001"),
        (Step::AddNew, libc::EACCES, false, "Permission denied"),
    ];
    for (step, errno, unsupported, says) in cases {
        let kernel = FakeKernel::new(*b"device-A");
        kernel.fail(step, errno);
        let err = create(&kernel, "").unwrap_err();
        assert_eq!(err.is_unsupported(), unsupported, "{step:?}: {err}");
        assert!(!err.is_foreign(), "{err}");
        assert!(err.to_string().contains(says), "{step:?}: {err}");
        // Even a failed derivation leaves no key behind.
        assert!(kernel.keys.borrow().is_empty(), "{step:?}");
    }
}

#[test]
fn hostile_blobs_are_refused_before_the_kernel_sees_them() {
    let kernel = FakeKernel::new(*b"device-A");
    assert!(matches!(
        derive(&kernel, &[], ""),
        Err(KeyringError::BadBlob(_))
    ));
    assert!(matches!(
        derive(&kernel, &vec![0; MAX_BLOB + 1], ""),
        Err(KeyringError::BadBlob(_))
    ));
    assert!(kernel.payloads.borrow().is_empty());
    assert_eq!(from_hex(b"0aFf\0junk"), Some(vec![0x0a, 0xff]));
    assert_eq!(from_hex(b"0a f"), None);
    assert_eq!(from_hex(b"abc"), None);
    assert_eq!(from_hex(b""), None);
    assert_eq!(from_hex(b"zz"), None);
}

/// The real system calls on the machine running the tests: whatever the kernel supports, the
/// answer is a classified error or a working key, never a panic. On kernels without trusted
/// keys (Debian's, most CI machines) this checks the ENODEV path for real.
#[test]
fn the_running_kernel_answers_with_a_clear_result() {
    match create(&Syscalls, "") {
        Ok((blob, key)) => {
            assert_eq!(key.len(), 32);
            let again = derive(&Syscalls, &blob, "").expect("load the key just made");
            assert_eq!(again.expose(), key.expose());
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("kernel keys: "), "{text}");
            eprintln!("this kernel: {text}");
        }
    }
}

/// The real AF_ALG path, keyed by serial, on the running kernel with a `user` key (which, unlike
/// a trusted key, any kernel has and whose value the test knows): the kernel's HMAC must equal
/// ring's. Where the kernel cannot key AF_ALG by serial (before 6.2) or has no AF_ALG hash, it
/// says so and the test checks that this is classified as unsupported.
#[test]
fn the_kernel_computes_the_hmac_keyed_by_serial() {
    let key = [0x42u8; 32];
    let serial = match sys::add_key("user", "devauth:test:hmac", &key) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIPPED: add_key(user) failed here: {e}");
            return;
        }
    };
    let message = b"devauth token store data key v1";
    let result = Syscalls.hmac_sha256(serial, message);
    assert_eq!(
        Syscalls.read(serial).unwrap(),
        key,
        "a user key reads back as itself"
    );
    Syscalls.invalidate(serial);
    match result {
        Ok(mac) => {
            let want = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
                message,
            );
            assert_eq!(&mac[..], want.as_ref());
        }
        Err(e) => {
            assert!(e.is_unsupported(), "{e}");
            eprintln!("this kernel cannot key AF_ALG by serial: {e}");
        }
    }
}
