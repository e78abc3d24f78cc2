//! A Merkle tree over a growing list of leaves whose leaves may also change (RFC 6962 shape).
//!
//! The tree keeps every complete node: `levels[k][i]` is the root of the perfect subtree of
//! `2^k` leaves that starts at leaf `i * 2^k`, and exists once all those leaves exist. Appending
//! and replacing leaves only records them as dirty; [`MerkleTree::commit`] rehashes the dirty
//! paths once per batch, so a batch that touches `b` leaves of an `n`-leaf tree costs about
//! `b * (1 + log2(n / b))` node hashes, not `n`.
//!
//! The root of `n` leaves is RFC 6962's: write `n` as a sum of decreasing powers of two, take the
//! perfect subtrees of those sizes from the left, and fold them from the right
//! (`root = node(P_a, node(P_b, P_c))`). An inclusion proof for a leaf is therefore RFC 6962's
//! audit path, which a later issue hands to clients.
//!
//! Leaves and nodes are hashed with BLAKE3 under different keys, so a leaf can never be taken for
//! a node. A node hash reads exactly one 64-byte BLAKE3 block.

/// A 32-byte BLAKE3 hash.
pub type Hash = [u8; 32];

/// The key for interior nodes of every tree.
const NODE_KEY: &[u8; 32] = b"tally.ledger.v1.merkle.node.....";
/// The root of a tree without leaves.
const EMPTY_KEY: &[u8; 32] = b"tally.ledger.v1.merkle.empty....";

/// The hash of an interior node: one BLAKE3 compression of the two children under the node
/// key, with BLAKE3's parent-node flag (exactly BLAKE3's own parent chaining value).
pub fn node(left: &Hash, right: &Hash) -> Hash {
    blake3::hazmat::merge_subtrees_non_root(left, right, blake3::hazmat::Mode::KeyedHash(NODE_KEY))
}

/// The hash of a leaf under `key` (each tree has its own leaf key).
pub fn leaf(key: &[u8; 32], bytes: &[u8]) -> Hash {
    *blake3::keyed_hash(key, bytes).as_bytes()
}

/// A Merkle tree whose leaves may be appended and replaced.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaves; `levels[k]` the complete nodes of height `k`.
    levels: Vec<Vec<Hash>>,
    /// Leaves appended or replaced since the last commit (unsorted, may repeat).
    dirty: Vec<u64>,
}

impl MerkleTree {
    pub fn new() -> Self {
        Self { levels: vec![Vec::new()], dirty: Vec::new() }
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.dirty.push(self.len());
        self.levels[0].push(leaf);
    }

    /// Replaces the leaf hash at `index`.
    pub fn set(&mut self, index: u64, leaf: Hash) {
        assert!(index < self.len(), "leaf {index} out of range of {}", self.len());
        self.levels[0][index as usize] = leaf;
        self.dirty.push(index);
    }

    /// Whether every leaf change has been folded into the nodes.
    pub fn is_committed(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Rehashes the paths from the dirty leaves upwards.
    pub fn commit(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        if !dirty.is_sorted() {
            dirty.sort_unstable();
        }
        dirty.dedup();
        let mut height = 0;
        while !dirty.is_empty() {
            if self.levels.len() == height + 1 {
                self.levels.push(Vec::new());
            }
            let (lower, upper) = self.levels.split_at_mut(height + 1);
            let (lower, upper) = (&lower[height], &mut upper[0]);
            let mut parents = Vec::with_capacity(dirty.len() / 2 + 1);
            for &index in &dirty {
                let parent = index / 2;
                let complete = (2 * parent + 1) < lower.len() as u64;
                if complete && parents.last() != Some(&parent) {
                    parents.push(parent);
                }
            }
            for &parent in &parents {
                let hash = node(&lower[2 * parent as usize], &lower[2 * parent as usize + 1]);
                if (parent as usize) < upper.len() {
                    upper[parent as usize] = hash;
                } else {
                    assert_eq!(parent as usize, upper.len(), "nodes are appended in order");
                    upper.push(hash);
                }
            }
            dirty = parents;
            height += 1;
        }
        if self.levels.len() > 1 && self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
        // Invariant: level k holds exactly floor(n / 2^k) nodes.
        debug_assert!(self.levels.iter().enumerate().all(|(height, level)| level.len() as u64 == self.len() >> height));
    }

    /// The root over all leaves. The tree must be committed.
    pub fn root(&self) -> Hash {
        assert!(self.is_committed(), "the root of an uncommitted tree");
        let n = self.len();
        if n == 0 {
            return *blake3::keyed_hash(EMPTY_KEY, &[]).as_bytes();
        }
        // Perfect subtrees from the right: the lowest set bit of n is the rightmost subtree.
        let mut accumulator: Option<Hash> = None;
        let mut end = n;
        for height in 0..64 {
            if n & (1 << height) == 0 {
                continue;
            }
            let start = end - (1 << height);
            let subtree = self.levels[height][(start >> height) as usize];
            accumulator = Some(match accumulator {
                None => subtree,
                Some(right) => node(&subtree, &right),
            });
            end = start;
        }
        accumulator.expect("a nonempty tree has a subtree")
    }

    /// The audit path proving leaf `index` under [`MerkleTree::root`]: sibling hashes from the
    /// leaf upwards, in RFC 6962 order. The tree must be committed.
    pub fn proof(&self, index: u64) -> Vec<Hash> {
        assert!(self.is_committed(), "a proof from an uncommitted tree");
        assert!(index < self.len(), "leaf {index} out of range of {}", self.len());
        let mut path = Vec::new();
        self.audit_path(index, 0, self.len(), &mut path);
        path
    }

    /// RFC 6962 PATH(m, D[start..end]), appended bottom-up to `path`.
    fn audit_path(&self, index: u64, start: u64, end: u64, path: &mut Vec<Hash>) {
        let size = end - start;
        if size == 1 {
            return;
        }
        let split = largest_power_of_two_below(size);
        if index < start + split {
            self.audit_path(index, start, start + split, path);
            path.push(self.subtree_root(start + split, end));
        } else {
            self.audit_path(index, start + split, end, path);
            path.push(self.subtree_root(start, start + split));
        }
    }

    /// The RFC 6962 root of the leaves `start..end`, where `start` is aligned to the largest
    /// power of two not above `end - start`, as every subtree of the audit path is.
    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        let size = end - start;
        if size.is_power_of_two() {
            let height = size.trailing_zeros() as usize;
            return self.levels[height][(start >> height) as usize];
        }
        let split = largest_power_of_two_below(size);
        node(&self.subtree_root(start, start + split), &self.subtree_root(start + split, end))
    }
}

/// The largest power of two strictly below `size` (`size >= 2`).
fn largest_power_of_two_below(size: u64) -> u64 {
    debug_assert!(size >= 2);
    1 << (63 - (size - 1).leading_zeros())
}

/// Checks an audit path from [`MerkleTree::proof`]: whether `leaf` is leaf `index` of a tree of
/// `size` leaves with root `root`.
pub fn verify_proof(root: &Hash, size: u64, index: u64, leaf: &Hash, path: &[Hash]) -> bool {
    if index >= size {
        return false;
    }
    // RFC 9162, section 2.1.3.2.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            hash = node(sibling, &hash);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            hash = node(&hash, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && hash == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"tally.ledger.v1.merkle.test.....";

    /// RFC 6962's definition, computed from scratch.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => *blake3::keyed_hash(EMPTY_KEY, &[]).as_bytes(),
            1 => leaves[0],
            n => {
                let split = largest_power_of_two_below(n as u64) as usize;
                node(&reference_root(&leaves[..split]), &reference_root(&leaves[split..]))
            }
        }
    }

    #[test]
    fn root_matches_rfc6962_for_every_size_and_update() {
        let mut tree = MerkleTree::new();
        let mut leaves = Vec::new();
        for i in 0u64..70 {
            let hash = leaf(KEY, &i.to_le_bytes());
            tree.push(hash);
            leaves.push(hash);
            if i % 3 == 0 {
                let changed = leaf(KEY, &(i * 1000).to_le_bytes());
                let target = i / 2;
                tree.set(target, changed);
                leaves[target as usize] = changed;
            }
            tree.commit();
            assert_eq!(tree.root(), reference_root(&leaves), "size {}", i + 1);
            for index in 0..tree.len() {
                let path = tree.proof(index);
                assert!(verify_proof(&tree.root(), tree.len(), index, &leaves[index as usize], &path));
                let wrong = leaf(KEY, b"not a leaf");
                assert!(!verify_proof(&tree.root(), tree.len(), index, &wrong, &path));
            }
        }
    }

    #[test]
    fn batched_commit_equals_one_by_one() {
        let mut batched = MerkleTree::new();
        let mut single = MerkleTree::new();
        for i in 0u64..1000 {
            let hash = leaf(KEY, &i.to_le_bytes());
            batched.push(hash);
            single.push(hash);
            single.commit();
        }
        for i in (0u64..1000).step_by(7) {
            let hash = leaf(KEY, &(i + 5000).to_le_bytes());
            batched.set(i, hash);
            single.set(i, hash);
            single.commit();
        }
        batched.commit();
        assert_eq!(batched.root(), single.root());
        assert_ne!(MerkleTree::new().root(), batched.root());
    }
}
