//! `devauth run`: the one loop that does the agent's I/O. It feeds the pure [`Agent`] machine
//! what happened and carries out what it asks for — reading the store, pairing (with the
//! screen), renewing through [`grant::renew`] (the same lock as `devauth token`), checking the
//! grant with the provider's userinfo, writing the token file, running the hook, emitting
//! `--json` events — and it sleeps.
//!
//! Sleeping is waiting for a signal: SIGTERM, SIGINT, SIGHUP, SIGUSR1 (and SIGCHLD, for the hook)
//! are blocked and taken with `sigtimedwait` ([`Signals`]), in chunks of at most
//! [`WAIT_CHUNK`]. After each chunk CLOCK_BOOTTIME is read again: if it moved much more than the
//! chunk (the box was suspended: sigtimedwait's timeout does not count suspend) or the wall
//! clock moved differently from it (NTP stepped the clock), the machine is ticked at once. No
//! busy loop: between chunks the process is parked in the kernel.
//!
//! Pairing sleeps through the same wait ([`SignalClock`]), so SIGTERM and SIGHUP also end a
//! pairing that is waiting for the person.
//!
//! It owns no policy: what to do and when is `agent`'s.

use crate::agent::hook::{Hook, HookEvent, HookOutcome};
use crate::agent::{
    Agent, Effect, Input, Loaded, Mode, Next, Note, PairingEnd, Policy, ProbeEnd, RenewalEnd,
    TokenInfo, Want,
};
use crate::clock::{self, Instant};
use crate::config::{Config, ReleaseDisplay};
use crate::error::Error;
use crate::grant::{self, Need, OnGone, Renewal, Renewed};
use crate::net::transport::HttpTransport;
use crate::oauth::flow::{Event, Outcome};
use crate::oauth::{CallError, OAuthClient};
use crate::pairing;
use crate::screen::{NoScreen, Problem, Screen, View};
use crate::setup;
use crate::signals::{Signal, SignalClock, Signals};
use crate::store::tokenfile::TokenFile;
use crate::store::{self, AgentLock, AgentLockError, Protection, TimeNow, TokenSet, TokenStore};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest single sleep: after a resume the agent notices the boottime jump within this.
pub const WAIT_CHUNK: Duration = Duration::from_secs(10);
/// Boottime or wall-clock movement beyond the chunk that counts as a resume or clock jump.
const JUMP: Duration = Duration::from_secs(3);

/// Runs the agent until SIGTERM/SIGINT. `config_path` is re-read on SIGHUP.
pub fn run(config_path: &Path, config: Config, json: bool) -> Result<(), Error> {
    // First, before anything could start a thread: the signals are ours to wait for.
    let signals =
        Signals::block().map_err(|e| Error::Io(format!("blocking signals for the agent: {e}")))?;
    let _agent_lock = agent_lock(&config.storage.path)?;
    let parts = Parts::build(&config, json)?;
    let mode = if config.provider.grant.jwt_bearer().is_some() {
        Mode::ServiceAccount
    } else {
        Mode::DeviceFlow
    };
    let mut service = Service {
        config_path: config_path.to_path_buf(),
        agent: Agent::new(policy_for(&config), mode, setup::jitter_seed()),
        config,
        parts,
        json,
        signals,
        current: None,
        publish_error: None,
        pairing_problem: Problem::Other,
        unprotected_said: false,
    };
    eprintln!(
        "devauth: agent started (pid {}, {}, token file {})",
        std::process::id(),
        match mode {
            Mode::DeviceFlow => "device flow",
            Mode::ServiceAccount => "service account",
        },
        service.parts.token_file.path().display()
    );
    service.run();
    eprintln!("devauth: agent stopped");
    Ok(())
}

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
    screen: Box<dyn Screen>,
}

impl Parts {
    fn build(config: &Config, json: bool) -> Result<Parts, Error> {
        crate::config::check_token_file_group(
            config,
            |name| match crate::store::tokenfile::group_id(name) {
                Ok(_) => Ok(true),
                Err(crate::store::tokenfile::TokenFileError::UnknownGroup(_)) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
        )?;
        let screen: Box<dyn Screen> = if config.provider.grant.jwt_bearer().is_some() {
            Box::new(NoScreen) // no person, no screen
        } else {
            setup::open_screen(config, json)?
        };
        Ok(Parts {
            store: config.storage.token_store(),
            transport: setup::transport(config)?,
            renewal: Renewal::for_config(&config.provider)?,
            token_file: TokenFile::new(
                &config.agent.token_file,
                config.agent.token_file_group.clone(),
            ),
            hook: config.agent.hook.clone().map(Hook::new),
            screen,
        })
    }
}

struct Service {
    config_path: PathBuf,
    config: Config,
    parts: Parts,
    agent: Agent,
    json: bool,
    signals: Signals,
    /// The tokens the agent holds (never in the machine: it sees no secret).
    current: Option<TokenSet>,
    /// Why the last write of the token file failed: the hook is then not told it is there.
    publish_error: Option<String>,
    /// What the last failed pairing's screen tells the person (the machine carries only the
    /// message, which goes to the log).
    pairing_problem: Problem,
    /// The "not protected by hardware" warning was logged (once a start, and after a pairing).
    unprotected_said: bool,
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

impl Service {
    fn run(&mut self) {
        let mut input = Input::Tick;
        loop {
            let step = self.agent.step(input, clock::boottime(), wall_ok());
            for effect in step.effects {
                self.effect(effect);
            }
            input = match step.next {
                Next::LoadStore => self.load_store(),
                Next::Pair => self.pair(),
                Next::Renew(want) => self.renew(want),
                Next::Probe => self.probe(),
                Next::Unpair => self.unpair(),
                Next::Reload => self.reload(),
                Next::Wait(until) => self.wait(until),
                Next::Exit => return,
            };
            // Nobody reads stdout any more (`--json`'s reader quit, a terminal screen's output
            // failed): stop as for SIGTERM; `main` exits 1.
            if crate::stdout::failed() {
                input = Input::Signal(Signal::Terminate);
            }
        }
    }

    // --- effects -------------------------------------------------------------------------------

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Notify(note) => self.notify(note),
            Effect::Publish => {
                if let Some(t) = &self.current {
                    let content = crate::store::tokenfile::content(&t.access_token, t.is_dpop());
                    self.publish_error = self
                        .parts
                        .token_file
                        .write(&content)
                        .err()
                        .map(|e| e.to_string());
                    if let Some(e) = &self.publish_error {
                        eprintln!("devauth: {e}");
                    }
                }
            }
            Effect::Unpublish => {
                self.publish_error = None;
                if let Err(e) = self.parts.token_file.remove() {
                    eprintln!("devauth: {e}");
                }
            }
            Effect::ForgetTokens => {
                if let Some(t) = self.current.take() {
                    if let Err(e) = grant::forget_if_current(&self.parts.store, &t.access_token) {
                        eprintln!("devauth: could not delete the refused tokens: {e}");
                    }
                }
            }
            Effect::ShowPaired => {
                let account = self.current.as_ref().and_then(|t| t.account.clone());
                let name = self.current.as_ref().and_then(grant::person_name);
                self.show(&View::Paired { account, name });
            }
            Effect::ShowWaitingForClock => self.show(&View::WaitingForClock),
            Effect::ReleaseDisplay => {
                let blank = self.config.agent.release_display == ReleaseDisplay::Blank;
                self.release(blank);
            }
            Effect::BlankDisplay => self.release(true),
        }
    }

    fn show(&mut self, view: &View) {
        if let Err(e) = self.parts.screen.show(view) {
            if !crate::stdout::failed() {
                eprintln!("devauth: {e}");
            }
        }
    }

    fn release(&mut self, blank: bool) {
        if let Err(e) = self.parts.screen.release(blank) {
            eprintln!("devauth: {e}");
        }
    }

    fn notify(&mut self, note: Note) {
        let account = self.current.as_ref().and_then(|t| t.account.clone());
        let lifetime = self
            .current
            .as_ref()
            .and_then(|t| t.expiry.as_ref())
            .map(|e| e.lifetime_secs);
        let (event, hook_env): (Option<serde_json::Value>, Option<(HookEvent, Vec<_>)>) = match note
        {
            Note::Paired | Note::PairedAtStart => {
                let at_start = note == Note::PairedAtStart;
                let current = self.current.as_ref();
                let scopes = current.map(|t| t.scopes.clone()).unwrap_or_default();
                eprintln!(
                    "devauth: paired{}{}",
                    account
                        .as_ref()
                        .map(|a| format!(" as {a}"))
                        .unwrap_or_default(),
                    if at_start {
                        "; using the stored tokens"
                    } else {
                        ""
                    }
                );
                let mut event = json!({"event": "paired", "scopes": scopes, "account": account});
                let mut env = vec![];
                if at_start {
                    // The time left on the stored token, rounded (a fresh one reads 3600).
                    let left = current
                        .map(token_info)
                        .and_then(|i| i.remaining)
                        .map(|d| (d + Duration::from_millis(500)).as_secs());
                    event["at_start"] = json!(true);
                    event["expires_in"] = json!(left);
                    env.push(("DEVAUTH_AT_START", "1".to_string()));
                } else {
                    event["expires_in"] = json!(lifetime);
                }
                (Some(event), Some((HookEvent::Paired, env)))
            }
            Note::Refreshed(info) => {
                // Rounded: a fresh 3600 s token reads 3600, not 3599.
                let secs = info
                    .remaining
                    .map(|d| (d + Duration::from_millis(500)).as_secs());
                match secs {
                    Some(s) => eprintln!("devauth: access token renewed; expires in {s} s"),
                    None => eprintln!("devauth: access token renewed; it does not expire"),
                }
                (
                    Some(json!({"event": "refreshed", "expires_in": secs})),
                    Some((HookEvent::Refreshed, vec![])),
                )
            }
            Note::Unpaired { revoked } => {
                eprintln!(
                    "devauth: unpaired ({})",
                    match revoked {
                        Some(true) => "tokens revoked at the provider",
                        Some(false) => "deleted locally; not revoked at the provider",
                        None => "the stored tokens were removed by another command",
                    }
                );
                (
                    Some(json!({"event": "unpaired", "revoked": revoked})),
                    Some((HookEvent::Unpaired, vec![])),
                )
            }
            Note::PairingRequired(reason) => {
                eprintln!("devauth: pairing required: {reason}");
                (
                    Some(json!({"event": "pairing_required", "reason": reason})),
                    Some((
                        HookEvent::PairingRequired,
                        vec![("DEVAUTH_REASON", reason.clone())],
                    )),
                )
            }
            Note::Denied => {
                eprintln!("devauth: access was denied on the provider's page; pairing again soon");
                self.show(&View::Denied);
                (Some(json!({"event": "denied"})), None)
            }
            Note::PairingFailed(message) => {
                eprintln!("devauth: pairing failed: {message}");
                self.show(&View::Error {
                    problem: self.pairing_problem,
                });
                (Some(json!({"event": "error", "message": message})), None)
            }
            Note::Retrying { reason, in_secs } => {
                eprintln!("devauth: renewing failed ({reason}); retrying in {in_secs} s");
                (
                    Some(json!({"event": "retrying", "reason": reason, "in_secs": in_secs})),
                    None,
                )
            }
            Note::WaitingForClock => {
                eprintln!("devauth: the clock is not set yet; waiting for network time");
                (Some(json!({"event": "waiting_for_clock"})), None)
            }
            Note::ProbeUnusable => {
                eprintln!(
                    "devauth: the provider's userinfo endpoint refuses this grant's tokens; \
                         the agent will not use it to check the grant"
                );
                (None, None)
            }
        };
        if let (true, Some(event)) = (self.json, event) {
            setup::emit(&event);
        }
        if let (Some(hook), Some((event, mut env))) = (self.parts.hook.clone(), hook_env) {
            // `paired` and `refreshed` mean "the token file is written": never claim a file
            // that could not be written.
            let publishes = matches!(event, HookEvent::Paired | HookEvent::Refreshed);
            match (&self.publish_error, publishes) {
                (Some(e), true) => env.push(("DEVAUTH_TOKEN_FILE_ERROR", e.clone())),
                _ => env.push((
                    "DEVAUTH_TOKEN_FILE",
                    self.parts.token_file.path().display().to_string(),
                )),
            }
            if let Some(a) = account {
                env.push(("DEVAUTH_ACCOUNT", a));
            }
            if let Some(t) = &self.current {
                if let Some(left) = token_info(t).remaining {
                    env.push(("DEVAUTH_EXPIRES_IN", left.as_secs().to_string()));
                }
                env.push(("DEVAUTH_TOKEN_TYPE", t.token_type.clone()));
            }
            match hook.run(event, &env, &mut self.signals) {
                Ok(HookOutcome::Exited(0)) => {}
                Ok(HookOutcome::Exited(code)) => {
                    eprintln!(
                        "devauth: hook `{}` {}: exit {code}",
                        hook.command,
                        event.name()
                    )
                }
                Ok(HookOutcome::Signalled(sig)) => eprintln!(
                    "devauth: hook `{}` {}: killed by signal {sig}",
                    hook.command,
                    event.name()
                ),
                Ok(HookOutcome::TimedOut) => eprintln!(
                    "devauth: hook `{}` {}: still running after {} s; killed",
                    hook.command,
                    event.name(),
                    hook.timeout.as_secs()
                ),
                Err(e) => eprintln!("devauth: {e}"),
            }
        }
    }

    // --- blocking steps ------------------------------------------------------------------------

    fn load_store(&mut self) -> Input {
        self.current = None;
        match self.parts.store.load() {
            Ok(None) => Input::Store(Loaded::Nothing),
            Err(e) => Input::Store(Loaded::Unusable(e.to_string())),
            Ok(Some(stored)) => {
                if stored.client_id != self.config.provider.client_id {
                    return Input::Store(Loaded::Unusable(format!(
                        "the stored tokens were issued to client `{}`, the config names `{}`",
                        stored.client_id, self.config.provider.client_id
                    )));
                }
                if let Some(refused) = &stored.grant_refused {
                    return Input::Store(Loaded::Unusable(grant::refused_detail(refused)));
                }
                self.say_protection(false);
                let info = token_info(&stored.tokens);
                self.current = Some(stored.tokens);
                Input::Store(Loaded::Tokens(info))
            }
        }
    }

    /// The client for renewing, probing and revoking: for discovery-configured providers the
    /// token endpoint recorded in the store (no discovery round trip); bound to the stored
    /// tokens' DPoP key when they have one.
    fn token_client(&self) -> Result<OAuthClient<&HttpTransport>, Error> {
        let stored = self.parts.store.load().ok().flatten();
        let endpoints = match setup::stored_endpoints(&self.config, stored.as_ref()) {
            Some(e) => e,
            None => setup::resolve_endpoints(&self.config, &self.parts.transport)?,
        };
        let mut client = setup::client_with(&self.config, &self.parts.transport, endpoints)?;
        if let Some(stored) = &stored {
            setup::bind_to_stored(&mut client, &self.config, stored)?;
        }
        Ok(client)
    }

    fn pair(&mut self) -> Input {
        if self.config.provider.grant.code_grant().is_some() {
            // A browser sign-in needs a person at a browser the agent cannot drive; the agent
            // keeps a signed-in grant alive but does not start one.
            self.pairing_problem = Problem::Setup;
            return Input::Pairing(PairingEnd::Failed(
                "grant = \"authorization_code\": sign in once with `devauth pair`; the agent \
                 then keeps the tokens fresh"
                    .to_string(),
            ));
        }
        // As `devauth pair`: the store takes the tokens (and a new data key is sealed) before a
        // code is shown, so a store or sealer that cannot is said before anyone approves.
        let prepared = match self.parts.store.prepare_pairing() {
            Ok(p) => p,
            Err(e) => return Input::Pairing(PairingEnd::Failed(e.to_string())),
        };
        let endpoints = match setup::resolve_endpoints(&self.config, &self.parts.transport) {
            Ok(e) => e,
            Err(e) => {
                self.pairing_problem = e.problem();
                return Input::Pairing(PairingEnd::Failed(e.to_string()));
            }
        };
        let (store, transport) = (&self.parts.store, &self.parts.transport);
        let client = match setup::pairing_client(&self.config, store, transport, endpoints) {
            Ok(c) => c,
            Err(e) => return Input::Pairing(PairingEnd::Failed(e.to_string())),
        };
        let json = self.json;
        let clock = SignalClock::new(&mut self.signals);
        let mut on_event = |event: &Event| {
            if json {
                setup::emit(&pairing::event_json(event));
            }
        };
        let result = pairing::run_until(
            &client,
            &clock,
            self.parts.screen.as_mut(),
            &mut on_event,
            crate::oauth::flow::Policy::default(),
            setup::jitter_seed(),
            &mut || clock.got().is_some() || crate::stdout::failed(),
        );
        let Some(result) = result else {
            let sig = clock.got().unwrap_or(Signal::Terminate);
            return Input::Pairing(PairingEnd::Interrupted(sig));
        };
        // A stop signal that came during the last wait is kept for the next one.
        if let Some(sig) = clock.got() {
            clock.defer(sig);
        }
        match result.outcome {
            Outcome::Paired(resp) => {
                let stored = grant::paired(
                    &client,
                    &self.config.provider.client_id,
                    resp,
                    result.server_date,
                    &TimeNow::read(&clock::SystemClock),
                );
                if let Err(e) = prepared.commit(&stored) {
                    self.pairing_problem = Problem::Storage;
                    return Input::Pairing(PairingEnd::Failed(e.to_string()));
                }
                let info = token_info(&stored.tokens);
                self.current = Some(stored.tokens);
                self.say_protection(true);
                Input::Pairing(PairingEnd::Paired(info))
            }
            Outcome::Denied => Input::Pairing(PairingEnd::Denied),
            Outcome::ServerError(err) => {
                let endpoint = crate::net::transport::redact_url(&client.endpoints.token);
                self.pairing_problem = Problem::Service;
                Input::Pairing(PairingEnd::Failed(format!("{endpoint}: {err}")))
            }
            Outcome::Failed(msg) => {
                self.pairing_problem = Problem::Service;
                Input::Pairing(PairingEnd::Failed(msg))
            }
            // Only `pair --timeout` gives up; the agent's flow never does.
            Outcome::Unreachable(msg) => {
                self.pairing_problem = Problem::Network;
                Input::Pairing(PairingEnd::Failed(msg))
            }
        }
    }

    fn renew(&mut self, want: Want) -> Input {
        let client = match self.token_client() {
            Ok(c) => c,
            Err(e) => return Input::Renewal(RenewalEnd::Failed(e.to_string())),
        };
        let rejected = self.current.as_ref().map(|t| t.access_token.clone());
        let need = match (want, &rejected) {
            (Want::AtMost(d), _) => Need::Remaining(d),
            (Want::Replace, Some(token)) => Need::Replace(token),
            (Want::Replace, None) => Need::Remaining(Duration::MAX),
        };
        let result = grant::renew(
            &self.parts.store,
            &client,
            &clock::SystemClock,
            &self.parts.renewal,
            need,
            OnGone::Forget,
        );
        let end = match result {
            Ok(Renewed::New(t)) => {
                // A plain store is sealed at its first write where it can be: say so once.
                if let (true, Some(p @ Protection::Sealed(_))) =
                    (self.unprotected_said, self.parts.store.last_protection())
                {
                    eprintln!("devauth: tokens {}", p.describe());
                    self.unprotected_said = false;
                }
                let info = token_info(&t);
                self.current = Some(t);
                RenewalEnd::New(info)
            }
            Ok(Renewed::Current(t)) => {
                let info = token_info(&t);
                // Another process (`devauth token`) may have renewed: the token changed.
                let changed = self
                    .current
                    .as_ref()
                    .is_none_or(|c| c.access_token != t.access_token);
                self.current = Some(t);
                if changed {
                    RenewalEnd::New(info)
                } else {
                    RenewalEnd::Current(info)
                }
            }
            Ok(Renewed::Failed { error, .. }) => RenewalEnd::Failed(error.to_string()),
            Err(Error::GrantGone { detail }) => {
                self.current = None;
                RenewalEnd::Gone(detail)
            }
            // Sealed on other hardware, or the TPM was cleared: the tokens are out of reach.
            Err(Error::Store(e)) if e.needs_pairing() => {
                self.current = None;
                RenewalEnd::Gone(e.to_string())
            }
            Err(e @ (Error::NotPaired { .. } | Error::OtherClient { .. })) => {
                self.current = None;
                RenewalEnd::Gone(e.to_string())
            }
            Err(e) => RenewalEnd::Failed(e.to_string()),
        };
        Input::Renewal(end)
    }

    fn probe(&mut self) -> Input {
        let Some((token, token_type)) = self
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
        let store = self.parts.store.clone();
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
                let client = setup::resolve_endpoints(&self.config, &self.parts.transport)
                    .and_then(|e| setup::client_with(&self.config, &self.parts.transport, e))
                    .and_then(|mut c| {
                        setup::bind_to_stored(&mut c, &self.config, &stored).map(|()| c)
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
        self.current = None;
        Input::Unpaired { revoked }
    }

    /// Logs how the stored tokens are protected: after a pairing (`paired`: what this write
    /// decided, and why not sealed), and the first time tokens are loaded (only when unsealed).
    fn say_protection(&mut self, paired: bool) {
        let protection = if paired {
            self.parts.store.last_protection()
        } else if self.unprotected_said {
            None
        } else {
            self.parts.store.protection().ok().flatten()
        };
        match protection {
            Some(p @ Protection::Unprotected { .. }) => {
                let why = match (&p, paired) {
                    (_, true) => p.describe(),
                    _ => store::not_protected(&format!(
                        "the file was written unsealed; seal = \"{}\" seals it at its next \
                         write if it can",
                        self.config.storage.sealing.choice.name()
                    )),
                };
                eprintln!("devauth: warning: {why}");
                self.unprotected_said = true;
            }
            Some(p) if paired => eprintln!("devauth: tokens {}", p.describe()),
            _ => {}
        }
        let bound = paired && self.current.as_ref().is_some_and(TokenSet::is_dpop);
        if let Some(line) = bound
            .then(|| crate::keys::dpop_key_line(&self.parts.store))
            .flatten()
        {
            eprintln!("devauth: {line}");
        }
    }

    fn agent_mode_is_device_flow(&self) -> bool {
        self.config.provider.grant.jwt_bearer().is_none()
    }

    fn reload(&mut self) -> Input {
        eprintln!("devauth: SIGHUP: reloading {}", self.config_path.display());
        let config = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("devauth: reload failed, keeping the running config: {e}");
                return Input::Reloaded(None);
            }
        };
        if config.provider.grant.name() != self.config.provider.grant.name()
            || config.storage.path != self.config.storage.path
        {
            eprintln!(
                "devauth: reload refused: provider.grant and storage.path only change with a \
                 restart; keeping the running config"
            );
            return Input::Reloaded(None);
        }
        let parts = match Parts::build(&config, self.json) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("devauth: reload failed, keeping the running config: {e}");
                return Input::Reloaded(None);
            }
        };
        if parts.token_file.path() != self.parts.token_file.path() {
            let _ = self.parts.token_file.remove();
        }
        let policy = policy_for(&config);
        self.parts = parts;
        self.config = config;
        Input::Reloaded(Some(policy))
    }

    /// Sleeps until `until` (boottime) or a signal, in chunks, ticking early after a resume or a
    /// wall-clock jump.
    fn wait(&mut self, until: Instant) -> Input {
        loop {
            let start = clock::boottime();
            if start >= until {
                return Input::Tick;
            }
            let chunk = (until - start).min(WAIT_CHUNK);
            let wall_start = clock::wall_now();
            if let Some(sig) = self.signals.wait(chunk) {
                return Input::Signal(sig);
            }
            let slept = clock::boottime().saturating_sub(start);
            if slept > chunk + JUMP {
                eprintln!(
                    "devauth: resumed after {} s; checking the tokens",
                    slept.as_secs()
                );
                return Input::Tick;
            }
            let wall_moved = clock::unix_secs(clock::wall_now()) - clock::unix_secs(wall_start);
            let drift = (i128::from(wall_moved) - i128::from(slept.as_secs())).unsigned_abs();
            if drift > u128::from(JUMP.as_secs()) {
                return Input::Tick;
            }
        }
    }
}
