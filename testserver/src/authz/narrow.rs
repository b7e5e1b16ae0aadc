//! Tokens with less than their grant's scope: a refresh request with a narrower `scope` (RFC
//! 6749 §6), answered as `Behavior::narrowing` says, and RFC 8693 token exchange of an access
//! token for one with a narrower `scope` (`Behavior::token_exchange`). Each access token
//! remembers its own scope, so a test can ask what a token handed out can really do.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

use super::{Ctx, OAuthError, Params, State, oerr};
use crate::behavior::Narrowing;

/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn words(s: &str) -> BTreeSet<&str> {
    s.split(' ').filter(|w| !w.is_empty()).collect()
}

impl State {
    /// The scope a refresh of `grant` asked for, checked: `None` when it asked for the whole
    /// grant (or left `scope` out, §6: "treated as equal to the scope originally granted").
    pub(super) fn narrowed_scope(
        &self,
        ctx: &Ctx<'_>,
        grant: usize,
        requested: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        let Some(requested) = requested else {
            return Ok(None);
        };
        let held = self
            .grants
            .get(grant)
            .map(|g| g.scope.clone())
            .unwrap_or_default();
        let (want, have) = (words(requested), words(&held));
        if !want.is_subset(&have) {
            // §6: MUST NOT include any scope not originally granted.
            return Err(oerr(
                400,
                "invalid_scope",
                "the requested scope exceeds the scope granted by the resource owner",
            ));
        }
        if want == have {
            return Ok(None);
        }
        match ctx.b.narrowing {
            Narrowing::Honour => Ok(Some(want.into_iter().collect::<Vec<_>>().join(" "))),
            Narrowing::Ignore => Ok(None),
            Narrowing::Refuse => Err(oerr(
                400,
                "invalid_scope",
                "the scope of a refresh must be the scope of the refresh token",
            )),
        }
    }

    /// Gives the access token of `answer` the narrower `scope`, and says so.
    pub(super) fn narrow_answer(&mut self, answer: &mut Map<String, Value>, scope: &str) {
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(t) = self.access.get_mut(&token) {
            t.scope = scope.to_string();
        }
        answer.insert("scope".into(), json!(scope));
        self.stats.narrowed_tokens += 1;
    }

    /// RFC 8693 §2.1: a live access token of this client for one with `scope` (a subset of
    /// its own); no refresh token.
    pub(super) fn token_exchange(
        &mut self,
        ctx: &Ctx<'_>,
        form: &Params,
        client_id: &str,
    ) -> Result<Map<String, Value>, OAuthError> {
        let Some(subject) = form.get("subject_token") else {
            return Err(oerr(400, "invalid_request", "missing subject_token"));
        };
        if form.get("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
            return Err(oerr(
                400,
                "invalid_request",
                "subject_token_type must be an access token",
            ));
        }
        if let Some(t) = form.get("requested_token_type") {
            if t != ACCESS_TOKEN_TYPE {
                return Err(oerr(
                    400,
                    "invalid_request",
                    "only access tokens are issued",
                ));
            }
        }
        let now = Instant::now();
        let Some(token) = self.access.get(subject) else {
            return Err(oerr(400, "invalid_grant", "unknown subject_token"));
        };
        if !self.access_usable(token, now) {
            return Err(oerr(
                400,
                "invalid_grant",
                "subject_token expired or revoked",
            ));
        }
        let (grant, held) = (token.grant, token.scope.clone());
        if self
            .grants
            .get(grant)
            .is_none_or(|g| g.client_id != client_id)
        {
            return Err(oerr(
                400,
                "invalid_grant",
                "subject_token was issued to another client",
            ));
        }
        let scope = match form.get("scope") {
            None => held.clone(),
            Some(s) => {
                if !words(s).is_subset(&words(&held)) {
                    return Err(oerr(
                        400,
                        "invalid_scope",
                        "beyond the subject token's scope",
                    ));
                }
                words(s).into_iter().collect::<Vec<_>>().join(" ")
            }
        };
        let mut answer = self.issue_tokens(ctx, grant, false);
        answer.remove("id_token");
        if words(&scope) != words(&held) {
            self.narrow_answer(&mut answer, &scope);
        }
        answer.insert("issued_token_type".into(), json!(ACCESS_TOKEN_TYPE));
        self.stats.token_exchanges += 1;
        Ok(answer)
    }

    /// The scope an access token was issued with.
    pub fn scope_of(&self, token: &str) -> Option<String> {
        self.access.get(token).map(|t| t.scope.clone())
    }
}
