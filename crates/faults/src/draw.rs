//! The suite's randomness: one seed, printed at the start, decides every fault, every pause
//! and every client's choices, so that a run's schedule can be replayed with `--seed`.
//! (Processes and the network still race, so a replay repeats the schedule, not every
//! interleaving.)

/// SplitMix64: small, fast, and good enough to draw a schedule.
#[derive(Debug, Clone)]
pub struct Draw {
    state: u64,
}

impl Draw {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for `label` (a client, the nemesis), from the same seed.
    pub fn fork(&self, label: u64) -> Self {
        let mut forked = Self { state: self.state ^ label.wrapping_mul(0xA076_1D64_78BD_642F) };
        forked.next();
        forked
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high);
        low + self.next() % (high - low + 1)
    }

    /// An index below `count`.
    pub fn below(&mut self, count: usize) -> usize {
        assert!(count > 0);
        (self.next() % count as u64) as usize
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.next() % denominator < numerator
    }

    pub fn millis(&mut self, low: u64, high: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.between(low, high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_sequence_and_forks_differ() {
        let (mut a, mut b) = (Draw::new(7), Draw::new(7));
        let first: Vec<u64> = (0..8).map(|_| a.next()).collect();
        assert_eq!(first, (0..8).map(|_| b.next()).collect::<Vec<_>>());
        let mut fork = Draw::new(7).fork(1);
        assert_ne!(first[0], fork.next());
        let mut draw = Draw::new(3);
        for _ in 0..1_000 {
            let value = draw.between(5, 9);
            assert!((5..=9).contains(&value));
            assert!(draw.below(3) < 3);
        }
    }
}
