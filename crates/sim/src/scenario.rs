//! What one seed puts a cluster through. Everything here is drawn from the seed alone, before
//! the cluster starts, so a seed names its scenario and `Scenario::draw` is the whole story of
//! a run's faults (the deterministic runtime, seeded with the same seed, draws the rest: message
//! order, latency samples, losses).

use crate::byzantine::Corruption;
use std::time::Duration;

/// A small deterministic generator (splitmix64): scenario parameters come from the seed, not
/// from the runtime, so the scenario can be printed before the run starts.
#[derive(Debug, Clone)]
pub struct Draw {
    state: u64,
}

impl Draw {
    pub fn new(seed: u64) -> Self {
        Self { state: seed ^ 0x7a11_7a11_7a11_7a11 }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..count`.
    pub fn below(&mut self, count: u64) -> u64 {
        assert!(count > 0);
        self.next_u64() % count
    }

    /// An index into a collection of `count` items.
    pub fn index(&mut self, count: usize) -> usize {
        self.below(count as u64) as usize
    }

    /// A number in `min..=max`.
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        assert!(min <= max);
        min + self.below(max - min + 1)
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    pub fn millis(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(self.between(min_ms, max_ms))
    }

    /// `count` distinct indexes of `0..total`, in increasing order.
    pub fn subset(&mut self, total: usize, count: usize) -> Vec<usize> {
        assert!(count <= total);
        let mut all: Vec<usize> = (0..total).collect();
        for index in 0..count {
            let pick = index + self.below((total - index) as u64) as usize;
            all.swap(index, pick);
        }
        let mut chosen = all[..count].to_vec();
        chosen.sort_unstable();
        chosen
    }
}

/// How a Byzantine validator misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Byzantine {
    /// Proposes corrupted blocks (`byzantine.rs`), which honest validators must refuse.
    Proposer(Corruption),
    /// Two instances with one key and separate storage: the primary talks only to the honest
    /// validators in `primary_side`, the secondary only to the other honest validators. Each
    /// instance proposes and votes on its own, so the key equivocates: conflicting proposals
    /// and conflicting votes in the same view.
    Twin { primary_side: Vec<usize> },
    /// Participates in everything but never sends a vote.
    WithholdsVotes,
}

/// Mean latency, jitter and delivery rate of every link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkDraw {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub delivery_percent: u64,
}

/// Links cut between `side` and the other validators (`other`, or every validator not in
/// `side` if `None`) from `start` to `end`; one way cuts only the links from `side` to the
/// others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub side: Vec<usize>,
    pub other: Option<Vec<usize>>,
    pub one_way: bool,
    pub start: Duration,
    pub end: Duration,
}

impl Partition {
    /// The validators cut off from `side`.
    pub fn other_side(&self, validators: usize) -> Vec<usize> {
        match &self.other {
            Some(other) => other.clone(),
            None => (0..validators).filter(|index| !self.side.contains(index)).collect(),
        }
    }
}

/// A validator stopped abruptly at `at` and restarted from its storage after `down_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub validator: usize,
    pub at: Duration,
    pub down_for: Duration,
    /// The validator's disk is lost too: it restarts with nothing but the genesis, and
    /// catches up from its peers (from a snapshot when it is far enough behind). Drawn only
    /// when no validator is Byzantine, since a validator that forgot its votes may sign
    /// conflicting ones and counts as one of the f faulty.
    pub disk_lost: bool,
    /// Bytes of its stored data flipped while it is down (never with `disk_lost`).
    pub damage: Option<Damage>,
}

/// The stored data a damage hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stored {
    /// The finalized log's data blobs (`{partition}-finalized_data`).
    Log,
    /// The state snapshots (`{partition}-snapshots`).
    Snapshot,
    /// Marshal's archive of finalized blocks (`{partition}-marshal-blocks-*`).
    Marshal,
    /// Simplex's journal of the validator's votes and the certificates it saw (`{partition}`).
    Consensus,
    /// The vote record (`{partition}-votes`, `tally_chain::votes`).
    Votes,
}

impl Stored {
    pub const ALL: [Self; 5] = [Self::Log, Self::Snapshot, Self::Marshal, Self::Consensus, Self::Votes];

    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Snapshot => "snapshot",
            Self::Marshal => "marshal",
            Self::Consensus => "consensus journal",
            Self::Votes => "vote record",
        }
    }
}

/// Bytes flipped in a stopped validator's stored data, `after` its crash (within its down
/// time). Which blobs and offsets are drawn from `seed` when the damage is done, among the
/// blobs of `target` as they are then, each offset within a blob's written length. A validator
/// may halt on damage it cannot repair: that is a fail-stop, so damage is drawn only when the
/// scenario has room for another faulty validator, and the checkers excuse its halt (nothing
/// else: while it answers, it is held to every property).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub target: Stored,
    pub after: Duration,
    /// How many bytes are flipped (each at its own offset).
    pub bytes: u64,
    pub seed: u64,
}

/// The most clients a scenario runs concurrently.
pub const CLIENTS_MAX: u64 = 6;
/// The most requests each client submits (one at a time, each waiting for its outcome).
pub const REQUESTS_PER_CLIENT_MAX: u64 = 10;
/// Every partition heals and every crashed validator restarts before this much simulated time
/// after the workload starts.
pub const FAULTS_END: Duration = Duration::from_secs(12);

/// A run's faults and workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    pub validators: usize,
    pub link: LinkDraw,
    /// Byzantine validators by index, at most `faulty_max` unless a test asks for more. Each
    /// also lies to every client that asks it (`liar.rs`).
    pub byzantine: Vec<(usize, Byzantine)>,
    /// A validator honest in consensus that lies to every client that asks it (`liar.rs`): one
    /// of the f faulty, though its blocks and votes are honest.
    pub liar: Option<usize>,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    /// Every machine loses power at once at this instant (relative to the workload's start):
    /// writes not yet synced are lost, or kept only in part (a torn write), as
    /// `power_loss_retention_percent` of their bytes says. The whole cluster then restarts
    /// from its disks.
    pub power_loss: Option<Duration>,
    pub power_loss_retention_percent: u64,
    pub clients: usize,
    pub requests_per_client: usize,
    /// Seeds the workload's choices (separate from the fault draws so that each can change
    /// without reshuffling the other).
    pub workload_seed: u64,
}

/// The most Byzantine validators a cluster of `validators` tolerates: `n = 3f + 1`.
pub fn faulty_max(validators: usize) -> usize {
    validators.saturating_sub(1) / 3
}

impl Scenario {
    /// The scenario of `seed` for a cluster of `validators`.
    pub fn draw(seed: u64, validators: usize) -> Self {
        assert!(validators >= 1);
        let mut draw = Draw::new(seed);
        let link = LinkDraw {
            latency_ms: draw.between(5, 80),
            jitter_ms: draw.between(0, 25),
            delivery_percent: if draw.chance(1, 2) { 100 } else { draw.between(85, 99) },
        };

        // Up to f Byzantine validators, each with a behaviour of its own.
        let byzantine_count = draw.below(faulty_max(validators) as u64 + 1) as usize;
        let faulty = draw.subset(validators, byzantine_count);
        let honest: Vec<usize> = (0..validators).filter(|index| !faulty.contains(index)).collect();
        let byzantine: Vec<(usize, Byzantine)> = faulty
            .iter()
            .map(|&index| {
                let behaviour = match draw.below(4) {
                    0 => Byzantine::Proposer(Corruption::ForgedRequest),
                    1 => Byzantine::Proposer(Corruption::WrongStateDigest),
                    2 => Byzantine::WithholdsVotes,
                    _ => {
                        let size = draw.between(1, honest.len().saturating_sub(1).max(1) as u64) as usize;
                        let picks = draw.subset(honest.len(), size.min(honest.len()));
                        Byzantine::Twin { primary_side: picks.iter().map(|&pick| honest[pick]).collect() }
                    }
                };
                (index, behaviour)
            })
            .collect();

        // Partitions: a random side cut off from the rest for a while, symmetric or one way.
        let partitions = (0..draw.below(4))
            .map(|_| {
                let size = draw.between(1, (validators as u64 / 2).max(1)) as usize;
                let side = draw.subset(validators, size);
                let one_way = draw.chance(1, 3);
                let start = draw.millis(500, 8_000);
                let end = (start + draw.millis(500, 4_000)).min(FAULTS_END);
                Partition { side, other: None, one_way, start, end }
            })
            .collect();

        // Crashes of honest validators (twins and vote withholders keep running), at random
        // instants, each restarted from its own storage.
        let crashes = (0..draw.below(4))
            .map(|_| {
                let validator = honest[draw.below(honest.len() as u64) as usize];
                let at = draw.millis(300, 9_000);
                let down_for = draw.millis(200, 3_000).min(FAULTS_END.saturating_sub(at));
                Crash { validator, at, down_for, disk_lost: false, damage: None }
            })
            .collect::<Vec<_>>();
        let crashes = without_overlaps(crashes);

        let mut crashes = crashes;
        let power_loss = draw.chance(1, 4).then(|| draw.millis(1_000, 10_000));
        let power_loss_retention_percent = if draw.chance(1, 2) { 0 } else { draw.between(1, 99) };
        let (clients, requests_per_client, workload_seed) =
            (draw.between(2, CLIENTS_MAX) as usize, draw.between(4, REQUESTS_PER_CLIENT_MAX) as usize, draw.next_u64());
        // Drawn last, so that the draws above are the same as before disk loss existed.
        if byzantine.is_empty() && !crashes.is_empty() && draw.chance(1, 3) {
            let lost = draw.below(crashes.len() as u64) as usize;
            crashes[lost].disk_lost = true;
        }
        // Damage of stored data comes from a stream of its own, so that every draw above is
        // the same as before it existed.
        let mut damage_draw = Draw::new(seed ^ 0xda3a_6ed0_da3a_6ed0);
        let faulty = byzantine.len() + crashes.iter().filter(|crash| crash.disk_lost).count();
        if faulty < faulty_max(validators) && !crashes.is_empty() && damage_draw.chance(3, 4) {
            let damaged = damage_draw.index(crashes.len());
            let crash = &mut crashes[damaged];
            if !crash.disk_lost {
                crash.damage = Some(Damage {
                    target: Stored::ALL[damage_draw.index(Stored::ALL.len())],
                    after: damage_draw.millis(1, crash.down_for.as_millis().max(2) as u64 - 1),
                    bytes: if damage_draw.chance(3, 4) { 1 } else { damage_draw.between(2, 64) },
                    seed: damage_draw.next_u64(),
                });
            }
        }
        // A liar comes from a stream of its own too, when the scenario has room for another
        // faulty validator.
        let mut liar_draw = Draw::new(seed ^ 0x11a5_11a5_11a5_11a5);
        let faulty = byzantine.len() + crashes.iter().filter(|crash| crash.disk_lost || crash.damage.is_some()).count();
        let liar = if faulty < faulty_max(validators) && liar_draw.chance(1, 2) {
            let candidates: Vec<usize> = honest
                .iter()
                .copied()
                .filter(|&index| {
                    !crashes.iter().any(|crash| crash.validator == index && (crash.disk_lost || crash.damage.is_some()))
                })
                .collect();
            (!candidates.is_empty()).then(|| candidates[liar_draw.index(candidates.len())])
        } else {
            None
        };
        Self {
            seed,
            validators,
            link,
            byzantine,
            liar,
            partitions,
            crashes,
            power_loss,
            power_loss_retention_percent,
            clients,
            requests_per_client,
            workload_seed,
        }
    }

    pub fn byzantine(&self, index: usize) -> Option<&Byzantine> {
        self.byzantine.iter().find(|(faulty, _)| *faulty == index).map(|(_, behaviour)| behaviour)
    }

    pub fn is_honest(&self, index: usize) -> bool {
        self.byzantine(index).is_none()
    }

    /// When every fault of the scenario is over (relative to the workload's start).
    pub fn heal_at(&self) -> Duration {
        let partitions = self.partitions.iter().map(|partition| partition.end);
        let crashes = self.crashes.iter().map(|crash| crash.at + crash.down_for);
        partitions.chain(crashes).chain(self.power_loss).max().unwrap_or_default()
    }

    /// One line describing the scenario.
    pub fn summary(&self) -> String {
        let byzantine: Vec<String> =
            self.byzantine.iter().map(|(index, behaviour)| format!("{index}:{behaviour:?}")).collect();
        let partitions: Vec<String> = self
            .partitions
            .iter()
            .map(|partition| {
                format!(
                    "{:?}{}@{}..{}ms",
                    partition.side,
                    if partition.one_way { "->" } else { "<->" },
                    partition.start.as_millis(),
                    partition.end.as_millis()
                )
            })
            .collect();
        let crashes: Vec<String> = self
            .crashes
            .iter()
            .map(|crash| {
                let lost = if crash.disk_lost { " disk lost" } else { "" };
                let damage = match crash.damage {
                    Some(damage) => format!(
                        " {} bytes of {} damaged after {}ms",
                        damage.bytes,
                        damage.target.name(),
                        damage.after.as_millis()
                    ),
                    None => String::new(),
                };
                format!("{}@{}+{}ms{lost}{damage}", crash.validator, crash.at.as_millis(), crash.down_for.as_millis())
            })
            .collect();
        let power_loss = match self.power_loss {
            Some(at) => format!(
                " | power loss @{}ms keeping {}% of unsynced bytes",
                at.as_millis(),
                self.power_loss_retention_percent
            ),
            None => String::new(),
        };
        format!(
            "links {}±{}ms {}% | byzantine [{}]{} | partitions [{}] | crashes [{}]{power_loss} | {} clients x {} requests",
            self.link.latency_ms,
            self.link.jitter_ms,
            self.link.delivery_percent,
            byzantine.join(", "),
            self.liar.map(|index| format!(" liar {index}")).unwrap_or_default(),
            partitions.join(", "),
            crashes.join(", "),
            self.clients,
            self.requests_per_client,
        )
    }
}

/// Drops crashes of a validator that is still down from an earlier crash.
fn without_overlaps(mut crashes: Vec<Crash>) -> Vec<Crash> {
    crashes.sort_by_key(|crash| (crash.validator, crash.at));
    let mut kept: Vec<Crash> = Vec::new();
    for crash in crashes {
        let overlaps = kept.iter().any(|earlier| {
            earlier.validator == crash.validator
                && crash.at <= earlier.at + earlier.down_for + Duration::from_millis(100)
        });
        if !overlaps {
            kept.push(crash);
        }
    }
    kept.sort_by_key(|crash| (crash.at, crash.validator));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_scenario() {
        for seed in 0..200 {
            assert_eq!(Scenario::draw(seed, 4), Scenario::draw(seed, 4));
        }
    }

    #[test]
    fn scenarios_respect_the_fault_bounds() {
        let mut twins = 0;
        let mut liars = 0;
        let mut damaged = [0; Stored::ALL.len()];
        for seed in 0..500 {
            for validators in [4, 7] {
                let scenario = Scenario::draw(seed, validators);
                assert!(scenario.byzantine.len() <= faulty_max(validators), "{scenario:?}");
                assert!(scenario.heal_at() <= FAULTS_END, "{scenario:?}");
                for crash in &scenario.crashes {
                    assert!(scenario.is_honest(crash.validator), "{scenario:?}");
                    if let Some(damage) = crash.damage {
                        assert!(!crash.disk_lost && damage.after < crash.down_for, "{scenario:?}");
                        damaged[damage.target as usize] += 1;
                    }
                }
                let damages = scenario.crashes.iter().filter(|crash| crash.damage.is_some()).count();
                let lost = scenario.crashes.iter().filter(|crash| crash.disk_lost).count();
                if damages > 0 {
                    // A damaged validator may halt: it needs room among the f faulty.
                    assert!(scenario.byzantine.len() + lost + damages <= faulty_max(validators), "{scenario:?}");
                }
                if let Some(liar) = scenario.liar {
                    liars += 1;
                    // Honest in consensus, and one of the f faulty.
                    assert!(scenario.is_honest(liar), "{scenario:?}");
                    assert!(scenario.byzantine.len() + lost + damages < faulty_max(validators), "{scenario:?}");
                }
                for (_, behaviour) in &scenario.byzantine {
                    if let Byzantine::Twin { primary_side } = behaviour {
                        twins += 1;
                        assert!(!primary_side.is_empty());
                        assert!(primary_side.iter().all(|&index| scenario.is_honest(index)));
                    }
                }
            }
        }
        assert!(twins > 0, "some scenarios run twins");
        assert!(liars > 100, "some scenarios run a liar: {liars}");
        assert!(damaged.iter().all(|&count| count > 10), "every kind of stored data is damaged: {damaged:?}");
    }
}
