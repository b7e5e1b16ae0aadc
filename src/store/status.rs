//! What `devauth status --json` (and the token service's `GET /v1/status`) says about the
//! store: paired or not, the account, scopes and expiry — never a secret.

use super::*;
use serde_json::json;

/// The status object of the store at `path`, read as `loaded`, for the configured
/// `client_id`; `service_account` names the issuer of a jwt-bearer config (never "paired").
pub fn status_json(
    path: &Path,
    loaded: &Result<Option<StoredTokens>, StoreError>,
    client_id: &str,
    service_account: Option<&str>,
    now: &TimeNow,
) -> Value {
    let path = path.display().to_string();
    let stored = match loaded {
        Err(e) => return json!({"paired": false, "store": path, "store_error": e.to_string()}),
        Ok(None) => {
            return match service_account {
                Some(issuer) => {
                    json!({"paired": false, "grant": "jwt-bearer", "account": issuer, "store": path})
                }
                None => json!({"paired": false, "store": path}),
            };
        }
        Ok(Some(s)) => s,
    };
    let t = &stored.tokens;
    let remaining = t.expiry.as_ref().map(|e| e.remaining(now));
    let expires_in: Option<u64> = remaining.flatten().map(|d| d.as_secs());
    let owner_ok = stored.client_id == client_id;
    let refused = stored.grant_refused.as_ref().filter(|_| owner_ok);
    json!({
        "paired": owner_ok && refused.is_none(),
        "pairing_needed": refused.is_some(),
        "grant_refused": refused.map(|r| json!({"unix": r.unix, "reason": r.reason})),
        "account": t.account,
        "scopes": t.scopes,
        "access_token_expires_in": expires_in,
        "access_token_expires": t.expiry.is_some(),
        "expiry_trusted": !matches!(remaining, Some(None)),
        "refresh_token": t.refresh_token.is_some(),
        "token_type": t.token_type,
        "client_id": stored.client_id,
        "token_endpoint": stored.token_endpoint,
        "store": path,
    })
}
