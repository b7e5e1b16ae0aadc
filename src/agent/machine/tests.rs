//! Unit tests of `agent::machine`.

use super::*;
use crate::clock::Clock;
use crate::clock::fake::FakeClock;

const S: fn(u64) -> Duration = Duration::from_secs;

fn policy() -> Policy {
    Policy {
        can_probe: false,
        ..Policy::default()
    }
}

fn token(secs: u64) -> TokenInfo {
    TokenInfo {
        remaining: Some(S(secs)),
        lifetime: Some(S(secs)),
    }
}

/// A test harness: the machine, a fake clock, and a log of effects.
struct H {
    a: Agent,
    clock: FakeClock,
    wall_ok: bool,
    effects: Vec<Effect>,
}

impl H {
    fn new(policy: Policy, mode: Mode) -> H {
        H {
            a: Agent::new(policy, mode, 7),
            clock: FakeClock::new(),
            wall_ok: true,
            effects: Vec::new(),
        }
    }
    fn step(&mut self, input: Input) -> Next {
        let s = self.a.step(input, self.clock.now(), self.wall_ok);
        self.effects.extend(s.effects);
        s.next
    }
    /// Sleeps through a Wait (like the driver) and ticks.
    fn wait(&mut self, next: Next) -> Next {
        let Next::Wait(until) = next else {
            panic!("expected a wait, got {next:?}")
        };
        let now = self.clock.now();
        assert!(until > now, "wait into the past: busy loop");
        self.clock.sleep(until - now);
        self.step(Input::Tick)
    }
    fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
    fn notes(&mut self) -> Vec<Note> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Notify(n) => Some(n),
                _ => None,
            })
            .collect()
    }
}

fn paired_holder(p: Policy, lifetime: u64) -> (H, Next) {
    let mut h = H::new(p, Mode::DeviceFlow);
    assert_eq!(h.step(Input::Tick), Next::LoadStore);
    let next = h.step(Input::Store(Loaded::Tokens(token(lifetime))));
    h.take();
    (h, next)
}

#[test]
fn unpaired_start_pairs_shows_paired_then_releases_the_display() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    assert_eq!(h.step(Input::Tick), Next::LoadStore);
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
    assert_eq!(
        h.take(),
        vec![
            Effect::Unpublish,
            Effect::Notify(Note::PairingRequired("not paired".into()))
        ]
    );
    let next = h.step(Input::Pairing(PairingEnd::Paired(token(3600))));
    assert_eq!(
        h.take(),
        vec![
            Effect::Publish,
            Effect::ShowPaired,
            Effect::Notify(Note::Paired)
        ]
    );
    // First wake: the paired screen's end (10 s), not the renewal.
    let start = h.clock.now();
    let next = h.wait(next);
    assert_eq!(h.clock.now() - start, S(10));
    assert_eq!(h.take(), vec![Effect::ReleaseDisplay]);
    // Then the renewal: fleets pair in the same hour, so the first renewal of a new pairing is
    // anywhere from a quarter of the usable time (3600 − 300 s) on: 825 .. 3300 s.
    let next = h.wait(next);
    let at = h.clock.now() - start;
    assert!(at >= S(825) && at <= S(3300), "{at:?}");
    let Next::Renew(Want::AtMost(left)) = next else {
        panic!("{next:?}")
    };
    assert!(left >= S(300) && left <= S(2776), "{left:?}");
}

/// How long after `start` (which brings it to a hold on a token obtained then) each of `n`
/// agents (seeds 1..=n) renews.
fn first_renewals(n: u64, start: impl Fn(&mut H) -> Next) -> Vec<Duration> {
    (1..=n)
        .map(|seed| {
            let mut h = H::new(policy(), Mode::DeviceFlow);
            h.a = Agent::new(policy(), Mode::DeviceFlow, seed * 7919);
            let t0 = h.clock.now();
            let mut next = start(&mut h);
            while !matches!(next, Next::Renew(_)) {
                next = h.wait(next);
            }
            h.clock.now() - t0
        })
        .collect()
}

fn spread_of(times: &[Duration]) -> Duration {
    let lo = times.iter().min().copied().unwrap_or_default();
    let hi = times.iter().max().copied().unwrap_or_default();
    hi - lo
}

/// Renewals of hour-long tokens spread wide: from a quarter of the usable time (3600 − 300 s)
/// on, 825 .. 3300 s, and well apart.
#[track_caller]
fn assert_spread_wide(dues: &[Duration]) {
    assert!(
        dues.iter().all(|d| *d >= S(825) && *d <= S(3300)),
        "{dues:?}"
    );
    assert!(spread_of(dues) > S(1500), "{dues:?}");
}

/// Renewals of hour-long tokens with the usual jitter: 300 s before expiry plus up to 60 s.
#[track_caller]
fn assert_usual_jitter(dues: &[Duration]) {
    assert!(
        dues.iter().all(|d| *d >= S(3240) && *d <= S(3300)),
        "{dues:?}"
    );
}

#[test]
fn a_fleet_paired_in_the_same_second_renews_spread_over_the_hour_not_in_one_wave() {
    let dues = first_renewals(40, |h| {
        h.step(Input::Tick);
        h.step(Input::Store(Loaded::Nothing));
        h.step(Input::Pairing(PairingEnd::Paired(token(3600))))
    });
    assert_spread_wide(&dues);
}

#[test]
fn an_ordinary_restart_with_a_valid_token_keeps_the_usual_jitter() {
    let dues = first_renewals(40, |h| {
        h.step(Input::Tick);
        h.step(Input::Store(Loaded::Tokens(token(3600))))
    });
    assert_usual_jitter(&dues);
}

#[test]
fn a_token_found_expired_at_start_is_replaced_at_once_and_its_successor_spread_wide() {
    let dues = first_renewals(40, |h| {
        h.step(Input::Tick);
        let expired = TokenInfo {
            remaining: Some(Duration::ZERO),
            lifetime: Some(S(3600)),
        };
        let next = h.step(Input::Store(Loaded::Tokens(expired)));
        assert!(matches!(next, Next::Renew(_)), "{next:?}");
        h.step(Input::Renewal(RenewalEnd::New(token(3600))))
    });
    // Power came back for the whole fleet in one minute: without the spread every device
    // would renew within the same minute an hour later, and every hour after.
    assert_spread_wide(&dues);
}

#[test]
fn a_pairing_by_another_command_is_spread_wide_and_a_reload_keeps_the_usual_jitter() {
    // `devauth pair` run on a whole fleet by its provisioning script, each agent told by
    // SIGUSR2: the same herd as the agent's own pairings.
    let paired_by_command = first_renewals(40, |h| {
        h.step(Input::Tick);
        h.step(Input::Store(Loaded::Nothing));
        h.step(Input::Pairing(PairingEnd::Interrupted(
            Signal::StoreChanged,
        )));
        h.step(Input::Store(Loaded::Tokens(token(3600))))
    });
    assert_spread_wide(&paired_by_command);
    // SIGHUP re-reads the same tokens: nothing new was obtained.
    let reloaded = first_renewals(40, |h| {
        h.step(Input::Tick);
        h.step(Input::Store(Loaded::Tokens(token(3600))));
        h.step(Input::Signal(Signal::Reload));
        h.step(Input::Reloaded(None));
        h.step(Input::Store(Loaded::Tokens(token(3600))))
    });
    assert_usual_jitter(&reloaded);
}

#[test]
fn a_refused_renewal_waits_out_retry_after_then_a_random_point_of_the_backoff_cap() {
    let mut waits = Vec::new();
    for seed in 1..=20 {
        let mut h = H::new(policy(), Mode::DeviceFlow);
        h.a = Agent::new(policy(), Mode::DeviceFlow, seed);
        h.step(Input::Tick);
        let next = h.step(Input::Store(Loaded::Tokens(token(3600))));
        let next = h.wait(next);
        assert!(matches!(next, Next::Renew(_)), "{next:?}");
        h.take();
        let refused = refused(503, 600);
        let Next::Wait(until) = h.step(Input::Renewal(refused)) else {
            panic!()
        };
        let wait = until - h.clock.now();
        assert!(wait >= S(600) && wait < S(900), "{wait:?}");
        let notes = h.notes();
        assert!(
            matches!(&notes[..], [Note::Retrying { in_secs, .. }] if *in_secs >= 600),
            "{notes:?}"
        );
        // Nothing is asked of the provider before then.
        h.clock.advance(S(599));
        assert_eq!(h.step(Input::Tick), Next::Wait(until));
        waits.push(wait);
    }
    // Devices told the same Retry-After at the same moment come back spread over the cap.
    assert!(spread_of(&waits) > S(150), "{waits:?}");
}

#[test]
fn a_renewal_refused_for_hours_is_retried_once_per_cap_late_in_it_never_later() {
    // A provider whose limit is below the fleet's needs refuses most requests for as long as
    // it lasts: the device keeps asking once per backoff cap (so it is served within one cap
    // of the limit being lifted), in the cap's last tenth from the fourth refusal in a row on.
    for seed in 1..=10 {
        let mut h = H::new(policy(), Mode::DeviceFlow);
        h.a = Agent::new(policy(), Mode::DeviceFlow, seed);
        h.step(Input::Tick);
        let next = h.step(Input::Store(Loaded::Tokens(token(3600))));
        let mut next = h.wait(next);
        for refusal in 1..=40 {
            assert!(matches!(next, Next::Renew(_)), "{next:?}");
            let refused = refused(429, 1);
            let Next::Wait(until) = h.step(Input::Renewal(refused)) else {
                panic!()
            };
            let wait = until - h.clock.now();
            assert!(
                wait >= S(1) && wait <= S(301),
                "refusal {refusal}: {wait:?}"
            );
            if refusal > 3 {
                assert!(wait >= S(271), "refusal {refusal}: {wait:?}");
            }
            next = h.wait(Next::Wait(until));
        }
    }
}

#[test]
fn a_renewal_delayed_by_an_outage_puts_the_device_back_in_its_place_afterwards() {
    let (mut h, next) = paired_holder(policy(), 3600);
    let next = h.wait(next);
    let due = h.clock.now();
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    // 503 with Retry-After: 600, then success.
    let refused = refused(503, 600);
    let next = h.step(Input::Renewal(refused));
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    let late = h.clock.now() - due;
    let Next::Wait(again) = h.step(Input::Renewal(RenewalEnd::New(token(3600)))) else {
        panic!()
    };
    // Without the set-back it would be `late` later than one period after `due`, in the middle
    // of the devices due then; with it the device keeps its place (± the usual jitter).
    let period = again - (due + late);
    assert!(
        period + late >= S(3240) && period + late <= S(3300),
        "{period:?} + {late:?}"
    );
}

#[test]
fn paired_screen_zero_releases_at_once() {
    let mut h = H::new(
        Policy {
            paired_screen: Duration::ZERO,
            ..policy()
        },
        Mode::DeviceFlow,
    );
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Nothing));
    h.take();
    h.step(Input::Pairing(PairingEnd::Paired(token(3600))));
    assert!(h.take().contains(&Effect::ReleaseDisplay));
}

#[test]
fn margin_is_capped_at_half_a_short_lifetime_and_jitter_is_bounded() {
    for seed in 0..50 {
        let mut a = Agent::new(policy(), Mode::DeviceFlow, seed);
        let now = S(1000);
        a.step(Input::Tick, now, true);
        let s = a.step(Input::Store(Loaded::Tokens(token(2))), now, true);
        let Next::Wait(due) = s.next else {
            panic!("{:?}", s.next)
        };
        // 2 s token: margin 1 s, jitter ≤ 0.2 s → renew 0.8..1.0 s after obtaining.
        let after = due - now;
        assert!(
            after >= Duration::from_millis(800) && after <= S(1),
            "{after:?}"
        );
        let State::Holding(h) = a.state() else {
            panic!()
        };
        // The renewal check (threshold + slack) stays below the lifetime: a token someone
        // else just renewed is never renewed again.
        assert!(h.threshold + h.slack < S(2), "{:?}", h.threshold + h.slack);
    }
}

#[test]
fn several_renewals_in_a_row() {
    let (mut h, mut next) = paired_holder(policy(), 2);
    for _ in 0..5 {
        next = h.wait(next);
        assert!(matches!(next, Next::Renew(Want::AtMost(_))), "{next:?}");
        next = h.step(Input::Renewal(RenewalEnd::New(token(2))));
        assert_eq!(
            h.take(),
            vec![Effect::Publish, Effect::Notify(Note::Refreshed(token(2)))]
        );
    }
}

#[test]
fn failures_back_off_exponentially_with_jitter_capped_and_reset_after_success() {
    let (mut h, next) = paired_holder(policy(), 3600);
    let mut next = h.wait(next);
    let mut delays = Vec::new();
    for i in 0..12 {
        assert!(matches!(next, Next::Renew(_)), "{i}: {next:?}");
        let before = h.clock.now();
        next = h.step(Input::Renewal(RenewalEnd::failed("down")));
        let notes = h.notes();
        assert!(
            matches!(&notes[..], [Note::Retrying { reason, .. }] if reason == "down"),
            "{notes:?}"
        );
        next = h.wait(next);
        delays.push(h.clock.now() - before);
    }
    // Base 1 s doubling: attempt n waits in [2^n/2, 2^n] s, capped at 300 s.
    for (n, d) in delays.iter().enumerate() {
        let full = S(1 << n).min(S(300));
        assert!(*d >= full / 2 && *d <= full, "attempt {n}: {d:?}");
    }
    // Success resets the backoff and schedules from the new token: after failures that held
    // the device back for over half an hour, a quarter of the usable time (825 s) early.
    let before = h.clock.now();
    next = h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    h.take();
    let next2 = h.wait(next);
    let renewed_after = h.clock.now() - before;
    assert!(
        renewed_after >= S(2415) && renewed_after <= S(2475),
        "{renewed_after:?}"
    );
    assert!(matches!(next2, Next::Renew(_)));
    let next3 = h.step(Input::Renewal(RenewalEnd::failed("down")));
    let before = h.clock.now();
    h.wait(next3);
    assert!(h.clock.now() - before <= S(1));
}

#[test]
fn transient_failures_never_lead_to_pairing() {
    let (mut h, next) = paired_holder(policy(), 60);
    let mut next = h.wait(next);
    for _ in 0..200 {
        assert!(matches!(next, Next::Renew(_)), "{next:?}");
        next = h.step(Input::Renewal(RenewalEnd::failed("x")));
        assert!(matches!(next, Next::Wait(_)));
        next = h.wait(next);
    }
    assert!(!h.take().iter().any(|e| matches!(
        e,
        Effect::Unpublish | Effect::Notify(Note::PairingRequired(_))
    )));
}

#[test]
fn grant_gone_goes_back_to_pairing_at_once() {
    let (mut h, next) = paired_holder(policy(), 3600);
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)));
    let next = h.step(Input::Renewal(RenewalEnd::Gone("invalid_grant".into())));
    assert_eq!(next, Next::Pair);
    assert_eq!(
        h.take(),
        vec![
            Effect::Unpublish,
            Effect::Notify(Note::PairingRequired("invalid_grant".into()))
        ]
    );
    // A second pairing works like the first.
    let next = h.step(Input::Pairing(PairingEnd::Paired(token(3600))));
    assert!(matches!(next, Next::Wait(_)));
    assert!(h.take().contains(&Effect::Notify(Note::Paired)));
}

/// Started on a store whose access token expired: the renewal is asked for at once.
fn expired_at_start() -> H {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    let expired = TokenInfo {
        remaining: Some(Duration::ZERO),
        lifetime: Some(S(3600)),
    };
    let next = h.step(Input::Store(Loaded::Tokens(expired)));
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    h
}

#[test]
fn an_expired_stored_token_is_renewed_at_once_and_published_after() {
    let mut h = expired_at_start();
    assert!(h.take().is_empty());
    h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    assert_eq!(h.take()[0], Effect::Publish);
}

#[test]
fn resume_after_expiry_renews_at_once() {
    let (mut h, next) = paired_holder(policy(), 3600);
    assert!(matches!(next, Next::Wait(_)));
    // Suspended for two hours: the driver notices the boottime jump and ticks.
    h.clock.advance(S(7200));
    let next = h.step(Input::Tick);
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    // A tick before the due time just waits again.
    let (mut h, next) = paired_holder(policy(), 3600);
    h.clock.advance(S(5));
    assert_eq!(h.step(Input::Tick), next);
}

#[test]
fn a_renewal_that_changes_nothing_does_not_busy_loop() {
    let (mut h, next) = paired_holder(policy(), 3600);
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)));
    // The store says the token is fine after all (e.g. remaining just above the check).
    let next = h.step(Input::Renewal(RenewalEnd::Current(TokenInfo {
        remaining: Some(S(250)),
        lifetime: Some(S(3600)),
    })));
    let Next::Wait(until) = next else {
        panic!("{next:?}")
    };
    assert!(until >= h.clock.now() + MIN_RECHECK);
}

#[test]
fn another_process_renewing_first_reschedules_from_its_token() {
    let (mut h, next) = paired_holder(policy(), 2);
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)));
    let next = h.step(Input::Renewal(RenewalEnd::New(token(2))));
    assert!(h.take().contains(&Effect::Publish));
    let Next::Wait(until) = next else { panic!() };
    assert!(until - h.clock.now() >= Duration::from_millis(800));
}

#[test]
fn pairing_waits_for_network_time_showing_it_once() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.wall_ok = false;
    h.step(Input::Tick);
    let mut next = h.step(Input::Store(Loaded::Nothing));
    let fx = h.take();
    assert!(fx.contains(&Effect::ShowWaitingForClock), "{fx:?}");
    assert!(fx.contains(&Effect::Notify(Note::WaitingForClock)));
    for _ in 0..10 {
        assert_eq!(next, Next::Wait(h.clock.now() + S(2)));
        next = h.wait(next);
        assert!(h.take().is_empty());
    }
    h.wall_ok = true;
    h.clock.advance(S(2));
    assert_eq!(h.step(Input::Tick), Next::Pair);
}

#[test]
fn renewal_waits_for_network_time_too() {
    let (mut h, next) = paired_holder(policy(), 3600);
    h.wall_ok = false;
    let next = h.wait(next);
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    assert_eq!(h.notes(), vec![Note::WaitingForClock]);
    let next = h.wait(next);
    assert!(h.notes().is_empty());
    h.wall_ok = true;
    assert!(matches!(h.wait(next), Next::Renew(_)));
}

#[test]
fn stop_signal_exits_and_blanks_a_code_on_screen() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Nothing));
    h.take();
    let next = h.step(Input::Pairing(PairingEnd::Interrupted(Signal::Terminate)));
    assert_eq!(next, Next::Exit);
    assert_eq!(h.take(), vec![Effect::BlankDisplay]);
    assert_eq!(h.step(Input::Tick), Next::Exit);
    // While holding (display already handed back): just exit.
    let (mut h, _) = paired_holder(policy(), 3600);
    assert_eq!(h.step(Input::Signal(Signal::Interrupt)), Next::Exit);
    assert!(h.take().is_empty());
}

#[test]
fn reload_starts_over_from_the_store_with_the_new_policy() {
    let (mut h, _) = paired_holder(policy(), 3600);
    assert_eq!(h.step(Input::Signal(Signal::Reload)), Next::Reload);
    let p = Policy {
        refresh_margin: S(10),
        ..policy()
    };
    assert_eq!(h.step(Input::Reloaded(Some(p.clone()))), Next::LoadStore);
    assert_eq!(h.a.policy(), &p);
    let next = h.step(Input::Store(Loaded::Tokens(token(3600))));
    let Next::Wait(until) = next else { panic!() };
    assert!(until - h.clock.now() >= S(3588));
    // SIGHUP during pairing: pairing restarts after the reload.
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Nothing));
    let next = h.step(Input::Pairing(PairingEnd::Interrupted(Signal::Reload)));
    assert_eq!(next, Next::Reload);
    assert_eq!(h.step(Input::Reloaded(None)), Next::LoadStore);
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
}

#[test]
fn usr1_unpairs_then_pairs_again() {
    let (mut h, _) = paired_holder(policy(), 3600);
    assert_eq!(h.step(Input::Signal(Signal::Unpair)), Next::Unpair);
    let next = h.step(Input::Unpaired { revoked: true });
    assert_eq!(next, Next::Pair);
    assert_eq!(
        h.take(),
        vec![
            Effect::Unpublish,
            Effect::Notify(Note::Unpaired {
                revoked: Some(true)
            }),
            Effect::Unpublish,
            Effect::Notify(Note::PairingRequired("unpaired".into()))
        ]
    );
    // SIGUSR1 while pairing: nothing to unpair.
    let next = h.step(Input::Signal(Signal::Unpair));
    assert_eq!(next, Next::Pair);
}

#[test]
fn a_yielded_pairing_is_still_due_without_a_note_or_a_pause() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
    h.notes();
    assert_eq!(h.step(Input::Pairing(PairingEnd::Yielded)), Next::Pair);
    assert!(h.notes().is_empty());
}

#[test]
fn denied_or_failed_pairing_pauses_then_pairs_again() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Nothing));
    let next = h.step(Input::Pairing(PairingEnd::Denied));
    assert_eq!(next, Next::Wait(h.clock.now() + S(30)));
    assert!(h.notes().contains(&Note::Denied));
    assert_eq!(h.wait(next), Next::Pair);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let before = h.clock.now();
        let next = h.step(Input::Pairing(PairingEnd::Failed("invalid_client".into())));
        assert_eq!(h.wait(next), Next::Pair);
        waits.push(h.clock.now() - before);
    }
    assert!(waits[0] >= S(5) && waits[0] <= S(10), "{waits:?}");
    assert!(waits.iter().all(|w| *w <= S(600)), "{waits:?}");
    assert!(waits[7] >= S(300), "{waits:?}");
}

#[test]
fn probe_401_twice_after_it_worked_means_gone() {
    let p = Policy {
        can_probe: true,
        ..policy()
    };
    let mut h = H::new(p, Mode::DeviceFlow);
    h.step(Input::Tick);
    assert_eq!(
        h.step(Input::Store(Loaded::Tokens(token(3600)))),
        Next::Probe
    );
    let next = h.step(Input::Probe(ProbeEnd::Accepted));
    assert!(matches!(next, Next::Wait(_)));
    // Renewal, then the probe after it is refused: replace the token once.
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(Want::AtMost(_))));
    assert_eq!(
        h.step(Input::Renewal(RenewalEnd::New(token(3600)))),
        Next::Probe
    );
    assert_eq!(
        h.step(Input::Probe(ProbeEnd::Rejected)),
        Next::Renew(Want::Replace)
    );
    assert_eq!(
        h.step(Input::Renewal(RenewalEnd::New(token(3600)))),
        Next::Probe
    );
    h.take();
    assert_eq!(h.step(Input::Probe(ProbeEnd::Rejected)), Next::Pair);
    let fx = h.take();
    assert_eq!(fx.first(), Some(&Effect::ForgetTokens), "{fx:?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Notify(Note::PairingRequired(_))))
    );
}

#[test]
fn probe_recovers_when_the_replacement_is_accepted() {
    let mut h = H::new(
        Policy {
            can_probe: true,
            ..policy()
        },
        Mode::DeviceFlow,
    );
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Tokens(token(3600))));
    h.step(Input::Probe(ProbeEnd::Accepted));
    // A refused probe outside a renewal (recheck) → replace → accepted: still paired.
    let State::Holding(mut hold) = h.a.state().clone() else {
        panic!("{:?}", h.a.state())
    };
    hold.probe_pending = true;
    h.a.state = State::Holding(hold);
    assert_eq!(h.step(Input::Tick), Next::Probe);
    assert_eq!(
        h.step(Input::Probe(ProbeEnd::Rejected)),
        Next::Renew(Want::Replace)
    );
    assert_eq!(
        h.step(Input::Renewal(RenewalEnd::New(token(3600)))),
        Next::Probe
    );
    assert!(matches!(
        h.step(Input::Probe(ProbeEnd::Accepted)),
        Next::Wait(_)
    ));
    let State::Holding(hold) = h.a.state() else {
        panic!()
    };
    assert!(!hold.rejected);
}

#[test]
fn a_probe_that_never_worked_is_given_up_not_believed() {
    let p = Policy {
        can_probe: true,
        ..policy()
    };
    let mut h = H::new(p, Mode::DeviceFlow);
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Tokens(token(3600))));
    assert_eq!(h.notes(), vec![Note::PairedAtStart]);
    let next = h.step(Input::Probe(ProbeEnd::Rejected));
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    assert_eq!(h.notes(), vec![Note::ProbeUnusable]);
    // And never probes again, even after renewals.
    let renew = h.wait(next);
    assert!(matches!(renew, Next::Renew(_)), "{renew:?}");
    let next = h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
}

#[test]
fn a_token_that_never_expires_is_rechecked_hourly_and_401_without_renewal_is_gone() {
    let p = Policy {
        can_probe: true,
        ..policy()
    };
    let mut h = H::new(p, Mode::DeviceFlow);
    h.step(Input::Tick);
    let forever = TokenInfo {
        remaining: None,
        lifetime: None,
    };
    assert_eq!(h.step(Input::Store(Loaded::Tokens(forever))), Next::Probe);
    let next = h.step(Input::Probe(ProbeEnd::Accepted));
    assert_eq!(next, Next::Wait(h.clock.now() + S(3600)));
    assert_eq!(h.wait(next), Next::Probe);
    assert_eq!(
        h.step(Input::Probe(ProbeEnd::Rejected)),
        Next::Renew(Want::Replace)
    );
    // GitHub OAuth app: nothing to renew with.
    h.take();
    let next = h.step(Input::Renewal(RenewalEnd::Current(forever)));
    assert_eq!(next, Next::Pair);
    assert!(h.take().contains(&Effect::ForgetTokens));
    // Without probing, a token that never expires is simply held.
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    let next = h.step(Input::Store(Loaded::Tokens(forever)));
    assert_eq!(next, Next::Wait(h.clock.now() + IDLE));
}

#[test]
fn service_account_obtains_without_pairing_and_never_pairs() {
    let mut h = H::new(policy(), Mode::ServiceAccount);
    h.step(Input::Tick);
    let next = h.step(Input::Store(Loaded::Nothing));
    assert!(matches!(next, Next::Renew(Want::AtMost(_))), "{next:?}");
    assert!(h.take().is_empty());
    let next = h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    assert!(h.take().contains(&Effect::Publish));
    assert!(matches!(h.wait(next), Next::Renew(_)));
    // Refused assertion (wrong key...): retry with backoff, no pairing.
    let next = h.step(Input::Renewal(RenewalEnd::Gone("refused".into())));
    assert!(matches!(next, Next::Wait(_)));
    assert!(matches!(&h.notes()[..], [Note::Retrying { .. }]));
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)));
    h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    // SIGUSR1: drop the cached token and get a new one.
    assert_eq!(h.step(Input::Signal(Signal::Unpair)), Next::Unpair);
    h.take();
    let next = h.step(Input::Unpaired { revoked: false });
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    assert!(!h.take().iter().any(|e| matches!(
        e,
        Effect::Notify(Note::PairingRequired(_)) | Effect::ShowPaired
    )));
}

#[test]
fn unexpected_inputs_keep_the_state() {
    let (mut h, next) = paired_holder(policy(), 3600);
    let before = h.a.state().clone();
    assert_eq!(h.step(Input::Unpaired { revoked: true }), next);
    assert_eq!(h.a.state(), &before);
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    assert_eq!(h.step(Input::Probe(ProbeEnd::Accepted)), Next::LoadStore);
}

#[test]
fn the_state_is_announced_at_start_after_the_token_file() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    assert_eq!(h.step(Input::Tick), Next::LoadStore);
    let next = h.step(Input::Store(Loaded::Tokens(token(3600))));
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    // The file first: a hook hearing `paired` reads it.
    assert_eq!(
        h.take(),
        vec![Effect::Publish, Effect::Notify(Note::PairedAtStart)]
    );
    // A reload (SIGHUP) reads the store again quietly.
    assert_eq!(h.step(Input::Signal(Signal::Reload)), Next::Reload);
    assert_eq!(h.step(Input::Reloaded(None)), Next::LoadStore);
    h.step(Input::Store(Loaded::Tokens(token(3000))));
    assert_eq!(h.take(), vec![Effect::Publish]);
}

#[test]
fn an_expired_token_at_start_is_announced_once_renewed() {
    let mut h = expired_at_start();
    assert_eq!(h.take(), vec![], "no file, no claim before the renewal");
    // A failed attempt says only that it retries.
    let next = h.step(Input::Renewal(RenewalEnd::failed("down")));
    assert!(matches!(h.notes().as_slice(), [Note::Retrying { .. }]));
    let next = h.wait(next);
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    assert_eq!(
        h.take(),
        vec![Effect::Publish, Effect::Notify(Note::PairedAtStart)]
    );
    // Later renewals are `refreshed` again.
    let State::Holding(hold) = h.a.state().clone() else {
        panic!("{:?}", h.a.state())
    };
    let next = h.wait(Next::Wait(hold.due.unwrap()));
    assert!(matches!(next, Next::Renew(_)), "{next:?}");
    h.step(Input::Renewal(RenewalEnd::New(token(3600))));
    assert!(matches!(h.notes().as_slice(), [Note::Refreshed(_)]));
}

#[test]
fn a_store_emptied_by_unpair_is_noticed_on_sigusr2() {
    let (mut h, next) = paired_holder(policy(), 3600);
    assert!(matches!(next, Next::Wait(_)));
    assert_eq!(h.step(Input::Signal(Signal::StoreChanged)), Next::LoadStore);
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
    assert_eq!(
        h.take(),
        vec![
            Effect::Unpublish,
            Effect::Notify(Note::Unpaired { revoked: None }),
            Effect::Unpublish,
            Effect::Notify(Note::PairingRequired("unpaired".into())),
        ]
    );
}

#[test]
fn a_store_paired_by_another_command_stops_pairing_and_is_held() {
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
    h.take();
    let next = h.step(Input::Pairing(PairingEnd::Interrupted(
        Signal::StoreChanged,
    )));
    assert_eq!(next, Next::LoadStore);
    assert_eq!(h.take(), vec![Effect::BlankDisplay]);
    let next = h.step(Input::Store(Loaded::Tokens(token(3600))));
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    assert_eq!(
        h.take(),
        vec![Effect::Publish, Effect::Notify(Note::Paired)]
    );
    // Not paired before the signal, nothing after it: pairing again, without `unpaired`.
    let mut h = H::new(policy(), Mode::DeviceFlow);
    h.step(Input::Tick);
    h.step(Input::Store(Loaded::Nothing));
    h.step(Input::Pairing(PairingEnd::Interrupted(
        Signal::StoreChanged,
    )));
    h.take();
    assert_eq!(h.step(Input::Store(Loaded::Nothing)), Next::Pair);
    assert!(!h.notes().iter().any(|n| matches!(n, Note::Unpaired { .. })));
}

/// The provider refused a renewal with `status` and `Retry-After: retry_after` seconds.
fn refused(status: u16, retry_after: u64) -> RenewalEnd {
    RenewalEnd::Failed {
        reason: format!("HTTP {status}"),
        cause: Cause::Refused {
            retry_after: Some(S(retry_after)),
        },
    }
}
