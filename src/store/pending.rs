//! Sign-ins started by `devauth authorize-url` and not yet finished by `devauth exchange`: each
//! one's `state`, PKCE `code_verifier` and redirect URI, kept between the two processes in
//! `<token file>.pending` beside the token file (mode 0600, written atomically like the token
//! file, under its own lock) until it is exchanged or expires.
//!
//! The verifier is as secret as a refresh token for the few minutes it lives: whoever holds it
//! and the code can redeem the code. So the file gets the token file's care, and a request is
//! taken out of it *before* its code is exchanged: a code is single-use, and a failed exchange
//! must be started again, not retried with the same verifier.
//!
//! The rules (which requests survive a new one, which one a redirect finishes) are pure
//! functions over a list, unit-tested below; [`PendingStore`] only reads and writes the file.

use super::*;
use crate::secret::constant_time_eq;

/// The `"format"` value of a pending file.
pub const PENDING_FORMAT: &str = "devauth-pending";
/// How many requests named by `--state` may wait at once.
pub const MAX_PENDING: usize = 16;
/// Longest redirect URI kept (the authorization URL must still fit a browser's limits).
pub const MAX_REDIRECT_URI: usize = 2048;
/// Longest `state` kept.
pub const MAX_STATE: usize = 512;
/// Longest `code_verifier` kept (RFC 7636 §4.1 allows 128 characters).
pub const MAX_VERIFIER: usize = 128;

/// One started sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignIn {
    pub state: Secret,
    pub verifier: Secret,
    pub redirect_uri: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds after which `exchange` refuses it.
    pub expires: i64,
    /// Started with `--state`: it waits beside others. Without, a new request replaces it.
    pub named: bool,
}

/// What [`take`] found for a `state`.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(PendingSignIn),
    /// It was there but expired `ago` seconds ago.
    Expired {
        ago: i64,
    },
    /// No request with this state (none at all when `pending` is 0).
    Unknown {
        pending: usize,
    },
}

/// Why a new request cannot be kept.
#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// [`MAX_PENDING`] named requests are waiting.
    Full,
}

/// The list after adding `new`: expired requests go; a request without a name replaces every
/// other unnamed one (one pending request at a time); a named one replaces the one of its name.
pub fn with_new(
    list: Vec<PendingSignIn>,
    new: PendingSignIn,
    now: i64,
) -> Result<Vec<PendingSignIn>, AddError> {
    let mut kept: Vec<PendingSignIn> = list
        .into_iter()
        .filter(|p| p.expires > now)
        .filter(|p| {
            if new.named {
                !(p.named && same_state(p, new.state.expose()))
            } else {
                p.named
            }
        })
        .collect();
    if new.named && kept.iter().filter(|p| p.named).count() >= MAX_PENDING {
        return Err(AddError::Full);
    }
    kept.push(new);
    Ok(kept)
}

/// Takes the request of `state` out of `list` (and every expired one with it). `None` stands
/// for a bare code pasted without its state: it finishes the one live request, if there is
/// exactly one.
pub fn take(
    list: Vec<PendingSignIn>,
    state: Option<&str>,
    now: i64,
) -> (Vec<PendingSignIn>, Lookup) {
    let mut found = None;
    let mut expired_ago = None;
    let live = list.iter().filter(|p| p.expires > now).count();
    let mut rest = Vec::new();
    for p in list {
        // Every entry is compared, found or not: the time taken says nothing about the states.
        let matches = match state {
            Some(s) => same_state(&p, s),
            None => live == 1 && p.expires > now,
        };
        if matches && found.is_none() && p.expires > now {
            found = Some(p);
        } else if p.expires <= now {
            if matches {
                expired_ago = Some(now.saturating_sub(p.expires));
            }
        } else {
            rest.push(p);
        }
    }
    let lookup = match (found, expired_ago) {
        (Some(p), _) => Lookup::Found(p),
        (None, Some(ago)) => Lookup::Expired { ago },
        (None, None) => Lookup::Unknown {
            pending: rest.len(),
        },
    };
    (rest, lookup)
}

fn same_state(p: &PendingSignIn, state: &str) -> bool {
    constant_time_eq(p.state.expose().as_bytes(), state.as_bytes())
}

/// The pending file of one token store.
#[derive(Clone, Debug)]
pub struct PendingStore {
    file: TokenStore,
}

impl PendingStore {
    /// `<token file>.pending`, beside the token file.
    pub fn for_tokens(tokens: &TokenStore) -> PendingStore {
        let mut name = tokens.path().as_os_str().to_os_string();
        name.push(".pending");
        PendingStore {
            file: TokenStore::new(PathBuf::from(name)),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Held from reading the list to writing it back, so two `authorize-url` runs cannot lose
    /// each other's request.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        self.file.lock(Duration::from_secs(10))
    }

    /// The requests in the file; none when there is no file.
    pub fn load(&self) -> Result<Vec<PendingSignIn>, StoreError> {
        self.file.remove_stale_temps();
        let Some(bytes) = self.file.read_current()? else {
            return Ok(Vec::new());
        };
        parse_pending(&bytes).map_err(|bad| match bad {
            Bad::Corrupt(detail) => StoreError::Corrupt {
                path: self.path().to_path_buf(),
                detail,
            },
            Bad::Version(version) => StoreError::UnsupportedVersion {
                path: self.path().to_path_buf(),
                version,
            },
        })
    }

    /// Replaces the file with `list` (atomically, 0600); an empty list removes it.
    pub fn save(&self, list: &[PendingSignIn]) -> Result<(), StoreError> {
        if list.is_empty() {
            return self.file.delete().map(|_| ());
        }
        let bytes = encode_pending(list);
        self.file.prepare_save()?.commit_bytes(&bytes)
    }
}

fn encode_pending(list: &[PendingSignIn]) -> Vec<u8> {
    let entries: Vec<Value> = list
        .iter()
        .map(|p| {
            serde_json::json!({
                "state": p.state.expose(),
                "code_verifier": p.verifier.expose(),
                "redirect_uri": p.redirect_uri,
                "created": p.created,
                "expires": p.expires,
                "named": p.named,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "format": PENDING_FORMAT,
        "version": VERSION,
        "pending": entries,
    });
    let mut bytes = doc.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Errors name fields, never values (the verifier is secret).
fn parse_pending(bytes: &[u8]) -> Result<Vec<PendingSignIn>, Bad> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(format!(
            "not JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(obj) = value else {
        return Err(corrupt("not a JSON object"));
    };
    let top = Fields { obj: &obj, at: "" };
    if top.get("format").and_then(Value::as_str) != Some(PENDING_FORMAT) {
        return Err(corrupt(format!(
            "field `format` is not \"{PENDING_FORMAT}\": not a devauth pending file"
        )));
    }
    let version = top.u64("version")?;
    if version != VERSION {
        return Err(Bad::Version(version));
    }
    let list = top
        .required("pending")?
        .as_array()
        .ok_or_else(|| top.bad("pending", "is not a list"))?;
    if list.len() > MAX_PENDING + 1 {
        return Err(top.bad(
            "pending",
            &format!("has more than {} entries", MAX_PENDING + 1),
        ));
    }
    list.iter()
        .map(|v| {
            let obj = v
                .as_object()
                .ok_or_else(|| top.bad("pending[]", "is not an object"))?;
            let f = Fields {
                obj,
                at: "pending[].",
            };
            // Checked as a PKCE verifier where it is used (`exchange`): the store keeps it.
            let verifier = f.string("code_verifier", MAX_VERIFIER)?;
            Ok(PendingSignIn {
                state: Secret::new(f.string("state", MAX_STATE)?),
                verifier: Secret::new(verifier),
                redirect_uri: f.string("redirect_uri", MAX_REDIRECT_URI)?,
                created: f.i64("created")?,
                expires: f.i64("expires")?,
                named: f
                    .get("named")
                    .map(|v| {
                        v.as_bool()
                            .ok_or_else(|| f.bad("named", "is not true or false"))
                    })
                    .transpose()?
                    .unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn req(state: &str, expires: i64, named: bool) -> PendingSignIn {
        PendingSignIn {
            state: Secret::new(state),
            verifier: Secret::new(VERIFIER),
            redirect_uri: "https://device.local/oauth/callback".into(),
            created: expires - 300,
            expires,
            named,
        }
    }

    fn states(list: &[PendingSignIn]) -> Vec<&str> {
        list.iter().map(|p| p.state.expose()).collect()
    }

    #[test]
    fn an_unnamed_request_replaces_the_other_unnamed_one_and_keeps_named_ones() {
        let list = vec![req("a", 2000, false), req("n1", 2000, true)];
        let list = with_new(list, req("b", 2100, false), 1000).unwrap();
        assert_eq!(states(&list), ["n1", "b"]);
    }

    #[test]
    fn a_named_request_waits_beside_others_and_replaces_its_namesake() {
        let list = vec![req("a", 2000, false), req("n1", 2000, true)];
        let list = with_new(list, req("n2", 2000, true), 1000).unwrap();
        assert_eq!(states(&list), ["a", "n1", "n2"]);
        let list = with_new(list, req("n1", 2500, true), 1000).unwrap();
        assert_eq!(states(&list), ["a", "n2", "n1"]);
        assert_eq!(list[2].expires, 2500);
    }

    #[test]
    fn expired_requests_are_dropped_and_named_ones_are_bounded() {
        let list = vec![req("old", 999, true)];
        assert_eq!(
            states(&with_new(list, req("x", 2000, false), 1000).unwrap()),
            ["x"]
        );
        let mut list = Vec::new();
        for i in 0..MAX_PENDING {
            list = with_new(list, req(&format!("n{i}"), 2000, true), 1000).unwrap();
        }
        assert_eq!(
            with_new(list.clone(), req("one-more", 2000, true), 1000),
            Err(AddError::Full)
        );
        // Replacing one of them is still possible, and so is an unnamed request.
        assert!(with_new(list.clone(), req("n3", 2000, true), 1000).is_ok());
        assert!(with_new(list, req("u", 2000, false), 1000).is_ok());
    }

    #[test]
    fn take_finds_the_state_and_leaves_the_rest() {
        let list = vec![req("a", 2000, true), req("b", 2000, true)];
        let (rest, found) = take(list, Some("b"), 1000);
        assert_eq!(found, Lookup::Found(req("b", 2000, true)));
        assert_eq!(states(&rest), ["a"]);
    }

    #[test]
    fn take_tells_expired_from_unknown() {
        let list = vec![req("a", 900, false), req("b", 2000, true)];
        let (rest, found) = take(list.clone(), Some("a"), 1000);
        assert_eq!(found, Lookup::Expired { ago: 100 });
        assert_eq!(states(&rest), ["b"], "the expired one is dropped");
        let (_, found) = take(list, Some("zzz"), 1000);
        assert_eq!(found, Lookup::Unknown { pending: 1 });
        assert_eq!(
            take(Vec::new(), Some("a"), 0).1,
            Lookup::Unknown { pending: 0 }
        );
    }

    #[test]
    fn a_bare_code_finishes_the_only_live_request_and_nothing_when_ambiguous() {
        let (rest, found) = take(vec![req("a", 900, false), req("b", 2000, true)], None, 1000);
        assert_eq!(found, Lookup::Found(req("b", 2000, true)));
        assert!(rest.is_empty());
        let two = vec![req("a", 2000, false), req("b", 2000, true)];
        let (rest, found) = take(two, None, 1000);
        assert_eq!(found, Lookup::Unknown { pending: 2 });
        assert_eq!(rest.len(), 2);
    }

    #[test]
    fn the_file_round_trips_with_mode_0600_and_an_empty_list_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = TokenStore::new(dir.path().join("tokens.json"));
        let pending = PendingStore::for_tokens(&tokens);
        assert_eq!(pending.path(), dir.path().join("tokens.json.pending"));
        assert!(pending.load().unwrap().is_empty());
        let list = vec![req("a", 2000, false), req("n", 2100, true)];
        pending.save(&list).unwrap();
        assert_eq!(pending.load().unwrap(), list);
        let mode = fs::metadata(pending.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        pending.save(&[]).unwrap();
        assert!(!pending.path().exists());
    }

    #[test]
    fn a_broken_file_is_named_without_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let pending = PendingStore::for_tokens(&TokenStore::new(dir.path().join("t.json")));
        for (bytes, says) in [
            (&b"{"[..], "not JSON"),
            (br#"{"format":"devauth-tokens","version":1,"pending":[]}"#, "format"),
            (br#"{"format":"devauth-pending","version":1,"pending":[{"state":"s","code_verifier":7,"redirect_uri":"u","created":1,"expires":2}]}"#, "code_verifier` is not a string"),
            (br#"{"format":"devauth-pending","version":1,"pending":[{"state":"s","redirect_uri":"u","created":1,"expires":2}]}"#, "code_verifier` is missing"),
        ] {
            fs::write(pending.path(), bytes).unwrap();
            let err = pending.load().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        fs::write(
            pending.path(),
            br#"{"format":"devauth-pending","version":9,"pending":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            pending.load(),
            Err(StoreError::UnsupportedVersion { version: 9, .. })
        ));
    }
}
