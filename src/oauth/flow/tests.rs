//! Unit tests of `oauth::flow`.

use super::*;
use crate::secret::Secret;

const S: fn(u64) -> Duration = Duration::from_secs;

fn auth(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: Secret::new("dc"),
        user_code: "WDJB-MJHT".into(),
        verification_uri: "https://example.com/device".into(),
        verification_uri_complete: None,
        expires_in,
        interval,
        message: None,
    }
}

fn err(code: &str) -> Input {
    Input::PollAnswered(PollAnswer::Error(OAuthError {
        error: code.into(),
        description: None,
        interval: None,
        status: None,
    }))
}

fn tokens() -> Input {
    Input::PollAnswered(PollAnswer::Tokens(TokenResponse {
        access_token: Secret::new("at"),
        token_type: "Bearer".into(),
        expires_in: Some(3600),
        refresh_token: None,
        scope: None,
        id_token: None,
    }))
}

fn transient() -> Input {
    Input::PollFailed(Failure::Transient {
        reason: "connection refused".into(),
        retry_after: None,
    })
}

/// A flow with a live code issued at t=100 s.
fn issued(interval: Option<u64>, expires_in: u64) -> (Flow, Step) {
    let f = Flow::new(Policy::default(), S(100), 42);
    let (f, s) = f.step(Input::Tick, S(100));
    assert_eq!(s.action, Action::RequestCode);
    f.step(Input::CodeIssued(auth(interval, expires_in)), S(100))
}

#[test]
fn first_poll_waits_the_interval() {
    let (_, s) = issued(Some(7), 600);
    assert_eq!(s.action, Action::WaitUntil(S(107)));
    assert!(matches!(
        s.events[0],
        Event::Code {
            interval: 7,
            expires_in: 600,
            renewed: false,
            ..
        }
    ));
}

#[test]
fn missing_interval_defaults_to_five_seconds() {
    let (_, s) = issued(None, 600);
    assert_eq!(s.action, Action::WaitUntil(S(105)));
}

#[test]
fn interval_and_lifetime_are_clamped() {
    let (_, s) = issued(Some(0), 600);
    assert_eq!(
        s.action,
        Action::WaitUntil(S(101)),
        "0 s interval clamped to 1 s"
    );
    let (_, s) = issued(Some(100_000), 600);
    assert_eq!(
        s.action,
        Action::WaitUntil(S(160)),
        "huge interval clamped to 60 s"
    );
    let (f, _) = issued(Some(5), u64::MAX);
    assert_eq!(f.live_code().unwrap().deadline, S(100 + 7200));
}

#[test]
fn tick_before_poll_time_keeps_waiting() {
    let (f, _) = issued(Some(5), 600);
    let (_, s) = f.step(Input::Tick, S(103));
    assert_eq!(s.action, Action::WaitUntil(S(105)));
}

#[test]
fn pending_keeps_the_same_interval() {
    let (f, _) = issued(Some(5), 600);
    let (f, s) = f.step(Input::Tick, S(105));
    assert_eq!(s.action, Action::Poll);
    let (f, s) = f.step(err("authorization_pending"), S(105));
    assert_eq!(s.events, vec![Event::Pending]);
    assert_eq!(s.action, Action::WaitUntil(S(110)));
    assert_eq!(f.live_code().unwrap().interval, S(5));
}

#[test]
fn slow_down_adds_five_seconds_for_all_later_polls() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(err("slow_down"), S(105));
    assert_eq!(s.events, vec![Event::SlowDown { interval: 10 }]);
    assert_eq!(s.action, Action::WaitUntil(S(115)));
    let (f, _) = f.step(Input::Tick, S(115));
    let (f, s) = f.step(err("authorization_pending"), S(115));
    assert_eq!(
        s.action,
        Action::WaitUntil(S(125)),
        "the slower pace sticks"
    );
    let (f, _) = f.step(Input::Tick, S(125));
    let (_, s) = f.step(err("slow_down"), S(125));
    assert_eq!(
        s.events,
        vec![Event::SlowDown { interval: 15 }],
        "cumulative"
    );
}

#[test]
fn slow_down_takes_the_servers_interval_when_larger() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let answer = Input::PollAnswered(PollAnswer::Error(OAuthError {
        error: "slow_down".into(),
        description: None,
        interval: Some(30),
        status: None,
    }));
    let (f, s) = f.step(answer, S(105));
    assert_eq!(s.events, vec![Event::SlowDown { interval: 30 }]);
    // ...and a smaller server value does not undo the +5 s rule.
    let (f, _) = f.step(Input::Tick, S(135));
    let answer = Input::PollAnswered(PollAnswer::Error(OAuthError {
        error: "slow_down".into(),
        description: None,
        interval: Some(2),
        status: None,
    }));
    let (_, s) = f.step(answer, S(135));
    assert_eq!(s.events, vec![Event::SlowDown { interval: 35 }]);
}

#[test]
fn slow_down_is_capped() {
    let policy = Policy {
        max_code_lifetime: S(100_000),
        ..Policy::default()
    };
    let (f, _) = Flow::new(policy.clone(), S(0), 1).step(Input::Tick, S(0));
    let (mut f, _) = f.step(Input::CodeIssued(auth(Some(5), 100_000)), S(0));
    let mut now = S(0);
    for _ in 0..80 {
        now += f.live_code().unwrap().interval;
        let (g, s) = f.step(Input::Tick, now);
        assert_eq!(s.action, Action::Poll);
        let (g, _) = g.step(err("slow_down"), now);
        f = g;
    }
    assert_eq!(f.live_code().map(|c| c.interval), Some(policy.max_interval));
}

#[test]
fn tokens_finish_at_once() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(tokens(), S(105));
    assert_eq!(s.action, Action::Finish);
    // Any further input changes nothing: no second redemption.
    let (f, s) = f.step(Input::Tick, S(200));
    assert_eq!(s.action, Action::Finish);
    assert!(matches!(f.into_outcome(), Some(Outcome::Paired(_))));
}

#[test]
fn denial_finishes_with_denied_for_both_spellings() {
    for code in ["access_denied", "authorization_declined"] {
        let (f, _) = issued(Some(5), 600);
        let (f, _) = f.step(Input::Tick, S(105));
        let (f, s) = f.step(err(code), S(105));
        assert_eq!(s.action, Action::Finish);
        assert!(matches!(f.into_outcome(), Some(Outcome::Denied)), "{code}");
    }
}

#[test]
fn expired_token_requests_a_new_code_shown_as_renewed() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(err("expired_token"), S(105));
    assert_eq!(s.events, vec![Event::Expired]);
    assert_eq!(s.action, Action::RequestCode);
    let (f, s) = f.step(Input::CodeIssued(auth(Some(5), 600)), S(106));
    assert!(matches!(s.events[0], Event::Code { renewed: true, .. }));
    assert_eq!(s.action, Action::WaitUntil(S(111)));
    assert!(f.live_code().unwrap().renewed);
}

#[test]
fn local_deadline_renews_without_polling() {
    let (f, _) = issued(Some(5), 12);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(err("authorization_pending"), S(105));
    assert_eq!(s.action, Action::WaitUntil(S(110)));
    let (f, _) = f.step(Input::Tick, S(110));
    let (f, s) = f.step(err("authorization_pending"), S(110));
    assert_eq!(
        s.action,
        Action::WaitUntil(S(112)),
        "never wait past the deadline"
    );
    let (_, s) = f.step(Input::Tick, S(112));
    assert_eq!(s.events, vec![Event::Expired]);
    assert_eq!(s.action, Action::RequestCode);
}

#[test]
fn auth0_invalid_grant_after_expiry_is_an_expiry() {
    let (f, _) = issued(Some(5), 10);
    let (f, _) = f.step(Input::Tick, S(110));
    // Polled right at the deadline; the server already forgot the code.
    let (_, s) = f.step(err("invalid_grant"), S(110));
    assert_eq!(s.action, Action::RequestCode);
    // ...but before the deadline it is a real error.
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(err("invalid_grant"), S(105));
    assert_eq!(s.action, Action::Finish);
    assert!(
        matches!(f.into_outcome(), Some(Outcome::ServerError(e)) if e.error == "invalid_grant")
    );
}

#[test]
fn invalid_grant_after_a_lost_poll_answer_renews_the_code() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    // The answer to this poll (maybe the tokens) is lost on the way back...
    let (f, s) = f.step(transient(), S(105));
    let Action::WaitUntil(at) = s.action else {
        panic!()
    };
    let (f, _) = f.step(Input::Tick, at);
    // ...and the server now treats the code as redeemed: start over with a new code.
    let (_, s) = f.step(err("invalid_grant"), at);
    assert_eq!(s.events, vec![Event::Expired]);
    assert_eq!(s.action, Action::RequestCode);
    // A good answer in between clears the doubt: invalid_grant is then an error.
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(transient(), S(105));
    let Action::WaitUntil(at) = s.action else {
        panic!()
    };
    let (f, _) = f.step(Input::Tick, at);
    let (f, s) = f.step(err("authorization_pending"), at);
    let Action::WaitUntil(at) = s.action else {
        panic!()
    };
    let (f, _) = f.step(Input::Tick, at);
    let (_, s) = f.step(err("invalid_grant"), at);
    assert_eq!(s.action, Action::Finish);
}

#[test]
fn unknown_errors_stop_with_the_servers_error() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, _) = f.step(err("invalid_client"), S(105));
    assert!(
        matches!(f.into_outcome(), Some(Outcome::ServerError(e)) if e.error == "invalid_client")
    );
}

#[test]
fn transient_poll_failures_back_off_exponentially_with_jitter_and_cap() {
    let (mut f, _) = issued(Some(1), 7200);
    let mut now = S(101);
    let mut delays = Vec::new();
    for _ in 0..12 {
        let (g, s) = f.step(Input::Tick, now);
        assert_eq!(s.action, Action::Poll);
        let (g, s) = g.step(transient(), now);
        let Action::WaitUntil(at) = s.action else {
            panic!("{s:?}")
        };
        assert!(matches!(s.events[0], Event::Retrying { .. }));
        delays.push(at - now);
        now = at;
        f = g;
    }
    let p = Policy::default();
    // Equal jitter: delay in [exp/2, exp], exp doubling from base up to the cap.
    for (i, d) in delays.iter().enumerate() {
        let exp = p.backoff_base.saturating_mul(1 << i).min(p.backoff_cap);
        assert!(
            *d >= (exp / 2).max(S(1)) && *d <= exp.max(S(1)),
            "#{i}: {d:?} vs {exp:?}"
        );
    }
    assert!(delays.iter().all(|d| *d <= p.backoff_cap));
    // A good answer resets the backoff.
    let (g, _) = f.step(Input::Tick, now);
    let (g, _) = g.step(err("authorization_pending"), now);
    now += S(1);
    let (g, _) = g.step(Input::Tick, now);
    let (_, s) = g.step(transient(), now);
    let Action::WaitUntil(at) = s.action else {
        panic!()
    };
    assert!(
        at - now <= p.backoff_base,
        "backoff restarted: {:?}",
        at - now
    );
}

#[test]
fn jitter_spreads_devices() {
    let p = Policy::default();
    let a: Vec<_> = (0..5)
        .map(|_| ())
        .scan(
            Backoff {
                failures: 3,
                rng: 1,
                since: None,
            },
            |b, _| {
                b.failures = 3;
                Some(b.next_delay(&p, None))
            },
        )
        .collect();
    assert!(a.windows(2).any(|w| w[0] != w[1]), "{a:?}");
}

#[test]
fn backoff_never_outlives_the_code() {
    let (f, _) = issued(Some(5), 20);
    let (f, _) = f.step(Input::Tick, S(118));
    let (f, s) = f.step(transient(), S(118));
    // interval (5 s) would take us past the deadline at 120: wait for the deadline instead.
    assert_eq!(s.action, Action::WaitUntil(S(120)));
    let (_, s) = f.step(Input::Tick, S(120));
    assert_eq!(s.events, vec![Event::Expired]);
    assert_eq!(s.action, Action::RequestCode);
}

/// The wait a poll failing at 105 s with this Retry-After leads to (code issued at 100 s,
/// living two hours).
fn poll_retry_after(retry_after: u64, seed: u64) -> Duration {
    let f = Flow::new(Policy::default(), S(100), seed);
    let (f, _) = f.step(Input::Tick, S(100));
    let (f, _) = f.step(Input::CodeIssued(auth(Some(5), 7200)), S(100));
    let (f, _) = f.step(Input::Tick, S(105));
    let (_, s) = f.step(
        Input::PollFailed(Failure::Transient {
            reason: "HTTP 503".into(),
            retry_after: Some(S(retry_after)),
        }),
        S(105),
    );
    let Action::WaitUntil(at) = s.action else {
        panic!("{:?}", s.action)
    };
    at - S(105)
}

#[test]
fn retry_after_is_honoured_beyond_the_backoff_cap_and_cut_at_an_hour() {
    // The first step is 2 s: the wait is the Retry-After plus up to 2 s.
    for (ra, lo) in [(30, 30), (600, 600), (86_400, 3600)] {
        let d = poll_retry_after(ra, 42);
        assert!(
            d >= S(lo) && d < S(lo + 2),
            "Retry-After {ra}: waited {d:?}"
        );
    }
}

#[test]
fn devices_told_the_same_retry_after_do_not_come_back_together() {
    let waits: std::collections::BTreeSet<Duration> = (1..=20)
        .map(|seed| poll_retry_after(600, seed * 7919))
        .collect();
    assert!(waits.len() >= 15, "{waits:?}");
    assert!(waits.iter().all(|d| *d >= S(600)));
}

#[test]
fn a_refused_code_request_waits_out_its_retry_after() {
    let f = Flow::new(Policy::default(), S(0), 7);
    let (f, _) = f.step(Input::Tick, S(0));
    let (f, s) = f.step(
        Input::CodeFailed(Failure::Transient {
            reason: "HTTP 429".into(),
            retry_after: Some(S(600)),
        }),
        S(0),
    );
    let Action::WaitUntil(at) = s.action else {
        panic!("{:?}", s.action)
    };
    assert!(at >= S(600) && at < S(602), "{at:?}");
    // A tick before then only waits again.
    let (f, s) = f.step(Input::Tick, S(300));
    assert_eq!(s.action, Action::WaitUntil(at));
    let (_, s) = f.step(Input::Tick, at);
    assert_eq!(s.action, Action::RequestCode);
}

#[test]
fn code_request_failures_retry_or_stop() {
    let f = Flow::new(Policy::default(), S(0), 7);
    let (f, _) = f.step(Input::Tick, S(0));
    let (f, s) = f.step(
        Input::CodeFailed(Failure::Transient {
            reason: "timed out".into(),
            retry_after: None,
        }),
        S(0),
    );
    let Action::WaitUntil(at) = s.action else {
        panic!()
    };
    assert!(at >= S(1) && at <= S(2));
    let (f, s) = f.step(Input::Tick, at);
    assert_eq!(s.action, Action::RequestCode);
    let (f, s) = f.step(
        Input::CodeFailed(Failure::Fatal("invalid_client".into())),
        at,
    );
    assert_eq!(s.action, Action::Finish);
    assert!(matches!(f.into_outcome(), Some(Outcome::Failed(m)) if m == "invalid_client"));
}

#[test]
fn fatal_poll_failure_stops() {
    let (f, _) = issued(Some(5), 600);
    let (f, _) = f.step(Input::Tick, S(105));
    let (f, s) = f.step(
        Input::PollFailed(Failure::Fatal("bad certificate".into())),
        S(105),
    );
    assert_eq!(s.action, Action::Finish);
    assert!(matches!(f.into_outcome(), Some(Outcome::Failed(_))));
}

#[test]
fn out_of_order_inputs_do_not_panic_or_lose_state() {
    let (f, _) = issued(Some(5), 600);
    // A poll answer while no poll is in flight: ignored, keep waiting.
    let (f, s) = f.step(tokens(), S(101));
    assert_eq!(s.action, Action::WaitUntil(S(105)));
    assert!(f.live_code().is_some());
    let (f, s) = f.step(Input::CodeIssued(auth(Some(5), 600)), S(102));
    assert_eq!(s.action, Action::WaitUntil(S(105)));
    assert!(matches!(f.state(), State::ExpectApproval(_)));
}

fn code_failed() -> Input {
    Input::CodeFailed(Failure::Transient {
        reason: "connection refused".into(),
        retry_after: None,
    })
}

/// Drives a flow whose every request fails; returns the times requests were made and how it
/// ended (`None`: still retrying at `until`).
fn fail_every_request(policy: Policy, until: Duration) -> (Vec<Duration>, Option<Outcome>) {
    let mut f = Flow::new(policy, S(100), 42);
    let mut input = Input::Tick;
    let mut now = S(100);
    let mut requests = Vec::new();
    while now <= until {
        let (next, step) = f.step(input, now);
        f = next;
        input = match step.action {
            Action::RequestCode => {
                requests.push(now);
                code_failed()
            }
            Action::WaitUntil(t) => {
                now = t;
                Input::Tick
            }
            Action::Finish => return (requests, f.into_outcome()),
            Action::Poll => unreachable!("no code was ever issued"),
        };
    }
    (requests, None)
}

#[test]
fn an_unreachable_provider_is_given_up_after_the_limit() {
    let policy = Policy {
        give_up_after: Some(S(30)),
        ..Policy::default()
    };
    let (requests, outcome) = fail_every_request(policy, S(10_000));
    assert!(
        matches!(&outcome, Some(Outcome::Unreachable(r)) if r == "connection refused"),
        "{outcome:?}"
    );
    // The last attempt is made when the limit is reached, not a backoff later.
    assert_eq!(requests.last(), Some(&S(130)), "{requests:?}");
    assert!(requests.len() >= 4, "{requests:?}");
}

#[test]
fn a_retry_after_past_the_limit_waits_until_the_limit_then_gives_up() {
    // `pair --timeout 30` against a provider saying `Retry-After: 600`: the person is not kept
    // waiting ten minutes; nothing is sent before the limit, the last attempt comes at it.
    let policy = Policy {
        give_up_after: Some(S(30)),
        ..Policy::default()
    };
    let refused = || {
        Input::CodeFailed(Failure::Transient {
            reason: "HTTP 503".into(),
            retry_after: Some(S(600)),
        })
    };
    let f = Flow::new(policy, S(100), 42);
    let (f, s) = f.step(Input::Tick, S(100));
    assert_eq!(s.action, Action::RequestCode);
    let (f, s) = f.step(refused(), S(100));
    assert_eq!(s.action, Action::WaitUntil(S(130)));
    let (f, s) = f.step(Input::Tick, S(130));
    assert_eq!(s.action, Action::RequestCode);
    let (f, s) = f.step(refused(), S(130));
    assert_eq!(s.action, Action::Finish);
    assert!(matches!(f.into_outcome(), Some(Outcome::Unreachable(r)) if r == "HTTP 503"));
}

#[test]
fn without_a_limit_retrying_never_ends() {
    let (requests, outcome) = fail_every_request(Policy::default(), S(100 + 6 * 3600));
    assert!(outcome.is_none(), "{outcome:?}");
    assert!(requests.len() > 300, "{}", requests.len());
}

#[test]
fn a_good_answer_restarts_the_give_up_clock() {
    let policy = Policy {
        give_up_after: Some(S(30)),
        ..Policy::default()
    };
    let f = Flow::new(policy, S(100), 42);
    let (f, _) = f.step(Input::Tick, S(100));
    // Unreachable from 100 to 125, then a code: the failures before it no longer count.
    let (f, _) = f.step(code_failed(), S(100));
    let (f, _) = f.step(Input::Tick, S(125));
    let (f, s) = f.step(Input::CodeIssued(auth(Some(5), 600)), S(125));
    assert_eq!(s.action, Action::WaitUntil(S(130)));
    let (f, s) = f.step(Input::Tick, S(130));
    assert_eq!(s.action, Action::Poll);
    // Polls fail from 130: the limit runs from there, to 160.
    let (f, s) = f.step(transient(), S(130));
    assert!(matches!(s.action, Action::WaitUntil(_)));
    let (f, s) = f.step(Input::Tick, S(159));
    assert_eq!(s.action, Action::Poll);
    let (f, s) = f.step(transient(), S(159));
    assert_eq!(s.action, Action::WaitUntil(S(160)));
    let (f, s) = f.step(Input::Tick, S(160));
    assert_eq!(s.action, Action::Poll);
    let (f, s) = f.step(transient(), S(160));
    assert_eq!(s.action, Action::Finish);
    assert!(matches!(f.into_outcome(), Some(Outcome::Unreachable(_))));
}
