//! Tally's deterministic simulator: whole clusters of validators in Commonware's deterministic
//! runtime, on a simulated network, under faults drawn from a seed, judged by checkers.
//!
//! A seed draws a [`Scenario`](scenario::Scenario) (links, partitions, crashes, Byzantine
//! validators, a client workload); [`cluster::run`] runs it in simulated time and returns an
//! [`Observation`](check::Observation); [`check::check`] lists the properties it broke. The same
//! seed replays the same run, message for message, so a failing seed is a bug report:
//!
//! ```text
//! cargo run --release -p tally-sim -- --validators 4 --seeds 1 --start-seed <seed>
//! ```
//!
//! A seed draws: link latency, jitter and loss; up to three partitions (symmetric or one way)
//! that heal; up to three crashes of honest validators, each restarted from its storage; with
//! one chance in four, a power loss of the whole cluster that loses or tears unsynced writes;
//! up to f Byzantine validators (a proposer of forged requests or wrong state digests, a twin
//! that equivocates, a validator that withholds its votes); when the scenario has room for
//! another faulty validator, a crashed validator whose disk is lost, or whose stored data (its
//! finalized log, its snapshots, or marshal's archives) has bytes flipped while it is down; when
//! there is room still, a liar (honest in consensus, lying to clients); and two to six clients
//! submitting transfers through random validators, retrying with the same ids, accepting only
//! receipts that verify against the genesis, and reading accounts' proven states.
//!
//! | file           | what lives there                                                         |
//! |----------------|--------------------------------------------------------------------------|
//! | `scenario.rs`  | what a seed draws, and the generator it draws with                       |
//! | `workload.rs`  | the clients' accounts and transfers                                      |
//! | `byzantine.rs` | Byzantine proposers: the honest application, its blocks corrupted        |
//! | `liar.rs`      | the lies Byzantine validators and liars tell clients                     |
//! | `cluster.rs`   | starting validators (twins on split channels), faults, clients, liveness |
//! | `check.rs`     | the checkers, over plain data                                            |

pub mod byzantine;
pub mod check;
pub mod cluster;
pub mod liar;
pub mod scenario;
pub mod workload;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tally_chain::RequestResult;

/// What one seed gave.
#[derive(Debug)]
pub struct SeedReport {
    pub seed: u64,
    pub scenario: scenario::Scenario,
    /// Broken properties; a panic of the run itself (a stall, a simulator bug) is one entry.
    pub failures: Vec<String>,
    /// Whether any failure is a safety violation.
    pub safety_violated: bool,
    /// Simulated time the run covered (zero if it panicked).
    pub simulated: Duration,
    /// Height the honest validators reached.
    pub height: u64,
    /// The digest of the last block of the longest honest log (equal runs end on equal tips).
    pub tip: Option<tally_chain::BlockDigest>,
    /// (validator, peer) pairs the network blocked: misbehaviour the validators caught.
    pub blocked: usize,
    /// Blocks each honest instance refused since it last started: a Byzantine proposer's.
    pub blocks_refused: Vec<u64>,
    /// Honest validators that caught up from a peer's snapshot (their logs start above genesis).
    pub joined_from_snapshot: usize,
    /// Validators whose stored data was damaged, and whether each halted or went on.
    pub damaged: Vec<cluster::Damaged>,
    pub requests_acknowledged: usize,
    /// After the last fault healed: how long until every honest validator finalized a new block.
    pub progressed_after: Option<Duration>,
    /// Wall-clock time the seed took.
    pub wall: Duration,
    /// How many acknowledged transfers got each result (by status name), and how many
    /// acknowledged requests the ledger refused whole: what the workload exercised.
    pub results: BTreeMap<&'static str, usize>,
    /// What the clients' verification of receipts saw: lies told and caught, proven reads.
    pub verification: check::Verification,
}

impl SeedReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Which of the drawn faults a sweep keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Whether scenarios may lose power on every validator at once.
    pub power_loss: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { power_loss: true }
    }
}

/// The command line that replays `seed`.
pub fn replay_command(seed: u64, validators: usize, options: Options) -> String {
    let flags = if options.power_loss { "" } else { " --no-power-loss" };
    format!("cargo run --release -p tally-sim -- --validators {validators} --seeds 1 --start-seed {seed}{flags}")
}

/// Runs `scenario` and checks it.
pub fn run_scenario(scenario: scenario::Scenario) -> SeedReport {
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster::run(&scenario)));
    let wall = started.elapsed();
    let mut report = SeedReport {
        seed: scenario.seed,
        scenario,
        failures: Vec::new(),
        safety_violated: false,
        simulated: Duration::ZERO,
        height: 0,
        tip: None,
        blocked: 0,
        blocks_refused: Vec::new(),
        joined_from_snapshot: 0,
        damaged: Vec::new(),
        requests_acknowledged: 0,
        progressed_after: None,
        wall,
        results: BTreeMap::new(),
        verification: check::Verification::default(),
    };
    match result {
        Ok(run) => {
            let violations = check::check(&run.observation);
            report.safety_violated = violations.iter().any(check::Violation::is_safety);
            report.failures = violations.iter().map(ToString::to_string).collect();
            report.simulated = run.simulated;
            report.height = run.height;
            report.blocked = run.blocked;
            report.blocks_refused = run.blocks_refused;
            report.damaged = run.damaged;
            report.joined_from_snapshot =
                run.observation.validators.iter().filter(|record| record.honest && record.log_start > 0).count();
            report.tip = run
                .observation
                .validators
                .iter()
                .filter(|record| record.honest)
                .max_by_key(|record| record.log.len())
                .and_then(|record| record.log.last())
                .map(tally_chain::Block::digest);
            report.requests_acknowledged = run.observation.acknowledged.len();
            report.verification = run.observation.verification.clone();
            report.progressed_after = run.observation.liveness.and_then(|liveness| liveness.progressed_after);
            for acknowledgement in &run.observation.acknowledged {
                match &acknowledgement.outcome.result {
                    RequestResult::Transfers(results) => {
                        for result in results {
                            *report.results.entry(result.status.name()).or_default() += 1;
                        }
                    }
                    RequestResult::Accounts(_) => {}
                    RequestResult::Refused(_) => *report.results.entry("batch_refused").or_default() += 1,
                }
            }
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            report.failures.push(format!("the run panicked: {message}"));
        }
    }
    report
}

/// Draws and runs the scenario of `seed`.
pub fn run_seed(seed: u64, validators: usize, options: Options) -> SeedReport {
    let mut scenario = scenario::Scenario::draw(seed, validators);
    if !options.power_loss {
        scenario.power_loss = None;
    }
    run_scenario(scenario)
}
