//! `devauth authorize-url` and `devauth exchange`: the web-server sign-in in two processes, as
//! oauth2client's `step1_get_authorize_url` / `step2_exchange` do it, for a device whose own web
//! UI (or a server) sends the browser to the provider and receives the redirect itself.
//!
//! Step one prints the URL and keeps the request (state, PKCE verifier, redirect URI) in the
//! pending file beside the token file ([`crate::store::pending`]); step two looks the answer's
//! state up there, uses the request up, and redeems the code exactly as `pair` does
//! ([`sign_in::redeem`]), so the tokens go through the same store, refresh, `token`, `run` and
//! `unpair` paths.

use crate::cli::{AuthorizeUrlArgs, ExchangeAnswer, ExchangeArgs, UsageError};
use crate::clock::{self, Clock, SystemClock};
use crate::commands::sign_in;
use crate::config::{CodeGrantConfig, Config};
use crate::error::Error;
use crate::oauth::authorize::{
    self, AuthorizationRequest, Authorized, MAX_REDIRECT_LEN, RedirectAnswer,
};
use crate::oauth::pkce::{self, Pkce};
use crate::secret::Secret;
use crate::setup::{self, emit};
use crate::store::pending::{self, AddError, Lookup, PendingSignIn, PendingStore};
use serde_json::json;
use std::io::{BufRead, Read};

fn code_grant(config: &Config) -> Result<&CodeGrantConfig, Error> {
    config
        .provider
        .grant
        .code_grant()
        .ok_or_else(|| Error::Setup("provider.grant is not \"authorization_code\"".into()))
}

pub(crate) fn authorize_url(config: &Config, args: &AuthorizeUrlArgs) -> Result<(), Error> {
    let code_cfg = code_grant(config)?;
    authorize::check_redirect_uri(&args.redirect_uri)
        .map_err(|why| UsageError(format!("--redirect-uri {why}")))?;
    if let Some(state) = &args.state {
        authorize::check_chosen_state(state).map_err(|why| UsageError(format!("--state {why}")))?;
    }
    let pkce = Pkce::generate().map_err(|e| Error::Setup(e.to_string()))?;
    let pkce = match &args.state {
        Some(state) => Pkce::from_parts(pkce.verifier, Secret::new(state.clone())),
        None => pkce,
    };
    // Discovery first: a provider that cannot be reached must not leave a request behind.
    let transport = setup::transport(config)?;
    let endpoints = setup::resolve_endpoints(config, &transport)?;
    let authorization_endpoint = sign_in::authorization_endpoint(code_cfg, &endpoints)?;
    let url = AuthorizationRequest {
        endpoint: &authorization_endpoint,
        client_id: &config.provider.client_id,
        redirect_uri: &args.redirect_uri,
        scopes: &config.provider.scopes,
        pkce: &pkce,
        extras: &code_cfg.authorization_extras,
    }
    .url();

    let now = clock::unix_secs(SystemClock.wall());
    let lifetime = i64::try_from(code_cfg.login_timeout.as_secs()).unwrap_or(i64::MAX);
    let request = PendingSignIn {
        state: pkce.state.clone(),
        verifier: pkce.verifier.clone(),
        redirect_uri: args.redirect_uri.clone(),
        created: now,
        expires: now.saturating_add(lifetime),
        named: args.state.is_some(),
    };
    let store = PendingStore::for_tokens(&config.storage.token_store());
    let _lock = store.lock()?;
    let list = pending::with_new(store.load()?, request, now).map_err(|AddError::Full| {
        UsageError(format!(
            "{} requests named with --state are waiting in {}; finish them with `devauth \
             exchange` or let them expire (login_timeout_secs)",
            pending::MAX_PENDING,
            store.path().display()
        ))
    })?;
    store.save(&list)?;

    if args.json {
        emit(&json!({
            "event": "authorize",
            "url": url,
            "state": pkce.state.expose(),
            "redirect_uri": args.redirect_uri,
            "expires_in": code_cfg.login_timeout.as_secs(),
        }));
    } else {
        // The hint only goes with an address that was shown (a failure is `main`'s to say).
        if crate::stdout::line(&url).is_ok() {
            eprintln!(
                "devauth: open this address; within {}s, give the address the provider redirects \
             to to `devauth exchange --redirect-url URL`",
                code_cfg.login_timeout.as_secs()
            );
        }
    }
    Ok(())
}

pub(crate) fn exchange(config: &Config, args: &ExchangeArgs) -> Result<(), Error> {
    let result = exchange_inner(config, args);
    if args.json {
        match &result {
            Ok(()) => {}
            Err(Error::Denied) => emit(&json!({"event": "denied"})),
            Err(e) => emit(&json!({"event": "error", "message": e.to_string()})),
        }
    }
    result
}

fn exchange_inner(config: &Config, args: &ExchangeArgs) -> Result<(), Error> {
    let code_cfg = code_grant(config)?;
    let (answer, bare_code) = read_answer(&args.answer)?;
    let (state, outcome) = match answer {
        RedirectAnswer::Code { code, state } => (state, Authorized::Code(code)),
        RedirectAnswer::Error { error, state } => (state, Authorized::Refused(error)),
    };
    if state.is_none() && !bare_code {
        return Err(Error::Usage(UsageError(
            "the redirect carries no state, so it cannot be matched to a request".into(),
        )));
    }

    let tokens = config.storage.token_store();
    let store = PendingStore::for_tokens(&tokens);
    let now = clock::unix_secs(SystemClock.wall());
    let request = {
        let _lock = store.lock()?;
        let (rest, found) = pending::take(store.load()?, state.as_deref(), now);
        // Used up before the exchange: a code works once, and so does its verifier.
        store.save(&rest)?;
        match found {
            Lookup::Found(request) => request,
            Lookup::Expired { ago } => {
                return Err(Error::NoPendingSignIn(format!(
                    "this sign-in request expired {ago}s ago (login_timeout_secs = {}); run \
                     `devauth authorize-url` again",
                    code_cfg.login_timeout.as_secs()
                )));
            }
            Lookup::Unknown { pending: 0 } => {
                return Err(Error::NoPendingSignIn(format!(
                    "no sign-in is pending in {} (run `devauth authorize-url` first; a request \
                     is used once)",
                    store.path().display()
                )));
            }
            Lookup::Unknown { pending } if state.is_none() => {
                return Err(Error::NoPendingSignIn(format!(
                    "{pending} sign-ins are pending and a bare code says not which; give \
                     --state too, or the whole --redirect-url"
                )));
            }
            Lookup::Unknown { pending } => {
                return Err(Error::NoPendingSignIn(format!(
                    "no pending sign-in has this state ({pending} other{} pending): the \
                     answer belongs to another request, was used already, or is forged",
                    if pending == 1 { " is" } else { "s are" }
                )));
            }
        }
    };
    let code = match outcome {
        Authorized::Code(code) => code,
        Authorized::Refused(err) if sign_in::is_denial(&err.error) => return Err(Error::Denied),
        Authorized::Refused(err) => {
            return Err(Error::Provider(format!("the sign-in was refused: {err}")));
        }
    };
    if !pkce::is_valid_verifier(request.verifier.expose()) {
        return Err(Error::Store(crate::store::StoreError::Corrupt {
            path: store.path().to_path_buf(),
            detail: "field `pending[].code_verifier` is not an RFC 7636 verifier".into(),
        }));
    }

    let prepared = tokens.prepare_pairing()?;
    let transport = setup::transport(config)?;
    let endpoints = setup::resolve_endpoints(config, &transport)?;
    let client = setup::pairing_client(config, &tokens, transport, endpoints)?;
    let stored = sign_in::redeem(
        config,
        code_cfg,
        &client,
        &code,
        &request.redirect_uri,
        &request.verifier,
        &SystemClock,
    )?;
    prepared.commit(&stored)?;
    // A running agent holds the tokens from now on (it was waiting for a sign-in).
    super::notify_agent(&tokens);
    crate::commands::announce_paired(args.json, "signed in", &stored, &tokens);
    Ok(())
}

/// The answer as given, `-` read from stdin (one line, bounded); whether it was a bare code.
fn read_answer(answer: &ExchangeAnswer) -> Result<(RedirectAnswer, bool), Error> {
    let usage = |what: &str, e: authorize::RedirectError| {
        Error::Usage(UsageError(format!("{what} cannot be used: {e}")))
    };
    match answer {
        ExchangeAnswer::RedirectUrl(url) => {
            let text = from_stdin_if_dash(url, "--redirect-url")?;
            let lower = text.trim().get(..8).unwrap_or("").to_ascii_lowercase();
            if !lower.starts_with("http") && !text.contains('?') {
                return Err(Error::Usage(UsageError(
                    "--redirect-url is not an address with ?code=... (for only the code, use \
                     --code)"
                        .into(),
                )));
            }
            let pasted = authorize::parse_paste(&text).map_err(|e| usage("--redirect-url", e))?;
            Ok((pasted.answer, false))
        }
        ExchangeAnswer::Code { code, state } => {
            let code = from_stdin_if_dash(code, "--code")?;
            let code = code.trim();
            if code.is_empty()
                || code.len() > authorize::MAX_CODE_LEN
                || !code.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(Error::Usage(UsageError(format!(
                    "--code must be 1 to {} printable characters",
                    authorize::MAX_CODE_LEN
                ))));
            }
            Ok((
                RedirectAnswer::Code {
                    code: Secret::new(code),
                    state: state.clone(),
                },
                state.is_none(),
            ))
        }
    }
}

fn from_stdin_if_dash(value: &str, flag: &str) -> Result<String, Error> {
    if value != "-" {
        return Ok(value.to_string());
    }
    let mut line = String::new();
    let limit = u64::try_from(MAX_REDIRECT_LEN + 2).unwrap_or(u64::MAX);
    std::io::stdin()
        .lock()
        .take(limit)
        .read_line(&mut line)
        .map_err(|e| Error::Io(format!("{flag} -: reading stdin: {e}")))?;
    if line.trim().is_empty() {
        return Err(Error::Usage(UsageError(format!(
            "{flag} -: stdin gave nothing"
        ))));
    }
    Ok(line)
}
