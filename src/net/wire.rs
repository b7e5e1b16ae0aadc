//! The only place that turns untrusted bytes from the network into typed values: device
//! authorization responses (RFC 8628 §3.2), token and error responses (RFC 6749 §5.1, §5.2),
//! OIDC discovery documents, id_token claims and the HTTP `Date` header.
//!
//! Servers differ in small ways (see shared notes): numbers arrive as strings, `interval` is
//! `null`, Google says `verification_url`, GitHub answers form-encoded. Everything here is
//! tolerant of those and strict about the rest: every string is length-bounded and checked for
//! control characters, numbers must be non-negative integers, and an error message names the
//! field that was wrong but never quotes a secret.
//!
//! Policy (clamping intervals, what an error code means for the flow) lives in `flow`; HTTP
//! status handling lives in `oauth`. This module only parses.

use crate::secret::Secret;
use serde_json::{Map, Value};
use std::fmt;

/// Longest token we accept. Real tokens are up to a few KiB (JWTs with many claims).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest URL we accept from a server.
pub const MAX_URL_LEN: usize = 2048;
/// Longest user code. RFC 8628 §6.1 suggests short codes; 8 to 9 characters is typical.
pub const MAX_USER_CODE_LEN: usize = 32;
/// Longest human text (error_description, message) we keep.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest `scope` of a token response (the store must hold whatever this allows).
pub const MAX_SCOPE_LEN: usize = 4096;

/// What was wrong with a server's answer. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The body is neither JSON nor a form-encoded body.
    NotParseable { detail: String },
    /// A required field is absent (or empty).
    Missing { field: &'static str },
    /// A field is present but unusable; `detail` says why (no secret values).
    Invalid { field: &'static str, detail: String },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotParseable { detail } => write!(f, "unreadable response body: {detail}"),
            WireError::Missing { field } => write!(f, "response lacks required field `{field}`"),
            WireError::Invalid { field, detail } => write!(f, "field `{field}`: {detail}"),
        }
    }
}

impl std::error::Error for WireError {}

/// The body format, from the Content-Type header (or sniffed when absent/wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

/// A parsed body: a flat object. Form bodies become string values.
#[derive(Debug, Clone, Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parse a body, JSON or `application/x-www-form-urlencoded`. The content type decides;
    /// without a usable one, JSON is tried first (GitHub without `Accept` sends form bodies).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Fields, WireError> {
        let declared = content_type.map(|ct| ct.to_ascii_lowercase());
        let format = match declared.as_deref() {
            Some(ct) if ct.contains("json") => Some(BodyFormat::Json),
            Some(ct) if ct.contains("x-www-form-urlencoded") => Some(BodyFormat::Form),
            _ => None,
        };
        match format {
            Some(BodyFormat::Json) => parse_json_object(body),
            Some(BodyFormat::Form) => parse_form(body),
            None => {
                let trimmed = body.trim_ascii_start();
                if trimmed.first() == Some(&b'{') {
                    parse_json_object(body)
                } else if looks_like_form(body) {
                    parse_form(body)
                } else {
                    Err(WireError::NotParseable {
                        detail: describe_non_body(body, declared.as_deref()),
                    })
                }
            }
        }
    }

    pub fn from_json_map(map: Map<String, Value>) -> Fields {
        Fields(map)
    }

    fn get(&self, field: &str) -> Option<&Value> {
        match self.0.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// A string field of at most `max` bytes; `None` when absent or empty. Shared by
    /// [`Fields::text`] and [`Fields::secret`], which then check the characters.
    fn bounded_str(&self, field: &'static str, max: usize) -> Result<Option<&str>, WireError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let Value::String(s) = v else {
            return Err(WireError::Invalid {
                field,
                detail: format!("expected a string, got {}", kind_of(v)),
            });
        };
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() > max {
            return Err(WireError::Invalid {
                field,
                detail: format!("{} bytes long, more than the {max} accepted", s.len()),
            });
        }
        Ok(Some(s))
    }

    /// A non-empty string field, bounded, without control characters.
    pub fn text(&self, field: &'static str, max: usize) -> Result<Option<String>, WireError> {
        let Some(s) = self.bounded_str(field, max)? else {
            return Ok(None);
        };
        if s.chars().any(is_forbidden_char) {
            return Err(WireError::Invalid {
                field,
                detail: "contains control characters".into(),
            });
        }
        Ok(Some(s.to_string()))
    }

    /// Whether `field` is an array holding the string `value` (discovery metadata lists).
    pub fn lists(&self, field: &str, value: &str) -> bool {
        matches!(self.get(field), Some(Value::Array(items)) if items.iter().any(|v| v == value))
    }

    pub fn required_text(&self, field: &'static str, max: usize) -> Result<String, WireError> {
        self.text(field, max)?.ok_or(WireError::Missing { field })
    }

    /// Human text (descriptions, messages): control characters are replaced, not refused, and
    /// over-long text is cut at a character boundary — it is only ever shown, never acted on.
    pub fn human_text(&self, field: &'static str) -> Option<String> {
        let Some(Value::String(s)) = self.get(field) else {
            return None;
        };
        let cleaned: String = s
            .chars()
            .map(|c| if is_forbidden_char(c) { ' ' } else { c })
            .take(MAX_TEXT_LEN)
            .collect();
        let cleaned = cleaned.trim().to_string();
        (!cleaned.is_empty()).then_some(cleaned)
    }

    /// A secret string (token, device code): printable ASCII (RFC 6749 Appendix A: VSCHAR),
    /// bounded. The error never quotes it.
    pub fn secret(&self, field: &'static str) -> Result<Option<Secret>, WireError> {
        let Some(s) = self.bounded_str(field, MAX_TOKEN_LEN)? else {
            return Ok(None);
        };
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(WireError::Invalid {
                field,
                detail: "contains characters outside printable ASCII".into(),
            });
        }
        Ok(Some(Secret::new(s)))
    }

    /// A non-negative integer, sent as a JSON number or as a string of digits (both seen).
    /// Fractions are rounded down; negative or absurd values are errors so the caller can
    /// decide to clamp or refuse.
    pub fn seconds(&self, field: &'static str) -> Result<Option<u64>, WireError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let invalid = |detail: String| WireError::Invalid { field, detail };
        match v {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Ok(Some(u))
                } else if let Some(i) = n.as_i64() {
                    Err(invalid(format!("negative value {i}")))
                } else {
                    match n.as_f64() {
                        Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
                        Some(f) => Err(invalid(format!("out of range value {f}"))),
                        None => Err(invalid("not a number".into())),
                    }
                }
            }
            Value::String(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                if t.len() > 20 {
                    return Err(invalid("number string too long".into()));
                }
                if let Some(rest) = t.strip_prefix('-') {
                    if rest.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(invalid(format!("negative value {t}")));
                    }
                }
                let digits = t.split('.').next().unwrap_or(t);
                digits
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| invalid(format!("`{}` is not a number", printable(t))))
            }
            other => Err(invalid(format!(
                "expected a number, got {}",
                kind_of(other)
            ))),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Control characters (C0, DEL, C1) and bidi overrides, which could spoof what is shown.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A short, safe rendering of a value we refuse, for error messages (non-secret fields only).
fn printable(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if is_forbidden_char(c) { '?' } else { c })
        .collect()
}

fn parse_json_object(body: &[u8]) -> Result<Fields, WireError> {
    // serde_json's own messages can quote input; report only position and category so a token
    // in a malformed body cannot leak into an error.
    let value: Value = serde_json::from_slice(body).map_err(|e| WireError::NotParseable {
        detail: format!(
            "invalid JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
        .to_lowercase(),
    })?;
    match value {
        Value::Object(map) => {
            // serde_json keeps the last of two equal keys. A body that names a field twice is
            // ambiguous (which one did the server mean, and which one did a proxy check?), so
            // it is refused rather than resolved either way (RFC 8259 §4: names SHOULD be
            // unique).
            if let Ok(FirstDuplicate(Some(key))) = serde_json::from_slice(body) {
                return Err(duplicate_key(&key));
            }
            Ok(Fields(map))
        }
        other => Err(WireError::NotParseable {
            detail: format!("expected a JSON object, got {}", kind_of(&other)),
        }),
    }
}

fn duplicate_key(key: &str) -> WireError {
    WireError::NotParseable {
        detail: format!("the field `{}` appears twice", printable(key)),
    }
}

/// The first top-level key of a JSON object that appears more than once.
struct FirstDuplicate(Option<String>);

impl<'de> serde::Deserialize<'de> for FirstDuplicate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = FirstDuplicate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FirstDuplicate, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut first = None;
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if first.is_none() && seen.contains(&key) {
                        first = Some(key);
                    } else {
                        seen.insert(key);
                    }
                }
                Ok(FirstDuplicate(first))
            }
        }
        d.deserialize_map(Keys)
    }
}

fn looks_like_form(body: &[u8]) -> bool {
    !body.is_empty()
        && body.contains(&b'=')
        && body
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\n' || b == b'\r')
        && !body.contains(&b'<')
}

fn describe_non_body(body: &[u8], content_type: Option<&str>) -> String {
    let ct = content_type.unwrap_or("no content type");
    if body.is_empty() {
        return format!("empty body ({ct})");
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(64)]).to_ascii_lowercase();
    if head.contains("<html") || head.contains("<!doctype") {
        format!("an HTML page ({ct}), not an OAuth response")
    } else {
        format!("{} bytes of {ct}, neither JSON nor a form body", body.len())
    }
}

/// `application/x-www-form-urlencoded` parsing (WHATWG: `+` is a space, `%XX` escapes).
pub fn parse_form(body: &[u8]) -> Result<Fields, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::NotParseable {
        detail: "form body is not UTF-8".into(),
    })?;
    let mut map = Map::new();
    for pair in text.trim().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k).ok_or_else(|| WireError::NotParseable {
            detail: "bad percent-encoding in form body".into(),
        })?;
        let value = percent_decode(v).ok_or_else(|| WireError::NotParseable {
            detail: "bad percent-encoding in form body".into(),
        })?;
        // A field named twice is ambiguous: refused, as in JSON bodies.
        if map.contains_key(&key) {
            return Err(duplicate_key(&key));
        }
        map.insert(key, Value::String(value));
    }
    Ok(Fields(map))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `s` as a JSON string (quoted, escaped by serde_json): for the few documents devauth writes
/// by hand (the token service's answers, JWS headers and claims, the sealed and key files).
pub fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `application/x-www-form-urlencoded` encoding of one component.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes in seconds, as sent.
    pub expires_in: u64,
    /// Minimum polling interval in seconds, as sent (None: absent or null → default 5 s).
    pub interval: Option<u64>,
    /// Human instructions some providers add (Microsoft).
    pub message: Option<String>,
}

impl DeviceAuthorization {
    /// What the QR code should carry (RFC 8628 §3.3.1).
    pub fn qr_payload(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// Checks a URL from the server before it is drawn or followed (scheme, host rules).
pub type UrlCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

impl DeviceAuthorization {
    pub fn parse(fields: &Fields, check_url: UrlCheck<'_>) -> Result<Self, WireError> {
        let device_code = fields.secret("device_code")?.ok_or(WireError::Missing {
            field: "device_code",
        })?;
        let user_code = fields.required_text("user_code", MAX_USER_CODE_LEN)?;
        if user_code.trim() != user_code {
            return Err(WireError::Invalid {
                field: "user_code",
                detail: "has leading or trailing spaces".into(),
            });
        }
        // Google calls it verification_url; RFC 8628 calls it verification_uri.
        let (uri_field, verification_uri) = match fields.text("verification_uri", MAX_URL_LEN)? {
            Some(u) => ("verification_uri", u),
            None => (
                "verification_url",
                fields
                    .text("verification_url", MAX_URL_LEN)?
                    .ok_or(WireError::Missing {
                        field: "verification_uri",
                    })?,
            ),
        };
        check_url(&verification_uri).map_err(|detail| WireError::Invalid {
            field: uri_field,
            detail,
        })?;
        // A bad complete URI is refused, not fatal: the plain URI and the code still work.
        let verification_uri_complete = fields
            .text("verification_uri_complete", MAX_URL_LEN)
            .ok()
            .flatten()
            .filter(|u| check_url(u).is_ok());
        let expires_in = fields.seconds("expires_in")?.ok_or(WireError::Missing {
            field: "expires_in",
        })?;
        // interval: absent, null, "" → default; garbage → also default (it is only a hint and a
        // server that garbles it still works; slow_down keeps us honest).
        let interval = fields.seconds("interval").unwrap_or(None);
        Ok(DeviceAuthorization {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in,
            interval,
            message: fields.human_text("message"),
        })
    }
}

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
    pub id_token: Option<Secret>,
}

impl TokenResponse {
    pub fn parse(fields: &Fields) -> Result<Self, WireError> {
        let access_token = fields.secret("access_token")?.ok_or(WireError::Missing {
            field: "access_token",
        })?;
        // RFC 6749 makes token_type required; some servers omit it: Bearer then. The other type
        // devauth can use is DPoP (RFC 9449 §5), when it sent a proof (the client checks).
        let token_type = fields
            .text("token_type", 64)?
            .unwrap_or_else(|| "Bearer".into());
        let token_type = if token_type.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else if token_type.eq_ignore_ascii_case("dpop") {
            "DPoP"
        } else {
            return Err(WireError::Invalid {
                field: "token_type",
                detail: format!(
                    "`{}` is neither a Bearer nor a DPoP token type",
                    printable(&token_type)
                ),
            });
        };
        Ok(TokenResponse {
            access_token,
            token_type: token_type.into(),
            // An unusable expires_in (negative, not a number) must not throw away tokens the
            // server has already issued (after a refresh the old refresh token is dead): it
            // counts as "expires now", so the next use refreshes.
            expires_in: fields.seconds("expires_in").unwrap_or(Some(0)),
            refresh_token: fields.secret("refresh_token")?,
            scope: fields.text("scope", MAX_SCOPE_LEN)?,
            id_token: fields.secret("id_token")?,
        })
    }

    pub fn scopes(&self) -> Vec<String> {
        split_scope(self.scope.as_deref())
    }

    /// A DPoP-bound access token (RFC 9449 §5): every use needs a proof.
    pub fn is_dpop(&self) -> bool {
        self.token_type == "DPoP"
    }
}

pub fn split_scope(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// RFC 6749 §5.2 error response (also used by RFC 8628 §3.5 polling answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: String,
    pub description: Option<String>,
    /// GitHub sends the new interval with `slow_down`.
    pub interval: Option<u64>,
    /// The HTTP status it came with, when the caller recorded it (for messages only: decisions
    /// go by `error`, never by the status).
    pub status: Option<u16>,
}

impl OAuthError {
    /// `Some` when the body carries an `error` field.
    pub fn parse(fields: &Fields) -> Option<Self> {
        let raw = match fields.get("error")? {
            Value::String(s) => s.clone(),
            other => kind_of(other).to_string(),
        };
        // The error code is ASCII by spec (§5.2); anything else is cut down to something safe
        // to print and will not match any code we act on.
        let error: String = raw
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(128)
            .collect();
        Some(OAuthError {
            error: if error.is_empty() {
                "(empty error code)".into()
            } else {
                error
            },
            description: fields.human_text("error_description"),
            interval: fields.seconds("interval").unwrap_or(None),
            status: None,
        })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{} ({d})", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// The parts of an OIDC discovery document (OpenID Connect Discovery 1.0 §3) devauth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    /// RFC 9449 §5.1: `dpop_signing_alg_values_supported` lists ES256.
    pub dpop_es256: bool,
}

impl Discovery {
    pub fn parse(fields: &Fields) -> Result<Self, WireError> {
        Ok(Discovery {
            issuer: fields.text("issuer", MAX_URL_LEN)?,
            device_authorization_endpoint: fields
                .text("device_authorization_endpoint", MAX_URL_LEN)?,
            token_endpoint: fields.text("token_endpoint", MAX_URL_LEN)?,
            revocation_endpoint: fields.text("revocation_endpoint", MAX_URL_LEN)?,
            userinfo_endpoint: fields.text("userinfo_endpoint", MAX_URL_LEN)?,
            authorization_endpoint: fields.text("authorization_endpoint", MAX_URL_LEN)?,
            dpop_es256: fields.lists("dpop_signing_alg_values_supported", "ES256"),
        })
    }
}

/// The account name to show from an id_token or userinfo object: email, else
/// preferred_username, else login (GitHub), else sub.
pub fn account_from_claims(fields: &Fields) -> Option<String> {
    ["email", "preferred_username", "login", "sub"]
        .into_iter()
        .find_map(|k| fields.text(k, 256).ok().flatten())
}

/// The person's name to greet on the paired screen: the `name` claim (OIDC Core §5.1), when
/// sent and not blank. Display only; the screen sanitises it.
pub fn name_from_claims(fields: &Fields) -> Option<String> {
    fields
        .text("name", 256)
        .ok()
        .flatten()
        .filter(|n| !n.trim().is_empty())
}

/// Reads the claims of an id_token for display only. The signature is NOT verified: the
/// token came straight from the token endpoint over verified TLS (OIDC Core §3.1.3.7 allows
/// skipping validation in that case), and devauth never makes an access decision from it.
pub fn id_token_claims(id_token: &Secret) -> Result<Fields, WireError> {
    let invalid = |detail: &str| WireError::Invalid {
        field: "id_token",
        detail: detail.into(),
    };
    let mut parts = id_token.expose().split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a JWT (expected three dot-separated parts)"));
    };
    let json = base64url_decode(payload).ok_or_else(|| invalid("payload is not base64url"))?;
    parse_json_object(&json).map_err(|_| invalid("payload is not a JSON object"))
}

/// base64url without padding (RFC 4648 §5), padding tolerated.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Standard base64 with padding (for HTTP Basic authentication).
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'=')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses an HTTP `Date` header (IMF-fixdate, RFC 9110 §5.6.7) into Unix seconds. Used to anchor
/// token expiry to the server's clock when the device's own clock may be wrong.
pub fn parse_http_date(s: &str) -> Option<i64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let s = s.trim();
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: i64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    if !(1970..=9999).contains(&year) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
