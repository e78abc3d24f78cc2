//! The state digest: four Merkle trees and the last timestamp, hashed into 32 bytes.
//!
//! - **accounts**: leaf `i` is account `i` (creation order), hashed with its current balances
//!   and flags. Changes replace the leaf.
//! - **transfers**: leaf `j` is transfer `j`, hashed under a key that names the state of its
//!   pending phase (not pending, pending, posted, voided, expired). Transfers never change; a
//!   pending transfer's leaf is replaced when it is posted, voided or expires.
//! - **balances**: an append-only log of balance-history entries (accounts with
//!   `flags.history`), each with its account id, ordered by (timestamp, account index, order
//!   within the account).
//! - **failed transfer ids**: an append-only log of ids refused with a transient status.
//!
//! The digest hashes the four roots, their sizes and the last timestamp. Every piece of state
//! the ledger answers from is either in a leaf or derived from leaves (the expiry queue from the
//! pending transfers, the indexes from the objects), so equal digests mean equal answers. A leaf
//! and its RFC 6962 audit path prove one account's current state, or one transfer and the state
//! of its pending phase, against the digest.

use crate::merkle::{Hash, MerkleTree, leaf};
use crate::ledger::Changes;
use crate::store::{AccountIndex, BalanceEntry, PendingStatus, Store, TransferIndex};
use crate::types::{Account, AccountBalance, Transfer};

const ACCOUNT_KEY: &[u8; 32] = b"tally.ledger.v1.account.........";
const TRANSFER_KEY: &[u8; 32] = b"tally.ledger.v1.transfer........";
const TRANSFER_PENDING_KEY: &[u8; 32] = b"tally.ledger.v1.transfer.pending";
const TRANSFER_POSTED_KEY: &[u8; 32] = b"tally.ledger.v1.transfer.posted.";
const TRANSFER_VOIDED_KEY: &[u8; 32] = b"tally.ledger.v1.transfer.voided.";
const TRANSFER_EXPIRED_KEY: &[u8; 32] = b"tally.ledger.v1.transfer.expired";
const BALANCE_KEY: &[u8; 32] = b"tally.ledger.v1.account-balance.";
const FAILED_ID_KEY: &[u8; 32] = b"tally.ledger.v1.failed-transfer.";
const DIGEST_KEY: &[u8; 32] = b"tally.ledger.v1.state-digest....";

/// The leaf of an account.
pub fn account_leaf(account: &Account) -> Hash {
    leaf(ACCOUNT_KEY, &account.to_bytes())
}

/// The leaf of a transfer whose pending phase is in `status` (`None`: not a pending transfer).
pub fn transfer_leaf(transfer: &Transfer, status: Option<PendingStatus>) -> Hash {
    let key = match status {
        None => TRANSFER_KEY,
        Some(PendingStatus::Pending) => TRANSFER_PENDING_KEY,
        Some(PendingStatus::Posted) => TRANSFER_POSTED_KEY,
        Some(PendingStatus::Voided) => TRANSFER_VOIDED_KEY,
        Some(PendingStatus::Expired) => TRANSFER_EXPIRED_KEY,
    };
    leaf(key, &transfer.to_bytes())
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

/// The trees behind the digest, kept current batch by batch.
#[derive(Debug, Clone)]
pub struct Commitment {
    accounts: MerkleTree,
    transfers: MerkleTree,
    balances: MerkleTree,
    failed_transfer_ids: MerkleTree,
    timestamp_last: u64,
    digest: Hash,
}

impl Commitment {
    pub fn new() -> Self {
        let mut commitment = Self {
            accounts: MerkleTree::new(),
            transfers: MerkleTree::new(),
            balances: MerkleTree::new(),
            failed_transfer_ids: MerkleTree::new(),
            timestamp_last: 0,
            digest: [0; 32],
        };
        commitment.digest = commitment.parts().digest();
        commitment
    }

    pub fn digest(&self) -> Hash {
        self.digest
    }

    pub fn parts(&self) -> DigestParts {
        DigestParts {
            accounts_root: self.accounts.root(),
            account_count: self.accounts.len(),
            transfers_root: self.transfers.root(),
            transfer_count: self.transfers.len(),
            balances_root: self.balances.root(),
            balance_count: self.balances.len(),
            failed_transfer_ids_root: self.failed_transfer_ids.root(),
            failed_transfer_id_count: self.failed_transfer_ids.len(),
            timestamp_last: self.timestamp_last,
        }
    }

    /// Folds one batch's changes in. Costs in proportion to the batch, not to the ledger.
    pub fn apply<S: Store>(&mut self, store: &S, mut changes: Changes, timestamp_last: u64) {
        changes.accounts.sort_unstable();
        changes.accounts.dedup();
        for index in changes.accounts {
            if index >= store.account_count() {
                continue; // Created and rolled back within the batch.
            }
            let hash = account_leaf(store.account(index));
            if u64::from(index) < self.accounts.len() {
                self.accounts.set(u64::from(index), hash);
            } else {
                assert_eq!(u64::from(index), self.accounts.len(), "new accounts are contiguous");
                self.accounts.push(hash);
            }
        }
        assert_eq!(self.accounts.len(), u64::from(store.account_count()));

        changes.transfers.sort_unstable();
        changes.transfers.dedup();
        for index in changes.transfers {
            if index >= store.transfer_count() {
                continue; // Created and rolled back within the batch.
            }
            let hash = transfer_leaf(store.transfer(index), store.pending_status(index));
            if index < self.transfers.len() {
                self.transfers.set(index, hash);
            } else {
                assert_eq!(index, self.transfers.len(), "new transfers are contiguous");
                self.transfers.push(hash);
            }
        }
        assert_eq!(self.transfers.len(), store.transfer_count());

        // Entries of one batch are appended in execution order, which is timestamp order; the
        // stable sort puts entries of equal timestamp in account order, as `rebuild` does.
        changes.balances.sort_by_key(|(account, entry)| (entry.balance.timestamp, *account));
        for (account, entry) in &changes.balances {
            self.balances.push(entry_leaf(store, *account, entry));
        }

        let known = self.failed_transfer_ids.len() as usize;
        let failed = store.failed_transfer_ids();
        assert_eq!(failed.len(), known + changes.failed_transfer_ids.len());
        for id in &failed[known..] {
            self.failed_transfer_ids.push(failed_id_leaf(*id));
        }

        self.commit(timestamp_last);
    }

    fn commit(&mut self, timestamp_last: u64) {
        assert!(timestamp_last >= self.timestamp_last, "time never goes back");
        self.accounts.commit();
        self.transfers.commit();
        self.balances.commit();
        self.failed_transfer_ids.commit();
        self.timestamp_last = timestamp_last;
        self.digest = self.parts().digest();
    }

    /// The commitment of a store, computed from scratch (restore, and tests of `apply`).
    pub fn rebuild<S: Store>(store: &S, timestamp_last: u64) -> Self {
        let mut commitment = Self::new();
        for index in 0..store.account_count() {
            commitment.accounts.push(account_leaf(store.account(index)));
        }
        for index in 0..store.transfer_count() {
            commitment.transfers.push(transfer_leaf(store.transfer(index), store.pending_status(index)));
        }
        for (account, entry) in balances_in_order(store) {
            commitment.balances.push(entry_leaf(store, account, entry));
        }
        for id in store.failed_transfer_ids() {
            commitment.failed_transfer_ids.push(failed_id_leaf(*id));
        }
        commitment.commit(timestamp_last);
        commitment
    }

    /// The leaf and audit path of an account, for a proof against the digest.
    pub fn account_proof(&self, index: AccountIndex) -> (Hash, Vec<Hash>) {
        let index = u64::from(index);
        (*self.accounts.leaf(index).expect("the account exists"), self.accounts.proof(index))
    }

    /// The leaf and audit path of a transfer, for a proof against the digest.
    pub fn transfer_proof(&self, index: TransferIndex) -> (Hash, Vec<Hash>) {
        (*self.transfers.leaf(index).expect("the transfer exists"), self.transfers.proof(index))
    }
}

fn entry_leaf<S: Store>(store: &S, account: AccountIndex, entry: &BalanceEntry) -> Hash {
    balance_leaf(store.account(account).id, store.transfer(entry.transfer).id, &entry.balance)
}

/// Every balance-history entry, ordered by (timestamp, account index, order within account).
pub fn balances_in_order<S: Store>(store: &S) -> Vec<(AccountIndex, &BalanceEntry)> {
    let mut entries: Vec<(u64, AccountIndex, usize, &BalanceEntry)> = Vec::new();
    for account in 0..store.account_count() {
        for (position, entry) in store.balances(account).iter().enumerate() {
            entries.push((entry.balance.timestamp, account, position, entry));
        }
    }
    entries.sort_unstable_by_key(|(timestamp, account, position, _)| (*timestamp, *account, *position));
    entries.into_iter().map(|(_, account, _, balance)| (account, balance)).collect()
}

/// A proof that an account, with its current balances, is part of the state a digest commits
/// to: the account's leaf position, the audit path in the accounts tree, and the digest's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    pub index: u64,
    pub path: Vec<Hash>,
    pub parts: DigestParts,
}

/// A proof that a transfer, and the state of its pending phase, is part of the state a digest
/// commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferProof {
    pub index: u64,
    pub path: Vec<Hash>,
    /// The state of the pending phase (`None` for a transfer without `flags.pending`).
    pub pending_status: Option<PendingStatus>,
    pub parts: DigestParts,
}

impl AccountProof {
    /// Whether `account` is in the state whose digest is `digest`.
    pub fn verify(&self, digest: &Hash, account: &Account) -> bool {
        self.parts.digest() == *digest
            && crate::merkle::verify_proof(
                &self.parts.accounts_root,
                self.parts.account_count,
                self.index,
                &account_leaf(account),
                &self.path,
            )
    }
}

impl TransferProof {
    /// Whether `transfer`, with `self.pending_status`, is in the state whose digest is `digest`.
    pub fn verify(&self, digest: &Hash, transfer: &Transfer) -> bool {
        self.parts.digest() == *digest
            && crate::merkle::verify_proof(
                &self.parts.transfers_root,
                self.parts.transfer_count,
                self.index,
                &transfer_leaf(transfer, self.pending_status),
                &self.path,
            )
    }
}
