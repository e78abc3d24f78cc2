//! The checkers: what every run must satisfy, judged from what the cluster left behind.
//!
//! They read an [`Observation`], plain data, so a test can fabricate a broken history and show
//! that each checker reports it. The finalized chain of a validator is read from its durable
//! log (what a restart would rebuild from), and the history it reported over its mailbox is
//! compared with that log. The longest honest log is re-executed here from genesis, with the
//! chain crate's own rules, to get independent state digests and request outcomes.
//!
//! - **Agreement.** Honest validators' finalized chains are prefixes of one another: equal block
//!   digests and equal ledger digests at equal heights.
//! - **Durability.** What a validator reported finalized is in its log.
//! - **Validity.** Every finalized block follows its parent by the chain's rules, and the ledger
//!   digests validators reported equal the re-executed ones.
//! - **Exactly once.** Every acknowledged request is in the chain exactly once, at the height
//!   and with the results it was acknowledged with.
//! - **Answers.** Asked at the end, every honest validator that answers gives each acknowledged
//!   request's outcome as it was acknowledged: not another outcome, not "not finalized" at a
//!   height it finalized, not "not held" above the snapshot it joined from. `outcome_repairing`
//!   (a damaged record being fetched again) is not wrong, but it must be over by the end.
//! - **Conservation.** Per ledger, debits equal credits, posted and pending.
//! - **No equivocation.** No honest validator saw evidence (conflicting votes, signed) against
//!   an honest validator that kept its disk, even one whose consensus journal was damaged: the
//!   vote record (`tally_chain::votes`) must keep it from signing against its own past votes.
//! - **Verified answers.** Clients verify every receipt against the genesis (`liar.rs`): no lie
//!   of a lying validator is accepted, no true receipt refused, and every verified read proves
//!   the state the re-executed chain had at its height.
//! - **Liveness.** Once faults heal, every honest validator finalizes a new block within a
//!   stated bound, and every client request is acknowledged within another.
//!
//! A validator whose stored data was damaged (a drawn fault) may halt: a fail-stop, which the
//! scenario counts among the f faulty, so its halt is excused. While it answers, it is held to
//! every property like any honest validator.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tally_chain::application::History;
use tally_chain::{Block, BlockDigest, ChainError, ChainState, Genesis, RequestKey, RequestOutcome, StateDigest};

/// One validator instance at the end of a run (a twin is two instances of one validator).
#[derive(Debug, Clone)]
pub struct ValidatorRecord {
    pub index: usize,
    /// "3", or "3-twin" for the second instance of a twin.
    pub name: String,
    pub honest: bool,
    /// The finalized chain it reported by height (index 0 is genesis); `None` if it stopped
    /// answering.
    pub history: Option<History>,
    /// The blocks in its durable log, by height from 1.
    pub log: Vec<Block>,
    /// The height below the log's first block: 0, or the snapshot the validator joined from.
    pub log_start: u64,
    /// Why its log did not read back whole at the end (`log` holds the part before the damage).
    pub log_damage: Option<String>,
    /// Its stored data was damaged while it was down: it may halt (see the module's notes).
    pub damaged: bool,
    /// It restarted on an empty disk, so it forgot the votes it signed: one of the f faulty,
    /// and excused if it signs conflicting ones.
    pub lost_disk: bool,
}

/// Evidence an honest validator saw against one validator: signed votes that conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The index of the validator the evidence is against.
    pub accused: usize,
    /// The instance that saw it.
    pub seen_by: String,
    pub pieces: u64,
}

/// What an honest validator answered, at the end, when asked for an acknowledged request's
/// outcome.
#[derive(Debug, Clone)]
pub struct Answer {
    pub validator: String,
    pub key: RequestKey,
    pub answer: Result<Option<RequestOutcome>, ChainError>,
}

/// A request a client saw answered, and by which validator.
#[derive(Debug, Clone)]
pub struct Acknowledgement {
    pub key: RequestKey,
    pub outcome: RequestOutcome,
    pub validator: String,
}

/// A read a client verified: the state of an account, proven at `height` by a certified header
/// committing to `state_digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenRead {
    pub validator: String,
    pub account: u128,
    pub height: u64,
    pub state_digest: StateDigest,
}

/// How many lies of one kind the lying validators told, and how many the clients caught.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LieCount {
    pub told: u64,
    pub caught: u64,
}

/// What the clients' verification of receipts saw (`liar.rs`).
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Lies told, by kind (`Lie::name`).
    pub lies: BTreeMap<&'static str, LieCount>,
    /// Lies a client accepted as true (never legitimate).
    pub lies_accepted: Vec<String>,
    /// True receipts from validators that do not lie that a client refused (never legitimate).
    pub true_refused: Vec<String>,
    /// True receipts a client refused because it had seen a later state (legitimate: the
    /// validator was behind).
    pub stale_refused: u64,
    pub proven_reads: Vec<ProvenRead>,
}

impl Verification {
    /// Records a lie told, and whether the client caught it; `accepted` says what the client
    /// believed if it did not.
    pub fn lie(&mut self, lie: &'static str, caught: bool, accepted: impl FnOnce() -> String) {
        let count = self.lies.entry(lie).or_default();
        count.told += 1;
        if caught {
            count.caught += 1;
        } else {
            self.lies_accepted.push(accepted());
        }
    }

    pub fn caught(&self) -> u64 {
        self.lies.values().map(|count| count.caught).sum()
    }
}

/// What the liveness phase measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// The highest finalized height of any honest validator when the last fault healed.
    pub heal_height: u64,
    /// How long after healing every honest validator had finalized past `heal_height`
    /// (`None`: not within `progress_bound`).
    pub progressed_after: Option<Duration>,
    pub progress_bound: Duration,
    /// How long after healing every client request had been acknowledged (`None`: not within
    /// `workload_bound`).
    pub workload_done_after: Option<Duration>,
    pub workload_bound: Duration,
    pub requests: usize,
}

/// Everything a run left behind.
#[derive(Debug, Clone)]
pub struct Observation {
    pub genesis: Genesis,
    pub validators: Vec<ValidatorRecord>,
    pub acknowledged: Vec<Acknowledgement>,
    /// Requests a validator answered `request_expired` for: no block may ever hold them.
    pub expired: Vec<RequestKey>,
    /// The answers of honest validators that answer, asked for every acknowledged request.
    pub answers: Vec<Answer>,
    /// Refusals of well-formed, correctly signed client requests (never legitimate).
    pub refusals: Vec<String>,
    pub liveness: Option<Liveness>,
    /// The accounts whose balances conservation sums.
    pub accounts: Vec<u128>,
    /// What honest validators saw of conflicting votes, at the end.
    pub evidence: Vec<Evidence>,
    pub verification: Verification,
}

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators finalized different blocks at one height.
    Divergence { height: u64, first: String, second: String, first_block: BlockDigest, second_block: BlockDigest },
    /// Two honest validators report different ledger digests after the same block.
    StateDigestMismatch { height: u64, first: String, second: String },
    /// A validator reported a block finalized that its log does not hold.
    NotDurable { validator: String, height: u64 },
    /// A finalized block breaks a chain rule when re-executed.
    InvalidFinalizedBlock { validator: String, height: u64, reason: String },
    /// A reported ledger digest differs from the re-executed one.
    WrongLedgerDigest { validator: String, height: u64 },
    /// An acknowledged request is in the chain `count` times (not once).
    AcknowledgedNotOnce { id: u128, count: usize, validator: String, height: u64 },
    /// A request answered `request_expired` is in the chain after all.
    ExpiredIncluded { id: u128, validator: String, height: u64 },
    /// An acknowledged outcome differs from what the chain says happened.
    WrongAcknowledgement { id: u128, validator: String, acknowledged: String, chain: String },
    /// Debits and credits of a ledger differ.
    MoneyNotConserved { ledger: u32, debits: (u128, u128), credits: (u128, u128) },
    /// An honest validator stopped answering (it halted).
    Halted { validator: String },
    /// An honest validator's log does not read back whole.
    LogUnreadable { validator: String, detail: String },
    /// An honest validator answered an acknowledged request's outcome wrongly.
    WrongAnswer { validator: String, id: u128, answer: String },
    /// An honest validator still answered `outcome_repairing` at the end of the run.
    StillRepairing { validator: String, height: u64 },
    /// An honest client's well-formed request was refused.
    Refused { detail: String },
    /// An honest validator that kept its disk signed conflicting votes.
    Equivocated { validator: String, seen_by: String, pieces: u64 },
    /// No new block at every honest validator within the bound after faults healed.
    NoProgress { heal_height: u64, bound: Duration },
    /// Client requests still unanswered at the bound after faults healed.
    WorkloadStuck { requests: usize, acknowledged: usize, bound: Duration },
    /// A client verified a lying validator's receipt as true.
    LieAccepted { detail: String },
    /// A client refused a true receipt as if it were a lie.
    TrueReceiptRefused { detail: String },
    /// A client verified a read of a state the chain never had at that height.
    WrongProvenRead { validator: String, account: u128, height: u64 },
}

impl Violation {
    /// Safety violations (as opposed to liveness ones).
    pub fn is_safety(&self) -> bool {
        !matches!(
            self,
            Self::NoProgress { .. } | Self::WorkloadStuck { .. } | Self::Halted { .. } | Self::StillRepairing { .. }
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Divergence { height, first, second, first_block, second_block } => write!(
                f,
                "divergence at height {height}: validator {first} finalized {first_block}, validator {second} finalized {second_block}"
            ),
            Self::StateDigestMismatch { height, first, second } => {
                write!(f, "validators {first} and {second} report different ledger digests at height {height}")
            }
            Self::NotDurable { validator, height } => {
                write!(f, "validator {validator} reported height {height} finalized but its log does not hold it")
            }
            Self::InvalidFinalizedBlock { validator, height, reason } => {
                write!(f, "finalized block at height {height} of validator {validator} is invalid: {reason}")
            }
            Self::WrongLedgerDigest { validator, height } => {
                write!(
                    f,
                    "validator {validator} reports a ledger digest at height {height} that re-execution does not give"
                )
            }
            Self::AcknowledgedNotOnce { id, count, validator, height } => write!(
                f,
                "request {id}, acknowledged by validator {validator} as finalized at height {height}, is in the chain {count} times"
            ),
            Self::ExpiredIncluded { id, validator, height } => write!(
                f,
                "request {id} was answered request_expired, yet validator {validator}'s log holds it at height {height}"
            ),
            Self::WrongAcknowledgement { id, validator, acknowledged, chain } => write!(
                f,
                "request {id} was acknowledged by validator {validator} as {acknowledged} but the chain says {chain}"
            ),
            Self::MoneyNotConserved { ledger, debits, credits } => write!(
                f,
                "ledger {ledger}: debits (pending, posted) {debits:?} != credits (pending, posted) {credits:?}"
            ),
            Self::Halted { validator } => write!(f, "honest validator {validator} stopped answering (halted)"),
            Self::LogUnreadable { validator, detail } => {
                write!(f, "the log of validator {validator} does not read back whole: {detail}")
            }
            Self::WrongAnswer { validator, id, answer } => {
                write!(f, "validator {validator} answered request {id}'s acknowledged outcome with {answer}")
            }
            Self::StillRepairing { validator, height } => write!(
                f,
                "validator {validator} still answered outcome_repairing for height {height} at the end of the run"
            ),
            Self::Refused { detail } => write!(f, "a well-formed request was refused: {detail}"),
            Self::Equivocated { validator, seen_by, pieces } => write!(
                f,
                "validator {seen_by} holds {pieces} pieces of evidence that honest validator {validator} signed conflicting votes"
            ),
            Self::NoProgress { heal_height, bound } => {
                write!(f, "not every honest validator finalized past height {heal_height} within {bound:?} of healing")
            }
            Self::WorkloadStuck { requests, acknowledged, bound } => {
                write!(f, "{acknowledged} of {requests} requests acknowledged {bound:?} after faults healed")
            }
            Self::LieAccepted { detail } => write!(f, "a client accepted a lie: {detail}"),
            Self::TrueReceiptRefused { detail } => write!(f, "a client refused a true receipt: {detail}"),
            Self::WrongProvenRead { validator, account, height } => write!(
                f,
                "a client verified validator {validator}'s read of account {account} at height {height}, a state the chain never had there"
            ),
        }
    }
}

/// The chain of block digests a validator's log holds, genesis first.
/// The block digests of a validator's log by height; `None` below the snapshot a validator
/// joined from (its log starts above it).
fn log_chain(genesis: BlockDigest, record: &ValidatorRecord) -> Vec<Option<BlockDigest>> {
    let skipped = std::iter::repeat_n(None, record.log_start as usize);
    std::iter::once(Some(genesis)).chain(skipped).chain(record.log.iter().map(|block| Some(block.digest()))).collect()
}

/// Runs every checker; an empty list means the run passed.
pub fn check(observation: &Observation) -> Vec<Violation> {
    let mut violations = Vec::new();
    let genesis = observation.genesis.block().digest();
    let honest: Vec<&ValidatorRecord> = observation.validators.iter().filter(|record| record.honest).collect();

    // Agreement on blocks: the logs are prefixes of one another.
    let chains: Vec<Vec<Option<BlockDigest>>> = honest.iter().map(|record| log_chain(genesis, record)).collect();
    for (first, first_chain) in chains.iter().enumerate() {
        for (second, second_chain) in chains.iter().enumerate().skip(first + 1) {
            let differs = first_chain.iter().zip(second_chain).find_map(|pair| match pair {
                (Some(a), Some(b)) if a != b => Some((*a, *b)),
                _ => None,
            });
            if let Some((first_block, second_block)) = differs {
                let height = first_chain.iter().position(|digest| *digest == Some(first_block)).unwrap_or(0);
                violations.push(Violation::Divergence {
                    height: height as u64,
                    first: honest[first].name.clone(),
                    second: honest[second].name.clone(),
                    first_block,
                    second_block,
                });
            }
        }
    }

    // No equivocation by an honest validator that kept its votes on disk (a twin is dishonest:
    // its two instances sign for one key).
    for evidence in &observation.evidence {
        let mut instances = observation.validators.iter().filter(|record| record.index == evidence.accused);
        if let Some(accused) = instances.next()
            && accused.honest
            && !accused.lost_disk
            && instances.next().is_none()
        {
            violations.push(Violation::Equivocated {
                validator: accused.name.clone(),
                seen_by: evidence.seen_by.clone(),
                pieces: evidence.pieces,
            });
        }
    }

    // Expiry: a request answered `request_expired` is in no honest validator's log.
    let expired: std::collections::HashSet<&RequestKey> = observation.expired.iter().collect();
    for record in &honest {
        for block in &record.log {
            if let Some(request) = block.requests.iter().find(|request| expired.contains(&request.key())) {
                violations.push(Violation::ExpiredIncluded {
                    id: request.id(),
                    validator: record.name.clone(),
                    height: block.header.height,
                });
            }
        }
    }

    // Verification: no lie accepted, no true receipt refused.
    let verification = &observation.verification;
    for detail in &verification.lies_accepted {
        violations.push(Violation::LieAccepted { detail: detail.clone() });
    }
    for detail in &verification.true_refused {
        violations.push(Violation::TrueReceiptRefused { detail: detail.clone() });
    }

    // Durability: every reported finalized block is in the log, and is the same block.
    for (record, chain) in honest.iter().zip(&chains) {
        // A damaged validator that halted is a fail-stop the scenario has room for.
        let excused = record.damaged && record.history.is_none();
        if let Some(detail) = record.log_damage.as_ref().filter(|_| !excused) {
            violations.push(Violation::LogUnreadable { validator: record.name.clone(), detail: detail.clone() });
        }
        let Some(history) = &record.history else {
            if !excused {
                violations.push(Violation::Halted { validator: record.name.clone() });
            }
            continue;
        };
        if record.log_damage.is_some() {
            // Reported above; the log's blocks stop at the damage.
            continue;
        }
        for (height, entry) in history.iter() {
            if height > 0 && height <= record.log_start {
                // Below the log: the snapshot the validator joined from holds it.
                continue;
            }
            if chain.get(height as usize) != Some(&Some(entry.block)) {
                violations.push(Violation::NotDurable { validator: record.name.clone(), height });
                break;
            }
        }
    }

    // Agreement on state: reported ledger digests at equal heights are equal.
    let reported: Vec<(&ValidatorRecord, &History)> =
        honest.iter().filter_map(|record| record.history.as_ref().map(|history| (*record, history))).collect();
    for (index, (first, first_history)) in reported.iter().enumerate() {
        for (second, second_history) in reported.iter().skip(index + 1) {
            let mismatch = first_history.iter().find(|(height, a)| {
                second_history.get(*height).is_some_and(|b| a.block == b.block && a.state_digest != b.state_digest)
            });
            if let Some((height, _)) = mismatch {
                violations.push(Violation::StateDigestMismatch {
                    height,
                    first: first.name.clone(),
                    second: second.name.clone(),
                });
            }
        }
    }

    // Validity: re-execute the longest honest log from genesis.
    let Some(longest) = honest.iter().filter(|record| record.log_start == 0).max_by_key(|record| record.log.len())
    else {
        return violations;
    };
    let replay = match replay(&observation.genesis, &longest.log) {
        Ok(replay) => replay,
        Err((height, reason)) => {
            violations.push(Violation::InvalidFinalizedBlock { validator: longest.name.clone(), height, reason });
            return violations;
        }
    };
    for (record, history) in &reported {
        let chain = log_chain(genesis, record);
        for (height, entry) in history.iter() {
            let height_index = height as usize;
            // Only heights on the replayed chain can be compared (divergence is reported above).
            if replay.blocks.get(height_index) != Some(&entry.block)
                || chain.get(height_index) != Some(&Some(entry.block))
            {
                break;
            }
            if replay.state_digests[height_index] != entry.state_digest {
                violations.push(Violation::WrongLedgerDigest { validator: record.name.clone(), height });
                break;
            }
        }
    }

    // Proven reads: the state a verified read proves is the chain's at its height.
    for read in &verification.proven_reads {
        let replayed = replay.state_digests.get(read.height as usize);
        if replayed.is_some_and(|digest| *digest != read.state_digest) {
            violations.push(Violation::WrongProvenRead {
                validator: read.validator.clone(),
                account: read.account,
                height: read.height,
            });
        }
    }

    // Exactly once, with the acknowledged results.
    for acknowledgement in &observation.acknowledged {
        let id = acknowledgement.key.id;
        let count = replay.occurrences.get(&acknowledgement.key).copied().unwrap_or(0);
        if count != 1 {
            violations.push(Violation::AcknowledgedNotOnce {
                id,
                count,
                validator: acknowledgement.validator.clone(),
                height: acknowledgement.outcome.height,
            });
            continue;
        }
        let chain = &replay.outcomes[&acknowledgement.key];
        if *chain != acknowledgement.outcome {
            violations.push(Violation::WrongAcknowledgement {
                id,
                validator: acknowledgement.validator.clone(),
                acknowledged: format!("{:?}", acknowledgement.outcome),
                chain: format!("{chain:?}"),
            });
        }
    }

    // Answers: what honest validators say about acknowledged outcomes at the end.
    for answer in &observation.answers {
        let Some(record) = honest.iter().find(|record| record.name == answer.validator) else { continue };
        let Some(acknowledgement) = observation.acknowledged.iter().find(|ack| ack.key == answer.key) else {
            continue;
        };
        let height = acknowledgement.outcome.height;
        let finalized = record.history.as_ref().map_or(0, History::height);
        let wrong = match &answer.answer {
            Ok(Some(outcome)) => *outcome != acknowledgement.outcome,
            Ok(None) => finalized >= height,
            Err(ChainError::OutcomeNotHeld { height }) => *height > record.log_start,
            Err(ChainError::OutcomeRepairing { height }) => {
                violations.push(Violation::StillRepairing { validator: record.name.clone(), height: *height });
                false
            }
            // Stopped or overloaded: it did not answer.
            Err(ChainError::Busy) => false,
            Err(_) => true,
        };
        if wrong {
            violations.push(Violation::WrongAnswer {
                validator: record.name.clone(),
                id: answer.key.id,
                answer: format!("{:?}", answer.answer),
            });
        }
    }

    // Conservation of money per ledger, in the final replayed state.
    let mut sums: BTreeMap<u32, [u128; 4]> = BTreeMap::new();
    for account in replay.state.ledger().lookup_accounts(&observation.accounts) {
        let sum = sums.entry(account.ledger).or_default();
        sum[0] += account.debits_pending;
        sum[1] += account.debits_posted;
        sum[2] += account.credits_pending;
        sum[3] += account.credits_posted;
    }
    for (ledger, [debits_pending, debits_posted, credits_pending, credits_posted]) in sums {
        if debits_pending != credits_pending || debits_posted != credits_posted {
            violations.push(Violation::MoneyNotConserved {
                ledger,
                debits: (debits_pending, debits_posted),
                credits: (credits_pending, credits_posted),
            });
        }
    }

    for detail in &observation.refusals {
        violations.push(Violation::Refused { detail: detail.clone() });
    }

    if let Some(liveness) = &observation.liveness {
        if liveness.progressed_after.is_none() {
            violations
                .push(Violation::NoProgress { heal_height: liveness.heal_height, bound: liveness.progress_bound });
        }
        if liveness.workload_done_after.is_none() {
            violations.push(Violation::WorkloadStuck {
                requests: liveness.requests,
                acknowledged: observation.acknowledged.len(),
                bound: liveness.workload_bound,
            });
        }
    }
    violations
}

/// A log re-executed from genesis.
#[derive(Debug)]
pub struct Replay {
    /// Block digests by height (0 is genesis).
    pub blocks: Vec<BlockDigest>,
    /// Ledger digests after each height.
    pub state_digests: Vec<StateDigest>,
    /// How many times each request appears in the chain.
    pub occurrences: BTreeMap<RequestKey, usize>,
    /// Each request's outcome (its first appearance).
    pub outcomes: BTreeMap<RequestKey, RequestOutcome>,
    pub state: ChainState,
}

/// Re-executes `log` (blocks from height 1) from `genesis` with the chain's rules, or names
/// the first height whose block breaks one.
pub fn replay(genesis: &Genesis, log: &[Block]) -> Result<Replay, (u64, String)> {
    let mut state = ChainState::genesis(&genesis.block());
    let mut replay = Replay {
        blocks: vec![state.block()],
        state_digests: vec![state.state_digest()],
        occurrences: BTreeMap::new(),
        outcomes: BTreeMap::new(),
        state: state.clone(),
    };
    for block in log {
        // Counted before the rules run, so that a repeat is counted even where the rules
        // would refuse it.
        for request in &block.requests {
            *replay.occurrences.entry(request.key()).or_default() += 1;
        }
        state.check_child(genesis, block).map_err(|error| (block.header.height, error.to_string()))?;
        let (next, outcomes) = state.execute(block);
        for (key, outcome) in outcomes {
            replay.outcomes.entry(key).or_insert(outcome);
        }
        state = next;
        replay.blocks.push(state.block());
        replay.state_digests.push(state.state_digest());
    }
    replay.state = state;
    Ok(replay)
}
