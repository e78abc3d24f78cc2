//! Many independent BLAKE3 compressions at once, side by side in SIMD lanes.
//!
//! BLAKE3 hashes a long input fast because it compresses eight (AVX2) or sixteen (AVX-512) of
//! its 1 KiB chunks at once, one per SIMD lane. The ledger's digest has thousands of *scattered*
//! pieces to hash per batch: the chunks of the account segments that a batch changed (at chunk
//! `k` of their segments, wherever the segments are), the parent nodes above them, the transfer
//! log's new chunks. Hashed one by one through the public API they get no SIMD lanes at all;
//! handed to the lane-parallel routine BLAKE3 uses inside, they cost what one long input does.
//!
//! That routine is `blake3::platform::Platform::hash_many`, which the `blake3` crate exports but
//! does not document ("for benchmarks only"). The crate is pinned to one exact version in the
//! workspace's `[workspace.dependencies]`, every function here is tested below against the
//! public API (and the whole digest against values pinned in `tests/digest_pinned.rs`), so an
//! upgrade that changed the routine fails those tests instead of changing a digest.
//!
//! Every function here computes exactly what BLAKE3's specification defines for a keyed hash;
//! only the order in which compressions run differs.

use blake3::IncrementCounter;
use blake3::hazmat::ChainingValue;
use blake3::platform::Platform;

use crate::merkle::Hash;

/// BLAKE3's chunk length in bytes.
pub const CHUNK_LEN: usize = blake3::CHUNK_LEN;
/// BLAKE3's block length in bytes: one compression.
pub const BLOCK_LEN: usize = 64;

// BLAKE3's domain separation flags (specification, section 2.1).
const CHUNK_START: u8 = 1 << 0;
const CHUNK_END: u8 = 1 << 1;
const PARENT: u8 = 1 << 2;
const ROOT: u8 = 1 << 3;
const KEYED_HASH: u8 = 1 << 4;

fn key_words(key: &[u8; 32]) -> [u32; 8] {
    std::array::from_fn(|word| u32::from_le_bytes(key[4 * word..4 * word + 4].try_into().expect("4 bytes")))
}

/// Inputs handed to BLAKE3 at a time: a multiple of every SIMD degree (4, 8, 16), gathered on
/// the stack so that hashing allocates nothing.
const GROUP: usize = 32;

static ZERO_CHUNK: [u8; CHUNK_LEN] = [0; CHUNK_LEN];
static ZERO_BLOCK: [u8; BLOCK_LEN] = [0; BLOCK_LEN];

/// Runs `hash(first, group, out)` over `inputs` in groups of up to [`GROUP`], `first` being the
/// position of the group's first input; `out` holds one chaining value per input.
fn in_groups<'a, const N: usize>(
    inputs: impl IntoIterator<Item = &'a [u8; N]>,
    out: &mut [ChainingValue],
    filler: &'a [u8; N],
    mut hash: impl FnMut(usize, &[&'a [u8; N]], &mut [ChainingValue]),
) {
    let mut group = [filler; GROUP];
    let mut len = 0;
    let mut done = 0;
    for input in inputs {
        group[len] = input;
        len += 1;
        if len == GROUP {
            hash(done, &group, &mut out[done..done + GROUP]);
            done += GROUP;
            len = 0;
        }
    }
    if len > 0 {
        hash(done, &group[..len], &mut out[done..done + len]);
        done += len;
    }
    assert_eq!(done, out.len(), "one chaining value per input");
}

/// The non-root chaining values of whole chunks that all sit at the same position, chunk
/// `counter`, of different inputs hashed with `key`: `out[i]` for the `i`-th input.
pub fn chunks_at<'a>(
    key: &[u8; 32],
    counter: u64,
    inputs: impl IntoIterator<Item = &'a [u8; CHUNK_LEN]>,
    out: &mut [ChainingValue],
) {
    let (platform, key) = (Platform::detect(), key_words(key));
    in_groups(inputs, out, &ZERO_CHUNK, |_, group, out| {
        let out = out.as_flattened_mut();
        platform.hash_many(group, &key, counter, IncrementCounter::No, KEYED_HASH, CHUNK_START, CHUNK_END, out);
    });
}

/// The non-root chaining values of consecutive whole chunks of one input hashed with `key`,
/// the first at chunk `counter`: `out[i]` for the `i`-th input, at chunk `counter + i`.
pub fn consecutive_chunks<'a>(
    key: &[u8; 32],
    counter: u64,
    inputs: impl IntoIterator<Item = &'a [u8; CHUNK_LEN]>,
    out: &mut [ChainingValue],
) {
    let (platform, key) = (Platform::detect(), key_words(key));
    in_groups(inputs, out, &ZERO_CHUNK, |first, group, out| {
        let (counter, out) = (counter + first as u64, out.as_flattened_mut());
        platform.hash_many(group, &key, counter, IncrementCounter::Yes, KEYED_HASH, CHUNK_START, CHUNK_END, out);
    });
}

/// Parent nodes of inputs hashed with `key`: each input is the left and the right child's
/// chaining values (64 bytes). `out[i]` is the chaining value of the `i`-th node or, when
/// `root`, the 32-byte hash of the input whose root that node is.
pub fn parents<'a>(
    key: &[u8; 32],
    inputs: impl IntoIterator<Item = &'a [u8; BLOCK_LEN]>,
    root: bool,
    out: &mut [ChainingValue],
) {
    let (platform, key) = (Platform::detect(), key_words(key));
    let flags = KEYED_HASH | PARENT | if root { ROOT } else { 0 };
    in_groups(inputs, out, &ZERO_BLOCK, |_, group, out| {
        platform.hash_many(group, &key, 0, IncrementCounter::No, flags, 0, 0, out.as_flattened_mut());
    });
}

/// `blake3::keyed_hash(key, block)` for an input of exactly one block: one compression,
/// without building a hasher.
pub fn keyed_hash_block(key: &[u8; 32], block: &[u8; BLOCK_LEN]) -> Hash {
    let mut words = key_words(key);
    Platform::detect().compress_in_place(
        &mut words,
        block,
        BLOCK_LEN as u8,
        0,
        KEYED_HASH | CHUNK_START | CHUNK_END | ROOT,
    );
    let mut hash = [0u8; 32];
    for (bytes, word) in hash.chunks_exact_mut(4).zip(words) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    hash
}

#[cfg(test)]
mod tests {
    use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};

    use super::*;

    const KEY: &[u8; 32] = b"tally.ledger.test.hash-lanes....";

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|byte| (byte as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    fn chaining_value(bytes: &[u8], offset: u64) -> ChainingValue {
        let mut hasher = blake3::Hasher::new_keyed(KEY);
        hasher.set_input_offset(offset);
        hasher.update(bytes);
        hasher.finalize_non_root()
    }

    #[test]
    fn chunks_equal_the_public_api_at_any_position_and_count() {
        // Counts below, at and above every SIMD degree, so that every remainder path runs.
        for count in [1usize, 3, 4, 7, 8, 9, 16, 17, 33, 64, 65, 100] {
            let data: Vec<Vec<u8>> = (0..count).map(|input| bytes(CHUNK_LEN, input as u8)).collect();
            let inputs: Vec<&[u8; CHUNK_LEN]> = data.iter().map(|chunk| chunk[..].try_into().unwrap()).collect();
            let mut out = vec![[0u8; 32]; count];
            chunks_at(KEY, 5, inputs.iter().copied(), &mut out);
            for (chunk, value) in data.iter().zip(&out) {
                assert_eq!(*value, chaining_value(chunk, 5 * CHUNK_LEN as u64), "{count} chunks at chunk 5");
            }
            consecutive_chunks(KEY, 3, inputs.iter().copied(), &mut out);
            for (position, (chunk, value)) in data.iter().zip(&out).enumerate() {
                let offset = (3 + position) * CHUNK_LEN;
                assert_eq!(*value, chaining_value(chunk, offset as u64), "{count} chunks from chunk 3");
            }
        }
    }

    #[test]
    fn parents_equal_the_public_api() {
        for count in [1usize, 2, 8, 9, 20, 32, 33, 70] {
            let data: Vec<Vec<u8>> = (0..count).map(|input| bytes(BLOCK_LEN, input as u8)).collect();
            let inputs: Vec<&[u8; BLOCK_LEN]> = data.iter().map(|block| block[..].try_into().unwrap()).collect();
            let children = |block: &[u8]| -> (ChainingValue, ChainingValue) {
                (block[..32].try_into().unwrap(), block[32..].try_into().unwrap())
            };
            let mut out = vec![[0u8; 32]; count];
            parents(KEY, inputs.iter().copied(), false, &mut out);
            for (block, value) in data.iter().zip(&out) {
                let (left, right) = children(block);
                assert_eq!(*value, merge_subtrees_non_root(&left, &right, Mode::KeyedHash(KEY)));
            }
            parents(KEY, inputs.iter().copied(), true, &mut out);
            for (block, value) in data.iter().zip(&out) {
                let (left, right) = children(block);
                assert_eq!(*value, *merge_subtrees_root(&left, &right, Mode::KeyedHash(KEY)).as_bytes());
            }
        }
        // A whole input of two chunks: its root is the root parent of its two chunks.
        let input = bytes(2 * CHUNK_LEN, 9);
        let mut block = [0u8; BLOCK_LEN];
        block[..32].copy_from_slice(&chaining_value(&input[..CHUNK_LEN], 0));
        block[32..].copy_from_slice(&chaining_value(&input[CHUNK_LEN..], CHUNK_LEN as u64));
        let mut root = [[0u8; 32]];
        parents(KEY, [&block], true, &mut root);
        assert_eq!(root[0], *blake3::keyed_hash(KEY, &input).as_bytes());
    }

    #[test]
    fn one_block_equals_keyed_hash() {
        for seed in 0..4 {
            let block: [u8; BLOCK_LEN] = bytes(BLOCK_LEN, seed).try_into().unwrap();
            let key: [u8; 32] = bytes(32, seed + 100).try_into().unwrap();
            assert_eq!(keyed_hash_block(&key, &block), *blake3::keyed_hash(&key, &block).as_bytes());
        }
    }
}
