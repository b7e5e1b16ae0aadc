//! The TPM 2.0 commands devauth sends (TPM 2.0 Library, Part 3), each as a pure function that
//! builds the command's bytes and one that reads the parameters of its successful response:
//! CreatePrimary, Create, Load, Unseal, Sign, FlushContext and GetCapability(handles). No I/O:
//! `device.rs` carries the bytes; unit tests feed these parsers canned and hostile answers.
//!
//! The templates are part of the stored format: the storage primary is re-created from the
//! owner seed on every use, and only the same template gives back the same key, so changing a
//! byte of [`primary_template`] would make every sealed blob in the field unloadable.

use super::marshal::{Command, Malformed, Reader, ST_NO_SESSIONS, ST_SESSIONS, build};

pub(super) const CC_CREATE_PRIMARY: u32 = 0x131;
pub(super) const CC_CREATE: u32 = 0x153;
pub(super) const CC_LOAD: u32 = 0x157;
pub(super) const CC_SIGN: u32 = 0x15D;
pub(super) const CC_UNSEAL: u32 = 0x15E;
pub(super) const CC_FLUSH_CONTEXT: u32 = 0x165;
pub(super) const CC_GET_CAPABILITY: u32 = 0x17A;

/// `TPM_RH_OWNER`: the storage hierarchy, whose seed a TPM clear replaces.
const RH_OWNER: u32 = 0x4000_0001;
/// `TPM_RH_NULL`, for the empty hash-check ticket of TPM2_Sign.
const RH_NULL: u32 = 0x4000_0007;

const ALG_AES: u16 = 0x0006;
const ALG_KEYEDHASH: u16 = 0x0008;
const ALG_SHA256: u16 = 0x000B;
const ALG_NULL: u16 = 0x0010;
const ALG_ECDSA: u16 = 0x0018;
const ALG_ECC: u16 = 0x0023;
const ALG_CFB: u16 = 0x0043;
const ECC_NIST_P256: u16 = 0x0003;
const ST_HASHCHECK: u16 = 0x8024;

// TPMA_OBJECT bits (Part 2 §8.3).
const FIXED_TPM: u32 = 1 << 1;
const FIXED_PARENT: u32 = 1 << 4;
const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
const USER_WITH_AUTH: u32 = 1 << 6;
/// Not subject to dictionary-attack lockout: the authorization is empty, there is nothing to
/// guess, and a lockout must never be able to brick the token store.
const NO_DA: u32 = 1 << 10;
const RESTRICTED: u32 = 1 << 16;
const DECRYPT: u32 = 1 << 17;
const SIGN: u32 = 1 << 18;

/// Largest `TPM2B_PRIVATE` / `TPM2B_PUBLIC` accepted, from the TPM or from flash. The objects
/// devauth makes are about 130 and 80 bytes (ECC keys a little more).
pub(super) const MAX_OBJECT_PART: usize = 1024;
/// Largest sealed payload (`MAX_SYM_DATA` is 128 on every TPM).
pub(super) const MAX_SEALED_DATA: usize = 128;
const MAX_NAME: usize = 2 + 64; // nameAlg + the largest digest
const MAX_ECC_PARAMETER: usize = 66; // P-521; P-256 values are 32

/// The storage primary: the TCG's ECC P-256 storage-key shape (restricted decryption key, AES-128
/// CFB for its children) with an empty `unique`, under the owner hierarchy. Deterministic: the
/// same TPM with the same owner seed always gives the same key.
fn primary_template() -> Vec<u8> {
    build(&|c| {
        c.u16(ALG_ECC).u16(ALG_SHA256).u32(
            FIXED_TPM
                | FIXED_PARENT
                | SENSITIVE_DATA_ORIGIN
                | USER_WITH_AUTH
                | NO_DA
                | RESTRICTED
                | DECRYPT,
        );
        c.sized(&[]); // authPolicy
        c.u16(ALG_AES).u16(128).u16(ALG_CFB); // symmetric
        c.u16(ALG_NULL).u16(ECC_NIST_P256).u16(ALG_NULL); // scheme, curve, kdf
        c.sized(&[]).sized(&[]); // unique x, y
    })
}

/// A sealed data object: a keyed-hash object with no scheme whose sensitive part is `data`,
/// usable with an empty password, bound to this TPM (`fixedTPM`, `fixedParent`).
fn sealed_template() -> Vec<u8> {
    build(&|c| {
        c.u16(ALG_KEYEDHASH)
            .u16(ALG_SHA256)
            .u32(FIXED_TPM | FIXED_PARENT | USER_WITH_AUTH | NO_DA);
        c.sized(&[]); // authPolicy
        c.u16(ALG_NULL); // scheme
        c.sized(&[]); // unique
    })
}

/// An ECC P-256 signing key made inside the TPM (ECDSA with SHA-256), bound to this TPM.
fn signing_template() -> Vec<u8> {
    build(&|c| {
        c.u16(ALG_ECC)
            .u16(ALG_SHA256)
            .u32(FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA | SIGN);
        c.sized(&[]); // authPolicy
        c.u16(ALG_NULL); // symmetric: none for a signing key
        c.u16(ALG_ECDSA).u16(ALG_SHA256); // scheme
        c.u16(ECC_NIST_P256).u16(ALG_NULL); // curve, kdf
        c.sized(&[]).sized(&[]); // unique x, y
    })
}

/// `TPM2B_SENSITIVE_CREATE` with an empty userAuth and `data`.
fn sensitive_create(data: &[u8]) -> Vec<u8> {
    build(&|c| {
        c.sized(&[]).sized(data);
    })
}

/// The creation arguments every create command ends with: empty outsideInfo, no PCRs.
fn no_creation_data(c: &mut Command) {
    c.sized(&[]).u32(0);
}

pub(super) fn create_primary() -> Vec<u8> {
    let mut c = Command::new(ST_SESSIONS, CC_CREATE_PRIMARY);
    c.u32(RH_OWNER).password_session();
    c.sized(&sensitive_create(&[])).sized(&primary_template());
    no_creation_data(&mut c);
    c.finish()
}

/// What TPM2_Create makes under the primary.
pub(super) enum Child<'a> {
    /// A sealed data object holding these bytes.
    Sealed(&'a [u8]),
    /// An ECC P-256 signing key generated by the TPM.
    SigningKey,
}

pub(super) fn create(parent: u32, child: Child<'_>) -> Vec<u8> {
    let mut c = Command::new(ST_SESSIONS, CC_CREATE);
    c.u32(parent).password_session();
    match child {
        Child::Sealed(data) => c.sized(&sensitive_create(data)).sized(&sealed_template()),
        Child::SigningKey => c.sized(&sensitive_create(&[])).sized(&signing_template()),
    };
    no_creation_data(&mut c);
    c.finish()
}

/// `blob` is a stored `TPM2B_PRIVATE` followed by a `TPM2B_PUBLIC`, sent as it is.
pub(super) fn load(parent: u32, blob: &[u8]) -> Vec<u8> {
    let mut c = Command::new(ST_SESSIONS, CC_LOAD);
    c.u32(parent).password_session().raw(blob);
    c.finish()
}

pub(super) fn unseal(item: u32) -> Vec<u8> {
    let mut c = Command::new(ST_SESSIONS, CC_UNSEAL);
    c.u32(item).password_session();
    c.finish()
}

pub(super) fn sign(key: u32, digest: &[u8; 32]) -> Vec<u8> {
    let mut c = Command::new(ST_SESSIONS, CC_SIGN);
    c.u32(key).password_session();
    c.sized(digest).u16(ALG_ECDSA).u16(ALG_SHA256);
    // An empty hash-check ticket: allowed for a key that is not restricted.
    c.u16(ST_HASHCHECK).u32(RH_NULL).sized(&[]);
    c.finish()
}

pub(super) fn flush_context(handle: u32) -> Vec<u8> {
    let mut c = Command::new(ST_NO_SESSIONS, CC_FLUSH_CONTEXT);
    c.u32(handle);
    c.finish()
}

/// First transient handle, and how many to ask for at once.
pub(super) const TRANSIENT_FIRST: u32 = 0x8000_0000;
const HANDLES_PER_ASK: u32 = 32;

/// TPM2_GetCapability(TPM_CAP_HANDLES) from `first` on.
pub(super) fn get_handles(first: u32) -> Vec<u8> {
    let mut c = Command::new(ST_NO_SESSIONS, CC_GET_CAPABILITY);
    c.u32(1).u32(first).u32(HANDLES_PER_ASK); // TPM_CAP_HANDLES
    c.finish()
}

/// The transient handles listed in a GetCapability answer, and whether there are more.
pub(super) fn read_handles(params: &mut Reader<'_>) -> Result<(Vec<u32>, bool), Malformed> {
    let bad = "the handle list is malformed";
    let more = params.take(1, bad)?.first().copied().unwrap_or(0) != 0;
    if params.u32(bad)? != 1 {
        return Err("the capability answered is not the handle list");
    }
    let count = params.u32(bad)?;
    if count > HANDLES_PER_ASK {
        return Err("the TPM listed more handles than asked for");
    }
    let handles = (0..count)
        .map(|_| params.u32(bad))
        .collect::<Result<Vec<u32>, _>>()?;
    Ok((handles, more))
}

/// TPM2_Create's `outPrivate` and `outPublic`, each with its size prefix: together, the blob
/// that TPM2_Load takes back.
pub(super) fn read_created(params: &mut Reader<'_>) -> Result<Vec<u8>, Malformed> {
    let private = params.sized_whole(
        MAX_OBJECT_PART,
        "the new object's private part is malformed",
    )?;
    let public =
        params.sized_whole(MAX_OBJECT_PART, "the new object's public part is malformed")?;
    let mut blob = Vec::with_capacity(private.len() + public.len());
    blob.extend_from_slice(private);
    blob.extend_from_slice(public);
    Ok(blob)
}

/// Checks that `blob` is exactly a `TPM2B_PRIVATE` then a `TPM2B_PUBLIC` within the limits, and
/// returns the public area (inside its size prefix).
pub(super) fn split_blob(blob: &[u8]) -> Result<&[u8], Malformed> {
    let mut r = Reader::new(blob);
    r.sized(
        MAX_OBJECT_PART,
        "the stored TPM object's private part is malformed",
    )?;
    let public = r.sized(
        MAX_OBJECT_PART,
        "the stored TPM object's public part is malformed",
    )?;
    if !r.is_empty() {
        return Err("the stored TPM object has bytes after its public part");
    }
    Ok(public)
}

/// TPM2_Load's answer carries the object's name after the handle; read it so the answer is
/// checked whole.
pub(super) fn read_loaded(params: &mut Reader<'_>) -> Result<(), Malformed> {
    params.sized(MAX_NAME, "the loaded object's name is malformed")?;
    Ok(())
}

pub(super) fn read_unsealed(params: &mut Reader<'_>) -> Result<Vec<u8>, Malformed> {
    Ok(params
        .sized(MAX_SEALED_DATA, "the unsealed data is malformed")?
        .to_vec())
}

/// An ECC parameter left-padded to 32 bytes (a TPM may drop leading zero bytes).
fn p256_coordinate(v: &[u8], what: Malformed) -> Result<[u8; 32], Malformed> {
    let mut out = [0u8; 32];
    let skip = v.iter().take_while(|b| **b == 0).count();
    let v = v.get(skip..).unwrap_or(&[]);
    let start = 32usize.checked_sub(v.len()).ok_or(what)?;
    out.get_mut(start..).ok_or(what)?.copy_from_slice(v);
    Ok(out)
}

/// TPM2_Sign's `TPMT_SIGNATURE` as r‖s (64 bytes), the form JWS ES256 uses (RFC 7518 §3.4).
pub(super) fn read_signature(params: &mut Reader<'_>) -> Result<Vec<u8>, Malformed> {
    let bad = "the signature is malformed";
    if params.u16(bad)? != ALG_ECDSA || params.u16(bad)? != ALG_SHA256 {
        return Err("the signature is not ECDSA with SHA-256");
    }
    let r = p256_coordinate(params.sized(MAX_ECC_PARAMETER, bad)?, bad)?;
    let s = p256_coordinate(params.sized(MAX_ECC_PARAMETER, bad)?, bad)?;
    Ok([r, s].concat())
}

/// The point of an ECC P-256 signing key's `TPMT_PUBLIC` (inside the blob devauth stored), after
/// checking that it is the kind of key [`signing_template`] makes.
pub(super) fn read_signing_public(public: &[u8]) -> Result<([u8; 32], [u8; 32]), Malformed> {
    let bad = "the stored key's public part is malformed";
    let mut r = Reader::new(public);
    let kind = (r.u16(bad)?, r.u16(bad)?); // type, nameAlg
    let attributes = r.u32(bad)?;
    r.sized(64, bad)?; // authPolicy
    let params = (
        r.u16(bad)?,
        r.u16(bad)?,
        r.u16(bad)?,
        r.u16(bad)?,
        r.u16(bad)?,
    );
    if kind != (ALG_ECC, ALG_SHA256)
        || attributes & SIGN == 0
        || params != (ALG_NULL, ALG_ECDSA, ALG_SHA256, ECC_NIST_P256, ALG_NULL)
    {
        return Err("the stored key is not an ECDSA P-256 signing key");
    }
    let x = p256_coordinate(r.sized(MAX_ECC_PARAMETER, bad)?, bad)?;
    let y = p256_coordinate(r.sized(MAX_ECC_PARAMETER, bad)?, bad)?;
    if !r.is_empty() {
        return Err(bad);
    }
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The sizes measured with the probe in /work/shared/notes/sealing.md: the same bytes mean
    // the same keys as that probe made.
    #[test]
    fn commands_have_the_sizes_of_the_measured_probe() {
        assert_eq!(create_primary().len(), 67);
        assert_eq!(create(0x8000_0000, Child::Sealed(&[7; 32])).len(), 87);
        assert_eq!(load(0x8000_0000, &[0; 208]).len(), 235);
        assert_eq!(unseal(0x8000_0001).len(), 27);
        assert_eq!(flush_context(0x8000_0001).len(), 14);
    }

    #[test]
    fn the_primary_template_never_changes() {
        // A changed template means a different primary and unloadable blobs in the field.
        let t = primary_template();
        assert_eq!(
            t,
            [
                0x00, 0x23, 0x00, 0x0B, 0x00, 0x03, 0x04, 0x72, 0x00, 0x00, 0x00, 0x06, 0x00, 0x80,
                0x00, 0x43, 0x00, 0x10, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00
            ]
        );
        assert_eq!(
            sealed_template(),
            [
                0x00, 0x08, 0x00, 0x0B, 0x00, 0x00, 0x04, 0x52, 0, 0, 0x00, 0x10, 0, 0
            ]
        );
    }

    #[test]
    fn handles_list_is_bounded() {
        let mut ok = Reader::new(&[0, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0, 0, 0, 0x80, 0, 0, 1]);
        assert_eq!(
            read_handles(&mut ok),
            Ok((vec![0x8000_0000, 0x8000_0001], false))
        );
        let mut huge = Reader::new(&[1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(read_handles(&mut huge).is_err());
        let mut short = Reader::new(&[0, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0, 0, 0]);
        assert!(read_handles(&mut short).is_err());
        let mut other = Reader::new(&[0, 0, 0, 0, 6, 0, 0, 0, 0]);
        assert!(read_handles(&mut other).is_err());
    }

    #[test]
    fn a_blob_is_exactly_private_then_public() {
        assert!(split_blob(&[0, 1, 9, 0, 2, 7, 7]).is_ok());
        assert_eq!(split_blob(&[0, 1, 9, 0, 2, 7, 7]), Ok(&[7, 7][..]));
        assert!(split_blob(&[0, 1, 9, 0, 2, 7, 7, 0]).is_err());
        assert!(split_blob(&[0, 1, 9, 0, 3, 7, 7]).is_err());
        assert!(split_blob(&[]).is_err());
        let mut huge = vec![0x04, 0x01];
        huge.resize(0x401 + 2, 0);
        huge.extend_from_slice(&[0, 0]);
        assert!(split_blob(&huge).is_err());
    }

    #[test]
    fn signatures_are_padded_and_checked() {
        let mut bytes = vec![0x00, 0x18, 0x00, 0x0B, 0x00, 0x1F];
        bytes.extend_from_slice(&[0xAB; 31]);
        bytes.extend_from_slice(&[0x00, 0x21, 0x00]); // 33 bytes with a leading zero
        bytes.extend_from_slice(&[0xCD; 32]);
        let sig = read_signature(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(sig[0], 0);
        assert_eq!(&sig[1..32], &[0xAB; 31]);
        assert_eq!(&sig[32..], &[0xCD; 32]);
        // 33 significant bytes do not fit a P-256 value.
        let mut long = vec![0x00, 0x18, 0x00, 0x0B, 0x00, 0x21];
        long.extend_from_slice(&[0xAB; 33]);
        long.extend_from_slice(&[0x00, 0x01, 0x01]);
        assert!(read_signature(&mut Reader::new(&long)).is_err());
        // RSA-PSS is not what was asked for.
        assert!(read_signature(&mut Reader::new(&[0x00, 0x16, 0x00, 0x0B])).is_err());
    }

    #[test]
    fn only_our_kind_of_signing_key_is_read() {
        let mut public = signing_template();
        // unique: a real point
        public.truncate(public.len() - 4);
        public.extend_from_slice(&[0, 32]);
        public.extend_from_slice(&[1; 32]);
        public.extend_from_slice(&[0, 32]);
        public.extend_from_slice(&[2; 32]);
        assert_eq!(read_signing_public(&public), Ok(([1; 32], [2; 32])));
        let mut sealed = sealed_template();
        sealed.extend_from_slice(&[0; 8]);
        assert!(read_signing_public(&sealed).is_err());
        let mut trailing = public.clone();
        trailing.push(0);
        assert!(read_signing_public(&trailing).is_err());
    }
}
