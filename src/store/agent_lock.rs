//! The agent's lock: one `devauth run` per store (two would both publish, run hooks and pair),
//! and the way other commands find that agent to tell it the store changed under it
//! (`devauth unpair`, `devauth pair --force`: SIGUSR2).
//!
//! `<store>.agent-lock`, held with an exclusive `flock` for the agent's whole life and holding
//! its pid as text. It sits beside the token file, so a store directory that cannot be created
//! or written fails here with the store's own error (exit 9, the words `pair` uses) instead of
//! a second spelling of the same cause.

use super::*;
use std::io::{Seek, Write};

/// Why the agent lock could not be taken.
#[derive(Debug)]
pub enum AgentLockError {
    /// The store's directory or the lock file cannot be created or opened.
    Store(StoreError),
    /// Another `devauth run` holds it.
    Running { store: PathBuf, lock: PathBuf },
}

impl From<StoreError> for AgentLockError {
    fn from(e: StoreError) -> Self {
        AgentLockError::Store(e)
    }
}

/// Held by the running agent; released when dropped (or when the process ends, however).
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
}

impl TokenStore {
    /// Takes the agent lock without waiting and writes this process's pid into it.
    pub fn agent_lock(&self) -> Result<AgentLock, AgentLockError> {
        let path = self.sibling(".agent-lock")?;
        ensure_dir(&self.dir())?;
        let mut file = open_lock_file(&path, "open the agent lock")?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(AgentLockError::Running {
                store: self.path.clone(),
                lock: path,
            });
        }
        // Best effort: without the pid other commands cannot signal the agent, which then
        // notices a changed store at its next renewal.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(AgentLock { _file: file })
    }

    /// The pid of the `devauth run` that holds this store's agent lock, if one runs.
    pub fn running_agent(&self) -> Option<i32> {
        let path = self.sibling(".agent-lock").ok()?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        // SAFETY: flock on a descriptor we own. Getting a shared lock means no agent holds it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
            return None;
        }
        let mut text = String::new();
        file.take(32).read_to_string(&mut text).ok()?;
        text.trim().parse::<i32>().ok().filter(|pid| *pid > 1)
    }
}
