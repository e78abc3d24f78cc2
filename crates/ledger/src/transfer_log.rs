//! The commitment to the transfers: BLAKE3 (keyed) of all transfers' 128-byte encodings, one
//! after another in creation order.
//!
//! Transfers never change once created, so their commitment is an append-only byte stream, and
//! BLAKE3 is itself a Merkle tree over 1 KiB chunks of its input (eight transfers per chunk).
//! Each batch appends its transfers with one `update`, which BLAKE3 hashes many chunks at a time
//! with SIMD; the root is `finalize()`, which costs a logarithmic number of merges. That makes
//! the transfers' share of the digest a few cycles per byte, whatever the ledger's size.
//!
//! An inclusion proof is BLAKE3's own: the 1 KiB chunk that holds the transfer and the chaining
//! values of the sibling subtrees from that chunk to the root (see [`TransferLogProof`]).

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root};

use crate::constants::OBJECT_SIZE;
use crate::merkle::Hash;

/// The key of the transfer log's BLAKE3 stream.
pub const TRANSFER_LOG_KEY: &[u8; 32] = b"tally.ledger.v1.transfer-log....";
const CHUNK_LEN: u64 = blake3::CHUNK_LEN as u64;

/// The running hash of the transfer log.
#[derive(Debug, Clone)]
pub struct TransferLog {
    hasher: blake3::Hasher,
    /// Transfers hashed so far.
    count: u64,
}

impl Default for TransferLog {
    fn default() -> Self {
        Self::new()
    }
}

impl TransferLog {
    pub fn new() -> Self {
        Self { hasher: blake3::Hasher::new_keyed(TRANSFER_LOG_KEY), count: 0 }
    }

    /// The number of transfers hashed.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Appends encoded transfers (a whole number of 128-byte records).
    pub fn append(&mut self, encoded: &[u8]) {
        assert_eq!(encoded.len() % OBJECT_SIZE, 0, "whole transfers only");
        self.hasher.update(encoded);
        self.count += (encoded.len() / OBJECT_SIZE) as u64;
    }

    /// The root: BLAKE3 keyed with [`TRANSFER_LOG_KEY`] of every transfer's encoding.
    pub fn root(&self) -> Hash {
        *self.hasher.finalize().as_bytes()
    }
}

/// A proof that a transfer is the `index`-th of a log of `count` transfers with a given root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLogProof {
    pub index: u64,
    pub count: u64,
    /// The BLAKE3 chunk that holds the transfer: up to eight encoded transfers.
    pub chunk: Vec<u8>,
    /// Chaining values of the sibling subtrees, from the chunk upwards.
    pub siblings: Vec<ChainingValue>,
}

impl TransferLogProof {
    /// Builds the proof for transfer `index` from the whole encoded log. Costs one pass over
    /// the log: proofs are for clients' occasional audits, not for the execution path.
    pub fn build(log: &[u8], index: u64) -> Self {
        let count = (log.len() / OBJECT_SIZE) as u64;
        assert!(index < count, "transfer {index} of {count}");
        let target = index * OBJECT_SIZE as u64;
        let chunk_start = target / CHUNK_LEN * CHUNK_LEN;
        let chunk_end = (chunk_start + CHUNK_LEN).min(log.len() as u64);
        let mut siblings = Vec::new();
        // Walk down from the root, recording the sibling at each split.
        let (mut start, mut len) = (0u64, log.len() as u64);
        let mut path = Vec::new();
        while len > CHUNK_LEN {
            let left = left_subtree_len(len);
            if target < start + left {
                path.push(subtree_cv(log, start + left, len - left));
                len = left;
            } else {
                path.push(subtree_cv(log, start, left));
                start += left;
                len -= left;
            }
        }
        debug_assert_eq!((start, start + len), (chunk_start, chunk_end));
        siblings.extend(path.into_iter().rev());
        Self { index, count, chunk: log[chunk_start as usize..chunk_end as usize].to_vec(), siblings }
    }

    /// The encoded transfer this proof is about (`None` for a proof that cannot be one).
    pub fn transfer_bytes(&self) -> Option<&[u8]> {
        let offset = (self.index.checked_mul(OBJECT_SIZE as u64)? % CHUNK_LEN) as usize;
        self.chunk.get(offset..offset + OBJECT_SIZE)
    }

    /// Whether the proof's chunk and siblings hash to `root`. The root does not bind `count` on
    /// its own (the last sibling may stand for more or fewer transfers): take the count from an
    /// authenticated source, as [`crate::TransferProof`] does from the digest's parts.
    pub fn verify(&self, root: &Hash) -> bool {
        // A proof comes from a server that may lie: check before any arithmetic can overflow.
        let (Some(total), Some(target)) =
            (self.count.checked_mul(OBJECT_SIZE as u64), self.index.checked_mul(OBJECT_SIZE as u64))
        else {
            return false;
        };
        if self.index >= self.count || self.transfer_bytes().is_none() || self.siblings.len() > 64 {
            return false;
        }
        // Replay the walk from the root to learn each split and which side the target is on.
        let mut sides = Vec::new(); // true: the target is in the left subtree.
        let (mut start, mut len) = (0u64, total);
        while len > CHUNK_LEN {
            let left = left_subtree_len(len);
            let in_left = target < start + left;
            sides.push(in_left);
            if in_left {
                len = left;
            } else {
                start += left;
                len -= left;
            }
        }
        if self.chunk.len() as u64 != len || sides.len() != self.siblings.len() {
            return false;
        }
        if sides.is_empty() {
            // The whole log is one chunk: its root is the chunk's hash.
            return blake3::keyed_hash(TRANSFER_LOG_KEY, &self.chunk).as_bytes() == root;
        }
        let mut cv = chaining_value_at(&self.chunk, start);
        for (depth, (sibling, in_left)) in self.siblings.iter().zip(sides.iter().rev()).enumerate() {
            let (left, right) = if *in_left { (&cv, sibling) } else { (sibling, &cv) };
            if depth + 1 == self.siblings.len() {
                return merge_subtrees_root(left, right, Mode::KeyedHash(TRANSFER_LOG_KEY)).as_bytes() == root;
            }
            cv = merge_subtrees_non_root(left, right, Mode::KeyedHash(TRANSFER_LOG_KEY));
        }
        unreachable!("the loop returns at the root")
    }
}

/// The chaining value of the subtree of `log` at `start` with `len` bytes.
fn subtree_cv(log: &[u8], start: u64, len: u64) -> ChainingValue {
    chaining_value_at(&log[start as usize..(start + len) as usize], start)
}

/// The chaining value of `bytes` as the subtree that starts at byte `offset` of the log.
fn chaining_value_at(bytes: &[u8], offset: u64) -> ChainingValue {
    let mut hasher = blake3::Hasher::new_keyed(TRANSFER_LOG_KEY);
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(count: u64) -> Vec<u8> {
        (0..count * OBJECT_SIZE as u64).map(|byte| (byte * 31 % 251) as u8).collect()
    }

    #[test]
    fn root_is_the_keyed_hash_of_the_log_however_it_was_appended() {
        let log = log_of(100);
        let mut appended = TransferLog::new();
        for piece in log.chunks(OBJECT_SIZE * 7) {
            appended.append(piece);
        }
        assert_eq!(appended.root(), *blake3::keyed_hash(TRANSFER_LOG_KEY, &log).as_bytes());
        assert_eq!(appended.len(), 100);
    }

    #[test]
    fn proofs_verify_for_every_position_and_fail_when_tampered() {
        for count in [1u64, 2, 8, 9, 16, 17, 40, 64, 65] {
            let log = log_of(count);
            let root = *blake3::keyed_hash(TRANSFER_LOG_KEY, &log).as_bytes();
            for index in 0..count {
                let proof = TransferLogProof::build(&log, index);
                assert!(proof.verify(&root), "count {count} index {index}");
                let mut tampered = proof.clone();
                tampered.chunk[0] ^= 1;
                assert!(!tampered.verify(&root));
                if let Some(sibling) = tampered.siblings.first_mut() {
                    tampered.chunk[0] ^= 1;
                    sibling[0] ^= 1;
                    assert!(!tampered.verify(&root));
                }
            }
        }
    }
}
