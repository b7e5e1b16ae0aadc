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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn paired() -> StoredTokens {
        StoredTokens {
            client_id: "client".into(),
            token_endpoint: "https://as.example/token".into(),
            tokens: TokenSet {
                access_token: Secret::new("access-secret"),
                token_type: "Bearer".into(),
                refresh_token: Some(Secret::new("refresh-secret")),
                id_token: None,
                scopes: vec!["openid".into()],
                account: Some("a@example.com".into()),
                expiry: None,
            },
            grant_refused: None,
        }
    }

    #[test]
    fn a_store_without_a_refusal_is_written_as_before() {
        // Files from before the field existed are byte for byte what this build writes, so an
        // upgrade rewrites nothing and an older build reads what this one wrote.
        let bytes = encode(&paired()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("grant_refused"), "{text}");
        assert_eq!(parse(&bytes).unwrap(), paired());
    }

    #[test]
    fn a_refusal_round_trips_and_a_bad_one_is_named() {
        let mut t = paired();
        t.grant_refused = Some(GrantRefused::new(
            1_800_000_000,
            "https://as/token: invalid_grant",
        ));
        let bytes = encode(&t).unwrap();
        assert_eq!(parse(&bytes).unwrap(), t);
        let text = String::from_utf8(bytes).unwrap();
        let bad = text.replace("\"unix\": 1800000000", "\"unix\": \"soon\"");
        match parse(bad.as_bytes()) {
            Err(Bad::Corrupt(d)) => assert!(d.contains("grant_refused.unix"), "{d}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(MAX_REFUSAL_REASON_BYTES);
        let r = GrantRefused::new(0, &reason);
        assert!(r.reason.len() <= MAX_REFUSAL_REASON_BYTES);
        assert!(r.reason.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_refusal_is_written_once_and_only_for_the_grant_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens.json"));
        store.save(&paired()).unwrap();
        let refresh = Secret::new("refresh-secret");
        let refusal = || GrantRefused::new(1_800_000_000, "invalid_grant");
        // Another grant's refusal (someone paired again meanwhile) changes nothing.
        let other = Secret::new("older-refresh-token");
        assert_eq!(
            store.mark_grant_refused(&other, refusal()).unwrap(),
            SaveOutcome::Unchanged
        );
        assert_eq!(store.load().unwrap().unwrap().grant_refused, None);
        assert_eq!(
            store.mark_grant_refused(&refresh, refusal()).unwrap(),
            SaveOutcome::Written
        );
        let inode = std::fs::metadata(store.path()).unwrap().ino();
        // The second refusal finds it recorded: no write (the file is the same inode, the first
        // time is kept).
        let later = GrantRefused::new(1_800_000_999, "invalid_grant again");
        assert_eq!(
            store.mark_grant_refused(&refresh, later).unwrap(),
            SaveOutcome::Unchanged
        );
        assert_eq!(std::fs::metadata(store.path()).unwrap().ino(), inode);
        assert_eq!(
            store.load().unwrap().unwrap().grant_refused,
            Some(refusal())
        );
    }
}
