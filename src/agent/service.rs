//! `devauth run` for one account: its steps, which the driver (`driver.rs`) calls. It feeds the
//! pure [`Agent`] machine what happened and carries out what it asks for — reading the store,
//! pairing (with the screen, saying which account is being added), renewing through
//! [`grant::renew`] (the same lock as `devauth token`), checking the grant with the provider's
//! userinfo, writing the account's token file, running the hook, emitting `--json` events and
//! telling the token service (`socket::TokenService`) the account's token and events. The
//! waiting between steps is the driver's.
//!
//! Pairing sleeps through the agent's signal wait ([`SignalClock`], in a
//! `pairing_clock::PairingClock` that keeps the other accounts fresh meanwhile), so SIGTERM and
//! SIGHUP also end a pairing that is waiting for the person.
//!
//! It owns no policy: what to do and when is `agent`'s.

use super::pairing_clock::{Background, PairingClock, store_moved};
use crate::agent::hook::{Hook, HookEvent, HookOutcome};
use crate::agent::{
    Agent, Cause, Effect, Input, Loaded, Mode, Next, Note, PairingEnd, Policy, ProbeEnd,
    RenewalEnd, TokenInfo, Want,
};
use crate::clock;
use crate::config::{Config, ReleaseDisplay};
use crate::error::Error;
use crate::grant::{self, Need, OnGone, Renewal, Renewed};
use crate::net::transport::HttpTransport;
use crate::oauth::flow::{Event, Outcome};
use crate::oauth::{CallError, OAuthClient};
use crate::pairing;
use crate::screen::profiled::Profiled;
use crate::screen::{NoScreen, Problem, Screen, View};
use crate::setup;
use crate::signals::{Signal, SignalClock, Signals};
use crate::socket::TokenService;
use crate::store::tokenfile::TokenFile;
use crate::store::{self, AgentLock, AgentLockError, Protection, TimeNow, TokenSet, TokenStore};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod notify;

/// The machine's policy from the config.
pub fn policy_for(config: &Config) -> Policy {
    Policy {
        refresh_margin: config.agent.refresh_margin,
        paired_screen: config.agent.paired_screen,
        can_probe: config.provider.grant.jwt_bearer().is_none()
            && config.provider.userinfo_endpoint.is_some(),
        ..Policy::default()
    }
}

/// Only one agent per store: two would both publish, hook and pair. A store that cannot be
/// written is the store's error (exit 9), as for `devauth pair`.
fn agent_lock(store: &Path) -> Result<AgentLock, Error> {
    TokenStore::new(store).agent_lock().map_err(|e| match e {
        AgentLockError::Store(e) => Error::Store(e),
        AgentLockError::Running { store, lock } => Error::Io(format!(
            "another `devauth run` is already running for {} (lock {})",
            store.display(),
            lock.display()
        )),
    })
}

/// Everything built from the config (rebuilt on SIGHUP).
struct Parts {
    store: TokenStore,
    transport: HttpTransport,
    renewal: Renewal,
    token_file: TokenFile,
    hook: Option<Hook>,
}

impl Parts {
    fn build(config: &Config) -> Result<Parts, Error> {
        crate::config::check_token_file_group(
            config,
            |name| match crate::store::tokenfile::group_id(name) {
                Ok(_) => Ok(true),
                Err(crate::store::tokenfile::TokenFileError::UnknownGroup(_)) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
        )?;
        Ok(Parts {
            store: config.storage.token_store(),
            transport: setup::transport(config)?,
            renewal: Renewal::for_config(&config.provider)?,
            token_file: TokenFile::new(
                &config.agent.token_file,
                config.agent.token_file_group.clone(),
            ),
            hook: config.agent.hook.clone().map(Hook::new),
        })
    }
}

/// One account as the agent runs it: its config, its parts, its machine and its tokens.
pub(super) struct Slot {
    pub(super) config: Arc<Config>,
    parts: Parts,
    agent: Agent,
    /// The tokens the agent holds (never in the machine: it sees no secret).
    current: Option<TokenSet>,
    /// Why the last write of the token file failed: the hook is then not told it is there.
    publish_error: Option<String>,
    /// What the last failed pairing's screen tells the person (the machine carries only the
    /// message, which goes to the log).
    pairing_problem: Problem,
    /// The "not protected by hardware" warning was logged (once a start, and after a pairing).
    unprotected_said: bool,
    /// What the machine asked for last and the driver has not done yet.
    pub(super) next: Next,
    /// This account's store is this agent's.
    _lock: AgentLock,
}

impl Slot {
    pub(super) fn new(config: Arc<Config>) -> Result<Slot, Error> {
        let lock = agent_lock(&config.storage.path)?;
        let mode = mode_of(&config);
        Ok(Slot {
            parts: Parts::build(&config)?,
            agent: Agent::new(policy_for(&config), mode, setup::jitter_seed()),
            config,
            current: None,
            publish_error: None,
            pairing_problem: Problem::Other,
            unprotected_said: false,
            next: Next::Wait(clock::boottime()),
            _lock: lock,
        })
    }

    pub(super) fn token_file(&self) -> &Path {
        self.parts.token_file.path()
    }

    /// Whether the store holds other tokens than this account has (SIGUSR2 is for every
    /// account: this tells the one whose store another command changed).
    pub(super) fn store_moved(&self) -> bool {
        store_moved(&self.parts.store, self.current.as_ref())
    }
}

/// Device flow or service account.
pub(super) fn mode_of(config: &Config) -> Mode {
    if config.provider.grant.jwt_bearer().is_some() {
        Mode::ServiceAccount
    } else {
        Mode::DeviceFlow
    }
}

/// What every account shares, lent to one account's [`Service`] at a time.
pub(super) struct Shared<'x> {
    pub(super) config_path: &'x Path,
    pub(super) json: bool,
    pub(super) signals: &'x mut Signals,
    /// The token service on `[agent] socket` (`None`: `socket = ""`).
    pub(super) tokens: Option<&'x TokenService>,
    /// `None`: another account's pairing has the screen; this one draws nothing.
    pub(super) screen: Option<&'x mut dyn Screen>,
    /// The screen's language, named in the `code` event.
    pub(super) language: &'x str,
}

/// One account's steps, with what the accounts share.
pub(super) struct Service<'x> {
    pub(super) s: Shared<'x>,
    pub(super) a: &'x mut Slot,
}

fn wall_ok() -> bool {
    clock::unix_secs(clock::wall_now()) >= clock::MIN_PLAUSIBLE_UNIX
}

fn token_info(tokens: &TokenSet) -> TokenInfo {
    let now = TimeNow::read(&clock::SystemClock);
    match &tokens.expiry {
        None => TokenInfo {
            remaining: None,
            lifetime: None,
        },
        Some(e) => TokenInfo {
            // An expiry the clock cannot vouch for counts as expired: renew now.
            remaining: Some(e.remaining(&now).unwrap_or_default()),
            lifetime: Some(Duration::from_secs(e.lifetime_secs)),
        },
    }
}

impl Service<'_> {
    /// Gives the machine `input`, carries out its effects and keeps what it asks for next.
    pub(super) fn feed(&mut self, input: Input) {
        let step = self.a.agent.step(input, clock::boottime(), wall_ok());
        for effect in step.effects {
            self.effect(effect);
        }
        self.a.next = step.next;
    }

    /// Does what the machine asks until it waits for a later time, wants to pair (the driver
    /// decides when: one pairing screen at a time) or exits.
    pub(super) fn advance(&mut self) {
        loop {
            let input = match self.a.next {
                Next::Wait(until) if until > clock::boottime() => return,
                Next::Pair | Next::Exit => return,
                Next::Wait(_) => Input::Tick,
                Next::LoadStore => self.load_store(),
                Next::Renew(want) => self.renew(want),
                Next::Probe => self.probe(),
                Next::Unpair => self.unpair(),
                Next::Reload => self.reload(),
            };
            self.feed(input);
            // Nobody reads stdout any more (`--json`'s reader quit, a terminal screen's output
            // failed): stop as for SIGTERM; `main` exits 1.
            if crate::stdout::failed() && self.a.next != Next::Exit {
                self.feed(Input::Signal(Signal::Terminate));
            }
        }
    }

    fn name(&self) -> &str {
        &self.a.config.account.name
    }

    // --- effects -------------------------------------------------------------------------------

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Notify(note) => self.notify(note),
            Effect::Publish => {
                if let Some(t) = &self.a.current {
                    let content = crate::store::tokenfile::content(&t.access_token, t.is_dpop());
                    self.a.publish_error = self
                        .a
                        .parts
                        .token_file
                        .write(&content)
                        .err()
                        .map(|e| e.to_string());
                    if let Some(e) = &self.a.publish_error {
                        eprintln!("devauth: {e}");
                    }
                }
                if let Some(service) = &self.s.tokens {
                    service.set_token(&self.a.config.account.name, self.a.current.as_ref());
                }
            }
            Effect::Unpublish => {
                self.a.publish_error = None;
                if let Err(e) = self.a.parts.token_file.remove() {
                    eprintln!("devauth: {e}");
                }
                if let Some(service) = &self.s.tokens {
                    service.set_token(&self.a.config.account.name, None);
                }
            }
            Effect::ForgetTokens => {
                if let Some(service) = &self.s.tokens {
                    service.set_token(&self.a.config.account.name, None);
                }
                if let Some(t) = self.a.current.take() {
                    if let Err(e) = grant::forget_if_current(&self.a.parts.store, &t.access_token) {
                        eprintln!("devauth: could not delete the refused tokens: {e}");
                    }
                }
            }
            Effect::ShowPaired => {
                let account = self.a.current.as_ref().and_then(|t| t.account.clone());
                let name = self.a.current.as_ref().and_then(grant::person_name);
                self.show(&View::Paired { account, name });
            }
            Effect::ShowWaitingForClock => self.show(&View::WaitingForClock),
            Effect::ReleaseDisplay => {
                let blank = self.a.config.agent.release_display == ReleaseDisplay::Blank;
                self.release(blank);
            }
            Effect::BlankDisplay => self.release(true),
        }
    }

    fn show(&mut self, view: &View) {
        let Some(screen) = self.s.screen.as_deref_mut() else {
            return;
        };
        if let Err(e) = screen.show(view) {
            if !crate::stdout::failed() {
                eprintln!("devauth: {e}");
            }
        }
    }

    fn release(&mut self, blank: bool) {
        let Some(screen) = self.s.screen.as_deref_mut() else {
            return;
        };
        if let Err(e) = screen.release(blank) {
            eprintln!("devauth: {e}");
        }
    }

    // --- blocking steps ------------------------------------------------------------------------

    fn load_store(&mut self) -> Input {
        self.a.current = None;
        match self.a.parts.store.load() {
            Ok(None) => Input::Store(Loaded::Nothing),
            Err(e) => Input::Store(Loaded::Unusable(e.to_string())),
            Ok(Some(stored)) => {
                if stored.client_id != self.a.config.provider.client_id {
                    return Input::Store(Loaded::Unusable(format!(
                        "the stored tokens were issued to client `{}`, the config names `{}`",
                        stored.client_id, self.a.config.provider.client_id
                    )));
                }
                if let Some(refused) = &stored.grant_refused {
                    return Input::Store(Loaded::Unusable(grant::refused_detail(refused)));
                }
                self.say_protection(false);
                let info = token_info(&stored.tokens);
                self.a.current = Some(stored.tokens);
                Input::Store(Loaded::Tokens(info))
            }
        }
    }

    /// The client for renewing, probing and revoking: for discovery-configured providers the
    /// token endpoint recorded in the store (no discovery round trip); bound to the stored
    /// tokens' DPoP key when they have one.
    /// Over a clone of the transport (a handle on the same ureq agent and its connections), as
    /// `devauth token`'s client is: the renewal code is then one copy in the binary.
    fn token_client(&self) -> Result<OAuthClient<HttpTransport>, Error> {
        let stored = self.a.parts.store.load().ok().flatten();
        let endpoints = match setup::stored_endpoints(&self.a.config, stored.as_ref()) {
            Some(e) => e,
            None => setup::resolve_endpoints(&self.a.config, &self.a.parts.transport)?,
        };
        let transport = self.a.parts.transport.clone();
        let mut client = setup::client_with(&self.a.config, transport, endpoints)?;
        if let Some(stored) = &stored {
            setup::bind_to_stored(&mut client, &self.a.config, stored)?;
        }
        Ok(client)
    }

    /// Pairs this account, with the screen; `background` is called in every wait of the
    /// pairing, with the signals, so that the other accounts are kept fresh meanwhile.
    pub(super) fn pair(&mut self, background: &mut Background<'_>) -> Input {
        if self.a.config.provider.grant.code_grant().is_some() {
            // A browser sign-in needs a person at a browser the agent cannot drive; the agent
            // keeps a signed-in grant alive but does not start one.
            self.a.pairing_problem = Problem::Setup;
            return Input::Pairing(PairingEnd::Failed(
                "grant = \"authorization_code\": sign in once with `devauth pair`; the agent \
                 then keeps the tokens fresh"
                    .to_string(),
            ));
        }
        // As `devauth pair`: the store takes the tokens (and a new data key is sealed) before a
        // code is shown, so a store or sealer that cannot is said before anyone approves.
        let prepared = match self.a.parts.store.prepare_pairing() {
            Ok(p) => p,
            Err(e) => return Input::Pairing(PairingEnd::Failed(e.to_string())),
        };
        let endpoints = match setup::resolve_endpoints(&self.a.config, &self.a.parts.transport) {
            Ok(e) => e,
            Err(e) => {
                self.a.pairing_problem = e.problem();
                return Input::Pairing(PairingEnd::Failed(e.to_string()));
            }
        };
        let (store, transport) = (&self.a.parts.store, &self.a.parts.transport);
        let client = match setup::pairing_client(&self.a.config, store, transport, endpoints) {
            Ok(c) => c,
            Err(e) => return Input::Pairing(PairingEnd::Failed(e.to_string())),
        };
        let json = self.s.json;
        let service = self.s.tokens;
        let account = &self.a.config.account;
        let language = self.s.language;
        let clock = PairingClock::new(
            SignalClock::new(&mut *self.s.signals),
            background,
            self.a.parts.store.clone(),
        );
        // A code that expired unapproved while another account waits: its turn (one pairing
        // screen at a time, in turn).
        let expired = std::cell::Cell::new(false);
        let mut on_event = |event: &Event| {
            if matches!(event, Event::Expired) {
                expired.set(true);
            }
            let mut event = pairing::event_json(event, language);
            if account.several() {
                event["account_name"] = json!(account.name);
            }
            if let Some(service) = service {
                service.event(&account.name, &event);
            }
            if json {
                setup::emit(&event);
            }
        };
        let mut no_screen = NoScreen;
        let screen: &mut dyn Screen = match self.s.screen.as_deref_mut() {
            Some(s) => s,
            None => &mut no_screen,
        };
        // `devauth pair` runs the same code (one copy of it in the binary).
        let result = pairing::run_until(
            &client,
            &clock as &dyn crate::clock::Clock,
            &mut Profiled {
                inner: screen,
                profile: account.profile(),
            },
            &mut on_event,
            crate::oauth::flow::Policy::default(),
            setup::jitter_seed(),
            &mut || {
                clock.got().is_some()
                    || crate::stdout::failed()
                    || (expired.get() && clock.others_waiting())
            },
        );
        let Some(result) = result else {
            return Input::Pairing(match clock.got() {
                None if !crate::stdout::failed() => {
                    eprintln!(
                        "devauth: account {}: the code expired unapproved; the next account's turn",
                        account.name
                    );
                    PairingEnd::Yielded
                }
                sig => PairingEnd::Interrupted(sig.unwrap_or(Signal::Terminate)),
            });
        };
        // A stop signal that came during the last wait is kept for the next one.
        if let Some(sig) = clock.got() {
            clock.defer(sig);
        }
        match result.outcome {
            Outcome::Paired(resp) => {
                let stored = grant::paired(
                    &client,
                    &self.a.config.provider.client_id,
                    resp,
                    result.server_date,
                    &TimeNow::read(&clock::SystemClock),
                );
                if let Err(e) = prepared.commit(&stored) {
                    self.a.pairing_problem = Problem::Storage;
                    return Input::Pairing(PairingEnd::Failed(e.to_string()));
                }
                let info = token_info(&stored.tokens);
                self.a.current = Some(stored.tokens);
                self.say_protection(true);
                Input::Pairing(PairingEnd::Paired(info))
            }
            Outcome::Denied => Input::Pairing(PairingEnd::Denied),
            Outcome::ServerError(err) => {
                let endpoint = crate::net::transport::redact_url(&client.endpoints.token);
                self.a.pairing_problem = Problem::Service;
                Input::Pairing(PairingEnd::Failed(format!("{endpoint}: {err}")))
            }
            Outcome::Failed(msg) => {
                self.a.pairing_problem = Problem::Service;
                Input::Pairing(PairingEnd::Failed(msg))
            }
            // Only `pair --timeout` gives up; the agent's flow never does.
            Outcome::Unreachable(msg) => {
                self.a.pairing_problem = Problem::Network;
                Input::Pairing(PairingEnd::Failed(msg))
            }
        }
    }

    fn renew(&mut self, want: Want) -> Input {
        let client = match self.token_client() {
            Ok(c) => c,
            Err(e) => return Input::Renewal(RenewalEnd::failed(e.to_string())),
        };
        let rejected = self.a.current.as_ref().map(|t| t.access_token.clone());
        let need = match (want, &rejected) {
            (Want::AtMost(d), _) => Need::Remaining(d),
            (Want::Replace, Some(token)) => Need::Replace(token),
            (Want::Replace, None) => Need::Remaining(Duration::MAX),
        };
        let result = grant::renew(
            &self.a.parts.store,
            &client,
            &clock::SystemClock,
            &self.a.parts.renewal,
            need,
            OnGone::Forget,
        );
        let end = match result {
            Ok(Renewed::New(t)) => {
                // A plain store is sealed at its first write where it can be: say so once.
                if let (true, Some(p @ Protection::Sealed(_))) = (
                    self.a.unprotected_said,
                    self.a.parts.store.last_protection(),
                ) {
                    eprintln!("devauth: tokens {}", p.describe());
                    self.a.unprotected_said = false;
                }
                let info = token_info(&t);
                self.a.current = Some(t);
                RenewalEnd::New(info)
            }
            Ok(Renewed::Current(t)) => {
                let info = token_info(&t);
                // Another process (`devauth token`) may have renewed: the token changed.
                let changed = self
                    .a
                    .current
                    .as_ref()
                    .is_none_or(|c| c.access_token != t.access_token);
                self.a.current = Some(t);
                if changed {
                    RenewalEnd::New(info)
                } else {
                    RenewalEnd::Current(info)
                }
            }
            Ok(Renewed::Failed {
                error,
                refused,
                retry_after,
                ..
            }) => RenewalEnd::Failed {
                reason: error.to_string(),
                cause: if refused {
                    Cause::Refused { retry_after }
                } else {
                    Cause::Unreachable
                },
            },
            Err(Error::GrantGone { detail }) => {
                self.a.current = None;
                RenewalEnd::Gone(detail)
            }
            // Sealed on other hardware, or the TPM was cleared: the tokens are out of reach.
            Err(Error::Store(e)) if e.needs_pairing() => {
                self.a.current = None;
                RenewalEnd::Gone(e.to_string())
            }
            Err(e @ (Error::NotPaired { .. } | Error::OtherClient { .. })) => {
                self.a.current = None;
                RenewalEnd::Gone(e.to_string())
            }
            Err(e) => RenewalEnd::failed(e.to_string()),
        };
        Input::Renewal(end)
    }

    fn probe(&mut self) -> Input {
        let Some((token, token_type)) = self
            .a
            .current
            .as_ref()
            .map(|t| (t.access_token.clone(), t.token_type.clone()))
        else {
            return Input::Probe(ProbeEnd::Unknown);
        };
        let client = match self.token_client() {
            Ok(c) => c,
            Err(_) => return Input::Probe(ProbeEnd::Unknown),
        };
        let end = match client.userinfo(&token, &token_type) {
            Ok(Some(_)) => ProbeEnd::Accepted,
            Ok(None) => ProbeEnd::Unknown,
            Err(
                CallError::Server { status: 401, .. } | CallError::Unexpected { status: 401, .. },
            ) => ProbeEnd::Rejected,
            Err(_) => ProbeEnd::Unknown,
        };
        Input::Probe(end)
    }

    fn unpair(&mut self) -> Input {
        let store = self.a.parts.store.clone();
        let lock = match store.lock(grant::LOCK_TIMEOUT) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("devauth: unpairing without the store lock: {e}");
                None
            }
        };
        let mut revoked = false;
        if self.agent_mode_is_device_flow() {
            if let Ok(Some(stored)) = store.load() {
                let client = setup::resolve_endpoints(&self.a.config, &self.a.parts.transport)
                    .and_then(|e| {
                        let transport = self.a.parts.transport.clone();
                        setup::client_with(&self.a.config, transport, e)
                    })
                    .and_then(|mut c| {
                        setup::bind_to_stored(&mut c, &self.a.config, &stored).map(|()| c)
                    })
                    .or_else(|_| self.token_client());
                let problems = match client {
                    Ok(c) => grant::revoke_all(&c, &stored.tokens),
                    Err(e) => vec![format!("could not reach the provider: {e}")],
                };
                for p in &problems {
                    eprintln!("devauth: not revoked: {p}");
                }
                revoked = problems.is_empty();
            }
        }
        if let Err(e) = store.delete() {
            eprintln!("devauth: could not delete the stored tokens: {e}");
        }
        // A new owner's tokens get a new DPoP key.
        if let Err(e) = crate::keys::forget_dpop_key(&store) {
            eprintln!("devauth: could not delete the DPoP key: {e}");
        }
        drop(lock);
        self.a.current = None;
        Input::Unpaired { revoked }
    }

    /// Logs how the stored tokens are protected: after a pairing (`paired`: what this write
    /// decided, and why not sealed), and the first time tokens are loaded (only when unsealed).
    fn say_protection(&mut self, paired: bool) {
        let protection = if paired {
            self.a.parts.store.last_protection()
        } else if self.a.unprotected_said {
            None
        } else {
            self.a.parts.store.protection().ok().flatten()
        };
        match protection {
            Some(p @ Protection::Unprotected { .. }) => {
                let why = match (&p, paired) {
                    (_, true) => p.describe(),
                    _ => store::not_protected(&format!(
                        "the file was written unsealed; seal = \"{}\" seals it at its next \
                         write if it can",
                        self.a.config.storage.sealing.choice.name()
                    )),
                };
                eprintln!("devauth: warning: {why}");
                self.a.unprotected_said = true;
            }
            Some(p) if paired => eprintln!("devauth: tokens {}", p.describe()),
            _ => {}
        }
        let bound = paired && self.a.current.as_ref().is_some_and(TokenSet::is_dpop);
        if let Some(line) = bound
            .then(|| crate::keys::dpop_key_line(&self.a.parts.store))
            .flatten()
        {
            eprintln!("devauth: {line}");
        }
    }

    fn agent_mode_is_device_flow(&self) -> bool {
        self.a.config.provider.grant.jwt_bearer().is_none()
    }

    fn reload(&mut self) -> Input {
        eprintln!(
            "devauth: SIGHUP: reloading {}",
            self.s.config_path.display()
        );
        let name = Some(self.name()).filter(|_| self.a.config.account.several());
        let config = match Config::load_account(self.s.config_path, None, name) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("devauth: reload failed, keeping the running config: {e}");
                return Input::Reloaded(None);
            }
        };
        if config.provider.grant.name() != self.a.config.provider.grant.name()
            || config.storage.path != self.a.config.storage.path
        {
            eprintln!(
                "devauth: reload refused: provider.grant and storage.path only change with a \
                 restart; keeping the running config"
            );
            return Input::Reloaded(None);
        }
        if config.account.all != self.a.config.account.all {
            eprintln!("devauth: accounts added or removed: that takes a restart");
        }
        let parts = match Parts::build(&config) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("devauth: reload failed, keeping the running config: {e}");
                return Input::Reloaded(None);
            }
        };
        if parts.token_file.path() != self.a.parts.token_file.path() {
            let _ = self.a.parts.token_file.remove();
        }
        let policy = policy_for(&config);
        let config = Arc::new(config);
        if let Some(service) = &self.s.tokens {
            service.reload(&config);
        }
        self.a.parts = parts;
        self.a.config = config;
        Input::Reloaded(Some(policy))
    }
}
