//! The file format (`devauth-tokens` version 1): encoding and the bounded parser that reads
//! untrusted bytes from flash and names what is wrong with a corrupt file.

use super::*;

/// The file as written: `format` and `version` first, then the fields.
#[derive(Serialize)]
pub(super) struct FileV1<'a> {
    pub(super) format: &'static str,
    pub(super) version: u64,
    pub(super) client_id: &'a str,
    pub(super) token_endpoint: &'a str,
    pub(super) token_type: &'a str,
    pub(super) access_token: &'a Secret,
    pub(super) refresh_token: Option<&'a Secret>,
    pub(super) id_token: Option<&'a Secret>,
    pub(super) scopes: &'a [String],
    pub(super) account: Option<&'a str>,
    pub(super) expiry: Option<&'a Expiry>,
    /// Absent unless the provider refused the grant, so files without it stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) grant_refused: Option<&'a GrantRefused>,
}

/// The bytes `save` writes, or why `t` cannot be stored. The bytes are parsed back with the same
/// code `load` uses, so whatever is written can be read again (no limit enforced on one side only).
pub(super) fn encode(t: &StoredTokens) -> Result<Vec<u8>, String> {
    let tk = &t.tokens;
    let file = FileV1 {
        format: FORMAT,
        version: VERSION,
        client_id: &t.client_id,
        token_endpoint: &t.token_endpoint,
        token_type: &tk.token_type,
        access_token: &tk.access_token,
        refresh_token: tk.refresh_token.as_ref(),
        id_token: tk.id_token.as_ref(),
        scopes: &tk.scopes,
        account: tk.account.as_deref(),
        expiry: tk.expiry.as_ref(),
        grant_refused: t.grant_refused.as_ref(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&file).map_err(|_| "cannot serialize the tokens".to_string())?;
    bytes.push(b'\n');
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "the file would be {size} bytes, over the {MAX_FILE_BYTES} byte limit"
        ));
    }
    match parse(&bytes) {
        Ok(back) if back == *t => Ok(bytes),
        Ok(_) => Err("the tokens do not survive a round trip through the file".to_string()),
        Err(Bad::Corrupt(detail)) => Err(detail),
        Err(Bad::Version(v)) => Err(format!("wrote version {v} but read another")),
    }
}

/// Parses token-file bytes exactly as [`TokenStore::load`] does, without touching the
/// filesystem (the fuzz targets and their corpus replay use it). `path` only names the file in
/// errors.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<StoredTokens, StoreError> {
    parse(bytes).map_err(|bad| bad_file(bad, path))
}

/// The [`StoreError`] for a file that is not what it should be.
pub(super) fn bad_file(bad: Bad, path: &Path) -> StoreError {
    match bad {
        Bad::Corrupt(detail) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        Bad::Version(version) => StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        },
    }
}

/// The bytes [`TokenStore::save`] would write for `t`, or why it would refuse (fuzzing: what
/// was read must be writable again).
pub fn encode_bytes(t: &StoredTokens, path: &Path) -> Result<Vec<u8>, StoreError> {
    encode(t).map_err(|detail| StoreError::Invalid {
        path: path.to_path_buf(),
        detail,
    })
}

/// Why file bytes are not a token file this build can use.
#[derive(Debug)]
pub(super) enum Bad {
    Corrupt(String),
    Version(u64),
}

pub(super) fn corrupt(detail: impl Into<String>) -> Bad {
    Bad::Corrupt(detail.into())
}

/// Parses a token file. Error details name fields, lines and columns, never values: serde's own
/// messages can quote the offending value, which may be a token, so they are not used.
pub(super) fn parse(bytes: &[u8]) -> Result<StoredTokens, Bad> {
    if bytes.is_empty() {
        return Err(corrupt("the file is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        corrupt(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Eof => "truncated JSON",
            Category::Syntax => "malformed JSON",
            Category::Data => "unexpected JSON data",
            Category::Io => "unreadable JSON",
        };
        corrupt(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    let Value::Object(obj) = value else {
        return Err(corrupt("not a JSON object"));
    };
    match obj.get("format") {
        Some(Value::String(s)) if s == FORMAT => {}
        None => {
            return Err(corrupt(
                "field `format` is missing: not a devauth token file",
            ));
        }
        Some(_) => {
            return Err(corrupt(format!(
                "field `format` is not \"{FORMAT}\": not a devauth token file"
            )));
        }
    }
    let version = match obj.get("version") {
        None => return Err(corrupt("field `version` is missing")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| corrupt("field `version` is not an unsigned integer"))?,
    };
    if version != VERSION {
        return Err(Bad::Version(version));
    }

    let top = Fields { obj: &obj, at: "" };
    let client_id = top.string("client_id", MAX_ID_BYTES)?;
    let token_endpoint = top.string("token_endpoint", MAX_URL_BYTES)?;
    let access_token = top.string("access_token", MAX_TOKEN_BYTES)?;
    let token_type = top.string("token_type", MAX_TOKEN_TYPE_BYTES)?;
    for (key, value) in [
        ("client_id", &client_id),
        ("token_endpoint", &token_endpoint),
        ("access_token", &access_token),
    ] {
        if value.is_empty() {
            return Err(corrupt(format!("field `{key}` is empty")));
        }
    }
    let refresh_token = top.opt_string("refresh_token", MAX_TOKEN_BYTES)?;
    let id_token = top.opt_string("id_token", MAX_TOKEN_BYTES)?;
    let account = top.opt_string("account", MAX_ID_BYTES)?;
    let scopes = top.scopes("scopes")?;
    let expiry = match top.get("expiry") {
        None => None,
        Some(Value::Object(e)) => {
            let f = Fields {
                obj: e,
                at: "expiry.",
            };
            Some(Expiry {
                lifetime_secs: f.u64("lifetime_secs")?,
                obtained_unix: f.i64("obtained_unix")?,
                boot_id: f.opt_string("boot_id", MAX_BOOT_ID_BYTES)?,
                obtained_boottime_ms: f.u64("obtained_boottime_ms")?,
            })
        }
        Some(_) => return Err(corrupt("field `expiry` is not an object")),
    };
    let grant_refused = parse_refusal(&top)?;
    Ok(StoredTokens {
        client_id,
        token_endpoint,
        tokens: TokenSet {
            access_token: Secret::new(access_token),
            token_type,
            refresh_token: refresh_token.map(Secret::new),
            id_token: id_token.map(Secret::new),
            scopes,
            account,
            expiry,
        },
        grant_refused,
    })
}

/// Typed, bounded access to one JSON object's fields; errors name the field (prefixed with `at`
/// for nested objects), never its value. `null` counts as absent.
pub(super) struct Fields<'a> {
    pub(super) obj: &'a Map<String, Value>,
    pub(super) at: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn bad(&self, key: &str, what: &str) -> Bad {
        Bad::Corrupt(format!("field `{}{key}` {what}", self.at))
    }

    pub(super) fn required(&self, key: &str) -> Result<&'a Value, Bad> {
        self.get(key).ok_or_else(|| self.bad(key, "is missing"))
    }

    pub(super) fn string(&self, key: &str, max: usize) -> Result<String, Bad> {
        self.str_value(key, self.required(key)?, max)
    }

    pub(super) fn opt_string(&self, key: &str, max: usize) -> Result<Option<String>, Bad> {
        self.get(key)
            .map(|v| self.str_value(key, v, max))
            .transpose()
    }

    pub(super) fn str_value(&self, key: &str, v: &Value, max: usize) -> Result<String, Bad> {
        let s = v.as_str().ok_or_else(|| self.bad(key, "is not a string"))?;
        if s.len() > max {
            return Err(self.bad(key, &format!("is longer than {max} bytes")));
        }
        Ok(s.to_string())
    }

    pub(super) fn u64(&self, key: &str) -> Result<u64, Bad> {
        self.required(key)?
            .as_u64()
            .ok_or_else(|| self.bad(key, "is not an unsigned integer"))
    }

    pub(super) fn i64(&self, key: &str) -> Result<i64, Bad> {
        self.required(key)?
            .as_i64()
            .ok_or_else(|| self.bad(key, "is not an integer"))
    }

    /// A list of strings; absent means none.
    pub(super) fn scopes(&self, key: &str) -> Result<Vec<String>, Bad> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let list = v.as_array().ok_or_else(|| self.bad(key, "is not a list"))?;
        if list.len() > MAX_SCOPES {
            return Err(self.bad(key, &format!("has more than {MAX_SCOPES} entries")));
        }
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s
                    .as_str()
                    .ok_or_else(|| self.bad(&format!("{key}[{i}]"), "is not a string"))?;
                if s.len() > MAX_SCOPE_BYTES {
                    return Err(self.bad(
                        &format!("{key}[{i}]"),
                        &format!("is longer than {MAX_SCOPE_BYTES} bytes"),
                    ));
                }
                Ok(s.to_string())
            })
            .collect()
    }
}
