//! State receipts: proof, checkable by anyone who holds the genesis, that accounts and transfers
//! were in the ledger with these fields as of a height.
//!
//! The header of block `h` commits to the state after block `h - 1` (`state_digest`, lag one).
//! That digest is BLAKE3 of the ledger's digest and the included-request set's digest
//! (`execution::state_digest`), and the ledger's digest is BLAKE3 of its parts: the roots and
//! sizes of the accounts tree, the transfer log, the pending tree, the balance history and the
//! failed ids, and the last timestamp (`tally_ledger`, `docs/LEDGER.md`). So a state receipt is:
//! - the ledger digest's parts and the included-request set's digest;
//! - for each account, the account and its path to the accounts root; for each transfer, its
//!   chunk of the transfer log with the path to the log's root and, for a pending transfer, the
//!   current state of its pending phase with its path to the pending root; for each balance
//!   history entry, the account and transfer it names, its place among all entries and its path
//!   to the balances root;
//! - the finalized header whose `state_digest` they give, with its certificate (`certified.rs`).
//!
//! The state proven is the state after block `header.height - 1`; a validator serves the newest
//! header that commits to its newest state (the one above its last block, or its last block's own
//! when that block left the state as it was). An id the receipt does not hold is not proven
//! absent: leaves are in creation order, so there is no proof of absence.
//!
//! Encoding (big-endian; a path is a count (1) and that many 32-byte hashes):
//!
//! ```text
//! parts: accounts root (32) | account count (8) | transfers root (32) | transfer count (8)
//!        | pending root (32) | pending count (8) | balances root (32) | balance count (8)
//!        | failed ids root (32) | failed id count (8) | last timestamp (8)
//! | included-request set digest (32)
//! | account count (2) | per account: account (128) | index (8) | chunk leaves (path)
//!                                   | chunk siblings (path) | segment audit path (path)
//! | transfer count (2) | per transfer: index (8) | chunk length (2) | chunk (the transfers
//!                                   of its 1 KiB chunk of the log, 128 bytes each)
//!                                   | chunk siblings (path) | pending (1: 0 none, else the status
//!                                   1 pending, 2 posted, 3 voided, 4 expired) [| slot (8)
//!                                   | pending audit path (path)]
//! | entry count (2) | per balance history entry: account id (16) | transfer id (16)
//!                                   | sequence (8) | balance (128) | balances audit path (path)
//! | certified header (`certified.rs`)
//! ```

use crate::certified::{CertificateError, CertifiedHeader};
use crate::execution::{ChainState, state_digest};
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use bytes::{Buf, BufMut};
use commonware_codec::Encode as _;
use std::collections::HashSet;
use tally_ledger::constants::{BATCH_EVENTS_MAX, OBJECT_SIZE};
use tally_ledger::{
    Account, AccountBalance, AccountFilter, AccountProof, BalanceProof, ChainingValue, DigestParts, Hash,
    PendingStatus, SegmentProof, Transfer, TransferLogProof, TransferProof,
};

/// The most objects one receipt proves: a lookup's limit.
pub const STATE_RECEIPT_OBJECTS_MAX: usize = BATCH_EVENTS_MAX;
/// The longest path a receipt may carry: one hash per doubling of a 2^64-leaf tree.
const PATH_MAX: usize = 64;
/// BLAKE3's chunk: the most bytes of the transfer log one transfer's proof carries.
const CHUNK_BYTES_MAX: usize = 1_024;

/// Why a state receipt does not prove what it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateReceiptError {
    #[error("malformed state receipt: {0}")]
    Malformed(String),
    #[error("the header is not proven final: {0}")]
    Certificate(#[from] CertificateError),
    #[error("the state's digest is not the one the certified header at height {height} commits to")]
    NotCommitted { height: u64 },
    #[error("account {id} is not in the state the header commits to")]
    Account { id: u128 },
    #[error("transfer {id} is not in the state the header commits to")]
    Transfer { id: u128 },
    #[error(
        "the balance history entry of account {account} after transfer {transfer} is not in the state the header commits to"
    )]
    Balance { account: u128, transfer: u128 },
}

/// Accounts and transfers of one state with their proofs, before a certified header is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    /// The height of the block after which the state is proven.
    pub height: u64,
    pub parts: DigestParts,
    pub included_digest: [u8; 32],
    pub accounts: Vec<(Account, AccountProof)>,
    pub transfers: Vec<(Transfer, TransferProof)>,
    pub balances: Vec<(AccountBalance, BalanceProof)>,
}

impl StateProof {
    /// The proofs of the balance history entries `filter` selects in `state`, in its order.
    pub fn collect_balances(state: &ChainState, filter: AccountFilter) -> Self {
        let ledger = state.ledger();
        Self {
            height: state.height(),
            parts: ledger.digest_parts(),
            included_digest: state.included_digest(),
            accounts: Vec::new(),
            transfers: Vec::new(),
            balances: ledger.prove_account_balances(filter),
        }
    }

    /// The proofs of the accounts and transfers among `account_ids` and `transfer_ids` that
    /// exist in `state` (in the order asked, each once).
    pub fn collect(state: &ChainState, account_ids: &[u128], transfer_ids: &[u128]) -> Self {
        let ledger = state.ledger();
        let mut seen = HashSet::with_capacity(account_ids.len());
        let accounts: Vec<(Account, AccountProof)> =
            account_ids.iter().filter(|id| seen.insert(**id)).filter_map(|id| ledger.prove_account(*id)).collect();
        seen.clear();
        let transfers: Vec<(Transfer, TransferProof)> =
            transfer_ids.iter().filter(|id| seen.insert(**id)).filter_map(|id| ledger.prove_transfer(*id)).collect();
        assert!(accounts.len() + transfers.len() <= 2 * STATE_RECEIPT_OBJECTS_MAX);
        Self {
            height: state.height(),
            parts: ledger.digest_parts(),
            included_digest: state.included_digest(),
            accounts,
            transfers,
            balances: Vec::new(),
        }
    }

    /// The chain state digest these parts give: what a header must commit to.
    pub fn state_digest(&self) -> Hash {
        state_digest(&self.parts.digest(), &self.included_digest)
    }
}

/// A state proof with the certified header that commits to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReceipt {
    pub proof: StateProof,
    pub certified: CertifiedHeader,
}

impl StateReceipt {
    /// The receipt of `proof` under `certified`, which commits to its state. The height proven
    /// is the header's parent's: the state's own height, or one less when the state's own block
    /// left it as it was and its own header proves it (as `decode` reads it back).
    pub fn new(mut proof: StateProof, certified: CertifiedHeader) -> Self {
        assert_eq!(proof.state_digest(), certified.header.state_digest, "the header commits to the proof's state");
        assert!(certified.header.height >= 1 && certified.header.height - 1 <= proof.height);
        proof.height = certified.header.height - 1;
        Self { proof, certified }
    }
}

/// What a checked state receipt establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateVerified {
    /// The height of the block after which the state is proven (the header's height minus one).
    pub height: u64,
    /// The height of the certified header.
    pub certified_height: u64,
    /// The validators whose signatures finalized it.
    pub signers: Vec<ValidatorKey>,
    /// How many validators the genesis names.
    pub validators: usize,
}

impl StateReceipt {
    /// Checks the receipt against the genesis alone: the header is finalized by a quorum of
    /// the genesis validators, it commits to the state the parts give, and every account and
    /// transfer is in that state.
    pub fn verify(&self, genesis: &Genesis) -> Result<StateVerified, StateReceiptError> {
        let header = &self.certified.header;
        self.certified.verify(genesis, header.height)?;
        if header.height == 0 || self.proof.state_digest() != header.state_digest {
            return Err(StateReceiptError::NotCommitted { height: header.height });
        }
        let digest = self.proof.parts.digest();
        for (account, proof) in &self.proof.accounts {
            if proof.parts != self.proof.parts || !proof.verify(&digest, account) {
                return Err(StateReceiptError::Account { id: account.id });
            }
        }
        for (transfer, proof) in &self.proof.transfers {
            if proof.parts != self.proof.parts || !proof.verify(&digest, transfer) {
                return Err(StateReceiptError::Transfer { id: transfer.id });
            }
        }
        for (balance, proof) in &self.proof.balances {
            if proof.parts != self.proof.parts || !proof.verify(&digest, balance) {
                return Err(StateReceiptError::Balance { account: proof.account_id, transfer: proof.transfer_id });
            }
        }
        Ok(StateVerified {
            height: header.height - 1,
            certified_height: self.certified.certified().height,
            signers: self.certified.signers(genesis),
            validators: genesis.validators().len(),
        })
    }

    /// The receipt's bytes (see the module's documentation).
    pub fn encode(&self) -> Vec<u8> {
        let proof = &self.proof;
        let mut buf = Vec::with_capacity(
            1_024 * (1 + proof.accounts.len() + 2 * proof.transfers.len()) + 1_024 * proof.balances.len(),
        );
        write_parts(&mut buf, &proof.parts);
        buf.put_slice(&proof.included_digest);
        buf.put_u16(u16::try_from(proof.accounts.len()).expect("at most 8,190 accounts"));
        for (account, proof) in &proof.accounts {
            buf.put_slice(&account.to_bytes());
            buf.put_u64(proof.index);
            write_path(&mut buf, &proof.path.chunk);
            write_path(&mut buf, &proof.path.siblings);
            write_path(&mut buf, &proof.path.path);
        }
        buf.put_u16(u16::try_from(proof.transfers.len()).expect("at most 8,190 transfers"));
        for (_, proof) in &proof.transfers {
            buf.put_u64(proof.log.index);
            buf.put_u16(u16::try_from(proof.log.chunk.len()).expect("a chunk is 1 KiB"));
            buf.put_slice(&proof.log.chunk);
            write_path(&mut buf, &proof.log.siblings);
            match &proof.pending {
                None => buf.put_u8(0),
                Some((status, slot, path)) => {
                    buf.put_u8(*status as u8);
                    buf.put_u64(*slot);
                    write_path(&mut buf, path);
                }
            }
        }
        buf.put_u16(u16::try_from(proof.balances.len()).expect("at most 8,190 entries"));
        for (balance, proof) in &proof.balances {
            buf.put_u128(proof.account_id);
            buf.put_u128(proof.transfer_id);
            buf.put_u64(proof.sequence);
            buf.put_slice(&balance.to_bytes());
            write_path(&mut buf, &proof.path);
        }
        buf.put_slice(&self.certified.encode());
        buf
    }

    /// Decodes `encode`'s bytes, bounding every count before allocating.
    pub fn decode(bytes: &[u8], genesis: &Genesis) -> Result<Self, StateReceiptError> {
        let mut buf = bytes;
        let parts = read_parts(&mut buf)?;
        let included_digest = read_hash(&mut buf)?;
        let account_count = read_count(&mut buf)?;
        let mut accounts = Vec::with_capacity(account_count);
        for _ in 0..account_count {
            let account = Account::from_bytes(&read_array::<OBJECT_SIZE>(&mut buf)?);
            let index = read_u64(&mut buf)?;
            let chunk = read_path(&mut buf)?;
            let siblings = read_path(&mut buf)?;
            let path = read_path(&mut buf)?;
            accounts.push((account, AccountProof { index, path: SegmentProof { chunk, siblings, path }, parts }));
        }
        let transfer_count = read_count(&mut buf)?;
        let mut transfers = Vec::with_capacity(transfer_count);
        for _ in 0..transfer_count {
            let index = read_u64(&mut buf)?;
            let chunk_len = usize::from(read_u16(&mut buf)?);
            if chunk_len == 0 || chunk_len > CHUNK_BYTES_MAX || chunk_len % OBJECT_SIZE != 0 {
                return Err(malformed(format!("a transfer log chunk of {chunk_len} bytes")));
            }
            let chunk = take(&mut buf, chunk_len)?.to_vec();
            let siblings: Vec<ChainingValue> = read_path(&mut buf)?;
            let pending = match read_u8(&mut buf)? {
                0 => None,
                code => {
                    let status =
                        PendingStatus::from_code(code).ok_or_else(|| malformed(format!("pending status {code}")))?;
                    Some((status, read_u64(&mut buf)?, read_path(&mut buf)?))
                }
            };
            let log = TransferLogProof { index, count: parts.transfer_count, chunk, siblings };
            let bytes =
                log.transfer_bytes().ok_or_else(|| malformed(format!("transfer {index} is not in its chunk")))?;
            let transfer = Transfer::from_bytes(bytes.try_into().expect("128 bytes"));
            transfers.push((transfer, TransferProof { log, pending, parts }));
        }
        let balance_count = read_count(&mut buf)?;
        let mut balances = Vec::with_capacity(balance_count);
        for _ in 0..balance_count {
            let account_id = u128::from_be_bytes(read_array(&mut buf)?);
            let transfer_id = u128::from_be_bytes(read_array(&mut buf)?);
            let sequence = read_u64(&mut buf)?;
            let balance = AccountBalance::from_bytes(&read_array::<OBJECT_SIZE>(&mut buf)?)
                .ok_or_else(|| malformed("a balance with a reserved byte set".into()))?;
            let path = read_path(&mut buf)?;
            balances.push((balance, BalanceProof { account_id, transfer_id, sequence, path, parts }));
        }
        let certified = CertifiedHeader::decode(buf, genesis)?;
        let height = certified.header.height.saturating_sub(1);
        Ok(Self { proof: StateProof { height, parts, included_digest, accounts, transfers, balances }, certified })
    }
}

fn malformed(reason: String) -> StateReceiptError {
    StateReceiptError::Malformed(reason)
}

fn write_parts(buf: &mut Vec<u8>, parts: &DigestParts) {
    for (root, count) in [
        (&parts.accounts_root, parts.account_count),
        (&parts.transfers_root, parts.transfer_count),
        (&parts.pending_root, parts.pending_count),
        (&parts.balances_root, parts.balance_count),
        (&parts.failed_transfer_ids_root, parts.failed_transfer_id_count),
    ] {
        buf.put_slice(root);
        buf.put_u64(count);
    }
    buf.put_u64(parts.timestamp_last);
}

fn read_parts(buf: &mut &[u8]) -> Result<DigestParts, StateReceiptError> {
    let mut pair = || -> Result<(Hash, u64), StateReceiptError> { Ok((read_hash(buf)?, read_u64(buf)?)) };
    let (accounts_root, account_count) = pair()?;
    let (transfers_root, transfer_count) = pair()?;
    let (pending_root, pending_count) = pair()?;
    let (balances_root, balance_count) = pair()?;
    let (failed_transfer_ids_root, failed_transfer_id_count) = pair()?;
    Ok(DigestParts {
        accounts_root,
        account_count,
        transfers_root,
        transfer_count,
        pending_root,
        pending_count,
        balances_root,
        balance_count,
        failed_transfer_ids_root,
        failed_transfer_id_count,
        timestamp_last: read_u64(buf)?,
    })
}

fn write_path(buf: &mut Vec<u8>, path: &[[u8; 32]]) {
    buf.put_u8(u8::try_from(path.len()).expect("a path of at most 64 hashes"));
    for hash in path {
        buf.put_slice(hash);
    }
}

fn read_path(buf: &mut &[u8]) -> Result<Vec<[u8; 32]>, StateReceiptError> {
    let count = usize::from(read_u8(buf)?);
    if count > PATH_MAX {
        return Err(malformed(format!("a path of {count} hashes")));
    }
    (0..count).map(|_| read_hash(buf)).collect()
}

fn read_count(buf: &mut &[u8]) -> Result<usize, StateReceiptError> {
    let count = usize::from(read_u16(buf)?);
    if count > STATE_RECEIPT_OBJECTS_MAX {
        return Err(malformed(format!("{count} objects")));
    }
    Ok(count)
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], StateReceiptError> {
    if buf.remaining() < len {
        return Err(malformed("the receipt ends early".into()));
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

fn read_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], StateReceiptError> {
    Ok(take(buf, N)?.try_into().expect("N bytes"))
}

fn read_hash(buf: &mut &[u8]) -> Result<Hash, StateReceiptError> {
    read_array::<32>(buf)
}

fn read_u64(buf: &mut &[u8]) -> Result<u64, StateReceiptError> {
    Ok(u64::from_be_bytes(read_array(buf)?))
}

fn read_u16(buf: &mut &[u8]) -> Result<u16, StateReceiptError> {
    Ok(u16::from_be_bytes(read_array(buf)?))
}

fn read_u8(buf: &mut &[u8]) -> Result<u8, StateReceiptError> {
    Ok(read_array::<1>(buf)?[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, BlockContext};
    use crate::certified::sign_finalization;
    use crate::keys::{ValidatorSigner, public_key, signer_from_seed};
    use crate::request::Request;
    use tally_ledger::{AccountFilterFlags, AccountFlags, TransferFlags};

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    struct Fixture {
        genesis: Genesis,
        receipt: StateReceipt,
    }

    /// Block 1 creates three accounts, a transfer and a pending transfer; block 2 above it
    /// commits to the state after block 1 and is finalized by three of four validators.
    fn fixture() -> Fixture {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let client = signer_from_seed(100);
        let genesis =
            Genesis::new(7, signers.iter().map(public_key).collect(), vec![public_key(&client)], 1_000).unwrap();
        let accounts: Vec<Account> = (1..=3u128)
            .map(|id| Account { id, ledger: 1, code: 1, flags: AccountFlags::HISTORY, ..Account::default() })
            .collect();
        let transfer = |id, flags| Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 10,
            ledger: 1,
            code: 1,
            flags,
            ..Transfer::default()
        };
        let requests = vec![
            Request::create_accounts(7, 1, EXPIRES_NS, &client, &accounts).unwrap(),
            Request::create_transfers(
                7,
                2,
                EXPIRES_NS,
                &client,
                &[transfer(10, TransferFlags::NONE), transfer(11, TransferFlags::PENDING)],
            )
            .unwrap(),
        ];
        let leader = genesis.validators()[0].clone();
        let mut state = ChainState::genesis(&genesis.block());
        let block = Block::new(
            BlockContext::following(genesis.block().digest(), 1, leader.clone()),
            1,
            2_000,
            state.commitment(),
            requests,
        );
        state.check_child(&genesis, &block).unwrap();
        state.apply(&block);
        let above =
            Block::new(BlockContext::following(block.digest(), 2, leader), 2, 3_000, state.commitment(), vec![]);
        let finalization = sign_finalization(&above.header, &signers[..3], &genesis);
        let certified = CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization };
        let mut proof = StateProof::collect(&state, &[2, 9, 1, 2], &[11, 10, 12]);
        let filter = AccountFilter {
            account_id: 1,
            limit: 10,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
            ..AccountFilter::default()
        };
        proof.balances = StateProof::collect_balances(&state, filter).balances;
        Fixture { genesis, receipt: StateReceipt::new(proof, certified) }
    }

    #[test]
    fn a_state_receipt_proves_accounts_and_transfers_to_anyone_holding_the_genesis() {
        let Fixture { genesis, receipt } = fixture();
        let ids =
            |accounts: &[(Account, AccountProof)]| accounts.iter().map(|(account, _)| account.id).collect::<Vec<_>>();
        assert_eq!(ids(&receipt.proof.accounts), vec![2, 1], "the ones that exist, each once, in the order asked");
        let transfers: Vec<u128> = receipt.proof.transfers.iter().map(|(transfer, _)| transfer.id).collect();
        assert_eq!(transfers, vec![11, 10]);
        let verified = receipt.verify(&genesis).unwrap();
        assert_eq!(
            (verified.height, verified.certified_height, verified.signers.len(), verified.validators),
            (1, 2, 3, 4)
        );
        let (credited, _) = &receipt.proof.accounts[0];
        assert_eq!((credited.credits_posted, credited.credits_pending), (10, 10));
        // Account 1's history: after transfer 10, then after the pending 11.
        let history: Vec<(u128, u128, u128)> = receipt
            .proof
            .balances
            .iter()
            .map(|(balance, proof)| (proof.transfer_id, balance.debits_posted, balance.debits_pending))
            .collect();
        assert_eq!(history, vec![(10, 10, 0), (11, 10, 10)]);
        let bytes = receipt.encode();
        assert_eq!(StateReceipt::decode(&bytes, &genesis).unwrap(), receipt);
    }

    #[test]
    fn a_changed_balance_transfer_or_state_is_refused() {
        let Fixture { genesis, receipt } = fixture();
        let mut richer = receipt.clone();
        richer.proof.accounts[0].0.credits_posted += 1;
        assert_eq!(richer.verify(&genesis), Err(StateReceiptError::Account { id: 2 }));
        let mut larger = receipt.clone();
        larger.proof.transfers[1].0.amount += 1;
        assert_eq!(larger.verify(&genesis), Err(StateReceiptError::Transfer { id: 10 }));
        let mut poorer = receipt.clone();
        poorer.proof.balances[1].0.debits_posted -= 1;
        assert_eq!(poorer.verify(&genesis), Err(StateReceiptError::Balance { account: 1, transfer: 11 }));
        let mut elsewhere = receipt.clone();
        elsewhere.proof.balances[0].1.account_id = 2;
        assert_eq!(elsewhere.verify(&genesis), Err(StateReceiptError::Balance { account: 2, transfer: 10 }));
        let mut posted = receipt.clone();
        posted.proof.transfers[0].1.pending.as_mut().unwrap().0 = PendingStatus::Posted;
        assert_eq!(posted.verify(&genesis), Err(StateReceiptError::Transfer { id: 11 }));
        let mut later = receipt.clone();
        later.proof.parts.timestamp_last += 1;
        assert_eq!(later.verify(&genesis), Err(StateReceiptError::NotCommitted { height: 2 }));
        let mut other_chain = receipt.clone();
        other_chain.proof.included_digest[0] ^= 1;
        assert_eq!(other_chain.verify(&genesis), Err(StateReceiptError::NotCommitted { height: 2 }));
        let mut moved = receipt.clone();
        moved.certified.header.height = 3;
        assert!(matches!(moved.verify(&genesis), Err(StateReceiptError::Certificate(_))));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let Fixture { genesis, receipt } = fixture();
        let bytes = receipt.encode();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x01;
            let verdict =
                StateReceipt::decode(&flipped, &genesis).and_then(|receipt| receipt.verify(&genesis).map(|_| receipt));
            // A flip inside a transfer's chunk but outside the transfer itself changes nothing
            // the receipt claims about it only if the chunk still hashes to the root: it cannot.
            assert!(verdict.is_err(), "byte {index} of {} flipped, and the receipt still verifies", bytes.len());
        }
        assert!(StateReceipt::decode(&bytes[..bytes.len() - 1], &genesis).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(StateReceipt::decode(&longer, &genesis).is_err());
    }

    #[test]
    fn a_receipt_of_another_chain_is_refused() {
        let Fixture { receipt, .. } = fixture();
        let other: Vec<ValidatorSigner> = (10..14).map(signer_from_seed).collect();
        let genesis =
            Genesis::new(7, other.iter().map(public_key).collect(), vec![public_key(&signer_from_seed(100))], 1_000)
                .unwrap();
        assert!(matches!(receipt.verify(&genesis), Err(StateReceiptError::Certificate(_))));
    }
}
