//! The wiring: builds the real parts — transport, OAuth client, screen, the JSON event
//! line — from a resolved [`Config`]. Both the one-shot commands and `devauth run` (the agent)
//! build their parts here, so neither reaches into the other. No protocol decisions, no
//! parsing of network bytes.

use crate::clock::SystemClock;
use crate::config::{ClientAuth, Config, DisplayBackend, DisplayConfig, DpopMode, EndpointSource};
use crate::error::Error;
use crate::grant;
use crate::keys;
use crate::net::transport::{HttpTransport, Transport, TransportSettings};
use crate::oauth::dpop::Dpop;
use crate::oauth::{self, ClientIdentity, Endpoints, OAuthClient};
use crate::screen::language::Language;
use crate::screen::terminal::TerminalScreen;
use crate::screen::{NoScreen, Screen};
use crate::store::{StoredTokens, TokenStore};
use std::sync::Arc;
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

/// The OAuth client of this config: its identity (a secret, or the device's client key) and,
/// when a DPoP key is kept beside the store and `dpop` is not off, proofs with it (the tokens
/// of that pairing are bound to it). Pairing uses [`pairing_client`] instead.
pub(crate) fn client_with<T: Transport>(
    config: &Config,
    transport: T,
    endpoints: Endpoints,
) -> Result<OAuthClient<T>, Error> {
    let (identity, dpop) = identity_and_key(config)?;
    let p = &config.provider;
    Ok(OAuthClient {
        transport,
        endpoints,
        identity,
        scopes: p.scopes.clone(),
        extra_params: p.extra_params.clone(),
        allow_http_loopback: p.allow_http_loopback,
        dpop,
    })
}

/// The client's identity and DPoP key: not generic, so built by one copy of the code whatever
/// the transport type.
fn identity_and_key(config: &Config) -> Result<(ClientIdentity, Option<Arc<Dpop>>), Error> {
    let p = &config.provider;
    let dpop = match p.dpop {
        DpopMode::Off => None,
        DpopMode::On | DpopMode::Auto => stored_key(config)?,
    };
    let identity = ClientIdentity {
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        basic_auth: p.client_auth == ClientAuth::Basic,
        assertion: keys::client_assertion(config)?,
    };
    Ok((identity, dpop))
}

/// The client for a pairing (any grant) into `store`, which was prepared for it
/// ([`TokenStore::prepare_pairing`]: its sealing decides where a new DPoP key goes): with DPoP
/// proofs when `dpop` asks for them with these endpoints (`auto`: discovery lists ES256), the
/// key made now if there is none yet.
pub(crate) fn pairing_client<T: Transport>(
    config: &Config,
    store: &TokenStore,
    transport: T,
    endpoints: Endpoints,
) -> Result<OAuthClient<T>, Error> {
    let mut client = client_with(config, transport, endpoints)?;
    client.dpop = pairing_key(config, store, &client.endpoints)?;
    Ok(client)
}

/// The DPoP key of a pairing with these endpoints, made now if needed; `None` when `dpop` does
/// not ask for one.
fn pairing_key(
    config: &Config,
    store: &TokenStore,
    endpoints: &Endpoints,
) -> Result<Option<Arc<Dpop>>, Error> {
    if !config.provider.dpop.wanted(endpoints.dpop_es256) {
        return Ok(None);
    }
    keys::dpop_key_for_pairing(store).map(Some)
}

/// The DPoP key kept beside the store, if any.
fn stored_key(config: &Config) -> Result<Option<Arc<Dpop>>, Error> {
    keys::dpop_key(&config.storage.token_store())
}

/// Tokens bound to a DPoP key need their key whatever `dpop` says now (it may have been
/// turned off since the pairing): renewing or revoking them takes proofs.
pub(crate) fn bind_to_stored<T>(
    client: &mut OAuthClient<T>,
    config: &Config,
    stored: &StoredTokens,
) -> Result<(), Error> {
    if stored.tokens.is_dpop() && client.dpop.is_none() {
        client.dpop = stored_key(config)?;
    }
    Ok(())
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
            ..Endpoints::default()
        },
        EndpointSource::Discover { issuer } => {
            let found = oauth::discover(
                transport,
                issuer,
                p.allow_http_loopback,
                p.grant.code_grant().is_none(),
            )?;
            // A client file names endpoints too; they must be the issuer's server.
            if let Some(file) = &p.client_file {
                file.check_discovered(
                    &config.source,
                    issuer,
                    &found.token,
                    found.authorization.as_deref(),
                )?;
            }
            found
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

/// The seed of this process's jitter (the agent's renewal spread and backoff, pairing's backoff).
pub(crate) fn jitter_seed() -> u64 {
    let nanos = crate::clock::wall_now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    jitter_seed_from(nanos, std::process::id())
}

/// How [`jitter_seed`] mixes the wall clock's nanoseconds with the pid. Public so that the fleet
/// simulator (`fleet/`) seeds its simulated devices exactly as real ones are seeded: devices of
/// one model boot alike and share the pid, only the nanoseconds tell them apart.
pub fn jitter_seed_from(nanos: u32, pid: u32) -> u64 {
    u64::from(nanos) ^ (u64::from(pid) << 32)
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
    // A backend left out of this build is said at once, not after waiting for its device.
    crate::screen::check_built(d.backend)?;
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

/// What `status --json` and `GET /v1/status` say about one account: its store's status, and,
/// where the file has several accounts, the account's name and label.
pub fn status_of(config: &Config, now: &crate::store::TimeNow) -> serde_json::Value {
    let store = config.storage.token_store();
    let loaded = store.load();
    let mut v = crate::store::status_json(
        store.path(),
        &loaded,
        &config.provider.client_id,
        config
            .provider
            .grant
            .jwt_bearer()
            .map(|j| j.issuer.as_str()),
        now,
    );
    if v.get("client_id").is_some() {
        // The same word `status` prints: what seals the store, or none.
        v["protection"] = serde_json::json!(match store.protection() {
            Ok(Some(crate::store::Protection::Sealed(sealer))) => sealer.name(),
            _ => "none",
        });
    }
    if let Ok(Some(stored)) = &loaded {
        if stored.tokens.is_dpop() {
            // Where the key the tokens are bound to is kept (the TPM, sealed, or a clear file).
            v["dpop_key"] =
                serde_json::json!(crate::keys::dpop_key_protection(&store).map(|p| p.name()));
        }
    }
    if config.account.several() {
        v["account_name"] = serde_json::json!(config.account.name);
        v["label"] = serde_json::json!(config.account.label);
    }
    v
}

/// The status of every account: one account's object as it always was, several as
/// `{"paired": <all paired>, "accounts": [...]}`.
pub fn status_all(configs: &[&Config], now: &crate::store::TimeNow) -> serde_json::Value {
    match configs {
        [one] if !one.account.several() => status_of(one, now),
        _ => {
            let accounts: Vec<_> = configs.iter().map(|c| status_of(c, now)).collect();
            let paired = accounts.iter().all(|a| a["paired"] == true);
            serde_json::json!({"paired": paired, "accounts": accounts})
        }
    }
}

/// One JSON event line on stdout, flushed (a device UI reads it as it comes). A failed write is
/// remembered by [`crate::stdout`]: `pair` and `run` then stop, and `main` exits 1.
pub(crate) fn emit(value: &serde_json::Value) {
    let _ = crate::stdout::line(&value.to_string());
}

/// The client for commands that only need the token endpoint: for discovery-configured
/// providers it is taken from the store (checked at pairing), so `token` needs no discovery
/// round trip on every call. Bound to the stored tokens' DPoP key when they have one.
pub(crate) fn token_client(
    config: &Config,
    transport: HttpTransport,
    stored: Option<&StoredTokens>,
) -> Result<OAuthClient<HttpTransport>, Error> {
    let endpoints = match stored_endpoints(config, stored) {
        Some(e) => e,
        None => resolve_endpoints(config, &transport)?,
    };
    let mut client = client_with(config, transport, endpoints)?;
    if let Some(stored) = stored {
        bind_to_stored(&mut client, config, stored)?;
    }
    Ok(client)
}

/// With discovery, the endpoints recorded at pairing (no round trip); `None`: resolve them.
pub(crate) fn stored_endpoints(
    config: &Config,
    stored: Option<&StoredTokens>,
) -> Option<Endpoints> {
    match (&config.provider.endpoints, stored) {
        (EndpointSource::Discover { .. }, Some(stored)) => Some(Endpoints {
            token: stored.token_endpoint.clone(),
            revocation: config.provider.revocation_endpoint.clone(),
            userinfo: config.provider.userinfo_endpoint.clone(),
            ..Endpoints::default()
        }),
        _ => None,
    }
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
    let store = config.storage.token_store();
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
    let stored = match store.load()? {
        Some(stored) => Some(stored),
        None if config.provider.grant.jwt_bearer().is_some() => None,
        None => {
            return Err(Error::NotPaired {
                store: store.path().to_path_buf(),
            });
        }
    };
    Ok((
        token_client(config, transport(config)?, stored.as_ref())?,
        how,
    ))
}
