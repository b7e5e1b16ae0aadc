//! The wiring: builds the real parts — transport, OAuth client, screen, the JSON event
//! line — from a resolved [`Config`]. Both the one-shot commands and `devauth run` (the agent)
//! build their parts here, so neither reaches into the other. No protocol decisions, no
//! parsing of network bytes.

use crate::clock::SystemClock;
use crate::config::{ClientAuth, Config, DisplayBackend, DisplayConfig, EndpointSource};
use crate::error::Error;
use crate::grant;
use crate::net::transport::{HttpTransport, Transport, TransportSettings};
use crate::oauth::{self, ClientIdentity, Endpoints, OAuthClient};
use crate::screen::language::Language;
use crate::screen::terminal::TerminalScreen;
use crate::screen::{NoScreen, Screen};
use crate::store::TokenStore;
use std::io::Write;
use std::time::{Duration, SystemTime};

pub(crate) fn transport(config: &Config) -> Result<HttpTransport, Error> {
    Ok(HttpTransport::new(&TransportSettings {
        connect_timeout: config.network.connect_timeout,
        timeout: config.network.timeout,
        max_body_bytes: config.network.max_body_bytes,
        ca_file: config.provider.ca_file.clone(),
        allow_http_loopback: config.provider.allow_http_loopback,
        proxy: config.network.proxy.clone(),
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
            authorization: None,
        },
        EndpointSource::Discover { issuer } => oauth::discover(
            transport,
            issuer,
            p.allow_http_loopback,
            p.grant.code_grant().is_none(),
        )?,
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
    let nanos = crate::clock::wall_now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) ^ (u64::from(std::process::id()) << 32)
}

/// The configured screen backend, opened, in the language `[display] language` comes to (its
/// tag is returned for the `--json` events). A device that cannot be opened (missing
/// framebuffer, SPI or GPIO permissions, a backend left out of this build) is an error naming
/// the device.
pub(crate) fn open_screen(config: &Config, json: bool) -> Result<(Box<dyn Screen>, String), Error> {
    let mut display = config.display.clone();
    display.resolve_language();
    let d = &display;
    let language = d.resolved_language.tag().to_string();
    wait_for_display(d, json);
    let screen: Box<dyn Screen> = match d.backend {
        DisplayBackend::None => Box::new(NoScreen),
        // With --json, stdout carries the events: the human screen moves to stderr.
        DisplayBackend::Terminal if json => Box::new(
            TerminalScreen::stderr()
                .with_device_name(d.device_name.clone())
                .with_language(terminal_language(d)),
        ),
        DisplayBackend::Terminal => Box::new(
            TerminalScreen::stdout()
                .with_device_name(d.device_name.clone())
                .with_language(terminal_language(d)),
        ),
        DisplayBackend::Png => crate::screen::open_png(d)?,
        DisplayBackend::Framebuffer => crate::screen::open_framebuffer(d)?,
        DisplayBackend::Spi => crate::screen::open_spi(d)?,
        DisplayBackend::Drm => crate::screen::open_drm(d)?,
    };
    Ok((screen, language))
}

/// The terminal prints the language's own text where it can show it, else English.
fn terminal_language(d: &DisplayConfig) -> Language {
    let language = &d.resolved_language;
    if language.pack().is_none()
        || crate::screen::terminal::shows_any_script(&|n| std::env::var(n).ok())
    {
        return language.clone();
    }
    eprintln!(
        "devauth: language: this terminal cannot show {} (no UTF-8 locale, or the Linux \
         console); it shows English",
        language.tag()
    );
    Language::english()
}

/// Gives a display driver that has not probed yet `wait_secs` to create the device node; the
/// open that follows reports a node that never came as before.
fn wait_for_display(d: &DisplayConfig, json: bool) {
    let nodes: Vec<&std::path::Path> = match d.backend {
        DisplayBackend::Framebuffer | DisplayBackend::Drm => vec![&d.device],
        DisplayBackend::Spi => vec![&d.spi.device, &d.spi.gpio_chip],
        _ => return,
    };
    let limit = Duration::from_secs(u64::from(d.wait_secs));
    crate::screen::device_wait::wait_for_nodes(
        &nodes,
        limit,
        &SystemClock,
        |p| p.exists(),
        &mut |missing| {
            eprintln!(
                "devauth: {} is not there yet; waiting up to {} s for the display driver",
                missing.display(),
                d.wait_secs
            );
            if json {
                emit(&serde_json::json!({
                    "event": "waiting_for_display",
                    "device": missing.display().to_string(),
                    "wait_secs": d.wait_secs,
                }));
            }
        },
    );
}

/// One JSON event line on stdout, flushed (a device UI reads it as it comes).
pub(crate) fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
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
            authorization: None,
        },
        _ => resolve_endpoints(config, &transport)?,
    };
    Ok(client_with(config, transport, endpoints))
}

/// What `token` and `api` start from: the store, the client and renewal that go with it, and
/// tokens fresh enough to use (renewed under the store lock when due).
pub(crate) struct StoredGrant {
    pub(crate) store: TokenStore,
    pub(crate) client: OAuthClient<HttpTransport>,
    pub(crate) how: grant::Renewal,
    pub(crate) tokens: crate::store::TokenSet,
}

/// The [`StoredGrant`] of this config. Not paired is an error, except for a service account,
/// which obtains its first token.
pub(crate) fn stored_grant(config: &Config) -> Result<StoredGrant, Error> {
    let store = TokenStore::new(&config.storage.path);
    let (client, how) = token_parts(config, &store)?;
    let tokens = grant::fresh_tokens(
        &store,
        &client,
        &SystemClock,
        &how,
        config.agent.refresh_margin,
    )?;
    Ok(StoredGrant {
        store,
        client,
        how,
        tokens,
    })
}

fn token_parts(
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
