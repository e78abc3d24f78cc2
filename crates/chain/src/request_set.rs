//! The digest of the set of included requests.
//!
//! Every validator must agree on which requests a chain has included, since that decides which
//! retries are refused. The set is therefore part of the state a block commits to, beside the
//! ledger digest (see `ChainState::state_digest`), so that a snapshot fetched from a peer can be
//! checked against a finalized block as a whole.
//!
//! Its elements are (request name, height included at, expiry): the expiry decides when the
//! chain forgets the name, so it is state like the rest.
//!
//! The set is hashed with a lattice-based homomorphic set hash (LtHash, Bellare and Micciancio;
//! parameters as in Lewi et al., "Securing update propagation with homomorphic hashing"): each
//! element is expanded by BLAKE3 into 1,024 16-bit lanes, and the set's value is the lane-wise
//! sum, wrapping. Adding an element costs one expansion whatever the set's size, the value does
//! not depend on the order elements were added in, and an element can later be removed by
//! subtracting it (when the chain forgets an expired request's name).

use crate::request::RequestKey;
use commonware_codec::Encode as _;

const LANES: usize = 1_024;
const ELEMENT_CONTEXT: &str = "tally 2026 request set element v2";
const DIGEST_CONTEXT: &str = "tally 2026 request set digest v1";

/// The running hash of a set of (request name, height included at, expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestSetHash {
    lanes: Box<[u16; LANES]>,
}

impl std::fmt::Debug for RequestSetHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestSetHash({})", hex(&self.digest()))
    }
}

impl Default for RequestSetHash {
    fn default() -> Self {
        Self { lanes: Box::new([0; LANES]) }
    }
}

fn expand(key: &RequestKey, height: u64, expires_ns: u64) -> [u16; LANES] {
    let mut hasher = blake3::Hasher::new_derive_key(ELEMENT_CONTEXT);
    hasher.update(&key.client.encode());
    hasher.update(&key.id.to_be_bytes());
    hasher.update(&height.to_be_bytes());
    hasher.update(&expires_ns.to_be_bytes());
    let mut bytes = [0u8; 2 * LANES];
    hasher.finalize_xof().fill(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([pair[0], pair[1]]);
    }
    lanes
}

impl RequestSetHash {
    /// Adds request `key`, included at `height`, expiring at `expires_ns` (which decides when
    /// the chain forgets it, so it is part of the element).
    pub fn add(&mut self, key: &RequestKey, height: u64, expires_ns: u64) {
        for (lane, element) in self.lanes.iter_mut().zip(expand(key, height, expires_ns)) {
            *lane = lane.wrapping_add(element);
        }
    }

    /// Removes request `key`, included at `height` and expiring at `expires_ns` (the inverse of
    /// `add`).
    pub fn remove(&mut self, key: &RequestKey, height: u64, expires_ns: u64) {
        for (lane, element) in self.lanes.iter_mut().zip(expand(key, height, expires_ns)) {
            *lane = lane.wrapping_sub(element);
        }
    }

    /// The set's 32-byte digest.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
        for lane in self.lanes.iter() {
            hasher.update(&lane.to_le_bytes());
        }
        *hasher.finalize().as_bytes()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};

    fn key(id: u128) -> RequestKey {
        RequestKey { client: public_key(&signer_from_seed(7)), id }
    }

    #[test]
    fn the_digest_depends_on_the_set_not_the_order() {
        let mut forward = RequestSetHash::default();
        let mut backward = RequestSetHash::default();
        for id in 0..20 {
            forward.add(&key(id), id as u64 / 3, 9);
        }
        for id in (0..20).rev() {
            backward.add(&key(id), id as u64 / 3, 9);
        }
        assert_eq!(forward.digest(), backward.digest());
        assert_ne!(forward.digest(), RequestSetHash::default().digest());
    }

    #[test]
    fn the_height_and_every_element_count() {
        let mut one = RequestSetHash::default();
        one.add(&key(1), 5, 9);
        let mut other_height = RequestSetHash::default();
        other_height.add(&key(1), 6, 9);
        let mut other_id = RequestSetHash::default();
        other_id.add(&key(2), 5, 9);
        let mut other_expiry = RequestSetHash::default();
        other_expiry.add(&key(1), 5, 10);
        assert_ne!(one.digest(), other_expiry.digest());
        assert_ne!(one.digest(), other_height.digest());
        assert_ne!(one.digest(), other_id.digest());
        // Removing undoes adding.
        let mut two = one.clone();
        two.add(&key(2), 5, 9);
        assert_ne!(two.digest(), one.digest());
        two.remove(&key(2), 5, 9);
        assert_eq!(two, one);
    }
}
