//! `devauth-fleet`: runs the fleet scenarios with devauth's machines and a naive client and
//! prints their figures; optionally writes the charts and a Markdown table.
//!
//!     devauth-fleet [--devices N]... [--scenario NAME]... [--seed S] [--plots DIR] [--markdown]

use devauth_fleet::report::{self, Outcome};
use devauth_fleet::scenario::{Kind, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: devauth-fleet [--devices N]... [--scenario power|outage|ratelimit|ratelimit-hour|steady|pairing]... [--seed S] [--plots DIR] [--markdown]";

struct Args {
    devices: Vec<usize>,
    kinds: Vec<Kind>,
    seed: u64,
    plots: Option<PathBuf>,
    markdown: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        devices: Vec::new(),
        kinds: Vec::new(),
        seed: 1,
        plots: None,
        markdown: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--devices" => {
                let v = value("--devices")?;
                a.devices.push(
                    v.parse()
                        .map_err(|_| format!("--devices {v}: not a number"))?,
                );
            }
            "--scenario" => {
                let v = value("--scenario")?;
                a.kinds
                    .push(Kind::from_key(&v).ok_or(format!("--scenario {v}: unknown"))?);
            }
            "--seed" => {
                let v = value("--seed")?;
                a.seed = v.parse().map_err(|_| format!("--seed {v}: not a number"))?;
            }
            "--plots" => a.plots = Some(PathBuf::from(value("--plots")?)),
            "--markdown" => a.markdown = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.devices.is_empty() {
        a.devices.push(10_000);
    }
    if a.kinds.is_empty() {
        a.kinds = Kind::ALL.to_vec();
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("devauth-fleet: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    for &kind in &args.kinds {
        let mut outcomes = Vec::new();
        for &n in &args.devices {
            let started = Instant::now();
            let outcome = Outcome::run(Scenario::new(kind, n), args.seed);
            if !args.markdown {
                println!("{}", report::text(&outcome));
            }
            eprintln!(
                "({} devices, {}: simulated in {:.1?})",
                n,
                kind.key(),
                started.elapsed()
            );
            if let Some(dir) = &args.plots {
                let path = dir.join(format!("fleet-{}-{}.png", kind.key(), n));
                let written = report::chart(&outcome)
                    .and_then(|png| std::fs::write(&path, png).map_err(|e| e.to_string()));
                if let Err(e) = written {
                    eprintln!("devauth-fleet: {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            outcomes.push(outcome);
        }
        if args.markdown {
            if let Some(o) = outcomes.first() {
                let s = &o.scenario;
                println!(
                    "### {}\n\nProvider: {}.\n",
                    s.title,
                    report::provider_line(s)
                );
            }
            println!("{}", report::markdown_sizes(&outcomes));
        }
    }
    ExitCode::SUCCESS
}
