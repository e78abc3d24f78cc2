//! The commitment to the accounts: one leaf hash per account, grouped into segments of
//! [`SEGMENT_ACCOUNTS`] that are each hashed with one BLAKE3 call, under a Merkle tree.
//!
//! An account's leaf is its four balances (64 bytes, one BLAKE3 compression) keyed by its
//! identity hash (every other field, 64 bytes, one compression, cached because only `flags`
//! of those ever change). A segment's hash is keyed BLAKE3 of its leaves, 16 KiB: sixteen 1 KiB
//! BLAKE3 chunks of 32 leaves and the four levels of BLAKE3's tree above them. The segments are
//! the leaves of an RFC 6962 Merkle tree (`merkle.rs`).
//!
//! A batch rehashes the leaves of the accounts it changed, the chunks that hold them (the table
//! keeps every chunk's chaining value), each segment's BLAKE3 tree above those chunks, and the
//! tree paths above those segments. Chunks are hashed eight or sixteen at a time in SIMD lanes
//! (`hash_lanes.rs`): chunk `k` of every segment that changed there together, since BLAKE3 hashes
//! a chunk by its position. A full batch of 8,190 transfers changes up to 16,380 accounts; at a
//! million accounts that is two chunks in five, and far fewer compressions than a binary tree
//! over the accounts themselves would need.
//!
//! A proof of an account is the BLAKE3 chunk of its segment that holds its leaf (32 leaves, 1 KiB)
//! with the chaining values that lead from that chunk to the segment's hash (`chunk_proof.rs`,
//! at most four), and the segment's audit path in the tree: about 1.3 KiB at a million accounts.

use crate::chunk_proof::{self, CHUNK_LEN, ChainingValue};
use crate::hash_lanes;
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
    hash_lanes::keyed_hash_block(ACCOUNT_IDENTITY_KEY, &block)
}

/// The leaf of an account: its four balances hashed with its identity hash as the BLAKE3 key.
pub fn account_leaf(account: &Account) -> Hash {
    hash_lanes::keyed_hash_block(&account_identity(account), &account.balances_bytes())
}

/// The hash of one segment's leaves.
fn segment_hash(leaves: &[Hash]) -> Hash {
    debug_assert!(!leaves.is_empty() && leaves.len() as u64 <= SEGMENT_ACCOUNTS);
    leaf(SEGMENT_KEY, leaves.as_flattened())
}

/// Leaves per BLAKE3 chunk of a segment.
const CHUNK_ACCOUNTS: u64 = CHUNK_LEN / LEAF_LEN;
/// BLAKE3 chunks per complete segment.
const SEGMENT_CHUNKS: u64 = SEGMENT_ACCOUNTS / CHUNK_ACCOUNTS;

/// The accounts' leaves, identities and segment tree.
#[derive(Debug, Clone, Default)]
pub struct AccountTable {
    identities: Vec<Hash>,
    leaves: Vec<Hash>,
    /// The chaining value of every chunk of every complete segment (`SEGMENT_CHUNKS` per
    /// segment), so that a batch rehashes only the chunks it changed. The last segment, while
    /// it is incomplete, is hashed whole.
    chunk_values: Vec<ChainingValue>,
    segments: MerkleTree,
    /// One bit per chunk (account index / `CHUNK_ACCOUNTS`), set for the chunks with a changed
    /// leaf since the last commit.
    dirty_chunks: Vec<u64>,
    /// Whether any bit of `dirty_chunks` is set.
    dirty: bool,
    /// Reused by `commit`.
    scratch: Scratch,
}

/// Buffers `AccountTable::update` and `commit` reuse from batch to batch.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Each updated account's identity hash and balances.
    leaf_inputs: Vec<(Hash, [u8; 64])>,
    /// Per chunk position in a segment, the complete segments whose chunk there changed.
    by_position: Vec<Vec<u64>>,
    /// The complete segments with a changed chunk, ascending.
    segments: Vec<u64>,
    values: Vec<ChainingValue>,
    levels: [Vec<ChainingValue>; 2],
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

    /// Rehashes accounts, each either known or the next new one, in ascending order of index.
    ///
    /// It reads every account's balances and identity first, in one pass that asks memory for
    /// many of them at once, then hashes the leaves from those copies: with the accounts
    /// scattered over a large table, waiting for each one in turn would cost more than hashing.
    pub fn update<'a>(&mut self, indexes: &[u64], account: impl Fn(u64) -> &'a Account) {
        let mut inputs = std::mem::take(&mut self.scratch.leaf_inputs);
        inputs.clear();
        for index in indexes {
            let account = account(*index);
            if *index == self.len() {
                self.identities.push(account_identity(account));
                self.leaves.push([0; 32]);
            }
            inputs.push((self.identities[*index as usize], account.balances_bytes()));
        }
        let words = self.len().div_ceil(CHUNK_ACCOUNTS).div_ceil(64) as usize;
        if self.dirty_chunks.len() < words {
            self.dirty_chunks.resize(words, 0);
        }
        for (index, (identity, balances)) in indexes.iter().zip(&inputs) {
            self.leaves[*index as usize] = hash_lanes::keyed_hash_block(identity, balances);
            let chunk = index / CHUNK_ACCOUNTS;
            self.dirty_chunks[(chunk / 64) as usize] |= 1 << (chunk % 64);
            self.dirty = true;
        }
        self.scratch.leaf_inputs = inputs;
    }

    /// Rehashes the changed chunks, the segments that hold them and the tree above them.
    ///
    /// The chunks of complete segments are hashed position by position: chunk `k` of every
    /// segment that changed there, all at once (`hash_lanes::chunks_at`), then the four levels of
    /// each changed segment's BLAKE3 tree, level by level across segments. A full batch at a
    /// million accounts changes about two in five of all chunks, and this hashes just those, eight
    /// at a time.
    pub fn commit(&mut self) {
        let complete_before = self.chunk_values.len() as u64 / SEGMENT_CHUNKS;
        let complete = self.len() / SEGMENT_ACCOUNTS;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.by_position.resize_with(SEGMENT_CHUNKS as usize, Vec::new);
        scratch.segments.clear();
        let mut partial_changed = false;
        // Segments are 16 chunks, so each bitmap word covers four whole segments, in order.
        const _: () = assert!(64 % SEGMENT_CHUNKS == 0);
        for word in 0..self.dirty_chunks.len() {
            let mut bits = std::mem::take(&mut self.dirty_chunks[word]);
            while bits != 0 {
                let chunk = word as u64 * 64 + u64::from(bits.trailing_zeros());
                bits &= bits - 1;
                let segment = chunk / SEGMENT_CHUNKS;
                if segment >= complete {
                    partial_changed = true;
                    continue;
                }
                if scratch.segments.last() != Some(&segment) {
                    scratch.segments.push(segment);
                }
                // A segment completed by this batch has every chunk hashed below.
                if segment < complete_before {
                    scratch.by_position[(chunk % SEGMENT_CHUNKS) as usize].push(segment);
                }
            }
        }
        self.chunk_values.resize((complete * SEGMENT_CHUNKS) as usize, [0; 32]);
        for segment in complete_before..complete {
            for position in &mut scratch.by_position {
                position.push(segment);
            }
        }

        for (position, segments) in scratch.by_position.iter_mut().enumerate() {
            let offset = position as u64 * CHUNK_ACCOUNTS;
            let inputs = segments.iter().map(|segment| {
                let start = (segment * SEGMENT_ACCOUNTS + offset) as usize;
                self.leaves[start..start + CHUNK_ACCOUNTS as usize].as_flattened().try_into().expect("one chunk")
            });
            scratch.values.resize(segments.len(), [0; 32]);
            hash_lanes::chunks_at(SEGMENT_KEY, position as u64, inputs, &mut scratch.values);
            for (segment, value) in segments.drain(..).zip(&scratch.values) {
                self.chunk_values[(segment * SEGMENT_CHUNKS) as usize + position] = *value;
            }
        }

        // Each changed segment's tree over its sixteen chunks: 8, 4 and 2 parents, then the root.
        let [lower, upper] = &mut scratch.levels;
        lower.clear();
        for segment in &scratch.segments {
            let start = (segment * SEGMENT_CHUNKS) as usize;
            lower.extend_from_slice(&self.chunk_values[start..start + SEGMENT_CHUNKS as usize]);
        }
        while lower.len() > scratch.segments.len() {
            let parents = lower.len() / 2;
            let inputs = lower
                .as_flattened()
                .chunks_exact(hash_lanes::BLOCK_LEN)
                .map(|pair| pair.try_into().expect("two values"));
            upper.resize(parents, [0; 32]);
            hash_lanes::parents(SEGMENT_KEY, inputs, parents == scratch.segments.len(), upper);
            std::mem::swap(lower, upper);
        }
        for (segment, hash) in scratch.segments.iter().zip(lower.iter()) {
            self.set_segment(*segment, *hash);
        }
        if partial_changed {
            let segment = complete;
            self.set_segment(segment, segment_hash(self.segment_leaves(segment)));
        }
        self.scratch = scratch;
        self.dirty = false;
        self.segments.commit();
        assert_eq!(self.segments.len(), self.len().div_ceil(SEGMENT_ACCOUNTS), "every account is in a segment");
    }

    fn set_segment(&mut self, segment: u64, hash: Hash) {
        if segment < self.segments.len() {
            self.segments.set(segment, hash);
        } else {
            assert_eq!(segment, self.segments.len(), "segments are appended in order");
            self.segments.push(hash);
        }
    }

    /// The root over all accounts. The table must be committed.
    pub fn root(&self) -> Hash {
        assert!(!self.dirty, "the root of an uncommitted table");
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

    /// The root by the definition: every segment's leaves hashed whole, under the tree.
    fn reference_root(accounts: &[Account]) -> Hash {
        let leaves: Vec<Hash> = accounts.iter().map(account_leaf).collect();
        let mut tree = MerkleTree::new();
        for segment in leaves.chunks(SEGMENT_ACCOUNTS as usize) {
            tree.push(segment_hash(segment));
        }
        tree.commit();
        tree.root()
    }

    /// Batches that change random accounts and add new ones, so that segments complete across
    /// batches and chunks change at every position, each checked against the definition.
    #[test]
    fn chunk_by_chunk_commits_equal_hashing_whole_segments() {
        let mut state = 11u64;
        let mut random = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut table = AccountTable::new();
        let mut accounts: Vec<Account> = Vec::new();
        for batch in 0..40u32 {
            let mut changed: Vec<u64> =
                (0..random(300)).filter(|_| !accounts.is_empty()).map(|_| random(accounts.len() as u64)).collect();
            for index in &changed {
                accounts[*index as usize].debits_posted += u128::from(batch + 1);
            }
            let added = if batch % 3 == 0 { random(700) } else { random(20) };
            for _ in 0..added {
                let id = accounts.len() as u128 + 1;
                changed.push(accounts.len() as u64);
                accounts.push(account(id, 0));
            }
            changed.sort_unstable();
            changed.dedup();
            table.update(&changed, |index| &accounts[index as usize]);
            table.commit();
            assert_eq!(table.root(), reference_root(&accounts), "batch {batch}, {} accounts", accounts.len());
        }
        assert!(accounts.len() as u64 > 8 * SEGMENT_ACCOUNTS);
    }

    #[test]
    fn incremental_updates_equal_a_rebuild_and_proofs_verify() {
        let count = 3 * SEGMENT_ACCOUNTS + 7;
        let mut table = AccountTable::new();
        let mut accounts: Vec<Account> = (1..=count as u128).map(|id| account(id, 0)).collect();
        let all: Vec<u64> = (0..count).collect();
        table.update(&all, |index| &accounts[index as usize]);
        table.commit();
        // Change a few accounts in two segments, and one account's flags.
        accounts[600].flags = crate::types::AccountFlags::CLOSED;
        table.refresh_identity(600, &accounts[600]);
        for index in [3u64, 600, 601, count - 1] {
            accounts[index as usize].credits_posted += 5;
        }
        table.update(&[3, 600, 601, count - 1], |index| &accounts[index as usize]);
        table.commit();

        let mut rebuilt = AccountTable::new();
        rebuilt.update(&all, |index| &accounts[index as usize]);
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
