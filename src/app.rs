//! The commands: each builds the real parts from the config (transport, store, screen,
//! clock), runs the work and returns an [`Error`] that `main` turns into a message and an exit
//! code. Nothing here parses network bytes or makes protocol decisions.

use crate::cli::{Cli, Command};
use crate::clock::{Clock, SystemClock};
use crate::config::{ClientAuth, Config, DisplayBackend, EndpointSource};
use crate::error::Error;
use crate::flow::{Event, Outcome, Policy};
use crate::grant;
use crate::oauth::{self, ClientIdentity, Endpoints, OAuthClient};
use crate::pairing;
use crate::screen::terminal::TerminalScreen;
use crate::screen::{NoScreen, Screen, View};
use crate::store::{StoredTokens, TimeNow, TokenStore};
use crate::transport::{HttpTransport, Transport, TransportSettings};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, SystemTime};

pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Version => {
            println!("devauth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Command::Render(args) => crate::render::command(cli.config.as_deref(), &args),
        command => {
            let path = crate::config::config_path(cli.config.as_deref());
            let config = Config::load(&path)?;
            match command {
                Command::Pair { json } => pair(&config, json),
                Command::Token { header } => token(&config, header),
                Command::Status { json } => status(&config, json),
                Command::Unpair => unpair(&config),
                Command::Run { json } => crate::service::run(&path, config, json),
                Command::Api(args) => crate::api::run(&config, &args),
                Command::Version | Command::Help(_) | Command::Render(_) => Ok(()),
            }
        }
    }
}

pub(crate) fn transport(config: &Config) -> Result<HttpTransport, Error> {
    Ok(HttpTransport::new(&TransportSettings {
        connect_timeout: config.network.connect_timeout,
        timeout: config.network.timeout,
        max_body_bytes: config.network.max_body_bytes,
        ca_file: config.provider.ca_file.clone(),
        allow_http_loopback: config.provider.allow_http_loopback,
    })?)
}

pub(crate) fn client_with<T: Transport>(
    config: &Config,
    transport: T,
    endpoints: Endpoints,
) -> OAuthClient<T> {
    let p = &config.provider;
    OAuthClient {
        transport,
        endpoints,
        identity: ClientIdentity {
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.clone(),
            basic_auth: p.client_auth == ClientAuth::Basic,
        },
        scopes: p.scopes.clone(),
        extra_params: p.extra_params.clone(),
        allow_http_loopback: p.allow_http_loopback,
    }
}

/// The endpoints, discovering them when only an issuer is configured. Explicit revocation and
/// userinfo URLs win over discovered ones.
pub(crate) fn resolve_endpoints(
    config: &Config,
    transport: &impl Transport,
) -> Result<Endpoints, Error> {
    let p = &config.provider;
    let mut endpoints = match &p.endpoints {
        EndpointSource::Explicit {
            device_authorization,
            token,
        } => Endpoints {
            device_authorization: device_authorization.clone(),
            token: token.clone(),
            revocation: None,
            userinfo: None,
        },
        EndpointSource::Discover { issuer } => {
            oauth::discover(transport, issuer, p.allow_http_loopback)?
        }
    };
    if p.revocation_endpoint.is_some() {
        endpoints.revocation = p.revocation_endpoint.clone();
    }
    if p.userinfo_endpoint.is_some() {
        endpoints.userinfo = p.userinfo_endpoint.clone();
    }
    Ok(endpoints)
}

pub(crate) fn jitter_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) ^ (u64::from(std::process::id()) << 32)
}

/// The configured screen backend, opened. A device that cannot be opened (missing framebuffer,
/// SPI or GPIO permissions, a backend left out of this build) is an error naming the device.
pub(crate) fn open_screen(config: &Config, json: bool) -> Result<Box<dyn Screen>, Error> {
    let d = &config.display;
    Ok(match d.backend {
        DisplayBackend::None => Box::new(NoScreen),
        // With --json, stdout carries the events: the human screen moves to stderr.
        DisplayBackend::Terminal if json => Box::new(TerminalScreen::stderr()),
        DisplayBackend::Terminal => Box::new(TerminalScreen::stdout()),
        DisplayBackend::Png => crate::screen::open_png(d)?,
        DisplayBackend::Framebuffer => crate::screen::open_framebuffer(d)?,
        DisplayBackend::Spi => crate::screen::open_spi(d)?,
    })
}

/// One JSON event line on stdout, flushed (a device UI reads it as it comes).
pub(crate) fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Waits (showing "waiting for network time") while the wall clock is certainly wrong.
fn wait_for_clock(clock: &impl Clock, screen: &mut dyn Screen) {
    let mut shown = false;
    while crate::clock::unix_secs(clock.wall()) < crate::clock::MIN_PLAUSIBLE_UNIX {
        if !shown {
            let _ = screen.show(&View::WaitingForClock);
            eprintln!("devauth: the clock is not set yet; waiting for network time");
            shown = true;
        }
        clock.sleep(Duration::from_secs(2));
    }
}

fn pair(config: &Config, json: bool) -> Result<(), Error> {
    if config.provider.grant.jwt_bearer().is_some() {
        return Err(Error::Setup(
            "provider.grant = \"jwt-bearer\" is a service account: there is nothing to pair \
             (`devauth token` gets a token, `devauth run` keeps one fresh)"
                .into(),
        ));
    }
    let clock = SystemClock;
    let store = TokenStore::new(&config.storage.path);
    let mut screen = open_screen(config, json)?;
    let fail = |screen: &mut Box<dyn Screen>, e: Error| -> Result<(), Error> {
        let _ = screen.show(&View::Error {
            message: e.to_string(),
        });
        if json {
            emit(&json!({"event": "error", "message": e.to_string()}));
        }
        Err(e)
    };
    wait_for_clock(&clock, screen.as_mut());
    // Make room for the tokens before asking for a code: a full or read-only store must stop
    // pairing here, not after the person approved and the code was redeemed.
    let prepared = match store.prepare_save() {
        Ok(p) => p,
        Err(e) => return fail(&mut screen, Error::Store(e)),
    };
    let transport = match transport(config) {
        Ok(t) => t,
        Err(e) => return fail(&mut screen, e),
    };
    let endpoints = match resolve_endpoints(config, &transport) {
        Ok(e) => e,
        Err(e) => return fail(&mut screen, e),
    };
    let client = client_with(config, transport, endpoints);
    let mut on_event = |event: &Event| {
        if json {
            emit(&pairing::event_json(event));
        }
    };
    let result = pairing::run(
        &client,
        &clock,
        screen.as_mut(),
        &mut on_event,
        Policy::default(),
        jitter_seed(),
    );
    match result.outcome {
        Outcome::Paired(resp) => {
            let account = grant::account_for(&client, &resp);
            let tokens = grant::token_set(
                resp,
                None,
                result.server_date,
                &TimeNow::read(&clock),
                account.clone(),
            );
            let scopes = tokens.scopes.clone();
            // The lifetime as kept (clamped), not as sent.
            let expires_in = tokens.expiry.as_ref().map(|e| e.lifetime_secs);
            let stored = StoredTokens {
                client_id: config.provider.client_id.clone(),
                token_endpoint: client.endpoints.token.clone(),
                tokens,
            };
            if let Err(e) = prepared.commit(&stored) {
                return fail(&mut screen, Error::Store(e));
            }
            let _ = screen.show(&View::Paired {
                account: account.clone(),
            });
            if json {
                emit(&json!({
                    "event": "paired",
                    "scopes": scopes,
                    "expires_in": expires_in,
                    "account": account,
                }));
            } else {
                eprintln!(
                    "devauth: paired{}; tokens stored in {}",
                    account.map(|a| format!(" as {a}")).unwrap_or_default(),
                    store.path().display()
                );
            }
            Ok(())
        }
        Outcome::Denied => {
            let _ = screen.show(&View::Denied);
            if json {
                emit(&json!({"event": "denied"}));
            }
            Err(Error::Denied)
        }
        Outcome::ServerError(err) => {
            let endpoint = crate::transport::redact_url(&client.endpoints.token);
            let status = err
                .status
                .map(|s| format!("HTTP {s}: "))
                .unwrap_or_default();
            fail(
                &mut screen,
                Error::Provider(format!("{endpoint}: {status}{err}")),
            )
        }
        Outcome::Failed(msg) => fail(&mut screen, Error::Provider(msg)),
    }
}

/// The client for commands that only need the token endpoint: for discovery-configured
/// providers it is taken from the store (checked at pairing), so `token` needs no discovery
/// round trip on every call.
pub(crate) fn token_client(
    config: &Config,
    stored_endpoint: Option<&str>,
) -> Result<OAuthClient<HttpTransport>, Error> {
    let transport = transport(config)?;
    let endpoints = match (&config.provider.endpoints, stored_endpoint) {
        (EndpointSource::Discover { .. }, Some(token)) => Endpoints {
            device_authorization: String::new(),
            token: token.to_string(),
            revocation: config.provider.revocation_endpoint.clone(),
            userinfo: config.provider.userinfo_endpoint.clone(),
        },
        _ => resolve_endpoints(config, &transport)?,
    };
    Ok(client_with(config, transport, endpoints))
}

/// The client and renewal for commands that use the stored tokens (`token`, `api`). Not
/// paired is an error, except for a service account, which obtains its first token.
pub(crate) fn token_parts(
    config: &Config,
    store: &TokenStore,
) -> Result<(OAuthClient<HttpTransport>, grant::Renewal), Error> {
    let how = grant::Renewal::for_config(&config.provider)?;
    let stored_endpoint = match store.load()? {
        Some(stored) => Some(stored.token_endpoint),
        None if config.provider.grant.jwt_bearer().is_some() => None,
        None => {
            return Err(Error::NotPaired {
                store: store.path().to_path_buf(),
            });
        }
    };
    Ok((token_client(config, stored_endpoint.as_deref())?, how))
}

fn token(config: &Config, header: bool) -> Result<(), Error> {
    let store = TokenStore::new(&config.storage.path);
    let (client, how) = token_parts(config, &store)?;
    let tokens = grant::fresh_tokens(
        &store,
        &client,
        &SystemClock,
        &how,
        config.agent.refresh_margin,
    )?;
    let mut out = std::io::stdout().lock();
    let line = if header {
        format!("Bearer {}", tokens.access_token.expose())
    } else {
        tokens.access_token.expose().to_string()
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("writing the token to stdout: {e}")))
}

fn status(config: &Config, json: bool) -> Result<(), Error> {
    let store = TokenStore::new(&config.storage.path);
    let path = store.path().display().to_string();
    let loaded = store.load();
    let stored = match loaded {
        Ok(s) => s,
        Err(e) => {
            if json {
                emit(&json!({"paired": false, "store": path, "store_error": e.to_string()}));
            } else {
                println!("Not paired: the token store is unusable: {e}");
                println!("`devauth pair` replaces it.");
            }
            return Err(Error::Reported(Box::new(Error::Store(e))));
        }
    };
    let Some(stored) = stored else {
        if let Some(j) = config.provider.grant.jwt_bearer() {
            // A service account is never "paired"; it just has no token cached yet.
            if json {
                emit(
                    &json!({"paired": false, "grant": "jwt-bearer", "account": j.issuer, "store": path}),
                );
            } else {
                println!(
                    "Service account {} (jwt-bearer): no access token cached yet; `devauth token` gets one.",
                    j.issuer
                );
            }
            return Ok(());
        }
        if json {
            emit(&json!({"paired": false, "store": path}));
        } else {
            println!("Not paired (no tokens in {path}). Run `devauth pair`.");
        }
        return Err(Error::Reported(Box::new(Error::NotPaired {
            store: store.path().to_path_buf(),
        })));
    };
    let owner_ok = stored.client_id == config.provider.client_id;
    let t = &stored.tokens;
    let now = TimeNow::read(&SystemClock);
    let remaining = t.expiry.as_ref().map(|e| e.remaining(&now));
    let expires_in: Option<u64> = remaining.flatten().map(|d| d.as_secs());
    let expiry_trusted = !matches!(remaining, Some(None));
    if json {
        emit(&json!({
            "paired": owner_ok,
            "account": t.account,
            "scopes": t.scopes,
            "access_token_expires_in": expires_in,
            "access_token_expires": t.expiry.is_some(),
            "expiry_trusted": expiry_trusted,
            "refresh_token": t.refresh_token.is_some(),
            "client_id": stored.client_id,
            "token_endpoint": stored.token_endpoint,
            "store": path,
        }));
    } else {
        if owner_ok {
            println!(
                "Paired{}",
                t.account
                    .as_ref()
                    .map(|a| format!(" as {a}"))
                    .unwrap_or_default()
            );
        } else {
            println!(
                "Not paired with this client: the stored tokens belong to client `{}`",
                stored.client_id
            );
        }
        println!(
            "  scopes:        {}",
            if t.scopes.is_empty() {
                "(none reported)".to_string()
            } else {
                t.scopes.join(" ")
            }
        );
        let expiry = match (&t.expiry, expires_in) {
            (None, _) => "does not expire".to_string(),
            (Some(_), Some(0)) => "expired (refreshed on next use)".to_string(),
            (Some(_), Some(s)) => format!("in {}", human_duration(s)),
            (Some(_), None) => "unknown (clock not trusted; refreshed on next use)".to_string(),
        };
        println!("  access token:  expires {expiry}");
        println!(
            "  refresh token: {}",
            if t.refresh_token.is_some() {
                "held"
            } else {
                "none"
            }
        );
        println!(
            "  provider:      {} ({})",
            stored.token_endpoint, stored.client_id
        );
        println!("  store:         {path}");
    }
    if owner_ok {
        Ok(())
    } else {
        Err(Error::Reported(Box::new(Error::OtherClient {
            store: store.path().to_path_buf(),
            detail: format!("were issued to client `{}`", stored.client_id),
        })))
    }
}

pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

fn unpair(config: &Config) -> Result<(), Error> {
    let store = TokenStore::new(&config.storage.path);
    let stored = match store.load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("Not paired; nothing to do.");
            return Ok(());
        }
        Err(e) => {
            // A corrupt store holds nothing we could revoke; deleting it is the whole job.
            store.delete()?;
            println!("Deleted an unreadable token store ({e}).");
            return Ok(());
        }
    };
    let problems = match transport(config).and_then(|t| {
        let endpoints = resolve_endpoints(config, &t)?;
        Ok(client_with(config, t, endpoints))
    }) {
        Ok(client) => grant::revoke_all(&client, &stored.tokens),
        Err(e) => vec![format!(
            "could not reach the provider to revoke the tokens: {e}"
        )],
    };
    store.delete()?;
    if problems.is_empty() {
        println!(
            "Unpaired: tokens revoked at the provider and deleted from {}.",
            store.path().display()
        );
    } else {
        println!(
            "Unpaired locally: tokens deleted from {}.",
            store.path().display()
        );
        for p in problems {
            println!("  not revoked: {p}");
        }
    }
    Ok(())
}
