//! Signals for `devauth run`, without signal handlers: the agent blocks SIGTERM, SIGINT, SIGHUP,
//! SIGUSR1, SIGUSR2 and SIGCHLD and *waits* for them with `sigtimedwait`, which is also its only way of
//! sleeping. One thread, no handler racing the main loop, no self-pipe, and 0 % CPU while it
//! waits: the process is parked in the kernel until a signal arrives or the timeout passes.
//!
//! This module owns the signal mask and the wait. It does not decide what a signal means (that is
//! `agent`) nor how long to wait (the service loop). Children (the hook) get the signals
//! unblocked again before `exec` ([`unblock_in_child`]); otherwise they would inherit the mask
//! and could not be stopped with SIGTERM.
//!
//! The mask must be set before any other thread exists: threads inherit it, and a process-wide
//! signal is delivered to any thread that has it unblocked (with the default action: death).
//! devauth is single-threaded (ureq is synchronous), so blocking at the start of `run` is enough.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, Instant};

/// A signal the agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop cleanly.
    Terminate,
    /// SIGINT (Ctrl-C): stop cleanly.
    Interrupt,
    /// SIGHUP: reload the config.
    Reload,
    /// SIGUSR1: unpair (with revocation) and pair again.
    Unpair,
    /// SIGUSR2: another command changed the token store (`devauth unpair`, `pair --force`);
    /// read it again.
    StoreChanged,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Reload => "SIGHUP",
            Signal::Unpair => "SIGUSR1",
            Signal::StoreChanged => "SIGUSR2",
        }
    }

    /// The signal's number (Linux).
    pub fn number(self) -> i32 {
        match self {
            Signal::Terminate => libc::SIGTERM,
            Signal::Interrupt => libc::SIGINT,
            Signal::Reload => libc::SIGHUP,
            Signal::Unpair => libc::SIGUSR1,
            Signal::StoreChanged => libc::SIGUSR2,
        }
    }

    /// SIGTERM or SIGINT.
    pub fn is_stop(self) -> bool {
        matches!(self, Signal::Terminate | Signal::Interrupt)
    }
}

/// What one `sigtimedwait` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Signal(Signal),
    Child,
    /// Timeout, or EINTR (e.g. after SIGSTOP/SIGCONT): the caller re-checks the time.
    Nothing,
}

const WAITED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write into the set we own; the signal numbers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in WAITED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The blocked signals, and those already taken from the kernel but not yet handed out (a
/// SIGTERM that arrived while a hook was being waited for).
#[derive(Debug)]
pub struct Signals {
    set: libc::sigset_t,
    deferred: VecDeque<Signal>,
}

impl Signals {
    /// Blocks the agent's signals in this thread (and every thread started after).
    pub fn block() -> io::Result<Signals> {
        let set = signal_set();
        // SAFETY: a valid set, no old-mask output.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Signals {
            set,
            deferred: VecDeque::new(),
        })
    }

    /// Waits up to `timeout` for SIGTERM/SIGINT/SIGHUP/SIGUSR1. `None` when the time passed (or
    /// the wait was interrupted early: callers always re-check the clock). SIGCHLD is swallowed.
    pub fn wait(&mut self, timeout: Duration) -> Option<Signal> {
        if let Some(s) = self.deferred.pop_front() {
            return Some(s);
        }
        let end = crate::clock::boottime() + timeout;
        loop {
            let left = end.saturating_sub(crate::clock::boottime());
            match self.wait_once(left) {
                Got::Signal(s) => return Some(s),
                Got::Nothing => return None,
                Got::Child if left.is_zero() => return None,
                Got::Child => {}
            }
        }
    }

    /// A signal that is already pending, without waiting.
    pub fn poll(&mut self) -> Option<Signal> {
        self.wait(Duration::ZERO)
    }

    /// Waits up to `timeout` for a child to change state (SIGCHLD). Other signals that arrive
    /// meanwhile are kept for the next [`wait`](Self::wait). True when SIGCHLD came.
    pub fn wait_child(&mut self, timeout: Duration) -> bool {
        match self.wait_once(timeout) {
            Got::Child => true,
            Got::Signal(s) => {
                self.deferred.push_back(s);
                false
            }
            Got::Nothing => false,
        }
    }

    /// Puts a signal back so the next [`wait`](Self::wait) returns it first.
    pub fn defer(&mut self, s: Signal) {
        self.deferred.push_front(s);
    }

    fn wait_once(&mut self, timeout: Duration) -> Got {
        let ts = crate::clock::timespec(timeout);
        // SAFETY: `info` is a writable siginfo_t, `self.set` and `ts` are valid for the call.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigtimedwait(&self.set, &mut info, &ts)
        };
        match rc {
            libc::SIGTERM => Got::Signal(Signal::Terminate),
            libc::SIGINT => Got::Signal(Signal::Interrupt),
            libc::SIGHUP => Got::Signal(Signal::Reload),
            libc::SIGUSR1 => Got::Signal(Signal::Unpair),
            libc::SIGUSR2 => Got::Signal(Signal::StoreChanged),
            libc::SIGCHLD => Got::Child,
            // -1 with EAGAIN (timeout) or EINTR.
            _ => Got::Nothing,
        }
    }
}

/// The clock pairing sleeps on (`devauth run` and `devauth pair`): CLOCK_BOOTTIME, sleeping by
/// waiting for a signal. A signal that arrives is kept ([`got`](Self::got)) and pairing's stop
/// check ends pairing; SIGUSR1 means nothing while pairing and is dropped.
pub struct SignalClock<'a> {
    signals: RefCell<&'a mut Signals>,
    got: Cell<Option<Signal>>,
}

impl<'a> SignalClock<'a> {
    pub fn new(signals: &'a mut Signals) -> SignalClock<'a> {
        SignalClock {
            signals: RefCell::new(signals),
            got: Cell::new(None),
        }
    }

    /// The stop or reload signal that came while sleeping, if any.
    pub fn got(&self) -> Option<Signal> {
        self.got.get()
    }

    /// Puts a signal back for the next [`Signals::wait`].
    pub fn defer(&self, s: Signal) {
        self.signals.borrow_mut().defer(s);
    }
}

impl Clock for SignalClock<'_> {
    fn now(&self) -> Instant {
        crate::clock::boottime()
    }

    fn sleep(&self, d: Duration) {
        if self.got.get().is_some() {
            return;
        }
        match self.signals.borrow_mut().wait(d) {
            Some(Signal::Unpair) => {
                eprintln!("devauth: SIGUSR1 while pairing: not paired, nothing to unpair");
            }
            Some(sig) => self.got.set(Some(sig)),
            None => {}
        }
    }

    fn wall(&self) -> SystemTime {
        crate::clock::wall_now()
    }
}

/// The mask to clear in a child between fork and exec, made before forking (nothing may
/// allocate in the child).
#[derive(Clone, Copy)]
pub struct ChildMask(libc::sigset_t);

impl ChildMask {
    pub fn new() -> ChildMask {
        ChildMask(signal_set())
    }
}

impl Default for ChildMask {
    fn default() -> Self {
        ChildMask::new()
    }
}

/// Unblocks the agent's signals; for `CommandExt::pre_exec`. Only calls sigprocmask, which is
/// async-signal-safe.
pub fn unblock_in_child(mask: &ChildMask) -> io::Result<()> {
    // SAFETY: a valid set; sigprocmask is async-signal-safe (we are between fork and exec).
    let rc = unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &mask.0, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signals are process-wide and cargo runs unit tests on several threads, so these tests only
    // use thread-directed signals (pthread_kill to the current thread), which no other thread
    // can steal, and SIGUSR1/SIGHUP only (the test harness does not use them).

    fn raise_here(sig: libc::c_int) {
        // SAFETY: sends a signal to the calling thread, which has it blocked.
        unsafe {
            libc::pthread_kill(libc::pthread_self(), sig);
        }
    }

    #[test]
    fn a_blocked_signal_is_returned_by_wait_not_delivered() {
        let mut s = Signals::block().unwrap();
        raise_here(libc::SIGUSR1);
        assert_eq!(s.wait(Duration::from_secs(5)), Some(Signal::Unpair));
        raise_here(libc::SIGHUP);
        assert_eq!(s.poll(), Some(Signal::Reload));
        assert_eq!(s.poll(), None);
    }

    #[test]
    fn wait_times_out_without_a_signal() {
        let mut s = Signals::block().unwrap();
        let start = crate::clock::boottime();
        assert_eq!(s.wait(Duration::from_millis(30)), None);
        assert!(crate::clock::boottime() - start >= Duration::from_millis(30));
    }

    #[test]
    fn signals_seen_while_waiting_for_a_child_are_kept() {
        let mut s = Signals::block().unwrap();
        raise_here(libc::SIGUSR1);
        assert!(!s.wait_child(Duration::from_millis(10)));
        assert_eq!(s.poll(), Some(Signal::Unpair));
        s.defer(Signal::Terminate);
        assert_eq!(s.poll(), Some(Signal::Terminate));
    }

    #[test]
    fn names_and_stop() {
        assert!(Signal::Terminate.is_stop() && Signal::Interrupt.is_stop());
        assert!(!Signal::Reload.is_stop() && !Signal::Unpair.is_stop());
        assert_eq!(Signal::Unpair.name(), "SIGUSR1");
        assert_eq!(
            [Signal::Terminate, Signal::Interrupt, Signal::Reload].map(Signal::number),
            [15, 2, 1]
        );
    }
}
