//! Signals for `devauth run`, without signal handlers: the agent blocks SIGTERM, SIGINT, SIGHUP,
//! SIGUSR1, SIGUSR2 and SIGCHLD and *waits* for them — with `sigtimedwait` for short waits (pairing's
//! polls, a hook), and, idle between renewals, with [`Signals::sleep_until`]: one `poll` on a
//! signalfd, a CLOCK_BOOTTIME timerfd for the deadline and a CLOCK_REALTIME timerfd that the
//! kernel cancels when the wall clock is set. No handler racing the main loop, no self-pipe,
//! and no wake-up at all while it waits: the process is parked in the kernel until a signal,
//! the deadline (suspend time included) or a clock step.
//!
//! This module owns the signal mask and the wait. It does not decide what a signal means (that is
//! `agent`) nor how long to wait (the service loop). Children (the hook) get the signals
//! unblocked again before `exec` ([`unblock_in_child`]); otherwise they would inherit the mask
//! and could not be stopped with SIGTERM.
//!
//! The mask must be set before any other thread exists: threads inherit it, and a process-wide
//! signal is delivered to any thread that has it unblocked (with the default action: death).
//! `run` blocks first, then starts the token service's threads (`socket/`), which inherit it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    /// The descriptors of [`sleep_until`](Self::sleep_until), made on first use.
    idle: Option<Idle>,
    /// Making them failed once (an old kernel): not tried again.
    idle_unavailable: bool,
}

/// How [`Signals::sleep_until`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    Signal(Signal),
    /// The deadline passed (CLOCK_BOOTTIME: time spent suspended counts).
    Deadline,
    /// The wall clock was set (NTP stepped it, or a resume from suspend).
    ClockSet,
}

/// A signalfd for the blocked set, a CLOCK_BOOTTIME timer for the deadline and a
/// CLOCK_REALTIME timer armed with TFD_TIMER_CANCEL_ON_SET, which the kernel cancels whenever
/// the wall clock is set: one `poll` on the three is an idle wait with no wake-up at all.
#[derive(Debug)]
struct Idle {
    signals: OwnedFd,
    deadline: OwnedFd,
    clock_set: OwnedFd,
}

impl Idle {
    fn new(set: &libc::sigset_t) -> io::Result<Idle> {
        let own = |fd: libc::c_int| -> io::Result<OwnedFd> {
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        // SAFETY: a valid set; the flags are valid for each call.
        unsafe {
            Ok(Idle {
                signals: own(libc::signalfd(
                    -1,
                    set,
                    libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
                ))?,
                deadline: own(libc::timerfd_create(
                    libc::CLOCK_BOOTTIME,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                ))?,
                clock_set: own(libc::timerfd_create(
                    libc::CLOCK_REALTIME,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                ))?,
            })
        }
    }

    fn arm(fd: &OwnedFd, at: Duration, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: itimerspec is plain integers (zero is valid); the timer is ours.
        let rc = unsafe {
            let mut spec: libc::itimerspec = std::mem::zeroed();
            spec.it_value = crate::clock::timespec(at);
            libc::timerfd_settime(fd.as_raw_fd(), flags, &spec, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads a timer; `Err(ECANCELED)` when the clock was set.
    fn read_timer(fd: &OwnedFd) -> io::Result<u64> {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        let rc = unsafe { libc::read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        if rc != 8 {
            return Err(io::Error::last_os_error());
        }
        Ok(n)
    }
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
            idle: None,
            idle_unavailable: false,
        })
    }

    /// Waits until `until` (CLOCK_BOOTTIME), a signal (SIGCHLD is swallowed) or the wall clock
    /// being set, without waking up in between (unlike [`wait`](Self::wait), whose timeout
    /// stops during suspend). `Err` when the kernel lacks signalfd or timerfd (after the first
    /// time, of kind `Unsupported`); the caller then waits in slices with [`wait`](Self::wait).
    pub fn sleep_until(&mut self, until: Duration) -> io::Result<Woke> {
        if let Some(s) = self.deferred.pop_front() {
            return Ok(Woke::Signal(s));
        }
        if self.idle_unavailable {
            return Err(io::ErrorKind::Unsupported.into());
        }
        if self.idle.is_none() {
            match Idle::new(&self.set) {
                Ok(idle) => self.idle = Some(idle),
                Err(e) => {
                    self.idle_unavailable = true;
                    return Err(e);
                }
            }
        }
        let Some(idle) = &self.idle else {
            return Err(io::Error::other("no idle descriptors"));
        };
        // A zero it_value disarms a timer: a deadline already due is a 1 ns one.
        Idle::arm(
            &idle.deadline,
            until.max(Duration::from_nanos(1)),
            libc::TFD_TIMER_ABSTIME,
        )?;
        let far = crate::clock::wall_now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            + Duration::from_secs(365 * 24 * 3600);
        Idle::arm(
            &idle.clock_set,
            far,
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
        )?;
        loop {
            let mut fds = [
                idle.signals.as_raw_fd(),
                idle.deadline.as_raw_fd(),
                idle.clock_set.as_raw_fd(),
            ]
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
            // SAFETY: a live array of three pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let [sig, deadline, clock_set] = fds.map(|f| f.revents != 0);
            if sig {
                // SAFETY: signalfd_siginfo is plain integers; we read one whole record.
                let signo = unsafe {
                    let mut info: libc::signalfd_siginfo = std::mem::zeroed();
                    let size = std::mem::size_of::<libc::signalfd_siginfo>();
                    let rc = libc::read(
                        idle.signals.as_raw_fd(),
                        (&mut info as *mut libc::signalfd_siginfo).cast(),
                        size,
                    );
                    if rc == size as isize {
                        info.ssi_signo as libc::c_int
                    } else {
                        0
                    }
                };
                if let Got::Signal(s) = got(signo) {
                    return Ok(Woke::Signal(s));
                }
            }
            if clock_set {
                if let Err(e) = Idle::read_timer(&idle.clock_set) {
                    if e.raw_os_error() == Some(libc::ECANCELED) {
                        return Ok(Woke::ClockSet);
                    }
                }
            }
            if deadline && Idle::read_timer(&idle.deadline).is_ok() {
                return Ok(Woke::Deadline);
            }
        }
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
        // -1 with EAGAIN (timeout) or EINTR is Nothing.
        got(rc)
    }
}

fn got(signo: libc::c_int) -> Got {
    match signo {
        libc::SIGTERM => Got::Signal(Signal::Terminate),
        libc::SIGINT => Got::Signal(Signal::Interrupt),
        libc::SIGHUP => Got::Signal(Signal::Reload),
        libc::SIGUSR1 => Got::Signal(Signal::Unpair),
        libc::SIGUSR2 => Got::Signal(Signal::StoreChanged),
        libc::SIGCHLD => Got::Child,
        _ => Got::Nothing,
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

    /// Takes back the signal that came while sleeping (the caller handles it instead).
    pub fn take_got(&self) -> Option<Signal> {
        self.got.take()
    }

    /// Lends the signals (between two sleeps: other work that waits for a child, say).
    pub fn with_signals<R>(&self, f: impl FnOnce(&mut Signals) -> R) -> R {
        f(&mut self.signals.borrow_mut())
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
    fn sleep_until_wakes_for_the_deadline_and_for_a_signal() {
        let mut s = Signals::block().unwrap();
        let start = crate::clock::boottime();
        let woke = s.sleep_until(start + Duration::from_millis(30)).unwrap();
        assert_eq!(woke, Woke::Deadline);
        assert!(crate::clock::boottime() - start >= Duration::from_millis(30));
        // A deadline already past returns at once.
        assert_eq!(s.sleep_until(Duration::ZERO).unwrap(), Woke::Deadline);
        raise_here(libc::SIGUSR1);
        let far = crate::clock::boottime() + Duration::from_secs(60);
        assert_eq!(s.sleep_until(far).unwrap(), Woke::Signal(Signal::Unpair));
        s.defer(Signal::Reload);
        assert_eq!(s.sleep_until(far).unwrap(), Woke::Signal(Signal::Reload));
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
