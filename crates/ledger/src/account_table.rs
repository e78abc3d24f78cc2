//! The commitment to the accounts: one leaf hash per account, grouped into segments of
//! [`SEGMENT_ACCOUNTS`] that are each hashed with one BLAKE3 call, under a Merkle tree.
//!
//! An account's leaf is its four balances (64 bytes, one BLAKE3 compression) keyed by its
//! identity hash (every other field, 64 bytes, one compression, cached because only `flags`
//! of those ever change). A segment's hash is keyed BLAKE3 of its leaves, 16 KiB: BLAKE3 hashes
//! its sixteen 1 KiB chunks side by side with SIMD, so rehashing a whole segment costs about as
//! much as a couple of dozen single compressions. The segments are the leaves of an RFC 6962
//! Merkle tree (`merkle.rs`).
//!
//! A batch rehashes the leaves of the accounts it changed, each segment that holds one of them
//! once, and the tree paths above those segments. When a batch touches several accounts per
//! segment, which a full batch of 8,190 transfers does up to millions of accounts, this is far
//! fewer compressions than a binary tree over the accounts themselves would need.
//!
//! A proof of an account is the BLAKE3 chunk of its segment that holds its leaf (32 leaves, 1 KiB)
//! with the chaining values that lead from that chunk to the segment's hash (`chunk_proof.rs`,
//! at most four), and the segment's audit path in the tree: about 1.3 KiB at a million accounts.

use crate::chunk_proof::{self, CHUNK_LEN, ChainingValue};
use crate::merkle::{Hash, MerkleTree, leaf, verify_proof};
use crate::types::Account;

/// Accounts per segment: 512 leaves of 32 bytes, sixteen BLAKE3 chunks.
pub const SEGMENT_ACCOUNTS: u64 = 512;

const ACCOUNT_IDENTITY_KEY: &[u8; 32] = b"tally.ledger.v1.account-identity";
const SEGMENT_KEY: &[u8; 32] = b"tally.ledger.v1.account-segment.";

/// The hash of every field of an account but its four balances (id, user data, ledger, code,
/// flags, timestamp): 64 bytes, one BLAKE3 compression.
pub fn account_identity(account: &Account) -> Hash {
    let bytes = account.to_bytes();
    let mut block = [0u8; 64];
    block[..16].copy_from_slice(&bytes[..16]);
    block[16..].copy_from_slice(&bytes[80..]);
    leaf(ACCOUNT_IDENTITY_KEY, &block)
}

/// The leaf of an account: its four balances hashed with its identity hash as the BLAKE3 key.
pub fn account_leaf_with_identity(identity: &Hash, account: &Account) -> Hash {
    leaf(identity, &account.to_bytes()[16..80])
}

/// The leaf of an account.
pub fn account_leaf(account: &Account) -> Hash {
    account_leaf_with_identity(&account_identity(account), account)
}

/// The hash of one segment's leaves.
fn segment_hash(leaves: &[Hash]) -> Hash {
    debug_assert!(!leaves.is_empty() && leaves.len() as u64 <= SEGMENT_ACCOUNTS);
    leaf(SEGMENT_KEY, leaves.as_flattened())
}

/// The accounts' leaves, identities and segment tree.
#[derive(Debug, Clone, Default)]
pub struct AccountTable {
    identities: Vec<Hash>,
    leaves: Vec<Hash>,
    segments: MerkleTree,
    /// Segments with a changed leaf since the last commit, in ascending order (may repeat).
    dirty_segments: Vec<u64>,
}

impl AccountTable {
    pub fn new() -> Self {
        Self { segments: MerkleTree::new(), ..Self::default() }
    }

    /// The number of accounts.
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Recomputes an account's identity hash (its flags changed).
    pub fn refresh_identity(&mut self, index: u64, account: &Account) {
        if let Some(identity) = self.identities.get_mut(index as usize) {
            *identity = account_identity(account);
        }
    }

    /// Rehashes account `index`, which is either known or the next new one. Indexes must come in
    /// ascending order between commits.
    pub fn update(&mut self, index: u64, account: &Account) {
        if index == self.len() {
            self.identities.push(account_identity(account));
            self.leaves.push([0; 32]);
        }
        let position = index as usize;
        self.leaves[position] = account_leaf_with_identity(&self.identities[position], account);
        let segment = index / SEGMENT_ACCOUNTS;
        debug_assert!(self.dirty_segments.last().is_none_or(|last| *last <= segment), "ascending indexes");
        if self.dirty_segments.last() != Some(&segment) {
            self.dirty_segments.push(segment);
        }
    }

    /// Rehashes the changed segments and the tree above them.
    pub fn commit(&mut self) {
        for segment in std::mem::take(&mut self.dirty_segments) {
            let hash = segment_hash(self.segment_leaves(segment));
            if segment < self.segments.len() {
                self.segments.set(segment, hash);
            } else {
                assert_eq!(segment, self.segments.len(), "segments are appended in order");
                self.segments.push(hash);
            }
        }
        self.segments.commit();
        assert_eq!(self.segments.len(), self.len().div_ceil(SEGMENT_ACCOUNTS), "every account is in a segment");
    }

    /// The root over all accounts. The table must be committed.
    pub fn root(&self) -> Hash {
        assert!(self.dirty_segments.is_empty(), "the root of an uncommitted table");
        self.segments.root()
    }

    fn segment_leaves(&self, segment: u64) -> &[Hash] {
        let start = (segment * SEGMENT_ACCOUNTS) as usize;
        let end = (start + SEGMENT_ACCOUNTS as usize).min(self.leaves.len());
        &self.leaves[start..end]
    }

    /// The proof of account `index`: the leaves of its chunk, the chaining values from the chunk
    /// to its segment's hash, and the segment's audit path.
    pub fn proof(&self, index: u64) -> SegmentProof {
        let segment = index / SEGMENT_ACCOUNTS;
        let leaves = self.segment_leaves(segment).as_flattened();
        let offset = (index % SEGMENT_ACCOUNTS) * LEAF_LEN;
        let (start, len) = chunk_proof::chunk_of(leaves.len() as u64, offset);
        let chunk = leaves[start as usize..(start + len) as usize]
            .chunks_exact(LEAF_LEN as usize)
            .map(|leaf| leaf.try_into().expect("32-byte leaves"))
            .collect();
        let siblings = chunk_proof::siblings(leaves.len() as u64, offset, |start, len| {
            chunk_proof::chaining_value(SEGMENT_KEY, &leaves[start as usize..(start + len) as usize], start)
        });
        SegmentProof { chunk, siblings, path: self.segments.proof(segment) }
    }
}

const LEAF_LEN: u64 = 32;

/// The leaves of one account's chunk of its segment (up to 32), the chaining values from that
/// chunk to the segment's hash, and the segment's audit path in the tree of segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentProof {
    pub chunk: Vec<Hash>,
    pub siblings: Vec<ChainingValue>,
    pub path: Vec<Hash>,
}

/// Whether `account` is account `index` of `count` accounts whose table has root `root`.
pub fn verify_account(root: &Hash, count: u64, index: u64, account: &Account, proof: &SegmentProof) -> bool {
    if index >= count {
        return false;
    }
    let first = index / SEGMENT_ACCOUNTS * SEGMENT_ACCOUNTS;
    let segment_len = (count - first).min(SEGMENT_ACCOUNTS) * LEAF_LEN;
    let offset = (index - first) * LEAF_LEN;
    let chunk_start = offset / CHUNK_LEN * CHUNK_LEN;
    let position = ((offset - chunk_start) / LEAF_LEN) as usize;
    if proof.chunk.get(position) != Some(&account_leaf(account)) {
        return false;
    }
    let Some(segment_hash) =
        chunk_proof::root(SEGMENT_KEY, segment_len, chunk_start, proof.chunk.as_flattened(), &proof.siblings)
    else {
        return false;
    };
    verify_proof(root, count.div_ceil(SEGMENT_ACCOUNTS), index / SEGMENT_ACCOUNTS, &segment_hash, &proof.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: u128, credits: u128) -> Account {
        Account { id, ledger: 1, code: 1, credits_posted: credits, timestamp: id as u64, ..Account::default() }
    }

    #[test]
    fn incremental_updates_equal_a_rebuild_and_proofs_verify() {
        let count = 3 * SEGMENT_ACCOUNTS + 7;
        let mut table = AccountTable::new();
        let mut accounts: Vec<Account> = (1..=count as u128).map(|id| account(id, 0)).collect();
        for (index, account) in accounts.iter().enumerate() {
            table.update(index as u64, account);
        }
        table.commit();
        // Change a few accounts in two segments, and one account's flags.
        accounts[600].flags = crate::types::AccountFlags::CLOSED;
        table.refresh_identity(600, &accounts[600]);
        for index in [3u64, 600, 601, count - 1] {
            accounts[index as usize].credits_posted += 5;
            table.update(index, &accounts[index as usize]);
        }
        table.commit();

        let mut rebuilt = AccountTable::new();
        for (index, account) in accounts.iter().enumerate() {
            rebuilt.update(index as u64, account);
        }
        rebuilt.commit();
        assert_eq!(table.root(), rebuilt.root());

        for index in [0, 3, 31, 32, 511, 512, 600, count - 1] {
            let proof = table.proof(index);
            assert!(proof.chunk.len() <= 32 && proof.siblings.len() <= 4, "a chunk of one segment");
            let account = accounts[index as usize];
            assert!(verify_account(&table.root(), count, index, &account, &proof), "account {index}");
            let forged = Account { credits_posted: account.credits_posted + 1, ..account };
            assert!(!verify_account(&table.root(), count, index, &forged, &proof));
            // The same proof does not place the account elsewhere.
            assert!(!verify_account(&table.root(), count, index ^ 1, &account, &proof));
            if let Some(sibling) = proof.siblings.first() {
                let mut changed = proof.clone();
                changed.siblings[0] = [sibling[0] ^ 1; 32];
                assert!(!verify_account(&table.root(), count, index, &account, &changed));
            }
        }
    }
}
