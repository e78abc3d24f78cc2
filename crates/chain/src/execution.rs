//! Execution: the replicated state after a block, and the rules a block must meet to follow it.
//!
//! `ChainState` is the ledger plus what the chain needs beside it (the height, the block's
//! digest and timestamp, and the names of every request included so far, for idempotent
//! retries). It is deterministic: the same blocks in give the same state and digests out.
//!
//! # Timestamps
//!
//! Each request of a block is one ledger batch. The ledger gives a batch's events consecutive
//! timestamps starting at the batch timestamp, and requires each batch timestamp to exceed the
//! previous batch's last event timestamp. Tally gives request `i` of a block the timestamp
//! `max(block.timestamp_ns, ledger.timestamp_last() + 1)`: the proposer's time when the ledger
//! is behind it, and the next free nanosecond when a large earlier batch has run ahead of it.
//! Block timestamps strictly increase along the chain (a block's is greater than its parent's).
//!
//! # The state digest
//!
//! A block commits to the state after its parent with `state_digest`: a hash of the ledger
//! digest and of the digest of the included-request set (`request_set.rs`). Both decide how
//! later blocks execute, so both are covered, and a snapshot of the whole state can be checked
//! against one finalized block.

use crate::block::{Block, BlockDigest, StateDigest};
use crate::constants::BLOCK_REQUESTS_MAX;
use crate::error::ChainError;
use crate::genesis::Genesis;
use crate::request::{Events, EventsDigest, Request, RequestKey};
use crate::request_set::RequestSetHash;
use std::collections::{HashMap, HashSet};
use tally_ledger::{BatchError, CreateAccountResult, CreateTransferResult, Ledger};

/// What the ledger answered to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestResult {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
    /// The ledger refused the batch as a whole (its timestamp left no room for its events).
    Refused(BatchError),
}

/// A finalized request's fate: where it was ordered and what the ledger answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The included request's `Request::events_digest`: a submission of the same name compares
    /// its own against it to tell a retry from a different request that reuses the id.
    pub events_digest: EventsDigest,
    pub height: u64,
    pub timestamp_ns: u64,
    pub result: RequestResult,
}

/// The replicated state after executing a block.
#[derive(Debug, Clone)]
pub struct ChainState {
    height: u64,
    block: BlockDigest,
    timestamp_ns: u64,
    ledger: Ledger,
    /// Every request included up to this block, and the height it was included at. It grows
    /// with the number of requests (not events); an expiry window on request ids would bound it.
    included: HashMap<RequestKey, u64>,
    /// The digest of `included`, kept up to date as requests are added.
    included_hash: RequestSetHash,
    /// Ledger events (accounts and transfers to create) in the blocks so far.
    events: u64,
}

const STATE_DIGEST_CONTEXT: &str = "tally 2026 chain state digest v1";

/// The digest a block commits to: the ledger's digest and the included-request set's.
pub fn state_digest(ledger_digest: &StateDigest, included_digest: &[u8; 32]) -> StateDigest {
    let mut hasher = blake3::Hasher::new_derive_key(STATE_DIGEST_CONTEXT);
    hasher.update(ledger_digest);
    hasher.update(included_digest);
    *hasher.finalize().as_bytes()
}

impl ChainState {
    /// The state at genesis: an empty ledger.
    pub fn genesis(block: &Block) -> Self {
        assert_eq!(block.height, 0);
        assert!(block.requests.is_empty());
        let state = Self {
            height: 0,
            block: block.digest(),
            timestamp_ns: block.timestamp_ns,
            ledger: Ledger::new(),
            included: HashMap::new(),
            included_hash: RequestSetHash::default(),
            events: 0,
        };
        assert_eq!(block.state_digest, state.state_digest(), "the genesis block commits to the empty state");
        state
    }

    /// The state digest of a chain with an empty ledger and no requests (what genesis commits to).
    pub fn empty_state_digest() -> StateDigest {
        state_digest(&Ledger::new().digest(), &RequestSetHash::default().digest())
    }

    /// Builds a state from its parts (a restored snapshot). The caller checks its digest.
    pub(crate) fn from_parts(
        height: u64,
        block: BlockDigest,
        timestamp_ns: u64,
        ledger: Ledger,
        included: HashMap<RequestKey, u64>,
        events: u64,
    ) -> Self {
        let mut included_hash = RequestSetHash::default();
        for (key, height) in &included {
            included_hash.add(key, *height);
        }
        Self { height, block, timestamp_ns, ledger, included, included_hash, events }
    }

    /// Ledger events (accounts and transfers to create) in the blocks so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Every included request and its height (for snapshots).
    pub(crate) fn included(&self) -> &HashMap<RequestKey, u64> {
        &self.included
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    /// The digest of the last executed block.
    pub fn block(&self) -> BlockDigest {
        self.block
    }

    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn ledger_digest(&self) -> StateDigest {
        self.ledger.digest()
    }

    /// The digest of the included-request set.
    pub fn included_digest(&self) -> [u8; 32] {
        self.included_hash.digest()
    }

    /// The digest the next block commits to: the ledger's and the included-request set's.
    pub fn state_digest(&self) -> StateDigest {
        state_digest(&self.ledger_digest(), &self.included_digest())
    }

    /// Whether a request of this name was included at or before this state's block.
    pub fn includes(&self, key: &RequestKey) -> bool {
        self.included.contains_key(key)
    }

    /// The height a request was included at, if it was.
    pub fn inclusion_height(&self, key: &RequestKey) -> Option<u64> {
        self.included.get(key).copied()
    }

    /// How many requests the chain has included.
    pub fn requests_included(&self) -> usize {
        self.included.len()
    }

    /// Checks every rule for `block` to follow this state that does not depend on the local
    /// clock or the consensus context: linkage, height, timestamp, state digest, and each
    /// request (listed client, valid signature, not included before, not repeated).
    pub fn check_child(&self, genesis: &Genesis, block: &Block) -> Result<(), ChainError> {
        self.check_child_with(genesis, block, |_| false)
    }

    /// `check_child`, skipping the signature check of requests `verified` vouches for (an
    /// identical request whose signature this validator already checked).
    pub fn check_child_with(
        &self,
        genesis: &Genesis,
        block: &Block,
        verified: impl Fn(&Request) -> bool,
    ) -> Result<(), ChainError> {
        if block.parent != self.block {
            return Err(ChainError::WrongParent { expected: self.block, found: block.parent });
        }
        if block.height != self.height + 1 {
            return Err(ChainError::WrongHeight { parent: self.height, found: block.height });
        }
        if block.timestamp_ns <= self.timestamp_ns {
            return Err(ChainError::TimestampRegressed { parent: self.timestamp_ns, found: block.timestamp_ns });
        }
        if block.state_digest != self.state_digest() {
            return Err(ChainError::WrongStateDigest);
        }
        if block.requests.len() > BLOCK_REQUESTS_MAX {
            return Err(ChainError::TooManyRequests { count: block.requests.len(), max: BLOCK_REQUESTS_MAX });
        }
        let mut seen = HashSet::with_capacity(block.requests.len());
        for request in &block.requests {
            if !genesis.allows_client(request.client()) {
                return Err(ChainError::UnknownClient);
            }
            if !verified(request) {
                request.verify_signature(genesis.chain_id())?;
            }
            let key = request.key();
            if self.included.contains_key(&key) || !seen.insert(key) {
                return Err(ChainError::RepeatedRequest { id: request.id() });
            }
        }
        Ok(())
    }

    /// Executes a block that passed `check_child` on a copy of this state, returning the state
    /// after it and each request's outcome in block order.
    pub fn execute(&self, block: &Block) -> (Self, Vec<(RequestKey, RequestOutcome)>) {
        let mut next = self.clone();
        let outcomes = next.apply(block);
        (next, outcomes)
    }

    /// Executes a block that passed `check_child` in place, returning each request's outcome in
    /// block order.
    pub fn apply(&mut self, block: &Block) -> Vec<(RequestKey, RequestOutcome)> {
        assert_eq!(block.parent, self.block, "apply follows check_child");
        assert_eq!(block.height, self.height + 1, "apply follows check_child");
        let mut outcomes = Vec::with_capacity(block.requests.len());
        for request in &block.requests {
            let timestamp_ns = block.timestamp_ns.max(self.ledger.timestamp_last() + 1);
            let result = match request.events() {
                Events::Accounts(accounts) => self
                    .ledger
                    .try_create_accounts(timestamp_ns, &accounts)
                    .map_or_else(RequestResult::Refused, RequestResult::Accounts),
                Events::Transfers(transfers) => self
                    .ledger
                    .try_create_transfers(timestamp_ns, &transfers)
                    .map_or_else(RequestResult::Refused, RequestResult::Transfers),
            };
            let key = request.key();
            let previous = self.included.insert(key.clone(), block.height);
            assert!(previous.is_none(), "check_child refuses repeated requests");
            self.included_hash.add(&key, block.height);
            self.events += request.events_count() as u64;
            let events_digest = request.events_digest();
            outcomes.push((key, RequestOutcome { events_digest, height: block.height, timestamp_ns, result }));
        }
        self.height = block.height;
        self.block = block.digest();
        self.timestamp_ns = block.timestamp_ns;
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ClientSigner, public_key, signer_from_seed};
    use crate::request::Request;
    use tally_ledger::{Account, CreateAccountStatus, CreateTransferStatus, Transfer};

    struct Fixture {
        genesis: Genesis,
        client: ClientSigner,
    }

    fn fixture() -> Fixture {
        let client = signer_from_seed(100);
        let genesis =
            Genesis::new(3, vec![public_key(&signer_from_seed(0))], vec![public_key(&client)], 1_000).unwrap();
        Fixture { genesis, client }
    }

    fn accounts(fixture: &Fixture, id: u128) -> Request {
        let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
        Request::create_accounts(3, id, &fixture.client, &[account(1), account(2)]).unwrap()
    }

    fn transfers(fixture: &Fixture, id: u128, count: u128) -> Request {
        let transfers: Vec<Transfer> = (0..count)
            .map(|index| Transfer {
                id: 1_000 * id + index + 1,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 3,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            })
            .collect();
        Request::create_transfers(3, id, &fixture.client, &transfers).unwrap()
    }

    fn child(state: &ChainState, timestamp_ns: u64, requests: Vec<Request>) -> Block {
        Block::new(state.block(), state.height() + 1, state.height() + 1, timestamp_ns, state.state_digest(), requests)
    }

    #[test]
    fn executes_requests_with_advancing_timestamps() {
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let block =
            child(&genesis, 2_000, vec![accounts(&fixture, 1), transfers(&fixture, 2, 3), transfers(&fixture, 3, 1)]);
        genesis.check_child(&fixture.genesis, &block).unwrap();
        let (state, outcomes) = genesis.execute(&block);
        assert_eq!(state.height(), 1);
        assert_eq!(state.block(), block.digest());
        // Accounts at 2000..=2001, the first transfers at 2002..=2004, the last at 2005.
        let timestamps: Vec<u64> = outcomes.iter().map(|(_, outcome)| outcome.timestamp_ns).collect();
        assert_eq!(timestamps, [2_000, 2_002, 2_005]);
        match &outcomes[0].1.result {
            RequestResult::Accounts(results) => {
                assert!(results.iter().all(|r| r.status == CreateAccountStatus::Created))
            }
            other => panic!("unexpected {other:?}"),
        }
        match &outcomes[1].1.result {
            RequestResult::Transfers(results) => {
                assert!(results.iter().all(|r| r.status == CreateTransferStatus::Created))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(state.ledger().lookup_accounts(&[2])[0].credits_posted, 12);
        assert_ne!(state.ledger_digest(), genesis.ledger_digest());
        assert!(state.includes(&outcomes[0].0));
    }

    #[test]
    fn refuses_blocks_that_break_a_rule() {
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let good = child(&genesis, 2_000, vec![accounts(&fixture, 1)]);
        genesis.check_child(&fixture.genesis, &good).unwrap();

        let wrong_height = Block::new(genesis.block(), 2, 1, 2_000, genesis.state_digest(), vec![]);
        assert!(matches!(genesis.check_child(&fixture.genesis, &wrong_height), Err(ChainError::WrongHeight { .. })));
        let stale = child(&genesis, 1_000, vec![]);
        assert!(matches!(genesis.check_child(&fixture.genesis, &stale), Err(ChainError::TimestampRegressed { .. })));
        let wrong_state = Block::new(genesis.block(), 1, 1, 2_000, [9; 32], vec![]);
        assert_eq!(genesis.check_child(&fixture.genesis, &wrong_state), Err(ChainError::WrongStateDigest));
        let orphan = Block::new(crate::block::hash(b"elsewhere"), 1, 1, 2_000, genesis.state_digest(), vec![]);
        assert!(matches!(genesis.check_child(&fixture.genesis, &orphan), Err(ChainError::WrongParent { .. })));
        let repeated = child(&genesis, 2_000, vec![accounts(&fixture, 1), accounts(&fixture, 1)]);
        assert_eq!(genesis.check_child(&fixture.genesis, &repeated), Err(ChainError::RepeatedRequest { id: 1 }));

        // A request included earlier cannot be included again (a client retry).
        let (state, _) = genesis.execute(&good);
        let retry = child(&state, 3_000, vec![accounts(&fixture, 1)]);
        assert_eq!(state.check_child(&fixture.genesis, &retry), Err(ChainError::RepeatedRequest { id: 1 }));

        // A client the genesis does not list.
        let stranger = signer_from_seed(200);
        let foreign =
            Request::create_accounts(3, 9, &stranger, &[Account { id: 5, ledger: 1, code: 1, ..Account::default() }])
                .unwrap();
        let unknown = child(&genesis, 2_000, vec![foreign]);
        assert_eq!(genesis.check_child(&fixture.genesis, &unknown), Err(ChainError::UnknownClient));
    }

    #[test]
    fn a_forged_signature_is_rejected() {
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let honest = transfers(&fixture, 1, 1);
        // Same client and id, a different body under the honest signature: a forgery.
        let mut body = honest.body().to_vec();
        body[48] ^= 0xff; // the amount
        let forged =
            Request::from_parts(honest.kind(), honest.id(), honest.client().clone(), body, honest.signature().clone())
                .unwrap();
        let block = child(&genesis, 2_000, vec![accounts(&fixture, 9), forged]);
        assert_eq!(genesis.check_child(&fixture.genesis, &block), Err(ChainError::BadSignature));
        let block = child(&genesis, 2_000, vec![accounts(&fixture, 9), honest]);
        genesis.check_child(&fixture.genesis, &block).unwrap();
    }

    #[test]
    fn execution_is_deterministic() {
        let fixture = fixture();
        let run = || {
            let mut state = ChainState::genesis(&fixture.genesis.block());
            let blocks = [
                vec![accounts(&fixture, 1)],
                vec![transfers(&fixture, 2, 5), transfers(&fixture, 3, 2)],
                vec![],
                vec![transfers(&fixture, 4, 1)],
            ];
            let mut digests = Vec::new();
            for (index, requests) in blocks.into_iter().enumerate() {
                let block = child(&state, 2_000 + index as u64, requests);
                state.check_child(&fixture.genesis, &block).unwrap();
                state = state.execute(&block).0;
                digests.push((state.block(), state.ledger_digest()));
            }
            digests
        };
        assert_eq!(run(), run());
    }
}
