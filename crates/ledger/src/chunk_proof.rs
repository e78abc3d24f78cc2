//! Inclusion proofs inside one keyed BLAKE3 hash.
//!
//! BLAKE3 is itself a Merkle tree: its input is cut into 1 KiB chunks, each chunk's chaining
//! value depends on the chunk and its position, and the tree above them is left-complete (the
//! left subtree of every split holds the largest power of two of chunks smaller than the whole).
//! So a byte range of a long input is proven by the 1 KiB chunk that holds it and the chaining
//! values of the sibling subtrees on the way up to the root, one per level: about 1 KiB plus
//! 32 bytes per doubling of the input, whatever its size.
//!
//! Both commitments that hash long inputs in one call use this: the transfer log (every transfer's
//! 128 bytes, `transfer_log.rs`) and each 16 KiB segment of account leaves (`account_table.rs`).

pub use blake3::hazmat::ChainingValue;
use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root};

use crate::merkle::Hash;

/// BLAKE3's chunk length in bytes.
pub const CHUNK_LEN: u64 = blake3::CHUNK_LEN as u64;

/// The most sibling chaining values a proof can need: one per doubling of a 2^64-byte input.
const SIBLINGS_MAX: usize = 64;

/// The start and length of the chunk that holds byte `offset` of an input of `len` bytes.
pub fn chunk_of(len: u64, offset: u64) -> (u64, u64) {
    debug_assert!(offset < len);
    let start = offset / CHUNK_LEN * CHUNK_LEN;
    (start, (len - start).min(CHUNK_LEN))
}

/// The chaining value of `bytes` as the subtree that starts at byte `offset` of the input hashed
/// with `key`. `bytes` must be a whole subtree: a power of two of chunks, or the input's tail.
pub fn chaining_value(key: &[u8; 32], bytes: &[u8], offset: u64) -> ChainingValue {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// The sibling chaining values, from the chunk upwards, that prove the chunk holding byte
/// `offset` of an input of `len` bytes. `subtree(start, len)` gives the chaining value of any
/// subtree of the input.
pub fn siblings(len: u64, offset: u64, mut subtree: impl FnMut(u64, u64) -> ChainingValue) -> Vec<ChainingValue> {
    assert!(offset < len, "byte {offset} of {len}");
    let mut path = Vec::new();
    let (mut start, mut remaining) = (0u64, len);
    while remaining > CHUNK_LEN {
        let left = left_subtree_len(remaining);
        if offset < start + left {
            path.push(subtree(start + left, remaining - left));
            remaining = left;
        } else {
            path.push(subtree(start, left));
            start += left;
            remaining -= left;
        }
    }
    path.reverse();
    path
}

/// The chaining value of the subtree at `start` of `len` bytes computed from the chaining values
/// of its complete power-of-two parts (`complete(level, index)`: the subtree of 2^level chunks
/// at chunk `index << level`, or `None` when that subtree is not complete yet) and, for the
/// input's partial last chunk, its bytes hashed by `tail(start)`.
pub fn subtree_from_parts(
    key: &[u8; 32],
    start: u64,
    len: u64,
    complete: &impl Fn(u32, u64) -> Option<ChainingValue>,
    tail: &impl Fn(u64) -> ChainingValue,
) -> ChainingValue {
    let chunks = len.div_ceil(CHUNK_LEN);
    if chunks.is_power_of_two() && len.is_multiple_of(CHUNK_LEN) {
        let level = chunks.trailing_zeros();
        if let Some(cv) = complete(level, (start / CHUNK_LEN) >> level) {
            return cv;
        }
    }
    if len <= CHUNK_LEN {
        return tail(start);
    }
    let left = left_subtree_len(len);
    let left_cv = subtree_from_parts(key, start, left, complete, tail);
    let right_cv = subtree_from_parts(key, start + left, len - left, complete, tail);
    merge_subtrees_non_root(&left_cv, &right_cv, Mode::KeyedHash(key))
}

/// The root that `chunk`, the chunk at byte `chunk_start` of an input of `len` bytes, and the
/// sibling chaining values give, or `None` when they cannot be a proof for that position. The
/// caller compares the root with an authenticated one; `len` must come from an authenticated
/// source too (the root alone does not bind it).
pub fn root(key: &[u8; 32], len: u64, chunk_start: u64, chunk: &[u8], siblings: &[ChainingValue]) -> Option<Hash> {
    if chunk_start >= len || !chunk_start.is_multiple_of(CHUNK_LEN) || siblings.len() > SIBLINGS_MAX {
        return None;
    }
    // Replay the walk from the root to learn each split and which side the chunk is on.
    let mut sides = Vec::new(); // true: the chunk is in the left subtree.
    let (mut start, mut remaining) = (0u64, len);
    while remaining > CHUNK_LEN {
        let left = left_subtree_len(remaining);
        let in_left = chunk_start < start + left;
        sides.push(in_left);
        if in_left {
            remaining = left;
        } else {
            start += left;
            remaining -= left;
        }
    }
    if start != chunk_start || chunk.len() as u64 != remaining || sides.len() != siblings.len() {
        return None;
    }
    if sides.is_empty() {
        // The whole input is one chunk: the root is its hash.
        return Some(*blake3::keyed_hash(key, chunk).as_bytes());
    }
    let mut cv = chaining_value(key, chunk, chunk_start);
    for (depth, (sibling, in_left)) in siblings.iter().zip(sides.iter().rev()).enumerate() {
        let (left, right) = if *in_left { (&cv, sibling) } else { (sibling, &cv) };
        if depth + 1 == siblings.len() {
            return Some(*merge_subtrees_root(left, right, Mode::KeyedHash(key)).as_bytes());
        }
        cv = merge_subtrees_non_root(left, right, Mode::KeyedHash(key));
    }
    unreachable!("the loop returns at the root")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"tally.ledger.test.chunk-proof...";

    fn input(len: u64) -> Vec<u8> {
        (0..len).map(|byte| (byte * 31 % 251) as u8).collect()
    }

    fn direct(bytes: &[u8]) -> impl FnMut(u64, u64) -> ChainingValue + '_ {
        |start, len| chaining_value(KEY, &bytes[start as usize..(start + len) as usize], start)
    }

    #[test]
    fn proofs_give_the_root_at_every_chunk_and_only_there() {
        for len in [1u64, 1023, 1024, 1025, 2048, 3000, 4096, 5121, 16 * 1024, 40 * 1024 + 7] {
            let bytes = input(len);
            let expected = *blake3::keyed_hash(KEY, &bytes).as_bytes();
            for offset in (0..len).step_by(997) {
                let (start, chunk_len) = chunk_of(len, offset);
                let chunk = &bytes[start as usize..(start + chunk_len) as usize];
                let path = siblings(len, offset, direct(&bytes));
                assert_eq!(root(KEY, len, start, chunk, &path), Some(expected), "len {len} offset {offset}");
                let mut flipped = chunk.to_vec();
                flipped[0] ^= 1;
                assert_ne!(root(KEY, len, start, &flipped, &path), Some(expected));
                if let Some(first) = path.first() {
                    let mut changed = path.clone();
                    changed[0] = [first[0] ^ 1; 32];
                    assert_ne!(root(KEY, len, start, chunk, &changed), Some(expected));
                }
                // Another position does not give the root. (Another length may: the caller takes
                // the length from an authenticated source.)
                if start >= CHUNK_LEN {
                    assert_ne!(root(KEY, len, start - CHUNK_LEN, chunk, &path), Some(expected));
                }
            }
        }
    }

    #[test]
    fn subtrees_from_complete_parts_equal_subtrees_hashed_directly() {
        let len = 13 * CHUNK_LEN + 300;
        let bytes = input(len);
        let complete = |level: u32, index: u64| {
            let size = CHUNK_LEN << level;
            let start = index * size;
            (start + size <= len / CHUNK_LEN * CHUNK_LEN)
                .then(|| chaining_value(KEY, &bytes[start as usize..(start + size) as usize], start))
        };
        let tail = |start: u64| chaining_value(KEY, &bytes[start as usize..], start);
        let mut hashed = direct(&bytes);
        for (start, sub_len) in
            [(0, 8 * CHUNK_LEN), (8 * CHUNK_LEN, 5 * CHUNK_LEN + 300), (12 * CHUNK_LEN, CHUNK_LEN + 300)]
        {
            assert_eq!(subtree_from_parts(KEY, start, sub_len, &complete, &tail), hashed(start, sub_len));
        }
    }
}
