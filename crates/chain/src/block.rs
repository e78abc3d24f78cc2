//! Blocks: the unit Simplex orders.
//!
//! A block names its parent by digest (so the chain is hash-linked from genesis), carries its
//! height, the consensus view it was proposed in, the proposer's timestamp, the ledger state
//! digest after executing its parent, and the client requests it orders.
//!
//! Wire format (big-endian, fixed width):
//!
//! ```text
//! parent (32) | height (8) | view (8) | timestamp ns (8) | state digest (32)
//! | request count (4) | requests (each as in `request.rs`)
//! ```
//!
//! The request count is checked against `BLOCK_REQUESTS_MAX`, and the whole encoding against
//! `BLOCK_SIZE_MAX`, before anything is allocated. The digest is SHA-256 of the encoding, which
//! is canonical: every byte string decodes to at most one block and re-encodes to itself.

use crate::constants::{BLOCK_HEADER_SIZE, BLOCK_REQUESTS_MAX, BLOCK_SIZE_MAX};
use crate::request::Request;
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, Encode as _, EncodeSize, Error as CodecError, Read, ReadExt as _, Write};
use commonware_cryptography::{Digest, Hasher as _, Sha256, sha256};

/// The digest of a block: what consensus votes on.
pub type BlockDigest = sha256::Digest;

/// The 32-byte digest of the ledger state.
pub type StateDigest = [u8; 32];

/// Hashes bytes into a block digest.
pub(crate) fn hash(bytes: &[u8]) -> BlockDigest {
    Sha256::hash(&[bytes])
}

/// A proposed or finalized block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub parent: BlockDigest,
    pub height: u64,
    pub view: u64,
    pub timestamp_ns: u64,
    /// The ledger digest after executing every block up to and including the parent.
    pub state_digest: StateDigest,
    pub requests: Vec<Request>,
    /// Cached digest of the encoding above.
    digest: BlockDigest,
}

impl Block {
    /// Builds a block and computes its digest.
    ///
    /// # Panics
    /// If the block is over the request or size limits: proposers check them first.
    pub fn new(
        parent: BlockDigest,
        height: u64,
        view: u64,
        timestamp_ns: u64,
        state_digest: StateDigest,
        requests: Vec<Request>,
    ) -> Self {
        assert!(requests.len() <= BLOCK_REQUESTS_MAX, "a proposer checks the request limit");
        let mut block =
            Self { parent, height, view, timestamp_ns, state_digest, requests, digest: <BlockDigest as Digest>::EMPTY };
        let encoded = block.encode();
        assert!(encoded.len() <= BLOCK_SIZE_MAX, "a proposer checks the size limit");
        block.digest = hash(&encoded);
        block
    }

    pub fn digest(&self) -> BlockDigest {
        self.digest
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.parent.write(buf);
        buf.put_u64(self.height);
        buf.put_u64(self.view);
        buf.put_u64(self.timestamp_ns);
        buf.put_slice(&self.state_digest);
        buf.put_u32(u32::try_from(self.requests.len()).expect("request count checked"));
        for request in &self.requests {
            request.write(buf);
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        BLOCK_HEADER_SIZE + self.requests.iter().map(EncodeSize::encode_size).sum::<usize>()
    }
}

impl Read for Block {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        // Bound the whole block before reading any part of it.
        if buf.remaining() > BLOCK_SIZE_MAX {
            return Err(CodecError::InvalidLength(buf.remaining()));
        }
        let parent = BlockDigest::read(buf)?;
        let height = u64::read(buf)?;
        let view = u64::read(buf)?;
        let timestamp_ns = u64::read(buf)?;
        let state_digest = <[u8; 32]>::read(buf)?;
        let count = u32::read(buf)? as usize;
        if count > BLOCK_REQUESTS_MAX {
            return Err(CodecError::InvalidLength(count));
        }
        let mut requests = Vec::with_capacity(count);
        for _ in 0..count {
            requests.push(Request::read(buf)?);
        }
        let mut block =
            Self { parent, height, view, timestamp_ns, state_digest, requests, digest: <BlockDigest as Digest>::EMPTY };
        block.digest = hash(&block.encode());
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{EVENT_SIZE, REQUEST_EVENTS_MAX, REQUEST_HEADER_SIZE};
    use crate::keys;
    use commonware_codec::Decode as _;
    use tally_ledger::Transfer;

    fn request(id: u128, events: usize) -> Request {
        let transfers: Vec<Transfer> = (0..events as u128)
            .map(|index| Transfer {
                id: index + 1,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            })
            .collect();
        Request::create_transfers(1, id, &keys::signer_from_seed(3), &transfers).unwrap()
    }

    fn block(requests: Vec<Request>) -> Block {
        Block::new(hash(b"parent"), 7, 9, 1_000, [5; 32], requests)
    }

    #[test]
    fn round_trips_with_a_stable_digest() {
        let original = block(vec![request(1, 2), request(2, 1)]);
        let bytes = original.encode();
        assert_eq!(bytes.len(), BLOCK_HEADER_SIZE + 2 * REQUEST_HEADER_SIZE + 3 * EVENT_SIZE);
        let decoded = Block::decode_cfg(bytes.clone(), &()).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(decoded.digest(), hash(&bytes));
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = block(vec![request(1, 1)]);
        let variants = [
            Block::new(hash(b"other"), 7, 9, 1_000, [5; 32], vec![request(1, 1)]),
            Block::new(hash(b"parent"), 8, 9, 1_000, [5; 32], vec![request(1, 1)]),
            Block::new(hash(b"parent"), 7, 10, 1_000, [5; 32], vec![request(1, 1)]),
            Block::new(hash(b"parent"), 7, 9, 1_001, [5; 32], vec![request(1, 1)]),
            Block::new(hash(b"parent"), 7, 9, 1_000, [6; 32], vec![request(1, 1)]),
            Block::new(hash(b"parent"), 7, 9, 1_000, [5; 32], vec![request(2, 1)]),
            Block::new(hash(b"parent"), 7, 9, 1_000, [5; 32], vec![]),
        ];
        for variant in variants {
            assert_ne!(variant.digest(), base.digest());
        }
    }

    #[test]
    fn decode_refuses_too_many_requests_before_allocating() {
        let mut bytes = block(vec![]).encode().to_vec();
        let count_at = BLOCK_HEADER_SIZE - 4;
        bytes[count_at..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Block::decode_cfg(bytes.clone(), &()), Err(CodecError::InvalidLength(_))));
        bytes[count_at..].copy_from_slice(&((BLOCK_REQUESTS_MAX + 1) as u32).to_be_bytes());
        assert!(matches!(Block::decode_cfg(bytes.clone(), &()), Err(CodecError::InvalidLength(_))));
        // A count within the limit whose requests are missing.
        bytes[count_at..].copy_from_slice(&1u32.to_be_bytes());
        assert!(Block::decode_cfg(bytes, &()).is_err());
    }

    #[test]
    fn decode_refuses_oversized_blocks() {
        let full = || request(1, REQUEST_EVENTS_MAX);
        // Three full requests fit in the size limit; the decoder also refuses any input longer
        // than the limit outright.
        let fits = block(vec![full(), full(), full()]);
        assert!(fits.encode().len() <= BLOCK_SIZE_MAX);
        let mut bytes = fits.encode().to_vec();
        bytes.resize(BLOCK_SIZE_MAX + 1, 0);
        assert!(matches!(Block::decode_cfg(bytes, &()), Err(CodecError::InvalidLength(_))));
    }

    #[test]
    fn decode_refuses_trailing_bytes() {
        let mut bytes = block(vec![request(1, 1)]).encode().to_vec();
        bytes.push(0);
        assert!(matches!(Block::decode_cfg(bytes, &()), Err(CodecError::ExtraData(1))));
    }
}
