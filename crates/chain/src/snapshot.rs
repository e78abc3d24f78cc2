//! Snapshots of the replicated state: a `ChainState` as bytes, and back.
//!
//! A validator writes one every `SNAPSHOT_INTERVAL` finalized heights, so that a restart
//! executes only the blocks after it, and serves it to a validator that starts with an empty
//! disk. Every honest validator writes the same bytes at the same height, so a snapshot can be
//! fetched in chunks from several peers.
//!
//! The format (integers little-endian):
//!
//! ```text
//! magic "TALLYCHN" | version u32 | height u64 | block digest [32] | results root [32]
//! timestamp ns u64
//! requests u64       | requests in the blocks so far
//! events u64         | ledger events in the blocks so far
//! included count u64 | count × (client key [32], request id u128, height u64, expiry ns u64),
//!   sorted by (height, client key, id): the names the chain still holds
//! ledger length u64 | ledger snapshot (`tally_ledger`'s format, with its own checksum)
//! checksum [32]      | BLAKE3 of every byte before it
//! ```
//!
//! Restoring checks the format and the checksum, and never panics on bad bytes. It does not
//! prove the state is the chain's: a caller compares `ChainState::commitment` (the state digest
//! and the results root) with the header of the finalized block at the next height (a peer's snapshot), or trusts
//! its own disk (a local one, behind the checksum).

use crate::block::{BlockDigest, Root};
use crate::certified::{CertificateError, CertifiedHeader};
use crate::execution::{ChainState, Inclusion};
use crate::genesis::Genesis;
use crate::keys::ClientKey;
use crate::request::RequestKey;
use commonware_codec::{DecodeExt as _, Encode as _};
use std::collections::HashMap;
use tally_ledger::{Ledger, RestoreError};

const MAGIC: &[u8; 8] = b"TALLYCHN";
/// Version 2 added the results root of the snapshot's block, version 3 each included request's
/// expiry and the count of requests.
const VERSION: u32 = 3;
const CHECKSUM_CONTEXT: &str = "tally 2026 chain snapshot checksum v1";
const ENTRY_SIZE: usize = 32 + 16 + 8 + 8;

/// Why bytes are not a snapshot of a chain state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Tally chain snapshot (bad magic)")]
    BadMagic,
    #[error("chain snapshot version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("chain snapshot is truncated: more bytes needed for {0}")]
    Truncated(&'static str),
    #[error("chain snapshot checksum does not match its contents")]
    ChecksumMismatch,
    #[error("chain snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("chain snapshot's ledger: {0}")]
    Ledger(#[from] RestoreError),
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT);
    hasher.update(bytes);
    *hasher.finalize().as_bytes()
}

impl ChainState {
    /// The whole state as bytes, for [`ChainState::restore`]. Deterministic: equal states give
    /// equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let ledger = self.ledger().snapshot();
        let mut entries: Vec<(&RequestKey, Inclusion)> =
            self.included().iter().map(|(key, inclusion)| (key, *inclusion)).collect();
        entries.sort_unstable_by(|a, b| (a.1.height, a.0).cmp(&(b.1.height, b.0)));
        let mut bytes = Vec::with_capacity(128 + entries.len() * ENTRY_SIZE + ledger.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.height().to_le_bytes());
        bytes.extend_from_slice(self.block().as_ref());
        bytes.extend_from_slice(self.results_root().as_ref());
        bytes.extend_from_slice(&self.timestamp_ns().to_le_bytes());
        bytes.extend_from_slice(&self.requests().to_le_bytes());
        bytes.extend_from_slice(&self.events().to_le_bytes());
        bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (key, inclusion) in entries {
            bytes.extend_from_slice(&key.client.encode());
            bytes.extend_from_slice(&key.id.to_le_bytes());
            bytes.extend_from_slice(&inclusion.height.to_le_bytes());
            bytes.extend_from_slice(&inclusion.expires_ns.to_le_bytes());
        }
        bytes.extend_from_slice(&(ledger.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&ledger);
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        bytes
    }

    /// The state a snapshot describes. Refuses anything that is not exactly a snapshot written
    /// by [`ChainState::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut reader = Reader { bytes, offset: MAGIC.len() };
        let version = u32::from_le_bytes(reader.take("version")?);
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        if bytes.len() < reader.offset + 32 {
            return Err(SnapshotError::Truncated("checksum"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if checksum(body) != sum {
            return Err(SnapshotError::ChecksumMismatch);
        }
        reader.bytes = body;
        let height = u64::from_le_bytes(reader.take("height")?);
        let block_bytes: [u8; 32] = reader.take("block digest")?;
        let block = BlockDigest::decode(bytes::Bytes::copy_from_slice(&block_bytes))
            .map_err(|_| SnapshotError::Inconsistent("block digest".into()))?;
        let results_bytes: [u8; 32] = reader.take("results root")?;
        let results_root = Root::decode(bytes::Bytes::copy_from_slice(&results_bytes))
            .map_err(|_| SnapshotError::Inconsistent("results root".into()))?;
        let timestamp_ns = u64::from_le_bytes(reader.take("timestamp")?);
        let requests = u64::from_le_bytes(reader.take("requests")?);
        let events = u64::from_le_bytes(reader.take("events")?);
        let count = u64::from_le_bytes(reader.take("included count")?);
        if count > (reader.remaining() / ENTRY_SIZE) as u64 {
            return Err(SnapshotError::Truncated("included requests"));
        }
        let mut included = HashMap::with_capacity(count as usize);
        let mut previous: Option<(u64, RequestKey)> = None;
        for _ in 0..count {
            let client: [u8; 32] = reader.take("client key")?;
            let client = ClientKey::decode(bytes::Bytes::copy_from_slice(&client))
                .map_err(|_| SnapshotError::Inconsistent("a client key is not a valid key".into()))?;
            let id = u128::from_le_bytes(reader.take("request id")?);
            let included_at = u64::from_le_bytes(reader.take("inclusion height")?);
            let expires_ns = u64::from_le_bytes(reader.take("expiry")?);
            // Height 0: included before a re-founded chain's genesis (`ChainState::refound`).
            if included_at > height {
                return Err(SnapshotError::Inconsistent(format!(
                    "request {id} included at height {included_at}, outside 0..={height}"
                )));
            }
            let inclusion = Inclusion { height: included_at, expires_ns };
            // Every block forgets the names kept until before its timestamp. A re-founded
            // chain's founding state (height 0) still holds the old chain's: its first block
            // forgets them.
            if height > 0 && inclusion.kept_until_ns() < timestamp_ns {
                return Err(SnapshotError::Inconsistent(format!(
                    "request {id} expired at {expires_ns} ns, too long before the snapshot's block to be held"
                )));
            }
            let key = RequestKey { client, id };
            let entry = (included_at, key);
            if previous.as_ref().is_some_and(|previous| *previous >= entry) {
                return Err(SnapshotError::Inconsistent("included requests are not in order".into()));
            }
            included.insert(entry.1.clone(), inclusion);
            previous = Some(entry);
        }
        let length = u64::from_le_bytes(reader.take("ledger length")?);
        if length != reader.remaining() as u64 {
            return Err(SnapshotError::Inconsistent(format!(
                "ledger length {length} where {} bytes remain",
                reader.remaining()
            )));
        }
        // A state at height 0 may hold events: a re-founded chain's founding state. Whoever
        // adopts a state checks its digest against a certified header or the genesis.
        let ledger = Ledger::restore(&reader.bytes[reader.offset..])?;
        Ok(ChainState::from_parts(height, block, timestamp_ns, ledger, included, requests, events, results_root))
    }
}

/// Why a snapshot is not proven by the certified header of the block above it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotProofError {
    #[error("the certified header of height {height} does not verify: {source}")]
    Certificate { height: u64, source: CertificateError },
    #[error("the header of height {0} is not certified by its own finalization certificate")]
    NotCertifiedItself(u64),
    #[error("the snapshot does not read back: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("the snapshot holds height {found}, not height {expected}")]
    WrongHeight { expected: u64, found: u64 },
    #[error("the snapshot's block {found} is not the parent {expected} of the certified block above it")]
    WrongBlock { expected: BlockDigest, found: BlockDigest },
    #[error("the snapshot's state digest is not the one the certified block above it commits to")]
    WrongStateDigest,
    #[error("the snapshot's results root is not the one the certified block above it commits to")]
    WrongResultsRoot,
    #[error("the snapshot's block time is not before the certified block above it")]
    TimestampAfterChild,
}

/// Checks that `above` proves the finalized header at `height + 1` for the genesis validators,
/// with a certificate of its own (the floor marshal starts from above a snapshot at `height`).
/// A validator checks a peer's snapshot offer with this, and `tally backup verify` a backup.
pub fn check_snapshot_proof(genesis: &Genesis, height: u64, above: &CertifiedHeader) -> Result<(), SnapshotProofError> {
    let proven = height + 1;
    above.verify(genesis, proven).map_err(|source| SnapshotProofError::Certificate { height: proven, source })?;
    if !above.descendants.is_empty() {
        return Err(SnapshotProofError::NotCertifiedItself(proven));
    }
    Ok(())
}

/// The state `bytes` restore, if it is the state at `height` that `above` (checked with
/// [`check_snapshot_proof`]) commits to: the block above names the snapshot's block as its
/// parent and carries its state digest.
pub fn check_snapshot_state(
    height: u64,
    bytes: &[u8],
    above: &CertifiedHeader,
) -> Result<ChainState, SnapshotProofError> {
    let state = ChainState::restore(bytes)?;
    if state.height() != height {
        return Err(SnapshotProofError::WrongHeight { expected: height, found: state.height() });
    }
    if state.block() != above.header.parent {
        return Err(SnapshotProofError::WrongBlock { expected: above.header.parent, found: state.block() });
    }
    if state.state_digest() != above.header.state_digest {
        return Err(SnapshotProofError::WrongStateDigest);
    }
    // Neither is in the state digest, and the block above is checked against both: a snapshot
    // with another would halt the validator that adopted it at that block.
    if state.results_root() != above.header.results_root {
        return Err(SnapshotProofError::WrongResultsRoot);
    }
    if state.timestamp_ns() >= above.header.timestamp_ns {
        return Err(SnapshotProofError::TimestampAfterChild);
    }
    Ok(state)
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let end = self.offset.checked_add(N).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(SnapshotError::Truncated(what))?;
        let taken = self.bytes[self.offset..end].try_into().expect("N bytes");
        self.offset = end;
        Ok(taken)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::block::BlockContext;
    use crate::genesis::Genesis;
    use crate::keys::{public_key, signer_from_seed};
    use crate::request::Request;
    use tally_ledger::{Account, AccountFlags, Transfer, TransferFlags};

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

    fn chain() -> (Genesis, ChainState) {
        let client = signer_from_seed(9);
        let genesis =
            Genesis::new(5, vec![public_key(&signer_from_seed(0))], vec![public_key(&client)], 1_000).unwrap();
        let mut state = ChainState::genesis(&genesis.block());
        let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
        let transfer = |id| Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 5,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let blocks = [
            vec![Request::create_accounts(5, 1, EXPIRES_NS, &client, &[account(1), account(2)]).unwrap()],
            vec![
                Request::create_transfers(5, 2, EXPIRES_NS, &client, &[transfer(10), transfer(11)]).unwrap(),
                // Fails (no such account), so it changes no balance, but it is included.
                Request::create_transfers(
                    5,
                    3,
                    EXPIRES_NS,
                    &client,
                    &[Transfer { debit_account_id: 9, ..transfer(12) }],
                )
                .unwrap(),
            ],
        ];
        for (index, requests) in blocks.into_iter().enumerate() {
            let block = Block::new(
                BlockContext::following(state.block(), state.height() + 1, test_leader()),
                state.height() + 1,
                2_000 + index as u64 * 1_000,
                state.commitment(),
                requests,
            );
            state.check_child(&genesis, &block).unwrap();
            state.apply(&block);
        }
        (genesis, state)
    }

    #[test]
    fn a_refounded_state_is_the_old_ledger_at_height_0_and_restores_from_its_snapshot() {
        let (old_genesis, state) = chain();
        let founding = crate::genesis::Founding {
            chain_id: old_genesis.chain_id(),
            height: state.height(),
            block: state.block(),
            state_digest: state.refounded_state_digest(),
        };
        let client = signer_from_seed(9);
        let genesis = Genesis::new(6, vec![public_key(&signer_from_seed(0))], vec![public_key(&client)], 9_000)
            .unwrap()
            .with_founding(founding)
            .unwrap();
        let refounded = state.clone().refound(&genesis.block());
        assert_eq!(refounded.state_digest(), state.refounded_state_digest());
        assert_eq!(refounded.ledger_digest(), state.ledger_digest(), "the ledger is unchanged");
        assert_ne!(refounded.state_digest(), state.state_digest(), "the requests moved to height 0");
        assert_eq!((refounded.height(), refounded.block()), (0, genesis.block().digest()));
        // Every old request is still included (a retry is a repeat), at height 0.
        for id in 1..=3 {
            let key = crate::request::RequestKey { client: public_key(&client), id };
            assert_eq!(refounded.inclusion_height(&key), Some(0));
        }
        // Its snapshot, at height 0 with events, restores to the same state.
        let restored = ChainState::restore(&refounded.snapshot()).unwrap();
        assert_eq!(restored.commitment(), refounded.commitment());
        assert_eq!(restored.commitment(), genesis.block().header.commitment());
        // And it is what the genesis block commits to, so the new chain's first block follows it.
        let next = Block::new(
            BlockContext::following(restored.block(), 1, test_leader()),
            1,
            10_000,
            restored.commitment(),
            Vec::new(),
        );
        restored.check_child(&genesis, &next).unwrap();
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_bytes() {
        let (_, state) = chain();
        let bytes = state.snapshot();
        let restored = ChainState::restore(&bytes).unwrap();
        assert_eq!(restored.state_digest(), state.state_digest());
        assert_eq!(restored.height(), 2);
        assert_eq!(restored.block(), state.block());
        assert_eq!(restored.timestamp_ns(), state.timestamp_ns());
        assert_eq!(restored.requests_included(), 3);
        assert_eq!(restored.events(), 5);
        assert_eq!(restored.snapshot(), bytes, "deterministic");
    }

    /// The blocks above `chain()`: accounts with balance history, pending transfers (one posted,
    /// one left to expire), failed transfers, and requests from a second client.
    fn more_blocks() -> Vec<Vec<Request>> {
        let client = signer_from_seed(9);
        let account = |id, flags| Account { id, ledger: 1, code: 1, flags, ..Account::default() };
        let transfer = |id, debit, credit, flags, pending_id| Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: 3,
            ledger: 1,
            code: 1,
            flags,
            pending_id,
            // Transfer 21 expires (blocks are 5 s apart); 20 waits to be posted.
            timeout: if id == 21 { 1 } else { 0 },
            ..Transfer::default()
        };
        vec![
            vec![
                Request::create_accounts(
                    5,
                    4,
                    EXPIRES_NS,
                    &client,
                    &[account(3, AccountFlags::HISTORY), account(4, AccountFlags::HISTORY)],
                )
                .unwrap(),
            ],
            vec![
                Request::create_transfers(
                    5,
                    5,
                    EXPIRES_NS,
                    &client,
                    &[
                        transfer(20, 3, 4, TransferFlags::PENDING, 0),
                        transfer(21, 4, 3, TransferFlags::PENDING, 0),
                        transfer(22, 1, 3, TransferFlags::default(), 0),
                    ],
                )
                .unwrap(),
                Request::create_transfers(
                    5,
                    6,
                    EXPIRES_NS,
                    &client,
                    &[transfer(23, 9, 3, TransferFlags::default(), 0)],
                )
                .unwrap(),
            ],
            vec![
                Request::create_transfers(
                    5,
                    7,
                    EXPIRES_NS,
                    &client,
                    &[transfer(24, 0, 0, TransferFlags::POST_PENDING_TRANSFER, 20)],
                )
                .unwrap(),
            ],
        ]
    }

    fn apply_all(genesis: &Genesis, state: &mut ChainState, blocks: Vec<Vec<Request>>) {
        for requests in blocks {
            let block = Block::new(
                BlockContext::following(state.block(), state.height() + 1, test_leader()),
                state.height() + 1,
                state.timestamp_ns() + 5_000_000_000,
                state.commitment(),
                requests,
            );
            state.check_child(genesis, &block).unwrap();
            state.apply(&block);
        }
    }

    /// The snapshot encoding is canonical: the same state at the same height is the same bytes,
    /// whether a validator executed every block from genesis or restored an earlier snapshot
    /// (from its disk or a peer) and executed the rest, and whatever the seeds of its hash maps.
    /// Peers' snapshots can then be fetched chunk by chunk, checked against one list of hashes.
    #[test]
    fn the_same_state_at_the_same_height_is_the_same_bytes_however_it_was_reached() {
        let (genesis, mut from_genesis) = chain();
        let (_, again) = chain();
        assert_eq!(again.snapshot(), from_genesis.snapshot(), "independent maps, same bytes");
        let mut restored = ChainState::restore(&from_genesis.snapshot()).unwrap();
        apply_all(&genesis, &mut from_genesis, more_blocks());
        apply_all(&genesis, &mut restored, more_blocks());
        assert_eq!(restored.state_digest(), from_genesis.state_digest());
        let bytes = from_genesis.snapshot();
        assert_eq!(restored.snapshot(), bytes, "a restored-then-executed state writes the same bytes");
        assert_eq!(ChainState::restore(&bytes).unwrap().snapshot(), bytes);
        // The blocks did what this test is about: history, pending, posted, failed.
        let ledger = from_genesis.ledger();
        assert_eq!(from_genesis.requests_included(), 7);
        assert_eq!(ledger.account_count(), 4);
        // Transfers 10 and 11, the two pending ones, 22, and the post of 20 (23 failed: no
        // account 9).
        assert_eq!(ledger.transfer_count(), 6);
    }

    #[test]
    fn the_state_digest_covers_the_included_requests() {
        let (_, state) = chain();
        let mut included = state.included().clone();
        let key = included.keys().next().unwrap().clone();
        included.remove(&key);
        let ledger = ChainState::restore(&state.snapshot()).unwrap().ledger().clone();
        let forged = ChainState::from_parts(
            state.height(),
            state.block(),
            state.timestamp_ns(),
            ledger,
            included,
            state.requests(),
            state.events(),
            state.results_root(),
        );
        assert_eq!(forged.ledger_digest(), state.ledger_digest());
        assert_ne!(forged.state_digest(), state.state_digest());
    }

    #[test]
    fn bad_bytes_are_refused_without_panicking() {
        let (_, state) = chain();
        let bytes = state.snapshot();
        assert_eq!(ChainState::restore(b"nonsense").unwrap_err(), SnapshotError::BadMagic);
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert_eq!(ChainState::restore(&flipped).unwrap_err(), SnapshotError::ChecksumMismatch);
        let mut version = bytes.clone();
        version[8] = 9;
        assert_eq!(ChainState::restore(&version).unwrap_err(), SnapshotError::UnsupportedVersion(9));
        for cut in [0, 8, 12, 20, 60, bytes.len() / 2, bytes.len() - 1] {
            assert!(ChainState::restore(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A count that claims more entries than bytes remain, with a valid checksum.
        let mut body = bytes[..bytes.len() - 32].to_vec();
        let count_at = 8 + 4 + 8 + 32 + 32 + 8 + 8 + 8;
        body[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        assert_eq!(ChainState::restore(&body).unwrap_err(), SnapshotError::Truncated("included requests"));
    }
}
