//! What the agent, the server thread and the narrowing worker share: per account the token
//! the agent holds and the narrowed tokens, the events to fan out, the worker's jobs, the config
//! and policy in use — behind one mutex — plus the bell (an eventfd) that wakes the server's
//! `poll` and a condition variable that wakes the worker. Locks are held for lookups only,
//! never across I/O.
//!
//! Accounts are keys (`config::DEFAULT_ACCOUNT` for a single-account config); an account the
//! agent has not announced does not exist here. The maps are small `Vec`s (a few accounts, a
//! few scope sets): a `BTreeMap`'s code costs kilobytes on the device.

use super::policy::{Policy, ScopeSet};
use crate::clock::Instant;
use crate::config::Config;
use crate::secret::Secret;
use crate::store::{Expiry, TimeNow, TokenSet};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Narrowed tokens kept per account; the least recently useful go first beyond this.
pub const MAX_NARROWED: usize = 32;
/// Events kept for the server to fan out, if it falls behind (it never should).
const MAX_PENDING_EVENTS: usize = 256;

/// A token as the service hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access_token: Secret,
    pub token_type: String,
    /// What the token carries (for a narrowed one: what the provider said it granted).
    pub scopes: ScopeSet,
    /// `None`: it does not expire.
    pub expiry: Option<Expiry>,
}

impl Token {
    /// Time left; `Some(ZERO)` for an expiry the clock cannot vouch for, `None` when it never
    /// expires.
    pub fn remaining(&self, now: &TimeNow) -> Option<Duration> {
        self.expiry
            .as_ref()
            .map(|e| e.remaining(now).unwrap_or_default())
    }

    pub fn is_expired(&self, now: &TimeNow) -> bool {
        self.remaining(now).is_some_and(|d| d.is_zero())
    }
}

/// Why a narrowed token could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NarrowFailure {
    /// The provider said no (`invalid_scope`, an unsupported grant type, no refresh token to
    /// narrow with, `narrowing = "off"`): a wider token is the only one there is.
    Refused(String),
    /// Network, 5xx, the store lock: worth trying again soon.
    Unreachable(String),
}

/// One narrowed token's slot: the last good token (kept while a new one is fetched), whether a
/// fetch is under way, the last failure and until when it is believed.
#[derive(Debug, Clone, Default)]
pub struct Narrowed {
    pub token: Option<Token>,
    /// The provider granted scopes beyond those asked for (it ignored the narrowing).
    pub wider: bool,
    pub fetching: bool,
    pub failure: Option<(NarrowFailure, Instant)>,
    /// Handed out since it was last fetched: worth renewing ahead of expiry.
    pub used: bool,
}

/// One account as the service sees it.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// The agent's current token (`None`: not paired, or pairing).
    pub token: Option<Token>,
    /// What the account holds (the token's scopes, else the configured ones).
    pub held: ScopeSet,
    pub narrowed: Vec<(ScopeSet, Narrowed)>,
    /// The `code` event of a pairing under way, replayed to new event streams.
    pub pairing_code: Option<String>,
    /// When narrowed tokens were last fetched for requests (`handout::MAX_FETCHES`).
    pub fetches: VecDeque<Instant>,
    /// The account's own config (provider, store); `None`: the board's.
    pub config: Option<Arc<Config>>,
}

impl Account {
    /// The narrowed slot for `scopes`, if there is one.
    pub fn narrowed(&self, scopes: &ScopeSet) -> Option<&Narrowed> {
        self.narrowed
            .iter()
            .find(|(k, _)| k == scopes)
            .map(|(_, n)| n)
    }

    /// The narrowed slot for `scopes`, made (and room made for it) if needed.
    pub fn slot(&mut self, scopes: &ScopeSet) -> &mut Narrowed {
        let at = match self.narrowed.iter().position(|(k, _)| k == scopes) {
            Some(i) => i,
            None => {
                if self.narrowed.len() >= MAX_NARROWED {
                    // Drop an unused one first, else any idle one (never one being fetched).
                    let victim = self
                        .narrowed
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, n))| !n.fetching)
                        .min_by_key(|(_, (_, n))| n.used)
                        .map(|(i, _)| i);
                    if let Some(i) = victim {
                        self.narrowed.swap_remove(i);
                    }
                }
                self.narrowed.push((scopes.clone(), Narrowed::default()));
                self.narrowed.len() - 1
            }
        };
        // `at` is a position in the vector, found or just pushed.
        &mut self.narrowed[at].1
    }
}

/// Work for the narrowing worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub account: String,
    pub scopes: ScopeSet,
}

/// Everything behind the lock.
pub struct State {
    pub config: Arc<Config>,
    pub policy: Arc<Policy>,
    pub accounts: Vec<(String, Account)>,
    /// Event lines (JSON, no newline) not yet fanned out.
    pub events: Vec<Arc<str>>,
    /// Narrowed tokens to fetch, in order.
    pub jobs: VecDeque<Job>,
    pub stopping: bool,
}

impl State {
    /// The config of `account`: its own, else the board's (the default account's, whose
    /// `[agent]` and `[network]` every account shares).
    pub fn config_of(&self, account: &str) -> Arc<Config> {
        self.account(account)
            .and_then(|a| a.config.clone())
            .unwrap_or_else(|| self.config.clone())
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }

    pub fn account_mut(&mut self, name: &str) -> Option<&mut Account> {
        self.accounts
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }

    /// The account `name`, made if the agent had not announced it.
    pub fn account_entry(&mut self, name: &str) -> &mut Account {
        let at = match self.accounts.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.accounts.push((name.to_string(), Account::default()));
                self.accounts.len() - 1
            }
        };
        // `at` is a position in the vector, found or just pushed.
        &mut self.accounts[at].1
    }
}

/// The shared board, its bell (the server) and its condition variable (the worker).
pub struct Board {
    state: Mutex<State>,
    bell: Bell,
    work: Condvar,
}

impl Board {
    pub fn new(config: Arc<Config>, policy: Arc<Policy>) -> io::Result<Board> {
        Ok(Board {
            state: Mutex::new(State {
                config,
                policy,
                accounts: Vec::new(),
                events: Vec::new(),
                jobs: VecDeque::new(),
                stopping: false,
            }),
            bell: Bell::new()?,
            work: Condvar::new(),
        })
    }

    /// The state, locked. A thread that panicked while holding the lock cannot have left it
    /// half-updated in a way that matters more than stopping service: take it anyway.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bell(&self) -> &Bell {
        &self.bell
    }

    /// The worker's wait: until a job or `stop`, or `timeout` (`None`: no timeout). Returns
    /// the guard again (the state locked) and whether the time ran out.
    pub fn wait_for_work<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> (MutexGuard<'a, State>, bool) {
        match timeout {
            None => (
                self.work.wait(guard).unwrap_or_else(|e| e.into_inner()),
                false,
            ),
            Some(t) => {
                let (g, r) = self
                    .work
                    .wait_timeout(guard, t)
                    .unwrap_or_else(|e| e.into_inner());
                (g, r.timed_out())
            }
        }
    }

    /// A narrowed token for the worker to fetch.
    pub fn ask(&self, job: Job) {
        self.lock().jobs.push_back(job);
        self.work.notify_one();
    }

    /// Changes the state and wakes the server.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.bell.ring();
        r
    }

    // --- what the agent tells -----------------------------------------------------------------

    /// The agent's current token for `account` (`None`: there is none; narrowed tokens of the
    /// old grant go too).
    pub fn set_token(&self, account: &str, tokens: Option<&TokenSet>, configured: &[String]) {
        self.update(|s| {
            let a = s.account_entry(account);
            match tokens {
                None => {
                    a.token = None;
                    a.narrowed.clear();
                }
                Some(t) => {
                    let scopes = if t.scopes.is_empty() {
                        ScopeSet::new(configured.iter().cloned())
                    } else {
                        ScopeSet::new(t.scopes.iter().cloned())
                    };
                    if scopes != a.held {
                        // What the grant holds changed: so may what narrowing gives.
                        a.narrowed.clear();
                    }
                    a.held = scopes.clone();
                    a.token = Some(Token {
                        access_token: t.access_token.clone(),
                        token_type: t.token_type.clone(),
                        scopes,
                        expiry: t.expiry.clone(),
                    });
                }
            }
        });
    }

    /// A new grant for `account` (paired again): tokens narrowed from the old one are dropped.
    pub fn new_grant(&self, account: &str) {
        self.update(|s| s.account_entry(account).narrowed.clear());
    }

    /// An event of `account` (the `run --json` object) for the event streams.
    pub fn event(&self, account: &str, event: &serde_json::Value) {
        let name = event
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        let line: Arc<str> = Arc::from(event.to_string());
        self.update(|s| {
            let a = s.account_entry(account);
            match name {
                "code" => a.pairing_code = Some(line.to_string()),
                // Still pairing with the same code on screen.
                "pending" | "slow_down" | "retrying" | "waiting_for_clock" => {}
                _ => a.pairing_code = None,
            }
            if s.events.len() < MAX_PENDING_EVENTS {
                s.events.push(line);
            }
        });
    }

    /// A new config (SIGHUP) and its policy.
    pub fn reload(&self, config: Arc<Config>, policy: Arc<Policy>) {
        self.update(|s| {
            s.config = config;
            s.policy = policy;
        });
    }

    /// The config of `account` after a reload.
    pub fn reload_account(&self, account: &str, config: Arc<Config>) {
        self.update(|s| s.account_entry(account).config = Some(config));
    }

    pub fn stop(&self) {
        self.update(|s| s.stopping = true);
        self.work.notify_all();
    }
}

/// An eventfd: `ring` from any thread, the server polls it and `drain`s it.
pub struct Bell(OwnedFd);

impl Bell {
    fn new() -> io::Result<Bell> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(Bell(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) means it is rung.
        unsafe {
            libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    pub fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; non-blocking.
        unsafe {
            libc::read(self.0.as_raw_fd(), (&mut n as *mut u64).cast(), 8);
        }
    }
}

impl AsRawFd for Bell {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        let config = Arc::new(
            Config::parse(
                "[provider]\nclient_id = \"x\"\nissuer = \"https://i\"\n",
                std::path::Path::new("/x.toml"),
            )
            .unwrap(),
        );
        let (policy, _) = Policy::resolve(&config.agent.socket, |_| None, |_| None);
        Board::new(config, Arc::new(policy)).unwrap()
    }

    fn tokens(scopes: &[&str]) -> TokenSet {
        TokenSet {
            access_token: Secret::new("at"),
            token_type: "Bearer".into(),
            refresh_token: Some(Secret::new("rt")),
            id_token: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            account: None,
            expiry: None,
        }
    }

    #[test]
    fn narrowed_tokens_go_with_the_grant_or_its_scopes() {
        let b = board();
        b.set_token("default", Some(&tokens(&["a", "b"])), &[]);
        let key = ScopeSet::new(["a"]);
        b.lock().account_entry("default").slot(&key).used = true;
        // A renewal with the same scopes keeps them.
        b.set_token("default", Some(&tokens(&["b", "a"])), &[]);
        assert!(
            b.lock()
                .account("default")
                .unwrap()
                .narrowed(&key)
                .is_some()
        );
        // Fewer scopes held now: they go.
        b.set_token("default", Some(&tokens(&["a"])), &[]);
        assert!(b.lock().account("default").unwrap().narrowed.is_empty());
        b.lock().account_entry("default").slot(&key);
        b.new_grant("default");
        assert!(b.lock().account("default").unwrap().narrowed.is_empty());
        // No scopes reported: the configured ones are what it holds.
        b.set_token("default", Some(&tokens(&[])), &["x".into(), "y".into()]);
        assert_eq!(
            b.lock().account("default").unwrap().held,
            ScopeSet::new(["x", "y"])
        );
        b.set_token("default", None, &[]);
        assert!(b.lock().account("default").unwrap().token.is_none());
    }

    #[test]
    fn the_code_on_screen_is_kept_for_new_streams_until_pairing_ends() {
        let b = board();
        let code = serde_json::json!({"event": "code", "user_code": "AB-CD"});
        b.event("default", &code);
        b.event("default", &serde_json::json!({"event": "pending"}));
        assert_eq!(
            b.lock().account("default").unwrap().pairing_code.as_deref(),
            Some(code.to_string().as_str())
        );
        b.event("default", &serde_json::json!({"event": "paired"}));
        assert_eq!(b.lock().account("default").unwrap().pairing_code, None);
        assert_eq!(b.lock().events.len(), 3);
        b.bell().drain();
    }

    #[test]
    fn the_cache_keeps_its_bound() {
        let mut a = Account::default();
        for i in 0..MAX_NARROWED + 5 {
            a.slot(&ScopeSet::new([format!("s{i}")]));
        }
        assert_eq!(a.narrowed.len(), MAX_NARROWED);
    }
}
