//! The state digest: the accounts tree, the transfer log, the pending-status tree, two logs
//! and the last timestamp, hashed into 32 bytes.
//!
//! - **accounts**: one leaf per account in creation order, hashed with its current balances
//!   and flags, in segments of 512 under a Merkle tree (`account_table.rs`).
//! - **transfers**: BLAKE3 of every transfer's encoding in creation order (`transfer_log.rs`).
//!   Transfers never change, so this is an append-only stream hashed with SIMD.
//! - **pending**: a Merkle tree with one leaf per pending transfer (in creation order): its id
//!   and the state of its pending phase (pending, posted, voided, expired).
//! - **balances**: an append-only Merkle log of balance-history entries (accounts with
//!   `flags.history`), in the order they were made.
//! - **failed transfer ids**: an append-only Merkle log of ids refused with a transient status.
//!
//! The digest hashes the five roots, their sizes and the last timestamp. Every piece of state
//! the ledger answers from is either in a leaf or derived from leaves (the expiry queue from the
//! pending transfers, the indexes from the objects), so equal digests mean equal answers. Proofs
//! of one account (leaf + audit path) and of one transfer (BLAKE3 chunk + sibling chaining
//! values) check against the digest through its parts.

use crate::account_table::{AccountTable, SegmentProof, verify_account};
use crate::ledger::Changes;
use crate::merkle::{Hash, MerkleTree, leaf};
use crate::store::{AccountIndex, BalanceEntry, PendingStatus, Store};
use crate::transfer_log::{TransferLog, TransferLogProof};
use crate::types::{Account, AccountBalance, TransferFlags};

const PENDING_KEY: &[u8; 32] = b"tally.ledger.v1.pending-status..";
const BALANCE_KEY: &[u8; 32] = b"tally.ledger.v1.account-balance.";
const FAILED_ID_KEY: &[u8; 32] = b"tally.ledger.v1.failed-transfer.";
const DIGEST_KEY: &[u8; 32] = b"tally.ledger.v1.state-digest....";
/// Accounts a rebuild hands to the accounts table at a time (bounds its scratch memory).
const REBUILD_ACCOUNTS_PER_UPDATE: usize = 8_192;

/// The leaf of a pending transfer: its id and the state of its pending phase.
pub fn pending_leaf(transfer_id: u128, status: PendingStatus) -> Hash {
    let mut bytes = [0u8; 17];
    bytes[..16].copy_from_slice(&transfer_id.to_le_bytes());
    bytes[16] = status as u8;
    leaf(PENDING_KEY, &bytes)
}

/// The leaf of a balance-history entry: the account id, the id of the transfer that produced
/// it, and the balances with their timestamp.
pub fn balance_leaf(account_id: u128, transfer_id: u128, balance: &AccountBalance) -> Hash {
    let mut bytes = [0u8; 16 + 16 + 72];
    bytes[..16].copy_from_slice(&account_id.to_le_bytes());
    bytes[16..32].copy_from_slice(&transfer_id.to_le_bytes());
    bytes[32..].copy_from_slice(&balance.to_bytes()[..72]);
    leaf(BALANCE_KEY, &bytes)
}

/// The leaf of a failed transfer id.
pub fn failed_id_leaf(id: u128) -> Hash {
    leaf(FAILED_ID_KEY, &id.to_le_bytes())
}

/// What the digest commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestParts {
    pub accounts_root: Hash,
    pub account_count: u64,
    pub transfers_root: Hash,
    pub transfer_count: u64,
    pub pending_root: Hash,
    pub pending_count: u64,
    pub balances_root: Hash,
    pub balance_count: u64,
    pub failed_transfer_ids_root: Hash,
    pub failed_transfer_id_count: u64,
    pub timestamp_last: u64,
}

impl DigestParts {
    /// The 32-byte digest of these parts.
    pub fn digest(&self) -> Hash {
        let mut hasher = blake3::Hasher::new_keyed(DIGEST_KEY);
        for (root, count) in [
            (&self.accounts_root, self.account_count),
            (&self.transfers_root, self.transfer_count),
            (&self.pending_root, self.pending_count),
            (&self.balances_root, self.balance_count),
            (&self.failed_transfer_ids_root, self.failed_transfer_id_count),
        ] {
            hasher.update(root);
            hasher.update(&count.to_le_bytes());
        }
        hasher.update(&self.timestamp_last.to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}

/// The structures behind the digest, kept current batch by batch.
#[derive(Debug, Clone)]
pub struct Commitment {
    accounts: AccountTable,
    transfers: TransferLog,
    pending: MerkleTree,
    balances: MerkleTree,
    failed_transfer_ids: MerkleTree,
    timestamp_last: u64,
    parts: DigestParts,
    digest: Hash,
    /// Reused per batch: one bit per account, set for the accounts the batch changed.
    accounts_changed: Vec<u64>,
    /// Reused per batch: the changed accounts, in index order.
    accounts_changed_indexes: Vec<u64>,
    /// Reused per batch: the batch's new transfers, encoded, for one BLAKE3 update.
    encoded: Vec<u8>,
}

impl Commitment {
    pub fn new() -> Self {
        let mut commitment = Self {
            accounts: AccountTable::new(),
            transfers: TransferLog::new(),
            pending: MerkleTree::new(),
            balances: MerkleTree::new(),
            failed_transfer_ids: MerkleTree::new(),
            timestamp_last: 0,
            parts: DigestParts {
                accounts_root: [0; 32],
                account_count: 0,
                transfers_root: [0; 32],
                transfer_count: 0,
                pending_root: [0; 32],
                pending_count: 0,
                balances_root: [0; 32],
                balance_count: 0,
                failed_transfer_ids_root: [0; 32],
                failed_transfer_id_count: 0,
                timestamp_last: 0,
            },
            digest: [0; 32],
            accounts_changed: Vec::new(),
            accounts_changed_indexes: Vec::new(),
            encoded: Vec::new(),
        };
        commitment.commit(0);
        commitment
    }

    pub fn digest(&self) -> Hash {
        self.digest
    }

    pub fn parts(&self) -> DigestParts {
        self.parts
    }

    /// Folds one batch's changes in. Costs in proportion to the batch (and, for the accounts
    /// tree, the logarithm of the number of accounts), not to the ledger's size.
    pub fn apply<S: Store>(&mut self, store: &S, changes: &mut Changes, timestamp_last: u64) {
        self.fold_accounts(store, changes);
        assert_eq!(self.accounts.len(), u64::from(store.account_count()));

        // Transfers: the new ones, appended to the log in one update.
        self.encoded.clear();
        for index in self.transfers.len()..store.transfer_count() {
            self.encoded.extend_from_slice(&store.transfer(index).to_bytes());
        }
        self.transfers.append(&self.encoded);

        // Pending transfers whose state changed (or that were created).
        changes.pending.sort_unstable();
        changes.pending.dedup();
        let mut created: Vec<(u64, Hash)> = Vec::new();
        for index in changes.pending.drain(..) {
            if index >= store.transfer_count() {
                continue; // Created and rolled back within the batch.
            }
            let (Some(status), Some(slot)) = (store.pending_status(index), store.pending_slot(index)) else {
                continue; // Its creation was rolled back.
            };
            let hash = pending_leaf(store.transfer(index).id, status);
            if slot < self.pending.len() {
                self.pending.set(slot, hash);
            } else {
                created.push((slot, hash));
            }
        }
        created.sort_unstable_by_key(|(slot, _)| *slot);
        for (slot, hash) in created {
            assert_eq!(slot, self.pending.len(), "new pending transfers are contiguous");
            self.pending.push(hash);
        }
        assert_eq!(self.pending.len(), store.pending_count());

        // History entries are appended in the order they were made (their sequence numbers).
        for (account, entry) in changes.balances.drain(..) {
            assert_eq!(entry.sequence, self.balances.len(), "history entries are appended in order");
            self.balances.push(entry_leaf(store, account, &entry));
        }
        assert_eq!(self.balances.len(), store.balance_count());

        let known = self.failed_transfer_ids.len() as usize;
        let failed = store.failed_transfer_ids();
        assert_eq!(failed.len(), known + changes.failed_transfer_ids.len());
        for id in &failed[known..] {
            self.failed_transfer_ids.push(failed_id_leaf(*id));
        }
        changes.failed_transfer_ids.clear();

        self.commit(timestamp_last);
    }

    /// Rehashes the leaves of the accounts the batch changed, each once, in index order (via a
    /// bitmap), and drains them from `changes`.
    fn fold_accounts<S: Store>(&mut self, store: &S, changes: &mut Changes) {
        let account_count = u64::from(store.account_count());
        for index in changes.account_identities.drain(..) {
            if u64::from(index) < self.accounts.len() {
                self.accounts.refresh_identity(u64::from(index), store.account(index));
            }
        }
        let mut indexes = std::mem::take(&mut self.accounts_changed_indexes);
        indexes.clear();
        let words = account_count.div_ceil(64) as usize;
        if self.accounts_changed.len() < words {
            self.accounts_changed.resize(words, 0);
        }
        let mut word_min = usize::MAX;
        let mut word_max = 0;
        for index in changes.accounts.drain(..) {
            if u64::from(index) >= account_count {
                continue; // Created and rolled back within the batch.
            }
            let word = (index / 64) as usize;
            self.accounts_changed[word] |= 1 << (index % 64);
            word_min = word_min.min(word);
            word_max = word_max.max(word);
        }
        for word in word_min..=word_max.min(words.saturating_sub(1)) {
            let mut bits = std::mem::take(&mut self.accounts_changed[word]);
            while bits != 0 {
                indexes.push(word as u64 * 64 + u64::from(bits.trailing_zeros()));
                bits &= bits - 1;
            }
        }
        self.accounts.update(&indexes, |index| store.account(index as AccountIndex));
        self.accounts_changed_indexes = indexes;
    }

    fn commit(&mut self, timestamp_last: u64) {
        assert!(timestamp_last >= self.timestamp_last, "time never goes back");
        self.accounts.commit();
        self.pending.commit();
        self.balances.commit();
        self.failed_transfer_ids.commit();
        self.timestamp_last = timestamp_last;
        self.parts = DigestParts {
            accounts_root: self.accounts.root(),
            account_count: self.accounts.len(),
            transfers_root: self.transfers.root(),
            transfer_count: self.transfers.len(),
            pending_root: self.pending.root(),
            pending_count: self.pending.len(),
            balances_root: self.balances.root(),
            balance_count: self.balances.len(),
            failed_transfer_ids_root: self.failed_transfer_ids.root(),
            failed_transfer_id_count: self.failed_transfer_ids.len(),
            timestamp_last,
        };
        self.digest = self.parts.digest();
    }

    /// The commitment of a store, computed from scratch (restore, and tests of `apply`).
    pub fn rebuild<S: Store>(store: &S, timestamp_last: u64) -> Self {
        let mut commitment = Self::new();
        let mut indexes = Vec::with_capacity(REBUILD_ACCOUNTS_PER_UPDATE);
        for index in 0..u64::from(store.account_count()) {
            indexes.push(index);
            if indexes.len() == REBUILD_ACCOUNTS_PER_UPDATE {
                commitment.accounts.update(&indexes, |index| store.account(index as AccountIndex));
                indexes.clear();
            }
        }
        commitment.accounts.update(&indexes, |index| store.account(index as AccountIndex));
        let mut encoded = Vec::with_capacity(store.transfer_count() as usize * crate::constants::OBJECT_SIZE);
        for index in 0..store.transfer_count() {
            let transfer = store.transfer(index);
            encoded.extend_from_slice(&transfer.to_bytes());
            if transfer.flags.contains(TransferFlags::PENDING) {
                let status = store.pending_status(index).expect("a pending transfer has a status");
                assert_eq!(store.pending_slot(index), Some(commitment.pending.len()), "slots follow creation order");
                commitment.pending.push(pending_leaf(transfer.id, status));
            }
        }
        commitment.transfers.append(&encoded);
        for (account, entry) in balances_in_order(store) {
            commitment.balances.push(entry_leaf(store, account, entry));
        }
        for id in store.failed_transfer_ids() {
            commitment.failed_transfer_ids.push(failed_id_leaf(*id));
        }
        commitment.commit(timestamp_last);
        commitment
    }

    /// The proof of an account's leaf in the accounts tree.
    pub fn account_path(&self, index: AccountIndex) -> SegmentProof {
        self.accounts.proof(u64::from(index))
    }

    /// The proof of transfer `index` in the log, given the encoding of its chunk's transfers.
    pub fn transfer_path(&self, index: u64, chunk: Vec<u8>) -> TransferLogProof {
        self.transfers.prove(index, chunk)
    }

    /// The transfers (by index) whose encodings make up transfer `index`'s chunk of the log.
    pub fn transfer_chunk(&self, index: u64) -> std::ops::Range<u64> {
        self.transfers.chunk_range(index)
    }

    /// The audit path of a pending transfer in the pending tree.
    pub fn pending_path(&self, slot: u64) -> Vec<Hash> {
        self.pending.proof(slot)
    }

    /// The audit path of a balance-history entry in the balances tree.
    pub fn balance_path(&self, sequence: u64) -> Vec<Hash> {
        self.balances.proof(sequence)
    }
}

fn entry_leaf<S: Store>(store: &S, account: AccountIndex, entry: &BalanceEntry) -> Hash {
    balance_leaf(store.account(account).id, store.transfer(entry.transfer).id, &entry.balance)
}

/// Every balance-history entry of every account, in the order they were made.
pub fn balances_in_order<S: Store>(store: &S) -> Vec<(AccountIndex, &BalanceEntry)> {
    let mut entries: Vec<(AccountIndex, &BalanceEntry)> = Vec::new();
    for account in 0..store.account_count() {
        entries.extend(store.balances(account).iter().map(|entry| (account, entry)));
    }
    entries.sort_unstable_by_key(|(_, entry)| entry.sequence);
    entries
}

/// A proof that an account, with its current balances, is part of the state a digest commits
/// to: the account's position, its leaf's path to the accounts root, and the digest's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    pub index: u64,
    pub path: SegmentProof,
    pub parts: DigestParts,
}

impl AccountProof {
    /// Whether `account` is in the state whose digest is `digest`.
    pub fn verify(&self, digest: &Hash, account: &Account) -> bool {
        self.parts.digest() == *digest
            && verify_account(&self.parts.accounts_root, self.parts.account_count, self.index, account, &self.path)
    }
}

/// A proof that a balance-history entry is part of the state a digest commits to: the account
/// it belongs to, the transfer that made it, its place among all entries, its audit path in the
/// balances tree, and the digest's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceProof {
    pub account_id: u128,
    pub transfer_id: u128,
    pub sequence: u64,
    pub path: Vec<Hash>,
    pub parts: DigestParts,
}

impl BalanceProof {
    /// Whether `balance` is the entry this proof names in the state whose digest is `digest`.
    pub fn verify(&self, digest: &Hash, balance: &AccountBalance) -> bool {
        self.parts.digest() == *digest
            && crate::merkle::verify_proof(
                &self.parts.balances_root,
                self.parts.balance_count,
                self.sequence,
                &balance_leaf(self.account_id, self.transfer_id, balance),
                &self.path,
            )
    }
}

/// A proof that a transfer is part of the state a digest commits to and, for a pending
/// transfer, of the current state of its pending phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferProof {
    pub log: TransferLogProof,
    /// For a pending transfer: its status, slot and audit path in the pending tree.
    pub pending: Option<(PendingStatus, u64, Vec<Hash>)>,
    pub parts: DigestParts,
}

impl TransferProof {
    /// Whether `transfer` (and, if pending, the proof's status) is in the state whose digest is
    /// `digest`.
    pub fn verify(&self, digest: &Hash, transfer: &crate::types::Transfer) -> bool {
        let in_log = self.parts.digest() == *digest
            && self.log.count == self.parts.transfer_count
            && self.log.transfer_bytes() == Some(&transfer.to_bytes()[..])
            && self.log.verify(&self.parts.transfers_root);
        let pending_ok = match (&self.pending, transfer.flags.contains(TransferFlags::PENDING)) {
            (None, false) => true,
            (Some((status, slot, path)), true) => crate::merkle::verify_proof(
                &self.parts.pending_root,
                self.parts.pending_count,
                *slot,
                &pending_leaf(transfer.id, *status),
                path,
            ),
            _ => false,
        };
        in_log && pending_ok
    }
}
