//! TPM 2.0 byte order and framing (TPM 2.0 Library, Part 1 §18 and Part 2): big-endian integers,
//! size-prefixed `TPM2B_*` buffers, the command header, the password authorization area, and a
//! bounded reader for responses. Every response byte is hostile: the reader never indexes past
//! what it was given and names what was wrong.

/// `TPM_ST_NO_SESSIONS`: a command or response without an authorization area.
pub(super) const ST_NO_SESSIONS: u16 = 0x8001;
/// `TPM_ST_SESSIONS`: with one.
pub(super) const ST_SESSIONS: u16 = 0x8002;
/// `TPM_RS_PW`: the password session (Part 1 §19.6.13); devauth always sends an empty password.
const RS_PW: u32 = 0x4000_0009;
/// Response header: tag (2), size (4), response code (4).
pub(super) const HEADER_LEN: usize = 10;
/// Largest response read. TPMs report `TPM_PT_MAX_RESPONSE_SIZE`, commonly 4096; nothing devauth
/// asks for comes near it.
pub(super) const MAX_RESPONSE: usize = 4096;

/// A command being built: the header is written first and its size patched at the end.
pub(super) struct Command {
    bytes: Vec<u8>,
}

impl Command {
    pub(super) fn new(tag: u16, code: u32) -> Command {
        let mut c = Command {
            bytes: Vec::with_capacity(256),
        };
        c.u16(tag).u32(0).u32(code);
        c
    }

    pub(super) fn u16(&mut self, v: u16) -> &mut Command {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(super) fn u32(&mut self, v: u32) -> &mut Command {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(super) fn raw(&mut self, v: &[u8]) -> &mut Command {
        self.bytes.extend_from_slice(v);
        self
    }

    /// A `TPM2B_*`: a 16-bit size, then the bytes. Callers pass buffers well under 64 KiB (keys,
    /// digests, templates); a longer one is cut to the size written, which the TPM then refuses.
    pub(super) fn sized(&mut self, v: &[u8]) -> &mut Command {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.raw(v.get(..usize::from(len)).unwrap_or(v))
    }

    /// The authorization area with one password session and an empty password: the object
    /// and hierarchy authorizations devauth uses are all empty (`userWithAuth`, no owner
    /// password). Goes right after the handles.
    pub(super) fn password_session(&mut self) -> &mut Command {
        // sessionHandle (4) + nonce (2) + attributes (1) + hmac (2)
        self.u32(9).u32(RS_PW).u16(0).raw(&[0]).u16(0)
    }

    /// The finished command, its size patched into the header.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        if let Some(size) = self.bytes.get_mut(2..6) {
            size.copy_from_slice(&len.to_be_bytes());
        }
        self.bytes
    }
}

/// Bytes of a `TPMT_PUBLIC` (or any nested structure) built before being wrapped in a `TPM2B`.
pub(super) fn build(f: &dyn Fn(&mut Command)) -> Vec<u8> {
    let mut c = Command { bytes: Vec::new() };
    f(&mut c);
    c.bytes
}

/// Why a response (or a stored blob) could not be read.
pub(super) type Malformed = &'static str;

/// Reads a response front to back; every read is bounds-checked.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(super) fn take(&mut self, n: usize, what: Malformed) -> Result<&'a [u8], Malformed> {
        if n > self.bytes.len() {
            return Err(what);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn u16(&mut self, what: Malformed) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    }

    pub(super) fn u32(&mut self, what: Malformed) -> Result<u32, Malformed> {
        let hi = self.u16(what)?;
        let lo = self.u16(what)?;
        Ok(u32::from(hi) << 16 | u32::from(lo))
    }

    /// A `TPM2B_*` of at most `max` bytes.
    pub(super) fn sized(&mut self, max: usize, what: Malformed) -> Result<&'a [u8], Malformed> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(what);
        }
        self.take(len, what)
    }

    /// A `TPM2B_*` with its size prefix, as it was (to be sent back to the TPM unchanged).
    pub(super) fn sized_whole(
        &mut self,
        max: usize,
        what: Malformed,
    ) -> Result<&'a [u8], Malformed> {
        let start = self.bytes;
        let inner = self.sized(max, what)?;
        Ok(start.get(..inner.len() + 2).unwrap_or(&[]))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The parts of a well-formed response: its tag and what follows the header. Checks the size
/// field against the bytes received.
pub(super) fn split_response(bytes: &[u8]) -> Result<(u16, u32, &[u8]), Malformed> {
    let mut r = Reader::new(bytes);
    let tag = r.u16("the response is shorter than its header")?;
    let size = r.u32("the response is shorter than its header")?;
    let rc = r.u32("the response is shorter than its header")?;
    if usize::try_from(size).ok() != Some(bytes.len()) {
        return Err("the response's size field does not match its length");
    }
    if tag != ST_NO_SESSIONS && tag != ST_SESSIONS {
        return Err("the response has an unknown tag");
    }
    Ok((tag, rc, r.rest()))
}

/// The parameter area of a successful response to a command sent with sessions: after the
/// handle (when `with_handle`; commands that create or load an object answer one) comes
/// `parameterSize`, the parameters, then the authorization area (not
/// read: the password session's carries nothing devauth checks). Returns the handle and a
/// reader over exactly the parameters.
pub(super) fn parameters(
    tag: u16,
    body: &[u8],
    with_handle: bool,
) -> Result<(u32, Reader<'_>), Malformed> {
    let mut r = Reader::new(body);
    let handle = if with_handle {
        r.u32("the response ends inside its handles")?
    } else {
        0
    };
    if tag != ST_SESSIONS {
        return Ok((handle, r));
    }
    let len = usize::try_from(r.u32("the response has no parameter size")?).unwrap_or(usize::MAX);
    let params = r.take(
        len,
        "the response's parameter size is larger than the response",
    )?;
    Ok((handle, Reader::new(params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_has_its_size_patched() {
        let mut c = Command::new(ST_NO_SESSIONS, 0x17B);
        c.u16(8);
        assert_eq!(
            c.finish(),
            [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8]
        );
    }

    #[test]
    fn the_password_session_is_nine_bytes_behind_its_size() {
        let mut c = Command::new(ST_SESSIONS, 0x15E);
        c.password_session();
        let bytes = c.finish();
        assert_eq!(&bytes[10..], &[0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn reader_refuses_to_run_past_the_end() {
        let mut r = Reader::new(&[0, 5, 1, 2]);
        assert_eq!(r.sized(64, "short"), Err("short"));
        let mut r = Reader::new(&[0, 2, 1, 2, 9]);
        assert_eq!(r.sized(1, "too big"), Err("too big"));
        let mut r = Reader::new(&[0, 2, 1, 2, 9]);
        assert_eq!(r.sized_whole(2, "x"), Ok(&[0, 2, 1, 2][..]));
        assert_eq!(r.rest(), &[9]);
        assert_eq!(Reader::new(&[1]).u32("u32"), Err("u32"));
    }

    #[test]
    fn a_response_must_say_its_own_length_and_a_known_tag() {
        let ok = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
        assert_eq!(split_response(&ok), Ok((ST_NO_SESSIONS, 0, &[][..])));
        let mut long = ok.to_vec();
        long.push(0);
        assert!(split_response(&long).is_err());
        let mut tag = ok;
        tag[1] = 0xC4;
        assert!(split_response(&tag).is_err());
        assert!(split_response(&ok[..9]).is_err());
        assert!(split_response(&[]).is_err());
    }

    #[test]
    fn parameters_are_bounded_by_their_size() {
        // one handle, parameterSize 3 but only 2 bytes follow
        let body = [0, 0, 0, 1, 0, 0, 0, 3, 7, 7];
        assert!(parameters(ST_SESSIONS, &body, true).is_err());
        let body = [0x80, 0, 0, 1, 0, 0, 0, 2, 7, 7, 0xAA];
        let (h, r) = parameters(ST_SESSIONS, &body, true).unwrap();
        assert_eq!(h, 0x8000_0001);
        assert_eq!(r.rest(), &[7, 7]);
        assert!(parameters(ST_SESSIONS, &[0, 0, 0], true).is_err());
        // no handle: the parameter size comes first
        let (h, r) = parameters(ST_SESSIONS, &[0, 0, 0, 1, 5], false).unwrap();
        assert_eq!((h, r.rest()), (0, &[5][..]));
    }
}
