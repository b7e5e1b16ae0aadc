//! The authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636): the authorization
//! endpoint (validation, the consent page, the redirect), the decision of a pending request
//! (by a test, the control API or a human on the page) and the redemption of a code at the
//! token endpoint. State lives in `authz::State`; this file only adds its code-grant methods.
//! No sockets here: the "browser" that follows redirects is `browser.rs`.

use std::time::Instant;

use ring::digest;
use serde_json::{Map, Value, json};

use super::{Ctx, Grant, OAuthError, Params, State, oerr, page};
use crate::behavior::{Flavor, RedirectState};
use crate::codec;
use crate::http::Response;

/// `code_challenge_method` of a request (RFC 7636 §4.3; absent means `plain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    S256,
    Plain,
}

/// One authorization request that passed validation.
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub challenge: Option<(String, Method)>,
    /// `access_type=offline` (Google).
    pub offline: bool,
    /// `prompt` contains `consent`.
    pub prompt_consent: bool,
    /// Every query pair as sent (for assertions in tests).
    pub query: Vec<(String, String)>,
    /// Approved or denied already (a request is decided once).
    pub decided: bool,
}

/// An issued authorization code.
pub struct AuthCode {
    pub request: usize,
    pub issued: Instant,
    /// The grant its redemption created: a second redemption is a replay.
    pub redeemed: Option<usize>,
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]` (also the shape of a challenge).
pub fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    codec::b64url_encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Loopback redirect URIs are accepted with any port and path (RFC 8252 §7.3); others must be
/// registered exactly.
fn redirect_allowed(uri: &str, registered: &[String]) -> bool {
    if registered.iter().any(|r| r == uri) {
        return true;
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost") && !uri.contains('#')
}

/// `uri` with `params` appended to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!(
        "{uri}{sep}{}",
        codec::form_encode_pairs(params.iter().copied())
    )
}

fn redirect(location: &str) -> Response {
    Response::empty(302)
        .with_header("Location", location)
        .no_store()
}

impl State {
    /// `GET /authorize` (RFC 6749 §4.1.1) and the consent page's `POST /authorize`.
    pub(super) fn authorize(&mut self, ctx: &Ctx<'_>) -> Response {
        if ctx.req.method == "POST" {
            return self.consent_post(ctx);
        }
        self.stats.authorization_requests += 1;
        let b = ctx.b;
        let q = Params(ctx.req.query.clone());
        // RFC 6749 §4.1.2.1: without a trustworthy client and redirect URI, tell the user
        // and do not redirect.
        let refuse = |st: &mut State, why: String| {
            st.stats.authorization_errors += 1;
            page(400, &format!("<p>Error: {}</p>", codec::html_escape(&why)))
        };
        if let Some(name) = q.repeated() {
            return refuse(self, format!("invalid_request: repeated parameter {name}"));
        }
        let client_id = match q.get("client_id") {
            None => return refuse(self, "invalid_request: missing client_id".into()),
            Some(id) if id != b.client_id => {
                return refuse(self, format!("invalid_client: unknown client {id}"));
            }
            Some(id) => id.to_string(),
        };
        let redirect_uri = match q.get("redirect_uri") {
            None => return refuse(self, "invalid_request: missing redirect_uri".into()),
            Some(u) if !redirect_allowed(u, &b.redirect_uris) => {
                return refuse(
                    self,
                    format!("redirect_uri_mismatch: {u} is not registered for this client"),
                );
            }
            Some(u) => u.to_string(),
        };
        let state = q.get("state").map(str::to_string);
        let fail = |st: &mut State, code: &str, why: &str| {
            st.stats.authorization_errors += 1;
            let mut p = vec![("error", code), ("error_description", why)];
            if let Some(s) = &state {
                p.push(("state", s));
            }
            redirect(&with_query(&redirect_uri, &p))
        };
        match q.get("response_type") {
            Some("code") => {}
            None => return fail(self, "invalid_request", "missing response_type"),
            Some("token") => {
                return fail(
                    self,
                    "unsupported_response_type",
                    "the implicit grant is not supported (OAuth 2.1, RFC 9700)",
                );
            }
            Some(_) => return fail(self, "unsupported_response_type", "use response_type=code"),
        }
        let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
            (None, _) if b.require_pkce => {
                return fail(self, "invalid_request", "code_challenge required (PKCE)");
            }
            (None, _) => None,
            (Some(c), _) if !pkce_shaped(c) => {
                return fail(self, "invalid_request", "malformed code_challenge");
            }
            (Some(c), Some("S256")) => Some((c.to_string(), Method::S256)),
            (Some(_), None | Some("plain")) if b.require_pkce => {
                return fail(
                    self,
                    "invalid_request",
                    "code_challenge_method must be S256",
                );
            }
            (Some(c), None | Some("plain")) => Some((c.to_string(), Method::Plain)),
            (Some(_), Some(_)) => {
                return fail(self, "invalid_request", "unsupported code_challenge_method");
            }
        };
        let request = AuthRequest {
            client_id,
            scope: q.get("scope").unwrap_or("").to_string(),
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            challenge,
            offline: q.get("access_type") == Some("offline"),
            prompt_consent: q
                .get("prompt")
                .is_some_and(|p| p.split(' ').any(|x| x == "consent")),
            query: ctx.req.query.clone(),
            decided: false,
        };
        self.auth_requests.push(request);
        let idx = self.auth_requests.len() - 1;
        if let Some(approve) = b.auto_authorize {
            if let Some(to) = self.decide_authorization(b, Some(idx), approve) {
                return redirect(&to);
            }
        }
        page(
            200,
            &format!(
                "<p>Client <b>{}</b> asks for <b>{}</b>.</p>\n<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"request\" value=\"{idx}\">\n<button name=\"action\" value=\"approve\">Allow</button>\n<button name=\"action\" value=\"deny\">Deny</button>\n</form>",
                codec::html_escape(&b.client_id),
                codec::html_escape(q.get("scope").unwrap_or("(no scope)")),
                codec::html_escape(&ctx.req.path),
            ),
        )
    }

    /// The consent page's form: `request=<n>&action=approve|deny` → the redirect.
    fn consent_post(&mut self, ctx: &Ctx<'_>) -> Response {
        let form = Params(ctx.req.form());
        let idx = form.get("request").and_then(|r| r.parse::<usize>().ok());
        let approve = form.get("action") != Some("deny");
        match idx.and_then(|i| self.decide_authorization(ctx.b, Some(i), approve)) {
            Some(to) => redirect(&to),
            None => page(
                400,
                "<p>Unknown or already decided authorization request.</p>",
            ),
        }
    }

    /// Every validated request, as the public view.
    pub fn authorization_requests(&self) -> Vec<crate::AuthorizationRequest> {
        self.auth_requests
            .iter()
            .map(|r| crate::AuthorizationRequest {
                client_id: r.client_id.clone(),
                redirect_uri: r.redirect_uri.clone(),
                scope: r.scope.clone(),
                state: r.state.clone(),
                code_challenge: r.challenge.as_ref().map(|(c, _)| c.clone()),
                code_challenge_method: r.challenge.as_ref().map(|(_, m)| {
                    match m {
                        Method::S256 => "S256",
                        Method::Plain => "plain",
                    }
                    .to_string()
                }),
                query: r.query.clone(),
                decided: r.decided,
            })
            .collect()
    }

    /// The latest request not decided yet.
    pub fn pending_authorization(&self) -> Option<usize> {
        self.auth_requests.iter().rposition(|r| !r.decided)
    }

    /// Approves (issues a code) or denies request `idx` (`None`: the latest pending one) and
    /// returns the URL the browser is sent to. `None` when there is no such pending request.
    pub fn decide_authorization(
        &mut self,
        b: &crate::Behavior,
        idx: Option<usize>,
        approve: bool,
    ) -> Option<String> {
        let idx = match idx {
            Some(i) => i,
            None => self.pending_authorization()?,
        };
        let req = self.auth_requests.get_mut(idx)?;
        if req.decided {
            return None;
        }
        req.decided = true;
        let state = match &b.redirect_state {
            RedirectState::Echo => req.state.clone(),
            RedirectState::Replace(s) => Some(s.clone()),
            RedirectState::Omit => None,
        };
        let mut params: Vec<(&str, String)> = Vec::new();
        if approve {
            let code = format!("ac-{}", codec::random_token(32));
            params.push(("code", code.clone()));
            if let Some(s) = state {
                params.push(("state", s));
            }
            if b.flavor == Flavor::Google {
                // Google's redirect also carries these; clients must ignore extras.
                params.push(("scope", req.scope.clone()));
                params.push(("authuser", "0".into()));
            }
            self.auth_codes.insert(
                code,
                super::code::AuthCode {
                    request: idx,
                    issued: Instant::now(),
                    redeemed: None,
                },
            );
            self.stats.authorization_codes_issued += 1;
        } else {
            params.push(("error", "access_denied".into()));
            params.push(("error_description", "The user denied the request".into()));
            if let Some(s) = state {
                params.push(("state", s));
            }
            self.stats.authorization_denials += 1;
        }
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let to = with_query(&req.redirect_uri, &pairs);
        self.last_redirect = Some(to.clone());
        Some(to)
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5/§4.6).
    pub(super) fn redeem_code(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
        client_id: &str,
    ) -> Result<Map<String, Value>, OAuthError> {
        let b = ctx.b;
        let Some(code) = form.get("code") else {
            return Err(oerr(400, "invalid_request", "missing code"));
        };
        let Some(entry) = self.auth_codes.get(code) else {
            return Err(oerr(400, "invalid_grant", "unknown authorization code"));
        };
        if let Some(grant) = entry.redeemed {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            self.stats.code_replays += 1;
            self.revoke_grant(grant);
            return Err(oerr(
                400,
                "invalid_grant",
                "authorization code already used",
            ));
        }
        let (request_idx, issued) = (entry.request, entry.issued);
        let Some(req) = self.auth_requests.get(request_idx) else {
            return Err(oerr(400, "invalid_grant", "unknown authorization code"));
        };
        if req.client_id != client_id {
            return Err(oerr(
                400,
                "invalid_grant",
                "authorization code was issued to another client",
            ));
        }
        if Instant::now().saturating_duration_since(issued) >= b.code_lifetime {
            return Err(oerr(400, "invalid_grant", "authorization code expired"));
        }
        if form.get("redirect_uri") != Some(req.redirect_uri.as_str()) {
            self.stats.redirect_mismatches += 1;
            return Err(oerr(
                400,
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            ));
        }
        let pkce = match (&req.challenge, form.get("code_verifier")) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err("code_verifier sent but the request had no code_challenge"),
            (Some(_), None) => Err("missing code_verifier"),
            (Some(_), Some(v)) if !pkce_shaped(v) => Err("malformed code_verifier"),
            (Some((c, Method::S256)), Some(v)) if s256(v) != *c => Err("PKCE verification failed"),
            (Some((c, Method::Plain)), Some(v)) if v != c => Err("PKCE verification failed"),
            (Some(_), Some(_)) => Ok(()),
        };
        if let Err(why) = pkce {
            self.stats.pkce_failures += 1;
            return Err(oerr(400, "invalid_grant", why));
        }
        let first_consent = !self.consented.contains(client_id);
        let with_refresh = b.issue_refresh_token
            && b.refresh_token_requires_scope
                .as_deref()
                .is_none_or(|need| req.scope.split(' ').any(|s| s == need))
            && (!b.refresh_token_requires_offline || req.offline)
            && (!b.refresh_token_only_on_first_consent || first_consent || req.prompt_consent);
        let scope = b.scope_granted.clone().unwrap_or_else(|| req.scope.clone());
        let grant = self.grants.len();
        let jkt = self
            .request_jkt
            .clone()
            .filter(|_| State::public_client(ctx.b));
        self.grants.push(Grant {
            client_id: client_id.to_string(),
            scope,
            revoked: false,
            jkt,
        });
        if let Some(entry) = self.auth_codes.get_mut(code) {
            entry.redeemed = Some(grant);
        }
        self.consented.insert(client_id.to_string());
        self.stats.code_grants += 1;
        Ok(self.issue_tokens(ctx, grant, with_refresh))
    }

    /// `POST /test/authorize` (`action=approve|deny`): decides the latest pending request.
    pub(super) fn test_authorize(&mut self, ctx: &Ctx<'_>) -> Response {
        let form = Params(ctx.req.form());
        let approve = form.get("action") != Some("deny");
        match self.decide_authorization(ctx.b, None, approve) {
            Some(to) => Response::json(200, &json!({"ok": true, "redirect_url": to})),
            None => Response::json(
                404,
                &json!({"ok": false, "error": "no_pending_authorization"}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_shape() {
        assert!(pkce_shaped(&"a".repeat(43)));
        assert!(pkce_shaped(&"~._-".repeat(32)));
        assert!(!pkce_shaped(&"a".repeat(42)));
        assert!(!pkce_shaped(&"a".repeat(129)));
        assert!(!pkce_shaped(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn loopback_redirects() {
        let none: &[String] = &[];
        assert!(redirect_allowed("http://127.0.0.1:8080/cb", none));
        assert!(redirect_allowed("http://[::1]:1/", none));
        assert!(redirect_allowed("http://localhost", none));
        assert!(!redirect_allowed("http://127.0.0.1.evil.test/cb", none));
        assert!(!redirect_allowed("https://device.test/cb", none));
        assert!(!redirect_allowed("http://127.0.0.1:1/#x", none));
        assert!(redirect_allowed(
            "https://device.test/cb",
            &["https://device.test/cb".to_string()]
        ));
    }

    #[test]
    fn query_appending() {
        assert_eq!(
            with_query("http://h/cb", &[("code", "a b"), ("state", "s")]),
            "http://h/cb?code=a+b&state=s"
        );
        assert_eq!(
            with_query("http://h/cb?x=1", &[("e", "1")]),
            "http://h/cb?x=1&e=1"
        );
    }
}
