//! Load balancing primitives: a small deterministic RNG, weighted choice, power of two
//! choices, and a peak-EWMA latency estimate.

use std::time::Duration;

use tokio::time::Instant;

/// SplitMix64: tiny, fast, and seedable, so routing decisions are reproducible in tests.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A uniform duration in `[0, max]`.
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.below(nanos.saturating_add(1)))
    }
}

/// Index chosen with probability proportional to its weight; `None` for no weights.
pub fn weighted(weights: &[u32], rng: &mut Rng) -> Option<usize> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return (!weights.is_empty()).then_some(0);
    }
    let mut point = rng.below(total);
    for (i, &w) in weights.iter().enumerate() {
        let w = u64::from(w);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// Power of two choices: two distinct random candidates, the cheaper wins.
pub fn p2c(costs: &[f64], rng: &mut Rng) -> Option<usize> {
    let n = u64::try_from(costs.len()).ok()?;
    match n {
        0 => None,
        1 => Some(0),
        _ => {
            let a = usize::try_from(rng.below(n)).ok()?;
            let mut b = usize::try_from(rng.below(n - 1)).ok()?;
            if b >= a {
                b += 1;
            }
            let (ca, cb) = (costs.get(a)?, costs.get(b)?);
            Some(if cb < ca { b } else { a })
        }
    }
}

/// Peak-EWMA (after Finagle): jumps up to a slower sample at once, decays toward faster ones
/// with time constant `tau`, so a route that turns slow loses traffic immediately.
#[derive(Clone, Debug)]
pub struct PeakEwma {
    value_ms: f64,
    last: Option<Instant>,
    tau: Duration,
}

impl PeakEwma {
    /// An estimate with no samples (cost 0: new routes get tried).
    pub fn new(tau: Duration) -> Self {
        Self {
            value_ms: 0.0,
            last: None,
            tau,
        }
    }

    /// Adds a sample.
    pub fn observe(&mut self, now: Instant, sample: Duration) {
        let sample_ms = sample.as_secs_f64() * 1000.0;
        match self.last {
            None => self.value_ms = sample_ms,
            Some(_) if sample_ms > self.value_ms => self.value_ms = sample_ms,
            Some(last) => {
                let w = (-(now.duration_since(last).as_secs_f64()) / self.tau.as_secs_f64()).exp();
                self.value_ms = self.value_ms * w + sample_ms * (1.0 - w);
            }
        }
        self.last = Some(now);
    }

    /// The current estimate in milliseconds.
    pub fn value(&self, _now: Instant) -> f64 {
        self.value_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choice_stays_within_tolerance_over_10000_decisions() {
        let mut rng = Rng::new(42);
        let weights = [1, 3, 6];
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[weighted(&weights, &mut rng).unwrap()] += 1;
        }
        // Expected 1000 / 3000 / 6000; allow ±5% of the total.
        for (c, expected) in counts.iter().zip([1000, 3000, 6000]) {
            assert!((i64::from(*c) - expected).abs() < 500, "{counts:?}");
        }
    }

    #[test]
    fn same_seed_same_decisions() {
        let picks = |seed| {
            let mut r = Rng::new(seed);
            (0..20)
                .map(|_| weighted(&[1, 1, 1], &mut r).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(7), picks(7));
        assert_ne!(picks(7), picks(8));
    }

    #[test]
    fn p2c_prefers_the_cheaper_of_two() {
        let mut rng = Rng::new(1);
        let costs = [100.0, 1.0];
        assert!((0..100).all(|_| p2c(&costs, &mut rng) == Some(1)));
        assert_eq!(p2c(&[5.0], &mut rng), Some(0));
        assert_eq!(p2c(&[], &mut rng), None);
    }

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_jumps_up_and_decays_down() {
        let mut e = PeakEwma::new(Duration::from_secs(10));
        let t0 = Instant::now();
        e.observe(t0, Duration::from_millis(100));
        e.observe(t0, Duration::from_millis(500));
        assert!((e.value(t0) - 500.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(10)).await;
        let t1 = Instant::now();
        e.observe(t1, Duration::from_millis(100));
        let v = e.value(t1);
        assert!(v < 500.0 && v > 100.0, "{v}");
    }

    #[test]
    fn jitter_is_bounded() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            assert!(rng.duration_up_to(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
    }
}
