//! The application's synchronous core: every decision the Simplex application makes, with no
//! IO, no clock and no channels. The actor feeds it inputs (a block from a peer, a proposal or
//! verification request, a finalization, the time) and does what it answers.
//!
//! Blocks above the finalized height are executed speculatively as soon as they are verified,
//! because a block commits to the ledger digest after its parent and its parent is usually not
//! finalized yet when the block is proposed. Two states are kept, each changed in place: the
//! finalized state, which executes each block once it is finalized, and the speculative tip,
//! which executes verified blocks ahead of finality. Neither copies the ledger in the common
//! case of one chain growing. The tip is rebuilt from a copy of the finalized state only when
//! a block builds on a branch other than the tip's (after a failed view), and a block whose
//! speculative and final executions disagree halts the validator.
//!
//! Memory holds the pending blocks, the finalized blocks not yet in the log plus the last
//! `RECENT_HEIGHTS_KEPT` of them (with their requests' outcomes), and one small entry per
//! finalized height since this validator started. Older blocks and outcomes are on disk; the
//! actor reads them when asked (`OutcomeLookup::Stored`).
//!
//! A validator starting with an empty disk can start from a peer's snapshot (`start_from`) once
//! the actor checked it against the certified header of the block above it.

use crate::application::activity::{ConsensusActivity, Observed, ValidatorActivity};
use crate::application::log::LogRecord;
use crate::block::{Block, BlockContext, BlockDigest, Commitment, Header, StateDigest};
use crate::consensus::Finalization;
use crate::constants::{
    BLOCK_HEADER_SIZE, BLOCK_REQUESTS_MAX, BLOCK_SIZE_MAX, BLOCK_TIMESTAMP_DRIFT_NS_MAX, PENDING_BLOCKS_MAX,
    REQUEST_TTL_MAX_NS,
};
use crate::error::ChainError;
use crate::evidence::{Admitted, Evidence, EvidenceKept};
use crate::execution::{ChainState, RequestOutcome};
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::mempool::Mempool;
use crate::request::{Request, RequestKey, VerifiedRequest};
use commonware_codec::EncodeSize as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

/// The answer to "can the state after this block be computed?".
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Yes: the block and its ancestors passed every check.
    Ready,
    /// A block on the way back to a known state has not arrived yet.
    Missing(BlockDigest),
    /// The block's timestamp is ahead of the local clock by more than the allowed drift: judge
    /// it again later (a clock difference is temporary, so it is not a verdict).
    Later,
    Invalid(ChainError),
}

/// The most bytes of pending blocks, counting the ancestors of a finalized block that a
/// validator far behind holds while it walks the finalized chain down to its own height.
pub const FINALIZED_ANCESTORS_SIZE_MAX: usize = 1024 * 1024 * 1024;

/// Finalized heights whose blocks and outcomes stay in memory after they reach the log.
pub const RECENT_HEIGHTS_KEPT: u64 = 64;

/// Where a request's outcome is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeLookup {
    /// Final, and here.
    Final(RequestOutcome),
    /// Final at this height, and only on disk: read it from the finalized log.
    Stored { height: u64 },
    /// Not in the finalized chain (yet).
    NotFinal,
}

/// The finalized chain's entries from `base` up, as far as this validator has them in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The height of `entries[0]`: 0 from genesis, else the snapshot this validator started
    /// from.
    pub base: u64,
    pub entries: Vec<FinalizedEntry>,
}

impl History {
    pub fn get(&self, height: u64) -> Option<&FinalizedEntry> {
        height.checked_sub(self.base).and_then(|index| self.entries.get(usize::try_from(index).ok()?))
    }

    /// The highest height (the finalized one).
    pub fn height(&self) -> u64 {
        self.base + self.entries.len() as u64 - 1
    }

    /// Whether `other` has the same entry at every height both hold.
    pub fn agrees_with(&self, other: &History) -> bool {
        self.iter().all(|(height, entry)| other.get(height).is_none_or(|theirs| theirs == entry))
    }

    /// (height, entry) pairs from the base up.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &FinalizedEntry)> {
        self.entries.iter().enumerate().map(|(index, entry)| (self.base + index as u64, entry))
    }
}

/// How far a finalization got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalized {
    /// Executed up to and including the block.
    Done { height: u64 },
    /// Waiting for this block to arrive.
    Missing(BlockDigest),
}

/// A finalized block's place in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalizedEntry {
    pub block: BlockDigest,
    /// The state digest after executing the block.
    pub state_digest: StateDigest,
}

/// A finalized block with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedBlock {
    pub height: u64,
    pub digest: BlockDigest,
    pub block: Block,
    /// The state digest after executing the block.
    pub state_digest: StateDigest,
}

/// A summary of a validator's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub finalized_height: u64,
    pub finalized_block: BlockDigest,
    /// The digest the next block commits to (the ledger's and the included requests').
    pub state_digest: StateDigest,
    /// The ledger's own digest (what account and transfer proofs are checked against).
    pub ledger_digest: StateDigest,
    pub mempool_requests: usize,
    /// Requests finalized so far.
    pub requests_finalized: usize,
    /// The included requests whose names the chain still holds for retries (those expired less
    /// than `REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS` ago): bounded by the request rate, not the
    /// chain's age.
    pub request_names_held: usize,
    /// Ledger events (accounts and transfers to create) in the finalized blocks so far.
    pub events_finalized: u64,
    /// Blocks this validator refused to vote for because they broke a rule.
    pub blocks_refused: u64,
    /// The highest consensus view this validator has seen.
    pub view: u64,
    /// The leader of that view.
    pub leader: ValidatorKey,
    /// What this validator has seen of each validator, in key order.
    pub validators: Vec<ValidatorActivity>,
    /// Pieces of evidence of validators signing conflicting messages.
    pub evidence: u64,
    /// Damaged finalized records found and not yet fetched again from peers (see `repair.rs`).
    pub records_repairing: u64,
    /// Finalized blocks marshal delivered that this validator had already executed (after a
    /// restart, or below the snapshot it started from).
    pub blocks_delivered_again: u64,
}

/// The application's state. See the module documentation.
#[derive(Debug)]
pub struct ApplicationState {
    genesis: Genesis,
    genesis_block: Block,
    /// Blocks above the finalized height (received or built).
    pending: HashMap<BlockDigest, Block>,
    /// The encoded size of `pending`.
    pending_bytes: usize,
    /// Finalized blocks not yet persisted, and the last `RECENT_HEIGHTS_KEPT` persisted ones,
    /// with each request's outcome and the block's own finalization certificate, by height.
    recent: BTreeMap<u64, (Block, Vec<(RequestKey, RequestOutcome)>, Option<Finalization>)>,
    /// Finalization certificates of blocks not yet finalized here, by view (Simplex can report a
    /// finalization before its block arrives). At most `PENDING_BLOCKS_MAX`.
    certificates: BTreeMap<u64, Finalization>,
    /// The height up to which the log holds the finalized blocks.
    persisted: u64,
    /// The finalized chain by height, from `history.base` (genesis, or the snapshot this
    /// validator started from).
    history: History,
    /// The state after the last finalized block. Shared with readers, who hold it briefly: a
    /// finalization changes it in place unless a reader still holds it, then it is copied.
    finalized: Arc<ChainState>,
    /// The speculative state after some block above the finalized one, or `None` until needed
    /// (and after a finalization picked another branch).
    tip: Option<ChainState>,
    /// Pending blocks that passed every check, and what a child of each commits to.
    executed: HashMap<BlockDigest, Commitment>,
    /// Pending blocks that broke a rule, and the rule.
    invalid: HashMap<BlockDigest, ChainError>,
    mempool: Mempool,
    blocks_refused: u64,
    activity: ConsensusActivity,
    /// Evidence of misbehaviour, verified against the genesis (`evidence.rs`).
    evidence: EvidenceKept,
    /// False only on a re-founded chain until its founding state is restored.
    founded: bool,
}

impl ApplicationState {
    pub fn new(genesis: Genesis) -> Self {
        let block = genesis.block();
        // A re-founded chain starts from its founding state, which the actor restores from the
        // snapshot `tally restore` seeded (`start_from`); an empty ledger stands in until then.
        let founded = genesis.founding().is_none();
        let finalized = Arc::new(if founded { ChainState::genesis(&block) } else { ChainState::unfounded(&block) });
        let history = History {
            base: 0,
            entries: vec![FinalizedEntry {
                block: block.digest(),
                state_digest: block.header.commitment().state_digest,
            }],
        };
        Self {
            activity: ConsensusActivity::new(&genesis),
            genesis,
            genesis_block: block,
            pending: HashMap::new(),
            pending_bytes: 0,
            recent: BTreeMap::new(),
            certificates: BTreeMap::new(),
            persisted: 0,
            history,
            finalized,
            tip: None,
            executed: HashMap::new(),
            invalid: HashMap::new(),
            mempool: Mempool::new(),
            blocks_refused: 0,
            evidence: EvidenceKept::default(),
            founded,
        }
    }

    /// Whether this is a re-founded chain whose founding state is not restored yet: nothing
    /// can be executed until it is.
    pub fn awaits_founding_state(&self) -> bool {
        !self.founded
    }

    /// Starts from a snapshot (this validator's own, read back on restart, or a peer's that
    /// was checked against the finalized chain) instead of genesis. Everything at or below its
    /// height is on disk or held by peers, nothing of it in memory.
    pub fn start_from(&mut self, state: ChainState) {
        let height = state.height();
        assert!(height >= self.finalized.height(), "a snapshot never moves the chain back");
        if height == 0 {
            assert_eq!(
                state.commitment(),
                self.genesis_block.header.commitment(),
                "a state at height 0 is the one the genesis block commits to"
            );
        }
        self.founded = true;
        self.history = History {
            base: height,
            entries: vec![FinalizedEntry { block: state.block(), state_digest: state.state_digest() }],
        };
        let included: Vec<RequestKey> = self.mempool.keys().filter(|key| state.includes(key)).cloned().collect();
        self.mempool.remove(included.iter());
        self.mempool.remove_expired(state.timestamp_ns());
        self.finalized = Arc::new(state);
        self.recent.clear();
        self.tip = None;
        self.prune();
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn genesis_digest(&self) -> BlockDigest {
        self.genesis_block.digest()
    }

    /// A pending block, or a finalized one still in memory.
    pub fn block(&self, digest: &BlockDigest) -> Option<&Block> {
        if let Some(block) = self.pending.get(digest) {
            return Some(block);
        }
        if *digest == self.genesis_block.digest() {
            return Some(&self.genesis_block);
        }
        self.recent.values().map(|(block, _, _)| block).find(|block| block.digest() == *digest)
    }

    pub fn finalized_height(&self) -> u64 {
        self.finalized.height()
    }

    /// The finalized chain, by height, since this validator's base.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Where the outcome of request `key` is.
    pub fn outcome(&self, key: &RequestKey) -> OutcomeLookup {
        let Some(height) = self.finalized.inclusion_height(key) else {
            return OutcomeLookup::NotFinal;
        };
        match self.recent.get(&height) {
            Some((_, outcomes, _)) => outcomes
                .iter()
                .find(|(included, _)| included == key)
                .map_or(OutcomeLookup::Stored { height }, |(_, outcome)| OutcomeLookup::Final(outcome.clone())),
            None => OutcomeLookup::Stored { height },
        }
    }

    /// The finalized blocks the log lacks (above `log_height`), as log records.
    pub fn unpersisted(&self, log_height: u64) -> Vec<LogRecord> {
        self.recent
            .range(log_height + 1..)
            .map(|(_, (block, outcomes, finalization))| LogRecord {
                block: block.clone(),
                outcomes: outcomes.iter().map(|(_, outcome)| outcome.clone()).collect(),
                finalization: finalization.clone(),
            })
            .collect()
    }

    /// Keeps a block's finalization certificate, to be written to the log beside the block. A
    /// certificate for a block already written is not kept: the log is append-only, and the
    /// block stays proven by the certificate of a block above it.
    pub fn certify(&mut self, finalization: Finalization) {
        let digest = finalization.proposal.payload;
        let persisted = self.persisted;
        if let Some((_, (_, _, slot))) =
            self.recent.range_mut(persisted + 1..).find(|(_, (block, _, _))| block.digest() == digest)
        {
            slot.get_or_insert(finalization);
            return;
        }
        // A block at or below the last finalized view is finalized already (or never will be).
        let view = finalization.proposal.round.view().get();
        if self.recent.values().next_back().is_some_and(|(block, _, _)| view <= block.header.view) {
            return;
        }
        self.certificates.insert(view, finalization);
        while self.certificates.len() > PENDING_BLOCKS_MAX {
            self.certificates.pop_first();
        }
    }

    /// A finalized block's header and its own finalization certificate, if it is in memory.
    pub fn finalized_header(&self, height: u64) -> Option<(&Header, Option<&Finalization>)> {
        let (block, _, finalization) = self.recent.get(&height)?;
        Some((&block.header, finalization.as_ref()))
    }

    /// Notes that the log holds every finalized block up to `height`, and forgets the blocks
    /// and outcomes that are now only needed on disk.
    pub fn persisted(&mut self, height: u64) {
        assert!(height <= self.finalized.height());
        self.persisted = height;
        let keep_from = height.saturating_sub(RECENT_HEIGHTS_KEPT) + 1;
        self.recent = self.recent.split_off(&keep_from);
    }

    pub fn status(&self) -> Status {
        let view = self.activity.view();
        Status {
            finalized_height: self.finalized.height(),
            finalized_block: self.finalized.block(),
            state_digest: self.finalized.state_digest(),
            ledger_digest: self.finalized.ledger_digest(),
            mempool_requests: self.mempool.len(),
            requests_finalized: self.finalized.requests() as usize,
            request_names_held: self.finalized.requests_included(),
            events_finalized: self.finalized.events(),
            blocks_refused: self.blocks_refused,
            view,
            leader: self.activity.leader(view),
            validators: self.activity.validators().to_vec(),
            evidence: self.activity.evidence(),
            // The actor, which runs the repairs, fills this in.
            records_repairing: 0,
            blocks_delivered_again: 0,
        }
    }

    /// Notes a consensus event (for the status only).
    pub fn observe(&mut self, observed: Observed, now: SystemTime) {
        self.activity.record(observed, now);
    }

    /// Takes back the evidence the evidence file held (`read_file` verified it), counting it in
    /// the status as when it was first seen.
    pub fn restore_evidence(&mut self, pieces: Vec<Evidence>, now: SystemTime) {
        assert!(self.evidence.pieces().is_empty(), "evidence is restored once, before any is reported");
        for piece in &pieces {
            self.activity.record(Observed::Fault { signer: piece.signer(), view: piece.view() }, now);
        }
        self.evidence = EvidenceKept::restore(pieces);
    }

    /// Judges a piece of evidence Simplex reported: one that verifies against the genesis is
    /// counted in the status (`faults` of the accused, `evidence`), and kept if it is new and
    /// there is room (the caller then writes it to the evidence file).
    pub fn admit_evidence(&mut self, evidence: Evidence, now: SystemTime) -> Admitted {
        let observed = Observed::Fault { signer: evidence.signer(), view: evidence.view() };
        let admitted = self.evidence.admit(evidence, &self.genesis);
        if matches!(admitted, Admitted::New(_) | Admitted::Full(_)) {
            self.activity.record(observed, now);
        }
        admitted
    }

    /// The evidence kept, oldest first.
    pub fn evidence(&self) -> &[Evidence] {
        self.evidence.pieces()
    }

    /// The state after the last finalized block. It never changes: finalizing a later block
    /// replaces it, so readers can hold it as long as they like.
    pub fn finalized_state(&self) -> Arc<ChainState> {
        self.finalized.clone()
    }

    /// The finalized block at `height` if it is in memory (genesis always is).
    pub fn finalized_block(&self, height: u64) -> Option<FinalizedBlock> {
        let entry = self.history.get(height)?;
        let block = if height == 0 { &self.genesis_block } else { &self.recent.get(&height)?.0 };
        Some(FinalizedBlock { height, digest: entry.block, block: block.clone(), state_digest: entry.state_digest })
    }

    /// Accepts a client request (from the client or a peer's gossip) at local time `now_ns`, its
    /// signature already checked: the client must be listed, and the request not already
    /// finalized or held, nor expired, nor expiring too far ahead.
    pub fn submit(&mut self, request: VerifiedRequest, now_ns: u64) -> Result<(), ChainError> {
        if !self.genesis.allows_client(request.client()) {
            return Err(ChainError::UnknownClient);
        }
        if self.finalized.includes(&request.key()) {
            return Err(ChainError::DuplicateRequest { id: request.id() });
        }
        // A copy held here (perhaps signed with another expiry) may still be included: the
        // mempool judges it as a retry. Otherwise the chain says whether this one can be.
        if !self.mempool.contains(&request.key()) {
            self.finalized.check_unincluded(&request)?;
            // Far ahead (gossip skips the API's check), it would hold a place in the mempool
            // for a long while before any block may include it.
            let latest_ns = now_ns
                .max(self.finalized.timestamp_ns())
                .saturating_add(REQUEST_TTL_MAX_NS + BLOCK_TIMESTAMP_DRIFT_NS_MAX);
            if request.expires_ns() > latest_ns {
                return Err(ChainError::ExpiryTooFar { id: request.id(), expires_ns: request.expires_ns(), latest_ns });
            }
        }
        self.mempool.insert(request)
    }

    /// Held requests due to be gossiped again (see `Mempool::tick_gossip`), leaving out young
    /// ones the speculative tip's chain already includes; every held one with `all_due`. Call
    /// once per gossip tick.
    pub fn requests_to_gossip_again(&mut self, size_max: usize, all_due: bool) -> Vec<Request> {
        // `tip_usable`, by field, since the mempool is borrowed mutably beside it.
        let chain = match &self.tip {
            Some(tip) if tip.height() >= self.finalized.height() => tip,
            _ => &*self.finalized,
        };
        self.mempool.tick_gossip(|key| chain.includes(key), size_max, all_due)
    }

    /// Stores a block received from a peer (or built here). Its digest is computed from its
    /// contents, never taken from the sender.
    pub fn insert_block(&mut self, block: Block) -> Result<BlockDigest, ChainError> {
        self.insert(block, false)
    }

    /// Stores a block the caller knows is an ancestor of a finalized block (its digest is the
    /// parent of a block on a finalized chain being walked down). Such blocks are bounded by
    /// their bytes, `FINALIZED_ANCESTORS_SIZE_MAX`, rather than by `PENDING_BLOCKS_MAX`, so that
    /// a validator far behind can walk down a long finalized chain of small blocks.
    pub fn insert_finalized_ancestor(&mut self, block: Block) -> Result<BlockDigest, ChainError> {
        self.insert(block, true)
    }

    fn insert(&mut self, block: Block, finalized_ancestor: bool) -> Result<BlockDigest, ChainError> {
        let digest = block.digest();
        if self.pending.contains_key(&digest) {
            return Ok(digest);
        }
        if block.header.height <= self.finalized.height() {
            // Too old to matter: at or below the finalized height.
            return Err(ChainError::ConflictsWithFinalized { height: self.finalized.height() });
        }
        let full = if finalized_ancestor {
            self.pending_bytes >= FINALIZED_ANCESTORS_SIZE_MAX
        } else {
            self.pending.len() >= PENDING_BLOCKS_MAX
        };
        if full {
            return Err(ChainError::TooManyPendingBlocks);
        }
        self.pending_bytes += block.encode_size();
        self.pending.insert(digest, block);
        Ok(digest)
    }

    /// Whether the tip can be the base of a walk: it is at or above the finalized block (a
    /// finalization drops a tip that is not on its branch).
    fn tip_usable(&self) -> Option<&ChainState> {
        self.tip.as_ref().filter(|tip| tip.height() >= self.finalized.height())
    }

    /// Puts the tip at the finalized block: by executing the finalized blocks it lacks if it is
    /// behind on the finalized chain, else by copying the finalized state.
    fn tip_to_finalized(&mut self) {
        let height = self.finalized.height();
        if let Some(tip) = &mut self.tip
            && tip.height() < height
            && self.history.get(tip.height()).is_some_and(|entry| entry.block == tip.block())
            && (tip.height() + 1..=height).all(|height| self.recent.contains_key(&height))
        {
            for (height, (block, _, _)) in self.recent.range(tip.height() + 1..) {
                tip.apply(block);
                let entry = self.history.get(*height).expect("finalized heights have entries");
                assert_eq!(tip.state_digest(), entry.state_digest, "execution is deterministic");
            }
            return;
        }
        self.tip = Some(ChainState::clone(&self.finalized));
    }

    /// Moves the tip to the state after `digest`, executing (and checking) the pending blocks
    /// on the way from the tip or the finalized block.
    fn execute_to(&mut self, digest: BlockDigest) -> Lookup {
        assert!(self.founded, "nothing is executed before a re-founded chain's founding state is restored");
        let tip = self.tip_usable().map(ChainState::block);
        let mut path = Vec::new();
        let mut cursor = digest;
        let from_tip = loop {
            if Some(cursor) == tip {
                break true;
            }
            if cursor == self.finalized.block() {
                break false;
            }
            if let Some(error) = self.invalid.get(&cursor) {
                return Lookup::Invalid(error.clone());
            }
            let Some(block) = self.pending.get(&cursor) else {
                return Lookup::Missing(cursor);
            };
            if block.header.height <= self.finalized.height() {
                // The walk passed the finalized height without meeting the finalized block.
                return Lookup::Invalid(ChainError::ConflictsWithFinalized { height: self.finalized.height() });
            }
            path.push(cursor);
            cursor = block.header.parent;
        };
        if !from_tip {
            self.tip_to_finalized();
        }
        let tip = self.tip.as_mut().expect("the walk's base is the tip");
        // Requests held in the mempool had their signatures checked on arrival.
        let mempool = &self.mempool;
        let verified = |request: &Request| mempool.get(&request.key()) == Some(request);
        for digest in path.into_iter().rev() {
            let block = &self.pending[&digest];
            if let Err(error) = tip.check_child_with(&self.genesis, block, verified) {
                self.invalid.insert(digest, error.clone());
                return Lookup::Invalid(error);
            }
            tip.apply(block);
            self.executed.insert(digest, tip.commitment());
        }
        Lookup::Ready
    }

    /// Whether the state after `digest` can be computed: the block and its pending ancestors
    /// pass every check. Executes them on the tip if they were not executed before.
    pub fn judge(&mut self, digest: BlockDigest) -> Lookup {
        if digest == self.finalized.block() || self.executed.contains_key(&digest) {
            return Lookup::Ready;
        }
        self.execute_to(digest)
    }

    /// Builds a block on `parent` for `view` at local time `now_ns`, from the oldest mempool
    /// requests the parent's chain has not included. Returns the lookup that blocked it if the
    /// parent's state is not known.
    pub fn propose(&mut self, context: BlockContext, now_ns: u64) -> Result<Block, Lookup> {
        let parent = context.parent;
        match self.execute_to(parent) {
            Lookup::Ready => {}
            other => return Err(other),
        }
        let state = self.tip.as_ref().expect("execute_to leaves a tip");
        let timestamp_ns = now_ns.max(state.timestamp_ns() + 1);
        let requests = self.mempool.select(
            timestamp_ns,
            |key| state.includes(key),
            BLOCK_REQUESTS_MAX,
            BLOCK_SIZE_MAX - BLOCK_HEADER_SIZE,
        );
        let block = Block::new(context, state.height() + 1, timestamp_ns, state.commitment(), requests);
        let digest = self.insert_block(block.clone()).map_err(Lookup::Invalid)?;
        // A proposer is committed to verifying its own block: it must pass every check.
        match self.execute_to(digest) {
            Lookup::Ready => {}
            other => panic!("own proposal {digest} does not execute: {other:?}"),
        }
        Ok(block)
    }

    /// Whether a block on `parent` should be proposed at local time `now_ns` rather than held
    /// for the heartbeat: the mempool holds a request the parent's chain has not included and
    /// the block may include, or the parent changed the state (it carried requests, or forgot
    /// expired request names): the next header commits to the new state and to the parent's
    /// results, which receipts and proven reads wait for, so it follows at once.
    pub fn should_propose_now(&mut self, parent: BlockDigest, now_ns: u64) -> Result<bool, Lookup> {
        match self.execute_to(parent) {
            Lookup::Ready => {}
            other => return Err(other),
        }
        let state = self.tip.as_ref().expect("execute_to leaves a tip");
        if let Some(block) = self.block(&parent)
            && (!block.requests.is_empty() || block.header.state_digest != state.state_digest())
        {
            return Ok(true);
        }
        // The timestamp `propose` would give the block.
        let timestamp_ns = now_ns.max(state.timestamp_ns() + 1);
        Ok(!self.mempool.select(timestamp_ns, |key| state.includes(key), 1, usize::MAX).is_empty())
    }

    /// Judges block `digest` proposed in `view` on `parent`, at local time `now_ns`.
    pub fn verify(&mut self, context: &BlockContext, digest: BlockDigest, now_ns: u64) -> Lookup {
        let Some(block) = self.block(&digest) else {
            return Lookup::Missing(digest);
        };
        let header = &block.header;
        let verdict = if header.parent != context.parent {
            Lookup::Invalid(ChainError::WrongParent { expected: context.parent, found: header.parent })
        } else if header.view != context.view {
            Lookup::Invalid(ChainError::WrongView { expected: context.view, found: header.view })
        } else if header.epoch != context.epoch {
            Lookup::Invalid(ChainError::WrongEpoch { found: header.epoch })
        } else if header.leader != context.leader {
            Lookup::Invalid(ChainError::WrongContext("the leader is not the round's leader"))
        } else if header.parent_view != context.parent_view {
            Lookup::Invalid(ChainError::WrongContext("the parent view is not the certified parent's view"))
        } else if block.header.timestamp_ns > now_ns.saturating_add(BLOCK_TIMESTAMP_DRIFT_NS_MAX) {
            Lookup::Later
        } else {
            self.judge(digest)
        };
        if matches!(verdict, Lookup::Invalid(_)) {
            self.blocks_refused += 1;
        }
        verdict
    }

    /// Executes the finalized chain up to `digest`. A block whose state digest disagrees with
    /// ours, or that breaks a rule here, is a safety failure: the validator must halt.
    pub fn finalize(&mut self, digest: BlockDigest) -> Result<Finalized, ChainError> {
        assert!(self.founded, "nothing is executed before a re-founded chain's founding state is restored");
        if let Some(block) = self.block(&digest)
            && block.header.height <= self.finalized.height()
        {
            let height = block.header.height;
            let entry = self.history.get(height).map(|entry| entry.block);
            if entry != Some(digest) {
                return Err(ChainError::FinalizedBlockInvalid {
                    height,
                    block: digest,
                    reason: "conflicts with the finalized chain".into(),
                });
            }
            return Ok(Finalized::Done { height });
        }
        // Collect the path down to the finalized block.
        let mut path = Vec::new();
        let mut cursor = digest;
        while cursor != self.finalized.block() {
            let Some(block) = self.pending.get(&cursor) else {
                return Ok(Finalized::Missing(cursor));
            };
            if block.header.height <= self.finalized.height() {
                return Err(ChainError::FinalizedBlockInvalid {
                    height: block.header.height,
                    block: cursor,
                    reason: "does not descend from the finalized chain".into(),
                });
            }
            path.push(cursor);
            cursor = block.header.parent;
        }
        for digest in path.into_iter().rev() {
            let block = self.pending.remove(&digest).expect("the path is pending");
            self.pending_bytes -= block.encode_size();
            let (height, committed) = (block.header.height, block.header.commitment());
            let local = self.finalized.commitment();
            if committed.state_digest != local.state_digest {
                return Err(ChainError::StateDivergence {
                    height,
                    block: digest,
                    expected: hex(&committed.state_digest),
                    local: hex(&local.state_digest),
                });
            }
            if committed.results_root != local.results_root {
                return Err(ChainError::StateDivergence {
                    height,
                    block: digest,
                    expected: format!("results root {}", committed.results_root),
                    local: format!("results root {}", local.results_root),
                });
            }
            // A block executed speculatively passed every check on this same state.
            if !self.executed.contains_key(&digest)
                && let Err(error) = self.finalized.check_child(&self.genesis, &block)
            {
                return Err(ChainError::FinalizedBlockInvalid { height, block: digest, reason: error.to_string() });
            }
            let outcomes = Arc::make_mut(&mut self.finalized).apply(&block);
            let after = self.finalized.commitment();
            if let Some(speculative) = self.executed.get(&digest)
                && *speculative != after
            {
                return Err(ChainError::FinalizedBlockInvalid {
                    height,
                    block: digest,
                    reason: format!(
                        "executing it again gave state digest {} and results root {} where the first \
                         execution gave {} and {}",
                        hex(&after.state_digest),
                        after.results_root,
                        hex(&speculative.state_digest),
                        speculative.results_root
                    ),
                });
            }
            self.history.entries.push(FinalizedEntry { block: digest, state_digest: after.state_digest });
            self.mempool.remove(outcomes.iter().map(|(key, _)| key));
            let expired = self.mempool.remove_expired(block.header.timestamp_ns);
            if expired > 0 {
                tracing::info!(
                    height,
                    expired,
                    "dropped requests that expired before a block included them (their clients get `request_expired`)"
                );
            }
            let finalization = self
                .certificates
                .remove(&block.header.view)
                .filter(|finalization| finalization.proposal.payload == digest);
            self.recent.insert(height, (block, outcomes, finalization));
        }
        self.prune();
        Ok(Finalized::Done { height: self.finalized.height() })
    }

    /// Re-executes a block read back from the finalized log (on restart).
    pub fn restore(&mut self, block: Block, finalization: Option<Finalization>) -> Result<(), ChainError> {
        let (digest, height) = (block.digest(), block.header.height);
        if height != self.finalized.height() + 1 || block.header.parent != self.finalized.block() {
            return Err(ChainError::Storage(format!("log block at height {height} does not extend the chain")));
        }
        if let Some(finalization) = finalization {
            self.certify(finalization);
        }
        self.insert_block(block)?;
        match self.finalize(digest)? {
            Finalized::Done { height: done } if done == height => Ok(()),
            other => Err(ChainError::Storage(format!("log block at height {height} did not execute: {other:?}"))),
        }
    }

    /// Drops pending blocks, states and verdicts at or below the finalized height: they lost.
    fn prune(&mut self) {
        let height = self.finalized.height();
        let mut removed = 0;
        self.pending.retain(|_, block| {
            let keep = block.header.height > height;
            if !keep {
                removed += block.encode_size();
            }
            keep
        });
        self.pending_bytes -= removed;
        // Blocks finalized from now on have higher views than the last finalized one.
        if let Some((block, _, _)) = self.recent.values().next_back() {
            self.certificates = self.certificates.split_off(&(block.header.view + 1));
        }
        let pending = &self.pending;
        self.executed.retain(|digest, _| pending.contains_key(digest));
        self.invalid.retain(|digest, _| pending.contains_key(digest));
        assert_eq!(self.history.height(), height);
        // A tip on a branch that lost can never be built on again. A tip behind on the finalized
        // chain catches up by executing finalized blocks (see `tip_to_finalized`).
        if let Some(tip) = &self.tip
            && tip.height() >= height
            && !self.descends_from_finalized(tip.block())
        {
            self.tip = None;
        }
    }

    /// Whether pending block `digest` (or the finalized block itself) extends the finalized
    /// block.
    fn descends_from_finalized(&self, digest: BlockDigest) -> bool {
        let mut cursor = digest;
        while let Some(block) = self.pending.get(&cursor) {
            cursor = block.header.parent;
        }
        cursor == self.finalized.block()
    }
}

#[cfg(test)]
impl ApplicationState {
    /// The ledger digest after `digest`, executing it if needed (tests only).
    fn judge_and_digest(&mut self, digest: BlockDigest) -> StateDigest {
        assert!(matches!(self.execute_to(digest), Lookup::Ready));
        self.tip.as_ref().unwrap().state_digest()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ClientSigner, public_key, signer_from_seed};
    use tally_ledger::{Account, Transfer};

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

    const CHAIN: u64 = 4;

    fn setup() -> (ApplicationState, ClientSigner) {
        let client = signer_from_seed(50);
        let genesis =
            Genesis::new(CHAIN, vec![public_key(&signer_from_seed(0))], vec![public_key(&client)], 1_000).unwrap();
        (ApplicationState::new(genesis), client)
    }

    fn accounts(client: &ClientSigner, id: u128) -> Request {
        let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
        Request::create_accounts(CHAIN, id, EXPIRES_NS, client, &[account(1), account(2)]).unwrap()
    }

    fn transfer(client: &ClientSigner, id: u128) -> Request {
        let transfer = Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        Request::create_transfers(CHAIN, id, EXPIRES_NS, client, &[transfer]).unwrap()
    }

    #[test]
    fn certificates_are_kept_with_their_blocks_whenever_they_arrive_before_the_write() {
        let (mut proposer, client) = setup();
        let signers = [signer_from_seed(0)];
        let genesis_digest = proposer.genesis_digest();
        let certify = |header: &Header, state: &ApplicationState| {
            crate::certified::sign_finalization(header, &signers, state.genesis())
        };
        proposer.submit(accounts(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        let first = proposer.propose(BlockContext::following(genesis_digest, 1, test_leader()), 5_000).unwrap();
        let second = proposer.propose(BlockContext::following(first.digest(), 2, test_leader()), 6_000).unwrap();
        let third = proposer.propose(BlockContext::following(second.digest(), 3, test_leader()), 7_000).unwrap();

        // Before its block is finalized: kept until it is.
        let second_certificate = certify(&second.header, &proposer);
        proposer.certify(second_certificate.clone());
        assert_eq!(proposer.finalize(second.digest()), Ok(Finalized::Done { height: 2 }));
        // The first block was finalized as the second's ancestor: it has no certificate.
        assert_eq!(proposer.finalized_header(1).unwrap().1, None);
        assert_eq!(proposer.finalized_header(2).unwrap().1, Some(&second_certificate));

        // After its block is finalized but before it is written: still written with it.
        assert_eq!(proposer.finalize(third.digest()), Ok(Finalized::Done { height: 3 }));
        let third_certificate = certify(&third.header, &proposer);
        proposer.certify(third_certificate.clone());
        let records = proposer.unpersisted(0);
        let written: Vec<Option<&Finalization>> = records.iter().map(|record| record.finalization.as_ref()).collect();
        assert_eq!(written, [None, Some(&second_certificate), Some(&third_certificate)]);

        // After it is written: not kept (the log is append-only), and nothing changes.
        proposer.persisted(3);
        proposer.certify(certify(&first.header, &proposer));
        assert_eq!(proposer.finalized_header(1).unwrap().1, None);

        // A restart reads the certificates back from the log with their blocks.
        let (mut restored, _) = setup();
        for record in records {
            restored.restore(record.block, record.finalization).unwrap();
        }
        assert_eq!(restored.finalized_header(1).unwrap().1, None);
        assert_eq!(restored.finalized_header(2).unwrap().1, Some(&second_certificate));
        assert_eq!(restored.finalized_header(3).unwrap().1, Some(&third_certificate));
    }

    #[test]
    fn proposes_verifies_and_finalizes_a_chain() {
        let (mut proposer, client) = setup();
        let (mut follower, _) = setup();
        proposer.submit(accounts(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        let genesis = proposer.genesis_digest();
        let first = proposer.propose(BlockContext::following(genesis, 1, test_leader()), 5_000).unwrap();
        assert_eq!(first.requests.len(), 1);

        // The second block builds on the first before it is finalized, and does not repeat
        // the request the first included.
        proposer.submit(transfer(&client, 2).verify(CHAIN).unwrap(), 0).unwrap();
        let second = proposer.propose(BlockContext::following(first.digest(), 2, test_leader()), 6_000).unwrap();
        assert_eq!(second.requests.iter().map(Request::id).collect::<Vec<_>>(), [2]);

        // The follower sees the second block first: verification waits for the first.
        follower.insert_block(second.clone()).unwrap();
        assert!(
            matches!(follower.verify(&BlockContext::following(first.digest(), 2, test_leader()), second.digest(), 6_000), Lookup::Missing(d) if d == first.digest())
        );
        follower.insert_block(first.clone()).unwrap();
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 1, test_leader()), first.digest(), 6_000),
            Lookup::Ready
        ));
        assert!(matches!(
            follower.verify(&BlockContext::following(first.digest(), 2, test_leader()), second.digest(), 6_000),
            Lookup::Ready
        ));

        for state in [&mut proposer, &mut follower] {
            assert_eq!(state.finalize(second.digest()), Ok(Finalized::Done { height: 2 }));
        }
        assert_eq!(proposer.history(), follower.history());
        assert_eq!(proposer.status().state_digest, follower.status().state_digest);
        assert_eq!(proposer.status().mempool_requests, 0);
        let OutcomeLookup::Final(outcome) = follower.outcome(&transfer(&client, 2).key()) else {
            panic!("finalized and in memory");
        };
        assert_eq!(outcome.height, 2);
        // A retry of a finalized request is refused with its id.
        assert_eq!(
            proposer.submit(transfer(&client, 2).verify(CHAIN).unwrap(), 0),
            Err(ChainError::DuplicateRequest { id: 2 })
        );
    }

    #[test]
    fn verification_checks_the_consensus_context() {
        let (mut proposer, _) = setup();
        let (mut follower, _) = setup();
        let genesis = proposer.genesis_digest();
        let now = 3 * BLOCK_TIMESTAMP_DRIFT_NS_MAX;
        let block = proposer.propose(BlockContext::following(genesis, 3, test_leader()), now).unwrap();
        follower.insert_block(block.clone()).unwrap();
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 4, test_leader()), block.digest(), now),
            Lookup::Invalid(ChainError::WrongView { .. })
        ));
        let elsewhere = crate::block::hash(b"elsewhere");
        assert!(matches!(
            follower.verify(&BlockContext::following(elsewhere, 3, test_leader()), block.digest(), now),
            Lookup::Invalid(ChainError::WrongParent { .. })
        ));
        let other_leader = BlockContext {
            leader: crate::keys::public_key(&signer_from_seed(1)),
            ..BlockContext::following(genesis, 3, test_leader())
        };
        assert!(matches!(
            follower.verify(&other_leader, block.digest(), now),
            Lookup::Invalid(ChainError::WrongContext(_))
        ));
        let other_parent_view = BlockContext { parent_view: 1, ..BlockContext::following(genesis, 3, test_leader()) };
        assert!(matches!(
            follower.verify(&other_parent_view, block.digest(), now),
            Lookup::Invalid(ChainError::WrongContext(_))
        ));
        let other_epoch = BlockContext { epoch: 1, ..BlockContext::following(genesis, 3, test_leader()) };
        assert!(matches!(
            follower.verify(&other_epoch, block.digest(), now),
            Lookup::Invalid(ChainError::WrongEpoch { .. })
        ));
        let behind = now - BLOCK_TIMESTAMP_DRIFT_NS_MAX - 1;
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 3, test_leader()), block.digest(), behind),
            Lookup::Later
        ));
        let within = now - BLOCK_TIMESTAMP_DRIFT_NS_MAX;
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 3, test_leader()), block.digest(), within),
            Lookup::Ready
        ));
    }

    #[test]
    fn a_block_with_a_forged_request_is_rejected_and_so_are_its_children() {
        let (mut follower, client) = setup();
        let genesis_state = ChainState::genesis(&follower.genesis().block());
        let honest = transfer(&client, 7);
        let forger = signer_from_seed(66);
        let forged_signature = transfer(&forger, 7).signature().clone();
        let forged = Request::from_parts(
            honest.kind(),
            honest.id(),
            honest.expires_ns(),
            honest.client().clone(),
            honest.body().to_vec(),
            forged_signature,
        )
        .unwrap();
        let bad = Block::new(
            BlockContext::following(genesis_state.block(), 1, test_leader()),
            1,
            2_000,
            genesis_state.commitment(),
            vec![forged],
        );
        follower.insert_block(bad.clone()).unwrap();
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis_state.block(), 1, test_leader()), bad.digest(), 2_000),
            Lookup::Invalid(ChainError::BadSignature)
        ));
        // A child of the forged block cannot be verified either.
        let child = Block::new(
            BlockContext::following(bad.digest(), 2, test_leader()),
            2,
            3_000,
            genesis_state.commitment(),
            vec![],
        );
        follower.insert_block(child.clone()).unwrap();
        assert!(matches!(
            follower.verify(&BlockContext::following(bad.digest(), 2, test_leader()), child.digest(), 3_000),
            Lookup::Invalid(ChainError::BadSignature)
        ));
        // Submitted directly, the forgery does not verify, so it cannot be submitted.
        let direct = Request::from_parts(
            honest.kind(),
            honest.id(),
            honest.expires_ns(),
            honest.client().clone(),
            honest.body().to_vec(),
            transfer(&forger, 7).signature().clone(),
        )
        .unwrap();
        assert_eq!(
            direct.verify(CHAIN).map(|_| ()),
            Err(ChainError::BadSignature),
            "a forgery never reaches the mempool"
        );
    }

    /// What a Byzantine proposer could send instead of its honest block (the simulator's
    /// proposers do the same): a request that claims a listed client but is signed by another
    /// key, or a header that commits to a ledger digest other than the one after the parent.
    /// Each is well formed (its header sealed over its requests) and each is refused.
    #[test]
    fn honest_validators_refuse_forged_requests_and_wrong_state_digests() {
        let (mut proposer, client) = setup();
        let (mut honest, _) = setup();
        proposer.submit(transfer(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        let genesis = proposer.genesis_digest();
        let context = BlockContext::following(genesis, 1, test_leader());
        let block = proposer.propose(context.clone(), 5_000).unwrap();
        assert_eq!(block.requests.len(), 1);
        let header = &block.header;
        let reseal = |commitment: Commitment, requests: Vec<Request>| {
            Block::new(header.context(), header.height, header.timestamp_ns, commitment, requests)
        };

        let forger = signer_from_seed(66);
        let claimed = transfer(&client, 2);
        let forged = Request::from_parts(
            claimed.kind(),
            claimed.id(),
            claimed.expires_ns(),
            claimed.client().clone(),
            claimed.body().to_vec(),
            transfer(&forger, 2).signature().clone(),
        )
        .unwrap();
        let mut requests = block.requests.clone();
        requests.insert(0, forged);
        let with_forgery = reseal(header.commitment(), requests);

        let mut commitment = header.commitment();
        commitment.state_digest[0] ^= 1;
        let with_wrong_digest = reseal(commitment, block.requests.clone());

        for (corrupted, expected) in
            [(with_forgery, ChainError::BadSignature), (with_wrong_digest, ChainError::WrongStateDigest)]
        {
            assert_ne!(corrupted.digest(), block.digest());
            honest.insert_block(corrupted.clone()).unwrap();
            let verdict = honest.verify(&context, corrupted.digest(), 5_000);
            assert!(matches!(&verdict, Lookup::Invalid(error) if *error == expected), "{expected:?}: {verdict:?}");
        }
        assert_eq!(honest.status().blocks_refused, 2);
        // The honest block of the same round passes.
        honest.insert_block(block.clone()).unwrap();
        assert!(matches!(honest.verify(&context, block.digest(), 5_000), Lookup::Ready));
    }

    #[test]
    fn finalizing_a_block_with_a_diverging_state_digest_halts() {
        let (mut follower, _) = setup();
        let genesis = follower.genesis_digest();
        let wrong = Commitment { state_digest: [7; 32], ..ChainState::empty_commitment() };
        let wrong = Block::new(BlockContext::following(genesis, 1, test_leader()), 1, 2_000, wrong, vec![]);
        follower.insert_block(wrong.clone()).unwrap();
        let error = follower.finalize(wrong.digest()).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, ChainError::StateDivergence { height: 1, .. }), "{message}");
        assert!(message.contains("0707070707"), "names the block's digest: {message}");
        assert!(message.contains(&hex(&ChainState::empty_commitment().state_digest)), "names ours: {message}");
    }

    #[test]
    fn restoring_the_finalized_blocks_rebuilds_the_same_state() {
        let (mut original, client) = setup();
        original.submit(accounts(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        let genesis = original.genesis_digest();
        let first = original.propose(BlockContext::following(genesis, 1, test_leader()), 2_000).unwrap();
        original.submit(transfer(&client, 2).verify(CHAIN).unwrap(), 0).unwrap();
        let second = original.propose(BlockContext::following(first.digest(), 2, test_leader()), 3_000).unwrap();
        original.finalize(second.digest()).unwrap();

        let (mut restored, _) = setup();
        restored.restore(first.clone(), None).unwrap();
        restored.restore(second.clone(), None).unwrap();
        assert_eq!(restored.history(), original.history());
        assert_eq!(restored.status().state_digest, original.status().state_digest);
        assert_eq!(restored.outcome(&transfer(&client, 2).key()), original.outcome(&transfer(&client, 2).key()));

        // A log that skips a height is corrupt.
        let (mut gap, _) = setup();
        assert!(matches!(gap.restore(second, None), Err(ChainError::Storage(_))));
    }

    #[test]
    fn finalization_waits_for_missing_blocks_and_prunes_losing_branches() {
        let (mut proposer, _) = setup();
        let (mut follower, _) = setup();
        let genesis = proposer.genesis_digest();
        let first = proposer.propose(BlockContext::following(genesis, 1, test_leader()), 2_000).unwrap();
        let second = proposer.propose(BlockContext::following(first.digest(), 2, test_leader()), 3_000).unwrap();
        // A competing block at height 1 that will lose.
        let (mut rival, _) = setup();
        let losing = rival.propose(BlockContext::following(genesis, 1, test_leader()), 2_500).unwrap();
        follower.insert_block(losing.clone()).unwrap();
        follower.insert_block(second.clone()).unwrap();
        assert_eq!(follower.finalize(second.digest()), Ok(Finalized::Missing(first.digest())));
        follower.insert_block(first.clone()).unwrap();
        assert_eq!(follower.finalize(second.digest()), Ok(Finalized::Done { height: 2 }));
        assert!(follower.block(&losing.digest()).is_none());
        assert!(follower.block(&first.digest()).is_some());
        assert!(matches!(follower.finalize(losing.digest()), Ok(Finalized::Missing(_))));
        assert_eq!(follower.history().height(), 2);
    }

    #[test]
    fn the_tip_follows_forks_and_finality_agrees_with_a_validator_that_saw_one_branch() {
        let (mut proposer, client) = setup();
        let (mut rival, _) = setup();
        let (mut follower, _) = setup();
        let (mut witness, _) = setup();
        let genesis = proposer.genesis_digest();
        proposer.submit(accounts(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        rival.submit(accounts(&client, 1).verify(CHAIN).unwrap(), 0).unwrap();
        // Two branches from genesis with different requests and timestamps.
        let a1 = rival.propose(BlockContext::following(genesis, 1, test_leader()), 2_000).unwrap();
        let b1 = proposer.propose(BlockContext::following(genesis, 2, test_leader()), 2_500).unwrap();
        proposer.submit(transfer(&client, 3).verify(CHAIN).unwrap(), 0).unwrap();
        let b2 = proposer.propose(BlockContext::following(b1.digest(), 3, test_leader()), 3_000).unwrap();
        for block in [&a1, &b1, &b2] {
            follower.insert_block(block.clone()).unwrap();
        }
        // The follower's tip goes down branch A, then back to B.
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 1, test_leader()), a1.digest(), 9_000),
            Lookup::Ready
        ));
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 2, test_leader()), b1.digest(), 9_000),
            Lookup::Ready
        ));
        assert!(matches!(
            follower.verify(&BlockContext::following(a1.digest(), 2, test_leader()), b1.digest(), 9_000),
            Lookup::Invalid(_)
        ));
        // Judging A again needs no execution; building on it moves the tip back.
        assert!(matches!(
            follower.verify(&BlockContext::following(genesis, 1, test_leader()), a1.digest(), 9_000),
            Lookup::Ready
        ));
        let a2 = follower.propose(BlockContext::following(a1.digest(), 4, test_leader()), 4_000).unwrap();
        assert_eq!(a2.header.state_digest, rival.judge_and_digest(a1.digest()));
        assert!(matches!(
            follower.verify(&BlockContext::following(b1.digest(), 3, test_leader()), b2.digest(), 9_000),
            Lookup::Ready
        ));
        assert_eq!(follower.finalize(b2.digest()), Ok(Finalized::Done { height: 2 }));
        // The tip was on B, which won: a child of B2 builds on it directly.
        let b3 = follower.propose(BlockContext::following(b2.digest(), 5, test_leader()), 5_000).unwrap();

        for block in [&b1, &b2, &b3] {
            witness.insert_block(block.clone()).unwrap();
        }
        assert_eq!(witness.finalize(b3.digest()), Ok(Finalized::Done { height: 3 }));
        assert_eq!(follower.finalize(b3.digest()), Ok(Finalized::Done { height: 3 }));
        assert_eq!(follower.history(), witness.history());
        assert_eq!(follower.status().state_digest, witness.status().state_digest);
        // Branch A lost: it is pruned and cannot be finalized.
        assert!(follower.block(&a2.digest()).is_none());
        assert!(matches!(follower.finalize(a2.digest()), Ok(Finalized::Missing(_))));
    }
}
