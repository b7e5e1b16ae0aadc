//! The browser half of the authorization code grant (RFC 6749 §4.1, PKCE RFC 7636, native
//! apps RFC 8252): the authorization URL devauth sends the person to, and the reading of what
//! comes back — the redirect's query (from the loopback listener) or what a person pastes (the
//! whole address their browser was sent to, its query, or only the code).
//!
//! Pure: no sockets, no clock, no randomness (the values come from `oauth/pkce.rs`). The
//! listener is `oauth/loopback.rs`, the code exchange `oauth/client.rs`.

use crate::net::wire::{self, Fields, OAuthError, WireError};
use crate::oauth::pkce::{self, MAX_STATE_LEN, Pkce};
use crate::secret::Secret;
use std::fmt;

/// The longest authorization code accepted back (Google's are ~75 characters, Microsoft's
/// ~1,000). A longer one is not a code.
pub const MAX_CODE_LEN: usize = 4096;
/// The longest redirect address or paste accepted.
pub const MAX_REDIRECT_LEN: usize = 8192;
/// Longest redirect URI `authorize-url` accepts.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

/// Everything the authorization URL carries.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The provider's authorization endpoint (may already carry a query).
    pub endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub pkce: &'a Pkce,
    /// Provider parameters, e.g. Google's `access_type=offline` and `prompt=consent`.
    pub extras: &'a [(String, String)],
}

impl AuthorizationRequest<'_> {
    /// RFC 6749 §4.1.1 + RFC 7636 §4.3. `state` is in the URL by design: it travels through
    /// the browser and comes back; the verifier never leaves the device.
    pub fn url(&self) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
        ];
        let scope = self.scopes.join(" ");
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        params.push(("state", self.pkce.state.expose()));
        params.push(("code_challenge", &self.pkce.challenge));
        params.push(("code_challenge_method", "S256"));
        for (k, v) in self.extras {
            // A preset's extra never overrides what the grant itself must send.
            if !params.iter().any(|(name, _)| name == k) {
                params.push((k, v));
            }
        }
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", wire::form_encode(k), wire::form_encode(v)))
            .collect();
        let sep = if self.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{}", self.endpoint, query.join("&"))
    }
}

/// What the provider sent back through the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAnswer {
    /// RFC 6749 §4.1.2. `state` is `None` only for a bare pasted code.
    Code { code: Secret, state: Option<String> },
    /// RFC 6749 §4.1.2.1, e.g. `access_denied`.
    Error {
        error: OAuthError,
        state: Option<String>,
    },
}

/// Why a redirect or a paste cannot be used. Never quotes a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectError {
    /// Empty input.
    Empty,
    /// Longer than [`MAX_REDIRECT_LEN`].
    TooLong { len: usize },
    /// An address without a `?code=…` (or `?error=…`) part.
    NoQuery,
    /// The query could not be read, or a field in it is unusable.
    Malformed { detail: String },
    /// Neither `code` nor `error` in the query.
    NoCode,
    /// `state` absent where it is required (the loopback redirect, a pasted address).
    MissingState,
    /// `state` is not the one devauth sent: another sign-in's redirect, or a forged one.
    StateMismatch,
    /// Pasted text that is neither an address nor a plausible code.
    NotACode,
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectError::Empty => f.write_str("nothing was given"),
            RedirectError::TooLong { len } => write!(
                f,
                "{len} bytes, more than the {MAX_REDIRECT_LEN} an address or code may have"
            ),
            RedirectError::NoQuery => f.write_str(
                "the address has no ?code=… part; paste the whole address the browser was sent to",
            ),
            RedirectError::Malformed { detail } => write!(f, "unreadable redirect: {detail}"),
            RedirectError::NoCode => f.write_str("the redirect carries neither `code` nor `error`"),
            RedirectError::MissingState => f.write_str(
                "the redirect has no `state`; it does not answer the sign-in devauth started",
            ),
            RedirectError::StateMismatch => f.write_str(
                "the redirect's `state` does not match the sign-in devauth started \
                 (an old or foreign redirect); start the sign-in again",
            ),
            RedirectError::NotACode => f.write_str(
                "not an address nor an authorization code (a code has no spaces or control \
                 characters)",
            ),
        }
    }
}

impl std::error::Error for RedirectError {}

impl From<WireError> for RedirectError {
    fn from(e: WireError) -> Self {
        let detail = match e {
            // Parse errors quote no values; keep their own words.
            WireError::NotParseable { detail } => detail,
            other => other.to_string().replace("response", "redirect"),
        };
        RedirectError::Malformed { detail }
    }
}

/// Reads a redirect's query string (without the `?`): `code` + `state`, or `error` + `state`.
pub fn parse_query(query: &str) -> Result<RedirectAnswer, RedirectError> {
    if query.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong { len: query.len() });
    }
    // Parameters named twice are refused by the form parser: ambiguous, so never guessed at.
    let fields: Fields = wire::parse_form(query.as_bytes())?;
    let state = fields.text("state", MAX_STATE_LEN)?;
    if let Some(error) = OAuthError::parse(&fields) {
        return Ok(RedirectAnswer::Error { error, state });
    }
    let code = fields.secret("code")?.ok_or(RedirectError::NoCode)?;
    if code.expose().len() > MAX_CODE_LEN {
        return Err(RedirectError::Malformed {
            detail: format!("`code` is more than {MAX_CODE_LEN} bytes"),
        });
    }
    Ok(RedirectAnswer::Code { code, state })
}

/// What a person pasted, and whether it was a bare code (which has no state to check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasted {
    pub answer: RedirectAnswer,
    pub bare_code: bool,
}

/// Reads what a person pasted: the whole redirected address, its query, or only the code
/// (as Google's "copy this code" page shows it).
pub fn parse_paste(input: &str) -> Result<Pasted, RedirectError> {
    let from_query = |query: &str| {
        parse_query(query).map(|answer| Pasted {
            answer,
            bare_code: false,
        })
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(RedirectError::Empty);
    }
    if text.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong { len: text.len() });
    }
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let without_fragment = text.split('#').next().unwrap_or(text);
        let (_, query) = without_fragment
            .split_once('?')
            .ok_or(RedirectError::NoQuery)?;
        return from_query(query);
    }
    let query = text.strip_prefix('?').unwrap_or(text);
    if query.contains("code=") || query.contains("error=") {
        return from_query(query);
    }
    let bare_code_ok = text.len() <= MAX_CODE_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    if !bare_code_ok {
        return Err(RedirectError::NotACode);
    }
    Ok(Pasted {
        answer: RedirectAnswer::Code {
            code: Secret::new(text),
            state: None,
        },
        bare_code: true,
    })
}

/// The checked outcome of a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// A code to exchange.
    Code(Secret),
    /// The provider (or the person) refused: `access_denied` and the like.
    Refused(OAuthError),
}

/// Checks `state` in constant time (RFC 6749 §10.12) and returns what to do. `state_required`
/// is false only for a bare pasted code, which carries none; a state that is present is always
/// checked, on error answers too (a forged `access_denied` must not end a sign-in).
pub fn check(
    answer: RedirectAnswer,
    expected_state: &Secret,
    state_required: bool,
) -> Result<Authorized, RedirectError> {
    let (state, outcome) = match answer {
        RedirectAnswer::Code { code, state } => (state, Authorized::Code(code)),
        RedirectAnswer::Error { error, state } => (state, Authorized::Refused(error)),
    };
    match state {
        Some(s) if pkce::constant_time_eq(s.as_bytes(), expected_state.expose().as_bytes()) => {
            Ok(outcome)
        }
        Some(_) => Err(RedirectError::StateMismatch),
        None if state_required => Err(RedirectError::MissingState),
        None => Ok(outcome),
    }
}

/// Checks a redirect URI given on the command line (`authorize-url --redirect-uri`): an
/// absolute URI with a scheme (https, http for a LAN device UI, or an app's own scheme), no
/// fragment (RFC 6749 §3.1.2), no spaces or control characters, bounded. The reason on error.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!("is longer than {MAX_REDIRECT_URI_LEN} bytes"));
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("is not an absolute URI (no scheme:)".into());
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok || rest.is_empty() {
        return Err("is not an absolute URI (scheme:rest)".into());
    }
    if uri.contains('#') {
        return Err("has a fragment (#...), which a redirect URI must not have".into());
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("holds spaces, control or non-ASCII characters (percent-encode them)".into());
    }
    Ok(())
}

/// Checks a caller-chosen `state` (`authorize-url --state`): 22 to 256 URL-safe characters, so
/// it carries at least 128 bits when random and comes back from the provider unchanged.
pub fn check_chosen_state(state: &str) -> Result<(), String> {
    if !(22..=MAX_STATE_LEN).contains(&state.len()) {
        return Err(format!(
            "must be 22 to {} characters long (at least 128 random bits)",
            MAX_STATE_LEN
        ));
    }
    if !state
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err("may only hold A-Z a-z 0-9 - . _ ~".into());
    }
    Ok(())
}

/// A pasted answer: a pasted address must carry the right state, a bare code cannot.
pub fn check_paste(input: &str, expected_state: &Secret) -> Result<Authorized, RedirectError> {
    let pasted = parse_paste(input)?;
    check(pasted.answer, expected_state, !pasted.bare_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkce() -> Pkce {
        Pkce::from_parts(
            Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            Secret::new("st4te"),
        )
    }

    #[test]
    fn redirect_uris_and_chosen_states_are_checked() {
        for ok in [
            "https://device.local/oauth/callback",
            "http://192.168.1.20:8080/cb",
            "com.example.tv:/oauth2redirect",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("device.local/cb", "no scheme"),
            ("https://d/cb#frag", "fragment"),
            ("https://d/a b", "spaces"),
            ("1http://d/", "absolute"),
            ("https:", "absolute"),
        ] {
            let e = check_redirect_uri(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(check_redirect_uri(&format!("https://d/{}", "a".repeat(3000))).is_err());
        assert_eq!(check_chosen_state("session-4711-aaaaaaaaaaaa"), Ok(()));
        assert!(check_chosen_state("short").unwrap_err().contains("22"));
        assert!(
            check_chosen_state("has space aaaaaaaaaaaaaaaa")
                .unwrap_err()
                .contains("A-Z")
        );
        assert!(check_chosen_state(&"a".repeat(257)).is_err());
    }

    #[test]
    fn url_has_every_rfc_parameter_encoded() {
        let p = pkce();
        let scopes = vec!["openid".to_string(), "email".to_string()];
        let extras = vec![
            ("access_type".to_string(), "offline".to_string()),
            ("prompt".to_string(), "consent".to_string()),
            // An extra cannot replace a parameter of the grant itself.
            ("response_type".to_string(), "token".to_string()),
        ];
        let url = AuthorizationRequest {
            endpoint: "https://accounts.example/o/oauth2/v2/auth",
            client_id: "id 1",
            redirect_uri: "http://127.0.0.1:8085/callback",
            scopes: &scopes,
            pkce: &p,
            extras: &extras,
        }
        .url();
        assert_eq!(
            url,
            "https://accounts.example/o/oauth2/v2/auth?response_type=code&client_id=id+1\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8085%2Fcallback&scope=openid+email\
             &state=st4te&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256&access_type=offline&prompt=consent"
        );
        assert!(
            !url.contains("dBjftJeZ4"),
            "the verifier never goes in the URL"
        );
    }

    #[test]
    fn url_appends_to_an_endpoint_with_a_query_and_omits_empty_scope() {
        let p = pkce();
        let url = AuthorizationRequest {
            endpoint: "https://login.example/authorize?p=b2c_signin",
            client_id: "c",
            redirect_uri: "http://[::1]:1/",
            scopes: &[],
            pkce: &p,
            extras: &[],
        }
        .url();
        assert!(
            url.starts_with("https://login.example/authorize?p=b2c_signin&response_type=code&")
        );
        assert!(!url.contains("scope="));
    }

    #[test]
    fn query_with_code_and_state() {
        let a = parse_query("code=abc%2F123&state=st4te&scope=openid").unwrap();
        assert_eq!(
            a,
            RedirectAnswer::Code {
                code: Secret::new("abc/123"),
                state: Some("st4te".into())
            }
        );
        assert_eq!(
            check(a, &pkce().state, true).unwrap(),
            Authorized::Code(Secret::new("abc/123"))
        );
    }

    #[test]
    fn error_answer_is_refused_only_with_the_right_state() {
        let a = parse_query("error=access_denied&error_description=The+user+said+no&state=st4te")
            .unwrap();
        match check(a, &pkce().state, true).unwrap() {
            Authorized::Refused(e) => {
                assert_eq!(e.error, "access_denied");
                assert_eq!(e.description.as_deref(), Some("The user said no"));
            }
            other => panic!("{other:?}"),
        }
        let forged = parse_query("error=access_denied&state=other").unwrap();
        assert_eq!(
            check(forged, &pkce().state, true),
            Err(RedirectError::StateMismatch)
        );
    }

    #[test]
    fn wrong_or_missing_state_is_rejected() {
        let wrong = parse_query("code=abc&state=st4tf").unwrap();
        assert_eq!(
            check(wrong, &pkce().state, true),
            Err(RedirectError::StateMismatch)
        );
        let longer = parse_query("code=abc&state=st4te2").unwrap();
        assert_eq!(
            check(longer, &pkce().state, true),
            Err(RedirectError::StateMismatch)
        );
        let missing = parse_query("code=abc").unwrap();
        assert_eq!(
            check(missing, &pkce().state, true),
            Err(RedirectError::MissingState)
        );
    }

    #[test]
    fn hostile_queries_are_errors_not_panics() {
        assert_eq!(parse_query("state=x"), Err(RedirectError::NoCode));
        assert!(matches!(
            parse_query("code=a&code=b&state=x"),
            Err(RedirectError::Malformed { .. })
        ));
        assert!(matches!(
            parse_query("code=%ZZ&state=x"),
            Err(RedirectError::Malformed { .. })
        ));
        assert!(matches!(
            parse_query("code=a%0Ab&state=x"),
            Err(RedirectError::Malformed { .. })
        ));
        let huge = format!("code={}&state=x", "a".repeat(MAX_CODE_LEN + 1));
        let err = parse_query(&huge).unwrap_err();
        assert!(matches!(err, RedirectError::Malformed { .. }), "{err:?}");
        assert!(!err.to_string().contains("aaaa"), "never quotes a code");
        assert!(matches!(
            parse_query(&"a".repeat(MAX_REDIRECT_LEN + 1)),
            Err(RedirectError::TooLong { .. })
        ));
    }

    #[test]
    fn paste_of_a_whole_address_checks_state() {
        let s = pkce().state;
        assert_eq!(
            check_paste(
                "  http://127.0.0.1:8085/cb?state=st4te&code=4%2F0Ab#frag\n",
                &s
            ),
            Ok(Authorized::Code(Secret::new("4/0Ab")))
        );
        assert_eq!(
            check_paste("http://localhost/cb?code=4%2F0Ab", &s),
            Err(RedirectError::MissingState)
        );
        assert_eq!(
            check_paste("HTTPS://app.example/cb?code=x&state=nope", &s),
            Err(RedirectError::StateMismatch)
        );
        assert_eq!(
            check_paste("http://127.0.0.1:8085/cb", &s),
            Err(RedirectError::NoQuery)
        );
        assert_eq!(
            check_paste("?code=x&state=st4te", &s),
            Ok(Authorized::Code(Secret::new("x")))
        );
    }

    #[test]
    fn paste_of_a_bare_code_needs_no_state() {
        let s = pkce().state;
        assert_eq!(
            check_paste("4/0AbCdEf-gh_ij\n", &s),
            Ok(Authorized::Code(Secret::new("4/0AbCdEf-gh_ij")))
        );
        assert_eq!(check_paste("   \n", &s), Err(RedirectError::Empty));
        assert_eq!(
            check_paste("not a code at all", &s),
            Err(RedirectError::NotACode)
        );
        assert_eq!(check_paste("\u{1b}[2J", &s), Err(RedirectError::NotACode));
        // Padding in a bare code is still a bare code, not a query.
        assert_eq!(
            check_paste("abc==", &s),
            Ok(Authorized::Code(Secret::new("abc==")))
        );
        // A query without state is not a bare code.
        assert_eq!(
            check_paste("code=abc", &s),
            Err(RedirectError::MissingState)
        );
    }
}
