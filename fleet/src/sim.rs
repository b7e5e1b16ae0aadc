//! The discrete-event loop: a simulated clock, a queue of device wake-ups, and the provider.
//!
//! Each device is a [`Device`]: woken at the time it asked for, it acts (asks the provider,
//! whose answer it gets after a network latency, as its next wake-up) and says when to wake it
//! next. Power cycles come as [`Device::restart`]. Time never goes backwards: the queue is
//! ordered by time, then by the order things were scheduled, so a run is deterministic.

use crate::provider::Provider;
use crate::rng::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// What a device sees of the world while it acts.
pub struct World<'a> {
    pub provider: &'a mut Provider,
    pub rng: &'a mut Rng,
    pub device: usize,
}

/// The longest round trip: an answer arrives 50-400 ms after its request was sent.
pub const MAX_LATENCY: Duration = Duration::from_millis(400);

impl World<'_> {
    /// One request's network round trip (the answer arrives this long after it was sent).
    pub fn latency(&mut self) -> Duration {
        self.rng.between(Duration::from_millis(50), MAX_LATENCY)
    }
}

pub trait Device {
    /// It is `now` and the wake-up the device asked for came: act, and say when to wake it next
    /// (`None`: it has nothing more to do).
    fn wake(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration>;
    /// The device was power-cycled at `now` (the token store survives; the process does not).
    fn restart(&mut self, now: Duration, world: &mut World<'_>) -> Option<Duration>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Wake,
    Restart,
}

/// (time, sequence, device, generation, kind): earliest first, then first scheduled.
type Event = Reverse<(Duration, u64, usize, u32, Kind)>;

/// Runs until `end`. `starts[i]` is when device i first wakes; `restarts` are (time, device).
/// Returns the number of events processed.
pub fn run(
    devices: &mut [Box<dyn Device>],
    starts: &[Duration],
    restarts: &[(Duration, usize)],
    provider: &mut Provider,
    rng: &mut Rng,
    end: Duration,
) -> u64 {
    // (time, sequence, device, generation, kind); a restart bumps the generation so that
    // wake-ups the old process asked for are dropped.
    let mut queue: BinaryHeap<Event> = BinaryHeap::new();
    let mut generation = vec![0u32; devices.len()];
    let mut seq = 0u64;
    for (d, &t) in starts.iter().enumerate() {
        queue.push(Reverse((t, seq, d, 0, Kind::Wake)));
        seq += 1;
    }
    for &(t, d) in restarts {
        queue.push(Reverse((t, seq, d, u32::MAX, Kind::Restart)));
        seq += 1;
    }
    let mut events = 0u64;
    while let Some(Reverse((now, _, d, g, kind))) = queue.pop() {
        if now >= end {
            break;
        }
        let Some(device) = devices.get_mut(d) else {
            continue;
        };
        let current = generation.get(d).copied().unwrap_or(0);
        let mut world = World {
            provider: &mut *provider,
            rng: &mut *rng,
            device: d,
        };
        let next = match kind {
            Kind::Wake if g != current => continue,
            Kind::Wake => device.wake(now, &mut world),
            Kind::Restart => {
                if let Some(g) = generation.get_mut(d) {
                    *g += 1;
                }
                device.restart(now, &mut world)
            }
        };
        events += 1;
        if let Some(t) = next {
            let g = generation.get(d).copied().unwrap_or(0);
            queue.push(Reverse((t.max(now), seq, d, g, Kind::Wake)));
            seq += 1;
        }
    }
    provider.rec.finish(end);
    events
}
