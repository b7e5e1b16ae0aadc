//! The token service: `devauth run` serves the device's apps on a Unix socket, HTTP/1.1
//! (`GET /v1/token`, `GET /v1/status`, `GET /v1/events`), each caller identified by the kernel
//! and given only what the `[[agent.client]]` policy grants it, narrowed tokens included.
//!
//! Threads (the agent itself stays one synchronous loop, untouched by any client):
//! - the server (`server.rs`): one `poll` over the socket and its clients;
//! - the narrowing worker (`narrow.rs`): the only one that talks to the provider for the
//!   service;
//! - the agent tells the [`TokenService`] what changed (its token, events, a reload); the
//!   shared state is `board.rs`, behind one mutex, with an eventfd to wake the server.
//!
//! Every thread inherits the agent's blocked signals (they are blocked before `start`), so
//! signals still reach only the agent's `sigtimedwait`/signalfd. Files: `http.rs` (the request
//! parser, pure), `peer.rs` (who is calling), `policy.rs` (who may have what, pure),
//! `listen.rs` (the listening socket, systemd activation), `client.rs` (`devauth token`'s
//! side).

pub mod board;
pub mod client;
pub mod handout;
pub mod http;
pub mod listen;
pub mod narrow;
pub mod peer;
pub mod policy;
pub mod server;

use crate::config::{Config, DEFAULT_ACCOUNT};
use crate::error::Error;
use crate::store::TokenSet;
use board::{Account, Board};
use listen::Listening;
use policy::{Policy, ScopeSet};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running token service.
pub struct TokenService {
    board: Arc<Board>,
    server: Option<JoinHandle<()>>,
    listening: Arc<Listening>,
}

/// The policy of `config`, names resolved, warnings on stderr.
fn policy_of(config: &Config) -> Policy {
    let (policy, warnings) = Policy::resolve(&config.agent.socket, peer::uid_of, peer::gid_of);
    for w in warnings {
        eprintln!("devauth: warning: {w}");
    }
    if let Some(rule) = config.agent.socket.clients.iter().find(|r| r.exe.is_some()) {
        if !peer::can_read_others_exe() {
            eprintln!(
                "devauth: warning: {}.exe: this agent cannot read other users' executables \
                 (no CAP_SYS_PTRACE); entries with `exe` match only callers running as its own \
                 user (docs/token-service.md)",
                rule.name
            );
        }
    }
    policy
}

impl TokenService {
    /// Starts serving every account of `accounts` (the default one first: its `[agent]` and
    /// `[network]` are everyone's); `None` when `[agent] socket = ""`. Call it after the
    /// agent's signals are blocked (the threads inherit the mask).
    pub fn start(accounts: &[Arc<Config>]) -> Result<Option<TokenService>, Error> {
        let Some(config) = accounts.first() else {
            return Ok(None);
        };
        let Some(listening) = listen::listen(&config.agent.socket).map_err(Error::Io)? else {
            return Ok(None);
        };
        let listening = Arc::new(listening);
        let policy = policy_of(config);
        let io = |e: std::io::Error| Error::Io(format!("starting the token service: {e}"));
        let board = Arc::new(Board::new(config.clone(), Arc::new(policy)).map_err(io)?);
        board.update(|s| {
            for c in accounts {
                s.accounts.push((
                    c.account.name.clone(),
                    Account {
                        held: ScopeSet::new(c.provider.scopes.iter().cloned()),
                        config: Some(c.clone()),
                        ..Account::default()
                    },
                ));
            }
        });
        narrow::spawn(board.clone()).map_err(io)?;
        let listener = listening.listener.try_clone().map_err(io)?;
        let server = server::Server::new(listener, board.clone()).map_err(io)?;
        let handle = std::thread::Builder::new()
            .name("devauth-socket".into())
            .stack_size(256 * 1024)
            .spawn(move || server.run())
            .map_err(io)?;
        Ok(Some(TokenService {
            board,
            server: Some(handle),
            listening,
        }))
    }

    /// Said in the agent's start line.
    pub fn describe(&self) -> &str {
        &self.listening.describe
    }

    /// The token the agent now holds for `account` (`None`: none; narrowed tokens go too).
    pub fn set_token(&self, account: &str, tokens: Option<&TokenSet>) {
        let configured = self.board.lock().config_of(account).provider.scopes.clone();
        self.board.set_token(account, tokens, &configured);
    }

    /// `account` was paired again: tokens narrowed from the old grant are dropped.
    pub fn new_grant(&self, account: &str) {
        self.board.new_grant(account);
    }

    /// An event of `account` (the `run --json` object) for `GET /v1/events`.
    pub fn event(&self, account: &str, event: &serde_json::Value) {
        self.board.event(account, event);
    }

    /// The config was reloaded (SIGHUP): new policy, new settings (`config` is an account's:
    /// the default one's also brings the shared `[agent]` and the policy). The socket itself
    /// stays.
    pub fn reload(&self, config: &Arc<Config>) {
        self.board
            .reload_account(&config.account.name, config.clone());
        if config.account.name != DEFAULT_ACCOUNT {
            return;
        }
        if config.agent.socket.path != self.board.lock().config.agent.socket.path {
            eprintln!("devauth: [agent] socket changed; the socket moves at the next restart");
        }
        self.board
            .reload(config.clone(), Arc::new(policy_of(config)));
    }

    /// Stops serving and removes the socket file this agent created. Clients waiting for a
    /// narrowed token are dropped; the worker may still finish a request in flight.
    pub fn stop(mut self) {
        self.board.stop();
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
        self.listening.remove();
    }
}
