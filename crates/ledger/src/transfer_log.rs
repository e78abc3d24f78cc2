//! The commitment to the transfers: BLAKE3 (keyed) of all transfers' 128-byte encodings, one
//! after another in creation order.
//!
//! Transfers never change once created, so their commitment is an append-only byte stream, and
//! BLAKE3 is itself a Merkle tree over 1 KiB chunks of its input (eight transfers per chunk).
//! The log keeps the chaining value of every chunk but the last and of every complete
//! power-of-two run of chunks (about 8 bytes per transfer), and the bytes of the last chunk.
//! Each batch hashes its new chunks side by side with SIMD (`hash_lanes.rs`), once each; the
//! root is BLAKE3's root over those parts, a logarithmic number of merges. That makes the
//! transfers' share of the digest a few cycles per byte, whatever the ledger's size.
//!
//! An inclusion proof is BLAKE3's own (`chunk_proof.rs`): the 1 KiB chunk that holds the transfer
//! and the chaining values of the sibling subtrees from that chunk to the root, built from the
//! same kept parts in a logarithmic number of merges, not by reading the log again.

use blake3::hazmat::{ChainingValue, Mode, left_subtree_len, merge_subtrees_root};

use crate::chunk_proof::{self, CHUNK_LEN, chaining_value};
use crate::constants::OBJECT_SIZE;
use crate::hash_lanes;
use crate::merkle::Hash;

/// The key of the transfer log's BLAKE3 stream.
pub const TRANSFER_LOG_KEY: &[u8; 32] = b"tally.ledger.v1.transfer-log....";

/// The running hash of the transfer log.
#[derive(Debug, Clone)]
pub struct TransferLog {
    /// Transfers hashed so far.
    count: u64,
    /// `levels[k][i]`: the chaining value of the complete subtree of 2^k chunks at chunk `i << k`,
    /// for the chunks before the last one.
    levels: Vec<Vec<ChainingValue>>,
    /// The bytes of the last chunk (1 to 1,024 of them, none in an empty log). BLAKE3 hashes the
    /// last chunk differently when it is the whole input, so it is hashed only once bytes follow.
    tail: Vec<u8>,
}

impl Default for TransferLog {
    fn default() -> Self {
        Self::new()
    }
}

impl TransferLog {
    pub fn new() -> Self {
        Self { count: 0, levels: vec![Vec::new()], tail: Vec::new() }
    }

    /// The number of transfers hashed.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Appends encoded transfers (a whole number of 128-byte records).
    pub fn append(&mut self, encoded: &[u8]) {
        assert_eq!(encoded.len() % OBJECT_SIZE, 0, "whole transfers only");
        self.count += (encoded.len() / OBJECT_SIZE) as u64;
        let chunk = CHUNK_LEN as usize;
        let mut rest = encoded;
        if !self.tail.is_empty() {
            let take = (chunk - self.tail.len()).min(rest.len());
            self.tail.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if rest.is_empty() {
                return;
            }
            // The tail is a whole chunk with bytes after it: no longer the last chunk.
            let full = std::mem::take(&mut self.tail);
            self.push_chunks(&full);
        }
        if rest.is_empty() {
            return;
        }
        let whole = (rest.len() - 1) / chunk * chunk;
        self.push_chunks(&rest[..whole]);
        self.tail.extend_from_slice(&rest[whole..]);
        debug_assert!(!self.tail.is_empty() && self.tail.len() <= chunk);
        debug_assert_eq!(self.levels[0].len() as u64 * CHUNK_LEN + self.tail.len() as u64, self.byte_len());
    }

    /// Hashes whole chunks that follow the kept ones, and records the runs they complete.
    fn push_chunks(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len().is_multiple_of(CHUNK_LEN as usize));
        let first = self.levels[0].len();
        let chunks = bytes.len() / CHUNK_LEN as usize;
        let inputs = bytes.chunks_exact(CHUNK_LEN as usize).map(|chunk| chunk.try_into().expect("one chunk"));
        self.levels[0].resize(first + chunks, [0; 32]);
        hash_lanes::consecutive_chunks(TRANSFER_LOG_KEY, first as u64, inputs, &mut self.levels[0][first..]);
        // Each level gains the pairs completed below it.
        let mut level = 0;
        while self.levels[level].len() >= 2 {
            let have = self.levels.get(level + 1).map_or(0, Vec::len);
            let complete = self.levels[level].len() / 2;
            if complete == have {
                break;
            }
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            let (lower, upper) = self.levels.split_at_mut(level + 1);
            let pairs = lower[level][2 * have..2 * complete]
                .as_flattened()
                .chunks_exact(hash_lanes::BLOCK_LEN)
                .map(|pair| pair.try_into().expect("two values"));
            let upper = &mut upper[0];
            upper.resize(complete, [0; 32]);
            hash_lanes::parents(TRANSFER_LOG_KEY, pairs, false, &mut upper[have..]);
            level += 1;
        }
    }

    fn byte_len(&self) -> u64 {
        self.count * OBJECT_SIZE as u64
    }

    /// The root: BLAKE3 keyed with [`TRANSFER_LOG_KEY`] of every transfer's encoding.
    pub fn root(&self) -> Hash {
        let len = self.byte_len();
        if len <= CHUNK_LEN {
            return *blake3::keyed_hash(TRANSFER_LOG_KEY, &self.tail).as_bytes();
        }
        let left = left_subtree_len(len);
        let left_value = self.subtree(0, left);
        let right_value = self.subtree(left, len - left);
        *merge_subtrees_root(&left_value, &right_value, Mode::KeyedHash(TRANSFER_LOG_KEY)).as_bytes()
    }

    /// The chaining value of the subtree of `len` bytes at byte `start` (not the whole log).
    fn subtree(&self, start: u64, len: u64) -> ChainingValue {
        let complete = |level: u32, position: u64| self.levels.get(level as usize)?.get(position as usize).copied();
        let tail = |start: u64| {
            debug_assert_eq!(start, self.levels[0].len() as u64 * CHUNK_LEN);
            chaining_value(TRANSFER_LOG_KEY, &self.tail, start)
        };
        chunk_proof::subtree_from_parts(TRANSFER_LOG_KEY, start, len, &complete, &tail)
    }

    /// The transfers (by index) that share transfer `index`'s chunk.
    pub fn chunk_range(&self, index: u64) -> std::ops::Range<u64> {
        assert!(index < self.count, "transfer {index} of {}", self.count);
        let per_chunk = CHUNK_LEN / OBJECT_SIZE as u64;
        let first = index / per_chunk * per_chunk;
        first..(first + per_chunk).min(self.count)
    }

    /// The proof of transfer `index`, given the encoding of the transfers of its chunk
    /// (`chunk_range`). Costs a logarithmic number of merges.
    pub fn prove(&self, index: u64, chunk: Vec<u8>) -> TransferLogProof {
        let range = self.chunk_range(index);
        assert_eq!(chunk.len() as u64, (range.end - range.start) * OBJECT_SIZE as u64, "the chunk's transfers");
        let offset = index * OBJECT_SIZE as u64;
        let siblings = chunk_proof::siblings(self.byte_len(), offset, |start, len| self.subtree(start, len));
        TransferLogProof { index, count: self.count, chunk, siblings }
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
        if self.index >= self.count || self.transfer_bytes().is_none() {
            return false;
        }
        let chunk_start = target / CHUNK_LEN * CHUNK_LEN;
        chunk_proof::root(TRANSFER_LOG_KEY, total, chunk_start, &self.chunk, &self.siblings).as_ref() == Some(root)
    }
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
        // Pieces that end inside chunks, exactly at their ends, and span several.
        for per_piece in [1, 3, 7, 8, 9, 16, 100] {
            let mut appended = TransferLog::new();
            assert_eq!(appended.root(), *blake3::keyed_hash(TRANSFER_LOG_KEY, &[]).as_bytes());
            let mut end = 0;
            for piece in log.chunks(OBJECT_SIZE * per_piece) {
                appended.append(piece);
                end += piece.len();
                let expected = *blake3::keyed_hash(TRANSFER_LOG_KEY, &log[..end]).as_bytes();
                assert_eq!(appended.root(), expected, "{per_piece} per piece, {end} bytes");
            }
            assert_eq!(appended.len(), 100);
        }
    }

    #[test]
    fn proofs_verify_for_every_position_and_fail_when_tampered() {
        for count in [1u64, 2, 8, 9, 16, 17, 40, 64, 65] {
            let log = log_of(count);
            let root = *blake3::keyed_hash(TRANSFER_LOG_KEY, &log).as_bytes();
            // Appended in uneven pieces, so that chunks complete across appends.
            let mut appended = TransferLog::new();
            for piece in log.chunks(OBJECT_SIZE * 3) {
                appended.append(piece);
            }
            assert_eq!(appended.root(), root);
            for index in 0..count {
                let range = appended.chunk_range(index);
                let chunk = log[range.start as usize * OBJECT_SIZE..range.end as usize * OBJECT_SIZE].to_vec();
                let proof = appended.prove(index, chunk);
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
