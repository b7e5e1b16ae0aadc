//! The provider's verdict that the stored grant is gone — `invalid_grant` on a refresh (RFC 6749
//! §5.2): revoked in the account's settings, expired, or ended by reuse detection — kept in the
//! token file, so that `status`, `token`, `api` and the agent tell the same story afterwards
//! without asking the provider again.
//!
//! One optional field, `grant_refused`, in the same JSON object (version 1 stays version 1):
//! files written before it existed have none and read as before, and a store that never saw a
//! refusal is byte for byte what it was. The field is written once, when the verdict first
//! comes, through the store's atomic write; a later refusal of the same grant finds it there
//! and writes nothing (flash wear). A new pairing writes a file without it.

use super::*;

/// Longest reason kept (the provider's `error_description` can be long; the rest is dropped).
pub const MAX_REFUSAL_REASON_BYTES: usize = 1024;

/// When and why the provider refused the stored grant. Never holds a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantRefused {
    /// The wall clock when the refusal came, Unix seconds (as the device's clock read it).
    pub unix: i64,
    /// What the provider said: the endpoint, the HTTP status and its `error` and description.
    pub reason: String,
}

impl GrantRefused {
    /// A refusal at `unix` for `reason`, cut to [`MAX_REFUSAL_REASON_BYTES`] on a character
    /// boundary.
    pub fn new(unix: i64, reason: &str) -> GrantRefused {
        let mut end = reason.len().min(MAX_REFUSAL_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        GrantRefused {
            unix,
            reason: reason.get(..end).unwrap_or_default().to_string(),
        }
    }
}

/// The `grant_refused` field of a token file, if there is one.
pub(super) fn parse_refusal(top: &Fields<'_>) -> Result<Option<GrantRefused>, Bad> {
    match top.get("grant_refused") {
        None => Ok(None),
        Some(Value::Object(obj)) => {
            let f = Fields {
                obj,
                at: "grant_refused.",
            };
            Ok(Some(GrantRefused {
                unix: f.i64("unix")?,
                reason: f.string("reason", MAX_REFUSAL_REASON_BYTES)?,
            }))
        }
        Some(_) => Err(corrupt("field `grant_refused` is not an object")),
    }
}

impl TokenStore {
    /// Records that the provider refused the grant whose refresh token is `refresh_token`.
    /// Call it holding the store's lock. Writes only when the file still holds that grant and
    /// does not say so already; otherwise (someone paired again meanwhile, or the refusal is
    /// known) it leaves the file alone and says [`SaveOutcome::Unchanged`].
    pub fn mark_grant_refused(
        &self,
        refresh_token: &Secret,
        refusal: GrantRefused,
    ) -> Result<SaveOutcome, StoreError> {
        match self.load()? {
            Some(mut stored)
                if stored.grant_refused.is_none()
                    && stored.tokens.refresh_token.as_ref() == Some(refresh_token) =>
            {
                stored.grant_refused = Some(refusal);
                self.save(&stored)
            }
            _ => Ok(SaveOutcome::Unchanged),
        }
    }
}
