//! What a scenario's two runs are shown as: a text table (the terminal), a Markdown table
//! (docs/fleet.md) and a chart (PNG).

use crate::goals::{self, Summary, Verdict};
use crate::metrics::Recorder;
use crate::plot::{self, Chart, Series};
use crate::scenario::{Client, Kind, Run, Scenario};
use std::fmt::Write;
use std::time::Duration;

/// A scenario, its two runs, their figures and devauth's verdicts.
pub struct Outcome {
    pub scenario: Scenario,
    pub runs: Vec<(Run, Summary)>,
}

impl Outcome {
    pub fn run(scenario: Scenario, seed: u64) -> Outcome {
        let runs = [Client::Devauth, Client::Naive]
            .into_iter()
            .map(|c| {
                let run = crate::scenario::run(&scenario, c, seed);
                let summary = goals::summarize(&scenario, &run);
                (run, summary)
            })
            .collect();
        Outcome { scenario, runs }
    }

    pub fn summary(&self, client: Client) -> Option<&Summary> {
        self.runs
            .iter()
            .find(|(r, _)| r.client == client)
            .map(|(_, s)| s)
    }

    pub fn verdicts(&self, client: Client) -> Vec<Verdict> {
        self.summary(client)
            .map(|m| goals::verdicts(&self.scenario, m))
            .unwrap_or_default()
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("—".into(), |d| format!("{} s", d.as_secs()))
}

/// The rows of the figures table: (label, devauth, naive).
fn rows(o: &Outcome) -> Vec<(String, String, String)> {
    let (Some(d), Some(n)) = (o.summary(Client::Devauth), o.summary(Client::Naive)) else {
        return Vec::new();
    };
    let s = &o.scenario;
    let both = |f: &dyn Fn(&Summary) -> String| (f(d), f(n));
    let mut rows: Vec<(String, (String, String))> = vec![
        ("requests".into(), both(&|m| thousands(m.requests))),
        (
            "useful (tokens, codes, pending)".into(),
            both(&|m| thousands(m.useful)),
        ),
        (
            "refused (429, 503, slow_down)".into(),
            both(&|m| thousands(m.refused)),
        ),
        (
            "wasted (refused again)".into(),
            both(&|m| thousands(m.wasted)),
        ),
        (
            "most refusals in a row, one device".into(),
            both(&|m| m.most_refused_in_a_row.to_string()),
        ),
        (
            "sent before a Retry-After ended".into(),
            both(&|m| thousands(m.early)),
        ),
    ];
    if s.disturbance_end > s.origin && !matches!(s.kind, Kind::RateLimit | Kind::SteadyDay) {
        rows.push((
            format!(
                "peak during the disturbance, req/s ({} s bins)",
                s.bin.as_secs()
            ),
            both(&|m| format!("{:.1}", m.disturbance_peak)),
        ));
    }
    rows.extend([
        if matches!(s.kind, Kind::Pairing) {
            (
                format!(
                    "recovery peak / mean, req/s per device pairing ({} s bins)",
                    s.bin.as_secs()
                ),
                both(&|m| format!("{:.3} / {:.3}", m.peak, m.mean)),
            )
        } else {
            (
                format!(
                    "recovery window peak / mean, req/s ({} s bins)",
                    s.bin.as_secs()
                ),
                both(&|m| format!("{:.1} / {:.1}", m.peak, m.mean)),
            )
        },
        (
            "next hour peak / mean, req/s (60 s bins)".into(),
            both(&|m| {
                if m.next_mean > 0.0 {
                    format!(
                        "{:.1} / {:.1} ({:.1}×)",
                        m.next_peak,
                        m.next_mean,
                        m.next_ratio()
                    )
                } else {
                    "—".into()
                }
            }),
        ),
        ("last served".into(), both(&|m| secs(m.last_served))),
        ("longest wait".into(), both(&|m| secs(Some(m.longest_wait)))),
        (
            "still waiting at the end".into(),
            both(&|m| m.unserved.to_string()),
        ),
    ]);
    if !matches!(s.kind, Kind::Pairing) {
        rows.push((
            "mean time without a valid token, per device".into(),
            both(&|m| format!("{:.0} s", m.without_token)),
        ));
    }
    rows.into_iter().map(|(l, (a, b))| (l, a, b)).collect()
}

/// A description of the provider.
pub fn provider_line(s: &Scenario) -> String {
    let l = s.spec.token_limit;
    let mut line = format!(
        "token endpoint {:.1} req/s per client_id (burst {:.0})",
        l.per_sec, l.burst
    );
    if let Some((_, l)) = s.spec.token_limit_from {
        let _ = write!(
            line,
            ", then {:.2} req/s (burst {:.0}) from time 0",
            l.per_sec, l.burst
        );
        if let Some((until, (from, _))) = s.spec.token_limit_until.zip(s.spec.token_limit_from) {
            let _ = write!(line, " to {} s", until.saturating_sub(from).as_secs());
        }
    }
    if matches!(s.kind, Kind::Pairing) {
        let c = s.spec.code_limit;
        let _ = write!(
            line,
            "; device authorization endpoint {:.1} req/s (burst {:.0}); codes live {} s, interval {} s",
            c.per_sec,
            c.burst,
            s.spec.code_lifetime.as_secs(),
            s.spec.code_interval.as_secs()
        );
    }
    line
}

pub fn text(o: &Outcome) -> String {
    let s = &o.scenario;
    let mut out = format!(
        "== {} ({} devices)\n   provider: {}\n",
        s.title,
        thousands(s.devices as u64),
        provider_line(s)
    );
    let _ = writeln!(out, "   {:52} {:>18} {:>18}", "", "devauth", "naive");
    for (label, d, n) in rows(o) {
        let _ = writeln!(out, "   {label:52} {d:>18} {n:>18}");
    }
    let naive = o.verdicts(Client::Naive);
    for (i, v) in o.verdicts(Client::Devauth).iter().enumerate() {
        let nv = naive.get(i);
        let _ = writeln!(
            out,
            "   goal: {:44} {:>18} {:>18}",
            v.goal,
            format!("{} {}", v.value, if v.pass { "PASS" } else { "FAIL" }),
            nv.map_or(String::new(), |n| format!(
                "{} {}",
                n.value,
                if n.pass { "PASS" } else { "FAIL" }
            )),
        );
    }
    out
}

/// One table for a scenario run at several fleet sizes: devauth and naive side by side.
pub fn markdown_sizes(outcomes: &[Outcome]) -> String {
    let mut out = String::from("| |");
    let mut rule = String::from("|---|");
    for o in outcomes {
        let n = thousands(o.scenario.devices as u64);
        let _ = write!(out, " devauth, {n} | naive, {n} |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(out, "\n{rule}");
    let tables: Vec<_> = outcomes.iter().map(rows).collect();
    let Some(first) = tables.first() else {
        return out;
    };
    for (i, (label, _, _)) in first.iter().enumerate() {
        let _ = write!(out, "| {label} |");
        for t in &tables {
            if let Some((_, d, n)) = t.get(i) {
                let _ = write!(out, " {d} | {n} |");
            }
        }
        out.push('\n');
    }
    let mark = |v: &Verdict| format!("{} {}", if v.pass { "✅" } else { "❌" }, v.value);
    if let Some(o) = outcomes.first() {
        for (i, v) in o.verdicts(Client::Devauth).iter().enumerate() {
            let _ = write!(out, "| **goal**: {} |", v.goal);
            for o in outcomes {
                for c in [Client::Devauth, Client::Naive] {
                    let cell = o.verdicts(c).get(i).map(mark).unwrap_or_default();
                    let _ = write!(out, " {cell} |");
                }
            }
            out.push('\n');
        }
    }
    out
}

pub fn markdown(o: &Outcome) -> String {
    let s = &o.scenario;
    let mut out = format!(
        "| {} devices | devauth | naive |\n|---|---:|---:|\n",
        thousands(s.devices as u64)
    );
    for (label, d, n) in rows(o) {
        let _ = writeln!(out, "| {label} | {d} | {n} |");
    }
    let naive = o.verdicts(Client::Naive);
    for (i, v) in o.verdicts(Client::Devauth).iter().enumerate() {
        let mark = |v: &Verdict| format!("{} {}", if v.pass { "✅" } else { "❌" }, v.value);
        let _ = writeln!(
            out,
            "| **goal**: {} | {} | {} |",
            v.goal,
            mark(v),
            naive.get(i).map(mark).unwrap_or_default()
        );
    }
    out
}

/// Both runs' request rates as a chart.
pub fn chart(o: &Outcome) -> Result<Vec<u8>, String> {
    let s = &o.scenario;
    let (from, to) = s.plot;
    let hours = (to - from) > Duration::from_secs(4 * 3600);
    let unit = if hours { 3600.0 } else { 60.0 };
    let rel = |t: Duration| (t.as_secs_f64() - s.origin.as_secs_f64()) / unit;
    let bin = if hours {
        Duration::from_secs(60)
    } else {
        s.bin
    };
    let mut series = Vec::new();
    for (client, color) in [(Client::Naive, plot::ORANGE), (Client::Devauth, plot::BLUE)] {
        if let Some((run, _)) = o.runs.iter().find(|(r, _)| r.client == client) {
            let points = Recorder::rate(&run.provider.rec.sent, from, to, bin)
                .into_iter()
                .map(|(t, r)| (rel(t + bin / 2), r))
                .collect();
            series.push(Series {
                label: client.name().into(),
                color,
                points,
            });
        }
    }
    let shade = (s.disturbance_end > s.origin
        && !matches!(s.kind, Kind::RateLimit | Kind::SteadyDay))
    .then(|| {
        (
            rel(s.origin),
            rel(s.disturbance_end),
            match s.kind {
                Kind::Outage => "outage".to_string(),
                Kind::PowerReturns => "power returns".to_string(),
                Kind::RateLimitHour => "limit at half".to_string(),
                _ => "devices start".to_string(),
            },
        )
    });
    let limit = s
        .spec
        .token_limit_from
        .map_or(s.spec.token_limit, |(_, l)| l);
    let chart = Chart {
        title: format!("{} ({} devices)", s.title, thousands(s.devices as u64)),
        x_label: format!(
            "{} since {}",
            if hours { "hours" } else { "minutes" },
            match s.kind {
                Kind::PowerReturns => "power came back",
                Kind::Outage => "the outage began",
                Kind::RateLimit | Kind::RateLimitHour => "the limit dropped",
                Kind::SteadyDay => "the start of the day",
                Kind::Pairing => "the devices started pairing",
            }
        ),
        y_label: format!("requests/s ({} s bins)", bin.as_secs()),
        x_range: (rel(from), rel(to)),
        series,
        shade,
        // A day far below the limit reads better without it squashing the line.
        limit: (s.kind != Kind::SteadyDay).then(|| {
            (
                limit.per_sec,
                format!("provider limit {:.1}/s", limit.per_sec),
                s.spec.token_limit_until.map(rel),
            )
        }),
        log_y: s.log_y,
    };
    plot::render(&chart, 1000, 420)
}
