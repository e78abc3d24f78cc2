//! Execution: the replicated state after a block, and the rules a block must meet to follow it.
//!
//! `ChainState` is the ledger plus what the chain needs beside it (the height, the block's
//! digest and timestamp, and the names of the requests included lately, for idempotent
//! retries). It is deterministic: the same blocks in give the same state and digests out.
//!
//! # Request expiry and the names the chain holds
//!
//! A block may include a request only if its timestamp is at most the request's expiry and at
//! least `REQUEST_TTL_MAX_NS` before it (`Request::check_expiry`), and only if the chain does not
//! hold the request's name as included. After each block the chain forgets the names whose
//! expiry lies more than `REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS` before the block's timestamp. The
//! request whose name is forgotten (that signed request, with that expiry) is never included
//! again: block timestamps only grow, so every later block is past its expiry and refuses it.
//! The name itself may come back on a request signed again with a later expiry, which is then
//! a new request: a client must not re-send a batch whose first attempt it cannot rule out
//! after the window (docs/API.md, "Expiry"). The names held are so those of the last twenty
//! minutes or so, whatever the chain's age. A retry of a request the chain does not hold is
//! answered by [`ChainState::check_unincluded`]: still includable, definitely never included
//! (expired while its name would still be held), or no longer known.
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
//! # The state digest and the results root
//!
//! A block commits to the state after its parent with `state_digest`: a hash of the ledger
//! digest and of the digest of the included-request set (`request_set.rs`). Both decide how
//! later blocks execute, so both are covered, and a snapshot of the whole state can be checked
//! against one finalized block.
//!
//! It also commits to what its parent's requests did, with `results_root`: a binary Merkle root
//! (`block::merkle_root`) over one leaf per request of the parent, in block order:
//!
//! ```text
//! leaf = SHA-256(client key (32) | request id (16) | events digest (32) | height (8)
//!                | timestamp ns (8) | result)
//! result = 1 | count (4) | count × (timestamp ns (8), status (4))    created accounts
//!        | 2 | count (4) | count × (timestamp ns (8), status (4))    created transfers
//!        | 3 | kind (1) | a (8) | b (8)                               a refused batch
//! ```
//!
//! (big-endian; statuses are TigerBeetle's result codes, `0` for created; a refused batch's
//! kind is 1 too long (events, max), 2 timestamp regressed (timestamp, previous), 3 timestamp
//! out of range (timestamp, events)). A finalized header plus a Merkle path then proves, for a
//! request of its parent, that it was ordered and what it did. The same `result` encoding is
//! stored in the finalized log (`application/log.rs`).

use crate::block::{Block, BlockDigest, Commitment, Root, StateDigest, merkle_root};
use crate::constants::{BLOCK_REQUESTS_MAX, REQUEST_EVENTS_MAX, REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS};
use crate::error::ChainError;
use crate::genesis::Genesis;
use crate::request::{Events, EventsDigest, Request, RequestKey};
use crate::request_set::RequestSetHash;
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, Error as CodecError, ReadExt as _};
use commonware_cryptography::{Hasher as _, Sha256, sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use tally_ledger::{
    BatchError, CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus, Ledger,
};

/// What the ledger answered to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestResult {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
    /// The ledger refused the batch as a whole (its timestamp left no room for its events).
    Refused(BatchError),
}

impl RequestResult {
    /// The encoded size of `write`.
    pub fn encode_size(&self) -> usize {
        match self {
            RequestResult::Accounts(results) => 5 + 12 * results.len(),
            RequestResult::Transfers(results) => 5 + 12 * results.len(),
            RequestResult::Refused(_) => 1 + 17,
        }
    }

    /// Writes the result in the form the results root and the finalized log share (see the
    /// module's documentation).
    pub fn write(&self, buf: &mut impl BufMut) {
        fn events(buf: &mut impl BufMut, tag: u8, results: impl ExactSizeIterator<Item = (u64, u32)>) {
            buf.put_u8(tag);
            buf.put_u32(u32::try_from(results.len()).expect("a request has at most 8,190 events"));
            for (timestamp, status) in results {
                buf.put_u64(timestamp);
                buf.put_u32(status);
            }
        }
        match self {
            RequestResult::Accounts(results) => {
                events(buf, 1, results.iter().map(|result| (result.timestamp, result.status.code())))
            }
            RequestResult::Transfers(results) => {
                events(buf, 2, results.iter().map(|result| (result.timestamp, result.status.code())))
            }
            RequestResult::Refused(error) => {
                buf.put_u8(3);
                let (kind, a, b) = match *error {
                    BatchError::TooLong { events, max } => (1, events as u64, max as u64),
                    BatchError::TimestampRegressed { timestamp, previous } => (2, timestamp, previous),
                    BatchError::TimestampOutOfRange { timestamp, events } => (3, timestamp, events as u64),
                };
                buf.put_u8(kind);
                buf.put_u64(a);
                buf.put_u64(b);
            }
        }
    }

    /// Reads what `write` wrote, refusing unknown tags and status codes and counts over the
    /// request limit before allocating.
    pub fn read(buf: &mut impl Buf) -> Result<Self, CodecError> {
        fn events(buf: &mut impl Buf) -> Result<Vec<(u64, u32)>, CodecError> {
            let count = u32::read(buf)? as usize;
            if count > REQUEST_EVENTS_MAX || buf.remaining() < count * 12 {
                return Err(CodecError::InvalidLength(count));
            }
            Ok((0..count).map(|_| (buf.get_u64(), buf.get_u32())).collect())
        }
        Ok(match u8::read(buf)? {
            1 => RequestResult::Accounts(
                events(buf)?
                    .into_iter()
                    .map(|(timestamp, code)| {
                        let status = CreateAccountStatus::from_code(code)
                            .ok_or(CodecError::Invalid("RequestResult", "account status"))?;
                        Ok(CreateAccountResult { timestamp, status })
                    })
                    .collect::<Result<_, CodecError>>()?,
            ),
            2 => RequestResult::Transfers(
                events(buf)?
                    .into_iter()
                    .map(|(timestamp, code)| {
                        let status = CreateTransferStatus::from_code(code)
                            .ok_or(CodecError::Invalid("RequestResult", "transfer status"))?;
                        Ok(CreateTransferResult { timestamp, status })
                    })
                    .collect::<Result<_, CodecError>>()?,
            ),
            3 => {
                let kind = u8::read(buf)?;
                let (a, b) = (u64::read(buf)?, u64::read(buf)?);
                RequestResult::Refused(match kind {
                    1 => BatchError::TooLong { events: a as usize, max: b as usize },
                    2 => BatchError::TimestampRegressed { timestamp: a, previous: b },
                    3 => BatchError::TimestampOutOfRange { timestamp: a, events: b as usize },
                    _ => return Err(CodecError::Invalid("RequestResult", "batch error")),
                })
            }
            _ => return Err(CodecError::Invalid("RequestResult", "result kind")),
        })
    }
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

impl RequestOutcome {
    /// This outcome's leaf under its block's child's results root (see the module's
    /// documentation).
    pub fn leaf(&self, key: &RequestKey) -> sha256::Digest {
        let mut bytes = Vec::with_capacity(32 + 16 + 32 + 8 + 8 + self.result.encode_size());
        bytes.extend_from_slice(key.client.as_ref());
        bytes.extend_from_slice(&key.id.to_be_bytes());
        bytes.extend_from_slice(&self.events_digest);
        bytes.extend_from_slice(&self.height.to_be_bytes());
        bytes.extend_from_slice(&self.timestamp_ns.to_be_bytes());
        self.result.write(&mut bytes);
        Sha256::hash(&[&bytes])
    }
}

/// The Merkle root over one block's request outcomes, in block order.
pub fn results_root(outcomes: &[(RequestKey, RequestOutcome)]) -> Root {
    merkle_root(outcomes.iter().map(|(key, outcome)| outcome.leaf(key)))
}

/// Where and until when the chain holds an included request's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inclusion {
    /// The height that included it (0 for a re-founded chain's founding state).
    pub height: u64,
    /// The request's own expiry: no block after it can include the request again.
    pub expires_ns: u64,
}

impl Inclusion {
    /// The last block timestamp at which the chain still holds this name.
    pub fn kept_until_ns(&self) -> u64 {
        self.expires_ns.saturating_add(REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS)
    }
}

/// The replicated state after executing a block.
#[derive(Debug, Clone)]
pub struct ChainState {
    height: u64,
    block: BlockDigest,
    timestamp_ns: u64,
    ledger: Ledger,
    /// The names of the requests included up to this block that may still be retried: each is
    /// kept until `REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS` past its expiry (see the module's
    /// documentation), so the set holds the requests of a window, not of the chain's life.
    included: HashMap<RequestKey, Inclusion>,
    /// The names in `included` by the block timestamp after which they are forgotten.
    forget_after: BTreeMap<u64, Vec<RequestKey>>,
    /// The digest of `included`, kept up to date as requests are added and forgotten.
    included_hash: RequestSetHash,
    /// Requests in the blocks so far (held names or not).
    requests: u64,
    /// Ledger events (accounts and transfers to create) in the blocks so far.
    events: u64,
    /// The Merkle root over the last executed block's request outcomes.
    results_root: Root,
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
        assert!(block.requests.is_empty());
        let state = Self::unfounded(block);
        assert_eq!(block.header.commitment(), state.commitment(), "the genesis block commits to the empty state");
        state
    }

    /// The empty state at a genesis block, whatever it commits to: the genesis state itself, or a
    /// re-founded chain's stand-in until its founding state is restored (never executed on).
    pub fn unfounded(block: &Block) -> Self {
        assert_eq!(block.header.height, 0);
        Self {
            height: 0,
            block: block.digest(),
            timestamp_ns: block.header.timestamp_ns,
            ledger: Ledger::new(),
            included: HashMap::new(),
            forget_after: BTreeMap::new(),
            included_hash: RequestSetHash::default(),
            requests: 0,
            events: 0,
            results_root: merkle_root(std::iter::empty()),
        }
    }

    /// What the genesis block commits to: an empty ledger, no requests, no results.
    pub fn empty_commitment() -> Commitment {
        Commitment {
            state_digest: state_digest(&Ledger::new().digest(), &RequestSetHash::default().digest()),
            results_root: merkle_root(std::iter::empty()),
        }
    }

    /// Builds a state from its parts (a restored snapshot). The caller checks its digest.
    pub(crate) fn from_parts(
        height: u64,
        block: BlockDigest,
        timestamp_ns: u64,
        ledger: Ledger,
        included: HashMap<RequestKey, Inclusion>,
        requests: u64,
        events: u64,
        results_root: Root,
    ) -> Self {
        let mut included_hash = RequestSetHash::default();
        let mut forget_after: BTreeMap<u64, Vec<RequestKey>> = BTreeMap::new();
        for (key, inclusion) in &included {
            included_hash.add(key, inclusion.height, inclusion.expires_ns);
            forget_after.entry(inclusion.kept_until_ns()).or_default().push(key.clone());
        }
        Self {
            height,
            block,
            timestamp_ns,
            ledger,
            included,
            forget_after,
            included_hash,
            requests,
            events,
            results_root,
        }
    }

    /// The state a chain re-founded from this one starts from (`genesis::Founding`): the same
    /// ledger, every included request moved to height 0, no results yet, at the new chain's
    /// genesis block.
    pub fn refound(self, genesis_block: &Block) -> Self {
        assert_eq!(genesis_block.header.height, 0, "a chain is re-founded at its genesis");
        let included =
            self.included.into_iter().map(|(key, inclusion)| (key, Inclusion { height: 0, ..inclusion })).collect();
        let state = Self::from_parts(
            0,
            genesis_block.digest(),
            genesis_block.header.timestamp_ns,
            self.ledger,
            included,
            self.requests,
            self.events,
            merkle_root(std::iter::empty()),
        );
        assert_eq!(
            genesis_block.header.commitment(),
            state.commitment(),
            "the genesis block commits to the founding state"
        );
        state
    }

    /// The state digest of `refound(self)`, without building it.
    pub fn refounded_state_digest(&self) -> StateDigest {
        let mut included = RequestSetHash::default();
        for (key, inclusion) in &self.included {
            included.add(key, 0, inclusion.expires_ns);
        }
        state_digest(&self.ledger_digest(), &included.digest())
    }

    /// Requests in the blocks so far, whether the chain still holds their names or not.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Ledger events (accounts and transfers to create) in the blocks so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Every included request the chain holds, with its height and expiry (for snapshots).
    pub(crate) fn included(&self) -> &HashMap<RequestKey, Inclusion> {
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

    /// The Merkle root over the last executed block's request outcomes.
    pub fn results_root(&self) -> Root {
        self.results_root
    }

    /// What the next block commits to: the state digest and the last block's results root.
    pub fn commitment(&self) -> Commitment {
        Commitment { state_digest: self.state_digest(), results_root: self.results_root }
    }

    /// Whether a request of this name was included at or before this state's block (and is
    /// still held: see [`ChainState::check_unincluded`]).
    pub fn includes(&self, key: &RequestKey) -> bool {
        self.included.contains_key(key)
    }

    /// The height a request was included at, if it was and the chain still holds its name.
    pub fn inclusion_height(&self, key: &RequestKey) -> Option<u64> {
        self.included.get(key).map(|inclusion| inclusion.height)
    }

    /// How many included requests the chain holds the names of (those of the last window).
    pub fn requests_included(&self) -> usize {
        self.included.len()
    }

    /// What this state can say of a request that it does not hold as included: nothing against
    /// it while a later block may still include it; `RequestExpired` once none can (its expiry
    /// is at or behind this block's timestamp, every later block's is past it, and its name
    /// would still be held had it been included: so it never was); `ExpiryForgotten` once the
    /// chain no longer holds names that old.
    pub fn check_unincluded(&self, request: &Request) -> Result<(), ChainError> {
        debug_assert!(!self.includes(&request.key()));
        let expires_ns = request.expires_ns();
        if expires_ns > self.timestamp_ns {
            return Ok(());
        }
        if expires_ns.saturating_add(REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS) < self.timestamp_ns {
            return Err(ChainError::ExpiryForgotten { id: request.id(), expires_ns });
        }
        Err(ChainError::RequestExpired { id: request.id(), expires_ns })
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
        let header = &block.header;
        if header.parent != self.block {
            return Err(ChainError::WrongParent { expected: self.block, found: header.parent });
        }
        if header.height != self.height + 1 {
            return Err(ChainError::WrongHeight { parent: self.height, found: header.height });
        }
        if header.epoch != 0 {
            return Err(ChainError::WrongEpoch { found: header.epoch });
        }
        if header.timestamp_ns <= self.timestamp_ns {
            return Err(ChainError::TimestampRegressed { parent: self.timestamp_ns, found: header.timestamp_ns });
        }
        if header.state_digest != self.state_digest() {
            return Err(ChainError::WrongStateDigest);
        }
        if header.results_root != self.results_root {
            return Err(ChainError::WrongResultsRoot);
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
            request.check_expiry(header.timestamp_ns)?;
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
        let header = &block.header;
        assert_eq!(header.parent, self.block, "apply follows check_child");
        assert_eq!(header.height, self.height + 1, "apply follows check_child");
        let mut outcomes = Vec::with_capacity(block.requests.len());
        for request in &block.requests {
            let timestamp_ns = header.timestamp_ns.max(self.ledger.timestamp_last() + 1);
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
            let inclusion = Inclusion { height: header.height, expires_ns: request.expires_ns() };
            let previous = self.included.insert(key.clone(), inclusion);
            assert!(previous.is_none(), "check_child refuses repeated requests");
            self.included_hash.add(&key, inclusion.height, inclusion.expires_ns);
            self.forget_after.entry(inclusion.kept_until_ns()).or_default().push(key.clone());
            self.requests += 1;
            self.events += request.events_count() as u64;
            let events_digest = request.events_digest();
            outcomes.push((key, RequestOutcome { events_digest, height: header.height, timestamp_ns, result }));
        }
        self.height = header.height;
        self.block = block.digest();
        self.timestamp_ns = header.timestamp_ns;
        self.results_root = results_root(&outcomes);
        self.forget_expired();
        outcomes
    }

    /// Forgets the names kept until before this block's timestamp. None of them can be
    /// included again: every later block's timestamp is past their expiry.
    fn forget_expired(&mut self) {
        let kept = self.forget_after.split_off(&self.timestamp_ns);
        let forgotten = std::mem::replace(&mut self.forget_after, kept);
        for key in forgotten.into_values().flatten() {
            let inclusion = self.included.remove(&key).expect("every name to forget is held");
            assert!(
                inclusion.kept_until_ns() < self.timestamp_ns,
                "a name is forgotten only once no block can include its request again"
            );
            self.included_hash.remove(&key, inclusion.height, inclusion.expires_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use crate::keys::{ClientSigner, public_key, signer_from_seed};
    use crate::request::Request;
    use tally_ledger::{Account, CreateAccountStatus, CreateTransferStatus, Transfer};

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

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
        Request::create_accounts(3, id, EXPIRES_NS, &fixture.client, &[account(1), account(2)]).unwrap()
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
        Request::create_transfers(3, id, EXPIRES_NS, &fixture.client, &transfers).unwrap()
    }

    fn child(state: &ChainState, timestamp_ns: u64, requests: Vec<Request>) -> Block {
        Block::new(
            BlockContext::following(state.block(), state.height() + 1, test_leader()),
            state.height() + 1,
            timestamp_ns,
            state.commitment(),
            requests,
        )
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

        let wrong_height = Block::new(
            BlockContext::following(genesis.block(), 1, test_leader()),
            2,
            2_000,
            genesis.commitment(),
            vec![],
        );
        assert!(matches!(genesis.check_child(&fixture.genesis, &wrong_height), Err(ChainError::WrongHeight { .. })));
        let stale = child(&genesis, 1_000, vec![]);
        assert!(matches!(genesis.check_child(&fixture.genesis, &stale), Err(ChainError::TimestampRegressed { .. })));
        let wrong_state = Commitment { state_digest: [9; 32], ..genesis.commitment() };
        let wrong_state =
            Block::new(BlockContext::following(genesis.block(), 1, test_leader()), 1, 2_000, wrong_state, vec![]);
        assert_eq!(genesis.check_child(&fixture.genesis, &wrong_state), Err(ChainError::WrongStateDigest));
        let wrong_results = Commitment { results_root: crate::block::hash(b"other results"), ..genesis.commitment() };
        let wrong_results =
            Block::new(BlockContext::following(genesis.block(), 1, test_leader()), 1, 2_000, wrong_results, vec![]);
        assert_eq!(genesis.check_child(&fixture.genesis, &wrong_results), Err(ChainError::WrongResultsRoot));
        let orphan = Block::new(
            BlockContext::following(crate::block::hash(b"elsewhere"), 1, test_leader()),
            1,
            2_000,
            genesis.commitment(),
            vec![],
        );
        assert!(matches!(genesis.check_child(&fixture.genesis, &orphan), Err(ChainError::WrongParent { .. })));
        let repeated = child(&genesis, 2_000, vec![accounts(&fixture, 1), accounts(&fixture, 1)]);
        assert_eq!(genesis.check_child(&fixture.genesis, &repeated), Err(ChainError::RepeatedRequest { id: 1 }));

        // A request included earlier cannot be included again (a client retry).
        let (state, _) = genesis.execute(&good);
        let retry = child(&state, 3_000, vec![accounts(&fixture, 1)]);
        assert_eq!(state.check_child(&fixture.genesis, &retry), Err(ChainError::RepeatedRequest { id: 1 }));

        // A client the genesis does not list.
        let stranger = signer_from_seed(200);
        let foreign = Request::create_accounts(
            3,
            9,
            EXPIRES_NS,
            &stranger,
            &[Account { id: 5, ledger: 1, code: 1, ..Account::default() }],
        )
        .unwrap();
        let unknown = child(&genesis, 2_000, vec![foreign]);
        assert_eq!(genesis.check_child(&fixture.genesis, &unknown), Err(ChainError::UnknownClient));
    }

    #[test]
    fn the_child_commits_to_each_outcome_under_its_results_root() {
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let parent = child(&genesis, 2_000, vec![accounts(&fixture, 1), transfers(&fixture, 2, 3)]);
        let (state, outcomes) = genesis.execute(&parent);
        let next = child(&state, 3_000, vec![]);
        state.check_child(&fixture.genesis, &next).unwrap();
        assert_eq!(next.header.results_root, results_root(&outcomes));
        assert_ne!(next.header.results_root, genesis.results_root());

        // One outcome is proven by a Merkle path to the header.
        let mut builder = commonware_storage::bmt::Builder::<Sha256>::new(outcomes.len());
        for (key, outcome) in &outcomes {
            builder.add(&outcome.leaf(key));
        }
        let tree = builder.build();
        let proof = tree.proof(1).unwrap();
        let (key, outcome) = &outcomes[1];
        assert!(proof.verify_element_inclusion::<Sha256>(&outcome.leaf(key), 1, &next.header.results_root).is_ok());

        // Any other status, timestamp, height or request id gives another leaf.
        let mut other = outcome.clone();
        other.timestamp_ns += 1;
        assert!(proof.verify_element_inclusion::<Sha256>(&other.leaf(key), 1, &next.header.results_root).is_err());
        let mut other = outcome.clone();
        other.height += 1;
        assert_ne!(other.leaf(key), outcome.leaf(key));
        let other_key = RequestKey { id: key.id + 1, ..key.clone() };
        assert_ne!(outcome.leaf(&other_key), outcome.leaf(key));
        let mut other = outcome.clone();
        if let RequestResult::Transfers(results) = &mut other.result {
            results[0].status = CreateTransferStatus::ExceedsCredits;
        }
        assert_ne!(other.leaf(key), outcome.leaf(key));
    }

    #[test]
    fn results_encode_and_decode_every_kind() {
        let results = [
            RequestResult::Accounts(vec![CreateAccountResult { timestamp: 5, status: CreateAccountStatus::Created }]),
            RequestResult::Transfers(vec![
                CreateTransferResult { timestamp: 6, status: CreateTransferStatus::Created },
                CreateTransferResult { timestamp: 7, status: CreateTransferStatus::ExceedsCredits },
            ]),
            RequestResult::Refused(BatchError::TimestampRegressed { timestamp: 5, previous: 7 }),
            RequestResult::Refused(BatchError::TooLong { events: 9_000, max: 8_190 }),
            RequestResult::Refused(BatchError::TimestampOutOfRange { timestamp: 5, events: 2 }),
        ];
        for result in results {
            let mut bytes = Vec::new();
            result.write(&mut bytes);
            assert_eq!(bytes.len(), result.encode_size());
            assert_eq!(RequestResult::read(&mut bytes::Bytes::from(bytes.clone())).unwrap(), result);
        }
        // An unknown tag, an unknown status, and a count beyond the request limit are refused.
        assert!(RequestResult::read(&mut bytes::Bytes::from_static(&[9])).is_err());
        let mut bytes = vec![2, 0, 0, 0, 1];
        bytes.extend_from_slice(&5u64.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(RequestResult::read(&mut bytes::Bytes::from(bytes.clone())).is_err());
        assert!(RequestResult::read(&mut bytes::Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff])).is_err());
    }

    #[test]
    fn a_forged_signature_is_rejected() {
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let honest = transfers(&fixture, 1, 1);
        // Same client and id, a different body under the honest signature: a forgery.
        let mut body = honest.body().to_vec();
        body[48] ^= 0xff; // the amount
        let forged = Request::from_parts(
            honest.kind(),
            honest.id(),
            honest.expires_ns(),
            honest.client().clone(),
            body,
            honest.signature().clone(),
        )
        .unwrap();
        let block = child(&genesis, 2_000, vec![accounts(&fixture, 9), forged]);
        assert_eq!(genesis.check_child(&fixture.genesis, &block), Err(ChainError::BadSignature));
        let block = child(&genesis, 2_000, vec![accounts(&fixture, 9), honest]);
        genesis.check_child(&fixture.genesis, &block).unwrap();
    }

    #[test]
    fn names_are_forgotten_ten_minutes_past_expiry_and_never_included_again() {
        use crate::constants::REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS as KEPT;
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let expires = 60_000_000_000;
        let signed = |id, expires_ns| {
            let account = Account { id: 50 + id as u128, ledger: 1, code: 1, ..Account::default() };
            Request::create_accounts(3, id, expires_ns, &fixture.client, &[account]).unwrap()
        };
        let first = signed(1, expires);
        let later = 500_000_000_000;
        let block = child(&genesis, 2_000, vec![first.clone(), signed(2, later)]);
        genesis.check_child(&fixture.genesis, &block).unwrap();
        let (state, _) = genesis.execute(&block);
        assert_eq!(state.requests_included(), 2);

        // Until ten minutes past its expiry the name is held: a retry is a repeat.
        let at_last = child(&state, expires + KEPT, vec![]);
        let (held, _) = state.execute(&at_last);
        assert!(held.includes(&first.key()));
        assert_eq!(
            state.check_child(&fixture.genesis, &child(&state, 3_000, vec![first.clone()])),
            Err(ChainError::RepeatedRequest { id: 1 })
        );

        // Then it is forgotten, and the set's digest is as if it had never been added.
        let (forgot, _) = held.execute(&child(&held, expires + KEPT + 1, vec![]));
        assert!(!forgot.includes(&first.key()));
        assert_eq!(forgot.requests_included(), 1);
        assert_eq!(forgot.requests(), 2, "the count of requests is not forgotten");
        let mut expected = RequestSetHash::default();
        expected.add(&signed(2, later).key(), 1, later);
        assert_eq!(forgot.included_digest(), expected.digest());
        // Its retry cannot be included: it expired long before.
        let retry = child(&forgot, expires + KEPT + 2, vec![first.clone()]);
        assert_eq!(
            forgot.check_child(&fixture.genesis, &retry),
            Err(ChainError::RequestExpired { id: 1, expires_ns: expires })
        );
        // What a submission is told: a request the chain does not hold is includable until its
        // expiry, definitely never included while its name would still be held, then unknown.
        assert_eq!(genesis.check_unincluded(&first), Ok(()));
        let before = genesis.execute(&child(&genesis, expires - 1, vec![])).0;
        assert_eq!(before.check_unincluded(&first), Ok(()), "a block at its expiry may still include it");
        // A block at its expiry: every later one is past it.
        let after_expiry = genesis.execute(&child(&genesis, expires, vec![])).0;
        assert_eq!(
            after_expiry.check_unincluded(&first),
            Err(ChainError::RequestExpired { id: 1, expires_ns: expires })
        );
        assert_eq!(forgot.check_unincluded(&first), Err(ChainError::ExpiryForgotten { id: 1, expires_ns: expires }));

        // A snapshot holds the expiries: restored, it forgets alike.
        let restored = ChainState::restore(&held.snapshot()).unwrap();
        assert_eq!(restored.state_digest(), held.state_digest());
        let (restored_forgot, _) = restored.execute(&child(&restored, expires + KEPT + 1, vec![]));
        assert_eq!(restored_forgot.state_digest(), forgot.state_digest());
    }

    #[test]
    fn a_block_with_an_expired_or_too_distant_request_is_refused() {
        use crate::constants::REQUEST_TTL_MAX_NS;
        let fixture = fixture();
        let genesis = ChainState::genesis(&fixture.genesis.block());
        let account = Account { id: 9, ledger: 1, code: 1, ..Account::default() };
        let expired = Request::create_accounts(3, 1, 1_999, &fixture.client, &[account]).unwrap();
        assert_eq!(
            genesis.check_child(&fixture.genesis, &child(&genesis, 2_000, vec![expired])),
            Err(ChainError::RequestExpired { id: 1, expires_ns: 1_999 })
        );
        let far = 2_001 + REQUEST_TTL_MAX_NS;
        let distant = Request::create_accounts(3, 2, far, &fixture.client, &[account]).unwrap();
        assert!(matches!(
            genesis.check_child(&fixture.genesis, &child(&genesis, 2_000, vec![distant.clone()])),
            Err(ChainError::ExpiryTooFar { id: 2, .. })
        ));
        genesis.check_child(&fixture.genesis, &child(&genesis, 2_001, vec![distant])).unwrap();
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
