//! `devauth run`'s one loop over every account of the config (`[accounts.NAME]`; a file
//! without them is the one account `default`). Each account has its own machine, store, token
//! file and hook ([`Slot`]); they share the signals, the screen, `--json` and the token
//! service. The loop lets every account do what it asks for until it waits, then pairs the
//! accounts that need it one at a time (one pairing screen), and sleeps until the earliest
//! deadline or a signal, which every account gets.
//!
//! A pairing can wait for a person for a long time: while it does, its waits are lent to the
//! other accounts ([`super::pairing_clock::PairingClock`]), which renew, probe and publish as usual but draw nothing
//! (the code stays on screen); one that needs pairing too waits its turn.
//!
//! Sleeping is waiting for a signal: SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 (and SIGCHLD,
//! for the hook) are blocked and taken by [`Signals::sleep_until`], which also ends at the
//! deadline on CLOCK_BOOTTIME (suspend counts) and when the wall clock is set (NTP stepped
//! it): an idle agent has no wake-up between renewals. On kernels without signalfd or a
//! CLOCK_BOOTTIME timerfd it sleeps in `sigtimedwait` chunks of at most [`WAIT_CHUNK`],
//! re-reading CLOCK_BOOTTIME after each: a jump much larger than the chunk (a resume) or a
//! wall clock that moved differently (a step) ticks the machines at once.

use super::service::{Service, Shared, Slot, mode_of};
use super::{Input, Mode, Next, PairingEnd};
use crate::clock::{self, Instant};
use crate::config::Config;
use crate::error::Error;
use crate::screen::{NoScreen, Screen};
use crate::setup;
use crate::signals::{Signal, Signals, Woke};
use crate::socket::TokenService;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest single sleep where there is no timerfd: after a resume the agent notices the
/// boottime jump within this.
pub const WAIT_CHUNK: Duration = Duration::from_secs(10);
/// Boottime or wall-clock movement beyond the chunk that counts as a resume or clock jump.
const JUMP: Duration = Duration::from_secs(3);

/// Runs the agent for every account of the config until SIGTERM/SIGINT. `config_path` is
/// re-read on SIGHUP.
pub fn run(config_path: &Path, config: Config, json: bool) -> Result<(), Error> {
    // First, before anything could start a thread: the signals are ours to wait for.
    let mut signals =
        Signals::block().map_err(|e| Error::Io(format!("blocking signals for the agent: {e}")))?;
    // Shared with the token service's threads.
    let configs: Vec<Arc<Config>> = if config.account.several() {
        Config::load_accounts(config_path)?
            .into_iter()
            .map(Arc::new)
            .collect()
    } else {
        vec![Arc::new(config)]
    };
    // Each takes its store's agent lock: one agent per store.
    let mut slots = configs
        .iter()
        .map(|c| Slot::new(c.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let tokens = TokenService::start(&configs)?;
    let (mut screen, language) = open_screen(&configs, json)?;
    let mode = |c: &Config| match mode_of(c) {
        Mode::DeviceFlow => "device flow",
        Mode::ServiceAccount => "service account",
    };
    let accounts: Vec<String> = slots
        .iter()
        .map(|s| {
            let c = &s.config;
            let name = if c.account.several() {
                format!("account {}: ", c.account.name)
            } else {
                String::new()
            };
            format!("{name}{}, token file {}", mode(c), s.token_file().display())
        })
        .collect();
    eprintln!(
        "devauth: agent started (pid {}, {}, {})",
        std::process::id(),
        accounts.join("; "),
        tokens.as_ref().map_or("no socket", |t| t.describe())
    );
    let mut driver = Driver {
        // So that the first turn is the first account's (default first, then by name).
        last_paired: slots.len().saturating_sub(1),
        config_path,
        json,
        signals: &mut signals,
        tokens: tokens.as_ref(),
        screen: &mut screen,
        language,
    };
    driver.drive(&mut slots);
    if let Some(t) = tokens {
        t.stop();
    }
    eprintln!("devauth: agent stopped");
    Ok(())
}

/// The screen every account pairs on (and its language): none when no account has a person to
/// show it to.
fn open_screen(configs: &[Arc<Config>], json: bool) -> Result<(Box<dyn Screen>, String), Error> {
    match configs
        .iter()
        .find(|c| c.provider.grant.jwt_bearer().is_none())
    {
        Some(c) => setup::open_screen(c, json),
        None => Ok((Box::new(NoScreen), "en".to_string())), // no person, no screen
    }
}

struct Driver<'x> {
    /// The account that paired last: the next pairing is the next one in turn.
    last_paired: usize,
    config_path: &'x Path,
    json: bool,
    signals: &'x mut Signals,
    tokens: Option<&'x TokenService>,
    screen: &'x mut Box<dyn Screen>,
    /// The screen's language, named in the `code` event.
    language: String,
}

/// How a sleep ended.
enum Woken {
    /// The earliest deadline came: the accounts that are due go on.
    Due,
    /// A resume or a wall-clock step: every account looks again.
    Tick,
    Signal(Signal),
}

impl Driver<'_> {
    /// One account's steps, with the screen.
    fn service<'a>(&'a mut self, slot: &'a mut Slot) -> Service<'a> {
        Service {
            s: Shared {
                config_path: self.config_path,
                json: self.json,
                signals: &mut *self.signals,
                tokens: self.tokens,
                screen: Some(self.screen.as_mut()),
                language: &self.language,
            },
            a: slot,
        }
    }

    fn drive(&mut self, slots: &mut [Slot]) {
        for slot in slots.iter_mut() {
            self.service(slot).feed(Input::Tick);
        }
        loop {
            for slot in slots.iter_mut() {
                self.service(slot).advance();
            }
            if slots.iter().all(|s| s.next == Next::Exit) {
                return;
            }
            // In turn: an account whose code expired unapproved does not keep the others out.
            let n = slots.len();
            let turn = (1..=n)
                .map(|k| (self.last_paired + k) % n)
                .find(|&i| slots.get(i).is_some_and(|s| s.next == Next::Pair));
            if let Some(i) = turn {
                self.last_paired = i;
                self.pair(slots, i);
                continue;
            }
            let until = slots
                .iter()
                .filter_map(|s| match s.next {
                    Next::Wait(t) => Some(t),
                    _ => None,
                })
                .min();
            let Some(until) = until else {
                continue;
            };
            let input = match self.sleep(until) {
                Woken::Due => continue,
                Woken::Tick => Input::Tick,
                Woken::Signal(sig) => {
                    if sig == Signal::Reload {
                        self.reload_screen();
                    }
                    Input::Signal(sig)
                }
            };
            for slot in slots.iter_mut() {
                // SIGUSR2 (`unpair --account`, `pair --account --force`) is for the account
                // whose store changed; the others carry on as they were.
                let not_mine = input == Input::Signal(Signal::StoreChanged) && !slot.store_moved();
                if matches!(slot.next, Next::Wait(_)) && !not_mine {
                    self.service(slot).feed(input.clone());
                }
            }
        }
    }

    /// Pairs `slots[i]` on the screen while the others go on in its waits; a signal that ended
    /// the pairing reaches every account.
    fn pair(&mut self, slots: &mut [Slot], i: usize) {
        let (before, rest) = slots.split_at_mut(i);
        let Some((slot, after)) = rest.split_first_mut() else {
            return;
        };
        let (config_path, json, tokens) = (self.config_path, self.json, self.tokens);
        let language = self.language.clone();
        let mut background = |signals: &mut Signals, sig: Option<Signal>| {
            let mut waiting = false;
            for other in before.iter_mut().chain(after.iter_mut()) {
                let mut service = Service {
                    s: Shared {
                        config_path,
                        json,
                        signals: &mut *signals,
                        tokens,
                        screen: None,
                        language: &language,
                    },
                    a: other,
                };
                if sig.is_some() && service.a.store_moved() {
                    let input = match service.a.next {
                        Next::Wait(_) => Some(Input::Signal(Signal::StoreChanged)),
                        Next::Pair => Some(Input::Pairing(PairingEnd::Interrupted(
                            Signal::StoreChanged,
                        ))),
                        _ => None,
                    };
                    if let Some(input) = input {
                        service.feed(input);
                    }
                }
                service.advance();
                waiting |= other.next == Next::Pair;
            }
            waiting
        };
        let input = self.service(slot).pair(&mut background);
        let interrupted = match &input {
            Input::Pairing(PairingEnd::Interrupted(sig)) => Some(*sig),
            _ => None,
        };
        self.service(slot).feed(input);
        let Some(sig) = interrupted else {
            return;
        };
        for (j, other) in slots.iter_mut().enumerate() {
            let input = match other.next {
                _ if j == i => continue,
                _ if sig == Signal::StoreChanged && !other.store_moved() => continue,
                Next::Wait(_) => Input::Signal(sig),
                Next::Pair => Input::Pairing(PairingEnd::Interrupted(sig)),
                _ => continue,
            };
            self.service(other).feed(input);
        }
    }

    /// SIGHUP: the display settings may have changed (the accounts reload the rest).
    fn reload_screen(&mut self) {
        let config = match Config::load(self.config_path) {
            Ok(c) => Arc::new(c),
            Err(_) => return, // the accounts say why
        };
        match open_screen(&[config], self.json) {
            Ok((s, language)) => {
                *self.screen = s;
                self.language = language;
            }
            Err(e) => eprintln!("devauth: reload: keeping the screen: {e}"),
        }
    }

    /// Sleeps until `until` (boottime) or a signal; a wall-clock step (NTP, a resume) ticks
    /// early. No wake-up in between; where the kernel lacks signalfd or timerfd, in chunks.
    fn sleep(&mut self, until: Instant) -> Woken {
        if clock::boottime() >= until {
            return Woken::Due;
        }
        match self.signals.sleep_until(until) {
            Ok(Woke::Signal(sig)) => return Woken::Signal(sig),
            Ok(Woke::Deadline) => return Woken::Due,
            Ok(Woke::ClockSet) => return Woken::Tick,
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
            Err(e) => eprintln!("devauth: waiting in slices: no signalfd/timerfd ({e})"),
        }
        loop {
            let start = clock::boottime();
            if start >= until {
                return Woken::Due;
            }
            let chunk = (until - start).min(WAIT_CHUNK);
            let wall_start = clock::wall_now();
            if let Some(sig) = self.signals.wait(chunk) {
                return Woken::Signal(sig);
            }
            let slept = clock::boottime().saturating_sub(start);
            if slept > chunk + JUMP {
                eprintln!(
                    "devauth: resumed after {} s; checking the tokens",
                    slept.as_secs()
                );
                return Woken::Tick;
            }
            let wall_moved = clock::unix_secs(clock::wall_now()) - clock::unix_secs(wall_start);
            let drift = (i128::from(wall_moved) - i128::from(slept.as_secs())).unsigned_abs();
            if drift > u128::from(JUMP.as_secs()) {
                return Woken::Tick;
            }
        }
    }
}
