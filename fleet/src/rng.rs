//! The simulator's own randomness (start times, latencies, when people approve codes): a
//! seeded splitmix64, so a run is reproducible from its seed. The devices' jitter is not drawn
//! here: each machine draws its own from the seed devauth would give it (`setup::jitter_seed_from`).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// splitmix64 (Steele, Lea, Flood 2014): every seed gives a full-period, well-mixed stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        lo + hi.saturating_sub(lo).mul_f64(self.unit())
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with this median and shape, in seconds.
    pub fn lognormal_secs(&mut self, median: f64, sigma: f64) -> Duration {
        Duration::from_secs_f64(median * (sigma * self.normal()).exp())
    }

    /// An independent stream (for one device or one purpose).
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..10_000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn lognormal_has_the_median() {
        let mut r = Rng::new(2);
        let mut xs: Vec<f64> = (0..10_001)
            .map(|_| r.lognormal_secs(60.0, 0.7).as_secs_f64())
            .collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[5000];
        assert!((median - 60.0).abs() < 4.0, "{median}");
    }
}
