//! `devauth pair` with `grant = "authorization_code"`: the browser sign-in (RFC 6749 §4.1 with
//! PKCE, loopback redirect RFC 8252 §7.3). Starts the listener, builds the URL, launches the
//! browser command, waits for the redirect, exchanges the code and stores the tokens in the
//! same store as a device-flow pairing, so `token`, `status`, `run`, `api` and `unpair` work
//! unchanged.
//!
//! The decisions are in `oauth/` (URL, redirect checks, listener decision); this file only
//! wires them to the sockets, the browser process and the store.

use crate::cli::{PairArgs, UsageError};
use crate::clock::SystemClock;
use crate::config::{CodeGrantConfig, Config, DEFAULT_BROWSER_COMMAND};
use crate::error::Error;
use crate::grant;
use crate::oauth::authorize::{self, AuthorizationRequest, Authorized, MAX_REDIRECT_LEN};
use crate::oauth::loopback::{Loopback, LoopbackError, LoopbackSettings};
use crate::oauth::pkce::Pkce;
use crate::screen::{CodeScreen, Screen, View};
use crate::secret::Secret;
use crate::setup::{self, emit};
use crate::store::{StoredTokens, TimeNow, TokenStore};
use serde_json::json;
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Command, Stdio};

/// How the redirect comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Launch `browser_command`, wait on the loopback listener.
    Browser,
    /// Launch nothing (the device's own UI opens the URL), wait on the listener.
    NoBrowser,
    /// Read the redirected address or the code from stdin.
    Paste,
}

/// How many pastes may be tried before giving up.
const PASTE_ATTEMPTS: usize = 3;

/// How `devauth pair` with `--grant`, `--no-browser` or `--paste` signs in: `None` when the
/// config's grant is not the code grant (then it is the device flow of `pair`).
pub(crate) fn mode(config: &Config, args: &PairArgs) -> Result<Option<Mode>, Error> {
    let mode = if args.paste {
        Mode::Paste
    } else if args.no_browser {
        Mode::NoBrowser
    } else {
        Mode::Browser
    };
    if config.provider.grant.code_grant().is_some() {
        return Ok(Some(mode));
    }
    if mode != Mode::Browser {
        return Err(Error::Usage(UsageError(format!(
            "--no-browser and --paste are for grant = \"authorization_code\" (this config \
             has grant = \"{}\"; add --grant authorization_code)",
            config.provider.grant.name()
        ))));
    }
    Ok(None)
}

pub(crate) fn pair(config: &Config, json: bool) -> Result<(), Error> {
    pair_with(config, json, Mode::Browser)
}

pub(crate) fn pair_with(config: &Config, json: bool, mode: Mode) -> Result<(), Error> {
    let Some(code_cfg) = config.provider.grant.code_grant() else {
        return Err(Error::Setup(
            "provider.grant is not \"authorization_code\"".into(),
        ));
    };
    let clock = SystemClock;
    let store = config.storage.token_store();
    let (mut screen, _language) = setup::open_screen(config, json)?;
    let result = sign_in(
        config,
        code_cfg,
        json,
        mode,
        &clock,
        &store,
        screen.as_mut(),
    );
    match &result {
        Ok((account, name)) => {
            let _ = screen.show(&View::Paired {
                account: account.clone(),
                name: name.clone(),
            });
        }
        Err(Error::Denied) => {
            let _ = screen.show(&View::Denied);
            if json {
                emit(&json!({"event": "denied"}));
            }
        }
        Err(e) => {
            let _ = screen.show(&View::Error {
                problem: e.problem(),
            });
            if json {
                emit(&json!({"event": "error", "message": e.to_string()}));
            }
        }
    }
    result.map(|_| ())
}

fn sign_in(
    config: &Config,
    code_cfg: &CodeGrantConfig,
    json: bool,
    mode: Mode,
    clock: &SystemClock,
    store: &TokenStore,
    screen: &mut dyn Screen,
) -> Result<(Option<String>, Option<String>), Error> {
    // Signals keep their default action here (the listener does not wait on them), so there
    // is nothing to stop on but the clock.
    super::clock_wait::wait_for_clock(
        clock,
        screen,
        &mut |event| {
            if json {
                emit(&event);
            }
        },
        &|| false,
    );
    // As in the device flow: a store that cannot take the tokens stops us before sign-in.
    let prepared = store.prepare_pairing()?;
    let transport = setup::transport(config)?;
    let endpoints = setup::resolve_endpoints(config, &transport)?;
    let client = setup::pairing_client(config, store, transport, endpoints)?;
    let authorization_endpoint = authorization_endpoint(code_cfg, &client.endpoints)?;

    let mut settings = LoopbackSettings {
        host: code_cfg.redirect_host,
        port: code_cfg.redirect_port,
        timeout: code_cfg.login_timeout,
        ..LoopbackSettings::default()
    };
    if let Some(text) = &code_cfg.success_text {
        settings.success_text = text.clone();
    }
    if let Some(text) = &code_cfg.failure_text {
        settings.failure_text = text.clone();
    }
    let listener = Loopback::bind(settings).map_err(loopback_error)?;
    let redirect_uri = listener.redirect_uri().to_string();
    let pkce = Pkce::generate().map_err(|e| Error::Setup(e.to_string()))?;
    let url = AuthorizationRequest {
        endpoint: &authorization_endpoint,
        client_id: &config.provider.client_id,
        redirect_uri: &redirect_uri,
        scopes: &config.provider.scopes,
        pkce: &pkce,
        extras: &code_cfg.authorization_extras,
    }
    .url();

    if json {
        emit(&json!({
            "event": "authorize",
            "url": url,
            "expires_in": code_cfg.login_timeout.as_secs(),
        }));
    }
    // The URL carries the state and the challenge, never the verifier: it may be shown.
    eprintln!("devauth: sign in at {url}");
    let authorized = match mode {
        Mode::Browser => {
            launch_browser(code_cfg.browser_command.as_deref(), &url);
            listener.wait(&pkce.state).map_err(loopback_error)?
        }
        Mode::NoBrowser => {
            show_url(screen, &url, code_cfg);
            listener.wait(&pkce.state).map_err(loopback_error)?
        }
        Mode::Paste => {
            // Nothing listens: the browser is on another machine, its redirect to this address
            // fails there and the person copies it from the address bar.
            drop(listener);
            show_url(screen, &url, code_cfg);
            read_paste(&pkce.state)?
        }
    };
    let code = match authorized {
        Authorized::Code(code) => code,
        Authorized::Refused(err) if is_denial(&err.error) => return Err(Error::Denied),
        Authorized::Refused(err) => {
            return Err(Error::Provider(format!(
                "{}: the sign-in was refused: {err}",
                crate::net::transport::redact_url(&authorization_endpoint)
            )));
        }
    };
    let stored = redeem(
        config,
        code_cfg,
        &client,
        &code,
        &redirect_uri,
        &pkce.verifier,
        clock,
    )?;
    prepared.commit(&stored)?;
    crate::commands::announce_paired(json, "signed in", &stored, store);
    let name = crate::grant::person_name(&stored.tokens);
    Ok((stored.tokens.account, name))
}

/// The configured authorization endpoint, else the one discovery found.
pub(crate) fn authorization_endpoint(
    code_cfg: &CodeGrantConfig,
    discovered: &crate::oauth::Endpoints,
) -> Result<String, Error> {
    code_cfg
        .authorization_endpoint
        .clone()
        .or_else(|| discovered.authorization.clone())
        .ok_or_else(|| {
            Error::Provider(
                "the issuer's discovery document names no authorization_endpoint; set \
                 provider.authorization_endpoint"
                    .into(),
            )
        })
}

/// Exchanges `code` with its verifier and turns the answer into what the store keeps; refuses
/// an answer without a refresh token where the profile needs one, so nothing that dies within
/// the hour is stored. The end of every code-grant sign-in (browser, paste, `exchange`).
pub(crate) fn redeem<T: crate::net::transport::Transport>(
    config: &Config,
    code_cfg: &CodeGrantConfig,
    client: &crate::oauth::client::OAuthClient<T>,
    code: &Secret,
    redirect_uri: &str,
    verifier: &Secret,
    clock: &SystemClock,
) -> Result<StoredTokens, Error> {
    let exchanged = client.exchange_code(code, redirect_uri, verifier)?;
    if exchanged.tokens.refresh_token.is_none() && code_cfg.requires_refresh_token {
        return Err(Error::Provider(format!(
            "{}: the sign-in returned no refresh token, so the access would end within the \
             hour; nothing was stored. {}",
            crate::net::transport::redact_url(&client.endpoints.token),
            config.provider.preset.missing_refresh_token_hint()
        )));
    }
    let account = grant::account_for(client, &exchanged.tokens);
    let tokens = grant::token_set(
        exchanged.tokens,
        None,
        exchanged.server_date,
        &TimeNow::read(clock),
        account,
    );
    Ok(StoredTokens {
        client_id: config.provider.client_id.clone(),
        token_endpoint: client.endpoints.token.clone(),
        tokens,
        grant_refused: None,
    })
}

/// The URL as text + QR on the screen backends, like a device code (no code to type: the
/// screens then say "open {url} to sign in").
fn show_url(screen: &mut dyn Screen, url: &str, code_cfg: &CodeGrantConfig) {
    let _ = screen.show(&View::WaitingForUser(CodeScreen {
        verification_uri: url.to_string(),
        qr_payload: url.to_string(),
        user_code: String::new(),
        message: None,
        remaining: code_cfg.login_timeout,
        lifetime: code_cfg.login_timeout,
        renewed: false,
        profile: None,
    }));
}

/// Reads pasted lines from stdin until one checks out; a malformed one is explained and
/// another chance given, up to [`PASTE_ATTEMPTS`].
fn read_paste(state: &Secret) -> Result<Authorized, Error> {
    let stdin = std::io::stdin();
    let mut last = String::new();
    for attempt in 1..=PASTE_ATTEMPTS {
        eprintln!(
            "devauth: paste the address your browser was sent to (or only the code), then Enter:"
        );
        let mut line = String::new();
        let limit = u64::try_from(MAX_REDIRECT_LEN + 2).unwrap_or(u64::MAX);
        let read = stdin
            .lock()
            .take(limit)
            .read_line(&mut line)
            .map_err(|e| Error::Io(format!("reading the pasted address: {e}")))?;
        if read == 0 {
            return Err(Error::Usage(UsageError(format!(
                "no paste: stdin ended{last}"
            ))));
        }
        match authorize::check_paste(&line, state) {
            Ok(authorized) => return Ok(authorized),
            Err(e) => {
                let left = PASTE_ATTEMPTS - attempt;
                eprintln!("devauth: that paste cannot be used: {e}");
                if left > 0 {
                    eprintln!("devauth: try again ({left} more)");
                }
                last = format!(" (last paste: {e})");
            }
        }
    }
    Err(Error::Usage(UsageError(format!(
        "{PASTE_ATTEMPTS} pastes could not be used{last}"
    ))))
}

/// RFC 6749 §4.1.2.1 `access_denied`; Microsoft's device-flow word too, for one exit code.
pub(crate) fn is_denial(error: &str) -> bool {
    matches!(error, "access_denied" | "authorization_declined")
}

fn loopback_error(e: LoopbackError) -> Error {
    match e {
        LoopbackError::TimedOut { .. } => Error::LoginTimeout(e.to_string()),
        other => Error::Setup(other.to_string()),
    }
}

/// Runs the browser command with the URL as its only argument (no shell, so nothing in the URL
/// is interpreted). Without a configured command, `xdg-open` when it is on PATH; otherwise, or
/// when it fails to start, the URL printed above is the way in.
fn launch_browser(configured: Option<&str>, url: &str) {
    let command = match configured {
        Some(c) => c.to_string(),
        None if on_path(DEFAULT_BROWSER_COMMAND) => DEFAULT_BROWSER_COMMAND.to_string(),
        None => {
            eprintln!("devauth: no browser_command and no xdg-open; open the address yourself");
            return;
        }
    };
    let spawned = Command::new(&command)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    match spawned {
        // Reaped in the background so it never becomes a zombie while we wait.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("devauth: could not run browser_command {command:?}: {e}"),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
